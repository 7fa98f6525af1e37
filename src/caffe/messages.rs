//! The parts of Caffe's binary schema that weights files need, as prost
//! messages. Field numbers are Caffe's (`NetParameter`, `LayerParameter`,
//! `V1LayerParameter`, `BlobProto`, `BlobShape`); every other field of a
//! file is skipped by the decoder, so a `.caffemodel` full of layer
//! parameters (fillers, convolution settings, ...) reads the same.
//!
//! prost bounds every length-delimited field by the bytes that remain in
//! the buffer before it reads it, so a declared length larger than the file
//! is a decode error, never an allocation of that size.

/// `NetParameter`: the whole file. `layer` (100) is today's encoding,
/// `layers` (2) the V1 one; a file holds one or the other.
#[derive(Clone, PartialEq, prost::Message)]
pub struct NetParameter {
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    #[prost(message, repeated, tag = "2")]
    pub layers: Vec<V1LayerParameter>,
    /// Legacy net inputs (names); not needed for weights, kept for writing.
    #[prost(string, repeated, tag = "3")]
    pub input: Vec<String>,
    #[prost(int64, repeated, packed = "false", tag = "4")]
    pub input_dim: Vec<i64>,
    #[prost(message, repeated, tag = "100")]
    pub layer: Vec<LayerParameter>,
}

/// `LayerParameter`: a layer's name, type, connections and learned blobs.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LayerParameter {
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    #[prost(string, optional, tag = "2")]
    pub r#type: Option<String>,
    #[prost(string, repeated, tag = "3")]
    pub bottom: Vec<String>,
    #[prost(string, repeated, tag = "4")]
    pub top: Vec<String>,
    #[prost(message, repeated, tag = "7")]
    pub blobs: Vec<BlobProto>,
}

/// `V1LayerParameter`: the legacy layer, its type an enum (see [`v1_type_name`]).
#[derive(Clone, PartialEq, prost::Message)]
pub struct V1LayerParameter {
    #[prost(string, repeated, tag = "2")]
    pub bottom: Vec<String>,
    #[prost(string, repeated, tag = "3")]
    pub top: Vec<String>,
    #[prost(string, optional, tag = "4")]
    pub name: Option<String>,
    #[prost(int32, optional, tag = "5")]
    pub r#type: Option<i32>,
    #[prost(message, repeated, tag = "6")]
    pub blobs: Vec<BlobProto>,
}

/// `BlobProto`: `shape` (7) with `data` (5) or `double_data` (8); files
/// older than `shape` give the legacy `num`/`channels`/`height`/`width` (1-4).
/// Diffs (6, 9) are skipped.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BlobProto {
    #[prost(int64, optional, tag = "1")]
    pub num: Option<i64>,
    #[prost(int64, optional, tag = "2")]
    pub channels: Option<i64>,
    #[prost(int64, optional, tag = "3")]
    pub height: Option<i64>,
    #[prost(int64, optional, tag = "4")]
    pub width: Option<i64>,
    #[prost(float, repeated, tag = "5")]
    pub data: Vec<f32>,
    #[prost(message, optional, tag = "7")]
    pub shape: Option<BlobShape>,
    #[prost(double, repeated, tag = "8")]
    pub double_data: Vec<f64>,
}

/// `BlobShape`: the dimensions, outermost first.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BlobShape {
    #[prost(int64, repeated, tag = "1")]
    pub dim: Vec<i64>,
}

/// V1 `LayerType` enum values and the type strings they became.
pub const V1_TYPES: &[(&str, i32, &str)] = &[
    ("NONE", 0, ""),
    ("ABSVAL", 35, "AbsVal"),
    ("ACCURACY", 1, "Accuracy"),
    ("ARGMAX", 30, "ArgMax"),
    ("BNLL", 2, "BNLL"),
    ("CONCAT", 3, "Concat"),
    ("CONTRASTIVE_LOSS", 37, "ContrastiveLoss"),
    ("CONVOLUTION", 4, "Convolution"),
    ("DATA", 5, "Data"),
    ("DECONVOLUTION", 39, "Deconvolution"),
    ("DROPOUT", 6, "Dropout"),
    ("DUMMY_DATA", 32, "DummyData"),
    ("EUCLIDEAN_LOSS", 7, "EuclideanLoss"),
    ("ELTWISE", 25, "Eltwise"),
    ("EXP", 38, "Exp"),
    ("FLATTEN", 8, "Flatten"),
    ("HDF5_DATA", 9, "HDF5Data"),
    ("HDF5_OUTPUT", 10, "HDF5Output"),
    ("HINGE_LOSS", 28, "HingeLoss"),
    ("IM2COL", 11, "Im2col"),
    ("IMAGE_DATA", 12, "ImageData"),
    ("INFOGAIN_LOSS", 13, "InfogainLoss"),
    ("INNER_PRODUCT", 14, "InnerProduct"),
    ("LRN", 15, "LRN"),
    ("MEMORY_DATA", 29, "MemoryData"),
    ("MULTINOMIAL_LOGISTIC_LOSS", 16, "MultinomialLogisticLoss"),
    ("MVN", 34, "MVN"),
    ("POOLING", 17, "Pooling"),
    ("POWER", 26, "Power"),
    ("RELU", 18, "ReLU"),
    ("SIGMOID", 19, "Sigmoid"),
    ("SIGMOID_CROSS_ENTROPY_LOSS", 27, "SigmoidCrossEntropyLoss"),
    ("SILENCE", 36, "Silence"),
    ("SOFTMAX", 20, "Softmax"),
    ("SOFTMAX_LOSS", 21, "SoftmaxWithLoss"),
    ("SPLIT", 22, "Split"),
    ("SLICE", 33, "Slice"),
    ("TANH", 23, "TanH"),
    ("WINDOW_DATA", 24, "WindowData"),
    ("THRESHOLD", 31, "Threshold"),
];

/// The type string of a V1 enum value (by number).
pub fn v1_type_name(value: i32) -> Option<&'static str> {
    V1_TYPES
        .iter()
        .find(|t| t.1 == value && value != 0)
        .map(|t| t.2)
}
