//! Typed net definitions: `NetParameter` and `LayerParameter` as Caffe names them.
//!
//! The generic fields of a layer (`name`, `type`, `bottom`, `top`, `param`,
//! `include`, ...) are read here; each layer type reads its own `*_param`
//! block from [`LayerDef::block`] through [`LayerDef::params`].

use crate::error::{did_you_mean, Diagnostic, Error, Result};
use crate::proto::de::{from_block, from_field, quote_list, DeError};
use crate::proto::{self, Block, Document, Value};
use crate::source::{SourceFile, Span};
use serde::Deserialize;
use std::sync::Arc;

mod parse;

pub use parse::*;

/// Caffe's `Phase`: TRAIN = 0, TEST = 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Phase {
    #[serde(rename = "TRAIN")]
    Train,
    #[serde(rename = "TEST")]
    Test,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Phase::Train => "TRAIN",
            Phase::Test => "TEST",
        })
    }
}

/// `NetState`: the phase, level and stages a net is instantiated with.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct NetState {
    pub phase: Phase,
    pub level: i32,
    pub stage: Vec<String>,
}

impl Default for NetState {
    fn default() -> Self {
        NetState {
            phase: Phase::Test,
            level: 0,
            stage: Vec::new(),
        }
    }
}

/// `NetStateRule`: an `include { ... }` or `exclude { ... }` condition.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct NetStateRule {
    pub phase: Option<Phase>,
    pub min_level: Option<i32>,
    pub max_level: Option<i32>,
    pub stage: Vec<String>,
    pub not_stage: Vec<String>,
}

impl NetStateRule {
    /// Caffe's `StateMeetsRule`: every condition the rule sets must hold.
    pub fn met_by(&self, state: &NetState) -> bool {
        self.phase.is_none_or(|p| p == state.phase)
            && self.min_level.is_none_or(|l| state.level >= l)
            && self.max_level.is_none_or(|l| state.level <= l)
            && self.stage.iter().all(|s| state.stage.contains(s))
            && !self.not_stage.iter().any(|s| state.stage.contains(s))
    }
}

/// `ParamSpec`: per-learnable-blob settings, `param { name lr_mult decay_mult }`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ParamSpec {
    pub name: Option<String>,
    pub share_mode: Option<DimCheckMode>,
    pub lr_mult: f32,
    pub decay_mult: f32,
}

impl Default for ParamSpec {
    fn default() -> Self {
        ParamSpec {
            name: None,
            share_mode: None,
            lr_mult: 1.0,
            decay_mult: 1.0,
        }
    }
}

/// `ParamSpec.DimCheckMode`: STRICT = 0, PERMISSIVE = 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum DimCheckMode {
    #[serde(rename = "STRICT")]
    Strict,
    #[serde(rename = "PERMISSIVE")]
    Permissive,
}

/// `BlobShape { dim: ... }`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct BlobShape {
    pub dim: Vec<i64>,
}

/// The generic part of `LayerParameter`. The `*_param` blocks are left to the layer types.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct LayerCommon {
    name: String,
    #[serde(rename = "type")]
    type_name: String,
    bottom: Vec<String>,
    top: Vec<String>,
    phase: Option<Phase>,
    loss_weight: Vec<f32>,
    param: Vec<ParamSpec>,
    propagate_down: Vec<bool>,
    include: Vec<NetStateRule>,
    exclude: Vec<NetStateRule>,
}

/// Names of the generic `LayerParameter` fields, for suggestions.
pub const LAYER_FIELDS: &[&str] = &[
    "name",
    "type",
    "bottom",
    "top",
    "phase",
    "loss_weight",
    "param",
    "propagate_down",
    "include",
    "exclude",
];

/// One `layer { ... }` with its generic fields read and its block kept for the
/// layer type's own parameters and for locating errors.
#[derive(Debug, Clone)]
pub struct LayerDef {
    pub name: String,
    pub type_name: String,
    pub bottom: Vec<String>,
    pub top: Vec<String>,
    pub phase: Option<Phase>,
    pub loss_weight: Vec<f32>,
    pub param: Vec<ParamSpec>,
    pub propagate_down: Vec<bool>,
    pub include: Vec<NetStateRule>,
    pub exclude: Vec<NetStateRule>,
    /// The whole `layer { ... }` block.
    pub block: Block,
    pub source: Arc<SourceFile>,
}

impl LayerDef {
    /// A layer made by netrun itself (splits, legacy inputs), located at `span`.
    pub fn synthetic(
        name: String,
        type_name: &str,
        source: Arc<SourceFile>,
        span: Span,
    ) -> LayerDef {
        LayerDef {
            name,
            type_name: type_name.to_string(),
            bottom: vec![],
            top: vec![],
            phase: None,
            loss_weight: vec![],
            param: vec![],
            propagate_down: vec![],
            include: vec![],
            exclude: vec![],
            block: Block {
                fields: vec![],
                span,
            },
            source,
        }
    }

    /// Span of the whole layer block.
    pub fn span(&self) -> Span {
        self.block.span
    }

    /// Span of the `index`-th value of a repeated field (e.g. the 2nd `bottom`),
    /// or of the layer when the field is absent.
    pub fn field_span(&self, name: &str, index: usize) -> Span {
        self.block
            .all(name)
            .nth(index)
            .map(|f| f.value_span)
            .unwrap_or_else(|| self.name_span())
    }

    /// Bottom `i` as the file writes it: the split pass renames fan-out
    /// bottoms to `<blob>_<producer>_<top>_split_<k>`, which users never wrote.
    pub fn written_bottom(&self, i: usize) -> &str {
        match self.block.all("bottom").nth(i).map(|f| &f.value) {
            Some(Value::Scalar(proto::Scalar::Str(s))) => s,
            _ => self.bottom.get(i).map_or("", |s| s.as_str()),
        }
    }

    /// Span of the layer's `name:` value, or of the block.
    pub fn name_span(&self) -> Span {
        self.block
            .get("name")
            .map(|f| f.value_span)
            .unwrap_or(self.block.span)
    }

    /// A diagnostic located in this layer's file.
    pub fn error(&self, span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(message).at(&self.source, span)
    }

    /// `layer `conv1` (Convolution)`, for messages.
    pub fn describe(&self) -> String {
        format!("layer `{}` ({})", self.name, self.type_name)
    }

    /// Reads this layer's `<block_name> { ... }` into `T`; its defaults when absent.
    pub fn params<T: for<'de> Deserialize<'de> + Default>(
        &self,
        block_name: &str,
    ) -> Result<T, Diagnostic> {
        let mut found = self.block.all(block_name);
        let Some(field) = found.next() else {
            return Ok(T::default());
        };
        if let Some(second) = found.next() {
            let (line, _) = self.source.line_col(field.name_span.start);
            return Err(self
                .error(
                    second.name_span,
                    format!("{} has more than one `{block_name}` block", self.describe()),
                )
                .with_help(format!(
                    "move these fields into the `{block_name}` on line {line}"
                )));
        }
        match &field.value {
            Value::Block(b) => from_block(b, block_name).map_err(|e| self.de_error(e, b.span)),
            Value::Scalar(_) => {
                from_field::<T>(field).map_err(|e| self.de_error(e, field.value_span))
            }
        }
    }

    fn de_error(&self, e: DeError, fallback: Span) -> Diagnostic {
        let mut e = e;
        e.message = format!("{}: {}", self.describe(), e.message);
        e.into_diagnostic(&self.source, fallback)
    }

    /// The `loss_weight` of top `i`: given, or Caffe's default (1 for the first
    /// top of a loss layer, 0 otherwise).
    pub fn loss_weight_of(&self, i: usize, is_loss: bool) -> f32 {
        match self.loss_weight.get(i) {
            Some(&w) => w,
            None if is_loss && i == 0 && self.loss_weight.is_empty() => 1.0,
            None => 0.0,
        }
    }
}

/// A parsed `NetParameter`.
#[derive(Debug, Clone)]
pub struct NetDef {
    pub name: String,
    pub layers: Vec<LayerDef>,
    /// Legacy net inputs: `input: "data"` with `input_dim` ×4 or `input_shape`.
    pub inputs: Vec<LegacyInput>,
    pub force_backward: bool,
    pub state: NetState,
    pub source: Arc<SourceFile>,
    /// Notes on how the file was read (a V1 net upgraded, an ignored
    /// `*_param` block); `Graph::build` prints them.
    pub warnings: Vec<Diagnostic>,
}

#[derive(Debug, Clone)]
pub struct LegacyInput {
    pub name: String,
    pub shape: Vec<i64>,
    /// The `input:` value.
    pub span: Span,
    /// Each dimension's value in the file, for errors about one of them.
    pub dim_spans: Vec<Span>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct NetCommon {
    name: String,
    input: Vec<String>,
    input_dim: Vec<i64>,
    input_shape: Vec<BlobShape>,
    force_backward: bool,
    state: Option<NetState>,
    debug_info: bool,
}

const NET_FIELDS: &[&str] = &[
    "name",
    "layer",
    "input",
    "input_dim",
    "input_shape",
    "force_backward",
    "state",
    "debug_info",
];
