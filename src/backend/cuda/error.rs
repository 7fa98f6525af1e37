//! Errors of the GPU backend, each saying what the user can do about it.

use super::libs::Library;

#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    /// Some CUDA libraries cannot be loaded; nothing was initialised.
    #[error("{}", missing_message(.0))]
    MissingLibraries(Vec<Library>),
    /// `device_id` / `--gpu N` names a device that is not there.
    #[error("no CUDA device {ordinal}: this machine has {count} (`netrun device` lists them)")]
    NoSuchDevice { ordinal: usize, count: usize },
    /// A call into the driver, cuBLAS or cuDNN failed.
    #[error("CUDA {call} failed: {message}")]
    Call { call: &'static str, message: String },
    /// NVRTC rejected a kernel source.
    #[error("NVRTC could not compile `{source_name}` for {arch}:\n{log}")]
    Compile {
        source_name: String,
        arch: String,
        log: String,
    },
}

fn missing_message(libs: &[Library]) -> String {
    let mut s = String::from("the GPU backend cannot start: ");
    if libs.contains(&Library::Driver) {
        s.push_str("no CUDA driver found");
    } else {
        s.push_str("CUDA libraries missing");
    }
    for l in libs {
        s.push_str(&format!("\n  {l}: {}", l.hint()));
    }
    s.push_str(
        "\n(libraries are searched on LD_LIBRARY_PATH and the system paths; \
         a wheel's libraries are under site-packages/nvidia/*/lib)",
    );
    s
}

impl GpuError {
    pub(super) fn call(call: &'static str, e: impl std::fmt::Debug) -> GpuError {
        GpuError::Call {
            call,
            message: format!("{e:?}"),
        }
    }
}
