//! Pass 5: shape inference in layer order. Each layer's shape rule sees its
//! bottoms' shapes; a failure is reported with the layer's name, type and the
//! offending bottom, and layers downstream of it are skipped rather than
//! reporting follow-on errors.

use super::Graph;
use crate::error::Diagnostic;
use crate::shape::fmt_shape;

pub fn infer(graph: &mut Graph) -> Result<(), Vec<Diagnostic>> {
    let mut diags = Vec::new();
    // Layers whose shape rule ran; only their learnable blobs are known.
    let mut shaped = vec![false; graph.nodes.len()];
    for (n, done) in shaped.iter_mut().enumerate() {
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
                *done = true;
            }
            Err(e) => {
                let span = match e.bottom {
                    Some(b) => def.field_span("bottom", b),
                    None => def.name_span(),
                };
                let names: Vec<&str> = (0..def.bottom.len())
                    .map(|i| def.written_bottom(i))
                    .collect();
                let (message, named) = name_bottoms(&e.message, &names);
                let what = match e.bottom {
                    Some(b) if !named && b < names.len() => format!(" (bottom `{}`)", names[b]),
                    _ => String::new(),
                };
                diags.push(def.error(span, format!("{}{what}: {message}", def.describe())));
            }
        }
    }
    diags.extend(super::names::resolve_params(graph, &shaped));
    if diags.is_empty() {
        Ok(())
    } else {
        Err(super::sort_diags(diags))
    }
}

/// Adds the blob name after each "bottom <i>" in a shape rule's message:
/// `bottom 1 has shape 2x3` → ``bottom 1 (`conv2`) has shape 2x3``.
/// Returns the message and whether any bottom was named.
fn name_bottoms(message: &str, names: &[&str]) -> (String, bool) {
    const KEY: &str = "bottom ";
    let mut out = String::with_capacity(message.len());
    let mut named = false;
    let mut rest = message;
    while let Some(i) = rest.find(KEY) {
        let starts_word = rest[..i]
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_alphanumeric() && c != '_');
        let after = &rest[i + KEY.len()..];
        let digits = after.len() - after.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        out.push_str(&rest[..i + KEY.len() + digits]);
        rest = &after[digits..];
        if starts_word && digits > 0 && !rest.starts_with(" (`") {
            if let Some(name) = after[..digits]
                .parse::<usize>()
                .ok()
                .and_then(|b| names.get(b))
            {
                out.push_str(&format!(" (`{name}`)"));
                named = true;
            }
        }
    }
    out.push_str(rest);
    (out, named)
}

#[cfg(test)]
mod tests {
    use super::name_bottoms;

    #[test]
    fn bottoms_are_named_where_the_message_mentions_them() {
        let names = ["a", "b"];
        let (m, named) = name_bottoms("bottom 1 has shape 2 but bottom 0 has shape 3", &names);
        assert_eq!(
            m,
            "bottom 1 (`b`) has shape 2 but bottom 0 (`a`) has shape 3"
        );
        assert!(named);
        let (m, named) = name_bottoms("needs 4 axes; bottom 7 is unknown, mybottom 1", &names);
        assert_eq!(m, "needs 4 axes; bottom 7 is unknown, mybottom 1");
        assert!(!named);
    }
}
