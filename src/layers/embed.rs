//! Embed: a lookup table, the InnerProduct of a one-hot vector of `input_dim` entries.
//! Legend: bottom holds indices k (integers stored as floats, any shape S); W is
//! input_dim × num_output, b has num_output values; the top has shape S × num_output.
//! Forward: y[i, :] = W[k_i, :] + b.
//! Backward: dW[k_i, :] += dy[i, :], db += Σ_i dy[i, :]; no gradient to the indices.

use super::filler::{fill, FillerParams};
use super::{required, Arity, BuildContext, Layer, ParamStreams, Shape, ShapeError};
use crate::blob::Blob;
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::LayerDef;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmbedParams {
    pub num_output: Option<u32>,
    pub input_dim: Option<u32>,
    pub bias_term: bool,
    pub weight_filler: FillerParams,
    pub bias_filler: FillerParams,
}

impl Default for EmbedParams {
    fn default() -> Self {
        EmbedParams {
            num_output: None,
            input_dim: None,
            bias_term: true,
            weight_filler: FillerParams::default(),
            bias_filler: FillerParams::default(),
        }
    }
}

pub struct EmbedLayer {
    pub params: EmbedParams,
    num_output: usize,
    input_dim: usize,
}

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    let p: EmbedParams = def.params("embed_param")?;
    let num_output = required(def, p.num_output, "embed_param", "num_output")? as usize;
    let input_dim = required(def, p.input_dim, "embed_param", "input_dim")? as usize;
    for (field, v) in [("num_output", num_output), ("input_dim", input_dim)] {
        if v == 0 {
            return Err(super::checks::param_error(
                def,
                "embed_param",
                field,
                &format!("{field} must be positive"),
            ));
        }
    }
    p.weight_filler
        .validate(def, "embed_param", "weight_filler")?;
    p.bias_filler.validate(def, "embed_param", "bias_filler")?;
    Ok(Box::new(EmbedLayer {
        params: p,
        num_output,
        input_dim,
    }))
}

impl EmbedLayer {
    /// The table row of index value `v` at position `i`, or why it is not one.
    fn row(&self, v: f32, i: usize) -> Result<usize, String> {
        if v.fract() == 0.0 && v >= 0.0 && (v as usize) < self.input_dim {
            return Ok(v as usize);
        }
        Err(format!(
            "position {i} of the bottom holds {v}, but Embed needs an integer index in 0..{} (input_dim {})",
            self.input_dim, self.input_dim
        ))
    }
}

impl Layer for EmbedLayer {
    fn type_name(&self) -> &'static str {
        "Embed"
    }
    fn bottoms(&self) -> Arity {
        Arity::exactly(1)
    }
    fn tops(&self) -> Arity {
        Arity::exactly(1)
    }
    fn can_backprop_to(&self, _bottom: usize) -> bool {
        false
    }

    fn reshape(&mut self, bottom: &[Shape]) -> Result<Vec<Shape>, ShapeError> {
        let mut top = bottom[0].clone();
        top.push(self.num_output);
        Ok(vec![top])
    }

    fn param_shapes(&self) -> Vec<Shape> {
        let mut v = vec![vec![self.input_dim, self.num_output]];
        if self.params.bias_term {
            v.push(vec![self.num_output]);
        }
        v
    }

    fn fill_params(&self, params: &mut [Blob], streams: &ParamStreams) {
        fill(&self.params.weight_filler, &mut params[0], streams.blob(0));
        if let Some(b) = params.get_mut(1) {
            fill(&self.params.bias_filler, b, streams.blob(1));
        }
    }

    fn forward(&mut self, io: &mut LayerIo, _ctx: &mut RunCtx) -> Result<(), String> {
        let m = self.num_output;
        let (bottoms, mut tops, params) = io.forward_split();
        let w = params[0].data();
        let bias = params.get(1).map(|b| b.data());
        for (i, (&v, y)) in bottoms[0]
            .data()
            .iter()
            .zip(tops[0].data_mut().chunks_mut(m))
            .enumerate()
        {
            let k = self.row(v, i)?;
            y.copy_from_slice(&w[k * m..(k + 1) * m]);
            if let Some(b) = bias {
                y.iter_mut().zip(b).for_each(|(y, &b)| *y += b);
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
        if propagate_down[0] {
            return Err("Embed cannot propagate a gradient to its indices".into());
        }
        let m = self.num_output;
        let indices = io.bottom(0).data().to_vec();
        let dy = io.top(0).diff().to_vec();
        let dw = io.param_mut(0).diff_mut();
        for (i, (&v, g)) in indices.iter().zip(dy.chunks(m)).enumerate() {
            let k = self.row(v, i)?;
            dw[k * m..(k + 1) * m]
                .iter_mut()
                .zip(g)
                .for_each(|(d, &g)| *d += g);
        }
        if io.num_params() > 1 {
            let db = io.param_mut(1).diff_mut();
            for g in dy.chunks(m) {
                db.iter_mut().zip(g).for_each(|(d, &g)| *d += g);
            }
        }
        Ok(())
    }
}
