//! MarginInnerProduct (wy1iu/sphereface): the A-Softmax logits, fed to SoftmaxWithLoss.
//! Legend: M samples (axes before `axis`), K features (axes from `axis`), N = num_output;
//! x_i ∈ R^K, W N×K (no bias), y = y_i = (int) label i, m = 1..4 for SINGLE..QUADRUPLE.
//!
//! Forward (every call, in any phase):
//! 1. t ← t + 1 (t starts at `iteration`, per layer instance, not kept in snapshots);
//!    λ = max(base·(1 + gamma·t)^(−power), lambda_min), written to top 1 (shape `[1]`).
//! 2. Every row of W is replaced IN PLACE by w_j/‖w_j‖ (no epsilon), also for SINGLE.
//! 3. r = ‖x_i‖, c = x_i·w_y / r (the target cosine; no epsilon).
//! 4. f_ij = x_i·w_j for j ≠ y, and for every j when m = 1 (λ unused);
//!    f_iy = (λ·r·c + r·ψ(c)) / (1 + λ), ψ = (−1)^k·cos(mθ) − 2k, θ = arccos c,
//!    k = ⌊mθ/π⌋, computed from signs (sgn 0 = 0, s0 = sgn c):
//!    m=2: ψ = 2·s0·c² − 1;
//!    m=3: ψ = s1·(4c³ − 3c) + s2, s1 = sgn(|c| − ½), s2 = s0·(1 + s1) − 2;
//!    m=4: ψ = s3·(8c⁴ − 8c² + 1) + s4, s3 = s0·sgn(2c² − 1), s4 = 2·s0 + s3 − 3.
//!
//! Backward as sphereface codes it (G = top-0 diff, M×N; not the true gradient for m > 1):
//!   dW += Gᵀ·X: the plain inner-product gradient w.r.t. the normalised W, ignoring ψ,
//!     λ and the normalisation, for every m;
//!   m = 1: dX = G·W;
//!   m > 1: dx_i = Σ_{j≠y} g_ij·w_j + g_iy·[λ/(1+λ)·w_y + 1/(1+λ)·(â·w_y + b̂·x_i)],
//!     (â, b̂) = (a, b)/√(a² + b²), where a·w_y + b·x_i = ∂(r·ψ(c))/∂x_i:
//!     m=2: a = 4·s0·c,          b = −(2·s0·c² + 1)/r;
//!     m=3: a = s1·(12c² − 3),   b = −(8·s1·c³ − s2)/r;
//!     m=4: a = s3·(32c³ − 16c), b = −(s3·(24c⁴ − 8c² − 1) − s4)/r;
//!   no gradient to the label.
//!
//! netrun extension `exact_gradient: true`: backward gives the true gradient of the
//! forward above instead (dX through ψ and λ; dW w.r.t. the stored rows through the row
//! normalisation), i.e. the reference cases' `autograd.*` tensors.

use super::filler::FillerParams;
use super::loss::{axis_of, check_same_num};
use super::{count, fmt_shape, required, Arity, BuildContext, Layer, Shape, ShapeError};
use crate::error::Diagnostic;
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
    pub num_output: usize,
    /// Flattened input size K, fixed at the first reshape.
    pub k: usize,
    tops: usize,
}

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    let p: MarginInnerProductParams = def.params("margin_inner_product_param")?;
    let num_output = required(
        def,
        p.num_output,
        "margin_inner_product_param",
        "num_output",
    )? as usize;
    p.weight_filler
        .validate(def, "margin_inner_product_param", "weight_filler")?;
    Ok(Box::new(MarginInnerProductLayer {
        params: p,
        num_output,
        k: 0,
        tops: def.top.len(),
    }))
}

/// Shape rule shared with CombinedMarginInnerProduct: x (M×K from `axis`) and one
/// label per sample give logits `shape[..axis] + [N]`. Returns the logits shape and K.
pub fn logits_shape(
    bottom: &[Shape],
    axis: i32,
    num_output: usize,
    k_before: usize,
) -> Result<(Shape, usize), ShapeError> {
    let x = &bottom[0];
    let axis = axis_of(axis, x, 0)?;
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
    if k_before != 0 && k_before != k {
        return Err(ShapeError::at_bottom(
            0,
            format!("input size changed from {k_before} to {k}"),
        ));
    }
    let mut top = x[..axis].to_vec();
    top.push(num_output);
    Ok((top, k))
}

impl Layer for MarginInnerProductLayer {
    fn type_name(&self) -> &'static str {
        "MarginInnerProduct"
    }
    fn bottoms(&self) -> Arity {
        Arity::exactly(2)
    }
    fn tops(&self) -> Arity {
        Arity::between(1, 2)
    }
    fn can_backprop_to(&self, bottom: usize) -> bool {
        bottom == 0
    }

    fn reshape(&mut self, bottom: &[Shape]) -> Result<Vec<Shape>, ShapeError> {
        let (logits, k) = logits_shape(bottom, self.params.axis, self.num_output, self.k)?;
        self.k = k;
        let mut tops = vec![logits];
        if self.tops == 2 {
            tops.push(vec![1]);
        }
        Ok(tops)
    }

    fn param_shapes(&self) -> Vec<Shape> {
        vec![vec![self.num_output, self.k]]
    }

    fn flops(&self, _bottom: &[Shape], top: &[Shape]) -> u64 {
        2 * self.k as u64 * count(&top[0]) as u64
    }
}
