//! Parameter files: round trip, checksum, atomic writes, refusal of damaged
//! files, foreign files, and loading into a net.

mod common;

use common::build;
use netrun::blob::Blob;
use netrun::net::Net;
use netrun::netdef::Phase;
use netrun::weights::{self, apply, load, net_params, save, ApplyOptions, LoadReport};
use safetensors::tensor::TensorView;
use safetensors::Dtype;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

fn blobs() -> Vec<(String, Blob)> {
    let odd = vec![
        0.0,
        -0.0,
        1.5,
        f32::MIN_POSITIVE / 4.0, // subnormal
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::from_bits(0x7fc0_1234), // NaN with a payload
        -3.25e-7,
    ];
    vec![
        ("conv1.0".into(), Blob::from_data(&[2, 1, 2, 2], odd)),
        ("conv1.1".into(), Blob::from_data(&[2], vec![0.5, -2.0])),
        ("scale".into(), Blob::from_data(&[], vec![7.0])),
    ]
}

fn refs(b: &[(String, Blob)]) -> Vec<(String, &Blob)> {
    b.iter().map(|(n, b)| (n.clone(), b)).collect()
}

fn meta(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn err(r: netrun::Result<impl std::fmt::Debug>) -> String {
    r.expect_err("expected an error").to_string()
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn round_trip_is_bit_identical_with_names_shapes_and_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.safetensors");
    let b = blobs();
    save(
        &path,
        &refs(&b),
        &meta(&[("iter", "1200"), ("format", "mine")]),
    )
    .unwrap();
    let t = load(&path).unwrap();
    assert_eq!(t.path, path);
    assert_eq!(
        t.tensors.keys().collect::<Vec<_>>(),
        vec!["conv1.0", "conv1.1", "scale"]
    );
    for (name, blob) in &b {
        let got = &t.tensors[name];
        assert_eq!(got.shape, blob.shape(), "{name}");
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&got.data), bits(blob.data()), "{name}");
    }
    assert_eq!(t.metadata["iter"], "1200");
    // `format` is netrun's own entry and replaces the caller's.
    assert_eq!(t.metadata["format"], "netrun-v1");
    assert_eq!(t.metadata.len(), 3, "{:?}", t.metadata);
}

/// The checksum as the module docs define it, recomputed here.
#[test]
fn checksum_follows_the_documented_definition() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.safetensors");
    let b = blobs();
    save(&path, &refs(&b), &BTreeMap::new()).unwrap();
    let mut h = crc32fast::Hasher::new();
    let mut sorted: Vec<&(String, Blob)> = b.iter().collect();
    sorted.sort_by(|x, y| x.0.cmp(&y.0));
    for (name, blob) in sorted {
        let bytes: Vec<u8> = blob.data().iter().flat_map(|v| v.to_le_bytes()).collect();
        h.update(&(name.len() as u64).to_le_bytes());
        h.update(name.as_bytes());
        h.update(&(blob.shape().len() as u64).to_le_bytes());
        for &d in blob.shape() {
            h.update(&(d as u64).to_le_bytes());
        }
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(&bytes);
    }
    // Then every metadata entry but `checksum`, in key order.
    let loaded = load(&path).unwrap();
    let mut meta: Vec<(&String, &String)> = loaded
        .metadata
        .iter()
        .filter(|(k, _)| k.as_str() != "checksum")
        .collect();
    meta.sort();
    assert!(meta
        .iter()
        .any(|(k, v)| *k == "format" && *v == "netrun-v1"));
    for (k, v) in meta {
        for s in [k, v] {
            h.update(&(s.len() as u64).to_le_bytes());
            h.update(s.as_bytes());
        }
    }
    let want = format!("crc32m:{:08x}", h.finalize());
    assert_eq!(loaded.metadata["checksum"], want);
}

#[test]
fn save_replaces_an_existing_file_and_leaves_no_temporary() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.safetensors");
    std::fs::write(&path, b"old contents").unwrap();
    let b = blobs();
    save(&path, &refs(&b[1..2]), &BTreeMap::new()).unwrap();
    assert_eq!(entries(dir.path()), vec!["w.safetensors"]);
    assert_eq!(
        load(&path).unwrap().tensors.keys().collect::<Vec<_>>(),
        vec!["conv1.1"]
    );
}

#[test]
fn failed_save_keeps_the_old_file_and_removes_its_temporary() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.safetensors");
    let b = blobs();
    save(&path, &refs(&b[..1]), &BTreeMap::new()).unwrap();
    let before = std::fs::read(&path).unwrap();

    // Refused before anything is written.
    let twice = vec![("a".to_string(), &b[1].1), ("a".to_string(), &b[2].1)];
    let e = err(save(&path, &twice, &BTreeMap::new()));
    assert!(
        e.contains("cannot write `") && e.contains("two tensors are named `a`"),
        "{e}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), before);
    assert_eq!(entries(dir.path()), vec!["w.safetensors"]);

    // Fails at the rename, after the temporary file was written in full:
    // the destination is a folder that is not empty.
    let folder = dir.path().join("taken");
    std::fs::create_dir(&folder).unwrap();
    std::fs::write(folder.join("keep"), b"x").unwrap();
    let e = err(save(&folder, &refs(&b), &BTreeMap::new()));
    assert!(
        e.contains("taken`") && e.contains("renaming `") && e.contains("over it"),
        "{e}"
    );
    assert_eq!(entries(dir.path()), vec!["taken", "w.safetensors"]);
    assert_eq!(entries(&folder), vec!["keep"]);
}

#[test]
fn save_into_a_read_only_folder_fails_and_keeps_the_old_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("ro");
    std::fs::create_dir(&sub).unwrap();
    let path = sub.join("w.safetensors");
    let b = blobs();
    save(&path, &refs(&b[..1]), &BTreeMap::new()).unwrap();
    let before = std::fs::read(&path).unwrap();
    std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o555)).unwrap();
    // Root (CI runs as root) writes into read-only folders regardless; the
    // failure at the rename above covers the same clean-up there.
    let probe = sub.join("probe");
    if std::fs::write(&probe, b"").is_ok() {
        std::fs::remove_file(&probe).unwrap();
        std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o755)).unwrap();
        eprintln!("skipped: permissions do not bind this user");
        return;
    }
    let e = err(save(&path, &refs(&b), &BTreeMap::new()));
    std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(
        e.contains("cannot create `") && e.contains("ermission denied"),
        "{e}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), before);
    assert_eq!(entries(&sub), vec!["w.safetensors"]);
}

/// Saves the test blobs and returns the file's bytes and the header's end.
fn saved(dir: &Path) -> (std::path::PathBuf, Vec<u8>, usize) {
    let path = dir.join("w.safetensors");
    save(&path, &refs(&blobs()), &BTreeMap::new()).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    (path, bytes, 8 + n)
}

#[test]
fn truncated_or_grown_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes, header_end) = saved(dir.path());
    let name = path.display().to_string();
    let cases: [(&[u8], &str); 4] = [
        (&bytes[..bytes.len() - 4], "tensor data after the header is"),
        (&bytes[..header_end - 10], "header claims"),
        (&bytes[..5], "has 5 bytes, fewer than the 8"),
        (
            &[bytes.as_slice(), &[0u8; 4]].concat(),
            "truncated or corrupted",
        ),
    ];
    for (content, want) in cases {
        std::fs::write(&path, content).unwrap();
        let e = err(load(&path));
        assert!(
            e.contains(&format!("`{name}` is not a valid safetensors file")),
            "{e}"
        );
        assert!(e.contains(want), "{want}: {e}");
    }
}

#[test]
fn flipped_bytes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes, header_end) = saved(dir.path());
    // A value bit in the data.
    let mut data_flip = bytes.clone();
    data_flip[header_end + 9] ^= 0x10;
    std::fs::write(&path, &data_flip).unwrap();
    let e = err(load(&path));
    assert!(
        e.contains(&format!("`{}`: checksum mismatch", path.display())),
        "{e}"
    );
    assert!(
        e.contains("the header records crc32m:") && e.contains("the file is corrupted"),
        "{e}"
    );

    // A tensor's name in the header: still valid JSON, another name.
    let header = String::from_utf8(bytes[8..header_end].to_vec()).unwrap();
    let at = 8 + header.find("conv1.1").unwrap() + 6;
    let mut name_flip = bytes.clone();
    name_flip[at] = b'2';
    std::fs::write(&path, &name_flip).unwrap();
    assert!(err(load(&path)).contains("checksum mismatch"));

    // A brace of the header: not JSON any more.
    let mut json_flip = bytes;
    json_flip[8] = b'[';
    std::fs::write(&path, &json_flip).unwrap();
    let e = err(load(&path));
    assert!(
        e.contains("its header is not valid safetensors JSON"),
        "{e}"
    );
}

/// A file as numpy's or PyTorch's `safetensors` writes it: no checksum.
fn foreign(path: &Path, dtype: Dtype, metadata: Option<HashMap<String, String>>) {
    let values: Vec<f64> = vec![1.0, -2.5, 3.25, 0.125, 9.0, -7.5];
    let bytes: Vec<u8> = match dtype {
        Dtype::F32 => values
            .iter()
            .flat_map(|&v| (v as f32).to_le_bytes())
            .collect(),
        _ => values.iter().flat_map(|&v| v.to_le_bytes()).collect(),
    };
    let view = TensorView::new(dtype, vec![2, 3], &bytes).unwrap();
    let file = safetensors::serialize([("fc.0", view)], metadata).unwrap();
    std::fs::write(path, file).unwrap();
}

#[test]
fn files_without_checksum_are_accepted_if_f32() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("np.safetensors");
    foreign(&path, Dtype::F32, None);
    let t = load(&path).unwrap();
    assert!(t.metadata.is_empty());
    assert_eq!(t.tensors["fc.0"].shape, vec![2, 3]);
    assert_eq!(
        t.tensors["fc.0"].data,
        vec![1.0, -2.5, 3.25, 0.125, 9.0, -7.5]
    );

    // PyTorch's save_file records `format: pt`.
    let pt = HashMap::from([("format".to_string(), "pt".to_string())]);
    foreign(&path, Dtype::F32, Some(pt));
    assert_eq!(load(&path).unwrap().metadata["format"], "pt");

    foreign(&path, Dtype::F64, None);
    let e = err(load(&path));
    assert!(
        e.contains("tensor `fc.0` in `") && e.contains("stored as F64, expected F32"),
        "{e}"
    );

    // A later netrun format is not guessed at.
    let v2 = HashMap::from([("format".to_string(), "netrun-v2".to_string())]);
    foreign(&path, Dtype::F32, Some(v2));
    let e = err(load(&path));
    assert!(
        e.contains("format `netrun-v2` is not one this netrun reads (netrun-v1)"),
        "{e}"
    );
}

/// conv (weights + bias), ip1 (weights + bias), ip2 sharing ip1's weights.
const NET: &str = r#"
layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 2 dim: 1 dim: 4 dim: 4 } } }
layer { name: "conv" type: "Convolution" bottom: "x" top: "c"
        convolution_param { num_output: 2 kernel_size: 3 } }
layer { name: "ip1" type: "InnerProduct" bottom: "c" top: "a"
        param { name: "shared" } inner_product_param { num_output: 3 } }
layer { name: "ip2" type: "InnerProduct" bottom: "c" top: "b"
        param { name: "shared" } inner_product_param { num_output: 3 bias_term: false } }
"#;

fn net() -> Net {
    Net::new(build(NET, Phase::Train).unwrap(), 1).unwrap()
}

fn tensors(pairs: Vec<(&str, Vec<usize>)>) -> weights::Tensors {
    let mut t = weights::Tensors {
        path: "w.safetensors".into(),
        ..Default::default()
    };
    for (i, (name, shape)) in pairs.into_iter().enumerate() {
        let n: usize = shape.iter().product();
        let data = (0..n).map(|j| (i * 100 + j) as f32).collect();
        t.tensors
            .insert(name.to_string(), weights::Tensor { shape, data });
    }
    t
}

#[test]
fn net_params_lists_owned_blobs_in_layer_order() {
    let net = net();
    let names: Vec<String> = net_params(&net).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, vec!["conv.0", "conv.1", "ip1.0", "ip1.1"]);
    let ids: Vec<usize> = net_params(&net).into_iter().map(|(_, p)| p).collect();
    assert_eq!(ids, (0..net.params.len()).collect::<Vec<_>>());
    let ip2 = net.graph.node("ip2").unwrap();
    assert_eq!(net.param_ids[ip2], vec![ids[2]], "ip2 uses ip1's weights");
}

#[test]
fn apply_copies_matches_and_reports_missing_and_unused() {
    let mut net = net();
    let t = tensors(vec![
        ("conv.0", vec![2, 1, 3, 3]),
        ("ip1.1", vec![3]),
        ("ip2.0", vec![3, 8]), // the shared weights under the sharer's name
        ("fc9.0", vec![4]),
    ]);
    let before_conv_bias = net.params[1].data().to_vec();
    let report = apply(&mut net, &t, ApplyOptions::default()).unwrap();
    assert_eq!(
        report,
        LoadReport {
            loaded: vec!["conv.0".into(), "ip1.0".into(), "ip1.1".into()],
            missing: vec!["conv.1".into()],
            unused: vec!["fc9.0".into()],
        }
    );
    assert_eq!(net.params[0].data(), t.tensors["conv.0"].data.as_slice());
    assert_eq!(net.params[2].data(), t.tensors["ip2.0"].data.as_slice());
    assert_eq!(net.params[3].data(), t.tensors["ip1.1"].data.as_slice());
    assert_eq!(net.params[1].data(), before_conv_bias.as_slice());

    // The owner's name wins over a sharer's.
    let both = tensors(vec![("ip1.0", vec![3, 8]), ("ip2.0", vec![3, 8])]);
    let report = apply(&mut net, &both, ApplyOptions::default()).unwrap();
    assert_eq!(report.loaded, vec!["ip1.0"]);
    assert_eq!(report.unused, vec!["ip2.0"]);
    assert_eq!(net.params[2].data(), both.tensors["ip1.0"].data.as_slice());
}

#[test]
fn apply_refuses_shape_mismatches_and_missing_params_without_copying() {
    let mut net = net();
    let before: Vec<Vec<f32>> = net.params.iter().map(|p| p.data().to_vec()).collect();
    let t = tensors(vec![
        ("conv.0", vec![2, 1, 3, 3]),
        ("conv.1", vec![3]),
        ("ip2.0", vec![8, 3]),
    ]);
    let e = err(apply(&mut net, &t, ApplyOptions::default()));
    assert!(
        e.contains("tensor `conv.1` in `w.safetensors` has shape 3, but the net's `conv.1` is 2"),
        "{e}"
    );
    assert!(
        e.contains("tensor `ip2.0` (for `ip1.0`, which it shares) in `w.safetensors` has shape 8x3, but the net's `ip1.0` is 3x8"),
        "{e}"
    );
    let after: Vec<Vec<f32>> = net.params.iter().map(|p| p.data().to_vec()).collect();
    assert_eq!(after, before, "nothing copied");

    let t = tensors(vec![("conv.0", vec![2, 1, 3, 3]), ("conv1.1", vec![2])]);
    let e = err(apply(&mut net, &t, ApplyOptions { require_all: true }));
    assert_eq!(
        e,
        "`w.safetensors` has no tensor for the net's `conv.1`, `ip1.0`, `ip1.1`; it has `conv1.1` that the net does not use"
    );
    let after: Vec<Vec<f32>> = net.params.iter().map(|p| p.data().to_vec()).collect();
    assert_eq!(after, before, "nothing copied");
}

#[test]
fn a_saved_net_loads_back_into_a_fresh_net() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("snap.safetensors");
    let mut a = net();
    for (i, p) in a.params.iter_mut().enumerate() {
        p.data_mut()
            .iter_mut()
            .enumerate()
            .for_each(|(j, v)| *v = (i * 10 + j) as f32 * 0.1);
    }
    let named: Vec<(String, &Blob)> = net_params(&a)
        .into_iter()
        .map(|(n, p)| (n, &a.params[p]))
        .collect();
    save(&path, &named, &BTreeMap::new()).unwrap();
    let mut b = Net::new(build(NET, Phase::Train).unwrap(), 99).unwrap();
    let report = apply(
        &mut b,
        &load(&path).unwrap(),
        ApplyOptions { require_all: true },
    )
    .unwrap();
    assert_eq!(report.loaded.len(), 4);
    assert!(report.missing.is_empty() && report.unused.is_empty());
    for (pa, pb) in a.params.iter().zip(&b.params) {
        assert_eq!(pa.data(), pb.data());
    }
}
