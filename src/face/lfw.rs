//! LFW's pair lists and image layout.
//!
//! `pairs.txt` (view 2) starts with `S N`: S sets (10), each of N matched
//! pairs (`name i j`: images i and j of one person) then N mismatched pairs
//! (`name1 i name2 j`). `pairsDevTrain.txt` / `pairsDevTest.txt` (view 1)
//! start with the single count `N`: one set. Fields are separated by tabs or
//! spaces; image numbers count from 1. Images are found as
//! `ROOT/<name>/<name>_<NNNN>.<ext>` (i zero-padded to 4 digits), or through
//! a mapping file of `name number path` lines (path relative to ROOT) for
//! other layouts.

use crate::error::{Error, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Image `number` of person `name`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageRef {
    pub name: String,
    pub number: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Pair {
    pub a: ImageRef,
    pub b: ImageRef,
    pub same: bool,
    /// 0-based set of the file.
    pub set: usize,
}

/// A whole pair list.
#[derive(Debug, Clone, PartialEq)]
pub struct PairList {
    pub pairs: Vec<Pair>,
    pub sets: usize,
    /// Matched (and mismatched) pairs per set.
    pub per_set: usize,
}

impl PairList {
    /// Reads a pair list file.
    pub fn read(path: &Path) -> Result<PairList> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        PairList::parse(&text).map_err(|m| Error::Other(format!("{}:{m}", path.display())))
    }

    /// Parses pair-list text; an error reads `LINE: message`.
    pub fn parse(text: &str) -> std::result::Result<PairList, String> {
        let mut lines = text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.trim()))
            .filter(|(_, l)| !l.is_empty());
        let (hl, header) = lines.next().ok_or("1: the file is empty")?;
        let nums: Vec<&str> = header.split_whitespace().collect();
        let parse = |s: &str| {
            s.parse::<usize>().map_err(|_| {
                format!("{hl}: the header must be `SETS PAIRS` (e.g. `10 300`) or `PAIRS`, found `{header}`")
            })
        };
        let (sets, per_set) = match nums.as_slice() {
            [n] => (1, parse(n)?),
            [s, n] => (parse(s)?, parse(n)?),
            _ => return Err(parse("")?.to_string()),
        };
        if sets == 0 || per_set == 0 {
            return Err(format!("{hl}: the header `{header}` announces no pairs"));
        }
        let mut pairs = Vec::new();
        for set in 0..sets {
            for same in [true, false] {
                for k in 0..per_set {
                    let kind = if same { "matched" } else { "mismatched" };
                    let Some((ln, line)) = lines.next() else {
                        return Err(format!(
                            "{}: the file ends at {kind} pair {} of set {} ({} pairs read; the header `{header}` announces {})",
                            text.lines().count() + 1,
                            k + 1,
                            set + 1,
                            pairs.len(),
                            2 * sets * per_set
                        ));
                    };
                    pairs.push(parse_pair(ln, line, same, set)?);
                }
            }
        }
        if let Some((ln, line)) = lines.next() {
            return Err(format!(
                "{ln}: `{line}` follows the {} pairs the header `{header}` announces",
                2 * sets * per_set
            ));
        }
        Ok(PairList {
            pairs,
            sets,
            per_set,
        })
    }

    /// Fold of every pair for `k`-fold cross-validation: the file's sets when
    /// it has k of them; otherwise matched and mismatched pairs each dealt
    /// round-robin (the i-th of its kind in a set to fold i mod k).
    pub fn folds(&self, k: usize) -> Vec<usize> {
        if self.sets == k {
            return self.pairs.iter().map(|p| p.set).collect();
        }
        (0..self.pairs.len())
            .map(|i| (i % self.per_set) % k)
            .collect()
    }
}

fn parse_pair(ln: usize, line: &str, same: bool, set: usize) -> std::result::Result<Pair, String> {
    let f: Vec<&str> = line.split_whitespace().collect();
    let num = |s: &str| -> std::result::Result<u32, String> {
        s.parse::<u32>()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| format!("{ln}: `{s}` is not an image number (1, 2, ...) in `{line}`"))
    };
    let image = |name: &str, n: &str| -> std::result::Result<ImageRef, String> {
        Ok(ImageRef {
            name: name.to_string(),
            number: num(n)?,
        })
    };
    match (same, f.as_slice()) {
        (true, [name, i, j]) => Ok(Pair {
            a: image(name, i)?,
            b: image(name, j)?,
            same,
            set,
        }),
        (false, [n1, i, n2, j]) => Ok(Pair {
            a: image(n1, i)?,
            b: image(n2, j)?,
            same,
            set,
        }),
        _ => Err(format!(
            "{ln}: expected a {} pair of set {} (`{}`), found `{line}`",
            if same { "matched" } else { "mismatched" },
            set + 1,
            if same { "NAME I J" } else { "NAME1 I NAME2 J" }
        )),
    }
}

/// Where the images of a pair list are.
#[derive(Debug, Clone)]
pub enum Layout {
    /// `ROOT/<name>/<name>_<NNNN>.<ext>`.
    Lfw { root: PathBuf, ext: String },
    /// From a `name number path` file, paths relative to the root.
    Listed(HashMap<ImageRef, PathBuf>),
}

impl Layout {
    /// Reads a `name number path` mapping; paths relative to `root`.
    pub fn read_list(path: &Path, root: &Path) -> Result<Layout> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let mut map = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let err = |m: &str| Error::Other(format!("{}:{}: {m}", path.display(), i + 1));
            // NAME and NUMBER are single words; PATH is the rest of the line (it may hold spaces).
            let mut f = line.split_whitespace();
            let (Some(name), Some(n)) = (f.next(), f.next()) else {
                return Err(err(&format!("expected `NAME NUMBER PATH`, found `{line}`")));
            };
            let after_n = line[line.find(name).unwrap_or(0) + name.len()..].trim_start();
            let p = after_n[n.len()..].trim();
            if p.is_empty() {
                return Err(err(&format!("expected `NAME NUMBER PATH`, found `{line}`")));
            }
            let number = n
                .parse::<u32>()
                .map_err(|_| err(&format!("`{n}` is not an image number")))?;
            let key = ImageRef {
                name: name.to_string(),
                number,
            };
            if map.insert(key, root.join(p)).is_some() {
                return Err(err(&format!("image {number} of `{name}` is listed twice")));
            }
        }
        Ok(Layout::Listed(map))
    }

    /// The file of an image, or why there is none.
    pub fn path(&self, image: &ImageRef) -> std::result::Result<PathBuf, String> {
        match self {
            Layout::Lfw { root, ext } => Ok(root
                .join(&image.name)
                .join(format!("{}_{:04}.{ext}", image.name, image.number))),
            Layout::Listed(map) => map.get(image).cloned().ok_or_else(|| {
                format!(
                    "the image list has no image {} of `{}`",
                    image.number, image.name
                )
            }),
        }
    }
}
