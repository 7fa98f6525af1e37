//! FocalLoss (Lin et al., "Focal Loss for Dense Object Detection", 2017; the layer of
//! the arcface-caffe and caffe-windows forks): a softmax loss that down-weights
//! well-classified samples. Legend: scores viewed as outer × C × inner around
//! `softmax_param.axis`; labels hold outer·inner values; p = softmax(x) along the axis,
//! p_t its value at the label.
//!
//! Forward, over positions whose label l ≠ ignore_label:
//!   loss = Σ ℓ(p_t) / D,  ℓ(p) = −α·b(p)^γ·ln(max(p, FLT_MIN)),
//!   b(p) = 1 − p (`type: ORIGIN`, the paper's) or 1 + p (`type: ONEADDP`, caffe-windows'
//!   face-verification variant); D as in SoftmaxWithLoss (`loss_param.normalization`,
//!   default VALID). Optional top 1 = p.
//! Backward (g = loss weight, the true gradient): with
//!   ℓ'(p) = −α·(γ·b^(γ−1)·b'·ln p + b^γ/p), b' = ∓1,
//!   dx_j = g/D · ℓ'(p_t)·p_t·(δ_jl − p_j) at each position, 0 where ignored.
//! `type: LINEAR` and `beta` (its offset) are read but LINEAR is refused.
//! Difference from caffe-windows: its ORIGIN uses (α − p)^γ (α in place of 1), not
//! α·(1 − p)^γ; netrun computes the paper's formula.

use super::softmax::{softmax_flops, split_axis};
use super::softmax_with_loss::{softmax_loss_methods, SoftmaxLossHead};
use super::{count, BuildContext, Layer, Shape};
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::LayerDef;
use serde::Deserialize;

/// `FocalLossParameter.Type`: ORIGIN = 0, LINEAR = 1, ONEADDP = 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FocalType {
    #[default]
    Origin,
    Linear,
    Oneaddp,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FocalLossParams {
    #[serde(rename = "type")]
    pub focal_type: FocalType,
    pub gamma: f32,
    pub alpha: f32,
    pub beta: f32,
}

impl Default for FocalLossParams {
    fn default() -> Self {
        FocalLossParams {
            focal_type: FocalType::Origin,
            gamma: 2.0,
            alpha: 0.25,
            beta: 1.0,
        }
    }
}

pub struct FocalLossLayer {
    pub params: FocalLossParams,
    pub head: SoftmaxLossHead,
}

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    let p: FocalLossParams = def.params("focal_loss_param")?;
    let span = def
        .block
        .get("focal_loss_param")
        .map_or(def.name_span(), |f| f.name_span);
    if p.focal_type == FocalType::Linear {
        return Err(def
            .error(
                span,
                format!("{}: `type: LINEAR` is not supported", def.describe()),
            )
            .with_help("use ORIGIN (the paper's α·(1 − p)^γ) or ONEADDP"));
    }
    if p.gamma < 0.0 || p.alpha <= 0.0 {
        return Err(def.error(
            span,
            format!("{}: needs gamma ≥ 0 and alpha > 0", def.describe()),
        ));
    }
    Ok(Box::new(FocalLossLayer {
        params: p,
        head: SoftmaxLossHead::new(def)?,
    }))
}

impl FocalLossLayer {
    /// ℓ(p) and ℓ'(p).
    fn ell(&self, p: f32) -> (f64, f64) {
        let (a, g) = (self.params.alpha as f64, self.params.gamma as f64);
        let (b, db) = match self.params.focal_type {
            FocalType::Oneaddp => (1.0 + p as f64, 1.0),
            _ => (1.0 - p as f64, -1.0),
        };
        let lp = (p.max(f32::MIN_POSITIVE) as f64).ln();
        let bg = b.powf(g);
        let dbg = if g == 0.0 {
            0.0
        } else {
            g * b.powf(g - 1.0) * db
        };
        (
            -a * bg * lp,
            -a * (dbg * lp + bg / (p as f64).max(f32::MIN_POSITIVE as f64)),
        )
    }
}

impl Layer for FocalLossLayer {
    fn type_name(&self) -> &'static str {
        "FocalLoss"
    }
    softmax_loss_methods!();

    fn flops(&self, bottom: &[Shape], _top: &[Shape]) -> u64 {
        softmax_flops(count(&bottom[0])) + 4 * count(&bottom[1]) as u64
    }

    fn forward(&mut self, io: &mut LayerIo, _ctx: &mut RunCtx) -> Result<(), String> {
        let (bottoms, mut tops, _) = io.forward_split();
        let dims = self.head.start(bottoms[0], bottoms[1])?;
        let sum: f64 = self.head.label_probs(dims).map(|p| self.ell(p).0).sum();
        self.head.finish(&mut tops, sum, dims);
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
        let (_, c, inner) = split_axis(bottoms[0].shape(), self.head.axis);
        let scale = tops[0].diff()[0] as f64 / self.head.normalizer;
        let dx = bottoms[0].diff_mut();
        let prob = &self.head.prob;
        for (k, label) in self.head.labels.iter().enumerate() {
            let (n, j) = (k / inner, k % inner);
            let at = |ch: usize| (n * c + ch) * inner + j;
            let Some(l) = *label else {
                (0..c).for_each(|ch| dx[at(ch)] = 0.0);
                continue;
            };
            let pt = prob[at(l)];
            let f = scale * self.ell(pt).1 * pt as f64;
            for ch in 0..c {
                let delta = if ch == l { 1.0 } else { 0.0 };
                dx[at(ch)] = (f * (delta - prob[at(ch)] as f64)) as f32;
            }
        }
        Ok(())
    }
}
