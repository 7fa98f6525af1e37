//! The ROC curve of scored pairs: for each threshold t (same ⇔ score ≥ t),
//! TAR(t) = #same pairs scoring ≥ t / #same and FAR(t) = #different pairs
//! scoring ≥ t / #different. The curve runs from (0, 0) (t above every
//! score) to (1, 1), one point per distinct score, taken in decreasing order
//! (tied scores move both rates at once, a diagonal step). AUC is the
//! trapezoidal area under it (ties count ½, as the Mann–Whitney statistic).
//! TAR at FAR = f is the highest TAR among thresholds whose FAR ≤ f.

use super::folds::Scored;

/// One point of the curve.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RocPoint {
    pub threshold: f64,
    pub far: f64,
    pub tar: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Roc {
    /// From (0, 0) to (1, 1); the first point's threshold is +∞.
    pub points: Vec<RocPoint>,
    pub positives: usize,
    pub negatives: usize,
}

impl Roc {
    /// The curve of `pairs`; `None` when either class is absent.
    pub fn new(pairs: &[Scored]) -> Option<Roc> {
        let positives = pairs.iter().filter(|p| p.same).count();
        let negatives = pairs.len() - positives;
        if positives == 0 || negatives == 0 {
            return None;
        }
        let mut sorted: Vec<&Scored> = pairs.iter().collect();
        sorted.sort_by(|a, b| b.score.total_cmp(&a.score));
        let mut points = vec![RocPoint {
            threshold: f64::INFINITY,
            far: 0.0,
            tar: 0.0,
        }];
        let (mut tp, mut fp) = (0usize, 0usize);
        let mut i = 0;
        while i < sorted.len() {
            let v = sorted[i].score;
            while i < sorted.len() && sorted[i].score == v {
                if sorted[i].same {
                    tp += 1;
                } else {
                    fp += 1;
                }
                i += 1;
            }
            points.push(RocPoint {
                threshold: v,
                far: fp as f64 / negatives as f64,
                tar: tp as f64 / positives as f64,
            });
        }
        Some(Roc {
            points,
            positives,
            negatives,
        })
    }

    /// Trapezoidal area under the curve.
    pub fn auc(&self) -> f64 {
        self.points
            .windows(2)
            .map(|w| (w[1].far - w[0].far) * 0.5 * (w[1].tar + w[0].tar))
            .sum()
    }

    /// The best point with FAR ≤ `far` (the first point always qualifies).
    pub fn tar_at_far(&self, far: f64) -> RocPoint {
        let mut best = self.points[0];
        for p in &self.points {
            if p.far <= far && p.tar > best.tar {
                best = *p;
            }
        }
        best
    }
}
