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

/// Saves `net`'s learnable blobs as `<dir>/w.safetensors`.
fn save_weights(net: &Net, dir: &Path) -> PathBuf {
    let w = dir.join("w.safetensors");
    let params: Vec<(String, &netrun::blob::Blob)> = weights::net_params(net)
        .into_iter()
        .map(|(name, p)| (name, &net.params[p]))
        .collect();
    weights::save(&w, &params, &BTreeMap::new()).unwrap();
    w
}

/// Random values in [−1, 1) for every Input top of `net`, saved as `<dir>/<name>`.
fn save_inputs(net: &Net, dir: &Path, name: &str) -> PathBuf {
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
    let x = dir.join(name);
    weights::save_f32(&x, &views, &BTreeMap::new()).unwrap();
    x
}

/// `netrun export onnx NET --weights W -o <dir>/model.onnx ARGS...`.
fn export_model(net_file: &Path, w: &Path, dir: &Path, args: &[&str]) -> PathBuf {
    let model = dir.join("model.onnx");
    let out = Command::new(env!("CARGO_BIN_EXE_netrun"))
        .args(["export", "onnx"])
        .arg(net_file)
        .arg("--weights")
        .arg(w)
        .arg("-o")
        .arg(&model)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "export failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    model
}

/// Runs `netrun forward` and ONNX Runtime on inputs `x`; asserts every output agrees
/// within 1e-4 relative and returns onnx_compare.py's report.
fn run_both(net_file: &Path, w: &Path, model: &Path, x: &Path) -> serde_json::Value {
    let y = x.with_extension("forward.safetensors");
    forward(&ForwardOptions {
        net: net_file.to_path_buf(),
        weights: Some(w.to_path_buf()),
        inputs: x.to_path_buf(),
        top_diff: None,
        backward: false,
        phase: Phase::Test,
        output: y.clone(),
        extra_data_dirs: vec![],
    })
    .unwrap();
    let report = run_script("onnx_compare.py", &[model, x, &y]);
    let json: serde_json::Value = serde_json::from_str(report.trim()).unwrap();
    println!("{}: {json}", net_file.display());
    let errors = json["outputs"].as_object().unwrap();
    assert!(!errors.is_empty());
    for (name, e) in errors {
        let e = e.as_f64().unwrap();
        assert!(
            e < 1e-4,
            "{}: output `{name}` differs by {e:e} (relative)",
            net_file.display()
        );
    }
    assert_eq!(json["opset"].as_i64(), Some(netrun::export::onnx::OPSET));
    json
}

/// Exports `net_file` through the command line and compares ONNX Runtime with
/// `netrun forward` (within 1e-4 relative on every output).
fn compare(net_file: &Path, batch: usize, random: bool) {
    let dir = tempfile::tempdir().unwrap();
    let net = make_net(net_file, batch, random);
    let w = save_weights(&net, dir.path());
    let x = save_inputs(&net, dir.path(), "x.safetensors");
    let model = export_model(net_file, &w, dir.path(), &["--batch", &batch.to_string()]);
    run_both(net_file, &w, &model, &x);
}

/// With `--dynamic-batch` one model runs at batch 1 and 3 in ONNX Runtime, with
/// the outputs `netrun forward` gives at each.
fn compare_dynamic(net_file: &Path, random: bool) {
    let dir = tempfile::tempdir().unwrap();
    let w = save_weights(&make_net(net_file, 2, random), dir.path());
    let model = export_model(
        net_file,
        &w,
        dir.path(),
        &["--batch", "2", "--dynamic-batch"],
    );
    for batch in [1, 3] {
        let x = save_inputs(
            &make_net(net_file, batch, random),
            dir.path(),
            &format!("x{batch}.safetensors"),
        );
        let json = run_both(net_file, &w, &model, &x);
        for dims in json["input_dims"].as_object().unwrap().values() {
            assert_eq!(dims[0].as_str(), Some("N"), "{json}");
        }
    }
}

#[test]
fn a_dynamic_batch_model_runs_at_batch_1_and_3() {
    compare_dynamic(&repo("nets/caffe-face/mnist_deploy.prototxt"), true);
    compare_dynamic(&repo("tests/onnx_nets/structure.prototxt"), true);
    compare_dynamic(&repo("tests/onnx_nets/pointwise.prototxt"), true);
}

#[test]
fn a_net_that_folds_the_batch_has_no_dynamic_batch() {
    let err = export_error_with(
        r#"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 2 dim: 3 dim: 4 } } }
layer { name: "fold" type: "Reshape" bottom: "data" top: "fold" reshape_param { shape { dim: -1 dim: 4 } } }
"#,
        true,
    );
    assert!(
        err.contains("layer `fold` (Reshape): top `fold` is 6x4 at batch 2 and 9x4 at batch 3"),
        "{err}"
    );
    assert!(err.contains("without `--dynamic-batch`"), "{err}");
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
    export_error_with(text, false)
}

/// [`export_error`], with a dynamic batch when `dynamic`.
fn export_error_with(text: &str, dynamic: bool) -> String {
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
        dynamic_batch: dynamic,
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
