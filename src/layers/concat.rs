//! Concat: joins bottoms along one axis; all other axes must agree.
//! Legend: bottoms k = 0..K with d_k along `axis`; top has Σ d_k along `axis`.
//! Viewing each blob as `outer` rows (outer = product of the axes before `axis`), top row o
//! is the concatenation of the bottoms' rows o; backward cuts dy the same way.

use super::{canonical_axis, count, fmt_shape, Arity, BuildContext, Layer, Shape, ShapeError};
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::LayerDef;
use serde::Deserialize;
use std::ops::Range;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConcatParams {
    /// Joined axis, negative from the end; default 1 (channels).
    pub axis: Option<i32>,
    /// Legacy spelling of a non-negative `axis`.
    pub concat_dim: Option<u32>,
}

/// The axis of Concat/Slice: `axis`, or the legacy `<legacy>` field, not both; default 1.
pub fn axis_or_legacy(
    def: &LayerDef,
    block: &str,
    axis: Option<i32>,
    legacy: Option<u32>,
    legacy_name: &str,
) -> Result<i32, Diagnostic> {
    match (axis, legacy) {
        (Some(_), Some(_)) => Err(def
            .error(
                def.block
                    .get(block)
                    .map_or(def.name_span(), |f| f.value_span),
                format!(
                    "{}: give either `axis` or the legacy `{legacy_name}`, not both",
                    def.describe()
                ),
            )
            .with_help(format!("`{legacy_name}` is the old name of `axis`"))),
        (Some(a), None) => Ok(a),
        (None, Some(d)) => Ok(d as i32),
        (None, None) => Ok(1),
    }
}

pub struct ConcatLayer {
    pub axis: i32,
    /// Product of the axes before the joined one, from the last reshape.
    pub outer: usize,
}

/// The pieces of a join of parts along an axis, for blobs of `outer` rows: part k's row is
/// `rows[k]` long and joined row o is the concatenation of the parts' rows o. Yields
/// (k, range in the joined buffer, range in part k).
pub fn pieces(
    rows: &[usize],
    outer: usize,
) -> impl Iterator<Item = (usize, Range<usize>, Range<usize>)> + '_ {
    let total: usize = rows.iter().sum();
    (0..outer).flat_map(move |o| {
        rows.iter().enumerate().scan(0, move |offset, (k, &len)| {
            let start = o * total + *offset;
            *offset += len;
            Some((k, start..start + len, o * len..(o + 1) * len))
        })
    })
}

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    let p: ConcatParams = def.params("concat_param")?;
    let axis = axis_or_legacy(def, "concat_param", p.axis, p.concat_dim, "concat_dim")?;
    Ok(Box::new(ConcatLayer { axis, outer: 0 }))
}

impl Layer for ConcatLayer {
    fn type_name(&self) -> &'static str {
        "Concat"
    }
    fn bottoms(&self) -> Arity {
        Arity::at_least(1)
    }
    fn tops(&self) -> Arity {
        Arity::exactly(1)
    }

    fn reshape(&mut self, bottom: &[Shape]) -> Result<Vec<Shape>, ShapeError> {
        let first = &bottom[0];
        let axis = canonical_axis(self.axis, first.len()).ok_or_else(|| {
            ShapeError::at_bottom(
                0,
                format!(
                    "axis {} is out of range for shape {}",
                    self.axis,
                    fmt_shape(first)
                ),
            )
        })?;
        let mut top = first.clone();
        for (i, b) in bottom.iter().enumerate().skip(1) {
            let agrees =
                b.len() == first.len() && (0..b.len()).all(|a| a == axis || b[a] == first[a]);
            if !agrees {
                let mut e = ShapeError::mismatch(i, b, 0, first);
                e.message += &format!("; only axis {axis} may differ");
                return Err(e);
            }
            top[axis] += b[axis];
        }
        self.outer = count(&first[..axis]);
        Ok(vec![top])
    }

    fn forward(&mut self, io: &mut LayerIo, _ctx: &mut RunCtx) -> Result<(), String> {
        let (bottoms, mut tops, _) = io.forward_split();
        let rows: Vec<usize> = bottoms
            .iter()
            .map(|b| b.count() / self.outer.max(1))
            .collect();
        let y = tops[0].data_mut();
        for (k, joined, part) in pieces(&rows, self.outer) {
            y[joined].copy_from_slice(&bottoms[k].data()[part]);
        }
        Ok(())
    }

    fn backward(
        &mut self,
        io: &mut LayerIo,
        propagate_down: &[bool],
        _ctx: &mut RunCtx,
    ) -> Result<(), String> {
        let (mut bottoms, tops, _) = io.backward_split();
        let rows: Vec<usize> = bottoms
            .iter()
            .map(|b| b.count() / self.outer.max(1))
            .collect();
        let dy = tops[0].diff();
        for (k, joined, part) in pieces(&rows, self.outer) {
            if propagate_down[k] {
                bottoms[k].diff_mut()[part].copy_from_slice(&dy[joined]);
            }
        }
        Ok(())
    }
}
