//! Scale: y = γ ⊙ x (+ β with `bias_term`), γ and β broadcast over the axes of x outside
//! [axis, axis + len(γ)). Legend: x bottom 0; γ a learned blob of shape
//! x[axis..axis+num_axes] (one bottom) or bottom 1 (two bottoms); β learned, shaped like γ.

use super::bias::{check_num_axes, operand_shape};
use super::filler::FillerParams;
use super::{count, Arity, BuildContext, Layer, Shape, ShapeError};
use crate::error::Diagnostic;
use crate::netdef::LayerDef;
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
        }
    }
}

pub struct ScaleLayer {
    pub params: ScaleParams,
    /// Shape of γ (and of β).
    pub shape: Shape,
    /// One bottom: γ is a learned blob.
    pub learned: bool,
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
}
