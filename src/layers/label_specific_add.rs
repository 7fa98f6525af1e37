//! LabelSpecificAdd (happynear/caffe-windows; AM-Softmax, Wang et al. 2018, and
//! CosFace's additive cosine margin): adds a bias b (usually −m) to the target-class
//! score of each sample. Legend: x bottom 0 viewed as M × C (M = shape[0]),
//! y_i = (int) label i (bottom 1, M values).
//!
//! Forward, TRAIN phase only (the fork leaves TEST scores untouched whatever
//! `transform_test` says, and so does netrun): out = x, then
//!   out_iy = x_iy + b   where x_iy > −b (with b = −m: only where the cosine exceeds m),
//! b = `bias`, or with `bias_base` set the annealed
//!   b = clamp(bias_base + (1 + bias_gamma·t)^bias_power − 1, bias_min, bias_max),
//! t starting at `iteration` and advancing after every TRAIN forward (layer state,
//! saved by the solver). Optional top 1 (`[1]`) = b.
//! Backward: dx = dy (the shift is constant); no gradient to the label.
//! A label outside [0, C) is an error.

use super::margin_inner_product::class_labels;
use super::{count, fmt_shape, BuildContext, Layer, Shape, ShapeError};
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::{LayerDef, Phase};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LabelSpecificAddParams {
    pub bias: f32,
    /// Accepted for the fork's configs; it has no effect there either.
    pub transform_test: bool,
    /// Turns on the annealed bias.
    pub bias_base: Option<f32>,
    pub bias_gamma: f32,
    pub bias_power: f32,
    pub bias_min: f32,
    pub bias_max: f32,
    pub iteration: u32,
}

impl Default for LabelSpecificAddParams {
    fn default() -> Self {
        LabelSpecificAddParams {
            bias: 0.0,
            transform_test: false,
            bias_base: None,
            bias_gamma: 0.0,
            bias_power: 1.0,
            bias_min: 0.0,
            bias_max: 0.0,
            iteration: 0,
        }
    }
}

pub struct LabelSpecificAddLayer {
    pub params: LabelSpecificAddParams,
    tops: usize,
    /// The annealing counter t.
    iter: i64,
}

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    let p: LabelSpecificAddParams = def.params("label_specific_add_param")?;
    Ok(Box::new(LabelSpecificAddLayer {
        iter: p.iteration as i64,
        params: p,
        tops: def.top.len(),
    }))
}

/// Checks that bottom 0 is M × … and bottom 1 holds M labels; returns the top shape.
pub fn per_sample_labels(bottom: &[Shape]) -> Result<Shape, ShapeError> {
    let x = &bottom[0];
    if x.len() < 2 {
        return Err(ShapeError::at_bottom(
            0,
            format!("needs samples × classes scores, got {}", fmt_shape(x)),
        ));
    }
    if count(&bottom[1]) != x[0] {
        return Err(ShapeError::at_bottom(
            1,
            format!(
                "label bottom 1 has shape {} but bottom 0 has {} samples ({})",
                fmt_shape(&bottom[1]),
                x[0],
                fmt_shape(x)
            ),
        ));
    }
    Ok(x.clone())
}

/// The `Layer` methods shared by LabelSpecificAdd and LabelSpecificRescale: scores and
/// labels in, scores and (optionally) the `[1]` coefficient out, in place allowed, and
/// the annealing counter `iter` as state `iteration` while `annealed()`.
macro_rules! label_specific_methods {
    ($layer:literal) => {
        fn bottoms(&self) -> $crate::layers::Arity {
            $crate::layers::Arity::exactly(2)
        }
        fn tops(&self) -> $crate::layers::Arity {
            $crate::layers::Arity::between(1, 2)
        }
        fn can_backprop_to(&self, bottom: usize) -> bool {
            bottom == 0
        }
        fn supports_in_place(&self) -> bool {
            true
        }
        fn reshape(
            &mut self,
            bottom: &[$crate::layers::Shape],
        ) -> Result<Vec<$crate::layers::Shape>, $crate::layers::ShapeError> {
            let mut tops = vec![$crate::layers::label_specific_add::per_sample_labels(
                bottom,
            )?];
            if self.tops == 2 {
                tops.push(vec![1]);
            }
            Ok(tops)
        }
        fn state(&self) -> Vec<(String, f64)> {
            match self.annealed() {
                true => vec![("iteration".to_string(), self.iter as f64)],
                false => vec![],
            }
        }
        fn set_state(&mut self, state: &[(String, f64)]) -> Result<(), String> {
            $crate::layers::margin_inner_product::set_counter(&mut self.iter, state, $layer)
        }
    };
}
pub(crate) use label_specific_methods;

impl LabelSpecificAddLayer {
    fn annealed(&self) -> bool {
        self.params.bias_base.is_some()
    }

    fn current_bias(&self) -> f32 {
        let p = &self.params;
        match p.bias_base {
            None => p.bias,
            Some(base) => {
                let t = self.iter as f64;
                let b =
                    base as f64 + (1.0 + p.bias_gamma as f64 * t).powf(p.bias_power as f64) - 1.0;
                (b.max(p.bias_min as f64).min(p.bias_max as f64)) as f32
            }
        }
    }
}

impl Layer for LabelSpecificAddLayer {
    fn type_name(&self) -> &'static str {
        "LabelSpecificAdd"
    }
    label_specific_methods!("LabelSpecificAdd");

    fn forward(&mut self, io: &mut LayerIo, ctx: &mut RunCtx) -> Result<(), String> {
        io.copy_bottom_data_to_top(0);
        let train = ctx.phase == Phase::Train;
        let bias = self.current_bias();
        if train && self.params.bias_base.is_some() {
            self.iter += 1;
        }
        if io.num_tops() == 2 {
            io.top_mut(1).data_mut()[0] = bias;
        }
        if !train {
            return Ok(());
        }
        let m = io.bottom(0).dim(0);
        let c = io.bottom(0).count() / m.max(1);
        let labels = class_labels(io.bottom(1).data(), c)?;
        let out = io.top_mut(0).data_mut();
        for (i, &y) in labels.iter().enumerate() {
            let v = &mut out[i * c + y];
            if *v > -bias {
                *v += bias;
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
        if propagate_down[0] && !io.in_place(0) {
            io.copy_top_diff_to_bottom(0);
        }
        Ok(())
    }
}
