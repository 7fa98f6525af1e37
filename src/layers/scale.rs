//! Scale: y = γ ⊙ x (+ β with `bias_term`), γ and β broadcast over the axes of x outside
//! [axis, axis + len(γ)). Legend: x bottom 0; γ a learned blob of shape
//! x[axis..axis+num_axes] (one bottom) or bottom 1 (two bottoms); β learned, shaped like γ.
//! Viewing x as outer × D × inner (D = count(γ)): y[o,d,i] = γ[d]·x[o,d,i] + β[d];
//! dx = γ[d]·dy, dγ[d] = Σ_{o,i} dy·x (added to a learned γ, written to bottom 1),
//! dβ[d] += Σ_{o,i} dy. In place, x is gone after forward, so forward keeps a copy of it.
//!
//! `min_value` / `max_value` (happynear/caffe-windows, NormFace's learned scale s):
//! every forward first clamps γ into [min_value, max_value] — a learned γ IN PLACE, so
//! the solver's next update starts from the clamped value — then runs as above; the
//! gradients are unchanged (taken at the clamped γ).

use super::bias::{broadcast_dims, check_num_axes, operand_shape};
use super::filler::{fill, FillerParams};
use super::rows::{channel_sums, for_rows};
use super::{count, Arity, BuildContext, Layer, Shape, ShapeError};
use crate::blob::Blob;
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::LayerDef;
use crate::philox::ParamStreams;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScaleParams {
    /// First axis of x that γ covers; negative counts from the end.
    pub axis: i32,
    /// Axes covered by a learned γ; −1 = all from `axis` on, 0 = a scalar.
    pub num_axes: i32,
    /// Initial γ; Caffe's default is constant 1.
    pub filler: FillerParams,
    pub bias_term: bool,
    /// Initial β (default constant 0).
    pub bias_filler: FillerParams,
    /// Lower bound on γ, applied before each forward (fork field).
    pub min_value: Option<f32>,
    /// Upper bound on γ, applied before each forward (fork field).
    pub max_value: Option<f32>,
}

impl Default for ScaleParams {
    fn default() -> Self {
        ScaleParams {
            axis: 1,
            num_axes: 1,
            filler: FillerParams {
                value: 1.0,
                ..FillerParams::default()
            },
            bias_term: false,
            bias_filler: FillerParams::default(),
            min_value: None,
            max_value: None,
        }
    }
}

pub struct ScaleLayer {
    pub params: ScaleParams,
    /// Shape of γ (and of β).
    pub shape: Shape,
    /// One bottom: γ is a learned blob.
    pub learned: bool,
    /// (outer, D, inner) from the last reshape.
    pub dims: [usize; 3],
    /// The input of the last forward when running in place.
    saved_input: Vec<f32>,
}

impl ScaleLayer {
    /// Index of β among the learnable blobs.
    fn bias_index(&self) -> usize {
        usize::from(self.learned)
    }
}

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    let p: ScaleParams = def.params("scale_param")?;
    check_num_axes(def, "scale_param", p.num_axes)?;
    p.filler.validate(def, "scale_param", "filler")?;
    p.bias_filler.validate(def, "scale_param", "bias_filler")?;
    Ok(Box::new(ScaleLayer {
        params: p,
        shape: vec![],
        learned: true,
        dims: [0; 3],
        saved_input: Vec::new(),
    }))
}

impl Layer for ScaleLayer {
    fn type_name(&self) -> &'static str {
        "Scale"
    }
    fn bottoms(&self) -> Arity {
        Arity::between(1, 2)
    }
    fn tops(&self) -> Arity {
        Arity::exactly(1)
    }

    fn reshape(&mut self, bottom: &[Shape]) -> Result<Vec<Shape>, ShapeError> {
        self.shape = operand_shape(bottom, self.params.axis, self.params.num_axes)?;
        self.learned = bottom.len() == 1;
        self.dims = broadcast_dims(&bottom[0], &self.shape, self.params.axis);
        Ok(vec![bottom[0].clone()])
    }

    /// γ (one bottom only), then β (with `bias_term`).
    fn param_shapes(&self) -> Vec<Shape> {
        let mut v = Vec::new();
        if self.learned {
            v.push(self.shape.clone());
        }
        if self.params.bias_term {
            v.push(self.shape.clone());
        }
        v
    }

    /// A multiply per element, plus an add with `bias_term`.
    fn flops(&self, bottom: &[Shape], _top: &[Shape]) -> u64 {
        let per = if self.params.bias_term { 2 } else { 1 };
        per * count(&bottom[0]) as u64
    }

    fn supports_in_place(&self) -> bool {
        true
    }

    fn fill_params(&self, params: &mut [Blob], streams: &ParamStreams) {
        if self.learned {
            fill(&self.params.filler, &mut params[0], streams.blob(0));
        }
        if self.params.bias_term {
            fill(
                &self.params.bias_filler,
                &mut params[self.bias_index()],
                streams.blob(self.bias_index()),
            );
        }
    }

    fn forward(&mut self, io: &mut LayerIo, _ctx: &mut RunCtx) -> Result<(), String> {
        let [_, dim, inner] = self.dims;
        if io.in_place(0) {
            self.saved_input.clear();
            self.saved_input.extend_from_slice(io.bottom(0).data());
        }
        let (lo, hi) = (self.params.min_value, self.params.max_value);
        let clamp = |g: &mut [f32]| {
            g.iter_mut().for_each(|v| {
                *v = lo.map_or(*v, |l| v.max(l));
                *v = hi.map_or(*v, |h| v.min(h));
            })
        };
        let gamma = if self.learned {
            clamp(io.param_mut(0).data_mut());
            io.param(0).data().to_vec()
        } else {
            let mut g = io.bottom(1).data().to_vec();
            clamp(&mut g);
            g
        };
        let beta = match self.params.bias_term {
            true => io.param(self.bias_index()).data().to_vec(),
            false => vec![0.0; dim],
        };
        io.copy_bottom_data_to_top(0);
        for_rows(io.top_mut(0).data_mut(), dim, inner, |d, row| {
            row.iter_mut().for_each(|v| *v = gamma[d] * *v + beta[d]);
        });
        Ok(())
    }

    fn backward(
        &mut self,
        io: &mut LayerIo,
        propagate_down: &[bool],
        _ctx: &mut RunCtx,
    ) -> Result<(), String> {
        let [_, dim, inner] = self.dims;
        let saved = std::mem::take(&mut self.saved_input);
        let dy = io.top(0).diff();
        let dbeta = self
            .params
            .bias_term
            .then(|| channel_sums(dy, dy, dim, inner, |g, _| g as f64));
        let want_dgamma = self.learned || propagate_down[1];
        let dgamma = want_dgamma.then(|| {
            let x = if io.in_place(0) {
                &saved
            } else {
                io.bottom(0).data()
            };
            channel_sums(dy, x, dim, inner, |g, x| g as f64 * x as f64)
        });
        let add = |acc: &mut [f32], v: &[f64]| {
            acc.iter_mut().zip(v).for_each(|(a, &s)| *a += s as f32);
        };
        if let Some(db) = dbeta {
            add(io.param_mut(self.bias_index()).diff_mut(), &db);
        }
        match dgamma {
            Some(dg) if self.learned => add(io.param_mut(0).diff_mut(), &dg),
            Some(dg) => {
                let out = io.bottom_mut(1).diff_mut();
                out.iter_mut().zip(&dg).for_each(|(a, &s)| *a = s as f32);
            }
            None => {}
        }
        if propagate_down[0] {
            let gamma = if self.learned {
                io.param(0).data().to_vec()
            } else {
                io.bottom(1).data().to_vec()
            };
            io.copy_top_diff_to_bottom(0);
            for_rows(io.bottom_mut(0).diff_mut(), dim, inner, |d, row| {
                row.iter_mut().for_each(|g| *g *= gamma[d]);
            });
        }
        self.saved_input = saved;
        Ok(())
    }
}
