//! Caffe's net upgrades on read (V1 `layers`, data-transform fields), the
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
