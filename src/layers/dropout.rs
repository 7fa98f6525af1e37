//! Dropout: TRAIN y = x·m/(1 − r) with m ~ Bernoulli(1 − r) per element (y = x·m when
//! `scale_train` is false); TEST y = x (or x·(1 − r) when `scale_train` is false).
//! Legend: r = dropout_ratio. Backward: dx = dy·(the factor forward applied). Works in place.
//! The mask comes from a counter-based generator ([`crate::philox`]) keyed by the
//! build seed and the layer's name; the stream's iteration word is one draw from the
//! net's generator per TRAIN pass (seeded by the solver's `random_seed`, saved in
//! snapshots). Element i's draw is then a function of (seed, layer, pass, i) alone:
//! it depends neither on the thread count nor on the device, and a resumed run, or
//! the gradient checker's repeated passes from one generator state, get the same masks.

use super::rows::{self, CHUNK};
use super::{count, Arity, BuildContext, Layer, Shape, ShapeError};
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::{LayerDef, Phase};
use crate::philox::{key_for, Stream};
use rand::Rng as _;
use rayon::prelude::*;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DropoutParams {
    /// Probability r of zeroing an element, 0 ≤ r < 1.
    pub dropout_ratio: f32,
    /// Rescale by 1/(1 − r) while training (otherwise by 1 − r while testing).
    pub scale_train: bool,
}

impl Default for DropoutParams {
    fn default() -> Self {
        DropoutParams {
            dropout_ratio: 0.5,
            scale_train: true,
        }
    }
}

pub struct DropoutLayer {
    pub params: DropoutParams,
    /// TRAIN: the factor of each element in the last forward (0 or the train scale).
    mask: Vec<f32>,
    /// Whether the last forward ran in TRAIN (masked) mode.
    masked: bool,
    /// The generator's key: the build seed and the layer's name.
    key: [u32; 2],
}

impl DropoutLayer {
    /// The factor TEST applies to every element.
    pub fn test_scale(&self) -> f32 {
        if self.params.scale_train {
            1.0
        } else {
            1.0 - self.params.dropout_ratio
        }
    }
}

pub fn build(def: &LayerDef, ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    let p: DropoutParams = def.params("dropout_param")?;
    // 1/(1 − r) must be finite; the comparison also rejects NaN.
    if !(0.0..1.0).contains(&p.dropout_ratio) {
        return Err(def.error(
            def.block
                .get("dropout_param")
                .map_or(def.name_span(), |f| f.value_span),
            format!(
                "{}: dropout_ratio {} must be in [0, 1)",
                def.describe(),
                p.dropout_ratio
            ),
        ));
    }
    Ok(Box::new(DropoutLayer {
        params: p,
        mask: Vec::new(),
        masked: false,
        key: key_for(ctx.seed, &def.name),
    }))
}

impl Layer for DropoutLayer {
    fn type_name(&self) -> &'static str {
        "Dropout"
    }
    fn bottoms(&self) -> Arity {
        Arity::exactly(1)
    }
    fn tops(&self) -> Arity {
        Arity::exactly(1)
    }
    fn reshape(&mut self, bottom: &[Shape]) -> Result<Vec<Shape>, ShapeError> {
        Ok(vec![bottom[0].clone()])
    }

    /// One multiply per element.
    fn flops(&self, bottom: &[Shape], _top: &[Shape]) -> u64 {
        count(&bottom[0]) as u64
    }

    fn supports_in_place(&self) -> bool {
        true
    }

    fn forward(&mut self, io: &mut LayerIo, ctx: &mut RunCtx) -> Result<(), String> {
        io.copy_bottom_data_to_top(0);
        let y = io.top_mut(0).data_mut();
        self.masked = ctx.phase == Phase::Train;
        if !self.masked {
            let s = self.test_scale();
            if s != 1.0 {
                rows::map(y, |v| v * s);
            }
            return Ok(());
        }
        let ratio = self.params.dropout_ratio;
        let keep = if self.params.scale_train {
            1.0 / (1.0 - ratio)
        } else {
            1.0
        };
        let stream = Stream {
            key: self.key,
            iteration: ctx.rng.gen(),
        };
        self.mask.resize(y.len(), 0.0);
        // u ~ U[0, 1) per element; kept (m = 1) when u ≥ r, i.e. with probability 1 − r.
        y.par_chunks_mut(CHUNK)
            .zip(self.mask.par_chunks_mut(CHUNK))
            .enumerate()
            .for_each(|(c, (ys, ms))| {
                stream.fill(c * CHUNK, ms);
                for (v, m) in ys.iter_mut().zip(ms) {
                    *m = if *m >= ratio { keep } else { 0.0 };
                    *v *= *m;
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
        io.copy_top_diff_to_bottom(0);
        let d = io.bottom_mut(0).diff_mut();
        if self.masked {
            rows::zip_map(d, &self.mask, |g, m| g * m);
        } else {
            let s = self.test_scale();
            rows::map(d, |g| g * s);
        }
        Ok(())
    }
}
