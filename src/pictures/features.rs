//! `netrun features NET --weights W --blob B -o F.safetensors`: one blob's
//! values over a data source, as Caffe's `extract_features`.
//!
//! The net (TEST phase unless `--phase`) is built as `netrun test` builds it,
//! the weights loaded the same way (CenterLoss centres from beside the
//! weights), then run forward batch after batch. After each batch the blob's
//! N×(C·H·W) values are appended as rows of tensor `features` and the data
//! layer's label top (its second top, whatever its name) to tensor `labels`.
//! Without `--iterations`, the batches cover the source once: ⌈R / N⌉ batches
//! for R records (LMDB) or listed images (ImageData), keeping exactly R rows;
//! with it, `--iterations` × N rows.

use crate::data::image_list::ListError;
use crate::error::{did_you_mean, Error, Result};
use crate::graph::{BlobId, BuildOptions, Graph};
use crate::layers::data::DataParams;
use crate::layers::image_data::ImageDataParams;
use crate::net::Net;
use crate::netdef::Phase;
use crate::shape::{count, fmt_shape};
use crate::train::{load_weights, DEFAULT_SEED};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// `netrun features` arguments.
#[derive(Debug, Clone)]
pub struct FeaturesOptions {
    /// A net file (`.net`, `.prototxt`) with a data layer.
    pub net: PathBuf,
    /// Weights files (comma-separated or repeated), e.g. a snapshot's `.weights.safetensors`.
    pub weights: Vec<PathBuf>,
    /// The blob whose values are written, one row per sample (e.g. `ip1`).
    pub blob: String,
    /// Which phase's layers to build: TRAIN or TEST.
    pub phase: Phase,
    /// Batches to run [default: enough to read the data source once].
    pub iterations: Option<usize>,
    /// Where to write `features` (rows × dim) and `labels` (rows), as safetensors.
    pub output: PathBuf,
    /// Folders searched for relative data paths after the net's folder and the
    /// working directory.
    pub extra_data_dirs: Vec<PathBuf>,
}

/// What [`extract`] read.
#[derive(Debug, Clone, PartialEq)]
pub struct Features {
    /// Rows × dim, row-major.
    pub values: Vec<f32>,
    pub rows: usize,
    pub dim: usize,
    /// One per row when the data layer has a label top.
    pub labels: Option<Vec<f32>>,
    /// The label blob's name.
    pub label_blob: Option<String>,
    pub batches: usize,
    /// Lines on loading the weights.
    pub notes: Vec<String>,
}

/// Builds the net, loads the weights and collects the blob over the data.
pub fn extract(args: &FeaturesOptions) -> Result<Features> {
    let def = crate::netdef::read_net_file(&args.net)?;
    let mut b = BuildOptions::for_phase(args.phase);
    let dirs = crate::data::data_dirs(&args.net, &args.extra_data_dirs);
    b.context.data_dirs = dirs.clone();
    let graph = Graph::build(&def, &b)?;
    let blob = find_blob(&graph, &args.blob, &args.net)?;
    let data = graph
        .nodes
        .iter()
        .position(|n| n.layer.is_data() && n.layer.type_name() != "Input")
        .ok_or_else(|| {
            Error::Other(format!(
                "the {} net of `{}` has no data layer to read samples from \
                 (Data, ImageData or DummyData; an Input layer gets no values by itself)",
                args.phase,
                args.net.display()
            ))
        })?;
    let node = &graph.nodes[data];
    let batch = graph.blob_shape(node.tops[0]).first().copied().unwrap_or(1);
    let (batches, keep) = match args.iterations {
        Some(0) => return Err(Error::Other("--iterations must be at least 1".into())),
        Some(n) => (n, n * batch),
        None => {
            let records = source_records(&graph, data, &dirs)?;
            if records == 0 {
                return Err(Error::Other(format!(
                    "the data source of {} is empty",
                    node.def.describe()
                )));
            }
            (records.div_ceil(batch), records)
        }
    };
    let shape = graph.blob_shape(blob).to_vec();
    let rows_per_batch = shape.first().copied().unwrap_or(1);
    if rows_per_batch != batch {
        return Err(Error::Other(format!(
            "blob `{}` ({}) does not hold one row per sample: \
             its first axis is not the batch of {}, {batch}",
            args.blob,
            fmt_shape(&shape),
            node.def.describe()
        )));
    }
    let dim = count(&shape) / rows_per_batch.max(1);
    // The label top: one value per sample.
    let label = node
        .tops
        .get(1)
        .copied()
        .filter(|&t| count(graph.blob_shape(t)) == batch);
    let label_blob = label.map(|t| graph.blobs[t].name.clone());
    let mut net = Net::new(graph, DEFAULT_SEED)?;
    let notes = load_weights(&mut net, &args.weights, true)?;
    let read: Vec<&str> = [Some(args.blob.as_str()), label_blob.as_deref()]
        .into_iter()
        .flatten()
        .collect();
    net.recycle_activations(&read)?;
    let mut values = Vec::with_capacity(keep * dim);
    let mut labels = label.map(|_| Vec::with_capacity(keep));
    for _ in 0..batches {
        net.forward()?;
        let take = (keep - values.len() / dim.max(1)).min(batch);
        values.extend_from_slice(&net.blobs[blob].data()[..take * dim]);
        if let (Some(l), Some(t)) = (labels.as_mut(), label) {
            l.extend_from_slice(&net.blobs[t].data()[..take]);
        }
    }
    Ok(Features {
        values,
        rows: keep,
        dim,
        labels,
        label_blob,
        batches,
        notes,
    })
}

/// The blob named `name`, or an error with a suggestion.
fn find_blob(graph: &Graph, name: &str, net: &Path) -> Result<BlobId> {
    if let Some(id) = graph.blobs.iter().position(|b| b.name == name) {
        return Ok(id);
    }
    // Split copies are netrun's own; the user names the blobs of the file.
    let known: Vec<&str> = graph
        .blobs
        .iter()
        .map(|b| b.name.as_str())
        .filter(|n| !n.contains("_split_"))
        .collect();
    let hint = did_you_mean(name, known.iter().copied())
        .unwrap_or_else(|| format!("its blobs are {}", known.join(", ")));
    Err(Error::Other(format!(
        "the {} net of `{}` has no blob `{name}`: {hint}",
        graph.phase,
        net.display()
    )))
}

/// R, the records of a Data layer's LMDB/LevelDB or the lines of an ImageData list.
fn source_records(graph: &Graph, data: usize, dirs: &[PathBuf]) -> Result<usize> {
    let def = &graph.nodes[data].def;
    let mut backend = crate::data::db::Backend::Lmdb;
    let source = match def.type_name.as_str() {
        "Data" => {
            let p = def.params::<DataParams>("data_param")?;
            backend = p.backend;
            p.source
        }
        "ImageData" => def.params::<ImageDataParams>("image_data_param")?.source,
        _ => {
            return Err(Error::Other(format!(
                "give --iterations: {} has no record count to cover \
                 (only Data and ImageData sources are counted)",
                def.describe()
            )))
        }
    };
    let source = source.unwrap_or_default();
    let path = crate::data::resolve(&source, dirs)
        .map_err(|tried| {
            Error::Other(format!(
                "{}: cannot find source `{source}` (tried {})",
                def.describe(),
                crate::data::fmt_paths(&tried)
            ))
        })?
        .path;
    let fail = |m: String| Error::Other(format!("{}: {m}", def.describe()));
    if def.type_name == "Data" {
        crate::data::db::count(backend, &path).map_err(|e| {
            fail(format!(
                "cannot count the records of `{}`: {e}",
                path.display()
            ))
        })
    } else {
        crate::data::image_list::read(&path, None)
            .map(|entries| entries.len())
            .map_err(|e| {
                let why = match e {
                    ListError::Io(m) => m,
                    ListError::Line { line, message } => format!("line {line}: {message}"),
                };
                fail(format!("cannot read list `{}`: {why}", path.display()))
            })
    }
}

/// Runs `netrun features`; returns the report.
pub fn run(args: &FeaturesOptions) -> Result<String> {
    let f = extract(args)?;
    let mut tensors: Vec<(&str, Vec<usize>, &[f32])> =
        vec![("features", vec![f.rows, f.dim], &f.values)];
    if let Some(l) = &f.labels {
        tensors.push(("labels", vec![f.rows], l));
    }
    let views: Vec<(&str, &[usize], &[f32])> = tensors
        .iter()
        .map(|(n, s, v)| (*n, s.as_slice(), *v))
        .collect();
    let mut meta = BTreeMap::new();
    meta.insert("net".to_string(), args.net.display().to_string());
    meta.insert("blob".to_string(), args.blob.clone());
    meta.insert("phase".to_string(), args.phase.to_string());
    if let Some(l) = &f.label_blob {
        meta.insert("labels".to_string(), l.clone());
    }
    crate::weights::save_f32(&args.output, &views, &meta)?;
    let mut report = f.notes.join("\n");
    if !report.is_empty() {
        report.push('\n');
    }
    report += &format!(
        "Wrote {}: features {}x{} from blob `{}` ({} batches), {}",
        args.output.display(),
        f.rows,
        f.dim,
        args.blob,
        f.batches,
        match &f.label_blob {
            Some(l) => format!("labels from `{l}`"),
            None => "no labels (the data layer has no label top)".to_string(),
        }
    );
    Ok(report)
}
