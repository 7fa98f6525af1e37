//! MVN: mean-variance normalisation per sample and channel (or per sample across channels).
//! Legend: bottom N × C × (rest); a group is one (n, c) with D = count(rest) values, or one n
//! with D = C·count(rest) values when `across_channels`.
//! Forward, per group: μ = Σx/D; y = x − μ; with `normalize_variance`:
//!   σ = sqrt(Σ(x − μ)²/D), y = (x − μ)/(σ + eps)      (eps added to σ, as Caffe does).
//! Backward, per group, with mean(v) = Σv/D:
//!   without variance: dx = dy − mean(dy)
//!   with variance:    dx = (dy − mean(dy) − y·mean(y·dy)) / (σ + eps)

use super::{fmt_shape, Arity, BuildContext, Layer, Shape, ShapeError};
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::LayerDef;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MvnParams {
    pub normalize_variance: bool,
    pub across_channels: bool,
    pub eps: f32,
}

impl Default for MvnParams {
    fn default() -> Self {
        MvnParams {
            normalize_variance: true,
            across_channels: false,
            eps: 1e-9,
        }
    }
}

pub struct MvnLayer {
    pub params: MvnParams,
    /// Values per group.
    group: usize,
    /// σ + eps per group from the last forward.
    scale: Vec<f64>,
}

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    Ok(Box::new(MvnLayer {
        params: def.params("mvn_param")?,
        group: 1,
        scale: vec![],
    }))
}

fn mean(v: impl Iterator<Item = f64>, n: usize) -> f64 {
    v.sum::<f64>() / n as f64
}

impl Layer for MvnLayer {
    fn type_name(&self) -> &'static str {
        "MVN"
    }
    fn bottoms(&self) -> Arity {
        Arity::exactly(1)
    }
    fn tops(&self) -> Arity {
        Arity::exactly(1)
    }
    fn supports_in_place(&self) -> bool {
        true
    }

    fn reshape(&mut self, bottom: &[Shape]) -> Result<Vec<Shape>, ShapeError> {
        let x = &bottom[0];
        let from = if self.params.across_channels { 1 } else { 2 };
        if x.len() < from {
            return Err(ShapeError::at_bottom(
                0,
                format!(
                    "bottom has shape {}; MVN needs at least {from} axes",
                    fmt_shape(x)
                ),
            ));
        }
        self.group = x[from..].iter().product::<usize>().max(1);
        Ok(vec![x.clone()])
    }

    fn flops(&self, bottom: &[Shape], _top: &[Shape]) -> u64 {
        5 * super::count(&bottom[0]) as u64
    }

    fn forward(&mut self, io: &mut LayerIo, _ctx: &mut RunCtx) -> Result<(), String> {
        let d = self.group;
        let (normalize, eps) = (self.params.normalize_variance, self.params.eps as f64);
        let mut scale = Vec::new();
        // In place the top is the bottom: centre and scale the values where they are.
        let mut values = io.bottom(0).data().to_vec();
        for g in values.chunks_mut(d) {
            let mu = mean(g.iter().map(|&v| v as f64), d);
            let s = if normalize {
                mean(g.iter().map(|&v| (v as f64 - mu).powi(2)), d).sqrt() + eps
            } else {
                1.0
            };
            g.iter_mut()
                .for_each(|v| *v = ((*v as f64 - mu) / s) as f32);
            scale.push(s);
        }
        io.top_mut(0).data_mut().copy_from_slice(&values);
        self.scale = scale;
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
        let d = self.group;
        let y = io.top(0).data().to_vec();
        let mut dx = io.top(0).diff().to_vec();
        for ((dy, y), &s) in dx.chunks_mut(d).zip(y.chunks(d)).zip(&self.scale) {
            let m = mean(dy.iter().map(|&v| v as f64), d);
            if self.params.normalize_variance {
                let my = mean(dy.iter().zip(y).map(|(&g, &v)| g as f64 * v as f64), d);
                for (g, &v) in dy.iter_mut().zip(y) {
                    *g = ((*g as f64 - m - v as f64 * my) / s) as f32;
                }
            } else {
                dy.iter_mut().for_each(|g| *g = (*g as f64 - m) as f32);
            }
        }
        io.bottom_mut(0).diff_mut().copy_from_slice(&dx);
        Ok(())
    }
}
