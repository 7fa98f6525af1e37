//! The weight gradient of Winograd F(2×2, 3×3). The forward tile identity
//! Σᵢ y*ᵢ yᵢ = Σ_ξ (A y* Aᵀ)_ξ (G g Gᵀ)_ξ (Bᵀ d B)_ξ, read with dy in y*'s place
//! and differentiated in g, gives
//!   dW = Gᵀ [Σ_tiles (A dy Aᵀ) ⊙ (Bᵀ d B)] G,
//! the tile sum being 16 GEMMs N_ξ (O × C) = D_ξ (O × T) · V_ξᵀ (T × C) with the
//! forward's input transform V, and the map back to 3×3 done once per batch.

use super::winograd_tiles::{Shared, Winograd, POINTS};
use crate::backend::{gemm_strided, View, ViewMut};
use rayon::prelude::*;

impl Winograd {
    /// N_ξ (O × C) += D_ξ · V_ξᵀ summed over the tiles of the samples of `x`
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
        let out_plane = self.out[0] * self.out[1];
        let samples = dy.len() / (o * out_plane);
        let t_all = samples * self.tiles_per_sample();
        self.input_transform(x, v);
        let dp = Shared(d[..POINTS * o * t_all].as_mut_ptr());
        (0..samples * o)
            .into_par_iter()
            .with_min_len(8)
            .for_each(|so| {
                let (s, oi) = (so / o, so % o);
                let first = s * self.tiles_per_sample();
                let plane = &dy[so * out_plane..][..out_plane];
                // SAFETY: indices (ξ, oi, first..first + tiles) belong to this (s, oi) only.
                unsafe { self.output_gradient_tiles(plane, dp, oi * t_all + first, o * t_all) };
            });
        let (v, d): (&[f32], &[f32]) = (v, d);
        n[..POINTS * o * c]
            .par_chunks_mut(o * c)
            .enumerate()
            .for_each(|(xi, nx)| {
                gemm_strided(
                    1,
                    o,
                    c,
                    t_all,
                    1.0,
                    View {
                        data: &d[xi * o * t_all..],
                        rs: t_all,
                        cs: 1,
                    },
                    View {
                        data: &v[xi * c * t_all..],
                        rs: 1,
                        cs: t_all,
                    },
                    1.0,
                    ViewMut {
                        data: nx,
                        rs: c,
                        cs: 1,
                    },
                )
            });
    }

    /// Writes A d Aᵀ (A = Aᵀᵀ, 4×2) of every 2×2 tile of one dy plane to
    /// `d[ξ·stride + at + tile]`, dy taken as zero past the plane's edge.
    unsafe fn output_gradient_tiles(&self, plane: &[f32], d: Shared, at: usize, stride: usize) {
        let [th, tw] = self.tiles();
        let [ho, wo] = self.out;
        let get = |y: usize, x: usize| {
            if y < ho && x < wo {
                plane[y * wo + x]
            } else {
                0.0
            }
        };
        for ty in 0..th {
            for tx in 0..tw {
                let g = [
                    [get(2 * ty, 2 * tx), get(2 * ty, 2 * tx + 1)],
                    [get(2 * ty + 1, 2 * tx), get(2 * ty + 1, 2 * tx + 1)],
                ];
                // Rows of A g: g0, g0 + g1, g0 − g1, −g1; then the same on columns.
                let rows = [0, 1].map(|j| {
                    let (a, b) = (g[0][j], g[1][j]);
                    [a, a + b, a - b, -b]
                });
                let tile = at + ty * tw + tx;
                for (i, (&a, &b)) in rows[0].iter().zip(&rows[1]).enumerate() {
                    for (j, val) in [a, a + b, a - b, -b].into_iter().enumerate() {
                        *d.at((i * 4 + j) * stride + tile) = val;
                    }
                }
            }
        }
    }
}

/// dW[o][c] += Gᵀ N G (3×3) for every (o, c), N the 4×4 of `n[ξ][o][c]`, with
/// Gᵀ = [1 ½ ½ 0; 0 ½ −½ 0; 0 ½ ½ 1].
pub fn weight_gradient_output(n: &[f32], o: usize, c: usize, dw: &mut [f32]) {
    dw[..o * c * 9]
        .par_chunks_mut(c * 9)
        .enumerate()
        .for_each(|(oi, row)| {
            for (ci, k) in row.chunks_mut(9).enumerate() {
                let e = |xi: usize| n[xi * o * c + oi * c + ci];
                // Gᵀ N: three rows of four, then the same on columns.
                let r: [[f32; 4]; 3] = std::array::from_fn(|i| {
                    std::array::from_fn(|j| {
                        let (a, b, cc, d) = (e(j), e(4 + j), e(8 + j), e(12 + j));
                        match i {
                            0 => a + 0.5 * (b + cc),
                            1 => 0.5 * (b - cc),
                            _ => 0.5 * (b + cc) + d,
                        }
                    })
                });
                for (i, [a, b, cc, d]) in r.into_iter().enumerate() {
                    k[i * 3] += a + 0.5 * (b + cc);
                    k[i * 3 + 1] += 0.5 * (b - cc);
                    k[i * 3 + 2] += 0.5 * (b + cc) + d;
                }
            }
        });
}
