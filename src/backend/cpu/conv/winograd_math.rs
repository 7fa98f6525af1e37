//! The transform matrices of Winograd F(2×2, r×r) for r = 3 and 5, as 16-lane
//! operations (one lane per channel). For a 1-D tile of 2 outputs, window
//! d (α = r + 1 inputs) and kernel g: y = Aᵀ[(G g) ⊙ (Bᵀ d)]; in 2-D
//! Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A. r = 3 interpolates at 0, 1, −1, ∞; r = 5 at
//! 0, 1, −1, 2, −2, ∞ (the 5×5 layers of LeNet++ and the Center Loss nets).
//! Vectors are `[Lanes; 6]` for both sizes; r = 3 uses the first four.

/// Channels per vector step.
pub const LANES: usize = 16;
pub type Lanes = [f32; LANES];
/// The widest window, α = 6.
pub const MAX_ALPHA: usize = 6;
pub type Vector = [Lanes; MAX_ALPHA];

// Plain loops rather than `array::from_fn`, which is not always inlined into
// the AVX-512 callers.
#[inline(always)]
pub fn add(mut a: Lanes, b: Lanes) -> Lanes {
    for k in 0..LANES {
        a[k] += b[k];
    }
    a
}

#[inline(always)]
pub fn sub(mut a: Lanes, b: Lanes) -> Lanes {
    for k in 0..LANES {
        a[k] -= b[k];
    }
    a
}

#[inline(always)]
pub fn scale(mut a: Lanes, s: f32) -> Lanes {
    for v in &mut a {
        *v *= s;
    }
    a
}

/// The first `n` lanes from `src`, zeros after.
#[inline(always)]
pub fn load(src: &[f32], n: usize) -> Lanes {
    if n == LANES {
        return src[..LANES].try_into().unwrap();
    }
    let mut l = [0.0; LANES];
    l[..n].copy_from_slice(&src[..n]);
    l
}

/// Writes the first `n` lanes of `v` to `dst`.
///
/// # Safety
/// `dst..dst + n` must be writable.
#[inline(always)]
pub unsafe fn store(dst: *mut f32, v: &Lanes, n: usize) {
    if n == LANES {
        // One vector store; a copy of runtime length would call memcpy.
        (dst as *mut Lanes).write_unaligned(*v);
    } else {
        std::ptr::copy_nonoverlapping(v.as_ptr(), dst, n);
    }
}

const ZERO: Lanes = [0.0; LANES];

/// One F(2×2, r×r): its taps r, window α = r + 1, and its matrices.
pub trait Tile {
    const R: usize;
    const ALPHA: usize;
    /// Bᵀ x (α → α).
    fn bt(x: &Vector) -> Vector;
    /// Aᵀ x (α → 2).
    fn at(x: &Vector) -> [Lanes; 2];
    /// A x (2 → α), the output-gradient transform.
    fn a(x: [Lanes; 2]) -> Vector;
    /// G x (r → α), x in the first r entries.
    fn g(x: &Vector) -> Vector;
    /// Gᵀ x (α → r).
    fn gt(x: &Vector) -> Vector;
}

/// F(2×2, 3×3): Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1],
/// G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1], Aᵀ = [1 1 1 0; 0 1 −1 −1].
pub struct F3;

impl Tile for F3 {
    const R: usize = 3;
    const ALPHA: usize = 4;

    #[inline(always)]
    fn bt(x: &Vector) -> Vector {
        [
            sub(x[0], x[2]),
            add(x[1], x[2]),
            sub(x[2], x[1]),
            sub(x[1], x[3]),
            ZERO,
            ZERO,
        ]
    }

    #[inline(always)]
    fn at(x: &Vector) -> [Lanes; 2] {
        [add(add(x[0], x[1]), x[2]), sub(sub(x[1], x[2]), x[3])]
    }

    #[inline(always)]
    fn a([p, q]: [Lanes; 2]) -> Vector {
        [p, add(p, q), sub(p, q), sub(ZERO, q), ZERO, ZERO]
    }

    #[inline(always)]
    fn g(x: &Vector) -> Vector {
        let outer = add(x[0], x[2]);
        let [plus, minus] = [add(outer, x[1]), sub(outer, x[1])];
        [x[0], scale(plus, 0.5), scale(minus, 0.5), x[2], ZERO, ZERO]
    }

    #[inline(always)]
    fn gt(x: &Vector) -> Vector {
        let (s, d) = (scale(add(x[1], x[2]), 0.5), scale(sub(x[1], x[2]), 0.5));
        [add(x[0], s), d, add(s, x[3]), ZERO, ZERO, ZERO]
    }
}

/// F(2×2, 5×5):
/// Bᵀ = [4 0 −5 0 1 0; 0 −4 −4 1 1 0; 0 4 −4 −1 1 0; 0 −2 −1 2 1 0; 0 2 −1 −2 1 0; 0 4 0 −5 0 1],
/// G = [¼ 0 0 0 0; −⅙(1 1 1 1 1); −⅙(1 −1 1 −1 1); ¹⁄₂₄(1 2 4 8 16); ¹⁄₂₄(1 −2 4 −8 16); 0 0 0 0 1],
/// Aᵀ = [1 1 1 1 1 0; 0 1 −1 2 −2 1].
pub struct F5;

impl Tile for F5 {
    const R: usize = 5;
    const ALPHA: usize = 6;

    #[inline(always)]
    fn bt(x: &Vector) -> Vector {
        let (t1, t2) = (sub(x[4], scale(x[2], 4.0)), sub(x[3], scale(x[1], 4.0)));
        let (t3, t4) = (sub(x[4], x[2]), scale(sub(x[3], x[1]), 2.0));
        [
            add(sub(scale(x[0], 4.0), scale(x[2], 5.0)), x[4]),
            add(t1, t2),
            sub(t1, t2),
            add(t3, t4),
            sub(t3, t4),
            add(sub(scale(x[1], 4.0), scale(x[3], 5.0)), x[5]),
        ]
    }

    #[inline(always)]
    fn at(x: &Vector) -> [Lanes; 2] {
        let (s1, d1) = (add(x[1], x[2]), sub(x[1], x[2]));
        let (s2, d2) = (add(x[3], x[4]), sub(x[3], x[4]));
        [add(add(x[0], s1), s2), add(add(d1, scale(d2, 2.0)), x[5])]
    }

    #[inline(always)]
    fn a([p, q]: [Lanes; 2]) -> Vector {
        let q2 = scale(q, 2.0);
        [p, add(p, q), sub(p, q), add(p, q2), sub(p, q2), q]
    }

    #[inline(always)]
    fn g(x: &Vector) -> Vector {
        let (even, odd) = (add(add(x[0], x[2]), x[4]), add(x[1], x[3]));
        let even4 = add(add(x[0], scale(x[2], 4.0)), scale(x[4], 16.0));
        let odd4 = add(scale(x[1], 2.0), scale(x[3], 8.0));
        [
            scale(x[0], 0.25),
            scale(add(even, odd), -1.0 / 6.0),
            scale(sub(even, odd), -1.0 / 6.0),
            scale(add(even4, odd4), 1.0 / 24.0),
            scale(sub(even4, odd4), 1.0 / 24.0),
            x[4],
        ]
    }

    #[inline(always)]
    fn gt(x: &Vector) -> Vector {
        // Column k of G: (¼δ₀ₖ, −⅙, −⅙(−1)ᵏ, 2ᵏ/24, (−2)ᵏ/24, δ₄ₖ).
        let (s12, d12) = (add(x[1], x[2]), sub(x[2], x[1]));
        let (s34, d34) = (add(x[3], x[4]), sub(x[3], x[4]));
        let sixth = -1.0 / 6.0;
        [
            add(
                add(scale(x[0], 0.25), scale(s12, sixth)),
                scale(s34, 1.0 / 24.0),
            ),
            add(scale(d12, 1.0 / 6.0), scale(d34, 1.0 / 12.0)),
            add(scale(s12, sixth), scale(s34, 1.0 / 6.0)),
            add(scale(d12, 1.0 / 6.0), scale(d34, 1.0 / 3.0)),
            add(add(scale(s12, sixth), scale(s34, 2.0 / 3.0)), x[5]),
            ZERO,
        ]
    }
}
