//! Parameter: a learnable blob of shape `shape` exposed as the layer's top, so that other
//! layers can take it as a bottom. Forward: y = P. Backward: dP += dy.
//! Caffe gives the blob no filler: it starts at zero and is usually loaded from weights.

use super::input::to_shape;
use super::{Arity, BuildContext, Layer, Shape, ShapeError};
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::{BlobShape, LayerDef};
use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ParameterParams {
    pub shape: BlobShape,
}

pub struct ParameterLayer {
    shape: Shape,
}

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    let p: ParameterParams = def.params("parameter_param")?;
    let shape = to_shape(&p.shape.dim, None)
        .map_err(|m| super::checks::param_error(def, "parameter_param", "shape", &m))?;
    Ok(Box::new(ParameterLayer { shape }))
}

impl Layer for ParameterLayer {
    fn type_name(&self) -> &'static str {
        "Parameter"
    }
    fn bottoms(&self) -> Arity {
        Arity::exactly(0)
    }
    fn tops(&self) -> Arity {
        Arity::exactly(1)
    }

    fn reshape(&mut self, _bottom: &[Shape]) -> Result<Vec<Shape>, ShapeError> {
        Ok(vec![self.shape.clone()])
    }

    fn param_shapes(&self) -> Vec<Shape> {
        vec![self.shape.clone()]
    }

    fn forward(&mut self, io: &mut LayerIo, _ctx: &mut RunCtx) -> Result<(), String> {
        let (_, mut tops, params) = io.forward_split();
        tops[0].data_mut().copy_from_slice(params[0].data());
        Ok(())
    }

    fn backward(
        &mut self,
        io: &mut LayerIo,
        _propagate_down: &[bool],
        _ctx: &mut RunCtx,
    ) -> Result<(), String> {
        let (_, tops, params) = io.backward_split();
        params[0]
            .diff_mut()
            .iter_mut()
            .zip(tops[0].diff())
            .for_each(|(d, &g)| *d += g);
        Ok(())
    }
}
