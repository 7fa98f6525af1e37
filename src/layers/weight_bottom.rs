//! InnerProduct and InnerDistance with their weights as bottom 1 (happynear/caffe-windows,
//! NormFace's heads: a Parameter layer holds the class centres, a Normalize layer scales
//! them to unit length, and the product or distance layer reads them as a bottom).
//! Legend: x bottom 0 flattened from `axis` to M×K; W bottom 1, N × K (N = its first
//! axis, `num_output` unused); G the top diff.
//!
//! InnerProduct: y = x·Wᵀ (+ b: bottom 2 with three bottoms, else a learned N-blob
//! with `bias_term`). Backward: dW = Gᵀ·x into bottom 1, db = Σ_rows G (bottom 2, or
//! accumulated into the learned blob), dx = G·W.
//! InnerDistance: y = the squared-L2 (or L1) distances of inner_distance.rs; with
//! `update_center_only` the labels are bottom 2 and limit dW to each sample's own row.
//! dW is set (not accumulated), as the fork does. `transpose` and `normalize` are
//! refused in this form (the fork ignores `normalize` here; normalise W with a
//! Normalize layer instead).

use super::filler::{fill, FillerParams};
use super::inner_distance::{distance_grads, distances};
use super::margin_inner_product::class_labels;
use super::{canonical_axis, count, fmt_shape, Arity, Layer, Shape, ShapeError};
use crate::backend::gemm;
use crate::blob::Blob;
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::LayerDef;
use crate::philox::ParamStreams;

/// What the layer computes from x and the weight bottom.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Op {
    /// x·Wᵀ; the flag: a learned bias blob (two bottoms with `bias_term`).
    Product { learned_bias: bool },
    /// Distances; the flag: L1 instead of squared L2.
    Distance { l1: bool },
}

pub struct WeightBottomLayer {
    pub op: Op,
    axis: i32,
    bias_filler: FillerParams,
    /// K and N, fixed at reshape.
    k: usize,
    n: usize,
}

/// Builds the weight-bottom form after the type's own checks; `transpose` and
/// `normalize` are refused here.
pub fn build_form(
    def: &LayerDef,
    block: &str,
    op: Op,
    (axis, bias_filler): (i32, &FillerParams),
    (transpose, normalize): (bool, bool),
) -> Result<Box<dyn Layer>, Diagnostic> {
    for (field, on) in [("transpose", transpose), ("normalize", normalize)] {
        if on {
            return Err(super::checks::param_error(
                def,
                block,
                field,
                &format!("`{field}: true` is not supported with the weights as bottom 1"),
            )
            .with_help("normalise the weight blob with a Normalize layer before this one"));
        }
    }
    Ok(Box::new(WeightBottomLayer {
        op,
        axis,
        bias_filler: bias_filler.clone(),
        k: 0,
        n: 0,
    }))
}

impl Layer for WeightBottomLayer {
    fn type_name(&self) -> &'static str {
        match self.op {
            Op::Product { .. } => "InnerProduct",
            Op::Distance { .. } => "InnerDistance",
        }
    }
    fn bottoms(&self) -> Arity {
        Arity::between(2, 3)
    }
    fn tops(&self) -> Arity {
        Arity::exactly(1)
    }
    fn can_backprop_to(&self, bottom: usize) -> bool {
        bottom < 2 || matches!(self.op, Op::Product { .. })
    }

    fn reshape(&mut self, bottom: &[Shape]) -> Result<Vec<Shape>, ShapeError> {
        let (x, w) = (&bottom[0], &bottom[1]);
        let axis = canonical_axis(self.axis, x.len()).ok_or_else(|| {
            ShapeError::at_bottom(
                0,
                format!(
                    "axis {} is out of range for shape {}",
                    self.axis,
                    fmt_shape(x)
                ),
            )
        })?;
        let (m, k) = (count(&x[..axis]), count(&x[axis..]));
        let n = w.first().copied().unwrap_or(0);
        if n == 0 || count(w) != n * k {
            return Err(ShapeError::at_bottom(
                1,
                format!(
                    "weight bottom 1 has shape {} but needs N × {k} for inputs {}",
                    fmt_shape(w),
                    fmt_shape(x)
                ),
            ));
        }
        if let Some(third) = bottom.get(2) {
            let (want, what) = match self.op {
                Op::Product { .. } => (n, "bias bottom 2 needs one value per output"),
                Op::Distance { .. } => (m, "label bottom 2 needs one value per sample"),
            };
            if count(third) != want {
                return Err(ShapeError::at_bottom(
                    2,
                    format!("{what} ({want}), got {}", fmt_shape(third)),
                ));
            }
        }
        (self.k, self.n) = (k, n);
        let mut top = x[..axis].to_vec();
        top.push(n);
        Ok(vec![top])
    }

    fn param_shapes(&self) -> Vec<Shape> {
        match self.op {
            Op::Product { learned_bias: true } => vec![vec![self.n]],
            _ => vec![],
        }
    }

    fn fill_params(&self, params: &mut [Blob], streams: &ParamStreams) {
        if let Some(b) = params.first_mut() {
            fill(&self.bias_filler, b, streams.blob(0));
        }
    }

    fn flops(&self, _bottom: &[Shape], top: &[Shape]) -> u64 {
        3 * self.k as u64 * count(&top[0]) as u64
    }

    fn forward(&mut self, io: &mut LayerIo, _ctx: &mut RunCtx) -> Result<(), String> {
        let (k, n) = (self.k, self.n);
        let (bottoms, mut tops, params) = io.forward_split();
        let (x, w) = (bottoms[0].data(), bottoms[1].data());
        let y = tops[0].data_mut();
        match self.op {
            Op::Distance { l1 } => distances(x, w, k, l1, y),
            Op::Product { .. } => {
                gemm(false, true, x.len() / k.max(1), n, k, 1.0, x, w, 0.0, y);
                let bias = bottoms
                    .get(2)
                    .map(|b| b.data())
                    .or(params.first().map(|p| p.data()));
                if let Some(b) = bias {
                    for row in y.chunks_mut(n) {
                        row.iter_mut().zip(b).for_each(|(v, &c)| *v += c);
                    }
                }
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
        let (k, n) = (self.k, self.n);
        let (mut bottoms, tops, params) = io.backward_split();
        let g = tops[0].diff();
        let m = bottoms[0].count() / k.max(1);
        let x = bottoms[0].data().to_vec();
        let w = bottoms[1].data().to_vec();
        match self.op {
            Op::Distance { l1 } => {
                let labels = match bottoms.get(2) {
                    Some(l) => Some(class_labels(l.data(), n)?),
                    None => None,
                };
                let mut dw = vec![0.0f32; w.len()];
                let dx = propagate_down[0].then(|| bottoms[0].diff_mut());
                distance_grads((&x, &w, k), g, labels.as_deref(), l1, (dx, &mut dw));
                if propagate_down[1] {
                    bottoms[1].diff_mut().copy_from_slice(&dw);
                }
            }
            Op::Product { .. } => {
                if propagate_down[1] {
                    gemm(true, false, n, k, m, 1.0, g, &x, 0.0, bottoms[1].diff_mut());
                }
                let colsum: Vec<f32> = (0..n)
                    .map(|j| g.chunks(n).map(|r| r[j] as f64).sum::<f64>() as f32)
                    .collect();
                if let Some(p) = params.first_mut() {
                    p.diff_mut()
                        .iter_mut()
                        .zip(&colsum)
                        .for_each(|(d, &s)| *d += s);
                }
                if propagate_down.get(2) == Some(&true) {
                    bottoms[2].diff_mut().copy_from_slice(&colsum);
                }
                if propagate_down[0] {
                    gemm(
                        false,
                        false,
                        m,
                        k,
                        n,
                        1.0,
                        g,
                        &w,
                        0.0,
                        bottoms[0].diff_mut(),
                    );
                }
            }
        }
        Ok(())
    }
}
