//! `layers::filler::fill`: each filler type's values, checked by their defining
//! property or by statistics over a large blob (tolerances ≥ 4 standard errors),
//! and determinism for a seed.

use netrun::blob::Blob;
use netrun::layers::filler::{fill, FillerParams, VarianceNorm};
use netrun::philox::{ParamStreams, Stream};

fn filler(type_name: &str) -> FillerParams {
    FillerParams {
        type_name: type_name.to_string(),
        ..FillerParams::default()
    }
}

/// The stream of a layer's first learnable blob, for `seed`.
fn stream(seed: u64) -> Stream {
    ParamStreams {
        seed,
        layer: "filled",
    }
    .blob(0)
}

fn filled(p: &FillerParams, shape: &[usize], seed: u64) -> Blob {
    let mut blob = Blob::new(shape);
    fill(p, &mut blob, stream(seed));
    blob
}

/// Mean and (population) standard deviation, in f64.
fn stats(v: &[f32]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
    let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

fn max_abs(v: &[f32]) -> f32 {
    v.iter().fold(0.0f32, |m, &x| m.max(x.abs()))
}

/// A convolution weight O × C × kh × kw: fan_in = C·kh·kw = 144, fan_out = O·kh·kw = 576.
const CONV: [usize; 4] = [64, 16, 3, 3];
const FAN_IN: f64 = 144.0;
const FAN_OUT: f64 = 576.0;

#[test]
fn constant_fills_the_value_and_defaults_to_zero() {
    let p = FillerParams {
        value: 2.5,
        ..FillerParams::default()
    };
    assert!(filled(&p, &[3, 5], 1).data().iter().all(|&v| v == 2.5));
    let mut blob = Blob::from_data(&[4], vec![7.0; 4]);
    fill(&FillerParams::default(), &mut blob, stream(1));
    assert_eq!(blob.data(), &[0.0; 4], "the default filler is constant 0");
}

#[test]
fn uniform_stays_in_its_range_and_covers_it() {
    let p = FillerParams {
        min: -0.3,
        max: 0.7,
        ..filler("uniform")
    };
    let blob = filled(&p, &[100, 100], 2);
    let v = blob.data();
    assert!(v.iter().all(|&x| (-0.3..0.7).contains(&x)));
    let lo = v.iter().copied().fold(f32::INFINITY, f32::min);
    let hi = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    assert!(lo < -0.29 && hi > 0.69, "range [{lo}, {hi}] not covered");
    // U[a, b): mean (a + b)/2, std (b − a)/√12; standard error of the mean 0.0029.
    let (mean, std) = stats(v);
    assert!((mean - 0.2).abs() < 0.015, "mean {mean}");
    assert!((std - 1.0 / 12f64.sqrt()).abs() < 0.01, "std {std}");
}

#[test]
fn gaussian_has_its_mean_and_std() {
    let p = FillerParams {
        mean: 1.5,
        std: 0.5,
        ..filler("gaussian")
    };
    let blob = filled(&p, &[200, 500], 3);
    // Standard errors: mean 0.5/√1e5 = 0.0016, std 0.5/√2e5 = 0.0011.
    let (mean, std) = stats(blob.data());
    assert!((mean - 1.5).abs() < 0.01, "mean {mean}");
    assert!((std - 0.5).abs() < 0.01, "std {std}");
}

#[test]
fn sparse_gaussian_keeps_sparse_over_num_of_the_values() {
    // 20 outputs, sparse 5: each value survives with probability 5/20.
    let p = FillerParams {
        std: 1.0,
        sparse: 5,
        ..filler("gaussian")
    };
    let blob = filled(&p, &[20, 2000], 4);
    let zeros = blob.data().iter().filter(|&&v| v == 0.0).count();
    let fraction = zeros as f64 / blob.count() as f64;
    // Standard error √(0.75·0.25/40000) = 0.0022.
    assert!((fraction - 0.75).abs() < 0.015, "zero fraction {fraction}");
    let kept: Vec<f32> = blob.data().iter().copied().filter(|&v| v != 0.0).collect();
    let (_, std) = stats(&kept);
    assert!(
        (std - 1.0).abs() < 0.03,
        "surviving values keep std 1, got {std}"
    );
    // sparse ≥ num keeps everything; sparse −1 (the default) is dense.
    for sparse in [20, -1] {
        let p = FillerParams {
            sparse,
            ..p.clone()
        };
        let blob = filled(&p, &[20, 100], 5);
        assert!(blob.data().iter().all(|&v| v != 0.0), "sparse {sparse}");
    }
}

#[test]
fn positive_unitball_rows_are_non_negative_and_sum_to_one() {
    let blob = filled(&filler("positive_unitball"), &[7, 3, 4], 6);
    assert!(blob.data().iter().all(|&v| v >= 0.0));
    for (i, row) in blob.data().chunks(12).enumerate() {
        let sum: f64 = row.iter().map(|&v| v as f64).sum();
        assert!((sum - 1.0).abs() < 1e-5, "row {i} sums to {sum}");
    }
}

#[test]
fn xavier_is_uniform_within_sqrt_3_over_n_for_each_variance_norm() {
    for (norm, n) in [
        (VarianceNorm::FanIn, FAN_IN),
        (VarianceNorm::FanOut, FAN_OUT),
        (VarianceNorm::Average, (FAN_IN + FAN_OUT) / 2.0),
    ] {
        let p = FillerParams {
            variance_norm: norm,
            ..filler("xavier")
        };
        let blob = filled(&p, &CONV, 7);
        let bound = (3.0 / n).sqrt() as f32;
        let m = max_abs(blob.data());
        // 9216 draws: the largest lies within 2% of the bound with overwhelming probability,
        // which separates the three norms (bounds 0.144, 0.072, 0.091).
        assert!(
            m <= bound && m > 0.98 * bound,
            "{norm:?}: max |v| {m}, bound {bound}"
        );
        let (mean, std) = stats(blob.data());
        let want = (1.0 / n).sqrt();
        assert!(mean.abs() < 4.0 * want / 96.0, "{norm:?}: mean {mean}");
        assert!(
            (std / want - 1.0).abs() < 0.04,
            "{norm:?}: std {std}, want {want}"
        );
    }
}

#[test]
fn msra_is_gaussian_with_std_sqrt_2_over_n() {
    for (norm, n) in [
        (VarianceNorm::FanIn, FAN_IN),
        (VarianceNorm::FanOut, FAN_OUT),
        (VarianceNorm::Average, (FAN_IN + FAN_OUT) / 2.0),
    ] {
        let p = FillerParams {
            variance_norm: norm,
            ..filler("msra")
        };
        let blob = filled(&p, &CONV, 8);
        let want = (2.0 / n).sqrt();
        let (mean, std) = stats(blob.data());
        // Standard errors over 9216 draws: mean want/96, std want·0.0074.
        assert!(mean.abs() < 4.0 * want / 96.0, "{norm:?}: mean {mean}");
        assert!(
            (std / want - 1.0).abs() < 0.04,
            "{norm:?}: std {std}, want {want}"
        );
    }
}

#[test]
fn bilinear_gives_the_factor_two_upsampling_kernel() {
    // The 4-tap kernel of 2× bilinear upsampling is [1, 3, 3, 1]/4 per axis; the 2-D
    // kernel is its outer product, the same for every (output, input) channel pair.
    let taps = [0.25f32, 0.75, 0.75, 0.25];
    let blob = filled(&filler("bilinear"), &[2, 3, 4, 4], 9);
    for (k, plane) in blob.data().chunks(16).enumerate() {
        for (i, &v) in plane.iter().enumerate() {
            let want = taps[i / 4] * taps[i % 4];
            assert!(
                (v - want).abs() < 1e-6,
                "plane {k} ({}, {}): {v} vs {want}",
                i / 4,
                i % 4
            );
        }
    }
}

#[test]
fn a_seed_fixes_the_values() {
    for p in [
        filler("gaussian"),
        filler("uniform"),
        filler("xavier"),
        filler("msra"),
        FillerParams {
            sparse: 3,
            ..filler("gaussian")
        },
    ] {
        let a = filled(&p, &CONV, 42);
        let b = filled(&p, &CONV, 42);
        let c = filled(&p, &CONV, 43);
        assert_eq!(a.data(), b.data(), "{} with the same seed", p.type_name);
        assert_ne!(a.data(), c.data(), "{} with another seed", p.type_name);
    }
}
