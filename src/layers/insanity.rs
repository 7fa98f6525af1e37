//! Insanity (happynear/caffe-windows): the randomised leaky ReLU (RReLU) of Xu, Wang,
//! Chen, Li, "Empirical Evaluation of Rectified Activations in Convolution Network"
//! (2015). Legend: lb, ub the bounds of the random divisor a.
//!
//! Forward, TRAIN: a ~ U[lb, ub) per element (from the run's generator),
//!   y = max(x, 0) + min(x, 0)/a;
//! TEST: y = max(x, 0) + min(x, 0)/ā with the fork's ā = (ub − lb)/(ln ub − ln lb).
//! Backward: dx = dy where x > 0, dy/a (TRAIN: the same a as forward; TEST: ā) elsewhere.
//! Works in place (backward reads the sign from the output, which keeps x's sign).

use super::{Arity, BuildContext, Layer, Shape, ShapeError};
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::{LayerDef, Phase};
use crate::philox::{key_for, Stream};
use rand::Rng as _;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InsanityParams {
    pub lb: f32,
    pub ub: f32,
}

impl Default for InsanityParams {
    fn default() -> Self {
        InsanityParams { lb: 5.0, ub: 10.0 }
    }
}

pub struct InsanityLayer {
    pub params: InsanityParams,
    /// 1/a per element of the last forward.
    inv: Vec<f32>,
    /// The generator key: the build seed and the layer's name.
    key: [u32; 2],
}

pub fn build(def: &LayerDef, ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    let p: InsanityParams = def.params("insanity_param")?;
    if !(p.lb > 0.0 && p.ub > p.lb && p.ub.is_finite()) {
        return Err(def.error(
            def.block
                .get("insanity_param")
                .map_or(def.name_span(), |f| f.name_span),
            format!(
                "{}: needs 0 < lb < ub, got lb {} ub {}",
                def.describe(),
                p.lb,
                p.ub
            ),
        ));
    }
    Ok(Box::new(InsanityLayer {
        params: p,
        inv: Vec::new(),
        key: key_for(ctx.seed, &def.name),
    }))
}

impl Layer for InsanityLayer {
    fn type_name(&self) -> &'static str {
        "Insanity"
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
        Ok(vec![bottom[0].clone()])
    }

    fn forward(&mut self, io: &mut LayerIo, ctx: &mut RunCtx) -> Result<(), String> {
        let (lb, ub) = (self.params.lb, self.params.ub);
        let n = io.bottom(0).count();
        if ctx.phase == Phase::Train {
            // a ~ U[lb, ub) per element, from a counter-based stream whose
            // iteration comes from the net's generator.
            let stream = Stream {
                key: self.key,
                iteration: ctx.rng.gen(),
            };
            self.inv.resize(n, 0.0);
            stream.fill_uniform(&mut self.inv, lb, ub);
            self.inv.iter_mut().for_each(|a| *a = 1.0 / *a);
        } else {
            let mean = (ub as f64 - lb as f64) / ((ub as f64).ln() - (lb as f64).ln());
            self.inv = vec![(1.0 / mean) as f32; n];
        }
        io.copy_bottom_data_to_top(0);
        let y = io.top_mut(0).data_mut();
        y.iter_mut().zip(&self.inv).for_each(|(v, &s)| {
            if *v < 0.0 {
                *v *= s
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
        if !propagate_down[0] {
            return Ok(());
        }
        let inv = &self.inv;
        let apply = |y: &[f32], d: &mut [f32]| {
            for ((g, &v), &s) in d.iter_mut().zip(y).zip(inv) {
                if v <= 0.0 {
                    *g *= s;
                }
            }
        };
        if io.in_place(0) {
            let (y, d) = io.bottom_mut(0).data_and_diff_mut();
            apply(y, d);
        } else {
            io.copy_top_diff_to_bottom(0);
            let (t, b) = io.top_and_bottom_mut(0, 0);
            apply(t.data(), b.diff_mut());
        }
        Ok(())
    }
}
