//! CPU kernels: BLAS-style level 1–3 routines on row-major f32 slices.
//!
//! Everything that runs on the CPU lives under here: the GEMM wrappers
//! (this file), the small-batch operand orders (`skinny.rs`), OpenBLAS,
//! vectorised copies, im2col/col2im, the convolution kernels (`conv/`:
//! per-sample plans, chunks, shifted windows, Winograd tile transforms) and
//! the AVX-512 helpers of the layers (`rows.rs`).

pub mod conv;
pub mod copy;
pub mod im2col;
pub mod isa;
#[cfg(feature = "openblas")]
mod openblas;
pub mod peak;
#[cfg(feature = "openblas")]
pub use openblas::config as openblas_config;
pub mod rows;
mod skinny;

use gemm::Parallelism;

/// C ← alpha·op(A)·op(B) + beta·C, row-major, as Caffe's `caffe_cpu_gemm`.
/// op(A) is m×k (A stored k×m when `trans_a`), op(B) is k×n (B stored n×k
/// when `trans_b`), C is m×n. `beta = 0` ignores C's previous contents.
#[allow(clippy::too_many_arguments)]
pub fn gemm(
    trans_a: bool,
    trans_b: bool,
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: &[f32],
    b: &[f32],
    beta: f32,
    c: &mut [f32],
) {
    let threads = crate::backend::threads();
    // Small products are faster on one thread than spread out.
    let threads = if m * n * k >= 64 * 64 * 64 {
        threads
    } else {
        1
    };
    gemm_on(threads, trans_a, trans_b, m, n, k, alpha, a, b, beta, c)
}

/// [`gemm`] on the calling thread only (for callers that parallelise outside).
#[allow(clippy::too_many_arguments)]
pub fn gemm_serial(
    trans_a: bool,
    trans_b: bool,
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: &[f32],
    b: &[f32],
    beta: f32,
    c: &mut [f32],
) {
    gemm_on(1, trans_a, trans_b, m, n, k, alpha, a, b, beta, c)
}

#[allow(clippy::too_many_arguments)]
fn gemm_on(
    threads: usize,
    trans_a: bool,
    trans_b: bool,
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: &[f32],
    b: &[f32],
    beta: f32,
    c: &mut [f32],
) {
    assert!(
        a.len() >= m * k && b.len() >= k * n && c.len() >= m * n,
        "gemm: operand too small"
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if beta == 0.0 {
            c[..m * n].fill(0.0);
        } else {
            c[..m * n].iter_mut().for_each(|v| *v *= beta);
        }
        return;
    }
    // One row of output against a row-major B is a matrix–vector product, which
    // the blocked GEMM handles poorly (fully-connected layers at batch 1).
    if m == 1 && trans_b && beta == 0.0 {
        gemv_rows(threads, n, k, alpha, b, a, &mut c[..n]);
        return;
    }
    // Element (i, p) of op(A) sits at i·rs + p·cs.
    let (a_rs, a_cs) = if trans_a { (1, m) } else { (k, 1) };
    let a_view = View {
        data: a,
        rs: a_rs,
        cs: a_cs,
    };
    // Other fully-connected shapes (small batch): see `skinny`.
    if skinny::try_gemm(threads, trans_b, m, n, k, alpha, a_view, b, beta, c) {
        return;
    }
    let (b_rs, b_cs) = if trans_b { (1, k) } else { (n, 1) };
    gemm_strided(
        threads,
        m,
        n,
        k,
        alpha,
        a_view,
        View {
            data: b,
            rs: b_rs,
            cs: b_cs,
        },
        beta,
        ViewMut {
            data: c,
            rs: n,
            cs: 1,
        },
    );
}

/// A matrix operand given by strides: element (i, j) sits at `data[i·rs + j·cs]`.
/// Lets convolution read shifted, overlapping windows of an image as a matrix
/// without copying them into a column buffer.
#[derive(Clone, Copy)]
pub struct View<'a> {
    pub data: &'a [f32],
    pub rs: usize,
    pub cs: usize,
}

/// Destination counterpart of [`View`].
pub struct ViewMut<'a> {
    pub data: &'a mut [f32],
    pub rs: usize,
    pub cs: usize,
}

/// Highest index an m×n strided operand reaches, plus one.
fn extent(rows: usize, cols: usize, rs: usize, cs: usize) -> usize {
    (rows - 1) * rs + (cols - 1) * cs + 1
}

/// C ← alpha·A·B + beta·C on strided operands (A m×k, B k×n, C m×n), on
/// `threads` threads. `beta = 0` ignores C's previous contents.
#[allow(clippy::too_many_arguments)]
pub fn gemm_strided(
    threads: usize,
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: View,
    b: View,
    beta: f32,
    c: ViewMut,
) {
    if m == 0 || n == 0 || k == 0 {
        assert!(k != 0, "gemm_strided: empty inner dimension");
        return;
    }
    assert!(
        a.data.len() >= extent(m, k, a.rs, a.cs)
            && b.data.len() >= extent(k, n, b.rs, b.cs)
            && c.data.len() >= extent(m, n, c.rs, c.cs),
        "gemm_strided: operand too small"
    );
    #[cfg(feature = "openblas")]
    let c = match openblas::try_gemm(threads, m, n, k, alpha, a, b, beta, c) {
        Ok(()) => return,
        Err(c) => c,
    };
    let parallelism = if threads > 1 {
        Parallelism::Rayon(threads)
    } else {
        Parallelism::None
    };
    // SAFETY: the assert bounds every index the strides reach; `c` is a
    // distinct mutable borrow, so it aliases neither `a` nor `b`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.data.as_mut_ptr(),
            c.cs as isize,
            c.rs as isize,
            beta != 0.0,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            beta,
            alpha,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// y ← alpha·A·x for row-major A (rows × cols), rows spread over `threads`.
/// Each row's dot product runs in 16 f32 lanes, added in f64 at the end.
fn gemv_rows(
    threads: usize,
    rows: usize,
    cols: usize,
    alpha: f32,
    a: &[f32],
    x: &[f32],
    y: &mut [f32],
) {
    use rayon::prelude::*;
    let x = &x[..cols];
    let dot_rows = |(yi, rows): (&mut [f32], &[f32])| {
        isa::with_isa(
            #[inline(always)]
            || dot_rows_at(yi, rows, x, alpha),
        )
    };
    let (y, a, block) = (&mut y[..rows], &a[..rows * cols], ROWS_AT_ONCE * cols);
    if threads > 1 && rows * cols >= 1 << 16 {
        let blocks = rows.div_ceil(ROWS_AT_ONCE);
        (y.par_chunks_mut(ROWS_AT_ONCE))
            .zip(a.par_chunks(block))
            .with_min_len(blocks.div_ceil(threads * 4))
            .for_each(dot_rows);
    } else {
        (y.chunks_mut(ROWS_AT_ONCE))
            .zip(a.chunks(block))
            .for_each(dot_rows);
    }
}

/// Rows whose dot products run side by side: they share each load of x, and
/// their 4·16 lanes are independent sums, where one row's 16 lanes would wait
/// on the latency of their own additions.
const ROWS_AT_ONCE: usize = 4;

/// y[r] ← alpha·(row r · x) for the (up to [`ROWS_AT_ONCE`]) rows of `rows`,
/// each in 16 f32 lanes added in f64 at the end: every row's sum is formed in
/// the same order as it would be alone.
#[inline(always)]
fn dot_rows_at(y: &mut [f32], rows: &[f32], x: &[f32], alpha: f32) {
    if let Ok(y) = <&mut [f32; ROWS_AT_ONCE]>::try_from(&mut *y) {
        return dot_rows_n(y, rows, x, alpha);
    }
    for (r, yr) in y.iter_mut().enumerate() {
        dot_rows_n::<1>(std::array::from_mut(yr), &rows[r * x.len()..], x, alpha);
    }
}

/// [`dot_rows_at`] for exactly `N` rows, whose sums stay in registers.
#[inline(always)]
fn dot_rows_n<const N: usize>(y: &mut [f32; N], rows: &[f32], x: &[f32], alpha: f32) {
    const LANES: usize = 16;
    let cols = x.len();
    let mut lanes = [[0.0f32; LANES]; N];
    let full = cols / LANES * LANES;
    for c0 in (0..full).step_by(LANES) {
        let v: &[f32; LANES] = x[c0..c0 + LANES].try_into().unwrap();
        for (r, acc) in lanes.iter_mut().enumerate() {
            let row: &[f32; LANES] = rows[r * cols + c0..][..LANES].try_into().unwrap();
            for l in 0..LANES {
                acc[l] += row[l] * v[l];
            }
        }
    }
    for (r, (yr, acc)) in y.iter_mut().zip(&lanes).enumerate() {
        let row = &rows[r * cols..][..cols];
        let tail: f64 = (row[full..].iter().zip(&x[full..]))
            .map(|(&p, &q)| p as f64 * q as f64)
            .sum();
        let sum: f64 = acc.iter().map(|&l| l as f64).sum::<f64>() + tail;
        *yr = alpha * sum as f32;
    }
}

/// y ← alpha·op(A)·x + beta·y, A m×n row-major (op(A) = Aᵀ when `trans`).
#[allow(clippy::too_many_arguments)]
pub fn gemv(
    trans: bool,
    m: usize,
    n: usize,
    alpha: f32,
    a: &[f32],
    x: &[f32],
    beta: f32,
    y: &mut [f32],
) {
    let (rows, cols) = if trans { (n, m) } else { (m, n) };
    // A matrix–vector product is a GEMM with one column.
    gemm(
        trans,
        false,
        rows,
        1,
        cols,
        alpha,
        a,
        x,
        beta,
        &mut y[..rows],
    );
}

/// y ← alpha·x + y.
pub fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    for (yi, &xi) in y.iter_mut().zip(x) {
        *yi += alpha * xi;
    }
}

/// x ← alpha·x.
pub fn scal(alpha: f32, x: &mut [f32]) {
    x.iter_mut().for_each(|v| *v *= alpha);
}

/// Σ xᵢ·yᵢ accumulated in f64.
pub fn dot(x: &[f32], y: &[f32]) -> f64 {
    x.iter().zip(y).map(|(&a, &b)| a as f64 * b as f64).sum()
}
