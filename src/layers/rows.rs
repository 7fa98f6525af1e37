//! Parallel loops shared by element-wise and per-channel layers.
//! Legend: a blob viewed as outer × dim × inner; a row is one (o, d) run of `inner`
//! contiguous values, and d is its channel (BatchNorm's C, Scale's and Bias's operand index).

use crate::layer_io::LayerIo;
use rayon::prelude::*;
use std::ops::Range;

/// Elements per parallel task: large enough to amortise scheduling.
pub const CHUNK: usize = 1 << 14;

/// Blobs up to this many elements are processed on the calling thread by the
/// helpers that say so: handing a pass over 256 KB to the pool (waking a
/// worker, waiting for it) costs about as much as the pass itself.
pub const SERIAL_MAX: usize = 4 * CHUNK;

/// Rows per task so that one task covers about [`CHUNK`] elements.
pub fn rows_per_task(inner: usize) -> usize {
    (CHUNK / inner.max(1)).max(1)
}

/// Per channel d: Σ_{o,i} f(a[o,d,i], b[o,d,i]), accumulated in f64 (row sums in
/// parallel, then a serial sum over o).
pub fn channel_sums(
    a: &[f32],
    b: &[f32],
    dim: usize,
    inner: usize,
    f: impl Fn(f32, f32) -> f64 + Sync,
) -> Vec<f64> {
    let mut out = vec![0.0f64; dim];
    if inner == 0 || dim == 0 {
        return out;
    }
    let rows: Vec<f64> = a
        .par_chunks(inner)
        .zip(b.par_chunks(inner))
        .with_min_len(rows_per_task(inner))
        .map(|(ra, rb)| ra.iter().zip(rb).map(|(&x, &y)| f(x, y)).sum())
        .collect();
    for (r, v) in rows.into_iter().enumerate() {
        out[r % dim] += v;
    }
    out
}

/// Calls `f(d, row)` on every row of `y`, in parallel above [`SERIAL_MAX`] elements.
pub fn for_rows(y: &mut [f32], dim: usize, inner: usize, f: impl Fn(usize, &mut [f32]) + Sync) {
    if inner == 0 || dim == 0 {
        return;
    }
    if y.len() <= SERIAL_MAX {
        y.chunks_mut(inner)
            .enumerate()
            .for_each(|(r, row)| f(r % dim, row));
        return;
    }
    y.par_chunks_mut(inner)
        .with_min_len(rows_per_task(inner))
        .enumerate()
        .for_each(|(r, row)| f(r % dim, row));
}

/// Calls `f(d, row, other_row)` on every row of `y` beside the same row of `x`, in
/// parallel above [`SERIAL_MAX`] elements.
pub fn for_rows_with(
    y: &mut [f32],
    x: &[f32],
    dim: usize,
    inner: usize,
    f: impl Fn(usize, &mut [f32], &[f32]) + Sync,
) {
    if inner == 0 || dim == 0 {
        return;
    }
    if y.len() <= SERIAL_MAX {
        y.chunks_mut(inner)
            .zip(x.chunks(inner))
            .enumerate()
            .for_each(|(r, (row, other))| f(r % dim, row, other));
        return;
    }
    y.par_chunks_mut(inner)
        .zip(x.par_chunks(inner))
        .with_min_len(rows_per_task(inner))
        .enumerate()
        .for_each(|(r, (row, other))| f(r % dim, row, other));
}

/// Applies `f` to every element of `y`, in parallel chunks.
pub fn map(y: &mut [f32], f: impl Fn(f32) -> f32 + Sync) {
    y.par_chunks_mut(CHUNK)
        .for_each(|part| part.iter_mut().for_each(|v| *v = f(*v)));
}

/// `d ← f(d, s)` element-wise over `d` beside `s`, in parallel chunks.
pub fn zip_map(d: &mut [f32], s: &[f32], f: impl Fn(f32, f32) -> f32 + Sync) {
    d.par_chunks_mut(CHUNK)
        .zip(s.par_chunks(CHUNK))
        .for_each(|(dp, sp)| dp.iter_mut().zip(sp).for_each(|(v, &w)| *v = f(*v, w)));
}

/// Calls `f(span, part)` on chunks of `y`, `part` being `y[span]`, so that `f` can
/// read the same span of other arrays; in parallel above [`SERIAL_MAX`] elements.
pub fn for_spans(y: &mut [f32], f: impl Fn(Range<usize>, &mut [f32]) + Sync) {
    if y.len() <= SERIAL_MAX {
        f(0..y.len(), y);
        return;
    }
    y.par_chunks_mut(CHUNK)
        .enumerate()
        .for_each(|(i, part)| f(i * CHUNK..i * CHUNK + part.len(), part));
}

/// y ← Σ_k c_k·x_k element-wise (c_k = 1 where `coeff` is empty; `xs` not empty),
/// in parallel chunks: each chunk of y takes every term while it is in cache, so
/// y is written once.
pub fn weighted_sum(y: &mut [f32], xs: &[&[f32]], coeff: &[f32]) {
    let c = |k: usize| coeff.get(k).copied().unwrap_or(1.0);
    for_spans(y, |span, part| {
        let c0 = c(0);
        part.iter_mut()
            .zip(&xs[0][span.clone()])
            .for_each(|(v, &x)| *v = c0 * x);
        for (k, x) in xs.iter().enumerate().skip(1) {
            let ck = c(k);
            part.iter_mut()
                .zip(&x[span.clone()])
                .for_each(|(v, &x)| *v += ck * x);
        }
    });
}

/// d_k ← c_k·s for every (c_k, d_k) in `dsts`, in one pass over chunks of `s`
/// (each chunk of s is read once for all k), parallel above [`SERIAL_MAX`] elements.
pub fn scaled_copies(s: &[f32], dsts: Vec<(f32, &mut [f32])>) {
    let scale =
        |c: f32, d: &mut [f32], s: &[f32]| d.iter_mut().zip(s).for_each(|(v, &x)| *v = c * x);
    if s.len() <= SERIAL_MAX {
        dsts.into_iter().for_each(|(c, d)| scale(c, d, s));
        return;
    }
    let mut tasks: Vec<Vec<(f32, &mut [f32])>> = s.chunks(CHUNK).map(|_| Vec::new()).collect();
    for (c, d) in dsts {
        for (task, part) in tasks.iter_mut().zip(d.chunks_mut(CHUNK)) {
            task.push((c, part));
        }
    }
    tasks
        .into_par_iter()
        .zip(s.par_chunks(CHUNK))
        .for_each(|(outs, sp)| {
            for (c, d) in outs {
                scale(c, d, sp);
            }
        });
}

/// Backward of an element-wise layer whose gradient is a function of its output
/// (Sigmoid, TanH): loads dy into bottom 0's diff, then `dx ← f(dy, y)` with y the
/// top's data, which is the bottom's own data when running in place.
pub fn backward_from_top_data(io: &mut LayerIo, f: impl Fn(f32, f32) -> f32 + Sync) {
    io.copy_top_diff_to_bottom(0);
    if io.in_place(0) {
        let (y, d) = io.bottom_mut(0).data_and_diff_mut();
        zip_map(d, y, f);
    } else {
        let (t, b) = io.top_and_bottom_mut(0, 0);
        zip_map(b.diff_mut(), t.data(), f);
    }
}
