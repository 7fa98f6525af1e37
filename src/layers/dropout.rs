//! Dropout: TRAIN y = x·m/(1 − r) with m ~ Bernoulli(1 − r) per element (y = x·m when
//! `scale_train` is false); TEST y = x (or x·(1 − r) when `scale_train` is false).
//! Legend: r = dropout_ratio. Works in place.

use super::{count, Arity, BuildContext, Layer, Shape, ShapeError};
use crate::error::Diagnostic;
use crate::netdef::LayerDef;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DropoutParams {
    /// Probability r of zeroing an element, 0 ≤ r < 1.
    pub dropout_ratio: f32,
    /// Rescale by 1/(1 − r) while training (otherwise by 1 − r while testing).
    pub scale_train: bool,
}

impl Default for DropoutParams {
    fn default() -> Self {
        DropoutParams {
            dropout_ratio: 0.5,
            scale_train: true,
        }
    }
}

pub struct DropoutLayer {
    pub params: DropoutParams,
}

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    let p: DropoutParams = def.params("dropout_param")?;
    // 1/(1 − r) must be finite; the comparison also rejects NaN.
    if !(0.0..1.0).contains(&p.dropout_ratio) {
        return Err(def.error(
            def.block
                .get("dropout_param")
                .map_or(def.name_span(), |f| f.value_span),
            format!(
                "{}: dropout_ratio {} must be in [0, 1)",
                def.describe(),
                p.dropout_ratio
            ),
        ));
    }
    Ok(Box::new(DropoutLayer { params: p }))
}

impl Layer for DropoutLayer {
    fn type_name(&self) -> &'static str {
        "Dropout"
    }
    fn bottoms(&self) -> Arity {
        Arity::exactly(1)
    }
    fn tops(&self) -> Arity {
        Arity::exactly(1)
    }
    fn reshape(&mut self, bottom: &[Shape]) -> Result<Vec<Shape>, ShapeError> {
        Ok(vec![bottom[0].clone()])
    }

    /// One multiply per element.
    fn flops(&self, bottom: &[Shape], _top: &[Shape]) -> u64 {
        count(&bottom[0]) as u64
    }
}
