//! `netrun plot`, `features`, `plot-features` and `draw`: their arguments,
//! turned into the library's options.

use super::{parse_phase, Env};
use netrun::netdef::Phase;
use netrun::pictures::draw::DrawOptions;
use netrun::pictures::features::FeaturesOptions;
use netrun::pictures::plot::PlotOptions;
use netrun::pictures::scatter::PlotFeaturesOptions;
use std::path::PathBuf;

/// `netrun plot` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct PlotArgs {
    /// A training log: netrun's `<snapshot_prefix>.log.jsonl` or a Caffe text log.
    pub log: PathBuf,
    /// The picture to write, `.png` or `.svg` [default: LOG with extension `.png`].
    #[arg(short = 'o', long = "output", value_name = "OUT.png|OUT.svg")]
    pub output: Option<PathBuf>,
    /// The title [default: the log's file name].
    #[arg(long)]
    pub title: Option<String>,
}

impl PlotArgs {
    pub fn options(&self) -> PlotOptions {
        PlotOptions {
            log: self.log.clone(),
            output: self.output.clone(),
            title: self.title.clone(),
        }
    }
}

/// `netrun features` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct FeaturesArgs {
    /// A net file (`.net`, `.prototxt`) with a data layer.
    pub net: PathBuf,
    /// Weights files (comma-separated or repeated), e.g. a snapshot's `.weights.safetensors`.
    #[arg(long, value_name = "FILE", value_delimiter = ',', required = true)]
    pub weights: Vec<PathBuf>,
    /// The blob whose values are written, one row per sample (e.g. `ip1`).
    #[arg(long)]
    pub blob: String,
    /// Which phase's layers to build: TRAIN or TEST.
    #[arg(long, value_parser = parse_phase, default_value = "TEST")]
    pub phase: Phase,
    /// Batches to run [default: enough to read the data source once].
    #[arg(long, value_name = "N")]
    pub iterations: Option<usize>,
    /// Where to write `features` (rows × dim) and `labels` (rows), as safetensors.
    #[arg(short = 'o', long = "output", value_name = "OUT.safetensors")]
    pub output: PathBuf,
}

impl FeaturesArgs {
    pub fn options(&self, env: &Env) -> FeaturesOptions {
        FeaturesOptions {
            net: self.net.clone(),
            weights: self.weights.clone(),
            blob: self.blob.clone(),
            phase: self.phase,
            iterations: self.iterations,
            output: self.output.clone(),
            extra_data_dirs: env.extra_data_dirs(),
        }
    }
}

/// `netrun plot-features` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct PlotFeaturesArgs {
    /// A safetensors file with `features` (N×D) and `labels` (N), as `netrun features` writes.
    pub features: PathBuf,
    /// The picture to write, `.png` or `.svg`.
    #[arg(short = 'o', long = "output", value_name = "OUT.png|OUT.svg")]
    pub output: PathBuf,
    /// The title [default: the file's name].
    #[arg(long)]
    pub title: Option<String>,
    /// The two feature dimensions to plot, e.g. `0,1`.
    #[arg(long, value_name = "I,J", value_parser = parse_dims)]
    pub dims: Option<[usize; 2]>,
}

impl PlotFeaturesArgs {
    pub fn options(&self) -> PlotFeaturesOptions {
        PlotFeaturesOptions {
            features: self.features.clone(),
            output: self.output.clone(),
            title: self.title.clone(),
            dims: self.dims,
        }
    }
}

fn parse_dims(s: &str) -> Result<[usize; 2], String> {
    let parsed = s.split_once(',').and_then(|(a, b)| {
        Some([a.trim().parse().ok()?, b.trim().parse().ok()?]).filter(|[a, b]| a != b)
    });
    parsed.ok_or_else(|| format!("expected two different dimensions I,J (e.g. 0,1), found `{s}`"))
}

/// `netrun draw` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct DrawArgs {
    /// A net file (`.net`, `.prototxt`).
    pub net: PathBuf,
    /// `.dot` (or `.gv`) for Graphviz source; `.svg`, `.png` or `.pdf` are rendered by `dot`.
    #[arg(short = 'o', long = "output", value_name = "OUT.dot|OUT.svg")]
    pub output: PathBuf,
    /// Which phase's layers to draw: TRAIN or TEST.
    #[arg(long, value_parser = parse_phase, default_value = "TRAIN")]
    pub phase: Phase,
    /// Direction of the flow: TB (top to bottom) or LR (left to right; wide nets read better).
    #[arg(long, value_parser = ["TB", "LR", "BT", "RL"], default_value = "TB")]
    pub rankdir: String,
}

impl DrawArgs {
    pub fn options(&self) -> DrawOptions {
        DrawOptions {
            net: self.net.clone(),
            output: self.output.clone(),
            phase: self.phase,
            rankdir: self.rankdir.clone(),
        }
    }
}
