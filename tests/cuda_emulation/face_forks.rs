//! The face forks' other kernels (LabelSpecificRescale, AdaCosAddmScale,
//! InnerDistance, SoftTruncation, GeneralTripletLoss) against their layers' CPU paths.

use crate::harness::{assert_near, Dev, Module};
use crate::losses::device_sum;
use crate::{cpu_pass, each_order};
use netrun::backend::gemm;
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

/// One InnerDistance pass on the "device" (kernels + CPU gemm for cuBLAS):
/// (normalised W, d, dx, dW) from x, the stored W and the top diff g.
fn inner_distance_device(
    order: crate::harness::Order,
    (x, w0, g): (&[f32], &[f32], &[f32]),
    (k, n): (usize, usize),
    (l1, normalize, labels): (bool, bool, Option<&[f32]>),
) -> [Vec<f32>; 4] {
    type Rows = unsafe extern "C" fn(*mut f32, *mut f64, i64);
    type Dots = unsafe extern "C" fn(*const f32, *const f32, *mut f64, i64);
    type Finish = unsafe extern "C" fn(*mut f32, *const f64, *const f64, i64, i64);
    type L1 = unsafe extern "C" fn(*const f32, *const f32, *mut f32, i64, i64, i64);
    type Mask = unsafe extern "C" fn(*const f32, *const f32, *mut f32, i64, i64, *mut i32);
    type Sums = unsafe extern "C" fn(*const f32, *mut f64, f64, i64);
    type Cols = unsafe extern "C" fn(*const f32, *mut f64, f64, i64, i64);
    type OnX = unsafe extern "C" fn(*const f32, *const f64, *mut f32, i64, i64);
    type L1Back = unsafe extern "C" fn(*const f32, *const f32, *const f32, *mut f32, i64, i64, i64);
    let id = Module::get("src/layers/inner_distance.cu");
    let ip = Module::get("src/layers/inner_product.cu");
    let mp = Module::get("src/layers/margin_inner_product/margin_inner_product.cu");
    let rows_k: Rows = ip.kernel("inner_product_normalize_rows");
    let (dots, on_x): (Dots, OnX) = (mp.kernel("row_dots"), mp.kernel("margin_add_on_x"));
    let m = x.len() / k;
    let (ki, ni, mn) = (k as i64, n as i64, (m * n) as i64);
    let xd = Dev::new(x);
    let mut w = Dev::new(w0);
    let mut norms = Dev::filled(n, 0.0f64);
    let (xp, wp, np) = (xd.c(), w.p(), norms.p());
    if normalize {
        ip.launch(n as u32, 8, 64, order, || unsafe { rows_k(wp, np, ki) });
    }
    let wv = w.get();
    let mut d = Dev::filled(m * n, 0.0f32);
    let dp = d.p();
    if l1 {
        let f: L1 = id.kernel("inner_distance_l1_forward");
        id.launch(2, 4, 0, order, || unsafe { f(xp, wp, dp, ki, ni, mn) });
    } else {
        let mut prod = vec![0.0f32; m * n];
        gemm(false, true, m, n, k, -2.0, x, &wv, 0.0, &mut prod);
        d = Dev::new(&prod);
        let dp = d.p();
        let (mut xs, mut ws) = (Dev::filled(m, 0.0f64), Dev::filled(n, 0.0f64));
        let (xsp, wsp) = (xs.p(), ws.p());
        mp.launch(m as u32, 8, 64, order, || unsafe { dots(xp, xp, xsp, ki) });
        mp.launch(n as u32, 8, 64, order, || unsafe { dots(wp, wp, wsp, ki) });
        let f: Finish = id.kernel("inner_distance_l2_finish");
        id.launch(2, 4, 0, order, || unsafe { f(dp, xsp, wsp, ni, mn) });
    }
    // Backward.
    let gd = Dev::new(g);
    let mut gm = Dev::new(g);
    let mut bad = Dev::filled(1, 0i32);
    let (gp, gmp, bp) = (gd.c(), gm.p(), bad.p());
    let lab = labels.map(Dev::new);
    if let Some(lab) = &lab {
        let mask: Mask = id.kernel("inner_distance_mask");
        let lp = lab.c();
        id.launch(2, 4, 0, order, || unsafe { mask(gp, lp, gmp, ni, mn, bp) });
    }
    assert_eq!(bad.get(), [0]);
    let (mut dx, mut dw) = (Dev::filled(m * k, 0.0f32), Dev::filled(n * k, 0.0f32));
    let (dxp, dwp) = (dx.p(), dw.p());
    if l1 {
        let data: L1Back = id.kernel("inner_distance_l1_backward_data");
        let weights: L1Back = id.kernel("inner_distance_l1_backward_weights");
        id.launch(2, 8, 0, order, || unsafe {
            data(xp, wp, gp, dxp, ki, ni, (m * k) as i64)
        });
        id.launch(2, 8, 0, order, || unsafe {
            weights(xp, wp, gmp, dwp, ki, ni, m as i64)
        });
    } else {
        let (rs, cs): (Sums, Cols) = (
            id.kernel("inner_distance_row_sums"),
            id.kernel("inner_distance_column_sums"),
        );
        let gmv = gm.get();
        let (mut pdx, mut pdw) = (vec![0.0f32; m * k], vec![0.0f32; n * k]);
        gemm(false, false, m, k, n, -2.0, g, &wv, 0.0, &mut pdx);
        gemm(true, false, n, k, m, -2.0, &gmv, x, 0.0, &mut pdw);
        (dx, dw) = (Dev::new(&pdx), Dev::new(&pdw));
        let (dxp, dwp) = (dx.p(), dw.p());
        let (mut row, mut col) = (Dev::filled(m, 0.0f64), Dev::filled(n, 0.0f64));
        let (rp, cp) = (row.p(), col.p());
        id.launch(m as u32, 8, 64, order, || unsafe { rs(gp, rp, 2.0, ni) });
        id.launch(2, 4, 0, order, || unsafe { cs(gmp, cp, 2.0, m as i64, ni) });
        mp.launch(2, 8, 0, order, || unsafe {
            on_x(xp, rp, dxp, ki, (m * k) as i64)
        });
        mp.launch(2, 8, 0, order, || unsafe {
            on_x(wp, cp, dwp, ki, (n * k) as i64)
        });
    }
    [wv, d.get(), dx.get(), dw.get()]
}

#[test]
fn inner_distance_kernels_match_the_layer_in_l2_and_l1() {
    each_order(|order| {
        let (k, n) = (11usize, C);
        // (options, L1, normalize, labels)
        let cases = [
            ("", false, false, false),
            (
                "normalize: true update_center_only: true",
                false,
                true,
                true,
            ),
            ("distance_type: \"L1\"", true, false, false),
            (
                "distance_type: \"L1\" update_center_only: true",
                true,
                false,
                true,
            ),
        ];
        for (opts, l1, normalize, with_labels) in cases {
            let bottom = if with_labels {
                "bottom: \"x\" bottom: \"y\""
            } else {
                "bottom: \"x\""
            };
            let mut l = layer(&format!(
                "name: \"d\" type: \"InnerDistance\" {bottom} inner_distance_param {{ num_output: {n} \
                 {opts} weight_filler {{ type: \"gaussian\" std: 0.5 }} }}"
            ));
            let x = uniform_blob(&[M, k], -1.0, 1.0, 190);
            let mut bottoms = vec![x.clone()];
            if with_labels {
                bottoms.push(labels_blob());
            }
            let (_, params) = netrun::testing::setup(l.as_mut(), &bottoms, 191);
            let w0 = params[0].data().to_vec();
            let (tops, bottoms, params) = cpu_pass(l.as_mut(), bottoms, Some(params), 192);
            let labels = with_labels.then_some(&LABELS[..]);
            let [wn, d, dx, dw] = inner_distance_device(
                order,
                (x.data(), &w0, tops[0].diff()),
                (k, n),
                (l1, normalize, labels),
            );
            let what = format!("InnerDistance {{ {opts} }}");
            assert_near(&wn, params[0].data(), 1e-6, &format!("{what}: W"));
            assert_near(&d, tops[0].data(), 1e-5, &format!("{what}: distances"));
            assert_near(&dx, bottoms[0].diff(), 1e-5, &format!("{what}: dx"));
            assert_near(&dw, params[0].diff(), 1e-5, &format!("{what}: dW"));
        }
    });
}

#[test]
fn soft_truncation_kernels_match_the_layer() {
    type Fwd = unsafe extern "C" fn(*const f32, *mut f32, f32, i64);
    type Bwd = unsafe extern "C" fn(*const f32, *const f32, *mut f32, f32, i64);
    each_order(|order| {
        let m = Module::get("src/layers/soft_truncation.cu");
        let (fwd, bwd): (Fwd, Bwd) = (
            m.kernel("soft_truncation_forward"),
            m.kernel("soft_truncation_backward"),
        );
        let mut l = layer("name: \"t\" type: \"SoftTruncation\" soft_truncation_param { c: 1.5 }");
        let x = uniform_blob(&[M, C], 0.0, 6.0, 195);
        let (tops, bottoms, _) = cpu_pass(l.as_mut(), vec![x.clone()], None, 196);
        let (xd, dy) = (Dev::new(x.data()), Dev::new(tops[0].diff()));
        let (mut y, mut dx) = (Dev::filled(M * C, 0.0f32), Dev::filled(M * C, 0.0f32));
        let (xp, dyp, yp, dxp, n) = (xd.c(), dy.c(), y.p(), dx.p(), (M * C) as i64);
        m.launch(3, 4, 0, order, || unsafe { fwd(xp, yp, 1.5, n) });
        m.launch(3, 4, 0, order, || unsafe { bwd(xp, dyp, dxp, 1.5, n) });
        assert_near(&y.get(), tops[0].data(), 0.0, "SoftTruncation forward");
        assert_near(&dx.get(), bottoms[0].diff(), 0.0, "SoftTruncation backward");
    });
}

#[test]
fn general_triplet_loss_kernels_match_the_layer_in_each_mode() {
    #[rustfmt::skip]
    type Fwd = unsafe extern "C" fn(*const f32, *const f32, *mut f64, *mut f64, *mut f64, *mut i32, f32, f32, i32, i64, i64, *mut i32);
    #[rustfmt::skip]
    type Bwd = unsafe extern "C" fn(*const f32, *const f32, *const f32, *const i32, *mut f32, f64, f32, f32, f32, i32, i32, i64, i64);
    each_order(|order| {
        let m = Module::get("src/layers/general_triplet_loss.cu");
        let (fwd, bwd): (Fwd, Bwd) = (
            m.kernel("general_triplet_loss_forward"),
            m.kernel("general_triplet_loss_backward"),
        );
        let (rows, c) = (6usize, 5usize);
        let d = uniform_blob(&[rows, c], 0.0, 1.5, 200);
        // Class 0 targets (the hardest-only start candidate) and a fractional label.
        let labels = [0.0f32, 3.0, 4.0, 0.0, 1.5, 2.0];
        let weights = uniform_blob(&[rows], 0.5, 2.0, 201);
        // (options, margin, pw, nw, hardest_only, add_center_loss, weights bottom)
        let cases = [
            (
                "margin: 0.4 positive_weight: 0.5 negative_weight: 2",
                0.4,
                0.5,
                2.0,
                0,
                1,
                false,
            ),
            (
                "margin: 0.3 add_center_loss: false",
                0.3,
                1.0,
                1.0,
                0,
                0,
                true,
            ),
            (
                "margin: 0.5 hardest_only: true negative_weight: 1.5",
                0.5,
                1.0,
                1.5,
                1,
                1,
                false,
            ),
            (
                "margin: 0.05 hardest_only: true add_center_loss: false",
                0.05,
                1.0,
                1.0,
                1,
                0,
                true,
            ),
        ];
        for (opts, margin, pw, nw, hardest_only, center, weighted) in cases {
            let extra = if weighted { "bottom: \"v\"" } else { "" };
            let mut l = layer(&format!(
                "name: \"t\" type: \"GeneralTripletLoss\" bottom: \"d\" bottom: \"l\" {extra} \
                 top: \"loss\" top: \"dist\" general_triplet_loss_param {{ {opts} }}"
            ));
            let mut bottoms = vec![d.clone(), Blob::from_data(&[rows], labels.to_vec())];
            if weighted {
                bottoms.push(weights.clone());
            }
            let (tops, bottoms, _) = cpu_pass(l.as_mut(), bottoms, None, 202);
            let (dd, lab, wd) = (
                Dev::new(d.data()),
                Dev::new(&labels),
                Dev::new(weights.data()),
            );
            let (mut term, mut pos, mut neg) = (
                Dev::filled(rows, 0.0f64),
                Dev::filled(rows, 0.0f64),
                Dev::filled(rows, 0.0f64),
            );
            let mut hardest = Dev::filled(rows, 0i32);
            let mut bad = Dev::filled(1, 0i32);
            let (dp, lp, tp, pp, np, hp, bp) = (
                dd.c(),
                lab.c(),
                term.p(),
                pos.p(),
                neg.p(),
                hardest.p(),
                bad.p(),
            );
            let (ci, ri) = (c as i64, rows as i64);
            m.launch(2, 2, 0, order, || unsafe {
                fwd(dp, lp, tp, pp, np, hp, margin, nw, hardest_only, ci, ri, bp)
            });
            assert_eq!(bad.get(), [0]);
            let what = format!("GeneralTripletLoss {{ {opts} }}");
            let mf = rows as f64;
            let loss = device_sum(order, &term, rows) / mf;
            let stats = [
                (device_sum(order, &pos, rows) / mf) as f32,
                (device_sum(order, &neg, rows) / mf / (c - 1) as f64) as f32,
            ];
            assert_near(
                &[loss as f32],
                tops[0].data(),
                1e-6,
                &format!("{what}: loss"),
            );
            assert_near(&stats, tops[1].data(), 1e-6, &format!("{what}: distances"));
            let scale = tops[0].diff()[0] as f64 / mf;
            let mut grad = Dev::filled(rows * c, 0.0f32);
            let gp = grad.p();
            let wp = if weighted { wd.c() } else { std::ptr::null() };
            m.launch(2, 2, 0, order, || unsafe {
                bwd(
                    dp,
                    lp,
                    wp,
                    hp,
                    gp,
                    scale,
                    margin,
                    pw,
                    nw,
                    hardest_only,
                    center,
                    ci,
                    ri,
                )
            });
            assert_near(
                &grad.get(),
                bottoms[0].diff(),
                1e-6,
                &format!("{what}: update"),
            );
        }
    });
}
