//! Candidate face boxes and the box arithmetic of the MTCNN cascade.
//!
//! Coordinates are continuous image coordinates, pixel (row i, column j)
//! covering [j, j + 1) × [i, i + 1); a box is [x1, x2) × [y1, y2), its width
//! x2 − x1 and its area (x2 − x1)(y2 − y1).

/// A candidate face: box, score, the regression offsets the net proposed
/// for it, and (after O-Net) five landmarks.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
    pub score: f32,
    /// dx1, dy1, dx2, dy2 in units of the box's width and height.
    pub reg: [f32; 4],
    /// x of the five points, then y (left eye, right eye, nose, left and right mouth corner).
    pub landmarks: Option<[f32; 10]>,
}

impl Candidate {
    pub fn width(&self) -> f32 {
        self.x2 - self.x1
    }
    pub fn height(&self) -> f32 {
        self.y2 - self.y1
    }
    pub fn area(&self) -> f32 {
        self.width().max(0.0) * self.height().max(0.0)
    }

    /// Applies the regression: each side moves by its offset times the
    /// box's extent along its axis (x1 += dx1·w, y1 += dy1·h, x2 += dx2·w, y2 += dy2·h).
    pub fn regress(&mut self) {
        let (w, h) = (self.width(), self.height());
        let [dx1, dy1, dx2, dy2] = self.reg;
        self.x1 += dx1 * w;
        self.y1 += dy1 * h;
        self.x2 += dx2 * w;
        self.y2 += dy2 * h;
        self.reg = [0.0; 4];
    }

    /// Grows the box to a square of side max(w, h) about the same centre.
    pub fn square(&mut self) {
        let side = self.width().max(self.height());
        let cx = 0.5 * (self.x1 + self.x2);
        let cy = 0.5 * (self.y1 + self.y2);
        self.x1 = cx - 0.5 * side;
        self.x2 = cx + 0.5 * side;
        self.y1 = cy - 0.5 * side;
        self.y2 = cy + 0.5 * side;
    }
}

/// How the overlap of two boxes is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overlap {
    /// Intersection over union.
    Union,
    /// Intersection over the smaller area (drops a box inside a better one).
    Min,
}

/// Overlap of two boxes by `kind` (0 when either is empty).
pub fn overlap(a: &Candidate, b: &Candidate, kind: Overlap) -> f32 {
    let iw = (a.x2.min(b.x2) - a.x1.max(b.x1)).max(0.0);
    let ih = (a.y2.min(b.y2) - a.y1.max(b.y1)).max(0.0);
    let inter = iw * ih;
    let denom = match kind {
        Overlap::Union => a.area() + b.area() - inter,
        Overlap::Min => a.area().min(b.area()),
    };
    if denom <= 0.0 {
        0.0
    } else {
        inter / denom
    }
}

/// Greedy non-maximum suppression: in decreasing score order (ties by
/// position in `boxes`), keep a box unless its overlap with a kept one
/// exceeds `threshold`. Returns the kept boxes, best first.
pub fn nms(mut boxes: Vec<Candidate>, threshold: f32, kind: Overlap) -> Vec<Candidate> {
    let mut order: Vec<usize> = (0..boxes.len()).collect();
    order.sort_by(|&a, &b| boxes[b].score.total_cmp(&boxes[a].score).then(a.cmp(&b)));
    let mut kept: Vec<usize> = Vec::new();
    for i in order {
        if kept
            .iter()
            .all(|&k| overlap(&boxes[k], &boxes[i], kind) <= threshold)
        {
            kept.push(i);
        }
    }
    let mut out = Vec::with_capacity(kept.len());
    for k in kept {
        out.push(std::mem::replace(
            &mut boxes[k],
            Candidate {
                x1: 0.0,
                y1: 0.0,
                x2: 0.0,
                y2: 0.0,
                score: 0.0,
                reg: [0.0; 4],
                landmarks: None,
            },
        ));
    }
    out
}
