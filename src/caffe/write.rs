//! Writing a net's learnable blobs as a `.caffemodel` (binary `NetParameter`).
//!
//! Every layer the file defines gets a `layer` entry with its name, type,
//! bottoms and tops as written, and its learnable blobs in Caffe's order
//! with `shape` and `data` (a shared blob is written under every layer that
//! uses it, as Caffe does). Layer parameters (`convolution_param`, ...) are
//! not encoded: Caffe's `CopyTrainedLayersFrom` and OpenCV's
//! `readNetFromCaffe(prototxt, caffemodel)` take the architecture from the
//! text file and the blobs from this one, by layer name. The split layers
//! netrun inserts for fan-out are not written (Caffe inserts its own).

use super::messages::{BlobProto, BlobShape, LayerParameter, NetParameter};
use crate::error::{Error, Result};
use crate::net::Net;
use prost::Message;
use std::path::Path;

/// The net as a `NetParameter` holding its blobs.
pub fn net_parameter(net: &Net) -> NetParameter {
    let mut layer = Vec::new();
    for (n, node) in net.graph.nodes.iter().enumerate() {
        let def = &node.def;
        // Splits made by netrun have no block of their own in the file.
        if def.type_name == "Split" && def.block.fields.is_empty() {
            continue;
        }
        let blobs = net.param_ids[n]
            .iter()
            .map(|&p| {
                let b = &net.params[p];
                BlobProto {
                    shape: Some(BlobShape {
                        dim: b.shape().iter().map(|&d| d as i64).collect(),
                    }),
                    data: b.data().to_vec(),
                    ..Default::default()
                }
            })
            .collect();
        layer.push(LayerParameter {
            name: Some(def.name.clone()),
            r#type: Some(def.type_name.clone()),
            bottom: (0..def.bottom.len())
                .map(|i| def.written_bottom(i).to_string())
                .collect(),
            top: def.top.clone(),
            blobs,
        });
    }
    NetParameter {
        name: Some(net.graph.name.clone()),
        layer,
        ..Default::default()
    }
}

/// Writes the net's blobs to `path` atomically.
pub fn write(net: &Net, path: &Path) -> Result<()> {
    let bytes = net_parameter(net).encode_to_vec();
    crate::weights::write_atomically(path, &bytes)
        .map_err(|m| Error::Other(format!("cannot write `{}`: {m}", path.display())))
}
