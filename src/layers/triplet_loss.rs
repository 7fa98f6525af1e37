//! TripletLoss (netrun-defined; BVLC has none). Squared Euclidean distances, no
//! normalisation inside the layer (put Normalize layers in front for unit features).
//! Legend: N samples, C features (N×C or N×C×1×1), D(u, v) = ‖u − v‖², m = margin,
//! h(a, p, n) = m + D(a, p) − D(a, n), g = loss_weight.
//!
//! Three bottoms (anchor, positive, negative), as the "YuanYang" Caffe layer: row n
//! is one triplet; loss = 1/(2N) · Σ_n max(0, h_n).
//!
//! Two bottoms (embedding, label) mine triplets (a, p, n) inside the batch, with
//! y_a = y_p, a ≠ p, y_n ≠ y_a, by `mining`:
//!   SEMI_HARD:          per (a, p) pair, the n with the smallest D(a, n) > D(a, p);
//!                       without one, the n with the largest D(a, n);
//!   SEMI_HARD_AND_HARD: every (a, p, n) with D(a, n) < D(a, p) + m;
//!   BATCH_HARD:         per anchor with a positive and a negative: the farthest p
//!                       and the nearest n;
//!   BATCH_ALL:          every valid (a, p, n).
//! loss = 1/(2T) · Σ_selected max(0, h), T = number of selected triplets (BATCH_ALL:
//! those with h > 0), at least 1.
//!
//! Backward with the selection held fixed, per triplet with h > 0 (others add 0;
//! the 3-bottom form takes T = N): da += g/T·(n − p), dp += g/T·(p − a),
//! dn += g/T·(a − n); mined triplets accumulate into the embedding rows. No
//! gradient to the label.
//!
//! Optional top 1 (shape `[3]`, loss_weight 0, for logging): counts of the candidate
//! triplets (the N rows, or every valid mined triplet) that are hard (D(a,n) < D(a,p)),
//! semi-hard (D(a,p) ≤ D(a,n) < D(a,p) + m) and easy (D(a,n) ≥ D(a,p) + m).

use super::loss::{check_same_num, LossParams};
use super::{count, fmt_shape, required, Arity, BuildContext, Layer, Shape, ShapeError};
use crate::error::Diagnostic;
use crate::netdef::LayerDef;
use serde::Deserialize;

/// How the two-bottom form picks its triplets (see the header).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TripletMining {
    SemiHard,
    SemiHardAndHard,
    BatchHard,
    BatchAll,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TripletLossParams {
    pub margin: f32,
    /// Required with two bottoms, rejected with three.
    pub mining: Option<TripletMining>,
}

impl Default for TripletLossParams {
    fn default() -> Self {
        TripletLossParams {
            margin: 1.0,
            mining: None,
        }
    }
}

pub struct TripletLossLayer {
    pub params: TripletLossParams,
    /// `Some` for the two-bottom (embedding, label) form.
    pub mining: Option<TripletMining>,
    tops: usize,
}

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    LossParams::reject_settings(def)?;
    let p: TripletLossParams = def.params("triplet_loss_param")?;
    let mining = match def.bottom.len() {
        2 => Some(required(def, p.mining, "triplet_loss_param", "mining")?),
        _ if p.mining.is_some() => {
            return Err(def
                .error(
                    def.block
                        .get("triplet_loss_param")
                        .map_or(def.name_span(), |f| f.value_span),
                    format!(
                        "{}: `mining` applies only to the two-bottom (embedding, label) form",
                        def.describe()
                    ),
                )
                .with_help("with anchor, positive and negative bottoms every row is a triplet; remove `mining`"))
        }
        _ => None,
    };
    Ok(Box::new(TripletLossLayer {
        params: p,
        mining,
        tops: def.top.len(),
    }))
}

fn check_features(shape: &[usize], i: usize) -> Result<(), ShapeError> {
    if shape.len() < 2 {
        return Err(ShapeError::at_bottom(
            i,
            format!("needs an N×C bottom, got {}", fmt_shape(shape)),
        ));
    }
    Ok(())
}

impl Layer for TripletLossLayer {
    fn type_name(&self) -> &'static str {
        "TripletLoss"
    }
    fn bottoms(&self) -> Arity {
        Arity::between(2, 3)
    }
    fn tops(&self) -> Arity {
        Arity::between(1, 2)
    }
    fn is_loss(&self) -> bool {
        true
    }
    fn can_backprop_to(&self, bottom: usize) -> bool {
        self.mining.is_none() || bottom == 0
    }

    fn reshape(&mut self, bottom: &[Shape]) -> Result<Vec<Shape>, ShapeError> {
        check_features(&bottom[0], 0)?;
        if self.mining.is_some() {
            let (n, label) = (bottom[0][0], &bottom[1]);
            if count(label) != n {
                return Err(ShapeError::at_bottom(
                    1,
                    format!(
                        "label bottom 1 has shape {} ({} values) but bottom 0 has shape {}, \
                         which needs {n} labels (one per sample)",
                        fmt_shape(label),
                        count(label),
                        fmt_shape(&bottom[0])
                    ),
                ));
            }
            check_same_num(bottom, 1)?;
        } else {
            for (i, b) in bottom.iter().enumerate().skip(1) {
                if b != &bottom[0] {
                    return Err(ShapeError::mismatch(i, b, 0, &bottom[0]));
                }
            }
        }
        let mut tops = vec![vec![]];
        if self.tops == 2 {
            tops.push(vec![3]);
        }
        Ok(tops)
    }

    fn flops(&self, bottom: &[Shape], _top: &[Shape]) -> u64 {
        let (n, k) = (bottom[0][0] as u64, count(&bottom[0][1..]) as u64);
        match self.mining {
            // Two distances per row: subtract and multiply-add.
            None => 6 * n * k,
            // The N×N distance matrix from the Gram matrix.
            Some(_) => 2 * n * n * k,
        }
    }
}
