//! HDF5Data: rows of HDF5 datasets named like the tops, from the files a list names.
//! Legend: B = batch_size; each file holds, for every top t, a dataset `t` of shape
//! R × S_t (R rows, the same for all tops of a file; S_t any row shape, the same in every
//! file). Top t is B × S_t. Forward copies B rows, moving to the next file (wrapping to the
//! first) when a file's rows run out. With `shuffle`: the file order is shuffled at setup
//! and at each wrap, the row order of each file when it is loaded. No backward.
//! Relative file names in the list are looked up beside the list, then as data paths.

use super::checks::param_span;
use super::{required, Arity, BuildContext, Layer, Shape, ShapeError};
use crate::data::hdf5::{self, Dataset};
use crate::data::{self, fmt_paths, sources::layer_rng};
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, Rng, RunCtx};
use crate::netdef::LayerDef;
use rand::seq::SliceRandom;
use serde::Deserialize;
use std::path::{Path, PathBuf};

const BLOCK: &str = "hdf5_data_param";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Hdf5DataParams {
    pub source: Option<String>,
    pub batch_size: Option<u32>,
    pub shuffle: bool,
}

pub struct Hdf5DataLayer {
    pub params: Hdf5DataParams,
    batch: usize,
    names: Vec<String>,
    /// Row shape per top.
    rows: Vec<Shape>,
    /// The files, or why they cannot be read (forward fails with it).
    files: Result<Vec<PathBuf>, String>,
    order: Vec<usize>,
    /// Position in `order` of the loaded file, its datasets, row order and next row.
    current: usize,
    loaded: Vec<Dataset>,
    row_order: Vec<usize>,
    row: usize,
    rng: Rng,
}

/// The files of the list at `list`, each resolved beside the list, then in `dirs`.
fn list_files(list: &Path, dirs: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let text = std::fs::read_to_string(list)
        .map_err(|e| format!("cannot read the HDF5 file list `{}`: {e}", list.display()))?;
    let mut search = vec![list.parent().map(Path::to_path_buf).unwrap_or_default()];
    search.extend(dirs.iter().cloned());
    let mut files = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let name = line.trim();
        if name.is_empty() {
            continue;
        }
        let found = data::resolve(name, &search).map_err(|tried| {
            format!(
                "{}:{}: cannot find HDF5 file `{name}` (tried {})",
                list.display(),
                i + 1,
                fmt_paths(&tried)
            )
        })?;
        files.push(found.path);
    }
    if files.is_empty() {
        return Err(format!(
            "the HDF5 file list `{}` names no file",
            list.display()
        ));
    }
    Ok(files)
}

pub fn build(def: &LayerDef, ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    let p: Hdf5DataParams = def.params(BLOCK)?;
    let source = required(def, p.source.as_deref(), BLOCK, "source")?.to_string();
    let batch = match ctx.batch {
        Some(b) => b,
        None => required(def, p.batch_size, BLOCK, "batch_size")? as usize,
    };
    let span = param_span(def, BLOCK, "source");
    if batch == 0 {
        return Err(def.error(
            param_span(def, BLOCK, "batch_size"),
            format!("{}: batch_size must be positive", def.describe()),
        ));
    }
    let files = data::resolve(&source, &ctx.data_dirs)
        .map_err(|tried| {
            format!(
                "cannot open HDF5 file list `{source}` (tried {})",
                fmt_paths(&tried)
            )
        })
        .and_then(|r| list_files(&r.path, &ctx.data_dirs));
    let mut layer = Hdf5DataLayer {
        params: p,
        batch,
        names: def.top.clone(),
        rows: vec![],
        files,
        order: vec![],
        current: 0,
        loaded: vec![],
        row_order: vec![],
        row: 0,
        rng: layer_rng(ctx.seed, &def.name),
    };
    match layer.files.clone() {
        Ok(files) => {
            layer.order = (0..files.len()).collect();
            if layer.params.shuffle {
                layer.order.shuffle(&mut layer.rng);
            }
            layer
                .load(0)
                .map_err(|m| def.error(span, format!("{}: {m}", def.describe())))?;
            layer.rows = layer.loaded.iter().map(|d| d.shape[1..].to_vec()).collect();
        }
        Err(missing) => {
            // Shapes from `--input-shape TOP=...` (the first top needs one; others default to
            // one value per row, as labels are).
            for (i, top) in def.top.iter().enumerate() {
                match ctx.input_shapes.get(top) {
                    Some(s) => layer.rows.push(s.clone()),
                    None if i > 0 => layer.rows.push(vec![]),
                    None => {
                        return Err(def
                            .error(span, format!("{}: {missing}", def.describe()))
                            .with_help(format!(
                                "pass `--input-shape {top}=...` (the row shape) to check the net without its data"
                            )))
                    }
                }
            }
        }
    }
    Ok(Box::new(layer))
}

impl Hdf5DataLayer {
    /// Loads the file at position `k` of the order and checks its datasets.
    fn load(&mut self, k: usize) -> Result<(), String> {
        let files = self.files.as_ref().map_err(Clone::clone)?;
        let path = &files[self.order[k]];
        let names: Vec<&str> = self.names.iter().map(String::as_str).collect();
        let loaded = hdf5::read(path, &names)?;
        let rows = loaded[0].rows();
        for (d, name) in loaded.iter().zip(&names) {
            if d.rows() != rows {
                return Err(format!(
                    "`{}`: dataset `{name}` has {} rows but `{}` has {rows}; every top's dataset needs the same rows",
                    path.display(),
                    d.rows(),
                    names[0]
                ));
            }
        }
        if rows == 0 {
            return Err(format!("`{}`: the datasets have no rows", path.display()));
        }
        if let Some(i) = (0..self.rows.len()).find(|&i| loaded[i].shape[1..] != self.rows[i][..]) {
            return Err(format!(
                "`{}`: dataset `{}` has rows of shape {:?}, but the first file's are {:?}",
                path.display(),
                names[i],
                &loaded[i].shape[1..],
                self.rows[i]
            ));
        }
        self.row_order = (0..rows).collect();
        if self.params.shuffle {
            self.row_order.shuffle(&mut self.rng);
        }
        (self.loaded, self.current, self.row) = (loaded, k, 0);
        Ok(())
    }
}

impl Layer for Hdf5DataLayer {
    fn type_name(&self) -> &'static str {
        "HDF5Data"
    }
    fn bottoms(&self) -> Arity {
        Arity::exactly(0)
    }
    fn tops(&self) -> Arity {
        Arity::at_least(1)
    }
    fn is_data(&self) -> bool {
        true
    }

    fn reshape(&mut self, _bottom: &[Shape]) -> Result<Vec<Shape>, ShapeError> {
        Ok(self
            .rows
            .iter()
            .map(|r| {
                std::iter::once(self.batch)
                    .chain(r.iter().copied())
                    .collect()
            })
            .collect())
    }

    fn forward(&mut self, io: &mut LayerIo, _ctx: &mut RunCtx) -> Result<(), String> {
        let files = self.files.as_ref().map_err(Clone::clone)?.len();
        for i in 0..self.batch {
            if self.row == self.row_order.len() {
                let mut next = self.current + 1;
                if next == files {
                    next = 0;
                    if self.params.shuffle {
                        self.order.shuffle(&mut self.rng);
                    }
                }
                // One file stays in memory; its rows are reshuffled at each pass.
                if files > 1 {
                    self.load(next)?;
                } else if self.params.shuffle {
                    self.row_order.shuffle(&mut self.rng);
                }
                self.row = 0;
            }
            let r = self.row_order[self.row];
            for (t, d) in self.loaded.iter().enumerate() {
                let n = d.row_len();
                io.top_mut(t).data_mut()[i * n..(i + 1) * n]
                    .copy_from_slice(&d.data[r * n..(r + 1) * n]);
            }
            self.row += 1;
        }
        Ok(())
    }
}
