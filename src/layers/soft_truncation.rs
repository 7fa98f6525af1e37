//! SoftTruncation (happynear/caffe-windows; NormFace, Wang et al. 2017): a smooth,
//! saturating squash of non-negative values such as distances, y = 1 − e^(−x/c)
//! (0 at x = 0, approaching 1), elementwise.
//! dy/dx = e^(−x/c)/c = (1 − y)/c.

use super::checks::param_error;
use super::unary::{self, UnaryOp};
use super::{BuildContext, Layer};
use crate::error::Diagnostic;
use crate::netdef::LayerDef;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SoftTruncationParams {
    /// The scale c of the exponent.
    pub c: f32,
}

impl Default for SoftTruncationParams {
    fn default() -> Self {
        SoftTruncationParams { c: 2.0 }
    }
}

struct SoftTruncation {
    c: f32,
}

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    const BLOCK: &str = "soft_truncation_param";
    let p: SoftTruncationParams = def.params(BLOCK)?;
    if p.c == 0.0 || !p.c.is_finite() {
        return Err(
            param_error(def, BLOCK, "c", &format!("c = {} divides the input", p.c))
                .with_help("give a non-zero c (the fork's default is 2)"),
        );
    }
    Ok(unary::layer(SoftTruncation { c: p.c }))
}

impl UnaryOp for SoftTruncation {
    fn type_name(&self) -> &'static str {
        "SoftTruncation"
    }
    fn value(&self, x: f32) -> f32 {
        -(-(x as f64) / self.c as f64).exp_m1() as f32
    }
    fn derivative(&self, x: f32) -> f32 {
        ((-(x as f64) / self.c as f64).exp() / self.c as f64) as f32
    }
    fn flops(&self) -> u64 {
        3
    }
}
