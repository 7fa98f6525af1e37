//! The first kernels (activations, Eltwise, Softmax, SoftmaxWithLoss, Pooling)
//! against their layers' CPU paths.

use crate::harness::{assert_near, Dev, Module, Order};
use crate::{cpu_pass, each_order};
use netrun::blob::Blob;
use netrun::testing::{layer, uniform_blob};

type Unary = unsafe extern "C" fn(*const f32, *mut f32, i64);
type UnaryBack = unsafe extern "C" fn(*const f32, *const f32, *mut f32, i64);
type Relu = unsafe extern "C" fn(*const f32, *mut f32, f32, i64);
type ReluBack = unsafe extern "C" fn(*const f32, *const f32, *mut f32, f32, i64);

/// Elementwise launches: 3 blocks of 32 threads, so the grid-stride loops of a
/// 2×3×5×7 blob (210 values) take several turns.
pub const GRID: u32 = 3;
pub const BLOCK: u32 = 32;

pub fn data(b: &Blob) -> Vec<f32> {
    b.data().to_vec()
}

/// p = softmax(x) over axis 1 of an outer × c × inner blob by softmax.cu's
/// kernel: the first step of every softmax loss on the device.
pub fn device_softmax(order: Order, x: &Blob, c: usize, inner: usize) -> Dev<f32> {
    type Fwd = unsafe extern "C" fn(*const f32, *mut f32, i64, i64);
    let sm = Module::get("src/layers/softmax.cu");
    let f: Fwd = sm.kernel("softmax_forward");
    let xd = Dev::new(x.data());
    let mut p = Dev::filled(x.count(), 0.0f32);
    let (xp, pp, rows) = (xd.c(), p.p(), (x.count() / c) as u32);
    sm.launch(rows, 8, 8 * 4, order, || unsafe {
        f(xp, pp, c as i64, inner as i64)
    });
    p
}

#[test]
fn relu_matches_the_layer() {
    each_order(|order| {
        let m = Module::get("src/layers/relu.cu");
        let (fwd, bwd): (Relu, ReluBack) = (m.kernel("relu_forward"), m.kernel("relu_backward"));
        let mut l = layer("name: \"r\" type: \"ReLU\" relu_param { negative_slope: 0.15 }");
        let x = uniform_blob(&[2, 3, 5, 7], -1.0, 1.0, 11);
        let (tops, bottoms, _) = cpu_pass(l.as_mut(), vec![x.clone()], None, 12);
        let n = x.count() as i64;
        let (dx_in, mut y, dy) = (
            Dev::new(x.data()),
            Dev::filled(x.count(), 0.0),
            Dev::new(tops[0].diff()),
        );
        let mut dx = Dev::filled(x.count(), 0.0);
        let (xp, yp, dyp, dxp) = (dx_in.c(), y.p(), dy.c(), dx.p());
        m.launch(GRID, BLOCK, 0, order, || unsafe { fwd(xp, yp, 0.15, n) });
        m.launch(GRID, BLOCK, 0, order, || unsafe {
            bwd(xp, dyp, dxp, 0.15, n)
        });
        assert_near(&y.get(), &data(&tops[0]), 0.0, "ReLU forward");
        assert_near(&dx.get(), bottoms[0].diff(), 0.0, "ReLU backward");
    });
}

/// Sigmoid and TanH: forward from x, backward from the top's values.
#[test]
fn sigmoid_and_tanh_match_their_layers() {
    each_order(|order| {
        for (ty, path, kernels) in [
            (
                "Sigmoid",
                "src/layers/sigmoid.cu",
                ["sigmoid_forward", "sigmoid_backward"],
            ),
            (
                "TanH",
                "src/layers/tanh.cu",
                ["tanh_forward", "tanh_backward"],
            ),
        ] {
            let m = Module::get(path);
            let fwd: Unary = m.kernel(kernels[0]);
            let bwd: UnaryBack = m.kernel(kernels[1]);
            let mut l = layer(&format!("name: \"s\" type: \"{ty}\""));
            let x = uniform_blob(&[2, 3, 5, 7], -4.0, 4.0, 13);
            let (tops, bottoms, _) = cpu_pass(l.as_mut(), vec![x.clone()], None, 14);
            let n = x.count() as i64;
            let xd = Dev::new(x.data());
            let mut y = Dev::filled(x.count(), 0.0);
            let (yc, dy) = (Dev::new(tops[0].data()), Dev::new(tops[0].diff()));
            let mut dx = Dev::filled(x.count(), 0.0);
            let (xp, yp, ycp, dyp, dxp) = (xd.c(), y.p(), yc.c(), dy.c(), dx.p());
            m.launch(GRID, BLOCK, 0, order, || unsafe { fwd(xp, yp, n) });
            m.launch(GRID, BLOCK, 0, order, || unsafe { bwd(ycp, dyp, dxp, n) });
            assert_near(&y.get(), &data(&tops[0]), 1e-6, &format!("{ty} forward"));
            assert_near(
                &dx.get(),
                bottoms[0].diff(),
                1e-6,
                &format!("{ty} backward"),
            );
        }
    });
}

#[test]
fn prelu_matches_the_layer_per_channel_and_shared() {
    type Fwd = unsafe extern "C" fn(*const f32, *const f32, *mut f32, i64, i64, i64);
    type BackData =
        unsafe extern "C" fn(*const f32, *const f32, *const f32, *mut f32, i64, i64, i64);
    type BackSlope = unsafe extern "C" fn(*const f32, *const f32, *mut f32, i64, i64, i64);
    each_order(|order| {
        let m = Module::get("src/layers/prelu.cu");
        let fwd: Fwd = m.kernel("prelu_forward");
        let bwd: BackData = m.kernel("prelu_backward_data");
        let bwd_slope: BackSlope = m.kernel("prelu_backward_slope");
        for shared in [false, true] {
            let mut l = layer(&format!(
                "name: \"p\" type: \"PReLU\" prelu_param {{ channel_shared: {shared} }}"
            ));
            let x = uniform_blob(&[2, 3, 5, 7], -1.0, 1.0, 15);
            let channels = if shared { 1 } else { 3 };
            let slopes = uniform_blob(&[channels], 0.1, 0.5, 16);
            let (tops, bottoms, params) =
                cpu_pass(l.as_mut(), vec![x.clone()], Some(vec![slopes.clone()]), 17);
            let (n, inner) = (x.count() as i64, 35i64);
            // One shared slope: channel index (i / inner) % 1 = 0 for every element.
            let (k_inner, k_channels) = if shared { (n, 1) } else { (inner, 3) };
            let (xd, a) = (Dev::new(x.data()), Dev::new(slopes.data()));
            let dy = Dev::new(tops[0].diff());
            let (mut y, mut dx) = (Dev::filled(x.count(), 0.0), Dev::filled(x.count(), 0.0));
            let mut da = Dev::filled(channels, 0.0f32);
            let (xp, ap, dyp, yp, dxp, dap) = (xd.c(), a.c(), dy.c(), y.p(), dx.p(), da.p());
            m.launch(GRID, BLOCK, 0, order, || unsafe {
                fwd(xp, ap, yp, k_inner, k_channels, n)
            });
            m.launch(GRID, BLOCK, 0, order, || unsafe {
                bwd(xp, dyp, ap, dxp, k_inner, k_channels, n)
            });
            // The slope reduction: one block per channel over batch × inner;
            // shared: one block over the whole blob as one channel of batch 1.
            let (blocks, s_inner, batch) = if shared { (1, n, 1) } else { (3, inner, 2) };
            m.launch(blocks, 64, 64 * 4, order, || unsafe {
                bwd_slope(xp, dyp, dap, s_inner, k_channels, batch)
            });
            let what = format!("PReLU channel_shared {shared}");
            assert_near(&y.get(), &data(&tops[0]), 0.0, &format!("{what} forward"));
            assert_near(&dx.get(), bottoms[0].diff(), 0.0, &format!("{what} dx"));
            assert_near(&da.get(), params[0].diff(), 1e-5, &format!("{what} dslope"));
        }
    });
}

#[test]
fn eltwise_sum_prod_max_match_the_layer() {
    type Acc = unsafe extern "C" fn(*const f32, f32, *mut f32, i64);
    type Prod = unsafe extern "C" fn(*const f32, *mut f32, i64);
    type Max = unsafe extern "C" fn(*const f32, i32, *mut f32, *mut i32, i64);
    type SumBack = unsafe extern "C" fn(*const f32, f32, *mut f32, i64);
    type ProdBack = unsafe extern "C" fn(*const f32, *const f32, *mut f32, i64);
    type MaxBack = unsafe extern "C" fn(*const f32, *const i32, i32, *mut f32, i64);
    each_order(|order| {
        let m = Module::get("src/layers/eltwise.cu");
        let shape = [2, 3, 5, 7];
        let xs: Vec<Blob> = (0..3)
            .map(|s| uniform_blob(&shape, 0.2, 1.5, 20 + s))
            .collect();
        let n = xs[0].count();
        for op in ["SUM", "PROD", "MAX"] {
            let extra = if op == "SUM" {
                "coeff: 0.5 coeff: -2 coeff: 1.5"
            } else {
                ""
            };
            let mut l = layer(&format!(
                "name: \"e\" type: \"Eltwise\" bottom: \"a\" bottom: \"b\" bottom: \"c\" \
                 eltwise_param {{ operation: {op} {extra} }}"
            ));
            let (tops, bottoms, _) = cpu_pass(l.as_mut(), xs.clone(), None, 23);
            let ins: Vec<Dev<f32>> = xs.iter().map(|b| Dev::new(b.data())).collect();
            let dy = Dev::new(tops[0].diff());
            let mut y = Dev::filled(n, if op == "SUM" { 0.0 } else { 1.0 });
            let mut index = Dev::filled(n, 0i32);
            let (yp, ip, dyp, nn) = (y.p(), index.p(), dy.c(), n as i64);
            let coeffs = [0.5f32, -2.0, 1.5];
            for (k, x) in ins.iter().enumerate() {
                let xp = x.c();
                match op {
                    "SUM" => {
                        let f: Acc = m.kernel("eltwise_sum_accumulate");
                        m.launch(GRID, BLOCK, 0, order, || unsafe {
                            f(xp, coeffs[k], yp, nn)
                        });
                    }
                    "PROD" => {
                        let f: Prod = m.kernel("eltwise_prod_accumulate");
                        m.launch(GRID, BLOCK, 0, order, || unsafe { f(xp, yp, nn) });
                    }
                    _ if k == 0 => unsafe { std::ptr::copy_nonoverlapping(xp, yp, n) },
                    _ => {
                        let f: Max = m.kernel("eltwise_max_accumulate");
                        m.launch(GRID, BLOCK, 0, order, || unsafe {
                            f(xp, k as i32, yp, ip, nn)
                        });
                    }
                }
            }
            assert_near(
                &y.get(),
                &data(&tops[0]),
                1e-6,
                &format!("Eltwise {op} forward"),
            );
            for (k, b) in bottoms.iter().enumerate() {
                let mut dx = Dev::filled(n, 0.0f32);
                let dxp = dx.p();
                match op {
                    "SUM" => {
                        let f: SumBack = m.kernel("eltwise_sum_backward");
                        m.launch(GRID, BLOCK, 0, order, || unsafe {
                            f(dyp, coeffs[k], dxp, nn)
                        });
                    }
                    "PROD" => {
                        let others: Vec<f32> = (0..n)
                            .map(|i| {
                                (0..3)
                                    .filter(|&j| j != k)
                                    .map(|j| xs[j].data()[i])
                                    .product()
                            })
                            .collect();
                        let o = Dev::new(&others);
                        let op_ = o.c();
                        let f: ProdBack = m.kernel("eltwise_prod_backward");
                        m.launch(GRID, BLOCK, 0, order, || unsafe { f(dyp, op_, dxp, nn) });
                    }
                    _ => {
                        let f: MaxBack = m.kernel("eltwise_max_backward");
                        m.launch(GRID, BLOCK, 0, order, || unsafe {
                            f(dyp, ip, k as i32, dxp, nn)
                        });
                    }
                }
                assert_near(&dx.get(), b.diff(), 1e-6, &format!("Eltwise {op} dx_{k}"));
            }
        }
    });
}

#[test]
fn softmax_matches_the_layer_over_an_inner_axis() {
    type Fwd = unsafe extern "C" fn(*const f32, *mut f32, i64, i64);
    type Bwd = unsafe extern "C" fn(*const f32, *const f32, *mut f32, i64, i64);
    each_order(|order| {
        let m = Module::get("src/layers/softmax.cu");
        let (fwd, bwd): (Fwd, Bwd) = (m.kernel("softmax_forward"), m.kernel("softmax_backward"));
        let mut l = layer("name: \"s\" type: \"Softmax\"");
        // outer 2, C 37 (more than a block of 16, not a power of two), inner 3.
        let x = uniform_blob(&[2, 37, 3], -5.0, 5.0, 30);
        let (tops, bottoms, _) = cpu_pass(l.as_mut(), vec![x.clone()], None, 31);
        let (xd, yc, dy) = (
            Dev::new(x.data()),
            Dev::new(tops[0].data()),
            Dev::new(tops[0].diff()),
        );
        let (mut y, mut dx) = (Dev::filled(x.count(), 0.0), Dev::filled(x.count(), 0.0));
        let (xp, yp, ycp, dyp, dxp) = (xd.c(), y.p(), yc.c(), dy.c(), dx.p());
        m.launch(6, 16, 16 * 4, order, || unsafe { fwd(xp, yp, 37, 3) });
        m.launch(6, 16, 16 * 4, order, || unsafe {
            bwd(ycp, dyp, dxp, 37, 3)
        });
        assert_near(&y.get(), &data(&tops[0]), 1e-6, "Softmax forward");
        assert_near(&dx.get(), bottoms[0].diff(), 1e-6, "Softmax backward");
    });
}

#[test]
fn softmax_with_loss_sums_and_gradient_match_the_layer() {
    type Sum = unsafe extern "C" fn(*const f32, *const f32, i64, i64, i64, i32, i32, *mut f64);
    type Bwd = unsafe extern "C" fn(*const f32, *const f32, *mut f32, f32, i64, i64, i32, i32, i64);
    each_order(|order| {
        let m = Module::get("src/layers/softmax_with_loss.cu");
        let (sum, bwd): (Sum, Bwd) = (
            m.kernel("softmax_loss_sum"),
            m.kernel("softmax_loss_backward"),
        );
        let mut l = layer(
            "name: \"l\" type: \"SoftmaxWithLoss\" bottom: \"s\" bottom: \"y\" \
             loss_param { ignore_label: 2 }",
        );
        let x = uniform_blob(&[4, 5, 3], -3.0, 3.0, 40);
        // Classes 0..4 with ignore_label 2; labels are truncated as Caffe's
        // static_cast<int> does: 1.5 is class 1 and 2.25 is ignored.
        let mut labels: Vec<f32> = (0..12).map(|i| ((i * 7) % 5) as f32).collect();
        labels[3] = 1.5;
        labels[2] = 2.25;
        let y = Blob::from_data(&[4, 3], labels.clone());
        let (tops, bottoms, _) = cpu_pass(l.as_mut(), vec![x.clone(), y], None, 41);
        let lab = Dev::new(&labels);
        let mut prob = device_softmax(order, &x, 5, 3);
        let mut out = Dev::filled(4, 0.0f64);
        let (pp, lp, op) = (prob.p(), lab.c(), out.p());
        m.launch(1, 8, 4 * 8 * 8, order, || unsafe {
            sum(pp, lp, 5, 3, 12, 1, 2, op)
        });
        let s = out.get();
        let valid = labels.iter().filter(|&&v| v.trunc() != 2.0).count() as f64;
        assert_eq!((s[1], s[2], s[3]), (valid, 0.0, 0.0), "valid, clamped, bad");
        // VALID normalisation: loss = Σ / valid; the top diff scales the gradient.
        assert_near(
            &[(s[0] / s[1]) as f32],
            &data(&tops[0]),
            1e-6,
            "SoftmaxWithLoss loss",
        );
        let scale = (tops[0].diff()[0] as f64 / valid) as f32;
        let mut dx = Dev::filled(x.count(), 0.0);
        let (dxp, n) = (dx.p(), x.count() as i64);
        m.launch(GRID, BLOCK, 0, order, || unsafe {
            bwd(pp, lp, dxp, scale, 5, 3, 1, 2, n)
        });
        assert_near(
            &dx.get(),
            bottoms[0].diff(),
            1e-6,
            "SoftmaxWithLoss backward",
        );
    });
}

#[repr(C)]
#[derive(Clone, Copy)]
struct Geometry {
    h: i32,
    w: i32,
    ho: i32,
    wo: i32,
    kh: i32,
    kw: i32,
    sh: i32,
    sw: i32,
    ph: i32,
    pw: i32,
}

#[test]
fn pooling_max_and_ave_match_the_layer_with_padding_and_overhang() {
    type MaxFwd = unsafe extern "C" fn(*const f32, *mut f32, *mut i32, Geometry, i64);
    type AveFwd = unsafe extern "C" fn(*const f32, *mut f32, Geometry, i64);
    type MaxBwd = unsafe extern "C" fn(*const f32, *const i32, *mut f32, Geometry, i64);
    type AveBwd = unsafe extern "C" fn(*const f32, *mut f32, Geometry, i64);
    each_order(|order| {
        let m = Module::get("src/layers/pooling/pooling.cu");
        for pool in ["MAX", "AVE"] {
            let tops_text = if pool == "MAX" {
                "top: \"y\" top: \"mask\""
            } else {
                "top: \"y\""
            };
            let mut l = layer(&format!(
                "name: \"p\" type: \"Pooling\" bottom: \"x\" {tops_text} pooling_param {{ \
                 pool: {pool} kernel_h: 3 kernel_w: 2 stride_h: 2 stride_w: 3 pad_h: 1 pad_w: 1 }}"
            ));
            let x = uniform_blob(&[2, 3, 7, 8], -1.0, 1.0, 50);
            let (tops, bottoms, _) = cpu_pass(l.as_mut(), vec![x.clone()], None, 51);
            let (ho, wo) = (tops[0].shape()[2], tops[0].shape()[3]);
            let g = Geometry {
                h: 7,
                w: 8,
                ho: ho as i32,
                wo: wo as i32,
                kh: 3,
                kw: 2,
                sh: 2,
                sw: 3,
                ph: 1,
                pw: 1,
            };
            let (outs, ins) = (tops[0].count() as i64, x.count() as i64);
            let (xd, dy) = (Dev::new(x.data()), Dev::new(tops[0].diff()));
            let mut y = Dev::filled(outs as usize, 0.0);
            let mut index = Dev::filled(outs as usize, 0i32);
            let mut dx = Dev::filled(x.count(), 0.0);
            let (xp, yp, ip, dyp, dxp) = (xd.c(), y.p(), index.p(), dy.c(), dx.p());
            if pool == "MAX" {
                let (f, b): (MaxFwd, MaxBwd) = (
                    m.kernel("pooling_max_forward"),
                    m.kernel("pooling_max_backward"),
                );
                m.launch(GRID, BLOCK, 0, order, || unsafe { f(xp, yp, ip, g, outs) });
                m.launch(GRID, BLOCK, 0, order, || unsafe { b(dyp, ip, dxp, g, ins) });
                let mask: Vec<f32> = index.get().iter().map(|&i| i as f32).collect();
                assert_near(&mask, tops[1].data(), 0.0, "Pooling MAX mask");
            } else {
                let (f, b): (AveFwd, AveBwd) = (
                    m.kernel("pooling_ave_forward"),
                    m.kernel("pooling_ave_backward"),
                );
                m.launch(GRID, BLOCK, 0, order, || unsafe { f(xp, yp, g, outs) });
                m.launch(GRID, BLOCK, 0, order, || unsafe { b(dyp, dxp, g, ins) });
            }
            assert_near(
                &y.get(),
                &data(&tops[0]),
                1e-6,
                &format!("Pooling {pool} forward"),
            );
            assert_near(
                &dx.get(),
                bottoms[0].diff(),
                1e-6,
                &format!("Pooling {pool} backward"),
            );
        }
    });
}
