//! `netrun forward`: one forward pass (and optionally one backward pass) of
//! a net on given inputs and parameters, every blob written to a file.
//!
//! Files are safetensors of F32 tensors (see [`crate::weights`]):
//! - inputs X: one tensor per Input-layer top, named like the top. Its shape
//!   replaces the file's (another batch size, say); every Input top needs
//!   one, and every tensor must name an Input top. A MemoryData layer's tops
//!   are inputs too: its data tensor (N × C × H × W, the sample shape of its
//!   `memory_data_param`) and label tensor (N values) are handed to the layer,
//!   whose batch becomes N.
//! - weights W: every learnable blob as `L.i` ([`weights::apply`] with
//!   `require_all`; a `.caffemodel` works too); tensors the net does not
//!   use (a snapshot's solver state) are reported, not refused. Without W
//!   the learnable blobs keep the values the net's fillers gave them (seed
//!   [`FILLER_SEED`]), as `caffe` runs a net without `--weights`.
//! - top diffs D (backward only): diffs of net outputs that are not loss
//!   tops, by blob name. Loss tops get their `loss_weight` as in Caffe;
//!   other outputs not in D get zero.
//! - output: `<blob>` (data) for every blob, `<blob>.diff` after backward;
//!   `L.i` for every learnable blob as it is after the pass (MarginInnerProduct
//!   normalises its weight rows in forward), `L.i.diff` after backward.
//!
//! Backward runs as with `force_backward: true`: every bottom that can take
//! a gradient gets one, the inputs' too. Learnable diffs start at zero, so
//! `L.i.diff` is one pass's gradient.

use crate::error::{did_you_mean, Error, Result};
use crate::graph::{filter, BuildOptions, Graph};
use crate::net::Net;
use crate::netdef::{read_net_file, LayerDef, Phase};
use crate::shape::fmt_shape;
use crate::weights::{self, ApplyOptions, Tensors};
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

/// What to run (the command line's arguments).
#[derive(Debug, Clone)]
pub struct ForwardOptions {
    pub net: PathBuf,
    /// None: parameters from the net's fillers.
    pub weights: Option<PathBuf>,
    pub inputs: PathBuf,
    pub top_diff: Option<PathBuf>,
    pub backward: bool,
    pub phase: Phase,
    pub output: PathBuf,
    /// Folders searched for relative data paths after the net's folder and the
    /// working directory.
    pub extra_data_dirs: Vec<PathBuf>,
}

/// What was run and written.
#[derive(Debug, Clone)]
pub struct ForwardReport {
    /// The net file.
    pub net: PathBuf,
    pub phase: Phase,
    pub backward: bool,
    /// Σ loss_weight · loss over the loss tops.
    pub loss: f64,
    pub written: usize,
    pub output: PathBuf,
    pub weights: Option<PathBuf>,
    /// Tensors of W that no learnable blob took.
    pub unused_weights: Vec<String>,
}

impl fmt::Display for ForwardReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pass = if self.backward {
            "forward + backward"
        } else {
            "forward"
        };
        writeln!(
            f,
            "{pass} of `{}` ({}): loss {}; wrote {} tensors to `{}`",
            self.net.display(),
            self.phase,
            self.loss,
            self.written,
            self.output.display()
        )?;
        match &self.weights {
            Some(w) if !self.unused_weights.is_empty() => writeln!(
                f,
                "note: the net uses none of these tensors of `{}`: {}",
                w.display(),
                self.unused_weights.join(", ")
            )?,
            Some(_) => {}
            None => writeln!(
                f,
                "note: no --weights: learnable blobs from the net's fillers (seed {FILLER_SEED})"
            )?,
        }
        Ok(())
    }
}

/// The seed of the fillers when no weights are given.
pub const FILLER_SEED: u64 = 1;

pub fn run(opts: &ForwardOptions) -> Result<ForwardReport> {
    let inputs = weights::load(&opts.inputs)?;
    let mut def = read_net_file(&opts.net)?;
    def.force_backward |= opts.backward;
    let mut build = BuildOptions::for_phase(opts.phase);
    build.context.data_dirs = crate::data::data_dirs(&opts.net, &opts.extra_data_dirs);
    build.context.input_tops = inputs
        .tensors
        .iter()
        .map(|(name, t)| (name.clone(), t.shape.clone()))
        .collect();
    let mut state = def.state.clone();
    state.phase = opts.phase;
    check_inputs(&filter::filter(&def, &state), &inputs)?;
    let graph = Graph::build(&def, &build)?;
    let mut net = Net::new(graph, FILLER_SEED)?;
    let unused_weights = match &opts.weights {
        Some(path) => {
            let params = weights::load(path)?;
            weights::apply(&mut net, &params, ApplyOptions { require_all: true })?.unused
        }
        None => Vec::new(),
    };
    let layers = filter::filter(&def, &state);
    for (name, t) in &inputs.tensors {
        if memory_data_top(&layers, name).is_some() {
            continue;
        }
        let blob = net.blob_mut(name).expect("checked to be an Input top");
        blob.data_mut().copy_from_slice(&t.data);
    }
    feed_memory_data(&mut net, &layers, &inputs)?;
    let loss = net.forward()?;
    if opts.backward {
        net.blobs.iter_mut().for_each(|b| b.zero_diff());
        net.clear_param_diffs();
        if let Some(path) = &opts.top_diff {
            seed_top_diffs(&mut net, &weights::load(path)?)?;
        }
        net.backward()?;
    }
    let mut out: Vec<(String, &[usize], &[f32])> = Vec::new();
    for (info, blob) in net.graph.blobs.iter().zip(&net.blobs) {
        out.push((info.name.clone(), blob.shape(), blob.data()));
        if opts.backward {
            out.push((format!("{}.diff", info.name), blob.shape(), blob.diff()));
        }
    }
    for (name, p) in weights::net_params(&net) {
        let blob = &net.params[p];
        if opts.backward {
            out.push((format!("{name}.diff"), blob.shape(), blob.diff()));
        }
        out.push((name, blob.shape(), blob.data()));
    }
    let metadata: BTreeMap<String, String> = [
        ("net", opts.net.display().to_string()),
        ("phase", opts.phase.to_string()),
        ("backward", opts.backward.to_string()),
        ("loss", loss.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let views: Vec<(&str, &[usize], &[f32])> =
        out.iter().map(|(n, s, d)| (n.as_str(), *s, *d)).collect();
    weights::save_f32(&opts.output, &views, &metadata)?;
    Ok(ForwardReport {
        net: opts.net.clone(),
        phase: opts.phase,
        backward: opts.backward,
        loss,
        written: views.len(),
        output: opts.output.clone(),
        weights: opts.weights.clone(),
        unused_weights,
    })
}

/// The MemoryData layer whose top `name` is, with the top's index.
fn memory_data_top<'a>(layers: &'a [LayerDef], name: &str) -> Option<(&'a LayerDef, usize)> {
    layers
        .iter()
        .filter(|d| d.type_name == "MemoryData")
        .find_map(|d| d.top.iter().position(|t| t == name).map(|i| (d, i)))
}

/// Hands each MemoryData layer its tensors: the data top's N samples and the label
/// top's N labels (zeros when the layer has no label top).
fn feed_memory_data(net: &mut Net, layers: &[LayerDef], inputs: &Tensors) -> Result<()> {
    for def in layers.iter().filter(|d| d.type_name == "MemoryData") {
        let data = &inputs.tensors[&def.top[0]];
        let n = data.shape.first().copied().unwrap_or(0);
        let labels = match def.top.get(1) {
            Some(top) => inputs.tensors[top].data.clone(),
            None => vec![0.0; n],
        };
        net.set_memory_data(&def.name, data.data.clone(), labels)
            .map_err(|e| Error::Other(format!("`{}`: {e}", inputs.path.display())))?;
    }
    Ok(())
}

/// Every Input or MemoryData top of the layers in the phase has a tensor in X, and
/// every tensor of X is such a top (checked before shapes, which X decides).
fn check_inputs(layers: &[LayerDef], inputs: &Tensors) -> Result<()> {
    let file = inputs.path.display();
    let mut tops: Vec<(&str, &str, &str)> = Vec::new(); // (top, layer, type)
    for def in layers
        .iter()
        .filter(|d| d.type_name == "Input" || d.type_name == "MemoryData")
    {
        for t in &def.top {
            tops.push((t, &def.name, &def.type_name));
        }
    }
    let mut problems = Vec::new();
    for &(top, layer, kind) in &tops {
        if !inputs.tensors.contains_key(top) {
            problems.push(format!(
                "`{file}` has no tensor `{top}` for the top of {kind} layer `{layer}`"
            ));
        }
    }
    for name in inputs.tensors.keys() {
        if !tops.iter().any(|&(t, _, _)| t == name) {
            let names: Vec<&str> = tops.iter().map(|&(t, _, _)| t).collect();
            let mut msg = format!(
                "tensor `{name}` in `{file}` names no Input layer's top (they are: {})",
                names.join(", ")
            );
            if let Some(help) = did_you_mean(name, names.iter().copied()) {
                msg += &format!("; {help}");
            }
            problems.push(msg);
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::Other(problems.join("\n")))
    }
}

/// Writes D's tensors into the diffs of net outputs that are not loss tops.
fn seed_top_diffs(net: &mut Net, diffs: &Tensors) -> Result<()> {
    let file = diffs.path.display();
    let graph = &net.graph;
    let seedable: Vec<&str> = graph
        .outputs
        .iter()
        .filter(|&&b| loss_weight(graph, b).is_none())
        .map(|&b| graph.blobs[b].name.as_str())
        .collect();
    let mut problems = Vec::new();
    let mut plan = Vec::new();
    for (name, t) in &diffs.tensors {
        let here = format!("tensor `{name}` in `{file}`");
        let Some(id) = graph.blobs.iter().position(|b| &b.name == name) else {
            let mut msg = format!("{here}: the net has no blob of that name");
            if let Some(help) = did_you_mean(name, graph.blobs.iter().map(|b| b.name.as_str())) {
                msg += &format!("; {help}");
            }
            problems.push(msg);
            continue;
        };
        if let Some(w) = loss_weight(graph, id) {
            problems.push(format!(
                "{here}: `{name}` is a loss top; its diff is its loss_weight ({w})"
            ));
        } else if !graph.outputs.contains(&id) {
            let reader = graph
                .nodes
                .iter()
                .rev()
                .find(|n| n.bottoms.contains(&id))
                .map_or("", |n| n.def.name.as_str());
            problems.push(format!(
                "{here}: blob `{name}` is read by layer `{reader}`, whose backward writes its diff; D holds diffs of net outputs only ({})",
                seedable.join(", ")
            ));
        } else if t.shape != graph.blob_shape(id) {
            problems.push(format!(
                "{here} has shape {}, but blob `{name}` is {}",
                fmt_shape(&t.shape),
                fmt_shape(graph.blob_shape(id))
            ));
        } else {
            plan.push((id, t));
        }
    }
    if !problems.is_empty() {
        return Err(Error::Other(problems.join("\n")));
    }
    for (id, t) in plan {
        net.blobs[id].diff_mut().copy_from_slice(&t.data);
    }
    Ok(())
}

/// The loss weight of blob `id` when some layer writes it as a loss top.
fn loss_weight(graph: &Graph, id: usize) -> Option<f32> {
    graph.nodes.iter().find_map(|n| {
        n.tops
            .iter()
            .zip(&n.loss_weights)
            .find(|&(&t, &w)| t == id && w != 0.0)
            .map(|(_, &w)| w)
    })
}
