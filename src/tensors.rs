//! Named tensors from safetensors files (reference cases, exported weights).
//!
//! [`TensorFile`] reads a file once and hands out tensors by name as
//! `(shape, values)`; [`read_f32`] / [`read_f64`] do both steps for one tensor.
//! Every error names the file and, where there is one, the tensor.

use crate::error::{Error, Result};
use crate::layers::{fmt_shape, Shape};
use safetensors::{Dtype, SafeTensors};
use std::path::{Path, PathBuf};

/// The bytes of one safetensors file.
pub struct TensorFile {
    path: PathBuf,
    bytes: Vec<u8>,
}

impl TensorFile {
    /// Reads the whole file and checks its header.
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

    fn parse(&self) -> Result<SafeTensors<'_>> {
        SafeTensors::deserialize(&self.bytes).map_err(|e| {
            Error::Other(format!(
                "`{}` is not a valid safetensors file: {e}",
                self.path.display()
            ))
        })
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

    /// Tensor `name`, which must be stored as F32.
    pub fn f32(&self, name: &str) -> Result<(Shape, Vec<f32>)> {
        self.read(name, &[Dtype::F32], |b, dtype| {
            debug_assert_eq!(dtype, Dtype::F32);
            f32::from_le_bytes([b[0], b[1], b[2], b[3]])
        })
    }

    /// Tensor `name` as f64; F32 values are widened exactly.
    pub fn f64(&self, name: &str) -> Result<(Shape, Vec<f64>)> {
        self.read(name, &[Dtype::F64, Dtype::F32], |b, dtype| match dtype {
            Dtype::F32 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64,
            _ => f64::from_le_bytes(b.try_into().expect("8-byte chunk")),
        })
    }

    fn read<T>(
        &self,
        name: &str,
        accepted: &[Dtype],
        decode: impl Fn(&[u8], Dtype) -> T,
    ) -> Result<(Shape, Vec<T>)> {
        let st = self.parse()?;
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
        if data.len() != crate::layers::count(&shape) * width {
            return Err(Error::Other(format!(
                "{}: shape {} needs {} bytes, the file holds {}",
                here(),
                fmt_shape(&shape),
                crate::layers::count(&shape) * width,
                data.len()
            )));
        }
        let values = data.chunks_exact(width).map(|b| decode(b, dtype)).collect();
        Ok((shape, values))
    }
}

/// Reads one F32 tensor: `(shape, values)`.
pub fn read_f32(path: &Path, name: &str) -> Result<(Shape, Vec<f32>)> {
    TensorFile::open(path)?.f32(name)
}

/// Reads one F64 (or F32, widened) tensor: `(shape, values)`.
pub fn read_f64(path: &Path, name: &str) -> Result<(Shape, Vec<f64>)> {
    TensorFile::open(path)?.f64(name)
}
