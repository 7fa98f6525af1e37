//! The compute backend boundary: every matrix product and thread setting goes
//! through here, so a device backend (cudarc) can sit beside the CPU one.
//!
//! CPU products use the pure-Rust `gemm` crate (AVX-512 kernels with the
//! `x86-v4` feature), which measured faster than Debian's OpenBLAS on
//! SphereFace-20's conv shapes; see `benches/`.

pub mod copy;
mod cpu;
pub mod im2col;
mod skinny;

pub use cpu::{axpy, dot, gemm, gemm_serial, gemm_strided, gemv, scal, View, ViewMut};

use std::sync::atomic::{AtomicUsize, Ordering};
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

/// Compute threads in use: `set_threads`, else `NETRUN_THREADS`, else all cores.
pub fn threads() -> usize {
    match THREADS.load(Ordering::Relaxed) {
        0 => {
            let n = std::env::var("NETRUN_THREADS")
                .ok()
                .and_then(|v| v.parse::<usize>().ok())
                .filter(|&n| n > 0)
                .unwrap_or_else(available_cores);
            set_threads(n);
            n
        }
        n => n,
    }
}

fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
