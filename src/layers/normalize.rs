//! Normalize (netrun-defined): L2-normalises each sample over all axes after axis 0.
//! Legend: N = `shape[0]`; x_n = sample n flattened to K = `count(shape[1..])` values.
//!
//! Forward: s_n = sqrt(Σ_k x_nk² + eps), y_n = x_n / s_n. Top shape = bottom shape.
//! Backward (g = top diff): dx_n = (g_n − y_n·(y_n · g_n)) / s_n, the exact gradient
//! for any eps.
//!
//! `normalize_param { eps }` defaults to 0, matching the reference cases
//! (`l2normalize_triplet_*`: y = x/‖x‖, no epsilon, no learnable scale): an all-zero
//! sample then gives NaN, as the unguarded norms of SphereFace do. Set e.g.
//! `eps: 1e-10` to guard against it. This is not SSD's `Normalize` (`norm_param`,
//! learnable scale, per-position option), whose block is rejected.

use super::{count, fmt_shape, Arity, BuildContext, Layer, Shape, ShapeError};
use crate::error::Diagnostic;
use crate::netdef::LayerDef;
use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NormalizeParams {
    /// Added to the squared norm before the square root.
    pub eps: f32,
}

pub struct NormalizeLayer {
    pub params: NormalizeParams,
}

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    let p: NormalizeParams = def.params("normalize_param")?;
    if p.eps < 0.0 || !p.eps.is_finite() {
        return Err(def.error(
            def.block
                .get("normalize_param")
                .map_or(def.name_span(), |f| f.value_span),
            format!(
                "{}: eps must be a finite value ≥ 0, got {}",
                def.describe(),
                p.eps
            ),
        ));
    }
    Ok(Box::new(NormalizeLayer { params: p }))
}

impl Layer for NormalizeLayer {
    fn type_name(&self) -> &'static str {
        "Normalize"
    }
    fn bottoms(&self) -> Arity {
        Arity::exactly(1)
    }
    fn tops(&self) -> Arity {
        Arity::exactly(1)
    }

    fn reshape(&mut self, bottom: &[Shape]) -> Result<Vec<Shape>, ShapeError> {
        let b = &bottom[0];
        if b.is_empty() {
            return Err(ShapeError::at_bottom(
                0,
                format!("needs a batch axis, got {}", fmt_shape(b)),
            ));
        }
        Ok(vec![b.clone()])
    }

    fn flops(&self, bottom: &[Shape], _top: &[Shape]) -> u64 {
        // A multiply-add per value for the norm, then a division.
        3 * count(&bottom[0]) as u64
    }
}
