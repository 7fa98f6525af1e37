//! TripletLoss kernels: the three-bottom form against the layer's CPU path, and
//! the mining form's distance matrix against a float64 loop written here.

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
