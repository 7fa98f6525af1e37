//! HingeLoss: one-vs-all hinge loss over N samples of D scores.
//! Legend: x is N × D (D = count of the rest), label l_n ∈ 0..D; δ_nj = −1 for j = l_n, +1 else.
//! Forward: m_nj = max(0, 1 + δ_nj·x_nj);
//!   L1 (default): loss = Σ m_nj / N;  L2: loss = Σ m_nj² / N.
//! Backward (g = loss_weight): L1: dx_nj = g·δ_nj·[m_nj > 0] / N;  L2: dx_nj = 2g·δ_nj·m_nj / N.
//! (Caffe's L1 uses sign(m), which is 0 at m = 0, as here.)

use super::loss::LossParams;
use super::multinomial_logistic_loss::{label, one_label_per_sample};
use super::{Arity, BuildContext, Layer, Shape, ShapeError};
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::LayerDef;
use serde::Deserialize;

/// `HingeLossParameter.Norm`: L1 = 1, L2 = 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
pub enum Norm {
    #[default]
    L1,
    L2,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HingeLossParams {
    pub norm: Norm,
}

pub struct HingeLossLayer {
    pub params: HingeLossParams,
    dim: usize,
}

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    LossParams::reject_settings(def)?;
    Ok(Box::new(HingeLossLayer {
        params: def.params("hinge_loss_param")?,
        dim: 0,
    }))
}

impl HingeLossLayer {
    /// δ-signed margins m_nj and the labels.
    fn margins(&self, x: &[f32], labels: &[f32]) -> Result<Vec<f64>, String> {
        let d = self.dim;
        let mut m = Vec::with_capacity(x.len());
        for (n, (row, &l)) in x.chunks(d).zip(labels).enumerate() {
            let l = label(l, d, n)?;
            for (j, &v) in row.iter().enumerate() {
                let delta = if j == l { -1.0 } else { 1.0 };
                m.push((1.0 + delta * v as f64).max(0.0));
            }
        }
        Ok(m)
    }
}

impl Layer for HingeLossLayer {
    fn type_name(&self) -> &'static str {
        "HingeLoss"
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
        self.dim = one_label_per_sample(bottom)?.max(1);
        Ok(vec![vec![]])
    }

    fn forward(&mut self, io: &mut LayerIo, _ctx: &mut RunCtx) -> Result<(), String> {
        let (bottoms, mut tops, _) = io.forward_split();
        let m = self.margins(bottoms[0].data(), bottoms[1].data())?;
        let n = bottoms[0].shape().first().copied().unwrap_or(1).max(1) as f64;
        let sum: f64 = match self.params.norm {
            Norm::L1 => m.iter().sum(),
            Norm::L2 => m.iter().map(|v| v * v).sum(),
        };
        tops[0].data_mut()[0] = (sum / n) as f32;
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
        let labels = bottoms[1].data().to_vec();
        let n = bottoms[0].shape().first().copied().unwrap_or(1).max(1) as f64;
        let g = tops[0].diff()[0] as f64 / n;
        let m = self.margins(bottoms[0].data(), &labels)?;
        let d = self.dim;
        for (i, (dx, &m)) in bottoms[0].diff_mut().iter_mut().zip(&m).enumerate() {
            let delta = if labels[i / d] as usize == i % d {
                -1.0
            } else {
                1.0
            };
            *dx = match self.params.norm {
                Norm::L1 => g * delta * if m > 0.0 { 1.0 } else { 0.0 },
                Norm::L2 => 2.0 * g * delta * m,
            } as f32;
        }
        Ok(())
    }
}
