//! Every published config in ../shared/configs builds unchanged, with the
//! architectures' published parameter counts and shapes; and no mutation of
//! them makes the library panic.

mod common;

use netrun::graph::{BuildOptions, Graph};
use netrun::netdef::{parse_net_str, read_net_file, Phase};
use std::collections::HashMap;

/// Builds a shared config with per-sample data shapes standing in for the
/// data sets the configs name (not present here).
fn build(rel: &str, phase: Phase, shapes: &[(&str, &[usize])]) -> Graph {
    let net = read_net_file(&common::shared(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    let mut opts = BuildOptions::for_phase(phase);
    opts.context.input_shapes = shapes
        .iter()
        .map(|(t, s)| (t.to_string(), s.to_vec()))
        .collect::<HashMap<_, _>>();
    Graph::build(&net, &opts).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn shape<'a>(g: &'a Graph, blob: &str) -> &'a [usize] {
    let id = g
        .blobs
        .iter()
        .position(|b| b.name == blob)
        .unwrap_or_else(|| panic!("no blob {blob}"));
    g.blob_shape(id)
}

/// Parameters of the layers up to and including `last`.
fn params_through(g: &Graph, last: &str) -> usize {
    let end = g.node(last).unwrap();
    g.nodes[..=end]
        .iter()
        .flat_map(|n| &n.param_shapes)
        .map(|s| s.iter().product::<usize>())
        .sum()
}

const FACE: &[(&str, &[usize])] = &[("data", &[3, 112, 96])];
const MNIST: &[(&str, &[usize])] = &[("data", &[1, 28, 28])];

#[test]
fn sphereface20_counts_and_shapes() {
    let g = build(
        "configs/sphereface/sphereface_model.prototxt",
        Phase::Train,
        FACE,
    );
    assert_eq!(params_through(&g, "fc5"), 22_670_656);
    assert_eq!(g.param_count(), 28_083_520);
    assert_eq!(shape(&g, "fc5"), &[256, 512]);
    assert_eq!(shape(&g, "fc6"), &[256, 10572]);
    let flops = netrun::summary::totals(&g).flops as f64 / 256.0;
    assert!((flops - 3.5e9).abs() < 0.05e9, "{flops}");
    let deploy = build(
        "configs/sphereface/sphereface_deploy.prototxt",
        Phase::Test,
        &[],
    );
    assert_eq!(deploy.param_count(), 22_670_656);
    assert_eq!(shape(&deploy, "conv4_1"), &[1, 512, 7, 6]);
}

#[test]
fn caffe_face_face_net_matches_its_architecture() {
    // Face-ResNet: 27,543,072 parameters through fc5, 38,379,372 with fc6 and the centres.
    let g = build(
        "configs/caffe-face/face_example/face_train_test.prototxt",
        Phase::Train,
        FACE,
    );
    assert_eq!(params_through(&g, "fc5"), 27_543_072);
    assert_eq!(g.param_count(), 38_379_372);
    assert_eq!(shape(&g, "pool4"), &[256, 512, 5, 4]);
    assert_eq!(
        g.nodes[g.node("center_loss").unwrap()].param_shapes,
        vec![vec![10572, 512]]
    );
    let test = build(
        "configs/caffe-face/face_example/face_train_test.prototxt",
        Phase::Test,
        FACE,
    );
    assert_eq!(shape(&test, "data"), &[128, 3, 112, 96]);
    let deploy = build(
        "configs/caffe-face/face_example/face_deploy.prototxt",
        Phase::Test,
        &[],
    );
    assert_eq!(deploy.param_count(), 27_543_072);
}

#[test]
fn caffe_face_mnist_net_matches_lenet_plus_plus() {
    let g = build(
        "configs/caffe-face/mnist_example/mnist_train_test.prototxt",
        Phase::Train,
        MNIST,
    );
    assert_eq!(params_through(&g, "preluip1"), 797_604);
    assert_eq!(g.param_count(), 797_644);
    assert_eq!(shape(&g, "pool3"), &[128, 128, 3, 3]);
    assert_eq!(shape(&g, "ip1"), &[128, 2]);
    let test = build(
        "configs/caffe-face/mnist_example/mnist_train_test.prototxt",
        Phase::Test,
        MNIST,
    );
    assert_eq!(shape(&test, "data"), &[100, 1, 28, 28]);
    let deploy = build(
        "configs/caffe-face/mnist_example/mnist_deploy.prototxt",
        Phase::Test,
        &[],
    );
    assert_eq!(deploy.param_count(), 797_604);
}

#[test]
fn siamese_towers_share_their_weights() {
    let g = build(
        "configs/siamese/mnist_siamese_train_test.prototxt",
        Phase::Train,
        &[("pair_data", &[2, 28, 28])],
    );
    // Two towers, one set of weights.
    assert_eq!(g.param_count(), 431_102);
    assert_eq!(shape(&g, "feat"), &[64, 2]);
    assert_eq!(shape(&g, "feat_p"), &[64, 2]);
}

/// Deterministic mutations (deleted, duplicated and replaced bytes,
/// truncations) of every published config: each must parse or fail with an
/// error, never panic.
#[test]
fn mutated_configs_never_panic() {
    let mut files = Vec::new();
    for dir in [
        "configs/sphereface",
        "configs/caffe-face/face_example",
        "configs/caffe-face/mnist_example",
        "configs/siamese",
    ] {
        for e in std::fs::read_dir(common::shared(dir)).unwrap() {
            files.push(e.unwrap().path());
        }
    }
    files.sort();
    let mut state = 0x9e3779b97f4a7c15u64;
    let mut next = move |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n.max(1) as u64) as usize
    };
    let alphabet = b"{}:\"#\n -.0123456789eaxZ_";
    let mut runs = 0;
    for path in &files {
        let text = std::fs::read(path).unwrap();
        for _ in 0..300 {
            let mut bytes = text.clone();
            for _ in 0..1 + next(4) {
                if bytes.is_empty() {
                    break;
                }
                let at = next(bytes.len());
                match next(4) {
                    0 => {
                        bytes.remove(at);
                    }
                    1 => bytes.insert(at, alphabet[next(alphabet.len())]),
                    2 => bytes[at] = alphabet[next(alphabet.len())],
                    _ => bytes.truncate(at),
                }
            }
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let result = std::panic::catch_unwind(|| {
                if let Ok(net) = parse_net_str("mutated.prototxt", &text) {
                    let mut opts = BuildOptions::for_phase(Phase::Train);
                    opts.context.input_shapes =
                        [("data", vec![3, 16, 16]), ("pair_data", vec![2, 28, 28])]
                            .into_iter()
                            .map(|(k, v)| (k.to_string(), v))
                            .collect();
                    if let Err(e) = Graph::build(&net, &opts) {
                        let _ = e.to_string();
                    }
                }
            });
            assert!(
                result.is_ok(),
                "panic on a mutation of {}:\n{text}",
                path.display()
            );
            runs += 1;
        }
    }
    assert!(runs >= 3000, "{runs}");
}
