//! MultinomialLogisticLoss: −log of the probability given to the true class.
//! Legend: probabilities p viewed as N × D (D = count of the rest), labels l_n ∈ 0..D.
//! Forward: loss = −Σ_n ln(max(p_n,l_n, 1e−20)) / N   (Caffe's kLOG_THRESHOLD).
//! Backward (g = loss_weight): dp_n,l_n = −g / (N·max(p_n,l_n, 1e−20)), 0 elsewhere.

use super::loss::{check_same_num, class_of, LabelAt, LossParams};
use super::{count, fmt_shape, Arity, BuildContext, Layer, Shape, ShapeError};
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::LayerDef;

/// Caffe's floor on a probability before its logarithm.
pub const LOG_THRESHOLD: f32 = 1e-20;

pub struct MultinomialLogisticLossLayer {
    dim: usize,
}

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    LossParams::reject_settings(def)?;
    Ok(Box::new(MultinomialLogisticLossLayer { dim: 0 }))
}

/// Bottom 1 holds one label per sample of bottom 0; returns D = count(shape[1..]).
pub fn one_label_per_sample(bottom: &[Shape]) -> Result<usize, ShapeError> {
    check_same_num(bottom, 1)?;
    let n = bottom[0].first().copied().unwrap_or(1);
    if count(&bottom[1]) != n {
        return Err(ShapeError::at_bottom(
            1,
            format!(
                "the labels have shape {} but bottom 0 has {}: one label per sample is needed",
                fmt_shape(&bottom[1]),
                fmt_shape(&bottom[0])
            ),
        ));
    }
    Ok(count(&bottom[0][1.min(bottom[0].len())..]))
}

/// The label of sample `n` as a class in 0..d.
pub fn label(v: f32, d: usize, n: usize) -> Result<usize, String> {
    let at = LabelAt {
        sample: n,
        position: 0,
        positions: 1,
    };
    Ok(class_of(v, d, None, at)?.expect("no ignore label"))
}

impl Layer for MultinomialLogisticLossLayer {
    fn type_name(&self) -> &'static str {
        "MultinomialLogisticLoss"
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
        self.dim = one_label_per_sample(bottom)?;
        Ok(vec![vec![]])
    }

    fn forward(&mut self, io: &mut LayerIo, _ctx: &mut RunCtx) -> Result<(), String> {
        let (bottoms, mut tops, _) = io.forward_split();
        let d = self.dim;
        let mut sum = 0.0f64;
        let labels = bottoms[1].data();
        for (n, p) in bottoms[0].data().chunks(d.max(1)).enumerate() {
            let l = label(labels[n], d, n)?;
            sum -= (p[l].max(LOG_THRESHOLD) as f64).ln();
        }
        tops[0].data_mut()[0] = (sum / labels.len().max(1) as f64) as f32;
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
        let d = self.dim;
        let labels = bottoms[1].data().to_vec();
        let scale = -(tops[0].diff()[0] as f64) / labels.len().max(1) as f64;
        let (p, dp) = bottoms[0].data_and_diff_mut();
        dp.fill(0.0);
        for (n, &v) in labels.iter().enumerate() {
            let l = label(v, d, n)?;
            dp[n * d + l] = (scale / p[n * d + l].max(LOG_THRESHOLD) as f64) as f32;
        }
        Ok(())
    }
}
