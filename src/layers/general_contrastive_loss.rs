//! GeneralContrastiveLoss (happynear/caffe-windows; NormFace, Wang et al. 2017, §
//! "metric learning"): a contrastive hinge on each sample's distances to every class
//! centre, usually the output of InnerDistance. Legend: d bottom 0 viewed as M × C,
//! y_i = (int) label i (bottom 1), optional per-sample weights v_i (bottom 2);
//! pm/nm = positive/negative_margin, pw/nw = positive/negative_weight.
//!
//! Forward: loss = (1/M)·Σ_i [pw·max(0, d_iy − pm) + Σ_{j≠y} nw·max(0, nm − d_ij)].
//! Optional top 1 (`[2]`): the mean positive hinge Σ_i max(0, d_iy − pm)/M and the
//! mean negative hinge Σ_i Σ_{j≠y} max(0, nm − d_ij)/(M·(C − 1)).
//! Backward (g = loss weight; the true gradient away from the hinges' kinks):
//!   dd_iy = g·pw/M where d_iy > pm;  dd_ij = −g·nw/M where d_ij < nm (j ≠ y); 0 elsewhere.
//! With `normalize_negative: r` set, let S = Σ of the negative entries' nw over the
//! batch, S' = S/(r·M); when S' > pw the negative entries are divided by S' (the
//! fork's cap on the push-away gradient). With bottom 2, each row i of the gradient is
//! scaled by v_i/mean(v) (the loss value is not). No gradient to labels or weights.
//! The fork's other options (square, max_negative_only, max_positive_only,
//! positive_first, exp_negative_weight, add_intra_mae, and the bounds they use) are
//! read; setting any of the switches is refused as not supported.

use super::label_specific_add::per_sample_labels;
use super::margin_inner_product::class_labels;
use super::{count, fmt_shape, Arity, BuildContext, Layer, Shape, ShapeError};
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
}

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    const BLOCK: &str = "general_contrastive_loss_param";
    let p: GeneralContrastiveParams = def.params(BLOCK)?;
    let on: Vec<&str> = [
        ("square", p.square),
        ("max_negative_only", p.max_negative_only),
        ("max_positive_only", p.max_positive_only),
        ("positive_first", p.positive_first),
        ("exp_negative_weight", p.exp_negative_weight),
        ("add_intra_mae", p.add_intra_mae),
    ]
    .into_iter()
    .filter_map(|(n, v)| v.then_some(n))
    .collect();
    if !on.is_empty() {
        return Err(def
            .error(
                def.block
                    .get(BLOCK)
                    .map_or(def.name_span(), |f| f.name_span),
                format!(
                    "{}: `{}` is not supported yet",
                    def.describe(),
                    on.join("`, `")
                ),
            )
            .with_help("the plain hinge (positive/negative margins and weights) is supported"));
    }
    Ok(Box::new(GeneralContrastiveLossLayer {
        params: p,
        tops: def.top.len(),
    }))
}

impl Layer for GeneralContrastiveLossLayer {
    fn type_name(&self) -> &'static str {
        "GeneralContrastiveLoss"
    }
    fn bottoms(&self) -> Arity {
        Arity::between(2, 3)
    }
    fn tops(&self) -> Arity {
        Arity::between(1, 2)
    }
    fn is_loss(&self) -> bool {
        true
    }
    fn can_backprop_to(&self, bottom: usize) -> bool {
        bottom == 0
    }

    fn reshape(&mut self, bottom: &[Shape]) -> Result<Vec<Shape>, ShapeError> {
        let x = per_sample_labels(bottom)?;
        if let Some(v) = bottom.get(2) {
            if count(v) != x[0] {
                return Err(ShapeError::at_bottom(
                    2,
                    format!(
                        "weight bottom 2 has shape {} but there are {} samples",
                        fmt_shape(v),
                        x[0]
                    ),
                ));
            }
        }
        let mut tops = vec![vec![]];
        if self.tops == 2 {
            tops.push(vec![2]);
        }
        Ok(tops)
    }

    fn forward(&mut self, io: &mut LayerIo, _ctx: &mut RunCtx) -> Result<(), String> {
        let (bottoms, mut tops, _) = io.forward_split();
        let m = bottoms[0].dim(0).max(1);
        let c = bottoms[0].count() / m;
        let labels = class_labels(bottoms[1].data(), c)?;
        let p = &self.params;
        let d = bottoms[0].data();
        let (mut loss, mut pos, mut neg) = (0.0f64, 0.0f64, 0.0f64);
        for (i, &y) in labels.iter().enumerate() {
            for j in 0..c {
                let v = d[i * c + j] as f64;
                if j == y {
                    let h = (v - p.positive_margin as f64).max(0.0);
                    pos += h;
                    loss += h * p.positive_weight as f64;
                } else {
                    let h = (p.negative_margin as f64 - v).max(0.0);
                    neg += h;
                    loss += h * p.negative_weight as f64;
                }
            }
        }
        tops[0].data_mut()[0] = (loss / m as f64) as f32;
        if let Some(t) = tops.get_mut(1) {
            t.data_mut()[0] = (pos / m as f64) as f32;
            t.data_mut()[1] = (neg / m as f64 / (c.max(2) - 1) as f64) as f32;
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
        let m = bottoms[0].dim(0).max(1);
        let c = bottoms[0].count() / m;
        let labels = class_labels(bottoms[1].data(), c)?;
        let weights = bottoms.get(2).map(|b| b.data().to_vec());
        let p = &self.params;
        let g = tops[0].diff()[0] as f64;
        let (d, dd) = bottoms[0].data_and_diff_mut();
        let mut grad = vec![0.0f64; d.len()];
        let mut neg_sum = 0.0f64;
        for (i, &y) in labels.iter().enumerate() {
            for j in 0..c {
                let v = d[i * c + j];
                if j == y {
                    if v > p.positive_margin {
                        grad[i * c + j] = p.positive_weight as f64;
                    }
                } else if v < p.negative_margin {
                    grad[i * c + j] = -(p.negative_weight as f64);
                    neg_sum += p.negative_weight as f64;
                }
            }
        }
        if let Some(r) = p.normalize_negative {
            let s = neg_sum.abs() / r as f64 / m as f64;
            if s > p.positive_weight as f64 {
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
