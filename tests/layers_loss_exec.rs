//! Execution of the loss and normalisation layers: forward against naive loops,
//! gradient checks, the SoftmaxWithLoss modes and errors, Accuracy, triplet
//! mining counted by hand, and the safetensors reader (the reference cases
//! run in `tests/reference.rs`).

mod common;

use common::{build, shared};
use netrun::blob::Blob;
use netrun::layer_io::{LayerIo, Rng, RunCtx};
use netrun::layers::Layer;
use netrun::net::Net;
use netrun::netdef::Phase;
use netrun::testing::{assert_close, forward, layer, setup, uniform_blob, GradientChecker};
use rand::SeedableRng;

/// −ln(FLT_MIN): the loss of one sample whose probability underflowed.
const CLAMP_LOSS: f64 = 87.336_544_750_553_1;

/// Builds a layer, shapes it for `bottoms` and runs forward.
fn run(text: &str, bottoms: &mut [Blob]) -> (Box<dyn Layer>, Vec<Blob>) {
    let mut l = layer(text);
    let (mut tops, mut params) = setup(l.as_mut(), bottoms, 1);
    forward(l.as_mut(), bottoms, &mut tops, &mut params);
    (l, tops)
}

/// Runs backward with loss top diff `g` (other top diffs as they are).
fn backward(l: &mut dyn Layer, bottoms: &mut [Blob], tops: &mut [Blob], g: f32, down: &[bool]) {
    tops[0].diff_mut().fill(g);
    let mut io = LayerIo::new(
        bottoms.iter_mut().collect(),
        tops.iter_mut().collect(),
        vec![],
    );
    let mut rng = Rng::seed_from_u64(3);
    let mut ctx = RunCtx {
        phase: Phase::Train,
        rng: &mut rng,
    };
    l.backward(&mut io, down, &mut ctx).unwrap();
}

fn try_forward(l: &mut dyn Layer, bottoms: &mut [Blob], tops: &mut [Blob]) -> Result<(), String> {
    let mut io = LayerIo::new(
        bottoms.iter_mut().collect(),
        tops.iter_mut().collect(),
        vec![],
    );
    let mut rng = Rng::seed_from_u64(3);
    l.forward(
        &mut io,
        &mut RunCtx {
            phase: Phase::Train,
            rng: &mut rng,
        },
    )
}

fn labels(values: &[f32]) -> Blob {
    Blob::from_data(&[values.len()], values.to_vec())
}

fn check(l: &mut dyn Layer, bottoms: &mut [Blob], tops: &mut [Blob], which: &[bool]) -> usize {
    GradientChecker::default()
        .check(l, bottoms, tops, &mut [], which)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Naive softmax of `x` (shape) along `axis`, f64.
fn naive_softmax(x: &[f32], shape: &[usize], axis: usize) -> Vec<f64> {
    let outer: usize = shape[..axis].iter().product();
    let c = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product();
    let mut y = vec![0.0; x.len()];
    for o in 0..outer {
        for j in 0..inner {
            let at = |k: usize| (o * c + k) * inner + j;
            let m = (0..c).map(|k| x[at(k)] as f64).fold(f64::MIN, f64::max);
            let s: f64 = (0..c).map(|k| (x[at(k)] as f64 - m).exp()).sum();
            for k in 0..c {
                y[at(k)] = (x[at(k)] as f64 - m).exp() / s;
            }
        }
    }
    y
}

// ---------------------------------------------------------------- Softmax

#[test]
fn softmax_forward_and_gradient_on_odd_shapes() {
    for (shape, axis, spec) in [
        (vec![1, 5], 1, ""),
        (vec![3, 4, 2, 3], 1, ""),
        (vec![2, 3, 5], 2, "softmax_param { axis: -1 }"),
        (vec![4, 3, 1], 0, "softmax_param { axis: 0 }"),
    ] {
        let mut b = vec![uniform_blob(&shape, -3.0, 3.0, 5)];
        let (mut l, mut tops) = run(&format!("name: \"s\" type: \"Softmax\" {spec}"), &mut b);
        let want = naive_softmax(b[0].data(), &shape, axis);
        assert_close(tops[0].data(), &want, 1e-5, 1e-7, "softmax");
        assert!(check(l.as_mut(), &mut b, &mut tops, &[true]) > 0);
    }
}

#[test]
fn softmax_is_shift_invariant_with_large_scores() {
    let mut b = vec![Blob::from_data(&[1, 3], vec![1000.0, 1001.0, 999.0])];
    let (_, tops) = run("name: \"s\" type: \"Softmax\"", &mut b);
    let want = naive_softmax(&[1.0, 2.0, 0.0], &[1, 3], 1);
    assert_close(tops[0].data(), &want, 1e-5, 1e-7, "softmax large");
}

// ---------------------------------------------------------------- SoftmaxWithLoss

/// The SoftmaxWithLoss forward and backward written out: (loss, dx for loss weight g).
fn naive_softmax_loss(
    x: &[f32],
    shape: &[usize],
    label: &[f32],
    ignore: Option<i32>,
    mode: &str,
    g: f64,
) -> (f64, Vec<f64>) {
    let p = naive_softmax(x, shape, 1);
    let (n, c) = (shape[0], shape[1]);
    let inner: usize = shape[2..].iter().product();
    let (mut loss, mut valid) = (0.0, 0usize);
    let mut dx = p.clone();
    for i in 0..n {
        for j in 0..inner {
            let l = label[i * inner + j] as i32;
            if Some(l) == ignore {
                (0..c).for_each(|k| dx[(i * c + k) * inner + j] = 0.0);
                continue;
            }
            valid += 1;
            let idx = (i * c + l as usize) * inner + j;
            loss -= p[idx].max(f32::MIN_POSITIVE as f64).ln();
            dx[idx] -= 1.0;
        }
    }
    let norm = match mode {
        "FULL" => n * inner,
        "VALID" => valid,
        "BATCH_SIZE" => n,
        _ => 1,
    }
    .max(1) as f64;
    (loss / norm, dx.iter().map(|d| d * g / norm).collect())
}

#[test]
fn softmax_loss_spatial_modes_with_ignore_label() {
    let shape = [2, 4, 3, 5];
    let label: Vec<f32> = (0..30).map(|i| ((i * 7) % 5) as f32).collect(); // 4 = ignored
    for mode in ["FULL", "VALID", "BATCH_SIZE", "NONE"] {
        let text = format!(
            "name: \"l\" type: \"SoftmaxWithLoss\" bottom: \"x\" bottom: \"y\" top: \"loss\"
             loss_param {{ ignore_label: 4 normalization: {mode} }}"
        );
        let mut b = vec![uniform_blob(&shape, -2.0, 2.0, 9), labels(&label)];
        b[1].reshape(&[2, 3, 5]);
        let (mut l, mut tops) = run(&text, &mut b);
        let (loss, dx) = naive_softmax_loss(b[0].data(), &shape, &label, Some(4), mode, 0.7);
        assert_close(tops[0].data(), &[loss], 1e-5, 1e-6, mode);
        backward(l.as_mut(), &mut b, &mut tops, 0.7, &[true, false]);
        assert_close(b[0].diff(), &dx, 1e-4, 1e-6, mode);
        assert!(check(l.as_mut(), &mut b, &mut tops, &[true, false]) > 0);
    }
}

#[test]
fn softmax_loss_batch_one_legacy_normalize_and_prob_top() {
    let label = [2.9f32]; // truncated to class 2
    let mut b = vec![uniform_blob(&[1, 3], -1.0, 1.0, 2), labels(&label)];
    let text = r#"name: "l" type: "SoftmaxWithLoss" bottom: "x" bottom: "y" top: "loss" top: "prob"
                  loss_param { normalize: false }"#;
    let (mut l, mut tops) = run(text, &mut b);
    let (loss, dx) = naive_softmax_loss(b[0].data(), &[1, 3], &[2.0], None, "BATCH_SIZE", 2.5);
    assert_close(tops[0].data(), &[loss], 1e-5, 1e-6, "loss");
    assert_close(
        tops[1].data(),
        &naive_softmax(b[0].data(), &[1, 3], 1),
        1e-5,
        1e-7,
        "prob",
    );
    backward(l.as_mut(), &mut b, &mut tops, 2.5, &[true, false]);
    assert_close(b[0].diff(), &dx, 1e-4, 1e-6, "dx");
}

#[test]
fn softmax_loss_every_position_ignored_gives_zero() {
    let mut b = vec![
        uniform_blob(&[3, 2], -1.0, 1.0, 2),
        labels(&[7.0, 7.0, 7.0]),
    ];
    let text = r#"name: "l" type: "SoftmaxWithLoss" bottom: "x" bottom: "y" top: "loss"
                  loss_param { ignore_label: 7 }"#;
    let (mut l, mut tops) = run(text, &mut b);
    assert_eq!(tops[0].data(), &[0.0]);
    b[0].diff_mut().fill(9.0);
    backward(l.as_mut(), &mut b, &mut tops, 1.0, &[true, false]);
    assert!(b[0].diff().iter().all(|&d| d == 0.0));
    assert_eq!(l.health(), None);
}

#[test]
fn softmax_loss_clamp_at_flt_min_and_health() {
    let text = r#"name: "l" type: "SoftmaxWithLoss" bottom: "x" bottom: "y" top: "loss""#;
    // exp(−200) underflows f32: every label probability is clamped to FLT_MIN.
    let x = vec![0.0, -200.0, 0.0, -200.0];
    let mut b = vec![Blob::from_data(&[2, 2], x), labels(&[1.0, 1.0])];
    let (mut l, mut tops) = run(text, &mut b);
    assert!(
        (tops[0].data()[0] as f64 - CLAMP_LOSS).abs() < 1e-4,
        "{}",
        tops[0].data()[0]
    );
    let note = l.health().expect("a fully clamped batch is reported");
    assert!(
        note.contains("every sample hit the FLT_MIN clamp"),
        "{note}"
    );
    assert!(note.contains("87.3365"), "{note}");
    // The gradient is still p − onehot: −1 at the label, ~1 at the other class.
    backward(l.as_mut(), &mut b, &mut tops, 1.0, &[true, false]);
    assert_close(
        b[0].diff(),
        &[0.5, -0.5, 0.5, -0.5],
        1e-6,
        1e-6,
        "clamped dx",
    );

    // One of two samples clamped: not a whole-batch failure.
    b[0].data_mut().copy_from_slice(&[0.0, -200.0, 0.0, 1.0]);
    forward(l.as_mut(), &mut b, &mut tops, &mut []);
    let p = 1.0 / (1.0 + (-1.0f64).exp());
    let want = (CLAMP_LOSS - p.ln()) / 2.0;
    assert!((tops[0].data()[0] as f64 - want).abs() < 1e-4);
    assert_eq!(l.health(), None);

    // NaN scores make a NaN loss (not a clamped 87.3), and health says so.
    b[0].data_mut()[0] = f32::NAN;
    forward(l.as_mut(), &mut b, &mut tops, &mut []);
    assert!(tops[0].data()[0].is_nan());
    assert!(l.health().unwrap().contains("NaN"));
}

/// An Input-fed SoftmaxWithLoss net on scores `shape`.
fn loss_net(shape: &[usize], label_shape: &[usize], extra: &str) -> Net {
    let dims = |s: &[usize]| s.iter().map(|d| format!("dim: {d} ")).collect::<String>();
    let text = format!(
        r#"layer {{ name: "in" type: "Input" top: "x" top: "label"
             input_param {{ shape {{ {} }} shape {{ {} }} }} }}
           layer {{ name: "loss" type: "SoftmaxWithLoss" bottom: "x" bottom: "label" top: "loss" {extra} }}"#,
        dims(shape),
        dims(label_shape)
    );
    Net::new(
        build(&text, Phase::Train).unwrap_or_else(|e| panic!("{e}")),
        1,
    )
    .unwrap()
}

#[test]
fn softmax_loss_label_out_of_range_is_an_error() {
    let mut net = loss_net(&[3, 4], &[3], "");
    net.blob_mut("label")
        .unwrap()
        .data_mut()
        .copy_from_slice(&[0.0, 4.0, 1.0]);
    let err = net.forward().unwrap_err().to_string();
    for part in [
        "layer `loss` (SoftmaxWithLoss)",
        "sample 1 has label 4",
        "4 classes (labels 0 to 3)",
        "1-based",
    ] {
        assert!(err.contains(part), "`{part}` missing in: {err}");
    }

    net.blob_mut("label")
        .unwrap()
        .data_mut()
        .copy_from_slice(&[0.0, 1.0, -1.0]);
    let err = net.forward().unwrap_err().to_string();
    assert!(
        err.contains("sample 2 has label -1, but there are 4 classes"),
        "{err}"
    );

    net.blob_mut("label")
        .unwrap()
        .data_mut()
        .copy_from_slice(&[f32::NAN, 1.0, 1.0]);
    let err = net.forward().unwrap_err().to_string();
    assert!(err.contains("sample 0 has label NaN"), "{err}");

    // Spatial labels name the position too; the ignore label itself is fine.
    let mut net = loss_net(
        &[2, 3, 2, 2],
        &[2, 2, 2],
        "loss_param { ignore_label: 255 }",
    );
    let label = net.blob_mut("label").unwrap().data_mut();
    label.copy_from_slice(&[0.0, 255.0, 2.0, 1.0, 1.0, 1.0, 7.0, 0.0]);
    let err = net.forward().unwrap_err().to_string();
    assert!(
        err.contains("sample 1 (position 2 of 4) has label 7"),
        "{err}"
    );
    assert!(err.contains("ignore_label is 255"), "{err}");
    net.blob_mut("label").unwrap().data_mut()[6] = 255.0;
    net.forward().unwrap();
}

// ---------------------------------------------------------------- Accuracy

#[test]
fn accuracy_top_k_ties_and_per_class() {
    // 5 samples, 4 classes; labels 0, 1, 1, 3, 2 (the last ignored).
    #[rustfmt::skip]
    let x = vec![
        0.9, 0.1, 0.5, 0.2,   // label 0: best → hit at k=1
        0.3, 0.3, 0.1, 0.0,   // label 1: tied with class 0 → ties count against: rank 2
        0.5, 0.1, 0.7, 0.6,   // label 1: rank 4
        0.2, 0.4, 0.1, 0.3,   // label 3: rank 2
        0.0, 0.0, 0.9, 0.0,   // label 2: ignored
    ];
    let y = [0.0, 1.0, 1.0, 3.0, 2.0];
    for (k, total, per_class) in [
        (1, 1.0 / 4.0, [1.0, 0.0, 0.0, 0.0]),
        (2, 3.0 / 4.0, [1.0, 0.5, 0.0, 1.0]),
        (4, 1.0, [1.0, 1.0, 0.0, 1.0]),
    ] {
        let text = format!(
            "name: \"a\" type: \"Accuracy\" bottom: \"x\" bottom: \"y\" top: \"acc\" top: \"per\"
             accuracy_param {{ top_k: {k} ignore_label: 2 }}"
        );
        let mut b = vec![Blob::from_data(&[5, 4], x.clone()), labels(&y)];
        let (mut l, mut tops) = run(&text, &mut b);
        assert_close(tops[0].data(), &[total], 1e-6, 0.0, &format!("top-{k}"));
        // Class 2 appears only on the ignored sample: 0.
        assert_close(
            tops[1].data(),
            &per_class,
            1e-6,
            0.0,
            &format!("per class top-{k}"),
        );

        // No backward: diffs stay as they were.
        b[0].diff_mut().fill(3.0);
        b[1].diff_mut().fill(4.0);
        backward(l.as_mut(), &mut b, &mut tops, 1.0, &[true, true]);
        assert!(b[0].diff().iter().all(|&d| d == 3.0));
        assert!(b[1].diff().iter().all(|&d| d == 4.0));
    }
}

#[test]
fn accuracy_spatial_nan_and_bad_label() {
    // N=1, C=2, 3 positions: scores per position (c0, c1) = (1,0), (0,1), (NaN,0).
    let mut b = vec![
        Blob::from_data(&[1, 2, 3], vec![1.0, 0.0, f32::NAN, 0.0, 1.0, 0.0]),
        Blob::from_data(&[1, 3], vec![0.0, 0.0, 0.0]),
    ];
    let (mut l, mut tops) = run(
        "name: \"a\" type: \"Accuracy\" bottom: \"x\" bottom: \"y\" top: \"acc\"",
        &mut b,
    );
    // Hit, miss, and the NaN label score counts as a miss.
    assert_close(tops[0].data(), &[1.0 / 3.0], 1e-6, 0.0, "spatial");
    b[1].data_mut()[1] = 2.0;
    let err = try_forward(l.as_mut(), &mut b, &mut tops).unwrap_err();
    assert!(
        err.contains("sample 0 (position 1 of 3) has label 2, but there are 2 classes"),
        "{err}"
    );
}

// ---------------------------------------------------------------- EuclideanLoss

#[test]
fn euclidean_loss_forward_and_gradients() {
    let mut b = vec![
        uniform_blob(&[3, 2, 1, 5], -1.0, 1.0, 1),
        uniform_blob(&[3, 10], -1.0, 1.0, 2),
    ];
    let (mut l, mut tops) = run(
        "name: \"e\" type: \"EuclideanLoss\" bottom: \"a\" bottom: \"b\" top: \"loss\"",
        &mut b,
    );
    let d: Vec<f64> = b[0]
        .data()
        .iter()
        .zip(b[1].data())
        .map(|(&u, &v)| u as f64 - v as f64)
        .collect();
    let loss = d.iter().map(|v| v * v).sum::<f64>() / 6.0;
    assert_close(tops[0].data(), &[loss], 1e-5, 1e-7, "loss");
    backward(l.as_mut(), &mut b, &mut tops, 2.0, &[true, true]);
    let da: Vec<f64> = d.iter().map(|v| 2.0 * v / 3.0).collect();
    let db: Vec<f64> = d.iter().map(|v| -2.0 * v / 3.0).collect();
    assert_close(b[0].diff(), &da, 1e-5, 1e-7, "da");
    assert_close(b[1].diff(), &db, 1e-5, 1e-7, "db");
    assert!(check(l.as_mut(), &mut b, &mut tops, &[true, true]) == 60);
}

// ---------------------------------------------------------------- Normalize

#[test]
fn normalize_forward_and_gradient() {
    for (shape, eps) in [(vec![1, 7], 0.0f64), (vec![3, 2, 2, 3], 0.5)] {
        let mut b = vec![uniform_blob(&shape, -1.0, 1.0, 4)];
        let text = format!("name: \"n\" type: \"Normalize\" normalize_param {{ eps: {eps} }}");
        let (mut l, mut tops) = run(&text, &mut b);
        let k: usize = shape[1..].iter().product();
        let mut want = Vec::new();
        for row in b[0].data().chunks(k) {
            let s = (row.iter().map(|&v| v as f64 * v as f64).sum::<f64>() + eps).sqrt();
            want.extend(row.iter().map(|&v| v as f64 / s));
        }
        assert_close(tops[0].data(), &want, 1e-5, 1e-7, "normalize");
        assert!(check(l.as_mut(), &mut b, &mut tops, &[true]) > 0);
    }
}

#[test]
fn normalize_in_place_matches_out_of_place() {
    let net_text = |top: &str| {
        format!(
            r#"force_backward: true
            layer {{ name: "in" type: "Input" top: "x" top: "t"
                     input_param {{ shape {{ dim: 3 dim: 5 }} }} }}
            layer {{ name: "n" type: "Normalize" bottom: "x" top: "{top}" }}
            layer {{ name: "e" type: "EuclideanLoss" bottom: "{top}" bottom: "t" top: "loss" }}"#
        )
    };
    let x = uniform_blob(&[3, 5], -1.0, 1.0, 8);
    let t = uniform_blob(&[3, 5], -0.5, 0.5, 9);
    let mut results = Vec::new();
    for top in ["x", "y"] {
        let g = build(&net_text(top), Phase::Train).unwrap_or_else(|e| panic!("{e}"));
        let mut net = Net::new(g, 1).unwrap();
        net.blob_mut("x").unwrap().copy_data_from(&x);
        net.blob_mut("t").unwrap().copy_data_from(&t);
        let loss = net.forward_backward().unwrap();
        let input_diff = if top == "x" {
            net.blobs[net.graph.blobs.iter().position(|b| b.name == "x").unwrap()]
                .diff()
                .to_vec()
        } else {
            net.blob("x").unwrap().diff().to_vec()
        };
        results.push((loss, input_diff));
    }
    assert!((results[0].0 - results[1].0).abs() < 1e-6);
    let want: Vec<f64> = results[1].1.iter().map(|&v| v as f64).collect();
    assert_close(&results[0].1, &want, 1e-6, 1e-7, "in-place dx");
    assert!(want.iter().any(|&v| v != 0.0));
}

// ---------------------------------------------------------------- ContrastiveLoss

/// Float64 contrastive loss (before the 1/2N) and ∂/∂a for top diff `g`, margin `m`:
/// similar pairs add d², dissimilar ones max(m − d, 0)² (legacy: max(m − d², 0)); the
/// gradient factor on a − b follows Caffe's CPU code, 1e-4 in the divisor included.
fn contrastive_reference(
    a: &Blob,
    b: &Blob,
    similar: &[bool],
    m: f64,
    g: f64,
    legacy: bool,
) -> (f64, Vec<f64>) {
    let (n, c) = (a.dim(0), a.count_from(1));
    let (mut loss, mut da) = (0.0, Vec::new());
    for (i, &sim) in similar.iter().enumerate() {
        let diff: Vec<f64> = (0..c)
            .map(|k| (a.data()[i * c + k] - b.data()[i * c + k]) as f64)
            .collect();
        let d2: f64 = diff.iter().map(|v| v * v).sum();
        let d = d2.sqrt();
        let beta = if sim {
            loss += d2;
            g / n as f64
        } else if legacy {
            loss += (m - d2).max(0.0);
            if m - d2 > 0.0 {
                -g / n as f64
            } else {
                0.0
            }
        } else {
            loss += (m - d).max(0.0).powi(2);
            if m - d > 0.0 {
                -g / n as f64 * (m - d) / (d + 1e-4)
            } else {
                0.0
            }
        };
        da.extend(diff.iter().map(|v| beta * v));
    }
    (loss, da)
}

/// Checks a ContrastiveLoss forward (at top diff 0.5) against `contrastive_reference`,
/// its backward to both feature bottoms, and the gradient checker on them.
fn check_contrastive(text: &str, b: &mut [Blob], similar: &[bool], m: f64, legacy: bool) {
    let (a, bb) = (b[0].clone(), b[1].clone());
    let (mut l, mut tops) = run(text, b);
    let (loss, da) = contrastive_reference(&a, &bb, similar, m, 0.5, legacy);
    assert!(loss > 0.0);
    let n = similar.len() as f64;
    assert_close(tops[0].data(), &[loss / (2.0 * n)], 1e-5, 1e-7, "loss");
    let mut down = vec![false; b.len()];
    down[..2].fill(true);
    backward(l.as_mut(), b, &mut tops, 0.5, &down);
    assert_close(b[0].diff(), &da, 1e-5, 1e-7, "da");
    let db: Vec<f64> = da.iter().map(|v| -v).collect();
    assert_close(b[1].diff(), &db, 1e-5, 1e-7, "db");
    // The 1e-4 in the divisor is within the checker's tolerance at these distances.
    assert_eq!(check(l.as_mut(), b, &mut tops, &down), 2 * a.count());
}

#[test]
fn contrastive_loss_both_versions() {
    // d per pair chosen across the margin (1.2): similar, dissimilar inside, dissimilar outside.
    let a = Blob::from_data(&[4, 2], vec![0.0, 0.0, 0.3, 0.4, 1.0, 1.0, 0.2, 0.0]);
    let bb = Blob::from_data(&[4, 2], vec![0.6, 0.8, 0.0, 0.0, 0.0, 0.0, 0.1, 0.1]);
    let sim = Blob::from_data(&[4, 1, 1, 1], vec![1.0, 0.0, 0.7, 0.0]); // 0.7 → dissimilar
    for legacy in [false, true] {
        let text = format!(
            "name: \"c\" type: \"ContrastiveLoss\" bottom: \"a\" bottom: \"b\" bottom: \"s\"
             top: \"loss\" contrastive_loss_param {{ margin: 1.2 legacy_version: {legacy} }}"
        );
        let mut b = vec![a.clone(), bb.clone(), sim.clone()];
        check_contrastive(&text, &mut b, &[true, false, false, false], 1.2, legacy);
    }
}

/// The fork's four-bottom form: a pair is similar when its two class labels agree
/// (after truncation to integers), otherwise the usual loss on a, b.
#[test]
fn contrastive_loss_label_pair_form() {
    let (n, c) = (5, 3);
    let a = uniform_blob(&[n, c], -0.5, 0.5, 41);
    let bb = uniform_blob(&[n, c], -0.5, 0.5, 42);
    // Pairs 0 and 3 share a label (3.7 reads as 3); the others differ.
    let l1 = Blob::from_data(&[n], vec![2.0, 1.0, 4.0, 3.7, 0.0]);
    let l2 = Blob::from_data(&[n, 1, 1, 1], vec![2.0, 5.0, 1.0, 3.0, 6.0]);
    let text = "name: \"c\" type: \"ContrastiveLoss\" bottom: \"a\" bottom: \"b\" bottom: \"l1\"
         bottom: \"l2\" top: \"loss\" contrastive_loss_param { margin: 0.9 }";
    let mut b = vec![a, bb, l1, l2];
    let similar = [true, false, false, true, false];
    check_contrastive(text, &mut b, &similar, 0.9, false);
}

// ---------------------------------------------------------------- TripletLoss

fn sqdist(u: &[f32], v: &[f32]) -> f64 {
    u.iter()
        .zip(v)
        .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
        .sum()
}

#[test]
fn triplet_three_bottoms_forward_counts_and_gradient() {
    let (n, k, m) = (6, 3, 0.3f64);
    let mut b = vec![
        uniform_blob(&[n, k], -1.0, 1.0, 21),
        uniform_blob(&[n, k], -1.0, 1.0, 22),
        uniform_blob(&[n, k], -1.0, 1.0, 23),
    ];
    let text = "name: \"t\" type: \"TripletLoss\" bottom: \"a\" bottom: \"p\" bottom: \"n\"
                top: \"loss\" top: \"counts\" triplet_loss_param { margin: 0.3 }";
    let (mut l, mut tops) = run(text, &mut b);
    let row = |i: usize, j: usize| &b[i].data()[j * k..(j + 1) * k];
    let (mut loss, mut counts) = (0.0, [0.0f64; 3]);
    for j in 0..n {
        let (dap, dan) = (sqdist(row(0, j), row(1, j)), sqdist(row(0, j), row(2, j)));
        let h = m + dap - dan;
        assert!(
            h.abs() > 0.05,
            "row {j} too close to the hinge for the check: {h}"
        );
        loss += h.max(0.0);
        counts[if dan < dap {
            0
        } else if dan < dap + m {
            1
        } else {
            2
        }] += 1.0;
    }
    assert_close(
        tops[0].data(),
        &[loss / (2.0 * n as f64)],
        1e-5,
        1e-7,
        "loss",
    );
    assert_close(tops[1].data(), &counts, 0.0, 0.0, "counts");
    assert!(counts[2] > 0.0 && counts[0] + counts[1] > 0.0, "{counts:?}");
    assert_eq!(
        check(l.as_mut(), &mut b, &mut tops, &[true, true, true]),
        3 * n * k
    );
}

/// Six samples on a line (second axis 0), margin 1:
///   x      = 0, 2, 1.5, 3, 0.5, 3.5
///   labels = 0, 0, 1,   1, 2,   3      (samples 4 and 5 have no positive).
/// Squared distances:
///   D01 = 4, D02 = 2.25, D03 = 9, D04 = 0.25, D05 = 12.25, D12 = 0.25, D13 = 1,
///   D14 = 2.25, D15 = 2.25, D23 = 2.25, D24 = 1, D25 = 4, D34 = 6.25, D35 = 0.25.
/// Valid (a, p, n) with h = 1 + D(a,p) − D(a,n):
///   (0,1,2)  2.75 hard   (0,1,3) −4 easy      (0,1,4)  4.75 hard   (0,1,5) −7.25 easy
///   (1,0,2)  4.75 hard   (1,0,3)  4 hard      (1,0,4)  2.75 hard   (1,0,5)  2.75 hard
///   (2,3,0)  1 semi-hard (D20 = D23)          (2,3,1)  3 hard
///   (2,3,4)  2.25 hard   (2,3,5) −0.75 easy
///   (3,2,0) −5.75 easy   (3,2,1)  2.25 hard   (3,2,4) −3 easy      (3,2,5)  3 hard
/// Counts: 10 hard, 1 semi-hard, 5 easy.
/// (anchor, positive, negative) sample indices.
type Triplet = (usize, usize, usize);

const LINE: [f64; 6] = [0.0, 2.0, 1.5, 3.0, 0.5, 3.5];

fn hand_batch() -> Vec<Blob> {
    let x: Vec<f32> = LINE.iter().flat_map(|&v| [v as f32, 0.0]).collect();
    vec![
        Blob::from_data(&[6, 2], x),
        labels(&[0.0, 0.0, 1.0, 1.0, 2.0, 3.0]),
    ]
}

#[test]
fn triplet_mining_modes_on_a_hand_counted_batch() {
    let active_all = vec![
        (0, 1, 2),
        (0, 1, 4),
        (1, 0, 2),
        (1, 0, 3),
        (1, 0, 4),
        (1, 0, 5),
        (2, 3, 0),
        (2, 3, 1),
        (2, 3, 4),
        (3, 2, 1),
        (3, 2, 5),
    ];
    // Per mode: the active selected triplets (by hand, from the table above) and T.
    let cases: Vec<(&str, Vec<Triplet>, usize)> = vec![
        // Per (a,p), the nearest negative strictly beyond D(a,p): (0,1,3) (2,3,5) (3,2,4),
        // all inactive (D20 = D23 is not beyond); (1,0) has none beyond 4, so the
        // farthest negative: 4 and 5 tie at 2.25 and the lower index wins: (1,0,4).
        ("SEMI_HARD", vec![(1, 0, 4)], 4),
        ("SEMI_HARD_AND_HARD", active_all.clone(), 11),
        // Farthest positive, nearest negative per anchor 0..3.
        (
            "BATCH_HARD",
            vec![(0, 1, 4), (1, 0, 2), (2, 3, 1), (3, 2, 5)],
            4,
        ),
        ("BATCH_ALL", active_all, 16),
    ];
    let xs = LINE;
    for (mode, active, t) in cases {
        let text = format!(
            "name: \"t\" type: \"TripletLoss\" bottom: \"x\" bottom: \"y\" top: \"loss\" top: \"counts\"
             triplet_loss_param {{ margin: 1 mining: {mode} }}"
        );
        let mut b = hand_batch();
        let (mut l, mut tops) = run(&text, &mut b);
        let h =
            |a: usize, p: usize, n: usize| 1.0 + (xs[a] - xs[p]).powi(2) - (xs[a] - xs[n]).powi(2);
        assert!(active.iter().all(|&(a, p, n)| h(a, p, n) > 0.0));
        let sum: f64 = active.iter().map(|&(a, p, n)| h(a, p, n)).sum();
        assert_close(tops[0].data(), &[sum / (2.0 * t as f64)], 1e-6, 1e-7, mode);
        assert_close(tops[1].data(), &[10.0, 1.0, 5.0], 0.0, 0.0, mode);

        let g = 1.5f32;
        backward(l.as_mut(), &mut b, &mut tops, g, &[true, false]);
        let mut dx = [0.0f64; 6];
        for &(a, p, n) in &active {
            let s = g as f64 / t as f64;
            dx[a] += s * (xs[n] - xs[p]);
            dx[p] += s * (xs[p] - xs[a]);
            dx[n] += s * (xs[a] - xs[n]);
        }
        let want: Vec<f64> = dx.iter().flat_map(|&v| [v, 0.0]).collect();
        assert_close(b[0].diff(), &want, 1e-5, 1e-6, mode);
    }
}

/// x = 0, 1, −0.5, 0.5 with labels 0, 0, 1, 2: anchor 0's negatives 2 and 3 are both
/// at 0.25, and the lower index (2) is its nearest. Anchor 1 (positive 0) takes 3.
#[test]
fn triplet_batch_hard_ties_go_to_the_lower_index() {
    let mut b = vec![
        Blob::from_data(&[4, 1], vec![0.0, 1.0, -0.5, 0.5]),
        labels(&[0.0, 0.0, 1.0, 2.0]),
    ];
    let (mut l, mut tops) = run(
        "name: \"t\" type: \"TripletLoss\" bottom: \"x\" bottom: \"y\" top: \"loss\"
         triplet_loss_param { mining: BATCH_HARD }",
        &mut b,
    );
    // (0,1,2) and (1,0,3), both h = 1 + 1 − 0.25.
    assert_close(tops[0].data(), &[3.5 / 4.0], 1e-6, 0.0, "loss");
    backward(l.as_mut(), &mut b, &mut tops, 1.0, &[true, false]);
    // g/T = 0.5: da += 0.5(n − p), dp += 0.5(p − a), dn += 0.5(a − n), per triplet.
    assert_close(b[0].diff(), &[-1.25, 0.75, 0.25, 0.25], 1e-6, 0.0, "dx");
}

#[test]
fn triplet_mining_single_identity_has_no_triplets() {
    let mut b = hand_batch();
    b[1].data_mut().fill(1.0);
    let (mut l, mut tops) = run(
        "name: \"t\" type: \"TripletLoss\" bottom: \"x\" bottom: \"y\" top: \"loss\" top: \"c\"
         triplet_loss_param { mining: BATCH_ALL }",
        &mut b,
    );
    assert_eq!(tops[0].data(), &[0.0]);
    assert_eq!(tops[1].data(), &[0.0, 0.0, 0.0]);
    b[0].diff_mut().fill(5.0);
    backward(l.as_mut(), &mut b, &mut tops, 1.0, &[true, false]);
    assert!(b[0].diff().iter().all(|&d| d == 0.0));
}

#[test]
fn triplet_mining_gradients_match_numeric() {
    let (n, k, m) = (7usize, 3usize, 0.5f64);
    let y = [0.0, 0.0, 0.0, 1.0, 1.0, 2.0, 2.0];
    #[rustfmt::skip]
    let x = Blob::from_data(&[n, k], vec![
        -0.6, -1.0, 1.0,   -0.7, 1.4, -1.0,   -0.8, 1.1, 0.9,   -0.9, 0.0, 1.1,
        -0.3, 1.5, 0.8,    0.1, -0.8, -0.7,   0.8, -1.4, 0.6,
    ]);
    // The selection must not flip under the checker's ±0.01 steps (which move a
    // distance by up to ~0.06): every hinge and every gap between two candidates an
    // anchor compares stays clear of 0.
    let d =
        |i: usize, j: usize| sqdist(&x.data()[i * k..(i + 1) * k], &x.data()[j * k..(j + 1) * k]);
    for a in 0..n {
        let others: Vec<usize> = (0..n).filter(|&j| j != a).collect();
        for (ii, &i) in others.iter().enumerate() {
            for &j in &others[ii + 1..] {
                assert!(
                    (d(a, i) - d(a, j)).abs() > 0.15,
                    "near tie at anchor {a}: {i} {j}"
                );
            }
            for &j in &others {
                assert!(
                    (m + d(a, i) - d(a, j)).abs() > 0.15,
                    "near hinge at {a} {i} {j}"
                );
            }
        }
    }
    for mode in ["SEMI_HARD", "SEMI_HARD_AND_HARD", "BATCH_HARD", "BATCH_ALL"] {
        let text = format!(
            "name: \"t\" type: \"TripletLoss\" bottom: \"x\" bottom: \"y\" top: \"loss\"
             triplet_loss_param {{ margin: {m} mining: {mode} }}"
        );
        let mut b = vec![x.clone(), labels(&y)];
        let (mut l, mut tops) = run(&text, &mut b);
        assert!(
            tops[0].data()[0] > 0.0,
            "{mode}: no active triplet to check"
        );
        assert_eq!(
            check(l.as_mut(), &mut b, &mut tops, &[true, false]),
            n * k,
            "{mode}"
        );
    }
}

// ---------------------------------------------------------------- safetensors reader

#[test]
fn tensor_reader_values_and_errors() {
    use netrun::tensors::{read_f32, read_f64};
    let file = shared("reference/softmax_loss_basic.safetensors");
    let (shape, x) = read_f32(&file, "in.x").unwrap();
    assert_eq!(shape, vec![8, 10]);
    let (_, wide) = read_f64(&file, "in.x").unwrap();
    assert!(x.iter().zip(&wide).all(|(&a, &b)| a as f64 == b));
    let (shape, loss) = read_f64(&file, "out.loss").unwrap();
    assert_eq!((shape, loss.len()), (vec![1], 1));
    assert!(loss[0] > 0.0);

    let err = read_f32(&file, "out.loss").unwrap_err().to_string();
    assert!(
        err.contains("tensor `out.loss` in `") && err.contains("softmax_loss_basic.safetensors"),
        "{err}"
    );
    assert!(err.contains("stored as F64, expected F32"), "{err}");
    let err = read_f32(&file, "in.y").unwrap_err().to_string();
    assert!(
        err.contains("tensor `in.y`") && err.contains("no such tensor (the file has "),
        "{err}"
    );
    assert!(err.contains("in.label, in.x"), "{err}");
    let missing = shared("reference/no_such_case.safetensors");
    let err = read_f64(&missing, "in.x").unwrap_err().to_string();
    assert!(err.contains("no_such_case.safetensors"), "{err}");
    let err = read_f32(&shared("reference/softmax_loss_basic.json"), "in.x")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("softmax_loss_basic.json` is not a valid safetensors file"),
        "{err}"
    );
}
