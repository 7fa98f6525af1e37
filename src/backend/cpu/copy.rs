//! Copies and fills of short rows (a few to a few hundred floats), as the
//! convolution kernels do for every image row. For such lengths libc's
//! memcpy/memset call and size dispatch cost more than the move itself, so
//! with AVX-512 a row is moved in 16-float masked vector steps instead (when
//! the dispatch level, `isa.rs`, is AVX-512).

/// dst ← src (equal lengths).
#[inline]
pub fn copy(dst: &mut [f32], src: &[f32]) {
    assert_eq!(dst.len(), src.len(), "copy: lengths differ");
    #[cfg(target_arch = "x86_64")]
    if avx512() {
        // SAFETY: AVX-512F is present (checked above); lengths are equal.
        unsafe { x86::copy(dst, src) };
        return;
    }
    dst.copy_from_slice(src);
}

/// dst ← 0.
#[inline]
pub fn zero(dst: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if avx512() {
        // SAFETY: AVX-512F is present (checked above).
        unsafe { x86::zero(dst) };
        return;
    }
    dst.fill(0.0);
}

#[cfg(target_arch = "x86_64")]
#[inline]
fn avx512() -> bool {
    super::isa::isa() == super::isa::Isa::Avx512
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// Mask selecting the first `n` (≤ 16) lanes.
    #[inline]
    fn lanes(n: usize) -> __mmask16 {
        ((1u32 << n) - 1) as __mmask16
    }

    #[target_feature(enable = "avx512f")]
    pub unsafe fn copy(dst: &mut [f32], src: &[f32]) {
        let (n, d, s) = (dst.len(), dst.as_mut_ptr(), src.as_ptr());
        let mut i = 0;
        while i + 16 <= n {
            _mm512_storeu_ps(d.add(i), _mm512_loadu_ps(s.add(i)));
            i += 16;
        }
        if i < n {
            let m = lanes(n - i);
            _mm512_mask_storeu_ps(d.add(i), m, _mm512_maskz_loadu_ps(m, s.add(i)));
        }
    }

    #[target_feature(enable = "avx512f")]
    pub unsafe fn zero(dst: &mut [f32]) {
        let (n, d) = (dst.len(), dst.as_mut_ptr());
        let z = _mm512_setzero_ps();
        let mut i = 0;
        while i + 16 <= n {
            _mm512_storeu_ps(d.add(i), z);
            i += 16;
        }
        if i < n {
            _mm512_mask_storeu_ps(d.add(i), lanes(n - i), z);
        }
    }
}
