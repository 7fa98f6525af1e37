//! NormFace's weight-as-bottom heads: the Parameter layer, InnerProduct and
//! InnerDistance reading their weights (and InnerProduct its bias) from bottoms, against
//! loops written here and the shared gradient checker.

mod common;

use common::forks::{close, f64s, grad_check, labels, seed_top_diff};
use netrun::blob::Blob;
use netrun::netdef::Phase;
use netrun::testing::{backward, forward, layer, setup, uniform_blob};

#[test]
fn parameter_exposes_its_blob_and_takes_the_top_diff() {
    let mut l = layer(
        r#"name: "w" type: "Parameter" top: "w" parameter_param { shape { dim: 3 dim: 4 }
           blob_filler { type: "gaussian_unitball" } }"#,
    );
    let mut bottoms: Vec<Blob> = vec![];
    let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 5);
    assert_eq!(tops[0].shape(), &[3, 4]);
    for r in params[0].data().chunks(4) {
        let n: f64 = r.iter().map(|&v| v as f64 * v as f64).sum();
        assert!((n - 1.0).abs() < 1e-6, "unit rows");
    }
    forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
    assert_eq!(tops[0].data(), params[0].data());
    let g = seed_top_diff(&mut tops[0], 6);
    params[0].diff_mut().fill(0.5);
    backward(l.as_mut(), &mut bottoms, &mut tops, &mut params, &[]);
    let want: Vec<f64> = g.iter().map(|v| v + 0.5).collect();
    close(params[0].diff(), &want, 1e-7, "Parameter diff accumulates");
    grad_check(
        l.as_mut(),
        &mut bottoms,
        &mut tops,
        &mut params,
        &[],
        Phase::Train,
    );
}

#[test]
fn inner_product_with_weight_and_bias_bottoms_matches_a_loop_and_the_gradient() {
    let mut l = layer(
        r#"name: "ip" type: "InnerProduct" bottom: "x" bottom: "w" bottom: "b" top: "y"
           inner_product_param { bias_term: true }"#,
    );
    let mut bottoms = vec![
        uniform_blob(&[3, 2, 2], -1.0, 1.0, 1),
        uniform_blob(&[5, 4], -1.0, 1.0, 2),
        uniform_blob(&[5], -1.0, 1.0, 3),
    ];
    let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 1);
    assert!(params.is_empty());
    forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
    let (x, w, b) = (
        f64s(bottoms[0].data()),
        f64s(bottoms[1].data()),
        f64s(bottoms[2].data()),
    );
    let want: Vec<f64> = (0..15)
        .map(|k| {
            (0..4)
                .map(|t| x[k / 5 * 4 + t] * w[k % 5 * 4 + t])
                .sum::<f64>()
                + b[k % 5]
        })
        .collect();
    close(tops[0].data(), &want, 1e-6, "weight-bottom InnerProduct");
    grad_check(
        l.as_mut(),
        &mut bottoms,
        &mut tops,
        &mut params,
        &[true, true, true],
        Phase::Train,
    );

    // Two bottoms with bias_term: the bias is a learned blob.
    let mut l = layer(
        r#"name: "ip" type: "InnerProduct" bottom: "x" bottom: "w" top: "y"
           inner_product_param { bias_filler { type: "uniform" min: -1 max: 1 } }"#,
    );
    let mut bottoms = bottoms[..2].to_vec();
    let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 4);
    assert_eq!(params[0].shape(), &[5]);
    grad_check(
        l.as_mut(),
        &mut bottoms,
        &mut tops,
        &mut params,
        &[true, true],
        Phase::Train,
    );
}

#[test]
fn inner_distance_with_a_weight_bottom_equals_the_stored_weight_form() {
    for ty in ["L2", "L1"] {
        let mut own = layer(&format!(
            r#"name: "d" type: "InnerDistance" bottom: "x" top: "y"
               inner_distance_param {{ num_output: 4 bias_term: false distance_type: "{ty}"
               weight_filler {{ type: "uniform" min: -1 max: 1 }} }}"#
        ));
        let mut bottoms = vec![uniform_blob(&[3, 5], -1.0, 1.0, 7)];
        let (mut tops, mut params) = setup(own.as_mut(), &bottoms, 8);
        forward(own.as_mut(), &mut bottoms, &mut tops, &mut params);
        let g = seed_top_diff(&mut tops[0], 9);
        params[0].diff_mut().fill(0.0);
        backward(own.as_mut(), &mut bottoms, &mut tops, &mut params, &[true]);
        let mut l = layer(&format!(
            r#"name: "d" type: "InnerDistance" bottom: "x" bottom: "w" top: "y"
               inner_distance_param {{ bias_term: false distance_type: "{ty}" }}"#
        ));
        let mut wb = vec![bottoms[0].clone(), params[0].clone()];
        let (mut wt, mut wp) = setup(l.as_mut(), &wb, 1);
        forward(l.as_mut(), &mut wb, &mut wt, &mut wp);
        close(wt[0].data(), &f64s(tops[0].data()), 1e-6, "distances");
        wt[0]
            .diff_mut()
            .copy_from_slice(&g.iter().map(|&v| v as f32).collect::<Vec<_>>());
        wb[1].diff_mut().fill(7.0);
        backward(l.as_mut(), &mut wb, &mut wt, &mut wp, &[true, true]);
        close(wb[0].diff(), &f64s(bottoms[0].diff()), 1e-5, "dx");
        close(
            wb[1].diff(),
            &f64s(params[0].diff()),
            1e-5,
            "dW set, not accumulated",
        );
        if ty == "L2" {
            grad_check(
                l.as_mut(),
                &mut wb,
                &mut wt,
                &mut wp,
                &[true, true],
                Phase::Train,
            );
        }
    }
}

#[test]
fn inner_distance_weight_bottom_with_labels_updates_own_rows_only() {
    let mut l = layer(
        r#"name: "d" type: "InnerDistance" bottom: "x" bottom: "w" bottom: "l" top: "y"
           inner_distance_param { update_center_only: true }"#,
    );
    let mut bottoms = vec![
        uniform_blob(&[2, 3], -1.0, 1.0, 11),
        uniform_blob(&[4, 3], -1.0, 1.0, 12),
        labels(&[2, 0]),
    ];
    let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 1);
    forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
    let g = seed_top_diff(&mut tops[0], 13);
    backward(
        l.as_mut(),
        &mut bottoms,
        &mut tops,
        &mut params,
        &[true, true, false],
    );
    let (x, w) = (f64s(bottoms[0].data()), f64s(bottoms[1].data()));
    let mut dw = vec![0.0; 12];
    for (i, &y) in [2usize, 0].iter().enumerate() {
        for t in 0..3 {
            dw[y * 3 + t] += 2.0 * g[i * 4 + y] * (w[y * 3 + t] - x[i * 3 + t]);
        }
    }
    close(bottoms[1].diff(), &dw, 1e-5, "own-row dW");
}

#[test]
fn weight_bottom_forms_refuse_normalize_and_transpose() {
    for text in [
        r#"type: "InnerProduct" bottom: "x" bottom: "w" top: "y" inner_product_param { normalize: true }"#,
        r#"type: "InnerProduct" bottom: "x" bottom: "w" top: "y" inner_product_param { transpose: true }"#,
        r#"type: "InnerDistance" bottom: "x" bottom: "w" top: "y" inner_distance_param { normalize: true }"#,
    ] {
        let net =
            netrun::netdef::parse_net_str("t.net", &format!("layer {{ name: \"l\" {text} }}"))
                .unwrap();
        let err = netrun::layers::build(&net.layers[0], &Default::default())
            .err()
            .unwrap();
        assert!(err[0].message.contains("bottom 1"), "{}", err[0].message);
    }
}
