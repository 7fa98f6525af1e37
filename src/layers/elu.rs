//! ELU: y = x for x > 0, α·(e^x − 1) otherwise, elementwise; dy/dx = 1 for x > 0, α·e^x otherwise.

use super::unary::{self, UnaryOp};
use super::{BuildContext, Layer};
use crate::error::Diagnostic;
use crate::netdef::LayerDef;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ELUParams {
    pub alpha: f32,
}

impl Default for ELUParams {
    fn default() -> Self {
        ELUParams { alpha: 1.0 }
    }
}

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    Ok(unary::layer(def.params::<ELUParams>("elu_param")?))
}

impl UnaryOp for ELUParams {
    fn type_name(&self) -> &'static str {
        "ELU"
    }
    fn value(&self, x: f32) -> f32 {
        if x > 0.0 {
            x
        } else {
            self.alpha * x.exp_m1()
        }
    }
    fn derivative(&self, x: f32) -> f32 {
        if x > 0.0 {
            1.0
        } else {
            self.alpha * x.exp()
        }
    }
    fn flops(&self) -> u64 {
        3
    }
}
