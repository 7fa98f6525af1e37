//! MultiLabelImageData (happynear/caffe-windows; FaceVerification's
//! `CASIA_train_test_attribute` reads CelebA's 40 attributes with it): ImageData whose
//! list lines carry K labels, `<image path> <label_1> … <label_K>`, and whose label top
//! is N × K (row n holds image n's labels in list order). Everything else — decoding,
//! resizing, `transform_param`, shuffling, prefetching, snapshot state — is ImageData's
//! (image_data.rs). K is read from the list, which must give every image as many
//! labels as its first line; without the list, `--input-shape LABEL=K` supplies it.
//! The fork's face-landmark warping (`face_transform` and its ranges), class balancing
//! and `label_cut_*` are not read (unknown fields here).

use super::image_data::ImageDataLayer;
use super::{Arity, BuildContext, Layer, Shape, ShapeError};
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::LayerDef;

/// ImageData with K labels per image.
pub struct MultiLabelImageDataLayer(pub ImageDataLayer);

pub fn build(def: &LayerDef, ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    Ok(Box::new(MultiLabelImageDataLayer(
        ImageDataLayer::with_labels(def, ctx, true)?,
    )))
}

impl Layer for MultiLabelImageDataLayer {
    fn type_name(&self) -> &'static str {
        "MultiLabelImageData"
    }
    fn bottoms(&self) -> Arity {
        self.0.bottoms()
    }
    fn tops(&self) -> Arity {
        self.0.tops()
    }
    fn is_data(&self) -> bool {
        true
    }
    fn reshape(&mut self, bottom: &[Shape]) -> Result<Vec<Shape>, ShapeError> {
        self.0.reshape(bottom)
    }
    fn forward(&mut self, io: &mut LayerIo, ctx: &mut RunCtx) -> Result<(), String> {
        self.0.forward(io, ctx)
    }
    fn state(&self) -> Vec<(String, f64)> {
        self.0.state()
    }
    fn set_state(&mut self, state: &[(String, f64)]) -> Result<(), String> {
        self.0.set_state(state)
    }
}
