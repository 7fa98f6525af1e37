//! Pass 1: keep the layers whose include/exclude rules admit the net state,
//! and turn legacy net-level inputs into an Input layer in front.

use crate::netdef::{layer_included, LayerDef, NetDef, NetState};

/// The layers of `net` that run in `state`, in file order.
pub fn filter(net: &NetDef, state: &NetState) -> Vec<LayerDef> {
    let mut out = Vec::new();
    if !net.inputs.is_empty() {
        // Caffe's upgrade of `input:`/`input_dim:` is an Input layer named "input".
        let span = net.inputs[0].span;
        let mut def = LayerDef::synthetic("input".into(), "Input", net.source.clone(), span);
        def.top = net.inputs.iter().map(|i| i.name.clone()).collect();
        out.push(def);
    }
    out.extend(
        net.layers
            .iter()
            .filter(|l| layer_included(l, state))
            .cloned(),
    );
    out
}

/// Suffix of the Input layers made for `--input-shape` bottoms no layer produces.
pub const FREE_INPUT_SUFFIX: &str = " (--input-shape)";

/// A net fragment (a loss head published without its trunk) reads bottoms that no
/// layer produces. Those named in `--input-shape` become the tops of an Input layer
/// in front, shaped `[batch] + C,H,W` (batch from `--batch`, else 1), so the
/// fragment can be checked and timed; the others stay errors.
pub fn with_free_inputs(
    mut defs: Vec<LayerDef>,
    net: &NetDef,
    ctx: &crate::layers::BuildContext,
) -> Vec<LayerDef> {
    let mut produced: Vec<&str> = Vec::new();
    let mut free: Vec<String> = Vec::new();
    for d in &defs {
        for b in &d.bottom {
            if !produced.contains(&b.as_str())
                && ctx.input_shapes.contains_key(b)
                && !free.contains(b)
            {
                free.push(b.clone());
            }
        }
        produced.extend(d.top.iter().map(String::as_str));
    }
    let span = defs.first().map(|d| d.name_span());
    let inputs = free.into_iter().map(|name| {
        let mut def = LayerDef::synthetic(
            format!("{name}{FREE_INPUT_SUFFIX}"),
            "Input",
            net.source.clone(),
            span.unwrap_or_default(),
        );
        def.top = vec![name];
        def
    });
    let mut out: Vec<LayerDef> = inputs.collect();
    out.append(&mut defs);
    out
}
