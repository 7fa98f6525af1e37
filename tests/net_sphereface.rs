//! The whole SphereFace-20 feature net runs forward and backward, and its
//! backpropagated gradient matches finite differences.

mod common;

use netrun::graph::{BuildOptions, Graph};
use netrun::net::Net;
use netrun::netdef::{read_net_file, Phase};
use netrun::testing::uniform_blob;

fn sphereface_deploy() -> Net {
    let net = read_net_file(&common::shared(
        "configs/sphereface/sphereface_deploy.prototxt",
    ))
    .unwrap();
    let graph = Graph::build(&net, &BuildOptions::for_phase(Phase::Test)).unwrap();
    Net::new(graph, 42).unwrap()
}

/// ⟨r, fc5⟩ for the fixed projection r.
fn objective(net: &Net, r: &[f32]) -> f64 {
    net.blob("fc5")
        .unwrap()
        .data()
        .iter()
        .zip(r)
        .map(|(&a, &b)| a as f64 * b as f64)
        .sum()
}

#[test]
fn sphereface20_forward_backward_matches_finite_differences() {
    let mut net = sphereface_deploy();
    let input = uniform_blob(&[1, 3, 112, 96], -1.0, 1.0, 5);
    net.blob_mut("data")
        .unwrap()
        .data_mut()
        .copy_from_slice(input.data());
    let r = uniform_blob(&[1, 512], -1.0, 1.0, 6).data().to_vec();

    net.forward().unwrap();
    assert!(
        net.blobs
            .iter()
            .all(|b| b.data().iter().all(|v| v.is_finite())),
        "NaN/Inf in forward"
    );
    // Seed fc5's diff with r: the backward pass then computes d⟨r, fc5⟩/dθ.
    net.blob_mut("fc5").unwrap().diff_mut().copy_from_slice(&r);
    net.clear_param_diffs();
    for n in (0..net.graph.nodes.len()).rev() {
        // The deploy net has no loss, so run every layer's backward.
        net.graph.nodes[n].need_backward = true;
        let k = net.graph.nodes[n].bottoms.len();
        net.graph.nodes[n].bottom_need_backward = vec![true; k];
        net.backward_layer(n).unwrap();
    }
    assert!(
        net.params
            .iter()
            .all(|p| p.diff().iter().all(|v| v.is_finite())),
        "NaN/Inf in backward"
    );

    // Finite differences along directions in the whole weight tensor of a
    // mid-network convolution. A single weight moves the objective (≈2) by
    // about 1e-3, within a few hundred times the f32 rounding of the 20-layer
    // forward (≈1e-6 to 1e-5, and different for every forward kernel), so a
    // per-weight check sits on that noise. A step along the gradient moves it
    // by h·|g| instead. The prediction uses the perturbation as stored in f32,
    // Σ g_i (w_i(±) − w_i), so rounding the weights adds no error.
    let layer = net.graph.node("conv3_4").unwrap();
    let param = net.param_ids[layer][0];
    let g: Vec<f64> = net.params[param].diff().iter().map(|&v| v as f64).collect();
    let w0 = net.params[param].data().to_vec();
    // The gradient, and the gradient on a fixed pseudo-random half of the weights.
    let half: Vec<f64> = g
        .iter()
        .enumerate()
        .map(|(i, &v)| if (i * 2_654_435_761) % 7 < 3 { v } else { 0.0 })
        .collect();
    for (name, dir) in [("gradient", &g), ("half of the gradient", &half)] {
        // A step w ± h·dir that moves the objective by about 1e-2.
        let h = 1e-2 / dir.iter().zip(&g).map(|(d, gi)| d * gi).sum::<f64>();
        let mut moved = |sign: f64| -> (f64, f64) {
            let w: Vec<f32> = w0
                .iter()
                .zip(dir.iter())
                .map(|(&w, &d)| (w as f64 + sign * h * d) as f32)
                .collect();
            let predicted: f64 = w
                .iter()
                .zip(&w0)
                .zip(&g)
                .map(|((&a, &b), &gi)| (a as f64 - b as f64) * gi)
                .sum();
            net.params[param].data_mut().copy_from_slice(&w);
            net.forward().unwrap();
            (objective(&net, &r), predicted)
        };
        let (plus, up) = moved(1.0);
        let (minus, down) = moved(-1.0);
        net.params[param].data_mut().copy_from_slice(&w0);
        let (measured, predicted) = (plus - minus, up - down);
        assert!(
            (measured - predicted).abs() <= 1e-2 * predicted.abs(),
            "conv3_4 weights along the {name}: objective moved {measured}, gradient predicts {predicted}"
        );
    }
}
