//! `netrun export onnx`: a deploy net with its weights as an ONNX model.
//!
//! The net is built in phase TEST from its Input layers (whose tops become the
//! model's inputs, with the file's shapes or `--batch`, or a symbolic batch axis
//! with `--dynamic-batch`, see `batch.rs`); every blob that no layer
//! reads becomes a model output under its Caffe name. Each layer maps to standard
//! operators of the default domain at opset [`OPSET`] (the table in README.md);
//! learnable blobs become initializers named `<layer>.<index>` as in netrun's
//! weights files. Layers with no ONNX meaning (data layers other than Input,
//! losses, margin layers, Accuracy) are refused, all of them in one error naming
//! each layer and its place in the file.
//!
//! ONNX values are written once while Caffe rewrites blobs in place, so each
//! in-place write gets its own value (`<blob>/<layer>`) and the last write of a
//! blob carries the blob's name.

mod batch;
pub mod builder;
mod pointwise;
pub mod proto;
mod structure;
mod vision;

use crate::blob::Blob;
use crate::error::{Diagnostic, Error, Result};
use crate::graph::Graph;
use crate::layers::batch_norm::BatchNormLayer;
use crate::layers::pooling::{PoolMethod, PoolingLayer};
use crate::layers::{AsAny, Layer};
use crate::net::Net;
use crate::netdef::{read_net_file, Phase};
use crate::shape::{fmt_shape, Shape};
use crate::weights::{self, ApplyOptions};
use builder::{Attr, Builder};
use prost::Message;
use proto::{
    DimValue, Dimension, GraphProto, ModelProto, OperatorSetIdProto, TensorShapeProto,
    TensorTypeProto, TypeProto, ValueInfoProto,
};
use std::fmt;
use std::path::PathBuf;

/// The operator set the exported models import (the default `ai.onnx` domain).
pub const OPSET: i64 = 13;
/// The IR version that goes with [`OPSET`].
pub const IR_VERSION: i64 = 7;

/// What to export (the command line's arguments).
#[derive(Debug, Clone)]
pub struct ExportOptions {
    pub net: PathBuf,
    pub weights: PathBuf,
    pub output: PathBuf,
    /// Replaces the batch size of the Input layers.
    pub batch: Option<usize>,
    /// A symbolic batch axis `N` instead of the fixed one (see `batch.rs`).
    pub dynamic_batch: bool,
    /// Folders for relative data paths after the net's folder and the working directory.
    pub extra_data_dirs: Vec<PathBuf>,
}

/// What was written.
#[derive(Debug, Clone)]
pub struct ExportReport {
    pub output: PathBuf,
    pub nodes: usize,
    pub inputs: Vec<(String, Shape)>,
    pub outputs: Vec<(String, Shape)>,
    /// Tensors of the weights file that no learnable blob took.
    pub unused_weights: Vec<String>,
}

impl fmt::Display for ExportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |v: &[(String, Shape)]| {
            v.iter()
                .map(|(n, s)| format!("{n} {}", fmt_shape(s)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        writeln!(
            f,
            "wrote `{}`: ONNX opset {OPSET}, {} nodes; inputs {}; outputs {}",
            self.output.display(),
            self.nodes,
            list(&self.inputs),
            list(&self.outputs)
        )?;
        if !self.unused_weights.is_empty() {
            writeln!(
                f,
                "note: the deploy net uses none of these weights: {}",
                self.unused_weights.join(", ")
            )?;
        }
        Ok(())
    }
}

/// Builds the deploy net, loads its weights and writes the model.
pub fn run(opts: &ExportOptions) -> Result<ExportReport> {
    let def = read_net_file(&opts.net)?;
    let mut build = crate::graph::BuildOptions::for_phase(Phase::Test);
    build.context.data_dirs = crate::data::data_dirs(&opts.net, &opts.extra_data_dirs);
    build.context.batch = opts.batch;
    let graph = Graph::build(&def, &build)?;
    check_exportable(&graph)?;
    if opts.dynamic_batch {
        let n = batch::input_batch(&graph).ok_or_else(|| {
            Error::Other("`--dynamic-batch` needs an Input layer to take the batch from".into())
        })?;
        build.context.batch = Some(n + 1);
        batch::check(&graph, &Graph::build(&def, &build)?, n)?;
    }
    let mut net = Net::new(graph, 1)?;
    let params = weights::load(&opts.weights)?;
    let applied = weights::apply(&mut net, &params, ApplyOptions { require_all: true })?;
    let model = export_model(&net, opts.dynamic_batch)?;
    let graph = model.graph.as_ref().expect("export sets the graph");
    let shapes = |v: &[ValueInfoProto]| -> Vec<(String, Shape)> {
        v.iter()
            .map(|i| (i.name.clone(), value_shape(&net.graph, &i.name)))
            .collect()
    };
    let report = ExportReport {
        output: opts.output.clone(),
        nodes: graph.node.len(),
        inputs: shapes(&graph.input),
        outputs: shapes(&graph.output),
        unused_weights: applied.unused,
    };
    std::fs::write(&opts.output, model.encode_to_vec()).map_err(|e| Error::Io {
        path: opts.output.clone(),
        message: e.to_string(),
    })?;
    Ok(report)
}

fn value_shape(graph: &Graph, blob: &str) -> Shape {
    graph
        .blobs
        .iter()
        .position(|b| b.name == blob)
        .map(|i| graph.blob_shape(i).to_vec())
        .unwrap_or_default()
}

/// How a layer type is exported.
enum Kind {
    /// A model input (Input).
    Input,
    /// Its tops are its bottom (Split; Dropout, which is the identity in TEST).
    Alias,
    /// Writes nothing (Silence).
    Nothing,
    /// Operators written by a mapping function.
    Ops(fn(&mut Emit) -> std::result::Result<(), String>),
    /// Refused, with the reason.
    Refused(&'static str),
}

const STOCHASTIC: &str = "STOCHASTIC pooling has no ONNX operator";
const BATCH_STATS: &str = "`use_global_stats: false` normalises with each batch's own statistics; \
     a deploy net uses the stored ones (remove the setting, or set it to true)";
const TRAIN_ONLY: &str = "it belongs to a train net: a deploy net ends at the outputs it serves";

fn kind(layer: &dyn Layer) -> Kind {
    if layer.is_loss() {
        return Kind::Refused(TRAIN_ONLY);
    }
    match layer.type_name() {
        "Input" => Kind::Input,
        "Split" => Kind::Alias,
        "Dropout" => match as_any(layer).downcast_ref::<crate::layers::dropout::DropoutLayer>() {
            Some(d) if d.test_scale() != 1.0 => Kind::Ops(pointwise::dropout_scale),
            _ => Kind::Alias,
        },
        "Silence" => Kind::Nothing,
        "Convolution" => Kind::Ops(vision::convolution),
        "Pooling" => match as_any(layer).downcast_ref::<PoolingLayer>() {
            Some(p) if p.params.pool == PoolMethod::Stochastic => Kind::Refused(STOCHASTIC),
            _ => Kind::Ops(vision::pooling),
        },
        "InnerProduct" => Kind::Ops(vision::inner_product),
        "ReLU" => Kind::Ops(pointwise::relu),
        "PReLU" => Kind::Ops(pointwise::prelu),
        "Sigmoid" => Kind::Ops(pointwise::sigmoid),
        "TanH" => Kind::Ops(pointwise::tanh),
        "Eltwise" => Kind::Ops(pointwise::eltwise),
        "BatchNorm" => match as_any(layer).downcast_ref::<BatchNormLayer>() {
            Some(bn) if !bn.use_global_stats => Kind::Refused(BATCH_STATS),
            _ => Kind::Ops(pointwise::batch_norm),
        },
        "Scale" => Kind::Ops(pointwise::scale),
        "Bias" => Kind::Ops(pointwise::bias),
        "Normalize" => Kind::Ops(pointwise::normalize),
        "Softmax" => Kind::Ops(pointwise::softmax),
        "Concat" => Kind::Ops(structure::concat),
        "Slice" => Kind::Ops(structure::slice),
        "Flatten" | "Reshape" => Kind::Ops(structure::reshape),
        "MarginInnerProduct" | "CombinedMarginInnerProduct" => Kind::Refused(
            "a margin layer trains the classifier on labels; it is not part of a deploy net, \
             which ends at the feature layer before it (SphereFace: fc5)",
        ),
        "Accuracy" => Kind::Refused(TRAIN_ONLY),
        _ if layer.is_data() => Kind::Refused(
            "data layers read training data; a deploy net starts with an Input layer \
             (`input: \"data\"` with `input_shape`, or `type: \"Input\"`)",
        ),
        _ => Kind::Refused("netrun has no ONNX mapping for this layer type"),
    }
}

fn as_any(layer: &dyn Layer) -> &dyn std::any::Any {
    AsAny::as_any(layer)
}

/// Every layer that cannot be exported, each named with its place in the file.
pub fn check_exportable(graph: &Graph) -> Result<()> {
    let diags: Vec<Diagnostic> = graph
        .nodes
        .iter()
        .filter_map(|n| match kind(&*n.layer) {
            Kind::Refused(why) => Some(n.def.error(
                n.def.field_span("type", 0),
                format!("{} cannot be exported to ONNX: {why}", n.def.describe()),
            )),
            _ => None,
        })
        .collect();
    if diags.is_empty() {
        Ok(())
    } else {
        Err(Error::Config(diags))
    }
}

/// One layer's view of the model being written: its ONNX inputs and the value
/// names its tops must take, shapes, learnable blobs.
pub struct Emit<'a> {
    pub b: &'a mut Builder,
    pub layer: &'a dyn Layer,
    /// The layer's name, the prefix of its nodes and constants.
    pub name: &'a str,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub bottoms: Vec<Shape>,
    pub tops: Vec<Shape>,
    pub params: Vec<&'a Blob>,
    /// Axis 0 is the symbolic batch (`--dynamic-batch`).
    pub dynamic: bool,
}

impl Emit<'_> {
    /// The layer as its concrete type.
    pub fn get<T: 'static>(&self) -> std::result::Result<&T, String> {
        as_any(self.layer)
            .downcast_ref::<T>()
            .ok_or_else(|| format!("internal: not a {}", std::any::type_name::<T>()))
    }

    /// A node whose output is a new value `<layer>/<what>`; returns the value.
    pub fn tmp(
        &mut self,
        op: &str,
        what: &str,
        inputs: &[&str],
        attrs: Vec<(&str, Attr)>,
    ) -> String {
        self.b
            .op(op, &format!("{}/{what}", self.name), inputs, attrs)
    }

    /// A node writing the layer's top `i`.
    pub fn out(&mut self, i: usize, op: &str, inputs: &[&str], attrs: Vec<(&str, Attr)>) {
        let out = self.outputs[i].clone();
        self.b.node(op, self.name, inputs, &[&out], attrs);
    }

    /// Learnable blob `i` as an initializer `<layer>.<i>` of shape `dims`.
    pub fn param(&mut self, i: usize, dims: &[usize]) -> String {
        let blob = self.params[i];
        self.b
            .constant(&format!("{}.{i}", self.name), dims, blob.data())
    }

    /// A constant `<layer>/<what>`.
    pub fn constant(&mut self, what: &str, dims: &[usize], values: &[f32]) -> String {
        self.b
            .constant(&format!("{}/{what}", self.name), dims, values)
    }

    /// An INT64 vector constant `<layer>/<what>`.
    pub fn ints(&mut self, what: &str, values: &[i64]) -> String {
        self.b.int64s(&format!("{}/{what}", self.name), values)
    }

    /// The target shape of a Reshape whose axis 0 is the batch: −1 there
    /// with a dynamic batch (the other axes are fixed, so −1 is the batch).
    pub fn batch_shape(&mut self, what: &str, dims: &[usize]) -> String {
        let mut shape: Vec<i64> = dims.iter().map(|&d| d as i64).collect();
        if self.dynamic && !shape.is_empty() {
            shape[0] = -1;
        }
        self.ints(what, &shape)
    }
}

/// The model of a built net with its current parameters.
pub fn export(net: &Net) -> Result<ModelProto> {
    export_model(net, false)
}

/// [`export`], with a symbolic batch axis when `dynamic` (checked by the caller).
fn export_model(net: &Net, dynamic: bool) -> Result<ModelProto> {
    let graph = &net.graph;
    check_exportable(graph)?;
    let mut b = Builder::default();
    for blob in &graph.blobs {
        b.reserve(&blob.name);
    }
    // The last node that writes each blob gives its value the blob's name.
    let mut last_writer = vec![usize::MAX; graph.blobs.len()];
    for (n, node) in graph.nodes.iter().enumerate() {
        if matches!(kind(&*node.layer), Kind::Ops(_) | Kind::Input) {
            for &t in &node.tops {
                last_writer[t] = n;
            }
        }
    }
    let mut values: Vec<Option<String>> = vec![None; graph.blobs.len()];
    let mut inputs = Vec::new();
    for (n, node) in graph.nodes.iter().enumerate() {
        let blob_name = |t: usize| graph.blobs[t].name.clone();
        match kind(&*node.layer) {
            Kind::Input => {
                for &t in &node.tops {
                    inputs.push(value_info(&blob_name(t), graph.blob_shape(t), dynamic));
                    values[t] = Some(blob_name(t));
                }
            }
            Kind::Alias => {
                for &t in &node.tops {
                    values[t] = values[node.bottoms[0]].clone();
                }
            }
            Kind::Nothing | Kind::Refused(_) => {}
            Kind::Ops(map) => {
                let in_names: Vec<String> = node
                    .bottoms
                    .iter()
                    .map(|&i| values[i].clone().expect("bottoms are written before use"))
                    .collect();
                let out_names: Vec<String> = node
                    .tops
                    .iter()
                    .map(|&t| {
                        if last_writer[t] == n {
                            blob_name(t)
                        } else {
                            b.fresh(&format!("{}/{}", blob_name(t), node.def.name))
                        }
                    })
                    .collect();
                let mut e = Emit {
                    b: &mut b,
                    layer: &*node.layer,
                    name: &node.def.name,
                    inputs: in_names,
                    outputs: out_names.clone(),
                    bottoms: node
                        .bottoms
                        .iter()
                        .map(|&i| graph.blob_shape(i).to_vec())
                        .collect(),
                    tops: node
                        .tops
                        .iter()
                        .map(|&i| graph.blob_shape(i).to_vec())
                        .collect(),
                    params: net.param_ids[n].iter().map(|&p| &net.params[p]).collect(),
                    dynamic,
                };
                map(&mut e).map_err(|why| {
                    Error::Config(vec![node.def.error(
                        node.def.field_span("type", 0),
                        format!("{} cannot be exported to ONNX: {why}", node.def.describe()),
                    )])
                })?;
                for (&t, name) in node.tops.iter().zip(out_names) {
                    values[t] = Some(name);
                }
            }
        }
    }
    let mut outputs = Vec::new();
    for &t in &graph.outputs {
        let name = graph.blobs[t].name.clone();
        let Some(value) = values[t].clone() else {
            continue; // a top of a refused or silent layer: none reach here
        };
        if value != name {
            b.node("Identity", &name, &[&value], &[&name], vec![]);
        }
        outputs.push(value_info(&name, graph.blob_shape(t), dynamic));
    }
    Ok(ModelProto {
        ir_version: IR_VERSION,
        producer_name: "netrun".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        doc_string: format!("exported from the Caffe net `{}`", graph.name),
        graph: Some(GraphProto {
            node: b.nodes,
            // ONNX requires a graph name; Caffe's `name:` is optional.
            name: if graph.name.is_empty() {
                "net".into()
            } else {
                graph.name.clone()
            },
            initializer: b.initializers,
            doc_string: String::new(),
            input: inputs,
            output: outputs,
        }),
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }],
    })
}

/// A float tensor's name and shape; axis 0 is the symbolic `N` when `dynamic`.
fn value_info(name: &str, shape: &[usize], dynamic: bool) -> ValueInfoProto {
    ValueInfoProto {
        name: name.to_string(),
        r#type: Some(TypeProto {
            tensor_type: Some(TensorTypeProto {
                elem_type: proto::FLOAT,
                shape: Some(TensorShapeProto {
                    dim: shape
                        .iter()
                        .enumerate()
                        .map(|(i, &d)| Dimension {
                            value: Some(if dynamic && i == 0 {
                                DimValue::DimParam("N".into())
                            } else {
                                DimValue::DimValue(d as i64)
                            }),
                        })
                        .collect(),
                }),
            }),
        }),
    }
}
