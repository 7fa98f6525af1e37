//! InnerDistance (happynear/caffe-windows; NormFace, Wang et al. 2017): distances from
//! each sample to N learned class centres (the rows of W), for the normalised-Euclidean
//! contrastive and triplet losses. Legend: x flattened from `axis` to M×K, W N×K.
//!
//! Forward: with `normalize: true` every row of W is first replaced IN PLACE by
//! w_j/‖w_j‖ (as InnerProduct's `normalize`); then
//!   L2: d_ij = Σ_k (x_ik − w_jk)²  (squared),  L1: d_ij = Σ_k |x_ik − w_jk|.
//! Backward (G = top diff):
//!   L2: dx_i = 2·Σ_j g_ij·(x_i − w_j),  dw_j += 2·Σ_i g_ij·(w_j − x_i);
//!   L1: the same with sign(·) in place of 2·(·).
//! dW is taken w.r.t. the stored (normalised) rows, not projected through the
//! normalisation (the fork's update). With `update_center_only: true` a label bottom
//! (bottom 1, M values) limits dW to each sample's own class row.
//! `bias_term` (default true, as in the fork) makes an N-value bias blob that the fork
//! never uses: it is kept for weight-file compatibility and gets no gradient.

use super::filler::{fill, FillerParams};
use super::margin_inner_product::{class_labels, normalize_rows};
use super::{
    canonical_axis, count, fmt_shape, required, Arity, BuildContext, Layer, Shape, ShapeError,
};
use crate::backend::gemm;
use crate::blob::Blob;
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::LayerDef;
use crate::philox::ParamStreams;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InnerDistanceParams {
    pub num_output: Option<u32>,
    pub bias_term: bool,
    pub weight_filler: FillerParams,
    pub bias_filler: FillerParams,
    pub axis: i32,
    /// Refused when true (the fork does not implement it either).
    pub transpose: bool,
    /// "L2" (squared Euclidean) or "L1".
    pub distance_type: String,
    pub normalize: bool,
    pub update_center_only: bool,
}

impl Default for InnerDistanceParams {
    fn default() -> Self {
        InnerDistanceParams {
            num_output: None,
            bias_term: true,
            weight_filler: FillerParams::default(),
            bias_filler: FillerParams::default(),
            axis: 1,
            transpose: false,
            distance_type: "L2".into(),
            normalize: false,
            update_center_only: false,
        }
    }
}

pub struct InnerDistanceLayer {
    pub params: InnerDistanceParams,
    pub num_output: usize,
    pub k: usize,
    l1: bool,
}

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    const BLOCK: &str = "inner_distance_param";
    let p: InnerDistanceParams = def.params(BLOCK)?;
    p.weight_filler.validate(def, BLOCK, "weight_filler")?;
    p.bias_filler.validate(def, BLOCK, "bias_filler")?;
    let span = def
        .block
        .get(BLOCK)
        .map_or(def.name_span(), |f| f.name_span);
    let l1 = match p.distance_type.as_str() {
        "L2" => false,
        "L1" => true,
        other => {
            return Err(def.error(
                span,
                format!(
                    "{}: unknown distance_type \"{other}\" (\"L2\" or \"L1\")",
                    def.describe()
                ),
            ))
        }
    };
    if p.transpose {
        return Err(def.error(
            span,
            format!("{}: `transpose: true` is not supported", def.describe()),
        ));
    }
    // Weights as bottom 1: two bottoms without `update_center_only`, or three with it
    // (labels last).
    let nb = def.bottom.len();
    if (nb == 2 && !p.update_center_only) || nb == 3 {
        if nb == 3 && !p.update_center_only {
            return Err(def.error(
                span,
                format!(
                    "{}: a third bottom (labels) needs `update_center_only: true`",
                    def.describe()
                ),
            ));
        }
        return super::weight_bottom::build_form(
            def,
            BLOCK,
            super::weight_bottom::Op::Distance { l1 },
            (p.axis, &p.bias_filler),
            (p.transpose, p.normalize),
        );
    }
    let num_output = required(def, p.num_output, BLOCK, "num_output")? as usize;
    if p.update_center_only != (def.bottom.len() == 2) {
        return Err(def.error(
            span,
            format!(
                "{}: `update_center_only: true` needs a label bottom (bottom 1), and a label bottom needs it",
                def.describe()
            ),
        ));
    }
    Ok(Box::new(InnerDistanceLayer {
        params: p,
        num_output,
        k: 0,
        l1,
    }))
}

impl Layer for InnerDistanceLayer {
    fn type_name(&self) -> &'static str {
        "InnerDistance"
    }
    fn bottoms(&self) -> Arity {
        Arity::between(1, 2)
    }
    fn tops(&self) -> Arity {
        Arity::exactly(1)
    }
    fn can_backprop_to(&self, bottom: usize) -> bool {
        bottom == 0
    }

    fn reshape(&mut self, bottom: &[Shape]) -> Result<Vec<Shape>, ShapeError> {
        let b = &bottom[0];
        let axis = canonical_axis(self.params.axis, b.len()).ok_or_else(|| {
            ShapeError::at_bottom(
                0,
                format!(
                    "axis {} is out of range for shape {}",
                    self.params.axis,
                    fmt_shape(b)
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
        if let Some(l) = bottom.get(1) {
            if count(l) != count(&b[..axis]) {
                return Err(ShapeError::at_bottom(
                    1,
                    format!(
                        "label bottom 1 has shape {} but bottom 0 has {} samples",
                        fmt_shape(l),
                        count(&b[..axis])
                    ),
                ));
            }
        }
        self.k = k;
        let mut top = b[..axis].to_vec();
        top.push(self.num_output);
        Ok(vec![top])
    }

    fn param_shapes(&self) -> Vec<Shape> {
        let mut v = vec![vec![self.num_output, self.k]];
        if self.params.bias_term {
            v.push(vec![self.num_output]);
        }
        v
    }

    fn flops(&self, _bottom: &[Shape], top: &[Shape]) -> u64 {
        3 * self.k as u64 * count(&top[0]) as u64
    }

    fn fill_params(&self, params: &mut [Blob], streams: &ParamStreams) {
        fill(&self.params.weight_filler, &mut params[0], streams.blob(0));
        if let Some(b) = params.get_mut(1) {
            fill(&self.params.bias_filler, b, streams.blob(1));
        }
    }

    fn param_diff_is_gradient(&self, index: usize) -> bool {
        index == 0 && !self.params.normalize && !self.params.update_center_only
    }

    fn forward(&mut self, io: &mut LayerIo, _ctx: &mut RunCtx) -> Result<(), String> {
        let (bottoms, mut tops, params) = io.forward_split();
        if self.params.normalize {
            normalize_rows(params[0].data_mut(), self.k);
        }
        let (x, w) = (bottoms[0].data(), params[0].data());
        distances(x, w, self.k, self.l1, tops[0].data_mut());
        Ok(())
    }

    fn backward(
        &mut self,
        io: &mut LayerIo,
        propagate_down: &[bool],
        _ctx: &mut RunCtx,
    ) -> Result<(), String> {
        let (mut bottoms, tops, params) = io.backward_split();
        let labels = match bottoms.get(1) {
            Some(l) => Some(class_labels(l.data(), self.num_output)?),
            None => None,
        };
        let (x, dx) = bottoms[0].data_and_diff_mut();
        let (w, dw) = params[0].data_and_diff_mut();
        let dx = propagate_down[0].then_some(dx);
        distance_grads(
            (x, w, self.k),
            tops[0].diff(),
            labels.as_deref(),
            self.l1,
            (dx, dw),
        );
        Ok(())
    }
}

/// d (M×N) from x (M×K) and the rows of w (N×K): squared L2 or L1 distances.
pub fn distances(x: &[f32], w: &[f32], k: usize, l1: bool, d: &mut [f32]) {
    let k1 = k.max(1);
    let (m, n) = (x.len() / k1, w.len() / k1);
    if l1 {
        for i in 0..m {
            let xi = &x[i * k..(i + 1) * k];
            for j in 0..n {
                let wj = &w[j * k..(j + 1) * k];
                d[i * n + j] = xi.iter().zip(wj).map(|(&a, &b)| (a - b).abs()).sum();
            }
        }
        return;
    }
    // ‖x_i‖² + ‖w_j‖² − 2·x_i·w_j, the norms in f64.
    gemm(false, true, m, n, k, -2.0, x, w, 0.0, d);
    let sq = |v: &[f32]| v.iter().map(|&a| a as f64 * a as f64).sum::<f64>();
    let wn: Vec<f64> = w.chunks(k1).map(sq).collect();
    for (i, row) in d.chunks_mut(n.max(1)).enumerate() {
        let xn = sq(&x[i * k..(i + 1) * k]);
        for (v, &wj) in row.iter_mut().zip(&wn) {
            *v = ((*v as f64 + xn + wj).max(0.0)) as f32;
        }
    }
}

/// The gradients of [`distances`] for top diff g: dx (set, when given) and dw
/// (accumulated; with `labels`, only into each sample's own row).
pub fn distance_grads(
    (x, w, k): (&[f32], &[f32], usize),
    g: &[f32],
    labels: Option<&[usize]>,
    l1: bool,
    (mut dx, dw): (Option<&mut [f32]>, &mut [f32]),
) {
    let (m, n) = (x.len() / k.max(1), w.len() / k.max(1));
    let owns = |i: usize, j: usize| labels.is_none_or(|l| l[i] == j);
    if l1 {
        let sgn = |v: f32| {
            if v > 0.0 {
                1.0
            } else if v < 0.0 {
                -1.0
            } else {
                0.0
            }
        };
        if let Some(dx) = dx.as_deref_mut() {
            dx.fill(0.0);
        }
        for i in 0..m {
            for j in 0..n {
                let gij = g[i * n + j];
                for t in 0..k {
                    let s = sgn(x[i * k + t] - w[j * k + t]) * gij;
                    if let Some(dx) = dx.as_deref_mut() {
                        dx[i * k + t] += s;
                    }
                    if owns(i, j) {
                        dw[j * k + t] -= s;
                    }
                }
            }
        }
        return;
    }
    // dW += 2·(colsum(G)_j·w_j − (GᵀX)_j), over the rows each sample may update.
    let mut gm = g.to_vec();
    if let Some(l) = labels {
        for (i, row) in gm.chunks_mut(n).enumerate() {
            row.iter_mut().enumerate().for_each(|(j, v)| {
                if j != l[i] {
                    *v = 0.0
                }
            });
        }
    }
    let mut colsum = vec![0.0f64; n];
    for row in gm.chunks(n) {
        colsum
            .iter_mut()
            .zip(row)
            .for_each(|(s, &v)| *s += v as f64);
    }
    gemm(true, false, n, k, m, -2.0, &gm, x, 1.0, dw);
    for (j, (dr, wr)) in dw.chunks_mut(k).zip(w.chunks(k)).enumerate() {
        let c = 2.0 * colsum[j];
        dr.iter_mut()
            .zip(wr)
            .for_each(|(d, &v)| *d = (*d as f64 + c * v as f64) as f32);
    }
    if let Some(dx) = dx {
        // dx = 2·(rowsum(G)_i·x_i − (G·W)_i).
        gemm(false, false, m, k, n, -2.0, g, w, 0.0, dx);
        for (i, row) in g.chunks(n).enumerate() {
            let s = 2.0 * row.iter().map(|&v| v as f64).sum::<f64>();
            let (xi, di) = (&x[i * k..(i + 1) * k], &mut dx[i * k..(i + 1) * k]);
            di.iter_mut()
                .zip(xi)
                .for_each(|(d, &v)| *d = (*d as f64 + s * v as f64) as f32);
        }
    }
}
