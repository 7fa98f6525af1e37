//! Chunked im2col: the column matrices of S samples side by side in one
//! matrix col (C/g·kh·kw·g × S·Ho·Wo), column s·Ho·Wo + p for sample s, position p,
//! so that for each group
//!   Y (O × S·Ho·Wo) = W · col,   dW += dY · colᵀ,   dcol = Wᵀ · dY,
//! is one GEMM wide enough to keep every thread near peak. Per-sample GEMMs have
//! only Ho·Wo columns, which for SphereFace's late stages (14×12, 7×6) leaves
//! the GEMM kernel mostly packing and the weight gradient's inner dimension tiny.
//! Y and dY are gathered to / scattered from the batch's N×O×Ho×Wo layout.

use super::kernels::{split_rows, with_scratch, Plan, Scratch};
use crate::backend::copy::copy;
use crate::backend::im2col::{col2im_pitched, im2col_pitched, Window};
use crate::backend::{gemm_strided, View, ViewMut};
use rayon::prelude::*;
use std::cell::RefCell;

/// Floats of one column buffer: sets S (16 MiB, a few times the L2 of the cores).
const COL_BUDGET: usize = 4 << 20;

thread_local! {
    /// col, Y/dY and dcol of one chunk, reused across layers and iterations.
    static CHUNK: Scratch = const { RefCell::new([Vec::new(), Vec::new(), Vec::new()]) };
}

/// C ← A·B + beta·C on `threads` threads; operands are (data, row stride, col stride).
#[allow(clippy::too_many_arguments)]
fn mm_wide(
    threads: usize,
    (m, n, k): (usize, usize, usize),
    a: (&[f32], usize, usize),
    b: (&[f32], usize, usize),
    beta: f32,
    c: (&mut [f32], usize, usize),
) {
    let view = |(data, rs, cs)| View { data, rs, cs };
    let (data, rs, cs) = c;
    gemm_strided(
        threads,
        m,
        n,
        k,
        1.0,
        view(a),
        view(b),
        beta,
        ViewMut { data, rs, cs },
    );
}

impl Plan {
    /// Samples per chunk: as many as fit the column budget, at least one.
    pub fn chunk_len(&self, batch: usize) -> usize {
        let per_sample = self.window.col_rows() * self.window.col_cols();
        (COL_BUDGET / per_sample.max(1)).clamp(1, batch.max(1))
    }

    /// col ← the S samples of `x` side by side; channel ranges run in parallel
    /// since each owns a contiguous block of rows.
    fn fill_col(&self, threads: usize, x: &[f32], samples: usize, col: &mut [f32]) {
        let w = &self.window;
        let (hw, taps, plane) = (w.col_cols(), w.kernel[0] * w.kernel[1], w.height * w.width);
        let (in_len, pitch) = (w.channels * plane, samples * hw);
        split_rows(
            threads,
            w.channels,
            col,
            taps * pitch,
            &mut [],
            0,
            |chans, rows, _| {
                let sub = Window {
                    channels: chans.len(),
                    ..*w
                };
                for s in 0..samples {
                    let image =
                        &x[s * in_len + chans.start * plane..s * in_len + chans.end * plane];
                    im2col_pitched(&sub, image, &mut rows[s * hw..], pitch);
                }
            },
        );
    }

    /// y (S × O × Ho·Wo) = conv(x) + bias for the S samples of `x`.
    pub fn forward_chunk(
        &self,
        threads: usize,
        w: &[f32],
        bias: Option<&[f32]>,
        x: &[f32],
        y: &mut [f32],
    ) {
        let hw = self.window.col_cols();
        let out_len = self.outputs * hw;
        let samples = y.len() / out_len;
        let n = samples * hw;
        let (cg, og) = self.per_group();
        let k = cg * self.taps();
        with_scratch(
            &CHUNK,
            [self.window.col_rows() * n, self.outputs * n, 0],
            |col, wide, _| {
                self.fill_col(threads, x, samples, col);
                for g in 0..self.group {
                    mm_wide(
                        threads,
                        (og, n, k),
                        (&w[g * og * k..], k, 1),
                        (&col[g * k * n..], n, 1),
                        0.0,
                        (&mut wide[g * og * n..], n, 1),
                    );
                }
                let wide: &[f32] = wide;
                y.par_chunks_mut(out_len).enumerate().for_each(|(s, ys)| {
                    for (o, line) in ys.chunks_mut(hw).enumerate() {
                        let src = &wide[o * n + s * hw..o * n + (s + 1) * hw];
                        let b = bias.map_or(0.0, |b| b[o]);
                        line.iter_mut().zip(src).for_each(|(v, &r)| *v = r + b);
                    }
                });
            },
        );
    }

    /// dW += ∂L/∂W and, when given, dx = ∂L/∂x for the S samples of `x`.
    pub fn backward_chunk(
        &self,
        threads: usize,
        w: &[f32],
        x: &[f32],
        dy: &[f32],
        dw: &mut [f32],
        dx: Option<&mut [f32]>,
    ) {
        let hw = self.window.col_cols();
        let out_len = self.outputs * hw;
        let samples = dy.len() / out_len;
        let n = samples * hw;
        let (cg, og) = self.per_group();
        let k = cg * self.taps();
        let col_len = self.window.col_rows() * n;
        let dcol_len = if dx.is_some() { col_len } else { 0 };
        with_scratch(
            &CHUNK,
            [col_len, self.outputs * n, dcol_len],
            |col, wide, dcol| {
                self.fill_col(threads, x, samples, col);
                // dY side by side; output-channel ranges own contiguous rows of it.
                split_rows(
                    threads,
                    self.outputs,
                    wide,
                    n,
                    &mut [],
                    0,
                    |outs, rows, _| {
                        for (i, row) in rows.chunks_mut(n).enumerate() {
                            let o = outs.start + i;
                            for (s, dst) in row.chunks_mut(hw).enumerate() {
                                copy(dst, &dy[s * out_len + o * hw..s * out_len + (o + 1) * hw]);
                            }
                        }
                    },
                );
                for g in 0..self.group {
                    mm_wide(
                        threads,
                        (og, k, n),
                        (&wide[g * og * n..], n, 1),
                        (&col[g * k * n..], 1, n),
                        1.0,
                        (&mut dw[g * og * k..], k, 1),
                    );
                }
                let Some(dx) = dx else { return };
                for g in 0..self.group {
                    mm_wide(
                        threads,
                        (k, n, og),
                        (&w[g * og * k..], 1, k),
                        (&wide[g * og * n..], n, 1),
                        0.0,
                        (&mut dcol[g * k * n..], n, 1),
                    );
                }
                let dcol: &[f32] = dcol;
                let in_len = self.window.channels * self.window.height * self.window.width;
                dx.par_chunks_mut(in_len)
                    .enumerate()
                    .for_each(|(s, image)| {
                        col2im_pitched(&self.window, &dcol[s * hw..], n, image);
                    });
            },
        );
    }
}
