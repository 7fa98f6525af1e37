//! TripletLoss (netrun-defined; BVLC has none). Squared Euclidean distances, no
//! normalisation inside the layer (put Normalize layers in front for unit features).
//! Legend: N samples, C features (N×C or N×C×1×1), D(u, v) = ‖u − v‖², m = margin,
//! h(a, p, n) = m + D(a, p) − D(a, n), g = loss_weight.
//!
//! Three bottoms (anchor, positive, negative), as the "YuanYang" Caffe layer: row n
//! is one triplet; loss = 1/(2N) · Σ_n max(0, h_n).
//!
//! Two bottoms (embedding x, label y, read truncated to int) mine triplets inside
//! the batch. Valid triplets: a ≠ p, y_p = y_a, y_n ≠ y_a. By `mining`:
//!   SEMI_HARD:          per ordered pair (a, p) whose anchor has a negative: the n with
//!                       the smallest D(a, n) > D(a, p), else (none farther than p) the n
//!                       with the largest D(a, n); T = number of such pairs.
//!   SEMI_HARD_AND_HARD: every valid (a, p, n) with D(a, n) < D(a, p) + m, i.e. h > 0;
//!                       T = their number (the mean over violating triplets).
//!   BATCH_HARD:         per anchor with a positive and a negative, one triplet: the
//!                       farthest p and the nearest n; T = number of such anchors.
//!   BATCH_ALL:          every valid (a, p, n); T = their number (easy ones add 0 but
//!                       count, so the loss shrinks as fewer triplets violate).
//! Ties go to the lowest sample index; no randomness. loss = 1/(2·max(1, T)) ·
//! Σ_selected max(0, h): 0 when nothing is selected (e.g. a batch of one identity).
//! Distances are computed from differences in f64 (see `mining.rs`).
//!
//! Backward with the selection held fixed, per selected triplet with h > 0 (others add
//! 0; the 3-bottom form takes T = N): da += g/T·(n − p), dp += g/T·(p − a),
//! dn += g/T·(a − n); mined triplets accumulate into the embedding rows (dx = g/T·C·X
//! by one GEMM). No gradient to the label.
//!
//! Optional top 1 (shape `[3]`, loss_weight 0, for logging): [hard, semi-hard, easy]
//! counts of the candidate triplets (the N rows, or every valid mined triplet):
//! hard D(a,n) < D(a,p), semi-hard D(a,p) ≤ D(a,n) < D(a,p) + m, easy D(a,n) ≥ D(a,p) + m.

mod mining;

use super::loss::{check_same_num, LossParams};
use super::{count, fmt_shape, required, Arity, BuildContext, Layer, Shape, ShapeError};
use crate::backend::gemm;
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
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
    /// 3 bottoms: a − p and a − n of the last forward, and h per row.
    diff_ap: Vec<f32>,
    diff_an: Vec<f32>,
    hinge: Vec<f64>,
    /// 2 bottoms: the mined coefficient matrix C (see `mining.rs`) and T.
    coeff: Vec<f32>,
    selected: usize,
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
        diff_ap: Vec::new(),
        diff_an: Vec::new(),
        hinge: Vec::new(),
        coeff: Vec::new(),
        selected: 0,
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
            // The N×N distance matrix from differences (subtract, multiply-add).
            Some(_) => 3 * n * n * k,
        }
    }

    fn forward(&mut self, io: &mut LayerIo, _ctx: &mut RunCtx) -> Result<(), String> {
        let (bottoms, mut tops, _) = io.forward_split();
        let (n, k) = (bottoms[0].dim(0), bottoms[0].count_from(1));
        let margin = self.params.margin as f64;
        let (hinge_sum, normalizer, counts) = match self.mining {
            None => {
                let sub = |u: &[f32], v: &[f32]| -> Vec<f32> {
                    u.iter().zip(v).map(|(&x, &y)| x - y).collect()
                };
                self.diff_ap = sub(bottoms[0].data(), bottoms[1].data());
                self.diff_an = sub(bottoms[0].data(), bottoms[2].data());
                let sq = |v: &[f32]| v.iter().map(|&x| x as f64 * x as f64).sum::<f64>();
                let mut counts = [0usize; 3];
                self.hinge.clear();
                for i in 0..n {
                    let (dap, dan) = (
                        sq(&self.diff_ap[i * k..(i + 1) * k]),
                        sq(&self.diff_an[i * k..(i + 1) * k]),
                    );
                    counts[mining::class(dap, dan, margin)] += 1;
                    self.hinge.push(margin + dap - dan);
                }
                let sum = self.hinge.iter().map(|&h| h.max(0.0)).sum::<f64>();
                (sum, n, counts)
            }
            Some(mode) => {
                let mut labels = Vec::with_capacity(n);
                for (i, &v) in bottoms[1].data().iter().enumerate() {
                    if !v.is_finite() {
                        return Err(format!("sample {i} has label {v}"));
                    }
                    labels.push(v.trunc() as i64);
                }
                let d = mining::distances(bottoms[0].data(), n, k);
                let mined = mining::mine(&d, &labels, margin, mode);
                self.coeff = mined.coeff.iter().map(|&c| c as f32).collect();
                self.selected = mined.selected;
                (mined.hinge_sum, mined.selected, mined.counts)
            }
        };
        tops[0].data_mut()[0] = (hinge_sum / (2.0 * normalizer.max(1) as f64)) as f32;
        if let Some(t) = tops.get_mut(1) {
            for (o, &c) in t.data_mut().iter_mut().zip(&counts) {
                *o = c as f32;
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
        let (mut bottoms, tops, _) = io.backward_split();
        let g = tops[0].diff()[0] as f64;
        let (n, k) = (bottoms[0].dim(0), bottoms[0].count_from(1));
        if self.mining.is_some() {
            if propagate_down[0] {
                let scale = (g / self.selected.max(1) as f64) as f32;
                let x = bottoms[0].data().to_vec();
                gemm(
                    false,
                    false,
                    n,
                    k,
                    n,
                    scale,
                    &self.coeff,
                    &x,
                    0.0,
                    bottoms[0].diff_mut(),
                );
            }
            return Ok(());
        }
        let scale = g / n.max(1) as f64;
        for (b, blob) in bottoms.iter_mut().enumerate() {
            if !propagate_down[b] {
                continue;
            }
            let dx = blob.diff_mut();
            for (i, &h) in self.hinge.iter().enumerate() {
                let r = i * k..(i + 1) * k;
                let rows = dx[r.clone()].iter_mut().zip(&self.diff_ap[r.clone()]);
                for ((o, &ap), &an) in rows.zip(&self.diff_an[r]) {
                    let (ap, an) = (ap as f64, an as f64);
                    // n − p = (a − p) − (a − n); p − a = −(a − p); a − n.
                    let v = [ap - an, -ap, an][b];
                    *o = if h > 0.0 { (scale * v) as f32 } else { 0.0 };
                }
            }
        }
        Ok(())
    }
}
