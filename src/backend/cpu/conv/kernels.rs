//! Per-sample CPU kernels of the convolution, in two strategies, reading the
//! weights W[o][c][tap] (tap = ki·kw + kj) in place through strides:
//! **shifted windows** (`shifted.rs`) where they apply, else
//! **im2col** for other strides and thin inputs (C/g small), as Caffe:
//!   y = W (O × K) · col (K × Ho·Wo), dW += dy · colᵀ, dx = col2im(Wᵀ · dy).
//!
//! `threads` > 1 (a batch smaller than the thread count) splits one sample's
//! work by output channels (forward, dW) and by input channels (dx).

use crate::backend::im2col::{col2im, im2col, Window};
use crate::backend::{gemm_strided, View, ViewMut};
use rayon::prelude::*;
use std::cell::RefCell;
use std::ops::Range;
use std::thread::LocalKey;

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
    pub(super) static SAMPLE: Scratch = const { RefCell::new([Vec::new(), Vec::new(), Vec::new()]) };
    /// The output grid of one channel range (split work inside a sample).
    pub(super) static RANGE: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
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
/// (contents unspecified), grown as needed and kept for the next call. The
/// buffers are taken out of `key` for the call: `f` runs parallel loops, and a
/// pool thread waiting in one may pick up another net's layer (nets run side
/// by side from parallel code), whose own call then starts from empty buffers
/// instead of finding these borrowed.
pub(super) fn with_scratch<R>(
    key: &'static LocalKey<Scratch>,
    lens: [usize; 3],
    f: impl FnOnce(&mut [f32], &mut [f32], &mut [f32]) -> R,
) -> R {
    let [mut a, mut b, mut c] = key.with(RefCell::take);
    let r = f(
        grown(&mut a, lens[0]),
        grown(&mut b, lens[1]),
        grown(&mut c, lens[2]),
    );
    key.with(|cell| cell.replace([a, b, c]));
    r
}

/// Frees buffer `i` of this thread's `key`, for a caller that will not need it
/// again soon: without this a buffer once grown is held for the thread's life.
pub(super) fn release(key: &'static LocalKey<Scratch>, i: usize) {
    key.with(|cell| cell.borrow_mut()[i] = Vec::new());
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
    split_rows_at(ranges(n, threads), a, ua, b, ub, f)
}

/// [`split_rows`] over the given contiguous ranges, which cover 0..n.
pub(super) fn split_rows_at<F>(
    parts: Vec<Range<usize>>,
    a: &mut [f32],
    ua: usize,
    b: &mut [f32],
    ub: usize,
    f: F,
) where
    F: Fn(Range<usize>, &mut [f32], &mut [f32]) + Sync,
{
    let n = parts.last().map_or(0, |r| r.end);
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
pub(super) fn by_group(
    range: Range<usize>,
    per_group: usize,
) -> impl Iterator<Item = (usize, Range<usize>)> {
    let groups = range.start / per_group..range.end.div_ceil(per_group);
    groups.map(move |g| {
        let lo = range.start.max(g * per_group) - g * per_group;
        (g, lo..range.end.min((g + 1) * per_group) - g * per_group)
    })
}

/// C ← A·B + beta·C on one thread.
#[allow(clippy::too_many_arguments)]
pub(super) fn mm(
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

    pub(super) fn taps(&self) -> usize {
        self.window.kernel[0] * self.window.kernel[1]
    }
    /// (input channels, output channels) per group.
    pub(super) fn per_group(&self) -> (usize, usize) {
        (self.window.channels / self.group, self.outputs / self.group)
    }

    /// y (O × Ho·Wo) = conv(x) + bias, for one sample; `packed`, W packed
    /// for the shifted windows ([`PackedWeights`]), read in its place.
    pub fn forward(
        &self,
        threads: usize,
        (w, packed): (&[f32], Option<&[f32]>),
        bias: Option<&[f32]>,
        x: &[f32],
        y: &mut [f32],
    ) {
        let (hw, t) = (self.window.col_cols(), self.taps());
        let (cg, og) = self.per_group();
        let k = cg * t;
        if self.shifted() {
            return self.forward_shifted(threads, (w, packed), bias, x, y);
        }
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
        let (hw, t) = (self.window.col_cols(), self.taps());
        let (cg, og) = self.per_group();
        let k = cg * t;
        // On planes under 64 positions (7×6) the per-tap products have an inner
        // dimension of a few dozen and write dW at a stride of kh·kw: one
        // im2col product each way does better.
        if self.shifted() && hw >= PER_SAMPLE_MIN_POSITIONS {
            return self.backward_shifted(threads, w, x, dy, dw, dx);
        }
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
            if let Some(dx) = dx {
                self.data_gradient_into(threads, w, dy, dcol, dx);
            }
        });
    }

    /// dx = ∂L/∂x for one sample, without the weight gradient: col2im(Wᵀ · dy)
    /// (the forward of a Deconvolution).
    pub fn data_gradient(&self, threads: usize, w: &[f32], dy: &[f32], dx: &mut [f32]) {
        let col_len = self.window.col_rows() * self.window.col_cols();
        with_scratch(&SAMPLE, [0, col_len, 0], |_, dcol, _| {
            self.data_gradient_into(threads, w, dy, dcol, dx)
        });
    }

    /// [`Plan::data_gradient`] with the column buffer given.
    fn data_gradient_into(
        &self,
        threads: usize,
        w: &[f32],
        dy: &[f32],
        dcol: &mut [f32],
        dx: &mut [f32],
    ) {
        let (hw, t) = (self.window.col_cols(), self.taps());
        let (cg, og) = self.per_group();
        let (k, c_all) = (cg * t, self.window.channels);
        let in_plane = self.window.height * self.window.width;
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
    }
}

#[cfg(test)]
mod tests {
    use super::{with_scratch, SAMPLE};

    /// A pool thread waiting inside a parallel loop may run another layer's
    /// call on the same thread: the nested call gets buffers of its own, and
    /// the outer call's buffers are kept for the next one.
    #[test]
    fn scratch_buffers_serve_a_nested_call_on_the_same_thread() {
        let outer = with_scratch(&SAMPLE, [4, 0, 0], |a, _, _| {
            a.fill(1.0);
            let inner = with_scratch(&SAMPLE, [3, 0, 0], |b, _, _| {
                b.fill(2.0);
                b.len()
            });
            assert!(
                a.iter().all(|&v| v == 1.0),
                "the nested call wrote the outer buffer"
            );
            inner + a.len()
        });
        assert_eq!(outer, 7);
        let kept = SAMPLE.with(|cell| cell.borrow()[0].clone());
        assert_eq!(kept, [1.0; 4], "the outer call's buffer is the one kept");
    }
}
