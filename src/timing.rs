//! `netrun time`: per-layer forward/backward timings, like `caffe time`.
//!
//! Data layers are not run: their tops are filled once with random values
//! (labels with class 0), so any net can be timed without its data set.

use crate::error::Result;
use crate::layer_io::Rng;
use crate::net::Net;
use rand::{Rng as _, SeedableRng};
use std::fmt::Write;
use std::time::Instant;

/// Milliseconds per iteration, averaged over the timed iterations.
#[derive(Debug, Clone)]
pub struct Timings {
    /// Per layer: (name, type, forward ms, backward ms).
    pub layers: Vec<(String, String, f64, f64)>,
    pub forward_ms: f64,
    pub backward_ms: f64,
    pub iterations: usize,
    /// Per layer: forward FLOPs for the batch (for the GFLOP/s column).
    pub flops: Vec<u64>,
    /// Per layer, in GPU mode: whether it ran its CPU path (no device path).
    /// Empty on the CPU, and the report then has no device column.
    pub fallback: Vec<bool>,
}

/// Fills data-layer tops: top 0 uniform in [−1, 1), other tops (labels) zero.
pub fn fill_data_tops(net: &mut Net, seed: u64) {
    let mut rng = Rng::seed_from_u64(seed);
    for node in &net.graph.nodes {
        if !node.layer.is_data() {
            continue;
        }
        for (t, &id) in node.tops.iter().enumerate() {
            let data = net.blobs[id].data_mut();
            if t == 0 {
                data.iter_mut().for_each(|v| *v = rng.gen_range(-1.0..1.0));
            } else {
                data.fill(0.0);
            }
        }
    }
}

/// Runs warm-up iterations, then times `iterations` forward+backward passes.
/// A training step warms up once; a forward-only (deploy) timing twice, as a
/// layer keeps its weights in its own layout (packed, Winograd's U) on the
/// second pass with the same weights, which a deployed net does once.
pub fn time(net: &mut Net, iterations: usize, backward: bool) -> Result<Timings> {
    fill_data_tops(net, 1);
    let n = net.graph.nodes.len();
    let is_data: Vec<bool> = net
        .graph
        .nodes
        .iter()
        .map(|node| node.layer.is_data())
        .collect();
    let run = |net: &mut Net, fwd: &mut [f64], bwd: &mut [f64]| -> Result<()> {
        net.release_split_views();
        if backward {
            // A training step ends in the solver's update, so every step starts
            // from new weights: give them new stamps as that write would, so
            // that layers time the forward training runs, not one from weights
            // they kept in their own layout (packed, Winograd's U).
            for p in net.params.iter_mut() {
                p.data_mut();
            }
        }
        for l in 0..n {
            if is_data[l] {
                continue;
            }
            let t = Instant::now();
            net.forward_layer(l)?;
            fwd[l] += t.elapsed().as_secs_f64() * 1e3;
        }
        if backward {
            net.set_loss_weights();
            net.clear_param_diffs();
            for l in (0..n).rev() {
                let t = Instant::now();
                net.backward_layer(l)?;
                bwd[l] += t.elapsed().as_secs_f64() * 1e3;
            }
        }
        Ok(())
    };
    let (mut fwd, mut bwd) = (vec![0.0; n], vec![0.0; n]);
    for _ in 0..if backward { 1 } else { 2 } {
        run(net, &mut fwd, &mut bwd)?;
    }
    let (mut fwd, mut bwd) = (vec![0.0; n], vec![0.0; n]);
    let iterations = iterations.max(1);
    for _ in 0..iterations {
        run(net, &mut fwd, &mut bwd)?;
    }
    let k = iterations as f64;
    let layers = net
        .graph
        .nodes
        .iter()
        .enumerate()
        .map(|(l, node)| {
            (
                node.def.name.clone(),
                node.layer.type_name().to_string(),
                fwd[l] / k,
                bwd[l] / k,
            )
        })
        .collect();
    let flops = (0..n)
        .map(|l| crate::summary::layer_flops(&net.graph, l))
        .collect();
    Ok(Timings {
        layers,
        flops,
        forward_ms: fwd.iter().sum::<f64>() / k,
        backward_ms: bwd.iter().sum::<f64>() / k,
        iterations,
        fallback: Vec::new(),
    })
}

/// The per-layer table and Caffe's summary lines (scripts parse those).
pub fn render(t: &Timings, peak_rss: Option<u64>) -> String {
    let mut out = String::new();
    let width = t.layers.iter().map(|l| l.0.len()).max().unwrap_or(5).max(5);
    let total = t.forward_ms + t.backward_ms;
    let _ = writeln!(out, "Average time per layer ({} iterations):", t.iterations);
    let device = t.fallback.iter().any(|&f| f);
    let _ = write!(
        out,
        "{:<width$}  {:<16} {:>12} {:>12} {:>7} {:>9}",
        "layer", "type", "forward ms", "backward ms", "share", "fwd GF/s"
    );
    out.push_str(if device { "  device\n" } else { "\n" });
    for (i, (name, ty, f, b)) in t.layers.iter().enumerate() {
        let share = if total > 0.0 {
            100.0 * (f + b) / total
        } else {
            0.0
        };
        let _ = write!(
            out,
            "{name:<width$}  {ty:<16} {f:>12.3} {b:>12.3} {share:>6.1}%"
        );
        // Forward GFLOP/s, for layers whose FLOPs are known.
        match t.flops.get(i) {
            Some(&fl) if fl > 0 && *f > 0.0 => {
                let _ = write!(out, " {:>9.1}", fl as f64 / (f * 1e6));
            }
            _ => out.push_str(&format!(" {:>9}", "")),
        }
        if device && t.fallback.get(i).copied().unwrap_or(false) {
            out.push_str("  CPU fallback");
        }
        out.push('\n');
    }
    let _ = writeln!(out, "Average Forward pass: {:.4} ms.", t.forward_ms);
    let _ = writeln!(out, "Average Backward pass: {:.4} ms.", t.backward_ms);
    let _ = writeln!(out, "Average Forward-Backward: {:.4} ms.", total);
    if let Some(rss) = peak_rss {
        let _ = writeln!(out, "Peak RSS: {:.1} MiB", rss as f64 / (1024.0 * 1024.0));
    }
    out
}

/// The process's peak resident set size in bytes (Linux `VmHWM`).
pub fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
