//! BatchReindex: picks and reorders samples of bottom 0 by the indices in bottom 1.
//! Legend: x is N × (rest), the indices k (integers stored as floats) have K values;
//! the top is K × (rest).
//! Forward: y[j] = x[k_j].  Backward: dx[n] = Σ_{j: k_j = n} dy[j]; no gradient to k.

use super::{count, fmt_shape, Arity, BuildContext, Layer, Shape, ShapeError};
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::LayerDef;

pub struct BatchReindexLayer {
    /// Values per sample.
    inner: usize,
    num: usize,
}

pub fn build(_def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    Ok(Box::new(BatchReindexLayer { inner: 0, num: 0 }))
}

impl BatchReindexLayer {
    fn index(&self, v: f32, j: usize) -> Result<usize, String> {
        if v.fract() == 0.0 && v >= 0.0 && (v as usize) < self.num {
            return Ok(v as usize);
        }
        Err(format!(
            "index {j} of bottom 1 is {v}, but bottom 0 has {} samples (indices 0 to {})",
            self.num,
            self.num as i64 - 1
        ))
    }
}

impl Layer for BatchReindexLayer {
    fn type_name(&self) -> &'static str {
        "BatchReindex"
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
        let (x, k) = (&bottom[0], &bottom[1]);
        if x.is_empty() {
            return Err(ShapeError::at_bottom(0, "bottom 0 needs a batch axis"));
        }
        if k.len() != 1 {
            return Err(ShapeError::at_bottom(
                1,
                format!(
                    "the indices have shape {}; they must be one axis of K values",
                    fmt_shape(k)
                ),
            ));
        }
        self.num = x[0];
        self.inner = count(&x[1..]);
        let mut top = x.clone();
        top[0] = k[0];
        Ok(vec![top])
    }

    fn forward(&mut self, io: &mut LayerIo, _ctx: &mut RunCtx) -> Result<(), String> {
        let d = self.inner;
        let (bottoms, mut tops, _) = io.forward_split();
        let x = bottoms[0].data();
        for (j, (&v, y)) in bottoms[1]
            .data()
            .iter()
            .zip(tops[0].data_mut().chunks_mut(d.max(1)))
            .enumerate()
        {
            let n = self.index(v, j)?;
            y.copy_from_slice(&x[n * d..(n + 1) * d]);
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
        let d = self.inner;
        let (mut bottoms, tops, _) = io.backward_split();
        let k = bottoms[1].data().to_vec();
        let dx = bottoms[0].diff_mut();
        dx.fill(0.0);
        for (j, (&v, g)) in k.iter().zip(tops[0].diff().chunks(d.max(1))).enumerate() {
            let n = self.index(v, j)?;
            dx[n * d..(n + 1) * d]
                .iter_mut()
                .zip(g)
                .for_each(|(a, &b)| *a += b);
        }
        Ok(())
    }
}
