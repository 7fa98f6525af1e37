//! EuclideanLoss: half the mean squared distance between two equal-sized bottoms.
//! Legend: N = `shape[0]` of both bottoms, a_n, b_n = sample n flattened (equal sizes).
//!
//! Forward: loss = 1/(2N) · Σ_n ‖a_n − b_n‖².
//! Backward (g = loss_weight): da = g/N · (a − b), db = −g/N · (a − b).

use super::loss::{check_same_num, LossParams};
use super::{count, fmt_shape, Arity, BuildContext, Layer, Shape, ShapeError};
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::LayerDef;

pub struct EuclideanLossLayer {
    /// a − b of the last forward.
    diff: Vec<f32>,
}

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    LossParams::reject_settings(def)?;
    Ok(Box::new(EuclideanLossLayer { diff: Vec::new() }))
}

impl Layer for EuclideanLossLayer {
    fn type_name(&self) -> &'static str {
        "EuclideanLoss"
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

    fn reshape(&mut self, bottom: &[Shape]) -> Result<Vec<Shape>, ShapeError> {
        check_same_num(bottom, 1)?;
        let (a, b) = (&bottom[0], &bottom[1]);
        // The first axes agree, so equal counts mean equal per-sample sizes.
        if count(a) != count(b) {
            return Err(ShapeError::at_bottom(
                1,
                format!(
                    "bottom 1 has shape {} ({} values) but bottom 0 has shape {} ({} values): \
                     the counts must be equal",
                    fmt_shape(b),
                    count(b),
                    fmt_shape(a),
                    count(a)
                ),
            ));
        }
        Ok(vec![vec![]])
    }

    fn flops(&self, bottom: &[Shape], _top: &[Shape]) -> u64 {
        // Subtract, then a multiply-add per value.
        3 * count(&bottom[0]) as u64
    }

    fn forward(&mut self, io: &mut LayerIo, _ctx: &mut RunCtx) -> Result<(), String> {
        let (bottoms, mut tops, _) = io.forward_split();
        let n = bottoms[0].dim(0).max(1) as f64;
        self.diff.clear();
        self.diff.extend(
            bottoms[0]
                .data()
                .iter()
                .zip(bottoms[1].data())
                .map(|(&a, &b)| a - b),
        );
        let sumsq: f64 = self.diff.iter().map(|&d| d as f64 * d as f64).sum();
        tops[0].data_mut()[0] = (sumsq / (2.0 * n)) as f32;
        Ok(())
    }

    fn backward(
        &mut self,
        io: &mut LayerIo,
        propagate_down: &[bool],
        _ctx: &mut RunCtx,
    ) -> Result<(), String> {
        let (mut bottoms, tops, _) = io.backward_split();
        let g = tops[0].diff()[0] as f64;
        let n = bottoms[0].dim(0).max(1) as f64;
        for (i, b) in bottoms.iter_mut().enumerate() {
            if propagate_down[i] {
                let alpha = (if i == 0 { g } else { -g } / n) as f32;
                for (d, &v) in b.diff_mut().iter_mut().zip(&self.diff) {
                    *d = alpha * v;
                }
            }
        }
        Ok(())
    }
}
