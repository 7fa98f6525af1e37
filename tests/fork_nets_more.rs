//! Nets shaped like the public training nets of happynear/AMSoftmax (the auto-scaling
//! `face_train_test_auto`, `face_train_test_wo_fn`, `GNAP`), happynear/NormFace (the
//! normalised-Euclidean triplet head, the combined softmax + contrastive head and the NCA
//! figure net, on Parameter-held class centres) and xialuxi/arcface-caffe
//! (`AdaCos/adacos_add_m_scale`), written here with small trunks: the same layer types
//! and parameters around the layers those nets add (GlobalLSEMargin, ChannelScale,
//! LabelSpecificRescale, SoftTruncation, GeneralTripletLoss, GeneralContrastiveLoss,
//! Parameter with weight-bottom InnerProduct / InnerDistance, NormL2, AdaCosAddmScale).
//! Each passes `netrun check` in both phases with `--input-shape` (their data is not
//! here) and runs one forward and backward through `netrun time`.

mod common;

/// Image data from a list that is not here (`--input-shape` supplies the shape).
const DATA: &str = r#"
layer { name: "data" type: "ImageData" top: "data" top: "label" include { phase: TRAIN }
  transform_param { mean_value: 128 scale: 0.0078125 mirror: true }
  image_data_param { source: "missing_train_list.txt" batch_size: 4 shuffle: true } }
layer { name: "data" type: "ImageData" top: "data" top: "label" include { phase: TEST }
  transform_param { mean_value: 128 scale: 0.0078125 }
  image_data_param { source: "missing_val_list.txt" batch_size: 2 } }
"#;

/// A two-convolution residual trunk ending in the feature map `res2`.
const TRUNK: &str = r#"
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  convolution_param { num_output: 8 kernel_size: 3 stride: 2 pad: 1
    weight_filler { type: "xavier" } bias_filler { type: "constant" } } }
layer { name: "relu1" type: "PReLU" bottom: "conv1" top: "conv1" }
layer { name: "conv2" type: "Convolution" bottom: "conv1" top: "conv2"
  param { lr_mult: 1 decay_mult: 1 } param { lr_mult: 0 decay_mult: 0 }
  convolution_param { num_output: 8 kernel_size: 3 pad: 1
    weight_filler { type: "gaussian" std: 0.01 } bias_filler { type: "constant" } } }
layer { name: "relu2" type: "PReLU" bottom: "conv2" top: "conv2" }
layer { name: "res2" type: "Eltwise" bottom: "conv1" bottom: "conv2" top: "res2"
  eltwise_param { operation: 1 } }
"#;

/// The 16-value feature `fc5` the face heads start from.
const FC5: &str = r#"
layer { name: "fc5" type: "InnerProduct" bottom: "res2" top: "fc5"
  inner_product_param { num_output: 16 weight_filler { type: "xavier" }
    bias_filler { type: "constant" } } }
"#;

const AMSOFTMAX_AUTO: &str = r#"
layer { name: "norm1" type: "Normalize" bottom: "fc5" top: "norm1" normalize_param { bp_norm: true } }
layer { name: "fc6" type: "InnerProduct" bottom: "norm1" top: "fc6"
  inner_product_param { num_output: 10 normalize: true weight_filler { type: "xavier" } bias_term: false } }
layer { name: "margin" type: "GlobalLSEMargin" bottom: "fc6" bottom: "label"
  top: "fc6_margin" top: "statistics" }
layer { name: "softmax_loss" type: "SoftmaxWithLoss" bottom: "fc6_margin" bottom: "label"
  top: "softmax_loss" loss_weight: 1 softmax_param { normalize_type: "Softmax" } }
layer { name: "accuracy" type: "Accuracy" bottom: "fc6" bottom: "label" top: "accuracy"
  include { phase: TEST } accuracy_param { min_is_better: false } }
"#;

const AMSOFTMAX_WO_FN: &str = r#"
layer { name: "norm1" type: "Normalize" bottom: "fc5" top: "norm1" top: "feature_norm" }
layer { name: "fc6" type: "InnerProduct" bottom: "norm1" top: "fc6"
  inner_product_param { num_output: 10 normalize: true weight_filler { type: "xavier" } bias_term: false } }
layer { name: "margin" type: "LabelSpecificAdd" bottom: "fc6" bottom: "label" top: "fc6_margin"
  label_specific_add_param { bias: -0.35 } }
layer { name: "fc6_margin_scale" type: "ChannelScale" bottom: "fc6_margin" bottom: "feature_norm"
  top: "fc6_margin_scale" }
layer { name: "softmax_loss" type: "SoftmaxWithLoss" bottom: "fc6_margin_scale" bottom: "label"
  top: "softmax_loss" }
layer { name: "accuracy" type: "Accuracy" bottom: "fc6" bottom: "label" top: "accuracy"
  include { phase: TEST } }
"#;

/// Global norm-aware pooling: the trunk's feature map, normalised per position, pooled,
/// then scaled back by the mean norm.
const GNAP: &str = r#"
layer { name: "res2_bn" type: "BatchNorm" bottom: "res2" top: "res2" }
layer { name: "norm_map" type: "Normalize" bottom: "res2" top: "normed_map" top: "map_norm"
  normalize_param { bp_norm: true } }
layer { name: "gap" type: "Pooling" bottom: "normed_map" top: "pooled"
  pooling_param { pool: AVE global_pooling: true } }
layer { name: "norm_mean" type: "Reduction" bottom: "map_norm" top: "map_norm_mean"
  reduction_param { operation: MEAN axis: 1 } }
layer { name: "gnap" type: "ChannelScale" bottom: "pooled" bottom: "map_norm_mean" top: "gnap" }
layer { name: "gnap_bn" type: "BatchNorm" bottom: "gnap" top: "gnap" }
layer { name: "fc6" type: "InnerProduct" bottom: "gnap" top: "fc6"
  inner_product_param { num_output: 10 weight_filler { type: "xavier" } } }
layer { name: "softmax_loss" type: "SoftmaxWithLoss" bottom: "fc6" bottom: "label" top: "softmax_loss" }
"#;

/// Class centres as a learnable top, normalised to unit rows (NormFace's heads).
const CENTRES: &str = r#"
layer { name: "id_weight" type: "Parameter" top: "id_weight" param { lr_mult: 1 decay_mult: 0 }
  parameter_param { shape { dim: 10 dim: 16 } blob_filler { type: "gaussian_unitball" } } }
layer { name: "id_weight_normalize" type: "Normalize" bottom: "id_weight" top: "id_weight_normalize" }
"#;

/// NormFace's NCA figure net: an InnerProduct fed the centres as bottom 1 (carrying an
/// `inner_distance_param` it ignores), rescaled per label, negated by a fixed Scale into
/// softmax scores; a soft-truncated copy of the scores on the side.
const NORMFACE_NCA: &str = r#"
layer { name: "norm1" type: "Normalize" bottom: "fc5" top: "norm1" }
layer { name: "ip2" type: "InnerProduct" bottom: "norm1" bottom: "id_weight_normalize" top: "ip2"
  inner_product_param { bias_term: false } inner_distance_param { distance_type: "L2" } }
layer { name: "rescale" type: "LabelSpecificRescale" bottom: "ip2" bottom: "label" top: "ip2_rescale"
  label_specific_rescale_param { positive_weight: 1.2 negative_weight: 1 } }
layer { name: "scale_ip2" type: "Scale" bottom: "ip2_rescale" top: "ip2_rescale"
  param { lr_mult: 0 decay_mult: 0 } scale_param { num_axes: 0 filler { value: -1 } } }
layer { name: "truncated" type: "SoftTruncation" bottom: "ip2" top: "ip2_truncated"
  soft_truncation_param { c: 2 } }
layer { name: "silence" type: "Silence" bottom: "ip2_truncated" }
layer { name: "accuracy" type: "Accuracy" bottom: "ip2" bottom: "label" top: "accuracy"
  include { phase: TEST } accuracy_param { min_is_better: true } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip2_rescale" bottom: "label" top: "loss" }
"#;

/// NormFace's normalised-Euclidean triplet head on Parameter-held centres.
const NORMFACE_TRIPLET: &str = r#"
layer { name: "normalize1" type: "Normalize" bottom: "fc5" top: "norm1" }
layer { name: "normalized_Euclidean" type: "InnerDistance" bottom: "norm1"
  bottom: "id_weight_normalize" top: "normalized_Euclidean"
  inner_distance_param { bias_term: false distance_type: "L2" } }
layer { name: "triplet_loss" type: "GeneralTripletLoss" bottom: "normalized_Euclidean" bottom: "label"
  top: "triplet_loss" top: "mean_distance" loss_weight: 1 loss_weight: 1
  general_triplet_loss_param { margin: 0.8 add_center_loss: true hardest_only: true negative_weight: 1 } }
layer { name: "accuracy" type: "Accuracy" bottom: "normalized_Euclidean" bottom: "label" top: "accuracy"
  include { phase: TEST } accuracy_param { min_is_better: true } }
"#;

/// NormFace's combined head: a contrastive loss on distances to one set of centres and a
/// scaled-cosine softmax on another.
const NORMFACE_COMBINED: &str = r#"
layer { name: "normalize1" type: "Normalize" bottom: "fc5" top: "norm1" }
layer { name: "id_weight_ip" type: "Parameter" top: "id_weight_ip" param { lr_mult: 1 decay_mult: 1 }
  parameter_param { shape { dim: 10 dim: 16 } blob_filler { type: "gaussian_unitball" } } }
layer { name: "id_weight_ip_normalize" type: "Normalize" bottom: "id_weight_ip" top: "id_weight_ip_normalize" }
layer { name: "euclidean" type: "InnerDistance" bottom: "norm1" bottom: "id_weight_normalize"
  top: "euclidean" inner_distance_param { bias_term: false distance_type: "L2" } }
layer { name: "cosine" type: "InnerProduct" bottom: "norm1" bottom: "id_weight_ip_normalize"
  top: "cosine" inner_product_param { bias_term: false } }
layer { name: "cosine_scale" type: "Scale" bottom: "cosine" top: "cosine"
  scale_param { num_axes: 0 bias_term: false filler { value: 4 } } }
layer { name: "softmax_loss" type: "SoftmaxWithLoss" bottom: "cosine" bottom: "label"
  top: "softmax_loss" softmax_param { normalize_type: "Softmax" } }
layer { name: "contrastive_loss" type: "GeneralContrastiveLoss" bottom: "euclidean" bottom: "label"
  top: "contrastive_loss" top: "mean_distance" loss_weight: 0.01 loss_weight: 1
  general_contrastive_loss_param { positive_margin: 0 negative_margin: 1 negative_weight: 1
    exp_negative_weight: false } }
layer { name: "accuracy" type: "Accuracy" bottom: "cosine" bottom: "label" top: "accuracy"
  include { phase: TEST } accuracy_param { min_is_better: false } }
"#;

const ARCFACE_ADACOS: &str = r#"
layer { name: "norm_fc5" type: "NormL2" bottom: "fc5" top: "norm_fc5" }
layer { name: "fc6" type: "InnerProduct" bottom: "norm_fc5" top: "fc6" param { lr_mult: 1 }
  inner_product_param { num_output: 10 normalize: true weight_filler { type: "xavier" } bias_term: false } }
layer { name: "adacos" type: "AdaCosAddmScale" bottom: "fc6" bottom: "label" top: "fc6_margin_scale"
  adacos_add_m_scale_param { m: 0.5 num_classes: 10 } }
layer { name: "softmax_loss" type: "SoftmaxWithLoss" bottom: "fc6_margin_scale" bottom: "label"
  top: "softmax_loss" loss_weight: 1 }
layer { name: "accuracy_t" type: "Accuracy" bottom: "fc6" bottom: "label" top: "accuracy_t"
  include { phase: TRAIN } }
"#;

/// Name and head of each net; GNAP pools the feature map, the others start from `fc5`.
fn nets() -> Vec<(&'static str, String)> {
    vec![
        ("amsoftmax_auto", format!("{FC5}{AMSOFTMAX_AUTO}")),
        ("amsoftmax_wo_fn", format!("{FC5}{AMSOFTMAX_WO_FN}")),
        ("amsoftmax_gnap", GNAP.to_string()),
        ("normface_nca", format!("{FC5}{CENTRES}{NORMFACE_NCA}")),
        (
            "normface_triplet",
            format!("{FC5}{CENTRES}{NORMFACE_TRIPLET}"),
        ),
        (
            "normface_combined",
            format!("{FC5}{CENTRES}{NORMFACE_COMBINED}"),
        ),
        ("arcface_adacos", format!("{FC5}{ARCFACE_ADACOS}")),
    ]
}

#[test]
fn fork_shaped_nets_check_and_run_forward_and_backward() {
    let dir = tempfile::tempdir().unwrap();
    for (name, head) in nets() {
        let text = format!("name: \"{name}\"\n{DATA}{TRUNK}{head}");
        common::forks::check_and_time(dir.path(), name, &text, &["data=3,12,12"]);
    }
}
