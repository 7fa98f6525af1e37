//! Threshold: y = 1 where x > threshold, else 0, elementwise. Its derivative is 0
//! wherever it exists, so backward writes dx = 0 (Caffe has no backward for it).

use super::unary::{self, UnaryOp};
use super::{BuildContext, Layer};
use crate::error::Diagnostic;
use crate::netdef::LayerDef;
use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ThresholdParams {
    pub threshold: f32,
}

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    Ok(unary::layer(
        def.params::<ThresholdParams>("threshold_param")?,
    ))
}

impl UnaryOp for ThresholdParams {
    fn type_name(&self) -> &'static str {
        "Threshold"
    }
    fn value(&self, x: f32) -> f32 {
        if x > self.threshold {
            1.0
        } else {
            0.0
        }
    }
    fn derivative(&self, _x: f32) -> f32 {
        0.0
    }
}
