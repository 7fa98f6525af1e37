//! LSTMUnit: one LSTM cell step for N streams (Caffe's LSTMUnitLayer, the building
//! block of its unrolled LSTM), with the cell math of lstm.rs.
//! Legend: c_prev is 1 × N × H, a (the gate pre-activations i, f, o, g) 1 × N × 4H,
//! cont 1 × N; tops c_t and h_t are 1 × N × H.
//!     i = σ(a_i), f = cont·σ(a_f), o = σ(a_o), g = tanh(a_g)
//!     c_t = f ⊙ c_prev + i ⊙ g,   h_t = o ⊙ tanh(c_t)
//! Backward: see [`super::lstm::cell_backward`]; cont gets no gradient.

use super::lstm::{cell_backward, cell_forward};
use super::{fmt_shape, Arity, BuildContext, Layer, Shape, ShapeError};
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::LayerDef;

pub struct LstmUnitLayer {
    hidden: usize,
    /// The gate activations of the last forward, N × 4H.
    acts: Vec<f32>,
}

pub fn build(_def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    Ok(Box::new(LstmUnitLayer {
        hidden: 0,
        acts: vec![],
    }))
}

impl Layer for LstmUnitLayer {
    fn type_name(&self) -> &'static str {
        "LSTMUnit"
    }
    fn bottoms(&self) -> Arity {
        Arity::exactly(3)
    }
    fn tops(&self) -> Arity {
        Arity::exactly(2)
    }
    fn can_backprop_to(&self, bottom: usize) -> bool {
        bottom != 2
    }

    fn reshape(&mut self, bottom: &[Shape]) -> Result<Vec<Shape>, ShapeError> {
        let c = &bottom[0];
        if c.len() != 3 || c[0] != 1 {
            return Err(ShapeError::at_bottom(
                0,
                format!(
                    "the previous cell state (bottom 0) has shape {}; it must be 1 × N × H",
                    fmt_shape(c)
                ),
            ));
        }
        let (n, h) = (c[1], c[2]);
        if bottom[1] != [1, n, 4 * h] {
            return Err(ShapeError::at_bottom(
                1,
                format!(
                    "the gate inputs (bottom 1) have shape {}; they must be 1 × N × 4H, {} for \
                     bottom 0's shape {} (gates i, f, o, g)",
                    fmt_shape(&bottom[1]),
                    fmt_shape(&[1, n, 4 * h]),
                    fmt_shape(c)
                ),
            ));
        }
        if bottom[2] != [1, n] {
            return Err(ShapeError::at_bottom(
                2,
                format!(
                    "the continuation indicators (bottom 2) have shape {}; they must be 1 × N, 1x{n}",
                    fmt_shape(&bottom[2])
                ),
            ));
        }
        self.hidden = h;
        Ok(vec![c.clone(), c.clone()])
    }

    fn forward(&mut self, io: &mut LayerIo, _ctx: &mut RunCtx) -> Result<(), String> {
        let (bottoms, mut tops, _) = io.forward_split();
        self.acts.resize(bottoms[1].count(), 0.0);
        let (c, h) = tops.split_at_mut(1);
        cell_forward(
            self.hidden,
            bottoms[1].data(),
            bottoms[0].data(),
            bottoms[2].data(),
            c[0].data_mut(),
            h[0].data_mut(),
            &mut self.acts,
        );
        Ok(())
    }

    fn backward(
        &mut self,
        io: &mut LayerIo,
        propagate_down: &[bool],
        _ctx: &mut RunCtx,
    ) -> Result<(), String> {
        if !propagate_down[0] && !propagate_down[1] {
            return Ok(());
        }
        let (mut bottoms, tops, _) = io.backward_split();
        let mut da = vec![0.0; bottoms[1].count()];
        let dc_prev = cell_backward(
            self.hidden,
            &self.acts,
            bottoms[0].data(),
            tops[0].data(),
            bottoms[2].data(),
            tops[1].diff(),
            tops[0].diff(),
            &mut da,
        );
        if propagate_down[0] {
            bottoms[0].diff_mut().copy_from_slice(&dc_prev);
        }
        if propagate_down[1] {
            bottoms[1].diff_mut().copy_from_slice(&da);
        }
        Ok(())
    }
}
