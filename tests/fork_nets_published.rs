//! Nets shaped like more of the public face-recognition Caffe nets, written here in our
//! own words with small trunks but the same layer types and parameters as the originals'
//! distinctive parts. Each mirrors one public file:
//!
//! - `lightcnn_b_deploy`: AlfredXiangWu/face_verification_experiment
//!   `proto/LightenedCNN_B_deploy.prototxt` (V1 `layers` syntax; Max-Feature-Map as
//!   SLICE on channels + ELTWISE MAX after every convolution and the first fc; `input_dim`s).
//! - `lightcnn_train_test`: AlfredXiangWu/face_verification_experiment
//!   `proto/DeepFace_set003_train_test.prototxt` (V1): LMDB `DATA` layers with `crop_size`
//!   and `mirror`, Max-Feature-Map after each pooling, an fc with only `weight_decay: 10`s,
//!   SOFTMAX + ACCURACY in both phases and a SOFTMAX_LOSS declared without a top.
//! - `lsoftmax_cifar`: wy1iu/LargeMargin_Softmax_Loss
//!   `myexamples/cifar10/model/cifar_train_test.prototxt` (and `cifar10+`, same layers):
//!   the fork's `BN` layer with slope/bias fillers, msra fillers, `LargeMarginInnerProduct`
//!   DOUBLE with base/gamma/power annealing in TRAIN, SINGLE with a frozen shared weight in
//!   TEST, both with the `lambda` top.
//! - `faceverification_casia`: happynear/FaceVerification
//!   `caffe_proto/CASIA_train_test.prototxt`: LEVELDB `Data` with a mean file, `Insanity`
//!   (randomised leaky ReLU) with lb/ub, msra fillers with `alpha`, named parameters, a 7×7
//!   AVE pool, an fc with `decay_mult: 1e-5`.
//! - `faceverification_siamese_concat`: happynear/FaceVerification
//!   `caffe_proto/mnist_siamese_train_test_concate.prototxt`: two LEVELDB `Data` layers per
//!   phase joined by `Concat` with the legacy `concat_dim: 0` (images and labels), a shared
//!   Insanity trunk, a softmax head in TRAIN only, the pooled features split back into the
//!   two sides by `Slice` at `slice_point` (the per-side batch) and a `ContrastiveLoss` fed
//!   both sides' labels (the fork's four-bottom form).
//! - `faceverification_center_loss_ms`: happynear/FaceVerification
//!   `caffe_proto/center_loss_ms.prototxt`: `Flip` + `Concat` on the batch axis, a PReLU
//!   residual trunk, then `Slice` on the batch axis and `Eltwise` MAX of the original and
//!   mirrored features (that layer also carries a `concat_param` Caffe ignores).
//! - `amsoftmax_deploy_mirror_normalize`: happynear/AMSoftmax
//!   `prototxt/face_deploy_mirror_normalize.prototxt`: the same mirror trick with stride-2
//!   convolutions, residual PReLU stages, `Eltwise` SUM of both halves and an L2 `Normalize`.
//! - `arcface_se_resnet`: xialuxi/arcface-caffe `mxnet_to_caffe/face.prototxt`: `Input`,
//!   BatchNorm (`use_global_stats`, `eps: 2e-05`) + Scale with bias, PReLU, SE blocks
//!   (global AVE pool, 1×1 convs, Sigmoid) fused into the shortcut by `Axpy`, Dropout 0.4,
//!   an fc then BatchNorm + Scale on the 2-D embedding.
//! - `mobilenet_v2_landmark`: xialuxi/arcface-caffe
//!   `landmark_and_pose/MobileNet-V2_deploy.prototxt`: slash-named inverted-residual units
//!   (1×1 expand, 3×3 `DepthwiseConvolution` with `engine: CAFFE`, 1×1 project, all
//!   bias-free), frozen-parameter BatchNorm (three `param`s at lr 0) + Scale with fillers,
//!   `Eltwise` SUM skips.
//! - `normface_lenet_contrastive`: happynear/NormFace `mnist/lenet_train_test.prototxt`:
//!   LeNet++ with PReLUs (their own `param`), gaussian fillers given a `value` (unused),
//!   a 3-value feature normalised, Parameter-held unit-ball centres, `InnerDistance` with
//!   its defaults, an Accuracy in both phases with `min_is_better`, and a
//!   `GeneralContrastiveLoss` carrying `square` / `max_negative_only` / `max_positive_only` /
//!   `add_intra_mae` and a stray `general_triplet_loss_param`.
//! - `normface_figure6`: happynear/NormFace `draw/figure6/normalize_layer.prototxt` (and
//!   `draw/update_two_points/`): two legacy `input:`s, `force_backward`, a Normalize whose
//!   options sit in a `softmax_param`, 2 centres of 3 dimensions.
//!
//! Each passes `netrun check` in both phases with `--input-shape` (their data is not here)
//! and runs one forward and backward through `netrun time`.

mod common;

use common::net_blocks::{
    bn_scale, conv, insanity_unit, lenet_unit, lsoftmax_unit, max_pool, mbv2_conv, mbv2_unit,
    plain, prelu_residual, se_unit, v1_mfm, v1_pool,
};

fn lightcnn_b_deploy() -> String {
    let mut net = String::from(
        r#"name: "lightcnn_b_small"
input: "data"
input_dim: 2 input_dim: 1 input_dim: 16 input_dim: 16
"#,
    );
    net += &v1_mfm(
        "conv1",
        "data",
        "CONVOLUTION",
        8,
        "kernel_size: 5 stride: 1 pad: 2",
    );
    net += &v1_pool("pool1", "mfm_conv1");
    net += &v1_mfm(
        "conv2a",
        "pool1",
        "CONVOLUTION",
        8,
        "kernel_size: 1 stride: 1",
    );
    net += &v1_mfm(
        "conv2",
        "mfm_conv2a",
        "CONVOLUTION",
        12,
        "kernel_size: 3 stride: 1 pad: 1",
    );
    net += &v1_pool("pool2", "mfm_conv2");
    net += &v1_mfm("fc1", "pool2", "INNER_PRODUCT", 16, "");
    net += r#"
layers { name: "drop1" type: DROPOUT bottom: "mfm_fc1" top: "mfm_fc1"
  dropout_param { dropout_ratio: 0.75 } }
layers { name: "fc2" type: INNER_PRODUCT bottom: "mfm_fc1" top: "fc2"
  inner_product_param { num_output: 10
    weight_filler { type: "xavier" } bias_filler { type: "constant" value: 0.1 } } }
layers { name: "softmax" type: SOFTMAX bottom: "fc2" top: "prob" include: { phase: TEST } }
layers { name: "accuracy" type: ACCURACY bottom: "prob" bottom: "label" top: "accuracy"
  include: { phase: TEST } }
"#;
    net
}

/// The LightCNN training net (V1): pooling before each Max-Feature-Map, a loss with no top.
fn lightcnn_train_test() -> String {
    let mut net = String::from(r#"name: "lightcnn_train_small""#);
    for (phase, batch, mirror) in [("TRAIN", 4, true), ("TEST", 2, false)] {
        net += &format!(
            r#"
layers {{ name: "data" type: DATA top: "data" top: "label"
  data_param {{ source: "missing_casia_{phase}_lmdb" backend: LMDB batch_size: {batch} }}
  transform_param {{ scale: 0.00390625 crop_size: 16 mirror: {mirror} }}
  include: {{ phase: {phase} }} }}
"#
        );
    }
    net += r#"
layers { name: "conv1" type: CONVOLUTION bottom: "data" top: "conv1"
  convolution_param { num_output: 8 kernel_size: 3 stride: 1
    weight_filler { type: "xavier" } bias_filler { type: "constant" value: 0.1 } } }
"#;
    net += &v1_pool("pool1", "conv1");
    net += r#"
layers { name: "slice1" type: SLICE bottom: "pool1" top: "slice1_1" top: "slice1_2"
  slice_param { slice_dim: 1 } }
layers { name: "eltwise1" type: ELTWISE bottom: "slice1_1" bottom: "slice1_2" top: "eltwise1"
  eltwise_param { operation: MAX } }
"#;
    net += &v1_mfm("fc1", "eltwise1", "INNER_PRODUCT", 16, "");
    net += r#"
layers { name: "dropout1" type: DROPOUT bottom: "mfm_fc1" top: "dropout1"
  dropout_param { dropout_ratio: 0.7 } }
layers { name: "fc2" type: INNER_PRODUCT weight_decay: 10 weight_decay: 10
  inner_product_param { num_output: 10 weight_filler { type: "xavier" }
    bias_filler { type: "constant" value: 0.1 } }
  bottom: "dropout1" top: "fc2" }
layers { name: "softmax" type: SOFTMAX bottom: "fc2" top: "prob" }
layers { name: "accuracy" type: ACCURACY bottom: "prob" bottom: "label" top: "accuracy" }
layers { name: "loss" type: SOFTMAX_LOSS bottom: "fc2" bottom: "label" loss_weight: 1 }
"#;
    net
}

fn lsoftmax_cifar() -> String {
    let mut net = String::from(
        r#"name: "lsoftmax_cifar_small"
layer { name: "cifar" type: "ImageData" top: "data" top: "label" include { phase: TRAIN }
  transform_param { mean_file: "missing_cifar_mean.binaryproto" mirror: true }
  image_data_param { source: "missing_train.txt" batch_size: 4 shuffle: true } }
layer { name: "cifar" type: "ImageData" top: "data" top: "label" include { phase: TEST }
  transform_param { mean_file: "missing_cifar_mean.binaryproto" }
  image_data_param { source: "missing_val.txt" batch_size: 2 } }
"#,
    );
    net += &lsoftmax_unit("_pre", "data", 8);
    net += &lsoftmax_unit("1_1", "bn_pre", 8);
    net += &max_pool("pool1", "bn1_1", 2);
    net += &lsoftmax_unit("2_1", "pool1", 16);
    net += &max_pool("pool2", "bn2_1", 2);
    net += r#"
layer { name: "ip1" type: "InnerProduct" bottom: "pool2" top: "ip1"
  param { lr_mult: 1 decay_mult: 1 } param { lr_mult: 2 decay_mult: 0 }
  inner_product_param { num_output: 16 weight_filler { type: "msra" }
    bias_filler { type: "constant" } } }
layer { name: "bn_ip" type: "BN" bottom: "ip1" top: "bn_ip"
  param { lr_mult: 1 decay_mult: 0 } param { lr_mult: 1 decay_mult: 0 }
  bn_param { slope_filler { type: "constant" value: 1 } bias_filler { type: "constant" value: 0 } } }
layer { name: "relu_ip" type: "ReLU" bottom: "bn_ip" top: "bn_ip" }
layer { name: "ip2" type: "LargeMarginInnerProduct" bottom: "bn_ip" bottom: "label"
  top: "ip2" top: "lambda" param { name: "ip2" lr_mult: 1 }
  largemargin_inner_product_param { num_output: 10 type: DOUBLE base: 1000 gamma: 0.00002
    power: 45 iteration: 0 weight_filler { type: "msra" } }
  include { phase: TRAIN } }
layer { name: "ip2" type: "LargeMarginInnerProduct" bottom: "bn_ip" bottom: "label"
  top: "ip2" top: "lambda" param { name: "ip2" lr_mult: 0 }
  largemargin_inner_product_param { num_output: 10 type: SINGLE base: 0 gamma: 1
    iteration: 0 weight_filler { type: "msra" } }
  include { phase: TEST } }
layer { name: "accuracy" type: "Accuracy" bottom: "ip2" bottom: "label" top: "accuracy"
  include { phase: TEST } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip2" bottom: "label" top: "loss" }
"#;
    net
}

fn faceverification_casia() -> String {
    let mut net = String::from(
        r#"name: "casia_small"
layer { name: "pair_data1" type: "Data" top: "pair_data1" top: "label1"
  data_param { backend: LEVELDB source: "missing_webface_train" batch_size: 4 }
  transform_param { mean_file: "missing_mean.proto" scale: 0.0078125 }
  include: { phase: TRAIN } }
layer { name: "pair_data1" type: "Data" top: "pair_data1" top: "label1"
  data_param { source: "missing_webface_test" backend: LEVELDB batch_size: 2 }
  transform_param { mean_file: "missing_mean.proto" scale: 0.0078125 }
  include: { phase: TEST } }
"#,
    );
    net += &insanity_unit("11", "pair_data1", 8, 0.25, 3.0, 5.0);
    net += &max_pool("pool1", "conv11", 2);
    net += &insanity_unit("21", "pool1", 8, 0.2, 3.0, 8.0);
    net += &insanity_unit("22", "conv21", 16, 0.1386, 5.0, 10.0);
    net += &max_pool("pool2", "conv22", 2);
    net += r#"
layer { name: "conv52" type: "Convolution" bottom: "pool2" top: "conv52"
  param { lr_mult: 1 decay_mult: 0 name: "conv52_w" } param { lr_mult: 1 decay_mult: 0 name: "conv52_b" }
  convolution_param { num_output: 16 kernel_size: 3 stride: 1 pad: 1
    weight_filler { type: "msra" } bias_filler { type: "constant" } } }
layer { name: "relu52" type: "ReLU" bottom: "conv52" top: "conv52" }
layer { name: "pool5" type: "Pooling" bottom: "conv52" top: "pool5"
  pooling_param { pool: AVE kernel_size: 7 stride: 1 } }
layer { name: "drop5" type: "Dropout" bottom: "pool5" top: "drop5" dropout_param { dropout_ratio: 0.5 } }
layer { name: "ip1" type: "InnerProduct" bottom: "drop5" top: "ip1"
  param { lr_mult: 1 decay_mult: 1e-5 name: "ip1_w" } param { lr_mult: 1 decay_mult: 0 name: "ip1_b" }
  inner_product_param { num_output: 10 weight_filler { type: "xavier" } bias_filler { type: "constant" } } }
layer { name: "accuracy_loss" type: "Accuracy" bottom: "ip1" bottom: "label1" top: "accuracy_loss"
  include: { phase: TEST } }
layer { name: "softmax_loss1" type: "SoftmaxWithLoss" bottom: "ip1" bottom: "label1"
  top: "softmax_loss1" loss_weight: 1 }
"#;
    net
}

/// The siamese pairs net; the Slice point is the per-side batch, which `--batch 2` sets.
fn faceverification_siamese_concat() -> String {
    let mut net = String::from(r#"name: "siamese_concat_small""#);
    for phase in ["TRAIN", "TEST"] {
        for side in ["1", "2"] {
            net += &format!(
                r#"
layer {{ name: "pair_data{side}" type: "Data" top: "pair_data{side}" top: "label{side}"
  data_param {{ backend: LEVELDB source: "missing_pair{side}_{phase}" batch_size: 2 }}
  transform_param {{ mean_file: "missing_mean.proto" scale: 0.0078125 mirror: true }}
  include: {{ phase: {phase} }} }}
"#
            );
        }
    }
    net += r#"
layer { name: "concat_data" type: "Concat" bottom: "pair_data1" bottom: "pair_data2"
  top: "concat_data" concat_param { concat_dim: 0 } }
layer { name: "concat_label" type: "Concat" bottom: "label1" bottom: "label2"
  top: "concat_label" concat_param { concat_dim: 0 } }
"#;
    net += &insanity_unit("11", "concat_data", 8, 0.25, 3.0, 5.0);
    net += r#"
layer { name: "pool5" type: "Pooling" bottom: "conv11" top: "pool5"
  pooling_param { pool: AVE kernel_size: 7 stride: 1 } }
layer { name: "ip1" type: "InnerProduct" bottom: "pool5" top: "ip1"
  param { lr_mult: 1 decay_mult: 1e-5 name: "ip1_w" } param { lr_mult: 2 decay_mult: 0 name: "ip1_b" }
  inner_product_param { num_output: 10 weight_filler { type: "xavier" } bias_filler { type: "constant" } }
  include: { phase: TRAIN } }
layer { name: "softmax_loss1" type: "SoftmaxWithLoss" loss_weight: 1 bottom: "ip1"
  bottom: "concat_label" top: "softmax_loss1" include: { phase: TRAIN } }
layer { name: "slice_pool5" type: "Slice" bottom: "pool5" slice_param { slice_point: 2 axis: 0 }
  top: "pool5_l" top: "pool5_r" }
layer { name: "simloss" type: "ContrastiveLoss" loss_weight: 0.001
  contrastive_loss_param { margin: 0 }
  bottom: "pool5_l" bottom: "pool5_r" bottom: "label1" bottom: "label2" top: "simloss" }
"#;
    net
}

/// The mirror-feature deploy nets: the batch and its mirror image through one trunk, the
/// two halves of the features merged. FaceVerification's center-loss net takes the
/// maximum after a pooled first stage; AMSoftmax's sums after a stride-2 convolution
/// and L2-normalises.
fn mirror_deploy(amsoftmax: bool) -> String {
    let (stride, pad, first) = if amsoftmax {
        (2, 1, "conv1a")
    } else {
        (1, 0, "pool1")
    };
    let mut net = format!(
        r#"input: "data"
input_dim: 2 input_dim: 3 input_dim: 20 input_dim: 16
layer {{ name: "flip_data" type: "Flip" bottom: "data" top: "flip_data" }}
layer {{ name: "concat_data" type: "Concat" bottom: "data" bottom: "flip_data" top: "concat_data"
  concat_param {{ axis: 0 }} }}
layer {{ name: "conv1a" type: "Convolution" bottom: "concat_data" top: "conv1a"
  param {{ lr_mult: 1 decay_mult: 1 }} param {{ lr_mult: 2 decay_mult: 0 }}
  convolution_param {{ num_output: 8 kernel_size: 3 stride: {stride} pad: {pad}
    weight_filler {{ type: "xavier" }} bias_filler {{ type: "constant" value: 0 }} }} }}
layer {{ name: "relu1a" type: "PReLU" bottom: "conv1a" top: "conv1a" }}
"#
    );
    if !amsoftmax {
        net += &max_pool("pool1", "conv1a", 2);
    }
    net += &prelu_residual("2", first, 8);
    net += &prelu_residual("3", "res2", 8);
    net += r#"
layer { name: "fc5" type: "InnerProduct" bottom: "res3" top: "fc5"
  param { lr_mult: 1 decay_mult: 1 } param { lr_mult: 1 decay_mult: 0 }
  inner_product_param { num_output: 16 weight_filler { type: "xavier" }
    bias_filler { type: "constant" value: 0 } } }
layer { name: "slice_fc5" type: "Slice" bottom: "fc5" top: "fc5_orig" top: "fc5_mirror"
  slice_param { axis: 0 } }
"#;
    net += if amsoftmax {
        r#"
layer { name: "eltmax_fc5" type: "Eltwise" bottom: "fc5_orig" bottom: "fc5_mirror" top: "eltmax_fc5"
  eltwise_param { operation: SUM } }
layer { name: "normalize1" type: "Normalize" bottom: "eltmax_fc5" top: "norm1"
  normalize_param { normalize_type: "L2" } }
"#
    } else {
        r#"
layer { name: "eltmax_fc5" type: "Eltwise" bottom: "fc5_orig" bottom: "fc5_mirror" top: "eltmax_fc5"
  eltwise_param { operation: MAX } concat_param { axis: 1 } }
"#
    };
    net
}

fn arcface_se_resnet() -> String {
    let mut net = String::from(
        r#"name: "se_resnet_small"
layer { name: "data" type: "Input" top: "data" input_param { shape: { dim: 1 dim: 3 dim: 16 dim: 16 } } }
"#,
    );
    net += &conv("conv0", "data", 8, 3, 1, 1, false);
    net += &bn_scale("bn0", "conv0", "bn0");
    net += &plain("PReLU", "bn0", "relu0");
    net += &se_unit("stage1_unit1", "relu0", 8, 2, Some("relu0"));
    net += &se_unit("stage1_unit2", "stage1_unit1_plus", 8, 1, None);
    net += &bn_scale("bn1", "stage1_unit2_plus", "bn1");
    net += r#"
layer { name: "drop0" type: "Dropout" bottom: "bn1" top: "drop0" dropout_param { dropout_ratio: 0.4 } }
layer { bottom: "drop0" top: "pre_fc1" name: "pre_fc1" type: "InnerProduct"
  inner_product_param { num_output: 16 } }
"#;
    net += &bn_scale("fc1", "pre_fc1", "fc1");
    net
}

fn mobilenet_v2_landmark() -> String {
    let mut net = String::from(
        r#"name: "mobilenet_v2_small"
layer { name: "data" type: "Input" top: "data" input_param { shape: { dim: 1 dim: 3 dim: 16 dim: 16 } } }
"#,
    );
    net += &mbv2_conv("conv1", "data", "Convolution", 4, 3, 2, true);
    net += &mbv2_unit("conv1_1", "conv1", 4, 6, 2);
    net += &mbv2_unit("conv1_2", "conv1_1/out/pw", 6, 6, 1);
    net += r#"
layer { name: "fuse_conv1_2" type: "Eltwise" bottom: "conv1_1/out/pw" bottom: "conv1_2/out/pw"
  top: "fuse_conv1_2" eltwise_param { operation: SUM } }
layer { name: "fc" type: "InnerProduct" bottom: "fuse_conv1_2" top: "fc"
  inner_product_param { num_output: 10 weight_filler { type: "msra" } } }
"#;
    net
}

/// Normalised feature, unit-ball centres and the distance to each (NormFace's heads).
const NORMFACE_CENTRE_DISTANCE: &str = r#"
layer { name: "id_weight" type: "Parameter" top: "id_weight" param { lr_mult: 1 decay_mult: 1 }
  parameter_param { shape { dim: 10 dim: 3 } blob_filler { type: "gaussian_unitball" } } }
layer { name: "id_weight_normalize" type: "Normalize" bottom: "id_weight" top: "id_weight_normalize"
  normalize_param { normalize_type: "L2" } }
layer { name: "ip2" type: "InnerDistance" bottom: "norm1" bottom: "id_weight_normalize" top: "ip2" }
"#;

fn normface_lenet_contrastive() -> String {
    let mut net = String::from(
        r#"name: "lenet_pp_small"
layer { name: "mnist" type: "Data" top: "data" top: "label" include { phase: TRAIN }
  transform_param { mean_value: 128 scale: 0.0078125 }
  data_param { source: "missing_mnist_train_lmdb" batch_size: 4 backend: LMDB } }
layer { name: "mnist" type: "Data" top: "data" top: "label" include { phase: TEST }
  transform_param { mean_value: 128 scale: 0.0078125 }
  data_param { source: "missing_mnist_test_lmdb" batch_size: 2 backend: LMDB } }
"#,
    );
    net += &lenet_unit("1", "data", 8);
    net += &lenet_unit("1+", "conv1", 8);
    net += &max_pool("pool1", "conv1+", 2);
    net += &lenet_unit("2", "pool1", 8);
    net += &max_pool("pool3", "conv2", 3);
    net += r#"
layer { name: "ip1" type: "InnerProduct" bottom: "pool3" top: "ip1"
  param { lr_mult: 1 decay_mult: 1 } param { lr_mult: 2 decay_mult: 0 }
  inner_product_param { num_output: 3 weight_filler { type: "gaussian" value: 0.01 }
    bias_filler { type: "constant" value: 0 } } }
layer { name: "normalize1" type: "Normalize" bottom: "ip1" top: "norm1"
  normalize_param { normalize_type: "L2" } }
"#;
    net += NORMFACE_CENTRE_DISTANCE;
    net += r#"
layer { name: "accuracy" type: "Accuracy" bottom: "ip2" bottom: "label" top: "accuracy"
  accuracy_param { min_is_better: true } }
layer { name: "loss" type: "GeneralContrastiveLoss" bottom: "ip2" bottom: "label"
  top: "loss" top: "mean_distance" loss_weight: 1 loss_weight: 1
  general_contrastive_loss_param { positive_margin: 0 negative_margin: 1 negative_weight: 1
    square: false max_negative_only: false max_positive_only: false add_intra_mae: false }
  general_triplet_loss_param { margin: 1 add_center_loss: true hardest_only: true
    negative_weight: 1 positive_first: false positive_upper_bound: 1 } }
"#;
    net
}

/// NormFace's two-point figure net: 3-dimensional points and their labels fed directly.
const NORMFACE_FIGURE6: &str = r#"name: "figure6_small"
input: "data"
input_dim: 4 input_dim: 3 input_dim: 1 input_dim: 1
input: "label"
input_dim: 4 input_dim: 1 input_dim: 1 input_dim: 1
force_backward: true
layer { name: "norm1" type: "Normalize" bottom: "data" top: "norm1"
  softmax_param { normalize_type: "L2" } }
layer { name: "id_weight" type: "Parameter" top: "id_weight" param { lr_mult: 1 decay_mult: 0 }
  parameter_param { shape { dim: 2 dim: 3 } blob_filler { type: "gaussian_unitball" } } }
layer { name: "id_weight_normalize" type: "Normalize" bottom: "id_weight" top: "id_weight_normalize"
  normalize_param { normalize_type: "L2" } }
layer { name: "ip2" type: "InnerDistance" bottom: "norm1" bottom: "id_weight_normalize" top: "ip2" }
layer { name: "loss" type: "GeneralContrastiveLoss" bottom: "ip2" bottom: "label"
  top: "loss" top: "mean_distance" loss_weight: 1 loss_weight: 1
  general_contrastive_loss_param { positive_margin: 0 negative_margin: 1 negative_weight: 1 } }
"#;

/// Name, net text and the `--input-shape`s each net needs.
fn nets() -> Vec<(&'static str, String, Vec<&'static str>)> {
    vec![
        (
            "lightcnn_b_deploy",
            lightcnn_b_deploy(),
            vec!["data=1,16,16", "label=1"],
        ),
        ("lsoftmax_cifar", lsoftmax_cifar(), vec!["data=3,16,16"]),
        (
            "faceverification_casia",
            faceverification_casia(),
            vec!["pair_data1=3,28,28"],
        ),
        (
            "faceverification_siamese_concat",
            faceverification_siamese_concat(),
            vec!["pair_data1=3,7,7", "pair_data2=3,7,7"],
        ),
        (
            "faceverification_center_loss_ms",
            mirror_deploy(false),
            vec!["data=3,20,16"],
        ),
        (
            "amsoftmax_deploy_mirror_normalize",
            mirror_deploy(true),
            vec!["data=3,20,16"],
        ),
        (
            "lightcnn_train_test",
            lightcnn_train_test(),
            vec!["data=1,20,20"],
        ),
        (
            "arcface_se_resnet",
            arcface_se_resnet(),
            vec!["data=3,16,16"],
        ),
        (
            "mobilenet_v2_landmark",
            mobilenet_v2_landmark(),
            vec!["data=3,16,16"],
        ),
        (
            "normface_lenet_contrastive",
            normface_lenet_contrastive(),
            vec!["data=1,12,12"],
        ),
        ("normface_figure6", NORMFACE_FIGURE6.to_string(), vec![]),
    ]
}

#[test]
fn published_face_nets_check_and_run_forward_and_backward() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text, shapes) in nets() {
        common::forks::check_and_time(dir.path(), name, &text, &shapes);
    }
}
