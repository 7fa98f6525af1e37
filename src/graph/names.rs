//! Pass 4: resolve bottom and top names to blobs. A top named like the bottom
//! at the same index is in place (same blob), for layers whose
//! `supports_in_place` says so. A bottom must name a blob an
//! earlier layer produced; a top must not re-produce a name unless in place.
//! Learnable blobs with the same `param { name: ... }` share storage.

use super::{BlobId, BlobInfo, Graph, Node, ParamOwner};
use crate::error::{did_you_mean, Diagnostic};
use crate::netdef::{NetDef, Phase};
use std::collections::HashMap;

pub fn resolve(net: &NetDef, phase: Phase, mut nodes: Vec<Node>) -> Result<Graph, Vec<Diagnostic>> {
    let mut diags = Vec::new();
    let mut blobs: Vec<BlobInfo> = Vec::new();
    let mut by_name: HashMap<String, BlobId> = HashMap::new();
    let mut producer: HashMap<BlobId, usize> = HashMap::new();
    let mut consumed = vec![];
    for n in 0..nodes.len() {
        let mut bottoms = Vec::new();
        for (b, name) in nodes[n].def.bottom.iter().enumerate() {
            match by_name.get(name) {
                Some(&id) => bottoms.push(id),
                None => {
                    let def = &nodes[n].def;
                    // Most recent first: on a tie the suggestion is the nearest blob above.
                    let known: Vec<&str> = blobs
                        .iter()
                        .rev()
                        .map(|b| b.name.as_str())
                        .filter(|s| !s.contains("_split_"))
                        .collect();
                    let later = nodes[n + 1..]
                        .iter()
                        .find(|m| m.def.top.contains(name))
                        .map(|m| m.def.name.clone());
                    // A layer the phase/level/stage rules left out may produce it.
                    let filtered_out = net
                        .layers
                        .iter()
                        .find(|l| {
                            l.top.contains(name) && !nodes.iter().any(|m| m.def.name == l.name)
                        })
                        .map(|l| l.name.clone());
                    let help = match (later, filtered_out) {
                        (Some(l), _) => Some(format!(
                            "`{name}` is produced later, by layer `{l}`; layers run in file order"
                        )),
                        (None, Some(l)) => Some(format!(
                            "layer `{l}` produces `{name}`, but its include/exclude rules leave it out of the {phase} net"
                        )),
                        (None, None) => did_you_mean(name, known.iter().copied()),
                    };
                    diags.push(
                        def.error(
                            def.field_span("bottom", b),
                            format!(
                                "{}: bottom `{name}` is not produced by any earlier layer{}",
                                def.describe(),
                                phase_note(net, phase)
                            ),
                        )
                        .with_help_opt(help),
                    );
                    bottoms.push(usize::MAX);
                }
            }
        }
        let mut tops = Vec::new();
        for (t, name) in nodes[n].def.top.iter().enumerate() {
            let def = &nodes[n].def;
            let in_place =
                def.bottom.get(t) == Some(name) && bottoms.get(t).is_some_and(|&b| b != usize::MAX);
            if in_place {
                if !nodes[n].layer.supports_in_place() {
                    diags.push(def.error(
                        def.field_span("top", t),
                        format!(
                            "{} cannot run in place: give its top a name other than `{name}`",
                            def.describe()
                        ),
                    ));
                }
                tops.push(bottoms[t]);
                continue;
            }
            if def.written_bottom(t) == name && by_name.contains_key(name) {
                diags.push(in_place_shared(&nodes, n, t));
                tops.push(usize::MAX);
                continue;
            }
            if let Some(&id) = by_name.get(name) {
                let other = &nodes[producer[&id]].def;
                let in_place_elsewhere = def.bottom.iter().position(|b| b == name);
                let help = match in_place_elsewhere {
                    Some(i) => format!("an in-place top must be at the same index as its bottom (bottom {i}, top {t})"),
                    None => "give this top a new name".to_string(),
                };
                diags.push(
                    def.error(
                        def.field_span("top", t),
                        format!(
                            "{}: top `{name}` is already produced by layer `{}`",
                            def.describe(),
                            other.name
                        ),
                    )
                    .with_help(help),
                );
                tops.push(id);
                continue;
            }
            let id = blobs.len();
            blobs.push(BlobInfo {
                name: name.clone(),
                shape: None,
            });
            consumed.push(false);
            by_name.insert(name.clone(), id);
            producer.insert(id, n);
            tops.push(id);
        }
        for &b in &bottoms {
            if b != usize::MAX {
                consumed[b] = true;
            }
        }
        nodes[n].bottoms = bottoms;
        nodes[n].tops = tops;
    }
    if !diags.is_empty() {
        return Err(super::sort_diags(diags));
    }
    // A blob is a net output when its last writer's result is read by nobody.
    let mut read_after: Vec<bool> = vec![false; blobs.len()];
    for node in &nodes {
        for &b in &node.bottoms {
            read_after[b] = true;
        }
        for &id in &node.tops {
            read_after[id] = false;
        }
    }
    let outputs = (0..blobs.len()).filter(|&b| !read_after[b]).collect();
    Ok(Graph {
        name: net.name.clone(),
        phase,
        nodes,
        blobs,
        force_backward: net.force_backward,
        outputs,
    })
}

/// Top `t` of node `n` was written in place, but its bottom also feeds other
/// layers, so the split pass gave it its own copy: the in-place write would
/// clobber what the others read (Caffe refuses this too).
fn in_place_shared(nodes: &[Node], n: usize, t: usize) -> Diagnostic {
    let def = &nodes[n].def;
    let name = &def.top[t];
    let split_blob = &def.bottom[t];
    let base = split_blob
        .rsplit_once('_')
        .map_or(split_blob.as_str(), |(b, _)| b);
    let readers: Vec<String> = nodes
        .iter()
        .enumerate()
        .filter(|&(m, node)| {
            m != n
                && node
                    .def
                    .bottom
                    .iter()
                    .any(|b| b.strip_prefix(base).is_some_and(|r| r.starts_with('_')))
        })
        .map(|(_, node)| format!("`{}`", node.def.name))
        .collect();
    let others = match readers.len() {
        0 => "other layers also read".to_string(),
        1 => format!("layer {} also reads", readers[0]),
        _ => format!("layers {} also read", readers.join(", ")),
    };
    def.error(
        def.field_span("top", t),
        format!(
            "{}: cannot compute `{name}` in place: {others} it",
            def.describe()
        ),
    )
    .with_help("an in-place layer must be the only reader of its bottom; give this top a new name")
}

fn phase_note(net: &NetDef, phase: Phase) -> String {
    if net
        .layers
        .iter()
        .any(|l| !l.include.is_empty() || !l.exclude.is_empty())
    {
        format!(" in phase {phase}")
    } else {
        String::new()
    }
}

/// Layers that share a name. Caffe accepts them (its name index keeps the
/// last); netrun does too when neither layer learns anything (BVLC's
/// mnist_autoencoder names two loss layers `loss`), with a warning. Layers
/// with learnable blobs must be unique: weights are saved and loaded by
/// layer name, so the second would silently receive the first's. Runs after
/// the shape pass, which fixes each layer's learnable blobs.
pub fn check_duplicate_layer_names(nodes: &[Node]) -> Result<(), Vec<Diagnostic>> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let (mut errors, mut warnings) = (Vec::new(), Vec::new());
    for (n, node) in nodes.iter().enumerate() {
        if node.def.name.is_empty() {
            continue;
        }
        let Some(&first) = seen.get(node.def.name.as_str()) else {
            seen.insert(&node.def.name, n);
            continue;
        };
        let (line, _) = nodes[first]
            .def
            .source
            .line_col(nodes[first].def.name_span().start);
        let learns = |k: usize| !nodes[k].param_shapes.is_empty();
        let name = &node.def.name;
        if learns(first) || learns(n) {
            errors.push(
                node.def
                    .error(
                        node.def.name_span(),
                        format!("layer name `{name}` is used twice"),
                    )
                    .with_help(format!(
                        "the first layer with this name is at line {line}; weights are saved \
                         and loaded by layer name, so layers with learnable blobs need unique names"
                    )),
            );
        } else {
            warnings.push(
                node.def
                    .error(
                        node.def.name_span(),
                        format!("layer name `{name}` is used twice (as at line {line})"),
                    )
                    .with_help(
                        "Caffe accepts this and so does netrun, as neither layer learns anything; \
                         `netrun time` and logs will show both under the same name",
                    )
                    .as_warning(),
            );
        }
    }
    crate::error::print_warnings(&warnings);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(super::sort_diags(errors))
    }
}

/// Resolves `param { name: ... }` sharing after the shape pass has fixed
/// the learnable blobs' shapes. STRICT sharing needs equal shapes,
/// PERMISSIVE equal counts.
/// Layers not in `shaped` (their shape rule failed or was skipped) have no
/// known learnable blobs and are left out.
pub fn resolve_params(graph: &mut Graph, shaped: &[bool]) -> Vec<Diagnostic> {
    use crate::netdef::{DimCheckMode, ParamSpec};
    let mut diags = Vec::new();
    let mut owners: HashMap<String, (usize, usize)> = HashMap::new();
    for (n, &ok) in shaped.iter().enumerate() {
        if !ok {
            continue;
        }
        let node = &graph.nodes[n];
        let count = node.param_shapes.len();
        if node.def.param.len() > count {
            let shapes: Vec<String> = node
                .param_shapes
                .iter()
                .map(|s| crate::shape::fmt_shape(s))
                .collect();
            let help = match count {
                0 => format!(
                    "{} layers learn nothing here; remove the `param` blocks",
                    node.def.type_name
                ),
                _ => format!(
                    "one `param` block per learnable blob, in order: {}",
                    shapes.join(", ")
                ),
            };
            diags.push(
                node.def
                    .error(
                        node.def.field_span("param", count),
                        format!(
                            "{} has {} learnable blob{} but {} `param` blocks",
                            node.def.describe(),
                            count,
                            if count == 1 { "" } else { "s" },
                            node.def.param.len()
                        ),
                    )
                    .with_help(help),
            );
        }
        let specs: Vec<ParamSpec> = (0..count)
            .map(|i| {
                node.def
                    .param
                    .get(i)
                    .cloned()
                    .unwrap_or_else(|| node.layer.default_param_spec(i))
            })
            .collect();
        let mut param_owners = vec![ParamOwner::Own; count];
        for (i, spec) in specs.iter().enumerate() {
            let Some(name) = spec.name.as_ref().filter(|s| !s.is_empty()) else {
                continue;
            };
            match owners.get(name) {
                None => {
                    owners.insert(name.clone(), (n, i));
                }
                Some(&(on, oi)) => {
                    let owner = &graph.nodes[on];
                    let (mine, theirs) = (&node.param_shapes[i], &owner.param_shapes[oi]);
                    let ok = match spec.share_mode.unwrap_or(DimCheckMode::Strict) {
                        DimCheckMode::Strict => mine == theirs,
                        DimCheckMode::Permissive => {
                            crate::shape::count(mine) == crate::shape::count(theirs)
                        }
                    };
                    if !ok {
                        let help = match spec.share_mode {
                            Some(DimCheckMode::Permissive) => "PERMISSIVE sharing needs equal element counts".to_string(),
                            _ => "shared blobs need equal shapes (`share_mode: PERMISSIVE` needs only equal counts)".to_string(),
                        };
                        diags.push(
                            node.def
                                .error(
                                    node.def.field_span("param", i),
                                    format!(
                                        "{}: shared param `{name}` has shape {} here but {} in layer `{}`",
                                        node.def.describe(),
                                        crate::shape::fmt_shape(mine),
                                        crate::shape::fmt_shape(theirs),
                                        owner.def.name
                                    ),
                                )
                                .with_help(help),
                        );
                    }
                    param_owners[i] = ParamOwner::SharedWith {
                        node: on,
                        index: oi,
                    };
                }
            }
        }
        let node = &mut graph.nodes[n];
        node.param_specs = specs;
        node.param_owners = param_owners;
    }
    diags
}
