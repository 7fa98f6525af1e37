//! Slice: cuts one bottom along an axis into consecutive pieces, one per top.
//! Legend: D the bottom's extent along `axis`, T tops; points p₁ < … < p_{T−1} give pieces
//! [0, p₁), [p₁, p₂), …, [p_{T−1}, D); without points, T equal pieces of D/T.
//! Concat's inverse: forward cuts the bottom's rows into the tops, backward joins their diffs.

use super::concat::{axis_or_legacy, pieces};
use super::{canonical_axis, count, fmt_shape, Arity, BuildContext, Layer, Shape, ShapeError};
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::LayerDef;
use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SliceParams {
    /// Sliced axis, negative from the end; default 1 (channels).
    pub axis: Option<i32>,
    /// Where each piece after the first starts; empty = equal pieces.
    pub slice_point: Vec<u32>,
    /// Legacy spelling of a non-negative `axis`.
    pub slice_dim: Option<u32>,
}

pub struct SliceLayer {
    pub axis: i32,
    pub points: Vec<usize>,
    pub tops: usize,
    /// Product of the axes before the sliced one, from the last reshape.
    pub outer: usize,
}

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    let p: SliceParams = def.params("slice_param")?;
    let axis = axis_or_legacy(def, "slice_param", p.axis, p.slice_dim, "slice_dim")?;
    let tops = def.top.len();
    let points: Vec<usize> = p.slice_point.iter().map(|&v| v as usize).collect();
    let span = |i: usize| match def.block.get("slice_param").map(|f| &f.value) {
        Some(crate::proto::Value::Block(b)) => {
            b.all("slice_point").nth(i).map_or(b.span, |f| f.value_span)
        }
        _ => def.name_span(),
    };
    if !points.is_empty() && points.len() + 1 != tops {
        return Err(def
            .error(
                span(0),
                format!(
                    "{}: {} slice points for {tops} tops",
                    def.describe(),
                    points.len()
                ),
            )
            .with_help("give one slice point fewer than tops, or none for equal pieces"));
    }
    for i in 0..points.len() {
        let prev = if i == 0 { 0 } else { points[i - 1] };
        if points[i] <= prev {
            return Err(def.error(
                span(i),
                format!(
                    "{}: slice points must be positive and increasing, found {} after {prev}",
                    def.describe(),
                    points[i]
                ),
            ));
        }
    }
    Ok(Box::new(SliceLayer {
        axis,
        points,
        tops,
        outer: 0,
    }))
}

impl Layer for SliceLayer {
    fn type_name(&self) -> &'static str {
        "Slice"
    }
    fn bottoms(&self) -> Arity {
        Arity::exactly(1)
    }
    fn tops(&self) -> Arity {
        Arity::at_least(1)
    }

    fn reshape(&mut self, bottom: &[Shape]) -> Result<Vec<Shape>, ShapeError> {
        let b = &bottom[0];
        let axis = canonical_axis(self.axis, b.len()).ok_or_else(|| {
            ShapeError::at_bottom(
                0,
                format!(
                    "axis {} is out of range for shape {}",
                    self.axis,
                    fmt_shape(b)
                ),
            )
        })?;
        let d = b[axis];
        let sizes: Vec<usize> = if self.points.is_empty() {
            if !d.is_multiple_of(self.tops) {
                return Err(ShapeError::at_bottom(
                    0,
                    format!(
                        "axis {axis} of {} has {d} entries, not divisible into {} equal tops",
                        fmt_shape(b),
                        self.tops
                    ),
                ));
            }
            vec![d / self.tops; self.tops]
        } else {
            let last = self.points[self.points.len() - 1];
            if last >= d {
                return Err(ShapeError::at_bottom(
                    0,
                    format!(
                        "slice point {last} is not inside axis {axis} of {} (length {d})",
                        fmt_shape(b)
                    ),
                ));
            }
            let mut bounds = vec![0];
            bounds.extend_from_slice(&self.points);
            bounds.push(d);
            bounds.windows(2).map(|w| w[1] - w[0]).collect()
        };
        self.outer = count(&b[..axis]);
        Ok(sizes
            .into_iter()
            .map(|n| {
                let mut t = b.clone();
                t[axis] = n;
                t
            })
            .collect())
    }

    fn forward(&mut self, io: &mut LayerIo, _ctx: &mut RunCtx) -> Result<(), String> {
        let (bottoms, mut tops, _) = io.forward_split();
        let rows: Vec<usize> = tops.iter().map(|t| t.count() / self.outer.max(1)).collect();
        let x = bottoms[0].data();
        for (k, joined, part) in pieces(&rows, self.outer) {
            tops[k].data_mut()[part].copy_from_slice(&x[joined]);
        }
        Ok(())
    }

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
        let rows: Vec<usize> = tops.iter().map(|t| t.count() / self.outer.max(1)).collect();
        let dx = bottoms[0].diff_mut();
        for (k, joined, part) in pieces(&rows, self.outer) {
            dx[joined].copy_from_slice(&tops[k].diff()[part]);
        }
        Ok(())
    }
}
