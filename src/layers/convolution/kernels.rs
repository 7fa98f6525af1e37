//! Per-sample CPU kernels of the convolution, in two strategies, reading the
//! weights W[o][c][tap] (tap = ki·kw + kj) in place through strides.
//!
//! **Shifted windows** (stride 1, any dilation, enough channels per group): with the
//! input zero-padded to P (C × Hp × Wp) and the output computed on Wp-pitched rows
//! (grid index j = oy·Wp + ox, N = (Ho−1)·Wp + Wo of them), tap (ki, kj) reads
//! P[c, s + j] with s = ki·dh·Wp + kj·dw, a plain strided matrix. So
//!   y_grid  = Σ_taps W_tap (O × C) · P[:, s..s+N]          (forward)
//!   dW_tap += dy_grid (O × N) · P[:, s..s+N]ᵀ               (dy_grid zero off the valid columns)
//!   dP[:, s..s+N] += W_tapᵀ (C × O) · dy_grid               (backward to data)
//! Each tap is one GEMM with no column buffer, no im2col/col2im traffic.
//!
//! **im2col** for strided convolutions and thin inputs (C/g small), as Caffe:
//!   y = W (O × K) · col (K × Ho·Wo), dW += dy · colᵀ, dx = col2im(Wᵀ · dy).
//!
//! `threads` > 1 (a batch smaller than the thread count) splits one sample's
//! work by output channels (forward, dW) and by input channels (dx).

use crate::backend::copy::{copy, zero};
use crate::backend::im2col::{col2im, im2col, Window};
use crate::backend::{gemm_strided, View, ViewMut};
use rayon::prelude::*;
use std::cell::RefCell;
use std::ops::Range;
use std::thread::LocalKey;

/// Below this many input channels per group a tap's GEMM is too thin (K = C/g)
/// and im2col's K = C/g·kh·kw wins.
const SHIFTED_MIN_CHANNELS: usize = 8;

/// Below this many output positions a sample's GEMMs are too narrow to run
/// well, and a batch runs in chunks of samples side by side (`chunked.rs`).
const PER_SAMPLE_MIN_POSITIONS: usize = 64;

/// Up to this many positions chunks still win when there are enough output
/// channels per group for the chunk's threaded GEMMs to split their rows well
/// (measured: SphereFace's 14×12 stage with 256 outputs gains, LeNet++'s 14×14
/// stage with 64 outputs loses). Stride-2 layers with shifted windows over
/// phases need no im2col and run per sample here (SphereFace's conv3_1, 14×12
/// out, is 1.1× faster so).
const CHUNK_MAX_POSITIONS: usize = 256;
const CHUNK_MIN_OUTPUTS: usize = 128;

/// One sample's convolution: window geometry plus output channels and groups.
#[derive(Clone, Copy)]
pub struct Plan {
    pub window: Window,
    pub outputs: usize,
    pub group: usize,
}

thread_local! {
    /// Per-sample buffers (padded image, column matrix, dy grid, dP), reused by
    /// every convolution on this thread so they are not re-allocated per sample.
    static SAMPLE: Scratch = const { RefCell::new([Vec::new(), Vec::new(), Vec::new()]) };
    /// The output grid of one channel range (split work inside a sample).
    static RANGE: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

pub(super) fn grown(v: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if v.len() < len {
        v.resize(len, 0.0);
    }
    &mut v[..len]
}

/// Three reusable buffers of one thread.
pub(super) type Scratch = RefCell<[Vec<f32>; 3]>;

/// Runs `f` with slices of `lens` floats from this thread's buffers in `key`
/// (contents unspecified), grown as needed and kept for the next call.
pub(super) fn with_scratch<R>(
    key: &'static LocalKey<Scratch>,
    lens: [usize; 3],
    f: impl FnOnce(&mut [f32], &mut [f32], &mut [f32]) -> R,
) -> R {
    key.with(|cell| {
        let [a, b, c] = &mut *cell.borrow_mut();
        f(grown(a, lens[0]), grown(b, lens[1]), grown(c, lens[2]))
    })
}

/// Splits 0..n into at most `parts` contiguous ranges.
pub fn ranges(n: usize, parts: usize) -> Vec<Range<usize>> {
    let parts = parts.clamp(1, n.max(1));
    (0..parts)
        .map(|p| p * n / parts..(p + 1) * n / parts)
        .collect()
}

/// Splits `data` into consecutive chunks of `unit` × each range's length.
pub fn split_parts<'a>(
    mut data: &'a mut [f32],
    parts: &[Range<usize>],
    unit: usize,
) -> Vec<&'a mut [f32]> {
    let mut out = Vec::with_capacity(parts.len());
    for r in parts {
        let (head, tail) = std::mem::take(&mut data).split_at_mut(r.len() * unit);
        out.push(head);
        data = tail;
    }
    out
}

/// Calls `f(range, rows of a, rows of b)` for ranges of 0..n, on `threads` threads;
/// range r owns rows r of `a` (`ua` values each) and of `b` (`ub` each).
pub(super) fn split_rows<F>(
    threads: usize,
    n: usize,
    a: &mut [f32],
    ua: usize,
    b: &mut [f32],
    ub: usize,
    f: F,
) where
    F: Fn(Range<usize>, &mut [f32], &mut [f32]) + Sync,
{
    let parts = ranges(n, threads);
    let pairs = split_parts(a, &parts, ua)
        .into_iter()
        .zip(split_parts(b, &parts, ub));
    if parts.len() == 1 {
        pairs.for_each(|(a, b)| f(0..n, a, b));
    } else {
        let jobs: Vec<_> = parts.into_iter().zip(pairs).collect();
        jobs.into_par_iter().for_each(|(r, (a, b))| f(r, a, b));
    }
}

/// The pieces of `range` lying in each group: (group, rows within the group).
fn by_group(range: Range<usize>, per_group: usize) -> impl Iterator<Item = (usize, Range<usize>)> {
    let groups = range.start / per_group..range.end.div_ceil(per_group);
    groups.map(move |g| {
        let lo = range.start.max(g * per_group) - g * per_group;
        (g, lo..range.end.min((g + 1) * per_group) - g * per_group)
    })
}

/// C ← A·B + beta·C on one thread.
#[allow(clippy::too_many_arguments)]
fn mm(
    m: usize,
    n: usize,
    k: usize,
    a: (&[f32], usize, usize),
    b: (&[f32], usize, usize),
    beta: f32,
    c: (&mut [f32], usize, usize),
) {
    gemm_strided(
        1,
        m,
        n,
        k,
        1.0,
        View {
            data: a.0,
            rs: a.1,
            cs: a.2,
        },
        View {
            data: b.0,
            rs: b.1,
            cs: b.2,
        },
        beta,
        ViewMut {
            data: c.0,
            rs: c.1,
            cs: c.2,
        },
    );
}

impl Plan {
    /// Whether a batch of `batch` samples on `threads` threads runs as chunks
    /// of samples (small output planes) rather than per sample.
    /// A batch smaller than the thread count stays per sample, split by channels.
    pub fn chunked(&self, batch: usize, threads: usize) -> bool {
        let hw = self.window.col_cols();
        let wide = self.outputs / self.group >= CHUNK_MIN_OUTPUTS && !self.phased_shifted();
        batch >= threads && (hw < PER_SAMPLE_MIN_POSITIONS || hw < CHUNK_MAX_POSITIONS && wide)
    }

    /// Shifted windows: one GEMM per tap over the zero-padded image (stride 1),
    /// or over one of its four stride-2 phases, pad[2y + a][2x + b] for
    /// (a, b) ∈ {0, 1}², where tap (i, j) reads phase (i mod 2, j mod 2)
    /// shifted by (⌊i/2⌋, ⌊j/2⌋) (stride 2, undilated).
    pub fn shifted(&self) -> bool {
        let w = &self.window;
        (w.stride == [1, 1] || w.stride == [2, 2] && w.dilation == [1, 1])
            && w.channels / self.group >= SHIFTED_MIN_CHANNELS
    }
    fn phased(&self) -> bool {
        self.window.stride == [2, 2]
    }
    fn phased_shifted(&self) -> bool {
        self.phased() && self.shifted()
    }
    pub(super) fn taps(&self) -> usize {
        self.window.kernel[0] * self.window.kernel[1]
    }
    /// Padded rows and columns, Hp × Wp.
    fn padded(&self) -> [usize; 2] {
        let w = &self.window;
        [w.height + 2 * w.pad[0], w.width + 2 * w.pad[1]]
    }
    /// Rows and columns of one phase (stride 2) or of the padded image.
    fn phase(&self) -> [usize; 2] {
        let [hp, wp] = self.padded();
        if self.phased() {
            [hp.div_ceil(2), wp.div_ceil(2)]
        } else {
            [hp, wp]
        }
    }
    /// Floats per channel: the padded image, or its four phases back to back.
    fn plane(&self) -> usize {
        let [h, w] = self.phase();
        if self.phased() {
            4 * h * w
        } else {
            h * w
        }
    }
    fn pitch(&self) -> usize {
        self.phase()[1]
    }
    /// Grid columns N = (Ho−1)·pitch + Wo: the last row's pad columns are never needed.
    fn grid(&self) -> usize {
        (self.window.out[0] - 1) * self.pitch() + self.window.out[1]
    }
    /// Offset of tap t in a channel's plane.
    fn shift(&self, tap: usize) -> usize {
        let w = &self.window;
        let (ki, kj) = (tap / w.kernel[1], tap % w.kernel[1]);
        if self.phased() {
            let [h, wq] = self.phase();
            ((ki % 2) * 2 + kj % 2) * h * wq + (ki / 2) * wq + kj / 2
        } else {
            ki * w.dilation[0] * self.pitch() + kj * w.dilation[1]
        }
    }
    /// Where input pixel (y, x) sits in its channel's plane.
    fn place(&self, y: usize, x: usize) -> usize {
        let (py, px) = (y + self.window.pad[0], x + self.window.pad[1]);
        if self.phased() {
            let [h, wq] = self.phase();
            ((py % 2) * 2 + px % 2) * h * wq + (py / 2) * wq + px / 2
        } else {
            py * self.pitch() + px
        }
    }
    /// (input channels, output channels) per group.
    pub(super) fn per_group(&self) -> (usize, usize) {
        (self.window.channels / self.group, self.outputs / self.group)
    }

    /// Copies one image into zero-padded C planes (see [`Plan::plane`]).
    fn pad_into(&self, x: &[f32], p: &mut [f32]) {
        let w = &self.window;
        if self.phased() {
            for (plane, src) in p.chunks_mut(self.plane()).zip(x.chunks(w.height * w.width)) {
                zero(plane);
                for (y, line) in src.chunks(w.width).enumerate() {
                    // Even and odd padded columns of the row land in two phases.
                    for parity in 0..2 {
                        let x0 = (parity + w.pad[1]) % 2;
                        let at = self.place(y, x0);
                        for (dst, &v) in plane[at..].iter_mut().zip(line.iter().skip(x0).step_by(2))
                        {
                            *dst = v;
                        }
                    }
                }
            }
            return;
        }
        let wp = self.pitch();
        for (plane, src) in p.chunks_mut(self.plane()).zip(x.chunks(w.height * w.width)) {
            zero(&mut plane[..w.pad[0] * wp]);
            zero(&mut plane[(w.pad[0] + w.height) * wp..]);
            for (row, line) in src.chunks(w.width).enumerate() {
                let dst = &mut plane[(w.pad[0] + row) * wp..(w.pad[0] + row + 1) * wp];
                zero(&mut dst[..w.pad[1]]);
                copy(&mut dst[w.pad[1]..w.pad[1] + w.width], line);
                zero(&mut dst[w.pad[1] + w.width..]);
            }
        }
    }

    /// dx = the interior of dP, the gradient of one image's padded planes.
    fn unpad(&self, dp: &[f32], dx: &mut [f32]) {
        let w = &self.window;
        for (dplane, src) in dx
            .chunks_mut(w.height * w.width)
            .zip(dp.chunks(self.plane()))
        {
            for (y, line) in dplane.chunks_mut(w.width).enumerate() {
                if self.phased() {
                    for parity in 0..2 {
                        let x0 = (parity + w.pad[1]) % 2;
                        let at = self.place(y, x0);
                        for (d, &v) in line.iter_mut().skip(x0).step_by(2).zip(&src[at..]) {
                            *d = v;
                        }
                    }
                } else {
                    let at = self.place(y, 0);
                    copy(line, &src[at..at + w.width]);
                }
            }
        }
    }

    /// y (O × Ho·Wo) = conv(x) + bias, for one sample.
    pub fn forward(
        &self,
        threads: usize,
        w: &[f32],
        bias: Option<&[f32]>,
        x: &[f32],
        y: &mut [f32],
    ) {
        let ([_, wo], hw, t) = (self.window.out, self.window.col_cols(), self.taps());
        let (cg, og) = self.per_group();
        let k = cg * t;
        if self.shifted() {
            let (plane, n, wp) = (self.plane(), self.grid(), self.pitch());
            with_scratch(&SAMPLE, [self.window.channels * plane, 0, 0], |p, _, _| {
                self.pad_into(x, p);
                let p: &[f32] = p;
                split_rows(threads, self.outputs, y, hw, &mut [], 0, |rows, y, _| {
                    RANGE.with(|cell| {
                        let mut buf = cell.borrow_mut();
                        let grid = grown(&mut buf, rows.len() * n);
                        let mut at = 0;
                        for (g, r) in by_group(rows.clone(), og) {
                            for tap in 0..t {
                                let a = &w[(g * og + r.start) * k + tap..];
                                let b = &p[g * cg * plane + self.shift(tap)..];
                                let beta = if tap == 0 { 0.0 } else { 1.0 };
                                mm(
                                    r.len(),
                                    n,
                                    cg,
                                    (a, k, t),
                                    (b, plane, 1),
                                    beta,
                                    (&mut grid[at * n..], n, 1),
                                );
                            }
                            at += r.len();
                        }
                        for (i, out) in y.chunks_mut(hw).enumerate() {
                            let b = bias.map_or(0.0, |b| b[rows.start + i]);
                            for (oy, line) in out.chunks_mut(wo).enumerate() {
                                let src = &grid[i * n + oy * wp..i * n + oy * wp + wo];
                                line.iter_mut().zip(src).for_each(|(v, &s)| *v = s + b);
                            }
                        }
                    })
                });
            });
        } else {
            with_scratch(&SAMPLE, [self.window.col_rows() * hw, 0, 0], |col, _, _| {
                im2col(&self.window, x, col);
                let col: &[f32] = col;
                split_rows(threads, self.outputs, y, hw, &mut [], 0, |rows, y, _| {
                    let mut at = 0;
                    for (g, r) in by_group(rows.clone(), og) {
                        let a = &w[(g * og + r.start) * k..];
                        mm(
                            r.len(),
                            hw,
                            k,
                            (a, k, 1),
                            (&col[g * k * hw..], hw, 1),
                            0.0,
                            (&mut y[at * hw..], hw, 1),
                        );
                        at += r.len();
                    }
                    if let Some(bias) = bias {
                        for (row, &b) in y.chunks_mut(hw).zip(&bias[rows]) {
                            row.iter_mut().for_each(|v| *v += b);
                        }
                    }
                });
            });
        }
    }

    /// dW += ∂L/∂W (`dw` in W's layout) and, when given, dx = ∂L/∂x for one sample.
    pub fn backward(
        &self,
        threads: usize,
        w: &[f32],
        x: &[f32],
        dy: &[f32],
        dw: &mut [f32],
        dx: Option<&mut [f32]>,
    ) {
        let ([_, wo], hw, t) = (self.window.out, self.window.col_cols(), self.taps());
        let (cg, og) = self.per_group();
        let (k, c_all) = (cg * t, self.window.channels);
        let in_plane = self.window.height * self.window.width;
        if self.shifted() {
            let (plane, n, wp) = (self.plane(), self.grid(), self.pitch());
            let dp_len = if dx.is_some() { c_all * plane } else { 0 };
            with_scratch(
                &SAMPLE,
                [c_all * plane, self.outputs * n, dp_len],
                |p, dgrid, dp| {
                    // dy on the grid, zero in the pad columns so they add nothing.
                    for (src, dst) in dy.chunks(hw).zip(dgrid.chunks_mut(n)) {
                        for (oy, line) in src.chunks(wo).enumerate() {
                            copy(&mut dst[oy * wp..oy * wp + wo], line);
                            zero(&mut dst[oy * wp + wo..((oy + 1) * wp).min(n)]);
                        }
                    }
                    self.pad_into(x, p);
                    let (p, dgrid): (&[f32], &[f32]) = (p, dgrid);
                    split_rows(threads, self.outputs, dw, k, &mut [], 0, |rows, dw, _| {
                        let mut at = 0;
                        for (g, r) in by_group(rows, og) {
                            let a = &dgrid[(g * og + r.start) * n..];
                            for tap in 0..t {
                                let b = &p[g * cg * plane + self.shift(tap)..];
                                mm(
                                    r.len(),
                                    cg,
                                    n,
                                    (a, n, 1),
                                    (b, 1, plane),
                                    1.0,
                                    (&mut dw[at * k + tap..], k, t),
                                );
                            }
                            at += r.len();
                        }
                    });
                    let Some(dx) = dx else { return };
                    // dP's interior is dx; each channel range owns its planes of both.
                    split_rows(threads, c_all, dp, plane, dx, in_plane, |chans, dp, dx| {
                        dp.fill(0.0);
                        let mut at = 0;
                        for (g, r) in by_group(chans, cg) {
                            for tap in 0..t {
                                let a = &w[g * og * k + r.start * t + tap..];
                                let c = &mut dp[at * plane + self.shift(tap)..];
                                mm(
                                    r.len(),
                                    n,
                                    og,
                                    (a, t, k),
                                    (&dgrid[g * og * n..], n, 1),
                                    1.0,
                                    (c, plane, 1),
                                );
                            }
                            at += r.len();
                        }
                        self.unpad(dp, dx);
                    });
                },
            );
        } else {
            let col_len = self.window.col_rows() * hw;
            let dcol_len = if dx.is_some() { col_len } else { 0 };
            with_scratch(&SAMPLE, [col_len, dcol_len, 0], |col, dcol, _| {
                im2col(&self.window, x, col);
                let col: &[f32] = col;
                split_rows(threads, self.outputs, dw, k, &mut [], 0, |rows, dw, _| {
                    let mut at = 0;
                    for (g, r) in by_group(rows, og) {
                        let a = &dy[(g * og + r.start) * hw..];
                        mm(
                            r.len(),
                            k,
                            hw,
                            (a, hw, 1),
                            (&col[g * k * hw..], 1, hw),
                            1.0,
                            (&mut dw[at * k..], k, 1),
                        );
                        at += r.len();
                    }
                });
                let Some(dx) = dx else { return };
                // Each channel range owns its rows of dcol and its planes of dx.
                split_rows(
                    threads,
                    c_all,
                    dcol,
                    t * hw,
                    dx,
                    in_plane,
                    |chans, dcol, dx| {
                        let mut at = 0;
                        for (g, r) in by_group(chans.clone(), cg) {
                            let a = &w[g * og * k + r.start * t..];
                            let rows = r.len() * t;
                            mm(
                                rows,
                                hw,
                                og,
                                (a, 1, k),
                                (&dy[g * og * hw..], hw, 1),
                                0.0,
                                (&mut dcol[at * t * hw..], hw, 1),
                            );
                            at += r.len();
                        }
                        let sub = Window {
                            channels: chans.len(),
                            ..self.window
                        };
                        col2im(&sub, dcol, dx);
                    },
                );
            });
        }
    }
}
