//! `netrun train` and `netrun test`: Caffe's `Solver::Solve` and `caffe test`.
//!
//! A [`Trainer`] builds the solver's TRAIN net and its TEST nets. As Caffe's
//! `ShareTrainedLayersWith`, a test-net layer with the name of a train-net
//! layer uses that layer's learnable values: right before each test the
//! test-net blobs take the train-net values by reference
//! ([`Blob::share_data`](crate::blob::Blob::share_data), no copy) and drop them right after, so the solver's
//! next update writes its own values in place. A test layer that rewrites its
//! weights (MarginInnerProduct normalises rows) gets a private copy on write
//! and leaves the train net's values alone.
//!
//! Per iteration, as Caffe: clear diffs; test when `iter % test_interval == 0`
//! (and `iter > 0` or `test_initialization`); `iter_size` forward/backward
//! passes accumulating diffs; the loss averaged over them and smoothed over
//! `average_loss` iterations; display; the solver update ([`crate::solver`]);
//! `iter += 1`; signal requests; periodic snapshot. After `max_iter`, or a stop
//! request, the final snapshot (`snapshot_after_train`, unless one was just
//! written) and, when `iter` falls on them, a last display and test.
//!
//! Seeds: `random_seed` seeds the train net (fillers, then dropout, DummyData
//! and the like) and its data layers' own generators (shuffling, `rand_skip`,
//! crops and mirrors); test net k gets `seed + 1 + k`. Caffe's −1 (seed from
//! the clock) becomes [`DEFAULT_SEED`], so two runs of one solver on the same
//! thread count are identical.
//!
//! Divergence: after every forward, a non-finite loss or output or a layer's
//! [`Layer::health`](crate::layers::Layer::health) note, and after backward a
//! non-finite learnable diff, stop training with an error naming the iteration,
//! the layer and the blob and pointing at the last good snapshot; nothing is
//! written after that.

mod command;
pub mod log;
pub mod snapshot;
mod state;

pub use command::{evaluate, test_command, train_command};
pub use state::load_weights;

use crate::error::{Error, Result};
use crate::graph::{BuildOptions, Graph, ParamOwner};
use crate::net::Net;
use crate::netdef::Phase;
use crate::solver::Solver;
use crate::solverdef::{learning_rate, NetSpec, SolverDef};
use log::{fmt_g, Log, Record, Smoother};
use rayon::prelude::*;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

mod checks;
mod outputs;
mod trainer;

pub use outputs::*;

/// The seed used when the solver's `random_seed` is negative (Caffe: the clock).
pub const DEFAULT_SEED: u64 = 1;

/// What a signal asks for (`--sigint-effect`, `--sighup-effect`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalEffect {
    Snapshot,
    Stop,
    None,
}

/// Signal flags, raised by handlers and read (and lowered) between iterations.
#[derive(Debug, Clone, Default)]
pub struct Signals {
    /// SIGINT or SIGTERM.
    pub interrupt: Arc<AtomicBool>,
    /// SIGHUP.
    pub hangup: Arc<AtomicBool>,
}

impl Signals {
    /// Installs handlers: SIGINT and SIGTERM raise `interrupt` (a second one
    /// while the first is pending ends the process at once), SIGHUP raises `hangup`.
    pub fn install() -> Result<Signals> {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        use signal_hook::flag;
        let s = Signals::default();
        let err = |e: std::io::Error| Error::Other(format!("cannot install signal handlers: {e}"));
        for sig in [SIGINT, SIGTERM] {
            flag::register_conditional_shutdown(sig, 130, s.interrupt.clone()).map_err(err)?;
            flag::register(sig, s.interrupt.clone()).map_err(err)?;
        }
        flag::register(SIGHUP, s.hangup.clone()).map_err(err)?;
        Ok(s)
    }
}

/// Which net a [`Feed`] is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Train,
    Test(usize),
}

/// When a feeder is called: before the forward pass `pass` of iteration `iter`
/// (a train pass of `iter_size`, or a test iteration).
#[derive(Debug, Clone, Copy)]
pub struct Feed {
    pub role: Role,
    pub iter: u64,
    pub pass: usize,
}

/// Fills a net's Input tops before a forward pass (tests, embedding programs).
pub type Feeder = Box<dyn FnMut(&mut Net, &Feed) -> Result<()> + Send>;

/// Command-line choices besides the solver.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    pub sigint_effect: SignalEffect,
    pub sighup_effect: SignalEffect,
    /// `--batch`: replaces the batch size of data and input layers.
    pub batch: Option<usize>,
    /// `--input-shape`: per-sample shapes of data tops whose source cannot be read.
    pub input_shapes: HashMap<String, Vec<usize>>,
    /// Folders searched for relative data paths after the net's folder and the
    /// working directory (the command line passes `NETRUN_DATA_DIR`).
    pub extra_data_dirs: Vec<PathBuf>,
    /// `--cpu`: train on the CPU even when the solver says `solver_mode: GPU`
    /// (which [`train_command`] otherwise refuses while there is no device backend).
    pub cpu: bool,
}

impl Default for TrainOptions {
    /// Caffe's defaults: SIGINT stops, SIGHUP snapshots.
    fn default() -> Self {
        TrainOptions {
            sigint_effect: SignalEffect::Stop,
            sighup_effect: SignalEffect::Snapshot,
            batch: None,
            input_shapes: HashMap::new(),
            extra_data_dirs: Vec::new(),
            cpu: false,
        }
    }
}

/// A test net with its pass count and the train-net blobs it copies.
pub struct TestNet {
    pub net: Net,
    pub iters: usize,
    /// (test param, train param) pairs copied before each test.
    share: Vec<(usize, usize)>,
}

/// The averaged outputs of one test.
#[derive(Debug, Clone, PartialEq)]
pub struct TestScores {
    /// Mean weighted loss, when `test_compute_loss`.
    pub loss: Option<f64>,
    /// (output name, mean value, loss weight), one entry per output element.
    pub outputs: Vec<(String, f64, f32)>,
}

impl TestScores {
    /// The mean of output `name` (its first element).
    pub fn get(&self, name: &str) -> Option<f64> {
        self.outputs.iter().find(|o| o.0 == name).map(|o| o.1)
    }
}

/// How [`Trainer::solve`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Finished,
    Stopped,
}

pub struct Trainer {
    pub def: SolverDef,
    pub net: Net,
    pub test_nets: Vec<TestNet>,
    pub solver: Solver,
    /// Completed iterations.
    pub iter: u64,
    pub prefix: String,
    pub seed: u64,
    pub log: Log,
    pub signals: Signals,
    /// The results of the latest test of each test net.
    pub last_tests: Vec<Option<TestScores>>,
    /// The smoothed training loss.
    pub smoothed: Smoother,
    opts: TrainOptions,
    feeder: Option<Feeder>,
    started: Instant,
    last_display: (Instant, u64),
    last_snapshot: Option<PathBuf>,
    resumed_from: Option<u64>,
    stop: bool,
}

/// Builds one net of the solver; `seed` seeds its stream and its data layers.
pub fn build_net(def: &SolverDef, spec: &NetSpec, opts: &TrainOptions, seed: u64) -> Result<Net> {
    let loaded = def.load_net(spec)?;
    let mut b = BuildOptions::for_phase(loaded.state.phase);
    b.context.seed = seed;
    b.context.batch = opts.batch;
    b.context.input_shapes = opts.input_shapes.clone();
    b.context.data_dirs = crate::data::data_dirs(&loaded.file, &opts.extra_data_dirs);
    b.state = loaded.state;
    Net::new(Graph::build(&loaded.net, &b)?, seed)
}

/// Whether `iter` is a multiple of a positive interval (0 or less: never).
fn every(iter: u64, interval: i32) -> bool {
    interval > 0 && iter.is_multiple_of(interval as u64)
}

/// Caffe's `ShareTrainedLayersWith`: pairs of blobs of same-named layers.
fn share_map(train: &Net, test: &Net) -> Result<Vec<(usize, usize)>> {
    let mut pairs = Vec::new();
    for (n, node) in test.graph.nodes.iter().enumerate() {
        let Some(m) = train.graph.node(&node.def.name) else {
            continue;
        };
        let (ours, theirs) = (&test.param_ids[n], &train.param_ids[m]);
        if ours.is_empty() {
            continue;
        }
        if ours.len() != theirs.len() {
            return Err(Error::Other(format!(
                "layer `{}` has {} learnable blobs in the test net but {} in the train net",
                node.def.name,
                ours.len(),
                theirs.len()
            )));
        }
        for (i, (&a, &b)) in ours.iter().zip(theirs).enumerate() {
            let (sa, sb) = (test.params[a].shape(), train.params[b].shape());
            if sa != sb {
                return Err(Error::Other(format!(
                    "learnable blob {i} of layer `{}` is {} in the test net but {} in the train net",
                    node.def.name,
                    crate::shape::fmt_shape(sa),
                    crate::shape::fmt_shape(sb)
                )));
            }
            if node.param_owners[i] == ParamOwner::Own {
                pairs.push((a, b));
            }
        }
    }
    Ok(pairs)
}
