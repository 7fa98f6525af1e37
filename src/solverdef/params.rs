//! The solver's typed fields (Caffe's `SolverParameter`), their defaults and enums.

use super::*;

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

pub(super) const INLINE_NETS: &[&str] = &["net_param", "train_net_param", "test_net_param"];
pub(super) const NET_ONLY_FIELDS: &[&str] = &[
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
