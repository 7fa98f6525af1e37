//! Reshape: replaces bottom axes [axis, axis + num_axes) by `shape`; the data is unchanged.
//! Legend: r bottom rank; dim 0 copies the bottom axis at the same position, dim −1 is
//! inferred so that the counts match: d = count(bottom) / product(other dims).
//! Forward copies the data, backward copies the diff back.

use super::flatten::reject_in_place;
use super::{count, fmt_shape, Arity, BuildContext, Layer, Shape, ShapeError};
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::{BlobShape, LayerDef};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReshapeParams {
    pub shape: BlobShape,
    /// First replaced axis; negative counts from the end, −1 = after the last axis.
    pub axis: i32,
    /// Number of replaced axes; −1 = all from `axis` on.
    pub num_axes: i32,
}

impl Default for ReshapeParams {
    fn default() -> Self {
        ReshapeParams {
            shape: BlobShape::default(),
            axis: 0,
            num_axes: -1,
        }
    }
}

pub struct ReshapeLayer {
    pub params: ReshapeParams,
}

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    let p: ReshapeParams = def.params("reshape_param")?;
    let span = def
        .block
        .get("reshape_param")
        .map_or(def.name_span(), |f| f.value_span);
    let err = |m: String| def.error(span, format!("{}: {m}", def.describe()));
    if let Some(d) = p.shape.dim.iter().find(|&&d| d < -1) {
        return Err(err(format!(
            "dim {d} is invalid; use a size, 0 (copy) or -1 (infer)"
        )));
    }
    if p.shape.dim.iter().filter(|&&d| d == -1).count() > 1 {
        return Err(err("at most one dim may be -1 (inferred)".into()));
    }
    if p.num_axes < -1 {
        return Err(err(format!(
            "num_axes {} is invalid; use -1 (all remaining axes) or a count",
            p.num_axes
        )));
    }
    reject_in_place(def)?;
    Ok(Box::new(ReshapeLayer { params: p }))
}

impl Layer for ReshapeLayer {
    fn type_name(&self) -> &'static str {
        "Reshape"
    }
    fn bottoms(&self) -> Arity {
        Arity::exactly(1)
    }
    fn tops(&self) -> Arity {
        Arity::exactly(1)
    }

    fn reshape(&mut self, bottom: &[Shape]) -> Result<Vec<Shape>, ShapeError> {
        let b = &bottom[0];
        let rank = b.len() as i64;
        let (axis, num_axes) = (self.params.axis as i64, self.params.num_axes as i64);
        // Unlike other axes, −1 here means "after the last axis" (insert at the end).
        let start = if axis < 0 { rank + 1 + axis } else { axis };
        let end = if num_axes == -1 {
            rank
        } else {
            start + num_axes
        };
        if !(0..=rank).contains(&start) || end > rank {
            return Err(ShapeError::at_bottom(
                0,
                format!(
                    "axis {axis} with num_axes {num_axes} is out of range for shape {}",
                    fmt_shape(b)
                ),
            ));
        }
        let (start, end) = (start as usize, end as usize);
        let mut top = b[..start].to_vec();
        let mut inferred = None;
        for (i, &d) in self.params.shape.dim.iter().enumerate() {
            top.push(match d {
                0 => *b.get(start + i).ok_or_else(|| {
                    ShapeError::at_bottom(
                        0,
                        format!(
                            "dim {i} is 0 (copy) but shape {} has no axis {}",
                            fmt_shape(b),
                            start + i
                        ),
                    )
                })?,
                -1 => {
                    inferred = Some(top.len());
                    1
                }
                d => d as usize,
            });
        }
        top.extend_from_slice(&b[end..]);
        let n = count(b);
        if let Some(i) = inferred {
            let known = count(&top);
            if known == 0 || !n.is_multiple_of(known) {
                return Err(ShapeError::at_bottom(
                    0,
                    format!(
                        "cannot infer the -1 dim: {n} values of {} are not a multiple of {known}",
                        fmt_shape(b)
                    ),
                ));
            }
            top[i] = n / known;
        }
        if count(&top) != n {
            return Err(ShapeError::at_bottom(
                0,
                format!(
                    "cannot reshape {} ({n} values) to {} ({} values)",
                    fmt_shape(b),
                    fmt_shape(&top),
                    count(&top)
                ),
            ));
        }
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
