//! The device-ready core in a build without CUDA: `solver_mode: GPU` and
//! `--gpu` are refused with how to build with CUDA, every layer falls back to
//! its CPU path (and says so), `netrun time` shows no device column, and blob
//! values read as ndarray views.

use netrun::blob::Blob;
use netrun::timing::{render, Timings};
use netrun::train::{train_command, TrainOptions};
use std::path::Path;
use std::process::Command;

#[test]
fn explicit_gpu_solver_mode_is_refused_with_its_location_and_the_cuda_build() {
    // The published full caffe-face schedule says `solver_mode: GPU` (line 25).
    let solver = Path::new("nets/caffe-face/mnist_solver.prototxt");
    let err = train_command(solver, None, &[], TrainOptions::default())
        .unwrap_err()
        .to_string();
    if cfg!(feature = "cuda") {
        assert!(err.contains("CUDA backend is not implemented"), "{err}");
    } else {
        assert!(err.contains("built without CUDA"), "{err}");
        assert!(
            err.contains("cargo build --release --features cuda"),
            "{err}"
        );
    }
    assert!(err.contains("mnist_solver.prototxt:25:"), "{err}");
    assert!(err.contains("--cpu"), "{err}");
}

#[test]
fn time_refuses_gpu_without_a_device_backend() {
    let out = Command::new(env!("CARGO_BIN_EXE_netrun"))
        .args([
            "time",
            "nets/caffe-face/mnist_train_test.prototxt",
            "--gpu",
            "0",
        ])
        .args(["--input-shape", "data=1,28,28", "--iterations", "1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--gpu 0"), "{err}");
    if !cfg!(feature = "cuda") {
        assert!(err.contains("--features cuda"), "{err}");
    }
}

#[test]
fn time_report_marks_cpu_fallbacks_only_in_device_mode() {
    let mut t = Timings {
        layers: vec![
            ("conv1".into(), "Convolution".into(), 2.0, 3.0),
            ("loss".into(), "SoftmaxWithLoss".into(), 0.5, 0.5),
        ],
        forward_ms: 2.5,
        backward_ms: 3.5,
        iterations: 1,
        // 4 MFLOP forward in 2 ms: 2 GFLOP/s; the loss's FLOPs unknown.
        flops: vec![4_000_000, 0],
        fallback: Vec::new(),
    };
    let cpu = render(&t, None);
    let conv = cpu.lines().nth(2).unwrap();
    assert!(conv.trim_end().ends_with("83.3%       2.0"), "{cpu}");
    assert!(cpu.lines().nth(1).unwrap().ends_with("fwd GF/s"), "{cpu}");
    assert!(
        !cpu.contains("device") && !cpu.contains("fallback"),
        "{cpu}"
    );
    assert!(cpu.contains("Average Forward pass: 2.5000 ms."), "{cpu}");
    t.fallback = vec![false, true];
    let gpu = render(&t, None);
    let lines: Vec<&str> = gpu.lines().collect();
    assert!(lines[1].ends_with("device"), "{gpu}");
    assert!(!lines[2].contains("fallback"), "{gpu}");
    assert!(lines[3].ends_with("CPU fallback"), "{gpu}");
}

#[test]
fn every_layer_falls_back_to_its_cpu_path_for_now() {
    let net = netrun::netdef::parse_net_str(
        "n",
        "layer { name: \"in\" type: \"Input\" top: \"x\" input_param { shape { dim: 2 dim: 3 } } }\n\
         layer { name: \"r\" type: \"ReLU\" bottom: \"x\" top: \"y\" }",
    )
    .unwrap();
    let graph = netrun::graph::Graph::build(&net, &Default::default()).unwrap();
    let net = netrun::net::Net::new(graph, 1).unwrap();
    assert_eq!(net.cpu_fallback_layers(), vec![0, 1]);
}

#[test]
fn blob_values_read_and_write_as_ndarray_views() {
    let mut b = Blob::from_data(&[2, 3, 2], (0..12).map(|v| v as f32).collect());
    // Row-major: element [n, c, w] is n·6 + c·2 + w.
    assert_eq!(b.data_view()[[1, 2, 0]], 10.0);
    assert_eq!(b.data_view().shape(), &[2, 3, 2]);
    b.diff_view_mut()[[0, 1, 1]] = 5.0;
    assert_eq!(b.diff()[3], 5.0);
    b.data_view_mut()[[0, 0, 1]] = -1.0;
    assert_eq!(b.data()[1], -1.0);
    // A Split's shared values stay shared until written.
    let mut top = Blob::new(&[2, 3, 2]);
    top.share_data(&b);
    assert_eq!(top.data_view(), b.data_view());
    top.data_view_mut()[[0, 0, 0]] = 7.0;
    assert_eq!((top.data()[0], b.data()[0]), (7.0, 0.0));
}

/// The head protocol of a blob's storage (Caffe's SyncedMemory), with the
/// device buffer standing in until the cudarc backend lands.
#[cfg(feature = "cuda")]
#[test]
fn blob_heads_follow_the_last_writer() {
    use netrun::backend::cuda::Head;
    let mut b = Blob::from_data(&[4], vec![1.0, 2.0, 3.0, 4.0]);
    assert_eq!(b.data_head(), Head::Host);
    assert_eq!(b.device_data(), &[1.0, 2.0, 3.0, 4.0]);
    assert_eq!(b.data_head(), Head::Synced);
    b.device_data_mut()[0] = 9.0;
    assert_eq!(b.data_head(), Head::Device);
    // A host write brings the device values down first.
    b.data_mut()[1] = 8.0;
    assert_eq!(b.data(), &[9.0, 8.0, 3.0, 4.0]);
    assert_eq!(b.data_head(), Head::Host);
    assert_eq!(b.device_data(), &[9.0, 8.0, 3.0, 4.0]);
    // Diffs likewise; sync_to_host before a CPU-path read.
    b.device_diff_mut()[3] = 5.0;
    assert_eq!(b.diff_head(), Head::Device);
    b.sync_to_host();
    assert_eq!((b.diff()[3], b.diff_head()), (5.0, Head::Synced));
    // Split sharing: the top sees the bottom's values on both sides and
    // copies on write without touching the bottom.
    let mut top = Blob::new(&[4]);
    top.share_data(&b);
    assert_eq!(top.device_data(), &[9.0, 8.0, 3.0, 4.0]);
    top.device_data_mut()[0] = 0.0;
    top.sync_to_host();
    assert_eq!(top.data()[0], 0.0);
    assert_eq!(b.data()[0], 9.0);
}

#[test]
fn device_lists_gpus_or_says_why_it_cannot() {
    let out = Command::new(env!("CARGO_BIN_EXE_netrun"))
        .arg("device")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    if cfg!(feature = "cuda") {
        // A CUDA build lists devices where a driver is found and names the
        // missing driver elsewhere.
        let out_text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && out_text.contains("GPU 0:")
                || !out.status.success() && err.contains("no CUDA driver found"),
            "{out_text}{err}"
        );
    } else {
        assert!(!out.status.success());
        assert!(err.contains("netrun device"), "{err}");
        assert!(err.contains("--features cuda"), "{err}");
    }
}
