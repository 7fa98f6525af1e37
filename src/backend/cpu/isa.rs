//! Which instruction set netrun's own CPU kernels are compiled for at run
//! time. The crate targets baseline x86-64, so the kernels' lane loops would
//! get SSE2; [`with_isa`] runs a kernel body inside a function compiled for
//! AVX2+FMA or AVX-512 when the CPU has it. [`set_isa`] caps the level, so
//! that a machine with AVX-512 can also run (and test) the AVX2 and baseline
//! paths. Rust never contracts `a·b + c` into a fused multiply-add on its own,
//! so every level computes the same floating-point operations in the same
//! order: the levels differ in speed, not in results.
//!
//! The matrix products of the `gemm` crate (and OpenBLAS) choose their
//! kernels by their own CPU detection; the cap does not reach them.

use std::sync::atomic::{AtomicU8, Ordering};

/// A dispatch level, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isa {
    /// Baseline x86-64 (SSE2) or the target's baseline elsewhere: what the
    /// compiler vectorises without run-time target features.
    Scalar = 0,
    /// AVX2 with FMA: 8 f32 lanes.
    Avx2 = 1,
    /// AVX-512F: 16 f32 lanes and masked loads and stores.
    Avx512 = 2,
}

impl Isa {
    /// Every level, lowest first.
    pub const ALL: [Isa; 3] = [Isa::Scalar, Isa::Avx2, Isa::Avx512];

    /// The name the command line and reports use (`scalar`, `avx2`, `avx512`).
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }

    /// The level named `name` (as [`Isa::name`] writes it, any case).
    pub fn parse(name: &str) -> Option<Isa> {
        Isa::ALL
            .into_iter()
            .find(|i| i.name().eq_ignore_ascii_case(name))
    }

    /// The highest level this CPU runs.
    pub fn detected() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return Isa::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Isa::Avx2;
            }
        }
        Isa::Scalar
    }

    /// Every level this CPU runs, highest first.
    pub fn supported() -> Vec<Isa> {
        let top = Isa::detected();
        Isa::ALL.into_iter().rev().filter(|&i| i <= top).collect()
    }
}

impl std::fmt::Display for Isa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// No cap set: the detected level rules.
const UNSET: u8 = u8::MAX;
static CAP: AtomicU8 = AtomicU8::new(UNSET);

/// Caps the kernels at `isa` (a lower level than the CPU has forces the
/// slower path, for checking it). A level above what the CPU runs is refused
/// with a message naming both. Takes effect for kernels that start after it.
pub fn set_isa(isa: Isa) -> crate::Result<()> {
    let top = Isa::detected();
    if isa > top {
        return Err(crate::Error::Other(format!(
            "instruction set `{isa}` is not available on this CPU (it runs up to `{top}`); \
             choose one of: {}",
            Isa::supported()
                .iter()
                .map(|i| i.name())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    CAP.store(isa as u8, Ordering::Relaxed);
    Ok(())
}

/// The level the kernels run at: the cap [`set_isa`] set, else the detected one.
#[inline]
pub fn isa() -> Isa {
    match CAP.load(Ordering::Relaxed) {
        0 => Isa::Scalar,
        1 => Isa::Avx2,
        2 => Isa::Avx512,
        _ => Isa::detected(),
    }
}

/// Runs `f` compiled for the level [`isa`] names. Callers mark `f`
/// `#[inline(always)]` so that its body is compiled inside the
/// target-feature function rather than called from it.
#[inline(always)]
pub fn with_isa<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    match isa() {
        Isa::Avx512 => {
            #[target_feature(enable = "avx512f,avx2,fma")]
            unsafe fn wide<R>(f: impl FnOnce() -> R) -> R {
                f()
            }
            // SAFETY: `isa()` never exceeds the detected level, so AVX-512F is present.
            return unsafe { wide(f) };
        }
        Isa::Avx2 => {
            #[target_feature(enable = "avx2,fma")]
            unsafe fn wide<R>(f: impl FnOnce() -> R) -> R {
                f()
            }
            // SAFETY: as above, AVX2 and FMA are present.
            return unsafe { wide(f) };
        }
        Isa::Scalar => {}
    }
    f()
}
