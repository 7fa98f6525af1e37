//! SigmoidCrossEntropyLoss: the cross-entropy of σ(x) against targets t ∈ [0, 1], one per score.
//! Legend: scores x of any shape (outer = shape[0], inner = the rest), targets t with as many values.
//!
//! Forward, over positions whose truncated target is not `ignore_label`:
//!   ℓ_i = −[t_i·ln σ(x_i) + (1 − t_i)·ln(1 − σ(x_i))]
//!       = max(x_i, 0) − x_i·t_i + ln(1 + e^(−|x_i|))        (stable form)
//!   loss = Σ ℓ_i / D, D = max(1, n) with n by `loss_param.normalization`: FULL: outer·inner;
//!   VALID: the counted positions; BATCH_SIZE: outer (the default here, unlike SoftmaxWithLoss); NONE: 1.
//! Backward (g = loss_weight): dx_i = g·(σ(x_i) − t_i) / D, 0 at ignored positions; no gradient to t.

use super::loss::{check_same_num, LossParams, NormalizationMode};
use super::{count, fmt_shape, Arity, BuildContext, Layer, Shape, ShapeError};
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::LayerDef;

pub struct SigmoidCrossEntropyLossLayer {
    pub loss: LossParams,
    normalizer: f64,
}

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    Ok(Box::new(SigmoidCrossEntropyLossLayer {
        loss: def.params("loss_param")?,
        normalizer: 1.0,
    }))
}

impl SigmoidCrossEntropyLossLayer {
    /// Caffe's precedence, with BATCH_SIZE when neither field is given.
    fn mode(&self) -> NormalizationMode {
        match (self.loss.normalization, self.loss.normalize) {
            (None, None) => NormalizationMode::BatchSize,
            _ => self.loss.mode(),
        }
    }

    fn ignored(&self, t: f32) -> bool {
        self.loss
            .ignore_label
            .is_some_and(|i| t.trunc().is_finite() && t.trunc() == i as f32)
    }
}

impl Layer for SigmoidCrossEntropyLossLayer {
    fn type_name(&self) -> &'static str {
        "SigmoidCrossEntropyLoss"
    }
    fn bottoms(&self) -> Arity {
        Arity::exactly(2)
    }
    fn tops(&self) -> Arity {
        Arity::exactly(1)
    }
    fn is_loss(&self) -> bool {
        true
    }
    fn can_backprop_to(&self, bottom: usize) -> bool {
        bottom == 0
    }

    fn reshape(&mut self, bottom: &[Shape]) -> Result<Vec<Shape>, ShapeError> {
        check_same_num(bottom, 1)?;
        if count(&bottom[0]) != count(&bottom[1]) {
            return Err(ShapeError::at_bottom(
                1,
                format!(
                    "targets have shape {} but the scores {}: one target per score is needed",
                    fmt_shape(&bottom[1]),
                    fmt_shape(&bottom[0])
                ),
            ));
        }
        Ok(vec![vec![]])
    }

    fn flops(&self, bottom: &[Shape], _top: &[Shape]) -> u64 {
        6 * count(&bottom[0]) as u64
    }

    fn forward(&mut self, io: &mut LayerIo, _ctx: &mut RunCtx) -> Result<(), String> {
        let (bottoms, mut tops, _) = io.forward_split();
        let (x, t) = (bottoms[0].data(), bottoms[1].data());
        let (mut sum, mut valid) = (0.0f64, 0usize);
        for (&x, &t) in x.iter().zip(t) {
            if self.ignored(t) {
                continue;
            }
            let (x, t) = (x as f64, t as f64);
            sum += x.max(0.0) - x * t + (-x.abs()).exp().ln_1p();
            valid += 1;
        }
        let outer = bottoms[0].shape().first().copied().unwrap_or(1);
        let n = match self.mode() {
            NormalizationMode::Full => x.len(),
            NormalizationMode::Valid => valid,
            NormalizationMode::BatchSize => outer,
            NormalizationMode::None => 1,
        };
        self.normalizer = n.max(1) as f64;
        tops[0].data_mut()[0] = (sum / self.normalizer) as f32;
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
        let scale = (tops[0].diff()[0] as f64 / self.normalizer) as f32;
        let t: Vec<f32> = bottoms[1].data().to_vec();
        let (x, dx) = bottoms[0].data_and_diff_mut();
        for ((d, &x), &t) in dx.iter_mut().zip(x).zip(&t) {
            *d = if self.ignored(t) {
                0.0
            } else {
                let sigma = 0.5 + 0.5 * (0.5 * x).tanh();
                scale * (sigma - t)
            };
        }
        Ok(())
    }
}
