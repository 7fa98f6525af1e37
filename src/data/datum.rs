//! Caffe's `Datum` record (one sample of a Data-layer database), read and
//! written as protobuf wire format without a protobuf library.
//!
//! Fields: channels = 1, height = 2, width = 3 (varint int32), data = 4 (bytes,
//! C·H·W uint8 in C-major order, or an encoded image when `encoded`),
//! label = 5 (varint int32), float_data = 6 (repeated float, packed or not),
//! encoded = 7 (varint bool). A tag is `field << 3 | wire_type`.

/// One decoded `Datum`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Datum {
    pub channels: i32,
    pub height: i32,
    pub width: i32,
    /// Raw C×H×W bytes, or the bytes of a PNG/JPEG file when `encoded`.
    pub data: Vec<u8>,
    pub label: i32,
    /// Float samples, used instead of `data` by some converters.
    pub float_data: Vec<f32>,
    pub encoded: bool,
}

pub(crate) const VARINT: u8 = 0;
pub(crate) const FIXED64: u8 = 1;
pub(crate) const LEN: u8 = 2;
pub(crate) const FIXED32: u8 = 5;

impl Datum {
    /// Serialises in field order, as Caffe writes it: float_data unpacked
    /// (proto2 `repeated float` without `[packed = true]`), `encoded` only when set.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.data.len() + 4 * self.float_data.len() + 24);
        for (field, v) in [(1, self.channels), (2, self.height), (3, self.width)] {
            put_tag(&mut out, field, VARINT);
            put_varint(&mut out, v as i64 as u64);
        }
        put_tag(&mut out, 4, LEN);
        put_varint(&mut out, self.data.len() as u64);
        out.extend_from_slice(&self.data);
        put_tag(&mut out, 5, VARINT);
        // Negative int32 values are sign-extended to ten varint bytes.
        put_varint(&mut out, self.label as i64 as u64);
        for f in &self.float_data {
            put_tag(&mut out, 6, FIXED32);
            out.extend_from_slice(&f.to_le_bytes());
        }
        if self.encoded {
            put_tag(&mut out, 7, VARINT);
            put_varint(&mut out, 1);
        }
        out
    }

    /// Parses a serialised `Datum`; unknown fields are skipped, as protobuf does.
    pub fn decode(bytes: &[u8]) -> Result<Datum, String> {
        let mut r = Reader { bytes, pos: 0 };
        let mut d = Datum::default();
        while r.pos < bytes.len() {
            let at = r.pos;
            let tag = r.varint()?;
            let (field, wire) = (tag >> 3, (tag & 7) as u8);
            match (field, wire) {
                (1, VARINT) => d.channels = r.varint()? as i32,
                (2, VARINT) => d.height = r.varint()? as i32,
                (3, VARINT) => d.width = r.varint()? as i32,
                (4, LEN) => d.data = r.len_delimited()?.to_vec(),
                (5, VARINT) => d.label = r.varint()? as i32,
                (6, FIXED32) => d.float_data.push(f32::from_le_bytes(r.fixed::<4>()?)),
                (6, LEN) => {
                    let packed = r.len_delimited()?;
                    if packed.len() % 4 != 0 {
                        return Err(format!(
                            "packed float_data at byte {at} has {} bytes, not a multiple of 4",
                            packed.len()
                        ));
                    }
                    d.float_data.extend(
                        packed
                            .chunks_exact(4)
                            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
                    );
                }
                (7, VARINT) => d.encoded = r.varint()? != 0,
                (1..=7, _) => {
                    return Err(format!(
                        "field {field} at byte {at} has wire type {wire}, which a Datum never uses"
                    ))
                }
                (_, VARINT) => {
                    r.varint()?;
                }
                (_, FIXED64) => {
                    r.fixed::<8>()?;
                }
                (_, LEN) => {
                    r.len_delimited()?;
                }
                (_, FIXED32) => {
                    r.fixed::<4>()?;
                }
                _ => return Err(format!("unsupported wire type {wire} at byte {at}")),
            }
        }
        Ok(d)
    }
}

impl Datum {
    /// C, H, W of the sample. An encoded image gives H×W, and C unless
    /// `forced_channels` (force_color 3, force_gray 1) says otherwise; raw
    /// data must hold exactly C·H·W bytes or floats.
    pub fn sample_shape(&self, forced_channels: Option<usize>) -> Result<[usize; 3], String> {
        if self.encoded {
            let [native, h, w] = super::image_dims(&self.data)
                .map_err(|e| format!("holds an undecodable image: {e}"))?;
            return Ok([forced_channels.unwrap_or(native), h, w]);
        }
        let (c, h, w) = (self.channels, self.height, self.width);
        if c <= 0 || h <= 0 || w <= 0 {
            return Err(format!("has shape {c}x{h}x{w}"));
        }
        // Checked: three i32 factors can pass 2^64 (2^93 at most).
        let n = (c as usize)
            .checked_mul(h as usize)
            .and_then(|n| n.checked_mul(w as usize))
            .ok_or_else(|| format!("has shape {c}x{h}x{w}, more values than memory holds"))?;
        let (what, got) = if self.float_data.is_empty() {
            ("data bytes", self.data.len())
        } else {
            ("float_data values", self.float_data.len())
        };
        if got != n {
            return Err(format!(
                "is {c}x{h}x{w} = {n} values but holds {got} {what}"
            ));
        }
        Ok([c as usize, h as usize, w as usize])
    }
}

fn put_tag(out: &mut Vec<u8>, field: u32, wire: u8) {
    put_varint(out, (u64::from(field) << 3) | u64::from(wire));
}

/// Base-128 varint: 7 bits per byte, low group first, high bit = "more follows".
fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A cursor over protobuf wire bytes (shared with the `BlobProto` reader).
pub(crate) struct Reader<'a> {
    pub(crate) bytes: &'a [u8],
    pub(crate) pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn varint(&mut self) -> Result<u64, String> {
        let start = self.pos;
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let Some(&b) = self.bytes.get(self.pos) else {
                return Err(format!("truncated varint at byte {start}"));
            };
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(format!("varint at byte {start} is longer than 10 bytes"))
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        let Some(end) = end else {
            return Err(format!(
                "field at byte {} needs {n} bytes but only {} remain",
                self.pos,
                self.bytes.len() - self.pos
            ));
        };
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    pub(crate) fn fixed<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    pub(crate) fn len_delimited(&mut self) -> Result<&'a [u8], String> {
        let n = self.varint()?;
        self.take(usize::try_from(n).map_err(|_| format!("length {n} is too large"))?)
    }
}
