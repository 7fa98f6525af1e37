//! Layer types: one file each, holding the params struct, the shape rule and
//! (with the engine) forward and backward. [`REGISTRY`] maps Caffe type names
//! to constructors; adding a layer is one file plus one line there.

use crate::blob::Blob;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::{ParamSpec, Phase};
pub use crate::philox::ParamStreams;
use std::collections::HashMap;
use std::path::PathBuf;

pub mod abs_val;
pub mod accuracy;
pub mod adacos_add_m_scale;
pub mod argmax;
pub mod axpy;
pub mod batch_norm;
pub mod batch_reindex;
pub mod bias;
pub mod bn;
pub mod bnll;
pub mod center_loss;
pub mod channel_scale;
pub mod checks;
pub mod clip;
pub mod combined_margin_inner_product;
pub mod concat;
pub mod contrastive_loss;
pub mod convolution;
pub mod cosin_add_m;
pub mod crop;
pub mod data;
pub mod deconvolution;
pub mod depthwise_convolution;
pub mod dropout;
pub mod dummy_data;
pub mod eltwise;
pub mod elu;
pub mod embed;
pub mod euclidean_loss;
pub mod exp;
pub mod filler;
pub mod filter;
pub mod flatten;
pub mod flip;
pub mod focal_loss;
pub mod general_contrastive_loss;
pub mod general_triplet_loss;
pub mod global_lse_margin;
pub mod hdf5_data;
pub mod hdf5_output;
pub mod hinge_loss;
pub mod im2col;
pub mod image_data;
pub mod infogain_loss;
pub mod inner_distance;
pub mod inner_product;
pub mod input;
pub mod insanity;
pub mod label_specific_add;
pub mod label_specific_rescale;
pub mod largemargin_inner_product;
pub mod log;
pub mod loss;
pub mod lrn;
pub mod lstm;
pub mod lstm_unit;
pub mod margin_inner_product;
pub mod memory_data;
pub mod multi_label_image_data;
pub mod multinomial_logistic_loss;
pub mod mvn;
pub mod norm_l2;
pub mod normalize;
pub mod parameter;
pub mod pooling;
pub mod power;
pub mod prelu;
pub mod recurrent;
pub mod reduction;
mod registry;
pub mod relu;
pub mod reshape;
pub mod rnn;
pub mod rows;
pub mod scale;
pub mod sigmoid;
pub mod sigmoid_cross_entropy_loss;
pub mod silence;
pub mod slice;
pub mod soft_truncation;
pub mod softmax;
pub mod softmax_with_loss;
pub mod split;
pub mod spp;
pub mod swish;
pub mod tanh;
pub mod threshold;
pub mod tile;
pub mod transform;
pub mod triplet_loss;
pub mod unary;
pub mod unsupported;
pub mod weight_bottom;

// Layer files import the shape helpers from here (`use super::{count, Shape}`);
// they are defined in the core, beside `Blob`.
pub use crate::shape::{canonical_axis, count, fmt_shape, Shape, DEFAULT_SEED};
pub use registry::*;

/// How many bottoms or tops a layer takes: `min..=max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arity {
    pub min: usize,
    pub max: usize,
}

impl Arity {
    pub const fn exactly(n: usize) -> Arity {
        Arity { min: n, max: n }
    }
    pub const fn between(min: usize, max: usize) -> Arity {
        Arity { min, max }
    }
    pub const fn at_least(min: usize) -> Arity {
        Arity {
            min,
            max: usize::MAX,
        }
    }
    pub fn admits(&self, n: usize) -> bool {
        n >= self.min && n <= self.max
    }
    /// "exactly 2", "1 or 2", "at least 1".
    pub fn describe(&self) -> String {
        match (self.min, self.max) {
            (a, b) if a == b => format!("exactly {a}"),
            (a, usize::MAX) => format!("at least {a}"),
            (a, b) if b == a + 1 => format!("{a} or {b}"),
            (a, b) => format!("{a} to {b}"),
        }
    }
}

/// A shape problem found by a layer's shape rule. The graph adds the layer's
/// name, type and location; `bottom` says which bottom the problem is about.
#[derive(Debug, Clone, PartialEq)]
pub struct ShapeError {
    pub bottom: Option<usize>,
    pub message: String,
}

impl ShapeError {
    pub fn new(message: impl Into<String>) -> ShapeError {
        ShapeError {
            bottom: None,
            message: message.into(),
        }
    }
    pub fn at_bottom(bottom: usize, message: impl Into<String>) -> ShapeError {
        ShapeError {
            bottom: Some(bottom),
            message: message.into(),
        }
    }
    /// Bottom `i` must have the shape of bottom `j`.
    pub fn mismatch(i: usize, got: &[usize], j: usize, want: &[usize]) -> ShapeError {
        ShapeError::at_bottom(
            i,
            format!(
                "bottom {i} has shape {} but bottom {j} has shape {}",
                fmt_shape(got),
                fmt_shape(want)
            ),
        )
    }
}

/// What layer constructors may need besides their definition.
#[derive(Debug, Clone)]
pub struct BuildContext {
    pub phase: Phase,
    /// `--batch N`: replaces the batch size of data and input layers.
    pub batch: Option<usize>,
    /// `--input-shape TOP=C,H,W`: per-sample shapes for data layers whose
    /// source cannot be read.
    pub input_shapes: HashMap<String, Vec<usize>>,
    /// Whole shapes for Input layers' tops by top name, replacing the file's
    /// and `batch` (`netrun forward --inputs`: the given tensors decide).
    pub input_tops: HashMap<String, Shape>,
    /// Folders against which relative data paths are resolved, in order.
    pub data_dirs: Vec<PathBuf>,
    /// Seed of the data layers' own generators (shuffling, `rand_skip`,
    /// crop offsets, mirroring; each layer mixes in its name). A trainer
    /// passes the seed of the net it builds (from the solver's `random_seed`);
    /// [`DEFAULT_SEED`] otherwise, so runs repeat.
    pub seed: u64,
}

impl Default for BuildContext {
    fn default() -> Self {
        BuildContext {
            phase: Phase::Train,
            batch: None,
            input_shapes: HashMap::new(),
            input_tops: HashMap::new(),
            data_dirs: vec![],
            seed: DEFAULT_SEED,
        }
    }
}

/// Access to a layer's concrete type, for code that reads a layer's settings
/// after the graph is built (the ONNX exporter): `as_any(&*node.layer).downcast_ref()`.
pub trait AsAny {
    fn as_any(&self) -> &dyn std::any::Any;
    /// For the net's feeding API (`Net::set_memory_data`).
    fn as_any_mut(&mut self) -> &mut dyn std::any::Any;
}

impl<T: std::any::Any> AsAny for T {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}

/// The contract every layer type fulfils (Caffe's `Layer`).
///
/// The net calls [`Layer::reshape`] in layer order with the bottoms' shapes;
/// the first call also fixes the shapes of the learnable blobs, as Caffe's
/// `LayerSetUp`. Bottom and top counts are checked by the net against
/// [`Layer::bottoms`] / [`Layer::tops`] before any reshape.
pub trait Layer: Send + AsAny {
    /// The Caffe type name (`"Convolution"`).
    fn type_name(&self) -> &'static str;

    /// Accepted number of bottoms.
    fn bottoms(&self) -> Arity;

    /// Accepted number of tops.
    fn tops(&self) -> Arity;

    /// Loss layers get `loss_weight` 1 on their first top by default.
    fn is_loss(&self) -> bool {
        false
    }

    /// Data layers produce blobs from outside the net and have no bottoms.
    fn is_data(&self) -> bool {
        false
    }

    /// Whether a gradient can flow to bottom `i` (not for labels).
    fn can_backprop_to(&self, _bottom: usize) -> bool {
        true
    }

    /// Top shapes from bottom shapes; the first call also sets up the learnable blobs.
    fn reshape(&mut self, bottom: &[Shape]) -> Result<Vec<Shape>, ShapeError>;

    /// Shapes of the learnable blobs, in Caffe's order (weights, then bias, ...).
    fn param_shapes(&self) -> Vec<Shape> {
        Vec::new()
    }

    /// Forward floating-point operations for these shapes (a multiply-add counts 2).
    fn flops(&self, _bottom: &[Shape], _top: &[Shape]) -> u64 {
        0
    }

    /// Whether top `i` may be the same blob as bottom `i` (ReLU, PReLU, ...).
    fn supports_in_place(&self) -> bool {
        false
    }

    /// Told by the net whether a later in-place layer rewrites one of this
    /// layer's tops before this layer's backward, so a layer that would
    /// recover its input from its output keeps a copy instead.
    fn set_top_rewritten_later(&mut self, _rewritten: bool) {}

    /// Initialises the learnable blobs (shaped as [`Layer::param_shapes`]) with the layer's fillers.
    fn fill_params(&self, _params: &mut [Blob], _streams: &ParamStreams) {}

    /// Whether learnable blob `i`'s diff is the true gradient of the loss. A
    /// layer whose coded update is deliberately something else (CenterLoss's
    /// centers) says false, and the gradient checker tests it against its formula.
    fn param_diff_is_gradient(&self, _index: usize) -> bool {
        true
    }

    /// The `param { }` settings of learnable blob `index` when the layer gives
    /// none (BatchNorm's running statistics: lr_mult 0, decay_mult 0).
    fn default_param_spec(&self, _index: usize) -> ParamSpec {
        ParamSpec::default()
    }

    /// Named scalar training state that is neither a learnable blob nor derivable
    /// from the net definition (MarginInnerProduct's λ counter). The solver saves it
    /// with its own state and hands it back through [`Layer::set_state`] on resume.
    fn state(&self) -> Vec<(String, f64)> {
        Vec::new()
    }

    /// Restores state saved from [`Layer::state`]; an error names what was not understood.
    fn set_state(&mut self, _state: &[(String, f64)]) -> Result<(), String> {
        Ok(())
    }

    /// Computes the tops from the bottoms. Loss layers write the unweighted
    /// loss into top 0; the net applies `loss_weight`.
    fn forward(&mut self, _io: &mut LayerIo, _ctx: &mut RunCtx) -> Result<(), String> {
        Err(format!(
            "{} layers cannot run on the CPU yet",
            self.type_name()
        ))
    }

    /// Whether the layer has its own device (GPU) path. One without runs
    /// [`Layer::forward`] / [`Layer::backward`] on host copies of its blobs in
    /// GPU mode (the default [`Layer::forward_gpu`] / [`Layer::backward_gpu`]),
    /// so every net runs on a device, and the net and `netrun time --gpu` name
    /// the layers that fell back.
    fn has_gpu_path(&self) -> bool {
        false
    }

    /// The device forward. The default brings the blobs to the host (a no-op in
    /// a build without CUDA) and runs the CPU path.
    fn forward_gpu(&mut self, io: &mut LayerIo, ctx: &mut RunCtx) -> Result<(), String> {
        io.sync_to_host();
        self.forward(io, ctx)
    }

    /// The device backward; the default falls back as [`Layer::forward_gpu`] does.
    fn backward_gpu(
        &mut self,
        io: &mut LayerIo,
        propagate_down: &[bool],
        ctx: &mut RunCtx,
    ) -> Result<(), String> {
        io.sync_to_host();
        self.backward(io, propagate_down, ctx)
    }

    /// A note on the last forward when its result is technically valid but
    /// means training has gone wrong (SoftmaxWithLoss: every sample hit the
    /// FLT_MIN clamp, so the loss sits at 87.3365 and says nothing), for the
    /// trainer to report or stop on. `None` when all is well.
    fn health(&self) -> Option<String> {
        None
    }

    /// Computes bottom diffs (where `propagate_down[i]`) and accumulates the
    /// learnable blobs' diffs from the top diffs. A loss top's diff holds its
    /// loss weight, as in Caffe.
    fn backward(
        &mut self,
        _io: &mut LayerIo,
        _propagate_down: &[bool],
        _ctx: &mut RunCtx,
    ) -> Result<(), String> {
        Err(format!(
            "{} layers cannot run backward on the CPU yet",
            self.type_name()
        ))
    }
}
