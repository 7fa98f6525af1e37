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
        let c = [
            block as u32,
            (block >> 32) as u32,
            self.iteration as u32,
            (self.iteration >> 32) as u32,
        ];
        philox4x32_10(c, self.key).map(|x| (x >> 8) as f32 * (1.0 / (1u32 << 24) as f32))
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
