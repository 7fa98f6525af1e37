//! ReLU: y = max(x, 0) + ν·min(x, 0), ν = negative_slope (0: plain ReLU; leaky otherwise).
//! Elementwise on any shape; works in place.

use super::convolution::Engine;
use super::{count, Arity, BuildContext, Layer, Shape, ShapeError};
use crate::error::Diagnostic;
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
}
