//! Forward against naive loops and gradient checks for the core layers.

mod common;

use common::conv::{conv_case, conv_check_against_naive};
use netrun::blob::Blob;
use netrun::testing::{assert_close, forward, layer, setup, uniform_blob, GradientChecker};

#[test]
fn convolution_stride_pad_nonsquare() {
    conv_case(
        "num_output: 3 kernel_size: 3 stride: 2 pad: 1",
        &[2, 2, 7, 5],
        1,
        [2, 2],
        [1, 1],
        [1, 1],
    );
}

#[test]
fn convolution_groups_batch_one() {
    conv_case(
        "num_output: 4 kernel_h: 2 kernel_w: 3 group: 2",
        &[1, 4, 5, 6],
        2,
        [1, 1],
        [0, 0],
        [1, 1],
    );
}

#[test]
fn convolution_dilation_and_per_axis_stride() {
    conv_case(
        "num_output: 2 kernel_size: 3 dilation: 2 stride_h: 1 stride_w: 2 pad_h: 2 pad_w: 1",
        &[2, 1, 6, 7],
        1,
        [1, 2],
        [2, 1],
        [2, 2],
    );
}

#[test]
fn convolution_one_by_one_without_bias() {
    conv_case(
        "num_output: 3 kernel_size: 1 bias_term: false",
        &[3, 2, 3, 4],
        1,
        [1, 1],
        [0, 0],
        [1, 1],
    );
}

#[test]
fn convolution_batch_larger_than_threads() {
    // Exercises the sample-parallel path (batch ≥ threads).
    conv_case(
        "num_output: 2 kernel_size: 3 pad: 1",
        &[5, 2, 4, 4],
        1,
        [1, 1],
        [1, 1],
        [1, 1],
    );
}

// With 8 or more input channels per group and stride 1 the layer convolves by
// shifted windows of the padded image instead of im2col; these cover that path.
#[test]
fn convolution_shifted_windows_pad_and_batch() {
    conv_case(
        "num_output: 5 kernel_size: 3 pad: 1",
        &[3, 9, 6, 5],
        1,
        [1, 1],
        [1, 1],
        [1, 1],
    );
}

// A 7×6 plane runs its backward by im2col (under 64 positions), a 12×10 one by
// shifted windows; the forward is shifted windows in both.
#[test]
fn convolution_shifted_windows_groups_dilation_per_axis_pad() {
    for shape in [[1, 16, 7, 6], [1, 16, 12, 10]] {
        conv_case(
            "num_output: 4 group: 2 kernel_h: 3 kernel_w: 2 dilation: 2 pad_h: 2 pad_w: 1",
            &shape,
            2,
            [1, 1],
            [2, 1],
            [2, 2],
        );
    }
}

#[test]
fn convolution_shifted_windows_one_by_one() {
    conv_case(
        "num_output: 3 kernel_size: 1",
        &[2, 8, 3, 4],
        1,
        [1, 1],
        [0, 0],
        [1, 1],
    );
}

// Batch 1 on two threads splits one sample by output and input channels; with
// 3 groups the two halves cut through a group, in both strategies.
#[test]
fn convolution_batch_one_split_across_groups() {
    netrun::backend::set_threads(2);
    conv_case(
        "num_output: 6 group: 3 kernel_size: 3 pad: 1",
        &[1, 24, 5, 4],
        3,
        [1, 1],
        [1, 1],
        [1, 1],
    );
    conv_case(
        "num_output: 6 group: 3 kernel_size: 3 stride: 2 pad: 1",
        &[1, 6, 7, 5],
        3,
        [2, 2],
        [1, 1],
        [1, 1],
    );
}

// Batches at least as large as the thread count run per sample when the output
// plane has 256+ positions (shifted windows, or im2col when strided), and in
// chunks of samples side by side when it has fewer than 64; these cover all
// three, with chunks of 4 samples over a batch of 5 for the last.
#[test]
fn convolution_per_sample_shifted_windows_large_plane() {
    conv_case(
        "num_output: 3 kernel_size: 3 pad: 1",
        &[2, 8, 16, 17],
        1,
        [1, 1],
        [1, 1],
        [1, 1],
    );
}

#[test]
fn convolution_per_sample_im2col_large_plane() {
    conv_case(
        "num_output: 2 kernel_size: 3 stride: 2",
        &[2, 3, 35, 37],
        1,
        [2, 2],
        [0, 0],
        [1, 1],
    );
}

// Stride 2 with 8+ channels per group runs shifted windows over the padded
// image's four stride-2 phases: odd and even sizes, pads 0 to 2 (so either
// parity of padded column starts the image), a 1×1 kernel and a 2×3 one.
#[test]
fn convolution_per_sample_stride_two_phases() {
    for (spec, shape, pad) in [
        ("kernel_size: 3 pad: 1", [2, 8, 17, 20], [1, 1]),
        ("kernel_size: 3 pad: 0", [2, 9, 20, 17], [0, 0]),
        ("kernel_size: 1", [2, 8, 19, 18], [0, 0]),
        (
            "kernel_h: 2 kernel_w: 3 pad_h: 2 pad_w: 1",
            [2, 8, 16, 19],
            [2, 1],
        ),
    ] {
        conv_case(
            &format!("num_output: 3 stride: 2 {spec}"),
            &shape,
            1,
            [2, 2],
            pad,
            [1, 1],
        );
    }
}

#[test]
fn convolution_stride_two_phases_groups_and_batch_one() {
    netrun::backend::set_threads(2);
    conv_case(
        "num_output: 4 group: 2 kernel_size: 3 stride: 2 pad: 1",
        &[1, 16, 17, 16],
        2,
        [2, 2],
        [1, 1],
        [1, 1],
    );
}

#[test]
fn convolution_chunks_of_samples_across_a_batch() {
    // 2048 channels × 9 taps × 54 positions: 4 samples fill the column budget.
    conv_check_against_naive(
        "num_output: 2 kernel_size: 3 pad: 1",
        &[5, 2048, 6, 9],
        (1, [1, 1], [1, 1], [1, 1]),
    );
}

#[test]
fn inner_product_forward_and_gradient() {
    for transpose in [false, true] {
        let text = format!(
            "name: \"ip\" type: \"InnerProduct\" inner_product_param {{ num_output: 3 transpose: {transpose} weight_filler {{ type: \"uniform\" min: -1 max: 1 }} bias_filler {{ type: \"gaussian\" std: 1 }} }}"
        );
        let mut l = layer(&text);
        let mut bottoms = vec![uniform_blob(&[2, 2, 2, 1], -1.0, 1.0, 5)];
        let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 2);
        assert_eq!(tops[0].shape(), &[2, 3]);
        forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
        let (x, w, b) = (bottoms[0].data(), params[0].data(), params[1].data());
        let mut expected = vec![0.0f64; 6];
        for n in 0..2 {
            for o in 0..3 {
                expected[n * 3 + o] = b[o] as f64
                    + (0..4)
                        .map(|k| {
                            x[n * 4 + k] as f64
                                * if transpose {
                                    w[k * 3 + o]
                                } else {
                                    w[o * 4 + k]
                                } as f64
                        })
                        .sum::<f64>();
            }
        }
        assert_close(tops[0].data(), &expected, 1e-5, 1e-5, "ip forward");
        GradientChecker::default()
            .check(l.as_mut(), &mut bottoms, &mut tops, &mut params, &[true])
            .unwrap();
    }
}

#[test]
fn inner_product_axis_two_keeps_leading_axes() {
    let mut l =
        layer("name: \"ip\" type: \"InnerProduct\" inner_product_param { num_output: 4 axis: 2 }");
    let bottoms = vec![Blob::new(&[2, 3, 5])];
    let (tops, params) = setup(l.as_mut(), &bottoms, 1);
    assert_eq!(tops[0].shape(), &[2, 3, 4]);
    assert_eq!(params[0].shape(), &[4, 5]);
}

#[test]
fn prelu_forward_and_gradient() {
    for shared in [false, true] {
        let text = format!("name: \"p\" type: \"PReLU\" prelu_param {{ channel_shared: {shared} filler {{ type: \"uniform\" min: 0.1 max: 0.5 }} }}");
        let mut l = layer(&text);
        let mut bottoms = vec![uniform_blob(&[2, 3, 2, 2], -1.0, 1.0, 9)];
        let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 4);
        forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
        let expected: Vec<f64> = bottoms[0]
            .data()
            .iter()
            .enumerate()
            .map(|(i, &x)| {
                let a = params[0].data()[if shared { 0 } else { (i / 4) % 3 }];
                if x > 0.0 {
                    x as f64
                } else {
                    (a * x) as f64
                }
            })
            .collect();
        assert_close(tops[0].data(), &expected, 1e-6, 1e-7, "prelu forward");
        let checker = GradientChecker::default().with_kink(0.0, 0.02);
        checker
            .check(l.as_mut(), &mut bottoms, &mut tops, &mut params, &[true])
            .unwrap();
    }
}

#[test]
fn prelu_default_slope_is_a_quarter() {
    let mut l = layer("name: \"p\" type: \"PReLU\"");
    let (_, params) = setup(l.as_mut(), &[Blob::new(&[1, 2, 1, 1])], 0);
    assert_eq!(params[0].data(), &[0.25, 0.25]);
}

#[test]
fn eltwise_sum_prod_max() {
    for (op, extra) in [
        ("SUM", "coeff: 0.5 coeff: -2 coeff: 1"),
        ("PROD", ""),
        ("MAX", ""),
    ] {
        let mut l = layer(&format!("name: \"e\" type: \"Eltwise\" bottom: \"a\" bottom: \"b\" bottom: \"c\" eltwise_param {{ operation: {op} {extra} }}"));
        let mut bottoms: Vec<Blob> = (0..3)
            .map(|k| uniform_blob(&[2, 3], -1.0, 1.0, 20 + k))
            .collect();
        let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 0);
        forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
        let expected: Vec<f64> = (0..6)
            .map(|i| {
                let v: Vec<f64> = bottoms.iter().map(|b| b.data()[i] as f64).collect();
                match op {
                    "SUM" => 0.5 * v[0] - 2.0 * v[1] + v[2],
                    "PROD" => v[0] * v[1] * v[2],
                    _ => v.iter().cloned().fold(f64::MIN, f64::max),
                }
            })
            .collect();
        assert_close(tops[0].data(), &expected, 1e-6, 1e-6, op);
        GradientChecker::default()
            .check(
                l.as_mut(),
                &mut bottoms,
                &mut tops,
                &mut params,
                &[true, true, true],
            )
            .unwrap();
    }
}

#[test]
fn eltwise_numeric_operation_one_is_sum() {
    let mut l = layer(
        "name: \"e\" type: \"Eltwise\" bottom: \"a\" bottom: \"b\" eltwise_param { operation: 1 }",
    );
    let mut bottoms = vec![
        Blob::from_data(&[2], vec![1.0, 2.0]),
        Blob::from_data(&[2], vec![10.0, 20.0]),
    ];
    let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 0);
    forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
    assert_eq!(tops[0].data(), &[11.0, 22.0]);
}

#[test]
fn split_copies_forward_and_sums_backward() {
    let mut l = layer("name: \"s\" type: \"Split\" bottom: \"x\" top: \"a\" top: \"b\"");
    let mut bottoms = vec![uniform_blob(&[3, 2], -1.0, 1.0, 1)];
    let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 0);
    forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
    assert_eq!(tops[0].data(), bottoms[0].data());
    assert_eq!(tops[1].data(), bottoms[0].data());
    GradientChecker::default()
        .check(l.as_mut(), &mut bottoms, &mut tops, &mut params, &[true])
        .unwrap();
}

#[test]
fn gradient_checker_catches_a_wrong_gradient() {
    // A PReLU whose slope gradient is checked against a corrupted diff must fail.
    struct Broken(Box<dyn netrun::layers::Layer>);
    impl netrun::layers::Layer for Broken {
        fn type_name(&self) -> &'static str {
            "Broken"
        }
        fn bottoms(&self) -> netrun::layers::Arity {
            self.0.bottoms()
        }
        fn tops(&self) -> netrun::layers::Arity {
            self.0.tops()
        }
        fn reshape(
            &mut self,
            b: &[Vec<usize>],
        ) -> Result<Vec<Vec<usize>>, netrun::layers::ShapeError> {
            self.0.reshape(b)
        }
        fn param_shapes(&self) -> Vec<Vec<usize>> {
            self.0.param_shapes()
        }
        fn forward(
            &mut self,
            io: &mut netrun::layer_io::LayerIo,
            ctx: &mut netrun::layer_io::RunCtx,
        ) -> Result<(), String> {
            self.0.forward(io, ctx)
        }
        fn backward(
            &mut self,
            io: &mut netrun::layer_io::LayerIo,
            pd: &[bool],
            ctx: &mut netrun::layer_io::RunCtx,
        ) -> Result<(), String> {
            self.0.backward(io, pd, ctx)?;
            io.bottom_mut(0).diff_mut()[1] += 0.5;
            Ok(())
        }
    }
    let mut l = Broken(layer("name: \"p\" type: \"PReLU\""));
    let mut bottoms = vec![uniform_blob(&[1, 2, 2, 2], 0.1, 1.0, 1)];
    let (mut tops, mut params) = setup(&mut l, &bottoms, 0);
    let err = GradientChecker::default()
        .check(&mut l, &mut bottoms, &mut tops, &mut params, &[true])
        .unwrap_err();
    assert!(err.contains("bottom 0 element 1"), "{err}");
}
