//! The machine's CUDA devices (`netrun device`) and opening one for a run.

use super::error::GpuError;
use super::kernels::KernelCache;
use super::libs::{self, Library};
use cudarc::driver::{result, CudaContext, CudaStream};
use std::sync::Arc;

/// One device as `netrun device` lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceInfo {
    pub ordinal: usize,
    pub name: String,
    /// Bytes of device memory.
    pub total_memory: usize,
    /// (major, minor): 9.0 for the H100 and H200.
    pub compute_capability: (i32, i32),
}

/// Every CUDA device the driver reports. Needs only the driver library.
pub fn devices() -> Result<Vec<DeviceInfo>, GpuError> {
    require(&[Library::Driver])?;
    result::init().map_err(|e| GpuError::call("cuInit", e))?;
    let count = result::device::get_count().map_err(|e| GpuError::call("cuDeviceGetCount", e))?;
    (0..count.max(0) as usize).map(describe).collect()
}

fn describe(ordinal: usize) -> Result<DeviceInfo, GpuError> {
    use cudarc::driver::sys::CUdevice_attribute as A;
    let dev = result::device::get(ordinal as i32).map_err(|e| GpuError::call("cuDeviceGet", e))?;
    let name = result::device::get_name(dev).map_err(|e| GpuError::call("cuDeviceGetName", e))?;
    // SAFETY: `dev` is a valid device handle returned by cuDeviceGet above.
    let (total_memory, major, minor) = unsafe {
        (
            result::device::total_mem(dev).map_err(|e| GpuError::call("cuDeviceTotalMem", e))?,
            result::device::get_attribute(dev, A::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR)
                .map_err(|e| GpuError::call("cuDeviceGetAttribute", e))?,
            result::device::get_attribute(dev, A::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR)
                .map_err(|e| GpuError::call("cuDeviceGetAttribute", e))?,
        )
    };
    Ok(DeviceInfo {
        ordinal,
        name,
        total_memory,
        compute_capability: (major, minor),
    })
}

fn require(wanted: &[Library]) -> Result<(), GpuError> {
    let missing = libs::missing(wanted);
    if missing.is_empty() {
        Ok(())
    } else {
        Err(GpuError::MissingLibraries(missing))
    }
}

/// An opened device: its context, the stream work is queued on, and the
/// layers' compiled kernels.
pub struct Gpu {
    pub info: DeviceInfo,
    stream: Arc<CudaStream>,
    kernels: KernelCache,
}

impl Gpu {
    /// Opens device `ordinal` after checking that every library a run needs
    /// can be loaded (so a missing one is one clear error, before any work).
    pub fn open(ordinal: usize) -> Result<Gpu, GpuError> {
        require(&Library::ALL)?;
        let all = devices()?;
        let Some(info) = all.get(ordinal).cloned() else {
            return Err(GpuError::NoSuchDevice {
                ordinal,
                count: all.len(),
            });
        };
        let ctx = CudaContext::new(ordinal).map_err(|e| GpuError::call("cuCtx", e))?;
        let stream = ctx.default_stream();
        let kernels = KernelCache::new(ctx, info.compute_capability);
        Ok(Gpu {
            info,
            stream,
            kernels,
        })
    }

    /// Compiles and loads every kernel source for this device (a run does
    /// this lazily, source by source), returning how many modules are loaded.
    pub fn load_kernels(&self) -> Result<usize, GpuError> {
        for source in super::kernels::SOURCES {
            self.kernels.module(source.stem)?;
        }
        Ok(super::kernels::SOURCES.len())
    }

    /// Waits for all queued work; the first asynchronous error surfaces here.
    pub fn synchronize(&self) -> Result<(), GpuError> {
        self.stream
            .synchronize()
            .map_err(|e| GpuError::call("cuStreamSynchronize", e))
    }
}
