//! Which CUDA libraries this machine can load. cudarc loads them at run time
//! and panics on the first call into a missing one, so the backend asks here
//! first and turns absence into one error that names every missing library.

use std::fmt;

/// A CUDA library the GPU backend needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Library {
    /// `libcuda.so.1`, installed with the NVIDIA driver.
    Driver,
    /// `libnvrtc.so.13`: compiles the layers' `.cu` kernels at run time.
    Nvrtc,
    /// `libcublas.so.13`: matrix products.
    Cublas,
    /// `libcudnn.so.9`: convolutions.
    Cudnn,
}

impl Library {
    /// All of them, in the order a context needs them.
    pub const ALL: [Library; 4] = [
        Library::Driver,
        Library::Nvrtc,
        Library::Cublas,
        Library::Cudnn,
    ];

    /// Whether the dynamic loader finds it (searching `LD_LIBRARY_PATH` and
    /// the system paths under the names cudarc tries).
    pub fn is_present(self) -> bool {
        // SAFETY: each call only tries to dlopen the library under its candidate
        // names; nothing from it is called.
        unsafe {
            match self {
                Library::Driver => cudarc::driver::sys::is_culib_present(),
                Library::Nvrtc => cudarc::nvrtc::sys::is_culib_present(),
                Library::Cublas => cudarc::cublas::sys::is_culib_present(),
                Library::Cudnn => cudarc::cudnn::sys::is_culib_present(),
            }
        }
    }

    /// Where a machine usually gets it.
    pub fn hint(self) -> &'static str {
        match self {
            Library::Driver => "the NVIDIA driver (no CUDA driver found: is this a GPU machine?)",
            Library::Nvrtc => {
                "CUDA 13's NVRTC (system CUDA toolkit, or the PyPI wheel `nvidia-cuda-nvrtc`)"
            }
            Library::Cublas => {
                "CUDA 13's cuBLAS (system CUDA toolkit, or the PyPI wheel `nvidia-cublas`)"
            }
            Library::Cudnn => {
                "cuDNN 9 for CUDA 13 (system package, or the PyPI wheel `nvidia-cudnn-cu13`)"
            }
        }
    }
}

impl fmt::Display for Library {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Library::Driver => "libcuda.so.1",
            Library::Nvrtc => "libnvrtc.so.13",
            Library::Cublas => "libcublas.so.13",
            Library::Cudnn => "libcudnn.so.9",
        })
    }
}

/// The libraries of `wanted` that cannot be loaded, in order.
pub fn missing(wanted: &[Library]) -> Vec<Library> {
    wanted.iter().copied().filter(|l| !l.is_present()).collect()
}
