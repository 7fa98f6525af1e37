//! Normalize (every option), NormL2 (Normalize L2 with eps 1e-7) and
//! InnerProduct's `normalize: true` row normalisation against their layers.

use crate::harness::{assert_near, Dev, Module};
use crate::{cpu_pass, each_order};
use netrun::testing::{layer, uniform_blob};

type Fwd = unsafe extern "C" fn(*const f32, *mut f32, *mut f64, *mut f32, i32, f64, i64);
type Bwd = unsafe extern "C" fn(*const f32, *mut f32, *const f64, *const f32, i32, i32, i64);

/// 4 samples of 3×13 values; blocks of 16 threads loop over each sample 3 times.
const SHAPE: [usize; 3] = [4, 3, 13];
const K: usize = 39;

#[test]
fn normalize_and_norm_l2_kernels_match_their_layers() {
    each_order(|order| {
        let m = Module::get("src/layers/normalize.cu");
        let (fwd, bwd): (Fwd, Bwd) = (
            m.kernel("normalize_forward"),
            m.kernel("normalize_backward"),
        );
        // (layer text, L1, eps, fix_gradient, norm top with bp_norm)
        let cases = [
            ("type: \"Normalize\"", false, 0.0, false, false),
            ("type: \"Normalize\" top: \"y\" top: \"s\" normalize_param { eps: 0.01 bp_norm: true }", false, 0.01, false, true),
            ("type: \"Normalize\" normalize_param { normalize_type: \"L1\" eps: 0.5 }", true, 0.5, false, false),
            ("type: \"Normalize\" top: \"y\" top: \"s\" normalize_param { normalize_type: \"L1\" fix_gradient: true bp_norm: true }", true, 0.0, true, true),
            ("type: \"Normalize\" normalize_param { fix_gradient: true }", false, 0.0, true, false),
            ("type: \"NormL2\"", false, 1e-7, false, false),
        ];
        for (text, l1, eps, fix, norm_top) in cases {
            let mut l = layer(&format!("name: \"n\" {text}"));
            let x = uniform_blob(&SHAPE, -1.0, 1.0, 100);
            let (tops, bottoms, _) = cpu_pass(l.as_mut(), vec![x.clone()], None, 101);
            let rows = SHAPE[0];
            let xd = Dev::new(x.data());
            let mut y = Dev::filled(x.count(), 0.0f32);
            let mut norms = Dev::filled(rows, 0.0f64);
            let mut s = Dev::filled(rows, 0.0f32);
            let (xp, yp, np) = (xd.c(), y.p(), norms.p());
            let sp = if norm_top {
                s.p()
            } else {
                std::ptr::null_mut()
            };
            // eps is an f32 field the CPU path widens.
            let e = eps as f32 as f64;
            m.launch(rows as u32, 16, 16 * 8, order, || unsafe {
                fwd(xp, yp, np, sp, l1 as i32, e, K as i64)
            });
            assert_near(&y.get(), tops[0].data(), 1e-6, &format!("{text}: forward"));
            if norm_top {
                assert_near(&s.get(), tops[1].data(), 1e-6, &format!("{text}: norm top"));
            }
            // In place: the diff holds dy on entry and dx on return.
            let mut d = Dev::new(tops[0].diff());
            let h = norm_top.then(|| Dev::new(tops[1].diff()));
            let hp = h.as_ref().map_or(std::ptr::null(), |h| h.c());
            let dp = d.p();
            m.launch(rows as u32, 16, 16 * 8, order, || unsafe {
                bwd(yp, dp, np, hp, l1 as i32, fix as i32, K as i64)
            });
            assert_near(
                &d.get(),
                bottoms[0].diff(),
                1e-6,
                &format!("{text}: backward"),
            );
        }
    });
}

#[test]
fn inner_product_normalize_kernel_matches_the_layer() {
    type Rows = unsafe extern "C" fn(*mut f32, *mut f64, i64);
    each_order(|order| {
        let m = Module::get("src/layers/inner_product.cu");
        let rows: Rows = m.kernel("inner_product_normalize_rows");
        let mut l = layer(
            "name: \"ip\" type: \"InnerProduct\" inner_product_param { num_output: 6 normalize: true \
             bias_term: false weight_filler { type: \"gaussian\" std: 0.3 } }",
        );
        let x = uniform_blob(&SHAPE, -1.0, 1.0, 102);
        let (_, params) = netrun::testing::setup(l.as_mut(), std::slice::from_ref(&x), 103);
        let raw = params[0].data().to_vec();
        let (tops, _, params) = cpu_pass(l.as_mut(), vec![x.clone()], Some(params), 104);
        let mut w = Dev::new(&raw);
        let mut norms = Dev::filled(6, 0.0f64);
        let (wp, np) = (w.p(), norms.p());
        m.launch(6, 16, 16 * 8, order, || unsafe { rows(wp, np, K as i64) });
        let wn = w.get();
        assert_near(&wn, params[0].data(), 1e-6, "normalised W");
        let expect: Vec<f64> = raw
            .chunks(K)
            .map(|r| r.iter().map(|&v| v as f64 * v as f64).sum::<f64>().sqrt())
            .collect();
        for (a, e) in norms.get().iter().zip(&expect) {
            assert!((a - e).abs() <= 1e-12 * e, "norm {a} vs {e}");
        }
        // The layer's output is x·Ŵᵀ with the rows the kernel wrote.
        let mut y = vec![0.0f32; 4 * 6];
        netrun::backend::gemm(false, true, 4, 6, K, 1.0, x.data(), &wn, 0.0, &mut y);
        assert_near(&y, tops[0].data(), 1e-6, "InnerProduct normalize: output");
    });
}
