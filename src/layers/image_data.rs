//! ImageData: samples named in a list file (`<image path> <label>` per line),
//! decoded from PNG or JPEG, optionally resized, then transformed.
//! Legend: N batch, C = 3 (is_color) or 1, H×W = new_height×new_width when
//! set, else the first listed image's size. Tops: data N×C×H×W (H = W =
//! crop_size when cropping), label N.

use super::transform::{param_span, sample_shape, SampleError, TransformParams, Unreadable};
use super::{required, Arity, BuildContext, Layer, Shape, ShapeError};
use crate::data::{self, fmt_paths, image_list};
use crate::error::Diagnostic;
use crate::netdef::LayerDef;
use serde::Deserialize;
use std::path::PathBuf;

const BLOCK: &str = "image_data_param";

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImageDataParams {
    /// The list file.
    pub source: Option<String>,
    pub batch_size: u32,
    /// Skip a random number (below this) of samples at start-up.
    pub rand_skip: u32,
    pub shuffle: bool,
    pub new_height: u32,
    pub new_width: u32,
    pub is_color: bool,
    /// Prefixed, as a string, to every listed path.
    pub root_folder: String,
}

impl Default for ImageDataParams {
    fn default() -> Self {
        ImageDataParams {
            source: None,
            batch_size: 1,
            rand_skip: 0,
            shuffle: false,
            new_height: 0,
            new_width: 0,
            is_color: true,
            root_folder: String::new(),
        }
    }
}

pub struct ImageDataLayer {
    pub params: ImageDataParams,
    pub transform: TransformParams,
    /// The list file, where `source` was found.
    pub source_path: Option<PathBuf>,
    /// The data folder in which `root_folder + path` of the first image was found.
    pub image_base: Option<PathBuf>,
    /// N, C, H, W of the data top.
    pub shape: [usize; 4],
}

pub fn build(def: &LayerDef, ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    let p: ImageDataParams = def.params(BLOCK)?;
    let transform = TransformParams::read(def)?;
    let source = required(def, p.source.as_deref(), BLOCK, "source")?.to_string();
    if (p.new_height == 0) != (p.new_width == 0) {
        let given = if p.new_height > 0 {
            "new_height"
        } else {
            "new_width"
        };
        return Err(def
            .error(
                param_span(def, BLOCK, given),
                format!(
                    "{}: `new_height` and `new_width` must be given together",
                    def.describe()
                ),
            )
            .with_help("set both to resize every image, or neither to keep their size"));
    }
    let batch = ctx.batch.unwrap_or(p.batch_size as usize);
    if batch == 0 {
        return Err(def.error(
            param_span(def, BLOCK, "batch_size"),
            format!("{}: batch_size must be positive", def.describe()),
        ));
    }
    let channels = if p.is_color { 3 } else { 1 };
    let found = data::resolve(&source, &ctx.data_dirs);
    let source_path = found.as_ref().ok().map(|r| r.path.clone());
    let mut image_base = None;
    let read = if p.new_height > 0 {
        Ok([channels, p.new_height as usize, p.new_width as usize])
    } else {
        first_image(def, &p, &source, found, &ctx.data_dirs).map(|(base, h, w)| {
            image_base = Some(base);
            [channels, h, w]
        })
    };
    let [c, h, w] = transform.apply(def, sample_shape(def, ctx, read)?)?;
    Ok(Box::new(ImageDataLayer {
        params: p,
        transform,
        source_path,
        image_base,
        shape: [batch, c, h, w],
    }))
}

/// Reads the first entry of the list and the size of its image: (folder it was found in, H, W).
fn first_image(
    def: &LayerDef,
    p: &ImageDataParams,
    source: &str,
    found: Result<data::Resolved, Vec<PathBuf>>,
    dirs: &[PathBuf],
) -> Result<(PathBuf, usize, usize), SampleError> {
    let src_span = param_span(def, BLOCK, "source");
    let unreadable = |message: String, help: Option<String>| {
        SampleError::Unreadable(Unreadable {
            message,
            span: src_span,
            help,
        })
    };
    let list = match found {
        Ok(r) => r.path,
        Err(tried) => {
            return Err(unreadable(
                format!(
                    "cannot open list file `{source}` (tried {})",
                    fmt_paths(&tried)
                ),
                None,
            ))
        }
    };
    let first = match image_list::read(&list, Some(1)) {
        Ok(entries) => entries.into_iter().next(),
        Err(image_list::ListError::Io(e)) => {
            let msg = format!("cannot read list file `{}`: {e}", list.display());
            return Err(unreadable(msg, None));
        }
        Err(image_list::ListError::Line { line, message }) => {
            return Err(SampleError::Invalid(def.error(
                src_span,
                format!(
                    "{}: list file `{}` line {line}: {message}",
                    def.describe(),
                    list.display()
                ),
            )))
        }
    };
    let Some(first) = first else {
        let msg = format!("list file `{}` lists no images", list.display());
        return Err(unreadable(msg, None));
    };
    let written = format!("{}{}", p.root_folder, first.path);
    let at = format!("line {} of `{}`", first.line, list.display());
    let image = match data::resolve(&written, dirs) {
        Ok(r) => r,
        Err(tried) => {
            let help = (!p.root_folder.is_empty() && !p.root_folder.ends_with('/')).then(|| {
                format!(
                    "`root_folder` is prefixed as written (did you mean \"{}/\")",
                    p.root_folder
                )
            });
            return Err(SampleError::Unreadable(Unreadable {
                message: format!(
                    "cannot open first image `{written}` ({at}; tried {})",
                    fmt_paths(&tried)
                ),
                span: if p.root_folder.is_empty() {
                    src_span
                } else {
                    param_span(def, BLOCK, "root_folder")
                },
                help,
            }));
        }
    };
    let bytes = std::fs::read(&image.path).map_err(|e| {
        let msg = format!("cannot read first image `{}`: {e}", image.path.display());
        unreadable(msg, None)
    })?;
    let [_, h, w] = data::image_dims(&bytes).map_err(|e| {
        SampleError::Invalid(def.error(
            src_span,
            format!(
                "{}: first image `{}` ({at}) cannot be decoded: {e}",
                def.describe(),
                image.path.display()
            ),
        ))
    })?;
    Ok((image.base, h, w))
}

impl Layer for ImageDataLayer {
    fn type_name(&self) -> &'static str {
        "ImageData"
    }
    fn bottoms(&self) -> Arity {
        Arity::exactly(0)
    }
    fn tops(&self) -> Arity {
        Arity::exactly(2)
    }
    fn is_data(&self) -> bool {
        true
    }
    fn reshape(&mut self, _bottom: &[Shape]) -> Result<Vec<Shape>, ShapeError> {
        Ok(vec![self.shape.to_vec(), vec![self.shape[0]]])
    }
}
