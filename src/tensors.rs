//! Named tensors from safetensors files (reference cases, exported weights,
//! parameter files).
//!
//! [`TensorFile`] reads a file once, checks its header against its size, and
//! hands out tensors by name as `(shape, values)`; [`read_f32`] / [`read_f64`]
//! do both steps for one tensor. Every error names the file and, where there
//! is one, the tensor.

use crate::error::{Error, Result};
use crate::shape::{fmt_shape, Shape};
use safetensors::{Dtype, SafeTensorError, SafeTensors};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The bytes of one safetensors file.
pub struct TensorFile {
    path: PathBuf,
    bytes: Vec<u8>,
}

/// One tensor as stored: its dtype, shape and little-endian bytes.
pub struct RawTensor<'a> {
    pub name: String,
    pub dtype: Dtype,
    pub shape: Shape,
    pub bytes: &'a [u8],
}

impl TensorFile {
    /// Reads the whole file and checks its header: a file cut short, one with
    /// bytes appended, or one whose header is not safetensors JSON is refused.
    pub fn open(path: &Path) -> Result<TensorFile> {
        let bytes = std::fs::read(path).map_err(|e| Error::Io {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let file = TensorFile {
            path: path.to_path_buf(),
            bytes,
        };
        file.parse()?;
        Ok(file)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn parse(&self) -> Result<SafeTensors<'_>> {
        SafeTensors::deserialize(&self.bytes).map_err(|e| {
            Error::Other(format!(
                "`{}` is not a valid safetensors file: {}",
                self.path.display(),
                self.explain(&e)
            ))
        })
    }

    /// The header problem in words (the crate's own texts name no sizes).
    fn explain(&self, e: &SafeTensorError) -> String {
        let len = self.bytes.len();
        let header = self
            .bytes
            .get(..8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")));
        match (e, header) {
            (SafeTensorError::HeaderTooSmall, _) => {
                format!("it has {len} bytes, fewer than the 8 that give the header size (truncated)")
            }
            (SafeTensorError::InvalidHeaderLength, Some(n)) => format!(
                "its header claims {n} bytes but only {} follow the size field (truncated, or not safetensors)",
                len - 8
            ),
            (SafeTensorError::MetadataIncompleteBuffer, Some(n)) => format!(
                "the tensor data after the header is {} bytes, which is not what the header describes (truncated or corrupted)",
                len as u64 - 8 - n
            ),
            (SafeTensorError::InvalidHeader(_), _) => "its header is not UTF-8 (corrupted)".into(),
            (SafeTensorError::InvalidHeaderDeserialization(j), _) => {
                format!("its header is not valid safetensors JSON ({j})")
            }
            (other, _) => other.to_string(),
        }
    }

    /// The tensor names, sorted.
    pub fn names(&self) -> Result<Vec<String>> {
        let mut names: Vec<String> = self
            .parse()?
            .names()
            .into_iter()
            .map(String::from)
            .collect();
        names.sort();
        Ok(names)
    }

    /// The header's `__metadata__` entries (empty when it has none).
    pub fn metadata(&self) -> Result<BTreeMap<String, String>> {
        let (_, meta) = SafeTensors::read_metadata(&self.bytes).map_err(|e| {
            Error::Other(format!("`{}`: {}", self.path.display(), self.explain(&e)))
        })?;
        Ok(meta
            .metadata()
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    /// Every tensor as stored, sorted by name.
    pub fn raw(&self) -> Result<Vec<RawTensor<'_>>> {
        let mut all: Vec<RawTensor> = self
            .parse()?
            .tensors()
            .into_iter()
            .map(|(name, view)| RawTensor {
                name,
                dtype: view.dtype(),
                shape: view.shape().to_vec(),
                bytes: view.data(),
            })
            .collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(all)
    }

    /// Tensor `name`, which must be stored as F32.
    pub fn f32(&self, name: &str) -> Result<(Shape, Vec<f32>)> {
        self.read(&self.parse()?, name, &[Dtype::F32], f32_le)
    }

    /// Every tensor, each stored as F32, by name; one error for the first that is not.
    pub fn all_f32(&self) -> Result<BTreeMap<String, (Shape, Vec<f32>)>> {
        let st = self.parse()?;
        let mut out = BTreeMap::new();
        for name in st.names() {
            let t = self.read(&st, name, &[Dtype::F32], f32_le)?;
            out.insert(name.to_string(), t);
        }
        Ok(out)
    }

    /// Tensor `name` as f64; F32 values are widened exactly.
    pub fn f64(&self, name: &str) -> Result<(Shape, Vec<f64>)> {
        self.read(
            &self.parse()?,
            name,
            &[Dtype::F64, Dtype::F32],
            |b, dtype| match dtype {
                Dtype::F32 => f32_le(b, dtype) as f64,
                _ => f64::from_le_bytes(b.try_into().expect("8-byte chunk")),
            },
        )
    }

    fn read<T>(
        &self,
        st: &SafeTensors<'_>,
        name: &str,
        accepted: &[Dtype],
        decode: impl Fn(&[u8], Dtype) -> T,
    ) -> Result<(Shape, Vec<T>)> {
        let here = || format!("tensor `{name}` in `{}`", self.path.display());
        let view = st.tensor(name).map_err(|_| {
            let mut names: Vec<&str> = st.names();
            names.sort();
            Error::Other(format!(
                "{}: no such tensor (the file has {})",
                here(),
                names.join(", ")
            ))
        })?;
        let dtype = view.dtype();
        if !accepted.contains(&dtype) {
            let want: Vec<String> = accepted.iter().map(|d| d.to_string()).collect();
            return Err(Error::Other(format!(
                "{}: stored as {dtype}, expected {}",
                here(),
                want.join(" or ")
            )));
        }
        let width = dtype.bitsize() / 8;
        let shape = view.shape().to_vec();
        let data = view.data();
        if data.len() != crate::shape::count(&shape) * width {
            return Err(Error::Other(format!(
                "{}: shape {} needs {} bytes, the file holds {}",
                here(),
                fmt_shape(&shape),
                crate::shape::count(&shape) * width,
                data.len()
            )));
        }
        let values = data.chunks_exact(width).map(|b| decode(b, dtype)).collect();
        Ok((shape, values))
    }
}

fn f32_le(b: &[u8], _: Dtype) -> f32 {
    f32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// Reads one F32 tensor: `(shape, values)`.
pub fn read_f32(path: &Path, name: &str) -> Result<(Shape, Vec<f32>)> {
    TensorFile::open(path)?.f32(name)
}

/// Reads one F64 (or F32, widened) tensor: `(shape, values)`.
pub fn read_f64(path: &Path, name: &str) -> Result<(Shape, Vec<f64>)> {
    TensorFile::open(path)?.f64(name)
}
