//! LargeMarginInnerProduct (wy1iu/LargeMargin_Softmax_Loss): the L-Softmax logits of
//! Liu et al., "Large-Margin Softmax Loss for Convolutional Neural Networks" (ICML
//! 2016), fed to SoftmaxWithLoss; A-Softmax's predecessor, sharing its ψ and λ code
//! (`margin_inner_product::{psi, lambda_at}`). Legend: M samples, K features (from
//! `axis`), N = num_output; x_i ∈ R^K, W N×K (no bias, NOT normalised), y = label i,
//! m = 1..4 for SINGLE..QUADRUPLE, r = ‖x_i‖, ρ = ‖w_y‖, c = x_i·w_y/(r·ρ).
//!
//! Forward: in TRAIN t ← t + 1 (t starts at `iteration`; layer state saved by the
//! solver), λ = max(base·(1 + gamma·t)^(−power), lambda_min), written to top 1 (`[1]`).
//!   f_ij = x_i·w_j for j ≠ y (and everywhere when m = 1);
//!   f_iy = (λ·x_i·w_y + r·ρ·ψ(c)) / (1 + λ), ψ(c) = (−1)^k·cos(mθ) − 2k, θ = arccos c.
//! Backward: the true gradient (G = top-0 diff). With a = ψ'(c), b = ψ(c) − c·ψ'(c):
//!   dx_i = Σ_{j≠y} g_ij·w_j + g_iy/(1+λ)·[(λ + a)·w_y + (ρ·b/r)·x_i],
//!   dw_y += Σ_{i: y_i = y} g_iy/(1+λ)·[(λ + a)·x_i + (r·b/ρ)·w_y],  dw_j += g_ij·x_i else.
//! No gradient to the label; a label outside [0, N) is an error. The fork adds 1e-9 to
//! r·ρ before dividing; netrun does not (a zero x or w row gives NaN, as sphereface).

use super::filler::FillerParams;
use super::margin_inner_product::{
    margin_head_from, margin_head_methods, psi, MarginHead, MarginType,
};
use super::{BuildContext, Layer};
use crate::backend::gemm;
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::LayerDef;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LargeMarginParams {
    pub num_output: Option<u32>,
    #[serde(rename = "type")]
    pub margin_type: MarginType,
    pub weight_filler: FillerParams,
    pub axis: i32,
    pub base: f32,
    pub gamma: f32,
    pub power: f32,
    pub iteration: i32,
    pub lambda_min: f32,
}

impl Default for LargeMarginParams {
    fn default() -> Self {
        LargeMarginParams {
            num_output: None,
            margin_type: MarginType::Single,
            weight_filler: FillerParams::default(),
            axis: 1,
            base: 1.0,
            gamma: 0.0,
            power: 1.0,
            iteration: 0,
            lambda_min: 0.0,
        }
    }
}

pub struct LargeMarginInnerProductLayer {
    pub params: LargeMarginParams,
    head: MarginHead,
}

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    const BLOCK: &str = "largemargin_inner_product_param";
    let p: LargeMarginParams = def.params(BLOCK)?;
    let head = margin_head_from!(def, BLOCK, p)?;
    Ok(Box::new(LargeMarginInnerProductLayer { params: p, head }))
}

/// ‖v‖ in f64.
fn norm(v: &[f32]) -> f64 {
    v.iter().map(|&a| a as f64 * a as f64).sum::<f64>().sqrt()
}

/// x·w in f64.
fn dot(x: &[f32], w: &[f32]) -> f64 {
    x.iter().zip(w).map(|(&a, &b)| a as f64 * b as f64).sum()
}

impl Layer for LargeMarginInnerProductLayer {
    fn type_name(&self) -> &'static str {
        "LargeMarginInnerProduct"
    }
    margin_head_methods!("LargeMarginInnerProduct");

    fn forward(&mut self, io: &mut LayerIo, ctx: &mut RunCtx) -> Result<(), String> {
        let (bottoms, mut tops, params) = io.forward_split();
        let (k, n, m) = (self.head.k, self.head.num_output, self.head.m);
        let labels = self.head.labels(bottoms[1].data())?;
        let lambda = self.head.advance(ctx.phase);
        let (x, w) = (bottoms[0].data(), params[0].data());
        let rows = x.len() / k.max(1);
        gemm(false, true, rows, n, k, 1.0, x, w, 0.0, tops[0].data_mut());
        let f = tops[0].data_mut();
        for (i, &y) in labels.iter().enumerate() {
            let (xi, wy) = (&x[i * k..(i + 1) * k], &w[y * k..(y + 1) * k]);
            let (r, rho, xw) = (norm(xi), norm(wy), dot(xi, wy));
            let c = xw / (r * rho);
            f[i * n + y] = ((lambda * xw + r * rho * psi(m, c).value) / (1.0 + lambda)) as f32;
        }
        if let Some(t) = tops.get_mut(1) {
            t.data_mut()[0] = lambda as f32;
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
        let (k, n, m) = (self.head.k, self.head.num_output, self.head.m);
        let lambda = self.head.lambda;
        let labels = self.head.labels(bottoms[1].data())?;
        let g = tops[0].diff();
        let (x, dx) = bottoms[0].data_and_diff_mut();
        let rows = x.len() / k.max(1);
        let (w, dw) = params[0].data_and_diff_mut();
        let mut gm = g.to_vec();
        // Per sample: the coefficient of x_i in dx_i and of w_y in dw_y.
        let (mut on_x, mut on_w) = (vec![0.0f64; labels.len()], vec![0.0f64; n]);
        for (i, &y) in labels.iter().enumerate() {
            let (xi, wy) = (&x[i * k..(i + 1) * k], &w[y * k..(y + 1) * k]);
            let (r, rho) = (norm(xi), norm(wy));
            let c = dot(xi, wy) / (r * rho);
            let ps = psi(m, c);
            let (a, b) = (ps.slope, ps.value - c * ps.slope);
            let gy = g[i * n + y] as f64 / (1.0 + lambda);
            gm[i * n + y] = (gy * (lambda + a)) as f32;
            on_x[i] = gy * rho * b / r;
            on_w[y] += gy * r * b / rho;
        }
        gemm(true, false, n, k, rows, 1.0, &gm, x, 1.0, dw);
        for (j, s) in on_w.iter().enumerate().filter(|(_, s)| **s != 0.0) {
            let (wj, dj) = (&w[j * k..(j + 1) * k], &mut dw[j * k..(j + 1) * k]);
            dj.iter_mut()
                .zip(wj)
                .for_each(|(d, &v)| *d = (*d as f64 + s * v as f64) as f32);
        }
        if propagate_down[0] {
            gemm(false, false, rows, k, n, 1.0, &gm, w, 0.0, dx);
            for (i, &s) in on_x.iter().enumerate() {
                let (xi, di) = (&x[i * k..(i + 1) * k], &mut dx[i * k..(i + 1) * k]);
                di.iter_mut()
                    .zip(xi)
                    .for_each(|(d, &v)| *d = (*d as f64 + s * v as f64) as f32);
            }
        }
        Ok(())
    }
}
