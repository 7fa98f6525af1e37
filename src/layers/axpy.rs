//! Axpy (the SE-block layer of the MXNet-to-Caffe converters, used by xialuxi/arcface-caffe's
//! converted nets): y = a ⊙ x + b, a fused channel scale and residual add. Legend:
//! a bottom 0, N × C (× 1 × 1); x bottom 1, N × C × H × W; b bottom 2, shaped as x.
//!
//! Forward: y[n,c,s] = a[n,c]·x[n,c,s] + b[n,c,s].
//! Backward: da[n,c] = Σ_s dy·x, dx = a·dy, db = dy.

use super::{count, fmt_shape, Arity, BuildContext, Layer, Shape, ShapeError};
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::LayerDef;

pub struct AxpyLayer {
    /// Spatial size S of x.
    spatial: usize,
}

pub fn build(_def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    Ok(Box::new(AxpyLayer { spatial: 0 }))
}

impl Layer for AxpyLayer {
    fn type_name(&self) -> &'static str {
        "Axpy"
    }
    fn bottoms(&self) -> Arity {
        Arity::exactly(3)
    }
    fn tops(&self) -> Arity {
        Arity::exactly(1)
    }

    fn reshape(&mut self, bottom: &[Shape]) -> Result<Vec<Shape>, ShapeError> {
        let (a, x, b) = (&bottom[0], &bottom[1], &bottom[2]);
        if x.len() < 2 || a.len() < 2 || a[..2] != x[..2] || count(&a[2..]) != 1 {
            return Err(ShapeError::at_bottom(
                0,
                format!(
                    "scale bottom 0 must be N×C(×1×1) of x's N×C, got {} for x {}",
                    fmt_shape(a),
                    fmt_shape(x)
                ),
            ));
        }
        if b != x {
            return Err(ShapeError::mismatch(2, b, 1, x));
        }
        self.spatial = count(&x[2..]);
        Ok(vec![x.clone()])
    }

    fn flops(&self, bottom: &[Shape], _top: &[Shape]) -> u64 {
        2 * count(&bottom[1]) as u64
    }

    fn forward(&mut self, io: &mut LayerIo, _ctx: &mut RunCtx) -> Result<(), String> {
        let s = self.spatial.max(1);
        let (bottoms, mut tops, _) = io.forward_split();
        let (a, x, b) = (bottoms[0].data(), bottoms[1].data(), bottoms[2].data());
        let y = tops[0].data_mut();
        for (((ys, xs), bs), &av) in y.chunks_mut(s).zip(x.chunks(s)).zip(b.chunks(s)).zip(a) {
            for ((o, &xv), &bv) in ys.iter_mut().zip(xs).zip(bs) {
                *o = av * xv + bv;
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
        let s = self.spatial.max(1);
        let (mut bottoms, tops, _) = io.backward_split();
        let dy = tops[0].diff();
        let a = bottoms[0].data().to_vec();
        if propagate_down[0] {
            let da: Vec<f32> = dy
                .chunks(s)
                .zip(bottoms[1].data().chunks(s))
                .map(|(g, x)| {
                    g.iter()
                        .zip(x)
                        .map(|(&g, &x)| g as f64 * x as f64)
                        .sum::<f64>() as f32
                })
                .collect();
            bottoms[0].diff_mut().copy_from_slice(&da);
        }
        if propagate_down[1] {
            let dx = bottoms[1].diff_mut();
            for ((d, g), &av) in dx.chunks_mut(s).zip(dy.chunks(s)).zip(&a) {
                d.iter_mut().zip(g).for_each(|(o, &v)| *o = av * v);
            }
        }
        if propagate_down[2] {
            bottoms[2].diff_mut().copy_from_slice(dy);
        }
        Ok(())
    }
}
