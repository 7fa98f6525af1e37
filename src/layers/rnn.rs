//! RNN: a simple (Elman) recurrent net over T steps of N streams, with a tanh
//! output layer (Caffe's RNNLayer). The shared part (inputs, cont, static input,
//! carried state) is in recurrent.rs.
//!
//! Learnable blobs, in Caffe's order and shapes: W_xh (H × I), b_h (H),
//! W_xh_static (H × S, with a static input), W_hh (H × H), W_ho (H × H), b_o (H).
//!
//! Per step:
//!     h_t = tanh(W_xh·x_t + b_h + W_xh_static·x_s + W_hh·(cont_t ⊙ h_{t−1}))
//!     o_t = tanh(W_ho·h_t + b_o)
//! Top 0 is o_1 … o_T (T × N × H); with `expose_hidden` also h_T.
//!
//! Backward: dz_o = do ⊙ (1 − o²); dW_ho += Σ dz_oᵀ·h_t, db_o += Σ dz_o; then back
//! through time with dh_t = dz_o·W_ho + (the gradient from step t + 1),
//! da_t = dh_t ⊙ (1 − h_t²), and the shared rules of recurrent.rs.

use super::recurrent::Recurrence;
use super::{Arity, BuildContext, Layer, Shape, ShapeError};
use crate::backend::gemm;
use crate::blob::Blob;
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::LayerDef;
use crate::philox::ParamStreams;

pub struct RnnLayer {
    rec: Recurrence,
    /// Saved by forward for backward: h_1 … h_T and cont_t ⊙ h_{t−1}, (T·N) × H each.
    hs: Vec<f32>,
    continued: Vec<f32>,
}

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    Ok(Box::new(RnnLayer {
        rec: Recurrence::new(def, 1, 1)?,
        hs: vec![],
        continued: vec![],
    }))
}

impl RnnLayer {
    /// Index of W_ho; b_o follows it.
    fn w_ho(&self) -> usize {
        self.rec.recurrent_param() + 1
    }
}

impl Layer for RnnLayer {
    fn type_name(&self) -> &'static str {
        "RNN"
    }
    fn bottoms(&self) -> Arity {
        self.rec.bottoms()
    }
    fn tops(&self) -> Arity {
        self.rec.tops()
    }
    fn can_backprop_to(&self, bottom: usize) -> bool {
        bottom != 1
    }

    fn reshape(&mut self, bottom: &[Shape]) -> Result<Vec<Shape>, ShapeError> {
        self.rec.reshape(bottom)
    }

    fn param_shapes(&self) -> Vec<Shape> {
        let h = self.rec.hidden;
        let mut v = self.rec.input_param_shapes();
        v.extend([vec![h, h], vec![h, h], vec![h]]);
        v
    }

    fn flops(&self, _bottom: &[Shape], _top: &[Shape]) -> u64 {
        let (t, n, h) = (self.rec.steps, self.rec.streams, self.rec.hidden);
        self.rec.flops() + 2 * (t * n * h * h) as u64
    }

    fn fill_params(&self, params: &mut [Blob], streams: &ParamStreams) {
        self.rec.fill(params, streams, &[1, self.w_ho() + 1]);
    }

    fn forward(&mut self, io: &mut LayerIo, _ctx: &mut RunCtx) -> Result<(), String> {
        let w_ho = self.w_ho();
        let (bottoms, mut tops, params) = io.forward_split();
        let r = &mut self.rec;
        let (tn, hd) = (r.steps * r.streams, r.hidden);
        // h_t = tanh(a_t), kept in place of a_t.
        let step = |_t: usize, a_t: &mut [f32], states: &mut [Vec<f32>]| {
            a_t.iter_mut().for_each(|v| *v = v.tanh());
            states[0].copy_from_slice(a_t);
        };
        let (hs, finals) = r.forward_steps(&bottoms, params, &mut self.continued, step);
        self.hs = hs;
        let o = tops[0].data_mut();
        let (w, b) = (params[w_ho].data(), params[w_ho + 1].data());
        gemm(false, true, tn, hd, hd, 1.0, &self.hs, w, 0.0, o);
        for row in o.chunks_mut(hd.max(1)) {
            row.iter_mut()
                .zip(b)
                .for_each(|(v, &bi)| *v = (*v + bi).tanh());
        }
        r.finish(finals, &mut tops);
        Ok(())
    }

    fn backward(
        &mut self,
        io: &mut LayerIo,
        propagate_down: &[bool],
        _ctx: &mut RunCtx,
    ) -> Result<(), String> {
        let w_ho = self.w_ho();
        let (mut bottoms, tops, params) = io.backward_split();
        let r = &self.rec;
        let (hd, nh) = (r.hidden, r.streams * r.hidden);
        let tn = r.steps * r.streams;
        // Output layer: dz_o = do ⊙ (1 − o²).
        let dz: Vec<f32> = (tops[0].data().iter().zip(tops[0].diff()))
            .map(|(&o, &d)| d * (1.0 - o * o))
            .collect();
        let (w, dw) = params[w_ho].data_and_diff_mut();
        gemm(true, false, hd, hd, tn, 1.0, &dz, &self.hs, 1.0, dw);
        let mut da = vec![0.0; tn * hd];
        gemm(false, false, tn, hd, hd, 1.0, &dz, w, 0.0, &mut da);
        let db = params[w_ho + 1].diff_mut();
        dz.chunks(hd.max(1))
            .for_each(|row| db.iter_mut().zip(row).for_each(|(d, &v)| *d += v));
        // Back through time: da holds dz_o·W_ho per step; add the recurrent part.
        let cont = bottoms[1].data().to_vec();
        let step = |t: usize, dh_next: &[f32], da_t: &mut [f32]| {
            let h_t = &self.hs[t * nh..(t + 1) * nh];
            for ((d, &h), &next) in da_t.iter_mut().zip(h_t).zip(dh_next) {
                *d = (*d + next) * (1.0 - h * h);
            }
        };
        let dh_last = r.final_state_diffs(&tops).swap_remove(0);
        let w_hh = &mut *params[r.recurrent_param()];
        let dh0 = r.backward_steps(&cont, &self.continued, w_hh, &mut da, dh_last, step);
        r.backprop_inputs(&da, &mut bottoms, params, propagate_down);
        r.backprop_states(&[dh0], &mut bottoms, propagate_down);
        Ok(())
    }
}
