//! InfogainLoss: SoftmaxWithLoss weighted by an infogain matrix H (C × C), as in Caffe 1.0
//! (the layer applies the softmax itself; before Caffe 1.0 it took probabilities).
//! Legend: scores viewed as outer × C × inner around `axis`; labels l, one per (outer, inner)
//! position; H from bottom 2 or from `infogain_loss_param.source` (a BlobProto file); r_l = Σ_k H[l, k].
//! Forward: p = softmax(x) along axis; over positions whose label is not `ignore_label`:
//!   loss = −Σ_pos Σ_k H[l, k]·ln(max(p_k, FLT_MIN)) / D, D by `loss_param.normalization`
//!   (default VALID, as SoftmaxWithLoss). Optional top 1 = p.
//! Backward (g = loss_weight): dx_k = g·(p_k·r_l − H[l, k]) / D; 0 at ignored positions;
//! no gradient to the labels or to H.

use super::loss::{axis_of, check_label_count, check_same_num, class_of, LabelAt, LossParams};
use super::softmax::{softmax_forward, split_axis};
use super::{count, fmt_shape, Arity, BuildContext, Layer, Shape, ShapeError};
use crate::data::blob_proto::BlobProto;
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::LayerDef;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InfogainLossParams {
    pub source: Option<String>,
    pub axis: i32,
}

impl Default for InfogainLossParams {
    fn default() -> Self {
        InfogainLossParams {
            source: None,
            axis: 1,
        }
    }
}

pub struct InfogainLossLayer {
    pub params: InfogainLossParams,
    pub loss: LossParams,
    /// H read from `source` (None: H is bottom 2).
    pub file_h: Option<Vec<f32>>,
    axis: usize,
    tops: usize,
    prob: Vec<f32>,
    normalizer: f64,
}

pub fn build(def: &LayerDef, ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    let p: InfogainLossParams = def.params("infogain_loss_param")?;
    let loss: LossParams = def.params("loss_param")?;
    let span = super::checks::param_span(def, "infogain_loss_param", "source");
    let err = |m: String| def.error(span, format!("{}: {m}", def.describe()));
    let file_h = match (&p.source, def.bottom.len()) {
        (_, 3) => None,
        (None, _) => {
            return Err(err(
                "needs the infogain matrix H: a third bottom or `infogain_loss_param { source: \"H.binaryproto\" }`"
                    .into(),
            ))
        }
        (Some(file), _) => {
            let path = crate::data::resolve(file, &ctx.data_dirs)
                .map_err(|tried| {
                    err(format!(
                        "cannot open infogain matrix `{file}` (tried {})",
                        crate::data::fmt_paths(&tried)
                    ))
                })?
                .path;
            let bytes = std::fs::read(&path)
                .map_err(|e| err(format!("cannot read `{}`: {e}", path.display())))?;
            let blob = BlobProto::decode(&bytes).map_err(|e| {
                err(format!("`{}` is not a valid BlobProto: {e}", path.display()))
            })?;
            Some(blob.data)
        }
    };
    Ok(Box::new(InfogainLossLayer {
        params: p,
        loss,
        file_h,
        axis: 0,
        tops: def.top.len(),
        prob: vec![],
        normalizer: 1.0,
    }))
}

impl Layer for InfogainLossLayer {
    fn type_name(&self) -> &'static str {
        "InfogainLoss"
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
        self.axis = axis_of(self.params.axis, &bottom[0], 0)?;
        check_same_num(bottom, 1)?;
        check_label_count(bottom, self.axis, 1)?;
        let c = bottom[0][self.axis];
        let h_count = match (&self.file_h, bottom.get(2)) {
            (_, Some(h)) => count(h),
            (Some(h), None) => h.len(),
            (None, None) => 0,
        };
        if h_count != c * c {
            return Err(ShapeError::new(format!(
                "the infogain matrix H has {h_count} values but {c} classes need {c}x{c} = {} (scores {})",
                c * c,
                fmt_shape(&bottom[0])
            )));
        }
        let mut tops = vec![vec![]];
        if self.tops == 2 {
            tops.push(bottom[0].clone());
        }
        Ok(tops)
    }

    fn forward(&mut self, io: &mut LayerIo, _ctx: &mut RunCtx) -> Result<(), String> {
        let (bottoms, mut tops, _) = io.forward_split();
        let (outer, c, inner) = split_axis(bottoms[0].shape(), self.axis);
        let h = self.file_h.as_deref().unwrap_or_else(|| bottoms[2].data());
        self.prob.resize(bottoms[0].count(), 0.0);
        softmax_forward(bottoms[0].data(), &mut self.prob, c, inner);
        let (mut sum, mut valid) = (0.0f64, 0usize);
        for (pos, &value) in bottoms[1].data().iter().enumerate() {
            let (o, i) = (pos / inner, pos % inner);
            let at = LabelAt {
                sample: o,
                position: i,
                positions: inner,
            };
            let Some(l) = class_of(value, c, self.loss.ignore_label, at)? else {
                continue;
            };
            for k in 0..c {
                let p = self.prob[(o * c + k) * inner + i].max(f32::MIN_POSITIVE);
                sum -= h[l * c + k] as f64 * (p as f64).ln();
            }
            valid += 1;
        }
        self.normalizer = self.loss.normalizer(outer, inner, valid);
        tops[0].data_mut()[0] = (sum / self.normalizer) as f32;
        if let Some(t) = tops.get_mut(1) {
            t.data_mut().copy_from_slice(&self.prob);
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
        let (_, c, inner) = split_axis(bottoms[0].shape(), self.axis);
        let scale = tops[0].diff()[0] as f64 / self.normalizer;
        let h: Vec<f32> = match &self.file_h {
            Some(h) => h.clone(),
            None => bottoms[2].data().to_vec(),
        };
        let labels = bottoms[1].data().to_vec();
        let dx = bottoms[0].diff_mut();
        for (pos, &value) in labels.iter().enumerate() {
            let (o, i) = (pos / inner, pos % inner);
            let at = LabelAt {
                sample: o,
                position: i,
                positions: inner,
            };
            let label = class_of(value, c, self.loss.ignore_label, at)?;
            let row_sum: f64 = label.map_or(0.0, |l| {
                h[l * c..(l + 1) * c].iter().map(|&v| v as f64).sum()
            });
            for k in 0..c {
                let at = (o * c + k) * inner + i;
                dx[at] = match label {
                    None => 0.0,
                    Some(l) => {
                        (scale * (self.prob[at] as f64 * row_sum - h[l * c + k] as f64)) as f32
                    }
                };
            }
        }
        Ok(())
    }
}
