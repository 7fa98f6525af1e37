//! Deconvolution (transposed convolution): the convolution's data gradient run as
//! a forward pass, on the convolution's own per-sample kernels.
//! Legend: bottom N×C×H×W, top N×O×Ho×Wo, g groups, kh×kw kernel, weights
//! W (C × O/g × kh × kw), Ho = s·(H − 1) + d·(kh − 1) + 1 − 2p (likewise Wo).
//! With conv_W the convolution from O×Ho×Wo to C×H×W that has these weights:
//!   y = conv_Wᵀ(x) + b          (the convolution's dx from dy = x)
//!   dx = conv_W(dy)             (the convolution's forward)
//!   dW += conv weight gradient with input dy and output gradient x; db += Σ_positions dy.

use super::convolution::{geometry, ConvolutionParams, Geometry};
use super::filler::fill;
use super::{count, fmt_shape, required, Arity, BuildContext, Layer, Shape, ShapeError};
use crate::backend::cpu::conv::{ranges, split_parts, Plan};
use crate::backend::cpu::im2col::Window;
use crate::backend::threads;
use crate::blob::Blob;
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, Rng, RunCtx};
use crate::netdef::LayerDef;
use rayon::prelude::*;

pub struct DeconvolutionLayer {
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
    Ok(Box::new(DeconvolutionLayer {
        params: p,
        geometry,
        num_output,
        group,
        channels: 0,
    }))
}

impl DeconvolutionLayer {
    /// The convolution whose transpose this layer is: from the top's O×Ho×Wo
    /// to the bottom's C×H×W.
    fn plan(&self, bottom: &[usize], top: &[usize]) -> Plan {
        let g = &self.geometry;
        Plan {
            window: Window {
                channels: top[1],
                height: top[2],
                width: top[3],
                kernel: g.kernel,
                pad: g.pad,
                stride: g.stride,
                dilation: g.dilation,
                out: [bottom[2], bottom[3]],
            },
            outputs: bottom[1],
            group: self.group,
        }
    }

    /// Ho (a = 0) or Wo (a = 1) for input extent `len`, None when not positive.
    fn out_len(&self, a: usize, len: usize) -> Option<usize> {
        let g = &self.geometry;
        let span = g.dilation[a] * (g.kernel[a] - 1) + 1;
        (g.stride[a] * (len.max(1) - 1) + span)
            .checked_sub(2 * g.pad[a])
            .filter(|&v| v > 0 && len > 0)
    }
}

/// Runs `f(inner threads, sample, a_s, b_s)` over samples, `a` holding `a_len`
/// values per sample (written) and `b` `b_len` (read); the batch is split over
/// threads, or each sample over all threads when the batch is smaller.
fn per_sample(
    a: &mut [f32],
    a_len: usize,
    b: &[f32],
    b_len: usize,
    f: impl Fn(usize, &mut [f32], &[f32]) + Sync,
) {
    let batch = a.len() / a_len.max(1);
    let parts = ranges(batch, threads());
    let inner = if parts.len() < threads() {
        threads()
    } else {
        1
    };
    let run = |(r, part): (std::ops::Range<usize>, &mut [f32])| {
        for (s, a) in r.zip(part.chunks_mut(a_len)) {
            f(inner, a, &b[s * b_len..(s + 1) * b_len]);
        }
    };
    let pieces = split_parts(a, &parts, a_len);
    if parts.len() == 1 {
        parts.into_iter().zip(pieces).for_each(run);
    } else {
        parts.into_par_iter().zip(pieces).for_each(run);
    }
}

impl Layer for DeconvolutionLayer {
    fn type_name(&self) -> &'static str {
        "Deconvolution"
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
                    format!("needs an NxCxHxW bottom, got {}", fmt_shape(b)),
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
            let (Some(h), Some(w)) = (self.out_len(0, b[2]), self.out_len(1, b[3])) else {
                let g = &self.geometry;
                let msg = format!(
                    "pad {}x{} removes the whole {}x{} output of kernel {}x{}, stride {}x{}",
                    g.pad[0],
                    g.pad[1],
                    b[2],
                    b[3],
                    g.kernel[0],
                    g.kernel[1],
                    g.stride[0],
                    g.stride[1]
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
            self.channels,
            self.num_output / self.group,
            k[0],
            k[1],
        ]];
        if self.params.bias_term {
            v.push(vec![self.num_output]);
        }
        v
    }

    /// Each input value meets O/g·kh·kw weights.
    fn flops(&self, bottom: &[Shape], _top: &[Shape]) -> u64 {
        let k = self.geometry.kernel;
        let macs = (self.num_output / self.group * k[0] * k[1]) as u64;
        bottom.iter().map(|b| 2 * macs * count(b) as u64).sum()
    }

    fn fill_params(&self, params: &mut [Blob], rng: &mut Rng) {
        fill(&self.params.weight_filler, &mut params[0], rng);
        if let Some(b) = params.get_mut(1) {
            fill(&self.params.bias_filler, b, rng);
        }
    }

    fn forward(&mut self, io: &mut LayerIo, _ctx: &mut RunCtx) -> Result<(), String> {
        let (bottoms, mut tops, params) = io.forward_split();
        let bias = params.get(1).map(|b| b.data());
        let w = params[0].data();
        for (b, t) in bottoms.iter().zip(tops.iter_mut()) {
            let plan = self.plan(b.shape(), t.shape());
            let (in_len, out_len) = (b.count_from(1), t.count_from(1));
            let plane = t.count_from(2);
            per_sample(t.data_mut(), out_len, b.data(), in_len, |inner, y, x| {
                plan.data_gradient(inner, w, x, y);
                if let Some(bias) = bias {
                    for (row, &v) in y.chunks_mut(plane).zip(bias) {
                        row.iter_mut().for_each(|y| *y += v);
                    }
                }
            });
        }
        Ok(())
    }

    fn backward(
        &mut self,
        io: &mut LayerIo,
        propagate_down: &[bool],
        _ctx: &mut RunCtx,
    ) -> Result<(), String> {
        let (mut bottoms, tops, params) = io.backward_split();
        let (weight_blob, bias_blob) = params.split_at_mut(1);
        let (w, dw) = weight_blob[0].data_and_diff_mut();
        for (i, (b, t)) in bottoms.iter_mut().zip(tops.iter()).enumerate() {
            let plan = self.plan(b.shape(), t.shape());
            let (in_len, out_len) = (b.count_from(1), t.count_from(1));
            let dy = t.diff();
            if let Some(bias) = bias_blob.first_mut() {
                let plane = t.count_from(2);
                for sample in dy.chunks(out_len) {
                    for (d, row) in bias.diff_mut().iter_mut().zip(sample.chunks(plane)) {
                        *d += row.iter().map(|&v| v as f64).sum::<f64>() as f32;
                    }
                }
            }
            let (x, dx) = b.data_and_diff_mut();
            // The weight gradient: per-thread buffers, added in order.
            let parts = ranges(x.len() / in_len.max(1), threads());
            let partial: Vec<Vec<f32>> = parts
                .into_par_iter()
                .map(|r| {
                    let mut part = vec![0.0f32; w.len()];
                    let inner = if r.len() == x.len() / in_len.max(1) {
                        threads()
                    } else {
                        1
                    };
                    for s in r {
                        let (xs, dys) = (
                            &x[s * in_len..(s + 1) * in_len],
                            &dy[s * out_len..(s + 1) * out_len],
                        );
                        plan.backward(inner, w, dys, xs, &mut part, None);
                    }
                    part
                })
                .collect();
            for part in partial {
                dw.iter_mut().zip(part).for_each(|(d, v)| *d += v);
            }
            if propagate_down.get(i).copied().unwrap_or(false) {
                per_sample(dx, in_len, dy, out_len, |inner, dx, dy| {
                    plan.forward(inner, w, None, dy, dx);
                });
            }
        }
        Ok(())
    }
}
