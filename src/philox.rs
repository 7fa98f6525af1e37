//! Philox4x32-10, the counter-based generator of Salmon, Moraes, Dror and Shaw
//! ("Parallel Random Numbers: As Easy as 1, 2, 3", SC 2011), written from the
//! paper's definition. A block of four 32-bit outputs is a pure function of a
//! 128-bit counter and a 64-bit key, so any element of a random stream can be
//! computed on its own: a layer's draws for element i of iteration t are the
//! same on every thread count and on any device that implements the function.
//!
//! One round maps (x0, x1, x2, x3) with key (k0, k1) to
//!   (hi(M1·x2) ⊕ x1 ⊕ k0, lo(M1·x2), hi(M0·x0) ⊕ x3 ⊕ k1, lo(M0·x0))
//! with M0 = 0xD2511F53, M1 = 0xCD9E8D57 (hi/lo: the halves of the 64-bit
//! product); between rounds the key grows by the Weyl constants
//! (0x9E3779B9, 0xBB67AE85). Ten rounds make Philox4x32-10.

const M0: u32 = 0xD251_1F53;
const M1: u32 = 0xCD9E_8D57;
const W0: u32 = 0x9E37_79B9;
const W1: u32 = 0xBB67_AE85;

#[inline(always)]
fn mulhilo(a: u32, b: u32) -> (u32, u32) {
    let p = a as u64 * b as u64;
    ((p >> 32) as u32, p as u32)
}

/// Philox4x32 with `rounds` rounds (10 is the standard generator).
#[inline]
pub fn philox4x32(rounds: usize, counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let [mut x0, mut x1, mut x2, mut x3] = counter;
    let [mut k0, mut k1] = key;
    for r in 0..rounds {
        if r > 0 {
            k0 = k0.wrapping_add(W0);
            k1 = k1.wrapping_add(W1);
        }
        let (hi0, lo0) = mulhilo(M0, x0);
        let (hi1, lo1) = mulhilo(M1, x2);
        (x0, x1, x2, x3) = (hi1 ^ x1 ^ k0, lo1, hi0 ^ x3 ^ k1, lo0);
    }
    [x0, x1, x2, x3]
}

/// Philox4x32-10.
#[inline]
pub fn philox4x32_10(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    philox4x32(10, counter, key)
}

/// A key from a seed and a name (a layer's), so two layers of one net never
/// share a stream: FNV-1a of the name, mixed with the seed.
pub fn key_for(seed: u64, name: &str) -> [u32; 2] {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
    }
    let k = seed ^ h.rotate_left(29);
    [k as u32, (k >> 32) as u32]
}

/// The uniform draws in [0, 1) of one stream (a key and an iteration), by
/// element index: element i is lane i mod 4 of the block at counter
/// (⌊i/4⌋ as 64 bits, iteration as 64 bits), its top 24 bits scaled by 2⁻²⁴.
#[derive(Debug, Clone, Copy)]
pub struct Stream {
    pub key: [u32; 2],
    pub iteration: u64,
}

impl Stream {
    /// The four draws of block `block` (elements 4·block .. 4·block + 3).
    #[inline]
    pub fn block(&self, block: u64) -> [f32; 4] {
        self.words(block)
            .map(|x| (x >> 8) as f32 * (1.0 / (1u32 << 24) as f32))
    }

    /// Fills `out` with the draws of elements `start..start + out.len()`.
    pub fn fill(&self, start: usize, out: &mut [f32]) {
        let mut i = start;
        let end = start + out.len();
        let mut k = 0;
        while i < end {
            let b = self.block((i / 4) as u64);
            let lane = i % 4;
            let n = (4 - lane).min(end - i);
            out[k..k + n].copy_from_slice(&b[lane..lane + n]);
            i += n;
            k += n;
        }
    }
}

impl Stream {
    /// The full 32-bit words of block `block`, for draws that need more than
    /// the 24 bits of [`Stream::block`] (the Gaussian's tails).
    #[inline]
    fn words(&self, block: u64) -> [u32; 4] {
        let c = [
            block as u32,
            (block >> 32) as u32,
            self.iteration as u32,
            (self.iteration >> 32) as u32,
        ];
        philox4x32_10(c, self.key)
    }

    /// Fills `out` with U[lo, hi) draws of elements `0..out.len()` (all `lo`
    /// when the range is empty).
    pub fn fill_uniform(&self, out: &mut [f32], lo: f32, hi: f32) {
        if hi > lo {
            self.fill(0, out);
            out.iter_mut().for_each(|v| *v = lo + (hi - lo) * *v);
        } else {
            out.fill(lo);
        }
    }

    /// Fills `out` with N(mean, std²) draws of elements `0..out.len()` by
    /// Box–Muller: elements 2j and 2j+1 come from the four words of block j,
    /// u1 = (w0·2³² + w1 + ½)/2⁶⁴ ∈ (0, 1) and u2 likewise from (w2, w3), as
    /// r·cos(2πu2) and r·sin(2πu2) with r = √(−2 ln u1).
    pub fn fill_normal(&self, out: &mut [f32], mean: f32, std: f32) {
        let unit =
            |hi: u32, lo: u32| ((((hi as u64) << 32) | lo as u64) as f64 + 0.5) / 2f64.powi(64);
        for (j, pair) in out.chunks_mut(2).enumerate() {
            let [w0, w1, w2, w3] = self.words(j as u64);
            let r = (-2.0 * unit(w0, w1).ln()).sqrt();
            let (s, c) = (2.0 * std::f64::consts::PI * unit(w2, w3)).sin_cos();
            pair[0] = (mean as f64 + std as f64 * r * c) as f32;
            if let Some(v) = pair.get_mut(1) {
                *v = (mean as f64 + std as f64 * r * s) as f32;
            }
        }
    }
}

/// The streams that fill one layer's learnable blobs: blob `i` of layer
/// `name` draws from the key of (seed, "name.i") at iteration 0, so a layer's
/// initial weights depend on the seed and its own name only (adding a layer
/// elsewhere leaves them alone), and any device computes the same values.
#[derive(Debug, Clone, Copy)]
pub struct ParamStreams<'a> {
    pub seed: u64,
    pub layer: &'a str,
}

impl ParamStreams<'_> {
    /// The stream of learnable blob `i`.
    pub fn blob(&self, i: usize) -> Stream {
        Stream {
            key: key_for(self.seed, &format!("{}.{i}", self.layer)),
            iteration: 0,
        }
    }
}

#[cfg(test)]
mod draw_tests {
    use super::*;

    #[test]
    fn normal_draws_have_the_asked_moments() {
        let s = Stream {
            key: key_for(5, "w"),
            iteration: 0,
        };
        let mut v = vec![0.0f32; 200_001];
        s.fill_normal(&mut v, 1.5, 2.0);
        let n = v.len() as f64;
        let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
        let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
        // Standard errors: 2/√n ≈ 0.0045 for the mean, ≈ 0.0126 for the variance 4.
        assert!((mean - 1.5).abs() < 0.02, "mean {mean}");
        assert!((var - 4.0).abs() < 0.06, "variance {var}");
        let beyond = v.iter().filter(|&&x| ((x - 1.5) / 2.0).abs() > 3.0).count() as f64 / n;
        // P(|z| > 3) = 0.0027.
        assert!((beyond - 0.0027).abs() < 0.0006, "tail {beyond}");
    }

    #[test]
    fn uniform_draws_cover_the_range_evenly() {
        let s = Stream {
            key: key_for(9, "u"),
            iteration: 3,
        };
        let mut v = vec![0.0f32; 100_000];
        s.fill_uniform(&mut v, -2.0, 6.0);
        assert!(v.iter().all(|&x| (-2.0..6.0).contains(&x)));
        let mut bins = [0usize; 8];
        v.iter()
            .for_each(|&x| bins[((x + 2.0) as usize).min(7)] += 1);
        // Each bin expects 12,500 with a standard deviation of ≈ 105.
        assert!(
            bins.iter().all(|&b| (b as i64 - 12_500).abs() < 500),
            "{bins:?}"
        );
        let mut same = vec![0.0f32; 5];
        s.fill_uniform(&mut same, 1.0, 1.0);
        assert_eq!(same, vec![1.0; 5]);
    }

    #[test]
    fn layers_and_blobs_get_distinct_streams() {
        let a = ParamStreams {
            seed: 1,
            layer: "conv1",
        };
        let b = ParamStreams {
            seed: 1,
            layer: "conv2",
        };
        assert_ne!(a.blob(0).key, a.blob(1).key);
        assert_ne!(a.blob(0).key, b.blob(0).key);
        assert_ne!(
            a.blob(0).key,
            ParamStreams {
                seed: 2,
                layer: "conv1"
            }
            .blob(0)
            .key
        );
    }
}
