//! Caffe's net upgrades on read (V0 and V1 `layers`, padding layers, data-transform
//! fields, BatchNorm param specs), the
//! `netrun upgrade` command, and the warning for `*_param` blocks a layer's
//! type ignores.

use netrun::graph::{BuildOptions, Graph};
use netrun::netdef::{parse_net_str, Phase};
use std::process::Command;

const V1: &str = r#"name: "LeNetV1"
input: "data"
input_dim: 2
input_dim: 1
input_dim: 28
input_dim: 28
layers {
  name: "conv1"
  type: CONVOLUTION
  bottom: "data"
  top: "conv1"
  blobs_lr: 1
  blobs_lr: 2
  weight_decay: 1
  weight_decay: 0
  param: "conv1_w"
  convolution_param { num_output: 4 kernel_size: 5 }
}
layers { name: "relu1" type: RELU bottom: "conv1" top: "conv1" }
layers {
  name: "ip1"
  type: INNER_PRODUCT
  bottom: "conv1"
  top: "ip1"
  inner_product_param { num_output: 3 }
}
layers { name: "prob" type: SOFTMAX bottom: "ip1" top: "prob" }
"#;

#[test]
fn v1_layers_are_read_upgraded_with_a_note() {
    let net = parse_net_str("v1.prototxt", V1).unwrap();
    let types: Vec<&str> = net.layers.iter().map(|l| l.type_name.as_str()).collect();
    assert_eq!(types, ["Convolution", "ReLU", "InnerProduct", "Softmax"]);
    let conv = &net.layers[0];
    assert_eq!(conv.param.len(), 2);
    assert_eq!(
        (conv.param[0].lr_mult, conv.param[0].decay_mult),
        (1.0, 1.0)
    );
    assert_eq!(
        (conv.param[1].lr_mult, conv.param[1].decay_mult),
        (2.0, 0.0)
    );
    assert_eq!(conv.param[0].name.as_deref(), Some("conv1_w"));
    assert_eq!(net.warnings.len(), 1);
    let note = net.warnings[0].to_string();
    assert!(note.starts_with("warning: this net uses V1"), "{note}");
    assert!(
        note.contains("v1.prototxt:7:1") && note.contains("netrun upgrade"),
        "{note}"
    );
    let graph = Graph::build(&net, &BuildOptions::for_phase(Phase::Test)).unwrap();
    assert_eq!(graph.nodes.last().unwrap().def.type_name, "Softmax");
}

#[test]
fn data_transform_fields_move_into_transform_param() {
    let text = r#"layers { name: "mnist" type: DATA top: "data" top: "label"
  data_param { source: "x_lmdb" backend: LMDB batch_size: 4 scale: 0.00390625 mirror: true } }"#;
    let net = parse_net_str("d.prototxt", text).unwrap();
    let t = net.layers[0].block.get("transform_param").expect("moved");
    let text = format!("{t:?}");
    assert!(text.contains("scale") && text.contains("mirror"), "{text}");
    let d = net.layers[0].block.get("data_param").unwrap();
    assert!(!format!("{d:?}").contains("scale"));
}

#[test]
fn upgrade_prints_todays_format_that_reads_without_notes() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("v1.prototxt");
    std::fs::write(&old, V1).unwrap();
    let new = dir.path().join("new.prototxt");
    let out = Command::new(env!("CARGO_BIN_EXE_netrun"))
        .args([
            "upgrade",
            old.to_str().unwrap(),
            "-o",
            new.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&new).unwrap();
    assert!(
        !text.contains("layers {") && !text.contains("input_dim"),
        "{text}"
    );
    assert!(
        text.contains("type: \"Input\"") && text.contains("lr_mult: 2"),
        "{text}"
    );
    let upgraded = parse_net_str("new.prototxt", &text).unwrap();
    assert!(upgraded.warnings.is_empty());
    let original = parse_net_str("v1.prototxt", V1).unwrap();
    let a = Graph::build(&original, &BuildOptions::for_phase(Phase::Test)).unwrap();
    let b = Graph::build(&upgraded, &BuildOptions::for_phase(Phase::Test)).unwrap();
    let shapes = |g: &Graph| -> Vec<Vec<usize>> {
        g.blobs.iter().map(|x| x.shape.clone().unwrap()).collect()
    };
    assert_eq!(shapes(&a), shapes(&b));
    assert_eq!(a.nodes[1].param_specs, b.nodes[1].param_specs);
}

#[test]
fn a_known_block_on_the_wrong_type_warns_and_a_misspelt_one_fails() {
    let net = |block: &str| {
        format!(
            r#"layer {{ name: "data" type: "Input" top: "a" top: "b" input_param {{ shape {{ dim: 2 dim: 3 }} shape {{ dim: 2 dim: 3 }} }} }}
layer {{ name: "sum" type: "Eltwise" bottom: "a" bottom: "b" top: "s" {block} }}"#
        )
    };
    let def = parse_net_str("e.net", &net("concat_param { axis: 1 }")).unwrap();
    assert_eq!(def.warnings.len(), 1);
    let w = def.warnings[0].to_string();
    assert!(
        w.contains("warning: layer `sum` (Eltwise) does not use `concat_param`"),
        "{w}"
    );
    assert!(w.contains("e.net:2:"), "{w}");
    Graph::build(&def, &BuildOptions::for_phase(Phase::Test)).unwrap();
    for typo in ["concat_parm", "concatt_param"] {
        let err = parse_net_str("e.net", &net(&format!("{typo} {{ axis: 1 }}")))
            .and_then(|d| Graph::build(&d, &BuildOptions::for_phase(Phase::Test)).map(|_| ()))
            .unwrap_err()
            .to_string();
        assert!(err.contains(&format!("unknown field `{typo}`")), "{err}");
    }
}

/// A V0 net: a padding layer before the convolution, flat V0 fields.
const V0: &str = r#"name: "V0Net"
input: "data"
input_dim: 1
input_dim: 3
input_dim: 9
input_dim: 9
layers {
  layer { name: "pad1" type: "padding" pad: 2 }
  bottom: "data"
  top: "pad1"
}
layers {
  layer {
    name: "conv1" type: "conv" num_output: 4 kernelsize: 3 stride: 2 biasterm: true
    weight_filler { type: "gaussian" std: 0.1 } bias_filler { type: "constant" value: 0.2 }
    blobs_lr: 1 blobs_lr: 2 weight_decay: 1 weight_decay: 0
  }
  bottom: "pad1"
  top: "conv1"
}
layers { layer { name: "relu1" type: "relu" } bottom: "conv1" top: "conv1" }
layers { layer { name: "pool1" type: "pool" pool: AVE kernelsize: 2 stride: 2 } bottom: "conv1" top: "pool1" }
layers { layer { name: "drop1" type: "dropout" dropout_ratio: 0.3 } bottom: "pool1" top: "pool1" }
layers {
  layer { name: "ip1" type: "innerproduct" num_output: 5 weight_filler { type: "xavier" } }
  bottom: "pool1"
  top: "ip1"
}
layers { layer { name: "prob" type: "softmax" } bottom: "ip1" top: "prob" }
"#;

/// The same net written today, by hand: the padding is the convolution's `pad`.
const V0_TODAY: &str = r#"name: "V0Net"
layer { name: "input" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 9 dim: 9 } } }
layer {
  name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  param { lr_mult: 1 decay_mult: 1 } param { lr_mult: 2 decay_mult: 0 }
  convolution_param {
    num_output: 4 kernel_size: 3 stride: 2 pad: 2 bias_term: true
    weight_filler { type: "gaussian" std: 0.1 } bias_filler { type: "constant" value: 0.2 }
  }
}
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1" pooling_param { pool: AVE kernel_size: 2 stride: 2 } }
layer { name: "drop1" type: "Dropout" bottom: "pool1" top: "pool1" dropout_param { dropout_ratio: 0.3 } }
layer { name: "ip1" type: "InnerProduct" bottom: "pool1" top: "ip1" inner_product_param { num_output: 5 weight_filler { type: "xavier" } } }
layer { name: "prob" type: "Softmax" bottom: "ip1" top: "prob" }
"#;

/// `prob` of a net after one forward on a fixed input, weights from the seeded fillers.
fn probabilities(def: &netrun::netdef::NetDef) -> Vec<f32> {
    let g = Graph::build(def, &BuildOptions::for_phase(Phase::Test)).unwrap();
    let mut net = netrun::net::Net::new(g, 7).unwrap();
    let data = net.blob_mut("data").unwrap().data_mut();
    for (i, x) in data.iter_mut().enumerate() {
        *x = ((i * 37) % 23) as f32 / 23.0 - 0.5;
    }
    net.forward().unwrap();
    net.blob("prob").unwrap().data().to_vec()
}

#[test]
fn v0_nets_are_read_upgraded_with_padding_layers_folded() {
    let net = parse_net_str("v0.prototxt", V0).unwrap();
    let types: Vec<&str> = net.layers.iter().map(|l| l.type_name.as_str()).collect();
    assert_eq!(
        types,
        [
            "Convolution",
            "ReLU",
            "Pooling",
            "Dropout",
            "InnerProduct",
            "Softmax"
        ]
    );
    let conv = &net.layers[0];
    assert_eq!(conv.bottom, ["data"]);
    assert_eq!(
        (conv.param[1].lr_mult, conv.param[1].decay_mult),
        (2.0, 0.0)
    );
    assert_eq!(net.warnings.len(), 1);
    let note = net.warnings[0].to_string();
    assert!(note.contains("warning: this net uses V0"), "{note}");
    assert!(note.contains("`pad1` into `conv1`"), "{note}");
    assert!(note.contains("v0.prototxt:7:1"), "{note}");

    let today = parse_net_str("today.prototxt", V0_TODAY).unwrap();
    assert!(today.warnings.is_empty());
    let a = Graph::build(&net, &BuildOptions::for_phase(Phase::Test)).unwrap();
    let b = Graph::build(&today, &BuildOptions::for_phase(Phase::Test)).unwrap();
    let shapes = |g: &Graph| -> Vec<(String, Vec<usize>)> {
        g.blobs
            .iter()
            .map(|x| (x.name.clone(), x.shape.clone().unwrap()))
            .collect()
    };
    assert_eq!(shapes(&a), shapes(&b));
    // (9 + 2·2 − 3)/2 + 1 = 6: the folded padding is in the convolution.
    assert!(shapes(&a).contains(&("conv1".into(), vec![1, 4, 6, 6])));
    assert_eq!(a.nodes[1].param_specs, b.nodes[1].param_specs);
    let (pa, pb) = (probabilities(&net), probabilities(&today));
    assert_eq!(pa.len(), 5);
    assert_eq!(pa, pb);
}

#[test]
fn upgrade_prints_a_v0_net_and_says_which_upgrades_it_applied() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("v0.prototxt");
    std::fs::write(&old, V0).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_netrun"))
        .args(["upgrade", old.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("note: upgrades applied: V0 layers (UpgradeV0Net; padding layers folded: `pad1` into `conv1`), then V1 layers (UpgradeV1Net)"),
        "{stderr}"
    );
    assert!(stderr.contains("net inputs"), "{stderr}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        !text.contains("padding") && !text.contains("layers {"),
        "{text}"
    );
    assert!(
        text.contains("kernel_size: 3") && text.contains("pad: 2"),
        "{text}"
    );
    let upgraded = parse_net_str("new.prototxt", &text).unwrap();
    assert!(upgraded.warnings.is_empty());
    let original = parse_net_str("v0.prototxt", V0).unwrap();
    assert_eq!(probabilities(&upgraded), probabilities(&original));

    // A current file: nothing applied, and said so.
    let current = dir.path().join("today.prototxt");
    std::fs::write(&current, V0_TODAY).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_netrun"))
        .args(["upgrade", current.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("already in today's format"), "{stderr}");
}

#[test]
fn v0_mistakes_are_errors_at_their_place() {
    let err = |text: &str| parse_net_str("bad.prototxt", text).unwrap_err().to_string();
    let padded_relu = r#"input: "data"
input_dim: 1 input_dim: 1 input_dim: 4 input_dim: 4
layers { layer { name: "pad1" type: "padding" pad: 1 } bottom: "data" top: "p" }
layers { layer { name: "r" type: "relu" } bottom: "p" top: "r" }"#;
    let e = err(padded_relu);
    assert!(
        e.contains(
            "layer `r` reads the top of padding layer `pad1`: a `relu` layer cannot read it"
        ),
        "{e}"
    );
    assert!(e.contains("bad.prototxt:4:"), "{e}");

    let e = err(r#"layers { layer { name: "c" type: "convolution" } top: "c" }"#);
    assert!(e.contains("unknown V0 layer type `convolution`"), "{e}");
    assert!(e.contains("bad.prototxt:1:"), "{e}");

    let e = err(r#"layers { layer { name: "c" type: "conv" kernel_size: 3 } top: "c" }"#);
    assert!(e.contains("unknown V0 layer field `kernel_size`"), "{e}");
    assert!(e.contains("kernelsize"), "{e}");

    // A field the type does not use is dropped with a warning, as Caffe does.
    let net = parse_net_str(
        "w.prototxt",
        r#"input: "data"
input_dim: 1 input_dim: 1 input_dim: 4 input_dim: 4
layers { layer { name: "r" type: "relu" num_output: 3 } bottom: "data" top: "r" }"#,
    )
    .unwrap();
    let w: Vec<String> = net.warnings.iter().map(|w| w.to_string()).collect();
    assert!(
        w.iter().any(
            |w| w.contains("V0 field `num_output` does not apply to a `relu` layer")
                && w.contains("w.prototxt:3:")
        ),
        "{w:?}"
    );
    Graph::build(&net, &BuildOptions::for_phase(Phase::Test)).unwrap();
}

#[test]
fn batch_norm_param_specs_are_dropped_as_caffe_does() {
    let net = |params: &str| {
        format!(
            r#"layer {{ name: "data" type: "Input" top: "x" input_param {{ shape {{ dim: 2 dim: 3 }} }} }}
layer {{ name: "bn" type: "BatchNorm" bottom: "x" top: "y" {params} }}"#
        )
    };
    let three = "param { lr_mult: 0 } param { lr_mult: 0 } param { lr_mult: 1 }";
    let def = parse_net_str("bn.prototxt", &net(three)).unwrap();
    assert!(def.layers[1].param.is_empty());
    assert_eq!(def.warnings.len(), 1);
    let w = def.warnings[0].to_string();
    assert!(
        w.contains("layer `bn` (BatchNorm): its three `param` specs are dropped")
            && w.contains("bn.prototxt:2:"),
        "{w}"
    );
    Graph::build(&def, &BuildOptions::for_phase(Phase::Train)).unwrap();
    // Two specs are not Caffe's upgrade case: a learned statistic stays an error.
    let two = "param { lr_mult: 0 } param { lr_mult: 1 }";
    let err = parse_net_str("bn.prototxt", &net(two))
        .and_then(|d| Graph::build(&d, &BuildOptions::for_phase(Phase::Train)).map(|_| ()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("holds running statistics"), "{err}");
}
