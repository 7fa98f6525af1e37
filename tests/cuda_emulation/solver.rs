//! The solver's update rules on the device (`src/solver/rules.cu`) against
//! `rules::steps` and the regularisation, scaling and step formulas.

use crate::each_order;
use crate::existing::{data, BLOCK, GRID};
use crate::harness::{assert_near, Dev, Module};
use netrun::solver::{rules, Coeffs, Hyper, Rule};
use netrun::testing::uniform_blob;

/// The device update rules are bit-identical to `rules::steps` (no contraction
/// on either side), and regularisation, scaling and the step follow their formulas.
#[test]
fn solver_kernels_match_the_cpu_rules_bit_for_bit() {
    type Steps =
        unsafe extern "C" fn(i32, *mut f32, *mut f32, *mut f32, f32, f32, f32, f32, f32, i64);
    type Reg = unsafe extern "C" fn(*const f32, *mut f32, f32, i32, i64);
    type Scale = unsafe extern "C" fn(*mut f32, f32, i64);
    type Apply = unsafe extern "C" fn(*mut f32, *const f32, i64);
    each_order(|order| {
        let m = Module::get("src/solver/rules.cu");
        let steps: Steps = m.kernel("solver_steps");
        let n = 150usize;
        let g0 = uniform_blob(&[n], -1.0, 1.0, 60);
        let h0 = uniform_blob(&[n], 0.0, 0.5, 61);
        let h1 = uniform_blob(&[n], 0.0, 0.5, 62);
        let hyper = Hyper {
            momentum: 0.9,
            momentum2: 0.999,
            rms_decay: 0.95,
            delta: 1e-6,
        };
        use Rule::*;
        for rule in [Sgd, Nesterov, AdaGrad, RmsProp, AdaDelta, Adam] {
            let c = Coeffs {
                rule,
                hyper,
                local_rate: 0.01,
                t: 3,
            };
            let (mut g, mut a, mut b) = (data(&g0), data(&h0), data(&h1));
            rules::steps(
                &c,
                &mut g,
                &mut [&mut a[..], &mut b[..]][..rule.histories()],
            );
            let rate = if rule == Adam { c.adam_rate() } else { 0.01 };
            let (mut dg, mut da, mut db) = (
                Dev::new(g0.data()),
                Dev::new(h0.data()),
                Dev::new(h1.data()),
            );
            let (gp, ap, bp) = (dg.p(), da.p(), db.p());
            m.launch(GRID, BLOCK, 0, order, || unsafe {
                steps(
                    rule as i32,
                    gp,
                    ap,
                    bp,
                    rate,
                    0.9,
                    0.999,
                    0.95,
                    1e-6,
                    n as i64,
                )
            });
            let what = rule.name();
            assert_near(&dg.get(), &g, 0.0, &format!("{what} step"));
            assert_near(&da.get(), &a, 0.0, &format!("{what} history 0"));
            if rule.histories() == 2 {
                assert_near(&db.get(), &b, 0.0, &format!("{what} history 1"));
            }
        }
        let (reg, scale, apply): (Reg, Scale, Apply) = (
            m.kernel("solver_regularize"),
            m.kernel("solver_scale"),
            m.kernel("solver_apply_step"),
        );
        let w = Dev::new(
            h0.data()
                .iter()
                .map(|v| v - 0.25)
                .collect::<Vec<_>>()
                .as_slice(),
        );
        for l1 in [0, 1] {
            let mut g = Dev::new(g0.data());
            let (wp, gp) = (w.c(), g.p());
            m.launch(GRID, BLOCK, 0, order, || unsafe {
                reg(wp, gp, 5e-4, l1, n as i64)
            });
            m.launch(GRID, BLOCK, 0, order, || unsafe {
                scale(gp, 0.5, n as i64)
            });
            let want: Vec<f32> = g0
                .data()
                .iter()
                .zip(w.get())
                .map(|(&g, w)| (g + 5e-4 * if l1 == 1 { w.signum() } else { w }) * 0.5)
                .collect();
            assert_near(
                &g.get(),
                &want,
                0.0,
                &format!("regularise (l1 {l1}) and scale"),
            );
        }
        let mut w2 = Dev::new(g0.data());
        let s = Dev::new(h0.data());
        let (wp, sp) = (w2.p(), s.c());
        m.launch(GRID, BLOCK, 0, order, || unsafe { apply(wp, sp, n as i64) });
        let want: Vec<f32> = g0
            .data()
            .iter()
            .zip(h0.data())
            .map(|(w, s)| w - s)
            .collect();
        assert_near(&w2.get(), &want, 0.0, "apply step");
    });
}
