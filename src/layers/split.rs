//! Split: copies one bottom to several tops; backward sums the tops' diffs.
//! The net inserts one wherever a blob feeds more than one layer.

use super::{Arity, BuildContext, Layer, Shape, ShapeError};
use crate::error::Diagnostic;
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
}
