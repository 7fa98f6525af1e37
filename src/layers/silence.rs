//! Silence: consumes its bottoms and produces nothing, so unused blobs are not net outputs.
//! Backward gives its bottoms a zero gradient.

use super::{Arity, BuildContext, Layer, Shape, ShapeError};
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::LayerDef;

pub struct SilenceLayer;

pub fn build(_def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    Ok(Box::new(SilenceLayer))
}

impl Layer for SilenceLayer {
    fn type_name(&self) -> &'static str {
        "Silence"
    }
    fn bottoms(&self) -> Arity {
        Arity::at_least(1)
    }
    fn tops(&self) -> Arity {
        Arity::exactly(0)
    }
    fn reshape(&mut self, _bottom: &[Shape]) -> Result<Vec<Shape>, ShapeError> {
        Ok(vec![])
    }

    fn forward(&mut self, _io: &mut LayerIo, _ctx: &mut RunCtx) -> Result<(), String> {
        Ok(())
    }

    fn backward(
        &mut self,
        io: &mut LayerIo,
        propagate_down: &[bool],
        _ctx: &mut RunCtx,
    ) -> Result<(), String> {
        for (i, &down) in propagate_down.iter().enumerate() {
            if down {
                io.bottom_mut(i).zero_diff();
            }
        }
        Ok(())
    }
}
