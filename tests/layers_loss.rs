//! Loss and face-recognition layers: parameter parsing, shape rules, loss weights,
//! label gradients, the reference-case nets and the SphereFace-20 train net.

mod common;

use common::{build, build_error, shared};
use netrun::graph::Graph;
use netrun::layers::accuracy::AccuracyParams;
use netrun::layers::center_loss::CenterLossParams;
use netrun::layers::combined_margin_inner_product::CombinedMarginParams;
use netrun::layers::contrastive_loss::ContrastiveLossParams;
use netrun::layers::convolution::Engine;
use netrun::layers::loss::{LossParams, NormalizationMode};
use netrun::layers::margin_inner_product::{MarginInnerProductParams, MarginType};
use netrun::layers::normalize::NormalizeParams;
use netrun::layers::softmax::SoftmaxParams;
use netrun::layers::triplet_loss::{TripletLossParams, TripletMining};
use netrun::netdef::{parse_net_str, Phase};
use serde::Deserialize;

/// An Input layer with one top per `(name, shape)`.
fn inputs(tops: &[(&str, &[usize])]) -> String {
    let mut s = String::from("layer { name: \"input\" type: \"Input\"\n");
    for (name, _) in tops {
        s += &format!("  top: \"{name}\"\n");
    }
    s += "  input_param {\n";
    for (_, shape) in tops {
        let dims: Vec<String> = shape.iter().map(|d| format!("dim: {d}")).collect();
        s += &format!("    shape {{ {} }}\n", dims.join(" "));
    }
    s + "  }\n}\n"
}

/// Builds `inputs` followed by `layers` in TRAIN.
fn net(tops: &[(&str, &[usize])], layers: &str) -> Graph {
    let text = inputs(tops) + layers;
    build(&text, Phase::Train).unwrap_or_else(|e| panic!("{e}\nfor:\n{text}"))
}

fn net_error(tops: &[(&str, &[usize])], layers: &str) -> String {
    build_error(&(inputs(tops) + layers))
}

fn shape_of(g: &Graph, blob: &str) -> Vec<usize> {
    let id = g
        .blobs
        .iter()
        .rposition(|b| b.name == blob)
        .unwrap_or_else(|| panic!("no blob `{blob}`"));
    g.blob_shape(id).to_vec()
}

fn node<'a>(g: &'a Graph, name: &str) -> &'a netrun::graph::Node {
    &g.nodes[g.node(name).unwrap_or_else(|| panic!("no layer `{name}`"))]
}

/// Reads `<block> { ... }` of the first layer of `text`.
fn params<T: for<'de> Deserialize<'de> + Default>(text: &str, block: &str) -> T {
    let net = parse_net_str("test.net", text).unwrap();
    net.layers[0].params(block).unwrap()
}

fn params_error<T: for<'de> Deserialize<'de> + Default + std::fmt::Debug>(
    text: &str,
    block: &str,
) -> String {
    let net = parse_net_str("test.net", text).unwrap();
    net.layers[0].params::<T>(block).unwrap_err().to_string()
}

fn assert_contains(haystack: &str, needles: &[&str]) {
    for n in needles {
        assert!(haystack.contains(n), "missing `{n}` in:\n{haystack}");
    }
}

// ---------------------------------------------------------------- parsing

#[test]
fn loss_param_reads_values_and_numeric_modes() {
    let p: LossParams = params(
        "layer { name: \"l\" type: \"SoftmaxWithLoss\" loss_param { ignore_label: -1 normalization: 2 } }",
        "loss_param",
    );
    assert_eq!(p.ignore_label, Some(-1));
    assert_eq!(p.mode(), NormalizationMode::BatchSize);
    for (text, mode) in [
        ("normalization: 0", NormalizationMode::Full),
        ("normalization: FULL", NormalizationMode::Full),
        ("normalization: 3", NormalizationMode::None),
        ("normalization: NONE", NormalizationMode::None),
        ("normalization: VALID", NormalizationMode::Valid),
        ("", NormalizationMode::Valid),
        ("normalize: false", NormalizationMode::BatchSize),
        ("normalize: true", NormalizationMode::Valid),
        // An explicit mode wins over the deprecated flag.
        (
            "normalize: false normalization: FULL",
            NormalizationMode::Full,
        ),
    ] {
        let p: LossParams = params(
            &format!("layer {{ name: \"l\" type: \"SoftmaxWithLoss\" loss_param {{ {text} }} }}"),
            "loss_param",
        );
        assert_eq!(p.mode(), mode, "for `{text}`");
        assert_eq!(p.ignore_label, None);
    }
}

#[test]
fn unknown_fields_are_rejected_with_suggestions() {
    let cases: Vec<(&str, &str, &str, String)> = vec![
        (
            "SoftmaxWithLoss",
            "loss_param",
            "normalisation: FULL",
            "normalization".into(),
        ),
        ("Softmax", "softmax_param", "axes: 1", "axis".into()),
        ("Accuracy", "accuracy_param", "topk: 2", "top_k".into()),
        (
            "ContrastiveLoss",
            "contrastive_loss_param",
            "margn: 2",
            "margin".into(),
        ),
        (
            "TripletLoss",
            "triplet_loss_param",
            "minning: BATCH_ALL",
            "mining".into(),
        ),
        (
            "CenterLoss",
            "center_loss_param",
            "num_outputs: 3",
            "num_output".into(),
        ),
        (
            "MarginInnerProduct",
            "margin_inner_product_param",
            "lamda_min: 5",
            "lambda_min".into(),
        ),
        (
            "CombinedMarginInnerProduct",
            "combined_margin_inner_product_param",
            "m22: 0.5",
            "m2".into(),
        ),
        (
            "Normalize",
            "normalize_param",
            "epsilon: 1e-6",
            "eps".into(),
        ),
    ];
    for (ty, block, body, want) in cases {
        let text = format!("layer {{ name: \"l\" type: \"{ty}\" {block} {{ {body} }} }}");
        let net = parse_net_str("test.net", &text).unwrap();
        let def = &net.layers[0];
        let err = match block {
            "loss_param" => def.params::<LossParams>(block).err(),
            "softmax_param" => def.params::<SoftmaxParams>(block).err(),
            "accuracy_param" => def.params::<AccuracyParams>(block).err(),
            "contrastive_loss_param" => def.params::<ContrastiveLossParams>(block).err(),
            "triplet_loss_param" => def.params::<TripletLossParams>(block).err(),
            "center_loss_param" => def.params::<CenterLossParams>(block).err(),
            "margin_inner_product_param" => def.params::<MarginInnerProductParams>(block).err(),
            "normalize_param" => def.params::<NormalizeParams>(block).err(),
            _ => def.params::<CombinedMarginParams>(block).err(),
        };
        let err = err
            .unwrap_or_else(|| panic!("{ty}: `{body}` accepted"))
            .to_string();
        let field = body.split(':').next().unwrap();
        assert_contains(
            &err,
            &[
                &format!("unknown field `{field}`"),
                &format!("did you mean `{want}`"),
            ],
        );
    }
}

#[test]
fn unknown_enum_value_is_rejected() {
    let err = params_error::<LossParams>(
        "layer { name: \"l\" type: \"SoftmaxWithLoss\" loss_param { normalization: VALD } }",
        "loss_param",
    );
    assert_contains(&err, &["unknown value `VALD`", "did you mean `VALID`"]);
}

#[test]
fn softmax_and_accuracy_params() {
    let p: SoftmaxParams = params(
        "layer { name: \"s\" type: \"Softmax\" softmax_param { axis: -1 engine: 2 } }",
        "softmax_param",
    );
    assert_eq!((p.axis, p.engine), (-1, Engine::Cudnn));
    let p: SoftmaxParams = params("layer { name: \"s\" type: \"Softmax\" }", "softmax_param");
    assert_eq!((p.axis, p.engine), (1, Engine::Default));

    let p: AccuracyParams = params(
        "layer { name: \"a\" type: \"Accuracy\" accuracy_param { top_k: 5 axis: 2 ignore_label: 0 } }",
        "accuracy_param",
    );
    assert_eq!((p.top_k, p.axis, p.ignore_label), (5, 2, Some(0)));
    let p: AccuracyParams = params("layer { name: \"a\" type: \"Accuracy\" }", "accuracy_param");
    assert_eq!((p.top_k, p.axis, p.ignore_label), (1, 1, None));
}

#[test]
fn contrastive_triplet_center_normalize_params() {
    let p: ContrastiveLossParams = params(
        "layer { name: \"c\" type: \"ContrastiveLoss\" contrastive_loss_param { margin: 2.5 legacy_version: true } }",
        "contrastive_loss_param",
    );
    assert_eq!((p.margin, p.legacy_version), (2.5, true));
    let p: ContrastiveLossParams = params(
        "layer { name: \"c\" type: \"ContrastiveLoss\" }",
        "contrastive_loss_param",
    );
    assert_eq!((p.margin, p.legacy_version), (1.0, false));

    let p: TripletLossParams = params(
        "layer { name: \"t\" type: \"TripletLoss\" triplet_loss_param { margin: 0.2 mining: BATCH_HARD } }",
        "triplet_loss_param",
    );
    assert_eq!((p.margin, p.mining), (0.2, Some(TripletMining::BatchHard)));
    for (text, mode) in [
        ("0", TripletMining::SemiHard),
        ("1", TripletMining::SemiHardAndHard),
        ("SEMI_HARD_AND_HARD", TripletMining::SemiHardAndHard),
        ("3", TripletMining::BatchAll),
    ] {
        let p: TripletLossParams = params(
            &format!("layer {{ name: \"t\" type: \"TripletLoss\" triplet_loss_param {{ mining: {text} }} }}"),
            "triplet_loss_param",
        );
        assert_eq!(p.mining, Some(mode));
        assert_eq!(p.margin, 1.0);
    }

    let p: CenterLossParams = params(
        "layer { name: \"c\" type: \"CenterLoss\" center_loss_param { num_output: 10572 center_filler { type: \"xavier\" } axis: 2 } }",
        "center_loss_param",
    );
    assert_eq!((p.num_output, p.axis), (Some(10572), 2));
    assert_eq!(p.center_filler.type_name, "xavier");
    let p: CenterLossParams = params(
        "layer { name: \"c\" type: \"CenterLoss\" }",
        "center_loss_param",
    );
    assert_eq!((p.num_output, p.axis), (None, 1));
    assert_eq!(p.center_filler.type_name, "constant");

    let p: NormalizeParams = params(
        "layer { name: \"n\" type: \"Normalize\" normalize_param { eps: 1e-10 } }",
        "normalize_param",
    );
    assert_eq!(p.eps, 1e-10);
    let p: NormalizeParams = params(
        "layer { name: \"n\" type: \"Normalize\" }",
        "normalize_param",
    );
    assert_eq!(p.eps, 0.0);
}

#[test]
fn margin_inner_product_params() {
    let p: MarginInnerProductParams = params(
        r#"layer { name: "fc6" type: "MarginInnerProduct"
             margin_inner_product_param { num_output: 7 type: 3 weight_filler { type: "gaussian" std: 0.5 }
               axis: 2 base: 1000 gamma: 0.12 power: 2 iteration: 42 lambda_min: 5 exact_gradient: true } }"#,
        "margin_inner_product_param",
    );
    assert_eq!(p.num_output, Some(7));
    assert_eq!(p.margin_type, MarginType::Quadruple);
    assert_eq!(p.margin_type.m(), 4);
    assert_eq!(
        (p.weight_filler.type_name.as_str(), p.weight_filler.std),
        ("gaussian", 0.5)
    );
    assert_eq!((p.axis, p.base, p.gamma, p.power), (2, 1000.0, 0.12, 2.0));
    assert_eq!(
        (p.iteration, p.lambda_min, p.exact_gradient),
        (42, 5.0, true)
    );

    let p: MarginInnerProductParams = params(
        "layer { name: \"fc6\" type: \"MarginInnerProduct\" }",
        "margin_inner_product_param",
    );
    assert_eq!(p.margin_type, MarginType::Single);
    assert_eq!((p.axis, p.base, p.gamma, p.power), (1, 1.0, 0.0, 1.0));
    assert_eq!(
        (p.iteration, p.lambda_min, p.exact_gradient),
        (0, 0.0, false)
    );
    for (text, m) in [
        ("SINGLE", 1),
        ("1", 2),
        ("DOUBLE", 2),
        ("TRIPLE", 3),
        ("2", 3),
    ] {
        let p: MarginInnerProductParams = params(
            &format!("layer {{ name: \"f\" type: \"MarginInnerProduct\" margin_inner_product_param {{ type: {text} }} }}"),
            "margin_inner_product_param",
        );
        assert_eq!(p.margin_type.m(), m, "type: {text}");
    }
}

#[test]
fn combined_margin_params() {
    let p: CombinedMarginParams = params(
        r#"layer { name: "fc6" type: "CombinedMarginInnerProduct"
             combined_margin_inner_product_param { num_output: 9 m1: 2 m2: 0.3 m3: 0.2 s: 30 axis: 1 } }"#,
        "combined_margin_inner_product_param",
    );
    assert_eq!(p.num_output, Some(9));
    assert_eq!((p.m1, p.m2, p.m3, p.s), (2.0, 0.3, 0.2, 30.0));
    let p: CombinedMarginParams = params(
        "layer { name: \"fc6\" type: \"CombinedMarginInnerProduct\" }",
        "combined_margin_inner_product_param",
    );
    assert_eq!((p.m1, p.m2, p.m3, p.s, p.axis), (1.0, 0.0, 0.0, 64.0, 1));
}

// ---------------------------------------------------------------- shape rules

#[test]
fn softmax_keeps_the_shape_and_checks_the_axis() {
    for axis in ["1", "2", "-1", "0"] {
        let g = net(
            &[("x", &[2, 3, 6])],
            &format!("layer {{ name: \"s\" type: \"Softmax\" bottom: \"x\" top: \"y\" softmax_param {{ axis: {axis} }} }}"),
        );
        assert_eq!(shape_of(&g, "y"), vec![2, 3, 6]);
    }
    let err = net_error(
        &[("x", &[2, 3, 6])],
        "layer { name: \"s\" type: \"Softmax\" bottom: \"x\" top: \"y\" softmax_param { axis: 3 } }",
    );
    assert_contains(
        &err,
        &[
            "layer `s` (Softmax)",
            "axis 3 is out of range for shape 2x3x6",
        ],
    );
}

#[test]
fn softmax_with_loss_spatial_labels_and_prob_top() {
    let g = net(
        &[("x", &[2, 5, 3, 4]), ("label", &[2, 3, 4])],
        r#"layer { name: "loss" type: "SoftmaxWithLoss" bottom: "x" bottom: "label" top: "loss" top: "prob" }"#,
    );
    assert_eq!(shape_of(&g, "loss"), Vec::<usize>::new());
    assert_eq!(shape_of(&g, "prob"), vec![2, 5, 3, 4]);
    // Softmax over axis 2 of 2x3x7: one label per (outer 2·3, inner 1) position.
    let g = net(
        &[("x", &[2, 3, 7]), ("label", &[2, 3])],
        r#"layer { name: "loss" type: "SoftmaxWithLoss" bottom: "x" bottom: "label" top: "loss"
             softmax_param { axis: 2 } }"#,
    );
    assert_eq!(shape_of(&g, "loss"), Vec::<usize>::new());
}

#[test]
fn softmax_with_loss_label_count_mismatch_names_both_shapes() {
    let err = net_error(
        &[("x", &[8, 10]), ("label", &[8, 3])],
        r#"layer { name: "loss" type: "SoftmaxWithLoss" bottom: "x" bottom: "label" top: "loss" }"#,
    );
    assert_contains(
        &err,
        &[
            "layer `loss` (SoftmaxWithLoss): label bottom 1 (`label`)",
            "label bottom 1 (`label`) has shape 8x3 (24 values)",
            "bottom 0 (`x`) has shape 8x10",
            "needs 8 labels",
        ],
    );
    // Axis 1 of 2x5x3x4 leaves 2·3·4 = 24 positions; Caffe checks only the count.
    net(
        &[("x", &[2, 5, 3, 4]), ("label", &[2, 12])],
        r#"layer { name: "loss" type: "SoftmaxWithLoss" bottom: "x" bottom: "label" top: "loss" }"#,
    );
    let err = net_error(
        &[("x", &[2, 5, 3, 4]), ("label", &[2, 3, 5])],
        r#"layer { name: "loss" type: "SoftmaxWithLoss" bottom: "x" bottom: "label" top: "loss" }"#,
    );
    assert_contains(&err, &["2x3x5 (30 values)", "2x5x3x4", "needs 24 labels"]);
}

#[test]
fn softmax_with_loss_arity() {
    let err = net_error(
        &[("x", &[8, 10]), ("label", &[8])],
        r#"layer { name: "loss" type: "SoftmaxWithLoss" bottom: "x" bottom: "label" top: "a" top: "b" top: "c" }"#,
    );
    assert_contains(&err, &["takes 1 or 2 tops, found 3"]);
    let err = net_error(
        &[("x", &[8, 10])],
        r#"layer { name: "loss" type: "SoftmaxWithLoss" bottom: "x" top: "loss" }"#,
    );
    assert_contains(&err, &["takes exactly 2 bottoms, found 1"]);
}

#[test]
fn accuracy_tops_and_checks() {
    let g = net(
        &[("x", &[6, 4, 2]), ("label", &[6, 2])],
        r#"layer { name: "acc" type: "Accuracy" bottom: "x" bottom: "label" top: "acc" top: "per_class" }"#,
    );
    assert_eq!(shape_of(&g, "acc"), Vec::<usize>::new());
    assert_eq!(shape_of(&g, "per_class"), vec![4]);
    let n = node(&g, "acc");
    assert_eq!(n.loss_weights, vec![0.0, 0.0]);
    assert!(!n.layer.is_loss());
    assert!(!n.layer.can_backprop_to(0) && !n.layer.can_backprop_to(1));

    // Classes along axis 2 of 6x4x3: 3 classes, 24 positions.
    let g = net(
        &[("x", &[6, 4, 3]), ("label", &[24])],
        r#"layer { name: "acc" type: "Accuracy" bottom: "x" bottom: "label" top: "acc" top: "pc"
             accuracy_param { axis: 2 top_k: 3 } }"#,
    );
    assert_eq!(shape_of(&g, "pc"), vec![3]);

    let err = net_error(
        &[("x", &[6, 4]), ("label", &[6])],
        r#"layer { name: "acc" type: "Accuracy" bottom: "x" bottom: "label" top: "acc" accuracy_param { top_k: 5 } }"#,
    );
    assert_contains(
        &err,
        &["top_k 5 exceeds the 4 classes on axis 1 of shape 6x4"],
    );
    let err = net_error(
        &[("x", &[6, 4]), ("label", &[5])],
        r#"layer { name: "acc" type: "Accuracy" bottom: "x" bottom: "label" top: "acc" }"#,
    );
    assert_contains(
        &err,
        &[
            "label bottom 1 (`label`) has shape 5 (5 values)",
            "6x4",
            "needs 6 labels",
        ],
    );
    let err = net_error(
        &[("x", &[6, 4]), ("label", &[6])],
        r#"layer { name: "acc" type: "Accuracy" bottom: "x" bottom: "label" top: "acc" accuracy_param { top_k: 0 } }"#,
    );
    assert_contains(&err, &["top_k must be at least 1"]);
}

#[test]
fn euclidean_loss_needs_equal_counts_and_batch() {
    let g = net(
        &[("a", &[4, 6]), ("b", &[4, 2, 3])],
        r#"layer { name: "l2" type: "EuclideanLoss" bottom: "a" bottom: "b" top: "loss" }"#,
    );
    assert_eq!(shape_of(&g, "loss"), Vec::<usize>::new());
    assert!(node(&g, "l2").layer.can_backprop_to(1));
    let err = net_error(
        &[("a", &[4, 6]), ("b", &[4, 5])],
        r#"layer { name: "l2" type: "EuclideanLoss" bottom: "a" bottom: "b" top: "loss" }"#,
    );
    assert_contains(
        &err,
        &["bottom 1 (`b`) has shape 4x5 (20 values) but bottom 0 (`a`) has shape 4x6 (24 values)"],
    );
    let err = net_error(
        &[("a", &[4, 6]), ("b", &[6, 4])],
        r#"layer { name: "l2" type: "EuclideanLoss" bottom: "a" bottom: "b" top: "loss" }"#,
    );
    assert_contains(
        &err,
        &[
            "bottom 1 (`b`) has shape 6x4 but bottom 0 (`a`) has shape 4x6",
            "first (batch) axes",
        ],
    );
}

#[test]
fn normalize_keeps_the_shape() {
    let g = net(
        &[("x", &[3, 4, 5])],
        r#"layer { name: "n" type: "Normalize" bottom: "x" top: "y" normalize_param { eps: 1e-10 } }"#,
    );
    assert_eq!(shape_of(&g, "y"), vec![3, 4, 5]);
    let err = net_error(
        &[("x", &[3, 4])],
        r#"layer { name: "n" type: "Normalize" bottom: "x" top: "y" normalize_param { eps: -1 } }"#,
    );
    assert_contains(
        &err,
        &["layer `n` (Normalize): eps must be a finite value ≥ 0, got -1"],
    );
}

#[test]
fn contrastive_loss_shapes() {
    for (a, b) in [
        (&[16usize, 2][..], &[16usize, 2][..]),
        (&[16, 2, 1, 1], &[16, 2]),
    ] {
        let g = net(
            &[("a", a), ("b", b), ("sim", &[16])],
            r#"layer { name: "c" type: "ContrastiveLoss" bottom: "a" bottom: "b" bottom: "sim" top: "loss" }"#,
        );
        assert_eq!(shape_of(&g, "loss"), Vec::<usize>::new());
        let n = node(&g, "c");
        assert!(n.layer.can_backprop_to(0) && n.layer.can_backprop_to(1));
        assert!(!n.layer.can_backprop_to(2));
    }
    // The fork's form with two label bottoms: each needs one value per pair.
    let labels = r#"layer { name: "c" type: "ContrastiveLoss" bottom: "a" bottom: "b"
        bottom: "l1" bottom: "l2" top: "loss" }"#;
    let g = net(
        &[
            ("a", &[16, 2]),
            ("b", &[16, 2]),
            ("l1", &[16]),
            ("l2", &[16, 1, 1, 1]),
        ],
        labels,
    );
    assert_eq!(shape_of(&g, "loss"), Vec::<usize>::new());
    let err = net_error(
        &[
            ("a", &[16, 2]),
            ("b", &[16, 2]),
            ("l1", &[16]),
            ("l2", &[8]),
        ],
        labels,
    );
    assert_contains(
        &err,
        &["the label bottom 3 (`l2`) has shape 8 but bottom 0 (`a`) has shape 16x2: it needs one value per pair (16)"],
    );
    let layer = r#"layer { name: "c" type: "ContrastiveLoss" bottom: "a" bottom: "b" bottom: "sim" top: "loss" }"#;
    let err = net_error(&[("a", &[16, 2]), ("b", &[16, 3]), ("sim", &[16])], layer);
    assert_contains(
        &err,
        &["layer `c` (ContrastiveLoss): bottom 1 (`b`) has shape 16x3 but bottom 0 (`a`) has shape 16x2"],
    );
    let err = net_error(&[("a", &[16, 2]), ("b", &[15, 2]), ("sim", &[16])], layer);
    assert_contains(
        &err,
        &["bottom 1 (`b`) has shape 15x2 but bottom 0 (`a`) has shape 16x2"],
    );
    let err = net_error(
        &[("a", &[16, 2, 2, 1]), ("b", &[16, 2, 2, 1]), ("sim", &[16])],
        layer,
    );
    assert_contains(
        &err,
        &["(bottom `a`): needs an N×C (or N×C×1×1) bottom, got 16x2x2x1"],
    );
    let err = net_error(
        &[("a", &[16, 2]), ("b", &[16, 2]), ("sim", &[16, 2])],
        layer,
    );
    assert_contains(
        &err,
        &[
            "similarity bottom 2 (`sim`) has shape 16x2",
            "one value per pair (16)",
        ],
    );
}

#[test]
fn triplet_loss_three_bottom_form() {
    let layer = r#"layer { name: "t" type: "TripletLoss" bottom: "a" bottom: "p" bottom: "n"
                     top: "loss" top: "counts" triplet_loss_param { margin: 0.2 } }"#;
    let g = net(&[("a", &[12, 8]), ("p", &[12, 8]), ("n", &[12, 8])], layer);
    assert_eq!(shape_of(&g, "loss"), Vec::<usize>::new());
    assert_eq!(shape_of(&g, "counts"), vec![3]);
    let n = node(&g, "t");
    assert_eq!(n.loss_weights, vec![1.0, 0.0]);
    assert!((0..3).all(|i| n.layer.can_backprop_to(i)));
    let err = net_error(&[("a", &[12, 8]), ("p", &[12, 8]), ("n", &[12, 7])], layer);
    assert_contains(
        &err,
        &["bottom 2 (`n`) has shape 12x7 but bottom 0 (`a`) has shape 12x8"],
    );
    let err = net_error(
        &[("a", &[12, 8]), ("p", &[12, 8]), ("n", &[12, 8])],
        r#"layer { name: "t" type: "TripletLoss" bottom: "a" bottom: "p" bottom: "n" top: "loss"
             triplet_loss_param { mining: BATCH_HARD } }"#,
    );
    assert_contains(
        &err,
        &["`mining` applies only to the two-bottom (embedding, label) form"],
    );
}

#[test]
fn triplet_loss_mining_form() {
    let g = net(
        &[("x", &[32, 4, 1, 1]), ("label", &[32])],
        r#"layer { name: "t" type: "TripletLoss" bottom: "x" bottom: "label" top: "loss"
             triplet_loss_param { mining: SEMI_HARD } }"#,
    );
    assert_eq!(shape_of(&g, "loss"), Vec::<usize>::new());
    let n = node(&g, "t");
    assert!(n.layer.can_backprop_to(0) && !n.layer.can_backprop_to(1));
    let err = net_error(
        &[("x", &[32, 4]), ("label", &[32])],
        r#"layer { name: "t" type: "TripletLoss" bottom: "x" bottom: "label" top: "loss" }"#,
    );
    assert_contains(
        &err,
        &["layer `t` (TripletLoss) needs `triplet_loss_param { mining: ... }`"],
    );
    let err = net_error(
        &[("x", &[32, 4]), ("label", &[16, 2])],
        r#"layer { name: "t" type: "TripletLoss" bottom: "x" bottom: "label" top: "loss"
             triplet_loss_param { mining: BATCH_ALL } }"#,
    );
    assert_contains(
        &err,
        &[
            "bottom 1 (`label`) has shape 16x2 but bottom 0 (`x`) has shape 32x4",
            "first (batch) axes",
        ],
    );
    let err = net_error(
        &[("x", &[32, 4]), ("label", &[31])],
        r#"layer { name: "t" type: "TripletLoss" bottom: "x" bottom: "label" top: "loss"
             triplet_loss_param { mining: BATCH_ALL } }"#,
    );
    assert_contains(&err, &["shape 31 (31 values)", "needs 32 labels"]);
}

#[test]
fn center_loss_shapes_and_centres() {
    // Features 4x3x5 from axis 2: M = 12 samples of K = 5 (labels 4x3: the loss
    // layers' first axes must agree, as Caffe checks).
    let g = net(
        &[("x", &[4, 3, 5]), ("label", &[4, 3])],
        r#"layer { name: "c" type: "CenterLoss" bottom: "x" bottom: "label" top: "loss"
             center_loss_param { num_output: 10 axis: 2 } }"#,
    );
    assert_eq!(shape_of(&g, "loss"), Vec::<usize>::new());
    assert_eq!(node(&g, "c").param_shapes, vec![vec![10, 5]]);
    // The default axis 1 flattens 16x2x3 to K = 6 for one label per sample.
    let g = net(
        &[("x", &[16, 2, 3]), ("label", &[16, 1, 1, 1])],
        r#"layer { name: "c" type: "CenterLoss" bottom: "x" bottom: "label" top: "loss"
             center_loss_param { num_output: 7 center_filler { type: "xavier" } } }"#,
    );
    assert_eq!(node(&g, "c").param_shapes, vec![vec![7, 6]]);
    assert_eq!(g.param_count(), 7 * 6);
    let err = net_error(
        &[("x", &[16, 2]), ("label", &[8])],
        r#"layer { name: "c" type: "CenterLoss" bottom: "x" bottom: "label" top: "loss"
             center_loss_param { num_output: 10 } }"#,
    );
    assert_contains(
        &err,
        &[
            "label bottom 1 (`label`) has shape 8 (8 values) but bottom 0 (`x`) has shape 16x2",
            "needs 16 labels",
        ],
    );
    let err = net_error(
        &[("x", &[16, 2]), ("label", &[16])],
        r#"layer { name: "c" type: "CenterLoss" bottom: "x" bottom: "label" top: "loss" }"#,
    );
    assert_contains(
        &err,
        &["layer `c` (CenterLoss) needs `center_loss_param { num_output: ... }`"],
    );
    let err = net_error(
        &[("x", &[16, 2]), ("label", &[16])],
        r#"layer { name: "c" type: "CenterLoss" bottom: "x" bottom: "label" top: "loss"
             center_loss_param { num_output: 10 center_filler { type: "xaviar" } } }"#,
    );
    assert_contains(
        &err,
        &[
            "unknown filler type \"xaviar\" in `center_filler`",
            "did you mean `xavier`",
        ],
    );
}

#[test]
fn margin_inner_product_shapes() {
    let layer = |tops: &str| {
        format!(
            r#"layer {{ name: "fc6" type: "MarginInnerProduct" bottom: "x" bottom: "label" {tops}
                 margin_inner_product_param {{ num_output: 10 type: QUADRUPLE weight_filler {{ type: "xavier" }} }} }}"#
        )
    };
    let g = net(
        &[("x", &[8, 16]), ("label", &[8])],
        &layer(r#"top: "fc6" top: "lambda""#),
    );
    assert_eq!(shape_of(&g, "fc6"), vec![8, 10]);
    assert_eq!(shape_of(&g, "lambda"), vec![1]);
    let n = node(&g, "fc6");
    assert_eq!(n.param_shapes, vec![vec![10, 16]]);
    assert_eq!(n.loss_weights, vec![0.0, 0.0]);
    assert!(n.layer.can_backprop_to(0) && !n.layer.can_backprop_to(1));
    // 8x4x2x2 flattens to K = 16; one top is enough.
    let g = net(
        &[("x", &[8, 4, 2, 2]), ("label", &[8])],
        &layer(r#"top: "fc6""#),
    );
    assert_eq!(shape_of(&g, "fc6"), vec![8, 10]);
    assert_eq!(node(&g, "fc6").param_shapes, vec![vec![10, 16]]);
    let n = node(&g, "fc6");
    let flops = n.layer.flops(&[vec![8, 4, 2, 2], vec![8]], &[vec![8, 10]]);
    assert_eq!(flops, 2 * 8 * 16 * 10);

    let err = net_error(&[("x", &[8, 16]), ("label", &[6])], &layer(r#"top: "fc6""#));
    assert_contains(
        &err,
        &[
            "layer `fc6` (MarginInnerProduct): label bottom 1 (`label`)",
            "label bottom 1 (`label`) has shape 6 (6 values) but bottom 0 (`x`) has shape 8x16",
        ],
    );
    let err = net_error(
        &[("x", &[8, 16]), ("label", &[8])],
        r#"layer { name: "fc6" type: "MarginInnerProduct" bottom: "x" bottom: "label" top: "fc6" }"#,
    );
    assert_contains(
        &err,
        &["needs `margin_inner_product_param { num_output: ... }`"],
    );
    let err = net_error(
        &[("x", &[8, 16]), ("label", &[8])],
        &layer(r#"top: "a" top: "b" top: "c""#),
    );
    assert_contains(&err, &["takes 1 or 2 tops, found 3"]);
}

#[test]
fn combined_margin_shapes_and_checks() {
    let g = net(
        &[("x", &[6, 3, 2]), ("label", &[6])],
        r#"layer { name: "arc" type: "CombinedMarginInnerProduct" bottom: "x" bottom: "label" top: "logits"
             combined_margin_inner_product_param { num_output: 11 m2: 0.5 } }"#,
    );
    assert_eq!(shape_of(&g, "logits"), vec![6, 11]);
    assert_eq!(node(&g, "arc").param_shapes, vec![vec![11, 6]]);
    for (bad, msg) in [
        ("m2: 3.5", "`m2` must be in [0, π), got 3.5"),
        ("m1: 0", "`m1` must be > 0, got 0"),
        ("s: -2", "`s` must be > 0, got -2"),
        ("m3: -0.1", "`m3` must be ≥ 0, got -0.1"),
    ] {
        let err = net_error(
            &[("x", &[6, 3]), ("label", &[6])],
            &format!(
                r#"layer {{ name: "arc" type: "CombinedMarginInnerProduct" bottom: "x" bottom: "label" top: "logits"
                     combined_margin_inner_product_param {{ num_output: 11 {bad} }} }}"#
            ),
        );
        assert_contains(&err, &["layer `arc` (CombinedMarginInnerProduct)", msg]);
    }
    let err = net_error(
        &[("x", &[6, 3]), ("label", &[5])],
        r#"layer { name: "arc" type: "CombinedMarginInnerProduct" bottom: "x" bottom: "label" top: "logits"
             combined_margin_inner_product_param { num_output: 11 } }"#,
    );
    assert_contains(
        &err,
        &["label bottom 1 (`label`) has shape 5 (5 values) but bottom 0 (`x`) has shape 6x3"],
    );
}

// ---------------------------------------------------------------- loss weights, gradients

#[test]
fn loss_layers_default_to_weight_one_on_their_first_top() {
    let g = net(
        &[("x", &[8, 10]), ("label", &[8])],
        r#"layer { name: "sm" type: "SoftmaxWithLoss" bottom: "x" bottom: "label" top: "loss" top: "prob" }
           layer { name: "eu" type: "EuclideanLoss" bottom: "x" bottom: "x" top: "eu" }
           layer { name: "cl" type: "CenterLoss" bottom: "x" bottom: "label" top: "cl" loss_weight: 0.01
                   center_loss_param { num_output: 3 } }
           layer { name: "sx" type: "Softmax" bottom: "x" top: "p" }"#,
    );
    assert_eq!(node(&g, "sm").loss_weights, vec![1.0, 0.0]);
    assert_eq!(node(&g, "eu").loss_weights, vec![1.0]);
    assert_eq!(node(&g, "cl").loss_weights, vec![0.01]);
    assert_eq!(node(&g, "sx").loss_weights, vec![0.0]);
}

/// As Caffe's LossLayer::AutoTopBlobs: a loss layer written without a top (LightCNN's
/// V1 training net does this) gets an automatic one and still counts with its
/// `loss_weight`; other layers without their tops stay errors.
#[test]
fn loss_layers_without_a_top_get_an_automatic_one() {
    let g = net(
        &[("x", &[8, 10]), ("label", &[8])],
        r#"layer { name: "sm" type: "SoftmaxWithLoss" bottom: "x" bottom: "label" loss_weight: 2 }
           layer { name: "eu" type: "EuclideanLoss" bottom: "x" bottom: "x" }"#,
    );
    assert_eq!(node(&g, "sm").def.top, vec!["sm (automatic)".to_string()]);
    assert_eq!(node(&g, "sm").loss_weights, vec![2.0]);
    assert_eq!(shape_of(&g, "sm (automatic)"), Vec::<usize>::new());
    assert_eq!(node(&g, "eu").loss_weights, vec![1.0]);
    assert_eq!(shape_of(&g, "eu (automatic)"), Vec::<usize>::new());
    let err = net_error(
        &[("x", &[8, 10]), ("label", &[8])],
        r#"layer { name: "acc" type: "Accuracy" bottom: "x" bottom: "label" }"#,
    );
    assert_contains(&err, &["layer `acc` (Accuracy) takes", "found 0"]);
}

#[test]
fn propagate_down_on_a_label_bottom_is_rejected() {
    let cases = [
        (
            &[("x", &[8usize, 10][..]), ("label", &[8][..])][..],
            r#"layer { name: "loss" type: "SoftmaxWithLoss" bottom: "x" bottom: "label" top: "loss"
                 propagate_down: true propagate_down: true }"#,
            "layer `loss` (SoftmaxWithLoss): bottom 1 (`label`) takes no gradient; `propagate_down` must be false",
        ),
        (
            &[("x", &[8, 2]), ("label", &[8])],
            r#"layer { name: "c" type: "CenterLoss" bottom: "x" bottom: "label" top: "loss"
                 propagate_down: false propagate_down: true center_loss_param { num_output: 3 } }"#,
            "layer `c` (CenterLoss): bottom 1 (`label`) takes no gradient",
        ),
        (
            &[("x", &[8, 16]), ("label", &[8])],
            r#"layer { name: "fc6" type: "MarginInnerProduct" bottom: "x" bottom: "label" top: "fc6"
                 propagate_down: true propagate_down: true margin_inner_product_param { num_output: 4 } }"#,
            "layer `fc6` (MarginInnerProduct): bottom 1 (`label`) takes no gradient",
        ),
        (
            &[("a", &[8, 2]), ("b", &[8, 2]), ("sim", &[8])],
            r#"layer { name: "c" type: "ContrastiveLoss" bottom: "a" bottom: "b" bottom: "sim" top: "loss"
                 propagate_down: true propagate_down: true propagate_down: true }"#,
            "layer `c` (ContrastiveLoss): bottom 2 (`sim`) takes no gradient",
        ),
        (
            &[("x", &[8, 10]), ("label", &[8])],
            r#"layer { name: "acc" type: "Accuracy" bottom: "x" bottom: "label" top: "acc"
                 propagate_down: true propagate_down: false }"#,
            "layer `acc` (Accuracy): bottom 0 (`x`) takes no gradient",
        ),
    ];
    for (tops, layer, msg) in cases {
        assert_contains(&net_error(tops, layer), &[msg]);
    }
}

#[test]
fn labels_get_no_gradient_in_a_training_net() {
    let g = net(
        &[("data", &[4, 6]), ("label", &[4])],
        r#"layer { name: "fc" type: "InnerProduct" bottom: "data" top: "fc" inner_product_param { num_output: 5 } }
           layer { name: "loss" type: "SoftmaxWithLoss" bottom: "fc" bottom: "label" top: "loss" }"#,
    );
    let n = node(&g, "loss");
    assert!(n.need_backward);
    assert_eq!(n.bottom_need_backward, vec![true, false]);
}

#[test]
fn loss_param_settings_are_rejected_where_they_have_no_effect() {
    let err = net_error(
        &[("a", &[8, 2]), ("b", &[8, 2]), ("sim", &[8])],
        r#"layer { name: "c" type: "ContrastiveLoss" bottom: "a" bottom: "b" bottom: "sim" top: "loss"
             loss_param { normalization: FULL ignore_label: 1 } }"#,
    );
    assert_contains(
        &err,
        &["layer `c` (ContrastiveLoss): `loss_param.ignore_label`, `loss_param.normalization` has no effect on ContrastiveLoss layers"],
    );
    // An empty block is harmless, as in Caffe.
    net(
        &[("a", &[8, 2]), ("b", &[8, 2])],
        r#"layer { name: "e" type: "EuclideanLoss" bottom: "a" bottom: "b" top: "loss" loss_param { } }"#,
    );
    // A block another type reads is ignored as Caffe ignores it, with a warning.
    let text = inputs(&[("x", &[8, 2]), ("label", &[8])])
        + r#"layer { name: "c" type: "CenterLoss" bottom: "x" bottom: "label" top: "loss"
             softmax_param { axis: 1 } center_loss_param { num_output: 3 } }"#;
    let def = netrun::netdef::parse_net_str("test.net", &text).unwrap();
    let warnings: Vec<String> = def.warnings.iter().map(|w| w.to_string()).collect();
    assert_contains(
        &warnings.join(""),
        &["warning: layer `c` (CenterLoss) does not use `softmax_param`"],
    );
    net(
        &[("x", &[8, 2]), ("label", &[8])],
        &text[text.find("layer { name: \"c\"").unwrap()..],
    );
}

// ---------------------------------------------------------------- reference cases

/// Every reference sidecar's prototxt builds, fed by Input layers shaped like its
/// `in.*` tensors, and its tops and first layer's params have the `out.*` / `param.*` shapes.
#[test]
fn reference_sidecar_nets_build_with_the_recorded_shapes() {
    let dir = shared("reference");
    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("index.json")).unwrap()).unwrap();
    let mut sidecars: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json") && !p.ends_with("index.json"))
        .collect();
    sidecars.sort();
    assert_eq!(sidecars.len(), index.as_array().unwrap().len());
    assert!(!sidecars.is_empty());

    // Sidecar tensor names that differ from the prototxt's blob names.
    let aliases = [("l2normalize_triplet_m0p2_d16", "anchor_normed", "anchor_n")];
    let mut problems = Vec::new();
    for path in &sidecars {
        let case = path.file_stem().unwrap().to_string_lossy().to_string();
        let side: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let tensors = side["tensors"].as_object().unwrap();
        let shape = |v: &serde_json::Value| -> Vec<usize> {
            v["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap() as usize)
                .collect()
        };
        let ins: Vec<(String, Vec<usize>)> = tensors
            .iter()
            .filter(|(_, v)| v["role"] == "input")
            .map(|(k, v)| (k.strip_prefix("in.").unwrap().to_string(), shape(v)))
            .collect();
        let ins_ref: Vec<(&str, &[usize])> =
            ins.iter().map(|(n, s)| (n.as_str(), &s[..])).collect();
        let text = inputs(&ins_ref) + side["prototxt"].as_str().unwrap();
        let g = match build(&text, Phase::Train) {
            Ok(g) => g,
            Err(e) => {
                problems.push(format!("{case}: {e}"));
                continue;
            }
        };
        for (k, v) in tensors {
            let want = shape(v);
            if let Some(out) = k.strip_prefix("out.") {
                let blob = aliases
                    .iter()
                    .find(|(c, from, _)| *c == case && *from == out)
                    .map_or(out, |a| a.2);
                let Some(id) = g.blobs.iter().rposition(|b| b.name == blob) else {
                    problems.push(format!("{case}: no top `{blob}` for `{k}`"));
                    continue;
                };
                let got = g.blob_shape(id);
                // A scalar loss top holds one value; the sidecars store it as [1].
                if got != want && !(got.is_empty() && want == [1]) {
                    problems.push(format!("{case}: `{blob}` is {got:?}, `{k}` is {want:?}"));
                }
            } else if k.starts_with("param.") {
                let first = g
                    .nodes
                    .iter()
                    .find(|n| !n.layer.is_data() && n.layer.type_name() != "Split")
                    .unwrap();
                if first.param_shapes.first() != Some(&want) {
                    problems.push(format!(
                        "{case}: params {:?}, `{k}` is {want:?}",
                        first.param_shapes
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ---------------------------------------------------------------- SphereFace-20

/// The SphereFace-20 train net with its ImageData layer replaced by an Input layer
/// of the config's batch size (256).
fn sphereface_with_input() -> String {
    let text =
        std::fs::read_to_string(shared("configs/sphereface/sphereface_model.prototxt")).unwrap();
    let start = text
        .find("layer {\n  name: \"data\"\n  type: \"ImageData\"")
        .expect("ImageData layer");
    let end = start + text[start..].find("\n}\n").unwrap() + 3;
    assert!(text[start..end].contains("batch_size: 256"));
    format!(
        "{}{}{}",
        &text[..start],
        inputs(&[("data", &[256, 3, 112, 96]), ("label", &[256])]),
        &text[end..]
    )
}

#[test]
fn sphereface20_train_net_builds() {
    let g = build(&sphereface_with_input(), Phase::Train).unwrap_or_else(|e| panic!("{e}"));
    // caffe-semantics.md §3.1: 22,670,656 through fc5 plus fc6's 512 x 10572.
    assert_eq!(g.param_count(), 22_670_656 + 512 * 10572);
    assert_eq!(g.param_count(), 28_083_520);
    assert_eq!(shape_of(&g, "fc6"), vec![256, 10572]);
    assert_eq!(shape_of(&g, "lambda"), vec![1]);
    assert_eq!(shape_of(&g, "softmax_loss"), Vec::<usize>::new());
    let fc6 = node(&g, "fc6");
    assert_eq!(fc6.param_shapes, vec![vec![10572, 512]]);
    assert_eq!(fc6.loss_weights, vec![0.0, 0.0]);
    assert_eq!(node(&g, "softmax_loss").loss_weights, vec![1.0]);
}

#[test]
fn netrun_check_reports_sphereface20() {
    let dir = std::env::temp_dir().join(format!("netrun-h2-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("sphereface_input.prototxt");
    std::fs::write(&file, sphereface_with_input()).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_netrun"))
        .args([
            "check",
            file.to_str().unwrap(),
            "--input-shape",
            "data=3,112,96",
        ])
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).ok();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_contains(
        &stdout,
        &[
            "28,083,520",
            "256x10572",
            "MarginInnerProduct",
            "SoftmaxWithLoss",
        ],
    );
}
