//! PReLU: y = max(x, 0) + a_c·min(x, 0), one slope per channel (axis 1) or one shared.

use super::filler::FillerParams;
use super::{count, Arity, BuildContext, Layer, Shape, ShapeError};
use crate::error::Diagnostic;
use crate::netdef::LayerDef;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PReLUParams {
    /// Slope initialisation; Caffe's default is constant 0.25.
    pub filler: FillerParams,
    pub channel_shared: bool,
}

impl Default for PReLUParams {
    fn default() -> Self {
        PReLUParams {
            filler: FillerParams {
                value: 0.25,
                ..FillerParams::default()
            },
            channel_shared: false,
        }
    }
}

pub struct PReLULayer {
    pub params: PReLUParams,
    pub channels: usize,
}

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    let p: PReLUParams = def.params("prelu_param")?;
    p.filler.validate(def, "prelu_param", "filler")?;
    Ok(Box::new(PReLULayer {
        params: p,
        channels: 0,
    }))
}

impl Layer for PReLULayer {
    fn type_name(&self) -> &'static str {
        "PReLU"
    }
    fn bottoms(&self) -> Arity {
        Arity::exactly(1)
    }
    fn tops(&self) -> Arity {
        Arity::exactly(1)
    }

    fn reshape(&mut self, bottom: &[Shape]) -> Result<Vec<Shape>, ShapeError> {
        let b = &bottom[0];
        if b.len() < 2 {
            return Err(ShapeError::at_bottom(
                0,
                format!("needs at least 2 axes, got {}", super::fmt_shape(b)),
            ));
        }
        self.channels = b[1];
        Ok(vec![b.clone()])
    }

    fn param_shapes(&self) -> Vec<Shape> {
        vec![if self.params.channel_shared {
            vec![1]
        } else {
            vec![self.channels]
        }]
    }

    fn flops(&self, bottom: &[Shape], _top: &[Shape]) -> u64 {
        2 * count(&bottom[0]) as u64
    }
}
