//! Row kernels of the layers that need target features: the cosine
//! classifiers' row normalisation in f64, compiled for the dispatch level
//! (`isa.rs`): 8 lanes wide with AVX-512.

/// Normalises one row of a cosine classifier in place and returns its former
/// norm; with AVX-512 the f64 arithmetic runs 8 lanes wide (AVX2: 4) instead
/// of SSE2's 2, which makes the pass memory-bound.
pub fn normalize_row(row: &mut [f32]) -> f64 {
    super::isa::with_isa(
        #[inline(always)]
        || normalize_row_generic(row),
    )
}

/// ‖row‖ with the squares summed in 8 f64 lanes (so the loop vectorises), then
/// row ← row·(1/‖row‖) in f64, skipped for a row already of norm 1.
#[inline(always)]
fn normalize_row_generic(row: &mut [f32]) -> f64 {
    const LANES: usize = 8;
    let mut acc = [0.0f64; LANES];
    let chunks = row.chunks_exact(LANES);
    let tail: f64 = chunks
        .remainder()
        .iter()
        .map(|&v| v as f64 * v as f64)
        .sum();
    for c in chunks {
        for l in 0..LANES {
            acc[l] += c[l] as f64 * c[l] as f64;
        }
    }
    let norm = (acc.iter().sum::<f64>() + tail).sqrt();
    if norm != 1.0 {
        let inv = 1.0 / norm;
        row.iter_mut().for_each(|v| *v = (*v as f64 * inv) as f32);
    }
    norm
}
