//! `.caffemodel` reading: files encoded by Python's protobuf from a `.proto`
//! written for these tests (both layer encodings, `double_data`, legacy 4-D
//! shapes), Caffe's matching rules, netrun's writer read back by Python's
//! protobuf, and bad input (truncated, corrupted, absurd sizes, a few
//! thousand seeded mutations of the real MTCNN P-Net) without a panic.

mod common;

use common::python::run_script;
use netrun::caffe::CaffeModel;
use netrun::graph::{BuildOptions, Graph};
use netrun::net::Net;
use netrun::netdef::{parse_net_str, Phase};
use netrun::weights::{self, ApplyOptions};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// data 1x3x8x8 → conv1 (4 filters 3x3) → relu1 → ip1 (5 outputs), as
/// `caffe_interop.py encode` describes it.
fn tiny_net(conv_outputs: usize, conv_bias: bool) -> Net {
    let text = format!(
        r#"name: "tiny"
layer {{ name: "data" type: "Input" top: "data" input_param {{ shape {{ dim: 1 dim: 3 dim: 8 dim: 8 }} }} }}
layer {{ name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param {{ num_output: {conv_outputs} kernel_size: 3 bias_term: {conv_bias} }} }}
layer {{ name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }}
layer {{ name: "ip1" type: "InnerProduct" bottom: "conv1" top: "ip1" inner_product_param {{ num_output: 5 }} }}
"#
    );
    let def = parse_net_str("tiny.prototxt", &text).unwrap();
    Net::new(
        Graph::build(&def, &BuildOptions::for_phase(Phase::Test)).unwrap(),
        1,
    )
    .unwrap()
}

/// The Python-encoded files and their expected values.
fn encoded() -> (tempfile::TempDir, Value) {
    let dir = tempfile::tempdir().unwrap();
    run_script("caffe_interop.py", &[Path::new("encode"), dir.path()]);
    let expected = std::fs::read_to_string(dir.path().join("expected.json")).unwrap();
    (dir, serde_json::from_str(&expected).unwrap())
}

fn expected_values(v: &Value, name: &str) -> Vec<f32> {
    v[name]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn param<'a>(net: &'a Net, name: &str) -> &'a netrun::blob::Blob {
    let (_, p) = weights::net_params(net)
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no param {name}"));
    &net.params[p]
}

#[test]
fn python_encoded_caffemodels_load_by_caffes_rules() {
    let (dir, expected) = encoded();
    for file in ["v2.caffemodel", "v1.caffemodel"] {
        let path = dir.path().join(file);
        let model = CaffeModel::read(&path).unwrap();
        assert_eq!(model.v1, file == "v1.caffemodel");
        let types: Vec<&str> = model.layers.iter().map(|l| l.type_name.as_str()).collect();
        assert!(
            types.contains(&"Convolution") && types.contains(&"ReLU"),
            "{types:?}"
        );
        let mut net = tiny_net(4, true);
        let tensors = weights::load(&path).unwrap();
        let report =
            weights::apply(&mut net, &tensors, ApplyOptions { require_all: true }).unwrap();
        assert_eq!(report.loaded, ["conv1.0", "conv1.1", "ip1.0", "ip1.1"]);
        for name in &report.loaded {
            assert_eq!(
                param(&net, name).data(),
                expected_values(&expected, name),
                "{file} {name}"
            );
        }
        let skipped: Vec<&str> = report.unused.iter().map(String::as_str).collect();
        let want: &[&str] = if file == "v2.caffemodel" {
            &["extra.0"]
        } else {
            &[]
        };
        assert_eq!(skipped, want, "{file}");
    }
    // Legacy shapes are kept as written when no net is given.
    let v1 = CaffeModel::read(&dir.path().join("v1.caffemodel")).unwrap();
    let ip = v1.layers.iter().find(|l| l.name == "ip1").unwrap();
    assert_eq!(ip.blobs[0].shape, [1, 1, 5, 144]);
    assert!(ip.blobs[0].legacy);
}

#[test]
fn mismatched_blobs_name_the_layer_and_both_shapes() {
    let (dir, _) = encoded();
    for file in ["v2.caffemodel", "v1.caffemodel"] {
        let tensors = weights::load(&dir.path().join(file)).unwrap();
        let mut net = tiny_net(6, true);
        let err = weights::apply(&mut net, &tensors, ApplyOptions::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains(file), "{err}");
        assert!(err.contains("layer `conv1`"), "{err}");
        assert!(err.contains("4x3x3x3") && err.contains("6x3x3x3"), "{err}");
        let mut net = tiny_net(4, false);
        let err = weights::apply(&mut net, &tensors, ApplyOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("layer `conv1` has 2 blob(s)") && err.contains("has 1"),
            "{err}"
        );
    }
}

fn netrun(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_netrun"))
        .args(args)
        .output()
        .unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn convert_both_ways_and_python_protobuf_reads_netruns_caffemodel() {
    let (dir, expected) = encoded();
    let d = dir.path();
    let net_file = d.join("tiny.prototxt");
    std::fs::write(
        &net_file,
        r#"name: "tiny"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1" convolution_param { num_output: 4 kernel_size: 3 } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "ip1" type: "InnerProduct" bottom: "conv1" top: "ip1" inner_product_param { num_output: 5 } }
"#,
    )
    .unwrap();
    // V1 file → safetensors checked against the net (legacy shapes become the net's).
    let st = d.join("w.safetensors");
    let out = netrun(&[
        "convert",
        "caffemodel",
        s(&d.join("v1.caffemodel")),
        "--net",
        s(&net_file),
        "-o",
        s(&st),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let w = weights::load(&st).unwrap();
    assert_eq!(w.tensors["ip1.0"].shape, [5, 144]);
    assert_eq!(w.tensors["ip1.0"].data, expected_values(&expected, "ip1.0"));
    // Without a net: every blob, in the file's shapes.
    let all = d.join("all.safetensors");
    let out = netrun(&[
        "convert",
        "caffemodel",
        s(&d.join("v2.caffemodel")),
        "-o",
        s(&all),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all = weights::load(&all).unwrap();
    assert_eq!(
        all.tensors.keys().collect::<Vec<_>>(),
        ["conv1.0", "conv1.1", "extra.0", "ip1.0", "ip1.1"]
    );
    // safetensors → caffemodel, decoded by Python's protobuf.
    let model = d.join("netrun.caffemodel");
    let out = netrun(&[
        "convert",
        "safetensors",
        s(&st),
        "--net",
        s(&net_file),
        "-o",
        s(&model),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = d.join("decoded.json");
    run_script("caffe_interop.py", &[Path::new("decode"), &model, &json]);
    let decoded: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(decoded["name"], "tiny");
    let layers = decoded["layers"].as_array().unwrap();
    let names: Vec<&str> = layers.iter().map(|l| l["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["data", "conv1", "relu1", "ip1"]);
    let ip = &layers[3];
    assert_eq!(ip["type"], "InnerProduct");
    assert_eq!(ip["bottom"][0], "conv1");
    assert_eq!(ip["blobs"][0]["shape"], serde_json::json!([5, 144]));
    let got: Vec<f32> = ip["blobs"][0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect();
    assert_eq!(got, expected_values(&expected, "ip1.0"));
}

fn det1() -> PathBuf {
    common::shared("models/mtcnn/det1.caffemodel")
}

fn decode_err(bytes: &[u8]) -> String {
    CaffeModel::decode(Path::new("bad.caffemodel"), bytes)
        .unwrap_err()
        .to_string()
}

/// Protobuf wire helpers for hand-made bad files.
fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn len_field(tag: u64, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    varint(tag << 3 | 2, &mut out);
    varint(body.len() as u64, &mut out);
    out.extend_from_slice(body);
    out
}

/// A net with one layer `conv` whose only blob is `blob`.
fn net_with_blob(blob: &[u8]) -> Vec<u8> {
    let mut layer = len_field(1, b"conv");
    layer.extend(len_field(7, blob));
    len_field(100, &layer)
}

#[test]
fn bad_files_are_clear_errors_naming_file_and_layer() {
    let good = std::fs::read(det1()).unwrap();
    // Cut inside a layer.
    let err = decode_err(&good[..good.len() / 2]);
    assert!(
        err.contains("bad.caffemodel") && err.contains("truncated"),
        "{err}"
    );
    // Not protobuf at all (a text net).
    let err = decode_err(b"name: \"LeNet\"\nlayer {\n}\n");
    assert!(err.contains("bad.caffemodel"), "{err}");
    // Shape 2x3 with 5 values.
    let mut blob = len_field(7, &{
        let mut dims = Vec::new();
        for d in [2u64, 3] {
            dims.push(0x08);
            varint(d, &mut dims);
        }
        dims
    });
    blob.extend(len_field(5, &[0u8; 20]));
    let err = decode_err(&net_with_blob(&blob));
    assert!(
        err.contains("layer #0 `conv`") && err.contains("2x3 = 6 values but holds 5"),
        "{err}"
    );
    // Dimensions whose product overflows: checked, not allocated.
    let mut shape = Vec::new();
    for _ in 0..3 {
        shape.push(0x08);
        varint(1 << 40, &mut shape);
    }
    let err = decode_err(&net_with_blob(&len_field(7, &shape)));
    assert!(err.contains("`conv`") && err.contains("overflows"), "{err}");
    // A packed float field claiming 2^40 bytes in a file of a few bytes.
    let mut blob = Vec::new();
    varint(5 << 3 | 2, &mut blob);
    varint(1 << 40, &mut blob);
    blob.extend_from_slice(&[0u8; 16]);
    let mut layer = len_field(1, b"conv");
    varint(7 << 3 | 2, &mut layer);
    varint(blob.len() as u64, &mut layer);
    layer.extend(&blob);
    let err = decode_err(&len_field(100, &layer));
    assert!(
        err.contains("`conv`") && err.contains("truncated or corrupted"),
        "{err}"
    );
    // A negative dimension.
    let mut shape = vec![0x08];
    varint(-3i64 as u64, &mut shape);
    let err = decode_err(&net_with_blob(&len_field(7, &shape)));
    assert!(err.contains("negative dimension -3"), "{err}");
    // An empty file, and through `weights::load`, the file's own name.
    let err = decode_err(b"");
    assert!(err.contains("no layers"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("cut.caffemodel");
    std::fs::write(&cut, &good[..good.len() - 7]).unwrap();
    let err = weights::load(&cut).unwrap_err().to_string();
    assert!(
        err.contains("cut.caffemodel") && err.contains("layer #"),
        "{err}"
    );
}

/// splitmix64, so the mutations are the same on every run.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[test]
fn thousands_of_mutations_of_a_real_caffemodel_never_panic() {
    let good = std::fs::read(det1()).unwrap();
    assert!(CaffeModel::decode(&det1(), &good).is_ok());
    let mut seed = 13u64;
    let (mut ok, mut errors) = (0, 0);
    for i in 0..3000 {
        let mut bytes = good.clone();
        let r = next(&mut seed);
        match i % 3 {
            0 => {
                for _ in 0..1 + r % 8 {
                    let at = (next(&mut seed) as usize) % bytes.len();
                    bytes[at] ^= 1 << (next(&mut seed) % 8);
                }
            }
            1 => bytes.truncate((r as usize) % bytes.len()),
            _ => {
                // Splice: a run of the file copied over another place.
                let len = 1 + (next(&mut seed) as usize) % 64;
                let from = (next(&mut seed) as usize) % (bytes.len() - len);
                let to = (r as usize) % (bytes.len() - len);
                let chunk = bytes[from..from + len].to_vec();
                bytes[to..to + len].copy_from_slice(&chunk);
            }
        }
        match std::panic::catch_unwind(|| CaffeModel::decode(Path::new("m.caffemodel"), &bytes)) {
            Ok(Ok(_)) => ok += 1,
            Ok(Err(e)) => {
                assert!(e.to_string().contains("m.caffemodel"), "{e}");
                errors += 1;
            }
            Err(_) => panic!("mutation {i} panicked"),
        }
    }
    // Both outcomes occur: the mutations reach past the reader's first check.
    assert!(ok > 100 && errors > 100, "ok {ok}, errors {errors}");
}
