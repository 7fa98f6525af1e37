//! PReLU: y = max(x, 0) + a_c·min(x, 0), one slope per channel (axis 1) or one shared.
//! Backward: dx = dy where x > 0, a_c·dy otherwise; da_c += Σ_{x ≤ 0} dy·x.
//! In place, x is gone after forward, so forward keeps a copy of it.

use super::filler::{fill, FillerParams};
use super::{count, Arity, BuildContext, Layer, Shape, ShapeError};
use crate::blob::Blob;
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, Rng, RunCtx};
use crate::netdef::LayerDef;
use rayon::prelude::*;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PReLUParams {
    /// Slope initialisation; Caffe's default is constant 0.25.
    pub filler: FillerParams,
    pub channel_shared: bool,
}

impl Default for PReLUParams {
    fn default() -> Self {
        PReLUParams {
            filler: FillerParams {
                value: 0.25,
                ..FillerParams::default()
            },
            channel_shared: false,
        }
    }
}

pub struct PReLULayer {
    pub params: PReLUParams,
    pub channels: usize,
    /// The input of the last forward when running in place.
    saved_input: Vec<f32>,
}

/// Elements per parallel task: large enough to amortise scheduling.
const CHUNK: usize = 1 << 14;

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    let p: PReLUParams = def.params("prelu_param")?;
    p.filler.validate(def, "prelu_param", "filler")?;
    Ok(Box::new(PReLULayer {
        params: p,
        channels: 0,
        saved_input: Vec::new(),
    }))
}

impl Layer for PReLULayer {
    fn type_name(&self) -> &'static str {
        "PReLU"
    }
    fn bottoms(&self) -> Arity {
        Arity::exactly(1)
    }
    fn tops(&self) -> Arity {
        Arity::exactly(1)
    }

    fn reshape(&mut self, bottom: &[Shape]) -> Result<Vec<Shape>, ShapeError> {
        let b = &bottom[0];
        if b.len() < 2 {
            return Err(ShapeError::at_bottom(
                0,
                format!("needs at least 2 axes, got {}", super::fmt_shape(b)),
            ));
        }
        self.channels = b[1];
        Ok(vec![b.clone()])
    }

    fn param_shapes(&self) -> Vec<Shape> {
        vec![if self.params.channel_shared {
            vec![1]
        } else {
            vec![self.channels]
        }]
    }

    fn flops(&self, bottom: &[Shape], _top: &[Shape]) -> u64 {
        2 * count(&bottom[0]) as u64
    }

    fn supports_in_place(&self) -> bool {
        true
    }

    fn fill_params(&self, params: &mut [Blob], rng: &mut Rng) {
        fill(&self.params.filler, &mut params[0], rng);
    }

    fn forward(&mut self, io: &mut LayerIo, _ctx: &mut RunCtx) -> Result<(), String> {
        if io.in_place(0) {
            self.saved_input.clear();
            self.saved_input.extend_from_slice(io.bottom(0).data());
        }
        io.copy_bottom_data_to_top(0);
        let (dim, channels, shared) = (
            io.bottom(0).count_from(2),
            self.channels,
            self.params.channel_shared,
        );
        let (top, slopes) = io.top_mut_and_param(0, 0);
        let slopes = slopes.data();
        // y ← a_c·y where y ≤ 0, y starting as a copy of x.
        top.data_mut()
            .par_chunks_mut(CHUNK)
            .enumerate()
            .for_each(|(ci, part)| {
                for (j, v) in part.iter_mut().enumerate() {
                    if *v <= 0.0 {
                        *v *= slopes[if shared {
                            0
                        } else {
                            ((ci * CHUNK + j) / dim) % channels
                        }];
                    }
                }
            });
        Ok(())
    }

    fn backward(
        &mut self,
        io: &mut LayerIo,
        propagate_down: &[bool],
        _ctx: &mut RunCtx,
    ) -> Result<(), String> {
        let (dim, channels, shared) = (
            io.bottom(0).count_from(2),
            self.channels,
            self.params.channel_shared,
        );
        let channel = move |i: usize| if shared { 0 } else { (i / dim) % channels };
        let in_place = io.in_place(0);
        io.copy_top_diff_to_bottom(0);
        let saved = std::mem::take(&mut self.saved_input);
        let slopes = io.param(0).data().to_vec();
        let (bottom, params) = io.bottom_and_param_mut(0, 0);
        let (x, d) = bottom.data_and_diff_mut();
        let x: &[f32] = if in_place { &saved } else { x };
        // da_c += Σ_{x ≤ 0} dy·x, per task in f64; d holds dy here.
        let partial: Vec<Vec<f64>> = d
            .par_chunks(CHUNK)
            .zip(x.par_chunks(CHUNK))
            .enumerate()
            .map(|(ci, (dy, xs))| {
                let mut acc = vec![0.0f64; if shared { 1 } else { channels }];
                for (j, (&g, &xv)) in dy.iter().zip(xs).enumerate() {
                    if xv <= 0.0 {
                        acc[channel(ci * CHUNK + j)] += (g * xv) as f64;
                    }
                }
                acc
            })
            .collect();
        for acc in partial {
            params
                .diff_mut()
                .iter_mut()
                .zip(acc)
                .for_each(|(a, v)| *a += v as f32);
        }
        if propagate_down[0] {
            // dx = dy where x > 0, a_c·dy otherwise, rewriting d in place.
            d.par_chunks_mut(CHUNK)
                .zip(x.par_chunks(CHUNK))
                .enumerate()
                .for_each(|(ci, (ds, xs))| {
                    for (j, (g, &xv)) in ds.iter_mut().zip(xs).enumerate() {
                        if xv <= 0.0 {
                            *g *= slopes[channel(ci * CHUNK + j)];
                        }
                    }
                });
        }
        self.saved_input = saved;
        Ok(())
    }
}
