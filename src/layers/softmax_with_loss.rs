//! SoftmaxWithLoss: softmax along `axis` followed by the multinomial logistic loss.
//! Legend: scores viewed as outer × C × inner around `axis`; labels hold outer·inner
//! integer values (cast from float), one per (outer, inner) position.
//!
//! Forward: p = softmax(x) along axis (see softmax.rs); over positions whose label
//! l ≠ ignore_label:  loss = −Σ log(max(p_l, FLT_MIN)) / D, where the normaliser
//! D = max(1, n) and n is, by `loss_param.normalization`:
//!   FULL: outer·inner; VALID: the non-ignored positions (outer·inner without
//!   `ignore_label`); BATCH_SIZE: outer; NONE: 1.
//! The FLT_MIN clamp caps one sample's loss at −ln(FLT_MIN) ≈ 87.3365.
//! Optional top 1 = p (same shape as the scores).
//! Backward (g = loss_weight of top 0): dx = g·(p − onehot(l)) / D at each position,
//! 0 at ignored positions. No gradient to the labels.

use super::loss::{axis_of, check_label_count, check_same_num, LossParams};
use super::softmax::{softmax_flops, SoftmaxParams};
use super::{count, Arity, BuildContext, Layer, Shape, ShapeError};
use crate::error::Diagnostic;
use crate::netdef::LayerDef;

pub struct SoftmaxWithLossLayer {
    pub softmax: SoftmaxParams,
    pub loss: LossParams,
    /// The resolved softmax axis, fixed at reshape.
    pub axis: usize,
    tops: usize,
}

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    Ok(Box::new(SoftmaxWithLossLayer {
        softmax: def.params("softmax_param")?,
        loss: def.params("loss_param")?,
        axis: 0,
        tops: def.top.len(),
    }))
}

impl Layer for SoftmaxWithLossLayer {
    fn type_name(&self) -> &'static str {
        "SoftmaxWithLoss"
    }
    fn bottoms(&self) -> Arity {
        Arity::exactly(2)
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
        self.axis = axis_of(self.softmax.axis, &bottom[0], 0)?;
        check_label_count(bottom, self.axis, 1)?;
        check_same_num(bottom, 1)?;
        let mut tops = vec![vec![]];
        if self.tops == 2 {
            tops.push(bottom[0].clone());
        }
        Ok(tops)
    }

    fn flops(&self, bottom: &[Shape], _top: &[Shape]) -> u64 {
        softmax_flops(count(&bottom[0])) + count(&bottom[1]) as u64
    }
}
