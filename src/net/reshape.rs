//! Shapes that change while the net runs (Caffe reshapes every layer before
//! each forward).
//!
//! The graph fixes every blob's shape once. A layer whose top shape depends on
//! its bottoms' values (Filter: as many samples as its selector keeps) resizes
//! its tops inside its forward, with [`crate::blob::Blob::reshape`]. Before a
//! layer runs forward, the net compares its bottoms' current shapes with those
//! its shape rule last saw; where they differ it runs the rule again and
//! resizes the tops, so the change flows down the net layer by layer. A layer
//! whose bottoms keep their shapes costs one comparison per forward.
//!
//! The graph's shapes ([`crate::graph::Graph::blob_shape`]) stay those of the
//! build: what `netrun check` prints and what memory was planned for.

use super::Net;
use crate::error::{Error, Result};
use crate::shape::{fmt_shape, Shape};

impl Net {
    /// The bottom shapes every node's shape rule saw when the graph was built.
    pub(super) fn build_time_bottom_shapes(graph: &crate::graph::Graph) -> Vec<Vec<Shape>> {
        (graph.nodes.iter())
            .map(|n| {
                n.bottoms
                    .iter()
                    .map(|&b| graph.blob_shape(b).to_vec())
                    .collect()
            })
            .collect()
    }

    /// Runs layer `n`'s shape rule again when one of its bottoms changed shape
    /// since its last run, and resizes its tops to the new result.
    pub(super) fn reshape_if_bottoms_changed(&mut self, n: usize) -> Result<()> {
        let node = &self.graph.nodes[n];
        let seen = &self.reshaped_for[n];
        let unchanged = (node.bottoms.iter().zip(seen)).all(|(&b, s)| self.blobs[b].shape() == s);
        if unchanged {
            return Ok(());
        }
        let bottom: Vec<Shape> = (node.bottoms.iter())
            .map(|&b| self.blobs[b].shape().to_vec())
            .collect();
        let node = &mut self.graph.nodes[n];
        let def = &node.def;
        let changed = || {
            let was: Vec<String> = self.reshaped_for[n].iter().map(|s| fmt_shape(s)).collect();
            let now: Vec<String> = bottom.iter().map(|s| fmt_shape(s)).collect();
            format!(
                "its bottoms changed shape while the net ran (from {} to {}, after a layer \
                 whose output size depends on the data, such as Filter)",
                was.join(", "),
                now.join(", ")
            )
        };
        let fail = |message: String, help: &str| {
            Error::Config(vec![def
                .error(def.name_span(), format!("{}: {message}", def.describe()))
                .with_help(help)])
        };
        let help = "the layer cannot take the new shape: keep the data-dependent batch \
                    away from it, or give the net fixed shapes";
        let tops = node
            .layer
            .reshape(&bottom)
            .map_err(|e| fail(format!("{}: {}", changed(), e.message), help))?;
        if tops.len() != node.tops.len() {
            return Err(fail(
                format!(
                    "{}: the shape rule gave {} tops for {} declared",
                    changed(),
                    tops.len(),
                    node.tops.len()
                ),
                help,
            ));
        }
        if node.layer.param_shapes() != node.param_shapes {
            return Err(fail(
                format!("{}: its learnable blobs would change shape", changed()),
                help,
            ));
        }
        for (t, shape) in tops.iter().enumerate() {
            let id = node.tops[t];
            if node.bottoms.get(t) == Some(&id) {
                if bottom[t] != *shape {
                    return Err(fail(
                        format!(
                            "{}: in-place top `{}` would change shape to {}",
                            changed(),
                            def.top[t],
                            fmt_shape(shape)
                        ),
                        "give the top its own name",
                    ));
                }
                continue;
            }
            if self.blobs[id].shape() != shape.as_slice() {
                self.blobs[id].reshape(shape);
            }
        }
        self.reshaped_for[n] = bottom;
        Ok(())
    }
}
