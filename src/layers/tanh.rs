//! TanH: y = tanh(x) = 1 − 2/(e^(2x) + 1), elementwise on any shape; dy/dx = 1 − y²,
//! taken from the top's data. Works in place.

use super::convolution::Engine;
use super::{count, rows, Arity, BuildContext, Layer, Shape, ShapeError};
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::LayerDef;
use serde::Deserialize;

/// Costed as 5 FLOPs per element: double, exp (counted as one), add, divide, subtract.
pub const TANH_FLOPS: u64 = 5;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TanHParams {
    pub engine: Engine,
}

pub struct TanHLayer {
    pub params: TanHParams,
}

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    let p: TanHParams = def.params("tanh_param")?;
    Ok(Box::new(TanHLayer { params: p }))
}

impl Layer for TanHLayer {
    fn type_name(&self) -> &'static str {
        "TanH"
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
        TANH_FLOPS * count(&bottom[0]) as u64
    }

    fn supports_in_place(&self) -> bool {
        true
    }

    fn forward(&mut self, io: &mut LayerIo, _ctx: &mut RunCtx) -> Result<(), String> {
        io.copy_bottom_data_to_top(0);
        rows::map(io.top_mut(0).data_mut(), f32::tanh);
        Ok(())
    }

    fn backward(
        &mut self,
        io: &mut LayerIo,
        propagate_down: &[bool],
        _ctx: &mut RunCtx,
    ) -> Result<(), String> {
        if propagate_down[0] {
            rows::backward_from_top_data(io, |g, y| g * (1.0 - y * y));
        }
        Ok(())
    }
}
