//! Products with a small batch m, as fully-connected layers make them
//! (C m×n ← alpha·op(A)·op(B) + beta·C, row-major).
//! The `gemm` crate turns a row-major C into a column-major one by swapping
//! the operands, which for these shapes makes it pack the big weight matrix
//! or walk it with a row-sized stride at every step; on SphereFace's fc5
//! (batch 32, 21504 → 512) one thread ran y = x·Wᵀ in 15.7 ms and dx = dy·W in
//! 22 ms that way, 5.7 ms and 9.1 ms with the layouts chosen here.

use super::{gemm_strided, View, ViewMut};
use rayon::prelude::*;

/// Batch sizes up to which the reoriented paths are used (measured better up to
/// here for every shape tried; the crate's own order wins again by m = 256).
const SMALL_M: usize = 64;
/// Columns of B per panel in [`wide_b`]: a k×256 panel stays in L2 for k up to ~1000.
const COLS: usize = 256;
/// Elements of C below which the transposition stays on one thread.
const PAR_MIN: usize = 1 << 16;

/// Runs the product when its shape is one of: 2 ≤ m ≤ 64, op(B) = Bᵀ and n ≥ 2m
/// ([`column_major_c`]); 16 ≤ m ≤ 64, op(B) = B, n ≥ 4096 and k ≥ 256 ([`wide_b`]).
/// `a_view` is op(A) (m×k); B is row-major. Returns false (nothing done) otherwise.
#[allow(clippy::too_many_arguments)]
pub(super) fn try_gemm(
    threads: usize,
    trans_b: bool,
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a_view: View,
    b: &[f32],
    beta: f32,
    c: &mut [f32],
) -> bool {
    if (2..=SMALL_M).contains(&m) && trans_b && n >= 2 * m {
        column_major_c(threads, m, n, k, alpha, a_view, b, beta, c);
    } else if (16..=SMALL_M).contains(&m) && !trans_b && n >= 16 * COLS && k >= COLS {
        wide_b(threads, m, n, k, alpha, a_view, b, beta, c);
    } else {
        return false;
    }
    true
}

/// v ← x + beta·v, where beta = 0 ignores v's previous contents.
#[inline]
fn combine(beta: f32, v: &mut f32, x: f32) {
    *v = if beta == 0.0 { x } else { x + beta * *v };
}

/// op(B) = Bᵀ with B n×k row-major (y = x·Wᵀ): the product is written
/// column-major into a scratch C, which keeps B as the crate's unpacked,
/// contiguous right-hand side, then transposed into C.
#[allow(clippy::too_many_arguments)]
fn column_major_c(
    threads: usize,
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: View,
    b: &[f32],
    beta: f32,
    c: &mut [f32],
) {
    let mut t = vec![0.0f32; m * n];
    let b = View {
        data: b,
        rs: 1,
        cs: k,
    };
    let tv = ViewMut {
        data: &mut t,
        rs: 1,
        cs: m,
    };
    gemm_strided(threads, m, n, k, alpha, a, b, 0.0, tv);
    // c[i, j] ← t[j·m + i] (+ beta·c[i, j]); t (m·n floats) sits in L2.
    let row = |(i, ci): (usize, &mut [f32])| {
        for (v, tj) in ci.iter_mut().zip(t.chunks_exact(m)) {
            combine(beta, v, tj[i]);
        }
    };
    if threads > 1 && m * n >= PAR_MIN {
        c[..m * n].par_chunks_mut(n).enumerate().for_each(row);
    } else {
        c[..m * n].chunks_mut(n).enumerate().for_each(row);
    }
}

/// B k×n row-major with n wide (dx = dy·W): each task copies a k×[`COLS`]
/// column panel of B into contiguous memory and multiplies against it there,
/// instead of the crate stepping down B's 4n-byte rows.
#[allow(clippy::too_many_arguments)]
fn wide_b(
    threads: usize,
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: View,
    b: &[f32],
    beta: f32,
    c: &mut [f32],
) {
    // Row segments of C per column block, so that blocks are written in parallel.
    let mut blocks: Vec<Vec<&mut [f32]>> = (0..n.div_ceil(COLS)).map(|_| Vec::new()).collect();
    for row in c[..m * n].chunks_mut(n) {
        for (j, seg) in row.chunks_mut(COLS).enumerate() {
            blocks[j].push(seg);
        }
    }
    let block = |(panel, out): &mut (Vec<f32>, Vec<f32>), (j, rows): (usize, Vec<&mut [f32]>)| {
        let (lo, w) = (j * COLS, rows[0].len());
        panel.clear();
        for p in 0..k {
            panel.extend_from_slice(&b[p * n + lo..p * n + lo + w]);
        }
        out.clear();
        out.resize(m * w, 0.0);
        let pv = View {
            data: panel,
            rs: w,
            cs: 1,
        };
        let ov = ViewMut {
            data: out,
            rs: w,
            cs: 1,
        };
        gemm_strided(1, m, w, k, alpha, a, pv, 0.0, ov);
        for (seg, o) in rows.into_iter().zip(out.chunks(w)) {
            seg.iter_mut()
                .zip(o)
                .for_each(|(v, &x)| combine(beta, v, x));
        }
    };
    if threads > 1 {
        blocks
            .into_par_iter()
            .enumerate()
            .for_each_init(|| (Vec::new(), Vec::new()), block);
    } else {
        let mut buffers = (Vec::new(), Vec::new());
        for item in blocks.into_iter().enumerate() {
            block(&mut buffers, item);
        }
    }
}
