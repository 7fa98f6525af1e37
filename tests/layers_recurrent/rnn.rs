//! RNN, and the errors of the recurrent family.

use super::reference::{rnn, Dims};
use super::{
    check_recurrent_gradients, f64s, params_of, recurrent_bottoms, recurrent_spec, CONT_FROM_H0,
    CONT_FROM_ZERO, DIMS,
};
use netrun::blob::Blob;
use netrun::testing::{assert_close, forward, layer, setup};

#[test]
fn rnn_blobs_have_caffes_order_and_shapes() {
    let d = DIMS;
    let mut l = layer(&recurrent_spec("RNN", true, true));
    let bottoms = recurrent_bottoms(&CONT_FROM_ZERO, true, 1);
    let (tops, params) = setup(l.as_mut(), &bottoms, 1);
    let shapes: Vec<&[usize]> = tops.iter().map(|p| p.shape()).collect();
    let want: [&[usize]; 2] = [&[d.t, d.n, d.h], &[1, d.n, d.h]];
    assert_eq!(shapes, want);
    // W_xh, b_h, W_xh_static, W_hh, W_ho, b_o.
    let shapes: Vec<&[usize]> = params.iter().map(|p| p.shape()).collect();
    let want: [&[usize]; 6] = [
        &[d.h, d.i],
        &[d.h],
        &[d.h, d.s],
        &[d.h, d.h],
        &[d.h, d.h],
        &[d.h],
    ];
    assert_eq!(shapes, want);
    // The bias filler fills b_h and b_o, the weight filler the rest.
    let in_bias_range = |b: &Blob| b.data().iter().all(|v| v.abs() <= 0.4);
    assert!(in_bias_range(&params[1]) && in_bias_range(&params[5]));
    assert!(params[3].data().iter().any(|v| v.abs() > 0.4));
}

#[test]
fn rnn_forward_matches_a_naive_loop() {
    let d = DIMS;
    for (with_static, expose) in [(false, false), (true, false), (true, true)] {
        let spec = recurrent_spec("RNN", with_static, expose);
        let mut l = layer(&spec);
        let cont = if expose { CONT_FROM_H0 } else { CONT_FROM_ZERO };
        let mut bottoms = recurrent_bottoms(&cont, with_static, expose as usize);
        let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 2);
        forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
        let dims = Dims {
            s: if with_static { d.s } else { 0 },
            ..d
        };
        let h0 = if expose {
            f64s(bottoms.last().unwrap().data())
        } else {
            vec![0.0; d.n * d.h]
        };
        let xs = with_static.then(|| bottoms[2].data());
        let (want, h_t) = rnn(dims, &params_of(&params), bottoms[0].data(), &cont, xs, &h0);
        assert_close(tops[0].data(), &want, 1e-5, 1e-6, &spec);
        if expose {
            assert_close(tops[1].data(), &h_t, 1e-5, 1e-6, "h_T");
        }
    }
}

#[test]
fn rnn_gradients_match_finite_differences() {
    let checked = check_recurrent_gradients("RNN", 1);
    let d = DIMS;
    let inputs = d.t * d.n * d.i + d.n * d.s + d.n * d.h;
    let blobs = d.h * (d.i + 1 + d.s + d.h + d.h + 1);
    assert_eq!(
        checked,
        inputs + blobs,
        "every input and learnable blob compared"
    );
}

/// The error of a net with inputs x (4×3×4), cont (4×3), xs (3×3), h0 and c0 (1×3×3) and `layer`.
fn error(layer: &str) -> String {
    super::common::build_error(&format!(
        "layer {{ name: \"in\" type: \"Input\" top: \"x\" top: \"cont\" top: \"xs\" top: \"h0\" top: \"c0\"\n\
         input_param {{ shape {{ dim: 4 dim: 3 dim: 4 }} shape {{ dim: 4 dim: 3 }} shape {{ dim: 3 dim: 3 }}\n\
         shape {{ dim: 1 dim: 3 dim: 3 }} shape {{ dim: 1 dim: 3 dim: 3 }} }} }}\n\
         layer {{ {layer} }}"
    ))
}

#[test]
fn recurrent_errors_say_what_is_wrong_and_what_to_do() {
    let e = error("name: \"r\" type: \"LSTM\" bottom: \"x\" bottom: \"cont\" top: \"y\"");
    assert!(
        e.contains("needs `recurrent_param { num_output: ... }`"),
        "{e}"
    );
    let e = error(
        "name: \"r\" type: \"LSTM\" bottom: \"x\" bottom: \"cont\" bottom: \"h0\" bottom: \"c0\" top: \"y\" \
         recurrent_param { num_output: 3 }",
    );
    assert!(
        e.contains("takes bottoms x, cont and an optional static input (2 or 3), but 4 are given"),
        "{e}"
    );
    assert!(e.contains("expose_hidden: true"), "{e}");
    let e = error(
        "name: \"r\" type: \"LSTM\" bottom: \"x\" bottom: \"cont\" bottom: \"h0\" bottom: \"c0\" top: \"y\" \
         top: \"hT\" recurrent_param { num_output: 3 expose_hidden: true }",
    );
    assert!(
        e.contains("has tops the output and then h_T and c_T (3), but 2 are given"),
        "{e}"
    );
    assert!(e.contains("one for each of h_T and c_T"), "{e}");
    let e = error(
        "name: \"r\" type: \"RNN\" bottom: \"x\" bottom: \"xs\" top: \"y\" recurrent_param { num_output: 3 }",
    );
    assert!(
        e.contains("continuation indicators (bottom 1 (`xs`)) have shape 3x3"),
        "{e}"
    );
    assert!(e.contains("4x3"), "{e}");
    let e = error(
        "name: \"r\" type: \"RNN\" bottom: \"x\" bottom: \"cont\" bottom: \"h0\" top: \"y\" top: \"hT\" \
         recurrent_param { num_output: 4 expose_hidden: true }",
    );
    assert!(
        e.contains("has shape 1x3x3; it must be 1 × streams × num_output, 1x3x4"),
        "{e}"
    );
    let e = error(
        "name: \"r\" type: \"RNN\" bottom: \"x\" bottom: \"cont\" top: \"y\" propagate_down: true \
         propagate_down: true recurrent_param { num_output: 3 }",
    );
    assert!(e.contains("takes no gradient"), "{e}");
    let e = error(
        "name: \"r\" type: \"RNN\" bottom: \"x\" bottom: \"cont\" top: \"y\" recurrent_param { num_output: 0 }",
    );
    assert!(e.contains("num_output"), "{e}");
    let e = error("name: \"r\" type: \"Recurrent\" bottom: \"x\" bottom: \"cont\" top: \"y\"");
    assert!(e.contains("abstract base"), "{e}");
    assert!(e.contains("\"LSTM\" or \"RNN\""), "{e}");
    let e = error(
        "name: \"u\" type: \"LSTMUnit\" bottom: \"h0\" bottom: \"x\" bottom: \"cont\" top: \"c\" top: \"h\"",
    );
    assert!(
        e.contains("the gate inputs (bottom 1 (`x`)) have shape 4x3x4"),
        "{e}"
    );
}
