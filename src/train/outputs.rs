//! What a pass produced: the nets' output values and their names in the log,
//! and where a non-finite value came from.

use super::*;

/// The node that owns each learnable blob (by param index).
pub fn owner_nodes(net: &Net) -> HashMap<usize, usize> {
    let mut owners = HashMap::new();
    for (n, ids) in net.param_ids.iter().enumerate() {
        for &p in ids {
            owners.entry(p).or_insert(n);
        }
    }
    owners
}

/// Each net output element: (blob name, loss weight, value).
pub fn output_values(net: &Net) -> Vec<(String, f32, f32)> {
    let mut weight: HashMap<usize, f32> = HashMap::new();
    for node in &net.graph.nodes {
        for (t, &id) in node.tops.iter().enumerate() {
            weight.insert(id, node.loss_weights.get(t).copied().unwrap_or(0.0));
        }
    }
    let mut out = Vec::new();
    for &id in &net.graph.outputs {
        let name = &net.graph.blobs[id].name;
        let w = weight.get(&id).copied().unwrap_or(0.0);
        for &v in net.blobs[id].data() {
            out.push((name.clone(), w, v));
        }
    }
    out
}

/// `    name = v (* w = w·v loss)` tail: the loss part when the weight is non-zero.
pub(crate) fn loss_note(w: f32, v: f64) -> String {
    if w != 0.0 {
        format!(" (* {} = {} loss)", fmt_g(w as f64), fmt_g(w as f64 * v))
    } else {
        String::new()
    }
}

/// Output names for the JSON record: `name`, or `name[k]` for multi-element outputs.
pub(super) fn record_names(values: &[(String, f64)]) -> Vec<(String, f64)> {
    let mut count: HashMap<&str, usize> = HashMap::new();
    for (n, _) in values {
        *count.entry(n).or_default() += 1;
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    values
        .iter()
        .map(|(n, v)| {
            if count[n.as_str()] > 1 {
                let k = seen.entry(n).or_default();
                *k += 1;
                (format!("{n}[{}]", *k - 1), *v)
            } else {
                (n.clone(), *v)
            }
        })
        .collect()
}

pub(super) fn non_finite_kind(values: &[f32]) -> Option<&'static str> {
    values
        .par_chunks(1 << 14)
        .find_any(|c| c.iter().any(|v| !v.is_finite()))
        .and_then(|c| c.iter().find(|v| !v.is_finite()))
        .map(|v| {
            if v.is_nan() {
                "NaN"
            } else {
                "an infinite value"
            }
        })
}

/// Where a non-finite forward came from: the first layer writing a non-finite top.
pub(super) fn locate_forward(net: &Net) -> Option<String> {
    for node in &net.graph.nodes {
        for &t in &node.tops {
            if let Some(kind) = non_finite_kind(net.blobs[t].data()) {
                return Some(format!(
                    "{} wrote {kind} into top `{}`",
                    node.def.describe(),
                    net.graph.blobs[t].name
                ));
            }
        }
    }
    None
}
