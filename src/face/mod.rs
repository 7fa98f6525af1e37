//! The face-recognition pipeline around training: `netrun verify` (LFW's
//! pair protocol: features, cosine similarity, k-fold threshold
//! cross-validation, ROC) and `netrun align` (MTCNN detection with five
//! landmarks, similarity-transform alignment onto a template).

pub mod align;
pub mod deploy;
pub mod embed;
pub mod folds;
pub mod image;
pub mod lfw;
pub mod mtcnn;
pub mod nms;
pub mod overlay;
pub mod roc;
pub mod roc_plot;
pub mod similarity;
pub mod stage;
pub mod verify;
