//! The layers' CUDA C kernels: each `.cu` file sits beside its layer
//! (`src/layers/<stem>.cu`), is compiled by NVRTC the first time a run needs
//! it on a device, and the module is kept for the rest of the run.

use super::error::GpuError;
use cudarc::driver::{CudaContext, CudaFunction, CudaModule};
use cudarc::nvrtc::{CompileError, CompileOptions, Ptx};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// One kernel source file, named by the stem of the Rust file it serves.
/// `code` is the file behind `prelude.cuh` (the helpers every kernel may use).
#[derive(Debug, Clone, Copy)]
pub struct KernelSource {
    pub stem: &'static str,
    /// Path from the crate root, for messages and the completeness test.
    pub path: &'static str,
    pub code: &'static str,
}

macro_rules! sources {
    ($($stem:literal => $path:literal),* $(,)?) => {
        &[$(KernelSource {
            stem: $stem,
            path: $path,
            code: concat!(
                include_str!("prelude.cuh"),
                "#line 1 \"", $path, "\"\n",
                include_str!(concat!("../../../", $path)),
            ),
        }),*]
    };
}

/// Every `.cu` file under `src/`. A test checks that this list and the files agree.
pub static SOURCES: &[KernelSource] = sources![
    "center_loss" => "src/layers/center_loss.cu",
    "combined_margin_inner_product" => "src/layers/combined_margin_inner_product.cu",
    "contrastive_loss" => "src/layers/contrastive_loss.cu",
    "cosin_add_m" => "src/layers/cosin_add_m.cu",
    "eltwise" => "src/layers/eltwise.cu",
    "euclidean_loss" => "src/layers/euclidean_loss.cu",
    "focal_loss" => "src/layers/focal_loss.cu",
    "general_contrastive_loss" => "src/layers/general_contrastive_loss.cu",
    "general_triplet_loss" => "src/layers/general_triplet_loss.cu",
    "global_lse_margin" => "src/layers/global_lse_margin.cu",
    "hinge_loss" => "src/layers/hinge_loss.cu",
    "infogain_loss" => "src/layers/infogain_loss.cu",
    "inner_distance" => "src/layers/inner_distance.cu",
    "inner_product" => "src/layers/inner_product.cu",
    "label_specific_add" => "src/layers/label_specific_add.cu",
    "label_specific_rescale" => "src/layers/label_specific_rescale.cu",
    "loss" => "src/layers/loss.cu",
    "margin_inner_product" => "src/layers/margin_inner_product/margin_inner_product.cu",
    "multinomial_logistic_loss" => "src/layers/multinomial_logistic_loss.cu",
    "normalize" => "src/layers/normalize.cu",
    "pooling" => "src/layers/pooling/pooling.cu",
    "prelu" => "src/layers/prelu.cu",
    "relu" => "src/layers/relu.cu",
    "rules" => "src/solver/rules.cu",
    "sigmoid" => "src/layers/sigmoid.cu",
    "sigmoid_cross_entropy_loss" => "src/layers/sigmoid_cross_entropy_loss.cu",
    "soft_truncation" => "src/layers/soft_truncation.cu",
    "softmax" => "src/layers/softmax.cu",
    "softmax_with_loss" => "src/layers/softmax_with_loss.cu",
    "tanh" => "src/layers/tanh.cu",
    "triplet_loss" => "src/layers/triplet_loss/triplet_loss.cu",
];

/// The virtual architecture PTX is generated for: the device's own, so the
/// driver's JIT targets exactly that chip.
pub fn arch_for(compute_capability: (i32, i32)) -> String {
    format!("compute_{}{}", compute_capability.0, compute_capability.1)
}

/// Compiles one source to PTX for `arch` (`compute_90`). Needs only NVRTC,
/// not a GPU: CI compiles every source this way.
pub fn compile(source: &KernelSource, arch: &str) -> Result<Ptx, GpuError> {
    let arch_static: &'static str = Box::leak(arch.to_string().into_boxed_str());
    let opts = CompileOptions {
        arch: Some(arch_static),
        name: Some(format!("{}.cu", source.stem)),
        // IEEE division and square root: parity with the CPU path matters more
        // than the few percent fast-math would buy.
        prec_div: Some(true),
        prec_sqrt: Some(true),
        ..Default::default()
    };
    cudarc::nvrtc::compile_ptx_with_opts(source.code, opts).map_err(|e| GpuError::Compile {
        source_name: source.path.to_string(),
        arch: arch.to_string(),
        log: match e {
            CompileError::CompileError { log, .. } => log.to_string_lossy().into_owned(),
            other => format!("{other:?}"),
        },
    })
}

/// Compiled modules of one device, by stem.
pub struct KernelCache {
    ctx: Arc<CudaContext>,
    arch: String,
    modules: Mutex<HashMap<&'static str, Arc<CudaModule>>>,
}

impl KernelCache {
    pub fn new(ctx: Arc<CudaContext>, compute_capability: (i32, i32)) -> KernelCache {
        KernelCache {
            ctx,
            arch: arch_for(compute_capability),
            modules: Mutex::new(HashMap::new()),
        }
    }

    /// The module of source `stem`, compiled and loaded on first use.
    pub fn module(&self, stem: &str) -> Result<Arc<CudaModule>, GpuError> {
        let mut modules = self.modules.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = modules.get(stem) {
            return Ok(Arc::clone(m));
        }
        let source = SOURCES
            .iter()
            .find(|s| s.stem == stem)
            .ok_or_else(|| GpuError::Call {
                call: "kernel lookup",
                message: format!("no kernel source `{stem}.cu` is registered"),
            })?;
        let ptx = compile(source, &self.arch)?;
        let m = self
            .ctx
            .load_module(ptx)
            .map_err(|e| GpuError::call("cuModuleLoadData", e))?;
        modules.insert(source.stem, Arc::clone(&m));
        Ok(m)
    }

    /// Kernel `name` of source `stem`, compiling and loading the source on first use.
    pub fn function(&self, stem: &str, name: &str) -> Result<CudaFunction, GpuError> {
        self.module(stem)?
            .load_function(name)
            .map_err(|e| GpuError::call("cuModuleGetFunction", e))
    }
}
