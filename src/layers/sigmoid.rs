//! Sigmoid: y = 1/(1 + e^(−x)), elementwise on any shape; dy/dx = y·(1 − y), taken from
//! the top's data. Works in place.

use super::convolution::Engine;
use super::{count, rows, Arity, BuildContext, Layer, Shape, ShapeError};
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::LayerDef;
use serde::Deserialize;

/// Costed as 4 FLOPs per element: negate, exp (counted as one), add, divide.
pub const SIGMOID_FLOPS: u64 = 4;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SigmoidParams {
    pub engine: Engine,
}

pub struct SigmoidLayer {
    pub params: SigmoidParams,
}

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    let p: SigmoidParams = def.params("sigmoid_param")?;
    Ok(Box::new(SigmoidLayer { params: p }))
}

impl Layer for SigmoidLayer {
    fn type_name(&self) -> &'static str {
        "Sigmoid"
    }
    fn bottoms(&self) -> Arity {
        Arity::exactly(1)
    }
    fn tops(&self) -> Arity {
        Arity::exactly(1)
    }
    fn reshape(&mut self, bottom: &[Shape]) -> Result<Vec<Shape>, ShapeError> {
        Ok(vec![bottom[0].clone()])
    }
    fn flops(&self, bottom: &[Shape], _top: &[Shape]) -> u64 {
        SIGMOID_FLOPS * count(&bottom[0]) as u64
    }

    fn supports_in_place(&self) -> bool {
        true
    }

    fn forward(&mut self, io: &mut LayerIo, _ctx: &mut RunCtx) -> Result<(), String> {
        io.copy_bottom_data_to_top(0);
        // 1/(1 + e^(−x)) = (1 + tanh(x/2))/2, which cannot overflow.
        rows::map(io.top_mut(0).data_mut(), |x| 0.5 + 0.5 * (0.5 * x).tanh());
        Ok(())
    }

    fn backward(
        &mut self,
        io: &mut LayerIo,
        propagate_down: &[bool],
        _ctx: &mut RunCtx,
    ) -> Result<(), String> {
        if propagate_down[0] {
            rows::backward_from_top_data(io, |g, y| g * y * (1.0 - y));
        }
        Ok(())
    }
}
