//! Online triplet mining for the two-bottom TripletLoss (selection rules in `mod.rs`).
//!
//! Selected triplets with h > 0 are folded into a coefficient matrix C (N × N) such
//! that the unscaled gradient is dx = C·X: per active (a, p, n),
//!   C[a][n] += 1, C[a][p] −= 1, C[p][p] += 1, C[p][a] −= 1, C[n][a] += 1, C[n][n] −= 1,
//! which is da += x_n − x_p, dp += x_p − x_a, dn += x_a − x_n. Per anchor, only the
//! number of active triplets using each p and each n is needed, so anchors are mined
//! in parallel and folded in anchor order (deterministic).

use super::TripletMining;
use rayon::prelude::*;

/// What one forward mined.
pub struct Mined {
    /// Σ max(0, h) over the selected triplets.
    pub hinge_sum: f64,
    /// T: the number of selected triplets.
    pub selected: usize,
    /// [hard, semi-hard, easy] over every valid triplet.
    pub counts: [usize; 3],
    /// C, row-major N × N.
    pub coeff: Vec<f64>,
}

/// Per anchor: hinge sum, selected count, counts, and active uses of each p and n.
struct AnchorPick {
    hinge_sum: f64,
    selected: usize,
    counts: [usize; 3],
    uses_p: Vec<(usize, f64)>,
    uses_n: Vec<(usize, f64)>,
}

/// Squared distances D (N × N, f64) between the rows of `x` (N × K), computed
/// from differences: the Gram form ‖u‖² + ‖v‖² − 2u·v loses the small distances
/// that decide semi-hard picks between near-duplicate unit-norm embeddings.
pub fn distances(x: &[f32], n: usize, k: usize) -> Vec<f64> {
    let mut d = vec![0.0f64; n * n];
    if k == 0 {
        return d;
    }
    d.par_chunks_mut(n.max(1))
        .zip(x.par_chunks(k))
        .for_each(|(row, xi)| {
            for (dj, xj) in row.iter_mut().zip(x.chunks(k)) {
                *dj = xi
                    .iter()
                    .zip(xj)
                    .map(|(&u, &v)| (u as f64 - v as f64).powi(2))
                    .sum();
            }
        });
    d
}

/// Classifies a valid triplet: 0 hard, 1 semi-hard, 2 easy.
pub fn class(dap: f64, dan: f64, margin: f64) -> usize {
    if dan < dap {
        0
    } else if dan < dap + margin {
        1
    } else {
        2
    }
}

/// Mines the batch with distances `d` and integer labels.
pub fn mine(d: &[f64], labels: &[i64], margin: f64, mode: TripletMining) -> Mined {
    let n = labels.len();
    let picks: Vec<AnchorPick> = (0..n)
        .into_par_iter()
        .map(|a| mine_anchor(a, d, labels, margin, mode))
        .collect();
    let mut coeff = vec![0.0f64; n * n];
    let (mut hinge_sum, mut selected, mut counts) = (0.0, 0, [0usize; 3]);
    for (a, pick) in picks.into_iter().enumerate() {
        hinge_sum += pick.hinge_sum;
        selected += pick.selected;
        (0..3).for_each(|i| counts[i] += pick.counts[i]);
        for (p, w) in pick.uses_p {
            coeff[a * n + p] -= w;
            coeff[p * n + p] += w;
            coeff[p * n + a] -= w;
        }
        for (q, w) in pick.uses_n {
            coeff[a * n + q] += w;
            coeff[q * n + a] += w;
            coeff[q * n + q] -= w;
        }
    }
    Mined {
        hinge_sum,
        selected,
        counts,
        coeff,
    }
}

fn mine_anchor(
    a: usize,
    d: &[f64],
    labels: &[i64],
    margin: f64,
    mode: TripletMining,
) -> AnchorPick {
    let n = labels.len();
    let row = &d[a * n..(a + 1) * n];
    let pos: Vec<usize> = (0..n)
        .filter(|&p| p != a && labels[p] == labels[a])
        .collect();
    let neg: Vec<usize> = (0..n).filter(|&q| labels[q] != labels[a]).collect();
    let mut pick = AnchorPick {
        hinge_sum: 0.0,
        selected: 0,
        counts: [0; 3],
        uses_p: Vec::new(),
        uses_n: Vec::new(),
    };
    for &p in &pos {
        for &q in &neg {
            pick.counts[class(row[p], row[q], margin)] += 1;
        }
    }
    if neg.is_empty() || pos.is_empty() {
        return pick;
    }
    let take = |pick: &mut AnchorPick, p: usize, q: usize| {
        pick.selected += 1;
        let h = margin + row[p] - row[q];
        if h > 0.0 {
            pick.hinge_sum += h;
            pick.uses_p.push((p, 1.0));
            pick.uses_n.push((q, 1.0));
        }
    };
    // Strict comparisons over ascending indices: ties go to the lowest index.
    let argmin = |cands: &mut dyn Iterator<Item = usize>| {
        cands.fold(None, |best: Option<usize>, i| match best {
            Some(b) if row[b] <= row[i] => Some(b),
            _ => Some(i),
        })
    };
    let argmax = |cands: &mut dyn Iterator<Item = usize>| {
        cands.fold(None, |best: Option<usize>, i| match best {
            Some(b) if row[b] >= row[i] => Some(b),
            _ => Some(i),
        })
    };
    match mode {
        TripletMining::SemiHard => {
            for &p in &pos {
                let q = argmin(&mut neg.iter().copied().filter(|&q| row[q] > row[p]))
                    .or_else(|| argmax(&mut neg.iter().copied()))
                    .expect("negatives exist");
                take(&mut pick, p, q);
            }
        }
        TripletMining::SemiHardAndHard => {
            for &p in &pos {
                for &q in neg.iter().filter(|&&q| row[q] < row[p] + margin) {
                    take(&mut pick, p, q);
                }
            }
        }
        TripletMining::BatchHard => {
            let p = argmax(&mut pos.iter().copied()).expect("positives exist");
            let q = argmin(&mut neg.iter().copied()).expect("negatives exist");
            take(&mut pick, p, q);
        }
        TripletMining::BatchAll => {
            for &p in &pos {
                for &q in &neg {
                    take(&mut pick, p, q);
                }
            }
        }
    }
    pick
}
