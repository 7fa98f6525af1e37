//! Filter: keeps the samples whose selector value is non-zero.
//! Legend: bottoms x_0 … x_{K−1} (each N × …) and the selector s (N, or N × 1 × …,
//! last); tops y_0 … y_{K−1}. With kept = [n : s_n ≠ 0] in increasing order and
//! M = |kept|, y_k is M × (rest of x_k) and y_k[j] = x_k[kept_j].
//! Backward: dx_k[kept_j] = dy_k[j]; the other samples get 0; s gets no gradient.
//!
//! M depends on the selector's values, so forward resizes the tops; the net runs
//! the shape rules below again before their next forward (src/net/reshape.rs).
//! At build time (no values yet) the shape rule keeps all N samples, so
//! `netrun check` shows and the memory check plans for the largest case.
//! M = 0 is allowed: the tops are empty (0 × …) and the bottoms' diffs are zero.

use super::{count, fmt_shape, Arity, BuildContext, Layer, Shape, ShapeError};
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::LayerDef;

pub struct FilterLayer {
    /// Bottoms declared, the selector last.
    num_bottoms: usize,
    /// Samples kept by the last forward, in increasing order.
    kept: Vec<usize>,
}

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    let (b, t) = (def.bottom.len(), def.top.len());
    if b >= 2 && t != b - 1 {
        return Err(def
            .error(
                def.name_span(),
                format!(
                    "{}: {b} bottoms ({} filtered and the selector, last) need {} tops, one per \
                     filtered bottom, but {t} are given",
                    def.describe(),
                    b - 1,
                    b - 1
                ),
            )
            .with_help("give one top per bottom except the last (the selector)"));
    }
    Ok(Box::new(FilterLayer {
        num_bottoms: b,
        kept: vec![],
    }))
}

impl Layer for FilterLayer {
    fn type_name(&self) -> &'static str {
        "Filter"
    }
    fn bottoms(&self) -> Arity {
        Arity::at_least(2)
    }
    fn tops(&self) -> Arity {
        Arity::at_least(1)
    }
    fn can_backprop_to(&self, bottom: usize) -> bool {
        // The selector (last) only says which samples pass (Caffe refuses it too).
        bottom + 1 < self.num_bottoms
    }

    fn reshape(&mut self, bottom: &[Shape]) -> Result<Vec<Shape>, ShapeError> {
        let sel = bottom.len() - 1;
        let s = &bottom[sel];
        if s.is_empty() || s[1..].iter().any(|&d| d != 1) {
            return Err(ShapeError::at_bottom(
                sel,
                format!(
                    "the selector (bottom {sel}) has shape {}; it must be N values, one per \
                     sample (axes after the first of size 1)",
                    fmt_shape(s)
                ),
            ));
        }
        let mut tops = Vec::with_capacity(sel);
        for (i, x) in bottom[..sel].iter().enumerate() {
            if x.first() != Some(&s[0]) {
                return Err(ShapeError::at_bottom(
                    i,
                    format!(
                        "bottom {i} has shape {} but the selector (bottom {sel}) has {} values: \
                         each filtered bottom must have as many samples (axis 0) as the selector",
                        fmt_shape(x),
                        s[0]
                    ),
                ));
            }
            tops.push(x.clone());
        }
        Ok(tops)
    }

    fn forward(&mut self, io: &mut LayerIo, _ctx: &mut RunCtx) -> Result<(), String> {
        let (bottoms, mut tops, _) = io.forward_split();
        let sel = bottoms.len() - 1;
        self.kept = (bottoms[sel].data().iter().enumerate())
            .filter(|(_, &v)| v != 0.0)
            .map(|(n, _)| n)
            .collect();
        for (x, y) in bottoms[..sel].iter().zip(tops.iter_mut()) {
            let mut shape = x.shape().to_vec();
            shape[0] = self.kept.len();
            y.reshape(&shape);
            let d = count(&shape[1..]);
            let (xs, ys) = (x.data(), y.data_mut());
            for (j, &n) in self.kept.iter().enumerate() {
                ys[j * d..(j + 1) * d].copy_from_slice(&xs[n * d..(n + 1) * d]);
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
        let sel = bottoms.len() - 1;
        for (i, y) in tops.iter().enumerate().take(sel) {
            if !propagate_down[i] {
                continue;
            }
            let d = bottoms[i].count_from(1);
            let dx = bottoms[i].diff_mut();
            dx.fill(0.0);
            let dy = y.diff();
            for (j, &n) in self.kept.iter().enumerate() {
                dx[n * d..(n + 1) * d].copy_from_slice(&dy[j * d..(j + 1) * d]);
            }
        }
        Ok(())
    }
}
