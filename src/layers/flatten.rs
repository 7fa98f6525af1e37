//! Flatten: merges axes `axis..=end_axis` into one; the data is unchanged.
//! Legend: shape d₀×…×d_{r−1}; top = d₀…d_{a−1} × (d_a·…·d_e) × d_{e+1}…d_{r−1}.
//! Forward copies the data, backward copies the diff back.

use super::{canonical_axis, count, fmt_shape, Arity, BuildContext, Layer, Shape, ShapeError};
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::LayerDef;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FlattenParams {
    /// First axis merged (negative counts from the end).
    pub axis: i32,
    /// Last axis merged, inclusive (-1 = the last axis).
    pub end_axis: i32,
}

impl Default for FlattenParams {
    fn default() -> Self {
        FlattenParams {
            axis: 1,
            end_axis: -1,
        }
    }
}

pub struct FlattenLayer {
    pub params: FlattenParams,
}

/// Rejects `top` == `bottom`: Caffe's reshaping layers do not work in place.
pub fn reject_in_place(def: &LayerDef) -> Result<(), Diagnostic> {
    match (def.bottom.first(), def.top.first()) {
        (Some(b), Some(t)) if b == t => Err(def
            .error(
                def.field_span("top", 0),
                format!("{} cannot work in place (top `{t}`)", def.describe()),
            )
            .with_help("give the top its own name")),
        _ => Ok(()),
    }
}

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    let p: FlattenParams = def.params("flatten_param")?;
    reject_in_place(def)?;
    Ok(Box::new(FlattenLayer { params: p }))
}

impl Layer for FlattenLayer {
    fn type_name(&self) -> &'static str {
        "Flatten"
    }
    fn bottoms(&self) -> Arity {
        Arity::exactly(1)
    }
    fn tops(&self) -> Arity {
        Arity::exactly(1)
    }

    fn reshape(&mut self, bottom: &[Shape]) -> Result<Vec<Shape>, ShapeError> {
        let b = &bottom[0];
        let axis = |a: i32, name: &str| {
            canonical_axis(a, b.len()).ok_or_else(|| {
                ShapeError::at_bottom(
                    0,
                    format!("{name} {a} is out of range for shape {}", fmt_shape(b)),
                )
            })
        };
        let start = axis(self.params.axis, "axis")?;
        let end = axis(self.params.end_axis, "end_axis")?;
        if end < start {
            return Err(ShapeError::at_bottom(
                0,
                format!(
                    "end_axis {} comes before axis {} in shape {}",
                    self.params.end_axis,
                    self.params.axis,
                    fmt_shape(b)
                ),
            ));
        }
        let mut top = b[..start].to_vec();
        top.push(count(&b[start..=end]));
        top.extend_from_slice(&b[end + 1..]);
        Ok(vec![top])
    }

    fn forward(&mut self, io: &mut LayerIo, _ctx: &mut RunCtx) -> Result<(), String> {
        let (bottoms, mut tops, _) = io.forward_split();
        tops[0].data_mut().copy_from_slice(bottoms[0].data());
        Ok(())
    }

    fn backward(
        &mut self,
        io: &mut LayerIo,
        propagate_down: &[bool],
        _ctx: &mut RunCtx,
    ) -> Result<(), String> {
        if propagate_down[0] {
            let (mut bottoms, tops, _) = io.backward_split();
            bottoms[0].diff_mut().copy_from_slice(tops[0].diff());
        }
        Ok(())
    }
}
