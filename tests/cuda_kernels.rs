//! The GPU backend's checks that need no GPU: every `.cu` source is
//! registered and compiles with NVRTC (`.ci/run` puts the NVRTC wheel's
//! library on the loader path and sets NETRUN_REQUIRE_NVRTC, so there a
//! missing NVRTC fails instead of skipping), and a machine without a driver
//! gets one clear error.
#![cfg(feature = "cuda")]

use netrun::backend::cuda::kernels::{self, SOURCES};
use netrun::backend::cuda::{Gpu, GpuError, Library};
use std::path::PathBuf;

#[path = "common/cu_files.rs"]
mod cu_files;

#[test]
fn every_cu_file_is_registered_beside_its_rust_file() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut found: Vec<String> = cu_files::cu_files(&root.join("src"))
        .iter()
        .map(|p| {
            p.strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    found.sort();
    let mut registered: Vec<String> = SOURCES.iter().map(|s| s.path.to_string()).collect();
    registered.sort();
    assert_eq!(found, registered, "src/**/*.cu and kernels::SOURCES differ");
    for s in SOURCES {
        let cu = root.join(s.path);
        let dir = cu.parent().unwrap();
        // The Rust file of the same stem: `<stem>.rs` beside it, or the module
        // folder `<stem>/` the file sits in.
        let beside = dir.join(format!("{}.rs", s.stem));
        let folder = dir.file_name().is_some_and(|d| d == s.stem) && dir.join("mod.rs").exists();
        assert!(
            beside.exists() || folder,
            "{} has no Rust file of stem `{}`",
            s.path,
            s.stem
        );
    }
}

/// NVRTC gets each file behind the shared prelude, with a `#line` directive so
/// its messages count the file's own lines.
#[test]
fn every_source_is_the_prelude_then_its_file_from_line_one() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let prelude = std::fs::read_to_string(root.join("src/backend/cuda/prelude.cuh")).unwrap();
    for s in SOURCES {
        let file = std::fs::read_to_string(root.join(s.path)).unwrap();
        assert_eq!(
            s.code,
            format!("{prelude}#line 1 \"{}\"\n{file}", s.path),
            "{}",
            s.path
        );
    }
}

#[test]
fn every_kernel_compiles_with_nvrtc_for_sm90() {
    if !Library::Nvrtc.is_present() {
        assert!(
            std::env::var_os("NETRUN_REQUIRE_NVRTC").is_none(),
            "NETRUN_REQUIRE_NVRTC is set but libnvrtc.so.13 cannot be loaded"
        );
        println!("skipped: no NVRTC (libnvrtc.so.13) on the loader path");
        return;
    }
    let mut failures = Vec::new();
    for source in SOURCES {
        if let Err(e) = kernels::compile(source, "compute_90") {
            failures.push(e.to_string());
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn opening_a_gpu_without_a_driver_names_what_is_missing() {
    if Library::Driver.is_present() {
        println!("skipped: this machine has a CUDA driver");
        return;
    }
    match Gpu::open(0) {
        Err(e @ GpuError::MissingLibraries(_)) => {
            let text = e.to_string();
            assert!(text.contains("no CUDA driver found"), "{text}");
            assert!(text.contains("libcuda.so.1"), "{text}");
        }
        Err(other) => panic!("expected MissingLibraries, got {other}"),
        Ok(_) => panic!("opened a GPU without a driver"),
    }
    assert!(matches!(
        netrun::backend::cuda::devices(),
        Err(GpuError::MissingLibraries(_))
    ));
}

#[test]
fn a_kernel_that_does_not_compile_is_reported_with_nvrtcs_log() {
    if !Library::Nvrtc.is_present() {
        println!("skipped: no NVRTC (libnvrtc.so.13) on the loader path");
        return;
    }
    let broken = kernels::KernelSource {
        stem: "broken",
        path: "src/layers/broken.cu",
        code: "extern \"C\" __global__ void f(float* y) { y[0] = not_declared; }",
    };
    let e = kernels::compile(&broken, "compute_90")
        .unwrap_err()
        .to_string();
    assert!(e.contains("src/layers/broken.cu"), "{e}");
    assert!(e.contains("not_declared"), "{e}");
}

#[test]
fn every_kernel_loads_on_the_first_gpu() {
    if !Library::Driver.is_present() {
        println!("skipped: no CUDA device (no driver)");
        return;
    }
    let gpu = Gpu::open(0).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(gpu.load_kernels().unwrap(), SOURCES.len());
    gpu.synchronize().unwrap();
}
