//! Softmax along `axis`. Legend: the bottom is viewed as outer × C × inner, with
//! C = `shape[axis]`, outer = product of the axes before it, inner = product after.
//!
//! Forward, for every (outer, inner) position, over c in 0..C:
//!   y_c = exp(x_c − max_k x_k) / Σ_k exp(x_k − max_k x_k)
//! Backward (g = top diff):
//!   dx_c = (g_c − Σ_k g_k·y_k) · y_c

use super::convolution::Engine;
use super::loss::axis_of;
use super::{count, Arity, BuildContext, Layer, Shape, ShapeError};
use crate::error::Diagnostic;
use crate::netdef::LayerDef;
use serde::Deserialize;

/// `softmax_param { engine axis }`; also read by SoftmaxWithLoss.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SoftmaxParams {
    /// Accepted for compatibility; netrun has one engine.
    pub engine: Engine,
    pub axis: i32,
}

impl Default for SoftmaxParams {
    fn default() -> Self {
        SoftmaxParams {
            engine: Engine::Default,
            axis: 1,
        }
    }
}

/// FLOPs of a softmax over `n` values: max, subtract, exp, sum, divide (exp counted as 1).
pub fn softmax_flops(n: usize) -> u64 {
    5 * n as u64
}

pub struct SoftmaxLayer {
    pub params: SoftmaxParams,
    /// The resolved axis, fixed at reshape.
    pub axis: usize,
}

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    let p: SoftmaxParams = def.params("softmax_param")?;
    Ok(Box::new(SoftmaxLayer { params: p, axis: 0 }))
}

impl Layer for SoftmaxLayer {
    fn type_name(&self) -> &'static str {
        "Softmax"
    }
    fn bottoms(&self) -> Arity {
        Arity::exactly(1)
    }
    fn tops(&self) -> Arity {
        Arity::exactly(1)
    }

    fn reshape(&mut self, bottom: &[Shape]) -> Result<Vec<Shape>, ShapeError> {
        self.axis = axis_of(self.params.axis, &bottom[0], 0)?;
        Ok(vec![bottom[0].clone()])
    }

    fn flops(&self, bottom: &[Shape], _top: &[Shape]) -> u64 {
        softmax_flops(count(&bottom[0]))
    }
}
