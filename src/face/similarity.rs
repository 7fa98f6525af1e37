//! Similarity transforms (rotation, uniform scale, translation) fitted by
//! least squares, and the alignment templates.
//!
//! The transform maps p = (x, y) to (a·x − b·y + tx, b·x + a·y + ty). Over
//! point pairs pᵢ → qᵢ the least-squares solution is, with p̃ and q̃ the
//! points minus their centroids p̄ and q̄:
//!   a = Σ (p̃ₓ q̃ₓ + p̃ᵧ q̃ᵧ) / Σ |p̃|²,   b = Σ (p̃ₓ q̃ᵧ − p̃ᵧ q̃ₓ) / Σ |p̃|²,
//!   t = q̄ − [a −b; b a] p̄
//! (setting the derivatives of Σ |T pᵢ − qᵢ|² by a, b, tx, ty to zero).

/// A similarity transform.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Similarity {
    pub a: f64,
    pub b: f64,
    pub tx: f64,
    pub ty: f64,
}

impl Similarity {
    /// The least-squares fit of `from` onto `to` (same length, ≥ 2 distinct points).
    pub fn fit(from: &[[f64; 2]], to: &[[f64; 2]]) -> Option<Similarity> {
        let n = from.len();
        if n < 2 || to.len() != n {
            return None;
        }
        let mean = |p: &[[f64; 2]]| {
            let s = p.iter().fold([0.0, 0.0], |s, q| [s[0] + q[0], s[1] + q[1]]);
            [s[0] / n as f64, s[1] / n as f64]
        };
        let (pm, qm) = (mean(from), mean(to));
        let (mut num_a, mut num_b, mut den) = (0.0, 0.0, 0.0);
        for (p, q) in from.iter().zip(to) {
            let (px, py) = (p[0] - pm[0], p[1] - pm[1]);
            let (qx, qy) = (q[0] - qm[0], q[1] - qm[1]);
            num_a += px * qx + py * qy;
            num_b += px * qy - py * qx;
            den += px * px + py * py;
        }
        if den <= 0.0 {
            return None;
        }
        let (a, b) = (num_a / den, num_b / den);
        Some(Similarity {
            a,
            b,
            tx: qm[0] - (a * pm[0] - b * pm[1]),
            ty: qm[1] - (b * pm[0] + a * pm[1]),
        })
    }

    pub fn apply(&self, p: [f64; 2]) -> [f64; 2] {
        [
            self.a * p[0] - self.b * p[1] + self.tx,
            self.b * p[0] + self.a * p[1] + self.ty,
        ]
    }

    /// The inverse transform (None when degenerate).
    pub fn inverse(&self) -> Option<Similarity> {
        let d = self.a * self.a + self.b * self.b;
        if d <= 0.0 {
            return None;
        }
        let (a, b) = (self.a / d, -self.b / d);
        Some(Similarity {
            a,
            b,
            tx: -(a * self.tx - b * self.ty),
            ty: -(b * self.tx + a * self.ty),
        })
    }

    /// The uniform scale factor √(a² + b²).
    pub fn scale(&self) -> f64 {
        self.a.hypot(self.b)
    }
}

/// Five reference points in an output image of a given size.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub name: &'static str,
    /// Height, width of the image the points are given in.
    pub size: [usize; 2],
    /// Left eye, right eye, nose tip, left and right mouth corner (x, y),
    /// in the continuous coordinates of [`super::nms`] (pixel centres at +0.5).
    pub points: [[f64; 2]; 5],
}

/// The templates `--template` names. SphereFace's 112×96 points are the
/// published ones of its alignment step (given there 1-based, at pixel
/// centres: a point at 1-based column c is at c − 0.5 here); `arcface` is
/// the same face in a 112×112 crop, 8 pixels further right.
pub fn template(name: &str) -> Option<Template> {
    const SPHEREFACE: [[f64; 2]; 5] = [
        [30.2946, 51.6963],
        [65.5318, 51.5014],
        [48.0252, 71.7366],
        [33.5493, 92.3655],
        [62.7299, 92.2041],
    ];
    let shifted = |dx: f64| SPHEREFACE.map(|[x, y]| [x - 0.5 + dx, y - 0.5]);
    match name {
        "sphereface" => Some(Template {
            name: "sphereface",
            size: [112, 96],
            points: shifted(0.0),
        }),
        "arcface" => Some(Template {
            name: "arcface",
            size: [112, 112],
            points: shifted(8.0),
        }),
        _ => None,
    }
}

/// The template's names.
pub const TEMPLATES: &[&str] = &["sphereface", "arcface"];

impl Template {
    /// The points for an output of `size` = [H, W], scaled from the template's own size.
    pub fn points_for(&self, size: [usize; 2]) -> [[f64; 2]; 5] {
        let sy = size[0] as f64 / self.size[0] as f64;
        let sx = size[1] as f64 / self.size[1] as f64;
        self.points.map(|[x, y]| [x * sx, y * sy])
    }
}
