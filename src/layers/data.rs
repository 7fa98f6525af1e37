//! Data: samples stored as Caffe `Datum` records in an LMDB or LevelDB
//! database (`backend`, LEVELDB by default as in Caffe), then transformed.
//! Legend: N batch; C×H×W from the first record (an encoded record's image
//! decides H×W, and C unless forced). Tops: data N×C×H×W (H = W = crop_size
//! when cropping), optional label N.
//! Records are read in key order, wrapping around, decoded (raw bytes,
//! float_data or an encoded image), transformed, and prepared `prefetch`
//! batches ahead on a background thread (`prefetch: 0` reads in forward).
//! State (saved in snapshots): the read position of the next batch the net
//! takes, `cursor` and `rng` (see `crate::data::sources`).

use super::transform::{
    param_given, param_span, sample_shape, SampleError, TransformParams, Unreadable,
};
use super::{required, Arity, BuildContext, Layer, Shape, ShapeError};
use crate::data::prefetch::{BatchSource, Feed};
use crate::data::sources::{layer_rng, DbSource};
use crate::data::{self, datum::Datum, fmt_paths};
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::LayerDef;
use serde::Deserialize;
use std::path::PathBuf;

const BLOCK: &str = "data_param";

pub use crate::data::db::Backend;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataParams {
    /// The database folder.
    pub source: Option<String>,
    pub batch_size: Option<u32>,
    pub rand_skip: u32,
    pub backend: Backend,
    /// Legacy spellings of the `transform_param` fields of the same names.
    pub scale: Option<f32>,
    pub mean_file: Option<String>,
    pub crop_size: Option<u32>,
    pub mirror: Option<bool>,
    /// Decode encoded records as 3-channel colour.
    pub force_encoded_color: bool,
    /// Batches read ahead.
    pub prefetch: u32,
}

impl Default for DataParams {
    fn default() -> Self {
        DataParams {
            source: None,
            batch_size: None,
            rand_skip: 0,
            backend: Backend::Leveldb,
            scale: None,
            mean_file: None,
            crop_size: None,
            mirror: None,
            force_encoded_color: false,
            prefetch: 4,
        }
    }
}

pub struct DataLayer {
    pub params: DataParams,
    pub transform: TransformParams,
    /// The database folder, where `source` was found.
    pub source_path: Option<PathBuf>,
    /// N, C, H, W of the data top.
    pub shape: [usize; 4],
    pub tops: usize,
    feed: Feed,
}

/// Moves the legacy `data_param` transform fields into `t`; giving one in both places is an error.
fn merge_legacy(def: &LayerDef, p: &DataParams, t: &mut TransformParams) -> Result<(), Diagnostic> {
    let given = [
        ("scale", p.scale.is_some()),
        ("mean_file", p.mean_file.is_some()),
        ("crop_size", p.crop_size.is_some()),
        ("mirror", p.mirror.is_some()),
    ];
    for (name, _) in given.iter().filter(|(_, g)| *g) {
        if param_given(def, "transform_param", name) {
            return Err(def
                .error(
                    param_span(def, BLOCK, name),
                    format!(
                        "{}: `{name}` is given in both `data_param` and `transform_param`",
                        def.describe()
                    ),
                )
                .with_help(format!("keep `transform_param {{ {name}: ... }}` only")));
        }
    }
    t.scale = p.scale.unwrap_or(t.scale);
    t.mean_file = p.mean_file.clone().or(t.mean_file.take());
    t.crop_size = p.crop_size.unwrap_or(t.crop_size);
    t.mirror = p.mirror.unwrap_or(t.mirror);
    Ok(())
}

pub fn build(def: &LayerDef, ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    let p: DataParams = def.params(BLOCK)?;
    let mut transform = TransformParams::read(def)?;
    merge_legacy(def, &p, &mut transform)?;
    let source = required(def, p.source.as_deref(), BLOCK, "source")?.to_string();
    let batch = match ctx.batch {
        Some(b) => b,
        None => required(def, p.batch_size, BLOCK, "batch_size")? as usize,
    };
    if batch == 0 {
        return Err(def.error(
            param_span(def, BLOCK, "batch_size"),
            format!("{}: batch_size must be positive", def.describe()),
        ));
    }
    let found = data::resolve(&source, &ctx.data_dirs);
    let source_path = found.as_ref().ok().map(|r| r.path.clone());
    let span = param_span(def, BLOCK, "source");
    let read = match found {
        Ok(ref r) => first_record(def, &p, &transform, &r.path),
        Err(tried) => Err(SampleError::Unreadable(Unreadable {
            message: format!(
                "cannot open {} `{source}` (tried {})",
                p.backend.name(),
                fmt_paths(&tried)
            ),
            span,
            help: None,
        })),
    };
    let first = read.as_ref().ok().map(|(_, key)| key.clone());
    let missing = match &read {
        Err(SampleError::Unreadable(u)) => u.message.clone(),
        _ => String::new(),
    };
    let sample = sample_shape(def, ctx, read.map(|(shape, _)| shape))?;
    let [c, h, w] = transform.apply(def, sample)?;
    let feed = match (first, &source_path) {
        (Some(first_key), Some(dir)) => {
            let transformer = transform.transformer(def, ctx, sample)?;
            let rng = layer_rng(ctx.seed, &def.name);
            let (backend, dir) = (p.backend, dir.clone());
            let mut s = DbSource::new(
                backend,
                dir,
                first_key,
                batch,
                transformer,
                rng,
                p.rand_skip,
            );
            s.forced = forced_channels(&p, &transform);
            Feed::new(Ok(Box::new(s) as Box<dyn BatchSource>))
        }
        _ => Feed::new(Err(missing)),
    };
    Ok(Box::new(DataLayer {
        params: p,
        transform,
        source_path,
        shape: [batch, c, h, w],
        tops: def.top.len(),
        feed,
    }))
}

/// Channels encoded records are decoded to: force_color 3, force_gray 1, else their own.
fn forced_channels(p: &DataParams, t: &TransformParams) -> Option<usize> {
    if t.force_color || p.force_encoded_color {
        Some(3)
    } else if t.force_gray {
        Some(1)
    } else {
        None
    }
}

/// C, H, W and key of the first record of the database in `dir`.
fn first_record(
    def: &LayerDef,
    p: &DataParams,
    t: &TransformParams,
    dir: &std::path::Path,
) -> Result<([usize; 3], String), SampleError> {
    let span = param_span(def, BLOCK, "source");
    let unreadable = |message: String| {
        SampleError::Unreadable(Unreadable {
            message,
            span,
            help: None,
        })
    };
    let invalid = |message: String| {
        SampleError::Invalid(def.error(
            span,
            format!(
                "{}: first record of `{}` {message}",
                def.describe(),
                dir.display()
            ),
        ))
    };
    let name = p.backend.name();
    let (key, value) = match data::db::read_first(p.backend, dir) {
        Ok(Some(kv)) => kv,
        Ok(None) => return Err(unreadable(format!("{name} `{}` is empty", dir.display()))),
        Err(e) => {
            let lmdb_folder = dir.join("data.mdb").exists() && !dir.join("CURRENT").exists();
            let help = match p.backend {
                Backend::Leveldb if lmdb_folder && !param_given(def, BLOCK, "backend") => {
                    "; the folder holds an LMDB and `backend` defaults to LEVELDB: set `backend: LMDB`"
                }
                _ => "",
            };
            return Err(unreadable(format!(
                "cannot open {name} `{}`: {e}{help}",
                dir.display()
            )));
        }
    };
    let key = String::from_utf8_lossy(&key);
    let d =
        Datum::decode(&value).map_err(|e| invalid(format!("(key `{key}`) is not a Datum: {e}")))?;
    d.sample_shape(forced_channels(p, t))
        .map(|shape| (shape, key.to_string()))
        .map_err(|e| invalid(format!("(key `{key}`) {e}")))
}

impl Layer for DataLayer {
    fn type_name(&self) -> &'static str {
        "Data"
    }
    fn bottoms(&self) -> Arity {
        Arity::exactly(0)
    }
    fn tops(&self) -> Arity {
        Arity::between(1, 2)
    }
    fn is_data(&self) -> bool {
        true
    }
    fn reshape(&mut self, _bottom: &[Shape]) -> Result<Vec<Shape>, ShapeError> {
        let mut tops = vec![self.shape.to_vec()];
        if self.tops > 1 {
            tops.push(vec![self.shape[0]]);
        }
        Ok(tops)
    }
    fn forward(&mut self, io: &mut LayerIo, _ctx: &mut RunCtx) -> Result<(), String> {
        let b = self.feed.next(self.params.prefetch as usize)?;
        io.top_mut(0).data_mut().copy_from_slice(&b.data);
        if self.tops > 1 {
            io.top_mut(1).data_mut().copy_from_slice(&b.labels);
        }
        Ok(())
    }
    fn state(&self) -> Vec<(String, f64)> {
        self.feed.position()
    }
    fn set_state(&mut self, state: &[(String, f64)]) -> Result<(), String> {
        self.feed.seek(state)
    }
}
