//! The convolution's CPU kernels. The layer (`layers/convolution/`) describes
//! one sample's convolution as a [`Plan`] (window geometry, outputs, groups),
//! splits the batch over threads and asks the plan for the strategy that fits:
//! per-sample kernels (`kernels.rs`: im2col, or shifted windows in
//! `shifted.rs`), chunks of samples side by side (`chunked.rs`), or Winograd
//! F(2×2, 3×3), F(4×4, 3×3) and F(4×4, 5×5) (`winograd*.rs`: the batch path, the banded path
//! for narrow layers, the tile transforms with their AVX-512 dispatch, the
//! transform matrices and the weight side).

mod chunked;
mod direct;
mod kernels;
mod packed;
mod shifted;
mod winograd;
mod winograd_banded;
mod winograd_math;
mod winograd_tiles;
mod winograd_weights;

pub use kernels::{ranges, split_parts, Plan};
pub use packed::PackedWeights;
pub use winograd_math::TileKind;
