//! PReLU: y = max(x, 0) + a_c·min(x, 0), one slope per channel (axis 1) or one shared.
//! Backward: dx = dy where x > 0, a_c·dy otherwise; da_c += Σ_{x ≤ 0} dy·x.
//! In place, x is gone after forward. With every slope positive it is
//! recovered from y (x = y where y > 0, y/a_c otherwise), which saves a copy
//! of the whole input; otherwise, or when a later in-place layer rewrites y
//! before this backward, forward keeps a copy of x.

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
    /// The input of the last forward when running in place and x cannot be
    /// recovered from y (empty otherwise).
    saved_input: Vec<f32>,
    /// A later in-place layer rewrites this layer's top before its backward.
    top_rewritten: bool,
}

/// Planes per parallel task at least, so tiny planes are not scheduled one by one.
const MIN_PLANES: usize = 8;

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    let p: PReLUParams = def.params("prelu_param")?;
    p.filler.validate(def, "prelu_param", "filler")?;
    Ok(Box::new(PReLULayer {
        params: p,
        channels: 0,
        saved_input: Vec::new(),
        top_rewritten: false,
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

    fn set_top_rewritten_later(&mut self, rewritten: bool) {
        self.top_rewritten = rewritten;
    }

    /// Per (n, c) plane: y = x where x > 0, a_c·x otherwise.
    fn forward(&mut self, io: &mut LayerIo, _ctx: &mut RunCtx) -> Result<(), String> {
        let recoverable = !self.top_rewritten && io.param(0).data().iter().all(|&a| a > 0.0);
        if io.in_place(0) && !recoverable {
            self.saved_input.clear();
            self.saved_input.extend_from_slice(io.bottom(0).data());
        } else {
            self.saved_input = Vec::new();
        }
        io.copy_bottom_data_to_top(0);
        let (dim, channels, shared) = (
            io.bottom(0).count_from(2).max(1),
            self.channels,
            self.params.channel_shared,
        );
        let (top, slopes) = io.top_mut_and_param(0, 0);
        let slopes = slopes.data();
        top.data_mut()
            .par_chunks_mut(dim)
            .with_min_len(MIN_PLANES)
            .enumerate()
            .for_each(|(p, plane)| {
                let a = slopes[if shared { 0 } else { p % channels }];
                plane
                    .iter_mut()
                    .for_each(|v| *v = if *v > 0.0 { *v } else { a * *v });
            });
        Ok(())
    }

    /// With every slope positive, both da and the x ≤ 0 test are taken from y
    /// (x ≤ 0 ⇔ y ≤ 0, and dy·x = dy·y/a_c), in place or not, so both give
    /// identical results; otherwise from x (kept when in place).
    fn backward(
        &mut self,
        io: &mut LayerIo,
        propagate_down: &[bool],
        _ctx: &mut RunCtx,
    ) -> Result<(), String> {
        let (dim, channels, shared) = (
            io.bottom(0).count_from(2).max(1),
            self.channels,
            self.params.channel_shared,
        );
        let slopes = io.param(0).data().to_vec();
        let slope = |p: usize| slopes[if shared { 0 } else { p % channels }];
        let saved = std::mem::take(&mut self.saved_input);
        let from_output = (saved.is_empty() || !io.in_place(0))
            && !self.top_rewritten
            && slopes.iter().all(|&a| a > 0.0);
        let in_place = io.in_place(0);
        io.copy_top_diff_to_bottom(0);
        // `source` is y (from_output) or x; d holds dy and becomes dx.
        let mut per_plane: Vec<f64> = Vec::new();
        let down = propagate_down[0];
        let mut run = |source: &[f32], d: &mut [f32]| {
            per_plane = d
                .par_chunks_mut(dim)
                .zip(source.par_chunks(dim))
                .with_min_len(MIN_PLANES)
                .enumerate()
                .map(|(p, (dy, vs))| {
                    let a = slope(p);
                    let s = negative_part(dy, vs, a, down);
                    if from_output {
                        s / a as f64
                    } else {
                        s
                    }
                })
                .collect();
        };
        if in_place {
            let (data, d) = io.bottom_mut(0).data_and_diff_mut();
            run(if from_output { data } else { &saved }, d);
        } else if from_output {
            let (top, bottom) = io.top_and_bottom_mut(0, 0);
            run(top.data(), bottom.diff_mut());
        } else {
            let (x, d) = io.bottom_mut(0).data_and_diff_mut();
            run(x, d);
        }
        let da = io.param_mut(0).diff_mut();
        for (p, v) in per_plane.into_iter().enumerate() {
            da[if shared { 0 } else { p % channels }] += v as f32;
        }
        self.saved_input = saved;
        Ok(())
    }
}

/// Over one plane: returns Σ_{v ≤ 0} dy·v and, when `down`, scales dy by `a`
/// where v ≤ 0. Sums run in 16 f32 lanes (at most a few hundred terms each,
/// so f32 is exact enough) that are added in f64; branch-free so it vectorises.
fn negative_part(dy: &mut [f32], source: &[f32], a: f32, down: bool) -> f64 {
    const LANES: usize = 16;
    let mut lanes = [0.0f32; LANES];
    let mut dy_chunks = dy.chunks_exact_mut(LANES);
    let mut v_chunks = source.chunks_exact(LANES);
    for (g, v) in (&mut dy_chunks).zip(&mut v_chunks) {
        for i in 0..LANES {
            let neg = v[i] <= 0.0;
            lanes[i] += if neg { g[i] * v[i] } else { 0.0 };
            if down {
                g[i] = if neg { g[i] * a } else { g[i] };
            }
        }
    }
    let mut sum: f64 = lanes.iter().map(|&l| l as f64).sum();
    for (g, &v) in dy_chunks
        .into_remainder()
        .iter_mut()
        .zip(v_chunks.remainder())
    {
        if v <= 0.0 {
            sum += *g as f64 * v as f64;
            if down {
                *g *= a;
            }
        }
    }
    sum
}
