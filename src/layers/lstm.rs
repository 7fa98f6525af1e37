//! LSTM: long short-term memory over T steps of N streams (Caffe's LSTMLayer).
//! The shared part (inputs, cont, static input, carried state) is in recurrent.rs.
//!
//! Learnable blobs, in Caffe's order and shapes: W_xc (4H × I), b_c (4H),
//! W_xc_static (4H × S, with a static input), W_hc (4H × H). The 4H rows of each
//! are the gates in the order i, f, o, g (H rows each).
//!
//! Per step, with a_t = W_xc·x_t + b_c + W_xc_static·x_s + W_hc·(cont_t ⊙ h_{t−1})
//! split into (a_i, a_f, a_o, a_g):
//!     i = σ(a_i), f = cont_t·σ(a_f), o = σ(a_o), g = tanh(a_g)
//!     c_t = f ⊙ c_{t−1} + i ⊙ g,   h_t = o ⊙ tanh(c_t)
//! Top 0 is h_1 … h_T (T × N × H); with `expose_hidden` also h_T and c_T.
//!
//! Backward of one cell ([`cell_backward`]), with dh and dc the gradients reaching
//! h_t and c_t:
//!     dc' = dc + dh ⊙ o ⊙ (1 − tanh²c_t)
//!     da_i = dc' ⊙ g ⊙ i(1 − i),  da_f = dc' ⊙ c_{t−1} ⊙ cont_t·σ(a_f)(1 − σ(a_f)),
//!     da_o = dh ⊙ tanh c_t ⊙ o(1 − o),  da_g = dc' ⊙ i ⊙ (1 − g²),
//!     dc_{t−1} = dc' ⊙ f.

use super::recurrent::Recurrence;
use super::{Arity, BuildContext, Layer, Shape, ShapeError};
use crate::blob::Blob;
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::LayerDef;
use crate::philox::ParamStreams;

/// σ(v) = 1 / (1 + e^(−v)).
fn sigmoid(v: f32) -> f32 {
    1.0 / (1.0 + (-v).exp())
}

pub struct LstmLayer {
    rec: Recurrence,
    /// Saved by forward for backward, per step: the gate activations
    /// (i, σ(a_f), o, g; (T·N) × 4H), the cells c_t ((T·N) × H) and cont_t ⊙ h_{t−1}.
    acts: Vec<f32>,
    cells: Vec<f32>,
    continued: Vec<f32>,
    /// c_0 of the last forward.
    c0: Vec<f32>,
}

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    Ok(Box::new(LstmLayer {
        rec: Recurrence::new(def, 4, 2)?,
        acts: vec![],
        cells: vec![],
        continued: vec![],
        c0: vec![],
    }))
}

/// One LSTM cell step for N streams: from the pre-activations `a` (N × 4H, gates
/// i, f, o, g), c_{t−1} and cont_t, writes c_t, h_t and the activations
/// (i, σ(a_f), o, g) into `acts`.
pub fn cell_forward(
    hidden: usize,
    a: &[f32],
    c_prev: &[f32],
    cont: &[f32],
    c: &mut [f32],
    h: &mut [f32],
    acts: &mut [f32],
) {
    let hd = hidden;
    for (n, &ct) in cont.iter().enumerate() {
        let (a, act) = (
            &a[n * 4 * hd..(n + 1) * 4 * hd],
            &mut acts[n * 4 * hd..(n + 1) * 4 * hd],
        );
        for d in 0..hd {
            let i = sigmoid(a[d]);
            let fs = sigmoid(a[hd + d]);
            let o = sigmoid(a[2 * hd + d]);
            let g = a[3 * hd + d].tanh();
            let f = if ct == 0.0 { 0.0 } else { ct * fs };
            let cv = f * c_prev[n * hd + d] + i * g;
            c[n * hd + d] = cv;
            h[n * hd + d] = o * cv.tanh();
            act[d] = i;
            act[hd + d] = fs;
            act[2 * hd + d] = o;
            act[3 * hd + d] = g;
        }
    }
}

/// Backward of [`cell_forward`]: from dh and dc (N × H) at h_t and c_t, writes the
/// pre-activations' gradient `da` (N × 4H) and returns dc_{t−1}.
#[allow(clippy::too_many_arguments)]
pub fn cell_backward(
    hidden: usize,
    acts: &[f32],
    c_prev: &[f32],
    c: &[f32],
    cont: &[f32],
    dh: &[f32],
    dc: &[f32],
    da: &mut [f32],
) -> Vec<f32> {
    let hd = hidden;
    let mut dc_prev = vec![0.0; c.len()];
    for (n, &ct) in cont.iter().enumerate() {
        let (act, da) = (
            &acts[n * 4 * hd..(n + 1) * 4 * hd],
            &mut da[n * 4 * hd..(n + 1) * 4 * hd],
        );
        for d in 0..hd {
            let k = n * hd + d;
            let (i, fs, o, g) = (act[d], act[hd + d], act[2 * hd + d], act[3 * hd + d]);
            let f = if ct == 0.0 { 0.0 } else { ct * fs };
            let tc = c[k].tanh();
            let dct = dc[k] + dh[k] * o * (1.0 - tc * tc);
            da[d] = dct * g * i * (1.0 - i);
            da[hd + d] = if ct == 0.0 {
                0.0
            } else {
                dct * c_prev[k] * ct * fs * (1.0 - fs)
            };
            da[2 * hd + d] = dh[k] * tc * o * (1.0 - o);
            da[3 * hd + d] = dct * i * (1.0 - g * g);
            dc_prev[k] = dct * f;
        }
    }
    dc_prev
}

impl Layer for LstmLayer {
    fn type_name(&self) -> &'static str {
        "LSTM"
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
        let mut v = self.rec.input_param_shapes();
        v.push(vec![self.rec.gates(), self.rec.hidden]);
        v
    }

    fn flops(&self, _bottom: &[Shape], _top: &[Shape]) -> u64 {
        self.rec.flops()
    }

    fn fill_params(&self, params: &mut [Blob], streams: &ParamStreams) {
        self.rec.fill(params, streams, &[1]);
    }

    fn forward(&mut self, io: &mut LayerIo, _ctx: &mut RunCtx) -> Result<(), String> {
        let (bottoms, mut tops, params) = io.forward_split();
        let r = &mut self.rec;
        let (n, hd) = (r.streams, r.hidden);
        let (nh, ng) = (n * hd, n * r.gates());
        let cont = bottoms[1].data();
        self.acts.resize(r.steps * ng, 0.0);
        self.cells.resize(r.steps * nh, 0.0);
        let h_out = tops[0].data_mut();
        let (c0, cells, acts) = (&mut self.c0, &mut self.cells, &mut self.acts);
        let step = |t: usize, a_t: &mut [f32], states: &mut [Vec<f32>]| {
            if t == 0 {
                c0.clone_from(&states[1]);
            }
            let (h_t, c_t) = (
                &mut h_out[t * nh..(t + 1) * nh],
                &mut cells[t * nh..(t + 1) * nh],
            );
            let cont_t = &cont[t * n..(t + 1) * n];
            cell_forward(
                hd,
                a_t,
                &states[1],
                cont_t,
                c_t,
                h_t,
                &mut acts[t * ng..(t + 1) * ng],
            );
            states[0].copy_from_slice(h_t);
            states[1].copy_from_slice(c_t);
        };
        let (_, finals) = r.forward_steps(&bottoms, params, &mut self.continued, step);
        r.finish(finals, &mut tops);
        Ok(())
    }

    fn backward(
        &mut self,
        io: &mut LayerIo,
        propagate_down: &[bool],
        _ctx: &mut RunCtx,
    ) -> Result<(), String> {
        let (mut bottoms, tops, params) = io.backward_split();
        let r = &self.rec;
        let (n, hd) = (r.streams, r.hidden);
        let (nh, ng) = (n * hd, n * r.gates());
        let cont = bottoms[1].data().to_vec();
        let mut finals = r.final_state_diffs(&tops);
        let mut dc = finals.pop().expect("two states");
        let dh_top = tops[0].diff();
        let mut da = vec![0.0; r.steps * ng];
        let step = |t: usize, dh_next: &[f32], da_t: &mut [f32]| {
            let dh: Vec<f32> = (dh_top[t * nh..(t + 1) * nh].iter().zip(dh_next))
                .map(|(a, b)| a + b)
                .collect();
            let c_prev = if t == 0 {
                &self.c0[..]
            } else {
                &self.cells[(t - 1) * nh..t * nh]
            };
            let (acts, c_t) = (
                &self.acts[t * ng..(t + 1) * ng],
                &self.cells[t * nh..(t + 1) * nh],
            );
            dc = cell_backward(
                hd,
                acts,
                c_prev,
                c_t,
                &cont[t * n..(t + 1) * n],
                &dh,
                &dc,
                da_t,
            );
        };
        let w_h = &mut *params[r.recurrent_param()];
        let dh0 = r.backward_steps(
            &cont,
            &self.continued,
            w_h,
            &mut da,
            finals.swap_remove(0),
            step,
        );
        r.backprop_inputs(&da, &mut bottoms, params, propagate_down);
        r.backprop_states(&[dh0, dc], &mut bottoms, propagate_down);
        Ok(())
    }
}
