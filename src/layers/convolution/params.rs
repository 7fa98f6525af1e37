//! `ConvolutionParameter` and the per-axis window geometry it describes.

use crate::error::Diagnostic;
use crate::layers::filler::FillerParams;
use crate::layers::required;
use crate::netdef::LayerDef;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConvolutionParams {
    pub num_output: Option<u32>,
    pub bias_term: bool,
    pub pad: Vec<u32>,
    pub kernel_size: Vec<u32>,
    pub stride: Vec<u32>,
    pub dilation: Vec<u32>,
    pub pad_h: Option<u32>,
    pub pad_w: Option<u32>,
    pub kernel_h: Option<u32>,
    pub kernel_w: Option<u32>,
    pub stride_h: Option<u32>,
    pub stride_w: Option<u32>,
    pub group: u32,
    pub weight_filler: FillerParams,
    pub bias_filler: FillerParams,
    pub engine: Engine,
    pub axis: i32,
    pub force_nd_im2col: bool,
}

impl Default for ConvolutionParams {
    fn default() -> Self {
        ConvolutionParams {
            num_output: None,
            bias_term: true,
            pad: vec![],
            kernel_size: vec![],
            stride: vec![],
            dilation: vec![],
            pad_h: None,
            pad_w: None,
            kernel_h: None,
            kernel_w: None,
            stride_h: None,
            stride_w: None,
            group: 1,
            weight_filler: FillerParams::default(),
            bias_filler: FillerParams::default(),
            engine: Engine::Default,
            axis: 1,
            force_nd_im2col: false,
        }
    }
}

/// Caffe's `Engine` (DEFAULT = 0, CAFFE = 1, CUDNN = 2); netrun has one engine and ignores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Engine {
    #[default]
    Default,
    Caffe,
    Cudnn,
}

/// Kernel, stride, pad and dilation per spatial axis (height, width).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Geometry {
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub pad: [usize; 2],
    pub dilation: [usize; 2],
}

impl Geometry {
    /// Output extent along axis `a` for input extent `len`, or None when the kernel does not fit.
    pub fn out_len(&self, a: usize, len: usize) -> Option<usize> {
        let span = self.dilation[a] * (self.kernel[a] - 1) + 1;
        (len + 2 * self.pad[a])
            .checked_sub(span)
            .map(|d| d / self.stride[a] + 1)
    }
}

/// Reads one per-axis setting: `x_h`/`x_w`, or 1 or 2 repeated values, or the default.
fn per_axis(
    def: &LayerDef,
    name: &str,
    list: &[u32],
    h: Option<u32>,
    w: Option<u32>,
    default: u32,
) -> Result<[usize; 2], Diagnostic> {
    let err = |m: String| {
        def.error(
            def.block
                .get("convolution_param")
                .map_or(def.name_span(), |f| f.value_span),
            m,
        )
    };
    if h.is_some() || w.is_some() {
        if !list.is_empty() {
            return Err(err(format!(
                "{}: give either `{name}` or `{name}_h`/`{name}_w`, not both",
                def.describe()
            )));
        }
        match (h, w) {
            (Some(h), Some(w)) => return Ok([h as usize, w as usize]),
            _ => {
                return Err(err(format!(
                    "{}: `{name}_h` and `{name}_w` must be given together",
                    def.describe()
                )))
            }
        }
    }
    match list {
        [] => Ok([default as usize; 2]),
        [v] => Ok([*v as usize; 2]),
        [a, b] => Ok([*a as usize, *b as usize]),
        _ => Err(err(format!(
            "{}: `{name}` has {} values; 2-D convolution takes 1 or 2",
            def.describe(),
            list.len()
        ))),
    }
}

/// Parses the geometry shared by Convolution (and Deconvolution-like layers).
pub fn geometry(def: &LayerDef, p: &ConvolutionParams) -> Result<Geometry, Diagnostic> {
    if p.kernel_size.is_empty() && p.kernel_h.is_none() && p.kernel_w.is_none() {
        required::<u32>(def, None, "convolution_param", "kernel_size")?;
    }
    let g = Geometry {
        kernel: per_axis(def, "kernel", &p.kernel_size, p.kernel_h, p.kernel_w, 0)?,
        stride: per_axis(def, "stride", &p.stride, p.stride_h, p.stride_w, 1)?,
        pad: per_axis(def, "pad", &p.pad, p.pad_h, p.pad_w, 0)?,
        dilation: per_axis(def, "dilation", &p.dilation, None, None, 1)?,
    };
    for (name, v) in [
        ("kernel", g.kernel),
        ("stride", g.stride),
        ("dilation", g.dilation),
    ] {
        if v.contains(&0) {
            return Err(def.error(
                def.name_span(),
                format!("{}: {name} must be positive", def.describe()),
            ));
        }
    }
    Ok(g)
}
