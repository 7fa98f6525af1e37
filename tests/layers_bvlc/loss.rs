//! SigmoidCrossEntropyLoss against the float64 cross-entropy written here from its definition.

use netrun::blob::Blob;
use netrun::testing::{backward, forward, layer, setup, uniform_blob, GradientChecker};

/// −[t·ln σ(x) + (1 − t)·ln(1 − σ(x))] summed over kept positions, and their number.
fn cross_entropy(x: &[f32], t: &[f32], ignore: Option<f32>) -> (f64, usize) {
    let mut sum = 0.0;
    let mut n = 0;
    for (&x, &t) in x.iter().zip(t) {
        if ignore == Some(t) {
            continue;
        }
        let p = 1.0 / (1.0 + (-(x as f64)).exp());
        sum -= t as f64 * p.ln() + (1.0 - t as f64) * (1.0 - p).ln();
        n += 1;
    }
    (sum, n)
}

#[test]
fn sigmoid_cross_entropy_matches_float64_in_every_normalization() {
    let shape = [3, 2, 2];
    let x = uniform_blob(&shape, -4.0, 4.0, 31);
    let mut t = uniform_blob(&shape, 0.0, 1.0, 32);
    // Some hard 0/1 targets and two ignored positions (label 7).
    for (i, v) in t.data_mut().iter_mut().enumerate() {
        match i % 5 {
            0 => *v = 1.0,
            1 => *v = 0.0,
            _ => {}
        }
    }
    t.data_mut()[3] = 7.0;
    t.data_mut()[10] = 7.0;
    for (param, ignore) in [
        ("", None),
        (
            "loss_param { normalization: FULL ignore_label: 7 }",
            Some(7.0),
        ),
        (
            "loss_param { normalization: VALID ignore_label: 7 }",
            Some(7.0),
        ),
        ("loss_param { normalize: true }", None),
        ("loss_param { normalization: NONE }", None),
    ] {
        let spec = format!(
            "name: \"l\" type: \"SigmoidCrossEntropyLoss\" bottom: \"x\" bottom: \"t\" top: \"loss\" {param}"
        );
        let mut l = layer(&spec);
        // Targets outside [0, 1] (the ignored 7s) must not reach the loss when not ignored.
        let targets = if ignore.is_none() {
            Blob::from_data(
                &shape,
                t.data()
                    .iter()
                    .map(|&v| if v > 1.0 { 0.5 } else { v })
                    .collect(),
            )
        } else {
            t.clone()
        };
        let mut bottoms = vec![x.clone(), targets];
        let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 0);
        forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
        let (sum, kept) = cross_entropy(bottoms[0].data(), bottoms[1].data(), ignore);
        let norm = match param {
            p if p.contains("FULL") => 12.0,
            p if p.contains("VALID") || p.contains("normalize: true") => kept as f64,
            p if p.contains("NONE") => 1.0,
            _ => 3.0, // BATCH_SIZE, the default
        };
        let got = tops[0].data()[0] as f64;
        assert!(
            (got - sum / norm).abs() < 1e-5 * (sum / norm).abs(),
            "{spec}: {got} vs {}",
            sum / norm
        );
        // Loss weight 2: dx = 2·(σ(x) − t)/D, 0 where ignored.
        tops[0].diff_mut()[0] = 2.0;
        backward(
            l.as_mut(),
            &mut bottoms,
            &mut tops,
            &mut params,
            &[true, false],
        );
        for (i, (&xv, &tv)) in bottoms[0].data().iter().zip(bottoms[1].data()).enumerate() {
            let want = if ignore == Some(tv) {
                0.0
            } else {
                2.0 * (1.0 / (1.0 + (-(xv as f64)).exp()) - tv as f64) / norm
            };
            let d = bottoms[0].diff()[i] as f64;
            assert!((d - want).abs() < 1e-6, "{spec}: dx[{i}] {d} vs {want}");
        }
        GradientChecker::default()
            .check(
                l.as_mut(),
                &mut bottoms,
                &mut tops,
                &mut params,
                &[true, false],
            )
            .unwrap_or_else(|e| panic!("{spec}: {e}"));
    }
}

#[test]
fn sigmoid_cross_entropy_is_stable_for_large_scores() {
    let mut l = layer(
        "name: \"l\" type: \"SigmoidCrossEntropyLoss\" bottom: \"x\" bottom: \"t\" top: \"loss\"",
    );
    let mut bottoms = vec![
        Blob::from_data(&[1, 4], vec![-100.0, 100.0, -100.0, 100.0]),
        Blob::from_data(&[1, 4], vec![0.0, 1.0, 1.0, 0.0]),
    ];
    let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 0);
    forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
    // Two confident right answers (≈ 0) and two confident wrong ones (100 each).
    assert!(
        (tops[0].data()[0] - 200.0).abs() < 1e-3,
        "{}",
        tops[0].data()[0]
    );
}
