//! AbsVal: y = |x|, elementwise; dy/dx = sign(x) (0 at 0).

use super::unary::{self, UnaryOp};
use super::{BuildContext, Layer};
use crate::error::Diagnostic;
use crate::netdef::LayerDef;

struct AbsVal;

pub fn build(_def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    Ok(unary::layer(AbsVal))
}

impl UnaryOp for AbsVal {
    fn type_name(&self) -> &'static str {
        "AbsVal"
    }
    fn value(&self, x: f32) -> f32 {
        x.abs()
    }
    fn derivative(&self, x: f32) -> f32 {
        if x > 0.0 {
            1.0
        } else if x < 0.0 {
            -1.0
        } else {
            0.0
        }
    }
}
