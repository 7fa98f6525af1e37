//! The last of the public face-recognition Caffe nets named in issue #15, written here in
//! our own words with reduced trunks (fewer stages and channels, small inputs) but the
//! same layer types, parameters and quirks as the originals. Each mirrors one public file:
//!
//! - `casia_demo`: happynear/FaceVerification `caffe_proto/CASIA_demo.prototxt`: legacy
//!   `input_dim`s for a pair of grey faces, the Insanity trunk with named parameters
//!   (the first convolution unpadded), a 7×7 AVE pool, `Slice` on the batch axis with the
//!   legacy `slice_dim: 0` and `slice_point: 1`, two `Normalize` layers with no parameter
//!   block, and the pair's distance as an `EuclideanLoss`. Reduced: 5 convolution stages
//!   to 3, 32–320 channels to 8–16, 100×100 to 28×28.
//! - `casia_deploy`: FaceVerification `caffe_proto/CASIA_deploy.prototxt`: the same trunk
//!   for feature extraction, ending in the pool and a `Dropout` (the file keeps the
//!   siamese net's `name`). Reduced as above.
//! - `casia_train_test_attribute`: FaceVerification
//!   `caffe_proto/CASIA_train_test_attribute.prototxt`: grey `ImageData` identities and
//!   CelebA attribute images `Concat`ed on the batch axis (`concat_dim: 0`), one trunk,
//!   then `Slice` at the identity batch: the identity half to a softmax over identities,
//!   the attribute half through fc + Insanity + in-place Dropout + fc to 80 values,
//!   `Reshape`d to N × 2 × 40 × 1 (dims 0 and −1) for a 40-way two-class
//!   `SoftmaxWithLoss` and `Accuracy` on axis 1 (loss weight 0.02). Reduced as above,
//!   10575 identities to 10. The fork's `MultiLabelImageData` (a list of images with 40
//!   labels each) is read as published; its N × 40 labels come from `--input-shape`.
//!   One difference, kept on purpose: the published `Reshape` works in place, which the
//!   Caffe of 2015 let through and BVLC Caffe since 2016 and netrun refuse, so it has
//!   its own top here.
//! - `face_deploy_20`: FaceVerification `dataset/Megaface/face_deploy_20.prototxt` (the
//!   SphereFace-20 deploy net): `Flip` + `Concat` of the batch and its mirror, stages of a
//!   stride-2 convolution (xavier, bias lr 2) and residual pairs of gaussian convolutions
//!   whose biases are frozen (`lr_mult: 0`), all with PReLU, `Eltwise` `operation: 1`
//!   skips, fc5, `Slice` on the batch axis, `Eltwise` SUM (carrying a `concat_param`
//!   Caffe ignores) and an L2 `Normalize`. Reduced: 4 stages of 1/2/4/1 residual pairs to
//!   2 stages of 1/2, 64–512 channels to 8–16, 112×96 to 20×16.
//! - `normface_mirror_face`: happynear/NormFace `prototxt/example_of_mirror_face.prototxt`:
//!   an `Input` layer, the mirror trick in front of a LightCNN trunk written in the new
//!   syntax (Max-Feature-Map as `Slice` with `slice_dim: 1` + `Eltwise` MAX after every
//!   convolution and the fc), and `Eltwise` MAX of the original and mirrored features.
//!   Reduced: 5 stages to 3, 96–384 channels to 8–16, 128×128 to 16×16.
//! - `mtcnn_onet`: xialuxi/arcface-caffe `face_detection/model/det3.prototxt` (MTCNN's
//!   O-Net): legacy `input_dim`s, 3×3 MAX pools with stride 2 (Caffe's rounding up), biases
//!   with `decay_mult: 1`, a 2×2 convolution, an fc with an in-place `Dropout` before its
//!   PReLU, and the three heads (face score through `Softmax`, box, five landmarks).
//!   Reduced: 32–256 channels to 8–32; the 48×48 input is kept (the pools need it).
//! - `arcface_landmark`: arcface-caffe `landmark_and_pose/new_model/landmark.prototxt`: the
//!   O-Net shape with unpadded stride-2 convolutions instead of pools, a 2×2 stride-2
//!   convolution, a 1×1 convolution and two fcs to 45 values (landmarks and pose).
//!   Reduced: channels 32–256 to 8–32, 48×48 kept.
//!
//! Each passes `netrun check` in both phases with `--input-shape` (their data is not here)
//! and runs one forward and backward through `netrun time`.

mod common;

/// A convolution with the fork's named parameters (shared by name between the siamese
/// sides), msra weights (with `alpha` when given) and an Insanity or ReLU after it.
fn casia_unit(
    name: &str,
    bottom: &str,
    out: u32,
    pad: u32,
    act: Option<(f32, f32, f32)>,
) -> String {
    let (filler, relu) = match act {
        Some((alpha, lb, ub)) => (
            format!("type: \"msra\" alpha: {alpha}"),
            format!(
                "layer {{ name: \"relu{name}\" type: \"Insanity\" bottom: \"conv{name}\" \
                 top: \"conv{name}\" insanity_param {{ lb: {lb} ub: {ub} }} }}\n"
            ),
        ),
        None => (
            "type: \"msra\"".to_string(),
            format!(
                "layer {{ name: \"relu{name}\" type: \"ReLU\" bottom: \"conv{name}\" top: \"conv{name}\" }}\n"
            ),
        ),
    };
    format!(
        r#"
layer {{ name: "conv{name}" type: "Convolution" bottom: "{bottom}" top: "conv{name}"
  param {{ lr_mult: 1 decay_mult: 0 name: "conv{name}_w" }}
  param {{ lr_mult: 1 decay_mult: 0 name: "conv{name}_b" }}
  convolution_param {{ num_output: {out} kernel_size: 3 stride: 1 pad: {pad}
    weight_filler {{ {filler} }} bias_filler {{ type: "constant" }} }} }}
{relu}"#
    )
}

fn pool(name: &str, bottom: &str, kind: &str, k: u32, stride: u32) -> String {
    format!(
        r#"layer {{ name: "{name}" type: "Pooling" bottom: "{bottom}" top: "{name}"
  pooling_param {{ pool: {kind} kernel_size: {k} stride: {stride} }} }}
"#
    )
}

/// The CASIA trunk from `bottom` to the 7×7 AVE pool `pool5` (28×28 input: 26, 13, 7).
/// With `split`, the batch is sliced after conv32 (`slice_point` = `split`): the first
/// part goes on to pool5, the second is `attribute_feature`.
fn casia_trunk(bottom: &str, split: Option<u32>) -> String {
    let mut s = casia_unit("11", bottom, 8, 0, Some((0.25, 3.0, 5.0)));
    s += &casia_unit("12", "conv11", 8, 1, Some((0.25, 3.0, 5.0)));
    s += &pool("pool1", "conv12", "MAX", 2, 2);
    s += &casia_unit("21", "pool1", 8, 1, Some((0.2, 3.0, 8.0)));
    s += &casia_unit("22", "conv21", 16, 1, Some((0.2, 3.0, 8.0)));
    let mut last = "conv22".to_string();
    if let Some(point) = split {
        s += &format!(
            r#"layer {{ name: "slice_conv22" type: "Slice" bottom: "conv22"
  slice_param {{ slice_point: {point} axis: 0 }} top: "identity_feature" top: "attribute_feature" }}
"#
        );
        last = "identity_feature".to_string();
    }
    s += &pool("pool2", &last, "MAX", 2, 2);
    s += &casia_unit("51", "pool2", 16, 1, Some((0.1386, 5.0, 10.0)));
    s += &casia_unit("52", "conv51", 16, 1, None);
    s += &pool("pool5", "conv52", "AVE", 7, 1);
    s
}

fn casia_demo() -> String {
    let mut net = String::from(
        "name: \"GoogLeNet_small\"\ninput: \"data\"\n\
         input_dim: 2\ninput_dim: 1\ninput_dim: 28\ninput_dim: 28\n",
    );
    net += &casia_trunk("data", None);
    net += r#"
layer { name: "Slice" type: "Slice" bottom: "pool5" top: "feature1" top: "feature2"
  slice_param { slice_dim: 0 slice_point: 1 } }
layer { name: "norm1" type: "Normalize" bottom: "feature1" top: "norm1" }
layer { name: "norm2" type: "Normalize" bottom: "feature2" top: "norm2" }
layer { name: "distance" type: "EuclideanLoss" bottom: "norm1" bottom: "norm2" top: "distance" }
"#;
    net
}

fn casia_deploy() -> String {
    let mut net = String::from(
        "name: \"mnist_siamese_train_test\"\ninput: \"data\"\n\
         input_dim: 2\ninput_dim: 1\ninput_dim: 28\ninput_dim: 28\n",
    );
    net += &casia_trunk("data", None);
    net += r#"layer { name: "drop5" type: "Dropout" bottom: "pool5" top: "drop5"
  dropout_param { dropout_ratio: 0.5 } }
"#;
    net
}

/// The attribute net; the identity half is the ImageData batch, which `--batch 2` sets.
fn casia_train_test_attribute() -> String {
    let mut net = String::from("name: \"CASIA_small\"\n");
    for (phase, list, mirror) in [("TRAIN", "train", true), ("TEST", "val", false)] {
        net += &format!(
            r#"layer {{ name: "pair_data1" type: "ImageData" top: "pair_data1" top: "label1"
  image_data_param {{ source: "missing_identities_{list}.txt" is_color: false batch_size: 4
    shuffle: true }}
  transform_param {{ mean_file: "missing_mean.proto" scale: 0.0078125 }}
  include: {{ phase: {phase} }} }}
layer {{ name: "attribute_data" type: "MultiLabelImageData" top: "attribute_data"
  top: "atrribute_label"
  image_data_param {{ source: "missing_celeba_attr_{list}.txt" is_color: false batch_size: 4 }}
  transform_param {{ mean_file: "missing_mean.proto" scale: 0.0078125 mirror: {mirror} }}
  include: {{ phase: {phase} }} }}
"#
        );
    }
    net += r#"layer { name: "concat_data" type: "Concat" bottom: "pair_data1"
  bottom: "attribute_data" top: "concat_data" concat_param { concat_dim: 0 } }
"#;
    net += &casia_trunk("concat_data", Some(2));
    net += r#"
layer { name: "drop5" type: "Dropout" bottom: "pool5" top: "pool5" dropout_param { dropout_ratio: 0.6 } }
layer { name: "ip1" type: "InnerProduct" bottom: "pool5" top: "ip1"
  param { lr_mult: 1 decay_mult: 1e-5 name: "ip1_w" } param { lr_mult: 1 decay_mult: 0 name: "ip1_b" }
  inner_product_param { num_output: 10 weight_filler { type: "xavier" } bias_filler { type: "constant" } } }
layer { name: "identity_accuracy" type: "Accuracy" bottom: "ip1" bottom: "label1"
  top: "identity_accuracy" include: { phase: TEST } }
layer { name: "softmax_loss1" type: "SoftmaxWithLoss" loss_weight: 1 bottom: "ip1"
  bottom: "label1" top: "softmax_loss1" }
layer { name: "attribute_ip1" type: "InnerProduct" bottom: "attribute_feature" top: "attribute_ip1"
  param { lr_mult: 1 decay_mult: 1e-5 name: "attribute_ip1_w" }
  param { lr_mult: 1 decay_mult: 0 name: "attribute_ip1_b" }
  inner_product_param { num_output: 16 weight_filler { type: "xavier" } bias_filler { type: "constant" } } }
layer { name: "relu_attribute_ip1" type: "Insanity" bottom: "attribute_ip1" top: "attribute_ip1"
  insanity_param { lb: 5 ub: 10 } }
layer { name: "drop7" type: "Dropout" bottom: "attribute_ip1" top: "attribute_ip1"
  dropout_param { dropout_ratio: 0.6 } }
layer { name: "attribute_ip2" type: "InnerProduct" bottom: "attribute_ip1" top: "attribute_ip2"
  param { lr_mult: 1 decay_mult: 1e-5 name: "attribute_ip2_w" }
  param { lr_mult: 1 decay_mult: 0 name: "attribute_ip2_b" }
  inner_product_param { num_output: 80 weight_filler { type: "xavier" } bias_filler { type: "constant" } } }
layer { name: "reshape_attribute" type: "Reshape" bottom: "attribute_ip2" top: "attribute_pairs"
  reshape_param { shape { dim: 0 dim: 2 dim: 40 dim: -1 } } }
layer { name: "attribute_loss" type: "SoftmaxWithLoss" loss_weight: 0.02 bottom: "attribute_pairs"
  bottom: "atrribute_label" top: "attribute_loss" softmax_param { axis: 1 } }
layer { name: "attribute_accuracy" type: "Accuracy" bottom: "attribute_pairs"
  bottom: "atrribute_label" top: "attribute_accuracy" include: { phase: TEST }
  accuracy_param { axis: 1 } }
"#;
    net
}

/// A convolution + PReLU of the SphereFace-20 net: a stage's stride-2 opening
/// (xavier, bias lr 2) or a residual convolution (gaussian, bias frozen at lr 0).
fn sphere_conv(name: &str, bottom: &str, out: u32, opening: bool) -> String {
    let (stride, bias_lr, filler) = if opening {
        (2, 2, r#"type: "xavier""#)
    } else {
        (1, 0, r#"type: "gaussian" std: 0.01"#)
    };
    format!(
        r#"layer {{ name: "conv{name}" type: "Convolution" bottom: "{bottom}" top: "conv{name}"
  param {{ lr_mult: 1 decay_mult: 1 }} param {{ lr_mult: {bias_lr} decay_mult: 0 }}
  convolution_param {{ num_output: {out} kernel_size: 3 stride: {stride} pad: 1
    weight_filler {{ {filler} }} bias_filler {{ type: "constant" value: 0 }} }} }}
layer {{ name: "relu{name}" type: "PReLU" bottom: "conv{name}" top: "conv{name}" }}
"#
    )
}

/// One SphereFace stage `s`: its opening and `pairs` residual pairs; returns (text, top).
fn sphere_stage(s: u32, bottom: &str, out: u32, pairs: u32) -> (String, String) {
    let mut text = sphere_conv(&format!("{s}_1"), bottom, out, true);
    let mut skip = format!("conv{s}_1");
    for p in 0..pairs {
        let (a, b) = (2 + 2 * p, 3 + 2 * p);
        text += &sphere_conv(&format!("{s}_{a}"), &skip, out, false);
        text += &sphere_conv(&format!("{s}_{b}"), &format!("conv{s}_{a}"), out, false);
        text += &format!(
            r#"layer {{ name: "res{s}_{b}" type: "Eltwise" bottom: "{skip}" bottom: "conv{s}_{b}"
  top: "res{s}_{b}" eltwise_param {{ operation: 1 }} }}
"#
        );
        skip = format!("res{s}_{b}");
    }
    (text, skip)
}

/// `Flip` + `Concat` of the batch and its mirror on the batch axis.
const MIRROR: &str = r#"layer { name: "flip_data" type: "Flip" bottom: "data" top: "flip_data" }
layer { name: "concat_data" type: "Concat" bottom: "data" bottom: "flip_data" top: "concat_data"
  concat_param { axis: 0 } }
"#;

fn face_deploy_20() -> String {
    let mut net =
        String::from("input: \"data\"\ninput_dim: 2\ninput_dim: 3\ninput_dim: 20\ninput_dim: 16\n");
    net += MIRROR;
    let (s1, top1) = sphere_stage(1, "concat_data", 8, 1);
    let (s2, top2) = sphere_stage(2, &top1, 16, 2);
    net += &(s1 + &s2);
    net += &format!(
        r#"layer {{ name: "fc5" type: "InnerProduct" bottom: "{top2}" top: "fc5"
  param {{ lr_mult: 1 decay_mult: 1 }} param {{ lr_mult: 2 decay_mult: 0 }}
  inner_product_param {{ num_output: 16 weight_filler {{ type: "xavier" }}
    bias_filler {{ type: "constant" value: 0 }} }} }}
layer {{ name: "slice_fc5" type: "Slice" bottom: "fc5" top: "fc5_orig" top: "fc5_mirror"
  slice_param {{ axis: 0 }} }}
layer {{ name: "eltmax_fc5" type: "Eltwise" bottom: "fc5_orig" bottom: "fc5_mirror" top: "eltmax_fc5"
  eltwise_param {{ operation: SUM }} concat_param {{ axis: 1 }} }}
layer {{ name: "normalize1" type: "Normalize" bottom: "eltmax_fc5" top: "norm1"
  normalize_param {{ normalize_type: "L2" }} }}
"#
    );
    net
}

/// A learned layer (`Convolution` with `conv` options, or `InnerProduct`) and LightCNN's
/// Max-Feature-Map in the new syntax: `slice<name>` halves the channels, `eltwise<name>`
/// keeps the larger (the file spells the layer names `etlwise`).
fn mfm(name: &str, bottom: &str, kind: &str, out: u32, conv: &str) -> String {
    let block = if kind == "Convolution" {
        "convolution_param"
    } else {
        "inner_product_param"
    };
    format!(
        r#"layer {{ name: "{name}" type: "{kind}" bottom: "{bottom}" top: "{name}"
  param {{ lr_mult: 1 decay_mult: 1 }} param {{ lr_mult: 2 decay_mult: 0 }}
  {block} {{ num_output: {out} {conv} weight_filler {{ type: "xavier" }}
    bias_filler {{ type: "constant" value: 0.1 }} }} }}
layer {{ name: "slice{name}" type: "Slice" bottom: "{name}" top: "slice{name}_1" top: "slice{name}_2"
  slice_param {{ slice_dim: 1 }} }}
layer {{ name: "etlwise{name}" type: "Eltwise" bottom: "slice{name}_1" bottom: "slice{name}_2"
  top: "eltwise{name}" eltwise_param {{ operation: MAX }} }}
"#
    )
}

fn normface_mirror_face() -> String {
    let mut net = String::from(
        r#"name: "DeepFace_set003_net_small"
layer { name: "input" type: "Input" top: "data"
  input_param { shape { dim: 2 dim: 1 dim: 16 dim: 16 } } }
"#,
    );
    net += MIRROR;
    net += &mfm(
        "conv1",
        "concat_data",
        "Convolution",
        16,
        "pad: 2 kernel_size: 5 stride: 1",
    );
    net += &pool("pool1", "eltwiseconv1", "MAX", 2, 2);
    net += &mfm(
        "conv2a",
        "pool1",
        "Convolution",
        16,
        "kernel_size: 1 stride: 1",
    );
    net += &mfm(
        "conv2",
        "eltwiseconv2a",
        "Convolution",
        16,
        "pad: 1 kernel_size: 3 stride: 1",
    );
    net += &pool("pool2", "eltwiseconv2", "MAX", 2, 2);
    net += &mfm(
        "conv3a",
        "pool2",
        "Convolution",
        16,
        "kernel_size: 1 stride: 1",
    );
    net += &mfm(
        "conv3",
        "eltwiseconv3a",
        "Convolution",
        16,
        "pad: 1 kernel_size: 3 stride: 1",
    );
    net += &pool("pool4", "eltwiseconv3", "MAX", 2, 2);
    net += &mfm("_fc1", "pool4", "InnerProduct", 16, "");
    net += r#"layer { name: "slice_eltwise_fc1" type: "Slice" bottom: "eltwise_fc1"
  top: "eltwise_fc1_orig" top: "eltwise_fc1_mirror" slice_param { axis: 0 } }
layer { name: "eltmax_eltwise_fc1" type: "Eltwise" bottom: "eltwise_fc1_orig"
  bottom: "eltwise_fc1_mirror" top: "eltmax_eltwise_fc1" eltwise_param { operation: MAX } }
"#;
    net
}

/// An MTCNN-style convolution (xavier, biases at lr 2 with `decay_mult: 1`) and its PReLU.
fn onet_conv(name: &str, bottom: &str, out: u32, k: u32, stride: u32, act: &str) -> String {
    format!(
        r#"layer {{ name: "{name}" type: "Convolution" bottom: "{bottom}" top: "{name}"
  param {{ lr_mult: 1 decay_mult: 1 }} param {{ lr_mult: 2 decay_mult: 1 }}
  convolution_param {{ num_output: {out} kernel_size: {k} stride: {stride}
    weight_filler {{ type: "xavier" }} bias_filler {{ type: "constant" value: 0 }} }} }}
layer {{ name: "{act}" type: "PReLU" bottom: "{name}" top: "{name}" }}
"#
    )
}

/// An MTCNN-style fc (same fillers and multipliers as `onet_conv`).
fn onet_fc(name: &str, bottom: &str, out: u32) -> String {
    format!(
        r#"layer {{ name: "{name}" type: "InnerProduct" bottom: "{bottom}" top: "{name}"
  param {{ lr_mult: 1 decay_mult: 1 }} param {{ lr_mult: 2 decay_mult: 1 }}
  inner_product_param {{ num_output: {out} weight_filler {{ type: "xavier" }}
    bias_filler {{ type: "constant" value: 0 }} }} }}
"#
    )
}

const MTCNN_INPUT: &str =
    "name: \"ONet\"\ninput: \"data\"\ninput_dim: 2\ninput_dim: 3\ninput_dim: 48\ninput_dim: 48\n";

/// 48 → conv 46 → pool 23 (rounded up) → conv 21 → pool 10 → conv 8 → pool 4 → conv 3.
fn mtcnn_onet() -> String {
    let mut net = String::from(MTCNN_INPUT);
    net += &onet_conv("conv1", "data", 8, 3, 1, "prelu1");
    net += &pool("pool1", "conv1", "MAX", 3, 2);
    net += &onet_conv("conv2", "pool1", 16, 3, 1, "prelu2");
    net += &pool("pool2", "conv2", "MAX", 3, 2);
    net += &onet_conv("conv3", "pool2", 16, 3, 1, "prelu3");
    net += &pool("pool3", "conv3", "MAX", 2, 2);
    net += &onet_conv("conv4", "pool3", 32, 2, 1, "prelu4");
    net += &onet_fc("conv5", "conv4", 32);
    net += r#"layer { name: "drop5" type: "Dropout" bottom: "conv5" top: "conv5"
  dropout_param { dropout_ratio: 0.25 } }
layer { name: "prelu5" type: "PReLU" bottom: "conv5" top: "conv5" }
"#;
    net += &onet_fc("conv6-1", "conv5", 2);
    net += &onet_fc("conv6-2", "conv5", 4);
    net += &onet_fc("conv6-3", "conv5", 10);
    net += "layer { name: \"prob1\" type: \"Softmax\" bottom: \"conv6-1\" top: \"prob1\" }\n";
    net
}

/// 48 → 23 → 11 → 5 (3×3, stride 2, unpadded) → 2 (2×2, stride 2) → 1×1 conv → fc → 45.
fn arcface_landmark() -> String {
    let mut net = String::from(MTCNN_INPUT);
    net += &onet_conv("conv1", "data", 8, 3, 2, "relu1");
    net += &onet_conv("conv2", "conv1", 16, 3, 2, "relu2");
    net += &onet_conv("conv3", "conv2", 16, 3, 2, "relu3");
    net += &onet_conv("conv4", "conv3", 32, 2, 2, "relu4");
    net += &onet_conv("conv5", "conv4", 16, 1, 1, "relu5");
    net += &onet_fc("fc1", "conv5", 32);
    net += &onet_fc("fc2", "fc1", 45);
    net
}

/// Name, net text and the `--input-shape`s each net needs.
fn nets() -> Vec<(&'static str, String, Vec<&'static str>)> {
    vec![
        ("casia_demo", casia_demo(), vec!["data=1,28,28"]),
        ("casia_deploy", casia_deploy(), vec!["data=1,28,28"]),
        (
            "casia_train_test_attribute",
            casia_train_test_attribute(),
            vec![
                "pair_data1=1,28,28",
                "attribute_data=1,28,28",
                "atrribute_label=40",
            ],
        ),
        ("face_deploy_20", face_deploy_20(), vec!["data=3,20,16"]),
        (
            "normface_mirror_face",
            normface_mirror_face(),
            vec!["data=1,16,16"],
        ),
        ("mtcnn_onet", mtcnn_onet(), vec!["data=3,48,48"]),
        ("arcface_landmark", arcface_landmark(), vec!["data=3,48,48"]),
    ]
}

#[test]
fn remaining_published_face_nets_check_and_run_forward_and_backward() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text, shapes) in nets() {
        common::forks::check_and_time(dir.path(), name, &text, &shapes);
    }
}
