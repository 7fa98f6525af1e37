//! Blob shapes and the small helpers every part of the core uses on them
//! (blobs, data readers, the graph, reports). They live here, beside
//! [`crate::blob::Blob`], so that nothing below the layers imports `layers`.

/// A blob shape, outermost axis first (N, C, H, W for images). A scalar loss is `[]`.
pub type Shape = Vec<usize>;

/// Formats a shape as `1x64x56x48`, a scalar as `scalar`.
pub fn fmt_shape(shape: &[usize]) -> String {
    if shape.is_empty() {
        return "scalar".to_string();
    }
    shape
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("x")
}

/// Number of elements of a shape.
#[inline]
pub fn count(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// Resolves a possibly negative Caffe axis (`-1` = last) against a rank.
pub fn canonical_axis(axis: i32, rank: usize) -> Option<usize> {
    let a = if axis < 0 { axis + rank as i32 } else { axis };
    (0..rank as i32).contains(&a).then_some(a as usize)
}

/// The seed of the data layers' own generators (and of `convert`'s shuffles)
/// when none is given, so runs repeat.
pub const DEFAULT_SEED: u64 = 1701;
