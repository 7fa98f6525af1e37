//! BN (the batch-normalisation layer of the L-Softmax fork, wy1iu/LargeMargin_Softmax_Loss,
//! after Ioffe & Szegedy 2015): normalisation with a learned per-channel slope and bias in
//! one layer. Legend: x viewed as N × C × S (S = spatial size, 1 for N×C); γ slope, β
//! bias (blobs 0, 1, shape 1×C); μ̄ running mean and ρ̄ running INVERSE standard
//! deviation (blobs 2, 3, shape 1×C, initialised 0 and 1, lr_mult 0 unless given).
//!
//! Forward, TRAIN and not `frozen`: μ_c = mean of x over N and S, σ²_c the biased
//! variance, ρ_c = (σ²_c + eps)^(−½), x̂ = (x − μ)·ρ, y = γ·x̂ + β; then
//! μ̄ ← momentum·μ̄ + (1 − momentum)·μ and ρ̄ ← momentum·ρ̄ + (1 − momentum)·ρ (the fork
//! averages the inverse std, not the variance).
//! TEST phase or `frozen: true`: x̂ = (x − μ̄)·ρ̄, y = γ·x̂ + β, statistics untouched.
//! Backward (g = dy, R = N·S values per channel): dγ_c += Σ g·x̂, dβ_c += Σ g;
//!   batch statistics: dx = γ·ρ·(g − Σg/R − x̂·Σ(g·x̂)/R);  frozen/TEST: dx = γ·ρ̄·g.
//! `engine` is accepted and ignored. Works in place (backward keeps x̂).

use super::filler::{fill, FillerParams};
use super::rows::{channel_sums, for_rows, for_rows_with};
use super::{count, fmt_shape, Arity, BuildContext, Layer, Shape, ShapeError};
use crate::blob::Blob;
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::{LayerDef, ParamSpec, Phase};
use crate::philox::ParamStreams;
use serde::Deserialize;

/// `BNParameter.Engine`: DEFAULT = 0, CAFFE = 1, CUDNN = 2 (all the same here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BnEngine {
    #[default]
    Default,
    Caffe,
    Cudnn,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BnParams {
    /// Initial γ (Caffe's default filler: constant 0; configs give 1).
    pub slope_filler: FillerParams,
    pub bias_filler: FillerParams,
    pub momentum: f32,
    pub eps: f32,
    /// Use the running statistics in TRAIN too.
    pub frozen: bool,
    pub engine: BnEngine,
}

impl Default for BnParams {
    fn default() -> Self {
        BnParams {
            slope_filler: FillerParams::default(),
            bias_filler: FillerParams::default(),
            momentum: 0.9,
            eps: 1e-5,
            frozen: false,
            engine: BnEngine::Default,
        }
    }
}

pub struct BnLayer {
    pub params: BnParams,
    channels: usize,
    /// (N, C, S) of the last reshape.
    dims: [usize; 3],
    /// x̂ and the ρ used by the last forward, and whether it used batch statistics.
    x_hat: Vec<f32>,
    inv_std: Vec<f64>,
    batch_stats: bool,
}

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    let p: BnParams = def.params("bn_param")?;
    p.slope_filler.validate(def, "bn_param", "slope_filler")?;
    p.bias_filler.validate(def, "bn_param", "bias_filler")?;
    Ok(Box::new(BnLayer {
        params: p,
        channels: 0,
        dims: [0; 3],
        x_hat: Vec::new(),
        inv_std: Vec::new(),
        batch_stats: false,
    }))
}

impl Layer for BnLayer {
    fn type_name(&self) -> &'static str {
        "BN"
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
        let b = &bottom[0];
        if b.len() < 2 {
            return Err(ShapeError::at_bottom(
                0,
                format!("needs N×C(×H×W), got {}", fmt_shape(b)),
            ));
        }
        if self.channels != 0 && self.channels != b[1] {
            return Err(ShapeError::at_bottom(
                0,
                format!("channels changed from {} to {}", self.channels, b[1]),
            ));
        }
        self.channels = b[1];
        self.dims = [b[0], b[1], count(&b[2..])];
        Ok(vec![b.clone()])
    }

    fn param_shapes(&self) -> Vec<Shape> {
        vec![vec![1, self.channels]; 4]
    }

    fn flops(&self, bottom: &[Shape], _top: &[Shape]) -> u64 {
        4 * count(&bottom[0]) as u64
    }

    fn default_param_spec(&self, index: usize) -> ParamSpec {
        if index >= 2 {
            ParamSpec {
                lr_mult: 0.0,
                decay_mult: 0.0,
                ..ParamSpec::default()
            }
        } else {
            ParamSpec::default()
        }
    }

    fn param_diff_is_gradient(&self, index: usize) -> bool {
        index < 2
    }

    fn fill_params(&self, params: &mut [Blob], streams: &ParamStreams) {
        fill(&self.params.slope_filler, &mut params[0], streams.blob(0));
        fill(&self.params.bias_filler, &mut params[1], streams.blob(1));
        params[2].data_mut().fill(0.0);
        params[3].data_mut().fill(1.0);
    }

    fn forward(&mut self, io: &mut LayerIo, ctx: &mut RunCtx) -> Result<(), String> {
        let [n, c, s] = self.dims;
        let r = (n * s).max(1) as f64;
        self.batch_stats = ctx.phase == Phase::Train && !self.params.frozen;
        let (mean, inv): (Vec<f64>, Vec<f64>) = if self.batch_stats {
            let x = io.bottom(0).data();
            let mean: Vec<f64> = channel_sums(x, x, c, s, |v, _| v as f64)
                .iter()
                .map(|v| v / r)
                .collect();
            let sq = channel_sums(x, x, c, s, |v, _| v as f64 * v as f64);
            let eps = self.params.eps as f64;
            let inv = sq
                .iter()
                .zip(&mean)
                .map(|(q, m)| ((q / r - m * m).max(0.0) + eps).powf(-0.5))
                .collect();
            (mean, inv)
        } else {
            let to64 = |b: &Blob| b.data().iter().map(|&v| v as f64).collect::<Vec<f64>>();
            (to64(io.param(2)), to64(io.param(3)))
        };
        if self.batch_stats {
            let mo = self.params.momentum as f64;
            for (blob, stat) in [(2, &mean), (3, &inv)] {
                let run = io.param_mut(blob).data_mut();
                run.iter_mut()
                    .zip(stat.iter())
                    .for_each(|(v, &b)| *v = (mo * *v as f64 + (1.0 - mo) * b) as f32);
            }
        }
        let gamma = io.param(0).data().to_vec();
        let beta = io.param(1).data().to_vec();
        io.copy_bottom_data_to_top(0);
        self.x_hat.resize(n * c * s, 0.0);
        let y = io.top_mut(0).data_mut();
        for_rows(y, c, s, |d, row| {
            row.iter_mut()
                .for_each(|v| *v = ((*v as f64 - mean[d]) * inv[d]) as f32);
        });
        self.x_hat.copy_from_slice(y);
        for_rows(y, c, s, |d, row| {
            row.iter_mut().for_each(|v| *v = gamma[d] * *v + beta[d])
        });
        self.inv_std = inv;
        Ok(())
    }

    fn backward(
        &mut self,
        io: &mut LayerIo,
        propagate_down: &[bool],
        _ctx: &mut RunCtx,
    ) -> Result<(), String> {
        let [n, c, s] = self.dims;
        let r = (n * s).max(1) as f64;
        let g = io.top(0).diff().to_vec();
        let sum_g = channel_sums(&g, &g, c, s, |v, _| v as f64);
        let sum_gx = channel_sums(&g, &self.x_hat, c, s, |v, x| v as f64 * x as f64);
        for (blob, sums) in [(0, &sum_gx), (1, &sum_g)] {
            let d = io.param_mut(blob).diff_mut();
            d.iter_mut()
                .zip(sums.iter())
                .for_each(|(a, &v)| *a = (*a as f64 + v) as f32);
        }
        if !propagate_down[0] {
            return Ok(());
        }
        let gamma = io.param(0).data().to_vec();
        let inv = &self.inv_std;
        let batch = self.batch_stats;
        let dx = io.bottom_mut(0).diff_mut();
        dx.copy_from_slice(&g);
        for_rows_with(dx, &self.x_hat, c, s, |d, row, xh| {
            let k = gamma[d] as f64 * inv[d];
            for (v, &x) in row.iter_mut().zip(xh) {
                let gv = *v as f64;
                *v = match batch {
                    true => (k * (gv - sum_g[d] / r - x as f64 * sum_gx[d] / r)) as f32,
                    false => (k * gv) as f32,
                };
            }
        });
        Ok(())
    }
}
