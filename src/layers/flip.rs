//! Flip (happynear/caffe-windows): mirrors each image inside the net, so a deploy net
//! can concatenate or max the features of a face and its mirror image. Legend: x
//! N × C × H × W (any rank ≥ 2: the last axis is the width, the one before the height).
//!
//! Forward: y[…, h, w] = x[…, h', w'], w' = W − 1 − w with `flip_width` (default true),
//! h' = H − 1 − h with `flip_height` (default false), else unchanged.
//! Backward: the same permutation applied to dy (it is its own inverse).

use super::{fmt_shape, Arity, BuildContext, Layer, Shape, ShapeError};
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::LayerDef;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FlipParams {
    pub flip_width: bool,
    pub flip_height: bool,
}

impl Default for FlipParams {
    fn default() -> Self {
        FlipParams {
            flip_width: true,
            flip_height: false,
        }
    }
}

pub struct FlipLayer {
    pub params: FlipParams,
    /// (planes, H, W) of the last reshape.
    dims: [usize; 3],
}

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    Ok(Box::new(FlipLayer {
        params: def.params("flip_param")?,
        dims: [0; 3],
    }))
}

/// out = x flipped as the params say, plane by plane.
fn flip(p: &FlipParams, [_, h, w]: [usize; 3], x: &[f32], out: &mut [f32]) {
    if h * w == 0 {
        return;
    }
    for (xp, op) in x.chunks(h * w).zip(out.chunks_mut(h * w)) {
        for r in 0..h {
            let src = if p.flip_height { h - 1 - r } else { r };
            let (xs, os) = (&xp[src * w..(src + 1) * w], &mut op[r * w..(r + 1) * w]);
            if p.flip_width {
                os.iter_mut()
                    .zip(xs.iter().rev())
                    .for_each(|(o, &v)| *o = v);
            } else {
                os.copy_from_slice(xs);
            }
        }
    }
}

impl Layer for FlipLayer {
    fn type_name(&self) -> &'static str {
        "Flip"
    }
    fn bottoms(&self) -> Arity {
        Arity::exactly(1)
    }
    fn tops(&self) -> Arity {
        Arity::exactly(1)
    }

    fn reshape(&mut self, bottom: &[Shape]) -> Result<Vec<Shape>, ShapeError> {
        let b = &bottom[0];
        if b.len() < 2 {
            return Err(ShapeError::at_bottom(
                0,
                format!("needs at least 2 axes, got {}", fmt_shape(b)),
            ));
        }
        let (h, w) = (b[b.len() - 2], b[b.len() - 1]);
        self.dims = [super::count(&b[..b.len() - 2]), h, w];
        Ok(vec![b.clone()])
    }

    fn forward(&mut self, io: &mut LayerIo, _ctx: &mut RunCtx) -> Result<(), String> {
        let (b, t) = io.bottom_and_top_mut(0, 0);
        flip(&self.params, self.dims, b.data(), t.data_mut());
        Ok(())
    }

    fn backward(
        &mut self,
        io: &mut LayerIo,
        propagate_down: &[bool],
        _ctx: &mut RunCtx,
    ) -> Result<(), String> {
        if propagate_down[0] {
            let (t, b) = io.top_and_bottom_mut(0, 0);
            flip(&self.params, self.dims, t.diff(), b.diff_mut());
        }
        Ok(())
    }
}
