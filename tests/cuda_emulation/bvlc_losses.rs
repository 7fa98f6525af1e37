//! BVLC Caffe's HingeLoss, MultinomialLogisticLoss and InfogainLoss kernels
//! against their layers' CPU paths.

use crate::existing::device_softmax;
use crate::harness::{assert_near, Dev, Module};
use crate::losses::device_sum;
use crate::{cpu_pass, each_order};
use netrun::blob::Blob;
use netrun::testing::{layer, uniform_blob};

/// N samples of D scores; labels with a fractional one (truncated, as Caffe).
const N: usize = 5;
const D: usize = 9;
const LABELS: [f32; N] = [0.0, 8.0, 3.5, 3.0, 6.0];

#[test]
fn hinge_loss_kernels_match_the_layer_in_l1_and_l2() {
    type Fwd = unsafe extern "C" fn(*const f32, *const f32, *mut f64, i32, i64, i64, *mut i32);
    type Bwd = unsafe extern "C" fn(*const f32, *const f32, *mut f32, f64, i32, i64, i64);
    each_order(|order| {
        let m = Module::get("src/layers/hinge_loss.cu");
        let (fwd, bwd): (Fwd, Bwd) = (
            m.kernel("hinge_loss_forward"),
            m.kernel("hinge_loss_backward"),
        );
        // Scores around ±1, so margins are active and inactive.
        let x = uniform_blob(&[N, D], -2.0, 2.0, 160);
        for (norm, l2) in [("L1", 0), ("L2", 1)] {
            let mut l = layer(&format!(
                "name: \"h\" type: \"HingeLoss\" bottom: \"x\" bottom: \"y\" hinge_loss_param {{ norm: {norm} }}"
            ));
            let y = Blob::from_data(&[N], LABELS.to_vec());
            let (tops, bottoms, _) = cpu_pass(l.as_mut(), vec![x.clone(), y], None, 161);
            let (xd, lab) = (Dev::new(x.data()), Dev::new(&LABELS));
            let mut partial = Dev::filled(3, 0.0f64);
            let mut bad = Dev::filled(1, 0i32);
            let (xp, lp, pp, bp, count) = (xd.c(), lab.c(), partial.p(), bad.p(), (N * D) as i64);
            m.launch(3, 8, 8 * 8, order, || unsafe {
                fwd(xp, lp, pp, l2, D as i64, count, bp)
            });
            assert_eq!(bad.get(), [0]);
            let loss = device_sum(order, &partial, 3) / N as f64;
            assert_near(
                &[loss as f32],
                tops[0].data(),
                1e-6,
                &format!("HingeLoss {norm}: loss"),
            );
            let g = tops[0].diff()[0] as f64 / N as f64;
            let mut dx = Dev::filled(N * D, 0.0f32);
            let dxp = dx.p();
            m.launch(3, 8, 0, order, || unsafe {
                bwd(xp, lp, dxp, g, l2, D as i64, count)
            });
            assert_near(
                &dx.get(),
                bottoms[0].diff(),
                1e-6,
                &format!("HingeLoss {norm}: dx"),
            );
        }
    });
}

#[test]
fn multinomial_logistic_loss_kernels_match_the_layer_with_a_zero_probability() {
    type Fwd = unsafe extern "C" fn(*const f32, *const f32, *mut f64, i64, i64, *mut i32);
    type Bwd = unsafe extern "C" fn(*const f32, *const f32, *mut f32, f64, i64, i64);
    each_order(|order| {
        let m = Module::get("src/layers/multinomial_logistic_loss.cu");
        let (fwd, bwd): (Fwd, Bwd) = (
            m.kernel("multinomial_logistic_loss_forward"),
            m.kernel("multinomial_logistic_loss_backward"),
        );
        let mut l =
            layer("name: \"m\" type: \"MultinomialLogisticLoss\" bottom: \"p\" bottom: \"y\"");
        let mut p = uniform_blob(&[N, D], 0.0, 0.3, 165);
        // Sample 1's true class has probability 0: the 1e-20 floor applies.
        p.data_mut()[D + 8] = 0.0;
        let y = Blob::from_data(&[N], LABELS.to_vec());
        let (tops, bottoms, _) = cpu_pass(l.as_mut(), vec![p.clone(), y], None, 166);
        let (pd, lab) = (Dev::new(p.data()), Dev::new(&LABELS));
        let mut term = Dev::filled(N, 0.0f64);
        let mut bad = Dev::filled(1, 0i32);
        let (pp, lp, tp, bp) = (pd.c(), lab.c(), term.p(), bad.p());
        m.launch(2, 2, 0, order, || unsafe {
            fwd(pp, lp, tp, D as i64, N as i64, bp)
        });
        assert_eq!(bad.get(), [0]);
        let loss = device_sum(order, &term, N) / N as f64;
        assert_near(
            &[loss as f32],
            tops[0].data(),
            1e-6,
            "MultinomialLogisticLoss loss",
        );
        let scale = -(tops[0].diff()[0] as f64) / N as f64;
        let mut dp = Dev::filled(N * D, 0.0f32);
        let dpp = dp.p();
        m.launch(3, 8, 0, order, || unsafe {
            bwd(pp, lp, dpp, scale, D as i64, (N * D) as i64)
        });
        assert_near(
            &dp.get(),
            bottoms[0].diff(),
            1e-6,
            "MultinomialLogisticLoss dp",
        );
    });
}

#[test]
fn infogain_loss_kernels_match_the_layer_with_h_from_a_bottom() {
    #[rustfmt::skip]
    type Fwd = unsafe extern "C" fn(*const f32, *const f32, *const f32, *mut f64, *mut f64, i64, i64, i32, i32, i64, *mut i32);
    #[rustfmt::skip]
    type Bwd = unsafe extern "C" fn(*const f32, *const f32, *const f32, *mut f32, f64, i64, i64, i32, i32, i64);
    each_order(|order| {
        let m = Module::get("src/layers/infogain_loss.cu");
        let (fwd, bwd): (Fwd, Bwd) = (
            m.kernel("infogain_loss_forward"),
            m.kernel("infogain_loss_backward"),
        );
        let (outer, c, inner) = (3usize, 4usize, 2usize);
        let x = uniform_blob(&[outer, c, inner], -2.0, 2.0, 170);
        let h = uniform_blob(&[c, c], 0.0, 1.0, 171);
        // ignore_label 1: 1.0 and 1.5 are ignored.
        let labels = [0.0f32, 1.0, 3.0, 2.9, 1.5, 2.0];
        let mut l = layer(
            "name: \"i\" type: \"InfogainLoss\" bottom: \"x\" bottom: \"y\" bottom: \"h\" \
             loss_param { ignore_label: 1 }",
        );
        let y = Blob::from_data(&[outer, 1, inner], labels.to_vec());
        let (tops, bottoms, _) = cpu_pass(l.as_mut(), vec![x.clone(), y, h.clone()], None, 172);
        let (lab, hd) = (Dev::new(&labels), Dev::new(h.data()));
        let mut prob = device_softmax(order, &x, c, inner);
        let positions = outer * inner;
        let (mut term, mut counted) = (
            Dev::filled(positions, 0.0f64),
            Dev::filled(positions, 0.0f64),
        );
        let mut bad = Dev::filled(1, 0i32);
        let (pp, lp, hp, tp, cp, bp) = (prob.p(), lab.c(), hd.c(), term.p(), counted.p(), bad.p());
        let (ci, ii) = (c as i64, inner as i64);
        m.launch(2, 2, 0, order, || unsafe {
            fwd(pp, lp, hp, tp, cp, ci, ii, 1, 1, positions as i64, bp)
        });
        assert_eq!(bad.get(), [0]);
        let (sum, valid) = (
            device_sum(order, &term, positions),
            device_sum(order, &counted, positions),
        );
        assert_eq!(valid, 4.0, "counted positions");
        assert_near(
            &[(sum / valid) as f32],
            tops[0].data(),
            1e-6,
            "InfogainLoss loss",
        );
        let scale = tops[0].diff()[0] as f64 / valid;
        let mut dx = Dev::filled(x.count(), 0.0f32);
        let dxp = dx.p();
        m.launch(3, 4, 0, order, || unsafe {
            bwd(pp, lp, hp, dxp, scale, ci, ii, 1, 1, x.count() as i64)
        });
        assert_near(&dx.get(), bottoms[0].diff(), 1e-6, "InfogainLoss dx");
    });
}
