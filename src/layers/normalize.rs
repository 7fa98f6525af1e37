//! Normalize: normalises each sample over all axes after axis 0.
//! Legend: N = `shape[0]`; x_n = sample n flattened to K = `count(shape[1..])` values.
//!
//! Forward (`normalize_type: "L2"`, the default): s_n = sqrt(Σ_k x_nk² + eps);
//! ("L1"): s_n = Σ_k |x_nk| + eps. y_n = x_n / s_n. Top 0 shape = bottom shape; the
//! optional top 1 (`[N, 1]`) holds s_n.
//! Backward (g = top-0 diff): L2 dx_n = (g_n − y_n·(y_n · g_n)) / s_n, L1
//! dx_n = (g_n − sign(x_n)·(y_n · g_n)) / s_n: the exact gradients for any eps.
//! `fix_gradient: true` leaves out the division by s_n (the fork's option: the
//! gradient's length no longer depends on the feature norm; not the true gradient).
//! `bp_norm: true` with two tops adds the norm top's diff h_n: dx_n += h_n·∂s_n/∂x_n,
//! i.e. h_n·y_n (L2) or h_n·sign(x_n) (L1); without it the norm top gets no gradient.
//!
//! May run in place: backward needs only y (the top; sign(x) = sign(y)) and s_n.
//!
//! `normalize_param { eps }` (a netrun field) defaults to 0, matching the reference
//! cases (`l2normalize_triplet_*`: y = x/‖x‖): an all-zero sample then gives NaN, as
//! the unguarded norms of SphereFace do. The fork (happynear/caffe-windows, used by
//! AM-Softmax, NormFace and arcface-caffe nets) adds 1e-6 inside its norm and
//! normalises 4-D blobs per spatial position; netrun normalises whole samples, which
//! is the same for the N×C features these nets normalise. This is not SSD's
//! `Normalize` (`norm_param`, learnable scale), whose block is rejected.

use super::{count, fmt_shape, Arity, BuildContext, Layer, Shape, ShapeError};
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::LayerDef;
use rayon::prelude::*;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NormalizeParams {
    /// Added to the squared norm (L2) or the norm (L1).
    pub eps: f32,
    /// "L2" or "L1".
    pub normalize_type: String,
    /// Backward leaves out the division by the norm.
    pub fix_gradient: bool,
    /// Back-propagates the norm top's diff (two tops).
    pub bp_norm: bool,
}

impl Default for NormalizeParams {
    fn default() -> Self {
        NormalizeParams {
            eps: 0.0,
            normalize_type: "L2".into(),
            fix_gradient: false,
            bp_norm: false,
        }
    }
}

pub struct NormalizeLayer {
    pub params: NormalizeParams,
    /// `normalize_type: "L1"`.
    l1: bool,
    tops: usize,
    /// s_n of the last forward.
    norms: Vec<f64>,
}

/// dx = (g − u·(y·g)) / s per sample (u = y for L2, sign(y) for L1; no division with
/// `fix`), plus h·u with the norm top's diff h; `d` holds g on entry and dx on return.
fn backward_rows(
    y: &[f32],
    d: &mut [f32],
    norms: &[f64],
    norm_diff: Option<&[f32]>,
    opts: (bool, bool),
    k: usize,
) {
    let (l1, fix) = opts;
    d.par_chunks_mut(k)
        .zip(y.par_chunks(k))
        .zip(norms.par_iter())
        .enumerate()
        .for_each(|(n, ((ds, ys), &s))| {
            let dot: f64 = ds.iter().zip(ys).map(|(&g, &v)| g as f64 * v as f64).sum();
            let div = if fix { 1.0 } else { s };
            let h = norm_diff.map_or(0.0, |h| h[n] as f64);
            for (g, &v) in ds.iter_mut().zip(ys) {
                let u = if l1 { sgn(v) } else { v as f64 };
                *g = ((*g as f64 - u * dot) / div + h * u) as f32;
            }
        });
}

/// −1, 0 or 1.
fn sgn(v: f32) -> f64 {
    if v > 0.0 {
        1.0
    } else if v < 0.0 {
        -1.0
    } else {
        0.0
    }
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
    let l1 = match p.normalize_type.as_str() {
        "L2" => false,
        "L1" => true,
        other => {
            return Err(def.error(
                def.block
                    .get("normalize_param")
                    .map_or(def.name_span(), |f| f.value_span),
                format!(
                    "{}: unknown normalize_type \"{other}\" (\"L2\" or \"L1\")",
                    def.describe()
                ),
            ))
        }
    };
    Ok(Box::new(NormalizeLayer {
        l1,
        tops: def.top.len(),
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
        Arity::between(1, 2)
    }

    fn reshape(&mut self, bottom: &[Shape]) -> Result<Vec<Shape>, ShapeError> {
        let b = &bottom[0];
        if b.is_empty() {
            return Err(ShapeError::at_bottom(
                0,
                format!("needs a batch axis, got {}", fmt_shape(b)),
            ));
        }
        let mut tops = vec![b.clone()];
        if self.tops == 2 {
            tops.push(vec![b[0], 1]);
        }
        Ok(tops)
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
        let l1 = self.l1;
        self.norms = io
            .bottom(0)
            .data()
            .par_chunks(k)
            .map(|xs| match l1 {
                true => xs.iter().map(|&v| (v as f64).abs()).sum::<f64>() + eps,
                false => (xs.iter().map(|&v| v as f64 * v as f64).sum::<f64>() + eps).sqrt(),
            })
            .collect();
        if io.num_tops() == 2 {
            let out = io.top_mut(1).data_mut();
            out.iter_mut()
                .zip(&self.norms)
                .for_each(|(o, &s)| *o = s as f32);
        }
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
        let opts = (self.l1, self.params.fix_gradient);
        let norm_diff =
            (self.params.bp_norm && io.num_tops() == 2).then(|| io.top(1).diff().to_vec());
        let h = norm_diff.as_deref();
        if io.in_place(0) {
            let (y, d) = io.bottom_mut(0).data_and_diff_mut();
            backward_rows(y, d, &self.norms, h, opts, k);
        } else {
            io.copy_top_diff_to_bottom(0);
            let (top, bottom) = io.top_and_bottom_mut(0, 0);
            backward_rows(top.data(), bottom.diff_mut(), &self.norms, h, opts, k);
        }
        Ok(())
    }
}
