//! The margin-loss forks' layers (AM-Softmax, NormFace, L-Softmax, arcface-caffe):
//! forward and backward against float64 computations written here independently of
//! the layers (arccos-based angles, explicit sums), and the shared gradient checker.

mod common;

use common::forks::{close, dot, f64s, forward_in, labels, norm, seed_top_diff};
use netrun::blob::Blob;
use netrun::layers::Layer;
use netrun::netdef::Phase;
use netrun::testing::{backward, forward, layer, setup, uniform_blob, GradientChecker};

// ---------------------------------------------------------------- InnerProduct normalize

#[test]
fn inner_product_normalize_uses_unit_rows_and_the_forks_weight_update() {
    let mut l = layer(
        r#"name: "ip" type: "InnerProduct" inner_product_param { num_output: 4 normalize: true
           weight_filler { type: "gaussian" std: 2 } bias_filler { type: "uniform" min: -1 max: 1 } }"#,
    );
    let mut bottoms = vec![uniform_blob(&[3, 5], -1.0, 1.0, 1)];
    let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 2);
    let w0 = f64s(params[0].data());
    let b = f64s(params[1].data());
    forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
    let x = f64s(bottoms[0].data());
    let unit: Vec<Vec<f64>> = w0
        .chunks(5)
        .map(|r| r.iter().map(|v| v / norm(r)).collect())
        .collect();
    let want: Vec<f64> = (0..3)
        .flat_map(|i| (0..4).map(move |j| (i, j)))
        .map(|(i, j)| dot(&x[i * 5..i * 5 + 5], &unit[j]) + b[j])
        .collect();
    close(tops[0].data(), &want, 1e-5, "normalised IP forward");
    close(
        params[0].data(),
        &unit.concat(),
        1e-6,
        "rows normalised in place",
    );
    // dW is Gᵀ·X w.r.t. the normalised rows (the fork's update); dx and db exact.
    let g = seed_top_diff(&mut tops[0], 9);
    params.iter_mut().for_each(Blob::zero_diff);
    backward(l.as_mut(), &mut bottoms, &mut tops, &mut params, &[true]);
    let dw: Vec<f64> = (0..4)
        .flat_map(|j| (0..5).map(move |k| (j, k)))
        .map(|(j, k)| (0..3).map(|i| g[i * 4 + j] * x[i * 5 + k]).sum())
        .collect();
    close(params[0].diff(), &dw, 1e-5, "normalised IP dW");
    let mut l = layer(
        r#"name: "ip" type: "InnerProduct" inner_product_param { num_output: 4 normalize: true
           weight_filler { type: "gaussian" } bias_filler { type: "gaussian" } }"#,
    );
    let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 5);
    GradientChecker::new(1e-2, 1e-2)
        .check(l.as_mut(), &mut bottoms, &mut tops, &mut params, &[true])
        .unwrap();
}

#[test]
fn inner_product_normalize_refuses_transpose() {
    let net = netrun::netdef::parse_net_str(
        "t.net",
        r#"layer { name: "ip" type: "InnerProduct" bottom: "x" top: "y"
           inner_product_param { num_output: 2 normalize: true transpose: true } }"#,
    )
    .unwrap();
    let err = netrun::layers::build(&net.layers[0], &Default::default())
        .err()
        .unwrap();
    assert!(err[0].message.contains("transpose"), "{}", err[0].message);
}

// ---------------------------------------------------------------- Normalize options

fn normalize_case(opts: &str, tops_n: usize) -> (Box<dyn Layer>, Vec<Blob>, Vec<Blob>, Vec<Blob>) {
    let extra = if tops_n == 2 { r#"top: "n""# } else { "" };
    let mut l = layer(&format!(
        r#"name: "nm" type: "Normalize" bottom: "x" top: "y" {extra} normalize_param {{ {opts} }}"#
    ));
    let bottoms = vec![uniform_blob(&[3, 4], -1.0, 1.0, 11)];
    let (tops, params) = setup(l.as_mut(), &bottoms, 1);
    (l, bottoms, tops, params)
}

#[test]
fn normalize_l1_and_norm_top_match_float64_and_the_gradient() {
    for (opts, l1) in [
        ("normalize_type: \"L1\"", true),
        ("normalize_type: \"L2\" bp_norm: true", false),
    ] {
        let (mut l, mut bottoms, mut tops, mut params) = normalize_case(opts, 2);
        forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
        let x = f64s(bottoms[0].data());
        let (mut y, mut s) = (vec![], vec![]);
        for r in x.chunks(4) {
            let n = if l1 {
                r.iter().map(|v| v.abs()).sum()
            } else {
                norm(r)
            };
            s.push(n);
            y.extend(r.iter().map(|v| v / n));
        }
        close(tops[0].data(), &y, 1e-6, opts);
        close(tops[1].data(), &s, 1e-6, opts);
        // L1 has no gradient to the norm top (bp_norm off): check only top 0 there.
        if l1 {
            tops.truncate(1);
        }
        GradientChecker::new(1e-3, 1e-2)
            .with_kink(0.0, 2e-3)
            .check(l.as_mut(), &mut bottoms, &mut tops, &mut params, &[true])
            .unwrap();
    }
}

#[test]
fn normalize_fix_gradient_leaves_out_the_norm() {
    let (mut l, mut bottoms, mut tops, mut params) = normalize_case("fix_gradient: true", 1);
    forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
    let g = seed_top_diff(&mut tops[0], 4);
    backward(l.as_mut(), &mut bottoms, &mut tops, &mut params, &[true]);
    let x = f64s(bottoms[0].data());
    let mut want = vec![];
    for (r, gr) in x.chunks(4).zip(g.chunks(4)) {
        let y: Vec<f64> = r.iter().map(|v| v / norm(r)).collect();
        let yg = dot(&y, gr);
        want.extend(gr.iter().zip(&y).map(|(g, y)| g - y * yg));
    }
    close(bottoms[0].diff(), &want, 1e-6, "fix_gradient dx");
}

// ---------------------------------------------------------------- Scale bounds, Accuracy

#[test]
fn scale_clamps_its_learned_factor_before_forward() {
    for (opts, init, want) in [
        ("min_value: 0.5", 0.1f32, 0.5f64),
        ("max_value: 2", 7.0, 2.0),
    ] {
        let mut l = layer(&format!(
            r#"name: "s" type: "Scale" scale_param {{ num_axes: 0 {opts} filler {{ value: {init} }} }}"#
        ));
        let mut bottoms = vec![uniform_blob(&[2, 3], -1.0, 1.0, 3)];
        let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 1);
        forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
        let y: Vec<f64> = bottoms[0].data().iter().map(|&v| v as f64 * want).collect();
        close(tops[0].data(), &y, 1e-6, opts);
        assert_eq!(
            params[0].data()[0] as f64,
            want,
            "{opts}: γ clamped in place"
        );
    }
}

#[test]
fn accuracy_min_is_better_ranks_distances() {
    let mut l = layer(r#"name: "a" type: "Accuracy" accuracy_param { min_is_better: true }"#);
    let mut bottoms = vec![
        Blob::from_data(&[3, 3], vec![0.1, 0.5, 0.9, 0.7, 0.2, 0.3, 0.4, 0.6, 0.5]),
        labels(&[0, 2, 0]),
    ];
    let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 1);
    forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
    // Sample 0: class 0 is nearest (hit); 1: class 1 nearest (miss); 2: class 0 (hit).
    close(tops[0].data(), &[2.0 / 3.0], 1e-6, "min_is_better accuracy");
}

// ---------------------------------------------------------------- fillers

#[test]
fn gaussian_unitball_rows_are_unit_and_msra_alpha_shrinks_the_std() {
    use netrun::layers::filler::{fill, FillerParams};
    use netrun::philox::ParamStreams;
    let p = FillerParams {
        type_name: "gaussian_unitball".into(),
        ..FillerParams::default()
    };
    let mut b = Blob::new(&[6, 10]);
    fill(
        &p,
        &mut b,
        ParamStreams {
            seed: 1,
            layer: "w",
        }
        .blob(0),
    );
    for r in b.data().chunks(10) {
        assert!((norm(&f64s(r)) - 1.0).abs() < 1e-6);
    }
    let p = FillerParams {
        type_name: "msra".into(),
        alpha: 1.0,
        ..FillerParams::default()
    };
    let mut b = Blob::new(&[200, 50]);
    fill(
        &p,
        &mut b,
        ParamStreams {
            seed: 2,
            layer: "w",
        }
        .blob(0),
    );
    let var = b.data().iter().map(|&v| v as f64 * v as f64).sum::<f64>() / b.count() as f64;
    // std² = 2/((1 + α²)·fan_in) = 1/50.
    assert!((var - 0.02).abs() < 0.002, "msra alpha variance {var}");
}

// ---------------------------------------------------------------- LabelSpecificAdd

#[test]
fn label_specific_add_shifts_only_confident_targets_in_train() {
    let mut l = layer(
        r#"name: "m" type: "LabelSpecificAdd" bottom: "c" bottom: "l" top: "o" top: "b"
           label_specific_add_param { bias: -0.35 }"#,
    );
    let x = vec![0.9, 0.1, -0.2, 0.3, 0.2, 0.5];
    let mut bottoms = vec![Blob::from_data(&[2, 3], x.clone()), labels(&[0, 1])];
    let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 1);
    forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
    // Sample 0's target 0.9 > 0.35 gets the margin; sample 1's 0.2 does not.
    let want = [0.9 - 0.35, 0.1, -0.2, 0.3, 0.2, 0.5];
    close(tops[0].data(), &want, 1e-6, "LabelSpecificAdd forward");
    close(tops[1].data(), &[-0.35], 1e-7, "LabelSpecificAdd bias top");
    forward_in(
        l.as_mut(),
        &mut bottoms,
        &mut tops,
        &mut params,
        Phase::Test,
    );
    close(
        tops[0].data(),
        &f64s(&x),
        0.0,
        "LabelSpecificAdd TEST is the identity",
    );
    GradientChecker::new(1e-3, 1e-3)
        .check(
            l.as_mut(),
            &mut bottoms,
            &mut tops[..1],
            &mut params,
            &[true, false],
        )
        .unwrap();
}

#[test]
fn label_specific_add_anneals_its_bias() {
    let mut l = layer(
        r#"name: "m" type: "LabelSpecificAdd" bottom: "c" bottom: "l" top: "o" top: "b"
           label_specific_add_param { bias_base: -0.1 bias_gamma: 0.5 bias_power: 2
           bias_min: -1 bias_max: 0.5 iteration: 1 }"#,
    );
    let mut bottoms = vec![Blob::from_data(&[1, 2], vec![0.5, 0.5]), labels(&[1])];
    let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 1);
    for t in 1..4 {
        forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
        let b = (-0.1 + (1.0 + 0.5 * t as f64).powi(2) - 1.0).clamp(-1.0, 0.5);
        close(tops[1].data(), &[b], 1e-6, "annealed bias");
    }
}

// ---------------------------------------------------------------- CosinAddm

#[test]
fn cosin_add_m_is_cos_theta_plus_m_and_its_gradient() {
    let m = 0.5f64;
    let mut l = layer(r#"name: "a" type: "CosinAddm" cosin_add_m_param { m: 0.5 }"#);
    // Targets: 0.8 and −0.3 (θ + m < π), −0.95 (θ + m > π: the linear branch).
    let x = vec![0.8, 0.2, -0.1, 0.4, -0.3, 0.6, -0.95, 0.1, 0.3];
    let mut bottoms = vec![Blob::from_data(&[3, 3], x.clone()), labels(&[0, 1, 0])];
    let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 1);
    forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
    let mut want = f64s(&x);
    for (i, y) in [(0usize, 0usize), (1, 1), (2, 0)] {
        let c = x[i * 3 + y] as f64;
        let theta = c.acos();
        want[i * 3 + y] = if theta + m <= std::f64::consts::PI {
            (theta + m).cos()
        } else {
            c - m * m.sin()
        };
    }
    close(tops[0].data(), &want, 1e-6, "CosinAddm forward");
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

// ---------------------------------------------------------------- FocalLoss

#[test]
fn focal_loss_matches_the_paper_formula_and_its_gradient() {
    for (ty, sign) in [("ORIGIN", -1.0f64), ("ONEADDP", 1.0)] {
        let mut l = layer(&format!(
            r#"name: "f" type: "FocalLoss" focal_loss_param {{ type: {ty} gamma: 2 alpha: 0.25 }}"#
        ));
        let mut bottoms = vec![uniform_blob(&[4, 5], -2.0, 2.0, 7), labels(&[0, 3, 4, 1])];
        let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 1);
        forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
        let x = f64s(bottoms[0].data());
        let mut loss = 0.0;
        for (i, &y) in [0usize, 3, 4, 1].iter().enumerate() {
            let r = &x[i * 5..i * 5 + 5];
            let z: f64 = r.iter().map(|v| v.exp()).sum();
            let p = r[y].exp() / z;
            loss += -0.25 * (1.0 + sign * p).powi(2) * p.ln();
        }
        close(tops[0].data(), &[loss / 4.0], 1e-6, ty);
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
}

// ---------------------------------------------------------------- InnerDistance

#[test]
fn inner_distance_l2_and_l1_match_float64_and_the_gradient() {
    for (kind, l1) in [("L2", false), ("L1", true)] {
        let mut l = layer(&format!(
            r#"name: "d" type: "InnerDistance" inner_distance_param {{ num_output: 3
               bias_term: false distance_type: "{kind}" weight_filler {{ type: "gaussian" }} }}"#
        ));
        let mut bottoms = vec![uniform_blob(&[4, 5], -1.0, 1.0, 21)];
        let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 22);
        forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
        let (x, w) = (f64s(bottoms[0].data()), f64s(params[0].data()));
        let want: Vec<f64> = (0..4)
            .flat_map(|i| (0..3).map(move |j| (i, j)))
            .map(|(i, j)| {
                (0..5)
                    .map(|k| {
                        let d = x[i * 5 + k] - w[j * 5 + k];
                        if l1 {
                            d.abs()
                        } else {
                            d * d
                        }
                    })
                    .sum()
            })
            .collect();
        close(tops[0].data(), &want, 1e-5, kind);
        GradientChecker::new(1e-3, 1e-2)
            .check(l.as_mut(), &mut bottoms, &mut tops, &mut params, &[true])
            .unwrap();
    }
}

#[test]
fn inner_distance_normalize_keeps_unit_centres() {
    let mut l = layer(
        r#"name: "d" type: "InnerDistance" inner_distance_param { num_output: 3 bias_term: false
           normalize: true weight_filler { type: "gaussian" std: 3 } }"#,
    );
    let mut bottoms = vec![uniform_blob(&[2, 4], -1.0, 1.0, 5)];
    let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 6);
    forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
    for r in params[0].data().chunks(4) {
        assert!((norm(&f64s(r)) - 1.0).abs() < 1e-6);
    }
    let (x, w) = (f64s(bottoms[0].data()), f64s(params[0].data()));
    let d01: f64 = (0..4).map(|k| (x[k] - w[4 + k]).powi(2)).sum();
    close(
        &tops[0].data()[1..2],
        &[d01],
        1e-5,
        "normalised InnerDistance",
    );
}

// ---------------------------------------------------------------- GeneralContrastiveLoss

#[test]
fn general_contrastive_loss_hinges_match_float64_and_the_gradient() {
    let mut l = layer(
        r#"name: "c" type: "GeneralContrastiveLoss" bottom: "d" bottom: "l" top: "loss" top: "dist"
           general_contrastive_loss_param { positive_margin: 0.2 negative_margin: 1.5
           positive_weight: 2 negative_weight: 0.5 }"#,
    );
    let d = vec![0.6, 1.0, 2.0, 0.9, 0.1, 1.7, 1.2, 0.4, 0.05];
    let y = [0usize, 1, 2];
    let mut bottoms = vec![Blob::from_data(&[3, 3], d.clone()), labels(&y)];
    let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 1);
    forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
    let (mut loss, mut pos, mut neg) = (0.0, 0.0, 0.0);
    for i in 0..3 {
        for j in 0..3 {
            let v = d[i * 3 + j] as f64;
            if j == y[i] {
                pos += (v - 0.2f64).max(0.0);
                loss += 2.0 * (v - 0.2f64).max(0.0);
            } else {
                neg += (1.5 - v).max(0.0);
                loss += 0.5 * (1.5 - v).max(0.0);
            }
        }
    }
    close(
        tops[0].data(),
        &[loss / 3.0],
        1e-6,
        "GeneralContrastiveLoss",
    );
    close(
        tops[1].data(),
        &[pos / 3.0, neg / 6.0],
        1e-6,
        "GeneralContrastiveLoss distances",
    );
    GradientChecker::new(1e-3, 1e-2)
        .check(
            l.as_mut(),
            &mut bottoms,
            &mut tops[..1],
            &mut params,
            &[true, false],
        )
        .unwrap();
}

// ---------------------------------------------------------------- BN

#[test]
fn bn_batch_and_running_statistics_match_float64_and_the_gradient() {
    let mut l = layer(
        r#"name: "bn" type: "BN" bn_param { slope_filler { type: "uniform" min: 0.5 max: 2 }
           bias_filler { type: "uniform" min: -1 max: 1 } momentum: 0.8 eps: 1e-5 }"#,
    );
    let mut bottoms = vec![uniform_blob(&[3, 2, 2, 2], -2.0, 3.0, 31)];
    let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 32);
    forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
    let x = f64s(bottoms[0].data());
    let (g, b) = (f64s(params[0].data()), f64s(params[1].data()));
    let mut want = vec![0.0; x.len()];
    let (mut means, mut invs) = (vec![], vec![]);
    for c in 0..2 {
        let idx: Vec<usize> = (0..3)
            .flat_map(|n| (0..4).map(move |s| (n * 2 + c) * 4 + s))
            .collect();
        let mean = idx.iter().map(|&i| x[i]).sum::<f64>() / 12.0;
        let var = idx.iter().map(|&i| (x[i] - mean).powi(2)).sum::<f64>() / 12.0;
        let inv = 1.0 / (var + 1e-5).sqrt();
        idx.iter()
            .for_each(|&i| want[i] = g[c] * (x[i] - mean) * inv + b[c]);
        means.push(0.2 * mean);
        invs.push(0.8 + 0.2 * inv);
    }
    close(tops[0].data(), &want, 1e-5, "BN forward");
    close(params[2].data(), &means, 1e-6, "BN running mean");
    close(params[3].data(), &invs, 1e-6, "BN running inverse std");
    // TEST uses the running statistics.
    forward_in(
        l.as_mut(),
        &mut bottoms,
        &mut tops,
        &mut params,
        Phase::Test,
    );
    let test: Vec<f64> = (0..x.len())
        .map(|i| {
            let c = (i / 4) % 2;
            g[c] * (x[i] - means[c]) * invs[c] + b[c]
        })
        .collect();
    close(tops[0].data(), &test, 1e-5, "BN TEST forward");
    let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 32);
    GradientChecker::new(1e-3, 1e-2)
        .check(l.as_mut(), &mut bottoms, &mut tops, &mut params, &[true])
        .unwrap();
}

// ---------------------------------------------------------------- LargeMarginInnerProduct

/// ψ(θ) = (−1)^k·cos(mθ) − 2k, k = ⌊mθ/π⌋, from the angle itself.
fn psi_from_angle(m: u32, c: f64) -> f64 {
    let theta = c.acos();
    let k = (m as f64 * theta / std::f64::consts::PI).floor();
    (-1f64).powi(k as i32) * (m as f64 * theta).cos() - 2.0 * k
}

#[test]
fn large_margin_inner_product_matches_float64_for_every_margin() {
    for (m, ty) in [
        (1u32, "SINGLE"),
        (2, "DOUBLE"),
        (3, "TRIPLE"),
        (4, "QUADRUPLE"),
    ] {
        let text = format!(
            r#"name: "lm" type: "LargeMarginInnerProduct" bottom: "x" bottom: "l" top: "y" top: "lambda"
               largemargin_inner_product_param {{ num_output: 4 type: {ty} base: 10 gamma: 0.5
               power: 1 lambda_min: 0.5 weight_filler {{ type: "gaussian" }} }}"#
        );
        let mut l = layer(&text);
        let y = [1usize, 3, 0];
        let mut bottoms = vec![uniform_blob(&[3, 6], -1.0, 1.0, 40 + m as u64), labels(&y)];
        let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 41);
        forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
        let lambda = (10.0 / (1.0 + 0.5 * 1.0f64)).max(0.5);
        close(tops[1].data(), &[lambda], 1e-6, "L-Softmax λ");
        let (x, w) = (f64s(bottoms[0].data()), f64s(params[0].data()));
        let mut want = vec![];
        for i in 0..3 {
            for j in 0..4 {
                let (xi, wj) = (&x[i * 6..i * 6 + 6], &w[j * 6..j * 6 + 6]);
                let xw = dot(xi, wj);
                want.push(if j == y[i] && m > 1 {
                    let (r, rho) = (norm(xi), norm(wj));
                    (lambda * xw + r * rho * psi_from_angle(m, xw / (r * rho))) / (1.0 + lambda)
                } else {
                    xw
                });
            }
        }
        close(tops[0].data(), &want, 1e-5, ty);
        // The gradient at the λ of the next TRAIN forward (the checker runs forward again).
        let mut l = layer(
            &text
                .replace("base: 10", "base: 0.5")
                .replace("gamma: 0.5", "gamma: 0"),
        );
        let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 41);
        GradientChecker::new(1e-3, 2e-2)
            .check(
                l.as_mut(),
                &mut bottoms,
                &mut tops[..1],
                &mut params,
                &[true, false],
            )
            .unwrap();
    }
}

// ---------------------------------------------------------------- Flip, Insanity, Axpy, DepthwiseConvolution

#[test]
fn flip_mirrors_width_and_height() {
    for (opts, fw, fh) in [
        ("", true, false),
        ("flip_width: false flip_height: true", false, true),
    ] {
        let mut l = layer(&format!(
            r#"name: "f" type: "Flip" flip_param {{ {opts} }}"#
        ));
        let mut bottoms = vec![uniform_blob(&[2, 3, 4, 5], -1.0, 1.0, 50)];
        let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 1);
        forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
        let x = f64s(bottoms[0].data());
        let mut want = vec![0.0; x.len()];
        for p in 0..6 {
            for h in 0..4 {
                for w in 0..5 {
                    let (sh, sw) = (if fh { 3 - h } else { h }, if fw { 4 - w } else { w });
                    want[p * 20 + h * 5 + w] = x[p * 20 + sh * 5 + sw];
                }
            }
        }
        close(tops[0].data(), &want, 0.0, "Flip forward");
        GradientChecker::new(1e-2, 1e-3)
            .check(l.as_mut(), &mut bottoms, &mut tops, &mut params, &[true])
            .unwrap();
    }
}

#[test]
fn insanity_divides_negatives_by_a_random_or_mean_slope() {
    let mut l = layer(r#"name: "r" type: "Insanity" insanity_param { lb: 3 ub: 8 }"#);
    let mut bottoms = vec![uniform_blob(&[4, 6], -1.0, 1.0, 60)];
    let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 1);
    forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
    for (&y, &x) in tops[0].data().iter().zip(bottoms[0].data()) {
        if x >= 0.0 {
            assert_eq!(y, x);
        } else {
            let a = x / y;
            assert!((3.0..8.0001).contains(&a), "divisor {a}");
        }
    }
    forward_in(
        l.as_mut(),
        &mut bottoms,
        &mut tops,
        &mut params,
        Phase::Test,
    );
    let mean = 5.0 / (8f64.ln() - 3f64.ln());
    let want: Vec<f64> = f64s(bottoms[0].data())
        .iter()
        .map(|&x| if x > 0.0 { x } else { x / mean })
        .collect();
    close(tops[0].data(), &want, 1e-6, "Insanity TEST forward");
    // The checker replays the same random stream for every evaluation.
    GradientChecker::new(1e-3, 1e-2)
        .with_kink(0.0, 2e-3)
        .check(l.as_mut(), &mut bottoms, &mut tops, &mut params, &[true])
        .unwrap();
}

#[test]
fn axpy_is_a_times_x_plus_b_with_its_gradient() {
    let mut l = layer(r#"name: "a" type: "Axpy""#);
    let mut bottoms = vec![
        uniform_blob(&[2, 3, 1, 1], -1.0, 1.0, 70),
        uniform_blob(&[2, 3, 2, 2], -1.0, 1.0, 71),
        uniform_blob(&[2, 3, 2, 2], -1.0, 1.0, 72),
    ];
    let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 1);
    forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
    let (a, x, b) = (
        f64s(bottoms[0].data()),
        f64s(bottoms[1].data()),
        f64s(bottoms[2].data()),
    );
    let want: Vec<f64> = (0..24).map(|i| a[i / 4] * x[i] + b[i]).collect();
    close(tops[0].data(), &want, 1e-6, "Axpy forward");
    GradientChecker::new(1e-2, 1e-2)
        .check(
            l.as_mut(),
            &mut bottoms,
            &mut tops,
            &mut params,
            &[true, true, true],
        )
        .unwrap();
}

#[test]
fn depthwise_convolution_convolves_each_channel_alone() {
    let mut l = layer(
        r#"name: "dw" type: "DepthwiseConvolution" convolution_param { num_output: 6 kernel_size: 3
           pad: 1 stride: 2 weight_filler { type: "gaussian" } bias_filler { type: "gaussian" } }"#,
    );
    let mut bottoms = vec![uniform_blob(&[2, 3, 5, 4], -1.0, 1.0, 80)];
    let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 81);
    assert_eq!(params[0].shape(), &[6, 1, 3, 3]);
    assert_eq!(tops[0].shape(), &[2, 6, 3, 2]);
    forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
    let (x, w, bias) = (
        f64s(bottoms[0].data()),
        f64s(params[0].data()),
        f64s(params[1].data()),
    );
    let mut want = vec![];
    for n in 0..2 {
        for o in 0..6 {
            let c = o / 2;
            for oh in 0..3 {
                for ow in 0..2 {
                    let mut s = bias[o];
                    for kh in 0..3 {
                        for kw in 0..3 {
                            let (ih, iw) = ((oh * 2 + kh) as i64 - 1, (ow * 2 + kw) as i64 - 1);
                            if (0..5).contains(&ih) && (0..4).contains(&iw) {
                                s += w[o * 9 + kh * 3 + kw]
                                    * x[((n * 3 + c) * 5 + ih as usize) * 4 + iw as usize];
                            }
                        }
                    }
                    want.push(s);
                }
            }
        }
    }
    close(tops[0].data(), &want, 1e-5, "DepthwiseConvolution forward");
    GradientChecker::new(1e-2, 1e-2)
        .check(l.as_mut(), &mut bottoms, &mut tops, &mut params, &[true])
        .unwrap();
}
