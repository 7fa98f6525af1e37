//! Eltwise: element-wise PROD, SUM (with optional coefficients) or MAX of equal-shaped bottoms.

use super::{count, Arity, BuildContext, Layer, Shape, ShapeError};
use crate::error::Diagnostic;
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
    Ok(Box::new(EltwiseLayer { params: p }))
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
}
