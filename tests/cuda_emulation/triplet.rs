//! TripletLoss kernels (the three-bottom form against the layer's CPU path, the
//! mining form's distance matrix against a float64 loop written here) and
//! GlobalLSEMargin's against its layer.

use crate::harness::{assert_near, Dev, Module};
use crate::losses::device_sum;
use crate::{cpu_pass, each_order};
use netrun::testing::{layer, uniform_blob};

#[test]
fn triplet_loss_three_bottom_kernels_match_the_layer() {
    #[rustfmt::skip]
    type Fwd = unsafe extern "C" fn(*const f32, *const f32, *const f32, *mut f32, *mut f32, *mut f64, *mut f64, *mut i32, f64, i64);
    #[rustfmt::skip]
    type Bwd = unsafe extern "C" fn(*const f32, *const f32, *const f64, *mut f32, f64, i32, i64, i64);
    each_order(|order| {
        let m = Module::get("src/layers/triplet_loss/triplet_loss.cu");
        let (fwd, bwd): (Fwd, Bwd) = (
            m.kernel("triplet_loss_forward"),
            m.kernel("triplet_loss_backward"),
        );
        let (rows, k) = (8usize, 13usize);
        // Positives nearer than negatives by various amounts: hard, semi-hard and easy rows.
        let a = uniform_blob(&[rows, k], -0.5, 0.5, 210);
        let p = uniform_blob(&[rows, k], -0.5, 0.5, 211);
        let n = uniform_blob(&[rows, k], -0.5, 0.5, 212);
        let mut l = layer(
            "name: \"t\" type: \"TripletLoss\" bottom: \"a\" bottom: \"p\" bottom: \"n\" \
             top: \"loss\" top: \"kinds\" triplet_loss_param { margin: 0.5 }",
        );
        let (tops, bottoms, _) =
            cpu_pass(l.as_mut(), vec![a.clone(), p.clone(), n.clone()], None, 213);
        let (ad, pd, nd) = (Dev::new(a.data()), Dev::new(p.data()), Dev::new(n.data()));
        let (mut dap, mut dan) = (Dev::filled(rows * k, 0.0f32), Dev::filled(rows * k, 0.0f32));
        let (mut hinge, mut term) = (Dev::filled(rows, 0.0f64), Dev::filled(rows, 0.0f64));
        let mut counts = Dev::filled(3, 0i32);
        let (ap, pp, np, dapp, danp, hp, tp, cp) = (
            ad.c(),
            pd.c(),
            nd.c(),
            dap.p(),
            dan.p(),
            hinge.p(),
            term.p(),
            counts.p(),
        );
        let ki = k as i64;
        m.launch(rows as u32, 8, 64, order, || unsafe {
            fwd(ap, pp, np, dapp, danp, hp, tp, cp, 0.5f32 as f64, ki)
        });
        let loss = device_sum(order, &term, rows) / (2.0 * rows as f64);
        assert_near(&[loss as f32], tops[0].data(), 1e-6, "TripletLoss loss");
        let kinds: Vec<f32> = counts.get().iter().map(|&c| c as f32).collect();
        assert_near(
            &kinds,
            tops[1].data(),
            0.0,
            "TripletLoss hard / semi-hard / easy",
        );
        assert!(
            kinds[0] > 0.0 && kinds[2] > 0.0,
            "rows of every kind: {kinds:?}"
        );
        let scale = tops[0].diff()[0] as f64 / rows as f64;
        for (which, b) in bottoms.iter().enumerate() {
            let mut dx = Dev::filled(rows * k, 0.0f32);
            let dxp = dx.p();
            m.launch(3, 8, 0, order, || unsafe {
                bwd(
                    dapp,
                    danp,
                    hp,
                    dxp,
                    scale,
                    which as i32,
                    ki,
                    (rows * k) as i64,
                )
            });
            assert_near(&dx.get(), b.diff(), 1e-6, &format!("TripletLoss d{which}"));
        }
    });
}

#[test]
fn triplet_loss_mining_distances_match_float64() {
    type Dist = unsafe extern "C" fn(*const f32, *mut f64, i64, i64);
    each_order(|order| {
        let m = Module::get("src/layers/triplet_loss/triplet_loss.cu");
        let dist: Dist = m.kernel("triplet_loss_distances");
        let (rows, k) = (6usize, 9usize);
        let x = uniform_blob(&[rows, k], -1.0, 1.0, 215);
        let xd = Dev::new(x.data());
        let mut d = Dev::filled(rows * rows, 0.0f64);
        let (xp, dp) = (xd.c(), d.p());
        m.launch(2, 8, 0, order, || unsafe {
            dist(xp, dp, k as i64, rows as i64)
        });
        let v = x.data();
        for (e, got) in d.get().into_iter().enumerate() {
            let (i, j) = (e / rows, e % rows);
            let want: f64 = (0..k)
                .map(|t| (v[i * k + t] as f64 - v[j * k + t] as f64).powi(2))
                .sum();
            assert_eq!(got, want, "D[{i}, {j}]");
        }
    });
}

#[test]
fn global_lse_margin_kernels_match_the_layer_with_and_without_norms() {
    #[rustfmt::skip]
    type Rows = unsafe extern "C" fn(*const f32, *const f32, *const f32, f64, *mut f64, *mut f64, *mut f64, *mut f64, i64, i64, *mut i32);
    #[rustfmt::skip]
    type Fwd = unsafe extern "C" fn(*const f32, *const f32, *const f32, *mut f32, f64, f64, i64, i64);
    type Bwd = unsafe extern "C" fn(*const f32, *const f32, *mut f32, f64, i64, i64);
    type Dots = unsafe extern "C" fn(*const f32, *const f32, *mut f64, i64);
    type NormGrad = unsafe extern "C" fn(*const f64, *const f32, *mut f32, i64);
    each_order(|order| {
        let m = Module::get("src/layers/global_lse_margin.cu");
        let mp = Module::get("src/layers/margin_inner_product/margin_inner_product.cu");
        let (rows_k, fwd, bwd, ngrad): (Rows, Fwd, Bwd, NormGrad) = (
            m.kernel("global_lse_margin_rows"),
            m.kernel("global_lse_margin_forward"),
            m.kernel("global_lse_margin_backward"),
            m.kernel("global_lse_margin_norm_grad"),
        );
        let dots: Dots = mp.kernel("row_dots");
        let (rows, c) = (6usize, 5usize);
        let x = uniform_blob(&[rows, c], -0.6, 0.9, 220);
        let labels = [0.0f32, 3.0, 4.0, 1.0, 1.5, 2.0];
        let norms = uniform_blob(&[rows], 5.0, 15.0, 221);
        for with_norms in [false, true] {
            let extra = if with_norms { "bottom: \"n\"" } else { "" };
            let mut l = layer(&format!(
                "name: \"g\" type: \"GlobalLSEMargin\" bottom: \"c\" bottom: \"y\" {extra} \
                 top: \"out\" top: \"stats\" scale_param {{ filler {{ type: \"constant\" value: 25 }} \
                 max_value: 12 }}"
            ));
            let mut bottoms = vec![
                x.clone(),
                netrun::blob::Blob::from_data(&[rows], labels.to_vec()),
            ];
            if with_norms {
                bottoms.push(norms.clone());
            }
            let (tops, bottoms, params) = cpu_pass(l.as_mut(), bottoms, None, 222);
            // s clamped to max_value; the margin starts at 0 (the 20-round shift).
            let s = 12.0f64;
            assert_eq!(params[0].data()[0] as f64, s);
            let (xd, lab, nd) = (
                Dev::new(x.data()),
                Dev::new(&labels),
                Dev::new(norms.data()),
            );
            let np = if with_norms { nd.c() } else { std::ptr::null() };
            let z = || Dev::filled(rows, 0.0f64);
            let (mut delta, mut target, mut lse, mut amax) = (z(), z(), z(), z());
            let mut bad = Dev::filled(1, 0i32);
            let (xp, lp, dp, tp, sp, ap, bp) = (
                xd.c(),
                lab.c(),
                delta.p(),
                target.p(),
                lse.p(),
                amax.p(),
                bad.p(),
            );
            let (ci, ri, count) = (c as i64, rows as i64, (rows * c) as i64);
            m.launch(2, 2, 0, order, || unsafe {
                rows_k(xp, lp, np, s, dp, tp, sp, ap, ci, ri, bp)
            });
            assert_eq!(bad.get(), [0]);
            let deltas = delta.get();
            let mean = deltas.iter().sum::<f64>() / rows as f64;
            let margin = netrun::layers::global_lse_margin::mean_shift(&deltas, mean, 20) as f32;
            let what = format!("GlobalLSEMargin with norms {with_norms}");
            assert_near(
                &[margin],
                &params[1].data()[..1],
                1e-6,
                &format!("{what}: margin"),
            );
            let mf = rows as f64;
            let first = if with_norms {
                norms.data().iter().map(|&v| v as f64).sum::<f64>() / mf
            } else {
                s
            };
            let stats = [
                first,
                device_sum(order, &target, rows) / mf,
                device_sum(order, &lse, rows) / mf,
                device_sum(order, &amax, rows) / mf,
                margin as f64,
            ]
            .map(|v| v as f32);
            assert_near(&stats, tops[1].data(), 1e-6, &format!("{what}: statistics"));
            let mut out = Dev::filled(rows * c, 0.0f32);
            let op = out.p();
            m.launch(3, 4, 0, order, || unsafe {
                fwd(xp, lp, np, op, s, margin as f64, ci, count)
            });
            assert_near(
                &out.get(),
                tops[0].data(),
                1e-6,
                &format!("{what}: forward"),
            );
            let dy = Dev::new(tops[0].diff());
            let mut dx = Dev::filled(rows * c, 0.0f32);
            let mut row_dot = z();
            let (dyp, dxp, rp) = (dy.c(), dx.p(), row_dot.p());
            m.launch(3, 4, 0, order, || unsafe {
                bwd(dyp, np, dxp, s, ci, count)
            });
            assert_near(&dx.get(), bottoms[0].diff(), 1e-6, &format!("{what}: dx"));
            mp.launch(rows as u32, 4, 32, order, || unsafe {
                dots(op, dyp, rp, ci)
            });
            if with_norms {
                let mut dn = Dev::filled(rows, 0.0f32);
                let dnp = dn.p();
                m.launch(2, 2, 0, order, || unsafe { ngrad(rp, np, dnp, ri) });
                assert_near(&dn.get(), bottoms[2].diff(), 1e-6, &format!("{what}: dn"));
            } else {
                let ds = device_sum(order, &row_dot, rows) / s;
                assert_near(
                    &[ds as f32],
                    &params[0].diff()[..1],
                    1e-6,
                    &format!("{what}: ds"),
                );
            }
        }
    });
}
