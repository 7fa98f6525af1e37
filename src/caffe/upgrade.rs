//! Caffe's net upgrades, applied to the parsed text before it is read:
//! - V1 `layers { type: CONVOLUTION ... }` blocks become `layer` blocks as
//!   Caffe's `UpgradeV1Net` does: the enum type becomes its string
//!   (`"Convolution"`), and the per-blob `blobs_lr`, `weight_decay`,
//!   `param` (share names) and `blob_share_mode` become one `param { }`
//!   block per blob (`lr_mult`, `decay_mult`, `name`, `share_mode`).
//!   `*_param` blocks keep their names. A note says the file is V1.
//! - Data-transform fields written in a data layer's own parameters
//!   (`scale`, `mean_file`, `crop_size`, `mirror` in `data_param` or
//!   `image_data_param`) move into `transform_param`, as Caffe's
//!   `UpgradeNetDataTransformation` does.
//!
//! - V0 `layers { layer { ... } }` blocks (Caffe's `UpgradeV0Net`, padding
//!   layers folded) become V1 blocks first: see [`super::upgrade_v0`].
//! - A BatchNorm layer's three `param` specs are dropped, as Caffe's
//!   `UpgradeNetBatchNorm` does.
//!
//! Spans are kept, so every later error still points into the file.
//! [`to_text`] prints an upgraded net (`netrun upgrade`).

use super::messages::V1_TYPES;
use super::upgrade_v0::is_v0;
use crate::error::{did_you_mean, Diagnostic};
use crate::proto::{Block, Field, Scalar, Value};
use crate::source::{SourceFile, Span};
use std::sync::Arc;

/// An upgraded net block, the errors found, the notes to show and the
/// upgrades applied (for `netrun upgrade`).
pub struct Upgraded {
    pub block: Block,
    pub errors: Vec<Diagnostic>,
    pub notes: Vec<Diagnostic>,
    pub applied: Vec<String>,
}

/// The note that a net is read upgraded, at `span`.
fn upgrade_note(what: &str, source: &Arc<SourceFile>, span: Span) -> Diagnostic {
    Diagnostic::new(format!("this net uses {what}"))
        .at(source, span)
        .with_help(format!(
            "write the file in today's format with `netrun upgrade {} -o NEW.prototxt`",
            source.path.display()
        ))
        .as_warning()
}

/// Upgrades a net's top-level block (module docs).
pub fn upgrade(root: &Block, source: &Arc<SourceFile>) -> Upgraded {
    let mut errors = Vec::new();
    let mut notes = Vec::new();
    let mut applied = Vec::new();
    let v0_fields: Vec<&Field> = root
        .fields
        .iter()
        .filter(|f| f.name == "layers" && matches!(&f.value, Value::Block(b) if is_v0(b)))
        .collect();
    let mut v0 = super::upgrade_v0::upgrade(&v0_fields, source);
    errors.append(&mut v0.errors);
    notes.append(&mut v0.warnings);
    if let Some(first) = v0_fields.first() {
        let folded = v0
            .folded
            .iter()
            .map(|(p, into)| format!("`{p}` into `{into}`"))
            .collect::<Vec<_>>();
        let folded = match folded.is_empty() {
            true => String::new(),
            false => format!("; padding layers folded: {}", folded.join(", ")),
        };
        notes.push(upgrade_note(
            &format!(
                "V0 `layers {{ layer {{ ... }} }}` blocks; they are read upgraded, as Caffe's \
                 UpgradeV0Net and UpgradeV1Net do{folded}"
            ),
            source,
            first.name_span,
        ));
        applied.push(format!(
            "V0 layers (UpgradeV0Net{folded}), then V1 layers (UpgradeV1Net)"
        ));
    }
    let mut v0_layers = v0.layers.into_iter();
    let mut fields = Vec::with_capacity(root.fields.len());
    let mut v1_seen = false;
    let mut batch_norm = Vec::new();
    for f in &root.fields {
        let is_v0_field = v0_fields.iter().any(|v| std::ptr::eq(*v, f));
        let v1 = match (f.name.as_str(), &f.value) {
            ("layers", _) if is_v0_field => match v0_layers.next().flatten() {
                Some(Field {
                    value: Value::Block(b),
                    ..
                }) => Some(b),
                _ => continue,
            },
            ("layers", Value::Block(b)) => {
                if !v1_seen {
                    v1_seen = true;
                    notes.push(upgrade_note(
                        "V1 `layers { ... }` blocks; they are read upgraded, as Caffe's UpgradeV1Net does",
                        source,
                        f.name_span,
                    ));
                    applied.push("V1 layers (UpgradeV1Net)".into());
                }
                Some(b.clone())
            }
            _ => None,
        };
        let layer = match (v1, &f.value) {
            (Some(b), _) => match v1_layer(&b, source) {
                Ok(block) => block,
                Err(d) => {
                    errors.push(d);
                    continue;
                }
            },
            (None, Value::Block(b)) if f.name == "layer" => b.clone(),
            _ => {
                fields.push(f.clone());
                continue;
            }
        };
        let layer = batch_norm_specs(&data_transform(&layer, &mut applied), source, &mut notes);
        if let Some(name) = layer.1 {
            batch_norm.push(name);
        }
        fields.push(Field {
            name: "layer".into(),
            value: Value::Block(layer.0),
            ..f.clone()
        });
    }
    if !batch_norm.is_empty() {
        applied.push(format!(
            "BatchNorm param specs dropped ({})",
            batch_norm.join(", ")
        ));
    }
    Upgraded {
        block: Block {
            fields,
            span: root.span,
        },
        errors,
        notes,
        applied,
    }
}

/// Caffe's BatchNorm upgrade: a BatchNorm layer with exactly three `param`
/// specs (one per statistics blob, usually `lr_mult: 0`, from the days the
/// solver updated them) loses them, since the statistics are never learned.
/// Returns the layer and, when upgraded, its name.
fn batch_norm_specs(
    layer: &Block,
    source: &Arc<SourceFile>,
    notes: &mut Vec<Diagnostic>,
) -> (Block, Option<String>) {
    let is_bn = layer
        .get("type")
        .is_some_and(|t| matches!(&t.value, Value::Scalar(Scalar::Str(s)) if s == "BatchNorm"));
    let specs: Vec<&Field> = layer.all("param").collect();
    if !is_bn || specs.len() != 3 {
        return (layer.clone(), None);
    }
    let name = match layer.get("name").map(|n| &n.value) {
        Some(Value::Scalar(Scalar::Str(s))) => s.clone(),
        _ => String::new(),
    };
    notes.push(
        Diagnostic::new(format!(
            "layer `{name}` (BatchNorm): its three `param` specs are dropped, as Caffe's \
             BatchNorm upgrade drops them: the statistics blobs are never learned"
        ))
        .at(source, specs[0].name_span)
        .with_help("leave the `param` blocks out")
        .as_warning(),
    );
    (layer.filtered(|f| f.name != "param"), Some(name))
}

/// One V1 layer as today's `layer` block.
fn v1_layer(b: &Block, source: &Arc<SourceFile>) -> Result<Block, Diagnostic> {
    let mut fields = Vec::new();
    // Per blob: lr_mult, decay_mult, name, share_mode, in blob order.
    let mut specs: Vec<Vec<Field>> = Vec::new();
    let mut spec_at = None;
    let mut counts = [0usize; 4];
    for f in &b.fields {
        let k = match f.name.as_str() {
            "blobs_lr" => Some((0, "lr_mult")),
            "weight_decay" => Some((1, "decay_mult")),
            "param" => Some((2, "name")),
            "blob_share_mode" => Some((3, "share_mode")),
            _ => None,
        };
        if let Some((k, name)) = k {
            spec_at.get_or_insert(fields.len());
            let i = counts[k];
            if specs.len() <= i {
                specs.resize(i + 1, Vec::new());
            }
            specs[i].push(Field {
                name: name.into(),
                ..f.clone()
            });
            counts[k] += 1;
            continue;
        }
        match f.name.as_str() {
            "type" => {
                let word = match &f.value {
                    Value::Scalar(Scalar::Ident(w) | Scalar::Str(w)) => w.clone(),
                    Value::Scalar(Scalar::Number(n)) => V1_TYPES
                        .iter()
                        .find(|t| n.parse::<i32>().ok() == Some(t.1))
                        .map_or(n.clone(), |t| t.0.to_string()),
                    Value::Block(_) => String::new(),
                };
                let Some(&(_, _, name)) = V1_TYPES.iter().find(|t| t.0 == word && t.1 != 0) else {
                    return Err(Diagnostic::new(format!("unknown V1 layer type `{word}`"))
                        .at(source, f.value_span)
                        .with_help(
                            did_you_mean(&word, V1_TYPES.iter().map(|t| t.0))
                                .unwrap_or_else(|| "V1 types are upper-case enum names such as CONVOLUTION, POOLING, INNER_PRODUCT".into()),
                        ));
                };
                fields.push(Field {
                    value: Value::Scalar(Scalar::Str(name.into())),
                    ..f.clone()
                });
            }
            _ => fields.push(f.clone()),
        }
    }
    let params = specs.into_iter().map(|spec| {
        let span = spec.first().map_or(b.span, |f| f.name_span);
        Field {
            name: "param".into(),
            name_span: span,
            value: Value::Block(Block { fields: spec, span }),
            value_span: span,
        }
    });
    let at = spec_at.unwrap_or(fields.len());
    fields.splice(at..at, params);
    Ok(Block {
        fields,
        span: b.span,
    })
}

/// Moves data-transform fields of a data layer's own block into `transform_param`.
fn data_transform(layer: &Block, applied: &mut Vec<String>) -> Block {
    const MOVED: [&str; 4] = ["scale", "mean_file", "crop_size", "mirror"];
    let mut moved = Vec::new();
    let mut fields: Vec<Field> = layer
        .fields
        .iter()
        .map(|f| match (&f.value, f.name.as_str()) {
            (Value::Block(b), "data_param" | "image_data_param") => {
                let (go, stay): (Vec<Field>, Vec<Field>) = b
                    .fields
                    .iter()
                    .cloned()
                    .partition(|g| MOVED.contains(&g.name.as_str()));
                moved.extend(go);
                Field {
                    value: Value::Block(Block {
                        fields: stay,
                        span: b.span,
                    }),
                    ..f.clone()
                }
            }
            _ => f.clone(),
        })
        .collect();
    if moved.is_empty() {
        return layer.clone();
    }
    const WHAT: &str =
        "data-transform fields into `transform_param` (UpgradeNetDataTransformation)";
    if !applied.iter().any(|a| a == WHAT) {
        applied.push(WHAT.into());
    }
    match fields.iter_mut().find(|f| f.name == "transform_param") {
        Some(Field {
            value: Value::Block(t),
            ..
        }) => t.fields.extend(moved),
        _ => {
            let span = moved[0].name_span;
            fields.push(Field {
                name: "transform_param".into(),
                name_span: span,
                value: Value::Block(Block {
                    fields: moved,
                    span,
                }),
                value_span: span,
            });
        }
    }
    Block {
        fields,
        span: layer.span,
    }
}

/// Prints a block in protobuf text format (comments are not kept).
pub fn to_text(block: &Block) -> String {
    let mut out = String::new();
    write_fields(&block.fields, 0, &mut out);
    out
}

fn write_fields(fields: &[Field], depth: usize, out: &mut String) {
    let pad = "  ".repeat(depth);
    for f in fields {
        match &f.value {
            Value::Block(b) => {
                out.push_str(&format!("{pad}{} {{\n", f.name));
                write_fields(&b.fields, depth + 1, out);
                out.push_str(&format!("{pad}}}\n"));
            }
            Value::Scalar(s) => {
                let v = match s {
                    Scalar::Str(s) => format!("{s:?}"),
                    Scalar::Number(n) | Scalar::Ident(n) => n.clone(),
                };
                out.push_str(&format!("{pad}{}: {v}\n", f.name));
            }
        }
    }
}

/// The span-less field `name: value` (for blocks made by the upgrade).
pub fn scalar_field(name: &str, value: Scalar) -> Field {
    Field {
        name: name.into(),
        name_span: Span::default(),
        value: Value::Scalar(value),
        value_span: Span::default(),
    }
}

/// `netrun upgrade NET`: the net in today's text format: V1 layers and data
/// transforms upgraded (module docs), legacy `input`/`input_dim`/`input_shape`
/// turned into an Input layer named `input` first. The net is checked first;
/// comments are not kept.
///
/// Returns the text and the upgrades applied (empty when the file was already current).
pub fn upgrade_file(path: &std::path::Path) -> crate::Result<(String, Vec<String>)> {
    let source = SourceFile::read(path)?;
    let doc = crate::proto::parse(&source)?;
    let net = crate::netdef::parse_net(&doc)?;
    let up = upgrade(&doc.root, &source);
    let mut applied = up.applied;
    let legacy = ["input", "input_dim", "input_shape"];
    let mut fields: Vec<Field> = Vec::new();
    let mut input_at = None;
    for f in up.block.fields {
        if legacy.contains(&f.name.as_str()) {
            input_at.get_or_insert(fields.len());
        } else {
            fields.push(f);
        }
    }
    if let Some(at) = input_at {
        let str_field = |n: &str, v: &str| scalar_field(n, Scalar::Str(v.into()));
        let mut layer = vec![str_field("name", "input"), str_field("type", "Input")];
        layer.extend(net.inputs.iter().map(|i| str_field("top", &i.name)));
        let shapes = net.inputs.iter().map(|i| {
            let dims = i
                .shape
                .iter()
                .map(|d| scalar_field("dim", Scalar::Number(d.to_string())))
                .collect();
            block_field("shape", dims)
        });
        layer.push(block_field("input_param", shapes.collect()));
        fields.insert(at, block_field("layer", layer));
        applied
            .push("net inputs (`input`/`input_dim` into an Input layer, UpgradeNetInput)".into());
    }
    let text = to_text(&Block {
        fields,
        span: Span::default(),
    });
    Ok((text, applied))
}

fn block_field(name: &str, fields: Vec<Field>) -> Field {
    Field {
        name: name.into(),
        name_span: Span::default(),
        value: Value::Block(Block {
            fields,
            span: Span::default(),
        }),
        value_span: Span::default(),
    }
}
