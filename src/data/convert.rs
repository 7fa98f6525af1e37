//! `netrun convert`: building Data-layer LMDBs (or LevelDBs) as Caffe's converters do.
//!
//! * `mnist`: the four IDX files → `mnist_train_lmdb`, `mnist_test_lmdb`;
//!   one `Datum` per digit (1×rows×cols bytes, label), keys the zero-padded
//!   8-digit index (`00000000`, `00000001`, ...), so key order is file order.
//! * `imageset`: an ImageData list (`<path> <label>`, split at the last
//!   space) → one `Datum` per line, key `%08d_<path>`; raw BGR (or grey)
//!   bytes, or `--encoded` image files. An encoded record keeps the file's own
//!   bytes unless `--resize`/`--gray` change the pixels, in which case it is
//!   re-encoded as PNG (lossless). Unlike Caffe, a missing or undecodable
//!   image, or one whose size differs from the first, is an error rather than
//!   a skipped line: a silently shorter database is worse than a stop.
//!
//! * `mnist-siamese`: MNIST pairs, see [`super::pairs`].
//! * `list`: an ImageData list from identity subfolders, see [`super::list_builder`].
//!
//! Existing databases are never replaced without `--force`; with it, the new
//! database is written beside the old one and swapped in only once complete
//! ([`super::staged`]), so a failed conversion leaves the old one intact.

use super::datum::Datum;
use super::db::{self, Backend};
use super::decode::decode;
use super::{image_list, mnist};
use crate::error::{Error, Result};
use crate::layer_io::Rng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::path::{Path, PathBuf};

/// Makes room for a new database in `dir`: refuses an existing one unless
/// `force`, or one holding files no database has.
pub fn prepare_output(dir: &Path, force: bool) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect::<Vec<_>>(),
        Err(_) => return Ok(()),
    };
    if entries.is_empty() {
        return Ok(());
    }
    if !force {
        return Err(Error::Other(format!(
            "`{}` already exists; pass --force to replace it",
            dir.display()
        )));
    }
    if entries.iter().any(|n| !super::staged::is_db_file(n)) {
        return Err(Error::Other(format!(
            "`{}` holds files other than an LMDB's (`data.mdb`, `lock.mdb`) or a \
             LevelDB's; not replacing it",
            dir.display()
        )));
    }
    Ok(())
}

/// One MNIST split: N images of rows×cols bytes and their N labels.
#[derive(Debug, Clone)]
pub struct MnistSplit {
    pub images: mnist::Idx,
    pub labels: mnist::Idx,
}

impl MnistSplit {
    pub fn len(&self) -> usize {
        self.images.dims[0]
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Rows × cols.
    pub fn image_size(&self) -> usize {
        self.images.dims[1] * self.images.dims[2]
    }

    /// The pixels of image `i`.
    pub fn image(&self, i: usize) -> &[u8] {
        let size = self.image_size();
        &self.images.data[i * size..][..size]
    }
}

/// The train and test splits of MNIST, found (or downloaded) and checked as
/// `netrun convert mnist` does.
pub fn load_mnist(idx_dir: &Path, fetch: &mnist::Fetch) -> Result<[MnistSplit; 2]> {
    let files = mnist::load_all(idx_dir, fetch).map_err(Error::Other)?;
    let mut parsed = Vec::new();
    for ((path, bytes), file) in files.into_iter().zip(&mnist::FILES) {
        parsed.push((
            mnist::parse_idx(bytes, &path, file.magic).map_err(Error::Other)?,
            path,
        ));
    }
    let Ok([train_images, train_labels, test_images, test_labels]) =
        <[(mnist::Idx, PathBuf); 4]>::try_from(parsed)
    else {
        unreachable!("load_all returns the four files")
    };
    let split = |(images, ipath): (mnist::Idx, PathBuf), (labels, lpath): (mnist::Idx, PathBuf)| {
        if labels.dims[0] != images.dims[0] {
            return Err(Error::Other(format!(
                "`{}` holds {} images but `{}` holds {} labels",
                ipath.display(),
                images.dims[0],
                lpath.display(),
                labels.dims[0]
            )));
        }
        Ok(MnistSplit { images, labels })
    };
    let train = split(train_images, train_labels)?;
    let test = split(test_images, test_labels)?;
    Ok([train, test])
}

/// Converts MNIST into `<out>/mnist_train_lmdb` and `<out>/mnist_test_lmdb`;
/// returns each database and its record count.
pub fn convert_mnist(
    idx_dir: &Path,
    out: &Path,
    fetch: &mnist::Fetch,
    force: bool,
) -> Result<Vec<(PathBuf, usize)>> {
    convert_mnist_to(Backend::Lmdb, idx_dir, out, fetch, force)
}

/// [`convert_mnist`] into databases of kind `backend`, named
/// `mnist_{train,test}_lmdb` or `mnist_{train,test}_leveldb` as Caffe's.
pub fn convert_mnist_to(
    backend: Backend,
    idx_dir: &Path,
    out: &Path,
    fetch: &mnist::Fetch,
    force: bool,
) -> Result<Vec<(PathBuf, usize)>> {
    let suffix = match backend {
        Backend::Lmdb => "lmdb",
        Backend::Leveldb => "leveldb",
    };
    let dbs = [
        out.join(format!("mnist_train_{suffix}")),
        out.join(format!("mnist_test_{suffix}")),
    ];
    for db in &dbs {
        prepare_output(db, force)?;
    }
    let splits = load_mnist(idx_dir, fetch)?;
    let mut written = Vec::new();
    let mut staged = Vec::new();
    for (split, dir) in splits.iter().zip(dbs) {
        let stage = super::staged::stage(&dir, force)?;
        let (rows, cols) = (split.images.dims[1], split.images.dims[2]);
        let records = (0..split.len()).map(|i| {
            let d = Datum {
                channels: 1,
                height: rows as i32,
                width: cols as i32,
                data: split.image(i).to_vec(),
                label: i32::from(split.labels.data[i]),
                ..Datum::default()
            };
            (format!("{i:08}").into_bytes(), d.encode())
        });
        let count = db::write_records(backend, stage.path(), records)
            .map_err(|e| Error::Other(format!("cannot write `{}`: {e}", dir.display())))?;
        written.push((dir, count));
        staged.push(stage);
    }
    // Both databases are written: only now are the old ones replaced.
    for stage in staged {
        stage.commit()?;
    }
    Ok(written)
}

/// Options of [`convert_imageset`].
#[derive(Debug, Clone)]
pub struct ImagesetOptions {
    pub resize: Option<[usize; 2]>,
    pub gray: bool,
    pub shuffle: bool,
    pub encoded: bool,
    pub force: bool,
    /// Seed of the shuffle.
    pub seed: u64,
    /// The kind of database written.
    pub backend: Backend,
}

/// Converts the images of `list` (paths relative to `root`) into a database
/// (`opts.backend`) at `out`; returns the record count.
pub fn convert_imageset(
    root: &Path,
    list: &Path,
    out: &Path,
    opts: &ImagesetOptions,
) -> Result<usize> {
    let mut entries = image_list::read(list, None).map_err(|e| {
        Error::Other(match e {
            image_list::ListError::Io(m) => {
                format!("cannot read list file `{}`: {m}", list.display())
            }
            image_list::ListError::Line { line, message } => {
                format!("list file `{}` line {line}: {message}", list.display())
            }
        })
    })?;
    if entries.is_empty() {
        return Err(Error::Other(format!(
            "list file `{}` lists no images",
            list.display()
        )));
    }
    if opts.shuffle {
        entries.shuffle(&mut Rng::seed_from_u64(opts.seed));
    }
    let stage = super::staged::stage(out, opts.force)?;
    let channels = if opts.gray { 1 } else { 3 };
    let bar = indicatif::ProgressBar::new(entries.len() as u64);
    let mut first: Option<(PathBuf, [usize; 3])> = None;
    let mut failure = None;
    let records = entries.iter().enumerate().map_while(|(i, e)| {
        bar.inc(1);
        match imageset_record(root, list, e, channels, opts, &mut first) {
            Ok(d) => Some((format!("{i:08}_{}", e.path).into_bytes(), d.encode())),
            Err(m) => {
                failure = Some(m);
                None
            }
        }
    });
    let written = db::write_records(opts.backend, stage.path(), records);
    bar.finish_and_clear();
    if let Some(m) = failure {
        // Dropping `stage` removes the partial database; `out` is untouched.
        return Err(Error::Other(m));
    }
    let n = written.map_err(|e| Error::Other(format!("cannot write `{}`: {e}", out.display())))?;
    stage.commit()?;
    Ok(n)
}

/// The `Datum` of one list entry; `first` remembers the first image's shape.
fn imageset_record(
    root: &Path,
    list: &Path,
    e: &image_list::Entry,
    channels: usize,
    opts: &ImagesetOptions,
    first: &mut Option<(PathBuf, [usize; 3])>,
) -> std::result::Result<Datum, String> {
    let path = root.join(&e.path);
    let at = format!("line {} of `{}`", e.line, list.display());
    let bytes = std::fs::read(&path)
        .map_err(|err| format!("cannot read image `{}` ({at}): {err}", path.display()))?;
    let undecodable =
        |err: String| format!("image `{}` ({at}) cannot be decoded: {err}", path.display());
    let (pixels, shape) = decode(&bytes, Some(channels), opts.resize).map_err(undecodable)?;
    match first {
        Some((f, s)) if *s != shape => {
            return Err(format!(
                "image `{}` ({at}) is {}x{} but the first image `{}` is {}x{}; use --resize",
                path.display(),
                shape[1],
                shape[2],
                f.display(),
                s[1],
                s[2]
            ))
        }
        Some(_) => {}
        None => *first = Some((path.clone(), shape)),
    }
    let [c, h, w] = shape;
    let mut d = Datum {
        label: e.label,
        ..Datum::default()
    };
    if !opts.encoded {
        (d.channels, d.height, d.width, d.data) = (c as i32, h as i32, w as i32, pixels);
    } else if opts.resize.is_none() && super::image_dims(&bytes).map(|d| d[0]) == Ok(channels) {
        (d.data, d.encoded) = (bytes, true);
    } else {
        (d.data, d.encoded) = (encode_png(&pixels, shape)?, true);
    }
    Ok(d)
}

/// PNG bytes of planar BGR (or grey) pixels.
fn encode_png(pixels: &[u8], [c, h, w]: [usize; 3]) -> std::result::Result<Vec<u8>, String> {
    let n = h * w;
    let (buf, color) = if c == 3 {
        let rgb = (0..n)
            .flat_map(|i| [pixels[2 * n + i], pixels[n + i], pixels[i]])
            .collect();
        (rgb, image::ExtendedColorType::Rgb8)
    } else {
        (pixels.to_vec(), image::ExtendedColorType::L8)
    };
    let mut out = Vec::new();
    image::ImageEncoder::write_image(
        image::codecs::png::PngEncoder::new(&mut out),
        &buf,
        w as u32,
        h as u32,
        color,
    )
    .map_err(|e| format!("cannot encode PNG: {e}"))?;
    Ok(out)
}
