//! The layer graph: a net definition resolved into layers connected by blobs,
//! with shapes and backward needs known.
//!
//! Built in explicit passes, each in its own module and tested on its own:
//! [`filter`] (phase/level/stage rules and legacy inputs) → [`instantiate`]
//! (registry, params, bottom/top counts) → [`splits`] (fan-out) → [`names`]
//! (bottoms/tops to blob ids, in-place, shared params) → [`shapes`] →
//! [`backward`]. Every pass collects all the problems it can find.

pub mod backward;
pub mod filter;
pub mod instantiate;
pub mod names;
pub mod shapes;
pub mod sizes;
pub mod splits;

use crate::error::{Diagnostic, Error, Result};
use crate::layers::{BuildContext, Layer};
use crate::netdef::{LayerDef, NetDef, NetState, ParamSpec, Phase};
use crate::shape::Shape;

/// Index of a blob in [`Graph::blobs`].
pub type BlobId = usize;

/// A named blob; in-place layers read and write the same blob.
#[derive(Debug, Clone)]
pub struct BlobInfo {
    pub name: String,
    /// `None` when its producer's shape rule failed (an error was reported).
    pub shape: Option<Shape>,
}

/// Where a learnable blob's storage lives: in this layer, or shared with an
/// earlier layer's blob through a common `param { name: ... }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamOwner {
    Own,
    SharedWith { node: usize, index: usize },
}

/// One layer in the graph.
pub struct Node {
    pub def: LayerDef,
    pub layer: Box<dyn Layer>,
    pub bottoms: Vec<BlobId>,
    pub tops: Vec<BlobId>,
    /// Loss weight per top (Caffe defaults applied).
    pub loss_weights: Vec<f32>,
    /// Shapes of the learnable blobs, known after the shape pass.
    pub param_shapes: Vec<Shape>,
    /// `param { ... }` per learnable blob (defaults where not given).
    pub param_specs: Vec<ParamSpec>,
    pub param_owners: Vec<ParamOwner>,
    pub need_backward: bool,
    pub bottom_need_backward: Vec<bool>,
}

impl Node {
    pub fn new(def: LayerDef, layer: Box<dyn Layer>) -> Node {
        let is_loss = layer.is_loss();
        let loss_weights = (0..def.top.len())
            .map(|i| def.loss_weight_of(i, is_loss))
            .collect();
        Node {
            def,
            layer,
            bottoms: vec![],
            tops: vec![],
            loss_weights,
            param_shapes: vec![],
            param_specs: vec![],
            param_owners: vec![],
            need_backward: false,
            bottom_need_backward: vec![],
        }
    }

    /// Whether any top carries a non-zero loss weight.
    pub fn contributes_loss(&self) -> bool {
        self.loss_weights.iter().any(|&w| w != 0.0)
    }
}

/// Options for building a graph (from the CLI or a trainer).
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    pub state: NetState,
    pub context: BuildContext,
}

impl BuildOptions {
    pub fn for_phase(phase: Phase) -> BuildOptions {
        BuildOptions {
            state: NetState {
                phase,
                ..NetState::default()
            },
            context: BuildContext {
                phase,
                ..BuildContext::default()
            },
        }
    }
}

/// A resolved, shape-checked net.
pub struct Graph {
    pub name: String,
    pub phase: Phase,
    pub nodes: Vec<Node>,
    pub blobs: Vec<BlobInfo>,
    pub force_backward: bool,
    /// Blobs produced and never consumed (Caffe's net outputs).
    pub outputs: Vec<BlobId>,
}

impl Graph {
    /// Runs every pass. Errors of a pass are all reported; later passes run
    /// only when earlier ones succeeded, except that the shape pass reports
    /// independent shape errors together.
    ///
    /// The state is the file's `state { }` with the options' phase, their
    /// level where non-zero, and their stages added (Caffe merges the same way).
    pub fn build(net: &NetDef, opts: &BuildOptions) -> Result<Graph> {
        crate::error::print_warnings(&net.warnings);
        let mut state = net.state.clone();
        state.phase = opts.state.phase;
        if opts.state.level != 0 {
            state.level = opts.state.level;
        }
        for s in &opts.state.stage {
            if !state.stage.contains(s) {
                state.stage.push(s.clone());
            }
        }
        let mut ctx = opts.context.clone();
        ctx.phase = state.phase;
        let defs = filter::with_free_inputs(filter::filter(net, &state), net, &ctx);
        let nodes = instantiate::instantiate(defs, net, &ctx).map_err(Error::Config)?;
        let nodes = splits::insert_splits(nodes).map_err(Error::Config)?;
        let mut graph = names::resolve(net, state.phase, nodes).map_err(Error::Config)?;
        shapes::infer(&mut graph).map_err(Error::Config)?;
        names::check_duplicate_layer_names(&graph.nodes).map_err(Error::Config)?;
        backward::analyse(&mut graph).map_err(Error::Config)?;
        Ok(graph)
    }

    pub fn blob_shape(&self, id: BlobId) -> &[usize] {
        self.blobs[id].shape.as_deref().unwrap_or(&[])
    }

    /// Stored values of every learnable blob (shared ones counted once).
    pub fn param_count(&self) -> usize {
        self.nodes
            .iter()
            .flat_map(|n| n.param_shapes.iter().zip(&n.param_owners))
            .filter(|(_, o)| **o == ParamOwner::Own)
            .map(|(s, _)| crate::shape::count(s))
            .fold(0, usize::saturating_add)
    }

    /// Index of the node named `name`.
    pub fn node(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.def.name == name)
    }
}

pub(crate) fn sort_diags(mut diags: Vec<Diagnostic>) -> Vec<Diagnostic> {
    diags.sort_by_key(|d| d.location.as_ref().map(|(_, s)| s.start));
    diags
}
