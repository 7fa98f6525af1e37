//! Parameter (BVLC Caffe 1.0, with happynear/caffe-windows' `blob_filler`): a learnable
//! blob exposed as a top, so other layers can take weights as a bottom (NormFace's class
//! centres fed to Normalize and InnerDistance / InnerProduct).
//!
//! Forward: top = the blob (shape `parameter_param.shape`, filled by `blob_filler`,
//! constant 0 by default). Backward: blob diff += top diff.

use super::filler::{fill, FillerParams};
use super::input::to_shape;
use super::{Arity, BuildContext, Layer, Shape, ShapeError};
use crate::blob::Blob;
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::{BlobShape, LayerDef};
use crate::philox::ParamStreams;
use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ParameterParams {
    pub shape: Option<BlobShape>,
    pub blob_filler: FillerParams,
}

pub struct ParameterLayer {
    pub params: ParameterParams,
    shape: Shape,
}

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    const BLOCK: &str = "parameter_param";
    let p: ParameterParams = def.params(BLOCK)?;
    p.blob_filler.validate(def, BLOCK, "blob_filler")?;
    let dims = super::required(def, p.shape.as_ref(), BLOCK, "shape")?;
    let shape = to_shape(&dims.dim, None)
        .map_err(|m| def.error(def.name_span(), format!("{}: {m}", def.describe())))?;
    Ok(Box::new(ParameterLayer { params: p, shape }))
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

    fn fill_params(&self, params: &mut [Blob], streams: &ParamStreams) {
        fill(&self.params.blob_filler, &mut params[0], streams.blob(0));
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
        for (d, &g) in params[0].diff_mut().iter_mut().zip(tops[0].diff()) {
            *d += g;
        }
        Ok(())
    }
}
