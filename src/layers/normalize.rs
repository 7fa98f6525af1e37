//! Normalize (netrun-defined): L2-normalises each sample over all axes after axis 0.
//! Legend: N = `shape[0]`; x_n = sample n flattened to K = `count(shape[1..])` values.
//!
//! Forward: s_n = sqrt(Σ_k x_nk² + eps), y_n = x_n / s_n. Top shape = bottom shape.
//! Backward (g = top diff): dx_n = (g_n − y_n·(y_n · g_n)) / s_n, the exact gradient
//! for any eps.
//!
//! May run in place: backward needs only y (the top) and the stored norms s_n.
//!
//! `normalize_param { eps }` defaults to 0, matching the reference cases
//! (`l2normalize_triplet_*`: y = x/‖x‖, no epsilon, no learnable scale): an all-zero
//! sample then gives NaN, as the unguarded norms of SphereFace do. Set e.g.
//! `eps: 1e-10` to guard against it. This is not SSD's `Normalize` (`norm_param`,
//! learnable scale, per-position option), whose block is rejected.

use super::{count, fmt_shape, Arity, BuildContext, Layer, Shape, ShapeError};
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::LayerDef;
use rayon::prelude::*;
use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NormalizeParams {
    /// Added to the squared norm before the square root.
    pub eps: f32,
}

pub struct NormalizeLayer {
    pub params: NormalizeParams,
    /// s_n of the last forward.
    norms: Vec<f64>,
}

/// dx = (g − y·(y·g)) / s per sample, with `d` holding g on entry and dx on return.
fn backward_rows(y: &[f32], d: &mut [f32], norms: &[f64], k: usize) {
    d.par_chunks_mut(k)
        .zip(y.par_chunks(k))
        .zip(norms)
        .for_each(|((ds, ys), &s)| {
            let dot: f64 = ds.iter().zip(ys).map(|(&g, &v)| g as f64 * v as f64).sum();
            for (g, &v) in ds.iter_mut().zip(ys) {
                *g = ((*g as f64 - v as f64 * dot) / s) as f32;
            }
        });
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
    Ok(Box::new(NormalizeLayer {
        params: p,
        norms: Vec::new(),
    }))
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

    fn supports_in_place(&self) -> bool {
        true
    }

    fn forward(&mut self, io: &mut LayerIo, _ctx: &mut RunCtx) -> Result<(), String> {
        let k = io.bottom(0).count_from(1);
        if k == 0 {
            self.norms.clear();
            return Ok(());
        }
        let eps = self.params.eps as f64;
        self.norms = io
            .bottom(0)
            .data()
            .par_chunks(k)
            .map(|xs| (xs.iter().map(|&v| v as f64 * v as f64).sum::<f64>() + eps).sqrt())
            .collect();
        io.copy_bottom_data_to_top(0);
        io.top_mut(0)
            .data_mut()
            .par_chunks_mut(k)
            .zip(&self.norms)
            .for_each(|(ys, &s)| ys.iter_mut().for_each(|v| *v = (*v as f64 / s) as f32));
        Ok(())
    }

    fn backward(
        &mut self,
        io: &mut LayerIo,
        propagate_down: &[bool],
        _ctx: &mut RunCtx,
    ) -> Result<(), String> {
        let k = io.bottom(0).count_from(1);
        if !propagate_down[0] || k == 0 {
            return Ok(());
        }
        if io.in_place(0) {
            let (y, d) = io.bottom_mut(0).data_and_diff_mut();
            backward_rows(y, d, &self.norms, k);
        } else {
            io.copy_top_diff_to_bottom(0);
            let (top, bottom) = io.top_and_bottom_mut(0, 0);
            backward_rows(top.data(), bottom.diff_mut(), &self.norms, k);
        }
        Ok(())
    }
}
