//! ArgMax: the indices (and optionally values) of the `top_k` largest entries.
//! Without `axis`: each sample (bottom viewed as N × D) gives its top k over all D values;
//! the top is N × 1 × k (N × 2 × k with `out_max_val`: the indices, then the values),
//! padded with 1s to the bottom's number of axes.
//! With `axis` A: the top is the bottom's shape with extent k on A, holding the k
//! largest along A per position of the other axes (values instead of indices with `out_max_val`).
//! Ranking: descending value; equal values rank the higher index first (Caffe sorts
//! (value, index) pairs in descending order). Indices are written as floats. No backward.

use super::loss::axis_of;
use super::{fmt_shape, Arity, BuildContext, Layer, Shape, ShapeError};
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::LayerDef;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ArgMaxParams {
    pub out_max_val: bool,
    pub top_k: u32,
    pub axis: Option<i32>,
}

impl Default for ArgMaxParams {
    fn default() -> Self {
        ArgMaxParams {
            out_max_val: false,
            top_k: 1,
            axis: None,
        }
    }
}

pub struct ArgMaxLayer {
    pub params: ArgMaxParams,
    /// (outer, along, inner): the ranked values of position (o, i) are x[(o·along + j)·inner + i].
    dims: (usize, usize, usize),
}

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    let p: ArgMaxParams = def.params("argmax_param")?;
    if p.top_k < 1 {
        return Err(super::checks::param_error(
            def,
            "argmax_param",
            "top_k",
            "top_k must be at least 1",
        ));
    }
    Ok(Box::new(ArgMaxLayer {
        params: p,
        dims: (0, 0, 0),
    }))
}

impl Layer for ArgMaxLayer {
    fn type_name(&self) -> &'static str {
        "ArgMax"
    }
    fn bottoms(&self) -> Arity {
        Arity::exactly(1)
    }
    fn tops(&self) -> Arity {
        Arity::exactly(1)
    }
    fn can_backprop_to(&self, _bottom: usize) -> bool {
        false
    }

    fn reshape(&mut self, bottom: &[Shape]) -> Result<Vec<Shape>, ShapeError> {
        let x = &bottom[0];
        let k = self.params.top_k as usize;
        let (top, dims) = match self.params.axis {
            Some(axis) => {
                let a = axis_of(axis, x, 0)?;
                let mut top = x.clone();
                top[a] = k;
                let outer: usize = x[..a].iter().product();
                let inner: usize = x[a + 1..].iter().product();
                (top, (outer, x[a], inner))
            }
            None => {
                let n = x.first().copied().unwrap_or(1);
                let d: usize = x.iter().skip(1).product();
                let mut top = vec![1; x.len().max(3)];
                top[0] = n;
                top[1] = if self.params.out_max_val { 2 } else { 1 };
                top[2] = k;
                (top, (n, d, 1))
            }
        };
        if k > dims.1 {
            return Err(ShapeError::new(format!(
                "top_k {k} exceeds the {} values ranked per position of bottom {}",
                dims.1,
                fmt_shape(x)
            )));
        }
        self.dims = dims;
        Ok(vec![top])
    }

    fn forward(&mut self, io: &mut LayerIo, _ctx: &mut RunCtx) -> Result<(), String> {
        let (bottoms, mut tops, _) = io.forward_split();
        let x = bottoms[0].data();
        let y = tops[0].data_mut();
        let (outer, along, inner) = self.dims;
        let k = self.params.top_k as usize;
        let mut ranked: Vec<(f32, usize)> = Vec::with_capacity(along);
        for o in 0..outer {
            for i in 0..inner {
                ranked.clear();
                ranked.extend((0..along).map(|j| (x[(o * along + j) * inner + i], j)));
                // Descending (value, index): NaN ranks as the largest, as it never compares less.
                ranked.sort_unstable_by(|a, b| {
                    b.0.partial_cmp(&a.0)
                        .unwrap_or_else(|| b.0.is_nan().cmp(&a.0.is_nan()))
                        .then(b.1.cmp(&a.1))
                });
                for (j, &(v, idx)) in ranked[..k].iter().enumerate() {
                    match self.params.axis {
                        Some(_) => {
                            y[(o * k + j) * inner + i] = if self.params.out_max_val {
                                v
                            } else {
                                idx as f32
                            }
                        }
                        None => {
                            let per = if self.params.out_max_val { 2 * k } else { k };
                            y[o * per + j] = idx as f32;
                            if self.params.out_max_val {
                                y[o * per + k + j] = v;
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn backward(
        &mut self,
        _io: &mut LayerIo,
        propagate_down: &[bool],
        _ctx: &mut RunCtx,
    ) -> Result<(), String> {
        if propagate_down[0] {
            return Err("ArgMax has no gradient (Caffe's has none either)".into());
        }
        Ok(())
    }
}
