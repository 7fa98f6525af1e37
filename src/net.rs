//! Net: a [`Graph`] with storage, run forward and backward on the CPU.
//!
//! Blobs are allocated once from the inferred shapes (in-place tops share
//! their bottom's blob); a layer whose output size depends on the data (Filter)
//! resizes its tops, and the layers after it follow (`net/reshape.rs`).
//! Learnable blobs live in one store; a layer sharing a `param { name: ... }`
//! points at the owner's blob, so its diff accumulates into the owner's, as in
//! Caffe.

use crate::blob::Blob;
use crate::error::{Error, Result};
use crate::graph::{Graph, ParamOwner};
use crate::layer_io::{select_mut, LayerIo, Rng, RunCtx};
use crate::philox::ParamStreams;
use rand::SeedableRng;

mod feed;
mod memory;
mod reshape;

/// A learnable blob as the solver sees it.
#[derive(Debug, Clone)]
pub struct Learnable {
    /// Index into [`Net::params`].
    pub param: usize,
    /// `<layer>.<index>` of the owning layer.
    pub name: String,
    pub lr_mult: f32,
    pub decay_mult: f32,
}

pub struct Net {
    pub graph: Graph,
    pub blobs: Vec<Blob>,
    /// Learnable storage, owners only.
    pub params: Vec<Blob>,
    /// Per node, per learnable blob: index into `params`.
    pub param_ids: Vec<Vec<usize>>,
    pub learnables: Vec<Learnable>,
    pub rng: Rng,
    /// Per node, the bottom shapes its shape rule last saw (see `reshape.rs`).
    reshaped_for: Vec<Vec<crate::shape::Shape>>,
    /// Set by [`Net::recycle_activations`] (`net/memory.rs`).
    recycling: Option<memory::Recycling>,
}

impl Net {
    /// The layers (node indices) without a device path: in GPU mode they run
    /// their CPU path on host copies of their blobs (`netrun time --gpu` marks them).
    pub fn cpu_fallback_layers(&self) -> Vec<usize> {
        (self.graph.nodes.iter().enumerate())
            .filter(|(_, n)| !n.layer.has_gpu_path())
            .map(|(i, _)| i)
            .collect()
    }

    /// Allocates blobs and fills learnable blobs deterministically from `seed`.
    pub fn new(mut graph: Graph, seed: u64) -> Result<Net> {
        check_memory(&graph)?;
        let rng = Rng::seed_from_u64(seed);
        let blobs: Vec<Blob> = graph
            .blobs
            .iter()
            .map(|b| Blob::new(b.shape.as_deref().unwrap_or(&[])))
            .collect();
        let mut params: Vec<Blob> = Vec::new();
        let mut param_ids: Vec<Vec<usize>> = Vec::new();
        let mut learnables = Vec::new();
        for node in &graph.nodes {
            // Every blob is filled (as Caffe does) before shared ones are dropped for their owner's.
            let mut fresh: Vec<Blob> = node.param_shapes.iter().map(|s| Blob::new(s)).collect();
            node.layer.fill_params(
                &mut fresh,
                &ParamStreams {
                    seed,
                    layer: &node.def.name,
                },
            );
            let mut ids = Vec::new();
            for (i, blob) in fresh.into_iter().enumerate() {
                match node.param_owners[i] {
                    ParamOwner::Own => {
                        ids.push(params.len());
                        learnables.push(Learnable {
                            param: params.len(),
                            name: format!("{}.{i}", node.def.name),
                            lr_mult: node.param_specs[i].lr_mult,
                            decay_mult: node.param_specs[i].decay_mult,
                        });
                        params.push(blob);
                    }
                    ParamOwner::SharedWith { node: n, index } => ids.push(param_ids[n][index]),
                }
            }
            param_ids.push(ids);
        }
        mark_rewritten_tops(&mut graph);
        let reshaped_for = Net::build_time_bottom_shapes(&graph);
        let mut net = Net {
            reshaped_for,
            graph,
            blobs,
            params,
            param_ids,
            learnables,
            rng,
            recycling: None,
        };
        net.set_loss_weights();
        Ok(net)
    }

    /// Caffe's `SetLossWeights`: a loss top's diff holds its weight, which is
    /// what the loss layer's backward scales by.
    pub fn set_loss_weights(&mut self) {
        for node in &self.graph.nodes {
            for (t, &w) in node.loss_weights.iter().enumerate() {
                if w != 0.0 {
                    self.blobs[node.tops[t]].diff_mut().fill(w);
                }
            }
        }
    }

    /// The blob named `name`.
    pub fn blob(&self, name: &str) -> Option<&Blob> {
        self.blob_index(name).map(|i| &self.blobs[i])
    }

    pub fn blob_mut(&mut self, name: &str) -> Option<&mut Blob> {
        self.blob_index(name).map(move |i| &mut self.blobs[i])
    }

    /// The index in [`Net::blobs`] of the blob named `name`.
    fn blob_index(&self, name: &str) -> Option<usize> {
        self.graph.blobs.iter().position(|b| b.name == name)
    }

    /// Runs every layer forward; returns Σ loss_weight · loss over all loss tops.
    pub fn forward(&mut self) -> Result<f64> {
        self.release_split_views();
        let mut loss = 0.0f64;
        for n in 0..self.graph.nodes.len() {
            loss += self.forward_layer(n)?;
        }
        Ok(loss)
    }

    /// Split tops view their bottom's values; dropping those views before a
    /// pass lets producers write in place instead of copying shared values.
    pub fn release_split_views(&mut self) {
        for node in &self.graph.nodes {
            if node.layer.type_name() == "Split" {
                for &t in &node.tops {
                    self.blobs[t].release_shared_data();
                }
            }
        }
    }

    /// Runs layer `n` forward (after its shape rule again where its bottoms
    /// changed shape); returns its weighted loss.
    pub fn forward_layer(&mut self, n: usize) -> Result<f64> {
        self.reshape_if_bottoms_changed(n)?;
        self.take_storage(n);
        let phase = self.graph.phase;
        let node = &mut self.graph.nodes[n];
        let params = select_mut(&mut self.params, &self.param_ids[n]);
        let mut io = LayerIo::from_store(&mut self.blobs, &node.bottoms, &node.tops, params);
        let mut ctx = RunCtx {
            phase,
            rng: &mut self.rng,
        };
        node.layer
            .forward(&mut io, &mut ctx)
            .map_err(|m| run_error(&node.def.name, node.layer.type_name(), "forward", m))?;
        let mut loss = 0.0f64;
        for (t, &w) in node.loss_weights.iter().enumerate() {
            if w != 0.0 {
                let top = &self.blobs[node.tops[t]];
                loss += w as f64 * top.data().iter().map(|&v| v as f64).sum::<f64>();
            }
        }
        self.return_storage(n);
        Ok(loss)
    }

    /// Runs backward over the layers that need it, in reverse order.
    /// Learnable diffs accumulate; call [`Net::clear_param_diffs`] between steps.
    pub fn backward(&mut self) -> Result<()> {
        self.set_loss_weights();
        for n in (0..self.graph.nodes.len()).rev() {
            self.backward_layer(n)?;
        }
        Ok(())
    }

    /// Runs layer `n` backward if it needs it (loss tops' diffs must hold their weights).
    pub fn backward_layer(&mut self, n: usize) -> Result<()> {
        if self.recycling.is_some() {
            return Err(Error::Other(
                "the net runs for inference (Net::recycle_activations): it keeps no diffs \
                 and cannot run backward"
                    .into(),
            ));
        }
        let phase = self.graph.phase;
        let node = &mut self.graph.nodes[n];
        if !node.need_backward {
            return Ok(());
        }
        let params = select_mut(&mut self.params, &self.param_ids[n]);
        let mut io = LayerIo::from_store(&mut self.blobs, &node.bottoms, &node.tops, params);
        let mut ctx = RunCtx {
            phase,
            rng: &mut self.rng,
        };
        node.layer
            .backward(&mut io, &node.bottom_need_backward, &mut ctx)
            .map_err(|m| run_error(&node.def.name, node.layer.type_name(), "backward", m))
    }

    /// Forward then backward; returns the loss.
    pub fn forward_backward(&mut self) -> Result<f64> {
        let loss = self.forward()?;
        self.backward()?;
        Ok(loss)
    }

    pub fn clear_param_diffs(&mut self) {
        self.params.iter_mut().for_each(Blob::zero_diff);
    }
}

/// Tells each layer whether a later layer writes one of its tops in place.
fn mark_rewritten_tops(graph: &mut Graph) {
    let in_place_writes: Vec<Vec<usize>> = graph
        .nodes
        .iter()
        .map(|n| {
            n.tops
                .iter()
                .enumerate()
                .filter(|(i, t)| n.bottoms.get(*i) == Some(t))
                .map(|(_, &t)| t)
                .collect()
        })
        .collect();
    for n in 0..graph.nodes.len() {
        let rewritten = graph.nodes[n]
            .tops
            .iter()
            .any(|t| in_place_writes[n + 1..].iter().any(|w| w.contains(t)));
        graph.nodes[n].layer.set_top_rewritten_later(rewritten);
    }
}

fn run_error(layer: &str, type_name: &str, pass: &str, message: String) -> Error {
    Error::Other(format!("layer `{layer}` ({type_name}) {pass}: {message}"))
}

/// Refuses, before allocating, a net whose blobs and learnable blobs (data
/// and diff each) need more memory than the machine has.
fn check_memory(graph: &Graph) -> Result<()> {
    use crate::graph::sizes::{check_memory, Allocation};
    let producer = |b: usize| {
        graph
            .nodes
            .iter()
            .rev()
            .find(|n| n.tops.contains(&b))
            .map(|n| format!(" of layer `{}`", n.def.name))
            .unwrap_or_default()
    };
    let blobs = graph.blobs.iter().enumerate().map(|(i, b)| Allocation {
        what: format!("blob `{}`{}", b.name, producer(i)),
        shape: b.shape.clone().unwrap_or_default(),
    });
    let params = graph.nodes.iter().flat_map(|n| {
        n.param_shapes.iter().enumerate().map(|(i, s)| Allocation {
            what: format!("learnable blob `{}.{i}`", n.def.name),
            shape: s.clone(),
        })
    });
    check_memory(&blobs.chain(params).collect::<Vec<_>>())
}
