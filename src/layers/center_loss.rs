//! CenterLoss (ydwen/caffe-face): pulls each feature towards its class centre.
//! Legend: M samples (axes before `axis`), K = features per sample (axes from `axis`),
//! N = num_output classes, c_j = centre j (row j of the N×K blob), y_i = (int) label i.
//!
//! Forward: d_i = x_i − c_{y_i};  loss = 1/(2M) · Σ_i ‖d_i‖².
//! Backward (g = loss_weight):
//!   dx_i = g/M · d_i;
//!   centres, as caffe-face codes it (the paper's update rule, not the derivative, and
//!   NOT scaled by g or 1/M):  diff(c_j) += Σ_{i: y_i = j} (c_j − x_i) / (1 + n_j),
//!   n_j = samples of class j in the batch (absent classes get 0). The solver then
//!   applies lr·lr_mult, weight decay and momentum to it like any gradient.
//! No gradient to the labels.

use super::filler::FillerParams;
use super::loss::{axis_of, check_same_num, LossParams};
use super::{count, fmt_shape, required, Arity, BuildContext, Layer, Shape, ShapeError};
use crate::error::Diagnostic;
use crate::netdef::LayerDef;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CenterLossParams {
    pub num_output: Option<u32>,
    pub center_filler: FillerParams,
    pub axis: i32,
}

impl Default for CenterLossParams {
    fn default() -> Self {
        CenterLossParams {
            num_output: None,
            center_filler: FillerParams::default(),
            axis: 1,
        }
    }
}

pub struct CenterLossLayer {
    pub params: CenterLossParams,
    pub num_output: usize,
    /// Feature size K, fixed at the first reshape.
    pub k: usize,
}

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    LossParams::reject_settings(def)?;
    let p: CenterLossParams = def.params("center_loss_param")?;
    let num_output = required(def, p.num_output, "center_loss_param", "num_output")? as usize;
    p.center_filler
        .validate(def, "center_loss_param", "center_filler")?;
    Ok(Box::new(CenterLossLayer {
        params: p,
        num_output,
        k: 0,
    }))
}

impl Layer for CenterLossLayer {
    fn type_name(&self) -> &'static str {
        "CenterLoss"
    }
    fn bottoms(&self) -> Arity {
        Arity::exactly(2)
    }
    fn tops(&self) -> Arity {
        Arity::exactly(1)
    }
    fn is_loss(&self) -> bool {
        true
    }
    fn can_backprop_to(&self, bottom: usize) -> bool {
        bottom == 0
    }

    fn reshape(&mut self, bottom: &[Shape]) -> Result<Vec<Shape>, ShapeError> {
        let x = &bottom[0];
        let axis = axis_of(self.params.axis, x, 0)?;
        let (m, k) = (count(&x[..axis]), count(&x[axis..]));
        let label = &bottom[1];
        if count(label) != m {
            return Err(ShapeError::at_bottom(
                1,
                format!(
                    "label bottom 1 has shape {} ({} values) but bottom 0 has shape {}, \
                     which needs {m} labels (one per sample before axis {axis})",
                    fmt_shape(label),
                    count(label),
                    fmt_shape(x)
                ),
            ));
        }
        check_same_num(bottom, 1)?;
        if self.k != 0 && self.k != k {
            return Err(ShapeError::at_bottom(
                0,
                format!("feature size changed from {} to {k}", self.k),
            ));
        }
        self.k = k;
        Ok(vec![vec![]])
    }

    fn param_shapes(&self) -> Vec<Shape> {
        vec![vec![self.num_output, self.k]]
    }

    fn flops(&self, bottom: &[Shape], _top: &[Shape]) -> u64 {
        // Subtract the centre, then a multiply-add per value.
        3 * count(&bottom[0]) as u64
    }
}
