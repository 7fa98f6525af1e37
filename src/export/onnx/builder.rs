//! Accumulates an ONNX graph: nodes, initializers and unique value names.
//!
//! ONNX values are written once, Caffe blobs may be rewritten in place, so each
//! netrun blob maps to its *current* ONNX value; the last write of a blob takes
//! the blob's own name, so net outputs keep their Caffe names.

use super::proto::{attr_type, AttributeProto, NodeProto, TensorProto, FLOAT, INT64};
use std::collections::HashSet;

#[derive(Default)]
pub struct Builder {
    pub nodes: Vec<NodeProto>,
    pub initializers: Vec<TensorProto>,
    used: HashSet<String>,
    node_names: HashSet<String>,
}

/// A node attribute.
pub enum Attr {
    Int(i64),
    Ints(Vec<i64>),
    Float(f32),
}

impl Builder {
    /// Reserves a name: `want` if free, else `want_2`, `want_3`, ...
    pub fn fresh(&mut self, want: &str) -> String {
        unique(&mut self.used, want)
    }

    /// Marks a name taken (graph inputs, blob names reserved for last writes).
    pub fn reserve(&mut self, name: &str) {
        self.used.insert(name.to_string());
    }

    /// An F32 initializer named like `want` (made unique); returns its name.
    pub fn constant(&mut self, want: &str, dims: &[usize], values: &[f32]) -> String {
        debug_assert_eq!(dims.iter().product::<usize>(), values.len());
        let name = self.fresh(want);
        self.initializers.push(TensorProto {
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: FLOAT,
            name: name.clone(),
            raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        });
        name
    }

    /// A 1-D INT64 initializer (shapes, pads, slice bounds); returns its name.
    pub fn int64s(&mut self, want: &str, values: &[i64]) -> String {
        let name = self.fresh(want);
        self.initializers.push(TensorProto {
            dims: vec![values.len() as i64],
            data_type: INT64,
            name: name.clone(),
            raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        });
        name
    }

    /// Adds a node named `name` (made unique) with the given outputs.
    pub fn node(
        &mut self,
        op: &str,
        name: &str,
        inputs: &[&str],
        outputs: &[&str],
        attrs: Vec<(&str, Attr)>,
    ) {
        let name = unique(&mut self.node_names, name);
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            name,
            op_type: op.to_string(),
            attribute: attrs.into_iter().map(|(n, a)| attribute(n, a)).collect(),
            doc_string: String::new(),
        });
    }

    /// Adds a one-output node whose output is a fresh value named after `want`; returns it.
    pub fn op(
        &mut self,
        op: &str,
        want: &str,
        inputs: &[&str],
        attrs: Vec<(&str, Attr)>,
    ) -> String {
        let out = self.fresh(want);
        self.node(op, want, inputs, &[&out], attrs);
        out
    }
}

/// `want` if not in `taken`, else `want_2`, `want_3`, ...; added to `taken`.
fn unique(taken: &mut HashSet<String>, want: &str) -> String {
    let mut name = want.to_string();
    let mut k = 2;
    while taken.contains(&name) {
        name = format!("{want}_{k}");
        k += 1;
    }
    taken.insert(name.clone());
    name
}

fn attribute(name: &str, value: Attr) -> AttributeProto {
    let mut a = AttributeProto {
        name: name.to_string(),
        ..AttributeProto::default()
    };
    match value {
        Attr::Int(i) => {
            a.i = Some(i);
            a.r#type = attr_type::INT;
        }
        Attr::Ints(v) => {
            a.ints = v;
            a.r#type = attr_type::INTS;
        }
        Attr::Float(f) => {
            a.f = Some(f);
            a.r#type = attr_type::FLOAT;
        }
    }
    a
}
