//! Split: copies one bottom to several tops; backward sums the tops' diffs.
//! The net inserts one wherever a blob feeds more than one layer.

use super::{rows, Arity, BuildContext, Layer, Shape, ShapeError};
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::LayerDef;

pub struct SplitLayer {
    tops: usize,
}

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    Ok(Box::new(SplitLayer {
        tops: def.top.len(),
    }))
}

impl Layer for SplitLayer {
    fn type_name(&self) -> &'static str {
        "Split"
    }
    fn bottoms(&self) -> Arity {
        Arity::exactly(1)
    }
    fn tops(&self) -> Arity {
        Arity::at_least(1)
    }
    fn reshape(&mut self, bottom: &[Shape]) -> Result<Vec<Shape>, ShapeError> {
        Ok(vec![bottom[0].clone(); self.tops])
    }

    fn forward(&mut self, io: &mut LayerIo, _ctx: &mut RunCtx) -> Result<(), String> {
        let (bottoms, mut tops, _) = io.forward_split();
        for t in tops.iter_mut() {
            t.share_data(bottoms[0]);
        }
        Ok(())
    }

    /// dx = Σ_k dy_k.
    fn backward(
        &mut self,
        io: &mut LayerIo,
        propagate_down: &[bool],
        _ctx: &mut RunCtx,
    ) -> Result<(), String> {
        if !propagate_down[0] {
            return Ok(());
        }
        let (mut bottoms, tops, _) = io.backward_split();
        let dys: Vec<&[f32]> = tops.iter().map(|t| t.diff()).collect();
        rows::weighted_sum(bottoms[0].diff_mut(), &dys, &[]);
        Ok(())
    }
}
