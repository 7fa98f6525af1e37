//! k-fold cross-validation of a verification threshold, as LFW's view-2
//! protocol is evaluated by SphereFace and Center Loss: for each fold f the
//! threshold is the one that maximises accuracy on the other folds' pairs,
//! and the accuracy reported for f is that threshold's on f's pairs.
//!
//! A pair is called "same" when its score s ≥ t. The threshold maximising
//! accuracy on a set of pairs is found by one sweep over its sorted scores:
//! below every score all pairs are called same (correct = #same); moving t
//! above the group of pairs scoring exactly v turns them into "different",
//! adding (#different − #same) among them. Candidates are the midpoints
//! between consecutive distinct scores, plus one below the lowest and one
//! above the highest; the first (lowest) candidate of the best accuracy wins.

/// One scored pair.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    pub score: f64,
    pub same: bool,
    /// 0-based fold.
    pub fold: usize,
}

/// One fold's result.
#[derive(Debug, Clone, PartialEq)]
pub struct FoldResult {
    /// Chosen on the other folds.
    pub threshold: f64,
    /// Accuracy on the other folds at that threshold.
    pub train_accuracy: f64,
    pub correct: usize,
    pub total: usize,
}

impl FoldResult {
    pub fn accuracy(&self) -> f64 {
        self.correct as f64 / self.total as f64
    }
}

/// All folds' results.
#[derive(Debug, Clone, PartialEq)]
pub struct CrossValidation {
    pub folds: Vec<FoldResult>,
}

impl CrossValidation {
    /// Mean of the folds' accuracies.
    pub fn mean(&self) -> f64 {
        let n = self.folds.len() as f64;
        self.folds.iter().map(FoldResult::accuracy).sum::<f64>() / n
    }

    /// Sample standard deviation (divisor k − 1, as MATLAB's `std`) of the folds' accuracies.
    pub fn std(&self) -> f64 {
        let k = self.folds.len();
        if k < 2 {
            return 0.0;
        }
        let m = self.mean();
        let ss: f64 = self.folds.iter().map(|f| (f.accuracy() - m).powi(2)).sum();
        (ss / (k - 1) as f64).sqrt()
    }
}

/// Pairs called correctly at threshold `t` (same ⇔ score ≥ t).
pub fn correct_at<'a>(pairs: impl IntoIterator<Item = &'a Scored>, t: f64) -> usize {
    pairs
        .into_iter()
        .filter(|p| (p.score >= t) == p.same)
        .count()
}

/// The accuracy-maximising threshold over `pairs` and its number of correct calls.
pub fn best_threshold(pairs: &[Scored]) -> (f64, usize) {
    if pairs.is_empty() {
        return (0.0, 0);
    }
    let mut sorted: Vec<&Scored> = pairs.iter().collect();
    sorted.sort_by(|a, b| a.score.total_cmp(&b.score));
    let mut correct = sorted.iter().filter(|p| p.same).count();
    let mut best = (sorted[0].score - 1.0, correct);
    let mut i = 0;
    while i < sorted.len() {
        let v = sorted[i].score;
        while i < sorted.len() && sorted[i].score == v {
            if sorted[i].same {
                correct -= 1;
            } else {
                correct += 1;
            }
            i += 1;
        }
        let t = if i < sorted.len() {
            0.5 * (v + sorted[i].score)
        } else {
            v + 1.0
        };
        if correct > best.1 {
            best = (t, correct);
        }
    }
    best
}

/// Cross-validates over folds 0..k (every fold must hold pairs, k ≥ 2).
pub fn cross_validate(pairs: &[Scored], k: usize) -> Result<CrossValidation, String> {
    if k < 2 {
        return Err(format!("cross-validation needs at least 2 folds, not {k}"));
    }
    if let Some(p) = pairs.iter().find(|p| p.fold >= k) {
        return Err(format!("a pair is in fold {} of {k}", p.fold + 1));
    }
    let mut folds = Vec::with_capacity(k);
    for f in 0..k {
        let (test, train): (Vec<Scored>, Vec<Scored>) = pairs.iter().partition(|p| p.fold == f);
        if test.is_empty() {
            return Err(format!("fold {} holds no pairs", f + 1));
        }
        let (threshold, train_correct) = best_threshold(&train);
        folds.push(FoldResult {
            threshold,
            train_accuracy: train_correct as f64 / train.len().max(1) as f64,
            correct: correct_at(&test, threshold),
            total: test.len(),
        });
    }
    Ok(CrossValidation { folds })
}
