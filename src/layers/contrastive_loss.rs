//! ContrastiveLoss (BVLC): pulls similar pairs together, pushes dissimilar ones past a margin.
//! Legend: N pairs; a_n, b_n ∈ R^C (bottoms 0, 1: N×C or N×C×1×1); s_n = (int) bottom 2
//! (N values; non-zero = similar); d_n = ‖a_n − b_n‖. With four bottoms (the form of
//! happynear's Caffe fork, used by FaceVerification's siamese nets) bottoms 2 and 3 are the
//! two sides' class labels and s_n = [(int) l1_n = (int) l2_n]: a pair is similar when both
//! images show the same identity.
//!
//! Forward: loss = 1/(2N) · Σ_n [ s_n·d_n² + (1 − s_n)·max(margin − d_n, 0)² ];
//! with `legacy_version` the dissimilar term is max(margin − d_n², 0).
//! Backward as Caffe's CPU code (g = loss_weight, α = g/N for bottom 0, −g/N for bottom 1):
//!   similar:            α·(a_n − b_n)
//!   dissimilar:         −α·(margin − d_n)/(d_n + 1e-4)·(a_n − b_n) when margin − d_n > 0, else 0
//!                       (the 1e-4 makes it differ slightly from the true gradient)
//!   dissimilar, legacy: −α·(a_n − b_n) when margin − d_n² > 0, else 0
//! No gradient to the similarity bottom. A non-finite similarity value is an error.

use super::loss::LossParams;
use super::{count, fmt_shape, Arity, BuildContext, Layer, Shape, ShapeError};
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::LayerDef;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ContrastiveLossParams {
    pub margin: f32,
    pub legacy_version: bool,
}

impl Default for ContrastiveLossParams {
    fn default() -> Self {
        ContrastiveLossParams {
            margin: 1.0,
            legacy_version: false,
        }
    }
}

pub struct ContrastiveLossLayer {
    pub params: ContrastiveLossParams,
    /// a − b and, per pair, d² and whether it is similar, from the last forward.
    diff: Vec<f32>,
    dist_sq: Vec<f64>,
    similar: Vec<bool>,
}

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    LossParams::reject_settings(def)?;
    Ok(Box::new(ContrastiveLossLayer {
        params: def.params("contrastive_loss_param")?,
        diff: Vec::new(),
        dist_sq: Vec::new(),
        similar: Vec::new(),
    }))
}

/// Caffe reads the blobs through the legacy N×C×H×W accessors with H = W = 1, so
/// a blob may have at most 4 axes and every axis after the channels must be 1.
fn check_pair_blob(shape: &[usize], i: usize) -> Result<(), ShapeError> {
    if shape.is_empty() || shape.len() > 4 || shape.iter().skip(2).any(|&d| d != 1) {
        return Err(ShapeError::at_bottom(
            i,
            format!("needs an N×C (or N×C×1×1) bottom, got {}", fmt_shape(shape)),
        ));
    }
    Ok(())
}

impl Layer for ContrastiveLossLayer {
    fn type_name(&self) -> &'static str {
        "ContrastiveLoss"
    }
    fn bottoms(&self) -> Arity {
        Arity::between(3, 4)
    }
    fn tops(&self) -> Arity {
        Arity::exactly(1)
    }
    fn is_loss(&self) -> bool {
        true
    }
    fn can_backprop_to(&self, bottom: usize) -> bool {
        bottom < 2
    }

    fn reshape(&mut self, bottom: &[Shape]) -> Result<Vec<Shape>, ShapeError> {
        check_pair_blob(&bottom[0], 0)?;
        check_pair_blob(&bottom[1], 1)?;
        let channels = |s: &Shape| s.get(1).copied().unwrap_or(1);
        if bottom[0][0] != bottom[1][0] || channels(&bottom[0]) != channels(&bottom[1]) {
            return Err(ShapeError::mismatch(1, &bottom[1], 0, &bottom[0]));
        }
        let n = bottom[0][0];
        let what = if bottom.len() == 4 {
            "label"
        } else {
            "similarity"
        };
        for (i, sim) in bottom.iter().enumerate().skip(2) {
            if sim.first() != Some(&n) || count(sim) != n {
                return Err(ShapeError::at_bottom(
                    i,
                    format!(
                        "the {what} bottom {i} has shape {} but bottom 0 has shape {}: \
                         it needs one value per pair ({n})",
                        fmt_shape(sim),
                        fmt_shape(&bottom[0])
                    ),
                ));
            }
        }
        Ok(vec![vec![]])
    }

    fn flops(&self, bottom: &[Shape], _top: &[Shape]) -> u64 {
        // Subtract, then a multiply-add per feature value.
        3 * count(&bottom[0]) as u64
    }

    fn forward(&mut self, io: &mut LayerIo, _ctx: &mut RunCtx) -> Result<(), String> {
        let (bottoms, mut tops, _) = io.forward_split();
        let (n, c) = (bottoms[0].dim(0), bottoms[0].count_from(1));
        let margin = self.params.margin as f64;
        self.diff.clear();
        self.diff.extend(
            bottoms[0]
                .data()
                .iter()
                .zip(bottoms[1].data())
                .map(|(&a, &b)| a - b),
        );
        self.similar.clear();
        if bottoms.len() == 4 {
            let pairs = bottoms[2].data().iter().zip(bottoms[3].data());
            for (i, (&l1, &l2)) in pairs.enumerate() {
                if !l1.is_finite() || !l2.is_finite() {
                    return Err(format!("pair {i} has labels {l1} and {l2}"));
                }
                // Labels are read as integers, as Caffe's static_cast<int> does.
                self.similar.push(l1.trunc() == l2.trunc());
            }
        } else {
            for (i, &s) in bottoms[2].data().iter().enumerate() {
                if !s.is_finite() {
                    return Err(format!("pair {i} has similarity {s}"));
                }
                // Caffe reads the flag with static_cast<int>: 0.5 is dissimilar.
                self.similar.push(s.trunc() != 0.0);
            }
        }
        self.dist_sq.clear();
        let mut sum = 0.0f64;
        for i in 0..n {
            let d2: f64 = self.diff[i * c..(i + 1) * c]
                .iter()
                .map(|&v| v as f64 * v as f64)
                .sum();
            self.dist_sq.push(d2);
            sum += if self.similar[i] {
                d2
            } else if self.params.legacy_version {
                (margin - d2).max(0.0)
            } else {
                (margin - d2.sqrt()).max(0.0).powi(2)
            };
        }
        tops[0].data_mut()[0] = (sum / (2.0 * n.max(1) as f64)) as f32;
        Ok(())
    }

    fn backward(
        &mut self,
        io: &mut LayerIo,
        propagate_down: &[bool],
        _ctx: &mut RunCtx,
    ) -> Result<(), String> {
        let (mut bottoms, tops, _) = io.backward_split();
        let g = tops[0].diff()[0] as f64;
        let (n, c) = (bottoms[0].dim(0), bottoms[0].count_from(1));
        let margin = self.params.margin as f64;
        for (b, blob) in bottoms.iter_mut().enumerate().take(2) {
            if !propagate_down[b] {
                continue;
            }
            let alpha = if b == 0 { g } else { -g } / n.max(1) as f64;
            let dx = blob.diff_mut();
            for i in 0..n {
                let d2 = self.dist_sq[i];
                // The factor on (a_n − b_n), as in Caffe's CPU code.
                let beta = if self.similar[i] {
                    alpha
                } else if self.params.legacy_version {
                    if margin - d2 > 0.0 {
                        -alpha
                    } else {
                        0.0
                    }
                } else {
                    let d = d2.sqrt();
                    if margin - d > 0.0 {
                        -alpha * (margin - d) / (d + 1e-4)
                    } else {
                        0.0
                    }
                };
                let r = i * c..(i + 1) * c;
                for (o, &v) in dx[r.clone()].iter_mut().zip(&self.diff[r]) {
                    *o = (beta * v as f64) as f32;
                }
            }
        }
        Ok(())
    }
}
