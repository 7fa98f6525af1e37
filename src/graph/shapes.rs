//! Pass 5: shape inference in layer order. Each layer's shape rule sees its
//! bottoms' shapes; a failure is reported with the layer's name, type and the
//! offending bottom, and layers downstream of it are skipped rather than
//! reporting follow-on errors.

use super::Graph;
use crate::error::Diagnostic;
use crate::layers::fmt_shape;

pub fn infer(graph: &mut Graph) -> Result<(), Vec<Diagnostic>> {
    let mut diags = Vec::new();
    for n in 0..graph.nodes.len() {
        let node = &graph.nodes[n];
        let bottom: Option<Vec<Vec<usize>>> = node
            .bottoms
            .iter()
            .map(|&b| graph.blobs[b].shape.clone())
            .collect();
        let Some(bottom) = bottom else { continue };
        let node = &mut graph.nodes[n];
        let def = &node.def;
        match node.layer.reshape(&bottom) {
            Ok(tops) => {
                if tops.len() != node.tops.len() {
                    diags.push(def.error(
                        def.name_span(),
                        format!(
                            "{}: the shape rule gave {} tops for {} declared",
                            def.describe(),
                            tops.len(),
                            node.tops.len()
                        ),
                    ));
                    continue;
                }
                for (t, shape) in tops.into_iter().enumerate() {
                    let id = node.tops[t];
                    let in_place = node.bottoms.get(t) == Some(&id);
                    if in_place && bottom[t] != shape {
                        diags.push(
                            def.error(
                                def.field_span("top", t),
                                format!(
                                    "{}: in-place top `{}` would change shape from {} to {}",
                                    def.describe(),
                                    def.top[t],
                                    fmt_shape(&bottom[t]),
                                    fmt_shape(&shape)
                                ),
                            )
                            .with_help("give the top its own name"),
                        );
                        continue;
                    }
                    graph.blobs[id].shape = Some(shape);
                }
                node.param_shapes = node.layer.param_shapes();
            }
            Err(e) => {
                let span = match e.bottom {
                    Some(b) => def.field_span("bottom", b),
                    None => def.name_span(),
                };
                let what = match e.bottom.and_then(|b| def.bottom.get(b)) {
                    Some(name) => format!(" (bottom `{name}`)"),
                    None => String::new(),
                };
                diags.push(def.error(span, format!("{}{what}: {}", def.describe(), e.message)));
            }
        }
    }
    diags.extend(super::names::resolve_params(graph));
    if diags.is_empty() {
        Ok(())
    } else {
        Err(super::sort_diags(diags))
    }
}
