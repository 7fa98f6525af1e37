//! BatchNorm: y = (x − μ_c)/√(σ²_c + ε), per channel c over N and all spatial positions.
//! Legend: N batch, C channels (axis 1), M = N·(spatial size) values per channel.
//! TRAIN (batch statistics): μ, σ² of the batch; running sums s ← λs + 1, m ← λm + μ,
//! v ← λv + M/(M − 1)·σ², λ = moving_average_fraction. Global statistics: μ = m/s, σ² = v/s
//! (s = 0 reads as μ = σ² = 0). y = (x − μ)/√(σ² + ε).
//! Backward, batch statistics: dx = (dy − mean(dy) − y·mean(dy·y))/√(σ² + ε), means per
//! channel over N and space; global statistics: dx = dy/√(σ² + ε). The blobs are not
//! gradients and get lr_mult 0. No affine part: Caffe follows BatchNorm with a Scale layer.

use super::rows::{channel_sums, for_rows, for_rows_with};
use super::{count, fmt_shape, Arity, BuildContext, Layer, Shape, ShapeError};
use crate::blob::Blob;
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::{LayerDef, ParamSpec, Phase};
use crate::philox::ParamStreams;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BatchNormParams {
    /// Use the stored statistics instead of the batch's; default: true in TEST, false in TRAIN.
    pub use_global_stats: Option<bool>,
    pub moving_average_fraction: f32,
    pub eps: f32,
}

impl Default for BatchNormParams {
    fn default() -> Self {
        BatchNormParams {
            use_global_stats: None,
            moving_average_fraction: 0.999,
            eps: 1e-5,
        }
    }
}

pub struct BatchNormLayer {
    pub params: BatchNormParams,
    /// `use_global_stats` resolved against the phase.
    pub use_global_stats: bool,
    /// C, fixed at the first reshape.
    pub channels: usize,
    /// y of the last forward (a later in-place layer may overwrite the top).
    normalized: Vec<f32>,
    /// 1/√(σ² + ε) per channel from the last forward.
    inv_std: Vec<f32>,
}

pub fn build(def: &LayerDef, ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    let p: BatchNormParams = def.params("batch_norm_param")?;
    // The three blobs hold running statistics that the solver must not update.
    if let Some(i) = def.param.iter().position(|s| s.lr_mult != 0.0) {
        return Err(def
            .error(
                def.field_span("param", i),
                format!(
                    "{}: blob {i} holds running statistics, so its `lr_mult` must be 0, found {}",
                    def.describe(),
                    def.param[i].lr_mult
                ),
            )
            .with_help("write `param { lr_mult: 0 }` or leave the `param` blocks out"));
    }
    let use_global_stats = p.use_global_stats.unwrap_or(ctx.phase == Phase::Test);
    Ok(Box::new(BatchNormLayer {
        params: p,
        use_global_stats,
        channels: 0,
        normalized: Vec::new(),
        inv_std: Vec::new(),
    }))
}

impl Layer for BatchNormLayer {
    fn type_name(&self) -> &'static str {
        "BatchNorm"
    }
    fn bottoms(&self) -> Arity {
        Arity::exactly(1)
    }
    fn tops(&self) -> Arity {
        Arity::exactly(1)
    }

    fn reshape(&mut self, bottom: &[Shape]) -> Result<Vec<Shape>, ShapeError> {
        let b = &bottom[0];
        // A 1-axis bottom (N values) is one channel.
        let channels = match b.len() {
            0 => {
                return Err(ShapeError::at_bottom(
                    0,
                    format!("needs at least 1 axis, got {}", fmt_shape(b)),
                ))
            }
            1 => 1,
            _ => b[1],
        };
        if self.channels != 0 && self.channels != channels {
            return Err(ShapeError::at_bottom(
                0,
                format!("channels changed from {} to {channels}", self.channels),
            ));
        }
        self.channels = channels;
        Ok(vec![b.clone()])
    }

    /// Mean [C], variance [C], scale factor s [1].
    fn param_shapes(&self) -> Vec<Shape> {
        vec![vec![self.channels], vec![self.channels], vec![1]]
    }

    /// Subtract and multiply per element; the statistics pass is not counted.
    fn flops(&self, bottom: &[Shape], _top: &[Shape]) -> u64 {
        2 * count(&bottom[0]) as u64
    }

    fn supports_in_place(&self) -> bool {
        true
    }

    fn fill_params(&self, params: &mut [Blob], _streams: &ParamStreams) {
        params.iter_mut().for_each(|p| p.data_mut().fill(0.0));
    }

    fn param_diff_is_gradient(&self, _index: usize) -> bool {
        false
    }

    fn default_param_spec(&self, _index: usize) -> ParamSpec {
        ParamSpec {
            lr_mult: 0.0,
            decay_mult: 0.0,
            ..ParamSpec::default()
        }
    }

    fn forward(&mut self, io: &mut LayerIo, _ctx: &mut RunCtx) -> Result<(), String> {
        let c = self.channels;
        let x = io.bottom(0);
        let inner = x.count() / (x.dim(0) * c).max(1);
        let m = x.count() / c.max(1);
        let x = x.data();
        let stats = if self.use_global_stats {
            let s = io.param(2).data()[0];
            let k = if s == 0.0 { 0.0 } else { 1.0 / s };
            let scaled =
                |p: usize| -> Vec<f32> { io.param(p).data().iter().map(|&v| v * k).collect() };
            Some((scaled(0), scaled(1)))
        } else {
            None
        };
        let mean: Vec<f32> = match &stats {
            Some((mean, _)) => mean.clone(),
            None => channel_sums(x, x, c, inner, |v, _| v as f64)
                .iter()
                .map(|&s| (s / m as f64) as f32)
                .collect(),
        };
        io.copy_bottom_data_to_top(0);
        let y = io.top_mut(0).data_mut();
        for_rows(y, c, inner, |d, row| {
            row.iter_mut().for_each(|v| *v -= mean[d])
        });
        let var: Vec<f32> = match stats {
            Some((_, var)) => var,
            None => {
                let var: Vec<f32> = channel_sums(y, y, c, inner, |v, _| v as f64 * v as f64)
                    .iter()
                    .map(|&s| (s / m as f64) as f32)
                    .collect();
                self.update_running(io, &mean, &var, m);
                var
            }
        };
        let eps = self.params.eps;
        self.inv_std = var.iter().map(|&v| 1.0 / (v + eps).sqrt()).collect();
        let inv_std = &self.inv_std;
        let y = io.top_mut(0).data_mut();
        for_rows(y, c, inner, |d, row| {
            row.iter_mut().for_each(|v| *v *= inv_std[d])
        });
        self.normalized.clear();
        self.normalized.extend_from_slice(y);
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
        let c = self.channels;
        let inner = self.normalized.len() / (io.bottom(0).dim(0) * c).max(1);
        let m = (self.normalized.len() / c.max(1)) as f64;
        let y = &self.normalized;
        let inv_std = &self.inv_std;
        if self.use_global_stats {
            io.copy_top_diff_to_bottom(0);
            let dx = io.bottom_mut(0).diff_mut();
            for_rows(dx, c, inner, |d, row| {
                row.iter_mut().for_each(|g| *g *= inv_std[d])
            });
            return Ok(());
        }
        let dy = io.top(0).diff();
        let mean_dy: Vec<f32> = channel_sums(dy, dy, c, inner, |g, _| g as f64)
            .iter()
            .map(|&s| (s / m) as f32)
            .collect();
        let mean_dy_y: Vec<f32> = channel_sums(dy, y, c, inner, |g, v| g as f64 * v as f64)
            .iter()
            .map(|&s| (s / m) as f32)
            .collect();
        io.copy_top_diff_to_bottom(0);
        let dx = io.bottom_mut(0).diff_mut();
        for_rows_with(dx, y, c, inner, |d, row, ys| {
            for (g, &v) in row.iter_mut().zip(ys) {
                *g = (*g - mean_dy[d] - v * mean_dy_y[d]) * inv_std[d];
            }
        });
        Ok(())
    }
}

impl BatchNormLayer {
    /// s ← λs + 1, m ← μ + λm, v ← M/(M − 1)·σ² + λv (M = values per channel).
    fn update_running(&self, io: &mut LayerIo, mean: &[f32], var: &[f32], m: usize) {
        let lambda = self.params.moving_average_fraction;
        let correction = if m > 1 {
            m as f32 / (m - 1) as f32
        } else {
            1.0
        };
        let s = &mut io.param_mut(2).data_mut()[0];
        *s = *s * lambda + 1.0;
        for (r, &v) in io.param_mut(0).data_mut().iter_mut().zip(mean) {
            *r = v + lambda * *r;
        }
        for (r, &v) in io.param_mut(1).data_mut().iter_mut().zip(var) {
            *r = correction * v + lambda * *r;
        }
    }
}
