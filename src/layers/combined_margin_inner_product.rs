//! CombinedMarginInnerProduct (netrun-defined): cosine logits with the combined angular
//! margin s·(cos(m1·θ + m2) − m3), covering normalised A-Softmax (m1), ArcFace (m2),
//! CosFace (m3) and NormFace (none); fed to SoftmaxWithLoss.
//! Legend: M samples (axes before `axis`), K features (axes from `axis`), N = num_output;
//! x_i ∈ R^K, W N×K (no bias), y = y_i = (int) label i.
//!
//! Forward: both the features and the weight rows are normalised on the fly (the stored
//! W is NOT modified, unlike MarginInnerProduct):
//!   x̂_i = x_i/‖x_i‖, ŵ_j = w_j/‖w_j‖ (norms floored at 1e-12), c_ij = clamp(x̂_i·ŵ_j, −1, 1)
//!   (the target c_iy is taken in f64 from x and w);
//!   f_ij = s·c_ij for j ≠ y;  f_iy = s·(ψ(θ) − m3), θ = arccos c_iy,
//!   ψ(θ) = (−1)^k·cos(m1·θ + m2) − 2k, k = ⌊(m1·θ + m2)/π⌋.
//!   Beyond π: ψ = cos(m1·θ + m2) while m1·θ + m2 ≤ π, then continues by the A-Softmax
//!   extension above (continuous and decreasing on the whole of [0, π], for any m1 > 0).
//!   Neither ArcFace's `easy_margin` (no margin where cos θ ≤ 0) nor insightface's
//!   threshold fallback (cos θ − m2·sin m2 past θ = π − m2) is used.
//!   m1 = 1, m2 = 0 gives s·(cos θ − m3): NormFace for m3 = 0, CosFace otherwise;
//!   m1 = 1, m3 = 0 gives ArcFace's s·cos(θ + m2) for θ ≤ π − m2.
//!   A label outside [0, N) is an error.
//! Backward: the true gradient (G = top diff, M×N). With dc_ij = s·g_ij for j ≠ y and
//!   dc_iy = s·g_iy·ψ'(c), ψ'(c) = (−1)^k·m1·sin(m1·θ + m2)/sin θ, evaluated at θ clamped
//!   to [1e-6, π − 1e-6] (so c = ±1 gives the one-sided limit instead of 0/0):
//!   dx_i = Σ_j dc_ij·(ŵ_j − c_ij·x̂_i)/‖x_i‖,  dW_j += Σ_i dc_ij·(x̂_i − c_ij·ŵ_j)/‖w_j‖.
//!   No gradient to the label.
//! Typical settings: ArcFace m2 = 0.5, s = 64; CosFace m3 = 0.35, s = 64;
//! SphereFace-style m1 = 4 (no λ annealing; use MarginInnerProduct for that).

use super::filler::{fill, FillerParams};
use super::margin_inner_product::{class_labels, logits_shape, project_rows, unit_rows};
use super::{count, required, Arity, BuildContext, Layer, Shape, ShapeError};
use crate::backend::gemm;
use crate::blob::Blob;
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::LayerDef;
use crate::philox::ParamStreams;
use serde::Deserialize;
use std::f64::consts::PI;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CombinedMarginParams {
    pub num_output: Option<u32>,
    pub weight_filler: FillerParams,
    pub axis: i32,
    /// Multiplicative angular margin (A-Softmax m).
    pub m1: f32,
    /// Additive angular margin (ArcFace m), radians.
    pub m2: f32,
    /// Additive cosine margin (CosFace m).
    pub m3: f32,
    /// Logit scale.
    pub s: f32,
}

impl Default for CombinedMarginParams {
    fn default() -> Self {
        CombinedMarginParams {
            num_output: None,
            weight_filler: FillerParams::default(),
            axis: 1,
            m1: 1.0,
            m2: 0.0,
            m3: 0.0,
            s: 64.0,
        }
    }
}

pub struct CombinedMarginInnerProductLayer {
    pub params: CombinedMarginParams,
    pub num_output: usize,
    /// Flattened input size K, fixed at the first reshape.
    pub k: usize,
    /// Kept from forward for backward: x̂ (M×K), ŵ (N×K), their norms, the clamped
    /// cosines (M×N) and ψ'(c_iy) per sample.
    x_unit: Vec<f32>,
    w_unit: Vec<f32>,
    x_norm: Vec<f64>,
    w_norm: Vec<f64>,
    cos: Vec<f32>,
    slope: Vec<f64>,
}

const BLOCK: &str = "combined_margin_inner_product_param";

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    let p: CombinedMarginParams = def.params(BLOCK)?;
    let num_output = required(def, p.num_output, BLOCK, "num_output")? as usize;
    p.weight_filler.validate(def, BLOCK, "weight_filler")?;
    let bad = [
        ("m1", p.m1, p.m1 > 0.0, "> 0"),
        (
            "m2",
            p.m2,
            (0.0..std::f32::consts::PI).contains(&p.m2),
            "in [0, π)",
        ),
        ("m3", p.m3, p.m3 >= 0.0, "≥ 0"),
        ("s", p.s, p.s > 0.0, "> 0"),
    ]
    .into_iter()
    .find(|(_, v, ok, _)| !ok || !v.is_finite());
    if let Some((name, v, _, want)) = bad {
        return Err(def.error(
            def.block
                .get(BLOCK)
                .map_or(def.name_span(), |f| f.value_span),
            format!("{}: `{name}` must be {want}, got {v}", def.describe()),
        ));
    }
    Ok(Box::new(CombinedMarginInnerProductLayer {
        params: p,
        num_output,
        k: 0,
        x_unit: Vec::new(),
        w_unit: Vec::new(),
        x_norm: Vec::new(),
        w_norm: Vec::new(),
        cos: Vec::new(),
        slope: Vec::new(),
    }))
}

/// (−1)^k·cos φ − 2k for φ = m1·θ + m2, k = ⌊φ/π⌋; returns (value, k's sign).
fn extended_cos(phi: f64) -> (f64, f64) {
    let k = (phi / PI).floor();
    let sign = if k % 2.0 == 0.0 { 1.0 } else { -1.0 };
    (sign * phi.cos() - 2.0 * k, sign)
}

impl CombinedMarginInnerProductLayer {
    /// ψ and dψ/dc at the target cosine c.
    fn margin(&self, c: f64) -> (f64, f64) {
        let (m1, m2) = (self.params.m1 as f64, self.params.m2 as f64);
        let theta = c.clamp(-1.0, 1.0).acos();
        let (value, _) = extended_cos(m1 * theta + m2);
        let t = theta.clamp(1e-6, PI - 1e-6);
        let (_, sign) = extended_cos(m1 * t + m2);
        (value, sign * m1 * (m1 * t + m2).sin() / t.sin())
    }
}

impl Layer for CombinedMarginInnerProductLayer {
    fn type_name(&self) -> &'static str {
        "CombinedMarginInnerProduct"
    }
    fn bottoms(&self) -> Arity {
        Arity::exactly(2)
    }
    fn tops(&self) -> Arity {
        Arity::exactly(1)
    }
    fn can_backprop_to(&self, bottom: usize) -> bool {
        bottom == 0
    }

    fn reshape(&mut self, bottom: &[Shape]) -> Result<Vec<Shape>, ShapeError> {
        let (logits, k) = logits_shape(bottom, self.params.axis, self.num_output, self.k)?;
        self.k = k;
        Ok(vec![logits])
    }

    fn param_shapes(&self) -> Vec<Shape> {
        vec![vec![self.num_output, self.k]]
    }

    fn flops(&self, _bottom: &[Shape], top: &[Shape]) -> u64 {
        2 * self.k as u64 * count(&top[0]) as u64
    }

    fn fill_params(&self, params: &mut [Blob], streams: &ParamStreams) {
        fill(&self.params.weight_filler, &mut params[0], streams.blob(0));
    }

    fn forward(&mut self, io: &mut LayerIo, _ctx: &mut RunCtx) -> Result<(), String> {
        let (bottoms, mut tops, params) = io.forward_split();
        let (k, n) = (self.k, self.num_output);
        let labels = class_labels(bottoms[1].data(), n)?;
        let rows = labels.len();
        let (x, w) = (bottoms[0].data(), params[0].data());
        self.x_norm = unit_rows(x, k, &mut self.x_unit);
        self.w_norm = unit_rows(w, k, &mut self.w_unit);
        self.cos.resize(rows * n, 0.0);
        gemm(
            false,
            true,
            rows,
            n,
            k,
            1.0,
            &self.x_unit,
            &self.w_unit,
            0.0,
            &mut self.cos,
        );
        self.cos.iter_mut().for_each(|c| *c = c.clamp(-1.0, 1.0));
        let s = self.params.s;
        let f = tops[0].data_mut();
        f.iter_mut().zip(&self.cos).for_each(|(v, &c)| *v = s * c);
        self.slope.clear();
        for (i, &y) in labels.iter().enumerate() {
            let (xi, wy) = (&x[i * k..(i + 1) * k], &w[y * k..(y + 1) * k]);
            let xw: f64 = xi.iter().zip(wy).map(|(&a, &b)| a as f64 * b as f64).sum();
            let c = (xw / (self.x_norm[i] * self.w_norm[y])).clamp(-1.0, 1.0);
            let (value, slope) = self.margin(c);
            self.cos[i * n + y] = c as f32;
            self.slope.push(slope);
            f[i * n + y] = (s as f64 * (value - self.params.m3 as f64)) as f32;
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
        let labels = class_labels(bottoms[1].data(), n)?;
        let rows = labels.len();
        if self.slope.len() != rows || self.w_norm.len() != n {
            return Err("backward called before forward".to_string());
        }
        let s = self.params.s;
        // dL/dc, and Σ_j dc_ij·c_ij per row / Σ_i per column for the projections.
        let mut dc: Vec<f32> = tops[0].diff().iter().map(|&g| s * g).collect();
        for (i, &y) in labels.iter().enumerate() {
            dc[i * n + y] = (dc[i * n + y] as f64 * self.slope[i]) as f32;
        }
        let (mut along_x, mut along_w) = (vec![0.0f64; rows], vec![0.0f64; n]);
        for (i, (drow, crow)) in dc.chunks(n).zip(self.cos.chunks(n)).enumerate() {
            for (j, (&d, &c)) in drow.iter().zip(crow).enumerate() {
                along_x[i] += d as f64 * c as f64;
                along_w[j] += d as f64 * c as f64;
            }
        }
        let mut dw_unit = vec![0.0f32; n * k];
        gemm(
            true,
            false,
            n,
            k,
            rows,
            1.0,
            &dc,
            &self.x_unit,
            0.0,
            &mut dw_unit,
        );
        let dw = params[0].diff_mut();
        project_rows(dw, &dw_unit, &self.w_unit, &along_w, &self.w_norm, k, true);
        if propagate_down[0] {
            let dx = bottoms[0].diff_mut();
            gemm(false, false, rows, k, n, 1.0, &dc, &self.w_unit, 0.0, dx);
            let raw = dx.to_vec();
            project_rows(dx, &raw, &self.x_unit, &along_x, &self.x_norm, k, false);
        }
        Ok(())
    }
}
