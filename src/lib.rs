//! netrun: a Caffe-style declarative deep-learning framework for face recognition.
//!
//! Pipeline: text ([`proto`]) → typed definitions ([`netdef`]) → a resolved,
//! shape-checked layer graph ([`graph`]) built from the layer registry ([`layers`]).
//! A solver file ([`solverdef`]) names the nets to train and test and the schedule.

pub mod backend;
pub mod blob;
pub mod caffe;
pub mod data;
pub mod error;
pub mod export;
pub mod face;
pub mod forward;
pub mod generate;
pub mod graph;
pub mod layer_io;
pub mod layers;
pub mod net;
pub mod netdef;
pub mod philox;
pub mod pictures;
pub mod proto;
pub mod shape;
pub mod solver;
pub mod solverdef;
pub mod source;
pub mod summary;
pub mod tensors;
pub mod testing;
pub mod timing;
pub mod timing_data;
pub mod train;
pub mod weights;

pub use error::{Diagnostic, Error, Result};
