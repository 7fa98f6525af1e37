//! Matrix products of the compiled backend (`cargo test --test backend`, and
//! `--features openblas` for OpenBLAS) against a naive f64 loop: every
//! transpose combination, odd sizes, alpha/beta variants, strided, overlapping
//! and transposed views, strided destinations. Under OpenBLAS the layouts BLAS
//! can address go to `cblas_sgemm` and the others to the `gemm` crate, so
//! both paths are covered.

use netrun::backend::{gemm, gemm_serial, gemm_strided, View, ViewMut};
use netrun::testing::uniform_blob;

const SIZES: [usize; 4] = [1, 7, 33, 130];
/// (alpha, beta): beta 0 must ignore C's old contents (NaN here), beta 1 accumulates.
const SCALES: [(f32, f32); 3] = [(1.0, 0.0), (-0.5, 1.0), (2.0, 0.25)];

fn random(len: usize, seed: u64) -> Vec<f32> {
    uniform_blob(&[len], -1.0, 1.0, seed).data().to_vec()
}

/// Strided operand: element (i, j) at i·rs + j·cs.
#[derive(Clone, Copy, Debug)]
struct Layout {
    rs: usize,
    cs: usize,
}

impl Layout {
    fn at(&self, i: usize, j: usize) -> usize {
        i * self.rs + j * self.cs
    }
    fn extent(&self, rows: usize, cols: usize) -> usize {
        self.at(rows - 1, cols - 1) + 1
    }
}

/// Operand layouts for a rows × cols matrix, BLAS-expressible or not.
fn layouts(rows: usize, cols: usize) -> Vec<(&'static str, Layout)> {
    vec![
        (
            "row-major, padded rows",
            Layout {
                rs: cols + 3,
                cs: 1,
            },
        ),
        (
            "column-major, padded columns",
            Layout {
                rs: 1,
                cs: rows + 2,
            },
        ),
        // Rows overlap (row stride below the width), as convolution's shifted windows.
        ("overlapping rows", Layout { rs: 2, cs: 1 }),
        ("overlapping columns", Layout { rs: 1, cs: 3 }),
        (
            "both strides > 1",
            Layout {
                rs: 2 * cols + 1,
                cs: 2,
            },
        ),
    ]
}

/// Destination layouts: only distinct elements, with gaps between them.
fn dest_layouts(rows: usize, cols: usize) -> Vec<(&'static str, Layout)> {
    vec![
        (
            "row-major, padded rows",
            Layout {
                rs: cols + 5,
                cs: 1,
            },
        ),
        (
            "column-major, padded columns",
            Layout {
                rs: 1,
                cs: rows + 1,
            },
        ),
        (
            "every other element",
            Layout {
                rs: 2 * cols + 3,
                cs: 2,
            },
        ),
    ]
}

/// alpha·A·B + beta·C in f64, and the bound on f32 rounding for each element:
/// any summation order of k products errs by at most (k+2)·ε·Σ|terms|.
#[allow(clippy::too_many_arguments)]
fn reference(
    (m, n, k): (usize, usize, usize),
    alpha: f32,
    a: (&[f32], Layout),
    b: (&[f32], Layout),
    beta: f32,
    c: (&[f32], Layout),
) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(m * n);
    for i in 0..m {
        for j in 0..n {
            let (mut sum, mut abs) = (0.0f64, 0.0f64);
            for p in 0..k {
                let t = a.0[a.1.at(i, p)] as f64 * b.0[b.1.at(p, j)] as f64;
                sum += t;
                abs += t.abs();
            }
            let (mut value, mut mag) = (alpha as f64 * sum, (alpha as f64 * abs).abs());
            if beta != 0.0 {
                let old = beta as f64 * c.0[c.1.at(i, j)] as f64;
                value += old;
                mag += old.abs();
            }
            out.push((value, (k as f64 + 2.0) * f32::EPSILON as f64 * mag + 1e-30));
        }
    }
    out
}

/// A destination buffer: random everywhere, NaN on C's elements when beta = 0
/// (they must be ignored).
fn destination(len: usize, layout: Layout, m: usize, n: usize, beta: f32, seed: u64) -> Vec<f32> {
    let mut c = random(len, seed);
    if beta == 0.0 {
        for i in 0..m {
            for j in 0..n {
                c[layout.at(i, j)] = f32::NAN;
            }
        }
    }
    c
}

/// Checks C's elements against the reference and that nothing else moved.
fn check(
    got: &[f32],
    before: &[f32],
    layout: Layout,
    (m, n): (usize, usize),
    expected: &[(f64, f64)],
    what: &str,
) {
    let mut in_c = vec![false; got.len()];
    for i in 0..m {
        for j in 0..n {
            let at = layout.at(i, j);
            in_c[at] = true;
            let (want, tol) = expected[i * n + j];
            let v = got[at] as f64;
            assert!(
                (v - want).abs() <= tol,
                "{what}: C[{i},{j}] = {v}, expected {want} (tolerance {tol:e})"
            );
        }
    }
    for (at, (&g, &b)) in got.iter().zip(before).enumerate() {
        if !in_c[at] {
            assert!(
                g.to_bits() == b.to_bits(),
                "{what}: element {at} outside C changed from {b} to {g}"
            );
        }
    }
}

/// Row-major `gemm` / `gemm_serial` with Caffe's transpose flags.
fn row_major_case(serial: bool) {
    netrun::backend::set_threads(2);
    let mut case = 0u64;
    for &m in &SIZES {
        for &n in &SIZES {
            for &k in &SIZES {
                for (trans_a, trans_b) in
                    [(false, false), (true, false), (false, true), (true, true)]
                {
                    case += 1;
                    let (alpha, beta) = SCALES[case as usize % SCALES.len()];
                    let a = random(m * k, 3 * case);
                    let b = random(k * n, 3 * case + 1);
                    let la = if trans_a {
                        Layout { rs: 1, cs: m }
                    } else {
                        Layout { rs: k, cs: 1 }
                    };
                    let lb = if trans_b {
                        Layout { rs: 1, cs: k }
                    } else {
                        Layout { rs: n, cs: 1 }
                    };
                    let lc = Layout { rs: n, cs: 1 };
                    let mut c = destination(m * n, lc, m, n, beta, 3 * case + 2);
                    let before = c.clone();
                    let want = reference((m, n, k), alpha, (&a, la), (&b, lb), beta, (&c, lc));
                    let run = if serial { gemm_serial } else { gemm };
                    run(trans_a, trans_b, m, n, k, alpha, &a, &b, beta, &mut c);
                    let what = format!(
                        "{} m={m} n={n} k={k} trans=({trans_a},{trans_b}) alpha={alpha} beta={beta}",
                        if serial { "gemm_serial" } else { "gemm" }
                    );
                    check(&c, &before, lc, (m, n), &want, &what);
                }
            }
        }
    }
}

#[test]
fn gemm_matches_naive_for_all_transposes_and_odd_sizes() {
    row_major_case(false);
}

#[test]
fn gemm_serial_matches_naive_for_all_transposes_and_odd_sizes() {
    row_major_case(true);
}

/// One strided product on `threads` threads, checked against the reference.
#[allow(clippy::too_many_arguments)]
fn strided_case(
    threads: usize,
    (m, n, k): (usize, usize, usize),
    (alpha, beta): (f32, f32),
    (na, la): (&str, Layout),
    (nb, lb): (&str, Layout),
    (nc, lc): (&str, Layout),
    seed: u64,
) {
    // Operands start at an offset, as a window into a larger buffer does.
    let a = random(la.extent(m, k) + 5, seed);
    let b = random(lb.extent(k, n) + 5, seed + 1);
    let mut c = destination(lc.extent(m, n), lc, m, n, beta, seed + 2);
    let before = c.clone();
    let (a_at, b_at) = (&a[5..], &b[5..]);
    let want = reference((m, n, k), alpha, (a_at, la), (b_at, lb), beta, (&c, lc));
    gemm_strided(
        threads,
        m,
        n,
        k,
        alpha,
        View {
            data: a_at,
            rs: la.rs,
            cs: la.cs,
        },
        View {
            data: b_at,
            rs: lb.rs,
            cs: lb.cs,
        },
        beta,
        ViewMut {
            data: &mut c,
            rs: lc.rs,
            cs: lc.cs,
        },
    );
    let what = format!(
        "gemm_strided threads={threads} m={m} n={n} k={k} alpha={alpha} beta={beta} \
         A {na} {la:?}, B {nb} {lb:?}, C {nc} {lc:?}"
    );
    check(&c, &before, lc, (m, n), &want, &what);
}

#[test]
fn gemm_strided_matches_naive_for_every_layout_combination() {
    let shapes = [
        (1, 1, 1),
        (7, 33, 1),
        (33, 1, 130),
        (130, 7, 33),
        (1, 130, 7),
        (7, 1, 33),
    ];
    let mut seed = 1000;
    for (s, &(m, n, k)) in shapes.iter().enumerate() {
        for la in layouts(m, k) {
            for lb in layouts(k, n) {
                for lc in dest_layouts(m, n) {
                    for threads in [1, 2] {
                        seed += 3;
                        let scales = SCALES[(seed as usize + s) % SCALES.len()];
                        strided_case(threads, (m, n, k), scales, la, lb, lc, seed);
                    }
                }
            }
        }
    }
}

// Convolution's shifted-window products: A (weights of one tap) read through a
// large column stride, B a window of the padded image with a pitch wider than
// the grid, C the output grid with a pitch.
#[test]
fn gemm_strided_matches_naive_for_window_views_at_all_odd_sizes() {
    let mut seed = 5000;
    for &m in &SIZES {
        for &n in &SIZES {
            for &k in &SIZES {
                seed += 3;
                let scales = SCALES[seed as usize % SCALES.len()];
                let la = ("tap of W[o][c][tap]", Layout { rs: 9 * k, cs: 9 });
                let la_t = ("Wᵀ tap", Layout { rs: 9, cs: 9 * m });
                let lb = ("image window", Layout { rs: n + 11, cs: 1 });
                let lc = ("output grid", Layout { rs: n + 2, cs: 1 });
                let lc_t = ("transposed grid", Layout { rs: 1, cs: m + 4 });
                strided_case(1, (m, n, k), scales, la, lb, lc, seed);
                strided_case(2, (m, n, k), scales, la_t, lb, lc_t, seed + 1);
                let la_cm = ("column-major, padded", Layout { rs: 1, cs: m + 1 });
                strided_case(2, (m, n, k), scales, la_cm, lb, lc, seed + 2);
            }
        }
    }
}

#[test]
fn backend_name_names_the_compiled_backend() {
    let name = netrun::backend::name();
    if cfg!(feature = "openblas") {
        assert!(name.starts_with("OpenBLAS"), "{name}");
    } else {
        assert!(name.starts_with("gemm crate"), "{name}");
    }
}
