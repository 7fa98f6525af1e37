//! What RNN and LSTM share (Caffe's abstract RecurrentLayer): `recurrent_param`, the
//! bottom and top layout, the shape rule, the hidden state carried between
//! forwards, and the time loops forward and backward with their matrix products;
//! each layer gives only its per-step math.
//!
//! Legend: x is T × N × … (T time steps of N independent streams; I = values per
//! step and stream), cont is T × N, the optional static input x_s is N × … (S values
//! per stream), H = num_output, G = the width of the pre-activations per step
//! (4H for LSTM's four gates, H for RNN).
//!
//! Per step t the layer forms
//!     a_t = W_x·x_t + b + W_s·x_s + W_h·(cont_t ⊙ h_{t−1})
//! (one G-vector per stream); cont_t = 0 starts a new sequence in that stream, so
//! the state before it is forgotten. The input products for all T steps are one
//! GEMM of (T·N) × I by I × G before the loop; inside it only N × H by H × G.
//!
//! Backward through time, given da_t for every step:
//!     dW_x += Σ_t da_tᵀ·x_t,  db += Σ_t Σ_n da_t,  dx_t = da_t·W_x,
//!     dW_s += (Σ_t da_t)ᵀ·x_s,  dx_s = (Σ_t da_t)·W_s,
//!     dW_h += Σ_t da_tᵀ·(cont_t ⊙ h_{t−1}),  dh_{t−1} gets cont_t ⊙ (da_t·W_h).
//!
//! The initial state h_0 (and c_0) is a bottom with `expose_hidden`; otherwise it is
//! the final state of the previous forward (zeros at first and after N changes), so a
//! long sequence can be cut into consecutive batches, as in Caffe; no gradient
//! crosses from one batch to the previous one.

use super::filler::{fill, FillerParams};
use super::{count, fmt_shape, required, Arity, Shape, ShapeError};
use crate::backend::gemm;
use crate::blob::Blob;
use crate::error::Diagnostic;
use crate::netdef::LayerDef;
use crate::philox::ParamStreams;
use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecurrentParams {
    pub num_output: Option<u32>,
    pub weight_filler: FillerParams,
    pub bias_filler: FillerParams,
    /// Caffe prints its unrolled net's blobs; netrun has no unrolled net (accepted, unused).
    pub debug_info: bool,
    /// h_0 (and c_0) become extra bottoms and h_T (and c_T) extra tops.
    pub expose_hidden: bool,
}

/// The settings and sizes of one recurrent layer.
pub struct Recurrence {
    pub params: RecurrentParams,
    /// H.
    pub hidden: usize,
    /// Pre-activations per step and stream, as a multiple of H (LSTM 4, RNN 1).
    pub width: usize,
    /// Recurrent states (LSTM: h and c; RNN: h).
    pub states: usize,
    pub has_static: bool,
    pub steps: usize,
    pub streams: usize,
    /// I, fixed at the first reshape.
    pub input: usize,
    /// S, fixed at the first reshape.
    pub static_input: usize,
    /// The final states of the last forward (the next one's initial states
    /// without `expose_hidden`).
    carry: Vec<Vec<f32>>,
}

impl Recurrence {
    /// Reads `recurrent_param` and checks the bottom and top counts of `def`.
    pub fn new(def: &LayerDef, width: usize, states: usize) -> Result<Recurrence, Diagnostic> {
        let p: RecurrentParams = def.params("recurrent_param")?;
        let hidden = required(def, p.num_output, "recurrent_param", "num_output")? as usize;
        p.weight_filler
            .validate(def, "recurrent_param", "weight_filler")?;
        p.bias_filler
            .validate(def, "recurrent_param", "bias_filler")?;
        let exposed = if p.expose_hidden { states } else { 0 };
        let (b, t) = (def.bottom.len(), def.top.len());
        let names = if states == 2 { "h_0 and c_0" } else { "h_0" };
        let outs = if states == 2 { "h_T and c_T" } else { "h_T" };
        let fail = |message: String, help: String| {
            let message = format!("{}: {message}", def.describe());
            Err(def.error(def.name_span(), message).with_help(help))
        };
        let (lo, hi) = (2 + exposed, 3 + exposed);
        if b != lo && b != hi {
            return fail(
                match p.expose_hidden {
                    true => format!("takes bottoms x, cont, the optional static input and then {names} ({lo} or {hi}), but {b} are given"),
                    false => format!("takes bottoms x, cont and an optional static input (2 or 3), but {b} are given"),
                },
                match p.expose_hidden {
                    true => format!("with `expose_hidden: true` the initial states {names} follow the inputs"),
                    false => format!("to give the initial states ({names}) as bottoms, set `recurrent_param {{ expose_hidden: true }}`"),
                },
            );
        }
        if t != 1 + exposed {
            return fail(
                match p.expose_hidden {
                    true => format!("has tops the output and then {outs} ({}), but {t} are given", 1 + exposed),
                    false => format!("has tops the output only (1), but {t} are given"),
                },
                match p.expose_hidden {
                    true => format!("give one top for the output, then one for each of {outs}"),
                    false => format!("the final states {outs} are tops only with `recurrent_param {{ expose_hidden: true }}`"),
                },
            );
        }
        Ok(Recurrence {
            has_static: b == 3 + exposed,
            params: p,
            hidden,
            width,
            states,
            steps: 0,
            streams: 0,
            input: 0,
            static_input: 0,
            carry: vec![],
        })
    }

    pub fn bottoms(&self) -> Arity {
        Arity::between(2, 3 + self.exposed())
    }
    pub fn tops(&self) -> Arity {
        Arity::between(1, 1 + self.exposed())
    }
    fn exposed(&self) -> usize {
        if self.params.expose_hidden {
            self.states
        } else {
            0
        }
    }
    /// Index of the first initial-state bottom.
    pub fn state_bottom(&self) -> usize {
        2 + self.has_static as usize
    }
    /// G.
    pub fn gates(&self) -> usize {
        self.width * self.hidden
    }

    /// Checks the bottoms (x: T × N × …, cont: T × N, x_s: N × …, states 1 × N × H)
    /// and returns the tops' shapes: the output T × N × H, then one 1 × N × H per
    /// exposed state.
    pub fn reshape(&mut self, bottom: &[Shape]) -> Result<Vec<Shape>, ShapeError> {
        let x = &bottom[0];
        if x.len() < 2 {
            return Err(ShapeError::at_bottom(
                0,
                format!(
                    "bottom 0 has shape {}; it needs at least 2 axes: time steps × streams × …",
                    fmt_shape(x)
                ),
            ));
        }
        let (t, n) = (x[0], x[1]);
        if bottom[1] != [t, n] {
            return Err(ShapeError::at_bottom(
                1,
                format!(
                    "the sequence continuation indicators (bottom 1) have shape {}; they must be \
                     time steps × streams, {t}x{n} for bottom 0's shape {}",
                    fmt_shape(&bottom[1]),
                    fmt_shape(x)
                ),
            ));
        }
        let input = count(&x[2..]);
        fixed(&mut self.input, input, 0, "values per step and stream")?;
        if self.has_static {
            let s = &bottom[2];
            if s.first() != Some(&n) {
                return Err(ShapeError::at_bottom(
                    2,
                    format!(
                        "the static input (bottom 2) has shape {}; its first axis must be the {n} streams",
                        fmt_shape(s)
                    ),
                ));
            }
            fixed(
                &mut self.static_input,
                count(&s[1..]),
                2,
                "static input values per stream",
            )?;
        }
        let state = vec![1, n, self.hidden];
        for (i, b) in bottom.iter().enumerate().skip(self.state_bottom()) {
            if *b != state {
                return Err(ShapeError::at_bottom(
                    i,
                    format!(
                        "the initial state (bottom {i}) has shape {}; it must be 1 × streams × num_output, {}",
                        fmt_shape(b),
                        fmt_shape(&state)
                    ),
                ));
            }
        }
        self.steps = t;
        self.streams = n;
        let mut tops = vec![vec![t, n, self.hidden]];
        tops.extend(vec![state; self.exposed()]);
        Ok(tops)
    }

    /// Learnable blobs of the input side: W_x (G × I), b (G), W_s (G × S) when static.
    pub fn input_param_shapes(&self) -> Vec<Shape> {
        let g = self.gates();
        let mut v = vec![vec![g, self.input], vec![g]];
        if self.has_static {
            v.push(vec![g, self.static_input]);
        }
        v
    }

    /// Fills the learnable blobs: those at `biases` with `bias_filler`, the others
    /// (the matrices) with `weight_filler`.
    pub fn fill(&self, params: &mut [Blob], streams: &ParamStreams, biases: &[usize]) {
        let p = &self.params;
        for (i, blob) in params.iter_mut().enumerate() {
            let filler = if biases.contains(&i) {
                &p.bias_filler
            } else {
                &p.weight_filler
            };
            fill(filler, blob, streams.blob(i));
        }
    }

    /// Index of the first learnable blob after the input side.
    pub fn recurrent_param(&self) -> usize {
        2 + self.has_static as usize
    }

    /// The initial states, N × H each: the state bottoms with `expose_hidden`, else the
    /// final states of the previous forward (zeros when there is none of this size).
    fn initial_states(&mut self, bottoms: &[&Blob]) -> Vec<Vec<f32>> {
        let size = self.streams * self.hidden;
        if self.params.expose_hidden {
            return (0..self.states)
                .map(|k| bottoms[self.state_bottom() + k].data().to_vec())
                .collect();
        }
        if self.carry.len() != self.states || self.carry.iter().any(|c| c.len() != size) {
            self.carry = vec![vec![0.0; size]; self.states];
        }
        self.carry.clone()
    }

    /// Keeps the final states for the next forward, or writes them to the extra tops.
    pub fn finish(&mut self, finals: Vec<Vec<f32>>, tops: &mut [&mut Blob]) {
        if self.params.expose_hidden {
            for (k, f) in finals.iter().enumerate() {
                tops[1 + k].data_mut().copy_from_slice(f);
            }
        } else {
            self.carry = finals;
        }
    }

    /// The pre-activations of the inputs for every step, (T·N) × G:
    /// x_t·W_xᵀ + b (+ x_s·W_sᵀ for every step).
    fn project_inputs(&self, bottoms: &[&Blob], params: &[&mut Blob]) -> Vec<f32> {
        let (tn, g) = (self.steps * self.streams, self.gates());
        let mut a = vec![0.0; tn * g];
        gemm(
            false,
            true,
            tn,
            g,
            self.input,
            1.0,
            bottoms[0].data(),
            params[0].data(),
            0.0,
            &mut a,
        );
        let b = params[1].data();
        a.chunks_mut(g.max(1))
            .for_each(|row| row.iter_mut().zip(b).for_each(|(v, &bi)| *v += bi));
        if self.has_static {
            let n = self.streams;
            let mut s = vec![0.0; n * g];
            gemm(
                false,
                true,
                n,
                g,
                self.static_input,
                1.0,
                bottoms[2].data(),
                params[2].data(),
                0.0,
                &mut s,
            );
            a.chunks_mut((n * g).max(1))
                .for_each(|step| step.iter_mut().zip(&s).for_each(|(v, &si)| *v += si));
        }
        a
    }

    /// The forward time loop. For t = 1 … T: a_t = (the input part) + W_h·(cont_t ⊙ h_{t−1}),
    /// then `step(t, a_t, states)` turns a_t into the new states (states[0] is h) and may
    /// rewrite a_t. Keeps cont_t ⊙ h_{t−1} of every step in `continued` for backward.
    /// Returns every a_t ((T·N) × G) and the final states.
    pub fn forward_steps(
        &mut self,
        bottoms: &[&Blob],
        params: &[&mut Blob],
        continued: &mut Vec<f32>,
        mut step: impl FnMut(usize, &mut [f32], &mut [Vec<f32>]),
    ) -> (Vec<f32>, Vec<Vec<f32>>) {
        let (n, nh, ng) = (
            self.streams,
            self.streams * self.hidden,
            self.streams * self.gates(),
        );
        let mut states = self.initial_states(bottoms);
        let mut a = self.project_inputs(bottoms, params);
        let w_h = params[self.recurrent_param()].data();
        let cont = bottoms[1].data();
        continued.resize(self.steps * nh, 0.0);
        for t in 0..self.steps {
            let hc = self.continued(&states[0], &cont[t * n..(t + 1) * n]);
            let a_t = &mut a[t * ng..(t + 1) * ng];
            // a_t += (cont_t ⊙ h_{t−1})·W_hᵀ, N × G.
            gemm(
                false,
                true,
                n,
                self.gates(),
                self.hidden,
                1.0,
                &hc,
                w_h,
                1.0,
                a_t,
            );
            continued[t * nh..(t + 1) * nh].copy_from_slice(&hc);
            step(t, a_t, &mut states);
        }
        (a, states)
    }

    /// The backward time loop. For t = T … 1: `step(t, dh, da_t)` writes da_t from dh,
    /// the gradient reaching h_t from step t + 1 (`dh_last` for h_T); then dW_h
    /// accumulates and the gradient for h_{t−1} is formed. Returns that of h_0.
    pub fn backward_steps(
        &self,
        cont: &[f32],
        continued: &[f32],
        w_h: &mut Blob,
        da: &mut [f32],
        dh_last: Vec<f32>,
        mut step: impl FnMut(usize, &[f32], &mut [f32]),
    ) -> Vec<f32> {
        let (n, nh, ng) = (
            self.streams,
            self.streams * self.hidden,
            self.streams * self.gates(),
        );
        let mut dh = dh_last;
        for t in (0..self.steps).rev() {
            let da_t = &mut da[t * ng..(t + 1) * ng];
            step(t, &dh, da_t);
            let (hc, cont_t) = (&continued[t * nh..(t + 1) * nh], &cont[t * n..(t + 1) * n]);
            dh = self.backprop_recurrent(da_t, hc, cont_t, w_h);
        }
        dh
    }

    /// cont_t ⊙ h_{t−1} (N × H); a stream that starts a new sequence gets exact zeros.
    fn continued(&self, h_prev: &[f32], cont_t: &[f32]) -> Vec<f32> {
        let h = self.hidden;
        let mut out = vec![0.0; h_prev.len()];
        for ((o, hp), &c) in out
            .chunks_mut(h.max(1))
            .zip(h_prev.chunks(h.max(1)))
            .zip(cont_t)
        {
            if c != 0.0 {
                o.iter_mut().zip(hp).for_each(|(o, &v)| *o = c * v);
            }
        }
        out
    }

    /// One step back through the recurrent product: dW_h += da_tᵀ·hc_t; returns
    /// dh_{t−1} = cont_t ⊙ (da_t·W_h).
    fn backprop_recurrent(
        &self,
        da_t: &[f32],
        hc: &[f32],
        cont_t: &[f32],
        w_h: &mut Blob,
    ) -> Vec<f32> {
        let (n, g, h) = (self.streams, self.gates(), self.hidden);
        let (w, dw) = w_h.data_and_diff_mut();
        gemm(true, false, g, h, n, 1.0, da_t, hc, 1.0, dw);
        let mut dh = vec![0.0; n * h];
        gemm(false, false, n, h, g, 1.0, da_t, w, 0.0, &mut dh);
        for (row, &c) in dh.chunks_mut(h.max(1)).zip(cont_t) {
            row.iter_mut()
                .for_each(|v| *v = if c != 0.0 { *v * c } else { 0.0 });
        }
        dh
    }

    /// The input side of backward from da ((T·N) × G): the gradients of W_x, b and
    /// W_s (accumulated), and of x and x_s where `propagate_down`.
    pub fn backprop_inputs(
        &self,
        da: &[f32],
        bottoms: &mut [&mut Blob],
        params: &mut [&mut Blob],
        propagate_down: &[bool],
    ) {
        let (tn, g, n) = (self.steps * self.streams, self.gates(), self.streams);
        let (i, s) = (self.input, self.static_input);
        let (x, dx) = bottoms[0].data_and_diff_mut();
        let (w, dw) = params[0].data_and_diff_mut();
        gemm(true, false, g, i, tn, 1.0, da, x, 1.0, dw);
        if propagate_down[0] {
            gemm(false, false, tn, i, g, 1.0, da, w, 0.0, dx);
        }
        let db = params[1].diff_mut();
        da.chunks(g.max(1))
            .for_each(|row| db.iter_mut().zip(row).for_each(|(d, &v)| *d += v));
        if self.has_static {
            // x_s enters every step: its gradients see Σ_t da_t.
            let mut sum = vec![0.0; n * g];
            da.chunks((n * g).max(1))
                .for_each(|step| sum.iter_mut().zip(step).for_each(|(a, &v)| *a += v));
            let (xs, dxs) = bottoms[2].data_and_diff_mut();
            let (ws, dws) = params[2].data_and_diff_mut();
            gemm(true, false, g, s, n, 1.0, &sum, xs, 1.0, dws);
            if propagate_down[2] {
                gemm(false, false, n, s, g, 1.0, &sum, ws, 0.0, dxs);
            }
        }
    }

    /// Writes the gradients of the initial states to their bottoms (`expose_hidden`).
    pub fn backprop_states(
        &self,
        d0: &[Vec<f32>],
        bottoms: &mut [&mut Blob],
        propagate_down: &[bool],
    ) {
        if !self.params.expose_hidden {
            return;
        }
        for (k, d) in d0.iter().enumerate() {
            let b = self.state_bottom() + k;
            if propagate_down[b] {
                bottoms[b].diff_mut().copy_from_slice(d);
            }
        }
    }

    /// The diffs of the exposed final-state tops (zeros without `expose_hidden`).
    pub fn final_state_diffs(&self, tops: &[&Blob]) -> Vec<Vec<f32>> {
        (0..self.states)
            .map(|k| {
                if self.params.expose_hidden {
                    tops[1 + k].diff().to_vec()
                } else {
                    vec![0.0; self.streams * self.hidden]
                }
            })
            .collect()
    }

    /// GEMM flops of one forward: the input products, the static product and T recurrent products.
    pub fn flops(&self) -> u64 {
        let (t, n, g) = (self.steps as u64, self.streams as u64, self.gates() as u64);
        2 * g * n * (t * self.input as u64 + self.static_input as u64 + t * self.hidden as u64)
    }
}

/// A size that must stay what the first reshape found (the learnable blobs depend on it).
fn fixed(slot: &mut usize, now: usize, bottom: usize, what: &str) -> Result<(), ShapeError> {
    if *slot != 0 && *slot != now {
        return Err(ShapeError::at_bottom(
            bottom,
            format!("bottom {bottom}'s {what} changed from {} to {now}", *slot),
        ));
    }
    *slot = now;
    Ok(())
}
