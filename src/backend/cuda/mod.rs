//! The GPU backend (`--features cuda`). Everything that touches cudarc is in
//! this folder; the rest of netrun sees [`Gpu`], [`DeviceInfo`], [`GpuError`]
//! and the blob's device half, [`Mirror`].
//!
//! CUDA libraries are loaded at run time, so a CUDA build runs on machines
//! without a GPU: only opening a device needs the driver, and [`Gpu::open`]
//! checks every library before it initialises anything.

mod device;
mod error;
pub mod kernels;
mod libs;
mod mirror;

pub use device::{devices, DeviceInfo, Gpu};
pub use error::GpuError;
pub use libs::Library;
pub use mirror::{Head, Mirror};
