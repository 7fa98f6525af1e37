//! Pass 3: where one top feeds several bottoms, insert a Split layer after its
//! producer so that each consumer gets its own blob and backward sums the
//! diffs (Caffe's `InsertSplits`). A top that carries a loss weight and also
//! feeds other layers gets a split too; the loss weight moves to its first output.
//! Works on names; unknown bottoms are left for the name pass to report.

use super::Node;
use crate::error::Diagnostic;
use crate::layers::{split, BuildContext};
use crate::netdef::LayerDef;
use std::collections::HashMap;

/// Caffe's split naming: layer `<blob>_<producer>_<top index>_split`,
/// tops `<blob>_<producer>_<top index>_split_<k>`.
fn split_name(blob: &str, producer: &str, top: usize) -> String {
    format!("{blob}_{producer}_{top}_split")
}

pub fn insert_splits(nodes: Vec<Node>) -> Result<Vec<Node>, Vec<Diagnostic>> {
    // Consumers of each (producer, top) in order: (consumer node, bottom index).
    let mut consumers: HashMap<(usize, usize), Vec<(usize, usize)>> = HashMap::new();
    let mut last_producer: HashMap<&str, (usize, usize)> = HashMap::new();
    for (n, node) in nodes.iter().enumerate() {
        for (b, name) in node.def.bottom.iter().enumerate() {
            if let Some(&p) = last_producer.get(name.as_str()) {
                consumers.entry(p).or_default().push((n, b));
            }
        }
        for (t, name) in node.def.top.iter().enumerate() {
            last_producer.insert(name.as_str(), (n, t));
        }
    }
    // (producer, top) pairs that need a split, with their consumers.
    type Uses = Vec<(usize, usize)>;
    let mut needs: Vec<((usize, usize), Uses)> = consumers
        .into_iter()
        .filter(|((n, t), c)| c.len() > 1 || (!c.is_empty() && nodes[*n].loss_weights[*t] != 0.0))
        .collect();
    needs.sort();

    // Rename the consumers' bottoms, and plan the split layers per producer.
    let mut renamed: Vec<Vec<Option<String>>> = nodes
        .iter()
        .map(|n| vec![None; n.def.bottom.len()])
        .collect();
    let mut after: HashMap<usize, Vec<Node>> = HashMap::new();
    let mut moved_loss: Vec<(usize, usize)> = Vec::new();
    for ((p, t), cons) in needs {
        let producer = &nodes[p];
        let blob = &producer.def.top[t];
        let base = split_name(blob, &producer.def.name, t);
        let weight = producer.loss_weights[t];
        let offset = usize::from(weight != 0.0);
        let mut def = LayerDef::synthetic(
            base.clone(),
            "Split",
            producer.def.source.clone(),
            producer.def.field_span("top", t),
        );
        def.bottom = vec![blob.clone()];
        def.top = (0..cons.len() + offset)
            .map(|k| format!("{base}_{k}"))
            .collect();
        for (k, &(c, b)) in cons.iter().enumerate() {
            renamed[c][b] = Some(def.top[k + offset].clone());
        }
        let layer = split::build(&def, &BuildContext::default()).map_err(|d| vec![d])?;
        let mut node = Node::new(def, layer);
        if offset == 1 {
            node.loss_weights[0] = weight;
            moved_loss.push((p, t));
        }
        after.entry(p).or_default().push(node);
    }

    let mut out = Vec::with_capacity(nodes.len() + after.len());
    for (n, mut node) in nodes.into_iter().enumerate() {
        for (b, new) in renamed[n].iter().enumerate() {
            if let Some(new) = new {
                node.def.bottom[b] = new.clone();
            }
        }
        for &(p, t) in &moved_loss {
            if p == n {
                node.loss_weights[t] = 0.0;
            }
        }
        out.push(node);
        if let Some(splits) = after.remove(&n) {
            out.extend(splits);
        }
    }
    Ok(out)
}
