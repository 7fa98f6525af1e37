//! The `netrun check` report: one row per layer, then totals.

use crate::graph::Graph;
use crate::shape::{count, fmt_shape};
use std::fmt::Write;

/// Totals over a graph.
#[derive(Debug, Clone, PartialEq)]
pub struct Totals {
    /// Stored values of all learnable blobs, frozen ones included, shared ones once.
    pub params: usize,
    /// Forward FLOPs for the whole batch.
    pub flops: u64,
    pub batch: usize,
    /// Bytes of all blobs' data for the batch (f32; in-place blobs counted once).
    pub activation_bytes: usize,
}

/// Forward FLOPs of node `n` for the batch.
pub fn layer_flops(graph: &Graph, n: usize) -> u64 {
    let node = &graph.nodes[n];
    let shapes =
        |ids: &[usize]| -> Vec<_> { ids.iter().map(|&i| graph.blob_shape(i).to_vec()).collect() };
    node.layer
        .flops(&shapes(&node.bottoms), &shapes(&node.tops))
}

pub fn totals(graph: &Graph) -> Totals {
    let flops = (0..graph.nodes.len())
        .map(|n| layer_flops(graph, n))
        .fold(0, u64::saturating_add);
    let batch = graph
        .nodes
        .iter()
        .find(|n| n.layer.is_data())
        .and_then(|n| n.tops.first())
        .and_then(|&t| graph.blob_shape(t).first().copied())
        .unwrap_or(1)
        .max(1);
    let activation_bytes = graph
        .blobs
        .iter()
        .map(|b| 4usize.saturating_mul(b.shape.as_deref().map_or(0, count)))
        .fold(0, usize::saturating_add);
    Totals {
        params: graph.param_count(),
        flops,
        batch,
        activation_bytes,
    }
}

/// Renders the per-layer table and the totals.
pub fn render(graph: &Graph) -> String {
    let mut rows: Vec<[String; 6]> = vec![[
        "layer".into(),
        "type".into(),
        "bottoms -> tops".into(),
        "top shapes".into(),
        "params".into(),
        "FLOPs".into(),
    ]];
    for n in &graph.nodes {
        let names = |ids: &[usize]| {
            ids.iter()
                .map(|&i| graph.blobs[i].name.clone())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let shapes: Vec<String> = n
            .tops
            .iter()
            .map(|&t| fmt_shape(graph.blob_shape(t)))
            .collect();
        let params: usize = n.param_shapes.iter().map(|s| count(s)).sum();
        let b: Vec<_> = n
            .bottoms
            .iter()
            .map(|&i| graph.blob_shape(i).to_vec())
            .collect();
        let t: Vec<_> = n
            .tops
            .iter()
            .map(|&i| graph.blob_shape(i).to_vec())
            .collect();
        rows.push([
            n.def.name.clone(),
            n.layer.type_name().to_string(),
            format!("{} -> {}", names(&n.bottoms), names(&n.tops)),
            shapes.join(", "),
            group_digits(params as u64),
            human(n.layer.flops(&b, &t) as f64),
        ]);
    }
    let mut widths = [0usize; 6];
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for (i, r) in rows.iter().enumerate() {
        let line: Vec<String> = r
            .iter()
            .zip(widths)
            .enumerate()
            .map(|(c, (s, w))| {
                if c >= 4 {
                    format!("{s:>w$}")
                } else {
                    format!("{s:<w$}")
                }
            })
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
        if i == 0 {
            let _ = writeln!(out, "{}", "-".repeat(widths.iter().sum::<usize>() + 10));
        }
    }
    let t = totals(graph);
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "net `{}`, phase {}, {} layers, batch {}",
        graph.name,
        graph.phase,
        graph.nodes.len(),
        t.batch
    );
    let _ = writeln!(out, "parameters:        {}", group_digits(t.params as u64));
    let _ = writeln!(
        out,
        "forward FLOPs:     {} per sample ({} per batch)",
        human(t.flops as f64 / t.batch as f64),
        human(t.flops as f64)
    );
    let _ = writeln!(
        out,
        "activation memory: {} for the batch (data; about twice that when training, with diffs)",
        bytes(t.activation_bytes as f64)
    );
    // Data and diff of every blob and learnable blob: what training allocates.
    let training = (t.activation_bytes as u128 + 4 * t.params as u128) * 2;
    if let Some(memory) = crate::graph::sizes::machine_memory() {
        if training > memory as u128 {
            let _ = writeln!(
                out,
                "warning: training this net needs about {} (data and diffs) but this machine has {} \
                 of memory and swap: `train`, `time` and `forward` will refuse it",
                crate::graph::sizes::gib(training),
                crate::graph::sizes::gib(memory as u128)
            );
        }
    }
    out
}

/// 22670656 -> "22,670,656".
pub fn group_digits(v: u64) -> String {
    let s = v.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// 3.52e9 -> "3.52 G".
pub fn human(v: f64) -> String {
    let (d, unit) = match v {
        v if v >= 1e12 => (1e12, " T"),
        v if v >= 1e9 => (1e9, " G"),
        v if v >= 1e6 => (1e6, " M"),
        v if v >= 1e3 => (1e3, " k"),
        _ => (1.0, ""),
    };
    if d == 1.0 {
        format!("{v:.0}")
    } else {
        format!("{:.2}{unit}", v / d)
    }
}

fn bytes(v: f64) -> String {
    match v {
        v if v >= 1024.0 * 1024.0 * 1024.0 => format!("{:.2} GiB", v / (1024.0 * 1024.0 * 1024.0)),
        v if v >= 1024.0 * 1024.0 => format!("{:.1} MiB", v / (1024.0 * 1024.0)),
        v => format!("{:.1} KiB", v / 1024.0),
    }
}
