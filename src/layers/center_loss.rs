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
//! No gradient to the labels. A label outside [0, N) is an error (caffe-face reads
//! out of bounds). Sums over samples and features are accumulated in f64.

use super::filler::{fill, FillerParams};
use super::loss::{axis_of, check_same_num, LossParams};
use super::margin_inner_product::class_labels;
use super::{count, fmt_shape, required, Arity, BuildContext, Layer, Shape, ShapeError};
use crate::blob::Blob;
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::LayerDef;
use crate::philox::ParamStreams;
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

    fn fill_params(&self, params: &mut [Blob], streams: &ParamStreams) {
        fill(&self.params.center_filler, &mut params[0], streams.blob(0));
    }

    fn param_diff_is_gradient(&self, _index: usize) -> bool {
        false
    }

    fn forward(&mut self, io: &mut LayerIo, _ctx: &mut RunCtx) -> Result<(), String> {
        let (bottoms, mut tops, params) = io.forward_split();
        let k = self.k;
        let labels = class_labels(bottoms[1].data(), self.num_output)?;
        let centres = params[0].data();
        let sum: f64 = bottoms[0]
            .data()
            .chunks(k)
            .zip(&labels)
            .map(|(x, &y)| {
                let c = &centres[y * k..(y + 1) * k];
                x.iter()
                    .zip(c)
                    .map(|(&a, &b)| (a as f64 - b as f64).powi(2))
                    .sum::<f64>()
            })
            .sum();
        tops[0].data_mut()[0] = (sum / (2.0 * labels.len().max(1) as f64)) as f32;
        Ok(())
    }

    fn backward(
        &mut self,
        io: &mut LayerIo,
        propagate_down: &[bool],
        _ctx: &mut RunCtx,
    ) -> Result<(), String> {
        let (mut bottoms, tops, params) = io.backward_split();
        let (k, n) = (self.k, self.num_output);
        let labels = class_labels(bottoms[1].data(), n)?;
        let scale = tops[0].diff()[0] as f64 / labels.len().max(1) as f64;
        let (x, dx) = bottoms[0].data_and_diff_mut();
        let (centres, dc) = params[0].data_and_diff_mut();
        if propagate_down[0] {
            for (i, &y) in labels.iter().enumerate() {
                let (xi, ci) = (&x[i * k..(i + 1) * k], &centres[y * k..(y + 1) * k]);
                for ((d, &a), &b) in dx[i * k..(i + 1) * k].iter_mut().zip(xi).zip(ci) {
                    *d = (scale * (a as f64 - b as f64)) as f32;
                }
            }
        }
        // Centre update: Σ_{i: y_i=j} (c_j − x_i), then divided by 1 + n_j.
        let mut sums = vec![0.0f64; n * k];
        let mut counts = vec![0usize; n];
        for (i, &y) in labels.iter().enumerate() {
            counts[y] += 1;
            let (xi, ci) = (&x[i * k..(i + 1) * k], &centres[y * k..(y + 1) * k]);
            for ((s, &a), &b) in sums[y * k..(y + 1) * k].iter_mut().zip(xi).zip(ci) {
                *s += b as f64 - a as f64;
            }
        }
        for (j, &nj) in counts.iter().enumerate().filter(|(_, &nj)| nj > 0) {
            let row = &mut dc[j * k..(j + 1) * k];
            for (d, &s) in row.iter_mut().zip(&sums[j * k..(j + 1) * k]) {
                *d += (s / (1 + nj) as f64) as f32;
            }
        }
        Ok(())
    }
}
