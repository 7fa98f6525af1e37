//! Bias: y = x + b, b broadcast over the axes of x outside [axis, axis + len(b)).
//! Legend: x bottom 0; b a learned blob of shape x[axis..axis+num_axes] (one bottom) or
//! bottom 1 (two bottoms), whose shape must equal x[axis..axis+rank(b)].
//! Viewing x as outer × D × inner (D = count(b)): y[o,d,i] = x[o,d,i] + b[d];
//! dx = dy, db[d] = Σ_{o,i} dy[o,d,i] (added to a learned b, written to bottom 1). Works in place.

use super::filler::{fill, FillerParams};
use super::rows::{channel_sums, for_rows};
use super::{canonical_axis, count, fmt_shape, Arity, BuildContext, Layer, Shape, ShapeError};
use crate::blob::Blob;
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::LayerDef;
use crate::philox::ParamStreams;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BiasParams {
    /// First axis of x the bias covers; negative counts from the end.
    pub axis: i32,
    /// Axes covered by a learned bias; −1 = all from `axis` on, 0 = a scalar.
    pub num_axes: i32,
    /// Initial value of the learned bias (default constant 0).
    pub filler: FillerParams,
}

impl Default for BiasParams {
    fn default() -> Self {
        BiasParams {
            axis: 1,
            num_axes: 1,
            filler: FillerParams::default(),
        }
    }
}

/// Rejects `num_axes` below −1 in a Bias or Scale block.
pub fn check_num_axes(def: &LayerDef, block: &str, num_axes: i32) -> Result<(), Diagnostic> {
    if num_axes >= -1 {
        return Ok(());
    }
    Err(def.error(
        def.block
            .get(block)
            .map_or(def.name_span(), |f| f.value_span),
        format!(
            "{}: num_axes {num_axes} is invalid; use -1 (all remaining axes) or a count",
            def.describe()
        ),
    ))
}

/// Shape of the operand broadcast over bottom 0 (Bias's b, Scale's γ): bottom 1's shape when
/// given (checked against bottom 0), else bottom 0's axes [axis, axis + num_axes).
pub fn operand_shape(bottom: &[Shape], axis: i32, num_axes: i32) -> Result<Shape, ShapeError> {
    let x = &bottom[0];
    let out_of_range = || {
        ShapeError::at_bottom(
            0,
            format!("axis {axis} is out of range for shape {}", fmt_shape(x)),
        )
    };
    if let Some(b) = bottom.get(1) {
        // A scalar operand applies everywhere, whatever `axis` says.
        if b.is_empty() {
            return Ok(vec![]);
        }
        let a = canonical_axis(axis, x.len()).ok_or_else(out_of_range)?;
        if x.get(a..a + b.len()) != Some(&b[..]) {
            return Err(ShapeError::at_bottom(
                1,
                format!(
                    "bottom 1 has shape {} but bottom 0 has shape {}; bottom 1 must equal \
                     bottom 0's axes {a}..{}",
                    fmt_shape(b),
                    fmt_shape(x),
                    a + b.len()
                ),
            ));
        }
        return Ok(b.clone());
    }
    let a = canonical_axis(axis, x.len()).ok_or_else(out_of_range)?;
    let end = if num_axes < 0 {
        x.len()
    } else {
        a + num_axes as usize
    };
    x.get(a..end).map(<[usize]>::to_vec).ok_or_else(|| {
        ShapeError::at_bottom(
            0,
            format!(
                "axis {axis} with num_axes {num_axes} reaches past the end of shape {}",
                fmt_shape(x)
            ),
        )
    })
}

/// (outer, D, inner) of x around an operand of shape `operand` placed at `axis`
/// (shapes already checked by [`operand_shape`]); a scalar operand is (count(x), 1, 1).
pub fn broadcast_dims(x: &[usize], operand: &[usize], axis: i32) -> [usize; 3] {
    match canonical_axis(axis, x.len()) {
        Some(a) if !operand.is_empty() => [
            count(&x[..a]),
            count(operand),
            count(&x[a + operand.len()..]),
        ],
        _ => [count(x), 1, 1],
    }
}

pub struct BiasLayer {
    pub params: BiasParams,
    pub shape: Shape,
    /// One bottom: the bias is a learned blob.
    pub learned: bool,
    /// (outer, D, inner) from the last reshape.
    pub dims: [usize; 3],
}

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    let p: BiasParams = def.params("bias_param")?;
    check_num_axes(def, "bias_param", p.num_axes)?;
    p.filler.validate(def, "bias_param", "filler")?;
    Ok(Box::new(BiasLayer {
        params: p,
        shape: vec![],
        learned: true,
        dims: [0; 3],
    }))
}

impl Layer for BiasLayer {
    fn type_name(&self) -> &'static str {
        "Bias"
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

    fn param_shapes(&self) -> Vec<Shape> {
        if self.learned {
            vec![self.shape.clone()]
        } else {
            vec![]
        }
    }

    /// One add per element.
    fn flops(&self, bottom: &[Shape], _top: &[Shape]) -> u64 {
        count(&bottom[0]) as u64
    }

    fn supports_in_place(&self) -> bool {
        true
    }

    fn fill_params(&self, params: &mut [Blob], streams: &ParamStreams) {
        if let Some(b) = params.first_mut() {
            fill(&self.params.filler, b, streams.blob(0));
        }
    }

    fn forward(&mut self, io: &mut LayerIo, _ctx: &mut RunCtx) -> Result<(), String> {
        let [_, dim, inner] = self.dims;
        let b = if self.learned {
            io.param(0).data().to_vec()
        } else {
            io.bottom(1).data().to_vec()
        };
        io.copy_bottom_data_to_top(0);
        for_rows(io.top_mut(0).data_mut(), dim, inner, |d, row| {
            row.iter_mut().for_each(|v| *v += b[d]);
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
        let dy = io.top(0).diff();
        let db = channel_sums(dy, dy, dim, inner, |g, _| g as f64);
        if self.learned {
            let acc = io.param_mut(0).diff_mut();
            acc.iter_mut().zip(&db).for_each(|(a, &v)| *a += v as f32);
        } else if propagate_down[1] {
            let out = io.bottom_mut(1).diff_mut();
            out.iter_mut().zip(&db).for_each(|(a, &v)| *a = v as f32);
        }
        if propagate_down[0] {
            io.copy_top_diff_to_bottom(0);
        }
        Ok(())
    }
}
