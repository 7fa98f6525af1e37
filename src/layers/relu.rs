//! ReLU: y = max(x, 0) + ν·min(x, 0), ν = negative_slope (0: plain ReLU; leaky otherwise).
//! Elementwise on any shape; works in place. Backward: dx = dy where x > 0, ν·dy otherwise,
//! reading x from the bottom, which in place holds y (same sign for ν ≥ 0, as in Caffe).

use super::convolution::Engine;
use super::{count, rows, Arity, BuildContext, Layer, Shape, ShapeError};
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::LayerDef;
use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReLUParams {
    pub negative_slope: f32,
    pub engine: Engine,
}

pub struct ReLULayer {
    pub params: ReLUParams,
}

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    let p: ReLUParams = def.params("relu_param")?;
    Ok(Box::new(ReLULayer { params: p }))
}

impl Layer for ReLULayer {
    fn type_name(&self) -> &'static str {
        "ReLU"
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

    /// One comparison (or select) per element.
    fn flops(&self, bottom: &[Shape], _top: &[Shape]) -> u64 {
        count(&bottom[0]) as u64
    }

    fn supports_in_place(&self) -> bool {
        true
    }

    fn forward(&mut self, io: &mut LayerIo, _ctx: &mut RunCtx) -> Result<(), String> {
        let slope = self.params.negative_slope;
        io.copy_bottom_data_to_top(0);
        rows::map(io.top_mut(0).data_mut(), |x| {
            if x > 0.0 {
                x
            } else {
                slope * x
            }
        });
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
        let slope = self.params.negative_slope;
        io.copy_top_diff_to_bottom(0);
        let (x, d) = io.bottom_mut(0).data_and_diff_mut();
        rows::zip_map(d, x, |g, x| if x > 0.0 { g } else { slope * g });
        Ok(())
    }
}
