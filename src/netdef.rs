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

/// Reads a net file. All independent problems are reported together.
pub fn read_net_file(path: &std::path::Path) -> Result<NetDef> {
    let source = SourceFile::read(path)?;
    parse_net(&proto::parse(&source)?)
}

/// Reads a net from text (tests, generated nets); `name` stands for the file in messages.
pub fn parse_net_str(name: &str, text: &str) -> Result<NetDef> {
    parse_net(&proto::parse_str(name, text)?)
}

/// Builds the typed net from a parsed document.
pub fn parse_net(doc: &Document) -> Result<NetDef> {
    parse_net_block(&doc.root, &doc.source)
}

/// Builds a net from a block (a whole file, or a solver's `net_param { ... }`).
pub fn parse_net_block(root: &Block, source: &Arc<SourceFile>) -> Result<NetDef> {
    // V1 `layers` and old data-transform fields are read upgraded, as Caffe does.
    let upgraded = crate::caffe::upgrade::upgrade(root, source);
    let root = &upgraded.block;
    let mut diags = upgraded.errors;
    let mut warnings = upgraded.notes;
    let mut layers = Vec::new();
    for field in &root.fields {
        match (field.name.as_str(), &field.value) {
            ("layer", Value::Block(b)) => match parse_layer(b, source) {
                Ok(l) => {
                    warnings.extend(crate::layers::misplaced_blocks(&l));
                    layers.push(l)
                }
                Err(mut d) => diags.append(&mut d),
            },
            ("layer", _) => diags.push(
                Diagnostic::new("`layer` must be a block: `layer { name: ... type: ... }`")
                    .at(source, field.value_span),
            ),
            ("layers", _) => diags.push(
                Diagnostic::new(
                    "V1 `layers` must be a block: `layers { name: ... type: CONVOLUTION }`",
                )
                .at(source, field.value_span),
            ),
            _ => {}
        }
    }
    let common_block = root.filtered(|f| f.name != "layer" && f.name != "layers");
    let common: NetCommon = match from_block(&common_block, "") {
        Ok(c) => c,
        Err(e) => {
            let mut e = e;
            if e.message.starts_with("unknown field") {
                let field = e.message.split('`').nth(1).unwrap_or("").to_string();
                e.message = format!("unknown net field `{field}`");
                e.help = did_you_mean(&field, NET_FIELDS.iter().copied())
                    .or_else(|| Some(format!("a net file holds {}", quote_list(NET_FIELDS))));
            }
            diags.push(e.into_diagnostic(source, root.span));
            // Nothing more to check on the net level: its fields were not read.
            return Err(Error::Config(sort_diags(diags)));
        }
    };
    let inputs = legacy_inputs(&common, root, source, &mut diags);
    if !diags.is_empty() {
        return Err(Error::Config(sort_diags(diags)));
    }
    Ok(NetDef {
        name: common.name,
        layers,
        inputs,
        force_backward: common.force_backward,
        state: common.state.unwrap_or_default(),
        source: source.clone(),
        warnings,
    })
}

fn sort_diags(mut diags: Vec<Diagnostic>) -> Vec<Diagnostic> {
    diags.sort_by_key(|d| d.location.as_ref().map(|(_, s)| s.start));
    diags
}

fn legacy_inputs(
    common: &NetCommon,
    root: &Block,
    source: &Arc<SourceFile>,
    diags: &mut Vec<Diagnostic>,
) -> Vec<LegacyInput> {
    let spans: Vec<Span> = root.all("input").map(|f| f.value_span).collect();
    let n = common.input.len();
    if n == 0 {
        if let Some(f) = root.get("input_dim").or_else(|| root.get("input_shape")) {
            diags.push(
                Diagnostic::new(format!("`{}` without an `input` name", f.name))
                    .at(source, f.name_span)
                    .with_help(format!(
                        "name the blob first: `input: \"data\"`, then its `{}`",
                        f.name
                    )),
            );
        }
        return vec![];
    }
    let dim_fields: Vec<&crate::proto::Field> = root.all("input_dim").collect();
    let shape_fields: Vec<&crate::proto::Field> = root.all("input_shape").collect();
    let plural = |k: usize, what: &str| format!("{k} {what}{}", if k == 1 { "" } else { "s" });
    let who = if n == 1 {
        format!("net input `{}` needs", common.input[0])
    } else {
        format!("{n} net inputs need")
    };
    let help = "give 4 `input_dim` lines or one `input_shape { dim: ... }` per `input`";
    let problem = if !dim_fields.is_empty() && !shape_fields.is_empty() {
        Some((
            "net inputs take either `input_dim` or `input_shape`, not both".to_string(),
            shape_fields[0].name_span,
            "keep one of the two forms",
        ))
    } else if !shape_fields.is_empty() {
        let k = shape_fields.len();
        (k != n).then(|| {
            let at = shape_fields[n.min(k - 1)].name_span;
            (
                format!("{who} {}, found {k}", plural(n, "`input_shape` block")),
                at,
                help,
            )
        })
    } else {
        let k = dim_fields.len();
        (k != 4 * n).then(|| {
            // The first value too many, the last one given, or the `input:` itself.
            let at = match k {
                0 => spans[0],
                _ => dim_fields[(4 * n).min(k - 1)].value_span,
            };
            let each = if n == 1 { "" } else { " each" };
            (
                format!(
                    "{who} {} (N, C, H, W{each}), found {k}",
                    plural(4 * n, "`input_dim` value")
                ),
                at,
                help,
            )
        })
    };
    if let Some((message, span, help)) = problem {
        diags.push(Diagnostic::new(message).at(source, span).with_help(help));
        return vec![];
    }
    let (shapes, dim_spans): (Vec<Vec<i64>>, Vec<Vec<Span>>) = if shape_fields.is_empty() {
        let spans: Vec<Span> = dim_fields.iter().map(|f| f.value_span).collect();
        (
            common.input_dim.chunks(4).map(|c| c.to_vec()).collect(),
            spans.chunks(4).map(|c| c.to_vec()).collect(),
        )
    } else {
        let dim_spans = shape_fields
            .iter()
            .map(|f| match &f.value {
                Value::Block(b) => b.all("dim").map(|d| d.value_span).collect(),
                Value::Scalar(_) => vec![],
            })
            .collect();
        (
            common.input_shape.iter().map(|s| s.dim.clone()).collect(),
            dim_spans,
        )
    };
    common
        .input
        .iter()
        .zip(shapes.into_iter().zip(dim_spans))
        .zip(spans)
        .map(|((name, (shape, dim_spans)), span)| LegacyInput {
            name: name.clone(),
            shape,
            span,
            dim_spans,
        })
        .collect()
}

fn parse_layer(block: &Block, source: &Arc<SourceFile>) -> Result<LayerDef, Vec<Diagnostic>> {
    let string_field = |name: &str| {
        block.get(name).and_then(|f| match &f.value {
            Value::Scalar(proto::Scalar::Str(s)) => Some(s.clone()),
            _ => None,
        })
    };
    let type_name = string_field("type");
    // `layer `fc5` (InnerProduct)` as far as the block tells, for messages.
    let describe = match (string_field("name"), &type_name) {
        (Some(n), Some(t)) => format!("layer `{n}` ({t})"),
        (Some(n), None) => format!("layer `{n}`"),
        (None, Some(t)) => format!("unnamed {t} layer"),
        (None, None) => "unnamed layer".to_string(),
    };
    // `*_param` blocks belong to the layer type and are checked by it.
    let common_block = block.filtered(|f| !f.name.ends_with("_param"));
    let common: LayerCommon = from_block(&common_block, "layer").map_err(|e| {
        let mut e = e;
        if let Some(rest) = e.message.strip_suffix(" in `layer`") {
            let field = rest.split('`').nth(1).unwrap_or("").to_string();
            let mut candidates: Vec<&str> = LAYER_FIELDS.to_vec();
            let own = type_name
                .as_deref()
                .and_then(crate::layers::find)
                .map(|t| t.params)
                .unwrap_or(&[]);
            candidates.extend(own.iter().copied());
            let all = crate::layers::all_param_blocks();
            candidates.extend(all.iter().copied());
            e.help = did_you_mean(&field, candidates.iter().copied()).or(e.help);
            e.message = rest.to_string();
        }
        e.message = format!("{describe}: {}", e.message);
        vec![e.into_diagnostic(source, block.span)]
    })?;
    let mut diags = Vec::new();
    if common.type_name.is_empty() {
        // A `*_param` block tells which type was meant.
        let guess = block.fields.iter().find_map(|f| {
            crate::layers::REGISTRY
                .iter()
                .find(|t| t.params.contains(&f.name.as_str()))
                .map(|t| (t.name, f.name.as_str()))
        });
        diags.push(
            Diagnostic::new(format!("{describe} has no `type`"))
                .at(
                    source,
                    block.get("name").map_or(block.span, |f| f.name_span),
                )
                .with_help(match guess {
                    Some((t, p)) => format!("add `type: \"{t}\"`, the type that reads `{p}`"),
                    None => "every layer needs a `type`, such as `type: \"Convolution\"`".into(),
                }),
        );
    }
    if !common.include.is_empty() && !common.exclude.is_empty() {
        let span = block
            .all("exclude")
            .next()
            .map_or(block.span, |f| f.name_span);
        diags.push(
            Diagnostic::new(format!("{describe} has both `include` and `exclude` rules"))
                .at(source, span)
                .with_help("Caffe takes either include rules or exclude rules, not both"),
        );
    }
    if !diags.is_empty() {
        return Err(diags);
    }
    Ok(LayerDef {
        name: common.name,
        type_name: common.type_name,
        bottom: common.bottom,
        top: common.top,
        phase: common.phase,
        loss_weight: common.loss_weight,
        param: common.param,
        propagate_down: common.propagate_down,
        include: common.include,
        exclude: common.exclude,
        block: block.clone(),
        source: source.clone(),
    })
}

/// Caffe's `FilterNet`: keeps the layers whose include/exclude rules admit `state`.
/// A layer with `include` rules needs one of them met; with `exclude` rules, none.
/// (A layer's own `phase:` field is informational, as in Caffe.)
pub fn layer_included(layer: &LayerDef, state: &NetState) -> bool {
    if !layer.include.is_empty() {
        layer.include.iter().any(|r| r.met_by(state))
    } else {
        !layer.exclude.iter().any(|r| r.met_by(state))
    }
}
