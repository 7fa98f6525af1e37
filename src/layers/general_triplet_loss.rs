//! GeneralTripletLoss (happynear/caffe-windows; NormFace, Wang et al. 2017, the
//! "normalised Euclidean triplet" head): a triplet hinge between each sample's
//! distance to its own class centre and its distances to the other centres, usually
//! the output of InnerDistance. Legend: d bottom 0 viewed as M × C, y_i = (int) label
//! i (bottom 1), optional per-sample weights v_i (bottom 2); a = `margin`,
//! pw / nw = positive / negative_weight.
//!
//! Forward: h_ij = nw·max(0, d_iy + a − d_ij) for j ≠ y_i; with `hardest_only` only
//! each row's largest h_ij is kept (the first on ties, the lowest class index when
//! none is positive). loss = Σ_i Σ_j |h_ij| / M.
//! Optional top 1 (`[2]`): mean d_iy and mean d_ij over the M·(C − 1) others.
//! Backward: the fork's update rule, which is not the gradient of that loss value
//! (the target gets pw rather than nw·#active); with g = loss weight,
//!   dd_ij = −nw·g/M where d_iy + a > d_ij (j ≠ y_i), 0 elsewhere; with
//!   `hardest_only` only the kept class gets −nw·g/M, whether its hinge is active or not;
//!   dd_iy = pw·g/M when `add_center_loss` or some negative got a gradient, else 0;
//! each row times v_i with bottom 2. It is the exact gradient where each row has one
//! active negative and pw = nw. `positive_first` and `positive_upper_bound` are read;
//! `positive_first: true` is refused (the fork reads it and never uses it either, so
//! a config that sets it expects something that never happened).

use super::checks::param_error;
use super::label_specific_add::per_sample_labels;
use super::margin_inner_product::class_labels;
use super::{count, fmt_shape, BuildContext, Layer, Shape, ShapeError};
use crate::blob::Blob;
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::LayerDef;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GeneralTripletParams {
    pub margin: f32,
    pub add_center_loss: bool,
    pub hardest_only: bool,
    /// Refused when true (unused by the fork).
    pub positive_first: bool,
    /// Unused, as in the fork.
    pub positive_upper_bound: f32,
    pub positive_weight: f32,
    pub negative_weight: f32,
}

impl Default for GeneralTripletParams {
    fn default() -> Self {
        GeneralTripletParams {
            margin: 0.2,
            add_center_loss: true,
            hardest_only: false,
            positive_first: false,
            positive_upper_bound: 1.0,
            positive_weight: 1.0,
            negative_weight: 1.0,
        }
    }
}

pub struct GeneralTripletLossLayer {
    pub params: GeneralTripletParams,
    tops: usize,
    /// Per sample: the kept negative class of the last forward (`hardest_only`).
    hardest: Vec<usize>,
}

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    const BLOCK: &str = "general_triplet_loss_param";
    let p: GeneralTripletParams = def.params(BLOCK)?;
    if p.positive_first {
        return Err(param_error(
            def,
            BLOCK,
            "positive_first",
            "`positive_first: true` is not supported (the fork reads it and ignores it)",
        )
        .with_help("remove it: the loss is the same without it"));
    }
    Ok(Box::new(GeneralTripletLossLayer {
        params: p,
        tops: def.top.len(),
        hardest: Vec::new(),
    }))
}

/// Checks an optional per-sample weight bottom 2 against the M samples.
pub fn check_weight_bottom(bottom: &[Shape], samples: usize) -> Result<(), ShapeError> {
    match bottom.get(2) {
        Some(v) if count(v) != samples => Err(ShapeError::at_bottom(
            2,
            format!(
                "weight bottom 2 has shape {} but there are {samples} samples",
                fmt_shape(v)
            ),
        )),
        _ => Ok(()),
    }
}

/// Shape rule of the distance losses (GeneralContrastiveLoss, GeneralTripletLoss): M × C
/// distances, M labels, optional M weights; a scalar loss and, as top 1, `stats` values.
pub fn distance_loss_tops(
    bottom: &[Shape],
    tops: usize,
    stats: usize,
) -> Result<Vec<Shape>, ShapeError> {
    let x = per_sample_labels(bottom)?;
    check_weight_bottom(bottom, x[0])?;
    let mut shapes = vec![vec![]];
    if tops == 2 {
        shapes.push(vec![stats]);
    }
    Ok(shapes)
}

/// M, C, the labels and the optional per-sample weights of a distance loss's bottoms.
pub type DistanceInputs = (usize, usize, Vec<usize>, Option<Vec<f32>>);

/// Reads [`DistanceInputs`] from a distance loss's bottoms.
pub fn distance_loss_inputs(bottoms: &[&mut Blob]) -> Result<DistanceInputs, String> {
    let m = bottoms[0].dim(0).max(1);
    let c = bottoms[0].count() / m;
    let labels = class_labels(bottoms[1].data(), c)?;
    Ok((m, c, labels, bottoms.get(2).map(|b| b.data().to_vec())))
}

/// The `Layer` methods of the distance losses; the layer has a `tops` count and a
/// `stats_len()` (the size of top 1).
macro_rules! distance_loss_methods {
    () => {
        fn bottoms(&self) -> $crate::layers::Arity {
            $crate::layers::Arity::between(2, 3)
        }
        fn tops(&self) -> $crate::layers::Arity {
            $crate::layers::Arity::between(1, 2)
        }
        fn is_loss(&self) -> bool {
            true
        }
        fn can_backprop_to(&self, bottom: usize) -> bool {
            bottom == 0
        }
        fn reshape(
            &mut self,
            bottom: &[$crate::layers::Shape],
        ) -> Result<Vec<$crate::layers::Shape>, $crate::layers::ShapeError> {
            $crate::layers::general_triplet_loss::distance_loss_tops(
                bottom,
                self.tops,
                self.stats_len(),
            )
        }
    };
}
pub(crate) use distance_loss_methods;

impl GeneralTripletLossLayer {
    fn stats_len(&self) -> usize {
        2
    }
}

impl Layer for GeneralTripletLossLayer {
    fn type_name(&self) -> &'static str {
        "GeneralTripletLoss"
    }
    distance_loss_methods!();

    fn forward(&mut self, io: &mut LayerIo, _ctx: &mut RunCtx) -> Result<(), String> {
        let (bottoms, mut tops, _) = io.forward_split();
        let m = bottoms[0].dim(0).max(1);
        let c = bottoms[0].count() / m;
        let labels = class_labels(bottoms[1].data(), c)?;
        let p = &self.params;
        let d = bottoms[0].data();
        let (mut loss, mut pos, mut neg) = (0.0f64, 0.0f64, 0.0f64);
        self.hardest.clear();
        for (i, &y) in labels.iter().enumerate() {
            let row = &d[i * c..(i + 1) * c];
            let same = row[y] as f64;
            pos += same;
            let hinge = |j: usize| {
                (same + p.margin as f64 - row[j] as f64).max(0.0) * p.negative_weight as f64
            };
            for j in (0..c).filter(|&j| j != y) {
                neg += row[j] as f64;
                if !p.hardest_only {
                    loss += hinge(j).abs();
                }
            }
            if p.hardest_only {
                // Class 0 is the starting candidate (worth 0 when it is the target);
                // a later class replaces it only when strictly larger.
                let mut best = (0usize, if y == 0 { 0.0 } else { hinge(0) });
                for j in (1..c).filter(|&j| j != y) {
                    let h = hinge(j);
                    if h > best.1 {
                        best = (j, h);
                    }
                }
                if best.0 != y {
                    loss += best.1.abs();
                }
                self.hardest.push(best.0);
            }
        }
        tops[0].data_mut()[0] = (loss / m as f64) as f32;
        if let Some(t) = tops.get_mut(1) {
            t.data_mut()[0] = (pos / m as f64) as f32;
            t.data_mut()[1] = (neg / m as f64 / (c.max(2) - 1) as f64) as f32;
        }
        Ok(())
    }

    fn backward(
        &mut self,
        io: &mut LayerIo,
        propagate_down: &[bool],
        _ctx: &mut RunCtx,
    ) -> Result<(), String> {
        if !propagate_down[0] {
            return Ok(());
        }
        let (mut bottoms, tops, _) = io.backward_split();
        let (m, c, labels, weights) = distance_loss_inputs(&bottoms)?;
        let p = &self.params;
        let scale = tops[0].diff()[0] as f64 / m as f64;
        let (d, dd) = bottoms[0].data_and_diff_mut();
        dd.fill(0.0);
        for (i, &y) in labels.iter().enumerate() {
            let row = i * c..(i + 1) * c;
            let (dr, gr) = (&d[row.clone()], &mut dd[row]);
            let mut active = false;
            if p.hardest_only {
                gr[self.hardest[i]] = -p.negative_weight;
                active = true;
            } else {
                for j in (0..c).filter(|&j| j != y) {
                    if dr[y] + p.margin > dr[j] {
                        gr[j] = -p.negative_weight;
                        active = true;
                    }
                }
            }
            if p.add_center_loss || active {
                gr[y] = p.positive_weight;
            }
            let v = weights.as_ref().map_or(1.0, |w| w[i] as f64);
            gr.iter_mut()
                .for_each(|g| *g = (*g as f64 * v * scale) as f32);
        }
        Ok(())
    }
}
