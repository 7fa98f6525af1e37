//! The machine's f32 multiply-add peak, measured rather than assumed: each
//! thread runs independent chains of vector FMAs (enough chains to cover the
//! FMA latency on two pipes) on register-resident values, at a given dispatch
//! level. The convolutions' GFLOP/s are quoted as a fraction of this.

use super::isa::Isa;
use std::time::Instant;

/// Multiply-add iterations per call of a kernel between clock reads.
const STEPS: usize = 1 << 20;

/// GFLOP/s (a multiply-add counts 2) of `threads` threads, each running the
/// `isa` kernel for about `seconds`. `isa` must not exceed [`Isa::detected`].
pub fn fma_peak_gflops(isa: Isa, threads: usize, seconds: f64) -> f64 {
    assert!(isa <= Isa::detected(), "{isa} is not available on this CPU");
    let threads = threads.max(1);
    let start = Instant::now();
    let flops: f64 = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(move || {
                    let mut flops = 0.0;
                    let mut sink = 0.0f32;
                    while start.elapsed().as_secs_f64() < seconds {
                        let (f, v) = run(isa, STEPS);
                        flops += f;
                        sink += v;
                    }
                    // Keep the results alive so the loops are not removed.
                    std::hint::black_box(sink);
                    flops
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    });
    flops / start.elapsed().as_secs_f64() / 1e9
}

/// FLOPs done and a value depending on every chain.
fn run(isa: Isa, steps: usize) -> (f64, f32) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the caller checked that `isa` is available.
    unsafe {
        match isa {
            Isa::Avx512 => return (steps as f64 * 12.0 * 16.0 * 2.0, x86::avx512(steps)),
            Isa::Avx2 => return (steps as f64 * 10.0 * 8.0 * 2.0, x86::avx2(steps)),
            Isa::Scalar => return (steps as f64 * 8.0 * 4.0 * 2.0, x86::sse(steps)),
        }
    }
    #[allow(unreachable_code)]
    {
        let _ = isa;
        let mut acc = [0.0f32; 8];
        for _ in 0..steps {
            for a in acc.iter_mut() {
                *a = std::hint::black_box(*a) * 0.999_999 + 1e-7;
            }
        }
        (steps as f64 * 8.0 * 2.0, acc.iter().sum())
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    //! The factors, the chains' starting values and the step count pass
    //! through `black_box`: with constants LLVM folds the whole loop away in
    //! release builds and the "peak" becomes the cost of a function call.
    use std::arch::x86_64::*;
    use std::hint::black_box;

    /// 12 chains of 16 lanes: 4-cycle latency × 2 pipes needs at least 8.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn avx512(steps: usize) -> f32 {
        let (a, b) = (
            _mm512_set1_ps(black_box(0.999_999)),
            _mm512_set1_ps(black_box(1e-7)),
        );
        let mut acc: [__m512; 12] = std::array::from_fn(|i| _mm512_set1_ps(black_box(i as f32)));
        for _ in 0..black_box(steps) {
            for r in acc.iter_mut() {
                *r = _mm512_fmadd_ps(*r, a, b);
            }
        }
        let mut sum = _mm512_setzero_ps();
        for r in acc {
            sum = _mm512_add_ps(sum, r);
        }
        _mm512_reduce_add_ps(sum)
    }

    /// 10 chains of 8 lanes.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn avx2(steps: usize) -> f32 {
        let (a, b) = (
            _mm256_set1_ps(black_box(0.999_999)),
            _mm256_set1_ps(black_box(1e-7)),
        );
        let mut acc: [__m256; 10] = std::array::from_fn(|i| _mm256_set1_ps(black_box(i as f32)));
        for _ in 0..black_box(steps) {
            for r in acc.iter_mut() {
                *r = _mm256_fmadd_ps(*r, a, b);
            }
        }
        let mut sum = _mm256_setzero_ps();
        for r in acc {
            sum = _mm256_add_ps(sum, r);
        }
        let mut out = [0.0f32; 8];
        _mm256_storeu_ps(out.as_mut_ptr(), sum);
        out.iter().sum()
    }

    /// Baseline x86-64 has no FMA: 8 chains of 4 lanes, a multiply then an add.
    pub unsafe fn sse(steps: usize) -> f32 {
        let (a, b) = (
            _mm_set1_ps(black_box(0.999_999)),
            _mm_set1_ps(black_box(1e-7)),
        );
        let mut acc: [__m128; 8] = std::array::from_fn(|i| _mm_set1_ps(black_box(i as f32)));
        for _ in 0..black_box(steps) {
            for r in acc.iter_mut() {
                *r = _mm_add_ps(_mm_mul_ps(*r, a), b);
            }
        }
        let mut sum = _mm_setzero_ps();
        for r in acc {
            sum = _mm_add_ps(sum, r);
        }
        let mut out = [0.0f32; 4];
        _mm_storeu_ps(out.as_mut_ptr(), sum);
        out.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Not a speed check: an upper bound no x86 core reaches (2 FMA pipes ×
    /// 16 lanes × 2 FLOPs × 6 GHz ≈ 384 GFLOP/s per thread), which a kernel
    /// whose loop the compiler removed exceeds by orders of magnitude.
    #[test]
    fn the_measured_peak_is_physically_possible() {
        for isa in [Isa::Scalar, Isa::detected()] {
            let g = fma_peak_gflops(isa, 1, 0.05);
            assert!(g > 0.0 && g < 1000.0, "{isa}: {g} GFLOP/s");
        }
    }
}
