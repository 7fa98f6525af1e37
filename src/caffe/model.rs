//! Reading a `.caffemodel` (a binary `NetParameter`) into named tensors.
//!
//! Both layer encodings are read: `layer` (blobs with `shape`) and the V1
//! `layers` (blobs with the legacy `num`/`channels`/`height`/`width`).
//! Learnable blob `i` of layer `L` becomes tensor `L.i`, as in netrun's
//! weights files. A blob's value count must equal the product of its
//! dimensions (computed with checked arithmetic); `double_data` is used when
//! `data` is empty, as Caffe's `FromProto` does.
//!
//! Decoding goes in two steps so that an error can name the layer: the net
//! is first split into its layers' byte ranges, then each layer is decoded.
//! Every length is bounded by the bytes that remain (prost checks a declared
//! length against the buffer before reading it), so a corrupted size field
//! is an error, never a large allocation.

use super::messages::{v1_type_name, BlobProto, LayerParameter, V1LayerParameter};
use crate::error::{Error, Result};
use crate::layers::{fmt_shape, Shape};
use prost::Message;
use std::path::{Path, PathBuf};

/// One decoded blob.
#[derive(Debug, Clone, PartialEq)]
pub struct CaffeBlob {
    pub shape: Shape,
    /// The shape came from `num`/`channels`/`height`/`width` (no `shape`).
    pub legacy: bool,
    pub data: Vec<f32>,
}

/// One layer of the file.
#[derive(Debug, Clone, PartialEq)]
pub struct CaffeLayer {
    pub name: String,
    /// The type string (a V1 enum is translated: `CONVOLUTION` → `Convolution`).
    pub type_name: String,
    pub blobs: Vec<CaffeBlob>,
}

/// A whole `.caffemodel`.
#[derive(Debug, Clone, PartialEq)]
pub struct CaffeModel {
    pub path: PathBuf,
    pub name: String,
    /// The file used the V1 `layers` encoding.
    pub v1: bool,
    pub layers: Vec<CaffeLayer>,
}

/// The top level of a `NetParameter`: its name and each layer's bytes
/// (`layer`, or V1 `layers`), in file order.
#[derive(Default)]
struct NetShallow<'a> {
    name: Option<String>,
    layer: Vec<&'a [u8]>,
    layers: Vec<&'a [u8]>,
}

/// Splits the top level by hand (prost's wire helpers) so that a file cut
/// inside a layer is reported as such, with the layer's name when its
/// bytes up to the cut hold it.
fn split_layers(bytes: &[u8]) -> Result<NetShallow<'_>, String> {
    use prost::encoding::{decode_key, decode_varint, skip_field, DecodeContext, WireType};
    let mut net = NetShallow::default();
    let mut buf = bytes;
    while !buf.is_empty() {
        let at = bytes.len() - buf.len();
        let (tag, wire) = decode_key(&mut buf).map_err(|e| format!("byte {at}: {}", reason(&e)))?;
        match (tag, wire) {
            (1 | 2 | 100, WireType::LengthDelimited) => {
                let len =
                    decode_varint(&mut buf).map_err(|e| format!("byte {at}: {}", reason(&e)))?;
                if len > buf.len() as u64 {
                    let k = net.layer.len() + net.layers.len();
                    let what = match tag {
                        1 => "the net's name".to_string(),
                        _ => match layer_name(buf, tag == 2) {
                            Some(n) => format!("layer #{k} `{n}`"),
                            None => format!("layer #{k}"),
                        },
                    };
                    return Err(format!(
                        "the file ends inside {what}, which declares {len} bytes where {} remain (truncated)",
                        buf.len()
                    ));
                }
                let (field, rest) = buf.split_at(len as usize);
                buf = rest;
                match tag {
                    1 => net.name = Some(String::from_utf8_lossy(field).into_owned()),
                    2 => net.layers.push(field),
                    _ => net.layer.push(field),
                }
            }
            _ => skip_field(wire, tag, &mut buf, DecodeContext::default())
                .map_err(|e| format!("field {tag} at byte {at}: {}", reason(&e)))?,
        }
    }
    Ok(net)
}

/// A layer's name from its (possibly cut) bytes: field 1, or 4 in a V1 layer.
fn layer_name(mut buf: &[u8], v1: bool) -> Option<String> {
    let name_tag = if v1 { 4 } else { 1 };
    use prost::encoding::{decode_key, decode_varint, skip_field, DecodeContext, WireType};
    while !buf.is_empty() {
        let (tag, wire) = decode_key(&mut buf).ok()?;
        if tag == name_tag && wire == WireType::LengthDelimited {
            let len = usize::try_from(decode_varint(&mut buf).ok()?).ok()?;
            return buf
                .get(..len)
                .map(|b| String::from_utf8_lossy(b).into_owned());
        }
        skip_field(wire, tag, &mut buf, DecodeContext::default()).ok()?;
    }
    None
}

/// Whether the bytes begin like a `NetParameter` (field 1 `name`, 2 `layers`
/// or 100 `layer`, length-delimited), the test [`crate::weights::load`] uses
/// to tell a caffemodel from a safetensors file.
pub fn looks_like_net_parameter(bytes: &[u8]) -> bool {
    matches!(bytes, [0x0a, ..] | [0x12, ..] | [0xa2, 0x06, ..])
}

impl CaffeModel {
    /// Reads and decodes a file; errors name the file (and the layer).
    pub fn read(path: &Path) -> Result<CaffeModel> {
        let bytes = std::fs::read(path).map_err(|e| Error::Io {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        CaffeModel::decode(path, &bytes)
    }

    /// Decodes the bytes of a file (`path` names it in errors).
    pub fn decode(path: &Path, bytes: &[u8]) -> Result<CaffeModel> {
        let fail = |m: String| Error::Other(format!("`{}`: {m}", path.display()));
        let net = split_layers(bytes).map_err(|m| {
            fail(format!(
                "not a readable Caffe NetParameter: {m} (truncated, corrupted, or not a .caffemodel)"
            ))
        })?;
        if !net.layer.is_empty() && !net.layers.is_empty() {
            return Err(fail(format!(
                "holds both `layer` ({}) and V1 `layers` ({}) entries, which Caffe refuses",
                net.layer.len(),
                net.layers.len()
            )));
        }
        let v1 = net.layer.is_empty() && !net.layers.is_empty();
        if net.layer.is_empty() && net.layers.is_empty() {
            return Err(fail(
                "holds no layers: not a .caffemodel (or an empty net)".into(),
            ));
        }
        let mut layers = Vec::new();
        for (k, raw) in net.layer.iter().chain(&net.layers).enumerate() {
            let layer = decode_layer(raw, v1).map_err(|m| {
                let who = layer_name(raw, v1).map_or(String::new(), |n| format!(" `{n}`"));
                fail(format!("layer #{k}{who}: {m}"))
            })?;
            layers.push(layer);
        }
        Ok(CaffeModel {
            path: path.to_path_buf(),
            name: net.name.unwrap_or_default(),
            v1,
            layers,
        })
    }
}

/// prost's message without its own prefix.
fn reason(e: &prost::DecodeError) -> String {
    let s = e.to_string();
    s.strip_prefix("failed to decode Protobuf message: ")
        .unwrap_or(&s)
        .to_string()
}

fn decode_layer(raw: &[u8], v1: bool) -> Result<CaffeLayer, String> {
    let bad =
        |e: prost::DecodeError| format!("does not decode ({}): truncated or corrupted", reason(&e));
    let (name, type_name, blobs) = if v1 {
        let l = V1LayerParameter::decode(raw).map_err(bad)?;
        let ty = match l.r#type {
            None => String::new(),
            Some(t) => v1_type_name(t).map(str::to_string).ok_or_else(|| {
                format!("has V1 layer type {t}, which Caffe's enum does not define")
            })?,
        };
        (l.name.unwrap_or_default(), ty, l.blobs)
    } else {
        let l = LayerParameter::decode(raw).map_err(bad)?;
        (
            l.name.unwrap_or_default(),
            l.r#type.unwrap_or_default(),
            l.blobs,
        )
    };
    let blobs = blobs
        .into_iter()
        .enumerate()
        .map(|(i, b)| blob(b).map_err(|m| format!("blob {i}: {m}")))
        .collect::<Result<Vec<_>, String>>()?;
    Ok(CaffeLayer {
        name,
        type_name,
        blobs,
    })
}

/// A blob's shape (checked) and values.
fn blob(b: BlobProto) -> Result<CaffeBlob, String> {
    let legacy = b.shape.is_none();
    let dims: Vec<i64> = match &b.shape {
        Some(s) => s.dim.clone(),
        None => [b.num, b.channels, b.height, b.width]
            .iter()
            .map(|d| d.unwrap_or(0))
            .collect(),
    };
    let mut shape = Shape::with_capacity(dims.len());
    let mut count: usize = 1;
    for &d in &dims {
        let d = usize::try_from(d).map_err(|_| format!("has a negative dimension {d}"))?;
        count = count
            .checked_mul(d)
            .ok_or_else(|| format!("has dimensions {dims:?}, whose product overflows"))?;
        shape.push(d);
    }
    let data = if b.data.is_empty() && !b.double_data.is_empty() {
        b.double_data.iter().map(|&v| v as f32).collect()
    } else {
        b.data
    };
    if data.len() != count {
        return Err(format!(
            "has shape {} = {count} values but holds {}",
            fmt_shape(&shape),
            data.len()
        ));
    }
    Ok(CaffeBlob {
        shape,
        legacy,
        data,
    })
}
