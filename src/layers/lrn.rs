//! LRN: local response normalisation (AlexNet, CaffeNet, GoogLeNet).
//! Legend: bottom N×C×H×W, n = local_size (odd), r = (n − 1)/2.
//!
//! y_i = x_i · s_i^(−β), with s_i = k + (α/m)·Σ_{j ∈ W(i)} x_j², where
//!   ACROSS_CHANNELS: W(i) = channels c−r..c+r at the same (h, w), m = n;
//!   WITHIN_CHANNEL:  W(i) = the n×n square centred on (h, w) in channel c,
//!                    m = n², and k is 1 whatever `k` says (as in Caffe, which
//!                    builds this mode from an average pooling over padded
//!                    windows and a Power layer with shift 1).
//! Neighbours outside the blob count as zeros. The windows are symmetric, so
//! j ∈ W(i) ⇔ i ∈ W(j), and the gradient is
//!   dx_i = dy_i·s_i^(−β) − (2αβ/m)·x_i·Σ_{j ∈ W(i)} dy_j·y_j / s_j.

use super::convolution::Engine;
use super::{count, fmt_shape, Arity, BuildContext, Layer, Shape, ShapeError};
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::LayerDef;
use rayon::prelude::*;
use serde::Deserialize;

/// `LRNParameter.NormRegion`: ACROSS_CHANNELS = 0, WITHIN_CHANNEL = 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NormRegion {
    #[default]
    AcrossChannels,
    WithinChannel,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LRNParams {
    pub local_size: u32,
    pub alpha: f32,
    pub beta: f32,
    pub norm_region: NormRegion,
    pub k: f32,
    pub engine: Engine,
}

impl Default for LRNParams {
    fn default() -> Self {
        LRNParams {
            local_size: 5,
            alpha: 1.0,
            beta: 0.75,
            norm_region: NormRegion::AcrossChannels,
            k: 1.0,
            engine: Engine::Default,
        }
    }
}

pub struct LRNLayer {
    pub params: LRNParams,
    /// s of the last forward, one per element.
    scale: Vec<f32>,
}

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    let p: LRNParams = def.params("lrn_param")?;
    if p.local_size.is_multiple_of(2) {
        let span = def
            .block
            .get("lrn_param")
            .map_or(def.name_span(), |f| f.value_span);
        return Err(def
            .error(
                span,
                format!(
                    "{}: local_size {} is even; LRN windows are centred, so it must be odd",
                    def.describe(),
                    p.local_size
                ),
            )
            .with_help(format!(
                "use {} or {}",
                p.local_size.max(2) - 1,
                p.local_size + 1
            )));
    }
    Ok(Box::new(LRNLayer {
        params: p,
        scale: Vec::new(),
    }))
}

impl LRNLayer {
    /// (α/m, k) of the formula above.
    fn coefficients(&self) -> (f32, f32) {
        let n = self.params.local_size as f32;
        match self.params.norm_region {
            NormRegion::AcrossChannels => (self.params.alpha / n, self.params.k),
            NormRegion::WithinChannel => (self.params.alpha / (n * n), 1.0),
        }
    }

    /// out_i = Σ_{j ∈ W(i)} v_j over one sample (C×H×W), v given per element.
    fn window_sum(&self, v: &[f32], out: &mut [f32], c: usize, plane: usize, w: usize) {
        let r = (self.params.local_size as usize - 1) / 2;
        match self.params.norm_region {
            NormRegion::AcrossChannels => across_sum(v, out, c, plane, r),
            NormRegion::WithinChannel => {
                for (vp, op) in v.chunks(plane).zip(out.chunks_mut(plane)) {
                    box_sum(vp, op, plane / w.max(1), w, r);
                }
            }
        }
    }
}

/// Sliding sum over channels: out[c] = Σ_{|c' − c| ≤ r} v[c'] at each position,
/// kept as a running sum (add the channel entering, drop the one leaving).
fn across_sum(v: &[f32], out: &mut [f32], channels: usize, plane: usize, r: usize) {
    let mut run = vec![0.0f32; plane];
    for c in 0..r.min(channels) {
        run.iter_mut()
            .zip(&v[c * plane..(c + 1) * plane])
            .for_each(|(s, &x)| *s += x);
    }
    for c in 0..channels {
        if c + r < channels {
            let add = &v[(c + r) * plane..(c + r + 1) * plane];
            run.iter_mut().zip(add).for_each(|(s, &x)| *s += x);
        }
        if c > r {
            let drop = &v[(c - r - 1) * plane..(c - r) * plane];
            run.iter_mut().zip(drop).for_each(|(s, &x)| *s -= x);
        }
        out[c * plane..(c + 1) * plane].copy_from_slice(&run);
    }
}

/// Zero-padded (2r+1)×(2r+1) box sum over one H×W plane: rows first, then columns.
fn box_sum(v: &[f32], out: &mut [f32], h: usize, w: usize, r: usize) {
    let mut rows = vec![0.0f32; h * w];
    for y in 0..h {
        for x in 0..w {
            let (lo, hi) = (x.saturating_sub(r), (x + r + 1).min(w));
            rows[y * w + x] = v[y * w + lo..y * w + hi].iter().sum();
        }
    }
    for y in 0..h {
        let (lo, hi) = (y.saturating_sub(r), (y + r + 1).min(h));
        for x in 0..w {
            out[y * w + x] = (lo..hi).map(|yy| rows[yy * w + x]).sum();
        }
    }
}

impl Layer for LRNLayer {
    fn type_name(&self) -> &'static str {
        "LRN"
    }
    fn bottoms(&self) -> Arity {
        Arity::exactly(1)
    }
    fn tops(&self) -> Arity {
        Arity::exactly(1)
    }

    fn reshape(&mut self, bottom: &[Shape]) -> Result<Vec<Shape>, ShapeError> {
        if bottom[0].len() != 4 {
            return Err(ShapeError::at_bottom(
                0,
                format!("needs an NxCxHxW bottom, got {}", fmt_shape(&bottom[0])),
            ));
        }
        Ok(vec![bottom[0].clone()])
    }

    /// Per element: the square, the window sum (n adds, or 2n for the box), the
    /// scale, the power (counted as 2) and the product.
    fn flops(&self, bottom: &[Shape], _top: &[Shape]) -> u64 {
        let n = self.params.local_size as u64;
        let window = match self.params.norm_region {
            NormRegion::AcrossChannels => n,
            NormRegion::WithinChannel => 2 * n,
        };
        (window + 5) * count(&bottom[0]) as u64
    }

    fn forward(&mut self, io: &mut LayerIo, _ctx: &mut RunCtx) -> Result<(), String> {
        let (bottoms, mut tops, _) = io.forward_split();
        let shape = bottoms[0].shape().to_vec();
        let (c, plane, w) = (shape[1], shape[2] * shape[3], shape[3]);
        let sample = c * plane;
        let x = bottoms[0].data();
        let (a, k) = self.coefficients();
        let beta = self.params.beta;
        let mut scale = std::mem::take(&mut self.scale);
        scale.resize(x.len(), 0.0);
        let this = &*self;
        if sample > 0 {
            scale
                .par_chunks_mut(sample)
                .zip(tops[0].data_mut().par_chunks_mut(sample))
                .zip(x.par_chunks(sample))
                .for_each(|((s, y), x)| {
                    let sq: Vec<f32> = x.iter().map(|v| v * v).collect();
                    this.window_sum(&sq, s, c, plane, w);
                    for ((s, y), &x) in s.iter_mut().zip(y.iter_mut()).zip(x) {
                        *s = k + a * *s;
                        *y = x * s.powf(-beta);
                    }
                });
        }
        self.scale = scale;
        Ok(())
    }

    fn backward(
        &mut self,
        io: &mut LayerIo,
        propagate_down: &[bool],
        _ctx: &mut RunCtx,
    ) -> Result<(), String> {
        if !propagate_down[0] {
            return Ok(());
        }
        let (mut bottoms, tops, _) = io.backward_split();
        let shape = bottoms[0].shape().to_vec();
        let (c, plane, w) = (shape[1], shape[2] * shape[3], shape[3]);
        let sample = c * plane;
        let (a, _) = self.coefficients();
        let beta = self.params.beta;
        let coeff = 2.0 * a * beta;
        let (y, dy) = (tops[0].data(), tops[0].diff());
        if sample == 0 {
            return Ok(());
        }
        // Not in place, so the bottom still holds x.
        let (x_all, dx_all) = bottoms[0].data_and_diff_mut();
        dx_all
            .par_chunks_mut(sample)
            .enumerate()
            .for_each(|(n, dx)| {
                let span = n * sample..(n + 1) * sample;
                let (s, x) = (&self.scale[span.clone()], &x_all[span.clone()]);
                let (y, dy) = (&y[span.clone()], &dy[span]);
                let t: Vec<f32> = (0..sample).map(|i| dy[i] * y[i] / s[i]).collect();
                self.window_sum(&t, dx, c, plane, w);
                for i in 0..sample {
                    dx[i] = dy[i] * s[i].powf(-beta) - coeff * x[i] * dx[i];
                }
            });
        Ok(())
    }
}
