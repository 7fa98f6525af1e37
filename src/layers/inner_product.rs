//! InnerProduct (fully connected): y = x·Wᵀ + b, x flattened from `axis` to M×K.
//! W is N×K (K×N with `transpose: true`), b is N.
//! Backward: dW += dyᵀ·x (N×K), db += Σ_rows dy, dx = dy·W.
//!
//! `normalize: true` (happynear/caffe-windows, the AM-Softmax and NormFace fork):
//! every forward first replaces each row of W IN PLACE by w_j/‖w_j‖, so y = x·Ŵᵀ + b
//! is a cosine when x is unit-length too (a Normalize layer in front). Backward is
//! the fork's: the plain gradients above, taken w.r.t. the normalised Ŵ (dW is not
//! projected through the normalisation, as in MarginInnerProduct), dx = dy·Ŵ exact.
//!
//! With two or three bottoms the weights (and bias) come from bottoms: weight_bottom.rs.

use super::filler::{fill, FillerParams};
use super::margin_inner_product::normalize_rows;
use super::{canonical_axis, count, required, Arity, BuildContext, Layer, Shape, ShapeError};
use crate::backend::gemm;
use crate::blob::Blob;
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::LayerDef;
use crate::philox::ParamStreams;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InnerProductParams {
    pub num_output: Option<u32>,
    pub bias_term: bool,
    pub weight_filler: FillerParams,
    pub bias_filler: FillerParams,
    pub axis: i32,
    pub transpose: bool,
    /// Rows of W scaled to unit length at every forward (fork field).
    pub normalize: bool,
}

impl Default for InnerProductParams {
    fn default() -> Self {
        InnerProductParams {
            num_output: None,
            bias_term: true,
            weight_filler: FillerParams::default(),
            bias_filler: FillerParams::default(),
            axis: 1,
            transpose: false,
            normalize: false,
        }
    }
}

pub struct InnerProductLayer {
    pub params: InnerProductParams,
    pub num_output: usize,
    /// Flattened input size K, fixed at the first reshape.
    pub k: usize,
}

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    let p: InnerProductParams = def.params("inner_product_param")?;
    p.bias_filler
        .validate(def, "inner_product_param", "bias_filler")?;
    if def.bottom.len() >= 2 {
        // The fork's form with the weights (and optionally the bias) as bottoms.
        let learned_bias = p.bias_term && def.bottom.len() == 2;
        return super::weight_bottom::build_form(
            def,
            "inner_product_param",
            super::weight_bottom::Op::Product { learned_bias },
            (p.axis, &p.bias_filler),
            (p.transpose, p.normalize),
        );
    }
    let num_output = required(def, p.num_output, "inner_product_param", "num_output")? as usize;
    p.weight_filler
        .validate(def, "inner_product_param", "weight_filler")?;
    if p.normalize && p.transpose {
        return Err(def.error(
            def.block
                .get("inner_product_param")
                .map_or(def.name_span(), |f| f.name_span),
            format!(
                "{}: `normalize: true` normalises the rows of W, which `transpose: true` stores as columns",
                def.describe()
            ),
        ));
    }
    Ok(Box::new(InnerProductLayer {
        params: p,
        num_output,
        k: 0,
    }))
}

impl Layer for InnerProductLayer {
    fn type_name(&self) -> &'static str {
        "InnerProduct"
    }
    fn bottoms(&self) -> Arity {
        Arity::exactly(1)
    }
    fn tops(&self) -> Arity {
        Arity::exactly(1)
    }

    fn reshape(&mut self, bottom: &[Shape]) -> Result<Vec<Shape>, ShapeError> {
        let b = &bottom[0];
        let axis = canonical_axis(self.params.axis, b.len()).ok_or_else(|| {
            ShapeError::at_bottom(
                0,
                format!(
                    "axis {} is out of range for shape {}",
                    self.params.axis,
                    super::fmt_shape(b)
                ),
            )
        })?;
        let k = count(&b[axis..]);
        if self.k != 0 && self.k != k {
            return Err(ShapeError::at_bottom(
                0,
                format!("input size changed from {} to {k}", self.k),
            ));
        }
        self.k = k;
        let mut top = b[..axis].to_vec();
        top.push(self.num_output);
        Ok(vec![top])
    }

    fn param_shapes(&self) -> Vec<Shape> {
        let w = if self.params.transpose {
            vec![self.k, self.num_output]
        } else {
            vec![self.num_output, self.k]
        };
        let mut v = vec![w];
        if self.params.bias_term {
            v.push(vec![self.num_output]);
        }
        v
    }

    fn flops(&self, _bottom: &[Shape], top: &[Shape]) -> u64 {
        (2 * self.k as u64).saturating_mul(count(&top[0]) as u64)
    }

    fn fill_params(&self, params: &mut [Blob], streams: &ParamStreams) {
        fill(&self.params.weight_filler, &mut params[0], streams.blob(0));
        if let Some(b) = params.get_mut(1) {
            fill(&self.params.bias_filler, b, streams.blob(1));
        }
    }

    fn param_diff_is_gradient(&self, index: usize) -> bool {
        index != 0 || !self.params.normalize
    }

    fn forward(&mut self, io: &mut LayerIo, _ctx: &mut RunCtx) -> Result<(), String> {
        let (bottoms, mut tops, params) = io.forward_split();
        let (k, n) = (self.k, self.num_output);
        if self.params.normalize {
            normalize_rows(params[0].data_mut(), k);
        }
        let m = bottoms[0].count() / k;
        let y = tops[0].data_mut();
        gemm(
            false,
            !self.params.transpose,
            m,
            n,
            k,
            1.0,
            bottoms[0].data(),
            params[0].data(),
            0.0,
            y,
        );
        if let Some(bias) = params.get(1) {
            for row in y.chunks_mut(n) {
                row.iter_mut().zip(bias.data()).for_each(|(v, &b)| *v += b);
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
        let (mut bottoms, tops, params) = io.backward_split();
        let (k, n) = (self.k, self.num_output);
        let m = bottoms[0].count() / k;
        let dy = tops[0].diff();
        let (x, dx) = bottoms[0].data_and_diff_mut();
        if self.params.transpose {
            // W is K×N: dW += xᵀ·dy.
            gemm(true, false, k, n, m, 1.0, x, dy, 1.0, params[0].diff_mut());
        } else {
            gemm(true, false, n, k, m, 1.0, dy, x, 1.0, params[0].diff_mut());
        }
        if let Some(bias) = params.get_mut(1) {
            let db = bias.diff_mut();
            for row in dy.chunks(n) {
                db.iter_mut().zip(row).for_each(|(d, &v)| *d += v);
            }
        }
        if propagate_down[0] {
            gemm(
                false,
                self.params.transpose,
                m,
                k,
                n,
                1.0,
                dy,
                params[0].data(),
                0.0,
                dx,
            );
        }
        Ok(())
    }
}
