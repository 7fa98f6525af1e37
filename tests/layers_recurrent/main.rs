//! Filter (a layer whose output batch size depends on the data) and the recurrent family
//! (RNN, LSTM, LSTMUnit): forward against naive float64 loops written here, the shared
//! gradient checker, nets whose shapes change while they run, and the errors.

#[path = "../common/mod.rs"]
mod common;

mod filter;
mod lstm;
mod lstm_torch;
mod reference;
mod rnn;

use netrun::blob::Blob;
use netrun::testing::{layer, setup, uniform_blob, GradientChecker};

/// T = 4 steps, N = 3 streams, x 4 × 3 × 2 × 2 (I = 4), static input 3 × 3 (S = 3), H = 3.
pub const DIMS: reference::Dims = reference::Dims {
    t: 4,
    n: 3,
    i: 4,
    s: 3,
    h: 3,
};

/// Stream 0 starts a sequence at step 0, stream 1 at steps 0 and 2, stream 2 at
/// steps 0 and 1 (resets in the middle).
pub const CONT_FROM_ZERO: [f32; 12] = [0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0];
/// As above but streams 0 and 1 continue from the initial state at step 0.
pub const CONT_FROM_H0: [f32; 12] = [1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0];

/// A `type` (LSTM or RNN) layer over x, cont, optionally the static input xs and,
/// with `expose`, the initial states.
pub fn recurrent_spec(ty: &str, with_static: bool, expose: bool) -> String {
    let states: &[&str] = if ty == "LSTM" { &["h0", "c0"] } else { &["h0"] };
    let mut s = format!("name: \"rec\" type: \"{ty}\" bottom: \"x\" bottom: \"cont\"");
    if with_static {
        s.push_str(" bottom: \"xs\"");
    }
    if expose {
        for b in states {
            s.push_str(&format!(" bottom: \"{b}\""));
        }
    }
    s.push_str(" top: \"y\"");
    if expose {
        for b in states {
            s.push_str(&format!(" top: \"{}T\"", &b[..1]));
        }
    }
    s.push_str(&format!(
        " recurrent_param {{ num_output: {} expose_hidden: {expose}\n\
         weight_filler {{ type: \"uniform\" min: -0.7 max: 0.7 }}\n\
         bias_filler {{ type: \"uniform\" min: -0.4 max: 0.4 }} }}",
        DIMS.h
    ));
    s
}

/// x, cont, (xs), (states): the bottoms for [`recurrent_spec`].
pub fn recurrent_bottoms(cont: &[f32], with_static: bool, states: usize) -> Vec<Blob> {
    let d = DIMS;
    let mut b = vec![
        uniform_blob(&[d.t, d.n, 2, 2], -1.0, 1.0, 21),
        Blob::from_data(&[d.t, d.n], cont.to_vec()),
    ];
    if with_static {
        b.push(uniform_blob(&[d.n, d.s], -1.0, 1.0, 22));
    }
    for k in 0..states {
        b.push(uniform_blob(&[1, d.n, d.h], -0.8, 0.8, 23 + k as u64));
    }
    b
}

pub fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

pub fn params_of(p: &[Blob]) -> Vec<Vec<f32>> {
    p.iter().map(|b| b.data().to_vec()).collect()
}

/// Gradient checks of a `ty` (LSTM or RNN) layer: with a static input and exposed
/// states (every input and blob checked, resets inside the batch), then in the
/// carried-state form with every stream starting afresh. Returns how many
/// elements the first check compared.
pub fn check_recurrent_gradients(ty: &str, states: usize) -> usize {
    let mut l = layer(&recurrent_spec(ty, true, true));
    let mut bottoms = recurrent_bottoms(&CONT_FROM_H0, true, states);
    let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 4);
    let mut down = vec![true; bottoms.len()];
    down[1] = false;
    let checked = GradientChecker::default()
        .check(l.as_mut(), &mut bottoms, &mut tops, &mut params, &down)
        .unwrap();
    let mut l = layer(&recurrent_spec(ty, false, false));
    let mut bottoms = recurrent_bottoms(&CONT_FROM_ZERO, false, 0);
    let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 5);
    GradientChecker::default()
        .check(
            l.as_mut(),
            &mut bottoms,
            &mut tops,
            &mut params,
            &[true, false],
        )
        .unwrap();
    checked
}
