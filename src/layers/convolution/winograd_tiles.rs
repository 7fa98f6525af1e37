//! The tile transforms of Winograd F(2×2, 3×3) (see `winograd.rs`):
//!   V = Bᵀ d B (4×4 input patch d), Y = Aᵀ M A (2×2 output tile),
//!   D = A dy Aᵀ (2×2 tile of dy, for the weight gradient),
//!   Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1],  Aᵀ = [1 1 1 0; 0 1 −1 −1].
//! V, M and D are stored channels innermost, `[ξ][tile][channel]`, so that every
//! transform step is one 16-lane operation over 16 channels: a tile of one
//! channel is far too small to vectorise (a 14×12 plane has 42 tiles). Planes
//! pass through a channels-last staging copy (`[pixel][16]`) on the way in and out.

// Index loops below walk a small matrix's columns across several arrays.
#![allow(clippy::needless_range_loop)]

use super::kernels::grown;
use rayon::prelude::*;
use std::array::from_fn;
use std::cell::RefCell;

/// Transform points per tile (4×4).
pub const POINTS: usize = 16;

/// Channels per vector step.
pub(super) const LANES: usize = 16;
pub(super) type Lanes = [f32; LANES];

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
    /// 16 channels of one plane, channels last.
    pub(super) static STAGE: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
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

/// Runs `f` compiled for AVX-512 when the CPU has it: the crate targets
/// baseline x86-64, where the lane loops would get 4-wide SSE2.
#[inline(always)]
pub(super) fn with_avx512<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        #[target_feature(enable = "avx512f")]
        unsafe fn wide<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        // SAFETY: AVX-512F is present (checked above).
        return unsafe { wide(f) };
    }
    f()
}

#[inline(always)]
pub(super) fn add(a: Lanes, b: Lanes) -> Lanes {
    from_fn(|k| a[k] + b[k])
}

#[inline(always)]
pub(super) fn sub(a: Lanes, b: Lanes) -> Lanes {
    from_fn(|k| a[k] - b[k])
}

#[inline(always)]
pub(super) fn half(a: Lanes) -> Lanes {
    from_fn(|k| 0.5 * a[k])
}

/// The first `n` lanes from `src`, zeros after.
#[inline(always)]
pub(super) fn load(src: &[f32], n: usize) -> Lanes {
    if n == LANES {
        return src[..LANES].try_into().unwrap();
    }
    let mut l = [0.0; LANES];
    l[..n].copy_from_slice(&src[..n]);
    l
}

/// Writes the first `n` lanes of `v` to `dst`.
///
/// # Safety
/// `dst..dst + n` must be writable.
#[inline(always)]
pub(super) unsafe fn store(dst: *mut f32, v: &Lanes, n: usize) {
    std::ptr::copy_nonoverlapping(v.as_ptr(), dst, n);
}

/// Bᵀ x for x = (x₀, x₁, x₂, x₃).
#[inline(always)]
fn bt(x: [Lanes; 4]) -> [Lanes; 4] {
    [
        sub(x[0], x[2]),
        add(x[1], x[2]),
        sub(x[2], x[1]),
        sub(x[1], x[3]),
    ]
}

/// Aᵀ x for x = (x₀, x₁, x₂, x₃).
#[inline(always)]
fn at(x: [Lanes; 4]) -> [Lanes; 2] {
    [add(add(x[0], x[1]), x[2]), sub(sub(x[1], x[2]), x[3])]
}

/// A x for x = (x₀, x₁).
#[inline(always)]
fn a(x: [Lanes; 2]) -> [Lanes; 4] {
    [
        x[0],
        add(x[0], x[1]),
        sub(x[0], x[1]),
        sub([0.0; LANES], x[1]),
    ]
}

/// (sample, first channel, channels) for every block of 16 channels of a batch.
pub(super) fn blocks(samples: usize, channels: usize) -> impl ParallelIterator<Item = [usize; 3]> {
    let per = channels.div_ceil(LANES);
    (0..samples * per).into_par_iter().map(move |i| {
        let c0 = (i % per) * LANES;
        [i / per, c0, (channels - c0).min(LANES)]
    })
}

/// Copies the `n` planes of `src` (each `rows`×`cols`) into `stage`: lane l
/// of pixel (top + y, left + x) goes to `((top + y)·pitch + left + x)·16 + l`.
/// Pixels past the stage's rows or `pitch` columns are dropped.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn stage_in(
    src: &[f32],
    n: usize,
    [rows, cols]: [usize; 2],
    stage: &mut [f32],
    pitch: usize,
    [top, left]: [usize; 2],
) {
    let stage_rows = stage.len() / (pitch * LANES);
    let h = rows.min(stage_rows.saturating_sub(top));
    let w = cols.min(pitch.saturating_sub(left));
    for (l, plane) in src.chunks_exact(rows * cols).take(n).enumerate() {
        for y in 0..h {
            let base = (top + y) * pitch + left;
            for (x, &val) in plane[y * cols..][..w].iter().enumerate() {
                stage[(base + x) * LANES + l] = val;
            }
        }
    }
}

/// The inverse of [`stage_in`] at offset (0, 0): `n` planes of `rows`×`cols`.
#[inline(always)]
fn stage_out(stage: &[f32], pitch: usize, dst: &mut [f32], n: usize, [rows, cols]: [usize; 2]) {
    for (l, plane) in dst.chunks_exact_mut(rows * cols).take(n).enumerate() {
        for y in 0..rows {
            for (x, val) in plane[y * cols..][..cols].iter_mut().enumerate() {
                *val = stage[((y * pitch) + x) * LANES + l];
            }
        }
    }
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

    /// V[ξ][t][c] = (Bᵀ d B)_ξ for every tile t of the samples of `x`.
    pub fn input_transform(&self, x: &[f32], v: &mut [f32]) {
        let (c, plane) = (self.inputs, self.height * self.width);
        let samples = x.len() / (c * plane);
        let (tiles, t_all) = (self.tiles_per_sample(), samples * self.tiles_per_sample());
        let vp = Shared(v[..POINTS * c * t_all].as_mut_ptr());
        blocks(samples, c).for_each(|[s, c0, n]| {
            let src = &x[(s * c + c0) * plane..][..n * plane];
            STAGE.with(|cell| {
                let buf = &mut *cell.borrow_mut();
                // SAFETY: this block alone writes V[·][s·tiles..][c0..c0 + n].
                with_avx512(|| unsafe { self.input_block(src, n, buf, vp, s * tiles, c0, t_all) })
            })
        });
    }

    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    unsafe fn input_block(
        &self,
        src: &[f32],
        n: usize,
        buf: &mut Vec<f32>,
        v: Shared,
        first: usize,
        c0: usize,
        t_all: usize,
    ) {
        let [th, tw] = self.tiles();
        // Every tile's 4×4 window lies inside the padded (2th + 2) × (2tw + 2).
        let pitch = 2 * tw + 2;
        let stage = grown(buf, (2 * th + 2) * pitch * LANES);
        stage.fill(0.0);
        stage_in(src, n, [self.height, self.width], stage, pitch, self.pad);
        let c = self.inputs;
        let pixel = |p: usize| -> Lanes { stage[p * LANES..][..LANES].try_into().unwrap() };
        for ty in 0..th {
            for tx in 0..tw {
                let p0 = 2 * ty * pitch + 2 * tx;
                let h: [[Lanes; 4]; 4] = from_fn(|i| bt(from_fn(|j| pixel(p0 + i * pitch + j))));
                let t = first + ty * tw + tx;
                for j in 0..4 {
                    let col = bt([h[0][j], h[1][j], h[2][j], h[3][j]]);
                    for (i, val) in col.iter().enumerate() {
                        store(v.at(((i * 4 + j) * t_all + t) * c + c0), val, n);
                    }
                }
            }
        }
    }

    /// y = Aᵀ M A (+ bias) for the samples of `y`, from M[ξ][t][o].
    pub fn output_transform(&self, m: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
        let (o, plane) = (self.outputs, self.out[0] * self.out[1]);
        let samples = y.len() / (o * plane);
        let (tiles, t_all) = (self.tiles_per_sample(), samples * self.tiles_per_sample());
        let yp = Shared(y.as_mut_ptr());
        blocks(samples, o).for_each(|[s, o0, n]| {
            let b = bias.map_or([0.0; LANES], |b| load(&b[o0..], n));
            // SAFETY: planes (s, o0..o0 + n) belong to this block alone.
            let dst =
                unsafe { std::slice::from_raw_parts_mut(yp.at((s * o + o0) * plane), n * plane) };
            STAGE.with(|cell| {
                let buf = &mut *cell.borrow_mut();
                with_avx512(|| self.output_block(m, t_all, s * tiles, o0, n, b, buf, dst))
            })
        });
    }

    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn output_block(
        &self,
        m: &[f32],
        t_all: usize,
        first: usize,
        o0: usize,
        n: usize,
        bias: Lanes,
        buf: &mut Vec<f32>,
        dst: &mut [f32],
    ) {
        let [th, tw] = self.tiles();
        let pitch = 2 * tw;
        let stage = grown(buf, 2 * th * pitch * LANES);
        let o = self.outputs;
        for ty in 0..th {
            for tx in 0..tw {
                let t = first + ty * tw + tx;
                let e: [Lanes; POINTS] = from_fn(|xi| load(&m[(xi * t_all + t) * o + o0..], n));
                // Aᵀ M on columns, then A on rows.
                let r: [[Lanes; 2]; 4] = from_fn(|j| at([e[j], e[4 + j], e[8 + j], e[12 + j]]));
                for i in 0..2 {
                    let out = at([r[0][i], r[1][i], r[2][i], r[3][i]]);
                    for (j, val) in out.into_iter().enumerate() {
                        let p = (2 * ty + i) * pitch + 2 * tx + j;
                        stage[p * LANES..][..LANES].copy_from_slice(&add(val, bias));
                    }
                }
            }
        }
        stage_out(stage, pitch, dst, n, self.out);
    }

    /// D[ξ][t][o] = (A dy Aᵀ)_ξ for every 2×2 tile of the samples of `dy`, dy
    /// taken as zero past the plane's edge.
    pub fn gradient_transform(&self, dy: &[f32], d: &mut [f32]) {
        let (o, plane) = (self.outputs, self.out[0] * self.out[1]);
        let samples = dy.len() / (o * plane);
        let (tiles, t_all) = (self.tiles_per_sample(), samples * self.tiles_per_sample());
        let dp = Shared(d[..POINTS * o * t_all].as_mut_ptr());
        blocks(samples, o).for_each(|[s, o0, n]| {
            let src = &dy[(s * o + o0) * plane..][..n * plane];
            STAGE.with(|cell| {
                let buf = &mut *cell.borrow_mut();
                // SAFETY: this block alone writes D[·][s·tiles..][o0..o0 + n].
                with_avx512(|| unsafe {
                    self.gradient_block(src, n, buf, dp, s * tiles, o0, t_all)
                })
            })
        });
    }

    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    unsafe fn gradient_block(
        &self,
        src: &[f32],
        n: usize,
        buf: &mut Vec<f32>,
        d: Shared,
        first: usize,
        o0: usize,
        t_all: usize,
    ) {
        let [th, tw] = self.tiles();
        let pitch = 2 * tw;
        let stage = grown(buf, 2 * th * pitch * LANES);
        stage.fill(0.0);
        stage_in(src, n, self.out, stage, pitch, [0, 0]);
        let o = self.outputs;
        let pixel = |p: usize| -> Lanes { stage[p * LANES..][..LANES].try_into().unwrap() };
        for ty in 0..th {
            for tx in 0..tw {
                let p0 = 2 * ty * pitch + 2 * tx;
                // g Aᵀ on the tile's two rows, then A on columns.
                let q: [[Lanes; 4]; 2] =
                    from_fn(|i| a([pixel(p0 + i * pitch), pixel(p0 + i * pitch + 1)]));
                let t = first + ty * tw + tx;
                for j in 0..4 {
                    for (i, val) in a([q[0][j], q[1][j]]).iter().enumerate() {
                        store(d.at(((i * 4 + j) * t_all + t) * o + o0), val, n);
                    }
                }
            }
        }
    }
}
