//! `--dynamic-batch`: the model's inputs and outputs get a symbolic first
//! axis `N`, and the shapes written into Reshape nodes say −1 there.
//!
//! That is only right when axis 0 of every blob is the batch and no other
//! axis depends on it. The net is built a second time with one more sample
//! per batch and the two builds are compared: each blob's axis 0 must be the
//! batch in both, its other axes equal. A layer whose top breaks the rule (a
//! Reshape folding the batch into another axis, a Slice or Concat along axis
//! 0, a Reduction over it) is named in the error.

use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::shape::fmt_shape;

/// Checks `a` (inputs of batch `batch`) against `b`, the same net built with
/// `batch + 1` (module docs).
pub fn check(a: &Graph, b: &Graph, batch: usize) -> Result<()> {
    for node in &a.nodes {
        for &t in &node.tops {
            let (sa, sb) = (a.blob_shape(t), b.blob_shape(t));
            let follows = a.blobs[t].name == b.blobs[t].name
                && !sa.is_empty()
                && sa.len() == sb.len()
                && sa[0] == batch
                && sb[0] == batch + 1
                && sa[1..] == sb[1..];
            if !follows {
                return Err(Error::Config(vec![node
                    .def
                    .error(
                        node.def.field_span("type", 0),
                        format!(
                        "{}: top `{}` is {} at batch {batch} and {} at batch {}, so its axis 0 \
                         is not the batch; the model cannot have a dynamic batch",
                        node.def.describe(),
                        a.blobs[t].name,
                        fmt_shape(sa),
                        fmt_shape(sb),
                        batch + 1
                    ),
                    )
                    .with_help(
                        "export with a fixed batch (`--batch N`, without `--dynamic-batch`)",
                    )]));
            }
        }
    }
    Ok(())
}

/// The batch size of a built net: axis 0 of its first Input top.
pub fn input_batch(g: &Graph) -> Option<usize> {
    g.nodes
        .iter()
        .filter(|n| n.layer.type_name() == "Input")
        .flat_map(|n| n.tops.iter())
        .map(|&t| g.blob_shape(t).first().copied())
        .next()
        .flatten()
}
