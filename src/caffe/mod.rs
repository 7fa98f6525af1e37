//! Caffe's binary files: `.caffemodel` weights read ([`model`], [`load`])
//! and written ([`write`]), and the `netrun convert` commands between them
//! and safetensors ([`convert`]); Caffe's upgrades of old net files ([`upgrade`]).

pub mod convert;
pub mod load;
pub mod messages;
pub mod model;
pub mod upgrade;
pub mod upgrade_v0;
pub mod write;

pub use model::{CaffeBlob, CaffeLayer, CaffeModel};
