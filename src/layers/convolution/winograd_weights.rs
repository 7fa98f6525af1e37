//! The kernel side of Winograd F(2×2, 3×3): U = G g Gᵀ from the weights, and
//! the weight gradient. The forward tile identity
//! Σᵢ y*ᵢ yᵢ = Σ_ξ (A y* Aᵀ)_ξ (G g Gᵀ)_ξ (Bᵀ d B)_ξ, read with dy in y*'s place
//! and differentiated in g, gives
//!   dW = Gᵀ [Σ_tiles (A dy Aᵀ) ⊙ (Bᵀ d B)] G,
//! the tile sum being 16 GEMMs N_ξ (O × C) = D_ξ (O × T) · V_ξ (T × C) with the
//! forward's input transform V, and the map back to 3×3 done once per batch.
//!   G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1].

// Index loops below walk a small matrix's columns across several arrays.
#![allow(clippy::needless_range_loop)]

use super::kernels::grown;
use super::winograd_tiles::{
    add, half, load, points, store, sub, with_avx512, Lanes, Shared, Winograd,
};
use super::winograd_tiles::{LANES, POINTS, STAGE};
use crate::backend::{gemm_strided, View, ViewMut};
use rayon::prelude::*;

/// G x for x = (x₀, x₁, x₂).
#[inline(always)]
fn g(x: [Lanes; 3]) -> [Lanes; 4] {
    let outer = add(x[0], x[2]);
    [x[0], half(add(outer, x[1])), half(sub(outer, x[1])), x[2]]
}

/// Gᵀ x for x = (x₀, x₁, x₂, x₃).
#[inline(always)]
fn gt(x: [Lanes; 4]) -> [Lanes; 3] {
    let (s, d) = (half(add(x[1], x[2])), half(sub(x[1], x[2])));
    [add(x[0], s), d, add(s, x[3])]
}

/// Runs `f(o, taps)` for every output channel o in parallel, `taps` holding
/// row o of W (C × 9) transposed to 9 rows of `pitch` ≥ C floats (zero past C).
fn per_output(w: &[f32], o: usize, c: usize, f: impl Fn(usize, &mut [f32], usize) + Sync) {
    let pitch = c.next_multiple_of(LANES);
    (0..o).into_par_iter().for_each(|oi| {
        STAGE.with(|cell| {
            let buf = &mut *cell.borrow_mut();
            let taps = grown(buf, 9 * pitch);
            for (q, tap) in taps.chunks_exact_mut(pitch).enumerate() {
                for (ci, t) in tap.iter_mut().enumerate() {
                    *t = if ci < c {
                        w[(oi * c + ci) * 9 + q]
                    } else {
                        0.0
                    };
                }
            }
            f(oi, taps, pitch)
        })
    });
}

/// U[ξ][o][c] = (G g Gᵀ)_ξ for W (O × C × 3 × 3). The data gradient's kernels,
/// rotated 180° with channel axes swapped, need no second transform: G J = P G
/// for the reversal J and P swapping G's rows 0 and 3, so
/// G rot(g) Gᵀ = P (G g Gᵀ) Pᵀ, which is U read at ξ' = (P i)·4 + P j.
pub fn transform_weights(w: &[f32], o: usize, c: usize, u: &mut [f32]) {
    let up = Shared(u[..POINTS * o * c].as_mut_ptr());
    per_output(w, o, c, |oi, taps, pitch| {
        with_avx512(
            #[inline(always)]
            || {
                for c0 in (0..c).step_by(LANES) {
                    let n = (c - c0).min(LANES);
                    let mut k = [[0.0; LANES]; 9];
                    for (q, lanes) in k.iter_mut().enumerate() {
                        *lanes = load(&taps[q * pitch + c0..], LANES);
                    }
                    // G g on columns, then Gᵀ on rows: (G g Gᵀ)[i][j].
                    let mut cols = [[[0.0; LANES]; 4]; 3];
                    for (j, col) in cols.iter_mut().enumerate() {
                        *col = g([k[j], k[3 + j], k[6 + j]]);
                    }
                    for i in 0..4 {
                        for (j, val) in g([cols[0][i], cols[1][i], cols[2][i]]).iter().enumerate() {
                            // SAFETY: (ξ, oi, c0..c0 + n) is written by this task only.
                            unsafe { store(up.at(((i * 4 + j) * o + oi) * c + c0), val, n) };
                        }
                    }
                }
            },
        )
    });
}

/// The point of U that the data gradient's ξ reads (see [`transform_weights`]).
pub fn rotated_point(xi: usize) -> usize {
    let p = |k: usize| [3, 1, 2, 0][k];
    p(xi / 4) * 4 + p(xi % 4)
}

impl Winograd {
    /// N_ξ (O × C) += D_ξ · V_ξ summed over the tiles of the samples of `x`
    /// and `dy`, with D = A dy Aᵀ of each 2×2 tile of dy; `n` holds 16·O·C.
    pub fn weight_gradient_sums(
        &self,
        x: &[f32],
        dy: &[f32],
        v: &mut [f32],
        d: &mut [f32],
        n: &mut [f32],
    ) {
        let (c, o) = (self.inputs, self.outputs);
        let t_all = dy.len() / (o * self.out[0] * self.out[1]) * self.tiles_per_sample();
        self.input_transform(x, v);
        self.gradient_transform(dy, d);
        let (v, d): (&[f32], &[f32]) = (v, d);
        n[..POINTS * o * c]
            .par_chunks_mut(o * c)
            .enumerate()
            .for_each(|(xi, nx)| self.point_weight_gemm(xi, d, v, t_all, nx));
    }

    /// N_ξ (O × C) += D_ξ (O × t) · V_ξ (t × C) for one point ξ, on this thread.
    pub(super) fn point_weight_gemm(
        &self,
        xi: usize,
        d: &[f32],
        v: &[f32],
        t: usize,
        nx: &mut [f32],
    ) {
        let (c, o) = (self.inputs, self.outputs);
        gemm_strided(
            1,
            o,
            c,
            t,
            1.0,
            View {
                data: &d[xi * t * o..],
                rs: 1,
                cs: o,
            },
            View {
                data: &v[xi * t * c..],
                rs: c,
                cs: 1,
            },
            1.0,
            ViewMut {
                data: nx,
                rs: c,
                cs: 1,
            },
        )
    }
}

/// dW[o][c] += Gᵀ N G (3×3) for every (o, c), N the 4×4 of `n[ξ][o][c]`.
pub fn weight_gradient_output(n: &[f32], o: usize, c: usize, dw: &mut [f32]) {
    let dwp = Shared(dw[..o * c * 9].as_mut_ptr());
    let pitch = c.next_multiple_of(LANES);
    (0..o).into_par_iter().for_each(|oi| {
        STAGE.with(|cell| {
            let buf = &mut *cell.borrow_mut();
            let taps = grown(buf, 9 * pitch);
            with_avx512(
                #[inline(always)]
                || {
                    for c0 in (0..c).step_by(LANES) {
                        let len = (c - c0).min(LANES);
                        let e = points(n, oi * c + c0, o * c, len);
                        // Gᵀ N on columns, then G on rows: (Gᵀ N G)[i][j].
                        let mut cols = [[[0.0; LANES]; 3]; 4];
                        for (j, col) in cols.iter_mut().enumerate() {
                            *col = gt([e[j], e[4 + j], e[8 + j], e[12 + j]]);
                        }
                        for i in 0..3 {
                            let row = gt([cols[0][i], cols[1][i], cols[2][i], cols[3][i]]);
                            for (j, val) in row.iter().enumerate() {
                                taps[(i * 3 + j) * pitch + c0..][..LANES].copy_from_slice(val);
                            }
                        }
                    }
                },
            );
            // SAFETY: row oi of dW (C × 9 floats) is written by this task only.
            let row = unsafe { std::slice::from_raw_parts_mut(dwp.at(oi * c * 9), c * 9) };
            for (ci, k) in row.chunks_exact_mut(9).enumerate() {
                for (q, kq) in k.iter_mut().enumerate() {
                    *kq += taps[q * pitch + ci];
                }
            }
        })
    });
}
