//! Caffe's V0 nets, as its `UpgradeV0Net` reads them: each
//! `layers { layer { name type ...flat fields } bottom top }` becomes a V1
//! `layers` block, which the V1 upgrade then turns into today's `layer`.
//!
//! * Padding layers (`type: "padding"`, `pad: P`) disappear: the layer that
//!   reads a padding layer's top must be a convolution or pooling with one
//!   bottom; it reads the padding layer's bottom instead and gets `pad: P`
//!   (zero padding inside the layer is the same sum as padding first).
//! * The V0 type names (`conv`, `innerproduct`, `images`, ...) become V1's
//!   enum (`CONVOLUTION`, `INNER_PRODUCT`, `IMAGE_DATA`, ...).
//! * The flat fields go into the parameter block of the type that uses them
//!   (`num_output` → `convolution_param` or `inner_product_param`,
//!   `kernelsize` → `kernel_size`, `batchsize` → `batch_size`, `cropsize` →
//!   `transform_param.crop_size`, ...; the table is [`FIELDS`]). A field the
//!   layer's type has no place for is dropped with a warning, as Caffe
//!   drops it with an error line and goes on; an unknown field is an error.

use crate::error::{did_you_mean, Diagnostic};
use crate::proto::{Block, Field, Scalar, Value};
use crate::source::{SourceFile, Span};
use std::collections::HashMap;
use std::sync::Arc;

/// V0 type → V1 enum name.
const TYPES: &[(&str, &str)] = &[
    ("accuracy", "ACCURACY"),
    ("bnll", "BNLL"),
    ("concat", "CONCAT"),
    ("conv", "CONVOLUTION"),
    ("data", "DATA"),
    ("dropout", "DROPOUT"),
    ("euclidean_loss", "EUCLIDEAN_LOSS"),
    ("flatten", "FLATTEN"),
    ("hdf5_data", "HDF5_DATA"),
    ("hdf5_output", "HDF5_OUTPUT"),
    ("im2col", "IM2COL"),
    ("images", "IMAGE_DATA"),
    ("infogain_loss", "INFOGAIN_LOSS"),
    ("innerproduct", "INNER_PRODUCT"),
    ("lrn", "LRN"),
    ("multinomial_logistic_loss", "MULTINOMIAL_LOGISTIC_LOSS"),
    ("pool", "POOLING"),
    ("relu", "RELU"),
    ("sigmoid", "SIGMOID"),
    ("softmax", "SOFTMAX"),
    ("softmax_loss", "SOFTMAX_LOSS"),
    ("split", "SPLIT"),
    ("tanh", "TANH"),
    ("window_data", "WINDOW_DATA"),
];

/// A V0 field: its V0 name, today's name, and the parameter block it goes to
/// for each V0 type that uses it.
type Place = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

const CONV_IP: &[(&str, &str)] = &[
    ("conv", "convolution_param"),
    ("innerproduct", "inner_product_param"),
];
const CONV_POOL: &[(&str, &str)] = &[("conv", "convolution_param"), ("pool", "pooling_param")];
const BATCH: &[(&str, &str)] = &[
    ("data", "data_param"),
    ("hdf5_data", "hdf5_data_param"),
    ("images", "image_data_param"),
    ("window_data", "window_data_param"),
];
const LRN: &[(&str, &str)] = &[("lrn", "lrn_param")];
const IMAGES: &[(&str, &str)] = &[("images", "image_data_param")];
const WINDOW: &[(&str, &str)] = &[("window_data", "window_data_param")];
/// Every type: the transform fields go to `transform_param` whatever the type.
const ANY: &[(&str, &str)] = &[("", "transform_param")];

/// The flat V0 fields (Caffe's `V0LayerParameter`), name and type aside.
const FIELDS: &[Place] = &[
    ("num_output", "num_output", CONV_IP),
    ("biasterm", "bias_term", CONV_IP),
    ("weight_filler", "weight_filler", CONV_IP),
    ("bias_filler", "bias_filler", CONV_IP),
    ("pad", "pad", CONV_POOL),
    ("kernelsize", "kernel_size", CONV_POOL),
    ("group", "group", &[("conv", "convolution_param")]),
    ("stride", "stride", CONV_POOL),
    ("pool", "pool", &[("pool", "pooling_param")]),
    (
        "dropout_ratio",
        "dropout_ratio",
        &[("dropout", "dropout_param")],
    ),
    ("local_size", "local_size", LRN),
    ("alpha", "alpha", LRN),
    ("beta", "beta", LRN),
    ("k", "k", LRN),
    (
        "source",
        "source",
        &[
            ("data", "data_param"),
            ("hdf5_data", "hdf5_data_param"),
            ("images", "image_data_param"),
            ("window_data", "window_data_param"),
            ("infogain_loss", "infogain_loss_param"),
        ],
    ),
    ("scale", "scale", ANY),
    ("meanfile", "mean_file", ANY),
    ("batchsize", "batch_size", BATCH),
    ("cropsize", "crop_size", ANY),
    ("mirror", "mirror", ANY),
    (
        "rand_skip",
        "rand_skip",
        &[("data", "data_param"), ("images", "image_data_param")],
    ),
    ("shuffle_images", "shuffle", IMAGES),
    ("new_height", "new_height", IMAGES),
    ("new_width", "new_width", IMAGES),
    ("concat_dim", "concat_dim", &[("concat", "concat_param")]),
    ("det_fg_threshold", "fg_threshold", WINDOW),
    ("det_bg_threshold", "bg_threshold", WINDOW),
    ("det_fg_fraction", "fg_fraction", WINDOW),
    ("det_context_pad", "context_pad", WINDOW),
    ("det_crop_mode", "crop_mode", WINDOW),
];

/// Fields copied to the V1 layer as they are (the V1 upgrade reads them).
const KEPT: &[&str] = &["blobs_lr", "weight_decay", "blobs"];

/// Whether a `layers` block is V0 (holds a `layer { ... }` block).
pub fn is_v0(b: &Block) -> bool {
    b.all("layer").any(|f| matches!(f.value, Value::Block(_)))
}

/// The V0 net's `layers` blocks as V1 ones (one per V0 block given, None for
/// a padding layer or one in error), the errors and warnings found, and the
/// padding layers folded (padding layer, into layer).
pub struct V0Net {
    pub layers: Vec<Option<Field>>,
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
    pub folded: Vec<(String, String)>,
}

/// One V0 connection, read.
struct Conn<'a> {
    field: &'a Field,
    inner: &'a Block,
    name: String,
    kind: String,
    bottoms: Vec<&'a Field>,
    tops: Vec<&'a Field>,
}

fn text(f: &Field) -> String {
    match &f.value {
        Value::Scalar(Scalar::Str(s) | Scalar::Ident(s) | Scalar::Number(s)) => s.clone(),
        Value::Block(_) => String::new(),
    }
}

/// Upgrades the V0 `layers` fields of a net, in order (module docs); every
/// field given must be a block for which [`is_v0`] holds.
pub fn upgrade(v0: &[&Field], source: &Arc<SourceFile>) -> V0Net {
    let mut out = V0Net {
        layers: Vec::new(),
        errors: Vec::new(),
        warnings: Vec::new(),
        folded: Vec::new(),
    };
    // Callers pass only blocks for which `is_v0` holds.
    let conns: Vec<Conn> = v0
        .iter()
        .filter_map(|f| {
            let Value::Block(b) = &f.value else {
                return None;
            };
            let inner = b.all("layer").find_map(|l| match &l.value {
                Value::Block(i) => Some(i),
                _ => None,
            })?;
            Some(Conn {
                field: f,
                inner,
                name: inner.get("name").map(text).unwrap_or_default(),
                kind: inner.get("type").map(text).unwrap_or_default(),
                bottoms: b.all("bottom").collect(),
                tops: b.all("top").collect(),
            })
        })
        .collect();
    // Which connection last wrote each blob.
    let mut producer: HashMap<String, usize> = HashMap::new();
    for (i, c) in conns.iter().enumerate() {
        let mut bottoms: Vec<Field> = c.bottoms.iter().map(|&f| f.clone()).collect();
        let mut pad = None;
        for (j, b) in c.bottoms.iter().enumerate() {
            let Some(&p) = producer.get(&text(b)) else {
                continue;
            };
            let padding = &conns[p];
            if padding.kind != "padding" {
                continue;
            }
            let bad = if c.kind != "conv" && c.kind != "pool" {
                Some(format!("a `{}` layer cannot read it", c.kind))
            } else if c.bottoms.len() != 1 || padding.bottoms.len() != 1 || padding.tops.len() != 1
            {
                Some("folding needs one bottom and one top on each side".into())
            } else {
                None
            };
            if let Some(why) = bad {
                out.errors.push(
                    Diagnostic::new(format!(
                        "layer `{}` reads the top of padding layer `{}`: {why}",
                        c.name, padding.name
                    ))
                    .at(source, b.value_span)
                    .with_help("Caffe folds a padding layer only into the convolution or pooling that follows it"),
                );
                continue;
            }
            bottoms[j] = Field {
                value: padding.bottoms[0].value.clone(),
                ..bottoms[j].clone()
            };
            pad = padding.inner.get("pad").cloned();
            out.folded.push((padding.name.clone(), c.name.clone()));
        }
        for t in &c.tops {
            producer.insert(text(t), i);
        }
        if c.kind == "padding" {
            out.layers.push(None);
            continue;
        }
        match v1_block(c, bottoms, pad, source, &mut out.warnings) {
            Ok(block) => out.layers.push(Some(Field {
                name: "layers".into(),
                value: Value::Block(block),
                ..c.field.clone()
            })),
            Err(d) => {
                out.errors.push(d);
                out.layers.push(None);
            }
        }
    }
    out
}

/// The V1 `layers` block of one V0 connection (`pad` from a folded padding layer).
fn v1_block(
    c: &Conn,
    bottoms: Vec<Field>,
    pad: Option<Field>,
    source: &Arc<SourceFile>,
    warnings: &mut Vec<Diagnostic>,
) -> Result<Block, Diagnostic> {
    let Some(&(_, v1_type)) = TYPES.iter().find(|t| t.0 == c.kind) else {
        let at = c.inner.get("type").map_or(c.inner.span, |f| f.value_span);
        return Err(
            Diagnostic::new(format!("unknown V0 layer type `{}`", c.kind))
                .at(source, at)
                .with_help(
                    did_you_mean(&c.kind, TYPES.iter().map(|t| t.0)).unwrap_or_else(|| {
                        "V0 types are lower-case names such as conv, pool, innerproduct, relu"
                            .into()
                    }),
                ),
        );
    };
    let mut fields: Vec<Field> = Vec::new();
    // Parameter blocks in order of first use.
    let mut blocks: Vec<(String, Vec<Field>, Span)> = Vec::new();
    // A folded padding layer's `pad` replaces the layer's own.
    let own = c
        .inner
        .fields
        .iter()
        .filter(|f| pad.is_none() || f.name != "pad");
    for f in own.chain(pad.as_ref()) {
        match f.name.as_str() {
            "name" => fields.push(f.clone()),
            "type" => fields.push(Field {
                value: Value::Scalar(Scalar::Ident(v1_type.into())),
                ..f.clone()
            }),
            n if KEPT.contains(&n) => fields.push(f.clone()),
            n => {
                let Some(&(_, new, places)) = FIELDS.iter().find(|p| p.0 == n) else {
                    return Err(Diagnostic::new(format!("unknown V0 layer field `{n}`"))
                        .at(source, f.name_span)
                        .with_help_opt(did_you_mean(
                            n,
                            FIELDS
                                .iter()
                                .map(|p| p.0)
                                .chain(["name", "type"])
                                .chain(KEPT.iter().copied()),
                        )));
                };
                let Some(&(_, block)) = places.iter().find(|p| p.0 == c.kind || p.0.is_empty())
                else {
                    warnings.push(
                        Diagnostic::new(format!(
                            "V0 field `{n}` does not apply to a `{}` layer; dropped, as Caffe's upgrade drops it",
                            c.kind
                        ))
                        .at(source, f.name_span)
                        .as_warning(),
                    );
                    continue;
                };
                let mut moved = Field {
                    name: new.into(),
                    ..f.clone()
                };
                if n == "pool" {
                    // V0's PoolMethod numbers are today's: MAX 0, AVE 1, STOCHASTIC 2.
                    if let Value::Scalar(Scalar::Number(num)) = &f.value {
                        let word =
                            ["MAX", "AVE", "STOCHASTIC"].get(num.parse::<usize>().unwrap_or(9));
                        if let Some(w) = word {
                            moved.value = Value::Scalar(Scalar::Ident((*w).into()));
                        }
                    }
                }
                match blocks.iter_mut().find(|b| b.0 == block) {
                    Some(b) => b.1.push(moved),
                    None => blocks.push((block.into(), vec![moved], f.name_span)),
                }
            }
        }
    }
    fields.extend(bottoms);
    fields.extend(c.tops.iter().map(|&t| t.clone()));
    fields.extend(blocks.into_iter().map(|(name, inner, span)| Field {
        name,
        name_span: span,
        value: Value::Block(Block {
            fields: inner,
            span,
        }),
        value_span: span,
    }));
    Ok(Block {
        fields,
        span: c.inner.span,
    })
}
