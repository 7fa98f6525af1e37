//! `backend::gemm` against a naive f64 triple loop, on the fully-connected
//! shapes that take the reoriented paths (small m with op(B) = Bᵀ; small m with
//! a wide row-major B) and on shapes just outside them, for every transpose
//! pair and for beta = 0 (previous C ignored, even NaN), 1 and 0.5.

use netrun::backend::{gemm, gemm_serial, set_threads};
use netrun::testing::uniform_blob;

/// C = alpha·op(A)·op(B) + beta·C0 in f64, row-major, as Caffe's gemm.
#[allow(clippy::too_many_arguments)]
fn naive(
    trans_a: bool,
    trans_b: bool,
    (m, n, k): (usize, usize, usize),
    alpha: f32,
    a: &[f32],
    b: &[f32],
    beta: f32,
    c0: &[f32],
) -> Vec<f64> {
    let at = |i: usize, p: usize| a[if trans_a { p * m + i } else { i * k + p }] as f64;
    let bt = |p: usize, j: usize| b[if trans_b { j * k + p } else { p * n + j }] as f64;
    let mut c = vec![0.0f64; m * n];
    for i in 0..m {
        for j in 0..n {
            let s: f64 = (0..k).map(|p| at(i, p) * bt(p, j)).sum();
            let before = if beta == 0.0 {
                0.0
            } else {
                beta as f64 * c0[i * n + j] as f64
            };
            c[i * n + j] = alpha as f64 * s + before;
        }
    }
    c
}

/// Runs gemm (or gemm_serial) on random operands and compares with [`naive`].
fn check(shape: (usize, usize, usize), serial: bool) {
    let (m, n, k) = shape;
    let a = uniform_blob(&[m * k], -1.0, 1.0, (m * 31 + k) as u64);
    let b = uniform_blob(&[k * n], -1.0, 1.0, (n * 17 + k) as u64);
    let start = uniform_blob(&[m * n], -1.0, 1.0, 3);
    for trans_a in [false, true] {
        for trans_b in [false, true] {
            for (alpha, beta) in [(1.0f32, 0.0f32), (-0.7, 1.0), (1.3, 0.5)] {
                let mut c = if beta == 0.0 {
                    vec![f32::NAN; m * n]
                } else {
                    start.data().to_vec()
                };
                let run = if serial { gemm_serial } else { gemm };
                run(
                    trans_a,
                    trans_b,
                    m,
                    n,
                    k,
                    alpha,
                    a.data(),
                    b.data(),
                    beta,
                    &mut c,
                );
                let expected = naive(
                    trans_a,
                    trans_b,
                    shape,
                    alpha,
                    a.data(),
                    b.data(),
                    beta,
                    start.data(),
                );
                // f32 sums of k terms of size ≤ 1.
                let tol = 2e-6 * k as f64;
                for (i, (&got, &want)) in c.iter().zip(&expected).enumerate() {
                    assert!(
                        (got as f64 - want).abs() <= tol,
                        "{shape:?} trans ({trans_a}, {trans_b}) alpha {alpha} beta {beta} serial {serial}: \
                         c[{i}] = {got}, expected {want}"
                    );
                }
            }
        }
    }
}

#[test]
fn small_batch_times_transposed_weights() {
    set_threads(2);
    // (m, n, k) with 2 ≤ m ≤ 64 and n ≥ 2m: C is computed column-major, then transposed;
    // the second is big enough to transpose in parallel.
    for shape in [(2, 5, 7), (32, 2100, 40), (64, 130, 33)] {
        check(shape, false);
    }
    check((5, 300, 9), true);
}

#[test]
fn small_batch_times_wide_weights() {
    set_threads(2);
    // 16 ≤ m ≤ 64, n ≥ 4096 and k ≥ 256 (op(B) = B): panels of B copied per block,
    // the last block narrower than the others.
    check((17, 4100, 260), false);
    check((16, 4096, 256), true);
}

#[test]
fn shapes_just_outside_the_fully_connected_paths() {
    set_threads(2);
    // m = 1, m = 65, n < 2m, m = 15 and k = 255 with a wide B: the general product.
    for shape in [
        (1, 300, 20),
        (65, 140, 20),
        (40, 60, 20),
        (15, 4100, 260),
        (20, 4100, 255),
    ] {
        check(shape, false);
    }
}

#[test]
fn one_row_times_transposed_weights_gives_each_row_the_bits_it_gets_alone() {
    // m = 1 against Bᵀ runs rows four at a time; each row's sum keeps the
    // order it has alone (a one-row product), whatever block or remainder it
    // falls in, on one thread and two. 1000 columns leave a tail of 8.
    let (n, k) = (303, 1000);
    let a = uniform_blob(&[k], -1.0, 1.0, 3);
    let b = uniform_blob(&[n, k], -1.0, 1.0, 4);
    let alone: Vec<u32> = (0..n)
        .map(|j| {
            let mut c = [f32::NAN];
            gemm(
                false,
                true,
                1,
                1,
                k,
                0.5,
                a.data(),
                &b.data()[j * k..][..k],
                0.0,
                &mut c,
            );
            c[0].to_bits()
        })
        .collect();
    for threads in [1, 2] {
        set_threads(threads);
        let mut c = vec![f32::NAN; n];
        gemm(false, true, 1, n, k, 0.5, a.data(), b.data(), 0.0, &mut c);
        let bits: Vec<u32> = c.iter().map(|v| v.to_bits()).collect();
        assert_eq!(bits, alone, "{threads} thread(s)");
    }
    check((1, n, k), false);
}
