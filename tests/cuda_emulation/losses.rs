//! The loss kernels (CenterLoss, EuclideanLoss, ContrastiveLoss, with loss.cu's
//! final sum) against their layers' CPU paths.

use crate::existing::device_softmax;
use crate::harness::{assert_near, Dev, Module, Order};
use crate::{cpu_pass, each_order};
use netrun::blob::Blob;
use netrun::testing::{layer, uniform_blob};

type Sum = unsafe extern "C" fn(*const f64, i64, *mut f64);

/// loss.cu's one-block sum of `v` (with a block smaller than `v`, so threads loop).
pub fn device_sum(order: Order, v: &Dev<f64>, n: usize) -> f64 {
    let m = Module::get("src/layers/loss.cu");
    let sum: Sum = m.kernel("loss_sum");
    let mut out = Dev::filled(1, 0.0f64);
    let (vp, op) = (v.c(), out.p());
    m.launch(1, 4, 4 * 8, order, || unsafe { sum(vp, n as i64, op) });
    out.get()[0]
}

#[test]
fn center_loss_kernels_match_the_layer_with_repeated_classes() {
    type Fwd =
        unsafe extern "C" fn(*const f32, *const f32, *const f32, *mut f64, i64, i64, *mut i32);
    type Data =
        unsafe extern "C" fn(*const f32, *const f32, *const f32, *mut f32, f64, i64, i64, i64);
    type Update = unsafe extern "C" fn(*const f32, *const f32, *const f32, *mut f32, i64, i64, i64);
    each_order(|order| {
        let m = Module::get("src/layers/center_loss.cu");
        let (fwd, data, update): (Fwd, Data, Update) = (
            m.kernel("center_loss_forward"),
            m.kernel("center_loss_backward_data"),
            m.kernel("center_loss_update_centres"),
        );
        let (rows, k, n) = (7usize, 21usize, 5usize);
        let mut l = layer(&format!(
            "name: \"c\" type: \"CenterLoss\" bottom: \"x\" bottom: \"y\" center_loss_param \
             {{ num_output: {n} center_filler {{ type: \"uniform\" min: -1 max: 1 }} }}"
        ));
        // Class 1 three times, 4 twice, 0 and 2 once, 3 absent.
        let labels = [1.0f32, 4.0, 1.0, 0.0, 4.0, 2.0, 1.9];
        let x = uniform_blob(&[rows, k], -1.0, 1.0, 110);
        let y = Blob::from_data(&[rows], labels.to_vec());
        let (tops, bottoms, params) = cpu_pass(l.as_mut(), vec![x.clone(), y], None, 111);
        let (xd, lab, cd) = (
            Dev::new(x.data()),
            Dev::new(&labels),
            Dev::new(params[0].data()),
        );
        let mut sq = Dev::filled(rows, 0.0f64);
        let mut bad = Dev::filled(1, 0i32);
        let (xp, lp, cp, sp, bp) = (xd.c(), lab.c(), cd.c(), sq.p(), bad.p());
        m.launch(rows as u32, 8, 8 * 8, order, || unsafe {
            fwd(xp, lp, cp, sp, k as i64, n as i64, bp)
        });
        assert_eq!(bad.get(), [0]);
        let loss = device_sum(order, &sq, rows) / (2.0 * rows as f64);
        assert_near(&[loss as f32], tops[0].data(), 1e-6, "CenterLoss loss");
        let scale = tops[0].diff()[0] as f64 / rows as f64;
        let mut dx = Dev::filled(rows * k, 0.0f32);
        let mut dc = Dev::filled(n * k, 0.0f32);
        let (dxp, dcp) = (dx.p(), dc.p());
        m.launch(3, 16, 0, order, || unsafe {
            data(
                xp,
                lp,
                cp,
                dxp,
                scale,
                k as i64,
                n as i64,
                (rows * k) as i64,
            )
        });
        m.launch(3, 16, 0, order, || unsafe {
            update(xp, lp, cp, dcp, k as i64, n as i64, rows as i64)
        });
        assert_near(&dx.get(), bottoms[0].diff(), 1e-6, "CenterLoss dx");
        assert_near(
            &dc.get(),
            params[0].diff(),
            1e-6,
            "CenterLoss centre update",
        );
    });
}

#[test]
fn euclidean_loss_kernels_match_the_layer() {
    type Fwd = unsafe extern "C" fn(*const f32, *const f32, *mut f32, *mut f64, i64);
    type Bwd = unsafe extern "C" fn(*const f32, *mut f32, f32, i64);
    each_order(|order| {
        let m = Module::get("src/layers/euclidean_loss.cu");
        let (fwd, bwd): (Fwd, Bwd) = (
            m.kernel("euclidean_loss_forward"),
            m.kernel("euclidean_loss_backward"),
        );
        let mut l = layer("name: \"e\" type: \"EuclideanLoss\" bottom: \"a\" bottom: \"b\"");
        let (a, b) = (
            uniform_blob(&[6, 5, 7], -1.0, 1.0, 120),
            uniform_blob(&[6, 5, 7], -1.0, 1.0, 121),
        );
        let (tops, bottoms, _) = cpu_pass(l.as_mut(), vec![a.clone(), b.clone()], None, 122);
        let count = a.count();
        let (ad, bd) = (Dev::new(a.data()), Dev::new(b.data()));
        let mut diff = Dev::filled(count, 0.0f32);
        let mut partial = Dev::filled(3, 0.0f64);
        let (ap, bp, dp, pp) = (ad.c(), bd.c(), diff.p(), partial.p());
        m.launch(3, 16, 16 * 8, order, || unsafe {
            fwd(ap, bp, dp, pp, count as i64)
        });
        let loss = device_sum(order, &partial, 3) / (2.0 * 6.0);
        assert_near(&[loss as f32], tops[0].data(), 1e-6, "EuclideanLoss loss");
        let g = tops[0].diff()[0] as f64;
        for (i, alpha) in [(0, g / 6.0), (1, -g / 6.0)] {
            let mut dx = Dev::filled(count, 0.0f32);
            let dxp = dx.p();
            m.launch(3, 16, 0, order, || unsafe {
                bwd(dp, dxp, alpha as f32, count as i64)
            });
            assert_near(
                &dx.get(),
                bottoms[i].diff(),
                0.0,
                &format!("EuclideanLoss d{i}"),
            );
        }
    });
}

#[test]
fn contrastive_loss_kernels_match_the_layer_in_both_versions() {
    #[rustfmt::skip]
    type Fwd = unsafe extern "C" fn(*const f32, *const f32, *const f32, *mut f32, *mut f64, *mut f64, f64, i32, i64, *mut i32);
    type Bwd =
        unsafe extern "C" fn(*const f32, *const f32, *const f64, *mut f32, f64, f64, i32, i64, i64);
    each_order(|order| {
        let m = Module::get("src/layers/contrastive_loss.cu");
        let (fwd, bwd): (Fwd, Bwd) = (
            m.kernel("contrastive_loss_forward"),
            m.kernel("contrastive_loss_backward"),
        );
        let (pairs, c) = (6usize, 19usize);
        // Similar, dissimilar (0.5 reads as 0), and distances on both sides of the margin.
        let sim = [1.0f32, 0.0, 0.5, 0.0, 2.0, 0.0];
        // b = a + f_n·noise: distances from about 0.1 to 3, both sides of margin 1.5
        // (and of d² = 1.5 for the legacy form) for the dissimilar pairs.
        let a = uniform_blob(&[pairs, c], -0.4, 0.4, 130);
        let noise = uniform_blob(&[pairs, c], -0.4, 0.4, 131);
        let f = [0.2f32, 0.3, 1.0, 0.6, 0.5, 2.0];
        let bv: Vec<f32> = (0..pairs * c)
            .map(|e| a.data()[e] + f[e / c] * noise.data()[e])
            .collect();
        let b = Blob::from_data(&[pairs, c], bv);
        for legacy in [false, true] {
            let mut l = layer(&format!(
                "name: \"c\" type: \"ContrastiveLoss\" bottom: \"a\" bottom: \"b\" bottom: \"s\" \
                 contrastive_loss_param {{ margin: 1.5 legacy_version: {legacy} }}"
            ));
            let s = Blob::from_data(&[pairs], sim.to_vec());
            let (tops, bottoms, _) = cpu_pass(l.as_mut(), vec![a.clone(), b.clone(), s], None, 132);
            let (ad, bd, sd) = (Dev::new(a.data()), Dev::new(b.data()), Dev::new(&sim));
            let mut diff = Dev::filled(pairs * c, 0.0f32);
            let (mut d2, mut term) = (Dev::filled(pairs, 0.0f64), Dev::filled(pairs, 0.0f64));
            let mut bad = Dev::filled(1, 0i32);
            let (ap, bp, sp, dp, d2p, tp, badp) =
                (ad.c(), bd.c(), sd.c(), diff.p(), d2.p(), term.p(), bad.p());
            m.launch(pairs as u32, 8, 8 * 8, order, || unsafe {
                fwd(ap, bp, sp, dp, d2p, tp, 1.5, legacy as i32, c as i64, badp)
            });
            assert_eq!(bad.get(), [0]);
            let what = format!("ContrastiveLoss legacy_version {legacy}");
            let loss = device_sum(order, &term, pairs) / (2.0 * pairs as f64);
            assert_near(
                &[loss as f32],
                tops[0].data(),
                1e-6,
                &format!("{what}: loss"),
            );
            let g = tops[0].diff()[0] as f64;
            for (i, alpha) in [(0, g / pairs as f64), (1, -g / pairs as f64)] {
                let mut dx = Dev::filled(pairs * c, 0.0f32);
                let dxp = dx.p();
                m.launch(3, 16, 0, order, || unsafe {
                    bwd(
                        dp,
                        sp,
                        d2p,
                        dxp,
                        alpha,
                        1.5,
                        legacy as i32,
                        c as i64,
                        (pairs * c) as i64,
                    )
                });
                assert_near(&dx.get(), bottoms[i].diff(), 1e-6, &format!("{what}: d{i}"));
            }
        }
    });
}

#[test]
fn sigmoid_cross_entropy_kernels_match_the_layer_with_ignored_targets() {
    type Fwd = unsafe extern "C" fn(*const f32, *const f32, *mut f64, *mut f64, i32, i32, i64);
    type Bwd = unsafe extern "C" fn(*const f32, *const f32, *mut f32, f32, i32, i32, i64);
    each_order(|order| {
        let m = Module::get("src/layers/sigmoid_cross_entropy_loss.cu");
        let (fwd, bwd): (Fwd, Bwd) = (
            m.kernel("sigmoid_cross_entropy_forward"),
            m.kernel("sigmoid_cross_entropy_backward"),
        );
        let x = uniform_blob(&[4, 3, 5], -6.0, 6.0, 140);
        let mut t = uniform_blob(&[4, 3, 5], 0.0, 1.0, 141);
        // ignore_label 1: 1.0 and 1.7 are ignored (truncated), 0.999 is not.
        t.data_mut()[..3].copy_from_slice(&[1.0, 1.7, 0.999]);
        for (norm, ignore) in [("VALID", true), ("BATCH_SIZE", false), ("FULL", true)] {
            let extra = if ignore { "ignore_label: 1" } else { "" };
            let mut l = layer(&format!(
                "name: \"s\" type: \"SigmoidCrossEntropyLoss\" bottom: \"x\" bottom: \"t\" \
                 loss_param {{ normalization: {norm} {extra} }}"
            ));
            let (tops, bottoms, _) = cpu_pass(l.as_mut(), vec![x.clone(), t.clone()], None, 142);
            let count = x.count();
            let (xd, td) = (Dev::new(x.data()), Dev::new(t.data()));
            let (mut partial, mut counted) = (Dev::filled(3, 0.0f64), Dev::filled(3, 0.0f64));
            let (xp, tp, pp, cp) = (xd.c(), td.c(), partial.p(), counted.p());
            m.launch(3, 8, 8 * 8, order, || unsafe {
                fwd(xp, tp, pp, cp, ignore as i32, 1, count as i64)
            });
            let (sum, valid) = (
                device_sum(order, &partial, 3),
                device_sum(order, &counted, 3),
            );
            let d = match norm {
                "VALID" => valid,
                "FULL" => count as f64,
                _ => 4.0,
            };
            let what = format!("SigmoidCrossEntropyLoss {norm} ignore {ignore}");
            assert_eq!(
                valid,
                if ignore {
                    count as f64 - 2.0
                } else {
                    count as f64
                },
                "{what}"
            );
            assert_near(
                &[(sum / d) as f32],
                tops[0].data(),
                1e-6,
                &format!("{what}: loss"),
            );
            let scale = (tops[0].diff()[0] as f64 / d) as f32;
            let mut dx = Dev::filled(count, 0.0f32);
            let dxp = dx.p();
            m.launch(3, 8, 0, order, || unsafe {
                bwd(xp, tp, dxp, scale, ignore as i32, 1, count as i64)
            });
            assert_near(&dx.get(), bottoms[0].diff(), 1e-6, &format!("{what}: dx"));
        }
    });
}

#[test]
fn focal_loss_kernels_match_the_layer_for_both_types() {
    #[rustfmt::skip]
    type Fwd = unsafe extern "C" fn(*const f32, *const f32, *mut f64, *mut f64, f64, f64, i32, i64, i64, i32, i32, i64, *mut i32);
    #[rustfmt::skip]
    type Bwd = unsafe extern "C" fn(*const f32, *const f32, *mut f32, f64, f64, f64, i32, i64, i64, i32, i32, i64);
    each_order(|order| {
        let m = Module::get("src/layers/focal_loss.cu");
        let (fwd, bwd): (Fwd, Bwd) = (
            m.kernel("focal_loss_forward"),
            m.kernel("focal_loss_backward"),
        );
        let (outer, c, inner) = (3usize, 6usize, 2usize);
        let x = uniform_blob(&[outer, c, inner], -3.0, 3.0, 150);
        let labels = [0.0f32, 5.0, 4.0, 3.9, 2.0, 1.0];
        for (ty, gamma, alpha) in [
            ("ORIGIN", 2.0f32, 0.25f32),
            ("ONEADDP", 1.5, 0.5),
            ("ORIGIN", 0.0, 1.0),
        ] {
            let mut l = layer(&format!(
                "name: \"f\" type: \"FocalLoss\" bottom: \"x\" bottom: \"y\" loss_param {{ ignore_label: 4 }} \
                 focal_loss_param {{ type: {ty} gamma: {gamma} alpha: {alpha} }}"
            ));
            let y = Blob::from_data(&[outer, inner], labels.to_vec());
            let (tops, bottoms, _) = cpu_pass(l.as_mut(), vec![x.clone(), y], None, 151);
            let lab = Dev::new(&labels);
            let mut prob = device_softmax(order, &x, c, inner);
            let positions = outer * inner;
            let (mut term, mut counted) = (
                Dev::filled(positions, 0.0f64),
                Dev::filled(positions, 0.0f64),
            );
            let mut bad = Dev::filled(1, 0i32);
            let (pp, lp, tp, cp, bp) = (prob.p(), lab.c(), term.p(), counted.p(), bad.p());
            let one = (ty == "ONEADDP") as i32;
            let (a, g) = (alpha as f64, gamma as f64);
            m.launch(2, 2, 0, order, || unsafe {
                fwd(
                    pp,
                    lp,
                    tp,
                    cp,
                    a,
                    g,
                    one,
                    c as i64,
                    inner as i64,
                    1,
                    4,
                    positions as i64,
                    bp,
                )
            });
            assert_eq!(bad.get(), [0]);
            let (sum, valid) = (
                device_sum(order, &term, positions),
                device_sum(order, &counted, positions),
            );
            let what = format!("FocalLoss {ty} gamma {gamma} alpha {alpha}");
            // Only 4.0 is ignored: 3.9 truncates to class 3.
            assert_eq!(valid, 5.0, "{what}: counted positions");
            assert_near(
                &[(sum / valid) as f32],
                tops[0].data(),
                1e-6,
                &format!("{what}: loss"),
            );
            let scale = tops[0].diff()[0] as f64 / valid;
            let mut dx = Dev::filled(x.count(), 0.0f32);
            let dxp = dx.p();
            m.launch(3, 4, 0, order, || unsafe {
                bwd(
                    pp,
                    lp,
                    dxp,
                    scale,
                    a,
                    g,
                    one,
                    c as i64,
                    inner as i64,
                    1,
                    4,
                    x.count() as i64,
                )
            });
            assert_near(&dx.get(), bottoms[0].diff(), 1e-6, &format!("{what}: dx"));
        }
    });
}
