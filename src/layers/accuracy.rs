//! Accuracy: the share of positions whose label is among the `top_k` highest scores.
//! Legend: scores viewed as outer × C × inner around `axis`; labels hold outer·inner values.
//!
//! Forward, over positions whose label l ≠ ignore_label (n of them):
//!   hit = 1 when fewer than top_k classes c ≠ l have x_c ≥ x_l (ties count against l),
//!   top 0 = Σ hit / n  (0 when n = 0).
//! Optional top 1 (shape `[C]`): per class c, Σ hit / (positions labelled c), 0 for classes
//! absent from the batch. Not a loss (loss_weight 0) and no gradient to any bottom:
//! backward does nothing. `min_is_better: true` (happynear/caffe-windows, for
//! distance outputs such as InnerDistance) ranks the lowest scores first: a hit when
//! fewer than top_k classes c ≠ l have x_c ≤ x_l. Labels are read as in SoftmaxWithLoss (truncated; out of
//! range is an error). A NaN label score counts as a miss (Caffe's comparisons
//! would count it a hit, reporting a diverged net as accurate).

use super::loss::{axis_of, check_label_count, class_of, LabelAt};
use super::softmax::split_axis;
use super::{count, fmt_shape, Arity, BuildContext, Layer, Shape, ShapeError};
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::LayerDef;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccuracyParams {
    pub top_k: u32,
    pub axis: i32,
    /// Positions with this label are not counted.
    pub ignore_label: Option<i32>,
    /// Lower scores rank first (distances; fork field).
    pub min_is_better: bool,
}

impl Default for AccuracyParams {
    fn default() -> Self {
        AccuracyParams {
            top_k: 1,
            axis: 1,
            ignore_label: None,
            min_is_better: false,
        }
    }
}

pub struct AccuracyLayer {
    pub params: AccuracyParams,
    /// The resolved class axis, fixed at reshape.
    pub axis: usize,
    tops: usize,
}

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    let p: AccuracyParams = def.params("accuracy_param")?;
    if p.top_k == 0 {
        return Err(def.error(
            def.block
                .get("accuracy_param")
                .map_or(def.name_span(), |f| f.value_span),
            format!("{}: top_k must be at least 1", def.describe()),
        ));
    }
    Ok(Box::new(AccuracyLayer {
        params: p,
        axis: 0,
        tops: def.top.len(),
    }))
}

impl Layer for AccuracyLayer {
    fn type_name(&self) -> &'static str {
        "Accuracy"
    }
    fn bottoms(&self) -> Arity {
        Arity::exactly(2)
    }
    fn tops(&self) -> Arity {
        Arity::between(1, 2)
    }
    fn can_backprop_to(&self, _bottom: usize) -> bool {
        false
    }

    fn reshape(&mut self, bottom: &[Shape]) -> Result<Vec<Shape>, ShapeError> {
        let scores = &bottom[0];
        self.axis = axis_of(self.params.axis, scores, 0)?;
        let classes = scores[self.axis];
        if self.params.top_k as usize > classes {
            return Err(ShapeError::at_bottom(
                0,
                format!(
                    "top_k {} exceeds the {classes} classes on axis {} of shape {}",
                    self.params.top_k,
                    self.axis,
                    fmt_shape(scores)
                ),
            ));
        }
        check_label_count(bottom, self.axis, 1)?;
        let mut tops = vec![vec![]];
        if self.tops == 2 {
            tops.push(vec![classes]);
        }
        Ok(tops)
    }

    fn flops(&self, bottom: &[Shape], _top: &[Shape]) -> u64 {
        count(&bottom[0]) as u64
    }

    fn forward(&mut self, io: &mut LayerIo, _ctx: &mut RunCtx) -> Result<(), String> {
        let (bottoms, mut tops, _) = io.forward_split();
        let (_, c, inner) = split_axis(bottoms[0].shape(), self.axis);
        let x = bottoms[0].data();
        let top_k = self.params.top_k as usize;
        let (mut hits, mut counted) = (vec![0usize; c], vec![0usize; c]);
        for (k, &value) in bottoms[1].data().iter().enumerate() {
            let (n, j) = (k / inner, k % inner);
            let at = LabelAt {
                sample: n,
                position: j,
                positions: inner,
            };
            let Some(l) = class_of(value, c, self.params.ignore_label, at)? else {
                continue;
            };
            let score = |ch: usize| x[(n * c + ch) * inner + j];
            let own = score(l);
            // Ties rank ahead of the label, as in Caffe.
            let min = self.params.min_is_better;
            let ahead = |v: f32| if min { v <= own } else { v >= own };
            let better = (0..c).filter(|&ch| ch != l && ahead(score(ch))).count();
            counted[l] += 1;
            if better < top_k && !own.is_nan() {
                hits[l] += 1;
            }
        }
        let total: usize = counted.iter().sum();
        let ratio = |h: usize, n: usize| {
            if n == 0 {
                0.0
            } else {
                (h as f64 / n as f64) as f32
            }
        };
        tops[0].data_mut()[0] = ratio(hits.iter().sum(), total);
        if let Some(t) = tops.get_mut(1) {
            for (v, (&h, &n)) in t.data_mut().iter_mut().zip(hits.iter().zip(&counted)) {
                *v = ratio(h, n);
            }
        }
        Ok(())
    }

    fn backward(
        &mut self,
        _io: &mut LayerIo,
        _propagate_down: &[bool],
        _ctx: &mut RunCtx,
    ) -> Result<(), String> {
        Ok(())
    }
}
