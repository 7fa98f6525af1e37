//! Caffe's `BlobProto` (the `.binaryproto` mean files), read as protobuf wire
//! format by hand like [`super::datum`].
//!
//! Fields: num = 1, channels = 2, height = 3, width = 4 (legacy 4-D shape,
//! varint int32), data = 5 (repeated float, packed or not), diff = 6,
//! shape = 7 (a `BlobShape` message: dim = 1, repeated int64, packed or not),
//! double_data = 8, double_diff = 9 (repeated double). `shape`, when present,
//! wins over the legacy fields; `double_data` is used when `data` is empty.

use super::datum::{Reader, FIXED32, FIXED64, LEN, VARINT};

/// The shape and values of a decoded `BlobProto` (diffs are not kept).
#[derive(Debug, Clone, PartialEq)]
pub struct BlobProto {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl BlobProto {
    pub fn decode(bytes: &[u8]) -> Result<BlobProto, String> {
        let mut r = Reader { bytes, pos: 0 };
        let mut legacy = [None::<i64>; 4];
        let mut shape: Option<Vec<i64>> = None;
        let (mut data, mut doubles) = (Vec::new(), Vec::new());
        while r.pos < bytes.len() {
            let at = r.pos;
            let tag = r.varint()?;
            let (field, wire) = (tag >> 3, (tag & 7) as u8);
            match (field, wire) {
                (1..=4, VARINT) => legacy[field as usize - 1] = Some(r.varint()? as i32 as i64),
                (5, _) => repeated(&mut r, wire, 4, at, &mut |b| {
                    data.push(f32::from_le_bytes(b.try_into().expect("4 bytes")))
                })?,
                (8, _) => repeated(&mut r, wire, 8, at, &mut |b| {
                    doubles.push(f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32)
                })?,
                (7, LEN) => shape = Some(blob_shape(r.len_delimited()?)?),
                (1..=9, _) if !matches!(field, 6 | 9) => {
                    return Err(format!(
                    "field {field} at byte {at} has wire type {wire}, which a BlobProto never uses"
                ))
                }
                _ => skip(&mut r, wire, at)?,
            }
        }
        let dims: Vec<i64> = match shape {
            Some(s) => s,
            None if legacy.iter().any(Option::is_some) => {
                legacy.iter().map(|d| d.unwrap_or(0)).collect()
            }
            None => vec![],
        };
        if let Some(d) = dims.iter().find(|&&d| d < 0) {
            return Err(format!("has a negative dimension {d}"));
        }
        let shape: Vec<usize> = dims.iter().map(|&d| d as usize).collect();
        if data.is_empty() {
            data = doubles;
        }
        let count: usize = shape.iter().product();
        if data.len() != count {
            return Err(format!(
                "has shape {} = {count} values but holds {}",
                crate::shape::fmt_shape(&shape),
                data.len()
            ));
        }
        Ok(BlobProto { shape, data })
    }
}

/// One element (fixed `width` bytes) or a packed run of them.
fn repeated(
    r: &mut Reader,
    wire: u8,
    width: usize,
    at: usize,
    push: &mut dyn FnMut(&[u8]),
) -> Result<(), String> {
    match wire {
        LEN => {
            let packed = r.len_delimited()?;
            if packed.len() % width != 0 {
                return Err(format!(
                    "packed field at byte {at} has {} bytes, not a multiple of {width}",
                    packed.len()
                ));
            }
            packed.chunks_exact(width).for_each(push);
        }
        FIXED32 if width == 4 => push(r.take(4)?),
        FIXED64 if width == 8 => push(r.take(8)?),
        _ => return Err(format!("field at byte {at} has wire type {wire}")),
    }
    Ok(())
}

/// The dims of a `BlobShape` message.
fn blob_shape(bytes: &[u8]) -> Result<Vec<i64>, String> {
    let mut r = Reader { bytes, pos: 0 };
    let mut dims = Vec::new();
    while r.pos < bytes.len() {
        let at = r.pos;
        let tag = r.varint()?;
        match (tag >> 3, (tag & 7) as u8) {
            (1, VARINT) => dims.push(r.varint()? as i64),
            (1, LEN) => {
                let packed = r.len_delimited()?;
                let mut inner = Reader {
                    bytes: packed,
                    pos: 0,
                };
                while inner.pos < packed.len() {
                    dims.push(inner.varint()? as i64);
                }
            }
            (_, wire) => skip(&mut r, wire, at)?,
        }
    }
    Ok(dims)
}

fn skip(r: &mut Reader, wire: u8, at: usize) -> Result<(), String> {
    match wire {
        VARINT => r.varint().map(drop),
        FIXED64 => r.take(8).map(drop),
        LEN => r.len_delimited().map(drop),
        FIXED32 => r.take(4).map(drop),
        _ => Err(format!("unsupported wire type {wire} at byte {at}")),
    }
}
