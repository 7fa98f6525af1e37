//! Writing trained nets for other runtimes: [`onnx`].

pub mod onnx;
