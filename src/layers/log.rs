//! Log: y = log_base(shift + scale·x), elementwise (base −1, the default, means e).
//! Computed as ln(shift + scale·x) / ln(base); dy/dx = scale / (ln(base)·(shift + scale·x)).

use super::checks::param_error;
use super::exp::log_base;
use super::unary::{self, UnaryOp};
use super::{BuildContext, Layer};
use crate::error::Diagnostic;
use crate::netdef::LayerDef;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogParams {
    pub base: f32,
    pub scale: f32,
    pub shift: f32,
}

impl Default for LogParams {
    fn default() -> Self {
        LogParams {
            base: -1.0,
            scale: 1.0,
            shift: 0.0,
        }
    }
}

struct Log {
    scale: f32,
    shift: f32,
    /// 1/ln(base).
    base_scale: f32,
}

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    let p: LogParams = def.params("log_param")?;
    let ln_base = log_base(def, "log_param", p.base)?;
    if ln_base == 0.0 {
        return Err(
            param_error(def, "log_param", "base", "base 1 has no logarithm")
                .with_help("give a base > 0 other than 1, or leave it at -1 for e"),
        );
    }
    Ok(unary::layer(Log {
        scale: p.scale,
        shift: p.shift,
        base_scale: 1.0 / ln_base,
    }))
}

impl UnaryOp for Log {
    fn type_name(&self) -> &'static str {
        "Log"
    }
    fn value(&self, x: f32) -> f32 {
        (self.shift + self.scale * x).ln() * self.base_scale
    }
    fn derivative(&self, x: f32) -> f32 {
        self.scale * self.base_scale / (self.shift + self.scale * x)
    }
    fn flops(&self) -> u64 {
        4
    }
}
