//! Convolution (cross-correlation), Caffe's `ConvolutionParameter`.
//! Legend: N batch, C input channels, H×W input, O outputs, g groups, kh×kw kernel.
//! Output size per axis: (H + 2·pad − (dilation·(k − 1) + 1)) / stride + 1, floored.

use super::filler::FillerParams;
use super::{required, Arity, BuildContext, Layer, Shape, ShapeError};
use crate::error::Diagnostic;
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

pub struct ConvolutionLayer {
    pub params: ConvolutionParams,
    pub geometry: Geometry,
    pub num_output: usize,
    pub group: usize,
    pub channels: usize,
}

pub fn build(def: &LayerDef, _ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    let p: ConvolutionParams = def.params("convolution_param")?;
    let num_output = required(def, p.num_output, "convolution_param", "num_output")? as usize;
    let geometry = geometry(def, &p)?;
    p.weight_filler
        .validate(def, "convolution_param", "weight_filler")?;
    p.bias_filler
        .validate(def, "convolution_param", "bias_filler")?;
    let group = p.group as usize;
    if group == 0 || !num_output.is_multiple_of(group) {
        return Err(def.error(
            def.name_span(),
            format!(
                "{}: num_output {num_output} is not divisible by group {group}",
                def.describe()
            ),
        ));
    }
    if p.axis != 1 {
        return Err(def.error(
            def.name_span(),
            format!("{}: only axis 1 (channels) is supported", def.describe()),
        ));
    }
    Ok(Box::new(ConvolutionLayer {
        params: p,
        geometry,
        num_output,
        group,
        channels: 0,
    }))
}

impl Layer for ConvolutionLayer {
    fn type_name(&self) -> &'static str {
        "Convolution"
    }
    fn bottoms(&self) -> Arity {
        Arity::at_least(1)
    }
    fn tops(&self) -> Arity {
        Arity::at_least(1)
    }

    fn reshape(&mut self, bottom: &[Shape]) -> Result<Vec<Shape>, ShapeError> {
        let mut tops = Vec::new();
        for (i, b) in bottom.iter().enumerate() {
            if b.len() != 4 {
                return Err(ShapeError::at_bottom(
                    i,
                    format!("needs an NxCxHxW bottom, got {}", super::fmt_shape(b)),
                ));
            }
            if i == 0 {
                self.channels = b[1];
            } else if b[1..] != bottom[0][1..] {
                return Err(ShapeError::mismatch(i, b, 0, &bottom[0]));
            }
            if !b[1].is_multiple_of(self.group) {
                return Err(ShapeError::at_bottom(
                    i,
                    format!(
                        "{} channels are not divisible by group {}",
                        b[1], self.group
                    ),
                ));
            }
            let g = &self.geometry;
            let (Some(h), Some(w)) = (g.out_len(0, b[2]), g.out_len(1, b[3])) else {
                return Err(ShapeError::at_bottom(
                    i,
                    format!(
                        "kernel {}x{} (dilation {}x{}, pad {}x{}) does not fit the {}x{} input",
                        g.kernel[0],
                        g.kernel[1],
                        g.dilation[0],
                        g.dilation[1],
                        g.pad[0],
                        g.pad[1],
                        b[2],
                        b[3]
                    ),
                ));
            };
            tops.push(vec![b[0], self.num_output, h, w]);
        }
        Ok(tops)
    }

    fn param_shapes(&self) -> Vec<Shape> {
        let k = self.geometry.kernel;
        let mut v = vec![vec![
            self.num_output,
            self.channels / self.group,
            k[0],
            k[1],
        ]];
        if self.params.bias_term {
            v.push(vec![self.num_output]);
        }
        v
    }

    fn flops(&self, _bottom: &[Shape], top: &[Shape]) -> u64 {
        let k = self.geometry.kernel;
        let macs_per_out = (self.channels / self.group * k[0] * k[1]) as u64;
        top.iter()
            .map(|t| 2 * macs_per_out * super::count(t) as u64)
            .sum()
    }
}
