//! Convolution (cross-correlation) on GEMM; the kernels are the backend's
//! (`backend/cpu/conv/`): this file plans, splits the batch and dispatches.
//! Legend: N batch, C input channels, H×W input, O outputs, g groups, kh×kw kernel,
//! K = C/g·kh·kw, Ho×Wo output. Out size per axis: ⌊(H + 2p − (d(k−1)+1)) / s⌋ + 1.
//! y_g = W_g ⋆ x_g + b; dW_g += dy_g ⋆ x_g; db += Σ_positions dy; dx = W_gᵀ ⋆ dy_g.

mod params;

use crate::backend::cpu::conv::{ranges, split_parts, PackedWeights, Plan};

pub use params::{geometry, ConvolutionParams, Engine, Geometry};

use super::filler::fill;
use super::{count, required, Arity, BuildContext, Layer, Shape, ShapeError};
use crate::backend::im2col::Window;
use crate::backend::threads;
use crate::blob::Blob;
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::{LayerDef, Phase};
use crate::philox::ParamStreams;
use rayon::prelude::*;

pub struct ConvolutionLayer {
    pub params: ConvolutionParams,
    pub geometry: Geometry,
    pub num_output: usize,
    pub group: usize,
    pub channels: usize,
    /// The weights in the shifted-window kernel's packed order, and as
    /// Winograd's U, each kept while they stay the same (deploy and TEST nets).
    packed: PackedWeights,
    winograd: PackedWeights,
}

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    Ok(Box::new(new_layer(def)?))
}

/// Reads and checks `convolution_param` (Convolution and Deconvolution read it alike).
pub fn new_layer(def: &LayerDef) -> Result<ConvolutionLayer, Diagnostic> {
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
    Ok(ConvolutionLayer {
        params: p,
        geometry,
        num_output,
        group,
        channels: 0,
        packed: PackedWeights::default(),
        winograd: PackedWeights::default(),
    })
}

impl ConvolutionLayer {
    /// Bottoms are N×C×H×W, alike after the first, C divisible by `group`; records C.
    pub fn check_bottoms(&mut self, bottom: &[Shape]) -> Result<(), ShapeError> {
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
        }
        Ok(())
    }

    fn plan(&self, bottom: &[usize], top: &[usize]) -> Plan {
        Plan {
            window: self.window(bottom, top),
            outputs: self.num_output,
            group: self.group,
        }
    }

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
        self.check_bottoms(bottom)?;
        for (i, b) in bottom.iter().enumerate() {
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
        let macs_per_out = ((self.channels / self.group.max(1)) as u64)
            .saturating_mul(k[0] as u64)
            .saturating_mul(k[1] as u64);
        top.iter()
            .map(|t| macs_per_out.saturating_mul(2 * count(t) as u64))
            .fold(0, u64::saturating_add)
    }

    fn fill_params(&self, params: &mut [Blob], streams: &ParamStreams) {
        fill(&self.params.weight_filler, &mut params[0], streams.blob(0));
        if let Some(b) = params.get_mut(1) {
            fill(&self.params.bias_filler, b, streams.blob(1));
        }
    }

    /// Samples run in parallel on serial GEMMs when there are enough of them,
    /// else one at a time on parallel GEMMs.
    fn forward(&mut self, io: &mut LayerIo, ctx: &mut RunCtx) -> Result<(), String> {
        let (bottoms, mut tops, params) = io.forward_split();
        let bias = params.get(1).map(|b| b.data());
        for (b, t) in bottoms.iter().zip(tops.iter_mut()) {
            let plan = self.plan(b.shape(), t.shape());
            let wk = params[0].data();
            let (in_len, out_len) = (b.count_from(1), t.count_from(1));
            let stamp = params[0].data_stamp();
            if let Some(kind) = plan.winograd(b.dim(0)) {
                // A TEST net's weights stay the same between passes.
                let inference = ctx.phase == Phase::Test;
                let forward = (kind, b.dim(0), inference);
                let u = self.winograd.winograd(&plan, forward, wk, stamp);
                plan.winograd_forward((kind, inference), (wk, u), bias, b.data(), t.data_mut());
                continue;
            }
            if plan.chunked(b.dim(0), threads()) {
                let s = plan.chunk_len(b.dim(0));
                let x_all = b.data();
                for (i, y) in t.data_mut().chunks_mut(s * out_len).enumerate() {
                    let x = &x_all[i * s * in_len..];
                    plan.forward_chunk(threads(), wk, bias, x, y);
                }
                continue;
            }
            // Samples are spread over threads, each running serial GEMMs; a
            // batch smaller than the thread count threads each GEMM instead.
            let parts = ranges(b.dim(0), threads());
            let inner = if parts.len() < threads() {
                threads()
            } else {
                1
            };
            let x_all = b.data();
            let ys = split_parts(t.data_mut(), &parts, out_len);
            let w = (wk, self.packed.packed(&plan, wk, stamp));
            let run = |(r, ys): (std::ops::Range<usize>, &mut [f32])| {
                for (s, y) in r.zip(ys.chunks_mut(out_len)) {
                    plan.forward(inner, w, bias, &x_all[s * in_len..(s + 1) * in_len], y);
                }
            };
            if parts.len() == 1 {
                parts.into_iter().zip(ys).for_each(run);
            } else {
                parts.into_par_iter().zip(ys).for_each(run);
            }
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
        let o = self.num_output;
        let (weight_blob, bias_blob) = params.split_at_mut(1);
        let (weight, weight_diff) = weight_blob[0].data_and_diff_mut();
        for (i, (b, t)) in bottoms.iter_mut().zip(tops.iter()).enumerate() {
            let plan = self.plan(b.shape(), t.shape());
            let (in_len, out_len) = (b.count_from(1), t.count_from(1));
            let dy = t.diff();
            if let Some(bias) = bias_blob.first_mut() {
                let hw = out_len / o;
                for sample in dy.chunks(out_len) {
                    for (d, row) in bias.diff_mut().iter_mut().zip(sample.chunks(hw)) {
                        *d += row.iter().map(|&v| v as f64).sum::<f64>() as f32;
                    }
                }
            }
            let down = propagate_down.get(i).copied().unwrap_or(false);
            let wk: &[f32] = weight;
            let batch = b.dim(0);
            let (x_all, dx_all) = b.data_and_diff_mut();
            let x_all: &[f32] = x_all;
            if let Some(kind) = plan.winograd(batch) {
                if down {
                    plan.winograd_data_gradient(kind, wk, dy, dx_all);
                }
                plan.winograd_weight_gradient(kind, x_all, dy, weight_diff);
                continue;
            }
            if plan.chunked(batch, threads()) {
                let s = plan.chunk_len(batch);
                let mut dxs = down.then(|| dx_all.chunks_mut(s * in_len));
                for (i, x) in x_all.chunks(s * in_len).enumerate() {
                    let dys = &dy[i * s * out_len..(i * s + x.len() / in_len) * out_len];
                    let dx = dxs.as_mut().and_then(|it| it.next());
                    plan.backward_chunk(threads(), wk, x, dys, weight_diff, dx);
                }
                continue;
            }
            let parts = ranges(batch, threads());
            let inner = if parts.len() < threads() {
                threads()
            } else {
                1
            };
            if parts.len() == 1 {
                // One part: samples in turn, each split over the threads.
                for (s, dx) in dx_all.chunks_mut(in_len).enumerate() {
                    let x = &x_all[s * in_len..(s + 1) * in_len];
                    let dys = &dy[s * out_len..(s + 1) * out_len];
                    plan.backward(inner, wk, x, dys, weight_diff, down.then_some(dx));
                }
                continue;
            }
            // Each thread sums its samples' weight gradient in its own buffer;
            // the buffers are added at the end.
            let dxs = split_parts(dx_all, &parts, in_len);
            let partial: Vec<Vec<f32>> = parts
                .into_par_iter()
                .zip(dxs)
                .map(|(r, dx_part)| {
                    let mut dw = vec![0.0f32; wk.len()];
                    for (j, s) in r.enumerate() {
                        let x = &x_all[s * in_len..(s + 1) * in_len];
                        let dys = &dy[s * out_len..(s + 1) * out_len];
                        let dx = down.then(|| &mut dx_part[j * in_len..(j + 1) * in_len]);
                        plan.backward(1, wk, x, dys, &mut dw, dx);
                    }
                    dw
                })
                .collect();
            for dw in partial {
                weight_diff.iter_mut().zip(dw).for_each(|(d, v)| *d += v);
            }
        }
        Ok(())
    }
}
