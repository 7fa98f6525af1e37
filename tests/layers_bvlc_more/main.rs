//! The rest of BVLC Caffe 1.0's layers (Crop, ArgMax, MVN, Embed, Parameter, BatchReindex,
//! SPP, Im2col and the HingeLoss, MultinomialLogisticLoss and InfogainLoss losses): forward
//! against naive loops or float64 formulas written here, the shared gradient checker, and
//! parameter and data errors.

#[path = "../common/mod.rs"]
mod common;

mod losses;
mod pooling;
mod structure;

/// The error text of building one layer (the inside of a `layer { }` block) after a 2x3x4x5 input `x`.
pub fn layer_error(text: &str) -> String {
    common::build_error(&format!(
        "layer {{ name: \"in\" type: \"Input\" top: \"x\" input_param {{ shape {{ dim: 2 dim: 3 dim: 4 dim: 5 }} }} }}\n\
         layer {{ {text} }}"
    ))
}
