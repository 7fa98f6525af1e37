//! NormL2 (xialuxi/arcface-caffe, the AdaCos folder; ArcFace, Deng et al. 2019, feeds
//! unit features to its margin): scales each sample to unit L2 norm. Legend: x bottom 0
//! viewed as M × D (M = shape[0]), r_i = √(Σ_k x_ik² + ε) with ε = 1e-7 (the fork's
//! guard against a zero row).
//!
//! Forward: y_i = x_i / r_i.
//! Backward (the exact gradient of that forward):
//!   dx_i = (dy_i − y_i·(y_i·dy_i)) / r_i.

use super::{fmt_shape, Arity, BuildContext, Layer, Shape, ShapeError};
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::LayerDef;

/// The fork's ε inside the square root.
const EPS: f64 = 1e-7;

pub struct NormL2Layer;

pub fn build(_def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    Ok(Box::new(NormL2Layer))
}

/// r = √(Σ v² + ε) of one row, in f64.
fn row_norm(v: &[f32]) -> f64 {
    (v.iter().map(|&a| a as f64 * a as f64).sum::<f64>() + EPS).sqrt()
}

impl Layer for NormL2Layer {
    fn type_name(&self) -> &'static str {
        "NormL2"
    }
    fn bottoms(&self) -> Arity {
        Arity::exactly(1)
    }
    fn tops(&self) -> Arity {
        Arity::exactly(1)
    }

    fn reshape(&mut self, bottom: &[Shape]) -> Result<Vec<Shape>, ShapeError> {
        if bottom[0].is_empty() {
            return Err(ShapeError::at_bottom(
                0,
                format!("needs samples × features, got {}", fmt_shape(&bottom[0])),
            ));
        }
        Ok(vec![bottom[0].clone()])
    }

    fn flops(&self, bottom: &[Shape], _top: &[Shape]) -> u64 {
        3 * super::count(&bottom[0]) as u64
    }

    fn forward(&mut self, io: &mut LayerIo, _ctx: &mut RunCtx) -> Result<(), String> {
        let m = io.bottom(0).dim(0).max(1);
        let d = io.bottom(0).count() / m;
        let (bottom, top) = io.bottom_and_top_mut(0, 0);
        if d == 0 {
            return Ok(());
        }
        for (x, y) in bottom.data().chunks(d).zip(top.data_mut().chunks_mut(d)) {
            let r = row_norm(x);
            for (o, &v) in y.iter_mut().zip(x) {
                *o = (v as f64 / r) as f32;
            }
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
        let m = io.bottom(0).dim(0).max(1);
        let d = io.bottom(0).count() / m;
        if d == 0 {
            return Ok(());
        }
        let (mut bottoms, tops, _) = io.backward_split();
        let (y, dy) = (tops[0].data(), tops[0].diff());
        let (x, dx) = bottoms[0].data_and_diff_mut();
        for i in 0..m {
            let rows = i * d..(i + 1) * d;
            let r = row_norm(&x[rows.clone()]);
            let (yi, dyi) = (&y[rows.clone()], &dy[rows.clone()]);
            let proj: f64 = yi.iter().zip(dyi).map(|(&a, &g)| a as f64 * g as f64).sum();
            for ((o, &a), &g) in dx[rows].iter_mut().zip(yi).zip(dyi) {
                *o = ((g as f64 - a as f64 * proj) / r) as f32;
            }
        }
        Ok(())
    }
}
