//! Pass 2: build each layer from the registry, read its parameters and check
//! its bottom/top counts and per-top settings.

use super::Node;
use crate::error::Diagnostic;
use crate::layers::{self, input, BuildContext, Layer};
use crate::netdef::{LayerDef, NetDef};

pub fn instantiate(
    defs: Vec<LayerDef>,
    net: &NetDef,
    ctx: &BuildContext,
) -> Result<Vec<Node>, Vec<Diagnostic>> {
    let mut diags = Vec::new();
    let mut nodes = Vec::new();
    for def in defs {
        let built: Result<Box<dyn Layer>, Vec<Diagnostic>> =
            if def.name.ends_with(super::filter::FREE_INPUT_SUFFIX) {
                Ok(free_input(&def, ctx))
            } else if def.block.fields.is_empty() && def.type_name == "Input" {
                legacy_input(net, ctx).map_err(|d| vec![d])
            } else {
                layers::build(&def, ctx)
            };
        match built {
            Ok(layer) => {
                let mut def = def;
                if layer.is_loss() {
                    add_automatic_tops(&mut def, layer.as_ref());
                }
                let mut errs = check_counts(&def, layer.as_ref());
                if errs.is_empty() {
                    nodes.push(Node::new(def, layer));
                } else {
                    diags.append(&mut errs);
                }
            }
            Err(mut d) => diags.append(&mut d),
        }
    }
    if diags.is_empty() {
        Ok(nodes)
    } else {
        Err(super::sort_diags(diags))
    }
}

/// The Input layer of a bottom given with `--input-shape` that no layer produces.
fn free_input(def: &LayerDef, ctx: &BuildContext) -> Box<dyn Layer> {
    let mut shape = vec![ctx.batch.unwrap_or(1)];
    shape.extend(ctx.input_shapes.get(&def.top[0]).into_iter().flatten());
    Box::new(input::InputLayer::with_shapes(vec![shape]))
}

fn legacy_input(net: &NetDef, ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    let mut shapes = Vec::new();
    for i in &net.inputs {
        // `netrun forward --inputs` decides the shapes, as for an Input layer.
        if let Some(shape) = ctx.input_tops.get(&i.name) {
            shapes.push(shape.clone());
            continue;
        }
        let shape = input::to_shape(&i.shape, ctx.batch).map_err(|m| {
            let at = i
                .shape
                .iter()
                .position(|&d| d < 0)
                .and_then(|k| i.dim_spans.get(k));
            Diagnostic::new(format!("net input `{}`: {m}", i.name))
                .at(&net.source, at.copied().unwrap_or(i.span))
        })?;
        shapes.push(shape);
    }
    Ok(Box::new(input::InputLayer::with_shapes(shapes)))
}

/// Caffe gives a loss layer written with fewer tops than it needs anonymous ones
/// (`LossLayer::AutoTopBlobs`), so `SoftmaxWithLoss` declared with bottoms only still adds
/// its loss. They are named `<layer> (automatic)`: unique per layer, and no file can name
/// them as a bottom.
fn add_automatic_tops(def: &mut LayerDef, layer: &dyn Layer) {
    let needed = layer.tops().min;
    for i in def.top.len()..needed {
        let suffix = if i == 0 {
            String::new()
        } else {
            format!(" {i}")
        };
        def.top.push(format!("{} (automatic){suffix}", def.name));
    }
}

/// Bottom/top counts, and per-top/per-bottom lists that must match them.
fn check_counts(def: &LayerDef, layer: &dyn Layer) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    for (what, n, arity) in [
        ("bottom", def.bottom.len(), layer.bottoms()),
        ("top", def.top.len(), layer.tops()),
    ] {
        if !arity.admits(n) {
            let span = if n > arity.max {
                def.field_span(what, arity.max)
            } else {
                def.name_span()
            };
            diags.push(def.error(
                span,
                format!(
                    "{} takes {} {what}{}, found {n}",
                    def.describe(),
                    arity.describe(),
                    if arity.max == 1 { "" } else { "s" }
                ),
            ));
        }
    }
    for (field, given, what, wanted) in [
        ("loss_weight", def.loss_weight.len(), "top", def.top.len()),
        (
            "propagate_down",
            def.propagate_down.len(),
            "bottom",
            def.bottom.len(),
        ),
    ] {
        if given != 0 && given != wanted {
            // Point at the first value too many, or at the first one when too few.
            let at = if given > wanted { wanted } else { 0 };
            diags.push(
                def.error(
                    def.field_span(field, at),
                    format!(
                        "{} has {} for {}",
                        def.describe(),
                        plural(given, &format!("`{field}` value")),
                        plural(wanted, what)
                    ),
                )
                .with_help(format!("give one `{field}` per {what}, or none")),
            );
        }
    }
    for (i, &pd) in def.propagate_down.iter().enumerate() {
        if pd && !layer.can_backprop_to(i) {
            diags.push(def.error(
                def.field_span("propagate_down", i),
                format!(
                    "{}: bottom {i} (`{}`) takes no gradient; `propagate_down` must be false",
                    def.describe(),
                    def.bottom.get(i).map_or("", |s| s)
                ),
            ));
        }
    }
    diags
}

/// `1 top`, `2 tops`.
fn plural(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}
