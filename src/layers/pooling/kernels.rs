//! Pooling of one (n, c) plane: H×W input values → Ho×Wo outputs, row-major.
//! Window of output o along an axis: a = o·s − p, e = min(a + k, len + p); AVE divides by
//! the product of (e − a) over both axes (padding counted, overhang past it not), then the
//! window is clipped to [max(a, 0), min(e, len)).
//! MAX: y = max over the window, index = first maximal element (h·W + w).
//! STOCHASTIC, TRAIN: with S = Σ x (x ≥ 0) and u ~ U[0, 1), picks the first element whose
//! running sum reaches u·S, so x_i is drawn with probability x_i/S; y = x_pick.
//! STOCHASTIC, TEST: y = Σ x²/Σ x (the probability-weighted average), with
//! dy/dx_i = (2x_i·S − Q)/S², S = Σ x, Q = Σ x².

use std::ops::Range;

/// How forward pooled (backward follows the same rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Max,
    Ave,
    Sample,
    Average,
}

/// Geometry of one plane.
#[derive(Debug, Clone, Copy, Default)]
pub struct Plane {
    pub input: [usize; 2],
    pub output: [usize; 2],
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub pad: [usize; 2],
}

/// Smallest Σ x of a STOCHASTIC TEST window, so that an all-zero window gives 0, not 0/0.
const MIN_SUM: f32 = f32::MIN_POSITIVE;

impl Plane {
    pub fn in_len(&self) -> usize {
        self.input[0] * self.input[1]
    }
    pub fn out_len(&self) -> usize {
        self.output[0] * self.output[1]
    }

    /// Clipped window of output `o` along `axis`, and its extent before clipping.
    fn window(&self, axis: usize, o: usize) -> (Range<usize>, usize) {
        let (k, s, p, len) = (
            self.kernel[axis] as isize,
            self.stride[axis] as isize,
            self.pad[axis] as isize,
            self.input[axis] as isize,
        );
        let start = o as isize * s - p;
        let end = (start + k).min(len + p);
        let clipped = start.max(0) as usize..end.min(len) as usize;
        (clipped, (end - start) as usize)
    }

    /// Calls `f(output index, window rows, window columns, pooled size)` per output.
    fn for_windows(&self, mut f: impl FnMut(usize, Range<usize>, Range<usize>, usize)) {
        for i in 0..self.output[0] {
            let (rows, hs) = self.window(0, i);
            for j in 0..self.output[1] {
                let (cols, ws) = self.window(1, j);
                f(i * self.output[1] + j, rows.clone(), cols, hs * ws);
            }
        }
    }

    /// Input indices of a window, row-major.
    fn cells(&self, rows: Range<usize>, cols: Range<usize>) -> impl Iterator<Item = usize> {
        let w = self.input[1];
        rows.flat_map(move |r| cols.clone().map(move |c| r * w + c))
    }

    /// Forward of one plane; `index` receives the chosen input (MAX, Sample), `u` holds one
    /// uniform draw per output (Sample).
    pub fn forward(&self, mode: Mode, x: &[f32], y: &mut [f32], index: &mut [u32], u: &[f32]) {
        if mode == Mode::Max && self.pad == [0, 0] {
            return self.max_unpadded(x, y, index);
        }
        let w = self.input[1];
        self.for_windows(|o, rows, cols, size| match mode {
            Mode::Max => {
                let mut best = rows.start * w + cols.start;
                for r in rows {
                    for c in r * w + cols.start..r * w + cols.end {
                        if x[c] > x[best] {
                            best = c;
                        }
                    }
                }
                y[o] = x[best];
                index[o] = best as u32;
            }
            Mode::Ave => y[o] = self.cells(rows, cols).map(|c| x[c]).sum::<f32>() / size as f32,
            Mode::Sample => {
                let total: f32 = self.cells(rows.clone(), cols.clone()).map(|c| x[c]).sum();
                let threshold = u[o] * total;
                let mut running = 0.0;
                let mut pick = 0;
                for c in self.cells(rows, cols) {
                    pick = c;
                    running += x[c];
                    if running >= threshold {
                        break;
                    }
                }
                y[o] = x[pick];
                index[o] = pick as u32;
            }
            Mode::Average => {
                let (s, q) = self.sums(x, rows, cols);
                y[o] = q / s;
            }
        });
    }

    /// MAX without padding, the common case: window (i, j) starts at
    /// (i·sh, j·sw) and is clipped only at the far edges (ceil rounding), so
    /// rows are plain slices and no window needs the signed arithmetic above.
    /// Same rule as the general path: the first maximal element wins.
    fn max_unpadded(&self, x: &[f32], y: &mut [f32], index: &mut [u32]) {
        let ([h, w], [_, wo]) = (self.input, self.output);
        let ([kh, kw], [sh, sw]) = (self.kernel, self.stride);
        let rows = y.chunks_exact_mut(wo).zip(index.chunks_exact_mut(wo));
        for (i, (y, index)) in rows.enumerate() {
            let r0 = i * sh;
            let r1 = (r0 + kh).min(h);
            for (j, (y, index)) in y.iter_mut().zip(index.iter_mut()).enumerate() {
                let c0 = j * sw;
                let c1 = (c0 + kw).min(w);
                let mut best = r0 * w + c0;
                let mut v = x[best];
                for r in r0..r1 {
                    let line = &x[r * w + c0..r * w + c1];
                    for (k, &e) in line.iter().enumerate() {
                        if e > v {
                            v = e;
                            best = r * w + c0 + k;
                        }
                    }
                }
                *y = v;
                *index = best as u32;
            }
        }
    }

    /// (MIN_SUM + Σ x, Σ x²) over a window.
    fn sums(&self, x: &[f32], rows: Range<usize>, cols: Range<usize>) -> (f32, f32) {
        self.cells(rows, cols)
            .fold((MIN_SUM, 0.0), |(s, q), c| (s + x[c], q + x[c] * x[c]))
    }

    /// Backward of one plane: overwrites `dx` from `dy`.
    pub fn backward(&self, mode: Mode, x: &[f32], dy: &[f32], index: &[u32], dx: &mut [f32]) {
        dx.fill(0.0);
        match mode {
            Mode::Max | Mode::Sample => {
                for (&g, &i) in dy.iter().zip(index) {
                    dx[i as usize] += g;
                }
            }
            Mode::Ave => self.for_windows(|o, rows, cols, size| {
                let g = dy[o] / size as f32;
                self.cells(rows, cols).for_each(|c| dx[c] += g);
            }),
            Mode::Average => self.for_windows(|o, rows, cols, _| {
                let (s, q) = self.sums(x, rows.clone(), cols.clone());
                for c in self.cells(rows, cols) {
                    dx[c] += dy[o] * (2.0 * x[c] * s - q) / (s * s);
                }
            }),
        }
    }
}
