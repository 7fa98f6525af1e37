//! The registry of layer types: Caffe type name → constructor and the
//! `*_param` blocks it reads, and the checks that run before a constructor
//! (unknown types, blocks the type does not read).

use super::*;
use crate::error::{did_you_mean, Diagnostic};
use crate::netdef::LayerDef;

/// Constructs a layer from its definition.
pub type BuildFn = fn(&LayerDef, &BuildContext) -> Result<Box<dyn Layer>, Diagnostic>;

/// A registered layer type.
pub struct LayerType {
    /// Caffe's type string.
    pub name: &'static str,
    /// The `*_param` blocks this type reads (others are errors on its layers).
    pub params: &'static [&'static str],
    pub build: BuildFn,
}

/// Every layer type netrun knows, by Caffe type name.
#[rustfmt::skip]
pub static REGISTRY: &[LayerType] = &[
    LayerType { name: "AbsVal", params: &[], build: abs_val::build },
    LayerType { name: "Accuracy", params: &["accuracy_param"], build: accuracy::build },
    LayerType { name: "AdaCosAddmScale", params: &["adacos_add_m_scale_param"], build: adacos_add_m_scale::build },
    LayerType { name: "ArgMax", params: &["argmax_param"], build: argmax::build },
    LayerType { name: "Axpy", params: &[], build: axpy::build },
    LayerType { name: "BN", params: &["bn_param"], build: bn::build },
    LayerType { name: "BNLL", params: &[], build: bnll::build },
    LayerType { name: "BatchNorm", params: &["batch_norm_param"], build: batch_norm::build },
    LayerType { name: "BatchReindex", params: &[], build: batch_reindex::build },
    LayerType { name: "Bias", params: &["bias_param"], build: bias::build },
    LayerType { name: "CenterLoss", params: &["center_loss_param", "loss_param"], build: center_loss::build },
    LayerType { name: "ChannelScale", params: &["channel_scale_param"], build: channel_scale::build },
    LayerType { name: "Clip", params: &["clip_param"], build: clip::build },
    LayerType { name: "CombinedMarginInnerProduct", params: &["combined_margin_inner_product_param"], build: combined_margin_inner_product::build },
    LayerType { name: "Concat", params: &["concat_param"], build: concat::build },
    LayerType { name: "ContrastiveLoss", params: &["contrastive_loss_param", "loss_param"], build: contrastive_loss::build },
    LayerType { name: "Convolution", params: &["convolution_param"], build: convolution::build },
    LayerType { name: "CosinAddm", params: &["cosin_add_m_param"], build: cosin_add_m::build },
    LayerType { name: "Crop", params: &["crop_param"], build: crop::build },
    LayerType { name: "Data", params: &["data_param", "transform_param"], build: data::build },
    LayerType { name: "Deconvolution", params: &["convolution_param"], build: deconvolution::build },
    LayerType { name: "DepthwiseConvolution", params: &["convolution_param"], build: depthwise_convolution::build },
    LayerType { name: "Dropout", params: &["dropout_param"], build: dropout::build },
    LayerType { name: "DummyData", params: &["dummy_data_param"], build: dummy_data::build },
    LayerType { name: "ELU", params: &["elu_param"], build: elu::build },
    LayerType { name: "Eltwise", params: &["eltwise_param"], build: eltwise::build },
    LayerType { name: "Embed", params: &["embed_param"], build: embed::build },
    LayerType { name: "EuclideanLoss", params: &["loss_param"], build: euclidean_loss::build },
    LayerType { name: "Exp", params: &["exp_param"], build: exp::build },
    LayerType { name: "Filter", params: &[], build: filter::build },
    LayerType { name: "Flatten", params: &["flatten_param"], build: flatten::build },
    LayerType { name: "Flip", params: &["flip_param"], build: flip::build },
    LayerType { name: "FocalLoss", params: &["focal_loss_param", "softmax_param", "loss_param"], build: focal_loss::build },
    LayerType { name: "GeneralContrastiveLoss", params: &["general_contrastive_loss_param"], build: general_contrastive_loss::build },
    LayerType { name: "GeneralTripletLoss", params: &["general_triplet_loss_param"], build: general_triplet_loss::build },
    LayerType { name: "GlobalLSEMargin", params: &["scale_param"], build: global_lse_margin::build },
    LayerType { name: "HDF5Data", params: &["hdf5_data_param"], build: hdf5_data::build },
    LayerType { name: "HDF5Output", params: &["hdf5_output_param"], build: hdf5_output::build },
    LayerType { name: "HingeLoss", params: &["hinge_loss_param", "loss_param"], build: hinge_loss::build },
    LayerType { name: "Im2col", params: &["convolution_param"], build: im2col::build },
    LayerType { name: "ImageData", params: &["image_data_param", "transform_param"], build: image_data::build },
    LayerType { name: "InfogainLoss", params: &["infogain_loss_param", "loss_param"], build: infogain_loss::build },
    LayerType { name: "InnerDistance", params: &["inner_distance_param"], build: inner_distance::build },
    LayerType { name: "InnerProduct", params: &["inner_product_param"], build: inner_product::build },
    LayerType { name: "Input", params: &["input_param"], build: input::build },
    LayerType { name: "Insanity", params: &["insanity_param"], build: insanity::build },
    LayerType { name: "LRN", params: &["lrn_param"], build: lrn::build },
    LayerType { name: "LSTM", params: &["recurrent_param"], build: lstm::build },
    LayerType { name: "LSTMUnit", params: &[], build: lstm_unit::build },
    LayerType { name: "LabelSpecificAdd", params: &["label_specific_add_param"], build: label_specific_add::build },
    LayerType { name: "LabelSpecificRescale", params: &["label_specific_rescale_param"], build: label_specific_rescale::build },
    LayerType { name: "LargeMarginInnerProduct", params: &["largemargin_inner_product_param"], build: largemargin_inner_product::build },
    LayerType { name: "Log", params: &["log_param"], build: log::build },
    LayerType { name: "MVN", params: &["mvn_param"], build: mvn::build },
    LayerType { name: "MarginInnerProduct", params: &["margin_inner_product_param"], build: margin_inner_product::build },
    LayerType { name: "MemoryData", params: &["memory_data_param"], build: memory_data::build },
    LayerType { name: "MultiLabelImageData", params: &["image_data_param", "transform_param"], build: multi_label_image_data::build },
    LayerType { name: "MultinomialLogisticLoss", params: &["loss_param"], build: multinomial_logistic_loss::build },
    LayerType { name: "NormL2", params: &[], build: norm_l2::build },
    LayerType { name: "Normalize", params: &["normalize_param"], build: normalize::build },
    LayerType { name: "PReLU", params: &["prelu_param"], build: prelu::build },
    LayerType { name: "Parameter", params: &["parameter_param"], build: parameter::build },
    LayerType { name: "Pooling", params: &["pooling_param"], build: pooling::build },
    LayerType { name: "Power", params: &["power_param"], build: power::build },
    LayerType { name: "RNN", params: &["recurrent_param"], build: rnn::build },
    LayerType { name: "ReLU", params: &["relu_param"], build: relu::build },
    LayerType { name: "Reduction", params: &["reduction_param"], build: reduction::build },
    LayerType { name: "Reshape", params: &["reshape_param"], build: reshape::build },
    LayerType { name: "SPP", params: &["spp_param"], build: spp::build },
    LayerType { name: "Scale", params: &["scale_param"], build: scale::build },
    LayerType { name: "Sigmoid", params: &["sigmoid_param"], build: sigmoid::build },
    LayerType { name: "SigmoidCrossEntropyLoss", params: &["loss_param"], build: sigmoid_cross_entropy_loss::build },
    LayerType { name: "Silence", params: &[], build: silence::build },
    LayerType { name: "Slice", params: &["slice_param"], build: slice::build },
    LayerType { name: "SoftTruncation", params: &["soft_truncation_param"], build: soft_truncation::build },
    LayerType { name: "Softmax", params: &["softmax_param"], build: softmax::build },
    LayerType { name: "SoftmaxWithLoss", params: &["softmax_param", "loss_param"], build: softmax_with_loss::build },
    LayerType { name: "Split", params: &[], build: split::build },
    LayerType { name: "Swish", params: &["swish_param"], build: swish::build },
    LayerType { name: "TanH", params: &["tanh_param"], build: tanh::build },
    LayerType { name: "Threshold", params: &["threshold_param"], build: threshold::build },
    LayerType { name: "Tile", params: &["tile_param"], build: tile::build },
    LayerType { name: "TripletLoss", params: &["triplet_loss_param", "loss_param"], build: triplet_loss::build },
];

/// Looks a type up by its Caffe name.
pub fn find(type_name: &str) -> Option<&'static LayerType> {
    REGISTRY.iter().find(|t| t.name == type_name)
}

/// Every `*_param` block name some layer type reads.
pub fn all_param_blocks() -> Vec<&'static str> {
    let mut v: Vec<&str> = REGISTRY
        .iter()
        .flat_map(|t| t.params.iter().copied())
        .collect();
    v.sort();
    v.dedup();
    v
}

/// A `*_param` block and its struct's field names (`None`: the block is never read).
pub type BlockFields = (&'static str, Option<&'static [&'static str]>);

/// The fields of each `*_param` block a type reads, as the block's struct declares
/// them (for documentation checks and completion), in `LayerType::params` order.
/// Each block is probed by building the type from a layer whose block holds one
/// unknown field: the block's struct rejects it with its full field list. `None`
/// for a block the constructor never reads (a REGISTRY entry out of step with its
/// code); an empty list for a type without blocks. `None` for an unknown type.
pub fn param_fields(type_name: &str) -> Option<Vec<BlockFields>> {
    const PROBE: &str = "netrun_field_probe";
    let ty = find(type_name)?;
    let fields = ty
        .params
        .iter()
        .map(|&block| {
            let text = format!(
                "layer {{ name: \"probe\" type: \"{}\" {block} {{ {PROBE}: 0 }} }}",
                ty.name
            );
            let expected = crate::netdef::parse_net_str("probe", &text)
                .ok()
                .and_then(|net| net.layers.into_iter().next())
                .and_then(|def| (ty.build)(&def, &BuildContext::default()).err())
                .filter(|d| d.message.contains(PROBE))
                .and_then(|d| d.expected);
            (block, expected)
        })
        .collect();
    Some(fields)
}

/// Builds the layer for a definition: finds its type, rejects `*_param` blocks
/// the type does not read, then runs the type's constructor.
pub fn build(def: &LayerDef, ctx: &BuildContext) -> Result<Box<dyn Layer>, Vec<Diagnostic>> {
    let Some(ty) = find(&def.type_name) else {
        if let Some((why, instead)) = unsupported::reason(&def.type_name) {
            let message = format!("layer `{}`: {why}", def.name);
            return Err(vec![def
                .error(def.field_span("type", 0), message)
                .with_help(instead)]);
        }
        let names: Vec<&str> = REGISTRY.iter().map(|t| t.name).collect();
        // The full list only when no known type is close: it grows with every layer.
        let hint = did_you_mean(&def.type_name, names.iter().copied())
            .unwrap_or_else(|| format!("known types: {}", names.join(", ")));
        return Err(vec![def
            .error(
                def.field_span("type", 0),
                format!(
                    "unknown layer type `{}` in layer `{}`",
                    def.type_name, def.name
                ),
            )
            .with_help(hint)]);
    };
    let mut diags = Vec::new();
    let known = all_param_blocks();
    for f in def
        .block
        .fields
        .iter()
        .filter(|f| f.name.ends_with("_param"))
    {
        // A block some other type reads is ignored with a warning (`misplaced_blocks`).
        if !ty.params.contains(&f.name.as_str()) && !known.contains(&f.name.as_str()) {
            let message = format!("unknown field `{}` in {}", f.name, def.describe());
            diags.push(
                def.error(f.name_span, message)
                    .with_help(blocks_help(ty, &f.name)),
            );
        }
    }
    if !diags.is_empty() {
        return Err(diags);
    }
    (ty.build)(def, ctx).map_err(|d| vec![d])
}

/// What a layer type's `*_param` blocks are, for a message about `block`.
fn blocks_help(ty: &LayerType, block: &str) -> String {
    did_you_mean(block, ty.params.iter().copied()).unwrap_or_else(|| {
        if ty.params.is_empty() {
            format!("{} layers take no `*_param` block", ty.name)
        } else {
            format!(
                "{} layers take {}",
                ty.name,
                crate::proto::de::quote_list(ty.params)
            )
        }
    })
}

/// Warnings for `*_param` blocks that some layer type reads but this layer's
/// type does not: Caffe ignores them (real face configs carry `softmax_param`
/// on Normalize, `concat_param` on Eltwise), and so does netrun, saying so.
pub fn misplaced_blocks(def: &LayerDef) -> Vec<Diagnostic> {
    let Some(ty) = find(&def.type_name) else {
        return Vec::new();
    };
    let known = all_param_blocks();
    def.block
        .fields
        .iter()
        .filter(|f| known.contains(&f.name.as_str()) && !ty.params.contains(&f.name.as_str()))
        .map(|f| {
            def.error(
                f.name_span,
                format!(
                    "{} does not use `{}`; it is ignored, as Caffe ignores it",
                    def.describe(),
                    f.name
                ),
            )
            .with_help(format!("remove the block ({})", blocks_help(ty, &f.name)))
            .as_warning()
        })
        .collect()
}

/// Reads a required positive count such as `num_output`, naming the block when missing.
pub fn required<T: Copy>(
    def: &LayerDef,
    value: Option<T>,
    block: &str,
    field: &str,
) -> Result<T, Diagnostic> {
    value.ok_or_else(|| {
        let span = def
            .block
            .get(block)
            .map_or(def.name_span(), |f| f.name_span);
        def.error(
            span,
            format!("{} needs `{block} {{ {field}: ... }}`", def.describe()),
        )
    })
}
