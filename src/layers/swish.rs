//! Swish: y = x·σ(β·x), σ(t) = 1/(1 + e^(−t)), elementwise;
//! dy/dx = σ(βx) + β·x·σ(βx)·(1 − σ(βx)) = β·y + σ(βx)·(1 − β·y).

use super::unary::{self, UnaryOp};
use super::{BuildContext, Layer};
use crate::error::Diagnostic;
use crate::netdef::LayerDef;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SwishParams {
    pub beta: f32,
}

impl Default for SwishParams {
    fn default() -> Self {
        SwishParams { beta: 1.0 }
    }
}

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    Ok(unary::layer(def.params::<SwishParams>("swish_param")?))
}

/// σ(t) as (1 + tanh(t/2))/2, which cannot overflow.
fn sigmoid(t: f32) -> f32 {
    0.5 + 0.5 * (0.5 * t).tanh()
}

impl UnaryOp for SwishParams {
    fn type_name(&self) -> &'static str {
        "Swish"
    }
    fn value(&self, x: f32) -> f32 {
        x * sigmoid(self.beta * x)
    }
    fn derivative(&self, x: f32) -> f32 {
        let s = sigmoid(self.beta * x);
        let y = x * s;
        self.beta * y + s * (1.0 - self.beta * y)
    }
    fn flops(&self) -> u64 {
        6
    }
}
