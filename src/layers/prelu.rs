//! PReLU: y = max(x, 0) + a_c·min(x, 0), one slope per channel (axis 1) or one shared.
//! Backward: dx = dy where x > 0, a_c·dy otherwise; da_c += Σ_{x ≤ 0} dy·x.
//! In place, x is gone after forward. With every slope positive it is
//! recovered from y (x = y where y > 0, y/a_c otherwise), which saves a copy
//! of the whole input; otherwise, or when a later in-place layer rewrites y
//! before this backward, forward keeps a copy of x.

use super::filler::{fill, FillerParams};
use super::{count, rows, Arity, BuildContext, Layer, Shape, ShapeError};
use crate::blob::Blob;
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::LayerDef;
use crate::philox::ParamStreams;
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

    fn fill_params(&self, params: &mut [Blob], streams: &ParamStreams) {
        fill(&self.params.filler, &mut params[0], streams.blob(0));
    }

    fn set_top_rewritten_later(&mut self, rewritten: bool) {
        self.top_rewritten = rewritten;
    }

    /// Per (n, c) plane: y = x where x > 0, a_c·x otherwise; one parallel pass.
    fn forward(&mut self, io: &mut LayerIo, _ctx: &mut RunCtx) -> Result<(), String> {
        let recoverable = !self.top_rewritten && io.param(0).data().iter().all(|&a| a > 0.0);
        if io.in_place(0) && !recoverable {
            self.saved_input.clear();
            self.saved_input.extend_from_slice(io.bottom(0).data());
        } else {
            self.saved_input = Vec::new();
        }
        let dim = io.bottom(0).count_from(2).max(1);
        let slopes = io.param(0).data().to_vec();
        let (channels, shared) = (self.channels, self.params.channel_shared);
        let slope = |c: usize| slopes[if shared { 0 } else { c }];
        let activate = |x: f32, a: f32| if x > 0.0 { x } else { a * x };
        if io.in_place(0) {
            rows::for_rows(io.top_mut(0).data_mut(), channels, dim, |c, y| {
                let a = slope(c);
                y.iter_mut().for_each(|v| *v = activate(*v, a));
            });
        } else {
            let (bottom, top) = io.bottom_and_top_mut(0, 0);
            rows::for_rows_with(top.data_mut(), bottom.data(), channels, dim, |c, y, x| {
                let a = slope(c);
                y.iter_mut().zip(x).for_each(|(v, &x)| *v = activate(x, a));
            });
        }
        Ok(())
    }

    /// With every slope positive, both da and the x ≤ 0 test are taken from y
    /// (x ≤ 0 ⇔ y ≤ 0, and dy·x = dy·y/a_c), in place or not, so both give
    /// identical results; otherwise from x (kept when in place). One parallel
    /// pass over the planes; per-plane sums are added into da in order.
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
        let in_place = io.in_place(0);
        let from_output = (saved.is_empty() || !in_place)
            && !self.top_rewritten
            && slopes.iter().all(|&a| a > 0.0);
        let down = propagate_down[0];
        // `source` is y (from_output) or x; `dy` is the top's diff when not in
        // place; `target` (bottom diff) holds dy in place and receives dx.
        let per_plane = |source: &[f32], dy: Option<&[f32]>, target: Option<&mut [f32]>| {
            let plane = |p: usize, d: Option<&mut [f32]>| {
                let span = p * dim..(p + 1) * dim;
                let (v, a) = (&source[span.clone()], slope(p));
                match (d, dy) {
                    (Some(d), dy) if down => {
                        if let Some(dy) = dy {
                            // The plane stays in cache between the two steps.
                            d.copy_from_slice(&dy[span]);
                        }
                        scale_negative(d, v, a)
                    }
                    (Some(d), _) => negative_sum(d, v),
                    (None, Some(dy)) => negative_sum(&dy[span], v),
                    (None, None) => 0.0, // not in place always passes dy
                }
            };
            let (planes, tasks) = (source.len() / dim, rows::rows_per_task(dim));
            let serial = source.len() <= rows::SERIAL_MAX;
            match target {
                Some(d) if serial => d
                    .chunks_mut(dim)
                    .enumerate()
                    .map(|(p, d)| plane(p, Some(d)))
                    .collect(),
                Some(d) => d
                    .par_chunks_mut(dim)
                    .with_min_len(tasks)
                    .enumerate()
                    .map(|(p, d)| plane(p, Some(d)))
                    .collect(),
                None if serial => (0..planes).map(|p| plane(p, None)).collect(),
                None => (0..planes)
                    .into_par_iter()
                    .with_min_len(tasks)
                    .map(|p| plane(p, None))
                    .collect::<Vec<f64>>(),
            }
        };
        let per_plane: Vec<f64> = if in_place {
            let (data, d) = io.bottom_mut(0).data_and_diff_mut();
            per_plane(if from_output { data } else { &saved[..] }, None, Some(d))
        } else {
            let (top, bottom) = io.top_and_bottom_mut(0, 0);
            let (x, dx) = bottom.data_and_diff_mut();
            let source = if from_output { top.data() } else { x };
            per_plane(source, Some(top.diff()), down.then_some(dx))
        };
        let da = io.param_mut(0).diff_mut();
        for (p, s) in per_plane.into_iter().enumerate() {
            let a = slope(p);
            da[if shared { 0 } else { p % channels }] +=
                if from_output { s / a as f64 } else { s } as f32;
        }
        self.saved_input = saved;
        Ok(())
    }
}

/// Lanes of the per-plane sums: f32 partial sums (at most a few hundred terms
/// each), added in f64 at the end. The loops are branch-free so they vectorise.
const LANES: usize = 16;

/// One step of [`scale_negative`]: acc += g·min(v, 0), g ← g·(1 where v > 0, else a).
#[inline(always)]
fn step(acc: &mut [f32; LANES], g: &mut [f32; LANES], v: &[f32; LANES], a: f32) {
    for i in 0..LANES {
        acc[i] += g[i] * v[i].min(0.0);
        g[i] *= if v[i] > 0.0 { 1.0 } else { a };
    }
}

/// Over one plane: returns Σ_{v ≤ 0} dy·v and scales dy (in `d`) by `a` where v ≤ 0.
fn scale_negative(d: &mut [f32], source: &[f32], a: f32) -> f64 {
    let mut acc = [0.0f32; LANES];
    let mut g = d.chunks_exact_mut(LANES);
    let mut v = source.chunks_exact(LANES);
    for (g, v) in (&mut g).zip(&mut v) {
        step(&mut acc, g.try_into().unwrap(), v.try_into().unwrap(), a);
    }
    // The tail, zero-padded (a zero v adds nothing).
    let (gr, vr) = (g.into_remainder(), v.remainder());
    let (mut gp, mut vp) = ([0.0f32; LANES], [0.0f32; LANES]);
    gp[..gr.len()].copy_from_slice(gr);
    vp[..vr.len()].copy_from_slice(vr);
    step(&mut acc, &mut gp, &vp, a);
    gr.copy_from_slice(&gp[..gr.len()]);
    acc.iter().map(|&l| l as f64).sum()
}

/// Σ_{v ≤ 0} dy·v over one plane, summed as [`scale_negative`] sums it.
fn negative_sum(dy: &[f32], source: &[f32]) -> f64 {
    let mut acc = [0.0f32; LANES];
    let (g, v) = (dy.chunks_exact(LANES), source.chunks_exact(LANES));
    let (gr, vr) = (g.remainder(), v.remainder());
    for (g, v) in g.zip(v) {
        for i in 0..LANES {
            acc[i] += g[i] * v[i].min(0.0);
        }
    }
    for (i, (&g, &v)) in gr.iter().zip(vr).enumerate() {
        acc[i] += g * v.min(0.0);
    }
    acc.iter().map(|&l| l as f64).sum()
}
