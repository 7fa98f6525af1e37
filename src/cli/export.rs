//! `netrun export`: the subcommand; the model is written by `netrun::export`.

use super::Env;
use netrun::export::onnx::{run as export_onnx, ExportOptions};
use netrun::Result;
use std::path::PathBuf;

/// The `netrun export` subcommands.
#[derive(clap::Subcommand)]
pub enum ExportCommand {
    /// An ONNX model (opset 13) of a deploy net with its weights, for ONNX Runtime and others.
    Onnx {
        /// A deploy net (`.prototxt`): Input layers, no data or loss layers.
        net: PathBuf,
        /// The trained weights (`<layer>.<index>` tensors, as snapshots write them).
        #[arg(long, value_name = "W")]
        weights: PathBuf,
        /// The model file to write.
        #[arg(short = 'o', long = "output", value_name = "MODEL.onnx")]
        output: PathBuf,
        /// Replaces the batch size of the Input layers.
        #[arg(long, value_name = "N")]
        batch: Option<usize>,
        /// A symbolic batch axis `N`: the model runs at any batch size.
        #[arg(long)]
        dynamic_batch: bool,
    },
}

pub fn run(cmd: &ExportCommand, env: &Env) -> Result<()> {
    let ExportCommand::Onnx {
        net,
        weights,
        output,
        batch,
        dynamic_batch,
    } = cmd;
    let report = export_onnx(&ExportOptions {
        net: net.clone(),
        weights: weights.clone(),
        output: output.clone(),
        batch: *batch,
        dynamic_batch: *dynamic_batch,
        extra_data_dirs: env.extra_data_dirs(),
    })?;
    print!("{report}");
    Ok(())
}
