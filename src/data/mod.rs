//! Reading training data from disk: path resolution, image lists, LMDB and
//! LevelDB databases and Caffe's `Datum` records; decoding, transforming and
//! prefetching batches; dataset converters.

pub mod blob_proto;
pub mod convert;
pub mod datum;
pub mod db;
pub mod decode;
pub mod decode_pool;
pub mod hdf5;
pub mod image_list;
pub mod leveldb;
pub mod leveldb_check;
pub mod list_builder;
pub mod lmdb;
pub mod lmdb_check;
pub mod mnist;
pub mod pairs;
pub mod prefetch;
pub mod sources;
pub mod staged;
pub mod transform;

use std::path::{Path, PathBuf};

/// A data path found on disk.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    /// The folder of `dirs` it was found in (empty for an absolute path).
    pub base: PathBuf,
    /// `base` joined with the path as written.
    pub path: PathBuf,
}

/// Resolves a data path as written in a net file. An absolute path stands for
/// itself; a relative one is looked for in each of `dirs` in order (or as is
/// when `dirs` is empty). Returns the first that exists, or every path tried.
pub fn resolve(path: &str, dirs: &[PathBuf]) -> Result<Resolved, Vec<PathBuf>> {
    let p = Path::new(path);
    let bases: Vec<PathBuf> = if p.is_absolute() || dirs.is_empty() {
        vec![PathBuf::new()]
    } else {
        dirs.to_vec()
    };
    let tried: Vec<PathBuf> = bases.iter().map(|b| b.join(p)).collect();
    match tried.iter().position(|t| t.exists()) {
        Some(i) => Ok(Resolved {
            base: bases[i].clone(),
            path: tried[i].clone(),
        }),
        None => Err(tried),
    }
}

/// Where relative data paths of a net are looked for: the net file's folder,
/// the working directory, then `extra` in order (the command line passes
/// `NETRUN_DATA_DIR` there).
pub fn data_dirs(net_file: &Path, extra: &[PathBuf]) -> Vec<PathBuf> {
    let mut dirs = vec![net_file
        .parent()
        .map(|p| p.to_path_buf())
        .unwrap_or_default()];
    if let Ok(cwd) = std::env::current_dir() {
        dirs.push(cwd);
    }
    dirs.extend(extra.iter().cloned());
    dirs
}

/// `a`, `b` and `c`: paths for a message.
pub fn fmt_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| format!("`{}`", p.display()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Channels, height and width of an encoded (PNG or JPEG) image. Channels are
/// the file's own: 1 for grey, 3 for colour (an alpha channel is dropped, as
/// OpenCV's native decoding does).
pub fn image_dims(bytes: &[u8]) -> Result<[usize; 3], String> {
    let img = image::load_from_memory(bytes).map_err(|e| e.to_string())?;
    let channels = if img.color().has_color() { 3 } else { 1 };
    Ok([channels, img.height() as usize, img.width() as usize])
}
