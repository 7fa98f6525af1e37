//! Pooling: MAX, AVE or STOCHASTIC over kh×kw windows, Caffe's `PoolingParameter`.
//! Legend: N batch, C channels, H×W input, kh×kw kernel, s stride, p pad.
//! Output per axis (CEIL, the default): ⌈(H + 2p − k)/s⌉ + 1 (FLOOR: ⌊·⌋ + 1); with p > 0 the
//! last window must start inside the image: if (out − 1)·s ≥ H + p then out −= 1.
//! Global pooling: k = H×W, out = 1×1. MAX may give a second top, the argmax mask
//! (h·W + w within the plane, as f32). The window rules are in [`kernels`]; planes run in parallel.

mod kernels;

pub use kernels::{Mode, Plane};

use super::convolution::Engine;
use super::rows::CHUNK;
use super::{count, required, Arity, BuildContext, Layer, Shape, ShapeError};
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::{LayerDef, Phase};
use crate::philox::{key_for, Stream};
use rand::Rng as _;
use rayon::prelude::*;
use serde::Deserialize;

/// `PoolMethod`: MAX = 0, AVE = 1, STOCHASTIC = 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PoolMethod {
    #[default]
    Max,
    Ave,
    Stochastic,
}

/// `RoundMode`: CEIL = 0, FLOOR = 1 (how the output size is rounded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RoundMode {
    #[default]
    Ceil,
    Floor,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PoolingParams {
    pub pool: PoolMethod,
    /// Square padding, or `pad_h`/`pad_w`; default 0.
    pub pad: Option<u32>,
    pub pad_h: Option<u32>,
    pub pad_w: Option<u32>,
    pub kernel_size: Option<u32>,
    pub kernel_h: Option<u32>,
    pub kernel_w: Option<u32>,
    /// Square stride, or `stride_h`/`stride_w`; default 1.
    pub stride: Option<u32>,
    pub stride_h: Option<u32>,
    pub stride_w: Option<u32>,
    pub engine: Engine,
    pub global_pooling: bool,
    pub round_mode: RoundMode,
}

pub struct PoolingLayer {
    pub params: PoolingParams,
    /// Kernel per axis (height, width); set from the bottom for global pooling.
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub pad: [usize; 2],
    /// Declared tops: 1, or 2 for MAX with its mask.
    pub tops: usize,
    /// Input and output plane sizes from the last reshape.
    pub plane: Plane,
    /// The input chosen per output by the last forward (MAX, STOCHASTIC in TRAIN).
    index: Vec<u32>,
    /// How the last forward pooled.
    mode: Mode,
    /// The generator key of STOCHASTIC pooling: the build seed and the layer's name.
    key: [u32; 2],
}

impl PoolingLayer {
    /// Planes of the bottom per parallel task, about [`CHUNK`] input values each.
    fn planes_per_task(&self) -> usize {
        (CHUNK / self.plane.in_len().max(1)).max(1)
    }
}

/// One window setting per axis: `x` for both, or `x_h` with `x_w`, or `default`.
fn pair(
    def: &LayerDef,
    name: &str,
    both: Option<u32>,
    h: Option<u32>,
    w: Option<u32>,
    default: u32,
) -> Result<[usize; 2], Diagnostic> {
    let span = def
        .block
        .get("pooling_param")
        .map_or(def.name_span(), |f| f.value_span);
    let msg = match (both, h, w) {
        (Some(v), None, None) => return Ok([v as usize; 2]),
        (None, Some(h), Some(w)) => return Ok([h as usize, w as usize]),
        (None, None, None) => return Ok([default as usize; 2]),
        (Some(_), _, _) => format!("give either `{name}` or `{name}_h`/`{name}_w`, not both"),
        _ => format!("`{name}_h` and `{name}_w` must be given together"),
    };
    Err(def.error(span, format!("{}: {msg}", def.describe())))
}

pub fn build(def: &LayerDef, ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    let p: PoolingParams = def.params("pooling_param")?;
    let span = def
        .block
        .get("pooling_param")
        .map_or(def.name_span(), |f| f.value_span);
    let err = |m: String| def.error(span, format!("{}: {m}", def.describe()));
    let kernel_given = p.kernel_size.is_some() || p.kernel_h.is_some() || p.kernel_w.is_some();
    if p.global_pooling && kernel_given {
        return Err(err(
            "global pooling takes its kernel from the bottom; remove the kernel size".into(),
        ));
    }
    if !p.global_pooling && !kernel_given {
        required::<u32>(def, None, "pooling_param", "kernel_size")?;
    }
    let kernel = pair(def, "kernel", p.kernel_size, p.kernel_h, p.kernel_w, 0)?;
    let stride = pair(def, "stride", p.stride, p.stride_h, p.stride_w, 1)?;
    let pad = pair(def, "pad", p.pad, p.pad_h, p.pad_w, 0)?;
    if !p.global_pooling && kernel.contains(&0) {
        return Err(err("kernel must be positive".into()));
    }
    if stride.contains(&0) {
        return Err(err("stride must be positive".into()));
    }
    if p.global_pooling && (pad != [0, 0] || stride != [1, 1]) {
        return Err(err("global pooling needs pad 0 and stride 1".into()));
    }
    if !p.global_pooling && (pad[0] >= kernel[0] || pad[1] >= kernel[1]) {
        return Err(err(format!(
            "pad {}x{} must be smaller than the kernel {}x{}",
            pad[0], pad[1], kernel[0], kernel[1]
        )));
    }
    if pad != [0, 0] && p.pool == PoolMethod::Stochastic {
        return Err(err(
            "padding is only supported for MAX and AVE pooling".into()
        ));
    }
    if def.top.len() == 2 && p.pool != PoolMethod::Max {
        return Err(def
            .error(
                def.field_span("top", 1),
                format!(
                    "{}: only MAX pooling has a second top (the argmax mask)",
                    def.describe()
                ),
            )
            .with_help("remove the second top, or use `pool: MAX`"));
    }
    Ok(Box::new(PoolingLayer {
        params: p,
        kernel,
        stride,
        pad,
        tops: def.top.len(),
        plane: Plane::default(),
        index: Vec::new(),
        mode: Mode::Max,
        key: key_for(ctx.seed, &def.name),
    }))
}

/// Caffe's pooled length: rounded (len + 2p − k)/s + 1, then the padding clip.
/// None when no window fits.
pub fn pooled_len(len: usize, k: usize, s: usize, p: usize, mode: RoundMode) -> Option<usize> {
    let d = (len + 2 * p) as i64 - k as i64;
    let s = s as i64;
    let steps = match mode {
        // Integer ⌈d/s⌉ for either sign of d.
        RoundMode::Ceil => -((-d).div_euclid(s)),
        RoundMode::Floor => d.div_euclid(s),
    };
    let mut out = steps + 1;
    if p > 0 && (out - 1) * s >= (len + p) as i64 {
        out -= 1;
    }
    (out >= 1).then_some(out as usize)
}

impl Layer for PoolingLayer {
    fn type_name(&self) -> &'static str {
        "Pooling"
    }
    fn bottoms(&self) -> Arity {
        Arity::exactly(1)
    }
    fn tops(&self) -> Arity {
        match self.params.pool {
            PoolMethod::Max => Arity::between(1, 2),
            _ => Arity::exactly(1),
        }
    }

    fn reshape(&mut self, bottom: &[Shape]) -> Result<Vec<Shape>, ShapeError> {
        let b = &bottom[0];
        if b.len() != 4 {
            return Err(ShapeError::at_bottom(
                0,
                format!("needs an NxCxHxW bottom, got {}", super::fmt_shape(b)),
            ));
        }
        if self.params.global_pooling {
            self.kernel = [b[2], b[3]];
        }
        let (k, s, p) = (self.kernel, self.stride, self.pad);
        let mode = self.params.round_mode;
        let (Some(h), Some(w)) = (
            pooled_len(b[2], k[0], s[0], p[0], mode),
            pooled_len(b[3], k[1], s[1], p[1], mode),
        ) else {
            return Err(ShapeError::at_bottom(
                0,
                format!(
                    "kernel {}x{} (stride {}x{}, pad {}x{}) does not fit the {}x{} input",
                    k[0], k[1], s[0], s[1], p[0], p[1], b[2], b[3]
                ),
            ));
        };
        self.plane = Plane {
            input: [b[2], b[3]],
            output: [h, w],
            kernel: k,
            stride: s,
            pad: p,
        };
        let top = vec![b[0], b[1], h, w];
        // A MAX pooling's optional second top holds the argmax index per output.
        Ok(vec![top; self.tops])
    }

    /// k_h·k_w comparisons or additions per output value.
    fn flops(&self, _bottom: &[Shape], top: &[Shape]) -> u64 {
        (self.kernel[0] * self.kernel[1] * count(&top[0])) as u64
    }

    fn forward(&mut self, io: &mut LayerIo, ctx: &mut RunCtx) -> Result<(), String> {
        self.mode = match (self.params.pool, ctx.phase) {
            (PoolMethod::Max, _) => Mode::Max,
            (PoolMethod::Ave, _) => Mode::Ave,
            (PoolMethod::Stochastic, Phase::Train) => Mode::Sample,
            (PoolMethod::Stochastic, Phase::Test) => Mode::Average,
        };
        let (plane, mode, per_task) = (self.plane, self.mode, self.planes_per_task());
        let (inp, outp) = (plane.in_len(), plane.out_len());
        let (bottoms, mut tops, _) = io.forward_split();
        let outputs = tops[0].count();
        self.index.resize(outputs, 0);
        let u: Vec<f32> = match mode {
            Mode::Sample => {
                let mut u = vec![0.0; outputs];
                let iteration = ctx.rng.gen();
                Stream {
                    key: self.key,
                    iteration,
                }
                .fill(0, &mut u);
                u
            }
            _ => Vec::new(),
        };
        tops[0]
            .data_mut()
            .par_chunks_mut(outp)
            .zip(bottoms[0].data().par_chunks(inp))
            .zip(self.index.par_chunks_mut(outp))
            .with_min_len(per_task)
            .enumerate()
            .for_each(|(n, ((y, x), index))| {
                let u = u.get(n * outp..(n + 1) * outp).unwrap_or(&[]);
                plane.forward(mode, x, y, index, u);
            });
        if let Some(mask) = tops.get_mut(1) {
            for (m, &i) in mask.data_mut().iter_mut().zip(&self.index) {
                *m = i as f32;
            }
        }
        Ok(())
    }

    fn backward(
        &mut self,
        io: &mut LayerIo,
        propagate_down: &[bool],
        _ctx: &mut RunCtx,
    ) -> Result<(), String> {
        if !propagate_down[0] {
            return Ok(());
        }
        let (plane, mode, per_task) = (self.plane, self.mode, self.planes_per_task());
        let (inp, outp) = (plane.in_len(), plane.out_len());
        let (mut bottoms, tops, _) = io.backward_split();
        let (x, dx) = bottoms[0].data_and_diff_mut();
        dx.par_chunks_mut(inp)
            .zip(x.par_chunks(inp))
            .zip(tops[0].diff().par_chunks(outp))
            .zip(self.index.par_chunks(outp))
            .with_min_len(per_task)
            .for_each(|(((dx, x), dy), index)| plane.backward(mode, x, dy, index, dx));
        Ok(())
    }
}
