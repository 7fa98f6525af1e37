//! Inference memory (`Net::recycle_activations`, `net/memory.rs`): a net that
//! recycles activation storage between layers and keeps no diffs gives the
//! same bits as one that keeps every blob, pass after pass, on published and
//! shipped nets of every kind of layer they hold.

mod common;

use netrun::graph::{BuildOptions, Graph};
use netrun::net::Net;
use netrun::netdef::{read_net_file, Phase};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

fn build(file: &Path, phase: Phase, shapes: &[(&str, &[usize])], batch: usize) -> Net {
    let def = read_net_file(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let mut opts = BuildOptions::for_phase(phase);
    opts.context.batch = Some(batch);
    opts.context.input_shapes = (shapes.iter())
        .map(|(t, s)| (t.to_string(), s.to_vec()))
        .collect::<HashMap<_, _>>();
    let graph = Graph::build(&def, &opts).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    Net::new(graph, 7).unwrap()
}

/// One forward with the data layers' tops filled as `netrun time` fills them
/// (values differing per pass, labels 0) instead of reading their sources.
fn pass(net: &mut Net, pass: u64) -> f64 {
    netrun::timing::fill_data_tops(net, pass);
    net.release_split_views();
    let mut loss = 0.0;
    for n in 0..net.graph.nodes.len() {
        if !net.graph.nodes[n].layer.is_data() {
            loss += net.forward_layer(n).unwrap();
        }
    }
    loss
}

/// Three passes of both nets: the blobs the recycling net keeps hold the
/// same bits, and its other blobs hold nothing between passes.
fn same_bits(file: PathBuf, phase: Phase, shapes: &[(&str, &[usize])], batch: usize) {
    let mut plain = build(&file, phase, shapes, batch);
    let mut recycled = build(&file, phase, shapes, batch);
    recycled.recycle_activations(&[]).unwrap();
    let name = file.display().to_string();
    for pass in 0..3 {
        let loss = self::pass(&mut plain, pass);
        let loss_recycled = self::pass(&mut recycled, pass);
        assert_eq!(
            loss.to_bits(),
            loss_recycled.to_bits(),
            "{name} pass {pass}"
        );
        let mut kept = 0;
        for (b, blob) in recycled.blobs.iter().enumerate() {
            let what = &recycled.graph.blobs[b].name;
            assert!(blob.diff().is_empty(), "{name}: `{what}` keeps a diff");
            if blob.data().is_empty() && blob.count() > 0 {
                continue;
            }
            kept += 1;
            let (a, r) = (plain.blobs[b].data(), blob.data());
            assert_eq!(a.len(), r.len(), "{name}: `{what}`");
            let differ = a
                .iter()
                .zip(r)
                .position(|(x, y)| x.to_bits() != y.to_bits());
            assert_eq!(differ, None, "{name} pass {pass}: `{what}` differs");
        }
        // Something was recycled, and something (the outputs) kept.
        assert!(
            kept > 0 && kept < recycled.blobs.len(),
            "{name}: kept {kept}"
        );
    }
}

#[test]
fn sphereface_deploy_nets_give_the_same_bits() {
    let face: &[(&str, &[usize])] = &[("data", &[3, 112, 96])];
    let sf = common::shared("configs/sphereface/sphereface_deploy.prototxt");
    same_bits(sf, Phase::Test, face, 2);
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("nets");
    same_bits(
        repo.join("sphereface/sphereface4_deploy.prototxt"),
        Phase::Test,
        face,
        1,
    );
    same_bits(
        repo.join("caffe-face/face_deploy.prototxt"),
        Phase::Test,
        face,
        2,
    );
}

#[test]
fn mtcnn_nets_give_the_same_bits() {
    for (file, side) in [("det1", 24), ("det2", 24), ("det3", 48)] {
        let path = common::shared(&format!("models/mtcnn/{file}.prototxt"));
        same_bits(path, Phase::Test, &[("data", &[3, side, side])], 3);
    }
}

#[test]
fn train_test_nets_with_losses_and_shared_weights_give_the_same_bits() {
    let mnist: &[(&str, &[usize])] = &[("data", &[1, 28, 28])];
    let pair: &[(&str, &[usize])] = &[("pair_data", &[2, 28, 28])];
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("nets");
    for phase in [Phase::Train, Phase::Test] {
        same_bits(
            common::shared("configs/caffe-face/mnist_example/mnist_train_test.prototxt"),
            phase,
            mnist,
            8,
        );
        same_bits(
            repo.join("siamese/mnist_siamese_train_test.prototxt"),
            phase,
            pair,
            4,
        );
    }
    let face: &[(&str, &[usize])] = &[("data", &[3, 112, 96])];
    for (fork, shape) in [
        ("amsoftmax_face_train_test", face),
        ("arcface_cosin_add_m", face),
        ("lsoftmax_mnist_train_test", mnist),
    ] {
        let path = common::shared(&format!("configs/forks/{fork}.prototxt"));
        same_bits(path, Phase::Train, shape, 2);
    }
}

#[test]
fn named_blobs_stay_and_the_net_refuses_what_it_cannot_do() {
    let file = common::shared("configs/sphereface/sphereface_deploy.prototxt");
    let mut net = build(&file, Phase::Test, &[("data", &[3, 112, 96])], 1);
    let err = net.recycle_activations(&["conv9_9"]).unwrap_err();
    assert!(err.to_string().contains("no blob `conv9_9`"), "{err}");
    net.recycle_activations(&["conv3_1"]).unwrap();
    net.forward().unwrap();
    assert_eq!(net.blob("conv3_1").unwrap().data().len(), 256 * 14 * 12);
    assert!(net.blob("conv3_2").unwrap().data().is_empty());
    assert_eq!(net.blob("fc5").unwrap().data().len(), 512);
    let err = net.backward().unwrap_err();
    assert!(err.to_string().contains("cannot run backward"), "{err}");
}
