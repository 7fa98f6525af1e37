//! Convolution references shared by the convolution tests: direct loops for
//! the forward pass and both gradients, and the cases built on them.

use netrun::blob::Blob;
use netrun::layers::Layer;
use netrun::testing::{
    assert_close, backward, forward, layer, setup, uniform_blob, GradientChecker,
};

/// The input row (column) that output row (column) `i` reads at tap `a`:
/// i·s + a·d − p, when inside 0..len.
fn input_at(i: usize, a: usize, s: usize, d: usize, p: usize, len: usize) -> Option<usize> {
    (i * s + a * d).checked_sub(p).filter(|&v| v < len)
}

/// Direct convolution: y[n,o,i,j] = b[o] + Σ_{c∈group(o),a,b} W[o,c,a,b]·x[n,c,i·s−p+a·d, j·s−p+b·d].
#[allow(clippy::too_many_arguments)]
pub fn naive_conv(
    x: &Blob,
    w: &Blob,
    b: Option<&Blob>,
    group: usize,
    stride: [usize; 2],
    pad: [usize; 2],
    dil: [usize; 2],
    out: [usize; 2],
) -> Vec<f64> {
    use ndarray::Ix4;
    let (n, h, wd) = (x.dim(0), x.dim(2), x.dim(3));
    let (o, cg, kh, kw) = (w.dim(0), w.dim(1), w.dim(2), w.dim(3));
    let xv = x.data_view().into_dimensionality::<Ix4>().unwrap();
    let wv = w.data_view().into_dimensionality::<Ix4>().unwrap();
    let og = o / group;
    let mut y = ndarray::Array4::<f64>::zeros((n, o, out[0], out[1]));
    for ((ni, oi, i, j), yv) in y.indexed_iter_mut() {
        let g = oi / og;
        let mut acc = b.map_or(0.0, |b| b.data()[oi] as f64);
        for ci in 0..cg {
            for a in 0..kh {
                for bb in 0..kw {
                    let (Some(yy), Some(xx)) = (
                        input_at(i, a, stride[0], dil[0], pad[0], h),
                        input_at(j, bb, stride[1], dil[1], pad[1], wd),
                    ) else {
                        continue;
                    };
                    let xval = xv[[ni, g * cg + ci, yy, xx]] as f64;
                    acc += wv[[oi, ci, a, bb]] as f64 * xval;
                }
            }
        }
        *yv = acc;
    }
    y.into_raw_vec_and_offset().0
}

/// A convolution layer from `spec` with Gaussian weights and uniform bias, run
/// forward on uniform x of `x_shape` and checked against the direct loops.
fn forward_against_naive(spec: &str, x_shape: &[usize], geo: Geometry) -> ConvRun {
    let text = format!(
        "name: \"c\" type: \"Convolution\" convolution_param {{ {spec} weight_filler {{ type: \"gaussian\" std: 0.5 }} bias_filler {{ type: \"uniform\" min: -1 max: 1 }} }}"
    );
    let mut l = layer(&text);
    let mut bottoms = vec![uniform_blob(x_shape, -1.0, 1.0, 3)];
    let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 11);
    forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
    let out = [tops[0].dim(2), tops[0].dim(3)];
    let (group, stride, pad, dil) = geo;
    let expected = naive_conv(
        &bottoms[0],
        &params[0],
        params.get(1),
        group,
        stride,
        pad,
        dil,
        out,
    );
    close_to_scale(tops[0].data(), &expected, 1e-4, "conv forward");
    (l, bottoms, tops, params)
}

/// The layer, bottoms, tops and params of a convolution after its forward pass.
type ConvRun = (Box<dyn Layer>, Vec<Blob>, Vec<Blob>, Vec<Blob>);

pub fn conv_case(
    spec: &str,
    x_shape: &[usize],
    group: usize,
    stride: [usize; 2],
    pad: [usize; 2],
    dil: [usize; 2],
) {
    let (mut l, mut bottoms, mut tops, mut params) =
        forward_against_naive(spec, x_shape, (group, stride, pad, dil));
    let n = GradientChecker::default()
        .check(l.as_mut(), &mut bottoms, &mut tops, &mut params, &[true])
        .unwrap();
    assert!(n > 0);
}

/// [`conv_case`] of a 3-output 3×3 layer at stride 1 for each (pad, input shape).
pub fn three_by_three_cases(cases: &[(usize, [usize; 4])]) {
    for &(pad, shape) in cases {
        let spec = format!("num_output: 3 kernel_size: 3 pad: {pad}");
        conv_case(&spec, &shape, 1, [1, 1], [pad, pad], [1, 1]);
    }
}

/// Geometry of a naive convolution in the test: (group, stride, pad, dilation).
pub type Geometry = (usize, [usize; 2], [usize; 2], [usize; 2]);

/// The direct loops of the gradients for top diff dy:
///   dx[n,c,y,x] = Σ W[o,c,a,b]·dy[n,o,i,j] over y = i·s − p + a·d, x = j·s − p + b·d,
///   dW[o,c,a,b] = Σ_n,i,j dy[n,o,i,j]·x[n,c,i·s − p + a·d, j·s − p + b·d].
pub fn naive_conv_backward(x: &Blob, w: &Blob, dy: &Blob, geo: Geometry) -> (Vec<f64>, Vec<f64>) {
    let (group, stride, pad, dil) = geo;
    let (n, c, h, wd) = (x.dim(0), x.dim(1), x.dim(2), x.dim(3));
    let (o, cg, kh, kw) = (w.dim(0), w.dim(1), w.dim(2), w.dim(3));
    let (ho, wo) = (dy.dim(2), dy.dim(3));
    let og = o / group;
    let mut dx = vec![0.0; x.count()];
    let mut dw = vec![0.0; w.count()];
    for ni in 0..n {
        for oi in 0..o {
            let g = oi / og;
            for i in 0..ho {
                for j in 0..wo {
                    let d = dy.diff()[((ni * o + oi) * ho + i) * wo + j] as f64;
                    for ci in 0..cg {
                        let cin = g * cg + ci;
                        for a in 0..kh {
                            for bb in 0..kw {
                                let (Some(yy), Some(xx)) = (
                                    input_at(i, a, stride[0], dil[0], pad[0], h),
                                    input_at(j, bb, stride[1], dil[1], pad[1], wd),
                                ) else {
                                    continue;
                                };
                                let xi = ((ni * c + cin) * h + yy) * wd + xx;
                                let wi = ((oi * cg + ci) * kh + a) * kw + bb;
                                dx[xi] += w.data()[wi] as f64 * d;
                                dw[wi] += x.data()[xi] as f64 * d;
                            }
                        }
                    }
                }
            }
        }
    }
    (dx, dw)
}

/// Forward and backward of a convolution against the direct loops, for shapes
/// too big for the numerical gradient checker.
pub fn conv_check_against_naive(spec: &str, x_shape: &[usize], geo: Geometry) {
    let (mut l, mut bottoms, mut tops, mut params) = forward_against_naive(spec, x_shape, geo);
    let dy = uniform_blob(tops[0].shape(), -1.0, 1.0, 5);
    tops[0].diff_mut().copy_from_slice(dy.data());
    params.iter_mut().for_each(Blob::zero_diff);
    backward(l.as_mut(), &mut bottoms, &mut tops, &mut params, &[true]);
    let (dx, dw) = naive_conv_backward(&bottoms[0], &params[0], &tops[0], geo);
    close_to_scale(bottoms[0].diff(), &dx, 1e-4, "conv dx");
    close_to_scale(params[0].diff(), &dw, 1e-3, "conv dW");
}

/// Each element within 1e-4 relative, or within an absolute error of `atol`
/// or 1e-5 of the largest |expected|, whichever is larger. An element near
/// zero sums terms as large as the others, so its f32 rounding (larger in
/// Winograd's F(4×4, 5×5), whose transforms scale terms by up to 21) follows
/// the scale of the whole output, not its own value.
fn close_to_scale(actual: &[f32], expected: &[f64], atol: f64, what: &str) {
    let scale = expected.iter().fold(0.0f64, |a, &e| a.max(e.abs()));
    assert_close(actual, expected, 1e-4, atol.max(1e-5 * scale), what);
}
