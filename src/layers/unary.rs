//! The element-wise layers with a formula per element (Power, Exp, Log, AbsVal,
//! BNLL, Threshold, ELU, Clip, Swish) share one layer here; each type's file holds
//! its parameters and its [`UnaryOp`]: y = f(x) and dy/dx = f′(x).
//!
//! Backward is dx = dy·f′(x), always from the input x. Every such layer works in
//! place: then forward keeps a copy of x (which the top overwrites), so even the
//! types whose gradient cannot be recovered from y (AbsVal, Clip, Threshold)
//! give the true gradient in place.

use super::{count, rows, Arity, Layer, Shape, ShapeError};
use crate::layer_io::{LayerIo, RunCtx};

/// One element-wise formula.
pub trait UnaryOp: Send + Sync + 'static {
    /// The Caffe type name.
    fn type_name(&self) -> &'static str;
    /// y = f(x).
    fn value(&self, x: f32) -> f32;
    /// f′(x).
    fn derivative(&self, x: f32) -> f32;
    /// Forward FLOPs per element (a transcendental function counts as one).
    fn flops(&self) -> u64 {
        1
    }
}

pub struct UnaryLayer<O: UnaryOp> {
    pub op: O,
    /// x of the last forward when it ran in place (empty otherwise).
    saved_input: Vec<f32>,
}

/// The layer running `op`.
pub fn layer<O: UnaryOp>(op: O) -> Box<dyn Layer> {
    Box::new(UnaryLayer {
        op,
        saved_input: Vec::new(),
    })
}

impl<O: UnaryOp> Layer for UnaryLayer<O> {
    fn type_name(&self) -> &'static str {
        self.op.type_name()
    }
    fn bottoms(&self) -> Arity {
        Arity::exactly(1)
    }
    fn tops(&self) -> Arity {
        Arity::exactly(1)
    }
    fn reshape(&mut self, bottom: &[Shape]) -> Result<Vec<Shape>, ShapeError> {
        Ok(vec![bottom[0].clone()])
    }
    fn flops(&self, bottom: &[Shape], _top: &[Shape]) -> u64 {
        self.op.flops() * count(&bottom[0]) as u64
    }
    fn supports_in_place(&self) -> bool {
        true
    }

    fn forward(&mut self, io: &mut LayerIo, _ctx: &mut RunCtx) -> Result<(), String> {
        if io.in_place(0) {
            self.saved_input.clear();
            self.saved_input.extend_from_slice(io.bottom(0).data());
        } else {
            self.saved_input = Vec::new();
        }
        io.copy_bottom_data_to_top(0);
        let op = &self.op;
        rows::map(io.top_mut(0).data_mut(), |x| op.value(x));
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
        io.copy_top_diff_to_bottom(0);
        let op = &self.op;
        let grad = |g: f32, x: f32| g * op.derivative(x);
        if io.in_place(0) {
            rows::zip_map(io.bottom_mut(0).diff_mut(), &self.saved_input, grad);
        } else {
            let (x, dx) = io.bottom_mut(0).data_and_diff_mut();
            rows::zip_map(dx, x, grad);
        }
        Ok(())
    }
}
