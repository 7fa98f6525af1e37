//! LabelSpecificRescale (NormFace) and AdaCosAddmScale (AdaCos) kernels against
//! their layers' CPU paths.

use crate::harness::{assert_near, Dev, Module};
use crate::losses::device_sum;
use crate::{cpu_pass, each_order};
use netrun::blob::Blob;
use netrun::testing::{layer, uniform_blob};

const M: usize = 5;
const C: usize = 7;
const LABELS: [f32; M] = [3.0, 0.0, 6.0, 3.0, 2.7];

fn labels_blob() -> Blob {
    Blob::from_data(&[M], LABELS.to_vec())
}

#[test]
fn label_specific_rescale_kernels_match_the_layer_for_each_option() {
    #[rustfmt::skip]
    type Fwd = unsafe extern "C" fn(*const f32, *mut f32, *mut f64, f32, f32, i32, i32, i32, i64, i64, *mut i32);
    type Bwd = unsafe extern "C" fn(*const f32, *const f64, *mut f32, f32, i64, i64);
    each_order(|order| {
        let m = Module::get("src/layers/label_specific_rescale.cu");
        let (fwd, bwd): (Fwd, Bwd) = (
            m.kernel("label_specific_rescale_forward"),
            m.kernel("label_specific_rescale_backward"),
        );
        // Scores of both signs: for_ip leaves the negative targets alone.
        let x = uniform_blob(&[M, C], -0.8, 0.9, 180);
        // (options, w, v, for_ip, power_on_positive, bias_fix)
        let cases = [
            ("positive_weight: 0.5", 0.5, 1.0, 0, 0, 0),
            (
                "positive_weight: 0.5 negative_weight: 1.5 bias_fix: true",
                0.5,
                1.5,
                0,
                0,
                1,
            ),
            (
                "positive_weight: 2 for_ip: true power_on_positive: true",
                2.0,
                1.0,
                1,
                1,
                0,
            ),
            (
                "positive_weight: 0.7 power_on_positive: true negative_weight: 0.9",
                0.7,
                0.9,
                0,
                1,
                0,
            ),
        ];
        for (opts, w, v, for_ip, power, bias_fix) in cases {
            let mut l = layer(&format!(
                "name: \"r\" type: \"LabelSpecificRescale\" bottom: \"x\" bottom: \"y\" \
                 label_specific_rescale_param {{ {opts} }}"
            ));
            let (tops, bottoms, _) =
                cpu_pass(l.as_mut(), vec![x.clone(), labels_blob()], None, 181);
            // The host copies x to the output and dy to dx.
            let lab = Dev::new(&LABELS);
            let mut out = Dev::new(x.data());
            let mut slope = Dev::filled(M, 0.0f64);
            let mut bad = Dev::filled(1, 0i32);
            let mut dx = Dev::new(tops[0].diff());
            let (lp, op, sp, bp, dxp) = (lab.c(), out.p(), slope.p(), bad.p(), dx.p());
            let (c, count) = (C as i64, (M * C) as i64);
            m.launch(3, 4, 0, order, || unsafe {
                fwd(lp, op, sp, w, v, for_ip, power, bias_fix, c, count, bp)
            });
            m.launch(3, 4, 0, order, || unsafe { bwd(lp, sp, dxp, v, c, count) });
            assert_eq!(bad.get(), [0]);
            assert_near(
                &out.get(),
                tops[0].data(),
                1e-6,
                &format!("{opts}: forward"),
            );
            assert_near(
                &dx.get(),
                bottoms[0].diff(),
                1e-6,
                &format!("{opts}: backward"),
            );
        }
    });
}

#[test]
fn adacos_kernels_match_the_layer_and_its_new_scale() {
    #[rustfmt::skip]
    type Stats = unsafe extern "C" fn(*const f32, *const f32, *mut f64, *mut f64, f64, i64, i64, *mut i32);
    #[rustfmt::skip]
    type Fwd = unsafe extern "C" fn(*const f32, *const f32, *mut f32, *mut f64, f64, f64, i64, i64);
    #[rustfmt::skip]
    type Bwd = unsafe extern "C" fn(*const f32, *const f32, *const f64, *mut f32, f64, i64, i64);
    each_order(|order| {
        let m = Module::get("src/layers/cosin_add_m.cu");
        let (stats, fwd, bwd): (Stats, Fwd, Bwd) = (
            m.kernel("adacos_statistics"),
            m.kernel("adacos_forward"),
            m.kernel("adacos_backward"),
        );
        let mut l = layer(
            "name: \"a\" type: \"AdaCosAddmScale\" bottom: \"c\" bottom: \"y\" \
             adacos_add_m_scale_param { m: 0.5 num_classes: 7 }",
        );
        let s0 = l.state()[0].1;
        // Cosines, one below cos(π − m) and one past 1 (clamped).
        let mut x = uniform_blob(&[M, C], -1.0, 1.0, 185);
        x.data_mut()[3] = -0.95;
        x.data_mut()[C] = 1.02;
        let (tops, bottoms, _) = cpu_pass(l.as_mut(), vec![x.clone(), labels_blob()], None, 186);
        let (xd, lab) = (Dev::new(x.data()), Dev::new(&LABELS));
        let (mut b, mut theta) = (Dev::filled(2, 0.0f64), Dev::filled(2, 0.0f64));
        let mut bad = Dev::filled(1, 0i32);
        let (xp, lp, bpart, tpart, badp) = (xd.c(), lab.c(), b.p(), theta.p(), bad.p());
        let (c, count) = (C as i64, (M * C) as i64);
        m.launch(2, 8, 8 * 8, order, || unsafe {
            stats(xp, lp, bpart, tpart, s0, c, count, badp)
        });
        assert_eq!(bad.get(), [0]);
        let b_mean = device_sum(order, &b, 2) / M as f64;
        let theta_med =
            (device_sum(order, &theta, 2) / (M * C) as f64).min(std::f64::consts::FRAC_PI_4);
        let s = b_mean.ln() / theta_med.cos();
        let s_cpu = l.state()[0].1;
        assert!(
            (s - s_cpu).abs() <= 1e-12 * s_cpu.abs(),
            "scale {s} vs the layer's {s_cpu}"
        );
        let mut out = Dev::filled(M * C, 0.0f32);
        let mut slope = Dev::filled(M, 0.0f64);
        let dy = Dev::new(tops[0].diff());
        let mut dx = Dev::filled(M * C, 0.0f32);
        let (op, sp, dyp, dxp) = (out.p(), slope.p(), dy.c(), dx.p());
        m.launch(3, 4, 0, order, || unsafe {
            fwd(xp, lp, op, sp, s, 0.5f32 as f64, c, count)
        });
        m.launch(3, 4, 0, order, || unsafe {
            bwd(dyp, lp, sp, dxp, s, c, count)
        });
        assert_near(&out.get(), tops[0].data(), 1e-6, "AdaCosAddmScale forward");
        assert_near(
            &dx.get(),
            bottoms[0].diff(),
            1e-6,
            "AdaCosAddmScale backward",
        );
    });
}
