//! MarginInnerProduct (wy1iu/sphereface): the A-Softmax logits, fed to SoftmaxWithLoss.
//! Legend: M samples (axes before `axis`), K features (axes from `axis`), N = num_output;
//! x_i ∈ R^K, W N×K (no bias), y = y_i = (int) label i, m = 1..4 for SINGLE..QUADRUPLE.
//!
//! Forward:
//! 1. In the TRAIN phase t ← t + 1 (t starts at `iteration`, per layer instance);
//!    λ = max(base·(1 + gamma·t)^(−power), lambda_min), written to top 1 (shape `[1]`).
//!    Deviation from sphereface, which advances t on every call in any phase and
//!    restarts it at `iteration` on resume: TEST-phase forwards use the current t
//!    without advancing it, and t is layer state (`iteration`, see `Layer::state`)
//!    that the solver saves and restores.
//! 2. Every row of W is replaced IN PLACE by w_j/‖w_j‖ (no epsilon), also for SINGLE.
//! 3. r = ‖x_i‖, c = x_i·w_y / r (the target cosine; no epsilon), in f64.
//! 4. f_ij = x_i·w_j for j ≠ y, and for every j when m = 1 (λ and labels unused);
//!    f_iy = (λ·r·c + r·ψ(c)) / (1 + λ), ψ = (−1)^k·cos(mθ) − 2k, θ = arccos c,
//!    k = ⌊mθ/π⌋, computed from signs (sgn 0 = 0, s0 = sgn c):
//!    m=2: ψ = 2·s0·c² − 1;
//!    m=3: ψ = s1·(4c³ − 3c) + s2, s1 = sgn(|c| − ½), s2 = s0·(1 + s1) − 2;
//!    m=4: ψ = s3·(8c⁴ − 8c² + 1) + s4, s3 = s0·sgn(2c² − 1), s4 = 2·s0 + s3 − 3.
//!    A label outside [0, N) is an error (sphereface reads out of bounds).
//!
//! Backward as sphereface codes it (G = top-0 diff, M×N; not the true gradient for m > 1):
//!   dW += Gᵀ·X: the plain inner-product gradient w.r.t. the normalised W, ignoring ψ,
//!     λ and the normalisation, for every m;
//!   m = 1: dX = G·W;
//!   m > 1: dx_i = Σ_{j≠y} g_ij·w_j + g_iy·[λ/(1+λ)·w_y + 1/(1+λ)·(â·w_y + b̂·x_i)],
//!     (â, b̂) = (a, b)/√(a² + b²), where a·w_y + b·x_i = ∂(r·ψ(c))/∂x_i, i.e.
//!     a = ψ'(c), b = (ψ(c) − c·ψ'(c))/r:
//!     m=2: a = 4·s0·c,          b = −(2·s0·c² + 1)/r;
//!     m=3: a = s1·(12c² − 3),   b = −(8·s1·c³ − s2)/r;
//!     m=4: a = s3·(32c³ − 16c), b = −(s3·(24c⁴ − 8c² − 1) − s4)/r;
//!   no gradient to the label.
//!
//! netrun extension `exact_gradient: true`: backward gives the true gradient of the
//! forward above instead (the reference cases' `autograd.*` tensors): dx_i uses (a, b)
//! unscaled; with G' = G except g'_iy = g_iy·(λ + a)/(1 + λ), dŴ = G'ᵀ·X w.r.t. the
//! normalised rows, and the stored (raw) rows get dw_j += (dŵ_j − (ŵ_j·dŵ_j)·ŵ_j)/‖w_j‖
//! with ‖w_j‖ the norm before this forward normalised it.

mod head;
mod psi;
mod rows;

pub(crate) use head::{margin_head_from, margin_head_methods};
pub use head::{Annealing, MarginHead};
pub use psi::{lambda_at, psi, target_cosine, Psi};
pub use rows::{class_labels, logits_shape, normalize_rows, project_rows, unit_rows};

use super::filler::FillerParams;
use super::{BuildContext, Layer};
use crate::backend::gemm;
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::LayerDef;
use serde::Deserialize;

/// `MarginType`: the A-Softmax m. SINGLE = 0 (m=1) … QUADRUPLE = 3 (m=4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MarginType {
    #[default]
    Single,
    Double,
    Triple,
    Quadruple,
}

impl MarginType {
    /// The angular multiplier m.
    pub fn m(self) -> u32 {
        self as u32 + 1
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MarginInnerProductParams {
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
    /// netrun extension: true gradient instead of sphereface's coded one.
    pub exact_gradient: bool,
}

impl Default for MarginInnerProductParams {
    fn default() -> Self {
        MarginInnerProductParams {
            num_output: None,
            margin_type: MarginType::Single,
            weight_filler: FillerParams::default(),
            axis: 1,
            base: 1.0,
            gamma: 0.0,
            power: 1.0,
            iteration: 0,
            lambda_min: 0.0,
            exact_gradient: false,
        }
    }
}

pub struct MarginInnerProductLayer {
    pub params: MarginInnerProductParams,
    head: MarginHead,
    /// ‖w_j‖ before the last forward normalised the rows (for `exact_gradient`).
    raw_norms: Vec<f64>,
}

/// Restores an annealing counter saved as the state `iteration` (MarginInnerProduct,
/// LargeMarginInnerProduct, LabelSpecificAdd); an error names anything else.
pub fn set_counter(iter: &mut i64, state: &[(String, f64)], layer: &str) -> Result<(), String> {
    for (name, v) in state {
        if name != "iteration" {
            return Err(format!(
                "unknown state `{name}` ({layer} keeps `iteration`)"
            ));
        }
        if !v.is_finite() || v.fract() != 0.0 {
            return Err(format!("state `iteration` must be a whole number, got {v}"));
        }
        *iter = *v as i64;
    }
    Ok(())
}

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    const BLOCK: &str = "margin_inner_product_param";
    let p: MarginInnerProductParams = def.params(BLOCK)?;
    let head = margin_head_from!(def, BLOCK, p)?;
    Ok(Box::new(MarginInnerProductLayer {
        params: p,
        head,
        raw_norms: Vec::new(),
    }))
}

impl Layer for MarginInnerProductLayer {
    fn type_name(&self) -> &'static str {
        "MarginInnerProduct"
    }
    margin_head_methods!("MarginInnerProduct");

    fn param_diff_is_gradient(&self, _index: usize) -> bool {
        self.params.exact_gradient
    }

    fn forward(&mut self, io: &mut LayerIo, ctx: &mut RunCtx) -> Result<(), String> {
        let (bottoms, mut tops, params) = io.forward_split();
        let (k, n, m) = (self.head.k, self.head.num_output, self.head.m);
        let labels = self.head.labels(bottoms[1].data())?;
        let lambda = self.head.advance(ctx.phase);
        self.raw_norms = normalize_rows(params[0].data_mut(), k);
        let (x, w) = (bottoms[0].data(), params[0].data());
        let rows = bottoms[0].count() / k.max(1);
        gemm(false, true, rows, n, k, 1.0, x, w, 0.0, tops[0].data_mut());
        let f = tops[0].data_mut();
        for (i, &y) in labels.iter().enumerate() {
            let (r, xw, c) = target_cosine(&x[i * k..(i + 1) * k], &w[y * k..(y + 1) * k]);
            f[i * n + y] = ((lambda * xw + r * psi(m, c).value) / (1.0 + lambda)) as f32;
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
        let (lambda, exact) = (self.head.lambda, self.params.exact_gradient);
        if self.raw_norms.len() != n {
            return Err("backward called before forward".to_string());
        }
        let labels = self.head.labels(bottoms[1].data())?;
        let rows = bottoms[0].count() / k.max(1);
        let g = tops[0].diff();
        let (x, dx) = bottoms[0].data_and_diff_mut();
        let (w, dw) = params[0].data_and_diff_mut();
        // G' (target entries reweighted) and the coefficient of x_i in dx_i.
        let mut gm = g.to_vec();
        let mut on_x = vec![0.0f64; labels.len()];
        for (i, &y) in labels.iter().enumerate() {
            let (r, _, c) = target_cosine(&x[i * k..(i + 1) * k], &w[y * k..(y + 1) * k]);
            let ps = psi(m, c);
            let (mut a, mut b) = (ps.slope, (ps.value - c * ps.slope) / r);
            if !exact {
                let len = a.hypot(b);
                (a, b) = (a / len, b / len);
            }
            let gy = g[i * n + y] as f64;
            gm[i * n + y] = (gy * (lambda + a) / (1.0 + lambda)) as f32;
            on_x[i] = gy * b / (1.0 + lambda);
        }
        if exact {
            let mut dw_unit = vec![0.0f32; n * k];
            gemm(true, false, n, k, rows, 1.0, &gm, x, 0.0, &mut dw_unit);
            let along: Vec<f64> = w
                .chunks(k)
                .zip(dw_unit.chunks(k))
                .map(|(wj, dj)| wj.iter().zip(dj).map(|(&a, &b)| a as f64 * b as f64).sum())
                .collect();
            project_rows(dw, &dw_unit, w, &along, &self.raw_norms, k, true);
        } else {
            gemm(true, false, n, k, rows, 1.0, g, x, 1.0, dw);
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
