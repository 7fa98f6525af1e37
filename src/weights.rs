//! Parameter files: a net's learnable blobs (and any other named f32
//! tensors, e.g. the blobs `netrun forward` writes) as safetensors.
//!
//! # Tensor names
//! The learnable blob that layer `L` owns at blob index `i` is stored as
//! `L.i`, blob order being Caffe's: `conv1_1.0` is the weights of `conv1_1`,
//! `conv1_1.1` its bias. A blob shared through `param { name: ... }` is
//! stored once, under its owner's name (the first layer that declares it);
//! [`apply`] also takes it under a sharing layer's `M.j` when the owner's
//! name is absent. Snapshots name parameters the same way.
//!
//! # Format
//! A safetensors file: every tensor F32 little-endian with the blob's shape
//! (a scalar blob has shape `[]`). The header metadata holds the caller's
//! entries plus two that [`save`] sets, replacing any given:
//! - `format` = `netrun-v1`;
//! - `checksum` = `crc32:` and 8 lowercase hex digits: CRC-32 (IEEE, as the
//!   `crc32fast` crate computes it) over, for each tensor in name order, the
//!   name's byte length (u64 LE), the name (UTF-8), the rank (u64 LE), each
//!   dimension (u64 LE), the data's byte length (u64 LE) and the data bytes
//!   as stored.
//!
//! [`load`] refuses a file cut short or grown, a header that is not
//! safetensors, and a checksum that does not match, naming the file and the
//! problem; it never returns part of a file. A file without `checksum`, as
//! numpy's or PyTorch's `safetensors` writes it, is accepted unchecked; its
//! tensors must be F32 (`x.astype(np.float32)`, `t.float()`).
//!
//! # Atomic writes
//! [`save`] writes a temporary file in the destination's folder, fsyncs it,
//! renames it over the destination and fsyncs the folder. A crash or an
//! error at any point leaves either the old file or the new one at `path`,
//! never a partial one; the temporary file is removed on error.

use crate::blob::Blob;
use crate::error::{Error, Result};
use crate::net::Net;
use crate::shape::{fmt_shape, Shape};
use crate::tensors::{RawTensor, TensorFile};
use safetensors::{Dtype, View};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The `format` metadata of files netrun writes.
pub const FORMAT: &str = "netrun-v1";

/// One tensor read from a file.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub shape: Shape,
    pub data: Vec<f32>,
}

/// A whole file: tensors by name and the header metadata.
#[derive(Debug, Clone, Default)]
pub struct Tensors {
    /// The file read (named in [`apply`]'s errors).
    pub path: PathBuf,
    pub tensors: BTreeMap<String, Tensor>,
    pub metadata: BTreeMap<String, String>,
}

/// How [`apply`] treats net params the file lacks.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApplyOptions {
    /// Fail when a learnable blob has no tensor (else it keeps its value and is listed as missing).
    pub require_all: bool,
}

/// What [`apply`] did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadReport {
    /// Net params given values (`L.i` of the owner), in layer order.
    pub loaded: Vec<String>,
    /// Net params the file has no tensor for, in layer order.
    pub missing: Vec<String>,
    /// File tensors no net param took, sorted.
    pub unused: Vec<String>,
}

/// `(L.i, index into net.params)` for every learnable blob a layer owns, in layer order.
pub fn net_params(net: &Net) -> Vec<(String, usize)> {
    net.learnables
        .iter()
        .map(|l| (l.name.clone(), l.param))
        .collect()
}

/// Writes the blobs' data as F32 tensors, atomically (see the module docs).
pub fn save(
    path: &Path,
    tensors: &[(String, &Blob)],
    metadata: &BTreeMap<String, String>,
) -> Result<()> {
    let views: Vec<(&str, &[usize], &[f32])> = tensors
        .iter()
        .map(|(name, b)| (name.as_str(), b.shape(), b.data()))
        .collect();
    save_f32(path, &views, metadata)
}

/// [`save`] for `(name, shape, values)` triples, e.g. a blob's diff.
pub fn save_f32(
    path: &Path,
    tensors: &[(&str, &[usize], &[f32])],
    metadata: &BTreeMap<String, String>,
) -> Result<()> {
    let fail = |m: String| Error::Other(format!("cannot write `{}`: {m}", path.display()));
    let mut seen = HashSet::new();
    for &(name, shape, data) in tensors {
        if !seen.insert(name) {
            return Err(fail(format!("two tensors are named `{name}`")));
        }
        if crate::shape::count(shape) != data.len() {
            return Err(fail(format!(
                "tensor `{name}` has shape {} but {} values",
                fmt_shape(shape),
                data.len()
            )));
        }
    }
    let mut sorted: Vec<(&str, &[usize], &[f32])> = tensors.to_vec();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut hasher = Checksum::default();
    for &(name, shape, data) in &sorted {
        hasher.add(name, shape, &le_bytes(data));
    }
    let mut meta: HashMap<String, String> = metadata.clone().into_iter().collect();
    meta.insert("format".into(), FORMAT.into());
    meta.insert("checksum".into(), hasher.finish());
    let views = sorted
        .iter()
        .map(|&(name, shape, data)| (name, F32View { shape, data }));
    let bytes = safetensors::serialize(views, Some(meta)).map_err(|e| fail(e.to_string()))?;
    write_atomically(path, &bytes).map_err(fail)
}

/// Reads and checks a whole file (see the module docs for what is refused).
/// A Caffe `.caffemodel` is recognised by its content (whatever its name)
/// and read as tensors `L.i` that [`apply`] matches by Caffe's rules
/// ([`crate::caffe::load`]).
pub fn load(path: &Path) -> Result<Tensors> {
    if let Some(bytes) = caffemodel_bytes(path)? {
        return crate::caffe::load::read_tensors(path, &bytes);
    }
    let file = TensorFile::open(path)?;
    let metadata = file.metadata()?;
    let here = || format!("`{}`", path.display());
    if let Some(format) = metadata.get("format") {
        if format.starts_with("netrun-") && format != FORMAT {
            return Err(Error::Other(format!(
                "{}: format `{format}` is not one this netrun reads ({FORMAT})",
                here()
            )));
        }
    }
    if let Some(recorded) = metadata.get("checksum") {
        if !recorded.starts_with("crc32:") {
            return Err(Error::Other(format!(
                "{}: unknown checksum `{recorded}` (expected crc32:<8 hex digits>)",
                here()
            )));
        }
        let mut hasher = Checksum::default();
        for RawTensor {
            name, shape, bytes, ..
        } in file.raw()?
        {
            hasher.add(&name, &shape, bytes);
        }
        let actual = hasher.finish();
        if &actual != recorded {
            return Err(Error::Other(format!(
                "{}: checksum mismatch: the header records {recorded}, the tensors hash to {actual} (the file is corrupted)",
                here()
            )));
        }
    }
    let tensors = file
        .all_f32()?
        .into_iter()
        .map(|(name, (shape, data))| (name, Tensor { shape, data }))
        .collect();
    Ok(Tensors {
        path: path.to_path_buf(),
        tensors,
        metadata,
    })
}

/// The bytes of `path` when it is a caffemodel rather than safetensors: a
/// safetensors file has its JSON header's `{` at byte 8; a `NetParameter`
/// starts with the tag of its name or layers.
fn caffemodel_bytes(path: &Path) -> Result<Option<Vec<u8>>> {
    let io = |e: std::io::Error| Error::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let mut head = Vec::with_capacity(9);
    std::io::Read::read_to_end(
        &mut std::io::Read::take(File::open(path).map_err(io)?, 9),
        &mut head,
    )
    .map_err(io)?;
    if head.get(8) == Some(&b'{') || !crate::caffe::model::looks_like_net_parameter(&head) {
        return Ok(None);
    }
    std::fs::read(path).map(Some).map_err(io)
}

/// Copies the file's tensors into `net.params` by name (module docs). Nothing
/// is copied unless every matched tensor has its param's shape. Tensors from
/// a caffemodel are first matched by Caffe's rules ([`crate::caffe::load`]).
pub fn apply(net: &mut Net, tensors: &Tensors, options: ApplyOptions) -> Result<LoadReport> {
    if crate::caffe::load::is_caffemodel(tensors) {
        let (matched, skipped) = crate::caffe::load::match_layers(net, tensors)?;
        let mut report = apply_by_name(net, &matched, options)?;
        report.unused.extend(skipped);
        report.unused.sort();
        return Ok(report);
    }
    apply_by_name(net, tensors, options)
}

fn apply_by_name(net: &mut Net, tensors: &Tensors, options: ApplyOptions) -> Result<LoadReport> {
    // Every name a learnable blob answers to: the owner's first, then its sharers' in layer order.
    let mut names: Vec<Vec<String>> = vec![Vec::new(); net.params.len()];
    for (n, node) in net.graph.nodes.iter().enumerate() {
        for (i, &p) in net.param_ids[n].iter().enumerate() {
            names[p].push(format!("{}.{i}", node.def.name));
        }
    }
    let file = tensors.path.display();
    let mut report = LoadReport::default();
    let mut plan: Vec<(usize, &Tensor)> = Vec::new();
    let mut used: HashSet<&str> = HashSet::new();
    let mut mismatches = Vec::new();
    for (name, p) in net_params(net) {
        let Some(source) = names[p]
            .iter()
            .find(|a| tensors.tensors.contains_key(a.as_str()))
        else {
            report.missing.push(name);
            continue;
        };
        let t = &tensors.tensors[source];
        let want = net.params[p].shape();
        if t.shape != want {
            let alias = if *source == name {
                String::new()
            } else {
                format!(" (for `{name}`, which it shares)")
            };
            mismatches.push(format!(
                "tensor `{source}`{alias} in `{file}` has shape {}, but the net's `{name}` is {}",
                fmt_shape(&t.shape),
                fmt_shape(want)
            ));
        }
        used.insert(source);
        plan.push((p, t));
        report.loaded.push(name);
    }
    if !mismatches.is_empty() {
        return Err(Error::Other(mismatches.join("\n")));
    }
    report.unused = tensors
        .tensors
        .keys()
        .filter(|k| !used.contains(k.as_str()))
        .cloned()
        .collect();
    if options.require_all && !report.missing.is_empty() {
        let mut msg = format!(
            "`{file}` has no tensor for the net's {}",
            quoted(&report.missing)
        );
        if !report.unused.is_empty() {
            msg += &format!(
                "; it has {} that the net does not use",
                quoted(&report.unused)
            );
        }
        return Err(Error::Other(msg));
    }
    for (p, t) in plan {
        net.params[p].data_mut().copy_from_slice(&t.data);
    }
    Ok(report)
}

/// `` `a`, `b` `` for messages.
fn quoted(names: &[String]) -> String {
    let q: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    q.join(", ")
}

/// The running `checksum` of the module docs.
#[derive(Default)]
struct Checksum(crc32fast::Hasher);

impl Checksum {
    fn add(&mut self, name: &str, shape: &[usize], bytes: &[u8]) {
        let h = &mut self.0;
        h.update(&(name.len() as u64).to_le_bytes());
        h.update(name.as_bytes());
        h.update(&(shape.len() as u64).to_le_bytes());
        for &d in shape {
            h.update(&(d as u64).to_le_bytes());
        }
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    }

    fn finish(self) -> String {
        format!("crc32:{:08x}", self.0.finalize())
    }
}

fn le_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// An F32 tensor for `safetensors::serialize`; bytes are made when written.
struct F32View<'a> {
    shape: &'a [usize],
    data: &'a [f32],
}

impl View for F32View<'_> {
    fn dtype(&self) -> Dtype {
        Dtype::F32
    }
    fn shape(&self) -> &[usize] {
        self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Owned(le_bytes(self.data))
    }
    fn data_len(&self) -> usize {
        self.data.len() * 4
    }
}

/// Temp file beside `path` → write → fsync → rename → fsync the folder.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> std::result::Result<(), String> {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let file_name = path
        .file_name()
        .ok_or("the path names no file")?
        .to_string_lossy();
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let temp = dir.join(format!(
        ".{file_name}.{}.{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let mut file = File::options()
        .write(true)
        .create_new(true)
        .open(&temp)
        .map_err(|e| format!("cannot create `{}`: {e}", temp.display()))?;
    let written = (|| {
        let wrote = file.write_all(bytes).and_then(|()| file.sync_all());
        drop(file);
        wrote.map_err(|e| format!("writing `{}`: {e}", temp.display()))?;
        std::fs::rename(&temp, path)
            .map_err(|e| format!("renaming `{}` over it: {e}", temp.display()))
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(e);
    }
    // The rename is durable only once the folder's entry is on disk.
    #[cfg(unix)]
    File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| format!("cannot sync folder `{}`: {e}", dir.display()))?;
    Ok(())
}
