//! Execution of the face layers: CenterLoss, MarginInnerProduct (A-Softmax) and
//! CombinedMarginInnerProduct. Forward against naive loops, gradient checks where the
//! gradients are true, the deliberate non-gradients against their formulas, the λ
//! counter, and a small CenterLoss training run.

mod common;

use netrun::blob::Blob;
use netrun::layer_io::{LayerIo, Rng, RunCtx};
use netrun::layers::margin_inner_product::{lambda_at, psi};
use netrun::layers::Layer;
use netrun::net::Net;
use netrun::netdef::Phase;
use netrun::testing::{assert_close, layer, setup, uniform_blob, GradientChecker};
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};
use std::f64::consts::PI;

fn run_forward(
    l: &mut dyn Layer,
    bottoms: &mut [Blob],
    tops: &mut [Blob],
    params: &mut [Blob],
    phase: Phase,
) -> Result<(), String> {
    let mut rng = Rng::seed_from_u64(0);
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
}

fn run_backward(l: &mut dyn Layer, bottoms: &mut [Blob], tops: &mut [Blob], params: &mut [Blob]) {
    let mut rng = Rng::seed_from_u64(0);
    let mut io = LayerIo::new(
        bottoms.iter_mut().collect(),
        tops.iter_mut().collect(),
        params.iter_mut().collect(),
    );
    l.backward(
        &mut io,
        &[true, false],
        &mut RunCtx {
            phase: Phase::Train,
            rng: &mut rng,
        },
    )
    .unwrap();
}

fn labels(values: &[usize]) -> Blob {
    Blob::from_data(&[values.len()], values.iter().map(|&v| v as f32).collect())
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum()
}

fn norm(a: &[f32]) -> f64 {
    dot(a, a).sqrt()
}

/// The layer's error message when forward runs in a net whose label input holds `label`.
fn net_label_error(layer_text: &str, label: f32) -> String {
    let text = format!(
        r#"layer {{ name: "in" type: "Input" top: "x" top: "label"
             input_param {{ shape {{ dim: 3 dim: 4 }} shape {{ dim: 3 }} }} }}
           {layer_text}"#
    );
    let graph = common::build(&text, Phase::Train).unwrap();
    let mut net = Net::new(graph, 3).unwrap();
    net.blob_mut("x").unwrap().data_mut().fill(0.5);
    net.blob_mut("label")
        .unwrap()
        .data_mut()
        .copy_from_slice(&[0.0, label, 1.0]);
    net.forward().unwrap_err().to_string()
}

// ---------------------------------------------------------------- CenterLoss

fn center_loss(num_output: usize) -> Box<dyn Layer> {
    layer(&format!(
        "name: \"c\" type: \"CenterLoss\" center_loss_param {{ num_output: {num_output} center_filler {{ type: \"uniform\" min: -1 max: 1 }} }}"
    ))
}

#[test]
fn center_loss_forward_matches_naive_loop() {
    // (x shape, labels): a 4-D feature blob flattened from axis 1, and batch 1.
    let cases: [(&[usize], &[usize]); 3] = [
        (&[5, 3], &[2, 0, 2, 3, 2]),
        (&[3, 2, 1, 2], &[1, 1, 0]),
        (&[1, 7], &[3]),
    ];
    for (shape, y) in cases {
        let mut l = center_loss(4);
        let mut bottoms = vec![uniform_blob(shape, -2.0, 2.0, 5), labels(y)];
        let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 8);
        assert_eq!(tops[0].shape(), &[] as &[usize]);
        run_forward(
            l.as_mut(),
            &mut bottoms,
            &mut tops,
            &mut params,
            Phase::Train,
        )
        .unwrap();
        let k = bottoms[0].count() / y.len();
        let mut sum = 0.0;
        for (i, &yi) in y.iter().enumerate() {
            for d in 0..k {
                let diff =
                    bottoms[0].data()[i * k + d] as f64 - params[0].data()[yi * k + d] as f64;
                sum += diff * diff;
            }
        }
        let expected = sum / (2.0 * y.len() as f64);
        assert_close(tops[0].data(), &[expected], 1e-6, 1e-7, "center loss");
    }
}

#[test]
fn center_loss_feature_gradient_checks() {
    let mut l = center_loss(3);
    let mut bottoms = vec![
        uniform_blob(&[6, 2, 2], -1.0, 1.0, 4),
        labels(&[0, 2, 2, 1, 0, 2]),
    ];
    let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 6);
    assert!(!l.param_diff_is_gradient(0));
    let n = GradientChecker::default()
        .check(
            l.as_mut(),
            &mut bottoms,
            &mut tops,
            &mut params,
            &[true, false],
        )
        .unwrap();
    // Only the 24 feature values: the centres' diff is not a gradient.
    assert_eq!(n, 24);
}

#[test]
fn center_loss_centre_update_follows_caffe_face() {
    let mut l = center_loss(4);
    // Classes 2, 0, 2, 2, 1: n = [1, 1, 3, 0], class 3 absent.
    let y = [2, 0, 2, 2, 1];
    let n_of = [1.0, 1.0, 3.0, 0.0];
    let k = 3;
    let mut bottoms = vec![uniform_blob(&[5, k], -1.0, 1.0, 12), labels(&y)];
    let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 13);
    run_forward(
        l.as_mut(),
        &mut bottoms,
        &mut tops,
        &mut params,
        Phase::Train,
    )
    .unwrap();
    let loss_weight = 0.25f32;
    tops[0].diff_mut()[0] = loss_weight;
    // The centre diff accumulates onto what is there.
    params[0].diff_mut().fill(0.5);
    run_backward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
    let (x, c) = (bottoms[0].data(), params[0].data());
    let mut expected_dc = vec![0.5f64; 4 * k];
    for (i, &yi) in y.iter().enumerate() {
        for d in 0..k {
            expected_dc[yi * k + d] +=
                (c[yi * k + d] as f64 - x[i * k + d] as f64) / (1.0 + n_of[yi]);
        }
    }
    assert_close(params[0].diff(), &expected_dc, 1e-6, 1e-7, "centre diff");
    assert!(params[0].diff()[3 * k..].iter().all(|&v| v == 0.5));
    let expected_dx: Vec<f64> = (0..5 * k)
        .map(|e| {
            let (i, d) = (e / k, e % k);
            loss_weight as f64 * (x[e] as f64 - c[y[i] * k + d] as f64) / 5.0
        })
        .collect();
    assert_close(bottoms[0].diff(), &expected_dx, 1e-6, 1e-7, "feature diff");
}

#[test]
fn center_loss_label_out_of_range_names_layer_sample_and_label() {
    let layer_text = r#"layer { name: "centre" type: "CenterLoss" bottom: "x" bottom: "label" top: "loss"
        center_loss_param { num_output: 4 } }"#;
    for label in [4.0, -1.0] {
        let err = net_label_error(layer_text, label);
        assert!(err.contains("layer `centre` (CenterLoss) forward"), "{err}");
        assert!(
            err.contains(&format!(
                "sample 1 has label {label}, outside the 4 classes [0, 4)"
            )),
            "{err}"
        );
    }
}

/// Two Gaussian clusters of 2-D points; features and centres trained by plain SGD on
/// the CenterLoss diffs (features by their gradient, centres by caffe-face's update).
#[test]
fn center_loss_training_pulls_centres_to_the_cluster_means() {
    let means = [[2.0f32, 1.0], [-1.5, -2.0]];
    let per_class = 16;
    let mut rng = Rng::seed_from_u64(99);
    let noise = Normal::new(0.0f32, 0.6).unwrap();
    let mut x = Vec::new();
    let mut y = Vec::new();
    for (class, m) in means.iter().enumerate() {
        for _ in 0..per_class {
            x.push(m[0] + noise.sample(&mut rng));
            x.push(m[1] + noise.sample(&mut rng));
            y.push(class);
        }
    }
    let batch = y.len();
    let class_means = |x: &[f32]| -> Vec<[f64; 2]> {
        (0..2)
            .map(|c| {
                let mut s = [0.0f64; 2];
                for i in (0..batch).filter(|&i| y[i] == c) {
                    s[0] += x[2 * i] as f64 / per_class as f64;
                    s[1] += x[2 * i + 1] as f64 / per_class as f64;
                }
                s
            })
            .collect()
    };
    let intra = |x: &[f32]| -> f64 {
        let m = class_means(x);
        (0..batch)
            .map(|i| {
                let c = m[y[i]];
                ((x[2 * i] as f64 - c[0]).powi(2) + (x[2 * i + 1] as f64 - c[1]).powi(2)).sqrt()
            })
            .sum::<f64>()
            / batch as f64
    };

    let mut l = center_loss(2);
    let mut bottoms = vec![Blob::from_data(&[batch, 2], x), labels(&y)];
    let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 21);
    let start_means = class_means(bottoms[0].data());
    let start_intra = intra(bottoms[0].data());
    let (loss_weight, lr, alpha) = (0.1f32, 1.0f32, 0.5f32);
    let mut first_loss = None;
    let mut loss = 0.0;
    for _ in 0..300 {
        run_forward(
            l.as_mut(),
            &mut bottoms,
            &mut tops,
            &mut params,
            Phase::Train,
        )
        .unwrap();
        loss = tops[0].data()[0];
        first_loss.get_or_insert(loss);
        tops[0].diff_mut()[0] = loss_weight;
        params[0].zero_diff();
        run_backward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
        let (xd, dx) = bottoms[0].data_mut_and_diff_mut();
        xd.iter_mut().zip(dx.iter()).for_each(|(v, d)| *v -= lr * d);
        let (c, dc) = params[0].data_mut_and_diff_mut();
        c.iter_mut()
            .zip(dc.iter())
            .for_each(|(v, d)| *v -= alpha * d);
    }
    let end_means = class_means(bottoms[0].data());
    for j in 0..2 {
        let centre = &params[0].data()[2 * j..2 * j + 2];
        let to_start = ((centre[0] as f64 - start_means[j][0]).powi(2)
            + (centre[1] as f64 - start_means[j][1]).powi(2))
        .sqrt();
        let to_end = ((centre[0] as f64 - end_means[j][0]).powi(2)
            + (centre[1] as f64 - end_means[j][1]).powi(2))
        .sqrt();
        assert!(
            to_start < 0.1,
            "centre {j} is {to_start} from the cluster mean"
        );
        assert!(
            to_end < 1e-3,
            "centre {j} is {to_end} from its features' mean"
        );
    }
    // Each feature moves towards its centre by lr·loss_weight/M = 1/320 of the gap per
    // step: 300 steps leave (1 − 1/320)^300 ≈ 0.39 of the spread.
    let ratio = intra(bottoms[0].data()) / start_intra;
    let predicted = (1.0 - 1.0 / 320.0f64).powi(300);
    assert!(
        (ratio - predicted).abs() < 0.05,
        "intra-class ratio {ratio}, predicted {predicted}"
    );
    assert!(
        loss < 0.2 * first_loss.unwrap(),
        "loss {loss} from {first_loss:?}"
    );
}

// ------------------------------------------------------- MarginInnerProduct

/// ψ(c) = (−1)^k·cos(mθ) − 2k from θ = arccos c, and its slope dψ/dc.
fn psi_from_angle(m: u32, c: f64) -> (f64, f64, u32) {
    let theta = c.acos();
    let k = (m as f64 * theta / PI).floor();
    let sign = if k as i64 % 2 == 0 { 1.0 } else { -1.0 };
    let value = sign * (m as f64 * theta).cos() - 2.0 * k;
    let slope = sign * m as f64 * (m as f64 * theta).sin() / theta.sin();
    (value, slope, k as u32)
}

#[test]
fn psi_matches_the_angle_formula_in_every_region() {
    for m in 1..=4 {
        let mut regions = std::collections::BTreeSet::new();
        for step in 1..200 {
            let c = -1.0 + step as f64 / 100.0;
            let (value, slope, k) = psi_from_angle(m, c);
            let got = psi(m, c);
            assert!(
                (got.value - value).abs() < 1e-12,
                "m={m} c={c}: ψ {}",
                got.value
            );
            assert!(
                (got.slope - slope).abs() < 1e-9,
                "m={m} c={c}: ψ' {}",
                got.slope
            );
            regions.insert(k);
        }
        assert_eq!(regions.len(), m as usize, "m={m} regions {regions:?}");
    }
    // On the region boundaries sgn is 0 and the value is still the continuous one.
    assert_eq!(psi(4, 0.0).value, -3.0);
    assert!((psi(4, 0.5f64.sqrt()).value + 1.0).abs() < 1e-12);
    assert!((psi(4, -(0.5f64.sqrt())).value + 5.0).abs() < 1e-12);
    assert_eq!(psi(3, 0.5).value, -1.0);
    assert_eq!(psi(3, -0.5).value, -3.0);
    assert_eq!(psi(2, 0.0).value, -1.0);
}

#[test]
fn lambda_schedule_matches_sphereface_settings() {
    let sf = |t: i64| lambda_at(1000.0, 0.12, 1.0, 5.0, t);
    assert!((sf(1) - 892.86).abs() < 0.005, "{}", sf(1));
    for (t, want) in [(10, 454.55), (100, 76.92), (500, 16.39), (1000, 8.26)] {
        assert!((sf(t) - want).abs() < 0.005, "t={t}: {}", sf(t));
    }
    assert!((sf(1658) - 5.0010).abs() < 5e-5, "{}", sf(1658));
    assert!(sf(1658) > 5.0);
    for t in [1659, 1660, 5000, 100_000] {
        assert_eq!(sf(t), 5.0, "t={t}");
    }
    // power ≠ 1 and no floor.
    let expected = 2.0 * (1.0 + 0.5f64 * 3.0).powf(-0.75);
    assert!((lambda_at(2.0, 0.5, 0.75, 0.0, 3) - expected).abs() < 1e-12);
}

fn margin_ip(m: &str, extra: &str) -> Box<dyn Layer> {
    layer(&format!(
        "name: \"fc6\" type: \"MarginInnerProduct\" top: \"fc6\" top: \"lambda\" margin_inner_product_param {{ num_output: 4 type: {m} weight_filler {{ type: \"gaussian\" std: 0.7 }} {extra} }}"
    ))
}

const TYPES: [&str; 4] = ["SINGLE", "DOUBLE", "TRIPLE", "QUADRUPLE"];

/// Cosines covering every k region of m = 2, 3, 4 (boundaries 0, ±½, ±1/√2).
const COSINES: [f64; 10] = [0.95, 0.8, 0.6, 0.3, 0.1, -0.2, -0.45, -0.6, -0.75, -0.9];

/// Features x_i = r_i·(c_i·ŵ_y + √(1 − c_i²)·u_i), u_i ⊥ ŵ_y, so that the target cosine
/// is c_i; W is the layer's raw weight (K = 5, N = 4).
fn features_with_cosines(w: &Blob, y: &[usize]) -> Blob {
    let k = 5;
    let mut data = Vec::new();
    for (i, (&c, &yi)) in COSINES.iter().zip(y).enumerate() {
        let wy = &w.data()[yi * k..(yi + 1) * k];
        let wn = norm(wy);
        let unit: Vec<f64> = wy.iter().map(|&v| v as f64 / wn).collect();
        // A direction orthogonal to ŵ_y: a basis vector minus its projection.
        let mut u: Vec<f64> = (0..k).map(|d| if d == i % k { 1.0 } else { 0.3 }).collect();
        let along: f64 = u.iter().zip(&unit).map(|(a, b)| a * b).sum();
        u.iter_mut().zip(&unit).for_each(|(a, b)| *a -= along * b);
        let un = u.iter().map(|a| a * a).sum::<f64>().sqrt();
        let r = 0.5 + 0.3 * i as f64;
        for d in 0..k {
            data.push((r * (c * unit[d] + (1.0 - c * c).sqrt() * u[d] / un)) as f32);
        }
    }
    Blob::from_data(&[COSINES.len(), k], data)
}

#[test]
fn margin_ip_forward_matches_naive_loop_for_every_m_and_region() {
    let y = [0, 1, 2, 3, 0, 1, 2, 3, 1, 2];
    for (mi, ty) in TYPES.iter().enumerate() {
        let m = mi as u32 + 1;
        // t = 1 + 1 = 2: λ = 2/(1 + 0.5·2) = 1.
        let mut l = margin_ip(ty, "base: 2 gamma: 0.5 power: 1 iteration: 1");
        let mut bottoms = vec![Blob::new(&[10, 5]), labels(&y)];
        let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 31);
        bottoms[0] = features_with_cosines(&params[0], &y);
        let raw = params[0].clone();
        run_forward(
            l.as_mut(),
            &mut bottoms,
            &mut tops,
            &mut params,
            Phase::Train,
        )
        .unwrap();
        let lambda = 1.0;
        assert_close(tops[1].data(), &[lambda], 1e-7, 0.0, "lambda top");
        // W is normalised in place.
        let mut unit = Vec::new();
        for j in 0..4 {
            let row = &raw.data()[j * 5..(j + 1) * 5];
            unit.extend(row.iter().map(|&v| v as f64 / norm(row)));
        }
        assert_close(params[0].data(), &unit, 1e-6, 1e-7, "normalised W");
        let mut expected = Vec::new();
        let mut regions = std::collections::BTreeSet::new();
        for (i, &yi) in y.iter().enumerate() {
            let xi = &bottoms[0].data()[i * 5..(i + 1) * 5];
            let r = norm(xi);
            for j in 0..4 {
                let xw: f64 = (0..5).map(|d| xi[d] as f64 * unit[j * 5 + d]).sum();
                if m == 1 || j != yi {
                    expected.push(xw);
                } else {
                    let c = xw / r;
                    assert!((c - COSINES[i]).abs() < 1e-5);
                    let (p, _, k) = psi_from_angle(m, c);
                    regions.insert(k);
                    expected.push((lambda * xw + r * p) / (1.0 + lambda));
                }
            }
        }
        if m > 1 {
            assert_eq!(regions.len(), m as usize, "m={m}: regions {regions:?}");
        }
        assert_close(
            tops[0].data(),
            &expected,
            1e-5,
            1e-6,
            &format!("m={m} logits"),
        );
    }
}

#[test]
fn margin_ip_coded_backward_matches_sphereface_formulas() {
    let y = [3, 1, 2, 0, 0, 1, 2, 3, 1, 2];
    for (mi, ty) in TYPES.iter().enumerate() {
        let m = mi as u32 + 1;
        let mut l = margin_ip(
            ty,
            "base: 1000 gamma: 0.12 power: 1 lambda_min: 5 iteration: 99",
        );
        assert!(!l.param_diff_is_gradient(0));
        let mut bottoms = vec![Blob::new(&[10, 5]), labels(&y)];
        let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 7);
        bottoms[0] = features_with_cosines(&params[0], &y);
        run_forward(
            l.as_mut(),
            &mut bottoms,
            &mut tops,
            &mut params,
            Phase::Train,
        )
        .unwrap();
        let lambda = 1000.0 / (1.0 + 0.12f32 as f64 * 100.0);
        assert_close(tops[1].data(), &[lambda], 1e-6, 0.0, "lambda top");
        let g = uniform_blob(&[10, 4], -1.0, 1.0, 17);
        tops[0].diff_mut().copy_from_slice(g.data());
        params[0].diff_mut().fill(0.25);
        run_backward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
        let (x, w, g) = (bottoms[0].data(), params[0].data(), g.data());
        // dW = 0.25 + Gᵀ·X, whatever m is.
        let mut dw = vec![0.25f64; 4 * 5];
        for j in 0..4 {
            for d in 0..5 {
                for i in 0..10 {
                    dw[j * 5 + d] += g[i * 4 + j] as f64 * x[i * 5 + d] as f64;
                }
            }
        }
        assert_close(params[0].diff(), &dw, 1e-5, 1e-6, &format!("m={m} dW"));
        // dx_i = Σ_{j≠y} g_ij·ŵ_j + g_iy·[λ/(1+λ)·ŵ_y + (â·ŵ_y + b̂·x_i)/(1+λ)].
        let mut dx = vec![0.0f64; 10 * 5];
        for i in 0..10 {
            let xi = &x[i * 5..(i + 1) * 5];
            let r = norm(xi);
            for j in 0..4 {
                let wj = &w[j * 5..(j + 1) * 5];
                let gij = g[i * 4 + j] as f64;
                let (cw, cx) = if m == 1 || j != y[i] {
                    (1.0, 0.0)
                } else {
                    let c = dot(xi, wj) / r;
                    let (p, slope, _) = psi_from_angle(m, c);
                    let (a, b) = (slope, (p - c * slope) / r);
                    let len = (a * a + b * b).sqrt();
                    (
                        (lambda + a / len) / (1.0 + lambda),
                        b / len / (1.0 + lambda),
                    )
                };
                for d in 0..5 {
                    dx[i * 5 + d] += gij * (cw * wj[d] as f64 + cx * xi[d] as f64);
                }
            }
        }
        assert_close(bottoms[0].diff(), &dx, 1e-4, 1e-6, &format!("m={m} dx"));
    }
}

#[test]
fn margin_ip_exact_gradient_checks_on_features_and_raw_weights() {
    for ty in TYPES {
        // gamma 0: λ = base whatever the counter (the checker runs forward many times).
        let mut l = margin_ip(ty, "base: 2 gamma: 0 lambda_min: 0 exact_gradient: true");
        assert!(l.param_diff_is_gradient(0));
        let mut bottoms = vec![
            uniform_blob(&[6, 3], -1.0, 1.0, 41),
            labels(&[0, 3, 1, 2, 2, 1]),
        ];
        let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 42);
        // Raw rows far from unit length exercise the 1/‖w‖ of the normalisation.
        params[0].data_mut().iter_mut().for_each(|v| *v *= 2.5);
        let n = GradientChecker::new(1e-3, 1e-2)
            .check(
                l.as_mut(),
                &mut bottoms,
                &mut tops,
                &mut params,
                &[true, false],
            )
            .unwrap_or_else(|e| panic!("{ty}: {e}"));
        assert_eq!(n, 18 + 12, "{ty}");
    }
    // In the TEST phase the counter stays, so the SphereFace schedule is checkable too.
    let mut l = margin_ip(
        "QUADRUPLE",
        "base: 1000 gamma: 0.12 power: 1 lambda_min: 5 iteration: 900 exact_gradient: true",
    );
    let mut bottoms = vec![uniform_blob(&[2, 3, 2], -1.0, 1.0, 43), labels(&[1, 2])];
    let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 44);
    let checker = GradientChecker {
        phase: Phase::Test,
        ..GradientChecker::new(1e-3, 1e-2)
    };
    checker
        .check(
            l.as_mut(),
            &mut bottoms,
            &mut tops,
            &mut params,
            &[true, false],
        )
        .unwrap();
}

#[test]
fn margin_ip_counter_advances_in_train_only_and_round_trips() {
    let settings = "base: 1000 gamma: 0.12 power: 1 lambda_min: 5 iteration: 10";
    let mut l = margin_ip("QUADRUPLE", settings);
    let mut bottoms = vec![uniform_blob(&[3, 5], -1.0, 1.0, 2), labels(&[0, 1, 3])];
    let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 3);
    let lam = |t: f64| 1000.0 / (1.0 + 0.12f32 as f64 * t);
    assert_eq!(l.state(), vec![("iteration".to_string(), 10.0)]);
    let mut fwd = |l: &mut dyn Layer, phase| {
        run_forward(l, &mut bottoms, &mut tops, &mut params, phase).unwrap();
        tops[1].data()[0] as f64
    };
    assert!((fwd(l.as_mut(), Phase::Train) - lam(11.0)).abs() < 1e-3);
    assert!((fwd(l.as_mut(), Phase::Train) - lam(12.0)).abs() < 1e-3);
    assert!((fwd(l.as_mut(), Phase::Test) - lam(12.0)).abs() < 1e-3);
    assert!((fwd(l.as_mut(), Phase::Test) - lam(12.0)).abs() < 1e-3);
    assert_eq!(l.state(), vec![("iteration".to_string(), 12.0)]);

    // A fresh layer restored from the state continues the schedule.
    let mut resumed = margin_ip("QUADRUPLE", settings);
    resumed.reshape(&[vec![3, 5], vec![3]]).unwrap();
    resumed.set_state(&l.state()).unwrap();
    assert!((fwd(resumed.as_mut(), Phase::Train) - lam(13.0)).abs() < 1e-3);
    assert_eq!(resumed.state(), vec![("iteration".to_string(), 13.0)]);

    let err = resumed.set_state(&[("iter".to_string(), 3.0)]).unwrap_err();
    assert!(err.contains("unknown state `iter`"), "{err}");
    let err = resumed
        .set_state(&[("iteration".to_string(), 2.5)])
        .unwrap_err();
    assert!(err.contains("whole number, got 2.5"), "{err}");
    // Layers without state keep the defaults.
    assert!(center_loss(2).state().is_empty());
}

#[test]
fn margin_ip_lambda_top_reaches_the_floor() {
    let mut l = margin_ip(
        "QUADRUPLE",
        "base: 1000 gamma: 0.12 power: 1 lambda_min: 5 iteration: 1657",
    );
    let mut bottoms = vec![uniform_blob(&[2, 5], -1.0, 1.0, 2), labels(&[0, 1])];
    let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 3);
    run_forward(
        l.as_mut(),
        &mut bottoms,
        &mut tops,
        &mut params,
        Phase::Train,
    )
    .unwrap();
    let t1658 = 1000.0 / (1.0 + 0.12f32 as f64 * 1658.0);
    assert!(t1658 > 5.0);
    assert_close(tops[1].data(), &[t1658], 1e-7, 0.0, "λ at t = 1658");
    run_forward(
        l.as_mut(),
        &mut bottoms,
        &mut tops,
        &mut params,
        Phase::Train,
    )
    .unwrap();
    assert_eq!(tops[1].data(), &[5.0]);
}

#[test]
fn margin_ip_label_errors_and_single_ignores_labels() {
    let text = |ty: &str| {
        format!(
            r#"layer {{ name: "fc6" type: "MarginInnerProduct" bottom: "x" bottom: "label" top: "fc6"
               margin_inner_product_param {{ num_output: 4 type: {ty} weight_filler {{ type: "xavier" }} }} }}"#
        )
    };
    let err = net_label_error(&text("QUADRUPLE"), 9.0);
    assert!(
        err.contains("layer `fc6` (MarginInnerProduct) forward"),
        "{err}"
    );
    assert!(
        err.contains("sample 1 has label 9, outside the 4 classes [0, 4)"),
        "{err}"
    );
    // SINGLE is a plain x·Wᵀ that never reads the labels (as in sphereface).
    let graph = common::build(
        &format!(
            r#"layer {{ name: "in" type: "Input" top: "x" top: "label"
                 input_param {{ shape {{ dim: 3 dim: 4 }} shape {{ dim: 3 }} }} }} {}"#,
            text("SINGLE")
        ),
        Phase::Train,
    )
    .unwrap();
    let mut net = Net::new(graph, 3).unwrap();
    net.blob_mut("label").unwrap().data_mut().fill(77.0);
    net.forward().unwrap();
}

// ----------------------------------------------- CombinedMarginInnerProduct

fn combined(m1: f32, m2: f32, m3: f32, s: f32) -> Box<dyn Layer> {
    layer(&format!(
        "name: \"arc\" type: \"CombinedMarginInnerProduct\" combined_margin_inner_product_param {{ num_output: 5 m1: {m1} m2: {m2} m3: {m3} s: {s} weight_filler {{ type: \"gaussian\" std: 0.8 }} }}"
    ))
}

/// cos θ_ij = x_i·w_j/(‖x_i‖‖w_j‖) for all i, j (M×5).
fn cosines(x: &Blob, w: &Blob) -> Vec<f64> {
    let k = w.count() / 5;
    let mut out = Vec::new();
    for xi in x.data().chunks(k) {
        for wj in w.data().chunks(k) {
            out.push(dot(xi, wj) / (norm(xi) * norm(wj)));
        }
    }
    out
}

fn combined_logits(
    m1: f32,
    m2: f32,
    m3: f32,
    s: f32,
    y: &[usize],
    seed: u64,
) -> (Vec<f32>, Vec<f64>) {
    let mut l = combined(m1, m2, m3, s);
    let mut bottoms = vec![uniform_blob(&[y.len(), 2, 3], -1.0, 1.0, seed), labels(y)];
    let (mut tops, mut params) = setup(l.as_mut(), &bottoms, seed + 1);
    let before = params[0].clone();
    run_forward(
        l.as_mut(),
        &mut bottoms,
        &mut tops,
        &mut params,
        Phase::Train,
    )
    .unwrap();
    assert_eq!(params[0], before, "the stored weights are not modified");
    (tops[0].data().to_vec(), cosines(&bottoms[0], &params[0]))
}

#[test]
fn combined_margin_special_cases() {
    let y = [0, 4, 2, 2, 1, 3, 0];
    let s = 30.0f64;
    // NormFace: s·cos θ everywhere.
    let (f, cos) = combined_logits(1.0, 0.0, 0.0, 30.0, &y, 50);
    let expected: Vec<f64> = cos.iter().map(|c| s * c).collect();
    assert_close(&f, &expected, 1e-5, 1e-5, "s·cos θ");
    // CosFace: s·(cos θ − m3) on the target only.
    let (f, cos) = combined_logits(1.0, 0.0, 0.35, 30.0, &y, 50);
    let expected: Vec<f64> = cos
        .iter()
        .enumerate()
        .map(|(e, c)| {
            if y[e / 5] == e % 5 {
                s * (c - 0.35)
            } else {
                s * c
            }
        })
        .collect();
    assert_close(&f, &expected, 1e-5, 1e-5, "CosFace");
    // ArcFace: s·cos(θ + m2) = s·(cos θ·cos m2 − sin θ·sin m2) while θ + m2 ≤ π.
    let m2 = 0.5f64;
    let (f, cos) = combined_logits(1.0, 0.5, 0.0, 30.0, &y, 50);
    let mut checked = 0;
    for (e, c) in cos.iter().enumerate() {
        let target = y[e / 5] == e % 5;
        if target {
            assert!(c.acos() + m2 <= PI, "pick inputs below π − m2");
            checked += 1;
        }
        let want = if target {
            s * (c * m2.cos() - (1.0 - c * c).sqrt() * m2.sin())
        } else {
            s * c
        };
        assert!(
            (f[e] as f64 - want).abs() < 1e-4,
            "ArcFace [{e}]: {} vs {want}",
            f[e]
        );
    }
    assert_eq!(checked, y.len());
}

#[test]
fn combined_margin_beyond_pi_keeps_decreasing() {
    // A target at θ = π − 0.1 with m2 = 0.5: θ + m2 = π + 0.4 ⇒ k = 1,
    // ψ = −cos(π + 0.4) − 2 = cos 0.4 − 2.
    let mut l = combined(1.0, 0.5, 0.0, 2.0);
    let mut bottoms = vec![Blob::new(&[1, 2]), labels(&[0])];
    let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 5);
    params[0].data_mut()[..2].copy_from_slice(&[1.0, 0.0]);
    let theta = PI - 0.1;
    bottoms[0] = Blob::from_data(
        &[1, 2],
        vec![theta.cos() as f32 * 3.0, theta.sin() as f32 * 3.0],
    );
    run_forward(
        l.as_mut(),
        &mut bottoms,
        &mut tops,
        &mut params,
        Phase::Train,
    )
    .unwrap();
    let want = 2.0 * (0.4f64.cos() - 2.0);
    assert!(
        (tops[0].data()[0] as f64 - want).abs() < 1e-4,
        "{}",
        tops[0].data()[0]
    );
    // Between ψ = −1 (θ + m2 = π) and ψ = cos(m2) − 2 (θ = π): still decreasing.
    let psi = want / 2.0;
    assert!(psi < -1.0 && psi > 0.5f64.cos() - 2.0, "{psi}");
}

#[test]
fn combined_margin_gradient_checks() {
    // NormFace, CosFace, ArcFace, A-Softmax-like m1 = 2, and everything combined.
    for (m1, m2, m3, s) in [
        (1.0, 0.0, 0.0, 4.0),
        (1.0, 0.0, 0.35, 8.0),
        (1.0, 0.5, 0.0, 8.0),
        (2.0, 0.0, 0.0, 4.0),
        (1.5, 0.3, 0.2, 16.0),
    ] {
        let mut l = combined(m1, m2, m3, s);
        let mut bottoms = vec![uniform_blob(&[4, 3], -1.0, 1.0, 60), labels(&[1, 4, 0, 4])];
        let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 61);
        let n = GradientChecker::new(1e-3, 1e-2)
            .check(
                l.as_mut(),
                &mut bottoms,
                &mut tops,
                &mut params,
                &[true, false],
            )
            .unwrap_or_else(|e| panic!("m1={m1} m2={m2} m3={m3}: {e}"));
        assert_eq!(n, 12 + 15);
    }
}

#[test]
fn combined_margin_gradient_beyond_pi() {
    // Targets near θ = π, where m1·θ + m2 passes π.
    let mut l = combined(1.0, 0.5, 0.1, 4.0);
    let mut bottoms = vec![Blob::new(&[3, 2]), labels(&[0, 0, 1])];
    let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 9);
    let w = params[0].data()[..2].to_vec();
    let x: Vec<f32> = [(-1.0, 0.2), (-1.0, -0.5), (0.3, 0.9)]
        .iter()
        .flat_map(|&(a, b)| [a * w[0] - b * w[1], a * w[1] + b * w[0]])
        .collect();
    bottoms[0] = Blob::from_data(&[3, 2], x);
    let c = cosines(&bottoms[0], &params[0]);
    assert!(c[0].acos() + 0.5 > PI && c[5].acos() + 0.5 > PI);
    GradientChecker::new(1e-3, 1e-2)
        .check(
            l.as_mut(),
            &mut bottoms,
            &mut tops,
            &mut params,
            &[true, false],
        )
        .unwrap();
}

#[test]
fn combined_margin_label_out_of_range() {
    let err = net_label_error(
        r#"layer { name: "arc" type: "CombinedMarginInnerProduct" bottom: "x" bottom: "label" top: "logits"
           combined_margin_inner_product_param { num_output: 4 } }"#,
        -2.0,
    );
    assert!(
        err.contains("layer `arc` (CombinedMarginInnerProduct) forward"),
        "{err}"
    );
    assert!(
        err.contains("sample 1 has label -2, outside the 4 classes [0, 4)"),
        "{err}"
    );
}
