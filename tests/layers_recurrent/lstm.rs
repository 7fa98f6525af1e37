//! LSTM and LSTMUnit.

use super::reference::{lstm, Dims};
use super::{
    check_recurrent_gradients, f64s, params_of, recurrent_bottoms, recurrent_spec, CONT_FROM_H0,
    CONT_FROM_ZERO, DIMS,
};
use netrun::blob::Blob;
use netrun::testing::{
    assert_close, backward, forward, layer, setup, uniform_blob, GradientChecker,
};

#[test]
fn lstm_blobs_have_caffes_order_and_shapes() {
    let d = DIMS;
    let mut l = layer(&recurrent_spec("LSTM", true, false));
    let bottoms = recurrent_bottoms(&CONT_FROM_ZERO, true, 0);
    let (tops, params) = setup(l.as_mut(), &bottoms, 1);
    assert_eq!(tops.len(), 1);
    assert_eq!(tops[0].shape(), &[d.t, d.n, d.h]);
    let shapes: Vec<&[usize]> = params.iter().map(|p| p.shape()).collect();
    // W_xc, b_c, W_xc_static, W_hc.
    let want: [&[usize]; 4] = [
        &[4 * d.h, d.i],
        &[4 * d.h],
        &[4 * d.h, d.s],
        &[4 * d.h, d.h],
    ];
    assert_eq!(shapes, want);
    let mut l = layer(&recurrent_spec("LSTM", false, true));
    let bottoms = recurrent_bottoms(&CONT_FROM_ZERO, false, 2);
    let (tops, params) = setup(l.as_mut(), &bottoms, 1);
    let shapes: Vec<&[usize]> = tops.iter().map(|p| p.shape()).collect();
    let want: [&[usize]; 3] = [&[d.t, d.n, d.h], &[1, d.n, d.h], &[1, d.n, d.h]];
    assert_eq!(shapes, want);
    assert_eq!(params.len(), 3);
}

#[test]
fn lstm_forward_matches_a_naive_loop_with_resets_and_a_static_input() {
    let d = DIMS;
    for with_static in [false, true] {
        let spec = recurrent_spec("LSTM", with_static, false);
        let mut l = layer(&spec);
        let mut bottoms = recurrent_bottoms(&CONT_FROM_ZERO, with_static, 0);
        let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 2);
        forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
        let dims = Dims {
            s: if with_static { d.s } else { 0 },
            ..d
        };
        let zeros = vec![0.0; d.n * d.h];
        let xs = with_static.then(|| bottoms[2].data());
        let (want, _, _) = lstm(
            dims,
            &params_of(&params),
            bottoms[0].data(),
            bottoms[1].data(),
            xs,
            &zeros,
            &zeros,
        );
        assert_close(tops[0].data(), &want, 1e-5, 1e-6, &spec);
    }
}

#[test]
fn lstm_exposed_states_in_and_out_match_a_naive_loop() {
    let d = DIMS;
    let spec = recurrent_spec("LSTM", true, true);
    let mut l = layer(&spec);
    let mut bottoms = recurrent_bottoms(&CONT_FROM_H0, true, 2);
    let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 3);
    forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
    let (want, h_t, c_t) = lstm(
        d,
        &params_of(&params),
        bottoms[0].data(),
        bottoms[1].data(),
        Some(bottoms[2].data()),
        &f64s(bottoms[3].data()),
        &f64s(bottoms[4].data()),
    );
    assert_close(tops[0].data(), &want, 1e-5, 1e-6, "h");
    assert_close(tops[1].data(), &h_t, 1e-5, 1e-6, "h_T");
    assert_close(tops[2].data(), &c_t, 1e-5, 1e-6, "c_T");
    // Stream 2 starts afresh at step 0, so its h_1 ignores h_0; streams 0 and 1 do not.
    let zeros = vec![0.0; d.n * d.h];
    let (fresh, _, _) = lstm(
        d,
        &params_of(&params),
        bottoms[0].data(),
        bottoms[1].data(),
        Some(bottoms[2].data()),
        &zeros,
        &zeros,
    );
    let h = d.h;
    assert!((0..h).all(|j| (fresh[2 * h + j] - want[2 * h + j]).abs() < 1e-12));
    assert!((0..h).any(|j| (fresh[j] - want[j]).abs() > 1e-3));
}

#[test]
fn lstm_gradients_match_finite_differences() {
    let checked = check_recurrent_gradients("LSTM", 2);
    let d = DIMS;
    let inputs = d.t * d.n * d.i + d.n * d.s + 2 * d.n * d.h;
    let blobs = 4 * d.h * (d.i + 1 + d.s + d.h);
    assert_eq!(
        checked,
        inputs + blobs,
        "every input and learnable blob compared"
    );
}

#[test]
fn lstm_carries_its_state_to_the_next_forward() {
    let d = DIMS;
    let mut l = layer(&recurrent_spec("LSTM", false, false));
    let ones = [1.0f32; 12];
    let mut bottoms = recurrent_bottoms(&ones, false, 0);
    let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 6);
    let dims = Dims { s: 0, ..d };
    let p = params_of(&params);
    let zeros = vec![0.0; d.n * d.h];
    forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
    let (first, h_t, c_t) = lstm(dims, &p, bottoms[0].data(), &ones, None, &zeros, &zeros);
    assert_close(tops[0].data(), &first, 1e-5, 1e-6, "first batch from zeros");
    // The next batch continues from h_T and c_T of this one.
    bottoms[0] = uniform_blob(&[d.t, d.n, 2, 2], -1.0, 1.0, 99);
    forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
    let (second, _, _) = lstm(dims, &p, bottoms[0].data(), &ones, None, &h_t, &c_t);
    assert_close(
        tops[0].data(),
        &second,
        1e-5,
        1e-6,
        "second batch from the first's end",
    );
}

#[test]
fn lstm_unit_is_one_cell_step() {
    let (n, h) = (3, 2);
    let spec = "name: \"u\" type: \"LSTMUnit\" bottom: \"c\" bottom: \"a\" bottom: \"k\" top: \"c1\" top: \"h1\"";
    let mut l = layer(spec);
    let mut bottoms = vec![
        uniform_blob(&[1, n, h], -1.0, 1.0, 31),
        uniform_blob(&[1, n, 4 * h], -2.0, 2.0, 32),
        Blob::from_data(&[1, n], vec![1.0, 0.0, 1.0]),
    ];
    let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 0);
    forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
    let sig = |v: f32| 1.0 / (1.0 + (-(v as f64)).exp());
    let (mut want_c, mut want_h) = (vec![], vec![]);
    for s in 0..n {
        let a = &bottoms[1].data()[s * 4 * h..(s + 1) * 4 * h];
        let k = bottoms[2].data()[s] as f64;
        for j in 0..h {
            let c = k * sig(a[h + j]) * bottoms[0].data()[s * h + j] as f64
                + sig(a[j]) * (a[3 * h + j] as f64).tanh();
            want_c.push(c);
            want_h.push(sig(a[2 * h + j]) * c.tanh());
        }
    }
    assert_close(tops[0].data(), &want_c, 1e-5, 1e-6, "c_t");
    assert_close(tops[1].data(), &want_h, 1e-5, 1e-6, "h_t");
    GradientChecker::default()
        .check(
            l.as_mut(),
            &mut bottoms,
            &mut tops,
            &mut params,
            &[true, true, false],
        )
        .unwrap();
    // A stream that starts afresh passes no gradient to its previous cell.
    tops[0].diff_mut().fill(1.0);
    tops[1].diff_mut().fill(1.0);
    backward(
        l.as_mut(),
        &mut bottoms,
        &mut tops,
        &mut params,
        &[true, true, false],
    );
    assert!(bottoms[0].diff()[h..2 * h].iter().all(|&v| v == 0.0));
    assert!(bottoms[0].diff()[..h].iter().all(|&v| v != 0.0));
}

/// x (5 steps × 2 streams × 3) → LSTM (H = 4) → InnerProduct over axis 2 → EuclideanLoss.
const SEQ_NET: &str = "layer { name: \"in\" type: \"Input\" top: \"x\" top: \"cont\" top: \"target\"\n\
      input_param { shape { dim: 5 dim: 2 dim: 3 } shape { dim: 5 dim: 2 } shape { dim: 5 dim: 2 dim: 2 } } }\n\
    layer { name: \"lstm\" type: \"LSTM\" bottom: \"x\" bottom: \"cont\" top: \"h\"\n\
      recurrent_param { num_output: 4 weight_filler { type: \"uniform\" min: -0.5 max: 0.5 }\n\
      bias_filler { type: \"uniform\" min: -0.5 max: 0.5 } } }\n\
    layer { name: \"ip\" type: \"InnerProduct\" bottom: \"h\" top: \"y\"\n\
      inner_product_param { num_output: 2 axis: 2 weight_filler { type: \"gaussian\" std: 0.3 } } }\n\
    layer { name: \"loss\" type: \"EuclideanLoss\" bottom: \"y\" bottom: \"target\" top: \"loss\" }\n";

fn seq_net(seed: u64) -> netrun::net::Net {
    let graph = super::common::build(SEQ_NET, netrun::netdef::Phase::Train).unwrap();
    let mut net = netrun::net::Net::new(graph, seed).unwrap();
    let x = uniform_blob(&[5, 2, 3], -1.0, 1.0, 41);
    net.blob_mut("x")
        .unwrap()
        .data_mut()
        .copy_from_slice(x.data());
    net
}

#[test]
fn lstm_in_a_net_carries_state_across_forwards_and_its_weights_round_trip_a_caffemodel() {
    let d = Dims {
        t: 5,
        n: 2,
        i: 3,
        s: 0,
        h: 4,
    };
    let mut net = seq_net(3);
    let names: Vec<&str> = net.learnables.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["lstm.0", "lstm.1", "lstm.2", "ip.0", "ip.1"]);
    // Stream 0 starts at step 0, stream 1 continues from the (zero) carried state.
    let cont = [0.0, 1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0];
    net.blob_mut("cont")
        .unwrap()
        .data_mut()
        .copy_from_slice(&cont);
    net.forward_backward().unwrap();
    let p: Vec<Vec<f32>> = net.params[..3].iter().map(|b| b.data().to_vec()).collect();
    let x = net.blob("x").unwrap().data().to_vec();
    let zeros = vec![0.0; d.n * d.h];
    let (want, h_t, c_t) = lstm(d, &p, &x, &cont, None, &zeros, &zeros);
    let first = net.blob("h").unwrap().data().to_vec();
    assert_close(&first, &want, 1e-5, 1e-6, "first forward");
    assert!(
        net.params[0].diff().iter().any(|&v| v != 0.0),
        "W_xc has a gradient"
    );
    // The next forward continues both streams from the end of this one.
    net.blob_mut("cont").unwrap().data_mut().fill(1.0);
    net.forward().unwrap();
    let (want, _, _) = lstm(d, &p, &x, &[1.0; 10], None, &h_t, &c_t);
    assert_close(
        net.blob("h").unwrap().data(),
        &want,
        1e-5,
        1e-6,
        "second forward",
    );

    // Written as a .caffemodel and loaded into a net filled from another seed.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seq.caffemodel");
    netrun::caffe::write::write(&net, &path).unwrap();
    let mut other = seq_net(99);
    assert_ne!(other.params[0].data(), net.params[0].data());
    let tensors = netrun::weights::load(&path).unwrap();
    let options = netrun::weights::ApplyOptions { require_all: true };
    netrun::weights::apply(&mut other, &tensors, options).unwrap();
    other
        .blob_mut("cont")
        .unwrap()
        .data_mut()
        .copy_from_slice(&cont);
    other.forward().unwrap();
    assert_eq!(other.blob("h").unwrap().data(), &first[..]);
}
