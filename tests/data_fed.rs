//! MemoryData (fed through the library's Net API and through `netrun forward --inputs`),
//! HDF5Data reading files that h5py wrote (contiguous, chunked, gzip/shuffle-compressed,
//! float and double), HDF5Output's files read back by h5py, and bad HDF5 input.

mod common;

use common::python::run_script;
use netrun::forward::{run, ForwardOptions};
use netrun::graph::{BuildOptions, Graph};
use netrun::net::Net;
use netrun::netdef::{parse_net_str, Phase};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

fn net(text: &str) -> Net {
    let graph = common::build(text, Phase::Train).unwrap_or_else(|e| panic!("{e}"));
    Net::new(graph, 1).unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

const MEMORY: &str = "layer { name: \"mem\" type: \"MemoryData\" top: \"data\" top: \"label\" \
                      memory_data_param { batch_size: 2 channels: 1 height: 2 width: 2 } }\n";

#[test]
fn memory_data_serves_handed_samples_batch_by_batch() {
    let mut n = net(MEMORY);
    assert_eq!(n.blob("data").unwrap().shape(), &[2, 1, 2, 2]);
    assert_eq!(n.blob("label").unwrap().shape(), &[2]);
    let e = n.forward().unwrap_err().to_string();
    assert!(e.contains("MemoryData layer `mem` has no data"), "{e}");
    let data: Vec<f32> = (0..16).map(|v| v as f32).collect();
    n.set_memory_data("mem", data.clone(), vec![10.0, 11.0, 12.0, 13.0])
        .unwrap();
    for (batch, first) in [(0, 0), (1, 2), (2, 0)] {
        n.forward().unwrap();
        assert_eq!(
            n.blob("data").unwrap().data(),
            &data[first * 4..first * 4 + 8],
            "batch {batch}"
        );
        assert_eq!(
            n.blob("label").unwrap().data(),
            &[10.0 + first as f32, 11.0 + first as f32]
        );
    }
    let e = n
        .set_memory_data("mem", vec![0.0; 12], vec![0.0; 3])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("3 samples is not a multiple of the batch size 2"),
        "{e}"
    );
    let e = n
        .set_memory_data("mem", vec![0.0; 7], vec![0.0; 2])
        .unwrap_err()
        .to_string();
    assert!(e.contains("7 values for 2 labels"), "{e}");
    let e = n
        .set_memory_data("nope", vec![], vec![])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("no layer `nope` (its MemoryData layers: mem)"),
        "{e}"
    );
}

#[test]
fn memory_data_takes_its_tensors_from_forward_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let net_file = dir.path().join("net.prototxt");
    std::fs::write(
        &net_file,
        format!("{MEMORY}layer {{ name: \"s\" type: \"Scale\" bottom: \"data\" top: \"y\" scale_param {{ filler {{ type: \"constant\" value: 2 }} }} }}\n"),
    )
    .unwrap();
    let x: Vec<f32> = (0..12).map(|v| v as f32 * 0.5).collect();
    let inputs = dir.path().join("x.safetensors");
    netrun::weights::save_f32(
        &inputs,
        &[
            ("data", &[3, 1, 2, 2], &x),
            ("label", &[3], &[4.0, 5.0, 6.0]),
        ],
        &BTreeMap::new(),
    )
    .unwrap();
    let opts = ForwardOptions {
        net: net_file.clone(),
        weights: None,
        inputs: inputs.clone(),
        top_diff: None,
        backward: false,
        phase: Phase::Train,
        output: dir.path().join("out.safetensors"),
        extra_data_dirs: vec![],
    };
    run(&opts).unwrap_or_else(|e| panic!("{e}"));
    let out = netrun::weights::load(&opts.output).unwrap();
    assert_eq!(out.tensors["data"].shape, vec![3, 1, 2, 2]);
    assert_eq!(out.tensors["data"].data, x);
    assert_eq!(out.tensors["label"].data, vec![4.0, 5.0, 6.0]);
    let y: Vec<f32> = x.iter().map(|v| v * 2.0).collect();
    assert_eq!(out.tensors["y"].data, y);
    // A tensor whose sample shape is not the layer's.
    netrun::weights::save_f32(
        &inputs,
        &[("data", &[3, 2, 2, 1], &x), ("label", &[3], &[0.0; 3])],
        &BTreeMap::new(),
    )
    .unwrap();
    let e = run(&opts).unwrap_err().to_string();
    assert!(
        e.contains("has shape 3x2x2x1 but memory_data_param gives samples of 1x2x2"),
        "{e}"
    );
    netrun::weights::save_f32(&inputs, &[("data", &[3, 1, 2, 2], &x)], &BTreeMap::new()).unwrap();
    let e = run(&opts).unwrap_err().to_string();
    assert!(
        e.contains("has no tensor `label` for the top of MemoryData layer `mem`"),
        "{e}"
    );
}

fn hdf5_net(list: &Path, extra: &str) -> String {
    format!(
        "layer {{ name: \"h\" type: \"HDF5Data\" top: \"data\" top: \"label\" \
         hdf5_data_param {{ source: \"{}\" batch_size: 4 {extra} }} }}\n",
        list.display()
    )
}

#[test]
fn hdf5_data_reads_h5py_files_in_order_across_files() {
    let dir = tempfile::tempdir().unwrap();
    let written: Value = serde_json::from_str(&run_script(
        "bvlc_files.py",
        &[Path::new("h5write"), dir.path()],
    ))
    .unwrap();
    let list = dir.path().join("list.txt");
    let mut n = net(&hdf5_net(&list, ""));
    assert_eq!(n.blob("data").unwrap().shape(), &[4, 2, 3]);
    assert_eq!(n.blob("label").unwrap().shape(), &[4]);
    // Rows in order: a0..a4, b0..b2, then a again.
    let mut rows: Vec<(Vec<f32>, f32)> = Vec::new();
    for f in ["a", "b"] {
        let (d, l) = (floats(&written[f]["data"]), floats(&written[f]["label"]));
        for (r, &lab) in l.iter().enumerate() {
            rows.push((d[r * 6..(r + 1) * 6].to_vec(), lab));
        }
    }
    for batch in 0..3 {
        n.forward().unwrap();
        for i in 0..4 {
            let (d, l) = &rows[(batch * 4 + i) % 8];
            assert_eq!(
                &n.blob("data").unwrap().data()[i * 6..(i + 1) * 6],
                &d[..],
                "batch {batch} row {i}"
            );
            assert_eq!(
                n.blob("label").unwrap().data()[i],
                *l,
                "batch {batch} row {i}"
            );
        }
    }
    // Shuffled: one pass (two batches) still gives every row once.
    let mut n = net(&hdf5_net(&list, "shuffle: true"));
    let mut seen = Vec::new();
    for _ in 0..2 {
        n.forward().unwrap();
        seen.extend_from_slice(n.blob("label").unwrap().data());
    }
    seen.sort_by(f32::total_cmp);
    let mut all: Vec<f32> = rows.iter().map(|r| r.1).collect();
    all.sort_by(f32::total_cmp);
    assert_eq!(seen, all);
}

#[test]
fn hdf5_output_writes_files_h5py_reads() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.h5");
    let text = format!(
        "layer {{ name: \"x\" type: \"Input\" top: \"x\" top: \"l\" input_param {{ shape {{ dim: 2 dim: 3 dim: 2 }} shape {{ dim: 2 }} }} }}\n\
         layer {{ name: \"o\" type: \"HDF5Output\" bottom: \"x\" bottom: \"l\" hdf5_output_param {{ file_name: \"{}\" }} }}\n",
        out.display()
    );
    let mut n = net(&text);
    let x: Vec<f32> = (0..12).map(|v| v as f32 / 3.0 - 1.0).collect();
    n.blob_mut("x").unwrap().data_mut().copy_from_slice(&x);
    n.blob_mut("l")
        .unwrap()
        .data_mut()
        .copy_from_slice(&[3.0, -1.0]);
    n.forward().unwrap();
    let read: Value =
        serde_json::from_str(&run_script("bvlc_files.py", &[Path::new("h5read"), &out])).unwrap();
    assert_eq!(read["data"]["shape"], serde_json::json!([2, 3, 2]));
    assert_eq!(read["data"]["dtype"], "float32");
    assert_eq!(floats(&read["data"]["values"]), x);
    assert_eq!(read["label"]["shape"], serde_json::json!([2]));
    assert_eq!(floats(&read["label"]["values"]), vec![3.0, -1.0]);
    // And netrun's reader reads it back as HDF5Data would.
    let back = netrun::data::hdf5::read(&out, &["data", "label"]).unwrap();
    assert_eq!(back[0].shape, vec![2, 3, 2]);
    assert_eq!(back[0].data, x);
}

/// The error of building an HDF5Data net whose list names `files`.
fn list_error(dir: &Path, files: &[&str], tops: &str) -> String {
    let list = dir.join("bad_list.txt");
    std::fs::write(&list, files.join("\n")).unwrap();
    let text = format!(
        "layer {{ name: \"h\" type: \"HDF5Data\" {tops} hdf5_data_param {{ source: \"{}\" batch_size: 2 }} }}",
        list.display()
    );
    let def = parse_net_str("t.prototxt", &text).unwrap();
    match Graph::build(&def, &BuildOptions::for_phase(Phase::Train)) {
        Ok(_) => panic!("expected an error for {files:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_hdf5_input_is_an_error_naming_file_and_dataset() {
    let dir = tempfile::tempdir().unwrap();
    run_script("bvlc_files.py", &[Path::new("h5write"), dir.path()]);
    let a = dir.path().join("a.h5");
    let tops = "top: \"data\" top: \"label\"";
    let e = list_error(dir.path(), &["a.h5", "missing.h5"], tops);
    assert!(
        e.contains("bad_list.txt:2: cannot find HDF5 file `missing.h5`"),
        "{e}"
    );
    let e = list_error(dir.path(), &["a.h5"], "top: \"data\" top: \"labels\"");
    assert!(
        e.contains("a.h5`, dataset `labels`: cannot open it") && e.contains("label"),
        "{e}"
    );
    std::fs::write(dir.path().join("junk.h5"), b"not an HDF5 file at all").unwrap();
    let e = list_error(dir.path(), &["junk.h5"], tops);
    assert!(e.contains("junk.h5` is not a readable HDF5 file"), "{e}");
    let e = list_error(dir.path(), &["a.h5"], "top: \"data\" top: \"unused\"");
    assert!(
        e.contains("dataset `unused` has 3 rows but `data` has 5"),
        "{e}"
    );
    let e = list_error(dir.path(), &[], tops);
    assert!(e.contains("names no file"), "{e}");
    // Truncated and byte-damaged copies: errors or (where the damage missed what is read)
    // values, never a panic or an abort.
    let bytes = std::fs::read(&a).unwrap();
    let damaged = dir.path().join("damaged.h5");
    std::fs::write(&damaged, &bytes[..bytes.len() / 2]).unwrap();
    assert!(netrun::data::hdf5::read(&damaged, &["data"]).is_err());
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..300 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let mut b = bytes.clone();
        let at = (state % b.len() as u64) as usize;
        b[at] ^= (state >> 32) as u8 | 1;
        std::fs::write(&damaged, &b).unwrap();
        if let Ok(ds) = netrun::data::hdf5::read(&damaged, &["data", "label"]) {
            assert_eq!(ds[0].data.len(), ds[0].shape.iter().product::<usize>());
        }
    }
}

#[test]
fn hdf5_data_checks_without_files_through_input_shape() {
    let text = "layer { name: \"h\" type: \"HDF5Data\" top: \"data\" top: \"label\" \
                hdf5_data_param { source: \"/nonexistent/train.txt\" batch_size: 8 } }";
    let def = parse_net_str("t.prototxt", text).unwrap();
    let Err(e) = Graph::build(&def, &BuildOptions::for_phase(Phase::Train)) else {
        panic!("expected an error without the list");
    };
    let e = e.to_string();
    assert!(
        e.contains("cannot open HDF5 file list `/nonexistent/train.txt`")
            && e.contains("--input-shape data="),
        "{e}"
    );
    let mut opts = BuildOptions::for_phase(Phase::Train);
    opts.context.input_shapes.insert("data".into(), vec![3, 4]);
    let g = Graph::build(&def, &opts).unwrap();
    let shapes: Vec<_> = g.blobs.iter().map(|b| b.shape.clone().unwrap()).collect();
    assert_eq!(shapes, vec![vec![8, 3, 4], vec![8]]);
}
