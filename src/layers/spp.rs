//! SPP: spatial pyramid pooling, a fixed-length vector from any H × W.
//! Legend: bottom N × C × H × W; levels l = 0 … pyramid_height − 1 with b = 2^l bins per axis.
//! Level l pools each plane with, per axis, kernel k = ⌈H/b⌉, stride k, pad ⌊(k·b − H + 1)/2⌋,
//! Pooling's CEIL rule and window clipping (see pooling/kernels.rs), giving ph × pw outputs.
//! Top: N × Σ_l C·ph_l·pw_l, level by level, each level flattened as C × ph × pw;
//! with pyramid_height 1, the single level's N × C × ph × pw (as Caffe).
//! Backward: each level's pooling backward; the bottom diff is their sum.

use super::convolution::Engine;
use super::pooling::{pooled_len, Mode, Plane, PoolMethod, RoundMode};
use super::{fmt_shape, Arity, BuildContext, Layer, Shape, ShapeError};
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::LayerDef;
use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SppParams {
    pub pyramid_height: Option<u32>,
    pub pool: PoolMethod,
    /// Accepted for compatibility; netrun has one engine.
    pub engine: Engine,
}

pub struct SppLayer {
    pub params: SppParams,
    height: usize,
    mode: Mode,
    /// One plane geometry per level.
    levels: Vec<Plane>,
    /// N·C planes of H·W values.
    planes: usize,
    channels: usize,
    /// Per level, the chosen input per output (MAX).
    index: Vec<Vec<u32>>,
}

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    let p: SppParams = def.params("spp_param")?;
    let height = super::required(def, p.pyramid_height, "spp_param", "pyramid_height")?;
    let err = |field: &str, m: &str| super::checks::param_error(def, "spp_param", field, m);
    if !(1..=16).contains(&height) {
        return Err(err("pyramid_height", "pyramid_height must be in 1..=16"));
    }
    let mode = match p.pool {
        PoolMethod::Max => Mode::Max,
        PoolMethod::Ave => Mode::Ave,
        PoolMethod::Stochastic => {
            return Err(err(
                "pool",
                "STOCHASTIC pooling is not supported in SPP; use MAX or AVE",
            ))
        }
    };
    Ok(Box::new(SppLayer {
        params: p,
        height: height as usize,
        mode,
        levels: vec![],
        planes: 0,
        channels: 0,
        index: vec![],
    }))
}

impl SppLayer {
    /// Per level, (offset within a sample's top values, level plane).
    fn offsets(&self) -> Vec<usize> {
        let mut at = 0;
        self.levels
            .iter()
            .map(|l| {
                let o = at;
                at += self.channels * l.out_len();
                o
            })
            .collect()
    }

    fn per_sample(&self) -> usize {
        self.levels
            .iter()
            .map(|l| self.channels * l.out_len())
            .sum()
    }
}

impl Layer for SppLayer {
    fn type_name(&self) -> &'static str {
        "SPP"
    }
    fn bottoms(&self) -> Arity {
        Arity::exactly(1)
    }
    fn tops(&self) -> Arity {
        Arity::exactly(1)
    }

    fn reshape(&mut self, bottom: &[Shape]) -> Result<Vec<Shape>, ShapeError> {
        let x = &bottom[0];
        let [n, c, h, w] = x[..] else {
            return Err(ShapeError::at_bottom(
                0,
                format!(
                    "SPP needs a 4-axis N x C x H x W bottom, got {}",
                    fmt_shape(x)
                ),
            ));
        };
        let mut levels = Vec::new();
        for l in 0..self.height {
            let bins = 1usize << l;
            let mut plane = Plane {
                input: [h, w],
                ..Plane::default()
            };
            for (a, len) in [h, w].into_iter().enumerate() {
                let k = len.div_ceil(bins).max(1);
                let pad = (k * bins - len).div_ceil(2);
                let (Some(out), true) = (pooled_len(len, k, k, pad, RoundMode::Ceil), pad < k)
                else {
                    return Err(ShapeError::at_bottom(
                        0,
                        format!(
                            "level {l} ({bins} bins) does not fit the {h}x{w} input: kernel {k}, pad {pad} \
                             (Caffe needs pad < kernel); lower pyramid_height"
                        ),
                    ));
                };
                plane.kernel[a] = k;
                plane.stride[a] = k;
                plane.pad[a] = pad;
                plane.output[a] = out;
            }
            levels.push(plane);
        }
        self.levels = levels;
        self.planes = n * c;
        self.channels = c;
        self.index = self
            .levels
            .iter()
            .map(|l| vec![0; self.planes * l.out_len()])
            .collect();
        if self.height == 1 {
            let o = self.levels[0].output;
            return Ok(vec![vec![n, c, o[0], o[1]]]);
        }
        Ok(vec![vec![n, self.per_sample()]])
    }

    fn forward(&mut self, io: &mut LayerIo, _ctx: &mut RunCtx) -> Result<(), String> {
        let (bottoms, mut tops, _) = io.forward_split();
        let x = bottoms[0].data();
        let y = tops[0].data_mut();
        let (offsets, per) = (self.offsets(), self.per_sample());
        for (l, plane) in self.levels.iter().enumerate() {
            let (ins, outs) = (plane.in_len(), plane.out_len());
            for p in 0..self.planes {
                let (n, c) = (p / self.channels, p % self.channels);
                let at = n * per + offsets[l] + c * outs;
                plane.forward(
                    self.mode,
                    &x[p * ins..(p + 1) * ins],
                    &mut y[at..at + outs],
                    &mut self.index[l][p * outs..(p + 1) * outs],
                    &[],
                );
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
        if !propagate_down[0] {
            return Ok(());
        }
        let (mut bottoms, tops, _) = io.backward_split();
        let dy = tops[0].diff();
        let (x, dx) = bottoms[0].data_and_diff_mut();
        dx.fill(0.0);
        let (offsets, per) = (self.offsets(), self.per_sample());
        let mut part = Vec::new();
        for (l, plane) in self.levels.iter().enumerate() {
            let (ins, outs) = (plane.in_len(), plane.out_len());
            part.resize(ins, 0.0);
            for p in 0..self.planes {
                let (n, c) = (p / self.channels, p % self.channels);
                let at = n * per + offsets[l] + c * outs;
                plane.backward(
                    self.mode,
                    &x[p * ins..(p + 1) * ins],
                    &dy[at..at + outs],
                    &self.index[l][p * outs..(p + 1) * outs],
                    &mut part,
                );
                dx[p * ins..(p + 1) * ins]
                    .iter_mut()
                    .zip(&part)
                    .for_each(|(d, &g)| *d += g);
            }
        }
        Ok(())
    }
}
