//! What MarginInnerProduct (A-Softmax) and LargeMarginInnerProduct (L-Softmax) share: the
//! logits shape (M × N from `axis`, a label per sample), one N×K weight blob from
//! `weight_filler`, the λ annealing counter t (layer state `iteration`, advanced by
//! TRAIN forwards) with λ = max(base·(1 + gamma·t)^(−power), lambda_min), and the
//! optional top 1 (`[1]`) holding λ.

use super::{class_labels, lambda_at, logits_shape, set_counter, MarginType};
use crate::error::Diagnostic;
use crate::layers::filler::FillerParams;
use crate::layers::{required, Shape, ShapeError};
use crate::netdef::{LayerDef, Phase};

/// The annealing fields of both layers' parameter blocks.
#[derive(Debug, Clone, Copy)]
pub struct Annealing {
    pub base: f32,
    pub gamma: f32,
    pub power: f32,
    pub lambda_min: f32,
    pub iteration: i32,
}

pub struct MarginHead {
    pub num_output: usize,
    /// Flattened input size K, fixed at the first reshape.
    pub k: usize,
    /// The angular multiplier m.
    pub m: u32,
    pub axis: i32,
    pub weight_filler: FillerParams,
    tops: usize,
    anneal: Annealing,
    /// The λ counter t.
    pub iter: i64,
    /// λ of the last forward, for backward.
    pub lambda: f64,
}

impl MarginHead {
    /// Reads `num_output` (required) and checks the filler of `block`.
    pub fn new(
        def: &LayerDef,
        block: &str,
        num_output: Option<u32>,
        margin_type: MarginType,
        (weight_filler, axis): (&FillerParams, i32),
        anneal: Annealing,
    ) -> Result<MarginHead, Diagnostic> {
        let num_output = required(def, num_output, block, "num_output")? as usize;
        weight_filler.validate(def, block, "weight_filler")?;
        Ok(MarginHead {
            num_output,
            k: 0,
            m: margin_type.m(),
            axis,
            weight_filler: weight_filler.clone(),
            tops: def.top.len(),
            iter: anneal.iteration as i64,
            anneal,
            lambda: 0.0,
        })
    }

    pub fn reshape(&mut self, bottom: &[Shape]) -> Result<Vec<Shape>, ShapeError> {
        let (logits, k) = logits_shape(bottom, self.axis, self.num_output, self.k)?;
        self.k = k;
        let mut tops = vec![logits];
        if self.tops == 2 {
            tops.push(vec![1]);
        }
        Ok(tops)
    }

    /// The labels as class indices when the margin uses them (m > 1).
    pub fn labels(&self, labels: &[f32]) -> Result<Vec<usize>, String> {
        match self.m {
            1 => Ok(Vec::new()),
            _ => class_labels(labels, self.num_output),
        }
    }

    /// Advances t in TRAIN and sets λ for this forward.
    pub fn advance(&mut self, phase: Phase) -> f64 {
        if phase == Phase::Train {
            self.iter += 1;
        }
        let a = &self.anneal;
        self.lambda = lambda_at(a.base, a.gamma, a.power, a.lambda_min, self.iter);
        self.lambda
    }

    pub fn state(&self) -> Vec<(String, f64)> {
        vec![("iteration".to_string(), self.iter as f64)]
    }

    pub fn set_state(&mut self, state: &[(String, f64)], layer: &str) -> Result<(), String> {
        set_counter(&mut self.iter, state, layer)
    }
}

/// The `Layer` methods both margin layers take from their `head: MarginHead` field
/// (everything but the type name, forward and backward).
macro_rules! margin_head_methods {
    ($layer:literal) => {
        fn bottoms(&self) -> $crate::layers::Arity {
            $crate::layers::Arity::exactly(2)
        }
        fn tops(&self) -> $crate::layers::Arity {
            $crate::layers::Arity::between(1, 2)
        }
        fn can_backprop_to(&self, bottom: usize) -> bool {
            bottom == 0
        }
        fn reshape(
            &mut self,
            bottom: &[$crate::layers::Shape],
        ) -> Result<Vec<$crate::layers::Shape>, $crate::layers::ShapeError> {
            self.head.reshape(bottom)
        }
        fn param_shapes(&self) -> Vec<$crate::layers::Shape> {
            vec![vec![self.head.num_output, self.head.k]]
        }
        fn flops(&self, _bottom: &[$crate::layers::Shape], top: &[$crate::layers::Shape]) -> u64 {
            2 * self.head.k as u64 * $crate::layers::count(&top[0]) as u64
        }
        fn fill_params(
            &self,
            params: &mut [$crate::blob::Blob],
            streams: &$crate::philox::ParamStreams,
        ) {
            $crate::layers::filler::fill(&self.head.weight_filler, &mut params[0], streams.blob(0));
        }
        fn state(&self) -> Vec<(String, f64)> {
            self.head.state()
        }
        fn set_state(&mut self, state: &[(String, f64)]) -> Result<(), String> {
            self.head.set_state(state, $layer)
        }
    };
}
pub(crate) use margin_head_methods;

/// Builds the [`MarginHead`] of a parameter block with both layers' field names
/// (`num_output`, `type`, `weight_filler`, `axis`, `base`, `gamma`, `power`,
/// `lambda_min`, `iteration`).
macro_rules! margin_head_from {
    ($def:expr, $block:expr, $p:expr) => {
        $crate::layers::margin_inner_product::MarginHead::new(
            $def,
            $block,
            $p.num_output,
            $p.margin_type,
            (&$p.weight_filler, $p.axis),
            $crate::layers::margin_inner_product::Annealing {
                base: $p.base,
                gamma: $p.gamma,
                power: $p.power,
                lambda_min: $p.lambda_min,
                iteration: $p.iteration,
            },
        )
    };
}
pub(crate) use margin_head_from;
