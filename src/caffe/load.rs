//! A `.caffemodel` as a weights file: its blobs as tensors `L.i`, and the
//! matching rules of Caffe's `CopyTrainedLayersFrom` applied before the
//! tensors are copied into a net ([`crate::weights::apply`]):
//! - a layer of the file that the net lacks is skipped (its tensors are
//!   reported as unused);
//! - a layer the net has must have as many blobs as the net's layer, and
//!   each blob the net's shape, else the error names the layer and both
//!   shapes;
//! - a blob stored with the legacy `num`/`channels`/`height`/`width` also
//!   matches a net blob of at most 4 axes whose shape, padded on the left
//!   with 1s to 4 axes, is the same (an InnerProduct weight `10x500` stored
//!   as `1x1x10x500`), as Caffe's `Blob::ShapeEquals` allows.

use super::model::CaffeModel;
use crate::error::{Error, Result};
use crate::layers::fmt_shape;
use crate::net::Net;
use crate::weights::{Tensor, Tensors};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

/// `format` metadata of tensors read from a caffemodel.
pub const FORMAT: &str = "caffemodel";
/// Metadata: JSON `[[layer, blob count], ...]` in file order.
const LAYERS: &str = "caffemodel.layers";
/// Metadata: JSON list of the tensors whose shape is legacy 4-D.
const LEGACY: &str = "caffemodel.legacy";

/// Reads a caffemodel as weights: tensors `L.i`, `format` = `caffemodel`.
pub fn read_tensors(path: &Path, bytes: &[u8]) -> Result<Tensors> {
    Ok(to_tensors(&CaffeModel::decode(path, bytes)?))
}

/// The model's blobs as tensors `L.i` (a later layer of the same name wins,
/// as Caffe's copy would leave it).
pub fn to_tensors(model: &CaffeModel) -> Tensors {
    let mut tensors = BTreeMap::new();
    let mut layers = Vec::new();
    let mut legacy = Vec::new();
    for l in &model.layers {
        layers.push((l.name.clone(), l.blobs.len()));
        for (i, b) in l.blobs.iter().enumerate() {
            let name = format!("{}.{i}", l.name);
            if b.legacy {
                legacy.push(name.clone());
            }
            tensors.insert(
                name,
                Tensor {
                    shape: b.shape.clone(),
                    data: b.data.clone(),
                },
            );
        }
    }
    let mut metadata = BTreeMap::new();
    metadata.insert("format".to_string(), FORMAT.to_string());
    metadata.insert(
        LAYERS.to_string(),
        serde_json::to_string(&layers).expect("strings and counts serialise"),
    );
    metadata.insert(
        LEGACY.to_string(),
        serde_json::to_string(&legacy).expect("strings serialise"),
    );
    Tensors {
        path: model.path.clone(),
        tensors,
        metadata,
    }
}

/// Whether the tensors came from a caffemodel (and so follow its rules).
pub fn is_caffemodel(tensors: &Tensors) -> bool {
    tensors.metadata.get("format").map(String::as_str) == Some(FORMAT)
        && tensors.metadata.contains_key(LAYERS)
}

/// Applies Caffe's matching rules (module docs): returns the tensors of the
/// layers the net has, reshaped to the net's shapes where the legacy rule
/// allows, and the names of the tensors of layers the net lacks.
pub fn match_layers(net: &Net, tensors: &Tensors) -> Result<(Tensors, Vec<String>)> {
    let file = tensors.path.display();
    let bad_meta = || Error::Other(format!("`{file}`: damaged caffemodel metadata"));
    let layers: Vec<(String, usize)> =
        serde_json::from_str(&tensors.metadata[LAYERS]).map_err(|_| bad_meta())?;
    let legacy: HashSet<String> = match tensors.metadata.get(LEGACY) {
        Some(s) => serde_json::from_str(s).map_err(|_| bad_meta())?,
        None => HashSet::new(),
    };
    let by_name: HashMap<&str, usize> = net
        .graph
        .nodes
        .iter()
        .enumerate()
        .map(|(n, node)| (node.def.name.as_str(), n))
        .collect();
    let mut kept = BTreeMap::new();
    let mut skipped = Vec::new();
    let mut errors = Vec::new();
    for (layer, count) in &layers {
        let names = (0..*count).map(|i| format!("{layer}.{i}"));
        let Some(&n) = by_name.get(layer.as_str()) else {
            skipped.extend(names);
            continue;
        };
        let node = &net.graph.nodes[n];
        let ids = &net.param_ids[n];
        if ids.len() != *count {
            errors.push(format!(
                "`{file}`: layer `{layer}` has {count} blob(s) but the net's {} has {} (Caffe: incompatible number of blobs); rename the layer in the net to learn it from scratch",
                node.def.describe(),
                ids.len()
            ));
            continue;
        }
        for (i, (name, &p)) in names.zip(ids).enumerate() {
            let Some(t) = tensors.tensors.get(&name) else {
                continue;
            };
            let want = net.params[p].shape();
            let padded = want.len() <= 4
                && legacy.contains(&name)
                && t.shape.len() == 4
                && std::iter::repeat_n(1, 4 - want.len())
                    .chain(want.iter().copied())
                    .eq(t.shape.iter().copied());
            if t.shape != want && !padded {
                errors.push(format!(
                    "`{file}`: cannot copy blob {i} of layer `{layer}`: the file's shape is {}{}, the net's {} wants {}; rename the layer in the net to learn it from scratch",
                    fmt_shape(&t.shape),
                    if legacy.contains(&name) { " (legacy num/channels/height/width)" } else { "" },
                    node.def.describe(),
                    fmt_shape(want)
                ));
                continue;
            }
            kept.insert(
                name,
                Tensor {
                    shape: want.to_vec(),
                    data: t.data.clone(),
                },
            );
        }
    }
    if !errors.is_empty() {
        return Err(Error::Other(errors.join("\n")));
    }
    Ok((
        Tensors {
            path: tensors.path.clone(),
            tensors: kept,
            metadata: tensors.metadata.clone(),
        },
        skipped,
    ))
}
