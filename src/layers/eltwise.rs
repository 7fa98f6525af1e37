//! Eltwise: element-wise PROD, SUM (with optional coefficients) or MAX of equal-shaped bottoms.
//! SUM: y = Σ c_k·x_k, dx_k = c_k·dy. PROD: y = Π x_k, dx_k = dy·Π_{j≠k} x_j
//! (computed directly, not as y/x_k). MAX: y = max_k x_k, dx_k = dy where k
//! was the first maximum.

use super::{count, Arity, BuildContext, Layer, Shape, ShapeError};
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::LayerDef;
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

    fn forward(&mut self, io: &mut LayerIo, _ctx: &mut RunCtx) -> Result<(), String> {
        let (bottoms, mut tops, _) = io.forward_split();
        let y = tops[0].data_mut();
        match self.params.operation {
            EltwiseOp::Sum => {
                y.fill(0.0);
                for (k, b) in bottoms.iter().enumerate() {
                    let c = self.params.coeff.get(k).copied().unwrap_or(1.0);
                    y.iter_mut().zip(b.data()).for_each(|(v, &x)| *v += c * x);
                }
            }
            EltwiseOp::Prod => {
                y.copy_from_slice(bottoms[0].data());
                for b in &bottoms[1..] {
                    y.iter_mut().zip(b.data()).for_each(|(v, &x)| *v *= x);
                }
            }
            EltwiseOp::Max => {
                y.copy_from_slice(bottoms[0].data());
                self.argmax.clear();
                self.argmax.resize(y.len(), 0);
                for (k, b) in bottoms.iter().enumerate().skip(1) {
                    for ((v, &x), a) in y.iter_mut().zip(b.data()).zip(self.argmax.iter_mut()) {
                        if x > *v {
                            *v = x;
                            *a = k as u32;
                        }
                    }
                }
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
        let inputs: Vec<Vec<f32>> = match self.params.operation {
            EltwiseOp::Prod => bottoms.iter().map(|b| b.data().to_vec()).collect(),
            _ => Vec::new(),
        };
        for (k, b) in bottoms.iter_mut().enumerate() {
            if !propagate_down[k] {
                continue;
            }
            let dx = b.diff_mut();
            match self.params.operation {
                EltwiseOp::Sum => {
                    let c = self.params.coeff.get(k).copied().unwrap_or(1.0);
                    dx.iter_mut().zip(dy).for_each(|(d, &g)| *d = c * g);
                }
                EltwiseOp::Prod => {
                    dx.copy_from_slice(dy);
                    for (_, x) in inputs.iter().enumerate().filter(|(j, _)| *j != k) {
                        dx.iter_mut().zip(x).for_each(|(d, &v)| *d *= v);
                    }
                }
                EltwiseOp::Max => {
                    for ((d, &g), &a) in dx.iter_mut().zip(dy).zip(&self.argmax) {
                        *d = if a as usize == k { g } else { 0.0 };
                    }
                }
            }
        }
        Ok(())
    }
}
