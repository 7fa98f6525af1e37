//! Eltwise: element-wise PROD, SUM (with optional coefficients) or MAX of equal-shaped bottoms.
//! SUM: y = Σ c_k·x_k, dx_k = c_k·dy. PROD: y = Π x_k, dx_k = dy·Π_{j≠k} x_j
//! (computed directly, not as y/x_k). MAX: y = max_k x_k, dx_k = dy where k
//! was the first maximum.

use super::rows::{self, CHUNK};
use super::{count, Arity, BuildContext, Layer, Shape, ShapeError};
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::LayerDef;
use rayon::prelude::*;
use serde::Deserialize;

/// `EltwiseOp`: PROD = 0, SUM = 1, MAX = 2 (configs write `operation: 1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EltwiseOp {
    Prod,
    #[default]
    Sum,
    Max,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EltwiseParams {
    pub operation: EltwiseOp,
    /// SUM only: y = Σ coeff_k·x_k.
    pub coeff: Vec<f32>,
    /// Kept for compatibility: netrun's PROD gradient is always the stable one.
    pub stable_prod_grad: bool,
}

impl Default for EltwiseParams {
    fn default() -> Self {
        EltwiseParams {
            operation: EltwiseOp::Sum,
            coeff: vec![],
            stable_prod_grad: true,
        }
    }
}

pub struct EltwiseLayer {
    pub params: EltwiseParams,
    /// MAX: which bottom held the maximum of each element.
    argmax: Vec<u32>,
}

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    let p: EltwiseParams = def.params("eltwise_param")?;
    let span = def
        .block
        .get("eltwise_param")
        .map_or(def.name_span(), |f| f.value_span);
    if !p.coeff.is_empty() && p.operation != EltwiseOp::Sum {
        return Err(def.error(
            span,
            format!("{}: `coeff` applies only to operation SUM", def.describe()),
        ));
    }
    if !p.coeff.is_empty() && p.coeff.len() != def.bottom.len() {
        return Err(def.error(
            span,
            format!(
                "{}: {} coefficients for {} bottoms",
                def.describe(),
                p.coeff.len(),
                def.bottom.len()
            ),
        ));
    }
    Ok(Box::new(EltwiseLayer {
        params: p,
        argmax: Vec::new(),
    }))
}

impl Layer for EltwiseLayer {
    fn type_name(&self) -> &'static str {
        "Eltwise"
    }
    fn bottoms(&self) -> Arity {
        Arity::at_least(2)
    }
    fn tops(&self) -> Arity {
        Arity::exactly(1)
    }

    fn reshape(&mut self, bottom: &[Shape]) -> Result<Vec<Shape>, ShapeError> {
        for (i, b) in bottom.iter().enumerate().skip(1) {
            if b != &bottom[0] {
                return Err(ShapeError::mismatch(i, b, 0, &bottom[0]));
            }
        }
        Ok(vec![bottom[0].clone()])
    }

    fn flops(&self, bottom: &[Shape], _top: &[Shape]) -> u64 {
        ((bottom.len() - 1) * count(&bottom[0])) as u64
    }

    /// Every operation is one parallel pass over chunks of y (see `rows`).
    fn forward(&mut self, io: &mut LayerIo, _ctx: &mut RunCtx) -> Result<(), String> {
        let (bottoms, mut tops, _) = io.forward_split();
        let xs: Vec<&[f32]> = bottoms.iter().map(|b| b.data()).collect();
        let y = tops[0].data_mut();
        match self.params.operation {
            EltwiseOp::Sum => rows::weighted_sum(y, &xs, &self.params.coeff),
            EltwiseOp::Prod => rows::for_spans(y, |span, part| {
                part.copy_from_slice(&xs[0][span.clone()]);
                for x in &xs[1..] {
                    part.iter_mut()
                        .zip(&x[span.clone()])
                        .for_each(|(v, &x)| *v *= x);
                }
            }),
            EltwiseOp::Max => {
                self.argmax.clear();
                self.argmax.resize(y.len(), 0);
                y.par_chunks_mut(CHUNK)
                    .zip(self.argmax.par_chunks_mut(CHUNK))
                    .enumerate()
                    .for_each(|(i, (part, arg))| {
                        let span = i * CHUNK..i * CHUNK + part.len();
                        part.copy_from_slice(&xs[0][span.clone()]);
                        for (k, x) in xs.iter().enumerate().skip(1) {
                            for ((v, &x), a) in part.iter_mut().zip(&x[span.clone()]).zip(&mut *arg)
                            {
                                if x > *v {
                                    *v = x;
                                    *a = k as u32;
                                }
                            }
                        }
                    });
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
        let (mut bottoms, tops, _) = io.backward_split();
        let dy = tops[0].diff();
        let (xs, dxs): (Vec<&[f32]>, Vec<&mut [f32]>) =
            bottoms.iter_mut().map(|b| b.data_and_diff_mut()).unzip();
        let dxs = dxs
            .into_iter()
            .enumerate()
            .filter(|(k, _)| propagate_down[*k]);
        match self.params.operation {
            EltwiseOp::Sum => {
                let coeff = |k: usize| self.params.coeff.get(k).copied().unwrap_or(1.0);
                rows::scaled_copies(dy, dxs.map(|(k, dx)| (coeff(k), dx)).collect());
            }
            EltwiseOp::Prod => {
                for (k, dx) in dxs {
                    rows::for_spans(dx, |span, part| {
                        part.copy_from_slice(&dy[span.clone()]);
                        for (_, x) in xs.iter().enumerate().filter(|(j, _)| *j != k) {
                            part.iter_mut()
                                .zip(&x[span.clone()])
                                .for_each(|(d, &v)| *d *= v);
                        }
                    });
                }
            }
            EltwiseOp::Max => {
                for (k, dx) in dxs {
                    rows::for_spans(dx, |span, part| {
                        let (g, arg) = (&dy[span.clone()], &self.argmax[span]);
                        for ((d, &g), &a) in part.iter_mut().zip(g).zip(arg) {
                            *d = if a as usize == k { g } else { 0.0 };
                        }
                    });
                }
            }
        }
        Ok(())
    }
}
