//! Deconvolution against a naive scatter loop in float64, and the gradient checker.

use super::layer_error;
use netrun::blob::Blob;
use netrun::testing::{assert_close, forward, layer, setup, uniform_blob, GradientChecker};

/// (kernel, stride, pad, dilation) per axis.
type Geo = [[usize; 2]; 4];

/// Every input value x[n,c,h,w] adds x·W[c, o_local, i, j] to y[n, o, h·s − p + i·d, w·s − p + j·d]
/// for the outputs o of c's group; then the bias.
fn naive_deconv(
    x: &Blob,
    w: &Blob,
    bias: Option<&Blob>,
    o: usize,
    g: usize,
    geo: Geo,
    out: [usize; 2],
) -> Vec<f64> {
    let [k, s, p, d] = geo;
    let (n, c, h, wd) = (x.dim(0), x.dim(1), x.dim(2), x.dim(3));
    let (og, cg) = (o / g, c / g);
    let mut y = vec![0.0f64; n * o * out[0] * out[1]];
    for ni in 0..n {
        for ci in 0..c {
            let grp = ci / cg;
            for hi in 0..h {
                for wi in 0..wd {
                    let xv = x.data()[((ni * c + ci) * h + hi) * wd + wi] as f64;
                    for ol in 0..og {
                        for i in 0..k[0] {
                            for j in 0..k[1] {
                                let yo = (hi * s[0] + i * d[0]) as isize - p[0] as isize;
                                let xo = (wi * s[1] + j * d[1]) as isize - p[1] as isize;
                                if yo < 0
                                    || xo < 0
                                    || yo as usize >= out[0]
                                    || xo as usize >= out[1]
                                {
                                    continue;
                                }
                                let wv = w.data()[((ci * og + ol) * k[0] + i) * k[1] + j] as f64;
                                let oc = grp * og + ol;
                                y[((ni * o + oc) * out[0] + yo as usize) * out[1] + xo as usize] +=
                                    xv * wv;
                            }
                        }
                    }
                }
            }
        }
    }
    if let Some(b) = bias {
        let plane = out[0] * out[1];
        for (q, v) in y.iter_mut().enumerate() {
            *v += b.data()[(q / plane) % o] as f64;
        }
    }
    y
}

#[test]
fn deconvolution_matches_naive_scatter_and_gradient() {
    // (bottom shape, num_output, group, geometry text, geometry)
    let cases: [([usize; 4], usize, usize, &str, Geo); 6] = [
        (
            [2, 4, 3, 3],
            6,
            2,
            "kernel_size: 3 stride: 2 pad: 1",
            [[3, 3], [2, 2], [1, 1], [1, 1]],
        ),
        (
            [2, 2, 3, 4],
            3,
            1,
            "kernel_size: 2 stride: 1",
            [[2, 2], [1, 1], [0, 0], [1, 1]],
        ),
        (
            [1, 3, 4, 3],
            2,
            1,
            "kernel_size: 3 dilation: 2 pad: 2",
            [[3, 3], [1, 1], [2, 2], [2, 2]],
        ),
        (
            [2, 3, 2, 3],
            4,
            1,
            "kernel_size: 1",
            [[1, 1], [1, 1], [0, 0], [1, 1]],
        ),
        (
            [1, 2, 3, 2],
            2,
            1,
            "kernel_h: 2 kernel_w: 3 stride_h: 2 stride_w: 1 pad_h: 0 pad_w: 1",
            [[2, 3], [2, 1], [0, 1], [1, 1]],
        ),
        (
            [3, 2, 2, 2],
            4,
            2,
            "kernel_size: 4 stride: 2 pad: 1 bias_term: false",
            [[4, 4], [2, 2], [1, 1], [1, 1]],
        ),
    ];
    for (shape, o, g, text, geo) in cases {
        let spec = format!(
            "name: \"up\" type: \"Deconvolution\" bottom: \"x\" top: \"y\" convolution_param {{ \
             num_output: {o} group: {g} {text} weight_filler {{ type: \"gaussian\" std: 0.5 }} \
             bias_filler {{ type: \"uniform\" min: -1 max: 1 }} }}"
        );
        let mut l = layer(&spec);
        let mut bottoms = vec![uniform_blob(&shape, -1.0, 1.0, 11)];
        let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 3);
        let [k, s, p, d] = geo;
        let out: Vec<usize> = (0..2)
            .map(|a| s[a] * (shape[2 + a] - 1) + d[a] * (k[a] - 1) + 1 - 2 * p[a])
            .collect();
        assert_eq!(tops[0].shape(), [shape[0], o, out[0], out[1]], "{spec}");
        assert_eq!(params[0].shape(), [shape[1], o / g, k[0], k[1]], "{spec}");
        assert_eq!(params.len(), if text.contains("bias_term") { 1 } else { 2 });
        forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
        let want = naive_deconv(
            &bottoms[0],
            &params[0],
            params.get(1),
            o,
            g,
            geo,
            [out[0], out[1]],
        );
        assert_close(tops[0].data(), &want, 1e-5, 1e-5, &spec);
        GradientChecker::default()
            .check(l.as_mut(), &mut bottoms, &mut tops, &mut params, &[true])
            .unwrap_or_else(|e| panic!("{spec}: {e}"));
    }
}

#[test]
fn deconvolution_reports_bad_settings() {
    let e = layer_error("name: \"up\" type: \"Deconvolution\" bottom: \"x\" top: \"y\" convolution_param { kernel_size: 2 }");
    assert!(
        e.contains("needs `convolution_param { num_output: ... }`"),
        "{e}"
    );
    let e = layer_error(
        "name: \"up\" type: \"Deconvolution\" bottom: \"x\" top: \"y\" convolution_param { num_output: 4 group: 2 kernel_size: 2 }",
    );
    assert!(e.contains("3 channels are not divisible by group 2"), "{e}");
    // 1x1 input, kernel 1, pad 1: 1 − 2 < 1.
    let e = super::common::build_error(
        "layer { name: \"in\" type: \"Input\" top: \"x\" input_param { shape { dim: 1 dim: 2 dim: 1 dim: 1 } } }\n\
         layer { name: \"up\" type: \"Deconvolution\" bottom: \"x\" top: \"y\" convolution_param { num_output: 2 kernel_size: 1 pad: 1 } }",
    );
    assert!(e.contains("removes the whole"), "{e}");
}
