//! GEMM shapes and convolution layers of SphereFace-20, for GFLOP/s against
//! the machine's FMA peak (`netrun peak`). `cargo bench --bench sphereface`;
//! `forward` keeps the same weights (a deploy net: packed after the first
//! call), `forward-new-weights` writes them before every call (training).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use netrun::backend::gemm;
use netrun::layer_io::{LayerIo, Rng, RunCtx};
use netrun::netdef::Phase;
use netrun::testing::{layer, setup, uniform_blob};
use rand::SeedableRng;

/// M×K×N of the four stages' 3×3 convolutions (per sample, im2col form).
const CONV_GEMMS: &[(usize, usize, usize)] = &[
    (64, 576, 2688),
    (128, 1152, 672),
    (256, 2304, 168),
    (512, 4608, 42),
];

fn gemm_shapes(c: &mut Criterion) {
    let mut group = c.benchmark_group("gemm");
    for &(m, k, n) in CONV_GEMMS {
        let a = uniform_blob(&[m, k], -1.0, 1.0, 1);
        let b = uniform_blob(&[k, n], -1.0, 1.0, 2);
        let mut out = vec![0.0f32; m * n];
        group.throughput(Throughput::Elements((2 * m * k * n) as u64));
        group.bench_with_input(
            BenchmarkId::from_parameter(format!("{m}x{k}x{n}")),
            &(),
            |bench, _| {
                bench.iter(|| {
                    gemm(
                        false,
                        false,
                        m,
                        n,
                        k,
                        1.0,
                        a.data(),
                        b.data(),
                        0.0,
                        &mut out,
                    )
                })
            },
        );
    }
    group.finish();
}

fn conv_layers(c: &mut Criterion) {
    let mut group = c.benchmark_group("conv3x3");
    group.sample_size(10);
    for &(channels, h, w) in &[
        (64usize, 56usize, 48usize),
        (128, 28, 24),
        (256, 14, 12),
        (512, 7, 6),
    ] {
        for batch in [1usize, 32] {
            let text = format!(
                "name: \"c\" type: \"Convolution\" convolution_param {{ num_output: {channels} kernel_size: 3 pad: 1 weight_filler {{ type: \"gaussian\" std: 0.01 }} }}"
            );
            let mut l = layer(&text);
            let mut bottoms = vec![uniform_blob(&[batch, channels, h, w], -1.0, 1.0, 3)];
            let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 4);
            let flops = 2 * channels * channels * 9 * h * w * batch;
            group.throughput(Throughput::Elements(flops as u64));
            let id = format!("{channels}x{h}x{w}/b{batch}");
            let mut rng = Rng::seed_from_u64(0);
            // "forward-new-weights" as in training: the weights are written
            // between forwards (their stamp changes), so the layer reads them unpacked.
            for (name, new_weights) in [("forward", false), ("forward-new-weights", true)] {
                group.bench_function(BenchmarkId::new(name, &id), |bench| {
                    bench.iter(|| {
                        if new_weights {
                            params[0].data_mut();
                        }
                        let mut io = LayerIo::new(
                            bottoms.iter_mut().collect(),
                            tops.iter_mut().collect(),
                            params.iter_mut().collect(),
                        );
                        l.forward(
                            &mut io,
                            &mut RunCtx {
                                phase: Phase::Train,
                                rng: &mut rng,
                            },
                        )
                        .unwrap();
                    })
                });
            }
            group.throughput(Throughput::Elements(2 * flops as u64));
            group.bench_function(BenchmarkId::new("backward", &id), |bench| {
                bench.iter(|| {
                    let mut io = LayerIo::new(
                        bottoms.iter_mut().collect(),
                        tops.iter_mut().collect(),
                        params.iter_mut().collect(),
                    );
                    l.backward(
                        &mut io,
                        &[true],
                        &mut RunCtx {
                            phase: Phase::Train,
                            rng: &mut rng,
                        },
                    )
                    .unwrap();
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, gemm_shapes, conv_layers);
criterion_main!(benches);
