//! The tile transforms of Winograd F(m×m, r×r) (see `winograd.rs`; the
//! matrices are in `winograd_math.rs`): V = Bᵀ d B for each α×α input window
//! d, Y = Aᵀ M A for each m×m output tile, D = A dy Aᵀ for each m×m tile of dy
//! (the weight gradient). V, M and D are stored channels innermost,
//! `[ξ][tile][channel]`, so that every transform step is one 16-lane operation
//! over 16 channels: a tile of one channel is far too small to vectorise (a
//! 14×12 plane has 42 tiles). Planes pass through a channels-last staging copy
//! (`[pixel][16]`) on the way in and out.

// Index loops below walk a small matrix's columns across several arrays.
#![allow(clippy::needless_range_loop)]

use super::kernels::grown;
use super::winograd_math::{
    add, load, store, Lanes, Outputs, Tile, TileKind, Vector, LANES, MAX_ALPHA, MAX_M,
};
use rayon::prelude::*;
use std::cell::RefCell;
use std::ops::Range;

/// One r×r correlation by F(m×m, r×r) of kind `kind`: `inputs` channels of
/// `height`×`width` in, `outputs` channels of `out` out, zero padding `pad`.
#[derive(Clone, Copy, Debug)]
pub struct Winograd {
    pub kind: TileKind,
    pub inputs: usize,
    pub outputs: usize,
    pub height: usize,
    pub width: usize,
    pub pad: [usize; 2],
    pub out: [usize; 2],
}

/// Runs `$body` with `$k` the [`Tile`] type of the [`TileKind`] `$kind`.
macro_rules! by_tile {
    ($kind:expr, $k:ident => $body:expr) => {{
        use $crate::backend::cpu::conv::winograd_math as math;
        match $kind {
            math::TileKind::F2x3 => {
                type $k = math::F2x3;
                $body
            }
            math::TileKind::F4x3 => {
                type $k = math::F4x3;
                $body
            }
            math::TileKind::F4x5 => {
                type $k = math::F4x5;
                $body
            }
        }
    }};
}
pub(super) use by_tile;

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

pub(super) use crate::backend::cpu::isa::with_isa;

/// The 16 lanes of stage pixel `p`.
#[inline(always)]
fn pixel(stage: &[f32], p: usize) -> Lanes {
    stage[p * LANES..][..LANES].try_into().unwrap()
}

/// α points, `stride` floats apart from `base`, `n` lanes each.
#[inline(always)]
pub(super) fn gather<K: Tile>(
    m: &[f32],
    base: usize,
    stride: usize,
    n: usize,
) -> [Vector; MAX_ALPHA] {
    let mut e = [[[0.0; LANES]; MAX_ALPHA]; MAX_ALPHA];
    for i in 0..K::ALPHA {
        for j in 0..K::ALPHA {
            e[i][j] = load(&m[base + (i * K::ALPHA + j) * stride..], n);
        }
    }
    e
}

/// (sample, first channel, channels) for every block of 16 channels of a batch.
pub(super) fn blocks(samples: usize, channels: usize) -> impl ParallelIterator<Item = [usize; 3]> {
    let per = channels.div_ceil(LANES);
    (0..samples * per).into_par_iter().map(move |i| {
        let c0 = (i % per) * LANES;
        [i / per, c0, (channels - c0).min(LANES)]
    })
}

/// Tile rows `rows` of one sample, stored at tile index
/// `first + (ty − rows.start)·tw + tx` of a V, M or D that holds `t_all` tiles.
#[derive(Clone)]
pub struct Band {
    pub rows: Range<usize>,
    pub first: usize,
    pub t_all: usize,
}

/// Copies rows `from..to` of `n` planes (`plane` floats apart, `cols` wide) into
/// `stage` (16 lanes per pixel, `pitch` pixels per row): lane l of pixel (y, x)
/// goes to stage pixel (y − from + top, x + left); columns past `pitch` drop.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn stage_in(
    src: &[f32],
    n: usize,
    [plane, cols]: [usize; 2],
    [from, to]: [usize; 2],
    stage: &mut [f32],
    pitch: usize,
    [top, left]: [usize; 2],
) {
    let w = cols.min(pitch.saturating_sub(left));
    for l in 0..n {
        for y in from..to {
            let base = (y - from + top) * pitch + left;
            for (x, &val) in src[l * plane + y * cols..][..w].iter().enumerate() {
                stage[(base + x) * LANES + l] = val;
            }
        }
    }
}

/// The inverse of [`stage_in`] with no offset: rows `from..to` of `n` planes at `dst`.
///
/// # Safety
/// Those rows must lie in `dst`'s buffer and be written by this caller alone.
#[inline(always)]
unsafe fn stage_out(
    stage: &[f32],
    pitch: usize,
    dst: Shared,
    n: usize,
    [plane, cols]: [usize; 2],
    [from, to]: [usize; 2],
) {
    for l in 0..n {
        for y in from..to {
            let row = dst.at(l * plane + y * cols);
            for x in 0..cols {
                *row.add(x) = stage[((y - from) * pitch + x) * LANES + l];
            }
        }
    }
}

impl TileKind {
    /// Kernel side, r.
    pub fn taps(self) -> usize {
        by_tile!(self, K => K::R)
    }

    /// Outputs per tile side, m.
    pub fn side(self) -> usize {
        by_tile!(self, K => K::M)
    }

    /// Transform points per tile, α².
    pub fn points(self) -> usize {
        by_tile!(self, K => K::ALPHA * K::ALPHA)
    }
}

impl Winograd {
    /// Outputs per tile side, m.
    pub fn tile_side(&self) -> usize {
        self.kind.side()
    }

    pub(super) fn tiles(&self) -> [usize; 2] {
        let m = self.tile_side();
        [self.out[0].div_ceil(m), self.out[1].div_ceil(m)]
    }

    /// Tiles of one sample.
    pub fn tiles_per_sample(&self) -> usize {
        let [th, tw] = self.tiles();
        th * tw
    }

    /// Transform points per tile, α².
    pub fn points(&self) -> usize {
        self.kind.points()
    }

    /// Scratch floats for `samples` samples: V (α²·C·T) and M (α²·O·T).
    pub fn scratch(&self, samples: usize) -> [usize; 2] {
        let t = samples * self.tiles_per_sample();
        [
            self.points() * self.inputs * t,
            self.points() * self.outputs * t,
        ]
    }

    /// The whole of sample `s` of a batch of `samples`.
    fn sample_band(&self, s: usize, samples: usize) -> Band {
        let tiles = self.tiles_per_sample();
        Band {
            rows: 0..self.tiles()[0],
            first: s * tiles,
            t_all: samples * tiles,
        }
    }

    /// V[ξ][t][c] = (Bᵀ d B)_ξ for every tile t of the samples of `x`.
    pub fn input_transform(&self, x: &[f32], v: &mut [f32]) {
        let (c, plane) = (self.inputs, self.height * self.width);
        let samples = x.len() / (c * plane);
        let vp = Shared(v[..self.scratch(samples)[0]].as_mut_ptr());
        blocks(samples, c).for_each(|[s, c0, n]| {
            let band = self.sample_band(s, samples);
            let src = &x[(s * c + c0) * plane..];
            STAGE.with(|cell| {
                let buf = &mut *cell.borrow_mut();
                // SAFETY: this block alone writes V[·][s·tiles..][c0..c0 + n].
                by_tile!(self.kind, K => with_isa(#[inline(always)] || unsafe {
                    self.input_block::<K>(src, c0, n, &band, buf, vp)
                }))
            })
        });
    }

    /// V for the tiles of `band` of one sample `x`, all channels on this thread.
    pub fn input_band(&self, x: &[f32], band: &Band, v: &mut [f32]) {
        let (c, plane) = (self.inputs, self.height * self.width);
        let vp = Shared(v[..self.points() * c * band.t_all].as_mut_ptr());
        STAGE.with(|cell| {
            let buf = &mut *cell.borrow_mut();
            by_tile!(self.kind, K => with_isa(#[inline(always)] || {
                for c0 in (0..c).step_by(LANES) {
                    let n = (c - c0).min(LANES);
                    // SAFETY: `v` holds the band's tiles for all channels.
                    unsafe { self.input_block::<K>(&x[c0 * plane..], c0, n, band, buf, vp) }
                }
            }))
        })
    }

    /// Channels c0..c0 + n of `band`, from their planes at the start of `src`.
    #[inline(always)]
    unsafe fn input_block<K: Tile>(
        &self,
        src: &[f32],
        c0: usize,
        n: usize,
        band: &Band,
        buf: &mut Vec<f32>,
        v: Shared,
    ) {
        let [_, tw] = self.tiles();
        let (ty0, rows) = (band.rows.start, band.rows.len());
        // The band's α×α windows cover padded rows m·ty0 .. m(ty0 + rows) + α − m,
        // which hold source rows `from..to`.
        let overlap = K::ALPHA - K::M;
        let pitch = K::M * tw + overlap;
        let stage = grown(buf, (K::M * rows + overlap) * pitch * LANES);
        stage.fill(0.0);
        let from = (K::M * ty0).saturating_sub(self.pad[0]);
        let to = (K::M * (ty0 + rows) + overlap)
            .saturating_sub(self.pad[0])
            .min(self.height);
        if from < to {
            let top = from + self.pad[0] - K::M * ty0;
            let geometry = [self.height * self.width, self.width];
            stage_in(
                src,
                n,
                geometry,
                [from, to],
                stage,
                pitch,
                [top, self.pad[1]],
            );
        }
        let c = self.inputs;
        for ty in 0..rows {
            for tx in 0..tw {
                let p0 = K::M * (ty * pitch + tx);
                // d B on the window's rows, then Bᵀ on its columns.
                let mut h = [[[0.0; LANES]; MAX_ALPHA]; MAX_ALPHA];
                for i in 0..K::ALPHA {
                    let mut row = [[0.0; LANES]; MAX_ALPHA];
                    for j in 0..K::ALPHA {
                        row[j] = pixel(stage, p0 + i * pitch + j);
                    }
                    h[i] = K::bt(&row);
                }
                let t = band.first + ty * tw + tx;
                for j in 0..K::ALPHA {
                    let mut col = [[0.0; LANES]; MAX_ALPHA];
                    for i in 0..K::ALPHA {
                        col[i] = h[i][j];
                    }
                    let col = K::bt(&col);
                    for i in 0..K::ALPHA {
                        let xi = i * K::ALPHA + j;
                        store(v.at((xi * band.t_all + t) * c + c0), &col[i], n);
                    }
                }
            }
        }
    }

    /// y = Aᵀ M A (+ bias) for the samples of `y`, from M[ξ][t][o].
    pub fn output_transform(&self, m: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
        let (o, plane) = (self.outputs, self.out[0] * self.out[1]);
        let samples = y.len() / (o * plane);
        let m = &m[..self.scratch(samples)[1]];
        let yp = Shared(y.as_mut_ptr());
        blocks(samples, o).for_each(|[s, o0, n]| {
            let band = self.sample_band(s, samples);
            STAGE.with(|cell| {
                let buf = &mut *cell.borrow_mut();
                // SAFETY: planes (s, o0..o0 + n) of `y` belong to this block alone.
                by_tile!(self.kind, K => with_isa(#[inline(always)] || unsafe {
                    let dst = Shared(yp.at((s * o + o0) * plane));
                    self.output_block::<K>(m, bias, o0, n, &band, buf, dst)
                }))
            })
        });
    }

    /// y for the tiles of `band` of one sample, all channels on this thread.
    ///
    /// # Safety
    /// `y` must point at the sample's O output planes, the band's rows of which
    /// no one else writes meanwhile.
    pub unsafe fn output_band(&self, m: &[f32], bias: Option<&[f32]>, band: &Band, y: Shared) {
        let (o, plane) = (self.outputs, self.out[0] * self.out[1]);
        let m = &m[..self.points() * o * band.t_all];
        STAGE.with(|cell| {
            let buf = &mut *cell.borrow_mut();
            by_tile!(self.kind, K => with_isa(#[inline(always)] || {
                for o0 in (0..o).step_by(LANES) {
                    let n = (o - o0).min(LANES);
                    let dst = Shared(y.at(o0 * plane));
                    self.output_block::<K>(m, bias, o0, n, band, buf, dst)
                }
            }))
        })
    }

    /// Channels o0..o0 + n of `band`, written to their planes at `dst`.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    unsafe fn output_block<K: Tile>(
        &self,
        m: &[f32],
        bias: Option<&[f32]>,
        o0: usize,
        n: usize,
        band: &Band,
        buf: &mut Vec<f32>,
        dst: Shared,
    ) {
        let [_, tw] = self.tiles();
        let (ty0, rows) = (band.rows.start, band.rows.len());
        let pitch = K::M * tw;
        let stage = grown(buf, K::M * rows * pitch * LANES);
        let (o, t_all) = (self.outputs, band.t_all);
        let b = bias.map_or([0.0; LANES], |b| load(&b[o0..], n));
        for ty in 0..rows {
            for tx in 0..tw {
                let t = band.first + ty * tw + tx;
                let e = gather::<K>(m, t * o + o0, t_all * o, n);
                // Aᵀ M on columns, then A on rows.
                let mut r = [[[0.0; LANES]; MAX_ALPHA]; MAX_M];
                for j in 0..K::ALPHA {
                    let mut col = [[0.0; LANES]; MAX_ALPHA];
                    for i in 0..K::ALPHA {
                        col[i] = e[i][j];
                    }
                    let out = K::at(&col);
                    for i in 0..K::M {
                        r[i][j] = out[i];
                    }
                }
                for (i, row) in r.iter().take(K::M).enumerate() {
                    for (j, val) in K::at(row).into_iter().take(K::M).enumerate() {
                        let p = (K::M * ty + i) * pitch + K::M * tx + j;
                        stage[p * LANES..][..LANES].copy_from_slice(&add(val, b));
                    }
                }
            }
        }
        let [ho, wo] = self.out;
        let rows_out = [K::M * ty0, (K::M * (ty0 + rows)).min(ho)];
        stage_out(stage, pitch, dst, n, [ho * wo, wo], rows_out);
    }

    /// D[ξ][t][o] = (A dy Aᵀ)_ξ for every m×m tile of the samples of `dy`, dy
    /// taken as zero past the plane's edge.
    pub fn gradient_transform(&self, dy: &[f32], d: &mut [f32]) {
        let (o, plane) = (self.outputs, self.out[0] * self.out[1]);
        let samples = dy.len() / (o * plane);
        let dp = Shared(d[..self.scratch(samples)[1]].as_mut_ptr());
        blocks(samples, o).for_each(|[s, o0, n]| {
            let band = self.sample_band(s, samples);
            let src = &dy[(s * o + o0) * plane..];
            STAGE.with(|cell| {
                let buf = &mut *cell.borrow_mut();
                // SAFETY: this block alone writes D[·][s·tiles..][o0..o0 + n].
                by_tile!(self.kind, K => with_isa(#[inline(always)] || unsafe {
                    self.gradient_block::<K>(src, o0, n, &band, buf, dp)
                }))
            })
        });
    }

    /// D for the tiles of `band` of one sample `dy`, all channels on this thread.
    pub fn gradient_band(&self, dy: &[f32], band: &Band, d: &mut [f32]) {
        let (o, plane) = (self.outputs, self.out[0] * self.out[1]);
        let dp = Shared(d[..self.points() * o * band.t_all].as_mut_ptr());
        STAGE.with(|cell| {
            let buf = &mut *cell.borrow_mut();
            by_tile!(self.kind, K => with_isa(#[inline(always)] || {
                for o0 in (0..o).step_by(LANES) {
                    let n = (o - o0).min(LANES);
                    // SAFETY: `d` holds the band's tiles for all channels.
                    unsafe { self.gradient_block::<K>(&dy[o0 * plane..], o0, n, band, buf, dp) }
                }
            }))
        })
    }

    /// Channels o0..o0 + n of `band`, from their dy planes at the start of `src`.
    #[inline(always)]
    unsafe fn gradient_block<K: Tile>(
        &self,
        src: &[f32],
        o0: usize,
        n: usize,
        band: &Band,
        buf: &mut Vec<f32>,
        d: Shared,
    ) {
        let [_, tw] = self.tiles();
        let (ty0, rows) = (band.rows.start, band.rows.len());
        let pitch = K::M * tw;
        let stage = grown(buf, K::M * rows * pitch * LANES);
        stage.fill(0.0);
        let [ho, wo] = self.out;
        let span = [K::M * ty0, (K::M * (ty0 + rows)).min(ho)];
        stage_in(src, n, [ho * wo, wo], span, stage, pitch, [0, 0]);
        let o = self.outputs;
        for ty in 0..rows {
            for tx in 0..tw {
                let p0 = K::M * (ty * pitch + tx);
                // g Aᵀ on the tile's m rows, then A on columns.
                let mut q = [[[0.0; LANES]; MAX_ALPHA]; MAX_M];
                for (i, qi) in q.iter_mut().take(K::M).enumerate() {
                    let mut row: Outputs = [[0.0; LANES]; MAX_M];
                    for (j, rj) in row.iter_mut().take(K::M).enumerate() {
                        *rj = pixel(stage, p0 + i * pitch + j);
                    }
                    *qi = K::a(row);
                }
                let t = band.first + ty * tw + tx;
                for j in 0..K::ALPHA {
                    let mut row: Outputs = [[0.0; LANES]; MAX_M];
                    for i in 0..K::M {
                        row[i] = q[i][j];
                    }
                    let col = K::a(row);
                    for i in 0..K::ALPHA {
                        let xi = i * K::ALPHA + j;
                        store(d.at((xi * band.t_all + t) * o + o0), &col[i], n);
                    }
                }
            }
        }
    }
}
