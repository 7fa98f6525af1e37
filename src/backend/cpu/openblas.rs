//! OpenBLAS matrix products (cargo feature `openblas`, system library:
//! Debian's `libopenblas-dev`, found through pkg-config by `openblas-src`).
//!
//! Every strided product C ← alpha·A·B + beta·C goes to `cblas_sgemm`. An
//! operand is a BLAS matrix when one of its strides is 1 and the other (the
//! leading dimension ld) spans at least a full row, ld ≥ width: with column
//! stride 1 it is passed as stored (`NoTrans`, ld = row stride), with row
//! stride 1 as its transpose stored row-major (`Trans`, ld = column stride). A
//! column-major C is handled by computing Cᵀ = Bᵀ·Aᵀ instead. Products with
//! any other operand are left to the `gemm` crate, which takes any strides.
//! Copying such an operand to a contiguous buffer first was measured and
//! lost: convolution reads a tap of W[o][c][tap] with strides (C·taps, taps),
//! so each per-sample, per-tap copy gathers across all of W (9.4 MB at 512
//! channels) for a product of only 54 grid columns; the copies took 40 % of a
//! SphereFace-20 training step.
//!
//! `cblas_sgemm` comes from `cblas-sys`, the binding maintained alongside
//! `blas-src`/`openblas-src`, so its 14-argument prototype and the CBLAS enum
//! values are not re-typed here. The thread controls are OpenBLAS extensions
//! that no binding crate exports, hence the small `extern` block.

use super::{View, ViewMut};
use cblas_sys::{cblas_sgemm, CBLAS_LAYOUT, CBLAS_TRANSPOSE};
use std::ffi::{c_char, c_int, CStr};
use std::sync::atomic::{AtomicUsize, Ordering};

// `blas-src` selects OpenBLAS as the BLAS provider; naming it makes rustc
// link the crate and with it `-lopenblas`.
use blas_src as _;

extern "C" {
    fn openblas_set_num_threads(n: c_int);
    fn openblas_get_config() -> *const c_char;
}

/// OpenBLAS's own description: version, target core, threading model.
pub fn config() -> String {
    // SAFETY: returns a pointer to a static NUL-terminated string.
    unsafe { CStr::from_ptr(openblas_get_config()) }
        .to_string_lossy()
        .into_owned()
}

/// Thread count last given to OpenBLAS (0 = never set).
static OPENBLAS_THREADS: AtomicUsize = AtomicUsize::new(0);

/// Makes OpenBLAS run its next products on `threads` threads.
///
/// The count is a process-wide global in Debian's (pthreads) OpenBLAS, set
/// per call here. That is safe because a net runs layer by layer and the two
/// kinds of call never overlap in time: a threaded product (`threads` > 1) is
/// made from the driving thread between parallel regions, while products made
/// inside rayon loops all ask for 1 thread. Concurrent calls from one region
/// therefore all store the same value, and a threaded product never finds the
/// count lowered under it. OpenBLAS's workers add nothing while rayon's run.
/// Where calls do overlap (tests on parallel threads) a race changes only how
/// many threads a product is split over, never its result.
fn use_threads(threads: usize) {
    if OPENBLAS_THREADS.swap(threads, Ordering::Relaxed) != threads {
        let n = c_int::try_from(threads).unwrap_or(c_int::MAX);
        // SAFETY: plain FFI call; OpenBLAS clamps n to its compiled maximum.
        unsafe { openblas_set_num_threads(n) };
    }
}

/// The same matrix read as its transpose.
fn transposed(v: View) -> View {
    View {
        data: v.data,
        rs: v.cs,
        cs: v.rs,
    }
}

/// Leading dimension of a rows × cols operand stored rows-first (`lead` =
/// stride between rows, `step` = between elements of a row), when BLAS can
/// address it: unit step and ld ≥ cols. A single row never applies its ld,
/// which then only has to meet CBLAS's ld ≥ cols check.
fn leading(rows: usize, cols: usize, lead: usize, step: usize) -> Option<c_int> {
    if step == 1 && (rows == 1 || lead >= cols) {
        c_int::try_from(lead.max(cols)).ok()
    } else {
        None
    }
}

/// An operand as `cblas_sgemm` takes it in row-major layout: transpose flag
/// and ld, or `None` when its strides do not fit BLAS.
fn operand(v: &View, rows: usize, cols: usize) -> Option<(CBLAS_TRANSPOSE, c_int)> {
    leading(rows, cols, v.rs, v.cs)
        .map(|ld| (CBLAS_TRANSPOSE::CblasNoTrans, ld))
        .or_else(|| leading(cols, rows, v.cs, v.rs).map(|ld| (CBLAS_TRANSPOSE::CblasTrans, ld)))
}

/// C ← alpha·A·B + beta·C through `cblas_sgemm` on `threads` threads; C is
/// handed back untouched when an operand is not BLAS-expressible. Operands
/// are non-empty and bounds-checked by the caller.
#[allow(clippy::too_many_arguments)]
pub fn try_gemm<'c>(
    threads: usize,
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: View,
    b: View,
    beta: f32,
    c: ViewMut<'c>,
) -> Result<(), ViewMut<'c>> {
    // Row-major C as is; column-major C as Cᵀ (n×m) = Bᵀ·Aᵀ.
    let (m, n, a, b, ldc) = if let Some(ld) = leading(m, n, c.rs, c.cs) {
        (m, n, a, b, ld)
    } else if let Some(ld) = leading(n, m, c.cs, c.rs) {
        (n, m, transposed(b), transposed(a), ld)
    } else {
        return Err(c);
    };
    let (Some((ta, lda)), Some((tb, ldb)), Ok(mi), Ok(ni), Ok(ki)) = (
        operand(&a, m, k),
        operand(&b, k, n),
        c_int::try_from(m),
        c_int::try_from(n),
        c_int::try_from(k),
    ) else {
        return Err(c);
    };
    use_threads(threads);
    // SAFETY: the caller checked that every index the strides reach lies in
    // its slice, and `operand`/`leading` pass exactly those strides (ld is
    // only raised on single rows, where it is never applied); `c` is an
    // exclusive borrow, so BLAS writes alias neither input.
    unsafe {
        cblas_sgemm(
            CBLAS_LAYOUT::CblasRowMajor,
            ta,
            tb,
            mi,
            ni,
            ki,
            alpha,
            a.data.as_ptr(),
            lda,
            b.data.as_ptr(),
            ldb,
            beta,
            c.data.as_mut_ptr(),
            ldc,
        );
    }
    Ok(())
}
