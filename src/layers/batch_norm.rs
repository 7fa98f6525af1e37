//! BatchNorm: y = (x − μ_c)/√(σ²_c + ε), per channel c over N and all spatial positions.
//! Legend: N batch, C channels (axis 1), M = N·(spatial size) values per channel.
//! TRAIN (batch statistics): μ, σ² of the batch; running sums s ← λs + 1, m ← λm + μ,
//! v ← λv + M/(M − 1)·σ², λ = moving_average_fraction. Global statistics: μ = m/s, σ² = v/s.
//! No affine part: Caffe follows BatchNorm with a Scale layer (`bias_term: true`).

use super::{count, fmt_shape, Arity, BuildContext, Layer, Shape, ShapeError};
use crate::error::Diagnostic;
use crate::netdef::{LayerDef, Phase};
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
}
