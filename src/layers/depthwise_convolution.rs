//! DepthwiseConvolution (the MobileNet layer of xialuxi/arcface-caffe and other forks):
//! a Convolution whose group is the number of input channels, each channel convolved
//! with its own num_output/C filters. Same maths, parameters and blobs as Convolution
//! with `group: C` (the `group` field, if given, is replaced by C); it runs through
//! the Convolution engine (grouped im2col/GEMM paths), so the results are identical.

use super::convolution::{new_layer, ConvolutionLayer};
use super::{Arity, BuildContext, Layer, Shape, ShapeError};
use crate::blob::Blob;
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::LayerDef;
use crate::philox::ParamStreams;

pub struct DepthwiseConvolutionLayer {
    pub conv: ConvolutionLayer,
}

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    Ok(Box::new(DepthwiseConvolutionLayer {
        conv: new_layer(def)?,
    }))
}

impl Layer for DepthwiseConvolutionLayer {
    fn type_name(&self) -> &'static str {
        "DepthwiseConvolution"
    }
    fn bottoms(&self) -> Arity {
        self.conv.bottoms()
    }
    fn tops(&self) -> Arity {
        self.conv.tops()
    }

    fn reshape(&mut self, bottom: &[Shape]) -> Result<Vec<Shape>, ShapeError> {
        if let Some(&c) = bottom[0].get(1) {
            if c == 0 || !self.conv.num_output.is_multiple_of(c) {
                return Err(ShapeError::at_bottom(
                    0,
                    format!(
                        "num_output {} is not a multiple of the {c} input channels",
                        self.conv.num_output
                    ),
                ));
            }
            self.conv.group = c;
        }
        self.conv.reshape(bottom)
    }
    fn param_shapes(&self) -> Vec<Shape> {
        self.conv.param_shapes()
    }
    fn flops(&self, bottom: &[Shape], top: &[Shape]) -> u64 {
        self.conv.flops(bottom, top)
    }
    fn fill_params(&self, params: &mut [Blob], streams: &ParamStreams) {
        self.conv.fill_params(params, streams)
    }
    fn forward(&mut self, io: &mut LayerIo, ctx: &mut RunCtx) -> Result<(), String> {
        self.conv.forward(io, ctx)
    }
    fn backward(
        &mut self,
        io: &mut LayerIo,
        propagate_down: &[bool],
        ctx: &mut RunCtx,
    ) -> Result<(), String> {
        self.conv.backward(io, propagate_down, ctx)
    }
}
