//! Reading a net: the generic layer fields, legacy inputs, and which layers a
//! phase keeps.

use super::*;

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

pub(super) fn sort_diags(mut diags: Vec<Diagnostic>) -> Vec<Diagnostic> {
    diags.sort_by_key(|d| d.location.as_ref().map(|(_, s)| s.start));
    diags
}

pub(super) fn legacy_inputs(
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

pub(super) fn parse_layer(
    block: &Block,
    source: &Arc<SourceFile>,
) -> Result<LayerDef, Vec<Diagnostic>> {
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
