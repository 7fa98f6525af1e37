//! `TransformationParameter`, shared by the Data and ImageData layers, and the
//! per-sample shape logic they have in common.
//! Legend: C×H×W one stored sample; the top holds N such samples, transformed.
//! Per sample: crop to crop_size×crop_size (random in TRAIN, centred in TEST),
//! mirror horizontally with probability ½, then out = (pixel − mean) · scale,
//! the mean being `mean_value[c]` (one value, or one per channel) or a mean file.
//! The per-pixel work is [`crate::data::transform::Transformer`].

use super::{fmt_shape, BuildContext};
use crate::data::{self, blob_proto::BlobProto, transform::Mean, transform::Transformer};
use crate::error::Diagnostic;
use crate::netdef::LayerDef;
use crate::proto::Value;
use crate::source::Span;
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TransformParams {
    pub scale: f32,
    pub mirror: bool,
    pub crop_size: u32,
    /// A `BlobProto` file holding the mean image; excludes `mean_value`.
    pub mean_file: Option<String>,
    pub mean_value: Vec<f32>,
    /// Decode encoded images as 3-channel colour.
    pub force_color: bool,
    /// Decode encoded images as 1-channel grey.
    pub force_gray: bool,
}

impl Default for TransformParams {
    fn default() -> Self {
        TransformParams {
            scale: 1.0,
            mirror: false,
            crop_size: 0,
            mean_file: None,
            mean_value: vec![],
            force_color: false,
            force_gray: false,
        }
    }
}

/// Span of `<block> { <field>: ... }` in a layer: the field's value, else the
/// block's name, else the layer's name.
pub fn param_span(def: &LayerDef, block: &str, field: &str) -> Span {
    let Some(b) = def.block.get(block) else {
        return def.name_span();
    };
    match &b.value {
        Value::Block(inner) => inner.get(field).map_or(b.name_span, |f| f.value_span),
        Value::Scalar(_) => b.name_span,
    }
}

/// Whether `<block> { <field>: ... }` is written in a layer.
pub fn param_given(def: &LayerDef, block: &str, field: &str) -> bool {
    matches!(def.block.get(block).map(|b| &b.value),
        Some(Value::Block(inner)) if inner.get(field).is_some())
}

impl TransformParams {
    /// Reads and checks a layer's `transform_param`.
    pub fn read(def: &LayerDef) -> Result<TransformParams, Diagnostic> {
        let t: TransformParams = def.params("transform_param")?;
        if t.mean_file.is_some() && !t.mean_value.is_empty() {
            return Err(def
                .error(
                    param_span(def, "transform_param", "mean_file"),
                    format!(
                        "{}: `transform_param` has both `mean_file` and `mean_value`",
                        def.describe()
                    ),
                )
                .with_help("give either a mean file or mean values, not both"));
        }
        if t.force_color && t.force_gray {
            return Err(def.error(
                param_span(def, "transform_param", "force_gray"),
                format!(
                    "{}: `force_color` and `force_gray` cannot both be true",
                    def.describe()
                ),
            ));
        }
        Ok(t)
    }

    /// The transformed per-sample shape of a stored C×H×W sample.
    pub fn apply(&self, def: &LayerDef, sample: [usize; 3]) -> Result<[usize; 3], Diagnostic> {
        let [c, h, w] = sample;
        let n = self.mean_value.len();
        if n > 1 && n != c {
            return Err(def
                .error(
                    param_span(def, "transform_param", "mean_value"),
                    format!(
                        "{}: `mean_value` has {n} values but the data has {c} channel{}",
                        def.describe(),
                        if c == 1 { "" } else { "s" }
                    ),
                )
                .with_help(format!("give 1 `mean_value` or {c}, one per channel")));
        }
        let crop = self.crop_size as usize;
        if crop == 0 {
            return Ok(sample);
        }
        if crop > h || crop > w {
            return Err(def.error(
                param_span(def, "transform_param", "crop_size"),
                format!(
                    "{}: crop_size {crop} is larger than the {h}x{w} image",
                    def.describe()
                ),
            ));
        }
        Ok([c, crop, crop])
    }

    /// The runtime transform of stored C×H×W samples, with the mean file read
    /// and checked against that shape.
    pub fn transformer(
        &self,
        def: &LayerDef,
        ctx: &BuildContext,
        sample: [usize; 3],
    ) -> Result<Transformer, Diagnostic> {
        let mean = match (&self.mean_file, self.mean_value.is_empty()) {
            (Some(file), _) => Mean::Image(self.read_mean(def, ctx, file, sample)?),
            (None, true) => Mean::None,
            (None, false) => Mean::Values(self.mean_value.clone()),
        };
        Ok(Transformer {
            scale: self.scale,
            mirror: self.mirror,
            crop: self.crop_size as usize,
            mean,
            phase: ctx.phase,
            sample,
        })
    }

    /// The values of a `BlobProto` mean file shaped C×H×W or 1×C×H×W.
    fn read_mean(
        &self,
        def: &LayerDef,
        ctx: &BuildContext,
        file: &str,
        sample: [usize; 3],
    ) -> Result<Vec<f32>, Diagnostic> {
        let span = param_span(def, "transform_param", "mean_file");
        let err = |m: String| def.error(span, format!("{}: {m}", def.describe()));
        let path = data::resolve(file, &ctx.data_dirs)
            .map_err(|tried| {
                err(format!(
                    "cannot open mean file `{file}` (tried {})",
                    data::fmt_paths(&tried)
                ))
            })?
            .path;
        let bytes = std::fs::read(&path)
            .map_err(|e| err(format!("cannot read mean file `{}`: {e}", path.display())))?;
        let blob = BlobProto::decode(&bytes).map_err(|e| {
            err(format!(
                "mean file `{}` is not a valid BlobProto: {e}",
                path.display()
            ))
        })?;
        let shape = match blob.shape[..] {
            [1, c, h, w] | [c, h, w] => [c, h, w],
            _ => [0; 3],
        };
        if shape != sample {
            return Err(err(format!(
                "mean file `{}` is {} but the stored samples are {}",
                path.display(),
                fmt_shape(&blob.shape),
                fmt_shape(&sample)
            ))
            .with_help("the mean image has the shape of a stored sample, before cropping"));
        }
        Ok(blob.data)
    }
}

/// A data source that could not be read (missing, unopenable, empty).
#[derive(Debug, Clone)]
pub struct Unreadable {
    /// What went wrong, without the layer's name.
    pub message: String,
    pub span: Span,
    /// Advice that comes before the generic `--input-shape` one.
    pub help: Option<String>,
}

/// Why a data layer has no per-sample shape from its data.
#[derive(Debug)]
pub enum SampleError {
    /// The source cannot be read: `--input-shape` may stand in for it.
    Unreadable(Unreadable),
    /// The source was read and is wrong: always an error.
    Invalid(Diagnostic),
}

/// The stored per-sample shape: read from the data, else the `--input-shape`
/// given for the layer's first top, else an error that names that option.
pub fn sample_shape(
    def: &LayerDef,
    ctx: &BuildContext,
    read: Result<[usize; 3], SampleError>,
) -> Result<[usize; 3], Diagnostic> {
    let u = match read {
        Ok(s) => return Ok(s),
        Err(SampleError::Invalid(d)) => return Err(d),
        Err(SampleError::Unreadable(u)) => u,
    };
    let top = def.top.first().map_or("data", String::as_str);
    match ctx.input_shapes.get(top) {
        Some(s) => match s[..] {
            [c, h, w] => Ok([c, h, w]),
            _ => Err(def.error(
                u.span,
                format!(
                    "{}: `--input-shape {top}=...` has {} values; a data layer needs C,H,W",
                    def.describe(),
                    s.len()
                ),
            )),
        },
        None => {
            let generic =
                format!("pass `--input-shape {top}=C,H,W` to check the net without its data");
            Err(def
                .error(u.span, format!("{}: {}", def.describe(), u.message))
                .with_help(match u.help {
                    Some(h) => format!("{h}; or {generic}"),
                    None => generic,
                }))
        }
    }
}
