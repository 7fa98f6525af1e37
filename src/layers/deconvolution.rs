//! Deconvolution (transposed convolution): the convolution's data gradient run as
//! a forward pass, on the convolution's own per-sample kernels.
//! Legend: bottom N×C×H×W, top N×O×Ho×Wo, g groups, kh×kw kernel, weights
//! W (C × O/g × kh × kw), Ho = s·(H − 1) + d·(kh − 1) + 1 − 2p (likewise Wo).
//! With conv_W the convolution from O×Ho×Wo to C×H×W that has these weights:
//!   y = conv_Wᵀ(x) + b          (the convolution's dx from dy = x)
//!   dx = conv_W(dy)             (the convolution's forward)
//!   dW += conv weight gradient with input dy and output gradient x; db += Σ_positions dy.

use super::convolution::{new_layer, ConvolutionLayer};
use super::{count, Arity, BuildContext, Layer, Shape, ShapeError};
use crate::backend::cpu::conv::{ranges, split_parts, Plan};
use crate::backend::cpu::im2col::Window;
use crate::backend::threads;
use crate::blob::Blob;
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::LayerDef;
use crate::philox::ParamStreams;
use rayon::prelude::*;

/// The convolution's settings and checks; `conv.num_output` is O, `conv.channels` C.
pub struct DeconvolutionLayer {
    pub conv: ConvolutionLayer,
}

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    Ok(Box::new(DeconvolutionLayer {
        conv: new_layer(def)?,
    }))
}

impl DeconvolutionLayer {
    /// The convolution whose transpose this layer is: from the top's O×Ho×Wo
    /// to the bottom's C×H×W.
    fn plan(&self, bottom: &[usize], top: &[usize]) -> Plan {
        let g = &self.conv.geometry;
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
            group: self.conv.group,
        }
    }

    /// Ho (a = 0) or Wo (a = 1) for input extent `len`, None when not positive.
    fn out_len(&self, a: usize, len: usize) -> Option<usize> {
        let g = &self.conv.geometry;
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
        self.conv.check_bottoms(bottom)?;
        let mut tops = Vec::new();
        for (i, b) in bottom.iter().enumerate() {
            let (Some(h), Some(w)) = (self.out_len(0, b[2]), self.out_len(1, b[3])) else {
                let g = &self.conv.geometry;
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
            tops.push(vec![b[0], self.conv.num_output, h, w]);
        }
        Ok(tops)
    }

    fn param_shapes(&self) -> Vec<Shape> {
        let k = self.conv.geometry.kernel;
        let mut v = vec![vec![
            self.conv.channels,
            self.conv.num_output / self.conv.group,
            k[0],
            k[1],
        ]];
        if self.conv.params.bias_term {
            v.push(vec![self.conv.num_output]);
        }
        v
    }

    /// Each input value meets O/g·kh·kw weights.
    fn flops(&self, bottom: &[Shape], _top: &[Shape]) -> u64 {
        let c = &self.conv;
        let k = c.geometry.kernel;
        let macs = (c.num_output / c.group * k[0] * k[1]) as u64;
        bottom.iter().map(|b| 2 * macs * count(b) as u64).sum()
    }

    /// The same fillers as the convolution's.
    fn fill_params(&self, params: &mut [Blob], streams: &ParamStreams) {
        self.conv.fill_params(params, streams);
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
                    plan.forward(inner, (w, None), None, dy, dx);
                });
            }
        }
        Ok(())
    }
}
