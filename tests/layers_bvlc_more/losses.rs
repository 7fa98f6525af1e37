//! HingeLoss, MultinomialLogisticLoss and InfogainLoss against float64 formulas written
//! here; InfogainLoss also reads H from a BlobProto that Python's protobuf wrote.

use super::common::python::run_script;
use netrun::blob::Blob;
use netrun::testing::{
    assert_close, backward, forward, layer, setup, uniform_blob, GradientChecker,
};

/// Loss value and the bottom-0 gradient for loss weight `g`.
fn run(spec: &str, bottoms: &mut [Blob], g: f32) -> (f32, Vec<f32>) {
    let mut l = layer(spec);
    let (mut tops, mut params) = setup(l.as_mut(), bottoms, 0);
    forward(l.as_mut(), bottoms, &mut tops, &mut params);
    tops[0].diff_mut()[0] = g;
    let mut down = vec![false; bottoms.len()];
    down[0] = true;
    backward(l.as_mut(), bottoms, &mut tops, &mut params, &down);
    let (loss, dx) = (tops[0].data()[0], bottoms[0].diff().to_vec());
    GradientChecker::new(1e-3, 2e-2)
        .check(l.as_mut(), bottoms, &mut tops, &mut params, &down)
        .unwrap_or_else(|e| panic!("{spec}: {e}"));
    (loss, dx)
}

#[test]
fn hinge_loss_l1_and_l2_match_float64() {
    let (n, d) = (4, 5);
    let labels = vec![0.0, 3.0, 4.0, 3.0];
    for norm in ["L1", "L2"] {
        let spec = format!(
            "name: \"h\" type: \"HingeLoss\" bottom: \"x\" bottom: \"l\" top: \"loss\" hinge_loss_param {{ norm: {norm} }}"
        );
        let x = uniform_blob(&[n, d, 1, 1], -2.0, 2.0, 41);
        // Keep the scores off the hinge's kink |1 + δx| = 0, where the slope jumps.
        let x = Blob::from_data(
            x.shape(),
            x.data()
                .iter()
                .map(|&v| {
                    if (v.abs() - 1.0).abs() < 0.05 {
                        v * 1.2
                    } else {
                        v
                    }
                })
                .collect(),
        );
        let mut bottoms = vec![x.clone(), Blob::from_data(&[n], labels.clone())];
        let (loss, dx) = run(&spec, &mut bottoms, 2.0);
        let (mut want, mut grad) = (0.0f64, vec![0.0f64; n * d]);
        for i in 0..n {
            for j in 0..d {
                let delta = if j == labels[i] as usize { -1.0 } else { 1.0 };
                let m = (1.0 + delta * x.data()[i * d + j] as f64).max(0.0);
                if norm == "L1" {
                    want += m;
                    grad[i * d + j] = if m > 0.0 { 2.0 * delta / n as f64 } else { 0.0 };
                } else {
                    want += m * m;
                    grad[i * d + j] = 2.0 * 2.0 * delta * m / n as f64;
                }
            }
        }
        assert_close(&[loss], &[want / n as f64], 1e-6, 1e-6, &spec);
        assert_close(&dx, &grad, 1e-5, 1e-6, &spec);
    }
}

#[test]
fn multinomial_logistic_loss_matches_float64_and_clamps() {
    let spec =
        "name: \"m\" type: \"MultinomialLogisticLoss\" bottom: \"p\" bottom: \"l\" top: \"loss\"";
    let p = uniform_blob(&[3, 4], 0.05, 1.0, 42);
    let labels = vec![1.0, 0.0, 3.0];
    let mut bottoms = vec![p.clone(), Blob::from_data(&[3, 1, 1, 1], labels.clone())];
    let (loss, dx) = run(spec, &mut bottoms, 1.5);
    let want: f64 = -(0..3)
        .map(|i| (p.data()[i * 4 + labels[i] as usize] as f64).ln())
        .sum::<f64>()
        / 3.0;
    assert_close(&[loss], &[want], 1e-6, 1e-6, spec);
    let mut grad = vec![0.0; 12];
    for (i, &l) in labels.iter().enumerate() {
        let at = i * 4 + l as usize;
        grad[at] = -1.5 / (3.0 * p.data()[at] as f64);
    }
    assert_close(&dx, &grad, 1e-5, 1e-6, spec);
    // A zero probability is clamped at 1e-20: the loss is finite.
    let mut l = layer(spec);
    let mut bottoms = vec![
        Blob::from_data(&[1, 2], vec![0.0, 1.0]),
        Blob::from_data(&[1], vec![0.0]),
    ];
    let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 0);
    forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
    assert!((tops[0].data()[0] as f64 - -(1e-20f32.ln() as f64)).abs() < 1e-3);
}

/// −Σ H[l,k]·ln softmax(x)_k over counted positions, and the gradient, for an outer × C × inner layout.
fn infogain(
    x: &[f32],
    labels: &[f32],
    h: &[f32],
    c: usize,
    inner: usize,
    ignore: Option<f32>,
) -> (f64, Vec<f64>, usize) {
    let mut loss = 0.0;
    let mut grad = vec![0.0; x.len()];
    let mut valid = 0;
    for (pos, &lv) in labels.iter().enumerate() {
        let (o, i) = (pos / inner, pos % inner);
        if Some(lv) == ignore {
            continue;
        }
        let l = lv as usize;
        let at = |k: usize| (o * c + k) * inner + i;
        let m = (0..c)
            .map(|k| x[at(k)] as f64)
            .fold(f64::NEG_INFINITY, f64::max);
        let z: f64 = (0..c).map(|k| (x[at(k)] as f64 - m).exp()).sum();
        let row: f64 = (0..c).map(|k| h[l * c + k] as f64).sum();
        for k in 0..c {
            let p = (x[at(k)] as f64 - m).exp() / z;
            loss -= h[l * c + k] as f64 * p.ln();
            grad[at(k)] = p * row - h[l * c + k] as f64;
        }
        valid += 1;
    }
    (loss, grad, valid)
}

#[test]
fn infogain_loss_with_h_as_a_bottom_matches_float64() {
    let (n, c, inner) = (3, 4, 2);
    let x = uniform_blob(&[n, c, inner], -2.0, 2.0, 43);
    let h = uniform_blob(&[c, c], 0.0, 1.0, 44);
    let labels = vec![0.0, 3.0, 2.0, 7.0, 1.0, 1.0];
    for (param, ignore) in [
        ("loss_param { ignore_label: 7 }", Some(7.0)),
        (
            "loss_param { ignore_label: 7 normalization: BATCH_SIZE }",
            Some(7.0),
        ),
    ] {
        let spec = format!(
            "name: \"i\" type: \"InfogainLoss\" bottom: \"x\" bottom: \"l\" bottom: \"H\" top: \"loss\" {param}"
        );
        let mut bottoms = vec![
            x.clone(),
            Blob::from_data(&[n, inner], labels.clone()),
            h.clone(),
        ];
        let (loss, dx) = run(&spec, &mut bottoms, 1.0);
        let (sum, grad, valid) = infogain(x.data(), &labels, h.data(), c, inner, ignore);
        let norm = if param.contains("BATCH_SIZE") {
            n
        } else {
            valid
        } as f64;
        assert_close(&[loss], &[sum / norm], 1e-5, 1e-6, &spec);
        let grad: Vec<f64> = grad.iter().map(|g| g / norm).collect();
        assert_close(&dx, &grad, 1e-4, 1e-6, &spec);
    }
}

#[test]
fn infogain_loss_reads_h_from_a_blobproto_written_by_python_protobuf() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("H.binaryproto");
    let out = run_script(
        "bvlc_files.py",
        &[
            std::path::Path::new("infogain"),
            &file,
            std::path::Path::new("3"),
        ],
    );
    let h: Vec<f32> = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(h.len(), 9);
    let spec = format!(
        "name: \"i\" type: \"InfogainLoss\" bottom: \"x\" bottom: \"l\" top: \"loss\" \
         infogain_loss_param {{ source: \"{}\" }}",
        file.display()
    );
    let x = uniform_blob(&[4, 3], -1.0, 1.0, 45);
    let labels = vec![2.0, 0.0, 1.0, 2.0];
    let mut bottoms = vec![x.clone(), Blob::from_data(&[4], labels.clone())];
    let (loss, dx) = run(&spec, &mut bottoms, 1.0);
    let (sum, grad, valid) = infogain(x.data(), &labels, &h, 3, 1, None);
    assert_close(&[loss], &[sum / valid as f64], 1e-5, 1e-6, &spec);
    assert_close(
        &dx,
        &grad.iter().map(|g| g / 4.0).collect::<Vec<_>>(),
        1e-4,
        1e-6,
        &spec,
    );
    // The optional second top holds the softmax.
    let mut l = layer(&spec.replace("top: \"loss\"", "top: \"loss\" top: \"prob\""));
    let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 0);
    forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
    let prob: Vec<f64> = x
        .data()
        .chunks(3)
        .flat_map(|r| {
            let z: f64 = r.iter().map(|&v| (v as f64).exp()).sum();
            r.iter()
                .map(move |&v| (v as f64).exp() / z)
                .collect::<Vec<_>>()
        })
        .collect();
    assert_close(tops[1].data(), &prob, 1e-5, 1e-7, "prob top");

    // A matrix of the wrong size, a missing file and a file that is not a BlobProto.
    let e = super::common::build_error(&format!(
        "layer {{ name: \"in\" type: \"Input\" top: \"x\" top: \"l\" input_param {{ shape {{ dim: 4 dim: 5 }} shape {{ dim: 4 }} }} }}\n\
         layer {{ {} }}",
        spec
    ));
    assert!(
        e.contains("H has 9 values but 5 classes need 5x5 = 25"),
        "{e}"
    );
    let e = super::common::build_error(
        "layer { name: \"in\" type: \"Input\" top: \"x\" top: \"l\" input_param { shape { dim: 4 dim: 5 } shape { dim: 4 } } }\n\
         layer { name: \"i\" type: \"InfogainLoss\" bottom: \"x\" bottom: \"l\" top: \"loss\" infogain_loss_param { source: \"/nonexistent/H.binaryproto\" } }",
    );
    assert!(
        e.contains("cannot open infogain matrix `/nonexistent/H.binaryproto`"),
        "{e}"
    );
    std::fs::write(&file, b"\x2a\xff\xff\xff\xff\x0f").unwrap();
    let e = super::common::build_error(&format!(
        "layer {{ name: \"in\" type: \"Input\" top: \"x\" top: \"l\" input_param {{ shape {{ dim: 4 dim: 3 }} shape {{ dim: 4 }} }} }}\n\
         layer {{ name: \"i\" type: \"InfogainLoss\" bottom: \"x\" bottom: \"l\" top: \"loss\" infogain_loss_param {{ source: \"{}\" }} }}",
        file.display()
    ));
    assert!(e.contains("is not a valid BlobProto"), "{e}");
    let e = super::common::build_error(
        "layer { name: \"in\" type: \"Input\" top: \"x\" top: \"l\" input_param { shape { dim: 4 dim: 5 } shape { dim: 4 } } }\n\
         layer { name: \"i\" type: \"InfogainLoss\" bottom: \"x\" bottom: \"l\" top: \"loss\" }",
    );
    assert!(e.contains("needs the infogain matrix H"), "{e}");
}
