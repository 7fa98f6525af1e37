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

    // Finite differences on a few weights of a mid-network convolution.
    let layer = net.graph.node("conv3_4").unwrap();
    let param = net.param_ids[layer][0];
    // The five largest gradients: for those the f32 rounding of the objective
    // (≈1e-6 absolute) is far below the tolerance.
    let mut order: Vec<usize> = (0..net.params[param].count()).collect();
    order.sort_by(|&a, &b| {
        net.params[param].diff()[b]
            .abs()
            .total_cmp(&net.params[param].diff()[a].abs())
    });
    let h = 1e-3f32;
    for &k in &order[..5] {
        let analytic = net.params[param].diff()[k] as f64;
        let x = net.params[param].data()[k];
        net.params[param].data_mut()[k] = x + h;
        net.forward().unwrap();
        let plus = objective(&net, &r);
        net.params[param].data_mut()[k] = x - h;
        net.forward().unwrap();
        let minus = objective(&net, &r);
        net.params[param].data_mut()[k] = x;
        let numeric = (plus - minus) / (2.0 * h as f64);
        let scale = analytic.abs().max(numeric.abs()).max(1e-2);
        assert!(
            (analytic - numeric).abs() <= 2e-2 * scale,
            "conv3_4 weight {k}: analytic {analytic}, numeric {numeric}"
        );
    }
}
