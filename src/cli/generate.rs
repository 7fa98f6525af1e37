//! `netrun generate`: the subcommand; the nets are written by `netrun::generate`.

use netrun::generate::{
    sphereface, SphereFace, SphereFaceFile, CASIA_CLASSES, DEFAULT_ROOT_FOLDER, DEFAULT_SOURCE,
};
use netrun::{Error, Result};
use std::path::PathBuf;

/// The `netrun generate` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum GenerateCommand {
    /// A SphereFace-{4,10,20,36,64} train net (default), deploy net or solver.
    Sphereface {
        /// Number of convolution layers: 4, 10, 20, 36 or 64.
        #[arg(long)]
        depth: u32,
        /// Identities, i.e. the A-Softmax layer's outputs (train net).
        #[arg(long, default_value_t = CASIA_CLASSES)]
        classes: u32,
        /// The deploy net (Input 1×3×112×96 up to fc5) instead of the train net.
        #[arg(long, conflicts_with = "solver")]
        deploy: bool,
        /// The published solver, for the train net `sphereface<DEPTH>_train.prototxt`.
        #[arg(long)]
        solver: bool,
        /// The ImageData list file of the train net.
        #[arg(long, default_value = DEFAULT_SOURCE)]
        source: String,
        /// Prefixed to every listed image path of the train net ("" for none).
        #[arg(long, default_value = DEFAULT_ROOT_FOLDER)]
        root_folder: String,
        /// Output file (standard output when absent).
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

/// Runs a `netrun generate` command.
pub fn run(cmd: &GenerateCommand) -> Result<()> {
    let GenerateCommand::Sphereface {
        depth,
        classes,
        deploy,
        solver,
        source,
        root_folder,
        output,
    } = cmd;
    let file = match (deploy, solver) {
        (true, _) => SphereFaceFile::Deploy,
        (_, true) => SphereFaceFile::Solver,
        _ => SphereFaceFile::Train,
    };
    let text = sphereface(&SphereFace {
        depth: *depth,
        classes: *classes,
        file,
        source: source.clone(),
        root_folder: root_folder.clone(),
    })?;
    match output {
        None => print!("{text}"),
        Some(path) => std::fs::write(path, text).map_err(|e| Error::Io {
            path: path.clone(),
            message: e.to_string(),
        })?,
    }
    Ok(())
}
