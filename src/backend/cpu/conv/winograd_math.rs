//! The transform matrices of Winograd F(m×m, r×r) as 16-lane operations (one
//! lane per channel): F(2×2, 3×3) and F(4×4, 3×3) for 3×3 kernels, F(4×4, 5×5)
//! for 5×5 ones. For a 1-D tile of m outputs, window d (α = m + r − 1 inputs)
//! and kernel g: y = Aᵀ[(G g) ⊙ (Bᵀ d)]; in 2-D Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A.
//! F(2×2, 3×3) interpolates at 0, 1, −1, ∞ (16 products per 4 outputs and
//! channel pair, 36 direct); F(4×4, 3×3) at 0, ±1, ±2, ∞ (36 per 16 outputs,
//! 144 direct, for large batches: its U is 2.25× bigger and it rounds about
//! 4× coarser); F(4×4, 5×5) at 0, ±1, ±2, ±½, ∞ (64 per 16 outputs, 400
//! direct: the 5×5 layers of LeNet++ and the Center Loss nets).
//! Vectors are `[Lanes; 8]` for every size; smaller α use the first entries.

/// Channels per vector step.
pub const LANES: usize = 16;
pub type Lanes = [f32; LANES];
/// The widest window, α = 8.
pub const MAX_ALPHA: usize = 8;
pub type Vector = [Lanes; MAX_ALPHA];
/// The most outputs per tile side, m = 4.
pub const MAX_M: usize = 4;
/// A tile side's outputs (the first m used).
pub type Outputs = [Lanes; MAX_M];

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

/// One F(m×m, r×r): its taps r, outputs per side m, window α = m + r − 1,
/// and its matrices.
pub trait Tile {
    const R: usize;
    const M: usize;
    const ALPHA: usize;
    /// Bᵀ x (α → α).
    fn bt(x: &Vector) -> Vector;
    /// Aᵀ x (α → m).
    fn at(x: &Vector) -> Outputs;
    /// A x (m → α), the output-gradient transform.
    fn a(x: Outputs) -> Vector;
    /// G x (r → α), x in the first r entries.
    fn g(x: &Vector) -> Vector;
    /// Gᵀ x (α → r).
    fn gt(x: &Vector) -> Vector;
}

/// Which F(m×m, r×r) a layer runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TileKind {
    F2x3,
    F4x3,
    F4x5,
}

/// F(2×2, 3×3): Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1],
/// G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1], Aᵀ = [1 1 1 0; 0 1 −1 −1].
pub struct F2x3;

impl Tile for F2x3 {
    const R: usize = 3;
    const M: usize = 2;
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
            ZERO,
            ZERO,
        ]
    }

    #[inline(always)]
    fn at(x: &Vector) -> Outputs {
        [
            add(add(x[0], x[1]), x[2]),
            sub(sub(x[1], x[2]), x[3]),
            ZERO,
            ZERO,
        ]
    }

    #[inline(always)]
    fn a([p, q, _, _]: Outputs) -> Vector {
        [
            p,
            add(p, q),
            sub(p, q),
            sub(ZERO, q),
            ZERO,
            ZERO,
            ZERO,
            ZERO,
        ]
    }

    #[inline(always)]
    fn g(x: &Vector) -> Vector {
        let outer = add(x[0], x[2]);
        let [plus, minus] = [add(outer, x[1]), sub(outer, x[1])];
        let [plus, minus] = [scale(plus, 0.5), scale(minus, 0.5)];
        [x[0], plus, minus, x[2], ZERO, ZERO, ZERO, ZERO]
    }

    #[inline(always)]
    fn gt(x: &Vector) -> Vector {
        let (s, d) = (scale(add(x[1], x[2]), 0.5), scale(sub(x[1], x[2]), 0.5));
        [add(x[0], s), d, add(s, x[3]), ZERO, ZERO, ZERO, ZERO, ZERO]
    }
}

/// F(4×4, 3×3), points (0, 1, −1, 2, −2, ∞), Bᵀ and Aᵀ integer:
/// Bᵀ = [4 0 −5 0 1 0; 0 −4 −4 1 1 0; 0 4 −4 −1 1 0; 0 −2 −1 2 1 0;
///       0 2 −1 −2 1 0; 0 4 0 −5 0 1],
/// G = [¼ 0 0; −⅙(1 1 1); −⅙(1 −1 1); ¹⁄₂₄(1 2 4); ¹⁄₂₄(1 −2 4); 0 0 1],
/// Aᵀ = [1 1 1 1 1 0; 0 1 −1 2 −2 0; 0 1 1 4 4 0; 0 1 −1 8 −8 1].
pub struct F4x3;

impl Tile for F4x3 {
    const R: usize = 3;
    const M: usize = 4;
    const ALPHA: usize = 6;

    #[inline(always)]
    fn bt(x: &Vector) -> Vector {
        // Rows 1..4 pair up as even ± odd parts (points ±1, ±2).
        let (e1, o1) = (sub(x[4], scale(x[2], 4.0)), sub(x[3], scale(x[1], 4.0)));
        let (e2, o2) = (sub(x[4], x[2]), scale(sub(x[3], x[1]), 2.0));
        [
            add(mix(4.0, x[0], -5.0, x[2]), x[4]),
            add(e1, o1),
            sub(e1, o1),
            add(e2, o2),
            sub(e2, o2),
            add(mix(4.0, x[1], -5.0, x[3]), x[5]),
            ZERO,
            ZERO,
        ]
    }

    #[inline(always)]
    fn at(x: &Vector) -> Outputs {
        let (s1, d1) = (add(x[1], x[2]), sub(x[1], x[2]));
        let (s2, d2) = (add(x[3], x[4]), sub(x[3], x[4]));
        [
            add(add(x[0], s1), s2),
            add(d1, scale(d2, 2.0)),
            add(s1, scale(s2, 4.0)),
            add(add(d1, scale(d2, 8.0)), x[5]),
        ]
    }

    #[inline(always)]
    fn a([p0, p1, p2, p3]: Outputs) -> Vector {
        let (e1, o1) = (add(p0, p2), add(p1, p3));
        let (e2, o2) = (add(p0, scale(p2, 4.0)), mix(2.0, p1, 8.0, p3));
        [
            p0,
            add(e1, o1),
            sub(e1, o1),
            add(e2, o2),
            sub(e2, o2),
            p3,
            ZERO,
            ZERO,
        ]
    }

    #[inline(always)]
    fn g(x: &Vector) -> Vector {
        let (e1, o1) = (add(x[0], x[2]), x[1]);
        let (e2, o2) = (add(x[0], scale(x[2], 4.0)), scale(x[1], 2.0));
        let (r6, r24) = (-1.0 / 6.0, 1.0 / 24.0);
        [
            scale(x[0], 0.25),
            scale(add(e1, o1), r6),
            scale(sub(e1, o1), r6),
            scale(add(e2, o2), r24),
            scale(sub(e2, o2), r24),
            x[2],
            ZERO,
            ZERO,
        ]
    }

    #[inline(always)]
    fn gt(x: &Vector) -> Vector {
        // Column t of G: (¼δ₀ₜ, −⅙, −(−1)ᵗ/6, 2ᵗ/24, (−2)ᵗ/24, δ₂ₜ).
        let (s1, d1) = (add(x[1], x[2]), sub(x[1], x[2]));
        let (s2, d2) = (add(x[3], x[4]), sub(x[3], x[4]));
        let (r6, r24) = (-1.0 / 6.0, 1.0 / 24.0);
        [
            add(scale(x[0], 0.25), mix(r6, s1, r24, s2)),
            mix(r6, d1, 2.0 * r24, d2),
            add(mix(r6, s1, 4.0 * r24, s2), x[5]),
            ZERO,
            ZERO,
            ZERO,
            ZERO,
            ZERO,
        ]
    }
}

/// F(4×4, 5×5), points (0, 1, −1, 2, −2, ½, −½, ∞), with the scalings that
/// keep Bᵀ and Aᵀ integer (G takes the fractions, computed once per kernel):
/// Bᵀ = [4 0 −21 0 21 0 −4 0; 0 −4 −4 17 17 −4 −4 0; 0 4 −4 −17 17 4 −4 0;
///       0 2 1 −10 −5 8 4 0; 0 −2 1 10 −5 −8 4 0; 0 4 8 −5 −10 1 2 0;
///       0 −4 8 5 −10 −1 2 0; 0 −4 0 21 0 −21 0 4],
/// G = [¼ 0 0 0 0; ¹⁄₁₈(1 1 1 1 1); ¹⁄₁₈(1 −1 1 −1 1); ¹⁄₃₆₀(1 2 4 8 16);
///      ¹⁄₃₆₀(1 −2 4 −8 16); ¹⁄₃₆₀(16 8 4 2 1); ¹⁄₃₆₀(16 −8 4 −2 1); 0 0 0 0 ¼],
/// Aᵀ = [1 1 1 1 1 8 8 0; 0 1 −1 2 −2 4 −4 0; 0 1 1 4 4 2 2 0; 0 1 −1 8 −8 1 −1 1].
pub struct F4x5;

/// a·x + b·y, lane by lane.
#[inline(always)]
fn mix(a: f32, x: Lanes, b: f32, y: Lanes) -> Lanes {
    add(scale(x, a), scale(y, b))
}

/// The values at +p and −p of three points from their even parts e and odd
/// parts o: (e₁ + o₁, e₁ − o₁, e₂ + o₂, …).
#[inline(always)]
fn plus_minus(e: [Lanes; 3], o: [Lanes; 3]) -> [Lanes; 6] {
    [
        add(e[0], o[0]),
        sub(e[0], o[0]),
        add(e[1], o[1]),
        sub(e[1], o[1]),
        add(e[2], o[2]),
        sub(e[2], o[2]),
    ]
}

impl Tile for F4x5 {
    const R: usize = 5;
    const M: usize = 4;
    const ALPHA: usize = 8;

    #[inline(always)]
    fn bt(x: &Vector) -> Vector {
        // Rows 1..6 pair up as even ± odd parts (points ±p).
        let e1 = add(scale(x[4], 17.0), scale(add(x[2], x[6]), -4.0));
        let o1 = add(scale(x[3], 17.0), scale(add(x[1], x[5]), -4.0));
        let e2 = add(sub(x[2], scale(x[4], 5.0)), scale(x[6], 4.0));
        let o2 = add(mix(2.0, x[1], -10.0, x[3]), scale(x[5], 8.0));
        let e3 = add(mix(8.0, x[2], -10.0, x[4]), scale(x[6], 2.0));
        let o3 = add(mix(4.0, x[1], -5.0, x[3]), x[5]);
        let [p1, m1, p2, m2, p3, m3] = plus_minus([e1, e2, e3], [o1, o2, o3]);
        [
            mix(4.0, sub(x[0], x[6]), 21.0, sub(x[4], x[2])),
            p1,
            m1,
            p2,
            m2,
            p3,
            m3,
            mix(4.0, sub(x[7], x[1]), 21.0, sub(x[3], x[5])),
        ]
    }

    #[inline(always)]
    fn at(x: &Vector) -> Outputs {
        let (s1, d1) = (add(x[1], x[2]), sub(x[1], x[2]));
        let (s2, d2) = (add(x[3], x[4]), sub(x[3], x[4]));
        let (s3, d3) = (add(x[5], x[6]), sub(x[5], x[6]));
        [
            add(add(x[0], s1), mix(1.0, s2, 8.0, s3)),
            add(d1, mix(2.0, d2, 4.0, d3)),
            add(s1, mix(4.0, s2, 2.0, s3)),
            add(add(d1, scale(d2, 8.0)), add(d3, x[7])),
        ]
    }

    #[inline(always)]
    fn a([p0, p1, p2, p3]: Outputs) -> Vector {
        // Points ±1, ±2, ±½ (scaled by 8): even part ± odd part.
        let (e1, o1) = (add(p0, p2), add(p1, p3));
        let (e2, o2) = (add(p0, scale(p2, 4.0)), mix(2.0, p1, 8.0, p3));
        let (e3, o3) = (mix(8.0, p0, 2.0, p2), mix(4.0, p1, 1.0, p3));
        let [a1, b1, a2, b2, a3, b3] = plus_minus([e1, e2, e3], [o1, o2, o3]);
        [p0, a1, b1, a2, b2, a3, b3, p3]
    }

    #[inline(always)]
    fn g(x: &Vector) -> Vector {
        let (e1, o1) = (add(add(x[0], x[2]), x[4]), add(x[1], x[3]));
        let e2 = add(add(x[0], scale(x[2], 4.0)), scale(x[4], 16.0));
        let o2 = mix(2.0, x[1], 8.0, x[3]);
        let e3 = add(add(scale(x[0], 16.0), scale(x[2], 4.0)), x[4]);
        let o3 = mix(8.0, x[1], 2.0, x[3]);
        let (r18, r360) = (1.0 / 18.0, 1.0 / 360.0);
        [
            scale(x[0], 0.25),
            scale(add(e1, o1), r18),
            scale(sub(e1, o1), r18),
            scale(add(e2, o2), r360),
            scale(sub(e2, o2), r360),
            scale(add(e3, o3), r360),
            scale(sub(e3, o3), r360),
            scale(x[4], 0.25),
        ]
    }

    #[inline(always)]
    fn gt(x: &Vector) -> Vector {
        // Column t of G: (¼δ₀ₜ, 1/18, (−1)ᵗ/18, 2ᵗ/360, (−2)ᵗ/360,
        // 2⁴⁻ᵗ/360, (−1)ᵗ2⁴⁻ᵗ/360, ¼δ₄ₜ).
        let (s1, d1) = (add(x[1], x[2]), sub(x[1], x[2]));
        let (s2, d2) = (add(x[3], x[4]), sub(x[3], x[4]));
        let (s3, d3) = (add(x[5], x[6]), sub(x[5], x[6]));
        let (r18, r360) = (1.0 / 18.0, 1.0 / 360.0);
        [
            add(
                add(scale(x[0], 0.25), scale(s1, r18)),
                mix(r360, s2, 16.0 * r360, s3),
            ),
            add(scale(d1, r18), mix(2.0 * r360, d2, 8.0 * r360, d3)),
            add(scale(s1, r18), mix(4.0 * r360, s2, 4.0 * r360, s3)),
            add(scale(d1, r18), mix(8.0 * r360, d2, 2.0 * r360, d3)),
            add(
                add(scale(s1, r18), mix(16.0 * r360, s2, r360, s3)),
                scale(x[7], 0.25),
            ),
            ZERO,
            ZERO,
            ZERO,
        ]
    }
}
