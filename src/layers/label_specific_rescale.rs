//! LabelSpecificRescale (happynear/caffe-windows; NormFace, Wang et al. 2017, and the
//! multiplicative-margin experiments that led to AM-Softmax): rescales each sample's
//! target-class score by w and the other scores by v. Legend: x bottom 0 viewed as
//! M × C, y_i = (int) label i (bottom 1); w = `positive_weight`, v = `negative_weight`.
//!
//! Forward (TRAIN, or TEST with `rescale_test: true`; otherwise out = x): out = x, then
//! for each sample, when w ≠ 1 and (without `for_ip`, or where x_iy > 0):
//!   out_iy = w·x_iy           (+ (1 − w) with `bias_fix`, which keeps out = 1 at x = 1),
//!   out_iy = sign(x_iy)·|x_iy|^w   with `power_on_positive` instead;
//! and when v ≠ 1, out_ij = v·x_ij for j ≠ y_i.
//! With `positive_weight_base` set, TRAIN forwards first advance a counter t and use
//!   w = positive_weight_base·(1 + gamma·t)^(−power), clamped to
//!   [positive_weight_min, positive_weight_max] where those are set.
//! Optional top 1 (`[1]`): the w used.
//! Backward (the exact gradient): dx = dy, times w (or w·|x_iy|^(w−1) with
//! `power_on_positive`) at the rescaled targets and v at the others.
//! `positive_lower_bound` / `negative_upper_bound` are read and, as in the fork, unused.

use super::label_specific_add::label_specific_methods;
use super::margin_inner_product::class_labels;
use super::{BuildContext, Layer};
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::{LayerDef, Phase};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LabelSpecificRescaleParams {
    pub positive_weight: f32,
    pub negative_weight: f32,
    /// Unused, as in the fork.
    pub positive_lower_bound: f32,
    /// Unused, as in the fork.
    pub negative_upper_bound: f32,
    pub rescale_test: bool,
    pub for_ip: bool,
    /// Turns on the annealed w.
    pub positive_weight_base: Option<f32>,
    pub gamma: f32,
    pub power: f32,
    pub positive_weight_min: Option<f32>,
    pub positive_weight_max: Option<f32>,
    pub iteration: u32,
    pub bias_fix: bool,
    pub power_on_positive: bool,
}

impl Default for LabelSpecificRescaleParams {
    fn default() -> Self {
        LabelSpecificRescaleParams {
            positive_weight: 1.0,
            negative_weight: 1.0,
            positive_lower_bound: 0.0,
            negative_upper_bound: 0.0,
            rescale_test: false,
            for_ip: false,
            positive_weight_base: None,
            gamma: 0.0,
            power: 1.0,
            positive_weight_min: None,
            positive_weight_max: None,
            iteration: 0,
            bias_fix: false,
            power_on_positive: false,
        }
    }
}

pub struct LabelSpecificRescaleLayer {
    pub params: LabelSpecificRescaleParams,
    tops: usize,
    /// The annealing counter t.
    iter: i64,
    /// Per sample of the last forward: the target's slope d out_iy/d x_iy (1 where
    /// untouched); empty when the last forward left the scores unchanged.
    slopes: Vec<f64>,
    /// The negative scale v of the last forward (1 when unchanged).
    neg: f32,
    labels: Vec<usize>,
}

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    let p: LabelSpecificRescaleParams = def.params("label_specific_rescale_param")?;
    Ok(Box::new(LabelSpecificRescaleLayer {
        iter: p.iteration as i64,
        params: p,
        tops: def.top.len(),
        slopes: Vec::new(),
        neg: 1.0,
        labels: Vec::new(),
    }))
}

impl LabelSpecificRescaleLayer {
    fn annealed(&self) -> bool {
        self.params.positive_weight_base.is_some()
    }

    /// w for this forward, advancing the counter in TRAIN when annealing.
    fn next_weight(&mut self, train: bool) -> f32 {
        let p = &self.params;
        let Some(base) = p.positive_weight_base.filter(|_| train) else {
            return p.positive_weight;
        };
        self.iter += 1;
        let mut w = base as f64 * (1.0 + p.gamma as f64 * self.iter as f64).powf(-p.power as f64);
        if let Some(lo) = p.positive_weight_min {
            w = w.max(lo as f64);
        }
        if let Some(hi) = p.positive_weight_max {
            w = w.min(hi as f64);
        }
        w as f32
    }
}

impl Layer for LabelSpecificRescaleLayer {
    fn type_name(&self) -> &'static str {
        "LabelSpecificRescale"
    }
    label_specific_methods!("LabelSpecificRescale");

    fn forward(&mut self, io: &mut LayerIo, ctx: &mut RunCtx) -> Result<(), String> {
        io.copy_bottom_data_to_top(0);
        let train = ctx.phase == Phase::Train;
        let w = self.next_weight(train);
        if io.num_tops() == 2 {
            io.top_mut(1).data_mut()[0] = w;
        }
        self.slopes.clear();
        self.neg = 1.0;
        if !train && !self.params.rescale_test {
            return Ok(());
        }
        let m = io.bottom(0).dim(0).max(1);
        let c = io.bottom(0).count() / m;
        self.labels = class_labels(io.bottom(1).data(), c)?;
        let p = &self.params;
        let out = io.top_mut(0).data_mut();
        for (i, &y) in self.labels.iter().enumerate() {
            let x = out[i * c + y] as f64;
            let (wf, mut slope) = (w as f64, 1.0);
            if w != 1.0 && (!p.for_ip || x > 0.0) {
                let v = if p.power_on_positive {
                    slope = wf * x.abs().powf(wf - 1.0);
                    x.signum() * x.abs().powf(wf)
                } else {
                    slope = wf;
                    x * wf + if p.bias_fix { 1.0 - wf } else { 0.0 }
                };
                out[i * c + y] = v as f32;
            }
            self.slopes.push(slope);
            if p.negative_weight != 1.0 {
                for j in (0..c).filter(|&j| j != y) {
                    out[i * c + j] *= p.negative_weight;
                }
            }
        }
        self.neg = p.negative_weight;
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
        io.copy_top_diff_to_bottom(0);
        if self.slopes.is_empty() {
            return Ok(());
        }
        let m = io.bottom(0).dim(0).max(1);
        let c = io.bottom(0).count() / m;
        let dx = io.bottom_mut(0).diff_mut();
        for (i, (&y, &s)) in self.labels.iter().zip(&self.slopes).enumerate() {
            for j in 0..c {
                let f = if j == y { s } else { self.neg as f64 };
                dx[i * c + j] = (dx[i * c + j] as f64 * f) as f32;
            }
        }
        Ok(())
    }
}
