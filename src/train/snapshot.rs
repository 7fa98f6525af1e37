//! Snapshot files of a training run, all safetensors, beside `<prefix>_iter_<N>`:
//!
//! * `.weights.safetensors`: every learnable blob needed to run the net, named
//!   `<layer>.<index>` (owners only: a blob shared through `param { name }` is
//!   stored once, under its first layer), CenterLoss centres excluded;
//! * `.centers.safetensors`: the CenterLoss centres, only when the net has any;
//! * `.solverstate.safetensors`: the update rule's history blobs
//!   (`<layer>.<index>.history<k>`) as tensors, and as metadata the iteration,
//!   the rule, each net's layer states (`state.<net>.<layer>.<key>`) and each
//!   net's random stream (`rng.<net>` = ChaCha seed : stream : word position),
//!   `<net>` being `train` or `test<k>`.
//!
//! The solver state is written last, so a snapshot whose solver state exists is complete.

use crate::error::{Error, Result};
use crate::layers::{fmt_shape, Shape};
use crate::net::Net;
use rand_chacha::ChaCha8Rng;
use safetensors::{Dtype, SafeTensors};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

pub const WEIGHTS: &str = ".weights.safetensors";
pub const CENTERS: &str = ".centers.safetensors";
pub const SOLVERSTATE: &str = ".solverstate.safetensors";

/// `<prefix>_iter_<N>`: the part the three file names share.
pub fn base(prefix: &str, iter: u64) -> PathBuf {
    PathBuf::from(format!("{prefix}_iter_{iter}"))
}

/// The snapshot base named by a `--snapshot` argument: the base itself or any of its three files.
pub fn base_of(arg: &Path) -> PathBuf {
    let s = arg.to_string_lossy();
    for suffix in [WEIGHTS, CENTERS, SOLVERSTATE] {
        if let Some(b) = s.strip_suffix(suffix) {
            return PathBuf::from(b);
        }
    }
    arg.to_path_buf()
}

/// `base` + `suffix`.
pub fn file(base: &Path, suffix: &str) -> PathBuf {
    let mut s = base.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Whether learnable blob `index` of a node is a CenterLoss centre blob.
pub fn is_center(net: &Net, node: usize) -> bool {
    net.graph.nodes[node].layer.type_name() == "CenterLoss"
}

/// Learnable blobs by `(name, index into Net::params)`.
pub type Named = Vec<(String, usize)>;

/// Owned learnables split into (weights, centres).
pub fn split_params(net: &Net) -> (Named, Named) {
    let mut weights = Vec::new();
    let mut centers = Vec::new();
    let owner_node: HashMap<usize, usize> = net
        .param_ids
        .iter()
        .enumerate()
        .flat_map(|(n, ids)| ids.iter().map(move |&p| (p, n)))
        .rev()
        .collect();
    for l in &net.learnables {
        let entry = (l.name.clone(), l.param);
        if owner_node.get(&l.param).is_some_and(|&n| is_center(net, n)) {
            centers.push(entry);
        } else {
            weights.push(entry);
        }
    }
    (weights, centers)
}

/// A random stream as `seed-hex:stream:word-position`.
pub fn rng_to_string(rng: &ChaCha8Rng) -> String {
    let seed: String = rng.get_seed().iter().map(|b| format!("{b:02x}")).collect();
    format!("{seed}:{}:{}", rng.get_stream(), rng.get_word_pos())
}

/// The inverse of [`rng_to_string`].
pub fn rng_from_string(s: &str) -> Option<ChaCha8Rng> {
    use rand::SeedableRng;
    let mut parts = s.split(':');
    let hex = parts.next()?;
    let stream: u64 = parts.next()?.parse().ok()?;
    let pos: u128 = parts.next()?.parse().ok()?;
    if hex.len() != 64 || parts.next().is_some() {
        return None;
    }
    let mut seed = [0u8; 32];
    for (i, b) in seed.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    let mut rng = ChaCha8Rng::from_seed(seed);
    rng.set_stream(stream);
    rng.set_word_pos(pos);
    Some(rng)
}

/// Tensors and metadata read from one file.
pub struct Contents {
    pub path: PathBuf,
    pub tensors: BTreeMap<String, (Shape, Vec<f32>)>,
    pub metadata: BTreeMap<String, String>,
}

impl Contents {
    /// A metadata value, with an error naming the file when missing.
    pub fn meta(&self, key: &str) -> Result<&str> {
        self.metadata.get(key).map(String::as_str).ok_or_else(|| {
            Error::Other(format!(
                "`{}` has no `{key}` entry: not a netrun snapshot",
                self.path.display()
            ))
        })
    }
}

/// Writes F32 tensors and metadata to `path` through a temporary file and a
/// rename, so a crash never leaves a half-written file under the final name.
pub fn write(
    path: &Path,
    tensors: &[(String, &[usize], &[f32])],
    metadata: BTreeMap<String, String>,
) -> Result<()> {
    let io = |e: std::io::Error| Error::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, _, v)| v.iter().flat_map(|x| x.to_le_bytes()).collect())
        .collect();
    let views = tensors
        .iter()
        .zip(&bytes)
        .map(|((name, shape, _), b)| {
            safetensors::tensor::TensorView::new(Dtype::F32, shape.to_vec(), b)
                .map(|v| (name.clone(), v))
        })
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::Other(format!("{}: {e}", path.display())))?;
    let out = safetensors::serialize(views, Some(metadata.into_iter().collect()))
        .map_err(|e| Error::Other(format!("{}: {e}", path.display())))?;
    let tmp = file(path, ".tmp");
    std::fs::write(&tmp, out).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// Reads every tensor (F32) and the metadata of a safetensors file.
pub fn read(path: &Path) -> Result<Contents> {
    let bytes = std::fs::read(path).map_err(|e| Error::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let bad = |e: String| Error::Other(format!("`{}`: {e}", path.display()));
    let st = SafeTensors::deserialize(&bytes).map_err(|e| bad(e.to_string()))?;
    let (_, meta) = SafeTensors::read_metadata(&bytes).map_err(|e| bad(e.to_string()))?;
    let mut tensors = BTreeMap::new();
    for (name, view) in st.tensors() {
        if view.dtype() != Dtype::F32 {
            return Err(bad(format!(
                "tensor `{name}` is {}, expected F32",
                view.dtype()
            )));
        }
        let values = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        tensors.insert(name, (view.shape().to_vec(), values));
    }
    let metadata = meta
        .metadata()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    Ok(Contents {
        path: path.to_path_buf(),
        tensors,
        metadata,
    })
}

/// Copies tensors into the net's learnable blobs by name, for `names`
/// (`(name, param index)`); every one must be present with its shape.
pub fn restore_params(net: &mut Net, names: &[(String, usize)], from: &Contents) -> Result<()> {
    for (name, p) in names {
        let (shape, values) = from.tensors.get(name).ok_or_else(|| {
            Error::Other(format!(
                "`{}` has no tensor `{name}`, which the net learns",
                from.path.display()
            ))
        })?;
        let blob = &mut net.params[*p];
        if shape.as_slice() != blob.shape() {
            return Err(Error::Other(format!(
                "`{}`: tensor `{name}` is {} but the net's blob is {}",
                from.path.display(),
                fmt_shape(shape),
                fmt_shape(blob.shape())
            )));
        }
        blob.data_mut().copy_from_slice(values);
    }
    Ok(())
}
