//! Winograd F(m×m, r×r) for r×r (r = 3 or 5), stride-1, undilated convolutions
//! (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2016):
//! F(2×2, 3×3) or F(4×4, 3×3) (by the batch's tiles) and F(4×4, 5×5). An m×m
//! output tile is
//! Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A for the α×α input window d (α = m + r − 1) and
//! kernel g, so a tile's m²r² multiply-adds per channel pair become α²
//! (36 → 16 or 144 → 36 for 3×3, 400 → 64 for 5×5), done as α² GEMMs over the tiles T of
//! a chunk of samples:
//!   M_ξ (T × O) = V_ξ (T × C) · U_ξᵀ (C × O),   ξ = 0..α²,
//! with U = G g Gᵀ and V = Bᵀ d B element ξ (matrices in `winograd_math.rs`).
//! The gradient to the data is the same correlation run on dy with each kernel
//! rotated 180° and its channel axes swapped, padded by r − 1 − p, so both
//! directions share `Winograd::run`; the weight gradient sums
//! (A dy Aᵀ) ⊙ (Bᵀ d B) over the tiles in the transformed domain (α² GEMMs with
//! K = tiles) and maps back once. The tile transforms are in
//! `winograd_tiles.rs`, the kernel side in `winograd_weights.rs`.

use super::direct;
use super::kernels::{release, with_scratch, Plan, Scratch};
use super::winograd_banded::banded;
use super::winograd_math::TileKind;
use super::winograd_tiles::Winograd;
use super::winograd_weights::{rotated_point, transform_weights, weight_gradient_output, PANEL};
use crate::backend::{gemm_strided, View, ViewMut, WinogradPolicy};
use rayon::prelude::*;
use std::cell::RefCell;

/// The transforms cost O(C + O) per tile and the GEMMs O(C·O); below this
/// C·O/(C + O) the transforms' memory traffic eats the GEMM saving (measured at
/// batch 32: SphereFace's 128-channel stage (64) runs 1.3× faster than direct,
/// its 64-channel stage (32) 1.2× slower, which is why narrow layers run banded).
const WINOGRAD_MIN_WIDTH: usize = 60;

/// The same for layers that run banded (`winograd_banded.rs`), whose transforms
/// stay in cache: SphereFace's 64-channel stage (32) runs 1.2× faster than direct.
const BANDED_MIN_WIDTH: usize = 32;

/// The same for 5×5 kernels, where F(4×4, 5×5) saves 6.25× rather than 2.25×:
/// at batch 64 every 5×5 layer of LeNet++ (32 → 32 is 16) runs faster with it.
const FIVE_MIN_WIDTH: usize = 16;

/// Fewer tiles in a batch than this leave the α² GEMMs too narrow (M = tiles)
/// to beat the shifted windows: at batch 1 SphereFace's 28×24 and 14×12 stages
/// (168 and 42 tiles) train and infer faster with Winograd, its 7×6 stage (12
/// tiles) slower (`deploy_variants`, `netrun time`; README, "CPU speed").
const WINOGRAD_MIN_TILES: usize = 40;

/// From this many 4×4 tiles in a batch on, 3×3 layers run F(4×4, 3×3)
/// rather than F(2×2, 3×3), if their GEMMs do at most [`LARGE_MAX_WORK`] of
/// the 2×2 tiles' multiply-adds (36 per 4×4 tile against 16 per 2×2 tile: 0.56
/// where 4 divides the plane, more where 4×4 tiles pad it further). The
/// kernel-side transforms cost the same per layer whatever the batch, and
/// F(4×4, 3×3) makes two (its data gradient cannot reuse U): at batch 32
/// SphereFace's 56×48 to 14×12 stages (0.56–0.64) train and infer faster with
/// it, its 7×6 stage (0.75) trains slower (`NETRUN_WINOGRAD_TILE`, `netrun time`).
const LARGE_MIN_TILES: usize = 128;
const LARGE_MAX_WORK: f64 = 0.7;

/// Point GEMMs of at most this many tiles (rows) and inputs run the fused
/// kernel on U stored in panels ([`ULayout::Panels`]): at batch 1
/// SphereFace's 14×12 and 56×48 stages (42 tiles, bands of 24) run 1.2–1.3×
/// faster so on one thread. Longer GEMMs use the GEMM crate, whose packing
/// pays for itself there (at batch 32 the fused kernel ran the 14×12 stage
/// 1.3× slower), and so do wider ones: a panel (C × 16 floats, 16 KiB at 256
/// inputs) must stay in L1 beside the tiles' rows (the 512-channel stage
/// ran 1.5× slower at 252 tiles).
const PANEL_MAX_TILES: usize = 192;
const PANEL_MAX_INPUTS: usize = 256;

/// Which pass a Winograd batch runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Direction {
    Forward,
    /// A forward whose weights stay the same from pass to pass.
    Inference,
    DataGradient,
}

/// How the point GEMMs read U.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ULayout {
    /// U[ξ][o][c], read transposed by the GEMM crate.
    Rows,
    /// The forward's U[ξ][o][c] read at rotated points: the F(2×2, 3×3) data
    /// gradient ([`transform_weights`]).
    RotatedPoints,
    /// Panels of 16 outputs for the fused kernel: U[ξ][o / 16][c][o % 16].
    Panels,
}

/// Floats of V or M per chunk (8 MiB each): sets the samples per chunk.
const TILE_BUDGET: usize = 2 << 20;

thread_local! {
    /// U, V and M, reused across layers and iterations.
    static WINOGRAD: Scratch = const { RefCell::new([Vec::new(), Vec::new(), Vec::new()]) };
}

impl Plan {
    /// The Winograd tiles this layer runs at a batch of `batch` samples, if
    /// any: 3×3 or 5×5, stride 1, no dilation, one group, pad ≤ r − 1 (so the
    /// data gradient's pad r − 1 − p exists), and (by default) enough channels
    /// and tiles to be worth it.
    pub fn winograd(&self, batch: usize) -> Option<TileKind> {
        let w = &self.window;
        let r = w.kernel[0];
        let fits = (r == 3 || r == 5)
            && w.kernel[1] == r
            && w.stride == [1, 1]
            && w.dilation == [1, 1]
            && w.pad[0] < r
            && w.pad[1] < r
            && self.group == 1;
        if !fits {
            return None;
        }
        let kind = match r {
            5 => TileKind::F4x5,
            _ => match crate::backend::winograd_side() {
                Some(2) => TileKind::F2x3,
                Some(_) => TileKind::F4x3,
                None if self.large_tiles_pay(batch) => TileKind::F4x3,
                None => TileKind::F2x3,
            },
        };
        let tiles = batch * self.transform(kind).tiles_per_sample();
        let (c, o) = (w.channels, self.outputs);
        let min_width = match (r, banded(c, o, kind)) {
            (5, _) => FIVE_MIN_WIDTH,
            (_, true) => BANDED_MIN_WIDTH,
            _ => WINOGRAD_MIN_WIDTH,
        };
        let pays = c * o >= min_width * (c + o) && tiles >= WINOGRAD_MIN_TILES;
        let runs = match crate::backend::winograd() {
            WinogradPolicy::Never => false,
            WinogradPolicy::Always => true,
            WinogradPolicy::Auto => pays,
        };
        runs.then_some(kind)
    }

    /// See [`LARGE_MIN_TILES`].
    fn large_tiles_pay(&self, batch: usize) -> bool {
        let tiles = |kind| self.transform(kind).tiles_per_sample();
        let (large, small) = (tiles(TileKind::F4x3), tiles(TileKind::F2x3));
        let work =
            (TileKind::F4x3.points() * large) as f64 / (TileKind::F2x3.points() * small) as f64;
        batch * large >= LARGE_MIN_TILES && work <= LARGE_MAX_WORK
    }

    fn transform(&self, kind: TileKind) -> Winograd {
        let w = &self.window;
        Winograd {
            kind,
            inputs: w.channels,
            outputs: self.outputs,
            height: w.height,
            width: w.width,
            pad: w.pad,
            out: w.out,
        }
    }

    /// dx = W̃ ⋆ dy: dy's O channels in, C out, pad r − 1 − p.
    fn data_gradient_transform(&self, kind: TileKind) -> Winograd {
        let w = &self.window;
        let r = w.kernel[0];
        Winograd {
            kind,
            inputs: self.outputs,
            outputs: w.channels,
            height: w.out[0],
            width: w.out[1],
            pad: [r - 1 - w.pad[0], r - 1 - w.pad[1]],
            out: [w.height, w.width],
        }
    }

    /// y = conv(x) + bias for a whole batch (`x`, `y` hold every sample);
    /// `u`, the weights already transformed ([`Plan::winograd_weights`]);
    /// `inference`, a net whose weights stay the same ([`Winograd::layout`]).
    pub fn winograd_forward(
        &self,
        (kind, inference): (TileKind, bool),
        (w, u): (&[f32], Option<&[f32]>),
        bias: Option<&[f32]>,
        x: &[f32],
        y: &mut [f32],
    ) {
        let wg = self.transform(kind);
        let direction = if inference {
            Direction::Inference
        } else {
            Direction::Forward
        };
        self.winograd_batch(wg, direction, (w, u), bias, x, y);
    }

    /// How the forward of a batch of `batch` samples on `kind` tiles reads U
    /// (`inference`: see [`Winograd::layout`]).
    pub fn winograd_layout(&self, kind: TileKind, batch: usize, inference: bool) -> ULayout {
        self.transform(kind).layout(inference, false, batch)
    }

    /// The forward's U = G g Gᵀ of weights `w` in `layout`
    /// ([`Plan::winograd_layout`]), for a layer to keep while they (and the
    /// layout) stay the same.
    pub fn winograd_weights(&self, kind: TileKind, layout: ULayout, w: &[f32]) -> Vec<f32> {
        let (o, c) = (self.outputs, self.window.channels);
        let mut u = vec![0.0; kind.points() * o * c];
        let panels = layout == ULayout::Panels;
        transform_weights(w, [o, c], kind, (false, panels), &mut u);
        u
    }

    /// dx = ∂L/∂x for a whole batch from dy.
    pub fn winograd_data_gradient(&self, kind: TileKind, w: &[f32], dy: &[f32], dx: &mut [f32]) {
        let wg = self.data_gradient_transform(kind);
        self.winograd_batch(wg, Direction::DataGradient, (w, None), None, dy, dx);
    }

    /// dW += ∂L/∂W for a whole batch: the tile sums N accumulate over chunks in
    /// U's buffer, then go back to r×r once.
    pub fn winograd_weight_gradient(&self, kind: TileKind, x: &[f32], dy: &[f32], dw: &mut [f32]) {
        let wg = self.transform(kind);
        let (o, c) = (self.outputs, self.window.channels);
        let ch = wg.chunking(x.len());
        with_scratch(&WINOGRAD, [wg.points() * o * c, ch.v, ch.m], |n, v, d| {
            n.fill(0.0);
            if wg.banded() {
                wg.weight_gradient_banded(x, dy, n);
            } else {
                for (xs, dys) in x.chunks(ch.x).zip(dy.chunks(ch.y)) {
                    wg.weight_gradient_sums(xs, dys, v, d, n);
                }
            }
            weight_gradient_output(n, [o, c], kind, dw);
        });
    }

    fn winograd_batch(
        &self,
        wg: Winograd,
        direction: Direction,
        (w, kept): (&[f32], Option<&[f32]>),
        bias: Option<&[f32]>,
        x: &[f32],
        y: &mut [f32],
    ) {
        let (o, c) = (self.outputs, self.window.channels);
        let ch = wg.chunking(x.len());
        // F(2×2, 3×3) data gradients read the forward U at rotated points;
        // the others transform the rotated kernels.
        let backward_data = direction == Direction::DataGradient;
        let rotated_points = backward_data && wg.kind == TileKind::F2x3;
        let rotated_kernels = backward_data && !rotated_points;
        let samples = x.len() / (wg.inputs * wg.height * wg.width);
        let layout = wg.layout(direction == Direction::Inference, rotated_points, samples);
        // A layer that keeps U (deploy, TEST) will not transform into the
        // scratch again; the scratch of its first forward is let go rather
        // than held beside every kept U (4 MiB for a 256-channel layer).
        let u_len = if kept.is_some() {
            release(&WINOGRAD, 0);
            0
        } else {
            wg.points() * o * c
        };
        with_scratch(&WINOGRAD, [u_len, ch.v, ch.m], |fresh, v, m| {
            let u: &[f32] = match kept {
                Some(u) => u,
                None => {
                    let panels = layout == ULayout::Panels;
                    transform_weights(w, [o, c], wg.kind, (rotated_kernels, panels), fresh);
                    fresh
                }
            };
            if wg.banded() {
                return wg.run_banded(u, layout, bias, x, y);
            }
            for (xs, ys) in x.chunks(ch.x).zip(y.chunks_mut(ch.y)) {
                wg.run(u, layout, bias, xs, ys, v, m);
            }
        });
    }
}

/// How a batch splits into chunks: floats of a chunk of input (`x`) and output
/// (`y`) samples, and the V and M (or D) scratch of one chunk (none for banded
/// layers, whose bands keep their own).
struct Chunking {
    x: usize,
    y: usize,
    v: usize,
    m: usize,
}

impl Winograd {
    /// y = W ⋆ x (+ bias) for the samples of `x`, with U from
    /// [`transform_weights`]: Mᵀ_ξ (T × O) = V_ξ (T × C) · U_ξᵀ, where U_ξ is
    /// read transposed, or for the data gradient at its rotated point.
    #[allow(clippy::too_many_arguments)]
    fn run(
        &self,
        u: &[f32],
        layout: ULayout,
        bias: Option<&[f32]>,
        x: &[f32],
        y: &mut [f32],
        v: &mut [f32],
        m: &mut [f32],
    ) {
        let (c, o) = (self.inputs, self.outputs);
        let t_all = x.len() / (c * self.height * self.width) * self.tiles_per_sample();
        let m = &mut m[..self.points() * o * t_all];
        self.input_transform(x, v);
        let v: &[f32] = v;
        m.par_chunks_mut(t_all * o)
            .enumerate()
            .for_each(|(xi, mx)| self.point_gemm(u, layout, xi, v, mx, t_all));
        self.output_transform(m, bias, y);
    }

    /// How the point GEMMs of `samples` samples read U: in panels for
    /// `inference` (a net whose weights stay the same, which keeps U: a
    /// training step would scatter a fresh U into panels every forward, which
    /// cost more than the kernel saves) where the outputs fill whole panels,
    /// the CPU has FMA (the fused kernel's condition) and the GEMMs (a band,
    /// or a chunk of samples) are small enough ([`PANEL_MAX_TILES`]); else as
    /// rows, or at rotated points.
    pub(super) fn layout(&self, inference: bool, rotated_points: bool, samples: usize) -> ULayout {
        let rows = if self.banded() {
            self.band_len()
        } else {
            self.chunk_samples().min(samples) * self.tiles_per_sample()
        };
        if rotated_points {
            ULayout::RotatedPoints
        } else if inference
            && self.outputs.is_multiple_of(PANEL)
            && direct::available()
            && rows <= PANEL_MAX_TILES
            && self.inputs <= PANEL_MAX_INPUTS
        {
            ULayout::Panels
        } else {
            ULayout::Rows
        }
    }

    /// Mᵀ_ξ (t × O) = V_ξ (t × C) · U_ξᵀ for one point ξ, on this thread.
    /// With U in panels, the fused kernel of the shifted windows
    /// (`direct.rs`) runs it panel by panel: a panel's C × 16 floats stay in
    /// L1 while every tile passes, and neither operand is packed per call
    /// (in the GEMM crate the packing took a sixth of a batch-1 deploy forward).
    pub(super) fn point_gemm(
        &self,
        u: &[f32],
        layout: ULayout,
        xi: usize,
        v: &[f32],
        mx: &mut [f32],
        t: usize,
    ) {
        let (c, o) = (self.inputs, self.outputs);
        if layout == ULayout::Panels {
            for j0 in (0..o).step_by(PANEL) {
                let op = direct::Operands {
                    w: &v[xi * t * c..],
                    w_row: c,
                    packed: false,
                    p: &u[(xi * o + j0) * c..],
                    plane: PANEL,
                    channels: c,
                    shifts: &[0],
                };
                direct::rows(&op, t, PANEL, &mut mx[j0..], o);
            }
            return;
        }
        let weights = if layout == ULayout::RotatedPoints {
            View {
                data: &u[rotated_point(xi) * c * o..],
                rs: o,
                cs: 1,
            }
        } else {
            View {
                data: &u[xi * o * c..],
                rs: 1,
                cs: c,
            }
        };
        let tiles = View {
            data: &v[xi * t * c..],
            rs: c,
            cs: 1,
        };
        let out = ViewMut {
            data: mx,
            rs: o,
            cs: 1,
        };
        gemm_strided(1, t, o, c, 1.0, tiles, weights, 0.0, out);
    }

    /// Samples per chunk, as V and M fit [`TILE_BUDGET`].
    fn chunk_samples(&self) -> usize {
        let [v1, m1] = self.scratch(1);
        (TILE_BUDGET / v1.max(m1).max(1)).max(1)
    }

    /// The chunking of an input of `len` floats ([`Winograd::chunk_samples`]).
    fn chunking(&self, len: usize) -> Chunking {
        let in_len = self.inputs * self.height * self.width;
        let out_len = self.outputs * self.out[0] * self.out[1];
        let per_chunk = self.chunk_samples();
        let [v, m] = if self.banded() {
            [0, 0]
        } else {
            self.scratch(per_chunk.min(len / in_len))
        };
        Chunking {
            x: per_chunk * in_len,
            y: per_chunk * out_len,
            v,
            m,
        }
    }
}
