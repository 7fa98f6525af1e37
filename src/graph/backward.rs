//! Pass 6: which layers and bottoms need backward (Caffe's `Net::Init` logic).
//!
//! Forward sweep: a layer needs backward when a bottom needs it or one of its
//! learnable blobs has lr_mult ≠ 0; its tops then need backward too.
//! Backward sweep: only layers whose tops reach a loss keep it, and
//! `propagate_down: false` stops gradients at a bottom. `force_backward`
//! turns it on everywhere a layer allows it.

use super::Graph;
use crate::error::Diagnostic;

pub fn analyse(graph: &mut Graph) -> Result<(), Vec<Diagnostic>> {
    let mut blob_need = vec![false; graph.blobs.len()];
    for node in graph.nodes.iter_mut() {
        let mut need = false;
        node.bottom_need_backward = node
            .bottoms
            .iter()
            .enumerate()
            .map(|(i, &b)| {
                need |= blob_need[b];
                let wanted = node
                    .def
                    .propagate_down
                    .get(i)
                    .copied()
                    .unwrap_or(blob_need[b]);
                wanted && node.layer.can_backprop_to(i)
            })
            .collect();
        need |= node.param_specs.iter().any(|s| s.lr_mult != 0.0);
        node.need_backward = need;
        if need {
            for &t in &node.tops {
                blob_need[t] = true;
            }
        }
    }

    let mut under_loss = vec![false; graph.blobs.len()];
    let mut skip_backprop = vec![false; graph.blobs.len()];
    for node in graph.nodes.iter_mut().rev() {
        let mut contributes = false;
        let mut skip_propagate = true;
        for (t, &b) in node.tops.iter().enumerate() {
            contributes |= node.loss_weights[t] != 0.0 || under_loss[b];
            skip_propagate &= skip_backprop[b];
        }
        if node.need_backward && skip_propagate && !node.tops.is_empty() {
            node.need_backward = false;
            node.bottom_need_backward
                .iter_mut()
                .for_each(|x| *x = false);
        }
        if !contributes {
            node.need_backward = false;
        }
        for (i, &b) in node.bottoms.iter().enumerate() {
            if contributes {
                under_loss[b] = true;
            } else {
                node.bottom_need_backward[i] = false;
            }
            if !node.bottom_need_backward[i] {
                skip_backprop[b] = true;
            }
        }
    }

    if graph.force_backward {
        for node in graph.nodes.iter_mut() {
            node.need_backward = true;
            for i in 0..node.bottoms.len() {
                let allowed = node.layer.can_backprop_to(i)
                    && node.def.propagate_down.get(i).copied().unwrap_or(true);
                node.bottom_need_backward[i] |= allowed;
            }
        }
    }
    Ok(())
}
