//! Input: tops whose shapes are given, filled from outside the net.
//! Also stands for the legacy net-level `input:` + `input_dim:` fields.

use super::{Arity, BuildContext, Layer, Shape, ShapeError};
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::{BlobShape, LayerDef};
use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InputParams {
    /// One shape per top, or a single shape shared by all tops.
    pub shape: Vec<BlobShape>,
}

pub struct InputLayer {
    shapes: Vec<Shape>,
}

impl InputLayer {
    /// An input layer with these top shapes (`--batch` already applied).
    pub fn with_shapes(shapes: Vec<Shape>) -> InputLayer {
        InputLayer { shapes }
    }
}

/// Converts a proto shape to a [`Shape`], rejecting negative dims and applying `--batch`.
pub fn to_shape(dims: &[i64], batch: Option<usize>) -> Result<Shape, String> {
    let mut shape = Vec::with_capacity(dims.len());
    for &d in dims {
        if d < 0 {
            return Err(format!("dimension {d} is negative"));
        }
        shape.push(d as usize);
    }
    if let (Some(b), Some(first)) = (batch, shape.first_mut()) {
        *first = b;
    }
    Ok(shape)
}

pub fn build(def: &LayerDef, ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    let p: InputParams = def.params("input_param")?;
    let n = def.top.len();
    if !(p.shape.len() == n || p.shape.len() == 1) {
        return Err(def.error(
            def.block
                .get("input_param")
                .map_or(def.name_span(), |f| f.name_span),
            format!(
                "{} has {n} tops but {} `shape` blocks (need 1 or {n})",
                def.describe(),
                p.shape.len()
            ),
        ));
    }
    let mut shapes = Vec::new();
    for i in 0..n {
        if let Some(shape) = ctx.input_tops.get(&def.top[i]) {
            shapes.push(shape.clone());
            continue;
        }
        let dims = &p.shape[i.min(p.shape.len() - 1)].dim;
        let shape = to_shape(dims, ctx.batch)
            .map_err(|m| def.error(def.name_span(), format!("{}: {m}", def.describe())))?;
        shapes.push(shape);
    }
    Ok(Box::new(InputLayer { shapes }))
}

impl Layer for InputLayer {
    fn type_name(&self) -> &'static str {
        "Input"
    }
    fn bottoms(&self) -> Arity {
        Arity::exactly(0)
    }
    fn tops(&self) -> Arity {
        Arity::at_least(1)
    }
    fn is_data(&self) -> bool {
        true
    }
    fn reshape(&mut self, _bottom: &[Shape]) -> Result<Vec<Shape>, ShapeError> {
        Ok(self.shapes.clone())
    }

    /// The tops are filled from outside the net (`netrun forward --inputs`, tests).
    fn forward(&mut self, _io: &mut LayerIo, _ctx: &mut RunCtx) -> Result<(), String> {
        Ok(())
    }

    fn backward(
        &mut self,
        _io: &mut LayerIo,
        _propagate_down: &[bool],
        _ctx: &mut RunCtx,
    ) -> Result<(), String> {
        Ok(())
    }
}
