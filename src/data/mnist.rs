//! MNIST as LeCun's IDX files: finding them (plain or gzipped), downloading
//! the missing ones, checking them, and reading their bytes.
//!
//! IDX: a big-endian u32 magic `0x0000 TT DD` (TT = 0x08 for unsigned bytes,
//! DD = number of dimensions), DD big-endian u32 sizes, then the values in
//! row-major order. Images: magic 0x00000803, N×rows×cols; labels: magic
//! 0x00000801, N. The canonical files are checked by the MD5 of their
//! uncompressed contents (gzip bytes differ between copies).

use md5::{Digest, Md5};
use std::io::Read;
use std::path::{Path, PathBuf};

/// One of the four files.
#[derive(Debug, Clone, Copy)]
pub struct IdxFile {
    pub name: &'static str,
    pub magic: u32,
    /// MD5 of the uncompressed canonical file.
    pub md5: &'static str,
}

/// Train images, train labels, test images, test labels.
pub const FILES: [IdxFile; 4] = [
    IdxFile {
        name: "train-images-idx3-ubyte",
        magic: 0x0803,
        md5: "6bbc9ace898e44ae57da46a324031adb",
    },
    IdxFile {
        name: "train-labels-idx1-ubyte",
        magic: 0x0801,
        md5: "a25bea736e30d166cdddb491f175f624",
    },
    IdxFile {
        name: "t10k-images-idx3-ubyte",
        magic: 0x0803,
        md5: "2646ac647ad5339dbf082846283269ea",
    },
    IdxFile {
        name: "t10k-labels-idx1-ubyte",
        magic: 0x0801,
        md5: "27ae3e4e09519cfbb04c329615203637",
    },
];

/// Where missing files are downloaded from, in order: `<mirror><name>.gz`.
pub const MIRRORS: &[&str] = &[
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
];

/// How the files are found and checked.
#[derive(Debug, Clone)]
pub struct Fetch {
    /// Download bases, tried in order for a file found nowhere.
    pub mirrors: Vec<String>,
    /// Folders (and their `mnist/` subfolders) searched before downloading.
    pub offline_dirs: Vec<PathBuf>,
    /// Whether an MD5 that differs from the canonical file's is an error.
    pub verify: bool,
    /// Show a progress bar while downloading.
    pub progress: bool,
}

/// A parsed IDX file of unsigned bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Idx {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

/// Checks the header of IDX `bytes` (read from `file`) against `magic`.
pub fn parse_idx(bytes: Vec<u8>, file: &Path, magic: u32) -> Result<Idx, String> {
    let f = file.display();
    let be = |i: usize| u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    if bytes.len() < 4 {
        return Err(format!(
            "`{f}` is {} bytes long, too short for an IDX header",
            bytes.len()
        ));
    }
    if be(0) != magic {
        return Err(format!(
            "`{f}` has magic number 0x{:08x}, expected 0x{magic:08x} (IDX, unsigned bytes, {}-D)",
            be(0),
            magic & 0xff
        ));
    }
    let n = (magic & 0xff) as usize;
    let header = 4 + 4 * n;
    if bytes.len() < header {
        return Err(format!("`{f}` ends inside its {header}-byte IDX header"));
    }
    let dims: Vec<usize> = (0..n).map(|i| be(4 + 4 * i) as usize).collect();
    let count: usize = dims.iter().product();
    if bytes.len() - header != count {
        return Err(format!(
            "`{f}`: its header says {} = {count} values but it holds {}",
            crate::shape::fmt_shape(&dims),
            bytes.len() - header
        ));
    }
    let mut data = bytes;
    data.drain(..header);
    Ok(Idx { dims, data })
}

/// The file `name` in `dir`: as is, gzipped (`.gz`), or with the `.idxN-`
/// spelling some copies use.
pub fn find(dir: &Path, name: &str) -> Option<PathBuf> {
    let dotted = name.replacen("-idx", ".idx", 1);
    [
        name.to_string(),
        format!("{name}.gz"),
        dotted.clone(),
        format!("{dotted}.gz"),
    ]
    .iter()
    .map(|n| dir.join(n))
    .find(|p| p.is_file())
}

/// The contents of `path`, gunzipped when it starts with the gzip magic.
pub fn read(path: &Path) -> Result<Vec<u8>, String> {
    let raw = std::fs::read(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    gunzip(raw).map_err(|e| format!("cannot decompress `{}`: {e}", path.display()))
}

fn gunzip(raw: Vec<u8>) -> std::io::Result<Vec<u8>> {
    if !raw.starts_with(&[0x1f, 0x8b]) {
        return Ok(raw);
    }
    let mut out = Vec::with_capacity(raw.len() * 4);
    flate2::read::MultiGzDecoder::new(&raw[..]).read_to_end(&mut out)?;
    Ok(out)
}

/// Lower-case hex MD5.
pub fn md5_hex(bytes: &[u8]) -> String {
    Md5::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The uncompressed contents of the four [`FILES`], in that order: from
/// `dir`, else from an offline folder, else downloaded into `dir`.
pub fn load_all(dir: &Path, fetch: &Fetch) -> Result<Vec<(PathBuf, Vec<u8>)>, String> {
    let mut out = Vec::new();
    for file in &FILES {
        let local = std::iter::once(dir.to_path_buf())
            .chain(
                fetch
                    .offline_dirs
                    .iter()
                    .flat_map(|d| [d.clone(), d.join("mnist")]),
            )
            .find_map(|d| find(&d, file.name));
        let (path, bytes) = match local {
            Some(p) => {
                let bytes = read(&p)?;
                (p, bytes)
            }
            None => download(dir, file, fetch)?,
        };
        let sum = md5_hex(&bytes);
        if sum != file.md5 {
            let msg = format!(
                "`{}`: the MD5 of its uncompressed contents is {sum}, but the canonical `{}` has {}",
                path.display(),
                file.name,
                file.md5
            );
            if fetch.verify {
                return Err(format!(
                    "{msg}; pass --no-verify to convert it anyway (e.g. Fashion-MNIST)"
                ));
            }
            eprintln!("warning: {msg}");
        }
        out.push((path, bytes));
    }
    Ok(out)
}

/// Downloads `<mirror><name>.gz` into `dir` from the first mirror that works.
fn download(dir: &Path, file: &IdxFile, fetch: &Fetch) -> Result<(PathBuf, Vec<u8>), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create `{}`: {e}", dir.display()))?;
    let target = dir.join(format!("{}.gz", file.name));
    let mut failures = Vec::new();
    for mirror in &fetch.mirrors {
        let url = format!("{mirror}{}.gz", file.name);
        match get(&url, fetch.progress).and_then(|gz| {
            let bytes = gunzip(gz.clone()).map_err(|e| format!("not a gzip file: {e}"))?;
            let sum = md5_hex(&bytes);
            if fetch.verify && sum != file.md5 {
                return Err(format!(
                    "MD5 of the contents is {sum}, expected {}",
                    file.md5
                ));
            }
            Ok((gz, bytes))
        }) {
            Ok((gz, bytes)) => {
                let part = target.with_extension("gz.part");
                std::fs::write(&part, &gz)
                    .and_then(|_| std::fs::rename(&part, &target))
                    .map_err(|e| format!("cannot write `{}`: {e}", target.display()))?;
                return Ok((target, bytes));
            }
            Err(e) => failures.push(format!("{url}: {e}")),
        }
    }
    Err(format!(
        "`{}` is not in `{}` and could not be downloaded:\n  {}\n\
         with no network, point at an offline copy of the IDX files (plain or .gz): pass \
         their folder as the IDX folder (`../shared/data/mnist/` in this repository's CI), \
         or set NETRUN_DATA_DIR to it (or to a folder holding it as `mnist/`)",
        file.name,
        dir.display(),
        failures.join("\n  ")
    ))
}

/// The body of `url`, with a byte progress bar on a terminal.
fn get(url: &str, progress: bool) -> Result<Vec<u8>, String> {
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .timeout_connect(Some(std::time::Duration::from_secs(20)))
            .timeout_global(Some(std::time::Duration::from_secs(600)))
            .build(),
    );
    let mut resp = agent.get(url).call().map_err(|e| e.to_string())?;
    let len = resp.body().content_length();
    let bar = if progress {
        indicatif::ProgressBar::with_draw_target(len, indicatif::ProgressDrawTarget::stderr())
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_message(url.rsplit('/').next().unwrap_or(url).to_string());
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{msg:28} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    let mut body = Vec::new();
    bar.wrap_read(resp.body_mut().as_reader())
        .read_to_end(&mut body)
        .map_err(|e| e.to_string())?;
    bar.finish_and_clear();
    Ok(body)
}
