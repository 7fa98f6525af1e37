//! Helpers shared by the margin-loss fork layer tests: closeness with the largest
//! deviation printed, label blobs, a forward in a chosen phase, seeded top diffs.

use netrun::blob::Blob;
use netrun::layer_io::{LayerIo, Rng, RunCtx};
use netrun::layers::Layer;
use netrun::netdef::Phase;
use netrun::testing::{assert_close, uniform_blob};
use rand::SeedableRng;

/// Asserts closeness (|Δ| ≤ tol·(1 + |expected|)) and prints the largest deviation
/// (`cargo test --test layers_forks -- --nocapture` lists them).
pub fn close(actual: &[f32], expected: &[f64], tol: f64, what: &str) {
    assert_close(actual, expected, tol, tol, what);
    let dev = actual
        .iter()
        .zip(expected)
        .map(|(&a, &e)| (a as f64 - e).abs())
        .fold(0.0, f64::max);
    eprintln!("{what}: max |netrun − float64| = {dev:.3e}");
}

pub fn forward_in(
    l: &mut dyn Layer,
    bottoms: &mut [Blob],
    tops: &mut [Blob],
    params: &mut [Blob],
    phase: Phase,
) {
    let mut rng = Rng::seed_from_u64(3);
    let mut io = LayerIo::new(
        bottoms.iter_mut().collect(),
        tops.iter_mut().collect(),
        params.iter_mut().collect(),
    );
    l.forward(
        &mut io,
        &mut RunCtx {
            phase,
            rng: &mut rng,
        },
    )
    .unwrap();
}

pub fn labels(v: &[usize]) -> Blob {
    Blob::from_data(&[v.len()], v.iter().map(|&x| x as f32).collect())
}

pub fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

pub fn norm(v: &[f64]) -> f64 {
    v.iter().map(|a| a * a).sum::<f64>().sqrt()
}

pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Sets the tops' diffs to fixed values and returns them.
pub fn seed_top_diff(top: &mut Blob, seed: u64) -> Vec<f64> {
    let r = uniform_blob(top.shape(), -1.0, 1.0, seed);
    top.diff_mut().copy_from_slice(r.data());
    f64s(r.data())
}

/// The shared gradient checker at step 1e-3, threshold 1e-2, in `phase`.
pub fn grad_check(
    l: &mut dyn Layer,
    bottoms: &mut [Blob],
    tops: &mut [Blob],
    params: &mut [Blob],
    check: &[bool],
    phase: Phase,
) {
    let mut checker = netrun::testing::GradientChecker::new(1e-3, 1e-2);
    checker.phase = phase;
    checker
        .check(l, bottoms, tops, params, check)
        .unwrap_or_else(|e| panic!("{e}"));
}

/// Runs `netrun ARGS NET EXTRA --threads 2`, asserting success; returns stdout + stderr.
pub fn netrun_ok(args: &[&str], net: &std::path::Path, extra: &[String]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_netrun"))
        .args(args)
        .arg(net)
        .args(extra)
        .args(["--threads", "2"])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "netrun {args:?} {}:\n{text}",
        net.display()
    );
    text
}

/// Writes `text` as `DIR/NAME.prototxt`, asserts it passes `netrun check` in TRAIN and
/// TEST and runs one forward/backward `netrun time` iteration, each at batch 2 (so that
/// inputs made from `--input-shape` values, TOP=C,H,W, get the nets' batch).
pub fn check_and_time(dir: &std::path::Path, name: &str, text: &str, shapes: &[&str]) {
    let net = dir.join(format!("{name}.prototxt"));
    std::fs::write(&net, text).unwrap();
    let extra: Vec<String> = shapes
        .iter()
        .flat_map(|s| ["--input-shape".to_string(), s.to_string()])
        .collect();
    for phase in ["TRAIN", "TEST"] {
        let out = netrun_ok(&["check", "--batch", "2", "--phase", phase], &net, &extra);
        assert!(out.contains("parameters:"), "{name} {phase}:\n{out}");
    }
    let out = netrun_ok(&["time", "--iterations", "1", "--batch", "2"], &net, &extra);
    assert!(out.contains("Average Forward-Backward"), "{name}:\n{out}");
}
