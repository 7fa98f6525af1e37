//! `netrun verify`: face verification accuracy on a pair list, LFW's way.
//!
//! Every image named by the pairs gets one feature ([`super::embed`]); a
//! pair's score is the cosine similarity of its two features; the
//! accuracy is k-fold cross-validated ([`super::folds`]: threshold chosen on
//! k − 1 folds, accuracy on the k-th), and the ROC over all pairs gives the
//! AUC and the TAR at FAR 1e-2 and 1e-3 ([`super::roc`]).

use super::deploy::read_deploy;
use super::embed::{cosine, Embedder, Mirror, Preprocess};
use super::folds::{cross_validate, CrossValidation, Scored};
use super::lfw::{ImageRef, Layout, PairList};
use super::roc::{Roc, RocPoint};
use crate::data::blob_proto::BlobProto;
use crate::data::transform::Mean;
use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// What to run (the command line's arguments).
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// The deploy net (or a train/test net with an ImageData layer).
    pub net: PathBuf,
    pub weights: Vec<PathBuf>,
    pub pairs: PathBuf,
    /// The images' root folder.
    pub images: PathBuf,
    /// A `name number path` mapping instead of LFW's layout.
    pub list: Option<PathBuf>,
    /// Extension of LFW-layout files.
    pub ext: String,
    pub blob: String,
    pub mirror: Mirror,
    /// `--mean`: one value, one per channel, or a `.binaryproto` file.
    pub mean: Option<String>,
    pub scale: Option<f32>,
    /// Decode as one-channel grey (the net's input must have one channel).
    pub gray: bool,
    pub folds: usize,
    /// Images per forward pass.
    pub batch: usize,
    pub plot: Option<PathBuf>,
    pub json: Option<PathBuf>,
}

/// What was measured.
#[derive(Debug, Clone)]
pub struct VerifyReport {
    pub pairs: usize,
    pub images: usize,
    pub feature_dim: usize,
    pub preprocessing: String,
    pub resize: Option<String>,
    pub cv: CrossValidation,
    pub auc: f64,
    pub tar_at_far: Vec<(f64, RocPoint)>,
    pub roc: Roc,
    pub scores: Vec<Scored>,
    pub written: Vec<PathBuf>,
}

/// The FARs the report gives TAR at.
pub const FARS: [f64; 2] = [1e-2, 1e-3];

pub fn run(opts: &VerifyOptions) -> Result<VerifyReport> {
    let list = PairList::read(&opts.pairs)?;
    let layout = match &opts.list {
        Some(l) => Layout::read_list(l, &opts.images)?,
        None => Layout::Lfw {
            root: opts.images.clone(),
            ext: opts.ext.trim_start_matches('.').to_string(),
        },
    };
    // Every image once, in a fixed order.
    let mut refs: BTreeMap<&ImageRef, usize> = BTreeMap::new();
    for p in &list.pairs {
        refs.insert(&p.a, 0);
        refs.insert(&p.b, 0);
    }
    let mut paths = Vec::with_capacity(refs.len());
    let mut missing = Vec::new();
    for (i, (r, slot)) in refs.iter_mut().enumerate() {
        *slot = i;
        match layout.path(r) {
            Ok(p) if p.is_file() => paths.push(p),
            Ok(p) => missing.push(format!("`{}`", p.display())),
            Err(m) => missing.push(m),
        }
    }
    if !missing.is_empty() {
        let shown: Vec<&str> = missing.iter().take(5).map(String::as_str).collect();
        return Err(Error::Other(format!(
            "{} of the {} images of `{}` are missing: {}{}\n  = help: images are looked for as ROOT/<name>/<name>_<NNNN>.<ext> \
             (--images ROOT, --ext {}); give --list for another layout",
            missing.len(),
            refs.len(),
            opts.pairs.display(),
            shown.join(", "),
            if missing.len() > 5 { ", ..." } else { "" },
            opts.ext
        )));
    }
    let deploy = read_deploy(&opts.net)?;
    let [c, h, w] = deploy.sample;
    if opts.gray && c != 1 {
        return Err(Error::Other(format!(
            "--gray: the net's input `{}` has {c} channels",
            deploy.input
        )));
    }
    let pre = preprocessing(opts, &deploy, [c, h, w])?;
    let mut embedder = Embedder::new(
        &deploy,
        &opts.net,
        &opts.weights,
        &opts.blob,
        opts.batch,
        pre,
        opts.mirror,
    )?;
    let mut resized = None;
    let mut images = Vec::with_capacity(paths.len());
    for p in &paths {
        if resized.is_none() {
            if let Ok(bytes) = std::fs::read(p) {
                if let Ok([_, ih, iw]) = crate::data::image_dims(&bytes) {
                    if [ih, iw] != [h, w] {
                        resized = Some(format!(
                            "images resized from {ih}x{iw} (the first one's size) to the net's {h}x{w} with a bilinear (triangle) filter, as ImageData's new_height/new_width"
                        ));
                    }
                }
            }
        }
        images.push(embedder.load(p)?);
    }
    let features = embedder.features(&images)?;
    let folds = list.folds(opts.folds);
    let scores: Vec<Scored> = list
        .pairs
        .iter()
        .zip(&folds)
        .map(|(p, &fold)| Scored {
            score: cosine(&features[refs[&p.a]], &features[refs[&p.b]]),
            same: p.same,
            fold,
        })
        .collect();
    let cv = cross_validate(&scores, opts.folds)
        .map_err(|m| Error::Other(format!("`{}`: {m}", opts.pairs.display())))?;
    let roc = Roc::new(&scores).ok_or_else(|| {
        Error::Other(format!(
            "`{}` needs both matched and mismatched pairs",
            opts.pairs.display()
        ))
    })?;
    let mut report = VerifyReport {
        pairs: scores.len(),
        images: paths.len(),
        feature_dim: embedder.dim(),
        preprocessing: embedder.pre.origin.clone(),
        resize: resized,
        auc: roc.auc(),
        tar_at_far: FARS.iter().map(|&f| (f, roc.tar_at_far(f))).collect(),
        cv,
        roc,
        scores,
        written: vec![],
    };
    if let Some(plot) = &opts.plot {
        super::roc_plot::write(plot, &report)?;
        report.written.push(plot.clone());
    }
    if let Some(json) = &opts.json {
        let text = serde_json::to_string_pretty(&report.json(opts))
            .map_err(|e| Error::Other(e.to_string()))?;
        std::fs::write(json, text + "\n").map_err(|e| Error::Io {
            path: json.clone(),
            message: e.to_string(),
        })?;
        report.written.push(json.clone());
    }
    Ok(report)
}

/// The net's `transform_param`, else `--mean`/`--scale`, else SphereFace's.
fn preprocessing(
    opts: &VerifyOptions,
    deploy: &super::deploy::DeployNet,
    sample: [usize; 3],
) -> Result<Preprocess> {
    if let Some(t) = &deploy.transform {
        if opts.mean.is_some() || opts.scale.is_some() {
            return Err(Error::Other(format!(
                "`{}` has its own transform_param; --mean and --scale are for deploy nets without one",
                opts.net.display()
            )));
        }
        let mean = match (&t.mean_file, t.mean_value.is_empty()) {
            (Some(f), _) => Mean::Image(mean_file(
                &crate::data::data_dirs(&opts.net, &[])
                    .iter()
                    .map(|d| d.join(f))
                    .find(|p| p.is_file())
                    .unwrap_or_else(|| PathBuf::from(f)),
                sample,
            )?),
            (None, true) => Mean::None,
            (None, false) => Mean::Values(t.mean_value.clone()),
        };
        return Ok(Preprocess {
            mean,
            scale: t.scale,
            origin: format!(
                "the net's transform_param ({})",
                describe(t.scale, &t.mean_value, &t.mean_file)
            ),
        });
    }
    if opts.mean.is_none() && opts.scale.is_none() {
        return Ok(Preprocess::sphereface());
    }
    let scale = opts.scale.unwrap_or(1.0);
    let (mean, shown) = match opts.mean.as_deref() {
        None => (Mean::None, "0".to_string()),
        Some(m) if m.ends_with(".binaryproto") => (
            Mean::Image(mean_file(Path::new(m), sample)?),
            format!("`{m}`"),
        ),
        Some(m) => {
            let values: std::result::Result<Vec<f32>, _> =
                m.split(',').map(|v| v.trim().parse::<f32>()).collect();
            let values = values.map_err(|_| {
                Error::Other(format!(
                    "--mean `{m}`: expected one value, one per channel (`104,117,123`) or a .binaryproto file"
                ))
            })?;
            (Mean::Values(values), m.to_string())
        }
    };
    Ok(Preprocess {
        mean,
        scale,
        origin: format!("--mean {shown} --scale {scale}: (x - mean) * {scale}"),
    })
}

fn describe(scale: f32, values: &[f32], file: &Option<String>) -> String {
    let mean = match file {
        Some(f) => format!("mean_file `{f}`"),
        None if values.is_empty() => "no mean".into(),
        None => format!(
            "mean_value {}",
            values
                .iter()
                .map(f32::to_string)
                .collect::<Vec<_>>()
                .join(",")
        ),
    };
    format!("{mean}, scale {scale}")
}

/// A `.binaryproto` mean image of the input's C×H×W.
fn mean_file(path: &Path, [c, h, w]: [usize; 3]) -> Result<Vec<f32>> {
    let bytes = std::fs::read(path).map_err(|e| Error::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let blob = BlobProto::decode(&bytes).map_err(|e| {
        Error::Other(format!(
            "mean file `{}` is not a BlobProto: {e}",
            path.display()
        ))
    })?;
    if blob.data.len() != c * h * w {
        return Err(Error::Other(format!(
            "mean file `{}` is {:?}; the net's input is {c}x{h}x{w}",
            path.display(),
            blob.shape
        )));
    }
    Ok(blob.data)
}

impl VerifyReport {
    /// The JSON summary.
    pub fn json(&self, opts: &VerifyOptions) -> serde_json::Value {
        serde_json::json!({
            "pairs_file": opts.pairs.display().to_string(),
            "net": opts.net.display().to_string(),
            "blob": opts.blob,
            "mirror": format!("{:?}", opts.mirror).to_lowercase(),
            "pairs": self.pairs,
            "images": self.images,
            "feature_dim": self.feature_dim,
            "preprocessing": self.preprocessing,
            "accuracy_mean": self.cv.mean(),
            "accuracy_std": self.cv.std(),
            "folds": self.cv.folds.iter().map(|f| serde_json::json!({
                "threshold": f.threshold,
                "accuracy": f.accuracy(),
                "correct": f.correct,
                "pairs": f.total,
            })).collect::<Vec<_>>(),
            "auc": self.auc,
            "tar_at_far": self.tar_at_far.iter().map(|(far, p)| serde_json::json!({
                "far": far, "tar": p.tar, "threshold": finite(p.threshold), "far_reached": p.far,
            })).collect::<Vec<_>>(),
        })
    }
}

/// JSON has no infinity: `null` stands for "above every score".
fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} pairs of {} images; features of {} values; cosine similarity",
            self.pairs, self.images, self.feature_dim
        )?;
        writeln!(f, "preprocessing: {}", self.preprocessing)?;
        if let Some(r) = &self.resize {
            writeln!(f, "{r}")?;
        }
        writeln!(f, "fold  threshold  accuracy")?;
        for (i, fold) in self.cv.folds.iter().enumerate() {
            writeln!(
                f,
                "{:>4}  {:>9.4}  {:>7.2}%  ({}/{})",
                i + 1,
                fold.threshold,
                100.0 * fold.accuracy(),
                fold.correct,
                fold.total
            )?;
        }
        writeln!(
            f,
            "accuracy: {:.2}% ± {:.2}% ({}-fold cross-validation; std over folds)",
            100.0 * self.cv.mean(),
            100.0 * self.cv.std(),
            self.cv.folds.len()
        )?;
        writeln!(f, "AUC: {:.4}", self.auc)?;
        for (far, p) in &self.tar_at_far {
            writeln!(
                f,
                "TAR @ FAR={far:e}: {:.2}% (threshold {}; {} mismatched pairs)",
                100.0 * p.tar,
                if p.threshold.is_finite() {
                    format!("{:.4}", p.threshold)
                } else {
                    "above every score".into()
                },
                self.roc.negatives
            )?;
        }
        for w in &self.written {
            writeln!(f, "wrote `{}`", w.display())?;
        }
        Ok(())
    }
}
