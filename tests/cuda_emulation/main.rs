//! The CUDA kernels' numerics, checked on the CPU: every `src/**/*.cu` file is
//! compiled with g++ against `emulation.h` (threads as fibers, blocks in turn),
//! each kernel is launched over seeded inputs in both thread orders, and its
//! output is compared with the layer's CPU path through the library API
//! (forward and backward). See `harness.rs` for the compile and launch, and the
//! README's GPU section for what this does and does not show.

mod bvlc_losses;
#[path = "../common/cu_files.rs"]
mod cu_files;
mod existing;
mod face_forks;
mod general_contrastive;
mod harness;
mod losses;
mod margins;
mod normalize;
mod solver;
mod triplet;

use cu_files::cu_files;
use harness::{available, Dev, Module, Order, ORDERS};
use netrun::blob::Blob;
use netrun::layers::Layer;
use netrun::testing::{backward, forward, setup, uniform_blob};
use std::path::PathBuf;

/// Kernel names (`extern "C" __global__ void name(`) in a source file.
fn kernels_in(code: &str) -> Vec<String> {
    code.split("extern \"C\" __global__ void ")
        .skip(1)
        .map(|rest| rest.split('(').next().unwrap().trim().to_string())
        .collect()
}

/// Every kernel of every `.cu` file is launched by some test here: its name
/// appears as a string literal in this folder's test sources.
#[test]
fn every_kernel_has_an_emulation_test() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let files = cu_files(&root.join("src"));
    let tests: String = std::fs::read_dir(root.join("tests/cuda_emulation"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    let mut missing = Vec::new();
    for f in &files {
        let code = std::fs::read_to_string(f).unwrap();
        let names = kernels_in(&code);
        assert!(!names.is_empty(), "{} declares no kernels", f.display());
        for name in names {
            if !tests.contains(&format!("\"{name}\"")) {
                missing.push(format!("{} in {}", name, f.display()));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "kernels without an emulation test: {missing:?}"
    );
}

/// Each layer with kernels says so on its page: a `## GPU` section naming the
/// `.cu` file (loss.cu, the losses' shared final sum, has no layer of its own).
#[test]
fn every_layer_page_names_its_kernels() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let files = cu_files(&root.join("src/layers"));
    for f in files {
        let stem = f.file_stem().unwrap().to_string_lossy().into_owned();
        if stem == "loss" {
            continue;
        }
        let rel = f
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let page = std::fs::read_to_string(root.join(format!("layers/{stem}.md"))).unwrap();
        let gpu = page
            .split("\n## ")
            .find(|s| s.starts_with("GPU\n"))
            .unwrap_or_else(|| panic!("layers/{stem}.md has no `## GPU` section"));
        assert!(
            gpu.contains(&format!("`{rel}`")),
            "layers/{stem}.md's GPU section does not name {rel}"
        );
    }
}

/// Every `.cu` file compiles for the emulation, so a kernel that is not
/// launched by a test still builds.
#[test]
fn every_cu_file_compiles_for_the_host() {
    if !available() {
        return;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let files = cu_files(&root.join("src"));
    for f in files {
        let rel = f
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        Module::get(Box::leak(rel.into_boxed_str()));
    }
}

#[test]
fn the_shared_declaration_rewrite_keeps_type_name_and_comment() {
    let code = "  extern __shared__ double acc[];  // 4 · blockDim\nint x;";
    assert_eq!(
        harness::rewrite_dynamic_shared(code),
        "  double* acc = emu::dynamic_shared<double>();  // 4 · blockDim\nint x;\n"
    );
}

/// A barrier reached by only some threads of a block is reported, not hung on.
#[test]
fn a_divergent_barrier_is_an_error() {
    if !available() {
        return;
    }
    let m = Module::get("src/layers/softmax.cu");
    type Softmax = unsafe extern "C" fn(*const f32, *mut f32, i64, i64);
    let k: Softmax = m.kernel("softmax_forward");
    let x = Dev::new(&[1.0f32; 8]);
    let mut y = Dev::filled(8, 0.0f32);
    let (xp, yp) = (x.c(), y.p());
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        m.launch(1, 4, 16, Order::Forward, || unsafe {
            // Thread 3 skips the kernel (and its barriers) altogether.
            if netrun_thread_x(&m) != 3 {
                k(xp, yp, 8, 1)
            }
        })
    }));
    let e = r.unwrap_err();
    let text = e.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(text.contains("__syncthreads"), "{text}");
}

/// threadIdx.x of the running emulated thread (read through the library's global).
fn netrun_thread_x(m: &Module) -> u32 {
    let idx: *const u32 = m.symbol("threadIdx");
    unsafe { *idx }
}

/// Runs `check` in both thread orders (skips without g++).
fn each_order(check: impl Fn(Order)) {
    if !available() {
        return;
    }
    for order in ORDERS {
        // Shown with a failure's message: which order broke it.
        eprintln!("threads of a block in {order:?} order");
        check(order);
    }
}

/// A layer's CPU forward and backward for `bottoms`, with top diffs drawn from
/// `seed`: returns (tops, bottoms, params) after both passes.
fn cpu_pass(
    l: &mut dyn Layer,
    mut bottoms: Vec<Blob>,
    params: Option<Vec<Blob>>,
    seed: u64,
) -> (Vec<Blob>, Vec<Blob>, Vec<Blob>) {
    let (mut tops, filled) = setup(l, &bottoms, 5);
    let mut params = params.unwrap_or(filled);
    forward(l, &mut bottoms, &mut tops, &mut params);
    for (t, top) in tops.iter_mut().enumerate() {
        let r = uniform_blob(top.shape(), -1.0, 1.0, seed + t as u64);
        top.diff_mut().copy_from_slice(r.data());
    }
    let down: Vec<bool> = (0..bottoms.len()).map(|i| l.can_backprop_to(i)).collect();
    params.iter_mut().for_each(Blob::zero_diff);
    backward(l, &mut bottoms, &mut tops, &mut params, &down);
    (tops, bottoms, params)
}
