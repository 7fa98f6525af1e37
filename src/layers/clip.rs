//! Clip: y = min(max(x, min), max), elementwise; dy/dx = 1 for min ≤ x ≤ max, else 0.

use super::checks::param_error;
use super::unary::{self, UnaryOp};
use super::{required, BuildContext, Layer};
use crate::error::Diagnostic;
use crate::netdef::LayerDef;
use serde::Deserialize;

/// Both fields are required in Caffe.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClipParams {
    pub min: Option<f32>,
    pub max: Option<f32>,
}

struct Clip {
    min: f32,
    max: f32,
}

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    let p: ClipParams = def.params("clip_param")?;
    let min = required(def, p.min, "clip_param", "min")?;
    let max = required(def, p.max, "clip_param", "max")?;
    if min.is_nan() || max.is_nan() || min > max {
        return Err(param_error(
            def,
            "clip_param",
            "max",
            &format!("max {max} is below min {min}"),
        ));
    }
    Ok(unary::layer(Clip { min, max }))
}

impl UnaryOp for Clip {
    fn type_name(&self) -> &'static str {
        "Clip"
    }
    fn value(&self, x: f32) -> f32 {
        x.max(self.min).min(self.max)
    }
    fn derivative(&self, x: f32) -> f32 {
        if x >= self.min && x <= self.max {
            1.0
        } else {
            0.0
        }
    }
    fn flops(&self) -> u64 {
        2
    }
}
