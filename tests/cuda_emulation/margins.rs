//! The margin kernels (MarginInnerProduct, CombinedMarginInnerProduct, CosinAddm,
//! LabelSpecificAdd) against their layers' CPU paths. The GEMMs that cuBLAS does
//! on the device are the library's CPU `gemm` here, fed with the kernels' outputs.

use crate::harness::{assert_near, Dev, Module, Order};
use crate::{cpu_pass, each_order};
use netrun::backend::gemm;
use netrun::blob::Blob;
use netrun::layers::margin_inner_product::lambda_at;
use netrun::testing::{layer, setup, uniform_blob};

type NormalizeRows = unsafe extern "C" fn(*mut f32, *mut f64, i64);
type RowDots = unsafe extern "C" fn(*const f32, *const f32, *mut f64, i64);
type Project =
    unsafe extern "C" fn(*mut f32, *const f32, *const f32, *const f64, *const f64, i64, i32, i64);
type TargetFwd = unsafe extern "C" fn(
    *const f32,
    *const f32,
    *const f32,
    *mut f32,
    f64,
    i32,
    i32,
    i64,
    i64,
    *mut i32,
);
type OnX = unsafe extern "C" fn(*const f32, *const f64, *mut f32, i64, i64);

/// M samples of K features, N classes: K > the 16-thread blocks used, so the
/// per-row loops take more than one turn.
const M: usize = 5;
const K: usize = 37;
const N: usize = 7;
const BLOCK: u32 = 16;
const SHARED: usize = 16 * 8;
/// Class labels, every class boundary case aside: one repeated, one fractional.
const LABELS: [f32; M] = [3.0, 0.0, 6.0, 3.0, 2.7];

fn labels_blob() -> Blob {
    Blob::from_data(&[M], LABELS.to_vec())
}

/// One MarginInnerProduct pass on the "device" (kernels + CPU gemm for cuBLAS),
/// returning (normalised W, f, dx, dW).
fn margin_device(
    order: Order,
    (x, w0, g): (&[f32], &[f32], &[f32]),
    lambda: f64,
    m: i32,
    exact: bool,
) -> [Vec<f32>; 4] {
    let (ip, mp) = (
        Module::get("src/layers/inner_product.cu"),
        Module::get("src/layers/margin_inner_product/margin_inner_product.cu"),
    );
    let normalize: NormalizeRows = ip.kernel("inner_product_normalize_rows");
    type Bwd = unsafe extern "C" fn(
        *const f32,
        *const f32,
        *const f32,
        *const f32,
        *mut f32,
        *mut f64,
        f64,
        i32,
        i32,
        i64,
        i64,
    );
    let fwd: TargetFwd = mp.kernel("margin_target_forward");
    let bwd: Bwd = mp.kernel("margin_target_backward");
    let on_x_k: OnX = mp.kernel("margin_add_on_x");
    let (dots, project): (RowDots, Project) = (mp.kernel("row_dots"), mp.kernel("project_rows"));
    let (k, n) = (K as i64, N as i64);
    let (xd, lab) = (Dev::new(x), Dev::new(&LABELS));
    let mut w = Dev::new(w0);
    let mut raw_norms = Dev::filled(N, 0.0f64);
    let (wp, rp, xp, lp) = (w.p(), raw_norms.p(), xd.c(), lab.c());
    ip.launch(N as u32, BLOCK, SHARED, order, || unsafe {
        normalize(wp, rp, k)
    });
    let wn = w.get();
    let mut f = vec![0.0f32; M * N];
    gemm(false, true, M, N, K, 1.0, x, &wn, 0.0, &mut f);
    let mut fd = Dev::new(&f);
    let mut bad = Dev::filled(1, 0i32);
    let (fp, bp) = (fd.p(), bad.p());
    if m > 1 {
        mp.launch(M as u32, BLOCK, SHARED, order, || unsafe {
            fwd(xp, wp, lp, fp, lambda, m, 0, k, n, bp)
        });
    }
    assert_eq!(bad.get(), [0], "bad labels");
    // Backward: G' and the x coefficients, then dx = G'·Ŵ + on_x·x.
    let gd = Dev::new(g);
    let mut gm = Dev::new(g);
    let mut on_x = Dev::filled(M, 0.0f64);
    let (gp, gmp, op) = (gd.c(), gm.p(), on_x.p());
    if m > 1 {
        mp.launch(M as u32, BLOCK, SHARED, order, || unsafe {
            bwd(xp, wp, lp, gp, gmp, op, lambda, m, exact as i32, k, n)
        });
    }
    let gmv = gm.get();
    let mut dx = vec![0.0f32; M * K];
    gemm(false, false, M, K, N, 1.0, &gmv, &wn, 0.0, &mut dx);
    let mut dxd = Dev::new(&dx);
    let dxp = dxd.p();
    mp.launch(2, BLOCK, 0, order, || unsafe {
        on_x_k(xp, op, dxp, k, (M * K) as i64)
    });
    let mut dw = Dev::filled(N * K, 0.0f32);
    let dwp = dw.p();
    if exact {
        let mut unit = vec![0.0f32; N * K];
        gemm(true, false, N, K, M, 1.0, &gmv, x, 0.0, &mut unit);
        let ud = Dev::new(&unit);
        let mut along = Dev::filled(N, 0.0f64);
        let (up, ap) = (ud.c(), along.p());
        mp.launch(N as u32, BLOCK, SHARED, order, || unsafe {
            dots(wp, up, ap, k)
        });
        mp.launch(3, BLOCK, 0, order, || unsafe {
            project(dwp, up, wp, ap, rp, k, 1, (N * K) as i64)
        });
    } else {
        let mut plain = vec![0.0f32; N * K];
        gemm(true, false, N, K, M, 1.0, g, x, 0.0, &mut plain);
        dw = Dev::new(&plain);
    }
    [wn, fd.get(), dxd.get(), dw.get()]
}

#[test]
fn margin_inner_product_kernels_match_the_layer_for_every_m() {
    each_order(|order| {
        for (ty, m) in [
            ("SINGLE", 1),
            ("DOUBLE", 2),
            ("TRIPLE", 3),
            ("QUADRUPLE", 4),
        ] {
            for exact in [false, true] {
                let mut l = layer(&format!(
                    "name: \"fc6\" type: \"MarginInnerProduct\" bottom: \"x\" bottom: \"y\" \
                     margin_inner_product_param {{ num_output: {N} type: {ty} base: 10 gamma: 0.5 \
                     power: 1 lambda_min: 2 exact_gradient: {exact} \
                     weight_filler {{ type: \"gaussian\" std: 0.5 }} }}"
                ));
                let x = uniform_blob(&[M, K], -1.0, 1.0, 70);
                let (_, params) = setup(l.as_mut(), &[x.clone(), labels_blob()], 71);
                let w0 = params[0].data().to_vec();
                let (tops, bottoms, params) =
                    cpu_pass(l.as_mut(), vec![x.clone(), labels_blob()], Some(params), 72);
                // One TRAIN forward from iteration 0: t = 1.
                let lambda = lambda_at(10.0, 0.5, 1.0, 2.0, 1);
                let [wn, f, dx, dw] =
                    margin_device(order, (x.data(), &w0, tops[0].diff()), lambda, m, exact);
                let what = format!("MarginInnerProduct {ty} exact_gradient {exact}");
                assert_near(
                    &wn,
                    params[0].data(),
                    1e-6,
                    &format!("{what}: normalised W"),
                );
                assert_near(&f, tops[0].data(), 1e-5, &format!("{what}: logits"));
                assert_near(&dx, bottoms[0].diff(), 1e-5, &format!("{what}: dx"));
                assert_near(&dw, params[0].diff(), 1e-5, &format!("{what}: dW"));
            }
        }
    });
}

#[test]
fn large_margin_inner_product_kernels_match_the_layer_for_every_m() {
    type Bwd = unsafe extern "C" fn(
        *const f32,
        *const f32,
        *const f32,
        *const f32,
        *mut f32,
        *mut f64,
        *mut f64,
        f64,
        i32,
        i64,
        i64,
    );
    type ClassSums = unsafe extern "C" fn(*const f32, *const f64, *mut f64, i64, i64);
    each_order(|order| {
        let mp = Module::get("src/layers/margin_inner_product/margin_inner_product.cu");
        let fwd: TargetFwd = mp.kernel("margin_target_forward");
        let (bwd, sums, on_x_k): (Bwd, ClassSums, OnX) = (
            mp.kernel("large_margin_target_backward"),
            mp.kernel("large_margin_class_sums"),
            mp.kernel("margin_add_on_x"),
        );
        for (ty, m) in [("DOUBLE", 2), ("TRIPLE", 3), ("QUADRUPLE", 4)] {
            let mut l = layer(&format!(
                "name: \"fc\" type: \"LargeMarginInnerProduct\" bottom: \"x\" bottom: \"y\" \
                 largemargin_inner_product_param {{ num_output: {N} type: {ty} base: 4 gamma: 1 power: 2 \
                 lambda_min: 0.5 weight_filler {{ type: \"gaussian\" std: 0.5 }} }}"
            ));
            let x = uniform_blob(&[M, K], -1.0, 1.0, 75);
            let (tops, bottoms, params) =
                cpu_pass(l.as_mut(), vec![x.clone(), labels_blob()], None, 76);
            let lambda = lambda_at(4.0, 1.0, 2.0, 0.5, 1);
            let (k, n) = (K as i64, N as i64);
            let w = params[0].data();
            let (xd, wd, lab) = (Dev::new(x.data()), Dev::new(w), Dev::new(&LABELS));
            let mut f = vec![0.0f32; M * N];
            gemm(false, true, M, N, K, 1.0, x.data(), w, 0.0, &mut f);
            let mut fd = Dev::new(&f);
            let mut bad = Dev::filled(1, 0i32);
            let (xp, wp, lp, fp, bp) = (xd.c(), wd.c(), lab.c(), fd.p(), bad.p());
            mp.launch(M as u32, BLOCK, SHARED, order, || unsafe {
                fwd(xp, wp, lp, fp, lambda, m, 1, k, n, bp)
            });
            let what = format!("LargeMarginInnerProduct {ty}");
            assert_eq!(bad.get(), [0]);
            assert_near(&fd.get(), tops[0].data(), 1e-5, &format!("{what}: logits"));
            let g = tops[0].diff();
            let gd = Dev::new(g);
            let mut gm = Dev::new(g);
            let (mut on_x, mut on_w_i, mut on_w) = (
                Dev::filled(M, 0.0f64),
                Dev::filled(M, 0.0f64),
                Dev::filled(N, 0.0f64),
            );
            let (gp, gmp, oxp, owip, owp) = (gd.c(), gm.p(), on_x.p(), on_w_i.p(), on_w.p());
            mp.launch(M as u32, BLOCK, SHARED, order, || unsafe {
                bwd(xp, wp, lp, gp, gmp, oxp, owip, lambda, m, k, n)
            });
            mp.launch(2, 4, 0, order, || unsafe {
                sums(lp, owip, owp, n, M as i64)
            });
            let gmv = gm.get();
            let (mut dx, mut dw) = (vec![0.0f32; M * K], vec![0.0f32; N * K]);
            gemm(false, false, M, K, N, 1.0, &gmv, w, 0.0, &mut dx);
            gemm(true, false, N, K, M, 1.0, &gmv, x.data(), 0.0, &mut dw);
            let (mut dxd, mut dwd) = (Dev::new(&dx), Dev::new(&dw));
            let (dxp, dwp) = (dxd.p(), dwd.p());
            mp.launch(2, BLOCK, 0, order, || unsafe {
                on_x_k(xp, oxp, dxp, k, (M * K) as i64)
            });
            mp.launch(2, BLOCK, 0, order, || unsafe {
                on_x_k(wp, owp, dwp, k, (N * K) as i64)
            });
            assert_near(&dxd.get(), bottoms[0].diff(), 1e-5, &format!("{what}: dx"));
            assert_near(&dwd.get(), params[0].diff(), 1e-5, &format!("{what}: dW"));
        }
    });
}

#[test]
fn combined_margin_kernels_match_the_layer() {
    type Unit = unsafe extern "C" fn(*const f32, *mut f32, *mut f64, i64);
    type Scale = unsafe extern "C" fn(*mut f32, *mut f32, f32, i64);
    type Target = unsafe extern "C" fn(
        *const f32,
        *const f32,
        *const f32,
        *const f64,
        *const f64,
        *mut f32,
        *mut f32,
        *mut f64,
        f32,
        f64,
        f64,
        f64,
        i64,
        i64,
        *mut i32,
    );
    type Dc = unsafe extern "C" fn(*const f32, *const f32, *const f64, *mut f32, f32, i64, i64);
    type Cols = unsafe extern "C" fn(*const f32, *const f32, *mut f64, i64, i64);
    each_order(|order| {
        let cm = Module::get("src/layers/combined_margin_inner_product.cu");
        let mp = Module::get("src/layers/margin_inner_product/margin_inner_product.cu");
        let (unit, scale, target): (Unit, Scale, Target) = (
            cm.kernel("combined_margin_unit_rows"),
            cm.kernel("combined_margin_scale"),
            cm.kernel("combined_margin_target_forward"),
        );
        let (dc_k, cols): (Dc, Cols) = (
            cm.kernel("combined_margin_dc"),
            cm.kernel("combined_margin_column_dots"),
        );
        let (dots, project): (RowDots, Project) =
            (mp.kernel("row_dots"), mp.kernel("project_rows"));
        // SphereFace-style m1 = 3 (targets past π/3 take the extension), with ArcFace's and CosFace's margins.
        for (m1, m2, m3, s) in [
            (3.0f32, 0.0f32, 0.0f32, 8.0f32),
            (1.0, 0.5, 0.0, 16.0),
            (1.5, 0.2, 0.35, 4.0),
        ] {
            let mut l = layer(&format!(
                "name: \"fc\" type: \"CombinedMarginInnerProduct\" bottom: \"x\" bottom: \"y\" \
                 combined_margin_inner_product_param {{ num_output: {N} m1: {m1} m2: {m2} m3: {m3} s: {s} \
                 weight_filler {{ type: \"gaussian\" std: 0.5 }} }}"
            ));
            let x = uniform_blob(&[M, K], -1.0, 1.0, 80);
            let (tops, bottoms, params) =
                cpu_pass(l.as_mut(), vec![x.clone(), labels_blob()], None, 81);
            let (k, n) = (K as i64, N as i64);
            let (xd, wd, lab) = (
                Dev::new(x.data()),
                Dev::new(params[0].data()),
                Dev::new(&LABELS),
            );
            let (mut xu, mut wu) = (Dev::filled(M * K, 0.0f32), Dev::filled(N * K, 0.0f32));
            let (mut xn, mut wn) = (Dev::filled(M, 0.0f64), Dev::filled(N, 0.0f64));
            let (xp, wp, lp, xup, wup, xnp, wnp) =
                (xd.c(), wd.c(), lab.c(), xu.p(), wu.p(), xn.p(), wn.p());
            cm.launch(M as u32, BLOCK, SHARED, order, || unsafe {
                unit(xp, xup, xnp, k)
            });
            cm.launch(N as u32, BLOCK, SHARED, order, || unsafe {
                unit(wp, wup, wnp, k)
            });
            let (xuv, wuv) = (xu.get(), wu.get());
            let mut cos = vec![0.0f32; M * N];
            gemm(false, true, M, N, K, 1.0, &xuv, &wuv, 0.0, &mut cos);
            let mut cosd = Dev::new(&cos);
            let mut f = Dev::filled(M * N, 0.0f32);
            let mut slope = Dev::filled(M, 0.0f64);
            let mut bad = Dev::filled(1, 0i32);
            let (cp, fp, sp, bp) = (cosd.p(), f.p(), slope.p(), bad.p());
            cm.launch(2, BLOCK, 0, order, || unsafe {
                scale(cp, fp, s, (M * N) as i64)
            });
            cm.launch(M as u32, BLOCK, SHARED, order, || unsafe {
                target(
                    xp, wp, lp, xnp, wnp, cp, fp, sp, s, m1 as f64, m2 as f64, m3 as f64, k, n, bp,
                )
            });
            let what = format!("CombinedMarginInnerProduct m1 {m1} m2 {m2} m3 {m3} s {s}");
            assert_eq!(bad.get(), [0], "{what}: bad labels");
            assert_near(&f.get(), tops[0].data(), 1e-5, &format!("{what}: logits"));
            // Backward.
            let gd = Dev::new(tops[0].diff());
            let mut dc = Dev::filled(M * N, 0.0f32);
            let (gp, dcp) = (gd.c(), dc.p());
            cm.launch(2, BLOCK, 0, order, || unsafe {
                dc_k(gp, lp, sp, dcp, s, n, (M * N) as i64)
            });
            let (mut along_x, mut along_w) = (Dev::filled(M, 0.0f64), Dev::filled(N, 0.0f64));
            let (axp, awp) = (along_x.p(), along_w.p());
            mp.launch(M as u32, BLOCK, SHARED, order, || unsafe {
                dots(dcp, cp, axp, n)
            });
            cm.launch(1, 4, 0, order, || unsafe {
                cols(dcp, cp, awp, M as i64, n)
            });
            let dcv = dc.get();
            let mut dw_unit = vec![0.0f32; N * K];
            gemm(true, false, N, K, M, 1.0, &dcv, &xuv, 0.0, &mut dw_unit);
            let mut dx_unit = vec![0.0f32; M * K];
            gemm(false, false, M, K, N, 1.0, &dcv, &wuv, 0.0, &mut dx_unit);
            let dwu = Dev::new(&dw_unit);
            let mut dw = Dev::filled(N * K, 0.0f32);
            let mut dx = Dev::new(&dx_unit);
            let (dwup, dwp, dxp) = (dwu.c(), dw.p(), dx.p());
            mp.launch(3, BLOCK, 0, order, || unsafe {
                project(dwp, dwup, wup, awp, wnp, k, 1, (N * K) as i64)
            });
            mp.launch(3, BLOCK, 0, order, || unsafe {
                project(dxp, dxp, xup, axp, xnp, k, 0, (M * K) as i64)
            });
            assert_near(&dw.get(), params[0].diff(), 1e-5, &format!("{what}: dW"));
            assert_near(&dx.get(), bottoms[0].diff(), 1e-5, &format!("{what}: dx"));
        }
    });
}

#[test]
fn cosin_add_m_kernels_match_the_layer_on_both_sides_of_the_threshold() {
    type Fwd =
        unsafe extern "C" fn(*const f32, *const f32, *mut f32, *mut f64, f64, i64, i64, *mut i32);
    type Bwd = unsafe extern "C" fn(*const f32, *const f64, *mut f32, i64, i64);
    each_order(|order| {
        let m = Module::get("src/layers/cosin_add_m.cu");
        let (fwd, bwd): (Fwd, Bwd) = (
            m.kernel("cosin_add_m_forward"),
            m.kernel("cosin_add_m_backward"),
        );
        let mut l = layer("name: \"a\" type: \"CosinAddm\" bottom: \"c\" bottom: \"y\" cosin_add_m_param { m: 0.5 }");
        // Cosines over [−1, 1] (targets below cos(π − m) ≈ −0.878 take the linear branch), one exactly 1.
        let mut c = uniform_blob(&[M, N], -1.0, 1.0, 90);
        c.data_mut()[0] = -0.95;
        c.data_mut()[N] = 1.0;
        let (tops, bottoms, _) = cpu_pass(l.as_mut(), vec![c.clone(), labels_blob()], None, 91);
        // The host copies c to the output and dy to dx first.
        let (cd, lab) = (Dev::new(c.data()), Dev::new(&LABELS));
        let mut out = Dev::new(c.data());
        let mut slope = Dev::filled(M, 0.0f64);
        let mut bad = Dev::filled(1, 0i32);
        let mut dx = Dev::new(tops[0].diff());
        let (cp, lp, op, sp, bp, dxp) = (cd.c(), lab.c(), out.p(), slope.p(), bad.p(), dx.p());
        m.launch(2, 2, 0, order, || unsafe {
            fwd(cp, lp, op, sp, 0.5f32 as f64, N as i64, M as i64, bp)
        });
        m.launch(2, 2, 0, order, || unsafe {
            bwd(lp, sp, dxp, N as i64, M as i64)
        });
        assert_eq!(bad.get(), [0], "bad labels");
        assert_near(&out.get(), tops[0].data(), 1e-6, "CosinAddm forward");
        assert_near(&dx.get(), bottoms[0].diff(), 1e-6, "CosinAddm backward");
    });
}

#[test]
fn label_specific_add_kernel_matches_the_layer_and_counts_bad_labels() {
    type Fwd = unsafe extern "C" fn(*const f32, *mut f32, f32, i64, i64, *mut i32);
    each_order(|order| {
        let m = Module::get("src/layers/label_specific_add.cu");
        let fwd: Fwd = m.kernel("label_specific_add_forward");
        let mut l = layer(
            "name: \"a\" type: \"LabelSpecificAdd\" bottom: \"c\" bottom: \"y\" label_specific_add_param { bias: -0.35 }",
        );
        // Targets on both sides of m = 0.35.
        let c = uniform_blob(&[M, N], -0.2, 0.9, 95);
        let (tops, _, _) = cpu_pass(l.as_mut(), vec![c.clone(), labels_blob()], None, 96);
        let lab = Dev::new(&LABELS);
        let mut out = Dev::new(c.data());
        let mut bad = Dev::filled(1, 0i32);
        let (lp, op, bp) = (lab.c(), out.p(), bad.p());
        m.launch(2, 2, 0, order, || unsafe {
            fwd(lp, op, -0.35, N as i64, M as i64, bp)
        });
        assert_eq!(bad.get(), [0]);
        assert_near(&out.get(), tops[0].data(), 0.0, "LabelSpecificAdd forward");
        // Labels the CPU path refuses are counted, and their rows left alone.
        let wrong = Dev::new(&[7.0f32, -1.0, f32::NAN, 1.0, 6.99]);
        let mut out = Dev::new(c.data());
        let (wp, op) = (wrong.c(), out.p());
        m.launch(1, 4, 0, order, || unsafe {
            fwd(wp, op, -0.35, N as i64, M as i64, bp)
        });
        assert_eq!(bad.get(), [3], "labels 7, −1 and NaN of 7 classes");
    });
}
