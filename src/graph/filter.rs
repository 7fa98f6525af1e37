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
