//! `netrun convert list`: an ImageData list file from a folder of images
//! sorted into one subfolder per identity (CASIA-WebFace's layout).
//!
//! Label l is the l-th subfolder of the root in byte order of the names
//! (0-based); each subfolder's images (`.png`, `.jpg`, `.jpeg`, at any depth
//! below it) are listed in byte order of their paths, written relative to the
//! root with `/` separators: `<subfolder>/<file> <label>`. Set the ImageData
//! layer's `root_folder` to the root (with a trailing `/`). Files directly in
//! the root are not listed. With `val_per_class` = k, the last k images of every
//! identity go to a second (validation) list instead, and every identity keeps
//! at least one training image.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// Extensions (lower-cased) of the image files listed.
pub const IMAGE_EXTENSIONS: &[&str] = &["png", "jpg", "jpeg"];

/// What [`build_list`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageList {
    /// The identity names (subfolders) in label order.
    pub classes: Vec<String>,
    /// `(path relative to the root, label)` of the training list.
    pub train: Vec<(String, i32)>,
    /// The same for the validation list (empty unless `val_per_class` > 0).
    pub val: Vec<(String, i32)>,
}

impl ImageList {
    /// The text of a list file.
    pub fn render(entries: &[(String, i32)]) -> String {
        entries.iter().map(|(p, l)| format!("{p} {l}\n")).collect()
    }
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// A path's components below the root, as UTF-8 without newlines.
fn relative_name(root: &Path, path: &Path) -> Result<String> {
    let rel = path.strip_prefix(root).unwrap_or(path);
    let parts: Option<Vec<&str>> = rel.iter().map(|c| c.to_str()).collect();
    match parts {
        Some(p) if !p.iter().any(|c| c.contains(['\n', '\r'])) => Ok(p.join("/")),
        _ => Err(Error::Other(format!(
            "`{}`: a list file holds UTF-8 paths without line breaks; rename this file",
            path.display()
        ))),
    }
}

/// The entries of `dir`, sorted by name.
fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut entries = std::fs::read_dir(dir)
        .map_err(io_err(dir))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(io_err(dir))?;
    entries.sort();
    Ok(entries)
}

/// Every image file below `dir`, depth first in name order.
fn images_below(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for path in sorted_entries(dir)? {
        // `metadata` follows symbolic links, so a linked folder or image counts.
        let meta = std::fs::metadata(&path).map_err(io_err(&path))?;
        if meta.is_dir() {
            images_below(&path, out)?;
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        {
            out.push(path);
        }
    }
    Ok(())
}

/// Lists the images below `root`, labelled by subfolder (see the module header).
pub fn build_list(root: &Path, val_per_class: usize) -> Result<ImageList> {
    let mut list = ImageList {
        classes: Vec::new(),
        train: Vec::new(),
        val: Vec::new(),
    };
    for dir in sorted_entries(root)? {
        if !std::fs::metadata(&dir).map_err(io_err(&dir))?.is_dir() {
            continue;
        }
        let mut images = Vec::new();
        images_below(&dir, &mut images)?;
        if images.len() <= val_per_class {
            return Err(Error::Other(format!(
                "`{}` holds {} image(s) ({}); {} needed{}",
                dir.display(),
                images.len(),
                IMAGE_EXTENSIONS.join(", "),
                val_per_class + 1,
                if val_per_class > 0 {
                    " to keep one for training after --val-per-class"
                } else {
                    ": every subfolder is an identity and gets a label"
                }
            )));
        }
        let label = list.classes.len() as i32;
        list.classes.push(relative_name(root, &dir)?);
        let keep = images.len() - val_per_class;
        for (k, image) in images.iter().enumerate() {
            let entry = (relative_name(root, image)?, label);
            if k < keep {
                list.train.push(entry);
            } else {
                list.val.push(entry);
            }
        }
    }
    if list.classes.is_empty() {
        return Err(Error::Other(format!(
            "`{}` has no subfolders; put each identity's images in a folder of its own",
            root.display()
        )));
    }
    Ok(list)
}

/// Writes a list file, creating its folder.
pub fn write_list(path: &Path, entries: &[(String, i32)]) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    }
    std::fs::write(path, ImageList::render(entries)).map_err(io_err(path))
}
