//! The margin-loss forks' layers added after the first port (NormL2, SoftTruncation,
//! ChannelScale, LabelSpecificRescale, AdaCosAddmScale, GlobalLSEMargin, softmax_param's
//! normalize_type): forward and backward against float64 computations written here from
//! the papers' and forks' formulas, and the shared gradient checker.

mod common;

use common::forks::{close, f64s, forward_in, grad_check, labels, seed_top_diff};
use netrun::blob::Blob;
use netrun::netdef::Phase;
use netrun::testing::{backward, forward, layer, setup, uniform_blob};

fn build_error(text: &str) -> String {
    let net = netrun::netdef::parse_net_str("t.net", &format!("layer {{ {text} }}")).unwrap();
    match netrun::layers::build(&net.layers[0], &Default::default()) {
        Ok(_) => panic!("expected an error for {text}"),
        Err(d) => d[0].message.clone(),
    }
}

// ---------------------------------------------------------------- NormL2

#[test]
fn norm_l2_matches_float64_and_the_gradient() {
    let mut l = layer(r#"name: "n" type: "NormL2" bottom: "x" top: "y""#);
    let mut bottoms = vec![uniform_blob(&[3, 2, 2, 2], -1.0, 1.0, 1)];
    let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 1);
    forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
    let x = f64s(bottoms[0].data());
    let r: Vec<f64> = x
        .chunks(8)
        .map(|v| (v.iter().map(|a| a * a).sum::<f64>() + 1e-7).sqrt())
        .collect();
    let want: Vec<f64> = x.iter().enumerate().map(|(k, v)| v / r[k / 8]).collect();
    close(tops[0].data(), &want, 1e-6, "NormL2 forward");
    // dx_k = Σ_l (δ_kl − x_k x_l / r²)/r · g_l, written as the Jacobian product.
    let g = seed_top_diff(&mut tops[0], 2);
    backward(l.as_mut(), &mut bottoms, &mut tops, &mut params, &[true]);
    let dx: Vec<f64> = (0..24)
        .map(|k| {
            let (i, ri) = (k / 8, r[k / 8]);
            (0..8)
                .map(|l| {
                    let kl = if k % 8 == l { 1.0 } else { 0.0 };
                    (kl - x[k] * x[i * 8 + l] / (ri * ri)) / ri * g[i * 8 + l]
                })
                .sum()
        })
        .collect();
    close(bottoms[0].diff(), &dx, 1e-5, "NormL2 backward");
    grad_check(
        l.as_mut(),
        &mut bottoms,
        &mut tops,
        &mut params,
        &[true],
        Phase::Train,
    );
}

// ---------------------------------------------------------------- SoftTruncation

#[test]
fn soft_truncation_matches_float64_and_the_gradient() {
    let mut l = layer(
        r#"name: "t" type: "SoftTruncation" bottom: "x" top: "y" soft_truncation_param { c: 0.5 }"#,
    );
    let mut bottoms = vec![uniform_blob(&[4, 3], 0.0, 3.0, 3)];
    let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 1);
    forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
    let x = f64s(bottoms[0].data());
    let want: Vec<f64> = x.iter().map(|v| 1.0 - (-v / 0.5).exp()).collect();
    close(tops[0].data(), &want, 1e-6, "SoftTruncation forward");
    let g = seed_top_diff(&mut tops[0], 4);
    backward(l.as_mut(), &mut bottoms, &mut tops, &mut params, &[true]);
    let dx: Vec<f64> = x
        .iter()
        .zip(&g)
        .map(|(v, g)| g * (-v / 0.5).exp() / 0.5)
        .collect();
    close(bottoms[0].diff(), &dx, 1e-5, "SoftTruncation backward");
    grad_check(
        l.as_mut(),
        &mut bottoms,
        &mut tops,
        &mut params,
        &[true],
        Phase::Train,
    );
    let err = build_error(
        r#"name: "t" type: "SoftTruncation" bottom: "x" top: "y" soft_truncation_param { c: 0 }"#,
    );
    assert!(err.contains("c = 0"), "{err}");
}

// ---------------------------------------------------------------- ChannelScale

#[test]
fn channel_scale_matches_a_loop_and_the_gradient() {
    let text = r#"name: "cs" type: "ChannelScale" bottom: "x" bottom: "a" top: "y""#;
    let mut l = layer(text);
    let mut bottoms = vec![
        uniform_blob(&[2, 3, 2, 2], -1.0, 1.0, 5),
        uniform_blob(&[2, 1, 2, 2], 0.5, 2.0, 6),
    ];
    let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 1);
    forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
    let (x, a) = (f64s(bottoms[0].data()), f64s(bottoms[1].data()));
    let mut want = vec![0.0; 24];
    for n in 0..2 {
        for c in 0..3 {
            for s in 0..4 {
                want[(n * 3 + c) * 4 + s] = a[n * 4 + s] * x[(n * 3 + c) * 4 + s];
            }
        }
    }
    close(tops[0].data(), &want, 1e-6, "ChannelScale forward");
    let g = seed_top_diff(&mut tops[0], 7);
    backward(
        l.as_mut(),
        &mut bottoms,
        &mut tops,
        &mut params,
        &[true, true],
    );
    let mut dx = vec![0.0; 24];
    let mut da = vec![0.0; 8];
    for n in 0..2 {
        for c in 0..3 {
            for s in 0..4 {
                let k = (n * 3 + c) * 4 + s;
                dx[k] = a[n * 4 + s] * g[k];
                da[n * 4 + s] += x[k] * g[k];
            }
        }
    }
    close(bottoms[0].diff(), &dx, 1e-5, "ChannelScale dx");
    close(bottoms[1].diff(), &da, 1e-5, "ChannelScale da");
    grad_check(
        l.as_mut(),
        &mut bottoms,
        &mut tops,
        &mut params,
        &[true, true],
        Phase::Train,
    );

    // The fork's switches: no feature scaling in backward, no scale gradient.
    let mut l = layer(
        r#"name: "cs" type: "ChannelScale" bottom: "x" bottom: "a" top: "y"
           channel_scale_param { do_backward_feature: false do_backward_scale: false }"#,
    );
    let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 1);
    forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
    let g = seed_top_diff(&mut tops[0], 8);
    bottoms[1].diff_mut().fill(9.0);
    backward(
        l.as_mut(),
        &mut bottoms,
        &mut tops,
        &mut params,
        &[true, true],
    );
    close(bottoms[0].diff(), &g, 1e-7, "ChannelScale dx = dy");
    close(bottoms[1].diff(), &[0.0; 8], 0.0, "ChannelScale da = 0");
    let err = build_error(&format!(
        "{text} channel_scale_param {{ global_scale: true }}"
    ));
    assert!(err.contains("global_scale"), "{err}");
}

// ---------------------------------------------------------------- LabelSpecificRescale

fn rescale_case(opts: &str, x: &[f32], y: &[usize], phase: Phase) -> (Vec<f32>, Vec<f32>, f32) {
    let mut l = layer(&format!(
        r#"name: "r" type: "LabelSpecificRescale" bottom: "x" bottom: "l" top: "y" top: "w"
           label_specific_rescale_param {{ {opts} }}"#
    ));
    let n = y.len();
    let c = x.len() / n;
    let mut bottoms = vec![Blob::from_data(&[n, c], x.to_vec()), labels(y)];
    let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 1);
    forward_in(l.as_mut(), &mut bottoms, &mut tops, &mut params, phase);
    tops[0].diff_mut().fill(1.0);
    backward(
        l.as_mut(),
        &mut bottoms,
        &mut tops,
        &mut params,
        &[true, false],
    );
    (
        tops[0].data().to_vec(),
        bottoms[0].diff().to_vec(),
        tops[1].data()[0],
    )
}

#[test]
fn label_specific_rescale_matches_float64_for_each_option() {
    let x = [0.5f32, -0.2, 0.9, -0.4, 0.3, 0.1];
    let y = [0usize, 0];
    let xd = f64s(&x);
    // Plain: target × w, others × v; dx = w or v.
    let (out, dx, w) = rescale_case(
        "positive_weight: 0.5 negative_weight: 2",
        &x,
        &y,
        Phase::Train,
    );
    assert_eq!(w, 0.5);
    let scale = [0.5, 2.0, 2.0, 0.5, 2.0, 2.0];
    let want: Vec<f64> = xd.iter().zip(scale).map(|(v, s)| v * s).collect();
    close(&out, &want, 1e-6, "rescale forward");
    close(&dx, &scale, 1e-6, "rescale backward");
    // for_ip: only positive targets; bias_fix adds 1 − w.
    let (out, dx, _) = rescale_case(
        "positive_weight: 0.5 for_ip: true bias_fix: true",
        &x,
        &y,
        Phase::Train,
    );
    let want = [0.5 * 0.5 + 0.5, -0.2, 0.9, -0.4, 0.3, 0.1];
    close(&out, &want, 1e-6, "for_ip + bias_fix forward");
    close(
        &dx,
        &[0.5, 1.0, 1.0, 1.0, 1.0, 1.0],
        1e-6,
        "for_ip backward",
    );
    // power_on_positive: sign(x)|x|^w, slope w|x|^(w−1).
    let (out, dx, _) = rescale_case(
        "positive_weight: 2 power_on_positive: true",
        &x,
        &y,
        Phase::Train,
    );
    let mut want = xd.clone();
    let mut slope = vec![1.0; 6];
    for (k, v) in [(0usize, 0.5f64), (3, -0.4)] {
        want[k] = v.signum() * v.abs().powf(2.0);
        slope[k] = 2.0 * v.abs();
    }
    close(&out, &want, 1e-6, "power forward");
    close(&dx, &slope, 1e-6, "power backward");
    // TEST leaves the scores alone unless rescale_test.
    let (out, dx, _) = rescale_case("positive_weight: 0.5", &x, &y, Phase::Test);
    close(&out, &xd, 0.0, "TEST pass-through");
    close(&dx, &[1.0; 6], 0.0, "TEST pass-through backward");
    let (out, _, _) = rescale_case(
        "positive_weight: 0.5 rescale_test: true",
        &x,
        &y,
        Phase::Test,
    );
    assert!((out[0] - 0.25).abs() < 1e-7);
    // Annealing: t advances before use; w = base·(1 + γ·t)^(−power), clamped.
    let (_, _, w) = rescale_case(
        "positive_weight_base: 2 gamma: 0.5 power: 2 iteration: 3 positive_weight_min: 0.1",
        &x,
        &y,
        Phase::Train,
    );
    let want_w = (2.0 * (1.0f64 + 0.5 * 4.0).powf(-2.0)).max(0.1);
    assert!(
        (w as f64 - want_w).abs() < 1e-7,
        "annealed w {w} vs {want_w}"
    );
    let (_, _, w) = rescale_case(
        "positive_weight_base: 2 gamma: 0.5 power: 2 positive_weight_max: 0.5",
        &x,
        &y,
        Phase::Train,
    );
    assert!((w - 0.5).abs() < 1e-7, "clamped w {w}");
}

#[test]
fn label_specific_rescale_passes_the_gradient_checker() {
    for opts in [
        "positive_weight: 0.7 negative_weight: 1.5",
        "positive_weight: 1.5 power_on_positive: true",
    ] {
        let mut l = layer(&format!(
            r#"name: "r" type: "LabelSpecificRescale" bottom: "x" bottom: "l" top: "y"
               label_specific_rescale_param {{ {opts} }}"#
        ));
        let mut bottoms = vec![uniform_blob(&[3, 4], 0.2, 1.0, 9), labels(&[1, 3, 0])];
        let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 1);
        grad_check(
            l.as_mut(),
            &mut bottoms,
            &mut tops,
            &mut params,
            &[true, false],
            Phase::Train,
        );
    }
}

// ---------------------------------------------------------------- AdaCosAddmScale

#[test]
fn adacos_scale_follows_the_forks_formula_over_two_steps() {
    let mut l = layer(
        r#"name: "a" type: "AdaCosAddmScale" bottom: "c" bottom: "l" top: "y"
           adacos_add_m_scale_param { m: 0.3 num_classes: 5 }"#,
    );
    let mut bottoms = vec![uniform_blob(&[3, 5], -0.6, 0.95, 12), labels(&[4, 0, 2])];
    let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 1);
    let y = [4usize, 0, 2];
    let mut s = 2f64.sqrt() * 4f64.ln();
    for step in 0..2 {
        if step == 1 {
            bottoms[0] = uniform_blob(&[3, 5], -0.9, 0.99, 13);
        }
        forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
        let x = f64s(bottoms[0].data());
        let mut b = 0.0;
        for i in 0..3 {
            for j in 0..5 {
                b += if j == y[i] {
                    1.0
                } else {
                    (s * x[i * 5 + j]).exp()
                };
            }
        }
        let theta =
            (x.iter().map(|v| v.acos()).sum::<f64>() / 15.0).min(std::f64::consts::FRAC_PI_4);
        s = (b / 3.0).ln() / theta.cos();
        let m = 0.3f64;
        let mut want: Vec<f64> = x.iter().map(|v| s * v).collect();
        let mut slope = vec![1.0; 15];
        for i in 0..3 {
            let c = x[i * 5 + y[i]];
            let t = c.acos();
            // cos(θ + m) while θ + m < π, else c − m·sin m.
            let (u, k) = if t + m < std::f64::consts::PI {
                ((t + m).cos(), (t + m).sin() / t.sin())
            } else {
                (c - m * m.sin(), 1.0)
            };
            want[i * 5 + y[i]] = s * u;
            slope[i * 5 + y[i]] = k;
        }
        close(tops[0].data(), &want, 1e-5, "AdaCos forward");
        let g = seed_top_diff(&mut tops[0], 14 + step);
        backward(
            l.as_mut(),
            &mut bottoms,
            &mut tops,
            &mut params,
            &[true, false],
        );
        let dx: Vec<f64> = g.iter().zip(&slope).map(|(g, k)| s * g * k).collect();
        close(bottoms[0].diff(), &dx, 1e-5, "AdaCos backward");
        let state = l.state();
        assert!((state[0].1 - s).abs() < 1e-9 * s, "state {state:?} vs {s}");
    }
}

// ---------------------------------------------------------------- GlobalLSEMargin

/// Mean shift with a 0.1 window, as described for the fork (independent of the layer).
fn shift(v: &[f64], mut mu: f64, rounds: usize) -> f64 {
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    let mut last = mu;
    let mut r = 0;
    let mut restarted = false;
    while r < rounds {
        let w: Vec<f64> = v.iter().copied().filter(|x| (x - mu).abs() < 0.1).collect();
        if w.is_empty() {
            if restarted {
                return mean;
            }
            restarted = true;
            mu = mean;
            last = mean;
            continue;
        }
        r += 1;
        mu = w.iter().sum::<f64>() / w.len() as f64;
        if (last - mu).abs() < 0.001 {
            break;
        }
        last = mu;
    }
    mu
}

#[test]
fn global_lse_margin_matches_float64_and_the_gradient() {
    let mut l = layer(
        r#"name: "g" type: "GlobalLSEMargin" bottom: "c" bottom: "l" top: "y" top: "stats"
           scale_param { filler { value: 4 } min_value: 1 max_value: 10 }"#,
    );
    let y = [1usize, 3, 0, 2];
    let mut bottoms = vec![uniform_blob(&[4, 5], -0.5, 0.9, 21), labels(&y)];
    let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 1);
    assert_eq!(params[0].data()[0], 4.0);
    let mut m = 0.0f64;
    for step in 0..2 {
        if step == 1 {
            bottoms[0] = uniform_blob(&[4, 5], -0.5, 0.9, 22);
        }
        forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
        let x = f64s(bottoms[0].data());
        let s = 4.0f64;
        let (mut deltas, mut lses, mut maxes) = (vec![], vec![], vec![]);
        for i in 0..4 {
            let neg: Vec<f64> = (0..5)
                .filter(|&j| j != y[i])
                .map(|j| x[i * 5 + j])
                .collect();
            let a = neg.iter().fold(-1.0f64, |p, &v| p.max(v));
            let lse = (neg.iter().map(|v| (s * v).exp()).sum::<f64>()).ln() / s;
            deltas.push(x[i * 5 + y[i]] - lse);
            lses.push(lse);
            maxes.push(a);
        }
        m = if m == 0.0 {
            shift(&deltas, deltas.iter().sum::<f64>() / 4.0, 20)
        } else {
            0.9 * m + 0.1 * shift(&deltas, m, 1)
        };
        let want: Vec<f64> = (0..20)
            .map(|k| s * (x[k] - if k % 5 == y[k / 5] && m > 0.0 { m } else { 0.0 }))
            .collect();
        close(tops[0].data(), &want, 1e-5, "GlobalLSEMargin forward");
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let targets: Vec<f64> = (0..4).map(|i| x[i * 5 + y[i]]).collect();
        let stats = [s, mean(&targets), mean(&lses), mean(&maxes), m];
        close(tops[1].data(), &stats, 1e-5, "GlobalLSEMargin statistics");
        assert!((params[1].data()[0] as f64 - m).abs() < 1e-6);
    }
    // m is fixed in TEST, where the checker compares dc = s·dy and ds = Σ dy·out/s.
    let mut tops1 = tops[..1].to_vec();
    grad_check(
        l.as_mut(),
        &mut bottoms,
        &mut tops1,
        &mut params,
        &[true, false],
        Phase::Test,
    );
    // The bounds clamp s in place.
    params[0].data_mut()[0] = 50.0;
    forward_in(
        l.as_mut(),
        &mut bottoms,
        &mut tops,
        &mut params,
        Phase::Test,
    );
    assert_eq!(params[0].data()[0], 10.0);
}

#[test]
fn global_lse_margin_with_norms_scales_each_sample() {
    let mut l =
        layer(r#"name: "g" type: "GlobalLSEMargin" bottom: "c" bottom: "l" bottom: "n" top: "y""#);
    let mut bottoms = vec![
        uniform_blob(&[3, 4], -0.5, 0.9, 23),
        labels(&[0, 3, 1]),
        uniform_blob(&[3], 5.0, 20.0, 24),
    ];
    let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 1);
    forward_in(
        l.as_mut(),
        &mut bottoms,
        &mut tops,
        &mut params,
        Phase::Train,
    );
    grad_check(
        l.as_mut(),
        &mut bottoms,
        &mut tops,
        &mut params,
        &[true, false, true],
        Phase::Test,
    );
    assert_eq!(l.default_param_spec(0).lr_mult, 0.0);
}

#[test]
fn softmax_normalize_type_other_than_softmax_is_refused() {
    layer(
        r#"name: "s" type: "SoftmaxWithLoss" bottom: "x" bottom: "l" top: "loss"
             softmax_param { normalize_type: "Softmax" }"#,
    );
    let err = build_error(
        r#"name: "s" type: "SoftmaxWithLoss" bottom: "x" bottom: "l" top: "loss"
           softmax_param { normalize_type: "L2" }"#,
    );
    assert!(err.contains("normalize_type"), "{err}");
}
