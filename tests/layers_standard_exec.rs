//! Forward against naive loops, gradient checks and special modes (in place, phases,
//! running statistics) for the standard layers.

mod common;

use common::{build, build_error};
use netrun::blob::Blob;
use netrun::layer_io::{LayerIo, Rng, RunCtx};
use netrun::layers::{BuildContext, Layer};
use netrun::net::Net;
use netrun::netdef::{parse_net_str, Phase};
use netrun::testing::{assert_close, forward, layer, setup, uniform_blob, GradientChecker};
use rand::seq::SliceRandom;
use rand::SeedableRng;

/// Builds one layer (inside of a `layer { }` block) for the given phase.
fn layer_in(text: &str, phase: Phase) -> Box<dyn Layer> {
    let net = parse_net_str("test.net", &format!("layer {{ {text} }}")).unwrap();
    let ctx = BuildContext {
        phase,
        ..BuildContext::default()
    };
    netrun::layers::build(&net.layers[0], &ctx).unwrap_or_else(|d| panic!("{d:?}"))
}

fn run_forward(
    l: &mut dyn Layer,
    bottoms: &mut [Blob],
    tops: &mut [Blob],
    params: &mut [Blob],
    phase: Phase,
    seed: u64,
) {
    let mut rng = Rng::seed_from_u64(seed);
    let mut io = LayerIo::new(
        bottoms.iter_mut().collect(),
        tops.iter_mut().collect(),
        params.iter_mut().collect(),
    );
    l.forward(
        &mut io,
        &mut RunCtx {
            phase,
            rng: &mut rng,
        },
    )
    .unwrap();
}

fn run_backward(
    l: &mut dyn Layer,
    bottoms: &mut [Blob],
    tops: &mut [Blob],
    params: &mut [Blob],
    propagate_down: &[bool],
    phase: Phase,
) {
    let mut rng = Rng::seed_from_u64(0);
    let mut io = LayerIo::new(
        bottoms.iter_mut().collect(),
        tops.iter_mut().collect(),
        params.iter_mut().collect(),
    );
    l.backward(
        &mut io,
        propagate_down,
        &mut RunCtx {
            phase,
            rng: &mut rng,
        },
    )
    .unwrap();
}

/// Distinct values 0.05 apart in random order, so a ±0.01 step never reorders two inputs.
fn distinct_blob(shape: &[usize], offset: f32, seed: u64) -> Blob {
    let n: usize = shape.iter().product();
    let mut v: Vec<f32> = (0..n).map(|i| offset + 0.05 * i as f32).collect();
    v.shuffle(&mut Rng::seed_from_u64(seed));
    Blob::from_data(shape, v)
}

fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

/// Index of (n, c, h, w) in an N×C×H×W blob.
fn at(s: &[usize], n: usize, c: usize, h: usize, w: usize) -> usize {
    ((n * s[1] + c) * s[2] + h) * s[3] + w
}

// ---------------------------------------------------------------- Pooling

/// Caffe's output length: ⌈(len + 2p − k)/s⌉ + 1, less one when the last window would
/// start at or past len + p.
fn pooled_len(len: usize, k: usize, s: usize, p: usize) -> usize {
    let mut out = ((len + 2 * p - k) as f64 / s as f64).ceil() as usize + 1;
    if p > 0 && (out - 1) * s >= len + p {
        out -= 1;
    }
    out
}

/// Naive MAX and AVE pooling: (max, first argmax within the plane, average).
fn naive_pool(
    x: &Blob,
    k: [usize; 2],
    s: [usize; 2],
    p: [usize; 2],
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let sh = x.shape();
    let (ho, wo) = (
        pooled_len(sh[2], k[0], s[0], p[0]),
        pooled_len(sh[3], k[1], s[1], p[1]),
    );
    let (mut max, mut arg, mut ave) = (vec![], vec![], vec![]);
    for n in 0..sh[0] {
        for c in 0..sh[1] {
            for i in 0..ho {
                for j in 0..wo {
                    let hs = (i * s[0]) as i64 - p[0] as i64;
                    let ws = (j * s[1]) as i64 - p[1] as i64;
                    let he = (hs + k[0] as i64).min((sh[2] + p[0]) as i64);
                    let we = (ws + k[1] as i64).min((sh[3] + p[1]) as i64);
                    let size = ((he - hs) * (we - ws)) as f64;
                    let (mut best, mut best_at, mut sum) = (f64::NEG_INFINITY, 0, 0.0);
                    for h in hs.max(0)..he.min(sh[2] as i64) {
                        for w in ws.max(0)..we.min(sh[3] as i64) {
                            let v = x.data()[at(sh, n, c, h as usize, w as usize)] as f64;
                            sum += v;
                            if v > best {
                                best = v;
                                best_at = h as usize * sh[3] + w as usize;
                            }
                        }
                    }
                    max.push(best);
                    arg.push(best_at as f64);
                    ave.push(sum / size);
                }
            }
        }
    }
    (max, arg, ave)
}

/// (spec, input shape, kernel, stride, pad).
type PoolCase = (&'static str, [usize; 4], [usize; 2], [usize; 2], [usize; 2]);

/// Padding, stride 2, non-square, batch 1, and ceil-mode windows hanging over the edge
/// (H = 7 with k = 2, s = 2 has a last window on row 6 alone).
const POOL_CASES: &[PoolCase] = &[
    (
        "kernel_size: 3 stride: 2 pad: 1",
        [2, 3, 7, 5],
        [3, 3],
        [2, 2],
        [1, 1],
    ),
    (
        "kernel_size: 2 stride: 2",
        [1, 2, 7, 6],
        [2, 2],
        [2, 2],
        [0, 0],
    ),
    (
        "kernel_h: 3 kernel_w: 2 stride_h: 2 stride_w: 1 pad_h: 2 pad_w: 1",
        [2, 1, 6, 5],
        [3, 2],
        [2, 1],
        [2, 1],
    ),
    (
        "kernel_size: 3 stride: 3",
        [1, 2, 8, 7],
        [3, 3],
        [3, 3],
        [0, 0],
    ),
];

#[test]
fn pooling_max_matches_naive_with_mask_top() {
    for &(spec, shape, k, s, p) in POOL_CASES {
        let mut l = layer(&format!(
            "name: \"p\" type: \"Pooling\" top: \"y\" top: \"mask\" pooling_param {{ pool: MAX {spec} }}"
        ));
        let mut bottoms = vec![distinct_blob(&shape, -2.0, 3)];
        let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 0);
        forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
        let (max, arg, _) = naive_pool(&bottoms[0], k, s, p);
        assert_close(tops[0].data(), &max, 0.0, 0.0, spec);
        assert_close(tops[1].data(), &arg, 0.0, 0.0, spec);
        GradientChecker::default()
            .check(l.as_mut(), &mut bottoms, &mut tops, &mut params, &[true])
            .unwrap();
    }
}

#[test]
fn pooling_max_routes_gradient_to_the_first_maximum() {
    // Values in {0, 1, 2}: most windows hold tied maxima. Padded windows, and
    // unpadded ones (their own path) with a last window hanging over the edge.
    let shape = [2, 2, 5, 5];
    let cases = [
        ("kernel_size: 3 stride: 2 pad: 1", [3, 3], [1, 1]),
        ("kernel_size: 2 stride: 2", [2, 2], [0, 0]),
    ];
    for (spec, k, pad) in cases {
        let mut l = layer(&format!(
            "name: \"p\" type: \"Pooling\" top: \"y\" pooling_param {{ pool: MAX {spec} }}"
        ));
        let mut x = uniform_blob(&shape, 0.0, 3.0, 8);
        x.data_mut().iter_mut().for_each(|v| *v = v.floor());
        let mut bottoms = vec![x];
        let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 0);
        forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
        let (max, arg, _) = naive_pool(&bottoms[0], k, [2, 2], pad);
        assert_close(tops[0].data(), &max, 0.0, 0.0, spec);
        let dy = uniform_blob(tops[0].shape(), -1.0, 1.0, 2);
        tops[0].diff_mut().copy_from_slice(dy.data());
        run_backward(
            l.as_mut(),
            &mut bottoms,
            &mut tops,
            &mut params,
            &[true],
            Phase::Train,
        );
        let mut expected = vec![0.0f64; bottoms[0].count()];
        let out_plane = tops[0].count() / 4;
        for (o, &a) in arg.iter().enumerate() {
            expected[(o / out_plane) * 25 + a as usize] += dy.data()[o] as f64;
        }
        assert_close(bottoms[0].diff(), &expected, 1e-6, 1e-6, spec);
    }
}

#[test]
fn pooling_ave_counts_padding_but_not_the_overhang() {
    for &(spec, shape, k, s, p) in POOL_CASES {
        let mut l = layer(&format!(
            "name: \"p\" type: \"Pooling\" top: \"y\" pooling_param {{ pool: AVE {spec} }}"
        ));
        let mut bottoms = vec![uniform_blob(&shape, -1.0, 1.0, 4)];
        let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 0);
        forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
        let (_, _, ave) = naive_pool(&bottoms[0], k, s, p);
        assert_close(tops[0].data(), &ave, 1e-5, 1e-6, spec);
        GradientChecker::default()
            .check(l.as_mut(), &mut bottoms, &mut tops, &mut params, &[true])
            .unwrap();
    }
    // By hand, H = 4, k = 3, s = 2, p = 1 on one column 1, 2, 3, 4: windows start at
    // -1, 1, 3 and end at min(start + 3, H + p = 5): sizes 3, 3, 2 before clipping, so
    // (1 + 2)/3, (2 + 3 + 4)/3 and 4/2.
    let mut l = layer("name: \"p\" type: \"Pooling\" top: \"y\" pooling_param { pool: AVE kernel_h: 3 kernel_w: 1 stride: 2 pad_h: 1 pad_w: 0 }");
    let mut bottoms = vec![Blob::from_data(&[1, 1, 4, 1], vec![1.0, 2.0, 3.0, 4.0])];
    let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 0);
    forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
    assert_close(tops[0].data(), &[1.0, 3.0, 2.0], 1e-6, 0.0, "by hand");
}

#[test]
fn pooling_global_max_and_ave() {
    for pool in ["MAX", "AVE"] {
        let mut l = layer(&format!(
            "name: \"p\" type: \"Pooling\" top: \"y\" pooling_param {{ pool: {pool} global_pooling: true }}"
        ));
        let mut bottoms = vec![distinct_blob(&[2, 3, 4, 3], -1.0, 6)];
        let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 0);
        assert_eq!(tops[0].shape(), &[2, 3, 1, 1]);
        forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
        let expected: Vec<f64> = bottoms[0]
            .data()
            .chunks(12)
            .map(|plane| {
                let v = f64s(plane);
                match pool {
                    "MAX" => v.iter().cloned().fold(f64::MIN, f64::max),
                    _ => v.iter().sum::<f64>() / 12.0,
                }
            })
            .collect();
        assert_close(tops[0].data(), &expected, 1e-6, 1e-6, pool);
        GradientChecker::default()
            .check(l.as_mut(), &mut bottoms, &mut tops, &mut params, &[true])
            .unwrap();
    }
}

#[test]
fn pooling_stochastic_test_is_the_probability_weighted_average() {
    let spec = "name: \"p\" type: \"Pooling\" top: \"y\" pooling_param { pool: STOCHASTIC kernel_size: 3 stride: 2 }";
    let mut l = layer_in(spec, Phase::Test);
    let shape = [2, 2, 7, 6];
    let mut bottoms = vec![uniform_blob(&shape, 0.1, 1.0, 5)];
    let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 0);
    run_forward(
        l.as_mut(),
        &mut bottoms,
        &mut tops,
        &mut params,
        Phase::Test,
        1,
    );
    let (ho, wo) = (pooled_len(7, 3, 2, 0), pooled_len(6, 3, 2, 0));
    let mut expected = vec![];
    for n in 0..2 {
        for c in 0..2 {
            for i in 0..ho {
                for j in 0..wo {
                    let (mut s, mut q) = (0.0, 0.0);
                    for h in i * 2..(i * 2 + 3).min(7) {
                        for w in j * 2..(j * 2 + 3).min(6) {
                            let v = bottoms[0].data()[at(&shape, n, c, h, w)] as f64;
                            s += v;
                            q += v * v;
                        }
                    }
                    expected.push(q / s);
                }
            }
        }
    }
    assert_close(tops[0].data(), &expected, 1e-5, 1e-6, "stochastic TEST");
    let checker = GradientChecker {
        phase: Phase::Test,
        ..GradientChecker::default()
    };
    checker
        .check(l.as_mut(), &mut bottoms, &mut tops, &mut params, &[true])
        .unwrap();
}

#[test]
fn pooling_stochastic_train_samples_by_value() {
    // 4000 planes holding 1, 2, 3, 4: one 2x2 window each; value v is drawn with probability v/10.
    let planes = 4000;
    let data: Vec<f32> = (0..planes).flat_map(|_| [1.0, 2.0, 3.0, 4.0]).collect();
    let mut bottoms = vec![Blob::from_data(&[1, planes, 2, 2], data)];
    let mut l = layer("name: \"p\" type: \"Pooling\" top: \"y\" pooling_param { pool: STOCHASTIC kernel_size: 2 stride: 2 }");
    let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 0);
    run_forward(
        l.as_mut(),
        &mut bottoms,
        &mut tops,
        &mut params,
        Phase::Train,
        9,
    );
    for v in 1..=4 {
        let freq = tops[0].data().iter().filter(|&&y| y == v as f32).count() as f64 / planes as f64;
        assert!(
            (freq - v as f64 / 10.0).abs() < 0.03,
            "value {v} drawn with frequency {freq}"
        );
    }
    // The gradient goes to the drawn element only.
    tops[0].diff_mut().fill(1.0);
    run_backward(
        l.as_mut(),
        &mut bottoms,
        &mut tops,
        &mut params,
        &[true],
        Phase::Train,
    );
    for (p, plane) in bottoms[0].diff().chunks(4).enumerate() {
        let y = tops[0].data()[p];
        let want: Vec<f32> = [1.0, 2.0, 3.0, 4.0]
            .iter()
            .map(|&v| if v == y { 1.0 } else { 0.0 })
            .collect();
        assert_eq!(plane, &want[..], "plane {p}");
    }
    // A fixed stream gives fixed picks, so the sampled gradient checks numerically.
    let mut bottoms = vec![uniform_blob(&[1, 2, 5, 4], 0.2, 1.0, 12)];
    let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 0);
    GradientChecker::new(1e-3, 1e-2)
        .check(l.as_mut(), &mut bottoms, &mut tops, &mut params, &[true])
        .unwrap();
}

// ---------------------------------------------------------------- Flatten, Reshape, Concat, Slice, Silence

#[test]
fn flatten_and_reshape_copy_data_and_diff() {
    for (text, top) in [
        (
            "name: \"f\" type: \"Flatten\" flatten_param { axis: 1 end_axis: 2 }",
            vec![2, 12, 5],
        ),
        (
            "name: \"r\" type: \"Reshape\" reshape_param { shape { dim: 0 dim: -1 dim: 2 } }",
            vec![2, 30, 2],
        ),
    ] {
        let mut l = layer(text);
        let mut bottoms = vec![uniform_blob(&[2, 3, 4, 5], -1.0, 1.0, 1)];
        let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 0);
        assert_eq!(tops[0].shape(), &top[..]);
        forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
        assert_eq!(tops[0].data(), bottoms[0].data());
        let dy = uniform_blob(&top, -1.0, 1.0, 2);
        tops[0].diff_mut().copy_from_slice(dy.data());
        run_backward(
            l.as_mut(),
            &mut bottoms,
            &mut tops,
            &mut params,
            &[true],
            Phase::Train,
        );
        assert_eq!(bottoms[0].diff(), dy.data());
    }
}

#[test]
fn concat_joins_along_the_axis() {
    // Axis 1 (channels) and axis -2 (rows), three bottoms of different extents.
    for (axis, shapes) in [
        (1i32, [[2, 1, 3, 2], [2, 3, 3, 2], [2, 2, 3, 2]]),
        (-2, [[1, 2, 1, 3], [1, 2, 4, 3], [1, 2, 2, 3]]),
    ] {
        let a = if axis < 0 {
            (4 + axis) as usize
        } else {
            axis as usize
        };
        let mut l = layer(&format!(
            "name: \"c\" type: \"Concat\" bottom: \"a\" bottom: \"b\" bottom: \"c\" concat_param {{ axis: {axis} }}"
        ));
        let mut bottoms: Vec<Blob> = shapes
            .iter()
            .enumerate()
            .map(|(k, s)| uniform_blob(s, -1.0, 1.0, 30 + k as u64))
            .collect();
        let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 0);
        forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
        let ts = tops[0].shape().to_vec();
        let mut expected = vec![0.0f64; tops[0].count()];
        let mut offset = 0;
        for b in &bottoms {
            let s = b.shape();
            for n in 0..s[0] {
                for c in 0..s[1] {
                    for h in 0..s[2] {
                        for w in 0..s[3] {
                            let mut t = [n, c, h, w];
                            t[a] += offset;
                            expected[at(&ts, t[0], t[1], t[2], t[3])] =
                                b.data()[at(s, n, c, h, w)] as f64;
                        }
                    }
                }
            }
            offset += s[a];
        }
        assert_close(tops[0].data(), &expected, 0.0, 0.0, "concat");
        GradientChecker::default()
            .check(
                l.as_mut(),
                &mut bottoms,
                &mut tops,
                &mut params,
                &[true, true, true],
            )
            .unwrap();
        // A bottom that takes no gradient keeps its diff.
        bottoms[1].diff_mut().fill(7.0);
        run_backward(
            l.as_mut(),
            &mut bottoms,
            &mut tops,
            &mut params,
            &[true, false, true],
            Phase::Train,
        );
        assert!(bottoms[1].diff().iter().all(|&d| d == 7.0));
    }
}

#[test]
fn slice_cuts_along_the_axis() {
    for (spec, x_shape, a, sizes) in [
        (
            "axis: 1 slice_point: 1 slice_point: 4",
            [2, 6, 2, 3],
            1usize,
            vec![1, 3, 2],
        ),
        ("axis: -1", [1, 2, 3, 6], 3, vec![2, 2, 2]),
    ] {
        let mut l = layer(&format!(
            "name: \"s\" type: \"Slice\" top: \"a\" top: \"b\" top: \"c\" slice_param {{ {spec} }}"
        ));
        let mut bottoms = vec![uniform_blob(&x_shape, -1.0, 1.0, 40)];
        let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 0);
        forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
        let mut offset = 0;
        for (k, &size) in sizes.iter().enumerate() {
            let ts = tops[k].shape().to_vec();
            assert_eq!(ts[a], size);
            let mut expected = vec![0.0f64; tops[k].count()];
            for n in 0..ts[0] {
                for c in 0..ts[1] {
                    for h in 0..ts[2] {
                        for w in 0..ts[3] {
                            let mut src = [n, c, h, w];
                            src[a] += offset;
                            expected[at(&ts, n, c, h, w)] = bottoms[0].data()
                                [at(&x_shape, src[0], src[1], src[2], src[3])]
                                as f64;
                        }
                    }
                }
            }
            assert_close(tops[k].data(), &expected, 0.0, 0.0, spec);
            offset += size;
        }
        GradientChecker::default()
            .check(l.as_mut(), &mut bottoms, &mut tops, &mut params, &[true])
            .unwrap();
    }
}

#[test]
fn silence_writes_zero_diffs() {
    let mut l = layer("name: \"s\" type: \"Silence\" bottom: \"a\" bottom: \"b\" top: \"x\"");
    let mut bottoms = vec![
        uniform_blob(&[2, 3], -1.0, 1.0, 1),
        uniform_blob(&[4], -1.0, 1.0, 2),
    ];
    let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 0);
    assert!(tops.is_empty());
    forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
    bottoms.iter_mut().for_each(|b| b.diff_mut().fill(3.0));
    run_backward(
        l.as_mut(),
        &mut bottoms,
        &mut tops,
        &mut params,
        &[true, false],
        Phase::Train,
    );
    assert!(bottoms[0].diff().iter().all(|&d| d == 0.0));
    assert!(bottoms[1].diff().iter().all(|&d| d == 3.0));
}

// ---------------------------------------------------------------- Dropout

#[test]
fn dropout_train_mask_statistics_and_scaling() {
    let shape = [4, 50, 1000];
    for scale_train in [true, false] {
        let mut l = layer(&format!(
            "name: \"d\" type: \"Dropout\" dropout_param {{ dropout_ratio: 0.3 scale_train: {scale_train} }}"
        ));
        let mut bottoms = vec![uniform_blob(&shape, 0.5, 1.5, 2)];
        let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 0);
        forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
        let (x, y) = (bottoms[0].data(), tops[0].data());
        let dropped = y.iter().filter(|&&v| v == 0.0).count() as f64 / y.len() as f64;
        assert!((dropped - 0.3).abs() < 0.005, "dropped fraction {dropped}");
        let keep = if scale_train { 1.0 / 0.7 } else { 1.0 };
        for (&a, &b) in x.iter().zip(y) {
            assert!(b == 0.0 || (b as f64 - a as f64 * keep).abs() < 1e-6);
        }
        // Each parallel chunk draws its own mask.
        let zeros = |r: std::ops::Range<usize>| y[r].iter().map(|&v| v == 0.0).collect::<Vec<_>>();
        assert_ne!(zeros(0..16384), zeros(16384..32768));
        // Backward applies the same mask and factor.
        tops[0].diff_mut().fill(1.0);
        run_backward(
            l.as_mut(),
            &mut bottoms,
            &mut tops,
            &mut params,
            &[true],
            Phase::Train,
        );
        for (&d, &v) in bottoms[0].diff().iter().zip(tops[0].data()) {
            assert_eq!(d == 0.0, v == 0.0);
            assert!(d == 0.0 || (d as f64 - keep).abs() < 1e-6);
        }
    }
}

#[test]
fn dropout_test_phase_is_identity_or_expectation() {
    for (scale_train, factor) in [(true, 1.0f64), (false, 0.75)] {
        let text = format!(
            "name: \"d\" type: \"Dropout\" dropout_param {{ dropout_ratio: 0.25 scale_train: {scale_train} }}"
        );
        let mut l = layer_in(&text, Phase::Test);
        let mut bottoms = vec![uniform_blob(&[3, 7], -1.0, 1.0, 3)];
        let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 0);
        run_forward(
            l.as_mut(),
            &mut bottoms,
            &mut tops,
            &mut params,
            Phase::Test,
            1,
        );
        let expected: Vec<f64> = bottoms[0]
            .data()
            .iter()
            .map(|&x| x as f64 * factor)
            .collect();
        assert_close(tops[0].data(), &expected, 1e-6, 0.0, "dropout TEST");
        for phase in [Phase::Train, Phase::Test] {
            GradientChecker {
                phase,
                ..GradientChecker::default()
            }
            .check(l.as_mut(), &mut bottoms, &mut tops, &mut params, &[true])
            .unwrap();
        }
    }
}

// ---------------------------------------------------------------- ReLU, Sigmoid, TanH

#[test]
fn relu_sigmoid_tanh_match_their_formulas() {
    type F = fn(f64) -> f64;
    let cases: [(&str, F); 4] = [
        ("type: \"ReLU\"", |x| x.max(0.0)),
        ("type: \"ReLU\" relu_param { negative_slope: 0.1 }", |x| {
            if x > 0.0 {
                x
            } else {
                0.1 * x
            }
        }),
        ("type: \"Sigmoid\"", |x| 1.0 / (1.0 + (-x).exp())),
        ("type: \"TanH\"", f64::tanh),
    ];
    // 40000 values: more than one parallel chunk.
    for (spec, f) in cases {
        let mut l = layer(&format!("name: \"a\" {spec}"));
        let mut bottoms = vec![uniform_blob(&[2, 4, 100, 50], -3.0, 3.0, 11)];
        let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 0);
        forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
        let expected: Vec<f64> = bottoms[0].data().iter().map(|&x| f(x as f64)).collect();
        assert_close(tops[0].data(), &expected, 1e-5, 1e-6, spec);

        let mut small = vec![uniform_blob(&[2, 3, 3, 1], -3.0, 3.0, 12)];
        let (mut tops, mut params) = setup(l.as_mut(), &small, 0);
        GradientChecker::new(1e-3, 1e-2)
            .with_kink(0.0, 0.01)
            .check(l.as_mut(), &mut small, &mut tops, &mut params, &[true])
            .unwrap();
    }
}

// ---------------------------------------------------------------- In place through a Net

/// A TRAIN net `data` (2x3x4x5) → `layers`, with `force_backward`. Returns the output's
/// data, the input's diff after backward with output diff `dy`, and every learnable
/// blob's data and diff.
fn run_net(layers: &str, out: &str, x: &Blob, dy: &Blob) -> Vec<Vec<f32>> {
    let text = format!(
        "force_backward: true\n\
         layer {{ name: \"in\" type: \"Input\" top: \"data\" input_param {{ shape {{ dim: 2 dim: 3 dim: 4 dim: 5 }} }} }}\n{layers}"
    );
    let graph = build(&text, Phase::Train).unwrap_or_else(|e| panic!("{e}"));
    let mut net = Net::new(graph, 21).unwrap();
    net.blob_mut("data")
        .unwrap()
        .data_mut()
        .copy_from_slice(x.data());
    net.forward().unwrap();
    let y = net.blob(out).unwrap().data().to_vec();
    net.blob_mut(out)
        .unwrap()
        .diff_mut()
        .copy_from_slice(dy.data());
    net.backward().unwrap();
    let mut result = vec![y, net.blob("data").unwrap().diff().to_vec()];
    for p in &net.params {
        result.push(p.data().to_vec());
        result.push(p.diff().to_vec());
    }
    result
}

#[test]
fn in_place_layers_match_out_of_place() {
    let x = uniform_blob(&[2, 3, 4, 5], -1.0, 1.0, 17);
    let dy = uniform_blob(&[2, 3, 4, 5], -1.0, 1.0, 18);
    // Each chain is written with tops `T0`, `T1`, ...: in place they all become `data`.
    let chains = [
        "layer { name: \"a\" type: \"ReLU\" bottom: \"data\" top: \"T0\" relu_param { negative_slope: 0.2 } }",
        "layer { name: \"a\" type: \"Dropout\" bottom: \"data\" top: \"T0\" dropout_param { dropout_ratio: 0.4 } }",
        "layer { name: \"a\" type: \"Sigmoid\" bottom: \"data\" top: \"T0\" }",
        "layer { name: \"a\" type: \"TanH\" bottom: \"data\" top: \"T0\" }",
        "layer { name: \"a\" type: \"PReLU\" bottom: \"data\" top: \"T0\" prelu_param { filler { type: \"uniform\" min: 0.1 max: 0.5 } } }",
        "layer { name: \"a\" type: \"Scale\" bottom: \"data\" top: \"T0\" scale_param { bias_term: true filler { type: \"uniform\" min: -1 max: 1 } bias_filler { type: \"uniform\" min: -1 max: 1 } } }",
        "layer { name: \"a\" type: \"Bias\" bottom: \"data\" top: \"T0\" bias_param { filler { type: \"uniform\" min: -1 max: 1 } } }",
        // The ResNet pattern, BatchNorm, Scale and ReLU on one blob, then Dropout as in
        // AlexNet's fc6. (As in Caffe, ReLU reads the blob after Dropout changed it; that
        // keeps the signs, so the gradient is the same.)
        "layer { name: \"bn\" type: \"BatchNorm\" bottom: \"data\" top: \"T0\" }\n\
         layer { name: \"sc\" type: \"Scale\" bottom: \"T0\" top: \"T1\" scale_param { bias_term: true filler { type: \"uniform\" min: 0.5 max: 2 } bias_filler { type: \"uniform\" min: -1 max: 1 } } }\n\
         layer { name: \"r\" type: \"ReLU\" bottom: \"T1\" top: \"T2\" }\n\
         layer { name: \"d\" type: \"Dropout\" bottom: \"T2\" top: \"T3\" }",
    ];
    for chain in chains {
        let tops = (0..4).filter(|i| chain.contains(&format!("T{i}"))).count();
        let last = format!("T{}", tops - 1);
        let in_place = (0..4).fold(chain.to_string(), |s, i| {
            s.replace(&format!("\"T{i}\""), "\"data\"")
        });
        let a = run_net(chain, &last, &x, &dy);
        let b = run_net(&in_place, "data", &x, &dy);
        assert_eq!(a, b, "in place differs for:\n{chain}");
        // The gradient is not trivially zero.
        assert!(a[1].iter().any(|&d| d != 0.0));
    }
}

#[test]
fn graph_refuses_in_place_use_of_other_layers() {
    let input = "layer { name: \"in\" type: \"Input\" top: \"data\" input_param { shape { dim: 1 dim: 2 dim: 6 dim: 6 } } }\n";
    let err = build_error(&format!("{input}layer {{ name: \"x\" type: \"Convolution\" bottom: \"data\" top: \"data\" convolution_param {{ num_output: 2 kernel_size: 1 }} }}"));
    assert!(
        err.contains(
            "layer `x` (Convolution) cannot run in place: give its top a name other than `data`"
        ),
        "{err}"
    );
    let err = build_error(&format!("{input}layer {{ name: \"p\" type: \"Pooling\" bottom: \"data\" top: \"data\" pooling_param {{ kernel_size: 2 stride: 2 }} }}"));
    assert!(
        err.contains(
            "layer `p` (Pooling) cannot run in place: give its top a name other than `data`"
        ),
        "{err}"
    );
    // Layers that allow it still run in place.
    build(
        &format!("{input}layer {{ name: \"r\" type: \"ReLU\" bottom: \"data\" top: \"data\" }}"),
        Phase::Train,
    )
    .unwrap();
}

// ---------------------------------------------------------------- BatchNorm

/// Per-channel batch mean and biased variance over N and the spatial axes.
fn batch_stats(x: &Blob) -> (Vec<f64>, Vec<f64>, usize) {
    let s = x.shape();
    let c = if s.len() > 1 { s[1] } else { 1 };
    let inner: usize = s.iter().skip(2).product();
    let m = s[0] * inner;
    let value = |n: usize, ch: usize, i: usize| x.data()[(n * c + ch) * inner + i] as f64;
    let cells = |ch: usize| (0..s[0]).flat_map(move |n| (0..inner).map(move |i| (n, ch, i)));
    let mean: Vec<f64> = (0..c)
        .map(|ch| cells(ch).map(|(n, ch, i)| value(n, ch, i)).sum::<f64>() / m as f64)
        .collect();
    let var: Vec<f64> = (0..c)
        .map(|ch| {
            cells(ch)
                .map(|(n, ch, i)| (value(n, ch, i) - mean[ch]).powi(2))
                .sum::<f64>()
                / m as f64
        })
        .collect();
    (mean, var, m)
}

/// (x − μ_c)/√(σ²_c + ε) element-wise.
fn normalize(x: &Blob, mean: &[f64], var: &[f64], eps: f64) -> Vec<f64> {
    let s = x.shape();
    let c = mean.len();
    let inner: usize = s.iter().skip(2).product();
    x.data()
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let ch = (i / inner) % c;
            (v as f64 - mean[ch]) / (var[ch] + eps).sqrt()
        })
        .collect()
}

#[test]
fn batch_norm_train_normalizes_with_batch_statistics() {
    for shape in [
        vec![3, 2, 3, 2],
        vec![1, 3, 2, 5],
        vec![4, 3],
        vec![2, 3, 100, 60],
    ] {
        let mut l = layer("name: \"bn\" type: \"BatchNorm\" batch_norm_param { eps: 0.001 }");
        let mut bottoms = vec![uniform_blob(&shape, -1.0, 3.0, 6)];
        let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 0);
        forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
        let (mean, var, _) = batch_stats(&bottoms[0]);
        let expected = normalize(&bottoms[0], &mean, &var, 1e-3);
        assert_close(tops[0].data(), &expected, 1e-4, 1e-4, "batch norm");
        if bottoms[0].count() < 1000 {
            let n = GradientChecker::new(1e-2, 2e-2)
                .check(l.as_mut(), &mut bottoms, &mut tops, &mut params, &[true])
                .unwrap();
            // Only the bottom is checked: the statistics are not gradients.
            assert_eq!(n, bottoms[0].count());
            assert!(params.iter().all(|p| p.diff().iter().all(|&d| d == 0.0)));
        }
    }
}

#[test]
fn batch_norm_moving_averages_after_two_train_passes() {
    let text = "name: \"bn\" type: \"BatchNorm\" batch_norm_param { moving_average_fraction: 0.9 eps: 0.001 }";
    let mut l = layer(text);
    let shape = [3, 2, 3, 2];
    let x1 = uniform_blob(&shape, -1.0, 3.0, 1);
    let x2 = uniform_blob(&shape, 0.0, 2.0, 2);
    let mut bottoms = vec![x1.clone()];
    let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 0);
    assert!(params.iter().all(|p| p.data().iter().all(|&v| v == 0.0)));
    forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
    bottoms[0] = x2.clone();
    forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
    let (mu1, var1, m) = batch_stats(&x1);
    let (mu2, var2, _) = batch_stats(&x2);
    assert_eq!(m, 18);
    let corr = 18.0 / 17.0;
    let s = 0.9 * (0.9 * 0.0 + 1.0) + 1.0;
    let mean_sum: Vec<f64> = (0..2).map(|c| mu2[c] + 0.9 * mu1[c]).collect();
    let var_sum: Vec<f64> = (0..2)
        .map(|c| corr * var2[c] + 0.9 * corr * var1[c])
        .collect();
    assert_close(params[0].data(), &mean_sum, 1e-5, 1e-6, "running mean");
    assert_close(params[1].data(), &var_sum, 1e-5, 1e-6, "running variance");
    assert_close(params[2].data(), &[s], 1e-6, 0.0, "running scale");

    // TEST (use_global_stats by default) normalizes with m/s and v/s and leaves them alone.
    let mut test = layer_in(text, Phase::Test);
    let mut tb = vec![uniform_blob(&shape, -1.0, 1.0, 3)];
    let (mut tt, _) = setup(test.as_mut(), &tb, 0);
    let stored: Vec<Vec<f32>> = params.iter().map(|p| p.data().to_vec()).collect();
    run_forward(test.as_mut(), &mut tb, &mut tt, &mut params, Phase::Test, 0);
    let mean: Vec<f64> = mean_sum.iter().map(|v| v / s).collect();
    let var: Vec<f64> = var_sum.iter().map(|v| v / s).collect();
    assert_close(
        tt[0].data(),
        &normalize(&tb[0], &mean, &var, 1e-3),
        1e-4,
        1e-5,
        "TEST",
    );
    let after: Vec<Vec<f32>> = params.iter().map(|p| p.data().to_vec()).collect();
    assert_eq!(stored, after);
    // The global-statistics backward is a pure scaling by 1/√(v/s + ε).
    GradientChecker {
        phase: Phase::Test,
        ..GradientChecker::default()
    }
    .check(test.as_mut(), &mut tb, &mut tt, &mut params, &[true])
    .unwrap();

    // use_global_stats: true in TRAIN reads the same statistics.
    let mut global = layer(
        "name: \"bn\" type: \"BatchNorm\" batch_norm_param { use_global_stats: true eps: 0.001 }",
    );
    let (mut gt, _) = setup(global.as_mut(), &tb, 0);
    forward(global.as_mut(), &mut tb, &mut gt, &mut params);
    assert_close(
        gt[0].data(),
        &normalize(&tb[0], &mean, &var, 1e-3),
        1e-4,
        1e-5,
        "global",
    );
}

#[test]
fn batch_norm_zero_scale_factor_reads_as_zero_statistics() {
    let mut l = layer_in(
        "name: \"bn\" type: \"BatchNorm\" batch_norm_param { eps: 0.01 }",
        Phase::Test,
    );
    let mut bottoms = vec![uniform_blob(&[2, 2, 2, 2], -1.0, 1.0, 3)];
    let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 0);
    params[0].data_mut().fill(5.0);
    params[1].data_mut().fill(5.0);
    run_forward(
        l.as_mut(),
        &mut bottoms,
        &mut tops,
        &mut params,
        Phase::Test,
        0,
    );
    let expected: Vec<f64> = bottoms[0]
        .data()
        .iter()
        .map(|&x| x as f64 / 0.01f64.sqrt())
        .collect();
    assert_close(tops[0].data(), &expected, 1e-5, 1e-6, "zero scale factor");
}

#[test]
fn batch_norm_blobs_default_to_no_learning() {
    let text = "layer { name: \"in\" type: \"Input\" top: \"data\" input_param { shape { dim: 2 dim: 3 dim: 2 dim: 2 } } }\n\
                layer { name: \"bn\" type: \"BatchNorm\" bottom: \"data\" top: \"data\" }\n\
                layer { name: \"sc\" type: \"Scale\" bottom: \"data\" top: \"data\" param { lr_mult: 2 } }";
    let graph = build(text, Phase::Train).unwrap();
    let bn = &graph.nodes[graph.node("bn").unwrap()];
    assert_eq!(bn.param_specs.len(), 3);
    assert!(bn
        .param_specs
        .iter()
        .all(|s| s.lr_mult == 0.0 && s.decay_mult == 0.0));
    let net = Net::new(graph, 0).unwrap();
    let mults: Vec<(String, f32, f32)> = net
        .learnables
        .iter()
        .map(|l| (l.name.clone(), l.lr_mult, l.decay_mult))
        .collect();
    assert_eq!(
        mults,
        vec![
            ("bn.0".to_string(), 0.0, 0.0),
            ("bn.1".to_string(), 0.0, 0.0),
            ("bn.2".to_string(), 0.0, 0.0),
            ("sc.0".to_string(), 2.0, 1.0),
        ]
    );
}

// ---------------------------------------------------------------- Scale and Bias

/// Naive y = γ[g(n,c,h,w)]·x + β[g(...)] over an N×C×H×W blob.
fn naive_affine(
    x: &Blob,
    gamma: &[f32],
    beta: Option<&[f32]>,
    g: impl Fn(usize, usize, usize, usize) -> usize,
) -> Vec<f64> {
    let s = x.shape();
    let mut y = vec![0.0; x.count()];
    for n in 0..s[0] {
        for c in 0..s[1] {
            for h in 0..s[2] {
                for w in 0..s[3] {
                    let i = at(s, n, c, h, w);
                    let k = g(n, c, h, w);
                    y[i] = gamma[k] as f64 * x.data()[i] as f64 + beta.map_or(0.0, |b| b[k] as f64);
                }
            }
        }
    }
    y
}

type Index = fn(usize, usize, usize, usize) -> usize;

#[test]
fn scale_with_learned_operand() {
    let cases: [(&str, [usize; 4], Index); 4] = [
        ("bias_term: true", [2, 3, 4, 5], |_, c, _, _| c),
        ("axis: 1 num_axes: 2", [1, 3, 2, 5], |_, c, h, _| c * 2 + h),
        ("num_axes: 0 bias_term: true", [2, 2, 3, 1], |_, _, _, _| 0),
        (
            "axis: -2 num_axes: -1 bias_term: true",
            [2, 2, 3, 2],
            |_, _, h, w| h * 2 + w,
        ),
    ];
    for (spec, shape, g) in cases {
        let mut l = layer(&format!(
            "name: \"s\" type: \"Scale\" scale_param {{ {spec} filler {{ type: \"uniform\" min: -2 max: 2 }} bias_filler {{ type: \"gaussian\" std: 1 }} }}"
        ));
        let mut bottoms = vec![uniform_blob(&shape, -1.0, 1.0, 5)];
        let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 3);
        forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
        let expected = naive_affine(
            &bottoms[0],
            params[0].data(),
            params.get(1).map(|b| b.data()),
            g,
        );
        assert_close(tops[0].data(), &expected, 1e-5, 1e-6, spec);
        GradientChecker::default()
            .check(l.as_mut(), &mut bottoms, &mut tops, &mut params, &[true])
            .unwrap();
    }
}

#[test]
fn scale_default_gamma_is_one_and_large_blobs_run_in_parallel() {
    let mut l = layer("name: \"s\" type: \"Scale\" scale_param { bias_term: true }");
    let mut bottoms = vec![uniform_blob(&[2, 3, 100, 60], -1.0, 1.0, 5)];
    let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 3);
    assert_eq!(params[0].data(), &[1.0, 1.0, 1.0]);
    assert_eq!(params[1].data(), &[0.0, 0.0, 0.0]);
    params[0].data_mut().copy_from_slice(&[0.5, -2.0, 3.0]);
    params[1].data_mut().copy_from_slice(&[1.0, 0.0, -1.0]);
    forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
    let expected = naive_affine(
        &bottoms[0],
        params[0].data(),
        Some(params[1].data()),
        |_, c, _, _| c,
    );
    assert_close(tops[0].data(), &expected, 1e-6, 1e-6, "scale");
    // dβ_c = Σ dy and dγ_c = Σ dy·x over 12000 values each.
    let dy = uniform_blob(tops[0].shape(), -1.0, 1.0, 6);
    tops[0].diff_mut().copy_from_slice(dy.data());
    run_backward(
        l.as_mut(),
        &mut bottoms,
        &mut tops,
        &mut params,
        &[true],
        Phase::Train,
    );
    let (mut dg, mut db) = (vec![0.0f64; 3], vec![0.0f64; 3]);
    for (i, (&g, &x)) in dy.data().iter().zip(bottoms[0].data()).enumerate() {
        let c = (i / 6000) % 3;
        dg[c] += g as f64 * x as f64;
        db[c] += g as f64;
    }
    assert_close(params[0].diff(), &dg, 1e-4, 1e-3, "dgamma");
    assert_close(params[1].diff(), &db, 1e-4, 1e-3, "dbeta");
}

#[test]
fn scale_and_bias_with_a_second_bottom() {
    // (spec, operand shape, operand index per element)
    let cases: [(&str, Vec<usize>, Index); 3] = [
        ("axis: 1", vec![3], |_, c, _, _| c),
        ("axis: 2", vec![4, 2], |_, _, h, w| h * 2 + w),
        ("axis: 0", vec![2, 3], |n, c, _, _| n * 3 + c),
    ];
    for ty in ["Scale", "Bias"] {
        for (spec, operand, g) in &cases {
            let block = if ty == "Scale" {
                "scale_param"
            } else {
                "bias_param"
            };
            let extra = if ty == "Scale" { "bias_term: true" } else { "" };
            let mut l = layer(&format!(
                "name: \"s\" type: \"{ty}\" bottom: \"x\" bottom: \"g\" {block} {{ {spec} {extra} }}"
            ));
            let mut bottoms = vec![
                uniform_blob(&[2, 3, 4, 2], -1.0, 1.0, 7),
                uniform_blob(operand, -2.0, 2.0, 8),
            ];
            let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 0);
            if ty == "Scale" {
                params[0] = uniform_blob(params[0].shape(), -1.0, 1.0, 9);
            }
            forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
            let ones = vec![1.0f32; bottoms[1].count()];
            let expected = if ty == "Scale" {
                naive_affine(&bottoms[0], bottoms[1].data(), Some(params[0].data()), g)
            } else {
                naive_affine(&bottoms[0], &ones, Some(bottoms[1].data()), g)
            };
            assert_close(tops[0].data(), &expected, 1e-5, 1e-6, spec);
            GradientChecker::default()
                .check(
                    l.as_mut(),
                    &mut bottoms,
                    &mut tops,
                    &mut params,
                    &[true, true],
                )
                .unwrap();
        }
    }
}

#[test]
fn bias_with_learned_operand() {
    let cases: [(&str, [usize; 4], Index); 3] = [
        ("", [2, 3, 4, 5], |_, c, _, _| c),
        ("axis: 2 num_axes: 2", [1, 2, 3, 4], |_, _, h, w| h * 4 + w),
        ("num_axes: 0", [2, 1, 2, 3], |_, _, _, _| 0),
    ];
    for (spec, shape, g) in cases {
        let mut l = layer(&format!(
            "name: \"b\" type: \"Bias\" bias_param {{ {spec} filler {{ type: \"uniform\" min: -1 max: 1 }} }}"
        ));
        let mut bottoms = vec![uniform_blob(&shape, -1.0, 1.0, 5)];
        let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 4);
        forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
        let ones = vec![1.0f32; params[0].count()];
        let expected = naive_affine(&bottoms[0], &ones, Some(params[0].data()), g);
        assert_close(tops[0].data(), &expected, 1e-6, 1e-6, spec);
        GradientChecker::default()
            .check(l.as_mut(), &mut bottoms, &mut tops, &mut params, &[true])
            .unwrap();
    }
}
