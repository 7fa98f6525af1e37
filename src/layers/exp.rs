//! Exp: y = base^(shift + scale·x), elementwise (base −1, the default, means e).
//! Computed as y = base^shift · e^(ln(base)·scale·x); dy/dx = ln(base)·scale·y.

use super::checks::param_error;
use super::unary::{self, UnaryOp};
use super::{BuildContext, Layer};
use crate::error::Diagnostic;
use crate::netdef::LayerDef;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExpParams {
    pub base: f32,
    pub scale: f32,
    pub shift: f32,
}

impl Default for ExpParams {
    fn default() -> Self {
        ExpParams {
            base: -1.0,
            scale: 1.0,
            shift: 0.0,
        }
    }
}

/// ln(base), with base −1 standing for e; an error for any other base ≤ 0.
pub fn log_base(def: &LayerDef, block: &str, base: f32) -> Result<f32, Diagnostic> {
    if base == -1.0 {
        return Ok(1.0);
    }
    if base > 0.0 && base.is_finite() {
        return Ok(base.ln());
    }
    Err(
        param_error(def, block, "base", &format!("base {base} is not positive"))
            .with_help("give a base > 0, or leave it at -1 for e"),
    )
}

struct Exp {
    /// ln(base)·scale.
    inner: f32,
    /// base^shift.
    outer: f32,
}

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    let p: ExpParams = def.params("exp_param")?;
    let ln_base = log_base(def, "exp_param", p.base)?;
    Ok(unary::layer(Exp {
        inner: ln_base * p.scale,
        outer: (ln_base * p.shift).exp(),
    }))
}

impl UnaryOp for Exp {
    fn type_name(&self) -> &'static str {
        "Exp"
    }
    fn value(&self, x: f32) -> f32 {
        self.outer * (self.inner * x).exp()
    }
    fn derivative(&self, x: f32) -> f32 {
        self.inner * self.value(x)
    }
    fn flops(&self) -> u64 {
        3
    }
}
