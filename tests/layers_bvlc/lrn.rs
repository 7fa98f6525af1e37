//! LRN in both norm regions against a naive float64 loop.

use super::layer_error;
use netrun::blob::Blob;
use netrun::testing::{assert_close, forward, layer, setup, uniform_blob, GradientChecker};

/// Caffe's LRN written from its definition: the sum of squares over the window
/// (channels c−r..c+r, or the n×n square divided as an average pool over padded
/// windows: always n² terms), then y = x·(k + α·mean)^(−β).
fn naive_lrn(x: &Blob, n: usize, alpha: f64, beta: f64, k: f64, within: bool) -> Vec<f64> {
    let s = x.shape();
    let (nn, c, h, w) = (s[0], s[1], s[2], s[3]);
    let r = (n - 1) / 2;
    let at =
        |i: usize, ch: usize, y: usize, xx: usize| x.data()[((i * c + ch) * h + y) * w + xx] as f64;
    let mut out = Vec::new();
    for i in 0..nn {
        for ch in 0..c {
            for y in 0..h {
                for xx in 0..w {
                    let mut sum = 0.0;
                    let scale = if within {
                        for yy in y as isize - r as isize..=(y + r) as isize {
                            for xw in xx as isize - r as isize..=(xx + r) as isize {
                                if yy >= 0 && xw >= 0 && (yy as usize) < h && (xw as usize) < w {
                                    sum += at(i, ch, yy as usize, xw as usize).powi(2);
                                }
                            }
                        }
                        1.0 + alpha * sum / (n * n) as f64
                    } else {
                        for cc in ch as isize - r as isize..=(ch + r) as isize {
                            if cc >= 0 && (cc as usize) < c {
                                sum += at(i, cc as usize, y, xx).powi(2);
                            }
                        }
                        k + alpha * sum / n as f64
                    };
                    out.push(at(i, ch, y, xx) * scale.powf(-beta));
                }
            }
        }
    }
    out
}

#[test]
fn lrn_across_channels_matches_naive_loop_and_gradient() {
    for (n, alpha, beta, k, shape) in [
        (5, 1.0, 0.75, 1.0, [2, 7, 3, 3]),
        (3, 2.5, 0.6, 2.0, [2, 4, 2, 3]),
        (1, 0.8, 0.5, 1.5, [1, 3, 2, 2]),
        (9, 1.5, 0.75, 1.0, [1, 3, 2, 2]), // window wider than the channels
    ] {
        let spec = format!(
            "name: \"n\" type: \"LRN\" bottom: \"x\" top: \"y\" \
             lrn_param {{ local_size: {n} alpha: {alpha} beta: {beta} k: {k} }}"
        );
        let mut l = layer(&spec);
        let mut bottoms = vec![uniform_blob(&shape, -2.0, 2.0, 5)];
        let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 0);
        forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
        let want = naive_lrn(&bottoms[0], n, alpha, beta, k, false);
        assert_close(tops[0].data(), &want, 1e-5, 1e-6, &spec);
        GradientChecker::default()
            .check(l.as_mut(), &mut bottoms, &mut tops, &mut params, &[true])
            .unwrap_or_else(|e| panic!("{spec}: {e}"));
    }
}

#[test]
fn lrn_within_channel_matches_naive_loop_and_gradient() {
    // `k` is not used by WITHIN_CHANNEL (Caffe's shift is 1): 7 must change nothing.
    for (n, alpha, beta, shape) in [(3, 1.0, 0.75, [2, 2, 5, 4]), (5, 3.0, 0.9, [1, 2, 3, 6])] {
        let spec = format!(
            "name: \"n\" type: \"LRN\" bottom: \"x\" top: \"y\" \
             lrn_param {{ local_size: {n} alpha: {alpha} beta: {beta} k: 7 norm_region: WITHIN_CHANNEL }}"
        );
        let mut l = layer(&spec);
        let mut bottoms = vec![uniform_blob(&shape, -2.0, 2.0, 6)];
        let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 0);
        forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
        let want = naive_lrn(&bottoms[0], n, alpha, beta, 1.0, true);
        assert_close(tops[0].data(), &want, 1e-5, 1e-6, &spec);
        GradientChecker::default()
            .check(l.as_mut(), &mut bottoms, &mut tops, &mut params, &[true])
            .unwrap_or_else(|e| panic!("{spec}: {e}"));
    }
}

#[test]
fn lrn_alexnet_values_by_hand() {
    // One position, 3 channels, local_size 3, α = 3, β = 1, k = 1:
    // s_0 = 1 + (1 + 4)·3/3 = 6, s_1 = 1 + (1 + 4 + 9) = 15, s_2 = 1 + (4 + 9) = 14.
    let mut l = layer(
        "name: \"n\" type: \"LRN\" bottom: \"x\" top: \"y\" lrn_param { local_size: 3 alpha: 3 beta: 1 }",
    );
    let mut bottoms = vec![Blob::from_data(&[1, 3, 1, 1], vec![1.0, 2.0, 3.0])];
    let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 0);
    forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
    assert_close(
        tops[0].data(),
        &[1.0 / 6.0, 2.0 / 15.0, 3.0 / 14.0],
        1e-6,
        0.0,
        "by hand",
    );
}

#[test]
fn lrn_rejects_even_sizes_and_flat_bottoms() {
    let e = layer_error(
        "name: \"n\" type: \"LRN\" bottom: \"x\" top: \"y\" lrn_param { local_size: 4 }",
    );
    assert!(e.contains("local_size 4 is even"), "{e}");
    assert!(e.contains("use 3 or 5"), "{e}");
    let e = super::common::build_error(
        "layer { name: \"in\" type: \"Input\" top: \"x\" input_param { shape { dim: 2 dim: 3 } } }\n\
         layer { name: \"n\" type: \"LRN\" bottom: \"x\" top: \"y\" }",
    );
    assert!(e.contains("needs an NxCxHxW bottom, got 2x3"), "{e}");
}
