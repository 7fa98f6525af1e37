//! AdaCosAddmScale (xialuxi/arcface-caffe, the AdaCos folder): ArcFace's additive
//! angular margin (Deng et al. 2019, as CosinAddm) followed by the adaptive scale of
//! AdaCos (Zhang et al., "AdaCos: Adaptively Scaling Cosine Logits", 2019), so no
//! Scale layer or hand-tuned s is needed. Legend: c bottom 0 viewed as M × C, cosines;
//! y_i = (int) label i; m = `m`; K = `num_classes`.
//!
//! State: the scale s, starting at s₀ = √2·ln(K − 1) (the paper's fixed scale).
//! Forward (both phases, as the fork; `transform_test` has no effect there either):
//!   u = c, except u_iy = cos(θ + m) at the target (CosinAddm's rule, same threshold);
//!   B = (1/M)·Σ_i [1 + Σ_{j≠y_i} e^(s·c_ij)]   (s of the previous forward; the 1 is the
//!       target, which the fork counts as e^0),
//!   θ_med = min(mean over all M·C entries of arccos(clamp(c, −1, 1)), π/4),
//!   s ← ln(B)/cos(θ_med),  out = s·u  with the new s.
//! The paper takes the median of the target angles and leaves targets out of B; the
//! fork's mean and "+1" are kept so trained models match it.
//! Backward: s is treated as a constant (as in the paper and the fork):
//!   dc = s·dy, and dc_iy = s·dy_iy·(CosinAddm's slope) at the target.
//! No gradient to the label. A label outside [0, C) is an error.

use super::cosin_add_m::cos_add_m;
use super::label_specific_add::per_sample_labels;
use super::margin_inner_product::class_labels;
use super::{Arity, BuildContext, Layer, Shape, ShapeError};
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::LayerDef;
use serde::Deserialize;
use std::f64::consts::FRAC_PI_4;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdaCosAddmScaleParams {
    /// The additive angular margin m, radians.
    pub m: f32,
    /// K, which sets the starting scale (a float in the fork's proto).
    pub num_classes: f32,
    /// Accepted for the fork's configs; no effect there either.
    pub transform_test: bool,
}

impl Default for AdaCosAddmScaleParams {
    fn default() -> Self {
        AdaCosAddmScaleParams {
            m: 0.5,
            num_classes: 8750.0,
            transform_test: false,
        }
    }
}

pub struct AdaCosAddmScaleLayer {
    pub params: AdaCosAddmScaleParams,
    /// The adaptive scale s (after the last forward).
    pub scale: f64,
    /// Per sample: d u_iy / d c_iy of the last forward.
    slopes: Vec<f64>,
    labels: Vec<usize>,
}

/// The starting scale √2·ln(K − 1).
pub fn initial_scale(num_classes: f64) -> f64 {
    std::f64::consts::SQRT_2 * (num_classes - 1.0).ln()
}

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    const BLOCK: &str = "adacos_add_m_scale_param";
    let p: AdaCosAddmScaleParams = def.params(BLOCK)?;
    if p.num_classes.is_nan() || p.num_classes <= 2.0 {
        return Err(super::checks::param_error(
            def,
            BLOCK,
            "num_classes",
            &format!(
                "num_classes {} gives no starting scale √2·ln(K − 1) > 0",
                p.num_classes
            ),
        )
        .with_help("set num_classes to the number of identities (more than 2)"));
    }
    Ok(Box::new(AdaCosAddmScaleLayer {
        scale: initial_scale(p.num_classes as f64),
        params: p,
        slopes: Vec::new(),
        labels: Vec::new(),
    }))
}

impl Layer for AdaCosAddmScaleLayer {
    fn type_name(&self) -> &'static str {
        "AdaCosAddmScale"
    }
    fn bottoms(&self) -> Arity {
        Arity::exactly(2)
    }
    fn tops(&self) -> Arity {
        Arity::exactly(1)
    }
    fn can_backprop_to(&self, bottom: usize) -> bool {
        bottom == 0
    }

    fn reshape(&mut self, bottom: &[Shape]) -> Result<Vec<Shape>, ShapeError> {
        Ok(vec![per_sample_labels(bottom)?])
    }

    fn state(&self) -> Vec<(String, f64)> {
        vec![("scale".to_string(), self.scale)]
    }

    fn set_state(&mut self, state: &[(String, f64)]) -> Result<(), String> {
        for (name, v) in state {
            if name != "scale" {
                return Err(format!(
                    "unknown state `{name}` (AdaCosAddmScale keeps `scale`)"
                ));
            }
            if !v.is_finite() {
                return Err(format!("state `scale` must be finite, got {v}"));
            }
            self.scale = *v;
        }
        Ok(())
    }

    fn forward(&mut self, io: &mut LayerIo, _ctx: &mut RunCtx) -> Result<(), String> {
        let m = io.bottom(0).dim(0).max(1);
        let c = io.bottom(0).count() / m;
        self.labels = class_labels(io.bottom(1).data(), c)?;
        let margin = self.params.m as f64;
        let (bottom, top) = io.bottom_and_top_mut(0, 0);
        let (x, out) = (bottom.data(), top.data_mut());
        let (mut b_sum, mut theta_sum) = (0.0f64, 0.0f64);
        for (i, &y) in self.labels.iter().enumerate() {
            for (j, &v) in x[i * c..(i + 1) * c].iter().enumerate() {
                let v = v as f64;
                theta_sum += v.clamp(-1.0, 1.0).acos();
                b_sum += if j == y { 1.0 } else { (self.scale * v).exp() };
            }
        }
        let theta_med = (theta_sum / x.len().max(1) as f64).min(FRAC_PI_4);
        self.scale = (b_sum / m as f64).ln() / theta_med.cos();
        let s = self.scale;
        for (o, &v) in out.iter_mut().zip(x) {
            *o = (s * v as f64) as f32;
        }
        self.slopes.clear();
        for (i, &y) in self.labels.iter().enumerate() {
            let (u, slope) = cos_add_m(x[i * c + y] as f64, margin);
            out[i * c + y] = (s * u) as f32;
            self.slopes.push(slope);
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
        let c = io.bottom(0).count() / m;
        let s = self.scale;
        let (top, bottom) = io.top_and_bottom_mut(0, 0);
        let (dy, dx) = (top.diff(), bottom.diff_mut());
        for (o, &g) in dx.iter_mut().zip(dy) {
            *o = (s * g as f64) as f32;
        }
        for (i, (&y, &slope)) in self.labels.iter().zip(&self.slopes).enumerate() {
            dx[i * c + y] = (s * dy[i * c + y] as f64 * slope) as f32;
        }
        Ok(())
    }
}
