//! Power: y = (shift + scale·x)^power, elementwise; dy/dx = power·scale·(shift + scale·x)^(power − 1)
//! (0 when power or scale is 0, scale when power is 1).

use super::unary::{self, UnaryOp};
use super::{BuildContext, Layer};
use crate::error::Diagnostic;
use crate::netdef::LayerDef;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PowerParams {
    pub power: f32,
    pub scale: f32,
    pub shift: f32,
}

impl Default for PowerParams {
    fn default() -> Self {
        PowerParams {
            power: 1.0,
            scale: 1.0,
            shift: 0.0,
        }
    }
}

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    Ok(unary::layer(def.params::<PowerParams>("power_param")?))
}

impl UnaryOp for PowerParams {
    fn type_name(&self) -> &'static str {
        "Power"
    }
    fn value(&self, x: f32) -> f32 {
        (self.shift + self.scale * x).powf(self.power)
    }
    fn derivative(&self, x: f32) -> f32 {
        if self.power == 0.0 || self.scale == 0.0 {
            0.0
        } else if self.power == 1.0 {
            self.scale
        } else {
            self.power * self.scale * (self.shift + self.scale * x).powf(self.power - 1.0)
        }
    }
    /// The affine map (2) and the power (1).
    fn flops(&self) -> u64 {
        3
    }
}
