//! BNLL ("binomial normal log likelihood"): the softplus y = ln(1 + e^x), elementwise,
//! computed as x + ln(1 + e^(−x)) for x > 0 so it cannot overflow; dy/dx = 1/(1 + e^(−x)).

use super::unary::{self, UnaryOp};
use super::{BuildContext, Layer};
use crate::error::Diagnostic;
use crate::netdef::LayerDef;

struct Bnll;

pub fn build(_def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    Ok(unary::layer(Bnll))
}

impl UnaryOp for Bnll {
    fn type_name(&self) -> &'static str {
        "BNLL"
    }
    fn value(&self, x: f32) -> f32 {
        if x > 0.0 {
            x + (-x).exp().ln_1p()
        } else {
            x.exp().ln_1p()
        }
    }
    fn derivative(&self, x: f32) -> f32 {
        0.5 + 0.5 * (0.5 * x).tanh()
    }
    fn flops(&self) -> u64 {
        4
    }
}
