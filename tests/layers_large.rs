//! The element-wise and fully-connected layers on blobs large enough for their
//! parallel chunked loops (above `rows::SERIAL_MAX`, several chunks and a partial
//! last one, planes not a multiple of 16) and for the small-batch GEMM paths,
//! against naive f64 loops. (The small blobs of layers_core take the serial side.)

mod common;

use common::build;
use netrun::blob::Blob;
use netrun::layer_io::{LayerIo, Rng, RunCtx};
use netrun::layers::rows::SERIAL_MAX;
use netrun::net::Net;
use netrun::netdef::Phase;
use netrun::testing::{assert_close, forward, layer, setup, uniform_blob};
use rand::SeedableRng;

/// N×C×H×W with H·W = 8633 (not a multiple of 16): 69 064 values, above
/// SERIAL_MAX; four chunks of 16 384 and a partial fifth.
const SHAPE: [usize; 4] = [2, 4, 97, 89];
const PLANE: usize = 97 * 89;

/// PReLU not in place, PReLU in place on its output, then y = 0.5·a − 2·x with
/// x split between the first PReLU and the sum; `down` is the first PReLU's
/// propagate_down.
fn chain(down: bool) -> String {
    let [n, c, h, w] = SHAPE;
    let slopes = "prelu_param { filler { type: \"uniform\" min: 0.1 max: 0.5 } }";
    format!(
        "force_backward: true\n\
         layer {{ name: \"in\" type: \"Input\" top: \"x\" input_param {{ shape {{ dim: {n} dim: {c} dim: {h} dim: {w} }} }} }}\n\
         layer {{ name: \"p1\" type: \"PReLU\" bottom: \"x\" top: \"a\" propagate_down: {down} {slopes} }}\n\
         layer {{ name: \"p2\" type: \"PReLU\" bottom: \"a\" top: \"a\" {slopes} }}\n\
         layer {{ name: \"e\" type: \"Eltwise\" bottom: \"a\" bottom: \"x\" top: \"y\" eltwise_param {{ operation: SUM coeff: 0.5 coeff: -2 }} }}\n"
    )
}

fn prelu(v: f64, a: f64) -> f64 {
    if v > 0.0 {
        v
    } else {
        a * v
    }
}

#[test]
fn prelu_split_and_eltwise_sum_on_a_large_blob() {
    netrun::backend::set_threads(2);
    assert!(SHAPE.iter().product::<usize>() > SERIAL_MAX);
    let x = uniform_blob(&SHAPE, -1.0, 1.0, 41);
    let dy = uniform_blob(&SHAPE, -1.0, 1.0, 42);
    for down in [true, false] {
        let mut net = Net::new(build(&chain(down), Phase::Train).unwrap(), 5).unwrap();
        net.blob_mut("x")
            .unwrap()
            .data_mut()
            .copy_from_slice(x.data());
        net.forward().unwrap();
        net.blob_mut("y")
            .unwrap()
            .diff_mut()
            .copy_from_slice(dy.data());
        net.backward().unwrap();

        let (s1, s2) = (net.params[0].data().to_vec(), net.params[1].data().to_vec());
        let ch = |i: usize| (i / PLANE) % SHAPE[1];
        let xs: Vec<f64> = x.data().iter().map(|&v| v as f64).collect();
        let a1: Vec<f64> = (0..xs.len())
            .map(|i| prelu(xs[i], s1[ch(i)] as f64))
            .collect();
        let a2: Vec<f64> = (0..xs.len())
            .map(|i| prelu(a1[i], s2[ch(i)] as f64))
            .collect();
        let y: Vec<f64> = (0..xs.len()).map(|i| 0.5 * a2[i] - 2.0 * xs[i]).collect();
        assert_close(net.blob("y").unwrap().data(), &y, 1e-6, 1e-6, "y");

        // Backward by hand: d_a2 = 0.5·dy, d_a1 = d_a2·(1 or s2), dx = d_a1·(1 or s1) − 2·dy
        // (only −2·dy when p1 does not propagate down).
        let (mut ds1, mut ds2) = (vec![0.0f64; SHAPE[1]], vec![0.0f64; SHAPE[1]]);
        let mut dx = vec![0.0f64; xs.len()];
        for i in 0..xs.len() {
            let g = dy.data()[i] as f64;
            let d_a2 = 0.5 * g;
            let d_a1 = if a1[i] > 0.0 {
                d_a2
            } else {
                ds2[ch(i)] += d_a2 * a1[i];
                d_a2 * s2[ch(i)] as f64
            };
            let through = if xs[i] > 0.0 {
                d_a1
            } else {
                ds1[ch(i)] += d_a1 * xs[i];
                d_a1 * s1[ch(i)] as f64
            };
            dx[i] = if down { through } else { 0.0 } - 2.0 * g;
        }
        assert_close(net.params[0].diff(), &ds1, 1e-4, 1e-3, "slope diff p1");
        assert_close(net.params[1].diff(), &ds2, 1e-4, 1e-3, "slope diff p2");
        assert_close(net.blob("x").unwrap().diff(), &dx, 1e-5, 1e-6, "dx");
    }
}

#[test]
fn eltwise_prod_and_max_on_a_large_blob() {
    netrun::backend::set_threads(2);
    for op in ["PROD", "MAX"] {
        let text = format!("name: \"e\" type: \"Eltwise\" bottom: \"a\" bottom: \"b\" bottom: \"c\" eltwise_param {{ operation: {op} }}");
        let mut l = layer(&text);
        let mut bottoms: Vec<Blob> = (0..3)
            .map(|k| uniform_blob(&SHAPE, -1.0, 1.0, 50 + k))
            .collect();
        let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 0);
        forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
        let inputs: Vec<Vec<f32>> = bottoms.iter().map(|b| b.data().to_vec()).collect();
        let v = |k: usize, i: usize| inputs[k][i] as f64;
        let n = bottoms[0].count();
        let first_max =
            |i: usize| (0..3).fold(0, |best, k| if v(k, i) > v(best, i) { k } else { best });
        let expected: Vec<f64> = (0..n)
            .map(|i| match op {
                "PROD" => v(0, i) * v(1, i) * v(2, i),
                _ => v(first_max(i), i),
            })
            .collect();
        assert_close(tops[0].data(), &expected, 1e-6, 1e-7, op);

        let dy = uniform_blob(&SHAPE, -1.0, 1.0, 60);
        tops[0].diff_mut().copy_from_slice(dy.data());
        let mut io = LayerIo::new(
            bottoms.iter_mut().collect(),
            tops.iter_mut().collect(),
            params.iter_mut().collect(),
        );
        let mut rng = Rng::seed_from_u64(0);
        let mut ctx = RunCtx {
            phase: Phase::Train,
            rng: &mut rng,
        };
        l.backward(&mut io, &[true, false, true], &mut ctx).unwrap();
        drop(io);
        for k in [0, 2] {
            let dx: Vec<f64> = (0..n)
                .map(|i| {
                    let g = dy.data()[i] as f64;
                    match op {
                        "PROD" => g * (0..3).filter(|&j| j != k).map(|j| v(j, i)).product::<f64>(),
                        _ if first_max(i) == k => g,
                        _ => 0.0,
                    }
                })
                .collect();
            assert_close(bottoms[k].diff(), &dx, 1e-6, 1e-7, &format!("{op} dx{k}"));
        }
        // Bottom 1 takes no gradient: its diff is left alone.
        assert!(bottoms[1].diff().iter().all(|&d| d == 0.0), "{op}");
    }
}

#[test]
fn inner_product_small_batch_wide_input() {
    netrun::backend::set_threads(2);
    // Batch 20, K = 4100, N = 256: forward through the column-major product,
    // dx = dy·W through the panel product; also batch 1 (matrix–vector).
    for batch in [20, 1] {
        let mut l = layer("name: \"ip\" type: \"InnerProduct\" inner_product_param { num_output: 256 weight_filler { type: \"uniform\" min: -1 max: 1 } bias_filler { type: \"uniform\" min: -1 max: 1 } }");
        let (k, n) = (4100, 256);
        let mut bottoms = vec![uniform_blob(&[batch, 4, 25, 41], -1.0, 1.0, 70)];
        let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 71);
        forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
        let (x, w, b) = (bottoms[0].data(), params[0].data(), params[1].data());
        let dot = |i: usize, j: usize| -> f64 {
            (0..k)
                .map(|p| x[i * k + p] as f64 * w[j * k + p] as f64)
                .sum()
        };
        let y: Vec<f64> = (0..batch * n)
            .map(|e| dot(e / n, e % n) + b[e % n] as f64)
            .collect();
        assert_close(tops[0].data(), &y, 1e-5, 1e-4, "ip forward");

        let dy = uniform_blob(&[batch, n], -1.0, 1.0, 72);
        tops[0].diff_mut().copy_from_slice(dy.data());
        let (x, w) = (x.to_vec(), w.to_vec());
        let mut io = LayerIo::new(
            bottoms.iter_mut().collect(),
            tops.iter_mut().collect(),
            params.iter_mut().collect(),
        );
        let mut rng = Rng::seed_from_u64(0);
        let mut ctx = RunCtx {
            phase: Phase::Train,
            rng: &mut rng,
        };
        l.backward(&mut io, &[true], &mut ctx).unwrap();
        drop(io);
        let g = |i: usize, j: usize| dy.data()[i * n + j] as f64;
        let dx: Vec<f64> = (0..batch * k)
            .map(|e| (0..n).map(|j| g(e / k, j) * w[j * k + e % k] as f64).sum())
            .collect();
        assert_close(bottoms[0].diff(), &dx, 1e-5, 1e-4, "ip dx");
        let dw: Vec<f64> = (0..n * k)
            .map(|e| {
                (0..batch)
                    .map(|i| g(i, e / k) * x[i * k + e % k] as f64)
                    .sum()
            })
            .collect();
        assert_close(params[0].diff(), &dw, 1e-5, 1e-4, "ip dW");
    }
}

#[test]
fn margin_inner_product_normalises_a_large_weight() {
    netrun::backend::set_threads(2);
    // W is 300×256 (76 800 values, above SERIAL_MAX: rows normalised in parallel).
    let (n, k) = (300, 256);
    assert!(n * k > SERIAL_MAX);
    let mut l = layer("name: \"fc\" type: \"MarginInnerProduct\" bottom: \"x\" bottom: \"label\" top: \"fc\" margin_inner_product_param { num_output: 300 type: SINGLE weight_filler { type: \"uniform\" min: -1 max: 1 } }");
    let mut bottoms = vec![
        uniform_blob(&[3, k], -1.0, 1.0, 80),
        Blob::from_data(&[3], vec![0.0, 17.0, 299.0]),
    ];
    let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 81);
    let raw = params[0].data().to_vec();
    forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
    let unit: Vec<f64> = raw
        .chunks(k)
        .flat_map(|row| {
            let norm = row.iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt();
            row.iter().map(move |&v| v as f64 / norm)
        })
        .collect();
    assert_close(params[0].data(), &unit, 1e-6, 1e-7, "normalised W");
    let x = bottoms[0].data();
    let logits: Vec<f64> = (0..3 * n)
        .map(|e| {
            let (i, j) = (e / n, e % n);
            (0..k).map(|p| x[i * k + p] as f64 * unit[j * k + p]).sum()
        })
        .collect();
    assert_close(tops[0].data(), &logits, 1e-5, 1e-5, "logits");
}
