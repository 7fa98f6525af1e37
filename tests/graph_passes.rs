//! The graph passes of `src/graph/`, one group each: filter (+ legacy inputs),
//! splits, names, shapes, param sharing, backward analysis.
//! Only the core layer types are used (Input, Convolution, InnerProduct,
//! PReLU, Eltwise, Split).

mod common;

use common::{build, build_error};
use netrun::graph::{filter, BuildOptions, Graph, ParamOwner};
use netrun::netdef::{parse_net_str, NetState, Phase};

// ---- net text builders --------------------------------------------------

fn input(top: &str, dims: &[usize]) -> String {
    let dims: String = dims.iter().map(|d| format!(" dim: {d}")).collect();
    format!(
        "layer {{ name: \"{top}\" type: \"Input\" top: \"{top}\" input_param {{ shape {{{dims} }} }} }}\n"
    )
}

fn ip(name: &str, bottom: &str, top: &str, n: usize, extra: &str) -> String {
    format!(
        "layer {{ name: \"{name}\" type: \"InnerProduct\" bottom: \"{bottom}\" top: \"{top}\" {extra} inner_product_param {{ num_output: {n} }} }}\n"
    )
}

fn conv(name: &str, bottom: &str, top: &str, n: usize, k: usize) -> String {
    format!(
        "layer {{ name: \"{name}\" type: \"Convolution\" bottom: \"{bottom}\" top: \"{top}\" convolution_param {{ num_output: {n} kernel_size: {k} }} }}\n"
    )
}

fn prelu(name: &str, bottom: &str, top: &str, extra: &str) -> String {
    format!("layer {{ name: \"{name}\" type: \"PReLU\" bottom: \"{bottom}\" top: \"{top}\" {extra} }}\n")
}

fn eltwise(name: &str, bottoms: &[&str], top: &str) -> String {
    let b: String = bottoms
        .iter()
        .map(|b| format!("bottom: \"{b}\" "))
        .collect();
    format!("layer {{ name: \"{name}\" type: \"Eltwise\" {b}top: \"{top}\" }}\n")
}

fn graph(text: &str) -> Graph {
    build(text, Phase::Train).unwrap_or_else(|e| panic!("{text}\n{e}"))
}

fn node<'g>(g: &'g Graph, name: &str) -> &'g netrun::graph::Node {
    let i = g.node(name).unwrap_or_else(|| panic!("no layer `{name}`"));
    &g.nodes[i]
}

fn layer_names(g: &Graph) -> Vec<&str> {
    g.nodes.iter().map(|n| n.def.name.as_str()).collect()
}

fn shape_of(g: &Graph, blob: &str) -> Vec<usize> {
    let id = g
        .blobs
        .iter()
        .position(|b| b.name == blob)
        .unwrap_or_else(|| panic!("no blob `{blob}`"));
    g.blob_shape(id).to_vec()
}

// ---- filter -------------------------------------------------------------

fn kept(text: &str, state: NetState) -> Vec<String> {
    let net = parse_net_str("f.net", text).unwrap_or_else(|e| panic!("{e}"));
    filter::filter(&net, &state)
        .into_iter()
        .map(|d| d.name)
        .collect()
}

fn state(phase: Phase, level: i32, stages: &[&str]) -> NetState {
    NetState {
        phase,
        level,
        stage: stages.iter().map(|s| s.to_string()).collect(),
    }
}

const RULES: &str = r#"
layer { name: "always" type: "Input" }
layer { name: "train" type: "Input" include { phase: TRAIN } }
layer { name: "test" type: "Input" include { phase: TEST } }
layer { name: "not_test" type: "Input" exclude { phase: TEST } }
layer { name: "level2" type: "Input" include { min_level: 2 } }
layer { name: "upto1" type: "Input" include { max_level: 1 } }
layer { name: "deploy" type: "Input" include { stage: "deploy" } }
layer { name: "both_stages" type: "Input" include { stage: "a" stage: "b" } }
layer { name: "no_deploy" type: "Input" include { not_stage: "deploy" } }
layer { name: "either" type: "Input" include { phase: TEST } include { stage: "a" } }
layer { name: "excl_stage" type: "Input" exclude { stage: "a" } }
"#;

#[test]
fn filter_by_phase() {
    assert_eq!(
        kept(RULES, state(Phase::Train, 0, &[])),
        [
            "always",
            "train",
            "not_test",
            "upto1",
            "no_deploy",
            "excl_stage"
        ]
    );
    assert_eq!(
        kept(RULES, state(Phase::Test, 0, &[])),
        [
            "always",
            "test",
            "upto1",
            "no_deploy",
            "either",
            "excl_stage"
        ]
    );
}

#[test]
fn filter_by_level() {
    let k = kept(RULES, state(Phase::Train, 2, &[]));
    assert!(k.contains(&"level2".to_string()) && !k.contains(&"upto1".to_string()));
    let k = kept(RULES, state(Phase::Train, 1, &[]));
    assert!(!k.contains(&"level2".to_string()) && k.contains(&"upto1".to_string()));
}

#[test]
fn filter_by_stage_and_not_stage() {
    let k = kept(RULES, state(Phase::Train, 0, &["deploy"]));
    assert!(k.contains(&"deploy".to_string()));
    assert!(!k.contains(&"no_deploy".to_string()));
    // All stages of one rule must be present.
    assert!(!kept(RULES, state(Phase::Train, 0, &["a"])).contains(&"both_stages".to_string()));
    let k = kept(RULES, state(Phase::Train, 0, &["a", "b"]));
    assert!(k.contains(&"both_stages".to_string()));
    // Any one include rule suffices; an exclude rule that is met drops the layer.
    assert!(k.contains(&"either".to_string()));
    assert!(!k.contains(&"excl_stage".to_string()));
}

#[test]
fn the_net_files_own_state_stages_apply() {
    let text = format!(
        "state {{ stage: \"deploy\" }}\n{}{}",
        input("data", &[1, 4]),
        "layer { name: \"d\" type: \"InnerProduct\" bottom: \"data\" top: \"d\" include { stage: \"deploy\" } inner_product_param { num_output: 2 } }\n"
    );
    let g = graph(&text);
    assert_eq!(layer_names(&g), ["data", "d"]);
}

#[test]
fn the_net_files_own_state_level_applies_unless_overridden() {
    let text = "state { level: 2 }\n".to_string()
        + &input("data", &[1, 4])
        + "layer { name: \"d\" type: \"InnerProduct\" bottom: \"data\" top: \"d\" include { min_level: 2 } inner_product_param { num_output: 2 } }\n";
    assert_eq!(layer_names(&graph(&text)), ["data", "d"]);
    let net = parse_net_str("l.net", &text).unwrap();
    let mut opts = BuildOptions::for_phase(Phase::Train);
    opts.state.level = 1;
    assert_eq!(Graph::build(&net, &opts).unwrap().nodes.len(), 1);
}

#[test]
fn both_include_and_exclude_is_an_error() {
    let e = build_error(
        "layer { name: \"x\" type: \"Input\" top: \"x\"\n  include { phase: TRAIN }\n  exclude { phase: TEST } }",
    );
    assert!(
        e.contains("layer `x` (Input) has both `include` and `exclude` rules"),
        "{e}"
    );
    assert!(e.contains("test.net:3:3"), "{e}");
}

#[test]
fn a_missing_bottom_in_a_filtered_net_names_the_phase() {
    let text = format!(
        "{}{}",
        "layer { name: \"d\" type: \"Input\" top: \"data\" include { phase: TEST } input_param { shape { dim: 1 dim: 2 } } }\n",
        ip("fc", "data", "fc", 2, "")
    );
    let e = build_error(&text);
    assert!(
        e.contains("bottom `data` is not produced by any earlier layer in phase TRAIN"),
        "{e}"
    );
}

// ---- legacy inputs ------------------------------------------------------

#[test]
fn legacy_input_and_input_dim_become_an_input_layer() {
    let text = format!(
        "input: \"data\"\ninput_dim: 2 input_dim: 3 input_dim: 8 input_dim: 6\n{}",
        conv("c", "data", "c", 4, 3)
    );
    let g = graph(&text);
    assert_eq!(layer_names(&g), ["input", "c"]);
    assert_eq!(node(&g, "input").def.type_name, "Input");
    assert_eq!(shape_of(&g, "data"), [2, 3, 8, 6]);
    assert_eq!(shape_of(&g, "c"), [2, 4, 6, 4]);
}

#[test]
fn legacy_inputs_with_input_shape_blocks() {
    let text =
        "input: \"a\" input_shape { dim: 1 dim: 5 }\ninput: \"b\" input_shape { dim: 1 dim: 5 }\n"
            .to_string()
            + &eltwise("sum", &["a", "b"], "s");
    let g = graph(&text);
    assert_eq!(node(&g, "input").def.top, ["a", "b"]);
    assert_eq!(shape_of(&g, "s"), [1, 5]);
}

#[test]
fn legacy_input_dim_count_must_be_four_per_input() {
    let e = build_error("input: \"data\"\ninput_dim: 1 input_dim: 3 input_dim: 8\n");
    assert!(
        e.contains("net input `data` needs 4 `input_dim` values (N, C, H, W), found 3"),
        "{e}"
    );
    assert!(e.contains("test.net:2:38"), "{e}");
}

// ---- splits -------------------------------------------------------------

#[test]
fn fan_out_inserts_a_split_named_like_caffe() {
    let text = input("data", &[2, 8])
        + &ip("a", "data", "a", 3, "")
        + &ip("b", "data", "b", 3, "")
        + &eltwise("sum", &["a", "b"], "out");
    let g = graph(&text);
    assert_eq!(
        layer_names(&g),
        ["data", "data_data_0_split", "a", "b", "sum"]
    );
    let split = node(&g, "data_data_0_split");
    assert_eq!(split.def.type_name, "Split");
    assert_eq!(split.def.bottom, ["data"]);
    assert_eq!(
        split.def.top,
        ["data_data_0_split_0", "data_data_0_split_1"]
    );
    assert_eq!(node(&g, "a").def.bottom, ["data_data_0_split_0"]);
    assert_eq!(node(&g, "b").def.bottom, ["data_data_0_split_1"]);
    assert_eq!(shape_of(&g, "data_data_0_split_1"), [2, 8]);
}

#[test]
fn one_consumer_needs_no_split() {
    let g = graph(&(input("data", &[2, 8]) + &ip("a", "data", "a", 3, "")));
    assert_eq!(layer_names(&g), ["data", "a"]);
}

#[test]
fn the_split_index_is_the_producers_top_index() {
    let text = "layer { name: \"in\" type: \"Input\" top: \"x\" top: \"y\" input_param { shape { dim: 1 dim: 4 } } }\n".to_string()
        + &ip("a", "y", "a", 4, "")
        + &eltwise("sum", &["y", "a"], "s");
    let g = graph(&text);
    assert_eq!(layer_names(&g), ["in", "y_in_1_split", "a", "sum"]);
    assert_eq!(node(&g, "sum").def.bottom, ["y_in_1_split_1", "a"]);
}

#[test]
fn an_in_place_producer_names_the_split() {
    let text = input("data", &[1, 2, 4, 4])
        + &conv("conv1", "data", "conv1", 2, 1)
        + &prelu("relu1", "conv1", "conv1", "")
        + &conv("p", "conv1", "p", 2, 1)
        + &eltwise("sum", &["conv1", "p"], "s");
    let g = graph(&text);
    assert_eq!(
        layer_names(&g),
        ["data", "conv1", "relu1", "conv1_relu1_0_split", "p", "sum"]
    );
    // relu1 itself still works in place on conv1.
    let r = node(&g, "relu1");
    assert_eq!(r.bottoms, r.tops);
    assert_eq!(node(&g, "p").def.bottom, ["conv1_relu1_0_split_0"]);
    assert_eq!(node(&g, "sum").def.bottom, ["conv1_relu1_0_split_1", "p"]);
}

#[test]
fn a_loss_weighted_top_that_is_also_consumed_keeps_its_weight_on_split_output_0() {
    let text = input("data", &[2, 8])
        + &ip("fc", "data", "fc", 3, "loss_weight: 0.5")
        + &ip("next", "fc", "next", 2, "");
    let g = graph(&text);
    assert_eq!(layer_names(&g), ["data", "fc", "fc_fc_0_split", "next"]);
    let split = node(&g, "fc_fc_0_split");
    // Output 0 carries the loss; consumers start at output 1, as in Caffe.
    assert_eq!(split.def.top, ["fc_fc_0_split_0", "fc_fc_0_split_1"]);
    assert_eq!(split.loss_weights, [0.5, 0.0]);
    assert_eq!(node(&g, "fc").loss_weights, [0.0]);
    assert_eq!(node(&g, "next").def.bottom, ["fc_fc_0_split_1"]);
    // The loss output is a net output; nothing reads it.
    let out = g
        .blobs
        .iter()
        .position(|b| b.name == "fc_fc_0_split_0")
        .unwrap();
    assert!(g.outputs.contains(&out));
}

#[test]
fn a_loss_weighted_top_with_no_consumer_needs_no_split() {
    let text = input("data", &[2, 8]) + &ip("fc", "data", "fc", 3, "loss_weight: 1");
    let g = graph(&text);
    assert_eq!(layer_names(&g), ["data", "fc"]);
    assert_eq!(node(&g, "fc").loss_weights, [1.0]);
}

// ---- names --------------------------------------------------------------

#[test]
fn in_place_layers_share_the_blob() {
    let text = input("data", &[1, 3, 4, 4]) + &prelu("r", "data", "data", "");
    let g = graph(&text);
    let r = node(&g, "r");
    assert_eq!(r.bottoms, r.tops);
    assert_eq!(g.blobs.len(), 1);
    // The last writer's result is the net output.
    assert_eq!(g.outputs, [r.tops[0]]);
}

#[test]
fn a_dangling_bottom_suggests_a_known_blob() {
    let text = input("data", &[1, 8]) + &ip("fc", "dta", "fc", 2, "");
    let e = build_error(&text);
    assert!(
        e.contains("layer `fc` (InnerProduct): bottom `dta` is not produced by any earlier layer"),
        "{e}"
    );
    assert!(e.contains("test.net:2:"), "{e}");
    assert!(e.contains("did you mean `data`?"), "{e}");
    // No phase note when the net has no include/exclude rules.
    assert!(!e.contains("in phase"), "{e}");
}

#[test]
fn a_bottom_produced_later_says_so() {
    let text = input("data", &[1, 8]) + &ip("b", "a", "b", 2, "") + &ip("a", "data", "a", 2, "");
    let e = build_error(&text);
    assert!(
        e.contains("bottom `a` is not produced by any earlier layer"),
        "{e}"
    );
    assert!(
        e.contains("`a` is produced later, by layer `a`; layers run in file order"),
        "{e}"
    );
}

#[test]
fn a_duplicate_top_names_the_first_producer() {
    let text = input("data", &[1, 8]) + &ip("a", "data", "x", 2, "") + &ip("b", "data", "x", 2, "");
    let e = build_error(&text);
    assert!(
        e.contains("layer `b` (InnerProduct): top `x` is already produced by layer `a`"),
        "{e}"
    );
    assert!(e.contains("test.net:3:"), "{e}");
    assert!(e.contains("give this top a new name"), "{e}");
}

#[test]
fn an_in_place_top_at_the_wrong_index_is_explained() {
    let text = input("a", &[1, 4])
        + &input("b", &[1, 4])
        + "layer { name: \"e\" type: \"Eltwise\" bottom: \"a\" bottom: \"b\" top: \"b\" }\n";
    let e = build_error(&text);
    assert!(
        e.contains("top `b` is already produced by layer `b`"),
        "{e}"
    );
    assert!(
        e.contains("an in-place top must be at the same index as its bottom (bottom 1, top 0)"),
        "{e}"
    );
}

#[test]
fn duplicate_names_of_layers_that_learn_nothing_are_accepted_as_caffe_does() {
    // BVLC's mnist_autoencoder names two loss layers `loss`.
    let text = input("data", &[2, 8])
        + &ip("fc", "data", "y", 8, "")
        + "layer { name: \"act\" type: \"Sigmoid\" bottom: \"y\" top: \"a\" }\n"
        + "layer { name: \"act\" type: \"TanH\" bottom: \"y\" top: \"b\" }\n";
    let graph = graph(&text);
    let acts: Vec<_> = graph.nodes.iter().filter(|n| n.def.name == "act").collect();
    assert_eq!(acts.len(), 2);
    assert_ne!(acts[0].def.type_name, acts[1].def.type_name);
}

#[test]
fn duplicate_layer_names_point_at_the_first() {
    let text =
        input("data", &[1, 8]) + &ip("fc", "data", "a", 2, "") + &ip("fc", "data", "b", 2, "");
    let e = build_error(&text);
    assert!(e.contains("layer name `fc` is used twice"), "{e}");
    assert!(e.contains("test.net:3:15"), "{e}");
    assert!(
        e.contains("the first layer with this name is at line 2"),
        "{e}"
    );
}

#[test]
fn name_errors_are_reported_together_in_file_order() {
    let text =
        input("data", &[1, 8]) + &ip("a", "nope", "a", 2, "") + &ip("b", "zilch", "b", 2, "");
    let e = build_error(&text);
    let first = e.find("bottom `nope`").expect(&e);
    let second = e.find("bottom `zilch`").expect(&e);
    assert!(first < second, "{e}");
    assert!(e.ends_with("2 errors found"), "{e}");
}

// ---- shapes -------------------------------------------------------------

#[test]
fn shapes_flow_through_the_graph() {
    let text =
        input("data", &[2, 3, 10, 9]) + &conv("c", "data", "c", 5, 3) + &ip("fc", "c", "fc", 7, "");
    let g = graph(&text);
    assert_eq!(shape_of(&g, "c"), [2, 5, 8, 7]);
    assert_eq!(shape_of(&g, "fc"), [2, 7]);
}

#[test]
fn independent_shape_errors_are_reported_together() {
    let text = input("data", &[1, 3, 4, 4])
        + &conv("left", "data", "l", 2, 5)
        + &conv("right", "data", "r", 2, 7)
        + &conv("after", "l", "a", 2, 1);
    let e = build_error(&text);
    assert!(
        e.contains("layer `left` (Convolution) (bottom `data`): kernel 5x5"),
        "{e}"
    );
    assert!(
        e.contains("layer `right` (Convolution) (bottom `data`): kernel 7x7"),
        "{e}"
    );
    // The layer after the failed one is skipped, not reported.
    assert!(!e.contains("`after`"), "{e}");
    assert!(e.ends_with("2 errors found"), "{e}");
}

#[test]
fn eltwise_shape_mismatch_names_bottoms_and_shapes() {
    let text = input("a", &[1, 4]) + &input("b", &[1, 5]) + &eltwise("sum", &["a", "b"], "s");
    let e = build_error(&text);
    assert!(
        e.contains(
            "layer `sum` (Eltwise): bottom 1 (`b`) has shape 1x5 but bottom 0 (`a`) has shape 1x4"
        ),
        "{e}"
    );
}

// ---- param sharing ------------------------------------------------------

#[test]
fn shared_params_are_stored_once() {
    let shared = "param { name: \"w\" } param { name: \"b\" }";
    let text = input("x", &[2, 6])
        + &input("y", &[2, 6])
        + &ip("f1", "x", "f1", 4, shared)
        + &ip("f2", "y", "f2", 4, shared);
    let g = graph(&text);
    // One 4x6 weight and one bias of 4, counted once.
    assert_eq!(g.param_count(), 4 * 6 + 4);
    assert_eq!(
        node(&g, "f1").param_owners,
        [ParamOwner::Own, ParamOwner::Own]
    );
    let owner = g.node("f1").unwrap();
    assert_eq!(
        node(&g, "f2").param_owners,
        [
            ParamOwner::SharedWith {
                node: owner,
                index: 0
            },
            ParamOwner::SharedWith {
                node: owner,
                index: 1
            }
        ]
    );
    // Unshared: counted twice.
    let text = input("x", &[2, 6])
        + &input("y", &[2, 6])
        + &ip("f1", "x", "f1", 4, "")
        + &ip("f2", "y", "f2", 4, "");
    assert_eq!(graph(&text).param_count(), 2 * (4 * 6 + 4));
}

#[test]
fn shared_param_shapes_must_match() {
    let text = input("x", &[2, 6])
        + &input("y", &[2, 5])
        + &ip("f1", "x", "f1", 4, "param { name: \"w\" }")
        + &ip("f2", "y", "f2", 4, "param { name: \"w\" }");
    let e = build_error(&text);
    assert!(
        e.contains(
            "layer `f2` (InnerProduct): shared param `w` has shape 4x5 here but 4x6 in layer `f1`"
        ),
        "{e}"
    );
}

#[test]
fn permissive_sharing_needs_equal_counts_only() {
    let text = input("x", &[2, 6])
        + &input("y", &[2, 6])
        + &ip("f1", "x", "f1", 4, "param { name: \"w\" }")
        + "layer { name: \"f2\" type: \"InnerProduct\" bottom: \"y\" top: \"f2\" param { name: \"w\" share_mode: PERMISSIVE } inner_product_param { num_output: 4 transpose: true } }\n";
    let g = graph(&text);
    assert_eq!(g.param_count(), 24 + 4 + 4);
}

#[test]
fn more_param_blocks_than_learnable_blobs() {
    let text = input("x", &[2, 6]) + &ip("f", "x", "f", 4, "param {} param {} param {}");
    let e = build_error(&text);
    assert!(
        e.contains("layer `f` (InnerProduct) has 2 learnable blobs but 3 `param` blocks"),
        "{e}"
    );
}

// ---- backward -----------------------------------------------------------

/// data → fc1 → fc2 (loss) plus a side branch fc_side that reaches no loss.
fn backward_net(fc1_extra: &str, fc2_extra: &str, net_extra: &str) -> Graph {
    let text = net_extra.to_string()
        + &input("data", &[2, 6])
        + &ip("fc1", "data", "fc1", 4, fc1_extra)
        + &ip(
            "fc2",
            "fc1",
            "fc2",
            3,
            &format!("loss_weight: 1 {fc2_extra}"),
        )
        + &ip("side", "data", "side", 3, "");
    graph(&text)
}

#[test]
fn data_layers_need_no_backward() {
    let g = backward_net("", "", "");
    assert!(!node(&g, "data").need_backward);
    // fc1 reads data, which needs no gradient.
    assert!(node(&g, "fc1").need_backward);
    assert_eq!(node(&g, "fc1").bottom_need_backward, [false]);
    assert!(node(&g, "fc2").need_backward);
    assert_eq!(node(&g, "fc2").bottom_need_backward, [true]);
}

#[test]
fn frozen_params_and_no_backward_bottoms_need_none() {
    let g = backward_net("param { lr_mult: 0 } param { lr_mult: 0 }", "", "");
    assert!(!node(&g, "fc1").need_backward);
    assert_eq!(node(&g, "fc2").bottom_need_backward, [false]);
    assert!(
        node(&g, "fc2").need_backward,
        "fc2's own weights still learn"
    );
}

#[test]
fn layers_not_reaching_a_loss_need_none() {
    let g = backward_net("", "", "");
    assert!(!node(&g, "side").need_backward);
    // The split feeding `side` and `fc1` still needs none: data needs no gradient.
    let split = node(&g, "data_data_0_split");
    assert!(!split.need_backward);
}

#[test]
fn propagate_down_false_stops_the_gradient() {
    let g = backward_net("", "propagate_down: false", "");
    assert_eq!(node(&g, "fc2").bottom_need_backward, [false]);
    // fc1's output no longer gets a gradient, so fc1 does no backward.
    assert!(!node(&g, "fc1").need_backward);
    assert!(node(&g, "fc2").need_backward);
}

#[test]
fn force_backward_turns_it_on_everywhere() {
    let g = backward_net("", "", "force_backward: true\n");
    for n in &g.nodes {
        assert!(n.need_backward, "{}", n.def.name);
    }
    assert_eq!(node(&g, "fc1").bottom_need_backward, [true]);
    assert_eq!(node(&g, "side").bottom_need_backward, [true]);
}

#[test]
fn without_a_loss_nothing_needs_backward() {
    let text = input("data", &[2, 6]) + &ip("fc", "data", "fc", 4, "");
    let g = graph(&text);
    assert!(g.nodes.iter().all(|n| !n.need_backward));
}

#[test]
fn build_options_level_selects_layers() {
    let text = input("data", &[1, 4])
        + "layer { name: \"deep\" type: \"InnerProduct\" bottom: \"data\" top: \"d\" include { min_level: 1 } inner_product_param { num_output: 2 } }\n";
    let mut opts = BuildOptions::for_phase(Phase::Train);
    let net = parse_net_str("l.net", &text).unwrap();
    assert_eq!(Graph::build(&net, &opts).unwrap().nodes.len(), 1);
    opts.state.level = 1;
    assert_eq!(Graph::build(&net, &opts).unwrap().nodes.len(), 2);
}

// ---- follow-on errors and messages added with the corpus ----------------

#[test]
fn a_failed_shape_rule_does_not_also_report_its_param_blocks() {
    let text = input("data", &[1, 3, 4, 4])
        + "layer { name: \"c\" type: \"Convolution\" bottom: \"data\" top: \"c\" param { lr_mult: 1 } param { lr_mult: 2 } convolution_param { num_output: 2 kernel_size: 5 } }\n";
    let e = build_error(&text);
    assert!(e.contains("does not fit the 4x4 input"), "{e}");
    assert!(e.ends_with("1 error found"), "{e}");
}

#[test]
fn an_in_place_top_whose_bottom_others_read_names_the_readers() {
    let text = input("data", &[1, 4])
        + &ip("a", "data", "a", 4, "")
        + &eltwise("sum", &["a", "data"], "s")
        + &prelu("r", "a", "a", "");
    let e = build_error(&text);
    assert!(
        e.contains("layer `r` (PReLU): cannot compute `a` in place: layer `sum` also reads it"),
        "{e}"
    );
    assert!(e.contains("test.net:4:"), "{e}");
}

#[test]
fn a_bottom_from_a_layer_left_out_by_its_rules_says_so() {
    let text = input("data", &[1, 4])
        + "layer { name: \"aux\" type: \"Input\" top: \"aux\" include { stage: \"debug\" } input_param { shape { dim: 1 dim: 4 } } }\n"
        + &eltwise("sum", &["data", "aux"], "s");
    let e = build_error(&text);
    assert!(
        e.contains("bottom `aux` is not produced by any earlier layer in phase TRAIN"),
        "{e}"
    );
    assert!(e.contains("layer `aux` produces `aux`, but its include/exclude rules leave it out of the TRAIN net"), "{e}");
}

#[test]
fn per_top_list_counts_point_at_the_first_extra_value() {
    let text = input("data", &[1, 4]) + &ip("f", "data", "f", 2, "loss_weight: 1 loss_weight: 2");
    let e = build_error(&text);
    assert!(e.contains("has 2 `loss_weight` values for 1 top"), "{e}");
    assert!(e.contains("test.net:2:92"), "{e}");
    let text = input("a", &[1, 4]) + &input("b", &[1, 4])
        + "layer { name: \"e\" type: \"Eltwise\" bottom: \"a\" bottom: \"b\" top: \"e\" propagate_down: true }\n";
    let e = build_error(&text);
    assert!(
        e.contains("has 1 `propagate_down` value for 2 bottoms"),
        "{e}"
    );
}

#[test]
fn a_negative_legacy_input_dim_is_located() {
    let e = build_error("input: \"data\"\ninput_dim: 1 input_dim: -3 input_dim: 8 input_dim: 8\n");
    assert!(
        e.contains("net input `data`: dimension -3 is negative"),
        "{e}"
    );
    assert!(e.contains("test.net:2:25"), "{e}");
}

#[test]
fn legacy_input_forms_are_exclusive() {
    let e = build_error("input: \"data\"\ninput_dim: 1 input_dim: 3 input_dim: 8 input_dim: 8\ninput_shape { dim: 1 }\n");
    assert!(
        e.contains("net inputs take either `input_dim` or `input_shape`, not both"),
        "{e}"
    );
    assert!(e.contains("test.net:3:1"), "{e}");
}

#[test]
fn an_unknown_net_field_does_not_also_report_the_legacy_inputs() {
    let e = build_error("input: \"data\"\ninput_dims: 1\ninput_dim: 3\n");
    assert!(e.contains("unknown net field `input_dims`"), "{e}");
    assert!(e.ends_with("1 error found"), "{e}");
}
