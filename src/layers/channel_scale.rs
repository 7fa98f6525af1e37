//! ChannelScale (happynear/caffe-windows; NormFace's feature-norm experiments): scales
//! every channel of each position by a per-position factor given as a second bottom,
//! e.g. multiplying unit features back by their norm. Legend: x bottom 0, N × C × S
//! (S = the product of the axes after 1, 1 for N × C); a bottom 1 with N·S values,
//! a[n, s].
//!
//! Forward: y[n,c,s] = a[n,s]·x[n,c,s]; with `do_forward: false`, y = x.
//! Backward (as the fork, whatever `do_forward` says):
//!   dx[n,c,s] = a[n,s]·dy[n,c,s]  (dx = dy with `do_backward_feature: false`),
//!   da[n,s] = Σ_c x[n,c,s]·dy[n,c,s]  (0 with `do_backward_scale: false`).
//! With the defaults that is the exact gradient. The fork's `global_scale` mode (one
//! stored factor, initialised to −1 and clamped, never learned) is refused.

use super::checks::param_error;
use super::{count, fmt_shape, Arity, BuildContext, Layer, Shape, ShapeError};
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::LayerDef;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChannelScaleParams {
    pub do_forward: bool,
    pub do_backward_feature: bool,
    pub do_backward_scale: bool,
    /// Refused when true.
    pub global_scale: bool,
    pub max_global_scale: f32,
    pub min_global_scale: f32,
    pub init_global_scale: f32,
}

impl Default for ChannelScaleParams {
    fn default() -> Self {
        ChannelScaleParams {
            do_forward: true,
            do_backward_feature: true,
            do_backward_scale: true,
            global_scale: false,
            max_global_scale: 1000.0,
            min_global_scale: 0.0,
            init_global_scale: 1.0,
        }
    }
}

pub struct ChannelScaleLayer {
    pub params: ChannelScaleParams,
    channels: usize,
    spatial: usize,
}

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    const BLOCK: &str = "channel_scale_param";
    let p: ChannelScaleParams = def.params(BLOCK)?;
    if p.global_scale {
        return Err(param_error(
            def,
            BLOCK,
            "global_scale",
            "`global_scale: true` is not supported (the fork's global factor starts at -1, is clamped and never learns)",
        )
        .with_help("scale by a learned scalar with a Scale layer (`scale_param { num_axes: 0 }`) instead"));
    }
    Ok(Box::new(ChannelScaleLayer {
        params: p,
        channels: 0,
        spatial: 0,
    }))
}

impl Layer for ChannelScaleLayer {
    fn type_name(&self) -> &'static str {
        "ChannelScale"
    }
    fn bottoms(&self) -> Arity {
        Arity::exactly(2)
    }
    fn tops(&self) -> Arity {
        Arity::exactly(1)
    }

    fn reshape(&mut self, bottom: &[Shape]) -> Result<Vec<Shape>, ShapeError> {
        let x = &bottom[0];
        if x.len() < 2 {
            return Err(ShapeError::at_bottom(
                0,
                format!("needs N × C (× …) features, got {}", fmt_shape(x)),
            ));
        }
        self.channels = x[1];
        self.spatial = count(&x[2..]);
        if count(&bottom[1]) != x[0] * self.spatial {
            return Err(ShapeError::at_bottom(
                1,
                format!(
                    "scale bottom 1 has shape {} but bottom 0 {} needs {} values (N × positions)",
                    fmt_shape(&bottom[1]),
                    fmt_shape(x),
                    x[0] * self.spatial
                ),
            ));
        }
        Ok(vec![x.clone()])
    }

    fn flops(&self, bottom: &[Shape], _top: &[Shape]) -> u64 {
        count(&bottom[0]) as u64
    }

    fn forward(&mut self, io: &mut LayerIo, _ctx: &mut RunCtx) -> Result<(), String> {
        let (c, s) = (self.channels, self.spatial);
        let (bottoms, mut tops, _) = io.forward_split();
        let (x, a) = (bottoms[0].data(), bottoms[1].data());
        let y = tops[0].data_mut();
        if !self.params.do_forward || c * s == 0 {
            y.copy_from_slice(x);
            return Ok(());
        }
        for (i, (yv, &xv)) in y.iter_mut().zip(x).enumerate() {
            let (n, sp) = (i / (c * s), i % s);
            *yv = a[n * s + sp] * xv;
        }
        Ok(())
    }

    fn backward(
        &mut self,
        io: &mut LayerIo,
        propagate_down: &[bool],
        _ctx: &mut RunCtx,
    ) -> Result<(), String> {
        let (c, s) = (self.channels, self.spatial);
        let p = &self.params;
        let (mut bottoms, tops, _) = io.backward_split();
        let dy = tops[0].diff();
        if c * s == 0 {
            return Ok(());
        }
        if propagate_down[1] {
            let x = bottoms[0].data().to_vec();
            let da = bottoms[1].diff_mut();
            da.fill(0.0);
            if p.do_backward_scale {
                let mut acc = vec![0.0f64; da.len()];
                for (i, (&xv, &g)) in x.iter().zip(dy).enumerate() {
                    acc[(i / (c * s)) * s + i % s] += xv as f64 * g as f64;
                }
                da.iter_mut().zip(&acc).for_each(|(o, &v)| *o = v as f32);
            }
        }
        if propagate_down[0] {
            let a = bottoms[1].data().to_vec();
            let dx = bottoms[0].diff_mut();
            if p.do_backward_feature {
                for (i, (o, &g)) in dx.iter_mut().zip(dy).enumerate() {
                    *o = a[(i / (c * s)) * s + i % s] * g;
                }
            } else {
                dx.copy_from_slice(dy);
            }
        }
        Ok(())
    }
}
