//! Bias: y = x + b, b broadcast over the axes of x outside [axis, axis + len(b)).
//! Legend: x bottom 0; b a learned blob of shape x[axis..axis+num_axes] (one bottom) or
//! bottom 1 (two bottoms), whose shape must equal x[axis..axis+rank(b)].

use super::filler::FillerParams;
use super::{canonical_axis, count, fmt_shape, Arity, BuildContext, Layer, Shape, ShapeError};
use crate::error::Diagnostic;
use crate::netdef::LayerDef;
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

pub struct BiasLayer {
    pub params: BiasParams,
    pub shape: Shape,
    /// One bottom: the bias is a learned blob.
    pub learned: bool,
}

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    let p: BiasParams = def.params("bias_param")?;
    check_num_axes(def, "bias_param", p.num_axes)?;
    p.filler.validate(def, "bias_param", "filler")?;
    Ok(Box::new(BiasLayer {
        params: p,
        shape: vec![],
        learned: true,
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
}
