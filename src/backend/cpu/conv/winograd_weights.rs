//! The kernel side of Winograd F(m×m, r×r): U = G g Gᵀ from the weights, and
//! the weight gradient. The forward tile identity
//! Σᵢ y*ᵢ yᵢ = Σ_ξ (A y* Aᵀ)_ξ (G g Gᵀ)_ξ (Bᵀ d B)_ξ, read with dy in y*'s place
//! and differentiated in g, gives
//!   dW = Gᵀ [Σ_tiles (A dy Aᵀ) ⊙ (Bᵀ d B)] G,
//! the tile sum being α² GEMMs N_ξ (O × C) = D_ξ (O × T) · V_ξ (T × C) with the
//! forward's input transform V, and the map back to r×r done once per batch.

// Index loops below walk a small matrix's columns across several arrays.
#![allow(clippy::needless_range_loop)]

use super::kernels::grown;
use super::winograd_math::{load, store, Tile, TileKind, LANES, MAX_ALPHA};
use super::winograd_tiles::{by_tile, gather, with_isa, Shared, Winograd, STAGE};
use crate::backend::{gemm_strided, View, ViewMut};
use rayon::prelude::*;

/// Runs `f(row, taps, pitch)` for every row of U, in parallel by runs of
/// [`PANEL`] rows (one task writes a whole panel's cache lines). Rows are W's
/// outputs o, `taps` holding W[o] (C × r²) transposed to r² rows of `pitch` ≥ C
/// floats (zero past C); `rotated`, rows are W's inputs c, and `taps` holds
/// the kernels W[·][c] rotated 180°, O per row.
fn per_row(
    w: &[f32],
    [o, c, taps]: [usize; 3],
    rotated: bool,
    f: impl Fn(usize, &mut [f32], usize) + Sync,
) {
    let (rows, cols) = if rotated { (c, o) } else { (o, c) };
    let pitch = cols.next_multiple_of(LANES);
    (0..rows.div_ceil(PANEL)).into_par_iter().for_each(|panel| {
        STAGE.with(|cell| {
            let buf = &mut *cell.borrow_mut();
            let staged = grown(buf, taps * pitch);
            for row in panel * PANEL..rows.min((panel + 1) * PANEL) {
                for (q, tap) in staged.chunks_exact_mut(pitch).enumerate() {
                    for (col, t) in tap.iter_mut().enumerate() {
                        *t = match (col < cols, rotated) {
                            (false, _) => 0.0,
                            (true, false) => w[(row * c + col) * taps + q],
                            (true, true) => w[(col * c + row) * taps + taps - 1 - q],
                        };
                    }
                }
                f(row, staged, pitch)
            }
        })
    });
}

/// U[ξ][o][c] = (G g Gᵀ)_ξ for W (O × C × r × r) by F(m×m, r×r) of `kind`;
/// `rotated`, U[ξ][c][o] for the data gradient's kernels, W[o][c] rotated 180°.
/// With `panels` (rows a multiple of [`PANEL`]), each U_ξ is stored as the
/// fused kernel reads it ([`Winograd::point_gemm`]): panels of 16 rows,
/// columns outer, U[ξ][row / 16][col][row % 16].
/// F(2×2, 3×3)'s data gradient needs no second transform: G J = P G for the
/// reversal J and P swapping G's rows 0 and 3, so G rot(g) Gᵀ = P (G g Gᵀ) Pᵀ,
/// which is U read at ξ' = (P i)·4 + P j ([`rotated_point`]). The larger tiles'
/// points ±2 (and ±½) do not map onto the set under reversal, so they
/// transform the rotated kernels.
pub fn transform_weights(
    w: &[f32],
    [o, c]: [usize; 2],
    kind: TileKind,
    (rotated, panels): (bool, bool),
    u: &mut [f32],
) {
    let (points, taps) = (kind.points(), kind.taps());
    let up = Shared(u[..points * o * c].as_mut_ptr());
    let (rows, cols) = if rotated { (c, o) } else { (o, c) };
    per_row(w, [o, c, taps * taps], rotated, |row, staged, pitch| {
        by_tile!(kind, K => with_isa(#[inline(always)] || {
            for c0 in (0..cols).step_by(LANES) {
                let n = (cols - c0).min(LANES);
                // G g on columns, then Gᵀ on rows: (G g Gᵀ)[i][j].
                let mut gg = [[[0.0; LANES]; MAX_ALPHA]; MAX_ALPHA];
                for j in 0..K::R {
                    let mut col = [[0.0; LANES]; MAX_ALPHA];
                    for i in 0..K::R {
                        col[i] = load(&staged[(i * K::R + j) * pitch + c0..], LANES);
                    }
                    let col = K::g(&col);
                    for i in 0..K::ALPHA {
                        gg[i][j] = col[i];
                    }
                }
                for i in 0..K::ALPHA {
                    for (j, val) in K::g(&gg[i]).iter().take(K::ALPHA).enumerate() {
                        let xi = i * K::ALPHA + j;
                        // SAFETY: (ξ, row, c0..c0 + n) is written by this task only.
                        unsafe {
                            if panels {
                                let panel = xi * rows * cols + (row - row % PANEL) * cols;
                                for (l, &v) in val.iter().take(n).enumerate() {
                                    *up.at(panel + (c0 + l) * PANEL + row % PANEL) = v;
                                }
                            } else {
                                store(up.at((xi * rows + row) * cols + c0), val, n);
                            }
                        }
                    }
                }
            }
        }))
    });
}

/// Rows of U per panel in the fused kernel's layout.
pub const PANEL: usize = 16;

/// The point of U that the data gradient's ξ reads for F(2×2, 3×3) (see [`transform_weights`]).
pub fn rotated_point(xi: usize) -> usize {
    let p = |k: usize| [3, 1, 2, 0][k];
    p(xi / 4) * 4 + p(xi % 4)
}

impl Winograd {
    /// N_ξ (O × C) += D_ξ · V_ξ summed over the tiles of the samples of `x`
    /// and `dy`, with D = A dy Aᵀ of each m×m tile of dy; `n` holds α²·O·C.
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
        n[..self.points() * o * c]
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

/// dW[o][c] += Gᵀ N G (r×r) for every (o, c), N the α×α of `n[ξ][o][c]`.
pub fn weight_gradient_output(n: &[f32], [o, c]: [usize; 2], kind: TileKind, dw: &mut [f32]) {
    let r2 = kind.taps() * kind.taps();
    let dwp = Shared(dw[..o * c * r2].as_mut_ptr());
    let pitch = c.next_multiple_of(LANES);
    (0..o).into_par_iter().for_each(|oi| {
        STAGE.with(|cell| {
            let buf = &mut *cell.borrow_mut();
            let staged = grown(buf, r2 * pitch);
            by_tile!(kind, K => with_isa(#[inline(always)] || {
                for c0 in (0..c).step_by(LANES) {
                    let len = (c - c0).min(LANES);
                    let e = gather::<K>(n, oi * c + c0, o * c, len);
                    // Gᵀ N on columns, then G on rows: (Gᵀ N G)[i][j].
                    let mut rows = [[[0.0; LANES]; MAX_ALPHA]; MAX_ALPHA];
                    for j in 0..K::ALPHA {
                        let mut col = [[0.0; LANES]; MAX_ALPHA];
                        for i in 0..K::ALPHA {
                            col[i] = e[i][j];
                        }
                        let col = K::gt(&col);
                        for i in 0..K::R {
                            rows[i][j] = col[i];
                        }
                    }
                    for i in 0..K::R {
                        for (j, val) in K::gt(&rows[i]).iter().take(K::R).enumerate() {
                            staged[(i * K::R + j) * pitch + c0..][..LANES].copy_from_slice(val);
                        }
                    }
                }
            }));
            // SAFETY: row oi of dW (C × r² floats) is written by this task only.
            let row = unsafe { std::slice::from_raw_parts_mut(dwp.at(oi * c * r2), c * r2) };
            for (ci, k) in row.chunks_exact_mut(r2).enumerate() {
                for (q, kq) in k.iter_mut().enumerate() {
                    *kq += staged[q * pitch + ci];
                }
            }
        })
    });
}
