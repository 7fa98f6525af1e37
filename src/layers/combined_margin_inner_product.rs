//! CombinedMarginInnerProduct (netrun-defined): cosine logits with the combined angular
//! margin s·(cos(m1·θ + m2) − m3), covering normalised A-Softmax (m1), ArcFace (m2),
//! CosFace (m3) and NormFace (none); fed to SoftmaxWithLoss.
//! Legend: M samples (axes before `axis`), K features (axes from `axis`), N = num_output;
//! x_i ∈ R^K, W N×K (no bias), y = y_i = (int) label i.
//!
//! Forward (the stored W is not modified):
//!   x̂ = x_i/‖x_i‖, ŵ_j = w_j/‖w_j‖ (norms floored at 1e-12), c_j = clamp(x̂·ŵ_j, −1, 1);
//!   f_ij = s·c_j for j ≠ y;  f_iy = s·(ψ(θ) − m3), θ = arccos c_y,
//!   ψ(θ) = (−1)^k·cos(m1·θ + m2) − 2k, k = ⌊(m1·θ + m2)/π⌋.
//!   ψ is continuous and decreasing on [0, π], so the target logit keeps falling when
//!   m1·θ + m2 passes π (it equals cos(m1·θ + m2) below that, and cos θ when m1 = 1,
//!   m2 = 0).
//! Backward: the true gradient (G = top diff, M×N). With dc_ij = s·g_ij for j ≠ y and
//!   dc_iy = s·g_iy·ψ'(c), ψ'(c) = (−1)^k·m1·sin(m1·θ + m2)/sin θ (sin θ floored at 1e-6):
//!   dx_i = Σ_j dc_ij·(ŵ_j − c_j·x̂)/‖x_i‖,  dW_j += Σ_i dc_ij·(x̂_i − c_ij·ŵ_j)/‖w_j‖.
//!   No gradient to the label.
//! Typical settings: ArcFace m2 = 0.5, s = 64; CosFace m3 = 0.35, s = 64;
//! SphereFace-style m1 = 4 (no λ annealing; use MarginInnerProduct for that).

use super::filler::FillerParams;
use super::margin_inner_product::logits_shape;
use super::{count, required, Arity, BuildContext, Layer, Shape, ShapeError};
use crate::error::Diagnostic;
use crate::netdef::LayerDef;
use serde::Deserialize;

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
    }))
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
}
