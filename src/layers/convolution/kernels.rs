//! Per-sample CPU kernels of the convolution, in two strategies.
//!
//! **Shifted windows** (stride 1, any dilation, enough channels per group): with the
//! input zero-padded to P (C × Hp × Wp) and the output computed on Hp-pitched rows
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
//! Weights for the shifted form are used tap-major: Wt[g][tap][o][c] = W[g·O/g + o][c][tap].

use crate::backend::copy::{copy, zero};
use crate::backend::im2col::{col2im, im2col, Window};
use crate::backend::{gemm_strided, View, ViewMut};
use std::cell::RefCell;

/// Below this many input channels per group a tap's GEMM is too thin (K = C/g)
/// and im2col's K = C/g·kh·kw wins.
const SHIFTED_MIN_CHANNELS: usize = 8;

/// One sample's convolution: window geometry plus output channels and groups.
#[derive(Clone, Copy)]
pub struct Plan {
    pub window: Window,
    pub outputs: usize,
    pub group: usize,
}

thread_local! {
    /// Scratch buffers reused by every convolution on this thread, so large
    /// padded images and column matrices are not re-allocated (and page-faulted
    /// in) for every sample and layer.
    static SCRATCH: RefCell<[Vec<f32>; 2]> = const { RefCell::new([Vec::new(), Vec::new()]) };
}

/// Runs `f` with two scratch slices of the given lengths (contents unspecified).
fn with_scratch<R>(len0: usize, len1: usize, f: impl FnOnce(&mut [f32], &mut [f32]) -> R) -> R {
    SCRATCH.with(|cell| {
        let mut bufs = cell.borrow_mut();
        let [a, b] = &mut *bufs;
        if a.len() < len0 {
            a.resize(len0, 0.0);
        }
        if b.len() < len1 {
            b.resize(len1, 0.0);
        }
        f(&mut a[..len0], &mut b[..len1])
    })
}

impl Plan {
    pub fn shifted(&self) -> bool {
        self.window.stride == [1, 1] && self.window.channels / self.group >= SHIFTED_MIN_CHANNELS
    }
    fn taps(&self) -> usize {
        self.window.kernel[0] * self.window.kernel[1]
    }
    fn padded(&self) -> [usize; 2] {
        let w = &self.window;
        [w.height + 2 * w.pad[0], w.width + 2 * w.pad[1]]
    }
    /// Grid columns N = (Ho−1)·Wp + Wo: the last row's pad columns are never needed.
    fn grid(&self) -> usize {
        let ([ho, wo], wp) = (self.window.out, self.padded()[1]);
        (ho - 1) * wp + wo
    }
    /// Offset of tap t in the padded plane.
    fn shift(&self, tap: usize) -> usize {
        let w = &self.window;
        let (ki, kj) = (tap / w.kernel[1], tap % w.kernel[1]);
        ki * w.dilation[0] * self.padded()[1] + kj * w.dilation[1]
    }

    /// Reorders O × C/g × taps weights into the layout the strategy reads.
    pub fn weights_for_kernel(&self, weight: &[f32], out: &mut Vec<f32>) {
        out.clear();
        if !self.shifted() {
            out.extend_from_slice(weight);
            return;
        }
        let (t, cg) = (self.taps(), self.window.channels / self.group);
        out.resize(weight.len(), 0.0);
        for (o, filter) in weight.chunks(cg * t).enumerate() {
            let (g, og) = (
                o / (self.outputs / self.group),
                o % (self.outputs / self.group),
            );
            let base = g * t * self.outputs / self.group * cg;
            for (c, taps) in filter.chunks(t).enumerate() {
                for (tap, &v) in taps.iter().enumerate() {
                    out[base + (tap * self.outputs / self.group + og) * cg + c] = v;
                }
            }
        }
    }

    /// Inverse of [`Self::weights_for_kernel`], adding into `weight_diff`.
    pub fn add_weight_diff(&self, kernel_diff: &[f32], weight_diff: &mut [f32]) {
        if !self.shifted() {
            weight_diff
                .iter_mut()
                .zip(kernel_diff)
                .for_each(|(d, &v)| *d += v);
            return;
        }
        let (t, cg, og_n) = (
            self.taps(),
            self.window.channels / self.group,
            self.outputs / self.group,
        );
        for (o, filter) in weight_diff.chunks_mut(cg * t).enumerate() {
            let base = (o / og_n) * t * og_n * cg;
            for (c, taps) in filter.chunks_mut(t).enumerate() {
                for (tap, d) in taps.iter_mut().enumerate() {
                    *d += kernel_diff[base + (tap * og_n + o % og_n) * cg + c];
                }
            }
        }
    }

    /// Copies one image into a zero-padded C × Hp × Wp plane.
    fn pad_into(&self, x: &[f32], p: &mut [f32]) {
        let w = &self.window;
        let [hp, wp] = self.padded();
        for (plane, src) in p.chunks_mut(hp * wp).zip(x.chunks(w.height * w.width)) {
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

    /// y (O × Ho·Wo) = conv(x) + bias, for one sample.
    pub fn forward(
        &self,
        threads: usize,
        wk: &[f32],
        bias: Option<&[f32]>,
        x: &[f32],
        y: &mut [f32],
    ) {
        let [ho, wo] = self.window.out;
        if self.shifted() {
            let ([hp, wp], n, t) = (self.padded(), self.grid(), self.taps());
            let (cg, og) = (self.window.channels / self.group, self.outputs / self.group);
            with_scratch(
                self.window.channels * hp * wp,
                self.outputs * n,
                |p, grid| {
                    self.pad_into(x, p);
                    for g in 0..self.group {
                        for tap in 0..t {
                            let a = &wk[(g * t + tap) * og * cg..];
                            let b = &p[g * cg * hp * wp + self.shift(tap)..];
                            gemm_strided(
                                threads,
                                og,
                                n,
                                cg,
                                1.0,
                                View {
                                    data: a,
                                    rs: cg,
                                    cs: 1,
                                },
                                View {
                                    data: b,
                                    rs: hp * wp,
                                    cs: 1,
                                },
                                if tap == 0 { 0.0 } else { 1.0 },
                                ViewMut {
                                    data: &mut grid[g * og * n..],
                                    rs: n,
                                    cs: 1,
                                },
                            );
                        }
                    }
                    for (o, out) in y.chunks_mut(ho * wo).enumerate() {
                        let b = bias.map_or(0.0, |b| b[o]);
                        for (oy, line) in out.chunks_mut(wo).enumerate() {
                            let src = &grid[o * n + oy * wp..o * n + oy * wp + wo];
                            line.iter_mut().zip(src).for_each(|(v, &s)| *v = s + b);
                        }
                    }
                },
            );
        } else {
            let (k, hw) = (self.window.col_rows() / self.group, ho * wo);
            let og = self.outputs / self.group;
            with_scratch(self.window.col_rows() * hw, 0, |col, _| {
                im2col(&self.window, x, col);
                for g in 0..self.group {
                    gemm_strided(
                        threads,
                        og,
                        hw,
                        k,
                        1.0,
                        View {
                            data: &wk[g * og * k..],
                            rs: k,
                            cs: 1,
                        },
                        View {
                            data: &col[g * k * hw..],
                            rs: hw,
                            cs: 1,
                        },
                        0.0,
                        ViewMut {
                            data: &mut y[g * og * hw..],
                            rs: hw,
                            cs: 1,
                        },
                    );
                }
            });
            if let Some(bias) = bias {
                for (row, &b) in y.chunks_mut(hw).zip(bias) {
                    row.iter_mut().for_each(|v| *v += b);
                }
            }
        }
    }

    /// dW (kernel layout) += ∂L/∂W and, when given, dx = ∂L/∂x for one sample.
    pub fn backward(
        &self,
        threads: usize,
        wk: &[f32],
        x: &[f32],
        dy: &[f32],
        dwk: &mut [f32],
        dx: Option<&mut [f32]>,
    ) {
        let [ho, wo] = self.window.out;
        let (cg, og) = (self.window.channels / self.group, self.outputs / self.group);
        if self.shifted() {
            let ([hp, wp], n, t) = (self.padded(), self.grid(), self.taps());
            let plane = hp * wp;
            with_scratch(
                self.window.channels * plane,
                self.outputs * n,
                |p, dgrid| {
                    // dy on the grid, zero in the pad columns so they add nothing.
                    for (o, src) in dy.chunks(ho * wo).enumerate() {
                        let dst = &mut dgrid[o * n..(o + 1) * n];
                        for (oy, line) in src.chunks(wo).enumerate() {
                            copy(&mut dst[oy * wp..oy * wp + wo], line);
                            let end = ((oy + 1) * wp).min(n);
                            zero(&mut dst[oy * wp + wo..end]);
                        }
                    }
                    self.pad_into(x, p);
                    for g in 0..self.group {
                        for tap in 0..t {
                            gemm_strided(
                                threads,
                                og,
                                cg,
                                n,
                                1.0,
                                View {
                                    data: &dgrid[g * og * n..],
                                    rs: n,
                                    cs: 1,
                                },
                                View {
                                    data: &p[g * cg * plane + self.shift(tap)..],
                                    rs: 1,
                                    cs: plane,
                                },
                                1.0,
                                ViewMut {
                                    data: &mut dwk[(g * t + tap) * og * cg..],
                                    rs: cg,
                                    cs: 1,
                                },
                            );
                        }
                    }
                    let Some(dx) = dx else { return };
                    // The padded plane becomes dP; its interior is dx.
                    p.fill(0.0);
                    for g in 0..self.group {
                        for tap in 0..t {
                            gemm_strided(
                                threads,
                                cg,
                                n,
                                og,
                                1.0,
                                View {
                                    data: &wk[(g * t + tap) * og * cg..],
                                    rs: 1,
                                    cs: cg,
                                },
                                View {
                                    data: &dgrid[g * og * n..],
                                    rs: n,
                                    cs: 1,
                                },
                                1.0,
                                ViewMut {
                                    data: &mut p[g * cg * plane + self.shift(tap)..],
                                    rs: plane,
                                    cs: 1,
                                },
                            );
                        }
                    }
                    let (h, w, pad) = (self.window.height, self.window.width, self.window.pad);
                    for (dplane, src) in dx.chunks_mut(h * w).zip(p.chunks(plane)) {
                        for (row, line) in dplane.chunks_mut(w).enumerate() {
                            let at = (pad[0] + row) * wp + pad[1];
                            copy(line, &src[at..at + w]);
                        }
                    }
                },
            );
        } else {
            let (k, hw) = (self.window.col_rows() / self.group, ho * wo);
            let col_len = self.window.col_rows() * hw;
            let dcol_len = if dx.is_some() { col_len } else { 0 };
            with_scratch(col_len, dcol_len, |col, dcol| {
                im2col(&self.window, x, col);
                for g in 0..self.group {
                    gemm_strided(
                        threads,
                        og,
                        k,
                        hw,
                        1.0,
                        View {
                            data: &dy[g * og * hw..],
                            rs: hw,
                            cs: 1,
                        },
                        View {
                            data: &col[g * k * hw..],
                            rs: 1,
                            cs: hw,
                        },
                        1.0,
                        ViewMut {
                            data: &mut dwk[g * og * k..],
                            rs: k,
                            cs: 1,
                        },
                    );
                }
                let Some(dx) = dx else { return };
                for g in 0..self.group {
                    gemm_strided(
                        threads,
                        k,
                        hw,
                        og,
                        1.0,
                        View {
                            data: &wk[g * og * k..],
                            rs: 1,
                            cs: k,
                        },
                        View {
                            data: &dy[g * og * hw..],
                            rs: hw,
                            cs: 1,
                        },
                        0.0,
                        ViewMut {
                            data: &mut dcol[g * k * hw..],
                            rs: hw,
                            cs: 1,
                        },
                    );
                }
                col2im(&self.window, dcol, dx);
            });
        }
    }
}
