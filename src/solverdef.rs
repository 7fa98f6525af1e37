//! Solver files: Caffe's `SolverParameter`, read and checked like a net file.
//!
//! A solver names one train net and zero or more test nets, the learning-rate
//! schedule ([`learning_rate`]) and the update rule (`type`). Reading one
//! ([`parse_solver`]) collects every problem at once: unknown fields, values
//! Caffe would reject at start-up or at its first iteration, and net paths
//! that do not exist.
//!
//! Net paths (`net`, `train_net`, `test_net`) are tried relative to the
//! solver file's folder first, then to the working directory (Caffe's only
//! base); [`ResolvedPath`] records which one matched.
//!
//! `snapshot_format: BINARYPROTO` also writes each snapshot's weights as
//! `<prefix>_iter_N.caffemodel` (Caffe's default format; netrun's own files
//! are safetensors and are always written); `HDF5` is accepted, not written.
//! Accepted but not acted on today: `solver_mode: GPU` (netrun runs on
//! the CPU), `device_id`, `layer_wise_reduce`.

use crate::error::{did_you_mean, Diagnostic, Error, Result};
use crate::netdef::{self, NetDef, NetState, Phase};
use crate::proto::de::from_block;
use crate::proto::{self, Block, Document, Value};
use crate::source::{SourceFile, Span};
use serde::Deserialize;
use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

/// `SolverParameter.SnapshotFormat`: HDF5 = 0, BINARYPROTO = 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum SnapshotFormat {
    #[serde(rename = "HDF5")]
    Hdf5,
    #[serde(rename = "BINARYPROTO")]
    BinaryProto,
}

/// `SolverParameter.SolverMode`: CPU = 0, GPU = 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum SolverMode {
    #[serde(rename = "CPU")]
    Cpu,
    #[serde(rename = "GPU")]
    Gpu,
}

/// The deprecated `solver_type` enum; Caffe upgrades it to the `type` string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum SolverType {
    #[serde(rename = "SGD")]
    Sgd,
    #[serde(rename = "NESTEROV")]
    Nesterov,
    #[serde(rename = "ADAGRAD")]
    AdaGrad,
    #[serde(rename = "RMSPROP")]
    RmsProp,
    #[serde(rename = "ADADELTA")]
    AdaDelta,
    #[serde(rename = "ADAM")]
    Adam,
}

impl SolverType {
    /// The `type` string this value stands for.
    pub fn type_name(self) -> &'static str {
        SOLVER_TYPES[self as usize]
    }
}

/// Valid `type` strings, in `solver_type` order.
pub const SOLVER_TYPES: &[&str] = &["SGD", "Nesterov", "AdaGrad", "RMSProp", "AdaDelta", "Adam"];

/// Valid `lr_policy` strings.
pub const LR_POLICIES: &[&str] = &[
    "fixed",
    "step",
    "exp",
    "inv",
    "multistep",
    "poly",
    "sigmoid",
];

/// Caffe's learning-rate policies (`lr_policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LrPolicy {
    Fixed,
    Step,
    Exp,
    Inv,
    MultiStep,
    Poly,
    Sigmoid,
}

impl LrPolicy {
    pub fn from_name(name: &str) -> Option<LrPolicy> {
        use LrPolicy::*;
        [Fixed, Step, Exp, Inv, MultiStep, Poly, Sigmoid]
            .into_iter()
            .find(|p| p.name() == name)
    }

    pub fn name(self) -> &'static str {
        LR_POLICIES[self as usize]
    }
}

/// Caffe's `SolverParameter`, with Caffe's names and defaults. Fields Caffe
/// declares without a default (`base_lr`, `lr_policy`, `gamma`, `power`,
/// `stepsize`, `max_iter`, ...) read as protobuf's zero or empty string;
/// whether they were written is asked of the solver block ([`SolverDef::has`]).
/// The three inline net blocks stay raw and are read by [`netdef::parse_net_block`].
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SolverParams {
    pub net: Option<String>,
    #[serde(skip)]
    pub net_param: Option<Block>,
    pub train_net: Option<String>,
    pub test_net: Vec<String>,
    #[serde(skip)]
    pub train_net_param: Option<Block>,
    #[serde(skip)]
    pub test_net_param: Vec<Block>,
    pub train_state: Option<NetState>,
    pub test_state: Vec<NetState>,
    pub test_iter: Vec<i32>,
    pub test_interval: i32,
    pub test_compute_loss: bool,
    pub test_initialization: bool,
    pub base_lr: f32,
    pub display: i32,
    pub average_loss: i32,
    pub max_iter: i32,
    pub iter_size: i32,
    pub lr_policy: String,
    pub gamma: f32,
    pub power: f32,
    pub momentum: f32,
    pub weight_decay: f32,
    pub regularization_type: String,
    pub stepsize: i32,
    pub stepvalue: Vec<i32>,
    /// Clip the global L2 norm of the gradient to this; negative: off.
    pub clip_gradients: f32,
    pub snapshot: i32,
    pub snapshot_prefix: String,
    pub snapshot_diff: bool,
    /// None (not in the file): safetensors only. BINARYPROTO: also the
    /// weights as a `.caffemodel`. HDF5: accepted, not written.
    pub snapshot_format: Option<SnapshotFormat>,
    /// Accepted for Caffe compatibility; netrun runs on the CPU today.
    pub solver_mode: SolverMode,
    pub device_id: i32,
    /// Negative: seeded from the clock.
    pub random_seed: i64,
    /// The update rule, one of [`SOLVER_TYPES`]; set from `solver_type` when only that is given.
    #[serde(rename = "type")]
    pub type_name: String,
    pub delta: f32,
    pub momentum2: f32,
    pub rms_decay: f32,
    pub debug_info: bool,
    pub snapshot_after_train: bool,
    /// Deprecated; see [`SolverType`].
    pub solver_type: Option<SolverType>,
    pub layer_wise_reduce: bool,
    /// Caffemodel files to initialise the train net from, in order.
    pub weights: Vec<String>,
}

impl Default for SolverParams {
    fn default() -> Self {
        SolverParams {
            net: None,
            net_param: None,
            train_net: None,
            test_net: vec![],
            train_net_param: None,
            test_net_param: vec![],
            train_state: None,
            test_state: vec![],
            test_iter: vec![],
            test_interval: 0,
            test_compute_loss: false,
            test_initialization: true,
            base_lr: 0.0,
            display: 0,
            average_loss: 1,
            max_iter: 0,
            iter_size: 1,
            lr_policy: String::new(),
            gamma: 0.0,
            power: 0.0,
            momentum: 0.0,
            weight_decay: 0.0,
            regularization_type: "L2".into(),
            stepsize: 0,
            stepvalue: vec![],
            clip_gradients: -1.0,
            snapshot: 0,
            snapshot_prefix: String::new(),
            snapshot_diff: false,
            snapshot_format: None,
            solver_mode: SolverMode::Gpu,
            device_id: 0,
            random_seed: -1,
            type_name: "SGD".into(),
            delta: 1e-8,
            momentum2: 0.999,
            rms_decay: 0.99,
            debug_info: false,
            snapshot_after_train: true,
            solver_type: None,
            layer_wise_reduce: true,
            weights: vec![],
        }
    }
}

/// Every `SolverParameter` field name, for suggestions and for [`looks_like_solver`].
pub const SOLVER_FIELDS: &[&str] = &[
    "net",
    "net_param",
    "train_net",
    "test_net",
    "train_net_param",
    "test_net_param",
    "train_state",
    "test_state",
    "test_iter",
    "test_interval",
    "test_compute_loss",
    "test_initialization",
    "base_lr",
    "display",
    "average_loss",
    "max_iter",
    "iter_size",
    "lr_policy",
    "gamma",
    "power",
    "momentum",
    "weight_decay",
    "regularization_type",
    "stepsize",
    "stepvalue",
    "clip_gradients",
    "snapshot",
    "snapshot_prefix",
    "snapshot_diff",
    "snapshot_format",
    "solver_mode",
    "device_id",
    "random_seed",
    "type",
    "delta",
    "momentum2",
    "rms_decay",
    "debug_info",
    "snapshot_after_train",
    "solver_type",
    "layer_wise_reduce",
    "weights",
];

const INLINE_NETS: &[&str] = &["net_param", "train_net_param", "test_net_param"];
const NET_ONLY_FIELDS: &[&str] = &[
    "layer",
    "layers",
    "input",
    "input_dim",
    "input_shape",
    "force_backward",
    "state",
    "name",
];

/// Whether a file's top level is a solver rather than a net: no layers, and
/// at least one field only a solver has (`debug_info` is shared by both).
pub fn looks_like_solver(root: &Block) -> bool {
    let has_layers = root.get("layer").is_some() || root.get("layers").is_some();
    !has_layers
        && root
            .fields
            .iter()
            .any(|f| f.name != "debug_info" && SOLVER_FIELDS.contains(&f.name.as_str()))
}

/// Learning rate at 0-based iteration `iter` under Caffe's policies:
///
/// * fixed: `base_lr`
/// * step: `base_lr · gamma^floor(iter / stepsize)`
/// * exp: `base_lr · gamma^iter`
/// * inv: `base_lr · (1 + gamma · iter)^(−power)`
/// * multistep: `base_lr · gamma^s`, `s` = how many leading `stepvalue`s are ≤ iter
/// * poly: `base_lr · (1 − iter / max_iter)^power`
/// * sigmoid: `base_lr / (1 + exp(−gamma · (iter − stepsize)))`
///
/// Parsing rejects unknown policies; for one the result is NaN.
pub fn learning_rate(p: &SolverParams, iter: u64) -> f64 {
    let base = p.base_lr as f64;
    let gamma = p.gamma as f64;
    let power = p.power as f64;
    let it = iter as f64;
    match LrPolicy::from_name(&p.lr_policy) {
        Some(LrPolicy::Fixed) => base,
        Some(LrPolicy::Step) => {
            let step = if p.stepsize > 0 {
                iter / p.stepsize as u64
            } else {
                0
            };
            base * gamma.powf(step as f64)
        }
        Some(LrPolicy::Exp) => base * gamma.powf(it),
        Some(LrPolicy::Inv) => base * (1.0 + gamma * it).powf(-power),
        Some(LrPolicy::MultiStep) => {
            // Caffe advances one step at a time while the next stepvalue is reached,
            // so only the leading run of reached values counts.
            let s = p
                .stepvalue
                .iter()
                .take_while(|&&v| iter as i64 >= v as i64)
                .count();
            base * gamma.powi(s as i32)
        }
        Some(LrPolicy::Poly) => base * (1.0 - it / p.max_iter as f64).powf(power),
        Some(LrPolicy::Sigmoid) => base / (1.0 + (-gamma * (it - p.stepsize as f64)).exp()),
        None => f64::NAN,
    }
}

/// Which base a relative net path was found from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathBase {
    Absolute,
    SolverDir,
    WorkingDir,
}

impl fmt::Display for PathBase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PathBase::Absolute => "absolute",
            PathBase::SolverDir => "relative to the solver file",
            PathBase::WorkingDir => "relative to the working directory",
        })
    }
}

/// A net path as written, the file it names and how it was found.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedPath {
    pub given: String,
    pub path: PathBuf,
    pub base: PathBase,
    /// Every candidate, in the order tried.
    pub tried: Vec<PathBuf>,
    /// The span of the path's value in the solver.
    pub span: Span,
}

/// Where a net's definition comes from.
#[derive(Debug, Clone)]
pub enum NetOrigin {
    File(ResolvedPath),
    /// `net_param`, `train_net_param` or `test_net_param { ... }` in the solver.
    Inline {
        field: &'static str,
        block: Block,
    },
}

/// One net the solver runs: its definition and the state the solver gives it
/// (phase, then `train_state` / `test_state`; the net's own `state` is merged
/// in between when the net is loaded, as Caffe does).
#[derive(Debug, Clone)]
pub struct NetSpec {
    pub origin: NetOrigin,
    pub phase: Phase,
    /// The `train_state` / `test_state` block for this net, if any.
    pub state: Option<(NetState, Block)>,
    /// Forward passes per test (test nets only).
    pub test_iter: Option<i32>,
}

impl NetSpec {
    /// `mnist.prototxt (relative to the solver file)` or `net_param at solver:3:1`.
    pub fn describe(&self, source: &SourceFile) -> String {
        match &self.origin {
            NetOrigin::File(r) => format!("{} ({})", r.given, r.base),
            NetOrigin::Inline { field, block } => {
                format!("`{field}` at {}", source.location(block.span))
            }
        }
    }
}

/// A net loaded for the solver, with the state to build it in.
#[derive(Debug, Clone)]
pub struct LoadedNet {
    pub net: NetDef,
    pub state: NetState,
    /// The file its relative data paths are read against.
    pub file: PathBuf,
}

/// A checked solver file.
#[derive(Debug, Clone)]
pub struct SolverDef {
    pub params: SolverParams,
    pub policy: LrPolicy,
    /// The solver's top-level block, for spans and presence of fields.
    pub block: Block,
    pub source: Arc<SourceFile>,
    pub train_net: NetSpec,
    /// In Caffe's order: `test_net_param` blocks, `test_net` files, then
    /// instances of `net` / `net_param` for the remaining `test_iter` values.
    pub test_nets: Vec<NetSpec>,
}

impl SolverDef {
    /// Whether the field was written in the solver.
    pub fn has(&self, field: &str) -> bool {
        self.block.get(field).is_some()
    }

    /// `snapshot_prefix`, or Caffe's default when empty: the solver path without its extension.
    pub fn snapshot_prefix(&self) -> String {
        if self.params.snapshot_prefix.is_empty() {
            self.source
                .path
                .with_extension("")
                .to_string_lossy()
                .into_owned()
        } else {
            self.params.snapshot_prefix.clone()
        }
    }

    /// Reads a net of this solver and merges its state: phase, then the net's
    /// own `state`, then the solver's `train_state` / `test_state`.
    pub fn load_net(&self, spec: &NetSpec) -> Result<LoadedNet> {
        let (net, own_state, file) = match &spec.origin {
            NetOrigin::File(r) => {
                let doc = proto::parse(&SourceFile::read(&r.path)?)?;
                let net = netdef::parse_net(&doc)?;
                (net, doc.root.get("state").cloned(), r.path.clone())
            }
            NetOrigin::Inline { block, .. } => {
                let net = netdef::parse_net_block(block, &self.source)?;
                (net, block.get("state").cloned(), self.source.path.clone())
            }
        };
        let mut state = NetState {
            phase: spec.phase,
            ..NetState::default()
        };
        if let Some(Value::Block(b)) = own_state.as_ref().map(|f| &f.value) {
            merge_state(&mut state, &net.state, b);
        }
        if let Some((given, b)) = &spec.state {
            merge_state(&mut state, given, b);
        }
        Ok(LoadedNet { net, state, file })
    }
}

/// Protobuf `MergeFrom` of a `NetState`: fields written in `block` replace, stages append.
fn merge_state(into: &mut NetState, given: &NetState, block: &Block) {
    if block.get("phase").is_some() {
        into.phase = given.phase;
    }
    if block.get("level").is_some() {
        into.level = given.level;
    }
    into.stage.extend(given.stage.iter().cloned());
}

/// Reads a solver file; relative net paths are tried against its folder,
/// then the working directory.
pub fn read_solver_file(path: &Path) -> Result<SolverDef> {
    let cwd = std::env::current_dir().map_err(|e| Error::Other(e.to_string()))?;
    read_solver_file_in(path, &cwd)
}

/// [`read_solver_file`] with an explicit working directory.
pub fn read_solver_file_in(path: &Path, cwd: &Path) -> Result<SolverDef> {
    let source = SourceFile::read(path)?;
    parse_solver(&proto::parse(&source)?, cwd)
}

/// A solver from text; `name` stands for the file (its folder is the solver folder).
pub fn parse_solver_str(name: &str, text: &str, cwd: &Path) -> Result<SolverDef> {
    parse_solver(&proto::parse_str(name, text)?, cwd)
}

/// Reads and checks a solver. All independent problems are reported together.
pub fn parse_solver(doc: &Document, cwd: &Path) -> Result<SolverDef> {
    let source = &doc.source;
    let root = &doc.root;
    let mut params = read_params(root, source)?;
    let mut diags = Vec::new();
    let check = Check { root, source };
    check.solver_type(&mut params, &mut diags);
    let policy = check.lr_policy(&params, &mut diags);
    check.values(&params, &mut diags);
    let solver_dir = normalize(&cwd.join(source.path.parent().unwrap_or(Path::new(""))));
    let nets = check.nets(&params, &solver_dir, cwd, &mut diags);
    if !diags.is_empty() {
        diags.sort_by_key(|d| d.location.as_ref().map(|(_, s)| s.start));
        return Err(Error::Config(diags));
    }
    let (Some(policy), Some((train_net, test_nets))) = (policy, nets) else {
        return Err(Error::Other(
            "solver check failed without a diagnostic".into(),
        ));
    };
    Ok(SolverDef {
        params,
        policy,
        block: root.clone(),
        source: source.clone(),
        train_net,
        test_nets,
    })
}

/// The serde stage: typed fields, with the inline nets kept as raw blocks.
fn read_params(root: &Block, source: &Arc<SourceFile>) -> Result<SolverParams> {
    let typed = root.filtered(|f| !INLINE_NETS.contains(&f.name.as_str()));
    let mut params: SolverParams = from_block(&typed, "").map_err(|mut e| {
        // Unknown fields of nested blocks (`train_state`) already name their block.
        if e.message.starts_with("unknown field") && !e.message.contains(" in `") {
            let field = e.message.split('`').nth(1).unwrap_or("").to_string();
            e.message = format!("unknown solver field `{field}`");
            e.help = if NET_ONLY_FIELDS.contains(&field.as_str()) {
                Some(format!(
                    "`{field}` belongs to a net: put it in the net file, \
                     or inside `net_param {{ ... }}`"
                ))
            } else {
                did_you_mean(&field, SOLVER_FIELDS.iter().copied()).or_else(|| {
                    Some(
                        "a solver holds Caffe's SolverParameter fields \
                          (net, base_lr, lr_policy, max_iter, ...)"
                            .into(),
                    )
                })
            };
        }
        Error::from(e.into_diagnostic(source, root.span))
    })?;
    let mut diags = Vec::new();
    let mut inline = |name: &str| -> Vec<Block> {
        root.all(name)
            .filter_map(|f| match &f.value {
                Value::Block(b) => Some(b.clone()),
                Value::Scalar(s) => {
                    diags.push(
                        Diagnostic::new(format!(
                            "`{name}` is an inline net block, found {}",
                            s.describe()
                        ))
                        .at(source, f.value_span)
                        .with_help(format!(
                            "write `{name} {{ layer {{ ... }} }}`, or name a file with `{}`",
                            name.trim_end_matches("_param")
                        )),
                    );
                    None
                }
            })
            .collect()
    };
    let net_param = inline("net_param");
    let train_net_param = inline("train_net_param");
    params.test_net_param = inline("test_net_param");
    for (name, blocks) in [
        ("net_param", &net_param),
        ("train_net_param", &train_net_param),
    ] {
        if let Some(second) = root.all(name).nth(1) {
            diags.push(
                Diagnostic::new(format!(
                    "field `{name}` is given {} times but takes one value",
                    blocks.len()
                ))
                .at(source, second.name_span)
                .with_help("a solver has one train net"),
            );
        }
    }
    params.net_param = net_param.into_iter().next();
    params.train_net_param = train_net_param.into_iter().next();
    if !diags.is_empty() {
        return Err(Error::Config(diags));
    }
    Ok(params)
}

struct Check<'a> {
    root: &'a Block,
    source: &'a Arc<SourceFile>,
}

impl Check<'_> {
    /// Span of the `index`-th value of a field, or of the first field of the file.
    fn span(&self, field: &str, index: usize) -> Span {
        self.root
            .all(field)
            .nth(index)
            .map(|f| f.value_span)
            .unwrap_or_else(|| self.top())
    }

    /// Where "the solver has no X" points: its first field.
    fn top(&self) -> Span {
        self.root
            .fields
            .first()
            .map_or(Span::default(), |f| f.name_span)
    }

    fn has(&self, field: &str) -> bool {
        self.root.get(field).is_some()
    }

    fn error(&self, span: Span, message: impl Into<String>, help: impl Into<String>) -> Diagnostic {
        Diagnostic::new(message)
            .at(self.source, span)
            .with_help(help)
    }

    fn solver_type(&self, p: &mut SolverParams, diags: &mut Vec<Diagnostic>) {
        if let Some(t) = p.solver_type {
            if self.has("type") {
                diags.push(self.error(
                    self.span("solver_type", 0),
                    "both `solver_type` (deprecated) and `type` are given",
                    format!("keep `type: \"{}\"` only", p.type_name),
                ));
                return;
            }
            p.type_name = t.type_name().to_string();
        }
        if !SOLVER_TYPES.contains(&p.type_name.as_str()) {
            diags.push(
                Diagnostic::new(format!("unknown solver type \"{}\"", p.type_name))
                    .at(self.source, self.span("type", 0))
                    .with_help_opt(Some(
                        did_you_mean(&p.type_name, SOLVER_TYPES.iter().copied()).unwrap_or_else(
                            || format!("the types are \"{}\"", SOLVER_TYPES.join("\", \"")),
                        ),
                    )),
            );
        }
    }

    fn lr_policy(&self, p: &SolverParams, diags: &mut Vec<Diagnostic>) -> Option<LrPolicy> {
        let list = format!("the policies are \"{}\"", LR_POLICIES.join("\", \""));
        if !self.has("lr_policy") {
            diags.push(self.error(
                self.top(),
                "the solver has no `lr_policy`",
                format!(
                    "Caffe has no default; write `lr_policy: \"fixed\"` \
                     for a constant rate ({list})"
                ),
            ));
            return None;
        }
        let at = self.span("lr_policy", 0);
        let Some(policy) = LrPolicy::from_name(&p.lr_policy) else {
            diags.push(
                Diagnostic::new(format!("unknown lr_policy \"{}\"", p.lr_policy))
                    .at(self.source, at)
                    .with_help(
                        did_you_mean(&p.lr_policy, LR_POLICIES.iter().copied()).unwrap_or(list),
                    ),
            );
            return None;
        };
        let name = policy.name();
        let formula = match policy {
            LrPolicy::Fixed => "base_lr",
            LrPolicy::Step => "base_lr · gamma^floor(iter / stepsize)",
            LrPolicy::Exp => "base_lr · gamma^iter",
            LrPolicy::Inv => "base_lr · (1 + gamma · iter)^(-power)",
            LrPolicy::MultiStep => "base_lr · gamma^(number of stepvalues reached)",
            LrPolicy::Poly => "base_lr · (1 - iter / max_iter)^power",
            LrPolicy::Sigmoid => "base_lr / (1 + exp(-gamma · (iter - stepsize)))",
        };
        let needs = |field: &str| {
            self.error(
                at,
                format!("lr_policy \"{name}\" needs `{field}`"),
                format!("the rate is {formula}: add `{field}: ...`"),
            )
        };
        let uses_gamma = !matches!(policy, LrPolicy::Fixed | LrPolicy::Poly);
        if uses_gamma && !self.has("gamma") {
            diags.push(needs("gamma"));
        }
        // Caffe checks gamma >= 0 for the decaying policies; sigmoid uses its sign for direction.
        if uses_gamma && policy != LrPolicy::Sigmoid && p.gamma < 0.0 {
            diags.push(self.error(
                self.span("gamma", 0),
                format!("lr_policy \"{name}\" needs gamma >= 0, found {}", p.gamma),
                format!("the rate is {formula}"),
            ));
        }
        if matches!(policy, LrPolicy::Inv | LrPolicy::Poly) && !self.has("power") {
            diags.push(needs("power"));
        }
        if matches!(policy, LrPolicy::Step | LrPolicy::Sigmoid) {
            if !self.has("stepsize") {
                diags.push(needs("stepsize"));
            } else if p.stepsize <= 0 {
                diags.push(self.error(
                    self.span("stepsize", 0),
                    format!(
                        "lr_policy \"{name}\" needs stepsize > 0, found {}",
                        p.stepsize
                    ),
                    format!("the rate is {formula}"),
                ));
            }
        }
        if policy == LrPolicy::Poly && self.has("max_iter") && p.max_iter <= 0 {
            diags.push(self.error(
                self.span("max_iter", 0),
                format!(
                    "lr_policy \"poly\" needs max_iter > 0, found {}",
                    p.max_iter
                ),
                format!("the rate is {formula}"),
            ));
        }
        if policy == LrPolicy::MultiStep {
            if p.stepvalue.is_empty() {
                diags.push(needs("stepvalue").with_help(
                    "one `stepvalue: N` line per iteration where the rate is multiplied by gamma",
                ));
            }
            for (i, w) in p.stepvalue.windows(2).enumerate() {
                if w[1] <= w[0] {
                    diags.push(self.error(
                        self.span("stepvalue", i + 1),
                        format!(
                            "stepvalue {} does not come after the previous stepvalue {}",
                            w[1], w[0]
                        ),
                        "stepvalues must increase: Caffe steps through them in order \
                         and never reaches one below the last",
                    ));
                }
            }
        }
        Some(policy)
    }

    fn values(&self, p: &SolverParams, diags: &mut Vec<Diagnostic>) {
        let missing = [
            (
                "base_lr",
                "0, which never changes the weights: add `base_lr: 0.01` or similar",
            ),
            (
                "max_iter",
                "0, which stops before the first iteration: add `max_iter: N`",
            ),
        ];
        for (field, default) in missing {
            if !self.has(field) {
                diags.push(self.error(
                    self.top(),
                    format!("the solver has no `{field}`"),
                    format!("Caffe's default is {default}"),
                ));
            }
        }
        let non_negative = [
            (
                "base_lr",
                p.base_lr,
                "a negative rate climbs the loss; use a positive one",
            ),
            (
                "weight_decay",
                p.weight_decay,
                "weight decay pulls weights toward 0; 0 is off",
            ),
        ];
        for (field, value, why) in non_negative {
            if value < 0.0 {
                diags.push(self.error(
                    self.span(field, 0),
                    format!("{field} is negative ({value})"),
                    why,
                ));
            }
        }
        let minimums = [
            (
                "average_loss",
                p.average_loss,
                1,
                "the shown loss averages this many iterations",
            ),
            (
                "iter_size",
                p.iter_size,
                1,
                "gradients accumulate over this many passes; 1 is plain SGD",
            ),
            (
                "max_iter",
                p.max_iter,
                0,
                "the number of iterations to train",
            ),
            ("display", p.display, 0, "0 turns display off"),
            ("snapshot", p.snapshot, 0, "0 turns periodic snapshots off"),
            ("test_interval", p.test_interval, 0, "0 turns testing off"),
        ];
        let test_iters = p.test_iter.iter().enumerate().map(|(i, &n)| {
            (
                "test_iter",
                n,
                1,
                "test_iter is the number of forward passes per test",
                i,
            )
        });
        let all = minimums
            .into_iter()
            .map(|(f, v, m, w)| (f, v, m, w, 0))
            .chain(test_iters);
        for (field, value, min, why, index) in all {
            if value < min {
                diags.push(self.error(
                    self.span(field, index),
                    format!("{field} must be at least {min}, found {value}"),
                    why,
                ));
            }
        }
        // Caffe's AdaGrad and RMSProp refuse momentum; the rest use it (Adam as beta1).
        let t = p.type_name.as_str();
        if matches!(t, "AdaGrad" | "RMSProp") && p.momentum != 0.0 {
            diags.push(self.error(
                self.span("momentum", 0),
                format!("momentum cannot be used with {t}"),
                "remove `momentum`; the adaptive per-weight scale replaces it",
            ));
        }
        let decays = [
            (
                "momentum",
                p.momentum,
                true,
                "a momentum of 1 or more never forgets a gradient",
            ),
            (
                "momentum2",
                p.momentum2,
                t == "Adam",
                "Adam's decay of the squared-gradient average",
            ),
            (
                "rms_decay",
                p.rms_decay,
                t == "RMSProp",
                "RMSProp's decay of the squared-gradient average",
            ),
        ];
        for (field, value, used, why) in decays {
            if used && !(0.0..1.0).contains(&value) {
                diags.push(self.error(
                    self.span(field, 0),
                    format!("{field} must lie in [0, 1), found {value}"),
                    why,
                ));
            }
        }
        if !matches!(p.regularization_type.as_str(), "L1" | "L2") {
            diags.push(
                self.error(
                    self.span("regularization_type", 0),
                    format!("unknown regularization_type \"{}\"", p.regularization_type),
                    did_you_mean(&p.regularization_type, ["L1", "L2"])
                        .unwrap_or_else(|| "the types are \"L1\" and \"L2\"".into()),
                ),
            );
        }
    }

    /// The train net and the test nets in Caffe's order, with paths resolved.
    fn nets(
        &self,
        p: &SolverParams,
        solver_dir: &Path,
        cwd: &Path,
        diags: &mut Vec<Diagnostic>,
    ) -> Option<(NetSpec, Vec<NetSpec>)> {
        let mut missing = Vec::new();
        let mut file = |field: &'static str, index: usize, given: &str| -> Option<NetOrigin> {
            let span = self.span(field, index);
            match resolve(given, span, solver_dir, cwd) {
                Ok(r) => Some(NetOrigin::File(r)),
                Err(tried) => {
                    missing.push(self.not_found(field, given, span, &tried, solver_dir));
                    None
                }
            }
        };
        let train_fields = ["net", "net_param", "train_net", "train_net_param"];
        let given: Vec<&str> = train_fields
            .iter()
            .copied()
            .filter(|f| self.has(f))
            .collect();
        let train = match given.as_slice() {
            [] => {
                diags.push(self.error(
                    self.top(),
                    "the solver names no train net",
                    "add `net: \"train_test.prototxt\"` \
                     (one of net, net_param, train_net, train_net_param)",
                ));
                None
            }
            [_, second, ..] => {
                let span = self.root.get(second).map_or(self.top(), |f| f.name_span);
                diags.push(self.error(
                    span,
                    format!("`{}` and `{second}` both name the train net", given[0]),
                    "keep exactly one of net, net_param, train_net, train_net_param",
                ));
                None
            }
            [field] => match *field {
                "net" => file("net", 0, p.net.as_deref().unwrap_or("")),
                "train_net" => file("train_net", 0, p.train_net.as_deref().unwrap_or("")),
                "net_param" => p.net_param.clone().map(|block| NetOrigin::Inline {
                    field: "net_param",
                    block,
                }),
                _ => p.train_net_param.clone().map(|block| NetOrigin::Inline {
                    field: "train_net_param",
                    block,
                }),
            },
        };
        let mut tests: Vec<NetOrigin> = p
            .test_net_param
            .iter()
            .map(|b| NetOrigin::Inline {
                field: "test_net_param",
                block: b.clone(),
            })
            .collect();
        for (i, t) in p.test_net.iter().enumerate() {
            if let Some(o) = file("test_net", i, t) {
                tests.push(o);
            }
        }
        let explicit = p.test_net.len() + p.test_net_param.len();
        let generic = self.has("net") || self.has("net_param");
        let n_iter = p.test_iter.len();
        let count_ok = if generic {
            n_iter >= explicit
        } else {
            n_iter == explicit
        };
        if !count_ok {
            let at = if n_iter > 0 {
                self.span("test_iter", 0)
            } else if !p.test_net.is_empty() {
                self.span("test_net", 0)
            } else {
                self.root
                    .get("test_net_param")
                    .map_or(self.top(), |f| f.name_span)
            };
            diags.push(self.error(
                at,
                format!(
                    "{explicit} test net{} (test_net / test_net_param) \
                     but {n_iter} `test_iter` value{}",
                    if explicit == 1 { "" } else { "s" },
                    if n_iter == 1 { "" } else { "s" }
                ),
                "give one `test_iter` per test net, in Caffe's order: \
                 test_net_param blocks first, then test_net files",
            ));
        }
        // With `net` / `net_param`, each test_iter beyond the explicit test nets
        // tests the TEST phase of that same net.
        let instances = if generic {
            n_iter.max(explicit)
        } else {
            explicit
        };
        if generic && count_ok {
            for _ in explicit..n_iter {
                if let Some(o) = train.clone() {
                    tests.push(o);
                }
            }
        }
        if !p.test_state.is_empty() && p.test_state.len() != instances {
            diags.push(
                self.error(
                    self.root
                        .get("test_state")
                        .map_or(self.top(), |f| f.name_span),
                    format!(
                        "{} `test_state` blocks for {instances} test net(s)",
                        p.test_state.len()
                    ),
                    "give no test_state, or one per test net in order",
                ),
            );
        }
        if instances > 0 && p.test_interval <= 0 {
            diags.push(self.error(
                self.span("test_iter", 0),
                format!("{instances} test net(s) but no `test_interval`"),
                "Caffe requires test_interval > 0 when a test net exists: \
                 add `test_interval: N` (iterations between tests)",
            ));
        }
        if instances == 0 && p.test_interval > 0 {
            let help = if generic {
                "add `test_iter: N` (forward passes per test) to test the TEST phase \
                 of the net, or remove test_interval"
            } else {
                "add `test_net` and `test_iter: N`, or remove test_interval"
            };
            diags.push(self.error(
                self.span("test_interval", 0),
                format!(
                    "test_interval is {} but no test net runs (no `test_iter`)",
                    p.test_interval
                ),
                help,
            ));
        }
        let ok = missing.is_empty();
        diags.append(&mut missing);
        let train = train?;
        if !ok || !diags.is_empty() || tests.len() != instances {
            return None;
        }
        let state = |name: &str, i: usize, s: &NetState| {
            let block = match self.root.all(name).nth(i).map(|f| &f.value) {
                Some(Value::Block(b)) => b.clone(),
                _ => Block::default(),
            };
            (s.clone(), block)
        };
        let train_net = NetSpec {
            origin: train,
            phase: Phase::Train,
            state: p.train_state.as_ref().map(|s| state("train_state", 0, s)),
            test_iter: None,
        };
        let test_nets = tests
            .into_iter()
            .enumerate()
            .map(|(i, origin)| NetSpec {
                origin,
                phase: Phase::Test,
                state: p.test_state.get(i).map(|s| state("test_state", i, s)),
                test_iter: p.test_iter.get(i).copied(),
            })
            .collect();
        Some((train_net, test_nets))
    }

    fn not_found(
        &self,
        field: &str,
        given: &str,
        span: Span,
        tried: &[PathBuf],
        solver_dir: &Path,
    ) -> Diagnostic {
        let list: Vec<String> = tried.iter().map(|t| t.display().to_string()).collect();
        let mut hints = Vec::new();
        let rel = Path::new(given);
        if let Some(base) = rel.file_name() {
            if rel.components().count() > 1 && solver_dir.join(base).is_file() {
                hints.push(format!(
                    "`{}` is beside the solver: write `{field}: \"{}\"`",
                    base.to_string_lossy(),
                    base.to_string_lossy()
                ));
            }
        }
        if rel.is_relative() {
            if let Some(a) = solver_dir
                .ancestors()
                .skip(1)
                .find(|a| a.join(rel).is_file())
            {
                hints.push(format!(
                    "it exists relative to `{}`: Caffe reads net paths \
                     from the working directory, so run from there",
                    a.display()
                ));
            }
        }
        let help = if hints.is_empty() {
            "relative paths are read from the solver's folder, then from the working directory"
                .to_string()
        } else {
            hints.join("; or ")
        };
        self.error(
            span,
            format!(
                "{field} file `{given}` not found; tried: {}",
                list.join(", ")
            ),
            help,
        )
    }
}

/// Candidates for a net path: itself when absolute, else the solver's folder
/// then the working directory.
fn resolve(
    given: &str,
    span: Span,
    solver_dir: &Path,
    cwd: &Path,
) -> std::result::Result<ResolvedPath, Vec<PathBuf>> {
    let p = Path::new(given);
    let candidates: Vec<(PathBuf, PathBase)> = if p.is_absolute() {
        vec![(normalize(p), PathBase::Absolute)]
    } else {
        let mut c = vec![(normalize(&solver_dir.join(p)), PathBase::SolverDir)];
        let from_cwd = normalize(&cwd.join(p));
        if from_cwd != c[0].0 {
            c.push((from_cwd, PathBase::WorkingDir));
        }
        c
    };
    let tried: Vec<PathBuf> = candidates.iter().map(|(c, _)| c.clone()).collect();
    match candidates
        .into_iter()
        .find(|(c, _)| !given.is_empty() && c.is_file())
    {
        Some((path, base)) => Ok(ResolvedPath {
            given: given.to_string(),
            path,
            base,
            tried,
            span,
        }),
        None => Err(tried),
    }
}

/// Removes `.` and folds `..` lexically, for readable paths in messages.
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if matches!(out.components().next_back(), Some(Component::Normal(_))) {
                    out.pop();
                } else {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// A number with at most 6 significant digits, without trailing zeros.
pub fn fmt_num(x: f64) -> String {
    let rounded: f64 = format!("{x:.5e}").parse().unwrap_or(x);
    format!("{rounded}")
}

/// The schedule in words, e.g. `multistep: 0.01 until 5000, 0.008 until 8000, 0.0064 after`.
pub fn describe_schedule(p: &SolverParams) -> String {
    let Some(policy) = LrPolicy::from_name(&p.lr_policy) else {
        return format!("unknown policy \"{}\"", p.lr_policy);
    };
    let lr = |i: u64| fmt_num(learning_rate(p, i));
    let max = p.max_iter.max(0) as u64;
    let name = policy.name();
    let g = fmt_num(p.gamma as f64);
    let pw = fmt_num(p.power as f64);
    let formula = match policy {
        LrPolicy::Fixed => return format!("fixed: {}", lr(0)),
        LrPolicy::Step | LrPolicy::MultiStep => {
            let bounds: Vec<u64> = if policy == LrPolicy::Step {
                let s = p.stepsize.max(1) as u64;
                (1..).map(|k| k * s).take_while(|&b| b < max).collect()
            } else {
                p.stepvalue
                    .iter()
                    .map(|&v| v.max(0) as u64)
                    .filter(|&b| b > 0 && b < max)
                    .collect()
            };
            if bounds.is_empty() {
                return format!("{name}: {} throughout", lr(0));
            }
            let mut parts = vec![];
            let mut from = 0;
            for (i, &b) in bounds.iter().enumerate() {
                if i == 4 && bounds.len() > 5 {
                    parts.push("…".to_string());
                    break;
                }
                parts.push(format!("{} until {b}", lr(from)));
                from = b;
            }
            let last = *bounds.last().unwrap_or(&0);
            parts.push(format!("{} after", lr(last)));
            return format!("{name}: {}", parts.join(", "));
        }
        LrPolicy::Exp => format!("base_lr · {g}^iter"),
        LrPolicy::Inv => format!("base_lr · (1 + {g} · iter)^-{pw}"),
        LrPolicy::Poly => format!("base_lr · (1 - iter/{max})^{pw}"),
        LrPolicy::Sigmoid => format!("base_lr / (1 + exp(-{g} · (iter - {})))", p.stepsize),
    };
    format!(
        "{name}: {formula}, from {} at 0 to {} at {max}",
        lr(0),
        lr(max)
    )
}

/// The solver part of `netrun check`.
pub fn summary(s: &SolverDef) -> String {
    let p = &s.params;
    let mut rows: Vec<(String, String)> = vec![];
    let mut update = p.type_name.clone();
    let num = |x: f32| fmt_num(x as f64);
    match p.type_name.as_str() {
        "SGD" | "Nesterov" => update += &format!(", momentum {}", num(p.momentum)),
        "AdaGrad" => update += &format!(", delta {}", num(p.delta)),
        "RMSProp" => update += &format!(", rms_decay {}, delta {}", num(p.rms_decay), num(p.delta)),
        "AdaDelta" => update += &format!(", momentum {}, delta {}", num(p.momentum), num(p.delta)),
        _ => {
            update += &format!(
                ", momentum {}, momentum2 {}, delta {}",
                num(p.momentum),
                num(p.momentum2),
                num(p.delta)
            )
        }
    }
    update += &format!(
        ", weight_decay {} ({})",
        num(p.weight_decay),
        p.regularization_type
    );
    if p.clip_gradients >= 0.0 {
        update += &format!(", gradients clipped to L2 norm {}", num(p.clip_gradients));
    }
    rows.push(("type".into(), update));
    rows.push(("lr".into(), describe_schedule(p)));
    let mut iters = format!("{} iterations", p.max_iter);
    if p.iter_size > 1 {
        iters += &format!(" of {} accumulated passes", p.iter_size);
    }
    if p.display > 0 {
        iters += &format!(", display every {}", p.display);
    }
    rows.push(("max_iter".into(), iters));
    let mut snap = vec![];
    if p.snapshot > 0 {
        snap.push(format!("every {} iterations", p.snapshot));
    }
    // Caffe's final snapshot is skipped when a periodic one already fell on max_iter.
    if p.snapshot_after_train && (p.snapshot <= 0 || p.max_iter % p.snapshot != 0) {
        snap.push(format!("at the end ({})", p.max_iter));
    }
    let snap = if snap.is_empty() {
        "off".to_string()
    } else {
        let note = match p.snapshot_format {
            None => "safetensors",
            Some(SnapshotFormat::BinaryProto) => "safetensors, and the weights as .caffemodel",
            Some(SnapshotFormat::Hdf5) => {
                "safetensors; snapshot_format HDF5 is accepted but not written"
            }
        };
        format!(
            "{} to {}_iter_N ({note})",
            snap.join(" and "),
            s.snapshot_prefix()
        )
    };
    rows.push(("snapshot".into(), snap));
    if p.solver_mode == SolverMode::Gpu {
        rows.push((
            "solver_mode".into(),
            "GPU (accepted; netrun runs on the CPU)".into(),
        ));
    }
    rows.push(("train net".into(), s.train_net.describe(&s.source)));
    for (i, t) in s.test_nets.iter().enumerate() {
        let mut d = t.describe(&s.source);
        d += &format!(
            ", {} forward passes every {} iterations{}",
            t.test_iter.unwrap_or(0),
            p.test_interval,
            if p.test_initialization {
                ", first at 0"
            } else {
                ""
            }
        );
        rows.push((format!("test net #{i}"), d));
    }
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut out = format!("solver {}\n", s.source.path.display());
    for (k, v) in rows {
        out += &format!("  {k:<width$}  {v}\n");
    }
    out
}
