//! CosinAddm (xialuxi/arcface-caffe): ArcFace's additive angular margin (Deng et al.,
//! 2019) on cosine scores, fed to Scale (s) and a softmax loss. Legend: c bottom 0
//! viewed as M × C, cosines of unit features and unit weight rows (a Normalize layer,
//! then InnerProduct with `normalize: true`); y_i = (int) label i.
//!
//! Forward (both phases, as the fork; `transform_test` is accepted and, as there,
//! has no effect): out = c except at the target, where, with c = min(c_iy, 1),
//! θ = arccos c and t = cos(π − m):
//!   out_iy = cos(θ + m) = c·cos m − sin θ·sin m      if c > t,
//!   out_iy = c − m·sin m                              otherwise (θ + m would pass π,
//!   where cos(θ + m) stops decreasing; this keeps the target score monotone).
//! Backward (the true gradient of that forward): dx = dy except
//!   dc_iy = dy_iy·(cos m + sin m·c/sin θ) if c > t and sin θ > 0, else dy_iy.
//! No gradient to the label. A label outside [0, C) is an error.

use super::label_specific_add::per_sample_labels;
use super::margin_inner_product::class_labels;
use super::{Arity, BuildContext, Layer, Shape, ShapeError};
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::LayerDef;
use serde::Deserialize;
use std::f64::consts::PI;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CosinAddmParams {
    /// The additive angular margin m, radians.
    pub m: f32,
    /// Accepted for the fork's configs; no effect there either.
    pub transform_test: bool,
}

impl Default for CosinAddmParams {
    fn default() -> Self {
        CosinAddmParams {
            m: 0.5,
            transform_test: false,
        }
    }
}

pub struct CosinAddmLayer {
    pub params: CosinAddmParams,
    /// Per sample: d out_iy / d c_iy from the last forward.
    slopes: Vec<f64>,
    labels: Vec<usize>,
}

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    Ok(Box::new(CosinAddmLayer {
        params: def.params("cosin_add_m_param")?,
        slopes: Vec::new(),
        labels: Vec::new(),
    }))
}

/// cos(θ + m) at a target cosine c with its slope d/dc, as in the module comment.
pub fn cos_add_m(c: f64, m: f64) -> (f64, f64) {
    let c = c.min(1.0);
    if c <= (PI - m).cos() {
        return (c - m * m.sin(), 1.0);
    }
    let sin_t = (1.0 - c * c).max(0.0).sqrt();
    let value = c * m.cos() - sin_t * m.sin();
    let slope = if sin_t > 0.0 {
        m.cos() + m.sin() * c / sin_t
    } else {
        1.0
    };
    (value, slope)
}

impl Layer for CosinAddmLayer {
    fn type_name(&self) -> &'static str {
        "CosinAddm"
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

    fn forward(&mut self, io: &mut LayerIo, _ctx: &mut RunCtx) -> Result<(), String> {
        io.copy_bottom_data_to_top(0);
        let m = io.bottom(0).dim(0);
        let c = io.bottom(0).count() / m.max(1);
        self.labels = class_labels(io.bottom(1).data(), c)?;
        let margin = self.params.m as f64;
        self.slopes.clear();
        let (bottom, top) = io.bottom_and_top_mut(0, 0);
        let (x, out) = (bottom.data(), top.data_mut());
        for (i, &y) in self.labels.iter().enumerate() {
            let (v, s) = cos_add_m(x[i * c + y] as f64, margin);
            out[i * c + y] = v as f32;
            self.slopes.push(s);
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
        io.copy_top_diff_to_bottom(0);
        let m = io.bottom(0).dim(0);
        let c = io.bottom(0).count() / m.max(1);
        let dx = io.bottom_mut(0).diff_mut();
        for (i, (&y, &s)) in self.labels.iter().zip(&self.slopes).enumerate() {
            dx[i * c + y] = (dx[i * c + y] as f64 * s) as f32;
        }
        Ok(())
    }
}
