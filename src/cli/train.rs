//! `netrun train` and `netrun test`.

use super::Env;
use clap::ValueEnum;
use netrun::train::{SignalEffect, TrainOptions};
use std::path::PathBuf;

/// What a signal does after the current iteration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SignalArg {
    Snapshot,
    Stop,
    None,
}

impl From<SignalArg> for SignalEffect {
    fn from(s: SignalArg) -> SignalEffect {
        match s {
            SignalArg::Snapshot => SignalEffect::Snapshot,
            SignalArg::Stop => SignalEffect::Stop,
            SignalArg::None => SignalEffect::None,
        }
    }
}

#[derive(clap::Args)]
pub struct TrainArgs {
    /// A solver file.
    solver: PathBuf,
    /// Resume from a snapshot: `<prefix>_iter_N` or one of its `.safetensors` files.
    #[arg(long, value_name = "SNAPSHOT")]
    snapshot: Option<PathBuf>,
    /// Initialise from weights files (same-named blobs; comma-separated or repeated).
    #[arg(long, value_name = "FILE", value_delimiter = ',')]
    weights: Vec<PathBuf>,
    /// What SIGINT and SIGTERM do after the current iteration.
    #[arg(long, value_enum, default_value = "stop")]
    sigint_effect: SignalArg,
    /// What SIGHUP does after the current iteration.
    #[arg(long, value_enum, default_value = "snapshot")]
    sighup_effect: SignalArg,
    /// Replaces the batch size of data and input layers.
    #[arg(long, value_name = "N")]
    batch: Option<usize>,
    /// Train on the CPU even when the solver says `solver_mode: GPU`.
    #[arg(long)]
    cpu: bool,
}

#[derive(clap::Args)]
pub struct TestArgs {
    /// A net file (`.net`, `.prototxt`).
    net: PathBuf,
    /// Weights files (comma-separated or repeated).
    #[arg(long, value_name = "FILE", value_delimiter = ',', required = true)]
    weights: Vec<PathBuf>,
    /// Batches to run.
    #[arg(long, default_value_t = 50)]
    iterations: usize,
    /// Replaces the batch size of data and input layers.
    #[arg(long, value_name = "N")]
    batch: Option<usize>,
}

pub fn train(a: &TrainArgs, env: &Env) -> netrun::Result<()> {
    netrun::train::train_command(
        &a.solver,
        a.snapshot.as_deref(),
        &a.weights,
        TrainOptions {
            sigint_effect: a.sigint_effect.into(),
            sighup_effect: a.sighup_effect.into(),
            batch: a.batch,
            extra_data_dirs: env.extra_data_dirs(),
            cpu: a.cpu,
            ..Default::default()
        },
    )
}

pub fn test(a: &TestArgs, env: &Env) -> netrun::Result<()> {
    netrun::train::test_command(
        &a.net,
        &a.weights,
        a.iterations,
        &TrainOptions {
            batch: a.batch,
            extra_data_dirs: env.extra_data_dirs(),
            ..Default::default()
        },
    )
    .map(|_| ())
}
