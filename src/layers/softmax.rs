//! Softmax along `axis`. Legend: the bottom is viewed as outer × C × inner, with
//! C = `shape[axis]`, outer = product of the axes before it, inner = product after.
//!
//! Forward, for every (outer, inner) position, over c in 0..C:
//!   y_c = exp(x_c − max_k x_k) / Σ_k exp(x_k − max_k x_k)
//! Backward (g = top diff):
//!   dx_c = (g_c − Σ_k g_k·y_k) · y_c

use super::convolution::Engine;
use super::loss::axis_of;
use super::{count, Arity, BuildContext, Layer, Shape, ShapeError};
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::LayerDef;
use rayon::prelude::*;
use serde::Deserialize;

/// `softmax_param { engine axis }`; also read by SoftmaxWithLoss.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SoftmaxParams {
    /// Accepted for compatibility; netrun has one engine.
    pub engine: Engine,
    pub axis: i32,
    /// happynear/caffe-windows field: "Softmax" (the only value netrun runs; the
    /// fork's "L1"/"L2" normalisations are refused).
    pub normalize_type: String,
}

impl Default for SoftmaxParams {
    fn default() -> Self {
        SoftmaxParams {
            engine: Engine::Default,
            axis: 1,
            normalize_type: "Softmax".into(),
        }
    }
}

/// FLOPs of a softmax over `n` values: max, subtract, exp, sum, divide (exp counted as 1).
pub fn softmax_flops(n: usize) -> u64 {
    5 * n as u64
}

/// `(outer, C, inner)` of `shape` around `axis`.
pub fn split_axis(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    (
        count(&shape[..axis]),
        shape[axis],
        count(&shape[axis + 1..]),
    )
}

/// y = softmax(x) over the middle axis of an outer × C × inner layout; sums in f64.
/// Parallel over the outer index (each slab is independent).
pub fn softmax_forward(x: &[f32], y: &mut [f32], channels: usize, inner: usize) {
    let slab = channels * inner;
    if slab == 0 {
        return;
    }
    y.par_chunks_mut(slab)
        .zip(x.par_chunks(slab))
        .for_each(|(ys, xs)| {
            let mut max = xs[..inner].to_vec();
            for c in 1..channels {
                for (m, &v) in max.iter_mut().zip(&xs[c * inner..(c + 1) * inner]) {
                    // NaN must win so that it shows in the output instead of vanishing.
                    if v > *m || v.is_nan() {
                        *m = v;
                    }
                }
            }
            let mut sum = vec![0.0f64; inner];
            for c in 0..channels {
                let r = c * inner..(c + 1) * inner;
                for (((o, &v), &m), s) in
                    ys[r.clone()].iter_mut().zip(&xs[r]).zip(&max).zip(&mut sum)
                {
                    let e = ((v - m) as f64).exp();
                    *s += e;
                    *o = e as f32;
                }
            }
            for c in 0..channels {
                for (o, &s) in ys[c * inner..(c + 1) * inner].iter_mut().zip(&sum) {
                    *o = (*o as f64 / s) as f32;
                }
            }
        });
}

/// dx = (g − Σ_k g_k·y_k)·y over the middle axis; dots in f64.
pub fn softmax_backward(y: &[f32], g: &[f32], dx: &mut [f32], channels: usize, inner: usize) {
    let slab = channels * inner;
    if slab == 0 {
        return;
    }
    dx.par_chunks_mut(slab)
        .zip(y.par_chunks(slab).zip(g.par_chunks(slab)))
        .for_each(|(ds, (ys, gs))| {
            let mut dot = vec![0.0f64; inner];
            for (k, (&yv, &gv)) in ys.iter().zip(gs).enumerate() {
                dot[k % inner] += yv as f64 * gv as f64;
            }
            for (k, ((d, &yv), &gv)) in ds.iter_mut().zip(ys).zip(gs).enumerate() {
                *d = ((gv as f64 - dot[k % inner]) * yv as f64) as f32;
            }
        });
}

pub struct SoftmaxLayer {
    pub params: SoftmaxParams,
    /// The resolved axis, fixed at reshape.
    pub axis: usize,
}

/// Reads `softmax_param`, refusing a `normalize_type` other than "Softmax".
pub fn softmax_params(def: &LayerDef) -> Result<SoftmaxParams, Diagnostic> {
    let p: SoftmaxParams = def.params("softmax_param")?;
    if p.normalize_type != "Softmax" {
        return Err(super::checks::param_error(
            def,
            "softmax_param",
            "normalize_type",
            &format!("normalize_type \"{}\" is not supported", p.normalize_type),
        )
        .with_help(
            "use \"Softmax\" (the default); normalise the scores with a Normalize layer first",
        ));
    }
    Ok(p)
}

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    let p = softmax_params(def)?;
    Ok(Box::new(SoftmaxLayer { params: p, axis: 0 }))
}

impl Layer for SoftmaxLayer {
    fn type_name(&self) -> &'static str {
        "Softmax"
    }
    fn bottoms(&self) -> Arity {
        Arity::exactly(1)
    }
    fn tops(&self) -> Arity {
        Arity::exactly(1)
    }

    fn reshape(&mut self, bottom: &[Shape]) -> Result<Vec<Shape>, ShapeError> {
        self.axis = axis_of(self.params.axis, &bottom[0], 0)?;
        Ok(vec![bottom[0].clone()])
    }

    fn flops(&self, bottom: &[Shape], _top: &[Shape]) -> u64 {
        softmax_flops(count(&bottom[0]))
    }

    fn forward(&mut self, io: &mut LayerIo, _ctx: &mut RunCtx) -> Result<(), String> {
        let (bottoms, mut tops, _) = io.forward_split();
        let (_, c, inner) = split_axis(bottoms[0].shape(), self.axis);
        softmax_forward(bottoms[0].data(), tops[0].data_mut(), c, inner);
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
        let (_, c, inner) = split_axis(tops[0].shape(), self.axis);
        softmax_backward(
            tops[0].data(),
            tops[0].diff(),
            bottoms[0].diff_mut(),
            c,
            inner,
        );
        Ok(())
    }
}
