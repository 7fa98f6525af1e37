//! Convolution (cross-correlation) by im2col + GEMM.
//! Legend: N batch, C input channels, H×W input, O outputs, g groups, kh×kw kernel,
//! K = C/g·kh·kw, Ho×Wo output. Out size per axis: ⌊(H + 2p − (d(k−1)+1)) / s⌋ + 1.
//! Forward, per sample and group: y_g = W_g (O/g × K) · col_g (K × Ho·Wo) + b.
//! Backward: dW_g += dy_g · col_gᵀ; db += Σ_positions dy; dx = col2im(W_gᵀ · dy_g).

mod params;

pub use params::{geometry, ConvolutionParams, Engine, Geometry};

use super::filler::fill;
use super::{count, required, Arity, BuildContext, Layer, Shape, ShapeError};
use crate::backend::im2col::{col2im, im2col, Window};
use crate::backend::{gemm, gemm_serial, threads};
use crate::blob::Blob;
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, Rng, RunCtx};
use crate::netdef::LayerDef;
use rayon::prelude::*;

pub struct ConvolutionLayer {
    pub params: ConvolutionParams,
    pub geometry: Geometry,
    pub num_output: usize,
    pub group: usize,
    pub channels: usize,
}

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    let p: ConvolutionParams = def.params("convolution_param")?;
    let num_output = required(def, p.num_output, "convolution_param", "num_output")? as usize;
    let geometry = geometry(def, &p)?;
    p.weight_filler
        .validate(def, "convolution_param", "weight_filler")?;
    p.bias_filler
        .validate(def, "convolution_param", "bias_filler")?;
    let group = p.group as usize;
    if group == 0 || !num_output.is_multiple_of(group) {
        let msg = format!(
            "{}: num_output {num_output} is not divisible by group {group}",
            def.describe()
        );
        return Err(def.error(def.name_span(), msg));
    }
    if p.axis != 1 {
        return Err(def.error(
            def.name_span(),
            format!("{}: only axis 1 (channels) is supported", def.describe()),
        ));
    }
    Ok(Box::new(ConvolutionLayer {
        params: p,
        geometry,
        num_output,
        group,
        channels: 0,
    }))
}

impl ConvolutionLayer {
    fn window(&self, bottom: &[usize], top: &[usize]) -> Window {
        let g = &self.geometry;
        let (kernel, pad, stride, dilation) = (g.kernel, g.pad, g.stride, g.dilation);
        Window {
            channels: bottom[1],
            height: bottom[2],
            width: bottom[3],
            kernel,
            pad,
            stride,
            dilation,
            out: [top[2], top[3]],
        }
    }
}

/// C = op(A)·op(B) + beta·C on all threads (`wide`) or the calling one.
#[allow(clippy::too_many_arguments)]
fn mm(
    wide: bool,
    ta: bool,
    tb: bool,
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    b: &[f32],
    beta: f32,
    c: &mut [f32],
) {
    if wide {
        gemm(ta, tb, m, n, k, 1.0, a, b, beta, c)
    } else {
        gemm_serial(ta, tb, m, n, k, 1.0, a, b, beta, c)
    }
}

/// Splits `0..n` into at most `parts` contiguous ranges of near-equal size.
fn ranges(n: usize, parts: usize) -> Vec<std::ops::Range<usize>> {
    let parts = parts.clamp(1, n.max(1));
    (0..parts)
        .map(|p| p * n / parts..(p + 1) * n / parts)
        .collect()
}

impl Layer for ConvolutionLayer {
    fn type_name(&self) -> &'static str {
        "Convolution"
    }
    fn bottoms(&self) -> Arity {
        Arity::at_least(1)
    }
    fn tops(&self) -> Arity {
        Arity::at_least(1)
    }

    fn reshape(&mut self, bottom: &[Shape]) -> Result<Vec<Shape>, ShapeError> {
        let mut tops = Vec::new();
        for (i, b) in bottom.iter().enumerate() {
            if b.len() != 4 {
                return Err(ShapeError::at_bottom(
                    i,
                    format!("needs an NxCxHxW bottom, got {}", super::fmt_shape(b)),
                ));
            }
            if i == 0 {
                self.channels = b[1];
            } else if b[1..] != bottom[0][1..] {
                return Err(ShapeError::mismatch(i, b, 0, &bottom[0]));
            }
            if !b[1].is_multiple_of(self.group) {
                return Err(ShapeError::at_bottom(
                    i,
                    format!(
                        "{} channels are not divisible by group {}",
                        b[1], self.group
                    ),
                ));
            }
            let g = &self.geometry;
            let (Some(h), Some(w)) = (g.out_len(0, b[2]), g.out_len(1, b[3])) else {
                let (k, d, p) = (g.kernel, g.dilation, g.pad);
                let msg = format!(
                    "kernel {}x{} (dilation {}x{}, pad {}x{}) does not fit the {}x{} input",
                    k[0], k[1], d[0], d[1], p[0], p[1], b[2], b[3]
                );
                return Err(ShapeError::at_bottom(i, msg));
            };
            tops.push(vec![b[0], self.num_output, h, w]);
        }
        Ok(tops)
    }

    fn param_shapes(&self) -> Vec<Shape> {
        let k = self.geometry.kernel;
        let mut v = vec![vec![
            self.num_output,
            self.channels / self.group,
            k[0],
            k[1],
        ]];
        if self.params.bias_term {
            v.push(vec![self.num_output]);
        }
        v
    }

    fn flops(&self, _bottom: &[Shape], top: &[Shape]) -> u64 {
        let k = self.geometry.kernel;
        let macs_per_out = (self.channels / self.group * k[0] * k[1]) as u64;
        top.iter().map(|t| 2 * macs_per_out * count(t) as u64).sum()
    }

    fn fill_params(&self, params: &mut [Blob], rng: &mut Rng) {
        fill(&self.params.weight_filler, &mut params[0], rng);
        if let Some(b) = params.get_mut(1) {
            fill(&self.params.bias_filler, b, rng);
        }
    }

    /// Samples run in parallel on serial GEMMs when there are enough of them,
    /// else one at a time on parallel GEMMs.
    fn forward(&mut self, io: &mut LayerIo, _ctx: &mut RunCtx) -> Result<(), String> {
        let (bottoms, mut tops, params) = io.forward_split();
        let weight = params[0].data();
        let bias = params.get(1).map(|b| b.data());
        let (o, g) = (self.num_output, self.group);
        for (b, t) in bottoms.iter().zip(tops.iter_mut()) {
            let w = self.window(b.shape(), t.shape());
            let (k, hw, in_len) = (w.col_rows() / g, w.col_cols(), b.count_from(1));
            let wide = b.dim(0) < threads() || threads() == 1;
            let per_sample = |x: &[f32], y: &mut [f32], col: &mut Vec<f32>| {
                let col: &[f32] = if w.is_identity() {
                    x
                } else {
                    col.resize(w.col_rows() * hw, 0.0);
                    im2col(&w, x, col);
                    col
                };
                for gi in 0..g {
                    let yg = &mut y[gi * (o / g) * hw..(gi + 1) * (o / g) * hw];
                    mm(
                        wide,
                        false,
                        false,
                        o / g,
                        hw,
                        k,
                        &weight[gi * (o / g) * k..],
                        &col[gi * k * hw..],
                        0.0,
                        yg,
                    );
                }
                if let Some(bias) = bias {
                    for (row, &bv) in y.chunks_mut(hw).zip(bias) {
                        row.iter_mut().for_each(|v| *v += bv);
                    }
                }
            };
            let (ys, xs) = (t.data_mut(), b.data());
            if wide {
                let mut col = Vec::new();
                ys.chunks_mut(o * hw)
                    .zip(xs.chunks(in_len))
                    .for_each(|(y, x)| per_sample(x, y, &mut col));
            } else {
                let pairs = ys.par_chunks_mut(o * hw).zip(xs.par_chunks(in_len));
                pairs.for_each_init(Vec::new, |col, (y, x)| per_sample(x, y, col));
            }
        }
        Ok(())
    }

    /// Samples are split into one contiguous range per thread, each with its
    /// own weight-diff accumulator, summed at the end.
    fn backward(
        &mut self,
        io: &mut LayerIo,
        propagate_down: &[bool],
        _ctx: &mut RunCtx,
    ) -> Result<(), String> {
        let (mut bottoms, tops, params) = io.backward_split();
        let (o, g) = (self.num_output, self.group);
        let (weight_blob, bias_blob) = params.split_at_mut(1);
        let (weight, weight_diff) = weight_blob[0].data_and_diff_mut();
        let weight: &[f32] = weight;
        for (i, (b, t)) in bottoms.iter_mut().zip(tops.iter()).enumerate() {
            let w = self.window(b.shape(), t.shape());
            let (k, hw, n, in_len) = (w.col_rows() / g, w.col_cols(), b.dim(0), b.count_from(1));
            let dy = t.diff();
            if let Some(bias) = bias_blob.first_mut() {
                for sample in dy.chunks(o * hw) {
                    for (d, row) in bias.diff_mut().iter_mut().zip(sample.chunks(hw)) {
                        *d += row.iter().map(|&v| v as f64).sum::<f64>() as f32;
                    }
                }
            }
            let down = propagate_down.get(i).copied().unwrap_or(false);
            let (x_all, dx_all) = b.data_and_diff_mut();
            let x_all: &[f32] = x_all;
            let parts = ranges(n, threads());
            let wide = parts.len() == 1;
            let mut dx_parts = Vec::new();
            let mut rest = dx_all;
            for r in &parts {
                let (head, tail) = rest.split_at_mut(r.len() * in_len);
                dx_parts.push(head);
                rest = tail;
            }
            let col_len = if w.is_identity() {
                0
            } else {
                w.col_rows() * hw
            };
            let partial_dws: Vec<Vec<f32>> = parts
                .into_par_iter()
                .zip(dx_parts)
                .map(|(r, dx_part)| {
                    let mut dw = vec![0.0f32; weight.len()];
                    let (mut col, mut dcol) = (
                        vec![0.0f32; col_len],
                        vec![0.0f32; if down { col_len } else { 0 }],
                    );
                    for (j, s) in r.enumerate() {
                        let (x, dys) = (
                            &x_all[s * in_len..(s + 1) * in_len],
                            &dy[s * o * hw..(s + 1) * o * hw],
                        );
                        let cols: &[f32] = if w.is_identity() {
                            x
                        } else {
                            im2col(&w, x, &mut col);
                            &col
                        };
                        for gi in 0..g {
                            let (dyg, dwg) =
                                (&dys[gi * (o / g) * hw..], &mut dw[gi * (o / g) * k..]);
                            mm(
                                wide,
                                false,
                                true,
                                o / g,
                                k,
                                hw,
                                dyg,
                                &cols[gi * k * hw..],
                                1.0,
                                dwg,
                            );
                        }
                        if down {
                            let dx = &mut dx_part[j * in_len..(j + 1) * in_len];
                            let target: &mut [f32] = if w.is_identity() { dx } else { &mut dcol };
                            for gi in 0..g {
                                let (wg, dyg) =
                                    (&weight[gi * (o / g) * k..], &dys[gi * (o / g) * hw..]);
                                mm(
                                    wide,
                                    true,
                                    false,
                                    k,
                                    hw,
                                    o / g,
                                    wg,
                                    dyg,
                                    0.0,
                                    &mut target[gi * k * hw..],
                                );
                            }
                            if !w.is_identity() {
                                col2im(&w, &dcol, &mut dx_part[j * in_len..(j + 1) * in_len]);
                            }
                        }
                    }
                    dw
                })
                .collect();
            for dw in partial_dws {
                weight_diff.iter_mut().zip(dw).for_each(|(a, b)| *a += b);
            }
        }
        Ok(())
    }
}
