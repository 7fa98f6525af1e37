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
//! 0 at ignored positions. No gradient to the labels; top 1's diff is not used.
//!
//! Labels are truncated to int; one outside [0, C) that is not `ignore_label` (or a
//! NaN) fails the forward, naming the sample, the label and C. [`Layer::health`]
//! reports a forward where every counted label hit the FLT_MIN clamp (a diverged
//! net: the loss is stuck at 87.3365 per sample and carries no signal) or the loss is NaN.

use super::loss::{axis_of, check_label_count, check_same_num, class_of, LabelAt, LossParams};
use super::softmax::{softmax_flops, softmax_forward, split_axis, SoftmaxParams};
use super::{count, BuildContext, Layer, Shape, ShapeError};
use crate::blob::Blob;
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::LayerDef;

/// What SoftmaxWithLoss and FocalLoss share: `softmax_param` and `loss_param`, the
/// softmax along the axis, one label (or `None`, ignored) per position, the
/// normaliser D and the optional top 1 = p.
pub struct SoftmaxLossHead {
    pub softmax: SoftmaxParams,
    pub loss: LossParams,
    /// The resolved softmax axis, fixed at reshape.
    pub axis: usize,
    tops: usize,
    /// p of the last forward.
    pub prob: Vec<f32>,
    /// Per position: the class, or `None` where ignored.
    pub labels: Vec<Option<usize>>,
    pub normalizer: f64,
}

impl SoftmaxLossHead {
    pub fn new(def: &LayerDef) -> Result<SoftmaxLossHead, Diagnostic> {
        Ok(SoftmaxLossHead {
            softmax: super::softmax::softmax_params(def)?,
            loss: def.params("loss_param")?,
            axis: 0,
            tops: def.top.len(),
            prob: Vec::new(),
            labels: Vec::new(),
            normalizer: 1.0,
        })
    }

    pub fn reshape(&mut self, bottom: &[Shape]) -> Result<Vec<Shape>, ShapeError> {
        self.axis = axis_of(self.softmax.axis, &bottom[0], 0)?;
        check_label_count(bottom, self.axis, 1)?;
        check_same_num(bottom, 1)?;
        let mut tops = vec![vec![]];
        if self.tops == 2 {
            tops.push(bottom[0].clone());
        }
        Ok(tops)
    }

    /// Runs the softmax and reads the labels; returns (outer, C, inner).
    pub fn start(&mut self, scores: &Blob, labels: &Blob) -> Result<[usize; 3], String> {
        let (outer, c, inner) = split_axis(scores.shape(), self.axis);
        self.prob.resize(scores.count(), 0.0);
        softmax_forward(scores.data(), &mut self.prob, c, inner);
        self.labels.clear();
        for (k, &value) in labels.data().iter().enumerate() {
            let at = LabelAt {
                sample: k / inner,
                position: k % inner,
                positions: inner,
            };
            self.labels
                .push(class_of(value, c, self.loss.ignore_label, at)?);
        }
        Ok([outer, c, inner])
    }

    /// p at each counted position's label, in position order.
    pub fn label_probs(&self, [_, c, inner]: [usize; 3]) -> impl Iterator<Item = f32> + '_ {
        self.labels
            .iter()
            .enumerate()
            .filter_map(move |(k, l)| l.map(|l| self.prob[(k / inner * c + l) * inner + k % inner]))
    }

    /// Sets D from the counted positions, writes loss = sum/D and top 1; returns the loss.
    pub fn finish(&mut self, tops: &mut [&mut Blob], sum: f64, dims: [usize; 3]) -> f32 {
        let valid = self.labels.iter().filter(|l| l.is_some()).count();
        self.normalizer = self.loss.normalizer(dims[0], dims[2], valid);
        let loss = (sum / self.normalizer) as f32;
        tops[0].data_mut()[0] = loss;
        if let Some(t) = tops.get_mut(1) {
            t.data_mut().copy_from_slice(&self.prob);
        }
        loss
    }
}

/// The `Layer` methods both softmax losses take from their `head: SoftmaxLossHead`.
macro_rules! softmax_loss_methods {
    () => {
        fn bottoms(&self) -> $crate::layers::Arity {
            $crate::layers::Arity::exactly(2)
        }
        fn tops(&self) -> $crate::layers::Arity {
            $crate::layers::Arity::between(1, 2)
        }
        fn is_loss(&self) -> bool {
            true
        }
        fn can_backprop_to(&self, bottom: usize) -> bool {
            bottom == 0
        }
        fn reshape(
            &mut self,
            bottom: &[$crate::layers::Shape],
        ) -> Result<Vec<$crate::layers::Shape>, $crate::layers::ShapeError> {
            self.head.reshape(bottom)
        }
    };
}
pub(crate) use softmax_loss_methods;

pub struct SoftmaxWithLossLayer {
    pub head: SoftmaxLossHead,
    /// Counted positions and those whose p_label was clamped to FLT_MIN.
    valid: usize,
    clamped: usize,
    last_loss: f32,
}

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    Ok(Box::new(SoftmaxWithLossLayer {
        head: SoftmaxLossHead::new(def)?,
        valid: 0,
        clamped: 0,
        last_loss: 0.0,
    }))
}

impl Layer for SoftmaxWithLossLayer {
    fn type_name(&self) -> &'static str {
        "SoftmaxWithLoss"
    }
    softmax_loss_methods!();

    fn flops(&self, bottom: &[Shape], _top: &[Shape]) -> u64 {
        softmax_flops(count(&bottom[0])) + count(&bottom[1]) as u64
    }

    fn forward(&mut self, io: &mut LayerIo, _ctx: &mut RunCtx) -> Result<(), String> {
        let (bottoms, mut tops, _) = io.forward_split();
        let dims = self.head.start(bottoms[0], bottoms[1])?;
        let (mut sum, mut valid, mut clamped) = (0.0f64, 0usize, 0usize);
        for p in self.head.label_probs(dims) {
            // Not f32::max, which would turn a NaN probability into FLT_MIN.
            let p = if p < f32::MIN_POSITIVE {
                clamped += 1;
                f32::MIN_POSITIVE
            } else {
                p
            };
            sum -= (p as f64).ln();
            valid += 1;
        }
        (self.valid, self.clamped) = (valid, clamped);
        self.last_loss = self.head.finish(&mut tops, sum, dims);
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
        let scale = (tops[0].diff()[0] as f64 / self.head.normalizer) as f32;
        let dx = bottoms[0].diff_mut();
        dx.copy_from_slice(&self.head.prob);
        for (k, label) in self.head.labels.iter().enumerate() {
            let (n, j) = (k / inner, k % inner);
            match label {
                Some(l) => dx[(n * c + l) * inner + j] -= 1.0,
                None => (0..c).for_each(|ch| dx[(n * c + ch) * inner + j] = 0.0),
            }
        }
        dx.iter_mut().for_each(|d| *d *= scale);
        Ok(())
    }

    fn health(&self) -> Option<String> {
        if self.last_loss.is_nan() {
            Some("the loss is NaN (NaN or infinite scores)".to_string())
        } else if self.valid > 0 && self.clamped == self.valid {
            Some(format!(
                "every sample hit the FLT_MIN clamp (loss {:.4}): the scores have diverged",
                self.last_loss
            ))
        } else {
            None
        }
    }
}
