//! The compute backend boundary: every matrix product and thread setting goes
//! through here, so a device backend (cudarc) can sit beside the CPU one.
//!
//! CPU products use the pure-Rust `gemm` crate (AVX-512 kernels with the
//! `x86-v4` feature) by default; `--features openblas` sends every product
//! whose operands BLAS can address to the system OpenBLAS instead (see
//! `openblas.rs`). The default is the faster of the two on SphereFace-20's
//! 3×3 convolution shapes, row-major `gemm`, GFLOP/s as median (best) of 12
//! back-to-back rounds of `cargo bench --bench sphereface -- gemm/`
//! (`NETRUN_THREADS=1|2`) on a shared 2-core AVX-512 machine (one core's
//! f32 FMA peak ≈ 166), gemm 0.19 against Debian's OpenBLAS 0.3.21 (SkylakeX
//! kernels, pthreads):
//!
//! | M×K×N          | gemm, 1 thread | OpenBLAS, 1 | gemm, 2 threads | OpenBLAS, 2 |
//! |----------------|----------------|-------------|-----------------|-------------|
//! | 64×576×2688    | 112 (123)      | 87 (107)    | 91 (111)        | 83 (197)    |
//! | 128×1152×672   | 136 (149)      | 120 (131)   | 120 (148)       | 98 (237)    |
//! | 256×2304×168   | 140 (165)      | 125 (137)   | 138 (159)       | 93 (217)    |
//! | 512×4608×42    | 113 (138)      | 80 (89)     | 95 (134)        | 50 (119)    |
//!
//! One thread is what most of training uses (a batch is split over threads by
//! sample, or a Winograd convolution by transform point, each running
//! single-threaded products), and there `gemm` leads on every shape in every
//! round. Two-thread numbers depend on whether the other core
//! is free: `gemm` rarely beat its own one-thread speed, OpenBLAS reached
//! 1.8× of its own in the quiet rounds but halved in the busy ones.

pub mod cpu;
#[cfg(feature = "cuda")]
pub mod cuda;

pub use cpu::{axpy, dot, gemm, gemm_serial, gemm_strided, gemv, scal, View, ViewMut};
// The layers' paths to the CPU helpers they call directly.
pub use cpu::isa::{isa, set_isa, Isa};
pub use cpu::{copy, im2col};

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Once;

static THREADS: AtomicUsize = AtomicUsize::new(0);
static POOL: Once = Once::new();

/// Sets the number of compute threads (GEMM and parallel loops). The first
/// call wins for the loop pool; later calls still change GEMM's split.
/// `0` means all cores.
pub fn set_threads(n: usize) {
    let n = if n == 0 { available_cores() } else { n };
    THREADS.store(n, Ordering::Relaxed);
    POOL.call_once(|| {
        // A pool already built by someone else is fine: its size then rules loops.
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global();
    });
}

/// Compute threads in use: as [`set_threads`] set them, else all cores (the
/// command line reads `--threads` and `NETRUN_THREADS` and calls `set_threads`).
pub fn threads() -> usize {
    match THREADS.load(Ordering::Relaxed) {
        0 => {
            let n = available_cores();
            set_threads(n);
            n
        }
        n => n,
    }
}

/// When convolutions use Winograd's minimal filtering (3×3 and 5×5, stride 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WinogradPolicy {
    /// Never: blob-for-blob comparisons with Caffe's im2col (Winograd rounds
    /// differently, about 1e-6 relative for 3×3).
    Never,
    /// Wherever the geometry allows (tests reach it with few channels).
    Always,
    /// Where the channel counts and tiles make it pay (the default).
    Auto,
}

static WINOGRAD: AtomicU8 = AtomicU8::new(WinogradPolicy::Auto as u8);

/// Sets when convolutions use Winograd (the command line passes `NETRUN_WINOGRAD`).
pub fn set_winograd(policy: WinogradPolicy) {
    WINOGRAD.store(policy as u8, Ordering::Relaxed);
}

/// The Winograd policy in force.
pub fn winograd() -> WinogradPolicy {
    match WINOGRAD.load(Ordering::Relaxed) {
        0 => WinogradPolicy::Never,
        1 => WinogradPolicy::Always,
        _ => WinogradPolicy::Auto,
    }
}

/// 0: 3×3 Winograd layers choose their tile side by batch; else the side forced.
static WINOGRAD_SIDE: AtomicUsize = AtomicUsize::new(0);

/// Forces the output tile side of 3×3 Winograd layers: `Some(2)` for
/// F(2×2, 3×3), `Some(4)` for F(4×4, 3×3) (tests reach both; the command line
/// passes `NETRUN_WINOGRAD_TILE`); `None` chooses by the batch's tiles.
pub fn set_winograd_side(side: Option<usize>) {
    WINOGRAD_SIDE.store(side.unwrap_or(0), Ordering::Relaxed);
}

/// The forced 3×3 Winograd tile side, if any.
pub fn winograd_side() -> Option<usize> {
    match WINOGRAD_SIDE.load(Ordering::Relaxed) {
        0 => None,
        side => Some(side),
    }
}

/// Why a device run (`what`: `--gpu 0`, `solver_mode: GPU`) cannot start in
/// this build, and what to do instead.
pub fn no_gpu_message(what: &str) -> String {
    if cfg!(feature = "cuda") {
        format!(
            "{what}: this build has the `cuda` feature, but the CUDA backend is not \
             implemented yet: layers do not run on the GPU (`netrun device` lists the \
             GPUs); run on the CPU"
        )
    } else {
        format!(
            "{what}: this netrun was built without CUDA; build it with \
             `cargo build --release --features cuda`, or run on the CPU"
        )
    }
}

/// The matrix-product backend compiled in, as reports name it.
#[cfg(not(feature = "openblas"))]
pub fn name() -> String {
    "gemm crate (pure Rust)".to_string()
}

/// The matrix-product backend compiled in, as reports name it (OpenBLAS's
/// own configuration line: version, kernel target, thread limit).
#[cfg(feature = "openblas")]
pub fn name() -> String {
    format!("OpenBLAS ({})", cpu::openblas_config().trim())
}

fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
