//! The published face-recognition train nets build and run forward and
//! backward with the loss layers, on random data standing in for their data
//! sets: finite losses, finite gradients on every learnable blob.

mod common;

use netrun::graph::{BuildOptions, Graph};
use netrun::net::Net;
use netrun::netdef::{read_net_file, Phase};
use netrun::timing::fill_data_tops;

fn run_train_net(rel: &str, sample: &[usize], batch: usize) -> Net {
    let net = read_net_file(&common::shared(rel)).unwrap();
    let mut opts = BuildOptions::for_phase(Phase::Train);
    opts.context.batch = Some(batch);
    opts.context.input_shapes = [("data".to_string(), sample.to_vec())]
        .into_iter()
        .collect();
    let graph = Graph::build(&net, &opts).unwrap_or_else(|e| panic!("{rel}: {e}"));
    let mut net = Net::new(graph, 3).unwrap();
    // Data layers are not read (their sources are absent); their tops get random
    // values and class-0 labels, and the rest of the net runs as in training.
    fill_data_tops(&mut net, 9);
    let mut loss = 0.0;
    for n in 0..net.graph.nodes.len() {
        if !net.graph.nodes[n].layer.is_data() {
            loss += net.forward_layer(n).unwrap();
        }
    }
    assert!(loss.is_finite() && loss > 0.0, "{rel}: loss {loss}");
    net.set_loss_weights();
    net.clear_param_diffs();
    for n in (0..net.graph.nodes.len()).rev() {
        net.backward_layer(n).unwrap();
    }
    for l in &net.learnables {
        let p = &net.params[l.param];
        assert!(
            p.diff().iter().all(|v| v.is_finite()),
            "{rel}: non-finite diff in {}",
            l.name
        );
    }
    // Every trainable blob (lr_mult ≠ 0) upstream of the loss receives a gradient.
    let conv = net
        .learnables
        .iter()
        .find(|l| l.name == "conv1_1.0" || l.name == "conv1.0" || l.name == "conv1a.0")
        .expect("first conv");
    assert!(
        net.params[conv.param].sumsq_diff() > 0.0,
        "{rel}: no gradient reached the first convolution"
    );
    net
}

#[test]
fn sphereface20_train_net_runs_forward_and_backward() {
    let net = run_train_net(
        "configs/sphereface/sphereface_model.prototxt",
        &[3, 112, 96],
        2,
    );
    // The A-Softmax counter advanced once (TRAIN forward).
    let fc6 = net.graph.node("fc6").unwrap();
    assert_eq!(
        net.graph.nodes[fc6].layer.state(),
        vec![("iteration".to_string(), 1.0)]
    );
}

#[test]
fn caffe_face_train_net_runs_forward_and_backward() {
    let net = run_train_net(
        "configs/caffe-face/face_example/face_train_test.prototxt",
        &[3, 112, 96],
        2,
    );
    let centers = net
        .learnables
        .iter()
        .find(|l| l.name == "center_loss.0")
        .unwrap();
    assert!(
        net.params[centers.param].sumsq_diff() > 0.0,
        "the centres get their update"
    );
}

#[test]
fn caffe_face_mnist_train_net_runs_forward_and_backward() {
    run_train_net(
        "configs/caffe-face/mnist_example/mnist_train_test.prototxt",
        &[1, 28, 28],
        8,
    );
}
