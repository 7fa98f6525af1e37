//! Crop: cuts bottom 0 to the shape of bottom 1 from axis `axis` on (FCN's score alignment).
//! Legend: A = `axis`; for every axis a ≥ A, the top has extent s₁[a] (bottom 1's) and starts at
//! offset o[a] of bottom 0: o[a] = offset[0] when one offset is given, offset[a − A] when one per
//! cropped axis is, 0 when none. Axes before A keep bottom 0's extent.
//! Forward: y[i] = x[i + o] (o zero on the axes before A).
//! Backward: dx = 0 outside the window, dx[i + o] = dy[i]; bottom 1 only gives its shape (no gradient).

use super::loss::axis_of;
use super::{fmt_shape, Arity, BuildContext, Layer, Shape, ShapeError};
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::LayerDef;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CropParams {
    pub axis: i32,
    pub offset: Vec<u32>,
}

impl Default for CropParams {
    fn default() -> Self {
        CropParams {
            axis: 2,
            offset: vec![],
        }
    }
}

pub struct CropLayer {
    pub params: CropParams,
    /// Per axis of bottom 0: where the window starts.
    offsets: Vec<usize>,
    bottom_shape: Shape,
    top_shape: Shape,
}

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    Ok(Box::new(CropLayer {
        params: def.params("crop_param")?,
        offsets: vec![],
        bottom_shape: vec![],
        top_shape: vec![],
    }))
}

/// Calls `f(bottom offset, top offset, run length)` for each contiguous run of the
/// window: one per index of all axes but the last.
fn for_runs(
    bottom: &[usize],
    top: &[usize],
    offsets: &[usize],
    mut f: impl FnMut(usize, usize, usize),
) {
    let n = top.len();
    if n == 0 {
        f(0, 0, 1);
        return;
    }
    let run = top[n - 1];
    let rows: usize = top[..n - 1].iter().product();
    let mut index = vec![0usize; n - 1];
    for r in 0..rows {
        // Bottom offset of this run: Σ (index[a] + o[a]) · stride_b[a] + o[last].
        let mut b = 0;
        for a in 0..n - 1 {
            b = (b + index[a] + offsets[a]) * bottom[a + 1];
        }
        f(b + offsets[n - 1], r * run, run);
        for a in (0..n - 1).rev() {
            index[a] += 1;
            if index[a] < top[a] {
                break;
            }
            index[a] = 0;
        }
    }
}

impl Layer for CropLayer {
    fn type_name(&self) -> &'static str {
        "Crop"
    }
    fn bottoms(&self) -> Arity {
        Arity::exactly(2)
    }
    fn tops(&self) -> Arity {
        Arity::exactly(1)
    }
    fn can_backprop_to(&self, bottom: usize) -> bool {
        bottom == 0
    }

    fn reshape(&mut self, bottom: &[Shape]) -> Result<Vec<Shape>, ShapeError> {
        let (x, like) = (&bottom[0], &bottom[1]);
        if x.len() != like.len() {
            return Err(ShapeError::at_bottom(
                1,
                format!(
                    "bottom 1 has shape {} but bottom 0 has {}: both need the same number of axes",
                    fmt_shape(like),
                    fmt_shape(x)
                ),
            ));
        }
        let axis = axis_of(self.params.axis, x, 0)?;
        let cropped = x.len() - axis;
        let given = &self.params.offset;
        if given.len() > 1 && given.len() != cropped {
            return Err(ShapeError::new(format!(
                "crop_param has {} offsets but {cropped} axes are cropped (from axis {axis} of {}): give 0, 1 or {cropped}",
                given.len(),
                fmt_shape(x)
            )));
        }
        let mut offsets = vec![0; x.len()];
        let mut top = x.clone();
        for a in axis..x.len() {
            let o = match given.len() {
                0 => 0,
                1 => given[0] as usize,
                _ => given[a - axis] as usize,
            };
            if o + like[a] > x[a] {
                return Err(ShapeError::new(format!(
                    "axis {a}: offset {o} + crop size {} exceeds the extent {} of bottom 0 ({})",
                    like[a],
                    x[a],
                    fmt_shape(x)
                )));
            }
            offsets[a] = o;
            top[a] = like[a];
        }
        self.offsets = offsets;
        self.bottom_shape = x.clone();
        self.top_shape = top.clone();
        Ok(vec![top])
    }

    fn forward(&mut self, io: &mut LayerIo, _ctx: &mut RunCtx) -> Result<(), String> {
        let (bottoms, mut tops, _) = io.forward_split();
        let x = bottoms[0].data();
        let y = tops[0].data_mut();
        for_runs(
            &self.bottom_shape,
            &self.top_shape,
            &self.offsets,
            |b, t, n| {
                y[t..t + n].copy_from_slice(&x[b..b + n]);
            },
        );
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
        let dy = tops[0].diff();
        let dx = bottoms[0].diff_mut();
        dx.fill(0.0);
        for_runs(
            &self.bottom_shape,
            &self.top_shape,
            &self.offsets,
            |b, t, n| {
                dx[b..b + n].copy_from_slice(&dy[t..t + n]);
            },
        );
        Ok(())
    }
}
