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
pub mod manifest;
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

/// The seed used when the solver's `random_seed` is negative (Caffe: the clock).
pub const DEFAULT_SEED: u64 = 1;

/// What a signal asks for (`--sigint-effect`, `--sighup-effect`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
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
    /// Fault injection for tests: abort the process (as `kill -9` would
    /// stop it, nothing cleaned up) at the N-th step of snapshot writing
    /// (each file: after its temporary is synced, after its rename).
    pub abort_at_write_step: Option<u64>,
}

impl Default for TrainOptions {
    /// Caffe's defaults: SIGINT stops, SIGHUP snapshots.
    fn default() -> Self {
        TrainOptions {
            sigint_effect: SignalEffect::Stop,
            sighup_effect: SignalEffect::Snapshot,
            batch: None,
            input_shapes: HashMap::new(),
            abort_at_write_step: None,
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
    /// This run's identity, recorded in its snapshot sets.
    run_id: String,
    /// Snapshot write steps taken (for `abort_at_write_step`).
    write_steps: u64,
    /// During a test phase: the test nets' snapshot entries as of its start,
    /// which a snapshot taken meanwhile records instead of mid-test positions.
    test_start_meta: Option<std::collections::BTreeMap<String, String>>,
}

/// Builds one net of the solver; `seed` seeds its stream and its data layers.
pub fn build_net(def: &SolverDef, spec: &NetSpec, opts: &TrainOptions, seed: u64) -> Result<Net> {
    let loaded = def.load_net(spec)?;
    let mut b = BuildOptions::for_phase(loaded.state.phase);
    b.context.seed = seed;
    b.context.batch = opts.batch;
    b.context.input_shapes = opts.input_shapes.clone();
    b.context.data_dirs = crate::layers::data_dirs(&loaded.file);
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
                    crate::layers::fmt_shape(sa),
                    crate::layers::fmt_shape(sb)
                )));
            }
            if node.param_owners[i] == ParamOwner::Own {
                pairs.push((a, b));
            }
        }
    }
    Ok(pairs)
}

/// The node that owns each learnable blob (by param index).
pub fn owner_nodes(net: &Net) -> HashMap<usize, usize> {
    let mut owners = HashMap::new();
    for (n, ids) in net.param_ids.iter().enumerate() {
        for &p in ids {
            owners.entry(p).or_insert(n);
        }
    }
    owners
}

/// Each net output element: (blob name, loss weight, value).
pub fn output_values(net: &Net) -> Vec<(String, f32, f32)> {
    let mut weight: HashMap<usize, f32> = HashMap::new();
    for node in &net.graph.nodes {
        for (t, &id) in node.tops.iter().enumerate() {
            weight.insert(id, node.loss_weights.get(t).copied().unwrap_or(0.0));
        }
    }
    let mut out = Vec::new();
    for &id in &net.graph.outputs {
        let name = &net.graph.blobs[id].name;
        let w = weight.get(&id).copied().unwrap_or(0.0);
        for &v in net.blobs[id].data() {
            out.push((name.clone(), w, v));
        }
    }
    out
}

/// `    name = v (* w = w·v loss)` tail: the loss part when the weight is non-zero.
pub(crate) fn loss_note(w: f32, v: f64) -> String {
    if w != 0.0 {
        format!(" (* {} = {} loss)", fmt_g(w as f64), fmt_g(w as f64 * v))
    } else {
        String::new()
    }
}

/// Output names for the JSON record: `name`, or `name[k]` for multi-element outputs.
fn record_names(values: &[(String, f64)]) -> Vec<(String, f64)> {
    let mut count: HashMap<&str, usize> = HashMap::new();
    for (n, _) in values {
        *count.entry(n).or_default() += 1;
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    values
        .iter()
        .map(|(n, v)| {
            if count[n.as_str()] > 1 {
                let k = seen.entry(n).or_default();
                *k += 1;
                (format!("{n}[{}]", *k - 1), *v)
            } else {
                (n.clone(), *v)
            }
        })
        .collect()
}

fn non_finite_kind(values: &[f32]) -> Option<&'static str> {
    values
        .par_chunks(1 << 14)
        .find_any(|c| c.iter().any(|v| !v.is_finite()))
        .and_then(|c| c.iter().find(|v| !v.is_finite()))
        .map(|v| {
            if v.is_nan() {
                "NaN"
            } else {
                "an infinite value"
            }
        })
}

/// Where a non-finite forward came from: the first layer writing a non-finite top.
fn locate_forward(net: &Net) -> Option<String> {
    for node in &net.graph.nodes {
        for &t in &node.tops {
            if let Some(kind) = non_finite_kind(net.blobs[t].data()) {
                return Some(format!(
                    "{} wrote {kind} into top `{}`",
                    node.def.describe(),
                    net.graph.blobs[t].name
                ));
            }
        }
    }
    None
}

impl Trainer {
    /// Builds the nets and the solver; output goes to `log`.
    pub fn new(def: SolverDef, opts: TrainOptions, log: Log) -> Result<Trainer> {
        let p = &def.params;
        let seed = if p.random_seed >= 0 {
            p.random_seed as u64
        } else {
            DEFAULT_SEED
        };
        let net = build_net(&def, &def.train_net, &opts, seed)?;
        let mut test_nets = Vec::new();
        for (k, spec) in def.test_nets.iter().enumerate() {
            let mut tnet = build_net(&def, spec, &opts, seed.wrapping_add(1 + k as u64))?;
            let share = share_map(&net, &tnet)?;
            // The test net's own initial values of shared blobs are never read: free them now.
            for &(a, b) in &share {
                tnet.params[a].share_data(&net.params[b]);
                tnet.params[a].release_shared_data();
            }
            test_nets.push(TestNet {
                net: tnet,
                iters: spec.test_iter.unwrap_or(0).max(0) as usize,
                share,
            });
        }
        let solver = Solver::new(p, &net)?;
        let prefix = def.snapshot_prefix();
        let now = Instant::now();
        Ok(Trainer {
            last_tests: vec![None; test_nets.len()],
            smoothed: Smoother::new(p.average_loss.max(1) as usize),
            def,
            net,
            test_nets,
            solver,
            iter: 0,
            prefix,
            seed,
            log,
            signals: Signals::default(),
            opts,
            feeder: None,
            started: now,
            last_display: (now, 0),
            last_snapshot: None,
            resumed_from: None,
            stop: false,
            run_id: manifest::new_run_id(),
            write_steps: 0,
            test_start_meta: None,
        })
    }

    /// Calls `f` before every forward pass of every net.
    pub fn set_feeder(&mut self, f: Feeder) {
        self.feeder = Some(f);
    }

    /// The learning rate of the current iteration.
    pub fn rate(&self) -> f64 {
        learning_rate(&self.def.params, self.iter)
    }

    /// The base name of the latest snapshot written or resumed from.
    pub fn last_snapshot(&self) -> Option<&Path> {
        self.last_snapshot.as_deref()
    }

    fn feed(&mut self, role: Role, pass: usize) -> Result<()> {
        let feed = Feed {
            role,
            iter: self.iter,
            pass,
        };
        let net = match role {
            Role::Train => &mut self.net,
            Role::Test(k) => &mut self.test_nets[k].net,
        };
        match &mut self.feeder {
            Some(f) => f(net, &feed),
            None => Ok(()),
        }
    }

    /// Caffe's `Solve`: trains to `max_iter` (from the current iteration), then
    /// snapshots, displays and tests as Caffe does at the end.
    pub fn solve(&mut self) -> Result<Outcome> {
        let result = self.solve_inner();
        // On error too: the progress bar must not stay on screen above the message.
        self.log.finish();
        result
    }

    fn solve_inner(&mut self) -> Result<Outcome> {
        let p = self.def.params.clone();
        self.open_logs()?;
        for t in manifest::remove_stale_temporaries(&self.prefix) {
            self.log.line(&format!(
                "Removed {}, left by an interrupted snapshot",
                t.display()
            ));
        }
        self.log.line(&format!("Solving {}", self.net.graph.name));
        self.log
            .line(&format!("Learning Rate Policy: {}", p.lr_policy));
        self.log.start_at(self.iter);
        self.started = Instant::now();
        self.last_display = (self.started, self.iter);
        let start = self.iter;
        let max = p.max_iter.max(0) as u64;
        self.step(max.saturating_sub(self.iter))?;
        let periodic = every(self.iter, p.snapshot);
        let ran = self.iter > start || self.resumed_from.is_none();
        if p.snapshot_after_train && !periodic && ran {
            self.snapshot()?;
        }
        if self.stop {
            self.log.line("Optimization stopped early.");
            return Ok(Outcome::Stopped);
        }
        if every(self.iter, p.display) {
            self.feed(Role::Train, 0)?;
            let loss = self.net.forward()?;
            self.smoothed.push(loss);
            self.log.line(&format!(
                "Iteration {}, loss = {}",
                self.iter,
                fmt_g(self.smoothed.value)
            ));
        }
        if every(self.iter, p.test_interval) {
            self.test_all()?;
        }
        self.log.line("Optimization Done.");
        Ok(if self.stop {
            Outcome::Stopped
        } else {
            Outcome::Finished
        })
    }

    /// `<prefix>.log` (glog-prefixed lines) and `<prefix>.log.jsonl`, appended
    /// to; their folder (the snapshots') is created if missing.
    fn open_logs(&mut self) -> Result<()> {
        let text = PathBuf::from(format!("{}.log", self.prefix));
        if let Some(dir) = text.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.is_dir() {
                std::fs::create_dir_all(dir).map_err(|e| Error::Io {
                    path: dir.to_path_buf(),
                    message: e.to_string(),
                })?;
                self.log
                    .line(&format!("Created snapshot folder {}", dir.display()));
            }
        }
        let open = |path: PathBuf| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| Error::Io {
                    path,
                    message: e.to_string(),
                })
        };
        self.log.set_text(open(text)?);
        self.log
            .set_jsonl(open(PathBuf::from(format!("{}.log.jsonl", self.prefix)))?);
        Ok(())
    }

    /// Runs up to `iters` iterations (fewer when a stop is requested).
    pub fn step(&mut self, iters: u64) -> Result<()> {
        let p = self.def.params.clone();
        let stop_at = self.iter + iters;
        let iter_size = p.iter_size.max(1) as usize;
        while self.iter < stop_at && !self.stop {
            self.net.clear_param_diffs();
            if every(self.iter, p.test_interval) && (self.iter > 0 || p.test_initialization) {
                self.test_all()?;
                if self.stop {
                    break;
                }
            }
            let display = every(self.iter, p.display);
            let mut loss = 0.0f64;
            for pass in 0..iter_size {
                self.feed(Role::Train, pass)?;
                let l = self.net.forward()?;
                self.check_forward(l)?;
                self.net.backward()?;
                loss += l;
            }
            loss /= iter_size as f64;
            self.smoothed.push(loss);
            if display {
                self.display();
            }
            self.check_diffs()?;
            let rate = self.rate();
            if display {
                self.log
                    .line(&format!("Iteration {}, lr = {}", self.iter, fmt_g(rate)));
            }
            let info = self
                .solver
                .apply_update(&mut self.net, rate as f32, self.iter);
            if let Some((norm, scale)) = info.clipped {
                self.log.line(&format!(
                    "Gradient clipping: scaling down gradients (L2 norm {} > {}) by scale factor {}",
                    fmt_g(norm),
                    fmt_g(p.clip_gradients as f64),
                    fmt_g(scale as f64)
                ));
            }
            self.iter += 1;
            self.log.progress(self.iter, self.smoothed.value);
            let action = self.requested_action();
            if (every(self.iter, p.snapshot)) || action == SignalEffect::Snapshot {
                self.snapshot()?;
            }
            if action == SignalEffect::Stop {
                self.stop = true;
            }
        }
        Ok(())
    }

    /// Caffe's display block: smoothed loss, speed and each train output.
    fn display(&mut self) {
        let (since, from) = self.last_display;
        let lapse = since.elapsed().as_secs_f64();
        let per_s = (self.iter - from) as f64 / lapse.max(1e-9);
        let shown = self.def.params.display;
        let head = if self.iter > from {
            format!(
                "Iteration {} ({} iter/s, {}s/{shown} iters), loss = {}",
                self.iter,
                fmt_g(per_s),
                fmt_g(lapse),
                fmt_g(self.smoothed.value)
            )
        } else {
            format!(
                "Iteration {}, loss = {}",
                self.iter,
                fmt_g(self.smoothed.value)
            )
        };
        self.log.line(&head);
        let outputs = output_values(&self.net);
        for (k, (name, w, v)) in outputs.iter().enumerate() {
            self.log.line(&format!(
                "    Train net output #{k}: {name} = {}{}",
                fmt_g(*v as f64),
                loss_note(*w, *v as f64)
            ));
        }
        let values: Vec<(String, f64)> =
            outputs.into_iter().map(|(n, _, v)| (n, v as f64)).collect();
        self.log.record(&Record {
            iter: self.iter,
            phase: Phase::Train,
            net: None,
            lr: self.rate() as f32 as f64,
            seconds: self.started.elapsed().as_secs_f64(),
            loss: Some(self.smoothed.value),
            outputs: record_names(&values),
        });
        self.last_display = (Instant::now(), self.iter);
    }

    /// Caffe's `GetRequestedAction`: an interrupt first, then a hangup.
    fn requested_action(&mut self) -> SignalEffect {
        if self.signals.interrupt.swap(false, Ordering::SeqCst) {
            return self.opts.sigint_effect;
        }
        if self.signals.hangup.swap(false, Ordering::SeqCst) {
            return self.opts.sighup_effect;
        }
        SignalEffect::None
    }

    fn diverged(&self, what: String) -> Error {
        let last = match &self.last_snapshot {
            Some(b) => format!(
                "the last good snapshot is `{}` (resume with `--snapshot {}`)",
                b.display(),
                b.display()
            ),
            None => "no snapshot was written by this run".to_string(),
        };
        Error::Other(format!(
            "training diverged at iteration {}: {what}\n  {last}; nothing was saved after it",
            self.iter
        ))
    }

    /// Stops on a non-finite loss or output, or on a layer's health note.
    fn check_forward(&self, loss: f64) -> Result<()> {
        let outputs_ok = self
            .net
            .graph
            .outputs
            .iter()
            .all(|&id| non_finite_kind(self.net.blobs[id].data()).is_none());
        if !loss.is_finite() || !outputs_ok {
            let place = locate_forward(&self.net)
                .unwrap_or_else(|| "a net output is not finite".to_string());
            return Err(self.diverged(format!("{place} (loss {})", fmt_g(loss))));
        }
        for node in &self.net.graph.nodes {
            if let Some(note) = node.layer.health() {
                return Err(self.diverged(format!("{}: {note}", node.def.describe())));
            }
        }
        Ok(())
    }

    /// Stops on a non-finite learnable diff.
    pub fn check_diffs(&self) -> Result<()> {
        let owners = owner_nodes(&self.net);
        for l in &self.net.learnables {
            if let Some(kind) = non_finite_kind(self.net.params[l.param].diff()) {
                let layer = owners
                    .get(&l.param)
                    .map(|&n| self.net.graph.nodes[n].def.describe())
                    .unwrap_or_default();
                return Err(self.diverged(format!(
                    "the diff of learnable blob `{}` of {layer} holds {kind} after backward",
                    l.name
                )));
            }
        }
        Ok(())
    }

    /// Tests every test net (Caffe's `TestAll`).
    pub fn test_all(&mut self) -> Result<()> {
        // A snapshot requested during the tests records the test nets as they
        // were before them, so that a resumed run repeats this test exactly.
        self.test_start_meta = Some(self.test_nets_meta());
        for k in 0..self.test_nets.len() {
            if self.stop {
                break;
            }
            let scores = self.test(k)?;
            self.last_tests[k] = scores;
        }
        if !self.stop {
            self.test_start_meta = None;
        }
        Ok(())
    }

    /// One test of test net `k` on the train net's current values; `None`
    /// when interrupted by a stop request.
    fn test(&mut self, k: usize) -> Result<Option<TestScores>> {
        self.log
            .line(&format!("Iteration {}, Testing net (#{k})", self.iter));
        let tn = &mut self.test_nets[k];
        for &(a, b) in &tn.share {
            tn.net.params[a].share_data(&self.net.params[b]);
        }
        let result = self.test_passes(k);
        let tn = &mut self.test_nets[k];
        for &(a, _) in &tn.share {
            tn.net.params[a].release_shared_data();
        }
        result
    }

    fn test_passes(&mut self, k: usize) -> Result<Option<TestScores>> {
        let iters = self.test_nets[k].iters;
        let mut sums: Vec<(String, f32, f64)> = Vec::new();
        let mut loss = 0.0f64;
        for i in 0..iters {
            match self.requested_action() {
                SignalEffect::Stop => {
                    self.stop = true;
                    self.log.line("Test interrupted.");
                    return Ok(None);
                }
                SignalEffect::Snapshot => {
                    self.snapshot()?;
                }
                SignalEffect::None => {}
            }
            self.feed(Role::Test(k), i)?;
            let net = &mut self.test_nets[k].net;
            loss += net.forward()?;
            let values = output_values(net);
            if i == 0 {
                sums = values
                    .into_iter()
                    .map(|(n, w, v)| (n, w, v as f64))
                    .collect();
            } else {
                for (s, (_, _, v)) in sums.iter_mut().zip(values) {
                    s.2 += v as f64;
                }
            }
        }
        let n = iters.max(1) as f64;
        let compute_loss = self.def.params.test_compute_loss;
        if compute_loss {
            self.log.line(&format!("Test loss: {}", fmt_g(loss / n)));
        }
        let outputs: Vec<(String, f64, f32)> = sums
            .into_iter()
            .map(|(name, w, s)| (name, s / n, w))
            .collect();
        for (i, (name, mean, w)) in outputs.iter().enumerate() {
            self.log.line(&format!(
                "    Test net output #{i}: {name} = {}{}",
                fmt_g(*mean),
                loss_note(*w, *mean)
            ));
        }
        let values: Vec<(String, f64)> = outputs.iter().map(|o| (o.0.clone(), o.1)).collect();
        self.log.record(&Record {
            iter: self.iter,
            phase: Phase::Test,
            net: Some(k),
            lr: self.rate() as f32 as f64,
            seconds: self.started.elapsed().as_secs_f64(),
            loss: compute_loss.then_some(loss / n),
            outputs: record_names(&values),
        });
        Ok(Some(TestScores {
            loss: compute_loss.then_some(loss / n),
            outputs,
        }))
    }
}
