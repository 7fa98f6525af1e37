//! Filter: the layer alone, and in nets whose batch size after it changes every forward.

use netrun::blob::Blob;
use netrun::net::Net;
use netrun::netdef::Phase;
use netrun::testing::{assert_close, forward, layer, setup, uniform_blob, GradientChecker};

#[test]
fn filter_keeps_the_selected_samples_and_scatters_gradients_back() {
    let spec = "name: \"f\" type: \"Filter\" bottom: \"x\" bottom: \"l\" bottom: \"s\" top: \"y\" top: \"m\"";
    let mut l = layer(spec);
    let sel = [1.0, 0.0, 2.5, 0.0, -1.0];
    let mut bottoms = vec![
        uniform_blob(&[5, 2, 3], -1.0, 1.0, 3),
        uniform_blob(&[5], 0.0, 9.0, 4),
        Blob::from_data(&[5, 1], sel.to_vec()),
    ];
    let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 0);
    // Before any data: every sample kept.
    assert_eq!(tops[0].shape(), &[5, 2, 3]);
    assert_eq!(tops[1].shape(), &[5]);
    forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
    assert_eq!(tops[0].shape(), &[3, 2, 3]);
    assert_eq!(tops[1].shape(), &[3]);
    // Naive: walk the selector, copy each kept sample.
    let (mut want_x, mut want_l) = (vec![], vec![]);
    for (n, &s) in sel.iter().enumerate() {
        if s != 0.0 {
            want_x.extend(
                bottoms[0].data()[n * 6..n * 6 + 6]
                    .iter()
                    .map(|&v| v as f64),
            );
            want_l.push(bottoms[1].data()[n] as f64);
        }
    }
    assert_close(tops[0].data(), &want_x, 0.0, 0.0, "filtered x");
    assert_close(tops[1].data(), &want_l, 0.0, 0.0, "filtered l");

    let n = GradientChecker::default()
        .check(
            l.as_mut(),
            &mut bottoms,
            &mut tops,
            &mut params,
            &[true, true, false],
        )
        .unwrap();
    assert_eq!(n, 30 + 5, "every element of x and l compared");

    // The diff of a dropped sample is zero, of a kept one the top's diff.
    tops[0]
        .diff_mut()
        .iter_mut()
        .enumerate()
        .for_each(|(i, d)| *d = i as f32 + 1.0);
    netrun::testing::backward(
        l.as_mut(),
        &mut bottoms,
        &mut tops,
        &mut params,
        &[true, false, false],
    );
    let dx = bottoms[0].diff();
    assert!(dx[6..12].iter().chain(&dx[18..24]).all(|&v| v == 0.0));
    assert_eq!(&dx[..6], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    assert_eq!(&dx[12..18], &[7.0, 8.0, 9.0, 10.0, 11.0, 12.0]);
    assert_eq!(&dx[24..30], &[13.0, 14.0, 15.0, 16.0, 17.0, 18.0]);

    // Nothing selected: empty tops, zero diffs.
    bottoms[2].data_mut().fill(0.0);
    forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
    assert_eq!(tops[0].shape(), &[0, 2, 3]);
    assert_eq!(tops[1].count(), 0);
    bottoms[0].diff_mut().fill(7.0);
    netrun::testing::backward(
        l.as_mut(),
        &mut bottoms,
        &mut tops,
        &mut params,
        &[true, true, false],
    );
    assert!(bottoms[0].diff().iter().all(|&v| v == 0.0));
}

/// x (6×4) and labels through Filter, an in-place ReLU, InnerProduct and SoftmaxWithLoss
/// (xk also feeds a Silence layer, so a Split sits after the Filter).
const NET: &str = "force_backward: true\n\
    layer { name: \"in\" type: \"Input\" top: \"x\" top: \"label\" top: \"sel\"\n\
      input_param { shape { dim: 6 dim: 4 } shape { dim: 6 } shape { dim: 6 } } }\n\
    layer { name: \"keep\" type: \"Filter\" bottom: \"x\" bottom: \"label\" bottom: \"sel\"\n\
      top: \"xk\" top: \"lk\" }\n\
    layer { name: \"relu\" type: \"ReLU\" bottom: \"xk\" top: \"xk\" }\n\
    layer { name: \"also\" type: \"Silence\" bottom: \"xk\" }\n\
    layer { name: \"ip\" type: \"InnerProduct\" bottom: \"xk\" top: \"score\"\n\
      inner_product_param { num_output: 3 weight_filler { type: \"gaussian\" std: 0.5 }\n\
      bias_filler { type: \"uniform\" min: -0.5 max: 0.5 } } }\n\
    layer { name: \"loss\" type: \"SoftmaxWithLoss\" bottom: \"score\" bottom: \"lk\" top: \"loss\" }\n";

/// Softmax loss (mean over the m samples, 0 when none) of max(x, 0)·Wᵀ + b and its
/// gradients w.r.t. W, b and x, in float64.
fn naive(x: &[f32], labels: &[f32], w: &[f32], b: &[f32]) -> (f64, Vec<f64>, Vec<f64>, Vec<f64>) {
    let (k, c) = (4, 3);
    let m = labels.len();
    let (mut loss, mut dw, mut db, mut dx) =
        (0.0, vec![0.0; c * k], vec![0.0; c], vec![0.0; m * k]);
    let norm = m.max(1) as f64;
    let relu: Vec<f32> = x.iter().map(|&v| v.max(0.0)).collect();
    let x = &relu[..];
    for i in 0..m {
        let z: Vec<f64> = (0..c)
            .map(|j| {
                b[j] as f64
                    + (0..k)
                        .map(|q| w[j * k + q] as f64 * x[i * k + q] as f64)
                        .sum::<f64>()
            })
            .collect();
        let zmax = z.iter().cloned().fold(f64::MIN, f64::max);
        let e: Vec<f64> = z.iter().map(|v| (v - zmax).exp()).collect();
        let s: f64 = e.iter().sum();
        let y = labels[i] as usize;
        loss -= (e[y] / s).ln() / norm;
        for j in 0..c {
            let g = (e[j] / s - if j == y { 1.0 } else { 0.0 }) / norm;
            db[j] += g;
            for q in 0..k {
                dw[j * k + q] += g * x[i * k + q] as f64;
                if x[i * k + q] > 0.0 {
                    dx[i * k + q] += g * w[j * k + q] as f64;
                }
            }
        }
    }
    (loss, dw, db, dx)
}

#[test]
fn a_net_after_filter_takes_a_new_batch_size_every_forward() {
    let graph = super::common::build(NET, Phase::Train).unwrap();
    // Built for the whole batch.
    let xk = graph.blobs.iter().position(|b| b.name == "xk").unwrap();
    assert_eq!(graph.blob_shape(xk), &[6, 4]);
    let mut net = Net::new(graph, 5).unwrap();
    let x = uniform_blob(&[6, 4], -2.0, 2.0, 11);
    net.blob_mut("x")
        .unwrap()
        .data_mut()
        .copy_from_slice(x.data());
    net.blob_mut("label")
        .unwrap()
        .data_mut()
        .copy_from_slice(&[0.0, 2.0, 1.0, 1.0, 0.0, 2.0]);
    let selections: [[f32; 6]; 5] = [
        [1.0, 1.0, 0.0, 1.0, 0.0, 1.0],
        [0.0, 0.0, 0.0, 0.0, 0.0, 1.0],
        [0.0; 6],
        [1.0; 6],
        [0.0, 1.0, 1.0, 0.0, 0.0, 0.0],
    ];
    for sel in selections {
        net.blob_mut("sel")
            .unwrap()
            .data_mut()
            .copy_from_slice(&sel);
        net.clear_param_diffs();
        let loss = net.forward_backward().unwrap();
        let kept: Vec<usize> = (0..6).filter(|&n| sel[n] != 0.0).collect();
        let m = kept.len();
        assert_eq!(net.blob("xk").unwrap().shape(), &[m, 4], "{sel:?}");
        assert_eq!(net.blob("score").unwrap().shape(), &[m, 3], "{sel:?}");
        let xs: Vec<f32> = kept
            .iter()
            .flat_map(|&n| x.data()[n * 4..n * 4 + 4].to_vec())
            .collect();
        let label = net.blob("label").unwrap().data().to_vec();
        let ls: Vec<f32> = kept.iter().map(|&n| label[n]).collect();
        let (want, dw, db, dxk) = naive(&xs, &ls, net.params[0].data(), net.params[1].data());
        assert!(
            (loss - want).abs() < 1e-5,
            "{sel:?}: loss {loss}, expected {want}"
        );
        assert_close(net.params[0].diff(), &dw, 1e-4, 1e-6, "dW");
        assert_close(net.params[1].diff(), &db, 1e-4, 1e-6, "db");
        let mut dx = vec![0.0; 24];
        for (j, &n) in kept.iter().enumerate() {
            dx[n * 4..n * 4 + 4].copy_from_slice(&dxk[j * 4..j * 4 + 4]);
        }
        assert_close(net.blob("x").unwrap().diff(), &dx, 1e-4, 1e-6, "dx");
        if m == 0 {
            assert_eq!(loss, 0.0, "nothing selected: zero loss");
        }
    }
}

#[test]
fn a_layer_that_cannot_take_the_new_batch_size_is_named_with_its_position() {
    let text = "layer { name: \"in\" type: \"Input\" top: \"x\" top: \"sel\"\n\
      input_param { shape { dim: 4 dim: 3 } shape { dim: 4 } } }\n\
    layer { name: \"keep\" type: \"Filter\" bottom: \"x\" bottom: \"sel\" top: \"xk\" }\n\
    layer { name: \"fixed\" type: \"Reshape\" bottom: \"xk\" top: \"r\"\n\
      reshape_param { shape { dim: 4 dim: 3 dim: 1 } } }\n";
    let mut net = Net::new(super::common::build(text, Phase::Test).unwrap(), 1).unwrap();
    net.blob_mut("sel").unwrap().data_mut().fill(1.0);
    net.forward().unwrap();
    net.blob_mut("sel").unwrap().data_mut()[1] = 0.0;
    let e = net.forward().unwrap_err().to_string();
    assert!(e.contains("layer `fixed` (Reshape)"), "{e}");
    assert!(e.contains("test.net:4:"), "{e}");
    assert!(e.contains("from 4x3 to 3x3"), "{e}");
    assert!(e.contains("help:"), "{e}");
}

#[test]
fn filter_errors_name_the_problem() {
    let input = "layer { name: \"in\" type: \"Input\" top: \"x\" top: \"s\" top: \"s2\"\n\
      input_param { shape { dim: 4 dim: 3 } shape { dim: 4 } shape { dim: 4 dim: 2 } } }\n";
    let e = super::common::build_error(&format!(
        "{input}layer {{ name: \"f\" type: \"Filter\" bottom: \"x\" bottom: \"s\" top: \"a\" top: \"b\" }}"
    ));
    assert!(
        e.contains("2 bottoms (1 filtered and the selector, last) need 1 tops"),
        "{e}"
    );
    let e = super::common::build_error(&format!(
        "{input}layer {{ name: \"f\" type: \"Filter\" bottom: \"x\" bottom: \"s2\" top: \"a\" }}"
    ));
    assert!(
        e.contains("(`s2`)) has shape 4x2; it must be N values"),
        "{e}"
    );
    let e = super::common::build_error(&format!(
        "{input}layer {{ name: \"f\" type: \"Filter\" bottom: \"s2\" bottom: \"x\" top: \"a\" }}"
    ));
    assert!(e.contains("has shape 4x3"), "{e}");
    let e = super::common::build_error(&format!(
        "{input}layer {{ name: \"f\" type: \"Filter\" bottom: \"x\" bottom: \"s\" top: \"a\" \
         propagate_down: true propagate_down: true }}"
    ));
    assert!(e.contains("takes no gradient"), "{e}");
    let e = super::common::build_error(&format!(
        "{input}layer {{ name: \"f\" type: \"Filter\" bottom: \"x\" top: \"a\" }}"
    ));
    assert!(e.contains("Filter"), "{e}");
}
