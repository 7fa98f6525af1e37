//! The A-Softmax pieces of MarginInnerProduct: the λ schedule and ψ(c) with its slope,
//! evaluated from sign flags as sphereface does (no arccos), in f64.

/// λ at counter value t: max(base·(1 + gamma·t)^(−power), lambda_min), computed in
/// f64 from the f32 proto values (this matches the f64 reference cases; f32
/// arithmetic differs by about one f32 ulp of λ).
pub fn lambda_at(base: f32, gamma: f32, power: f32, lambda_min: f32, t: i64) -> f64 {
    let l = base as f64 * (1.0 + gamma as f64 * t as f64).powf(-(power as f64));
    l.max(lambda_min as f64)
}

/// Caffe's sign: −1, 0 or 1 (0 at 0, unlike `f64::signum`).
fn sgn(v: f64) -> f64 {
    if v > 0.0 {
        1.0
    } else if v < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// ψ at a target cosine c and its slope dψ/dc.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Psi {
    pub value: f64,
    pub slope: f64,
}

/// ψ(c) = (−1)^k·cos(mθ) − 2k, θ = arccos c, k = ⌊mθ/π⌋, for m = 1..4 (m = 1: ψ = c).
/// The sign flags pick k; on a region boundary sgn gives 0 and the polynomial still
/// gives the continuous value.
pub fn psi(m: u32, c: f64) -> Psi {
    let s0 = sgn(c);
    let (c2, c3) = (c * c, c * c * c);
    match m {
        1 => Psi {
            value: c,
            slope: 1.0,
        },
        2 => Psi {
            value: 2.0 * s0 * c2 - 1.0,
            slope: 4.0 * s0 * c,
        },
        3 => {
            let s1 = sgn(c.abs() - 0.5);
            let s2 = s0 * (1.0 + s1) - 2.0;
            Psi {
                value: s1 * (4.0 * c3 - 3.0 * c) + s2,
                slope: s1 * (12.0 * c2 - 3.0),
            }
        }
        _ => {
            let s3 = s0 * sgn(2.0 * c2 - 1.0);
            let s4 = 2.0 * s0 + s3 - 3.0;
            Psi {
                value: s3 * (8.0 * c2 * c2 - 8.0 * c2 + 1.0) + s4,
                slope: s3 * (32.0 * c3 - 16.0 * c),
            }
        }
    }
}

/// r = ‖x‖, x·w and c = x·w/r, in f64 (w is a unit row).
pub fn target_cosine(x: &[f32], w: &[f32]) -> (f64, f64, f64) {
    let (mut xx, mut xw) = (0.0f64, 0.0f64);
    for (&a, &b) in x.iter().zip(w) {
        xx += a as f64 * a as f64;
        xw += a as f64 * b as f64;
    }
    let r = xx.sqrt();
    (r, xw, xw / r)
}
