//! `netrun export onnx`: the exported models pass ONNX's checker and ONNX Runtime gives
//! the outputs `netrun forward` gives on the same input and weights, for the published
//! deploy nets and for small nets that exercise every mapped layer and pooling's edge
//! cases (tests/onnx_nets/).

mod common;

use common::python::run_script;
use netrun::forward::{run as forward, ForwardOptions};
use netrun::graph::{BuildOptions, Graph};
use netrun::net::Net;
use netrun::netdef::{read_net_file, Phase};
use netrun::weights;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// The deploy net at batch `batch` with its fillers' weights, or with every learnable
/// value drawn uniformly from [−1, 1] (`random`; BatchNorm variances positive and its
/// scale factor 2, so the stored statistics are really divided).
fn make_net(net: &Path, batch: usize, random: bool) -> Net {
    let def = read_net_file(net).unwrap();
    let mut opts = BuildOptions::for_phase(Phase::Test);
    opts.context.batch = Some(batch);
    opts.context.data_dirs = netrun::data::data_dirs(net, &[]);
    let mut net = Net::new(Graph::build(&def, &opts).unwrap(), 7).unwrap();
    if random {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        for p in &mut net.params {
            p.data_mut()
                .iter_mut()
                .for_each(|v| *v = rng.gen_range(-1.0..1.0));
        }
        for (n, node) in net.graph.nodes.iter().enumerate() {
            if node.layer.type_name() == "BatchNorm" {
                let ids = net.param_ids[n].clone();
                net.params[ids[1]]
                    .data_mut()
                    .iter_mut()
                    .for_each(|v| *v = v.abs() + 0.5);
                net.params[ids[2]].data_mut()[0] = 2.0;
            }
        }
    }
    net
}

/// Exports `net_file` through the command line and compares ONNX Runtime with
/// `netrun forward`; returns the largest relative error over the model's outputs.
fn compare(net_file: &Path, batch: usize, random: bool) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let net = make_net(net_file, batch, random);
    let w = dir.path().join("w.safetensors");
    let params: Vec<(String, &netrun::blob::Blob)> = weights::net_params(&net)
        .into_iter()
        .map(|(name, p)| (name, &net.params[p]))
        .collect();
    weights::save(&w, &params, &BTreeMap::new()).unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    let mut inputs: Vec<(String, Vec<usize>, Vec<f32>)> = Vec::new();
    for node in net
        .graph
        .nodes
        .iter()
        .filter(|n| n.layer.type_name() == "Input")
    {
        for &t in &node.tops {
            let shape = net.graph.blob_shape(t).to_vec();
            let n: usize = shape.iter().product();
            let values = (0..n).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
            inputs.push((net.graph.blobs[t].name.clone(), shape, values));
        }
    }
    let views: Vec<(&str, &[usize], &[f32])> = inputs
        .iter()
        .map(|(n, s, v)| (n.as_str(), s.as_slice(), v.as_slice()))
        .collect();
    let x = dir.path().join("x.safetensors");
    weights::save_f32(&x, &views, &BTreeMap::new()).unwrap();

    let model = dir.path().join("model.onnx");
    let out = Command::new(env!("CARGO_BIN_EXE_netrun"))
        .args(["export", "onnx"])
        .arg(net_file)
        .arg("--weights")
        .arg(&w)
        .arg("-o")
        .arg(&model)
        .args(["--batch", &batch.to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "export failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let y = dir.path().join("y.safetensors");
    forward(&ForwardOptions {
        net: net_file.to_path_buf(),
        weights: Some(w.clone()),
        inputs: x.clone(),
        top_diff: None,
        backward: false,
        phase: Phase::Test,
        output: y.clone(),
        extra_data_dirs: vec![],
    })
    .unwrap();
    let report = run_script("onnx_compare.py", &[&model, &x, &y]);
    let json: serde_json::Value = serde_json::from_str(report.trim()).unwrap();
    println!("{}: {json}", net_file.display());
    let errors = json["outputs"].as_object().unwrap();
    assert!(!errors.is_empty());
    let mut worst = 0.0f64;
    for (name, e) in errors {
        let e = e.as_f64().unwrap();
        assert!(
            e < 1e-4,
            "{}: output `{name}` differs by {e:e} (relative)",
            net_file.display()
        );
        worst = worst.max(e);
    }
    assert_eq!(json["opset"].as_i64(), Some(netrun::export::onnx::OPSET));
    worst
}

#[test]
fn sphereface20_deploy_matches_onnx_runtime() {
    compare(
        &repo("nets/sphereface/sphereface20_deploy.prototxt"),
        2,
        false,
    );
}

#[test]
fn lenet_plus_plus_deploy_matches_onnx_runtime() {
    compare(&repo("nets/caffe-face/mnist_deploy.prototxt"), 8, true);
}

#[test]
fn pooling_edge_cases_match_onnx_runtime() {
    compare(&repo("tests/onnx_nets/pooling_edges.prototxt"), 2, true);
}

#[test]
fn pointwise_layers_match_onnx_runtime() {
    compare(&repo("tests/onnx_nets/pointwise.prototxt"), 2, true);
}

#[test]
fn structure_layers_match_onnx_runtime() {
    compare(&repo("tests/onnx_nets/structure.prototxt"), 3, true);
}

/// Exports a net from text with its fillers' weights; the error text when refused.
fn export_error(text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let net_file = dir.path().join("net.prototxt");
    std::fs::write(&net_file, text).unwrap();
    let w = dir.path().join("w.safetensors");
    weights::save(&w, &[], &BTreeMap::new()).unwrap();
    netrun::export::onnx::run(&netrun::export::onnx::ExportOptions {
        net: net_file,
        weights: w,
        output: dir.path().join("m.onnx"),
        batch: None,
        extra_data_dirs: vec![],
    })
    .expect_err("expected the export to be refused")
    .to_string()
}

#[test]
fn train_only_layers_are_refused_by_name_and_place() {
    let err = export_error(
        r#"
layer { name: "data" type: "Input" top: "data" top: "label"
        input_param { shape { dim: 2 dim: 4 } shape { dim: 2 } } }
layer { name: "fc6" type: "MarginInnerProduct" bottom: "data" bottom: "label" top: "fc6"
        margin_inner_product_param { num_output: 3 } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "fc6" bottom: "label" top: "loss" }
"#,
    );
    assert!(
        err.contains("layer `fc6` (MarginInnerProduct) cannot be exported to ONNX"),
        "{err}"
    );
    assert!(err.contains("not part of a deploy net"), "{err}");
    assert!(
        err.contains("layer `loss` (SoftmaxWithLoss) cannot be exported"),
        "{err}"
    );
    assert!(err.contains("net.prototxt:4:"), "{err}");
    assert!(err.contains("2 errors found"), "{err}");
}

#[test]
fn batch_statistics_and_stochastic_pooling_are_refused() {
    let err = export_error(
        r#"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 2 dim: 3 dim: 4 dim: 4 } } }
layer { name: "bn" type: "BatchNorm" bottom: "data" top: "bn" batch_norm_param { use_global_stats: false } }
"#,
    );
    assert!(
        err.contains("layer `bn` (BatchNorm) cannot be exported"),
        "{err}"
    );
    assert!(err.contains("use_global_stats"), "{err}");
    let err = export_error(
        r#"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 2 dim: 3 dim: 4 dim: 4 } } }
layer { name: "pool" type: "Pooling" bottom: "data" top: "pool" pooling_param { pool: STOCHASTIC kernel_size: 2 } }
"#,
    );
    assert!(
        err.contains("layer `pool` (Pooling) cannot be exported"),
        "{err}"
    );
}
