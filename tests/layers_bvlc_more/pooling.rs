//! SPP and Im2col against naive loops written from their definitions.

use super::layer_error;
use netrun::testing::{assert_close, forward, layer, setup, uniform_blob, GradientChecker};

/// One pyramid level of one H x W plane, Caffe's pooling rules written out:
/// k = ⌈H/b⌉, stride k, pad ⌈(k·b − H)/2⌉, CEIL output count, windows clipped.
fn level(x: &[f32], h: usize, w: usize, bins: usize, max: bool) -> Vec<f64> {
    let geom = |len: usize| {
        let k = len.div_ceil(bins);
        let p = (k * bins - len).div_ceil(2);
        let mut out = (len + 2 * p - k).div_ceil(k) + 1;
        if p > 0 && (out - 1) * k >= len + p {
            out -= 1;
        }
        (k, p, out)
    };
    let ((kh, ph, oh), (kw, pw, ow)) = (geom(h), geom(w));
    let mut y = Vec::new();
    for i in 0..oh {
        for j in 0..ow {
            let (h0, w0) = (
                (i * kh) as isize - ph as isize,
                (j * kw) as isize - pw as isize,
            );
            let h1 = (h0 + kh as isize).min((h + ph) as isize);
            let w1 = (w0 + kw as isize).min((w + pw) as isize);
            let size = ((h1 - h0) * (w1 - w0)) as f64;
            let mut vals = Vec::new();
            for r in h0.max(0)..h1.min(h as isize) {
                for c in w0.max(0)..w1.min(w as isize) {
                    vals.push(x[r as usize * w + c as usize] as f64);
                }
            }
            y.push(if max {
                vals.iter().cloned().fold(f64::NEG_INFINITY, f64::max)
            } else {
                vals.iter().sum::<f64>() / size
            });
        }
    }
    y
}

#[test]
fn spp_concatenates_the_pooled_levels() {
    for (shape, height, pool) in [
        ([2, 3, 7, 6], 3, "MAX"),
        ([1, 2, 9, 9], 2, "AVE"),
        ([2, 2, 5, 6], 1, "MAX"),
    ] {
        let spec = format!(
            "name: \"s\" type: \"SPP\" bottom: \"x\" top: \"y\" spp_param {{ pyramid_height: {height} pool: {pool} }}"
        );
        let mut l = layer(&spec);
        // Distinct values 0.01 apart, in scrambled order: no near-ties for MAX to flip
        // between under the checker's step.
        let count: usize = shape.iter().product();
        let values = (0..count)
            .map(|i| ((i * 7919) % count) as f32 * 0.01 - 1.0)
            .collect();
        let mut bottoms = vec![netrun::blob::Blob::from_data(&shape, values)];
        let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 0);
        forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
        let [n, c, h, w] = shape;
        let mut want = Vec::new();
        for s in 0..n {
            for lv in 0..height {
                for ch in 0..c {
                    let at = (s * c + ch) * h * w;
                    want.extend(level(
                        &bottoms[0].data()[at..at + h * w],
                        h,
                        w,
                        1 << lv,
                        pool == "MAX",
                    ));
                }
            }
        }
        let per: usize = want.len() / n;
        let expect_shape = if height == 1 {
            vec![n, c, 1, 1]
        } else {
            vec![n, per]
        };
        assert_eq!(tops[0].shape(), &expect_shape[..], "{spec}");
        assert_close(tops[0].data(), &want, 1e-6, 1e-6, &spec);
        GradientChecker::new(1e-3, 1e-2)
            .check(l.as_mut(), &mut bottoms, &mut tops, &mut params, &[true])
            .unwrap_or_else(|e| panic!("{spec}: {e}"));
    }
    // 4 bins across 5 columns: kernel 2 would need pad 2, which Caffe's Pooling refuses too.
    let e = layer_error(
        "name: \"s\" type: \"SPP\" bottom: \"x\" top: \"y\" spp_param { pyramid_height: 3 }",
    );
    assert!(
        e.contains("level 2 (4 bins) does not fit the 4x5 input"),
        "{e}"
    );
    let e = layer_error("name: \"s\" type: \"SPP\" bottom: \"x\" top: \"y\" spp_param { pool: STOCHASTIC pyramid_height: 2 }");
    assert!(
        e.contains("STOCHASTIC pooling is not supported in SPP"),
        "{e}"
    );
}

#[test]
fn im2col_lays_out_every_window_and_col2im_sums_back() {
    for (conv, k, s, p, d) in [
        ("kernel_size: 3", [3, 3], [1, 1], [0, 0], [1, 1]),
        (
            "kernel_h: 2 kernel_w: 3 stride: 2 pad: 1",
            [2, 3],
            [2, 2],
            [1, 1],
            [1, 1],
        ),
        (
            "kernel_size: 2 dilation: 2 pad_h: 1 pad_w: 0 stride_h: 1 stride_w: 2",
            [2, 2],
            [1, 2],
            [1, 0],
            [2, 2],
        ),
    ] {
        let spec = format!(
            "name: \"i\" type: \"Im2col\" bottom: \"x\" top: \"y\" convolution_param {{ {conv} }}"
        );
        let mut l = layer(&spec);
        let (n, c, h, w) = (2, 2, 5, 6);
        let mut bottoms = vec![uniform_blob(&[n, c, h, w], -1.0, 1.0, 12)];
        let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 0);
        let ho = (h + 2 * p[0] - d[0] * (k[0] - 1) - 1) / s[0] + 1;
        let wo = (w + 2 * p[1] - d[1] * (k[1] - 1) - 1) / s[1] + 1;
        assert_eq!(tops[0].shape(), &[n, c * k[0] * k[1], ho, wo], "{spec}");
        forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
        let x = bottoms[0].data();
        let mut want = Vec::new();
        for b in 0..n {
            for ch in 0..c {
                for i in 0..k[0] {
                    for j in 0..k[1] {
                        for oy in 0..ho {
                            for ox in 0..wo {
                                let r = (oy * s[0] + i * d[0]) as isize - p[0] as isize;
                                let q = (ox * s[1] + j * d[1]) as isize - p[1] as isize;
                                let inside =
                                    r >= 0 && q >= 0 && (r as usize) < h && (q as usize) < w;
                                want.push(if inside {
                                    x[((b * c + ch) * h + r as usize) * w + q as usize] as f64
                                } else {
                                    0.0
                                });
                            }
                        }
                    }
                }
            }
        }
        assert_close(tops[0].data(), &want, 0.0, 0.0, &spec);
        GradientChecker::default()
            .check(l.as_mut(), &mut bottoms, &mut tops, &mut params, &[true])
            .unwrap_or_else(|e| panic!("{spec}: {e}"));
    }
    let e = layer_error(
        "name: \"i\" type: \"Im2col\" bottom: \"x\" top: \"y\" convolution_param { stride: 1 }",
    );
    assert!(e.contains("kernel_size"), "{e}");
    let e = layer_error("name: \"i\" type: \"Im2col\" bottom: \"x\" top: \"y\" convolution_param { kernel_size: 6 }");
    assert!(e.contains("does not fit the 4x5 input"), "{e}");
}
