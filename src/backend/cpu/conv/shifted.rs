//! Shifted windows (stride 1, any dilation; or stride 2 undilated), with
//! enough input channels per group: with the input zero-padded to P
//! (C × Hp × Wp) and the output computed on Wp-pitched rows (grid index
//! j = oy·Wp + ox, N = (Ho−1)·Wp + Wo of them), tap (ki, kj) reads P[c, s + j]
//! with s = ki·dh·Wp + kj·dw, a plain strided matrix. So
//!   y_grid  = Σ_taps W_tap (O × C) · P[:, s..s+N]          (forward)
//!   dW_tap += dy_grid (O × N) · P[:, s..s+N]ᵀ               (dy_grid zero off the valid columns)
//!   dP[:, s..s+N] += W_tapᵀ (C × O) · dy_grid               (backward to data)
//! Each tap is one GEMM with no column buffer, no im2col/col2im traffic. At
//! stride 2, P holds the padded image's four phases pad[2y + a][2x + b] and
//! tap (ki, kj) reads phase (ki mod 2, kj mod 2) shifted by (⌊ki/2⌋, ⌊kj/2⌋),
//! pitch ⌈Wp/2⌉: a stride-1 window again. Where the CPU has FMA the forward
//! sums over all taps in one fused kernel (`direct.rs`) instead of one GEMM
//! per tap.

use super::direct;
use super::kernels::{
    by_group, grown, mm, ranges, split_rows, split_rows_at, with_scratch, Plan, RANGE, SAMPLE,
};
use crate::backend::copy::{copy, zero};

/// Below this many input channels per group a tap's GEMM is too thin (K = C/g)
/// and im2col's K = C/g·kh·kw wins.
const SHIFTED_MIN_CHANNELS: usize = 8;

impl Plan {
    /// Shifted windows: one GEMM per tap over the zero-padded image (stride 1),
    /// or over one of its four stride-2 phases, pad[2y + a][2x + b] for
    /// (a, b) ∈ {0, 1}², where tap (i, j) reads phase (i mod 2, j mod 2)
    /// shifted by (⌊i/2⌋, ⌊j/2⌋) (stride 2, undilated).
    pub fn shifted(&self) -> bool {
        let w = &self.window;
        (w.stride == [1, 1] || w.stride == [2, 2] && w.dilation == [1, 1])
            && w.channels / self.group >= SHIFTED_MIN_CHANNELS
    }
    /// Whether the fused forward reads packed weights better (`direct.rs`).
    pub fn packs(&self) -> bool {
        self.shifted() && direct::worth_packing(self.grid())
    }
    fn phased(&self) -> bool {
        self.window.stride == [2, 2]
    }
    pub(super) fn phased_shifted(&self) -> bool {
        self.phased() && self.shifted()
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

    /// y (O × Ho·Wo) = conv(x) + bias, for one sample, by shifted windows.
    pub(super) fn forward_shifted(
        &self,
        threads: usize,
        (w, packed): (&[f32], Option<&[f32]>),
        bias: Option<&[f32]>,
        x: &[f32],
        y: &mut [f32],
    ) {
        let ([_, wo], hw, t) = (self.window.out, self.window.col_cols(), self.taps());
        let (cg, og) = self.per_group();
        let k = cg * t;
        let (plane, n, wp) = (self.plane(), self.grid(), self.pitch());
        let fused = direct::available();
        // Only the fused kernel reads the packed layout (PackedWeights packs only
        // where it runs; the per-tap GEMMs need W as stored).
        let packed = packed.filter(|_| fused);
        let parts = match packed {
            Some(_) => direct::tile_ranges(self.outputs, og, threads),
            None => ranges(self.outputs, threads),
        };
        let w = packed.unwrap_or(w);
        let ld = if fused { direct::grid_len(n) } else { n };
        let shifts: Vec<usize> = (0..t).map(|tap| self.shift(tap)).collect();
        let p_len = self.window.channels * plane + direct::SLACK;
        with_scratch(&SAMPLE, [p_len, 0, 0], |p, _, _| {
            self.pad_into(x, p);
            let p: &[f32] = p;
            split_rows_at(parts, y, hw, &mut [], 0, |rows, y, _| {
                RANGE.with(|cell| {
                    let mut buf = cell.borrow_mut();
                    let grid = grown(&mut buf, rows.len() * ld);
                    let mut at = 0;
                    for (g, r) in by_group(rows.clone(), og) {
                        let w = &w[(g * og + r.start) * k..];
                        let p = &p[g * cg * plane..];
                        if fused {
                            let op = direct::Operands {
                                w,
                                w_row: k,
                                packed: packed.is_some(),
                                p,
                                plane,
                                channels: cg,
                                shifts: &shifts,
                            };
                            direct::rows(&op, r.len(), n, &mut grid[at * ld..], ld);
                        } else {
                            for (tap, &s) in shifts.iter().enumerate() {
                                let beta = if tap == 0 { 0.0 } else { 1.0 };
                                mm(
                                    r.len(),
                                    n,
                                    cg,
                                    (&w[tap..], k, t),
                                    (&p[s..], plane, 1),
                                    beta,
                                    (&mut grid[at * ld..], ld, 1),
                                );
                            }
                        }
                        at += r.len();
                    }
                    for (i, out) in y.chunks_mut(hw).enumerate() {
                        let b = bias.map_or(0.0, |b| b[rows.start + i]);
                        for (oy, line) in out.chunks_mut(wo).enumerate() {
                            let src = &grid[i * ld + oy * wp..i * ld + oy * wp + wo];
                            line.iter_mut().zip(src).for_each(|(v, &s)| *v = s + b);
                        }
                    }
                })
            });
        });
    }

    /// dW += ∂L/∂W and, when given, dx = ∂L/∂x for one sample, by shifted windows.
    pub(super) fn backward_shifted(
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
    }
}
