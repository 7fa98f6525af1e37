//! ImageData: samples named in a list file (`<image path> <label>` per line),
//! decoded from PNG or JPEG, optionally resized, then transformed.
//! Legend: N batch, C = 3 (is_color) or 1, H×W = new_height×new_width when
//! set, else the first listed image's size. Tops: data N×C×H×W (H = W =
//! crop_size when cropping), label N.
//! The whole list is read at setup (shuffled there when `shuffle`, and again
//! at every wrap-around); images are decoded as BGR (or grey), resized with
//! a bilinear filter, taken as uint8 values, transformed, and prepared
//! `prefetch` batches ahead on a background thread (see `crate::data`).
//! State (saved in snapshots): the read position of the next batch the net
//! takes, `epoch`, `cursor` and `rng` (see `crate::data::sources`).
//! MultiLabelImageData (multi_label_image_data.rs) is this layer built by
//! `with_labels(…, true)`: K labels per list line, label top N×K.

use super::transform::{param_span, sample_shape, SampleError, TransformParams, Unreadable};
use super::{required, Arity, BuildContext, Layer, Shape, ShapeError};
use crate::data::image_list::{self, Entry};
use crate::data::prefetch::{BatchSource, Feed};
use crate::data::sources::{layer_rng, ListSource};
use crate::data::{self, fmt_paths};
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
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
    /// Batches prepared ahead by a background thread; 0 reads them in forward.
    pub prefetch: usize,
    /// K, the labels per image of MultiLabelImageData (label top N × K); None for
    /// ImageData (label top N).
    pub label_count: Option<usize>,
    feed: Feed,
}

/// Batches kept ready, as the Caffe of the face configs (PREFETCH_COUNT).
pub const PREFETCH: usize = 3;

pub fn build(def: &LayerDef, ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    Ok(Box::new(ImageDataLayer::new(def, ctx)?))
}

impl ImageDataLayer {
    /// Builds the layer (the concrete type, e.g. to change `prefetch`).
    pub fn new(def: &LayerDef, ctx: &BuildContext) -> Result<ImageDataLayer, Diagnostic> {
        Self::with_labels(def, ctx, false)
    }

    /// ImageData, or with `multi` MultiLabelImageData's reading: K labels per list line
    /// (see `image_list::read_multi`), K from the list or, without it, from
    /// `--input-shape LABEL=K`.
    pub fn with_labels(
        def: &LayerDef,
        ctx: &BuildContext,
        multi: bool,
    ) -> Result<ImageDataLayer, Diagnostic> {
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
        let list = match read_list(def, &source, found, multi) {
            Err(SampleError::Invalid(d)) => return Err(d),
            Err(SampleError::Unreadable(u)) => Err(u),
            Ok(l) => Ok(l),
        };
        let label_count = match (&list, multi) {
            (_, false) => None,
            (Ok((_, _, rows)), true) => Some(rows[0].len()),
            (Err(u), true) => Some(label_count_given(def, ctx, u)?),
        };
        let mut image_base = None;
        let mut first = None;
        let read = match (&list, p.new_height) {
            (_, nh) if nh > 0 => Ok([channels, nh as usize, p.new_width as usize]),
            (Err(u), _) => Err(SampleError::Unreadable(u.clone())),
            (Ok((path, entries, _)), _) => first_image(def, &p, path, &entries[0], &ctx.data_dirs)
                .map(|(base, image, h, w)| {
                    image_base = Some(base);
                    first = Some(image);
                    [channels, h, w]
                }),
        };
        let sample = sample_shape(def, ctx, read)?;
        let [c, h, w] = transform.apply(def, sample)?;
        let feed = match list {
            Err(u) => Feed::new(Err(u.message)),
            Ok((list, entries, label_rows)) => {
                let source = ListSource {
                    list,
                    entries,
                    label_rows,
                    root_folder: p.root_folder.clone(),
                    dirs: ctx.data_dirs.clone(),
                    shuffle: p.shuffle,
                    channels,
                    resize: (p.new_height > 0)
                        .then_some([p.new_height as usize, p.new_width as usize]),
                    first,
                    batch,
                    transformer: transform.transformer(def, ctx, sample)?,
                    rng: layer_rng(ctx.seed, &def.name),
                    shuffler: layer_rng(ctx.seed, &format!("{} shuffle", def.name)),
                    epoch: 0,
                    order: Vec::new(),
                    pos: 0,
                };
                Feed::new(Ok(
                    Box::new(source.start(p.rand_skip)) as Box<dyn BatchSource>
                ))
            }
        };
        Ok(ImageDataLayer {
            params: p,
            transform,
            source_path,
            image_base,
            shape: [batch, c, h, w],
            prefetch: PREFETCH,
            label_count,
            feed,
        })
    }
}

/// The list file's path, its entries (at least one) and, with `multi`, each entry's
/// labels (empty without).
type List = (PathBuf, Vec<Entry>, Vec<Vec<f32>>);

/// MultiLabelImageData's K without its list: `--input-shape LABEL=K`.
fn label_count_given(
    def: &LayerDef,
    ctx: &BuildContext,
    u: &Unreadable,
) -> Result<usize, Diagnostic> {
    let top = def.top.get(1).map_or("label", String::as_str);
    match ctx.input_shapes.get(top).map(|s| &s[..]) {
        Some(&[k]) if k > 0 => Ok(k),
        _ => Err(def
            .error(u.span, format!("{}: {}", def.describe(), u.message))
            .with_help(format!(
                "pass `--input-shape {top}=K` (the labels per image) to check the net without its list"
            ))),
    }
}

/// Every entry of the list file (at least one), and the file's path.
fn read_list(
    def: &LayerDef,
    source: &str,
    found: Result<data::Resolved, Vec<PathBuf>>,
    multi: bool,
) -> Result<List, SampleError> {
    let unreadable = |message: String| {
        SampleError::Unreadable(Unreadable {
            message,
            span: param_span(def, BLOCK, "source"),
            help: None,
        })
    };
    let list = match found {
        Ok(r) => r.path,
        Err(tried) => {
            return Err(unreadable(format!(
                "cannot open list file `{source}` (tried {})",
                fmt_paths(&tried)
            )))
        }
    };
    let read = if multi {
        image_list::read_multi(&list).map(|v| v.into_iter().unzip())
    } else {
        image_list::read(&list, None).map(|e| (e, Vec::new()))
    };
    match read {
        Ok((entries, _)) if entries.is_empty() => Err(unreadable(format!(
            "list file `{}` lists no images",
            list.display()
        ))),
        Ok((entries, rows)) => Ok((list, entries, rows)),
        Err(image_list::ListError::Io(e)) => Err(unreadable(format!(
            "cannot read list file `{}`: {e}",
            list.display()
        ))),
        Err(image_list::ListError::Line { line, message }) => Err(SampleError::Invalid(def.error(
            param_span(def, BLOCK, "source"),
            format!(
                "{}: list file `{}` line {line}: {message}",
                def.describe(),
                list.display()
            ),
        ))),
    }
}

/// The size of the first listed image: (folder it was found in, its path, H, W).
fn first_image(
    def: &LayerDef,
    p: &ImageDataParams,
    list: &std::path::Path,
    first: &Entry,
    dirs: &[PathBuf],
) -> Result<(PathBuf, PathBuf, usize, usize), SampleError> {
    let src_span = param_span(def, BLOCK, "source");
    let unreadable = |message: String, help: Option<String>| {
        SampleError::Unreadable(Unreadable {
            message,
            span: src_span,
            help,
        })
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
    Ok((image.base, image.path, h, w))
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
        let n = self.shape[0];
        let label = match self.label_count {
            Some(k) => vec![n, k],
            None => vec![n],
        };
        Ok(vec![self.shape.to_vec(), label])
    }
    fn forward(&mut self, io: &mut LayerIo, _ctx: &mut RunCtx) -> Result<(), String> {
        let b = self.feed.next(self.prefetch)?;
        io.top_mut(0).data_mut().copy_from_slice(&b.data);
        io.top_mut(1).data_mut().copy_from_slice(&b.labels);
        Ok(())
    }
    fn state(&self) -> Vec<(String, f64)> {
        self.feed.position()
    }
    fn set_state(&mut self, state: &[(String, f64)]) -> Result<(), String> {
        self.feed.seek(state)
    }
}
