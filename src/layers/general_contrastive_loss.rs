//! GeneralContrastiveLoss (happynear/caffe-windows; NormFace, Wang et al. 2017, §
//! "metric learning"): a contrastive hinge on each sample's distances to every class
//! centre, usually the output of InnerDistance. Legend: d bottom 0 viewed as M × C,
//! y_i = (int) label i (bottom 1), optional per-sample weights v_i (bottom 2);
//! pm/nm = positive/negative_margin, pw/nw = positive/negative_weight, T =
//! positive_outlier_thresh.
//!
//! Forward, per entry (the fork's "diff" values e_ij):
//!   e_iy = pw·min(T, max(0, d_iy − pm)),
//!   e_ij = nw·(nm − d_ij) where d_ij < nm (j ≠ y), nw·e^(−d_ij) with
//!          `exp_negative_weight`; 0 elsewhere;
//! then `positive_first`: rows with d_iy > positive_upper_bound lose their negatives;
//! `max_positive_only`: only the sample with the smallest e_iy keeps it (the first on
//! ties); `max_negative_only`: each row keeps only its largest e_ij, starting from class
//! 0 (which, when it is the target, competes with its e_iy: the fork's rule).
//!   loss = Σ |e_ij| / M.
//! `add_intra_mae`: nm is the parameter plus a running mean μ of the positive hinge,
//! μ ← min(0.99·μ + 0.01·Σ_i min(T, max(0, d_iy − pm))/M, max_negative_margin) after
//! each forward (layer state). `square` is read and, as in the fork, has no effect.
//! Optional top 1 (`[2]`, `[3]` with add_intra_mae): the mean truncated positive hinge,
//! Σ max(0, nm − d_ij)/(M·(C − 1)) over the negatives, and μ.
//! Backward (g = loss weight; the gradient of that loss away from kinks, except the
//! `normalize_negative` cap and `positive_first`, which force pw on the target):
//!   dd_iy = g·pw/M where pm < d_iy < T (and the sample is kept; T is compared with
//!   d itself while the forward saturates at d − pm = T, as in the fork);
//!   dd_ij = −g·nw/M (−g·nw·e^(−d_ij)/M) where d_ij < nm and the entry is kept.
//! With `normalize_negative: r` set, let S = Σ of the negative gradients' magnitudes
//! (before g/M), S' = S/(r·M); when S' > pw the negative entries are divided by S'. With
//! bottom 2, each row of the gradient is scaled by v_i/mean(v) (the loss value is not).
//! No gradient to labels or weights.

use super::general_triplet_loss::{distance_loss_inputs, distance_loss_methods};
use super::margin_inner_product::class_labels;
use super::{BuildContext, Layer};
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::LayerDef;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GeneralContrastiveParams {
    pub positive_margin: f32,
    pub negative_margin: f32,
    pub positive_weight: f32,
    pub negative_weight: f32,
    pub normalize_negative: Option<f32>,
    pub positive_outlier_thresh: f32,
    pub square: bool,
    pub max_negative_only: bool,
    pub max_positive_only: bool,
    pub positive_first: bool,
    pub positive_upper_bound: f32,
    pub exp_negative_weight: bool,
    pub add_intra_mae: bool,
    pub max_negative_margin: f32,
}

impl Default for GeneralContrastiveParams {
    fn default() -> Self {
        GeneralContrastiveParams {
            positive_margin: 0.0,
            negative_margin: 1.0,
            positive_weight: 1.0,
            negative_weight: 1.0,
            normalize_negative: None,
            positive_outlier_thresh: 4.0,
            square: false,
            max_negative_only: false,
            max_positive_only: false,
            positive_first: false,
            positive_upper_bound: 1.0,
            exp_negative_weight: false,
            add_intra_mae: false,
            max_negative_margin: 1.2,
        }
    }
}

pub struct GeneralContrastiveLossLayer {
    pub params: GeneralContrastiveParams,
    tops: usize,
    /// The running mean μ of `add_intra_mae`.
    intra_mae: f64,
    /// nm of the last forward (with μ added under `add_intra_mae`).
    margin: f64,
    /// The sample keeping its positive term (`max_positive_only`).
    kept_positive: usize,
    /// Per sample: the negative class kept (`max_negative_only`).
    kept_negative: Vec<usize>,
}

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    let p: GeneralContrastiveParams = def.params("general_contrastive_loss_param")?;
    Ok(Box::new(GeneralContrastiveLossLayer {
        margin: p.negative_margin as f64,
        params: p,
        tops: def.top.len(),
        intra_mae: 0.0,
        kept_positive: 0,
        kept_negative: Vec::new(),
    }))
}

impl GeneralContrastiveLossLayer {
    fn stats_len(&self) -> usize {
        if self.params.add_intra_mae {
            3
        } else {
            2
        }
    }

    /// The per-entry terms e_ij of the module comment and the two hinge sums.
    fn terms(&mut self, d: &[f32], labels: &[usize], c: usize) -> (Vec<f64>, f64, f64) {
        let p = &self.params;
        let (pm, nm) = (p.positive_margin as f64, self.margin);
        let thresh = p.positive_outlier_thresh as f64;
        let mut e = vec![0.0f64; d.len()];
        let (mut pos, mut neg) = (0.0, 0.0);
        self.kept_positive = 0;
        self.kept_negative = vec![0; labels.len()];
        for (i, &y) in labels.iter().enumerate() {
            let row = i * c;
            for j in 0..c {
                let v = d[row + j] as f64;
                if j == y {
                    let t = (v - pm).max(0.0).min(thresh);
                    pos += t;
                    e[row + j] = t * p.positive_weight as f64;
                    let best = self.kept_positive * c + labels[self.kept_positive];
                    if e[row + j] < e[best] {
                        self.kept_positive = i;
                    }
                } else if v < nm {
                    e[row + j] = p.negative_weight as f64
                        * if p.exp_negative_weight {
                            (-v).exp()
                        } else {
                            nm - v
                        };
                    neg += nm - v;
                    if e[row + j] > e[row + self.kept_negative[i]] {
                        self.kept_negative[i] = j;
                    }
                }
            }
            if p.positive_first && d[row + y] > p.positive_upper_bound {
                (0..c).filter(|&j| j != y).for_each(|j| e[row + j] = 0.0);
            }
        }
        for (i, &y) in labels.iter().enumerate() {
            for j in 0..c {
                let drop = if j == y {
                    p.max_positive_only && i != self.kept_positive
                } else {
                    p.max_negative_only && j != self.kept_negative[i]
                };
                if drop {
                    e[i * c + j] = 0.0;
                }
            }
        }
        (e, pos, neg)
    }
}

impl Layer for GeneralContrastiveLossLayer {
    fn type_name(&self) -> &'static str {
        "GeneralContrastiveLoss"
    }
    distance_loss_methods!();

    fn state(&self) -> Vec<(String, f64)> {
        match self.params.add_intra_mae {
            true => vec![("intra_mae".to_string(), self.intra_mae)],
            false => vec![],
        }
    }

    fn set_state(&mut self, state: &[(String, f64)]) -> Result<(), String> {
        for (name, v) in state {
            if name != "intra_mae" || !v.is_finite() {
                return Err(format!(
                    "unexpected state `{name}` = {v} (GeneralContrastiveLoss keeps a finite `intra_mae`)"
                ));
            }
            self.intra_mae = *v;
        }
        Ok(())
    }

    fn forward(&mut self, io: &mut LayerIo, _ctx: &mut RunCtx) -> Result<(), String> {
        let (bottoms, mut tops, _) = io.forward_split();
        let m = bottoms[0].dim(0).max(1);
        let c = bottoms[0].count() / m;
        let labels = class_labels(bottoms[1].data(), c)?;
        let p = &self.params;
        self.margin = p.negative_margin as f64 + if p.add_intra_mae { self.intra_mae } else { 0.0 };
        let (e, pos, neg) = self.terms(bottoms[0].data(), &labels, c);
        let p = &self.params;
        self.intra_mae =
            (0.99 * self.intra_mae + 0.01 * pos / m as f64).min(p.max_negative_margin as f64);
        let loss: f64 = e.iter().map(|v| v.abs()).sum();
        tops[0].data_mut()[0] = (loss / m as f64) as f32;
        if let Some(t) = tops.get_mut(1) {
            let out = t.data_mut();
            out[0] = (pos / m as f64) as f32;
            out[1] = (neg / m as f64 / (c.max(2) - 1) as f64) as f32;
            if let Some(o) = out.get_mut(2) {
                *o = self.intra_mae as f32;
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
        if !propagate_down[0] {
            return Ok(());
        }
        let (mut bottoms, tops, _) = io.backward_split();
        let (m, c, labels, weights) = distance_loss_inputs(&bottoms)?;
        let p = &self.params;
        let (pw, nw) = (p.positive_weight as f64, p.negative_weight as f64);
        let g = tops[0].diff()[0] as f64;
        let (d, dd) = bottoms[0].data_and_diff_mut();
        let mut grad = vec![0.0f64; d.len()];
        let mut neg_sum = 0.0f64;
        for (i, &y) in labels.iter().enumerate() {
            let row = &mut grad[i * c..(i + 1) * c];
            let dr = &d[i * c..(i + 1) * c];
            if p.positive_first && dr[y] > p.positive_upper_bound {
                row[y] = pw;
                continue;
            }
            let keep_pos = !(p.max_positive_only && i != self.kept_positive);
            if dr[y] > p.positive_margin && dr[y] < p.positive_outlier_thresh && keep_pos {
                row[y] = pw;
            }
            for j in (0..c).filter(|&j| j != y) {
                let v = dr[j] as f64;
                if v >= self.margin || (p.max_negative_only && j != self.kept_negative[i]) {
                    continue;
                }
                let w = if p.exp_negative_weight {
                    nw * (-v).exp()
                } else {
                    nw
                };
                row[j] = -w;
                neg_sum += w;
            }
        }
        if let Some(r) = p.normalize_negative {
            let s = neg_sum.abs() / r as f64 / m as f64;
            if s > pw {
                for (i, &y) in labels.iter().enumerate() {
                    (0..c)
                        .filter(|&j| j != y)
                        .for_each(|j| grad[i * c + j] /= s);
                }
            }
        }
        if let Some(w) = weights {
            let mean = w.iter().map(|&v| v as f64).sum::<f64>() / m as f64;
            for (i, row) in grad.chunks_mut(c).enumerate() {
                row.iter_mut().for_each(|v| *v *= w[i] as f64 / mean);
            }
        }
        for (o, &v) in dd.iter_mut().zip(&grad) {
            *o = (v * g / m as f64) as f32;
        }
        Ok(())
    }
}
