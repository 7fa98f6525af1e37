//! Crop, ArgMax, MVN, Embed, Parameter and BatchReindex.

use super::layer_error;
use netrun::blob::Blob;
use netrun::testing::{
    assert_close, backward, forward, layer, setup, uniform_blob, GradientChecker,
};

/// The error of one forward of `l` (which must fail).
fn forward_error(
    l: &mut dyn netrun::layers::Layer,
    bottoms: &mut [Blob],
    tops: &mut [Blob],
    params: &mut [Blob],
) -> String {
    let mut rng = <netrun::layer_io::Rng as rand::SeedableRng>::seed_from_u64(1);
    let mut io = netrun::layer_io::LayerIo::new(
        bottoms.iter_mut().collect(),
        tops.iter_mut().collect(),
        params.iter_mut().collect(),
    );
    let mut ctx = netrun::layer_io::RunCtx {
        phase: netrun::netdef::Phase::Train,
        rng: &mut rng,
    };
    l.forward(&mut io, &mut ctx).unwrap_err()
}

/// Row-major strides of a shape.
fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for a in (0..shape.len().saturating_sub(1)).rev() {
        s[a] = s[a + 1] * shape[a + 1];
    }
    s
}

/// The multi-index of flat index `i` in `shape`.
fn unravel(mut i: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for a in (0..shape.len()).rev() {
        idx[a] = i % shape[a];
        i /= shape[a];
    }
    idx
}

#[test]
fn crop_takes_the_window_at_the_offsets_and_routes_gradients_back() {
    let xs = [2, 3, 6, 7];
    let like = [1, 2, 3, 4];
    for (axis, offsets, want_shape, offs) in [
        (
            "2",
            "offset: 1 offset: 2",
            vec![2, 3, 3, 4],
            vec![0, 0, 1, 2],
        ),
        ("1", "offset: 1", vec![2, 2, 3, 4], vec![0, 1, 1, 1]),
        ("-1", "", vec![2, 3, 6, 4], vec![0, 0, 0, 0]),
        (
            "0",
            "offset: 1 offset: 0 offset: 3 offset: 3",
            vec![1, 2, 3, 4],
            vec![1, 0, 3, 3],
        ),
    ] {
        let spec = format!(
            "name: \"c\" type: \"Crop\" bottom: \"x\" bottom: \"like\" top: \"y\" crop_param {{ axis: {axis} {offsets} }}"
        );
        let mut l = layer(&spec);
        let mut bottoms = vec![uniform_blob(&xs, -1.0, 1.0, 1), Blob::new(&like)];
        let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 0);
        assert_eq!(tops[0].shape(), &want_shape[..], "{spec}");
        forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
        let s = strides(&xs);
        let want: Vec<f64> = (0..tops[0].count())
            .map(|i| {
                let idx = unravel(i, &want_shape);
                let at: usize = (0..4).map(|a| (idx[a] + offs[a]) * s[a]).sum();
                bottoms[0].data()[at] as f64
            })
            .collect();
        assert_close(tops[0].data(), &want, 0.0, 0.0, &spec);
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
    let e = layer_error(
        "name: \"c\" type: \"Crop\" bottom: \"x\" bottom: \"x\" top: \"y\" crop_param { offset: 1 }",
    );
    assert!(
        e.contains("offset 1 + crop size 4 exceeds the extent 4"),
        "{e}"
    );
    let e = layer_error(
        "name: \"c\" type: \"Crop\" bottom: \"x\" bottom: \"x\" top: \"y\" crop_param { offset: 0 offset: 0 offset: 0 }",
    );
    assert!(e.contains("3 offsets but 2 axes are cropped"), "{e}");
}

#[test]
fn argmax_ranks_like_a_sort_with_and_without_axis() {
    // Ties: the higher index ranks first.
    let x = Blob::from_data(
        &[2, 5],
        vec![0.1, 0.9, 0.3, 0.9, -1.0, 2.0, 1.0, 0.0, 3.0, -2.0],
    );
    let mut l = layer("name: \"a\" type: \"ArgMax\" bottom: \"x\" top: \"y\" argmax_param { top_k: 3 out_max_val: true }");
    let mut bottoms = vec![x.clone()];
    let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 0);
    assert_eq!(tops[0].shape(), &[2, 2, 3]);
    forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
    assert_eq!(
        tops[0].data(),
        &[3.0, 1.0, 2.0, 0.9, 0.9, 0.3, 3.0, 0.0, 1.0, 3.0, 2.0, 1.0]
    );
    // Along axis 1 of a 2x4x3 blob: against a naive ranking per (n, w).
    let x = uniform_blob(&[2, 4, 3], -1.0, 1.0, 5);
    for (out_max_val, k) in [(false, 2), (true, 1)] {
        let spec = format!(
            "name: \"a\" type: \"ArgMax\" bottom: \"x\" top: \"y\" argmax_param {{ axis: 1 top_k: {k} out_max_val: {out_max_val} }}"
        );
        let mut l = layer(&spec);
        let mut bottoms = vec![x.clone()];
        let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 0);
        assert_eq!(tops[0].shape(), &[2, k, 3]);
        forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
        let mut want = vec![0.0; 2 * k * 3];
        for n in 0..2 {
            for w in 0..3 {
                let mut col: Vec<(f32, usize)> =
                    (0..4).map(|c| (x.data()[(n * 4 + c) * 3 + w], c)).collect();
                col.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap());
                for j in 0..k {
                    want[(n * k + j) * 3 + w] = if out_max_val {
                        col[j].0 as f64
                    } else {
                        col[j].1 as f64
                    };
                }
            }
        }
        assert_close(tops[0].data(), &want, 0.0, 0.0, &spec);
    }
    let e = layer_error(
        "name: \"a\" type: \"ArgMax\" bottom: \"x\" top: \"y\" argmax_param { top_k: 61 }",
    );
    assert!(e.contains("top_k 61 exceeds the 60 values"), "{e}");
}

#[test]
fn mvn_matches_float64_statistics_and_gradient() {
    let shape = [2, 3, 2, 3];
    for (param, from) in [
        ("", 2),
        ("mvn_param { across_channels: true }", 1),
        ("mvn_param { normalize_variance: false }", 2),
        (
            "mvn_param { across_channels: true normalize_variance: false eps: 0.01 }",
            1,
        ),
    ] {
        let spec = format!("name: \"m\" type: \"MVN\" bottom: \"x\" top: \"y\" {param}");
        let mut l = layer(&spec);
        let mut bottoms = vec![uniform_blob(&shape, -2.0, 3.0, 9)];
        let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 0);
        forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
        let d: usize = shape[from..].iter().product();
        let variance = !param.contains("normalize_variance: false");
        let mut want = Vec::new();
        for g in bottoms[0].data().chunks(d) {
            let mu = g.iter().map(|&v| v as f64).sum::<f64>() / d as f64;
            let var = g.iter().map(|&v| (v as f64 - mu).powi(2)).sum::<f64>() / d as f64;
            let s = if variance { var.sqrt() + 1e-9 } else { 1.0 };
            want.extend(g.iter().map(|&v| (v as f64 - mu) / s));
        }
        assert_close(tops[0].data(), &want, 1e-5, 1e-5, &spec);
        GradientChecker::new(1e-3, 2e-2)
            .check(l.as_mut(), &mut bottoms, &mut tops, &mut params, &[true])
            .unwrap_or_else(|e| panic!("{spec}: {e}"));
    }
}

#[test]
fn embed_looks_rows_up_and_accumulates_their_gradients() {
    let spec = "name: \"e\" type: \"Embed\" bottom: \"k\" top: \"y\" \
                embed_param { num_output: 3 input_dim: 5 weight_filler { type: \"gaussian\" } bias_filler { type: \"uniform\" } }";
    let mut l = layer(spec);
    let mut bottoms = vec![Blob::from_data(&[2, 2], vec![4.0, 0.0, 4.0, 2.0])];
    let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 3);
    assert_eq!(tops[0].shape(), &[2, 2, 3]);
    assert_eq!(params[0].shape(), &[5, 3]);
    forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
    let (w, b) = (params[0].data().to_vec(), params[1].data().to_vec());
    let want: Vec<f64> = [4, 0, 4, 2]
        .iter()
        .flat_map(|&k| {
            (0..3)
                .map(|j| (w[k * 3 + j] + b[j]) as f64)
                .collect::<Vec<_>>()
        })
        .collect();
    assert_close(tops[0].data(), &want, 0.0, 1e-7, "embed forward");
    GradientChecker::default()
        .check(l.as_mut(), &mut bottoms, &mut tops, &mut params, &[false])
        .unwrap();
    // Row 4 is used twice: its gradient is the sum.
    tops[0]
        .diff_mut()
        .copy_from_slice(&(0..12).map(|v| v as f32).collect::<Vec<_>>());
    params.iter_mut().for_each(Blob::zero_diff);
    backward(l.as_mut(), &mut bottoms, &mut tops, &mut params, &[false]);
    assert_eq!(&params[0].diff()[12..15], &[6.0, 8.0, 10.0]);
    assert_eq!(params[1].diff(), &[18.0, 22.0, 26.0]);
    // A bad index fails the forward with its position.
    bottoms[0].data_mut()[3] = 5.0;
    let e = forward_error(l.as_mut(), &mut bottoms, &mut tops, &mut params);
    assert!(e.contains("position 3 of the bottom holds 5"), "{e}");
    let e = layer_error(
        "name: \"e\" type: \"Embed\" bottom: \"x\" top: \"y\" embed_param { num_output: 3 }",
    );
    assert!(e.contains("needs `embed_param { input_dim: ... }`"), "{e}");
}

#[test]
fn parameter_exposes_its_blob_and_collects_the_gradient() {
    let mut l = layer(
        "name: \"p\" type: \"Parameter\" top: \"p\" parameter_param { shape { dim: 2 dim: 3 } }",
    );
    let mut bottoms: Vec<Blob> = vec![];
    let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 0);
    assert_eq!(tops[0].shape(), &[2, 3]);
    assert_eq!(params[0].shape(), &[2, 3]);
    assert!(
        params[0].data().iter().all(|&v| v == 0.0),
        "Caffe starts it at zero"
    );
    params[0] = uniform_blob(&[2, 3], -1.0, 1.0, 4);
    forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
    assert_eq!(tops[0].data(), params[0].data());
    GradientChecker::default()
        .check(l.as_mut(), &mut bottoms, &mut tops, &mut params, &[])
        .unwrap();
    // In a net, the top feeds another layer and the blob is learnable.
    let net = "layer { name: \"p\" type: \"Parameter\" top: \"p\" parameter_param { shape { dim: 1 dim: 4 } } }\n\
               layer { name: \"in\" type: \"Input\" top: \"x\" input_param { shape { dim: 1 dim: 4 } } }\n\
               layer { name: \"sum\" type: \"Eltwise\" bottom: \"x\" bottom: \"p\" top: \"y\" }\n\
               layer { name: \"loss\" type: \"EuclideanLoss\" bottom: \"y\" bottom: \"x\" top: \"loss\" }";
    let graph = super::common::build(net, netrun::netdef::Phase::Train).unwrap();
    let mut net = netrun::net::Net::new(graph, 1).unwrap();
    assert_eq!(net.learnables.len(), 1);
    net.params[0]
        .data_mut()
        .copy_from_slice(&[1.0, 2.0, 0.0, -1.0]);
    let loss = net.forward_backward().unwrap();
    assert!((loss - 3.0).abs() < 1e-6, "½·Σp²/1 = 3, got {loss}");
    assert_eq!(net.params[0].diff(), &[1.0, 2.0, 0.0, -1.0]);
}

#[test]
fn batch_reindex_gathers_samples_and_scatters_gradients() {
    let spec = "name: \"r\" type: \"BatchReindex\" bottom: \"x\" bottom: \"k\" top: \"y\"";
    let mut l = layer(spec);
    let order = [2.0, 0.0, 2.0, 1.0, 2.0];
    let mut bottoms = vec![
        uniform_blob(&[3, 2, 2], -1.0, 1.0, 6),
        Blob::from_data(&[5], order.to_vec()),
    ];
    let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 0);
    assert_eq!(tops[0].shape(), &[5, 2, 2]);
    forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
    let want: Vec<f64> = order
        .iter()
        .flat_map(|&k| bottoms[0].data()[k as usize * 4..k as usize * 4 + 4].to_vec())
        .map(|v| v as f64)
        .collect();
    assert_close(tops[0].data(), &want, 0.0, 0.0, spec);
    GradientChecker::default()
        .check(
            l.as_mut(),
            &mut bottoms,
            &mut tops,
            &mut params,
            &[true, false],
        )
        .unwrap();
    bottoms[1].data_mut()[4] = 3.0;
    let e = forward_error(l.as_mut(), &mut bottoms, &mut tops, &mut params);
    assert!(
        e.contains("index 4 of bottom 1 is 3, but bottom 0 has 3 samples"),
        "{e}"
    );
}
