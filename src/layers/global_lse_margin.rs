//! GlobalLSEMargin (happynear/caffe-windows; the auto-scaling AM-Softmax head of
//! happynear/AMSoftmax `prototxt/auto/face_train_test_auto.prototxt`, after Wang et al.,
//! "Additive Margin Softmax", 2018): learns the scale s and sets the additive margin m
//! itself, from how far each target cosine already stands above the log-sum-exp of the
//! other classes. Legend: c bottom 0 viewed as M × C (cosines), y_i = (int) label i,
//! optional per-sample norms n_i (bottom 2) replacing s.
//!
//! Learnable blobs: 0 = s (from `scale_param.filler`, 30 without one; lr_mult 1,
//! decay_mult 0 unless given, lr_mult 0 with bottom 2), 1 = m (starts at 0; set by the
//! layer, lr_mult 0). Forward:
//!   s is clamped IN PLACE to [min_value, max_value] (0 and +∞ when unset);
//!   a_i = max(−1, max_{j≠y} c_ij),
//!   L_i = a_i + ln(Σ_{j≠y} e^(s_i·(c_ij − a_i)))/s_i  (s_i = s, or n_i with bottom 2),
//!   δ_i = c_iy − L_i;
//!   TRAIN only: with m = 0, m ← μ(δ, mean δ, 20 rounds); else m ← 0.9·m + 0.1·μ(δ, m, 1),
//!   where μ(δ, start, r) is a mean shift: up to r times replace the centre by the mean of
//!   the δ_i within 0.1 of it, stopping when it moves less than 0.001; an empty window
//!   restarts once from the mean of all δ (a NaN result leaves m as it was);
//!   out = s·(c − m·[j = y]) where m > 0, else s·c  (n_i in place of s with bottom 2).
//! Optional top 1 (`[5]`): s (or mean n), mean c_iy, mean L_i, mean a_i, m.
//! Backward (m is a constant): dc = s·dy (n_i·dy), ds += Σ dy·out/s, and with bottom 2
//! dn_i = Σ_j dy_ij·out_ij/n_i. No gradient to the label.

use super::filler::{fill, FillerParams};
use super::label_specific_add::per_sample_labels;
use super::margin_inner_product::class_labels;
use super::{count, fmt_shape, Arity, BuildContext, Layer, Shape, ShapeError};
use crate::blob::Blob;
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::{LayerDef, ParamSpec, Phase};
use crate::philox::ParamStreams;
use serde::Deserialize;

/// The `scale_param` fields this layer reads (the block is Scale's; only `filler`,
/// `min_value` and `max_value` act here, the others are accepted).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GlobalLseScaleParams {
    pub axis: Option<i32>,
    pub num_axes: Option<i32>,
    pub filler: Option<FillerParams>,
    pub bias_term: Option<bool>,
    pub bias_filler: Option<FillerParams>,
    pub min_value: Option<f32>,
    pub max_value: Option<f32>,
}

pub struct GlobalLseMarginLayer {
    pub params: GlobalLseScaleParams,
    with_norms: bool,
    tops: usize,
}

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    let p: GlobalLseScaleParams = def.params("scale_param")?;
    if let Some(f) = &p.filler {
        f.validate(def, "scale_param", "filler")?;
    }
    Ok(Box::new(GlobalLseMarginLayer {
        params: p,
        with_norms: def.bottom.len() == 3,
        tops: def.top.len(),
    }))
}

/// The mean shift μ(δ, start, rounds) of the module comment.
pub fn mean_shift(values: &[f64], start: f64, rounds: u32) -> f64 {
    let mean_all = values.iter().sum::<f64>() / values.len().max(1) as f64;
    let (mut mu, mut last) = (start, start);
    let (mut left, mut restarted) = (rounds, false);
    while left > 0 {
        left -= 1;
        let window: Vec<f64> = values
            .iter()
            .copied()
            .filter(|v| (v - mu).abs() < 0.1)
            .collect();
        if window.is_empty() {
            if restarted {
                return mean_all;
            }
            restarted = true;
            (mu, last) = (mean_all, mean_all);
            left += 1;
            continue;
        }
        mu = window.iter().sum::<f64>() / window.len() as f64;
        if (last - mu).abs() < 0.001 {
            break;
        }
        last = mu;
    }
    mu
}

impl Layer for GlobalLseMarginLayer {
    fn type_name(&self) -> &'static str {
        "GlobalLSEMargin"
    }
    fn bottoms(&self) -> Arity {
        Arity::between(2, 3)
    }
    fn tops(&self) -> Arity {
        Arity::between(1, 2)
    }
    fn can_backprop_to(&self, bottom: usize) -> bool {
        bottom != 1
    }

    fn reshape(&mut self, bottom: &[Shape]) -> Result<Vec<Shape>, ShapeError> {
        let x = per_sample_labels(bottom)?;
        if count(&x) / x[0].max(1) < 2 {
            return Err(ShapeError::at_bottom(
                0,
                format!("needs at least 2 classes, got {}", fmt_shape(&x)),
            ));
        }
        if let Some(n) = bottom.get(2) {
            if count(n) != x[0] {
                return Err(ShapeError::at_bottom(
                    2,
                    format!(
                        "norm bottom 2 has shape {} but there are {} samples",
                        fmt_shape(n),
                        x[0]
                    ),
                ));
            }
        }
        let mut tops = vec![x];
        if self.tops == 2 {
            tops.push(vec![5]);
        }
        Ok(tops)
    }

    fn param_shapes(&self) -> Vec<Shape> {
        vec![vec![1], vec![1]]
    }

    fn fill_params(&self, params: &mut [Blob], streams: &ParamStreams) {
        match &self.params.filler {
            Some(f) => fill(f, &mut params[0], streams.blob(0)),
            None => params[0].data_mut()[0] = 30.0,
        }
        params[1].data_mut()[0] = 0.0;
    }

    fn param_diff_is_gradient(&self, index: usize) -> bool {
        index == 0 && !self.with_norms
    }

    fn default_param_spec(&self, index: usize) -> ParamSpec {
        let learned = index == 0 && !self.with_norms;
        ParamSpec {
            lr_mult: if learned { 1.0 } else { 0.0 },
            decay_mult: 0.0,
            ..ParamSpec::default()
        }
    }

    fn forward(&mut self, io: &mut LayerIo, ctx: &mut RunCtx) -> Result<(), String> {
        let (bottoms, mut tops, params) = io.forward_split();
        let m = bottoms[0].dim(0).max(1);
        let c = bottoms[0].count() / m;
        let labels = class_labels(bottoms[1].data(), c)?;
        let s = {
            let v = &mut params[0].data_mut()[0];
            let (lo, hi) = (self.params.min_value, self.params.max_value);
            *v = v.max(lo.unwrap_or(0.0)).min(hi.unwrap_or(f32::MAX));
            *v as f64
        };
        let norms: Option<Vec<f64>> = bottoms
            .get(2)
            .map(|b| b.data().iter().map(|&v| v as f64).collect());
        let x = bottoms[0].data();
        let (mut sums, mut deltas) = ([0.0f64; 3], Vec::with_capacity(m));
        for (i, &y) in labels.iter().enumerate() {
            let row = &x[i * c..(i + 1) * c];
            let si = norms.as_ref().map_or(s, |n| n[i]);
            let others = || (0..c).filter(|&j| j != y).map(|j| row[j] as f64);
            let a = others().fold(-1.0f64, f64::max);
            let lse = a + others().map(|v| (si * (v - a)).exp()).sum::<f64>().ln() / si;
            deltas.push(row[y] as f64 - lse);
            sums[0] += row[y] as f64;
            sums[1] += lse;
            sums[2] += a;
        }
        let margin = &mut params[1].data_mut()[0];
        if ctx.phase == Phase::Train {
            let (mean, old) = (deltas.iter().sum::<f64>() / m as f64, *margin as f64);
            let shifted = if old == 0.0 {
                mean_shift(&deltas, mean, 20)
            } else {
                0.9 * old + 0.1 * mean_shift(&deltas, old, 1)
            };
            if !shifted.is_nan() {
                *margin = shifted as f32;
            }
        }
        let mv = *margin as f64;
        let out = tops[0].data_mut();
        for (i, &y) in labels.iter().enumerate() {
            let si = norms.as_ref().map_or(s, |n| n[i]);
            for j in 0..c {
                let v = x[i * c + j] as f64 - if j == y && mv > 0.0 { mv } else { 0.0 };
                out[i * c + j] = (si * v) as f32;
            }
        }
        if let Some(t) = tops.get_mut(1) {
            let first = norms
                .as_ref()
                .map_or(s, |n| n.iter().sum::<f64>() / m as f64);
            let stats = [
                first,
                sums[0] / m as f64,
                sums[1] / m as f64,
                sums[2] / m as f64,
                mv,
            ];
            for (o, v) in t.data_mut().iter_mut().zip(stats) {
                *o = v as f32;
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
        let m = bottoms[0].dim(0).max(1);
        let c = bottoms[0].count() / m;
        let (out, dy) = (tops[0].data(), tops[0].diff());
        let s = params[0].data()[0] as f64;
        let norms: Option<Vec<f64>> = bottoms
            .get(2)
            .map(|b| b.data().iter().map(|&v| v as f64).collect());
        match &norms {
            Some(n) if propagate_down.get(2) == Some(&true) => {
                let dn = bottoms[2].diff_mut();
                for i in 0..m {
                    let r = i * c..(i + 1) * c;
                    let dot: f64 = out[r.clone()]
                        .iter()
                        .zip(&dy[r])
                        .map(|(&o, &g)| o as f64 * g as f64)
                        .sum();
                    dn[i] = (dot / n[i]) as f32;
                }
            }
            Some(_) => {}
            None if s != 0.0 => {
                let dot: f64 = out.iter().zip(dy).map(|(&o, &g)| o as f64 * g as f64).sum();
                params[0].diff_mut()[0] += (dot / s) as f32;
            }
            None => {}
        }
        if propagate_down[0] {
            let dx = bottoms[0].diff_mut();
            for (k, (o, &g)) in dx.iter_mut().zip(dy).enumerate() {
                let si = norms.as_ref().map_or(s, |n| n[k / c]);
                *o = (si * g as f64) as f32;
            }
        }
        Ok(())
    }
}
