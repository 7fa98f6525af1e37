//! The tile transforms and GEMMs of Winograd F(2×2, 3×3) (see `winograd.rs`):
//!   Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1],  G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1],
//!   Aᵀ = [1 1 1 0; 0 1 −1 −1].
//! Forward: M_ξ (O × T) = U_ξ (O × C) · V_ξ (C × T) with U = G g Gᵀ, V = Bᵀ d B,
//! then Y = Aᵀ M A per tile. The weight gradient is in `winograd_weights.rs`.

use super::kernels::grown;
use crate::backend::{gemm_strided, View, ViewMut};
use rayon::prelude::*;
use std::cell::RefCell;

/// Transform points per tile (4×4).
pub const POINTS: usize = 16;

/// Tiles of one tile row transformed together (the vector loops' length).
const ROW_TILES: usize = 32;

/// One 3×3 correlation: `inputs` channels of `height`×`width` in, `outputs`
/// channels of `out` out, zero padding `pad`.
#[derive(Clone, Copy, Debug)]
pub struct Winograd {
    pub inputs: usize,
    pub outputs: usize,
    pub height: usize,
    pub width: usize,
    pub pad: [usize; 2],
    pub out: [usize; 2],
}

thread_local! {
    /// One zero-padded input plane split into even and odd columns.
    static PLANE: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// A raw pointer that parallel loops share when each writes its own indices.
#[derive(Clone, Copy)]
pub(super) struct Shared(pub(super) *mut f32);
// SAFETY: users write disjoint index sets (stated at each use).
unsafe impl Send for Shared {}
unsafe impl Sync for Shared {}

impl Shared {
    /// The element `i` places on.
    ///
    /// # Safety
    /// `i` must lie inside the buffer the pointer came from.
    pub(super) unsafe fn at(self, i: usize) -> *mut f32 {
        self.0.add(i)
    }
}

/// U (16 × outputs × inputs) from W (O × C × 3 × 3). With `backward_data` the
/// kernel is rotated 180° and U is laid out as (16 × C × O), the weights of
/// dx = W̃ ⋆ dy. Rows of U run in parallel, each writing its 16 row segments.
pub fn transform_weights(w: &[f32], o: usize, c: usize, backward_data: bool, u: &mut [f32]) {
    let (rows, cols) = if backward_data { (c, o) } else { (o, c) };
    let up = Shared(u[..POINTS * o * c].as_mut_ptr());
    (0..rows).into_par_iter().with_min_len(4).for_each(|row| {
        for col in 0..cols {
            let (oi, ci) = if backward_data {
                (col, row)
            } else {
                (row, col)
            };
            let k = &w[(oi * c + ci) * 9..(oi * c + ci + 1) * 9];
            let g = |i: usize, j: usize| {
                if backward_data {
                    k[(2 - i) * 3 + 2 - j]
                } else {
                    k[i * 3 + j]
                }
            };
            // Rows of G g, then (G g) Gᵀ.
            let [r0, r1, r2] = [0, 1, 2].map(|i| [g(i, 0), g(i, 1), g(i, 2)]);
            let gg = [
                r0,
                std::array::from_fn(|j| 0.5 * (r0[j] + r1[j] + r2[j])),
                std::array::from_fn(|j| 0.5 * (r0[j] - r1[j] + r2[j])),
                r2,
            ];
            for (i, r) in gg.iter().enumerate() {
                let [a, b, e] = *r;
                let vals = [a, 0.5 * (a + b + e), 0.5 * (a - b + e), e];
                for (j, v) in vals.into_iter().enumerate() {
                    // SAFETY: (ξ, row, col) is written by this row's task only,
                    // and lies inside the 16·O·C floats of `u`.
                    unsafe { *up.at((i * 4 + j) * rows * cols + row * cols + col) = v };
                }
            }
        }
    });
}

impl Winograd {
    pub(super) fn tiles(&self) -> [usize; 2] {
        [self.out[0].div_ceil(2), self.out[1].div_ceil(2)]
    }

    /// Tiles of one sample.
    pub fn tiles_per_sample(&self) -> usize {
        let [th, tw] = self.tiles();
        th * tw
    }

    /// Scratch floats for `samples` samples: V (16·C·T) and M (16·O·T).
    pub fn scratch(&self, samples: usize) -> [usize; 2] {
        let t = samples * self.tiles_per_sample();
        [POINTS * self.inputs * t, POINTS * self.outputs * t]
    }

    /// y = W ⋆ x (+ bias) for the samples of `x`, with U from [`transform_weights`].
    #[allow(clippy::too_many_arguments)]
    pub fn run(
        &self,
        threads: usize,
        u: &[f32],
        bias: Option<&[f32]>,
        x: &[f32],
        y: &mut [f32],
        v: &mut [f32],
        m: &mut [f32],
    ) {
        let (c, o) = (self.inputs, self.outputs);
        let in_len = c * self.height * self.width;
        let samples = x.len() / in_len;
        let t_all = samples * self.tiles_per_sample();
        let m = &mut m[..POINTS * o * t_all];
        self.input_transform(x, v);
        let (v, u): (&[f32], &[f32]) = (&v[..POINTS * c * t_all], u);
        let gemm = |(xi, mx): (usize, &mut [f32])| {
            gemm_strided(
                1,
                o,
                t_all,
                c,
                1.0,
                View {
                    data: &u[xi * o * c..],
                    rs: c,
                    cs: 1,
                },
                View {
                    data: &v[xi * c * t_all..],
                    rs: t_all,
                    cs: 1,
                },
                0.0,
                ViewMut {
                    data: mx,
                    rs: t_all,
                    cs: 1,
                },
            )
        };
        if threads > 1 {
            m.par_chunks_mut(o * t_all).enumerate().for_each(gemm);
        } else {
            m.chunks_mut(o * t_all).enumerate().for_each(gemm);
        }
        let m: &[f32] = m;
        let plane = self.out[0] * self.out[1];
        y.par_chunks_mut(plane).enumerate().for_each(|(so, out)| {
            let (s, oi) = (so / o, so % o);
            let b = bias.map_or(0.0, |b| b[oi]);
            self.output_tiles(
                m,
                oi * t_all + s * self.tiles_per_sample(),
                o * t_all,
                b,
                out,
            );
        });
    }

    /// V[ξ][c][t] = (Bᵀ d B)_ξ for every tile t of the samples of `x`.
    pub fn input_transform(&self, x: &[f32], v: &mut [f32]) {
        let (c, plane) = (self.inputs, self.height * self.width);
        let samples = x.len() / (c * plane);
        let t_all = samples * self.tiles_per_sample();
        let vp = Shared(v[..POINTS * c * t_all].as_mut_ptr());
        (0..samples * c)
            .into_par_iter()
            .with_min_len(8)
            .for_each(|sc| {
                let (s, ci) = (sc / c, sc % c);
                let first = s * self.tiles_per_sample();
                // SAFETY: indices (ξ, ci, first..first + tiles) belong to this (s, ci) only.
                unsafe {
                    self.input_tiles(&x[sc * plane..][..plane], vp, ci * t_all + first, c * t_all)
                };
            });
    }

    /// Writes Bᵀ d B of every tile of one input plane to `v[ξ·stride + at + tile]`.
    /// The zero-padded plane is split into even and odd columns so that column j
    /// of tile tx (padded column 2tx + j) is `even[tx + j/2]` or `odd[tx + j/2]`:
    /// every step below is then a loop over a row of tiles, which vectorises.
    unsafe fn input_tiles(&self, plane: &[f32], v: Shared, at: usize, stride: usize) {
        PLANE.with(|cell| {
            let buf = &mut *cell.borrow_mut();
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx512f") {
                return self.input_tiles_avx512(plane, v, at, stride, buf);
            }
            self.input_tiles_with(plane, v, at, stride, buf)
        })
    }

    /// [`Self::input_tiles`] compiled for AVX-512 (the crate builds for the
    /// baseline x86-64, where these loops get only SSE2).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn input_tiles_avx512(
        &self,
        plane: &[f32],
        v: Shared,
        at: usize,
        stride: usize,
        buf: &mut Vec<f32>,
    ) {
        self.input_tiles_with(plane, v, at, stride, buf)
    }

    #[inline(always)]
    unsafe fn input_tiles_with(
        &self,
        plane: &[f32],
        v: Shared,
        at: usize,
        stride: usize,
        buf: &mut Vec<f32>,
    ) {
        let [th, tw] = self.tiles();
        let half = tw + 1;
        // Padded rows 0..2·th + 2, each as `half` even then `half` odd columns.
        {
            let split = grown(buf, (2 * th + 2) * 2 * half);
            split.fill(0.0);
            for (r, row) in split.chunks_mut(2 * half).enumerate() {
                let Some(y) = r.checked_sub(self.pad[0]) else {
                    continue;
                };
                if y >= self.height {
                    break;
                }
                let src = &plane[y * self.width..(y + 1) * self.width];
                let (even, odd) = row.split_at_mut(half);
                for (xi, &val) in src.iter().enumerate() {
                    let px = xi + self.pad[1];
                    if px < 2 * half {
                        if px.is_multiple_of(2) {
                            even[px / 2] = val;
                        } else {
                            odd[px / 2] = val;
                        }
                    }
                }
            }
            let mut h = [[0.0f32; ROW_TILES]; 16];
            for ty in 0..th {
                for x0 in (0..tw).step_by(ROW_TILES) {
                    let n = (tw - x0).min(ROW_TILES);
                    // Horizontal: h[4r + j] = (d B)[r][j] for the 4 rows of the tile row.
                    for r in 0..4 {
                        let row = &split[(2 * ty + r) * 2 * half..][..2 * half];
                        let (even, odd) = row.split_at(half);
                        let (e0, e1) = (&even[x0..x0 + n], &even[x0 + 1..x0 + 1 + n]);
                        let (o0, o1) = (&odd[x0..x0 + n], &odd[x0 + 1..x0 + 1 + n]);
                        let [h0, h1, h2, h3] = &mut h[4 * r..4 * r + 4] else {
                            unreachable!()
                        };
                        for k in 0..n {
                            h0[k] = e0[k] - e1[k];
                            h1[k] = o0[k] + e1[k];
                            h2[k] = e1[k] - o0[k];
                            h3[k] = o0[k] - o1[k];
                        }
                    }
                    // Vertical: V[i][j] = (Bᵀ h)[i][j].
                    let tile = at + ty * tw + x0;
                    for j in 0..4 {
                        let (r0, r1, r2, r3) = (&h[j], &h[4 + j], &h[8 + j], &h[12 + j]);
                        let out = |i: usize| v.0.add((i * 4 + j) * stride + tile);
                        let (v0, v1, v2, v3) = (out(0), out(1), out(2), out(3));
                        for k in 0..n {
                            *v0.add(k) = r0[k] - r2[k];
                            *v1.add(k) = r1[k] + r2[k];
                            *v2.add(k) = r2[k] - r1[k];
                            *v3.add(k) = r1[k] - r3[k];
                        }
                    }
                }
            }
        }
    }

    /// out (Ho × Wo) = Aᵀ m A + bias over the tiles of one output plane, reading
    /// `m[ξ·stride + at + tile]`, a row of tiles at a time.
    fn output_tiles(&self, m: &[f32], at: usize, stride: usize, bias: f32, out: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: AVX-512F is present (checked above).
            return unsafe { self.output_tiles_avx512(m, at, stride, bias, out) };
        }
        self.output_tiles_with(m, at, stride, bias, out)
    }

    /// [`Self::output_tiles`] compiled for AVX-512.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn output_tiles_avx512(
        &self,
        m: &[f32],
        at: usize,
        stride: usize,
        bias: f32,
        out: &mut [f32],
    ) {
        self.output_tiles_with(m, at, stride, bias, out)
    }

    #[inline(always)]
    fn output_tiles_with(&self, m: &[f32], at: usize, stride: usize, bias: f32, out: &mut [f32]) {
        let [th, tw] = self.tiles();
        let [ho, wo] = self.out;
        let mut r = [[0.0f32; ROW_TILES]; 8];
        let mut pair = [[0.0f32; ROW_TILES]; 2];
        for ty in 0..th {
            for x0 in (0..tw).step_by(ROW_TILES) {
                let n = (tw - x0).min(ROW_TILES);
                let tile = at + ty * tw + x0;
                let e = |xi: usize| &m[xi * stride + tile..][..n];
                // Aᵀ m: r[i·4 + j] for output row i of the tile.
                for j in 0..4 {
                    let (a, b, c, d) = (e(j), e(4 + j), e(8 + j), e(12 + j));
                    let [r0, r1] = [j, 4 + j];
                    for k in 0..n {
                        r[r0][k] = a[k] + b[k] + c[k];
                        r[r1][k] = b[k] - c[k] - d[k];
                    }
                }
                for i in 0..2 {
                    let oy = 2 * ty + i;
                    if oy >= ho {
                        break;
                    }
                    let [p0, p1] = &mut pair;
                    let (a, b, c, d) = (&r[4 * i], &r[4 * i + 1], &r[4 * i + 2], &r[4 * i + 3]);
                    for k in 0..n {
                        p0[k] = a[k] + b[k] + c[k] + bias;
                        p1[k] = b[k] - c[k] - d[k] + bias;
                    }
                    let line = &mut out[oy * wo..(oy + 1) * wo];
                    let cols = (wo - 2 * x0).min(2 * n);
                    for (q, val) in line[2 * x0..2 * x0 + cols].iter_mut().enumerate() {
                        *val = pair[q % 2][q / 2];
                    }
                }
            }
        }
    }
}
