//! Reduction: reduces every axis from `axis` on to one value, y[o] = coeff · R(x[o, ·]).
//! Legend: bottom viewed as outer × D, outer = count(shape[..axis]), D = count(shape[axis..]);
//! the top has shape shape[..axis] (a scalar for axis 0).
//!   SUM:   R = Σ x       dx = coeff·dy
//!   ASUM:  R = Σ |x|     dx = coeff·dy·sign(x)
//!   SUMSQ: R = Σ x²      dx = coeff·dy·2x
//!   MEAN:  R = Σ x / D   dx = coeff·dy / D

use super::checks::param_error;
use super::loss::axis_of;
use super::{count, Arity, BuildContext, Layer, Shape, ShapeError};
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::LayerDef;
use serde::Deserialize;

/// `ReductionParameter.ReductionOp`: SUM = 1, ASUM = 2, SUMSQ = 3, MEAN = 4. Caffe
/// numbers it from 1; `NONE_0` only holds the place of 0 and is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReductionOp {
    #[serde(rename = "NONE_0")]
    None0,
    #[default]
    Sum,
    Asum,
    Sumsq,
    Mean,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReductionParams {
    pub operation: ReductionOp,
    pub axis: i32,
    pub coeff: f32,
}

impl Default for ReductionParams {
    fn default() -> Self {
        ReductionParams {
            operation: ReductionOp::Sum,
            axis: 0,
            coeff: 1.0,
        }
    }
}

pub struct ReductionLayer {
    pub params: ReductionParams,
    axis: usize,
}

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    let p: ReductionParams = def.params("reduction_param")?;
    if p.operation == ReductionOp::None0 {
        return Err(param_error(
            def,
            "reduction_param",
            "operation",
            "operation 0 is not a ReductionOp",
        )
        .with_help("the values are 1 = SUM, 2 = ASUM, 3 = SUMSQ, 4 = MEAN"));
    }
    Ok(Box::new(ReductionLayer { params: p, axis: 0 }))
}

impl Layer for ReductionLayer {
    fn type_name(&self) -> &'static str {
        "Reduction"
    }
    fn bottoms(&self) -> Arity {
        Arity::exactly(1)
    }
    fn tops(&self) -> Arity {
        Arity::exactly(1)
    }

    fn reshape(&mut self, bottom: &[Shape]) -> Result<Vec<Shape>, ShapeError> {
        // Axis 0 of a scalar bottom reduces its single value.
        self.axis = if bottom[0].is_empty() && self.params.axis == 0 {
            0
        } else {
            axis_of(self.params.axis, &bottom[0], 0)?
        };
        Ok(vec![bottom[0][..self.axis].to_vec()])
    }

    fn flops(&self, bottom: &[Shape], _top: &[Shape]) -> u64 {
        2 * count(&bottom[0]) as u64
    }

    fn forward(&mut self, io: &mut LayerIo, _ctx: &mut RunCtx) -> Result<(), String> {
        let (bottoms, mut tops, _) = io.forward_split();
        let d = count(&bottoms[0].shape()[self.axis..]);
        let (op, coeff) = (self.params.operation, self.params.coeff as f64);
        for (y, x) in tops[0]
            .data_mut()
            .iter_mut()
            .zip(bottoms[0].data().chunks(d.max(1)))
        {
            let r: f64 = match op {
                ReductionOp::Sum | ReductionOp::Mean | ReductionOp::None0 => {
                    x.iter().map(|&v| v as f64).sum()
                }
                ReductionOp::Asum => x.iter().map(|&v| (v as f64).abs()).sum(),
                ReductionOp::Sumsq => x.iter().map(|&v| (v as f64).powi(2)).sum(),
            };
            let r = if op == ReductionOp::Mean {
                r / d as f64
            } else {
                r
            };
            *y = (coeff * r) as f32;
        }
        if d == 0 {
            tops[0].data_mut().iter_mut().for_each(|y| *y = 0.0);
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
        let d = count(&bottoms[0].shape()[self.axis..]).max(1);
        let (op, coeff) = (self.params.operation, self.params.coeff);
        let (x, dx) = bottoms[0].data_and_diff_mut();
        for ((dx, x), &dy) in dx.chunks_mut(d).zip(x.chunks(d)).zip(tops[0].diff()) {
            let g = coeff * dy;
            for (dx, &x) in dx.iter_mut().zip(x) {
                *dx = match op {
                    ReductionOp::Sum | ReductionOp::None0 => g,
                    ReductionOp::Asum => {
                        g * if x > 0.0 {
                            1.0
                        } else if x < 0.0 {
                            -1.0
                        } else {
                            0.0
                        }
                    }
                    ReductionOp::Sumsq => g * 2.0 * x,
                    ReductionOp::Mean => g / d as f32,
                };
            }
        }
        Ok(())
    }
}
