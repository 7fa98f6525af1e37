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
//!   `<net>` being `train` or `test<k>`, and the displayed loss's window
//!   (`smoothed_loss`, see [`super::log::Smoother::to_meta`]).
//!
//! All three are written and read by [`crate::weights`]: atomic writes, a
//! checksum (covering the metadata) verified on reading. Then
//! `.manifest` ([`super::manifest`]) is written last: a set is complete only
//! when its manifest is intact and names each file with its checksum.

use crate::error::{Error, Result};
use crate::net::Net;
use crate::weights::{self, Tensors};
use rand_chacha::ChaCha8Rng;
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
    for suffix in [WEIGHTS, CENTERS, SOLVERSTATE, super::manifest::MANIFEST] {
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

/// A metadata value of a snapshot file, with an error naming the file when missing.
pub fn meta<'a>(file: &'a Tensors, key: &str) -> Result<&'a str> {
    file.metadata.get(key).map(String::as_str).ok_or_else(|| {
        Error::Other(format!(
            "`{}` has no `{key}` entry: not a netrun snapshot",
            file.path.display()
        ))
    })
}

/// Writes a snapshot file atomically with its checksum ([`weights::save_f32`]).
pub fn write(
    path: &Path,
    tensors: &[(String, &[usize], &[f32])],
    metadata: &BTreeMap<String, String>,
) -> Result<()> {
    write_with(path, tensors, metadata, &mut || {})
}

/// [`write`] with a hook between write steps ([`weights::save_f32_with`]).
pub fn write_with(
    path: &Path,
    tensors: &[(String, &[usize], &[f32])],
    metadata: &BTreeMap<String, String>,
    step: &mut dyn FnMut(),
) -> Result<()> {
    let views: Vec<(&str, &[usize], &[f32])> = tensors
        .iter()
        .map(|(n, s, v)| (n.as_str(), *s, *v))
        .collect();
    weights::save_f32_with(path, &views, metadata, step)
}

/// Reads and verifies a snapshot file ([`weights::load`]).
pub fn read(path: &Path) -> Result<Tensors> {
    weights::load(path)
}
