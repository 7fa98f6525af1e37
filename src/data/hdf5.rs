//! HDF5 files as Caffe's HDF5Data and HDF5Output layers use them: named datasets of
//! float or double (integers are converted), any rank, the first axis counting rows.
//! Read and written with the pure-Rust `hdf5-pure` crate (no system libhdf5).
//!
//! Reading an untrusted file: a dataset's size (rows × row values × element size) is
//! checked against the file's length before anything is read, allowing for the
//! most that deflate can expand (≈1032:1); the crate is run under `catch_unwind`
//! so that a malformed file it does not anticipate becomes an error, never an abort.

use hdf5_pure::{DType, File, FileBuilder};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

/// The most one byte of a deflate stream can expand to.
const MAX_EXPANSION: u64 = 1032;

/// A dataset read as f32: its shape (first axis = rows) and values, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl Dataset {
    pub fn rows(&self) -> usize {
        self.shape.first().copied().unwrap_or(0)
    }
    /// Values per row.
    pub fn row_len(&self) -> usize {
        self.shape.iter().skip(1).product()
    }
}

/// Reads the datasets `names` of the file at `path`, as f32. Errors name the file
/// and the dataset.
pub fn read(path: &Path, names: &[&str]) -> Result<Vec<Dataset>, String> {
    let shown = path.display();
    let file_len = std::fs::metadata(path)
        .map_err(|e| format!("cannot read HDF5 file `{shown}`: {e}"))?
        .len();
    let result = catch_unwind(AssertUnwindSafe(|| -> Result<Vec<Dataset>, String> {
        let file =
            File::open(path).map_err(|e| format!("`{shown}` is not a readable HDF5 file: {e}"))?;
        names
            .iter()
            .map(|&name| {
                read_one(&file, name, file_len)
                    .map_err(|e| format!("`{shown}`, dataset `{name}`: {e}"))
            })
            .collect()
    }));
    result.unwrap_or_else(|_| {
        Err(format!(
            "`{shown}` is a malformed HDF5 file (the reader gave up)"
        ))
    })
}

fn read_one(file: &File, name: &str, file_len: u64) -> Result<Dataset, String> {
    let ds = file.dataset(name).map_err(|e| {
        let names = file
            .root()
            .datasets()
            .map(|d| d.join(", "))
            .unwrap_or_default();
        format!("cannot open it ({e}); the file's datasets: {names}")
    })?;
    let dims = ds.shape().map_err(|e| format!("unreadable shape: {e}"))?;
    if dims.is_empty() {
        return Err("is a scalar; HDF5Data needs at least one axis (rows)".into());
    }
    match ds
        .dtype()
        .map_err(|e| format!("unreadable datatype: {e}"))?
    {
        DType::F32
        | DType::F64
        | DType::I8
        | DType::I16
        | DType::I32
        | DType::I64
        | DType::U8
        | DType::U16
        | DType::U32
        | DType::U64 => {}
        other => {
            return Err(format!(
                "has datatype {other:?}; HDF5Data reads float, double or integer datasets"
            ))
        }
    }
    let elem = ds
        .element_size()
        .map_err(|e| format!("unreadable element size: {e}"))?;
    let count = dims.iter().try_fold(1u64, |a, &d| a.checked_mul(d));
    let bytes = count.and_then(|c| c.checked_mul(elem));
    match bytes {
        Some(b) if b <= file_len.saturating_mul(MAX_EXPANSION) && b <= isize::MAX as u64 => {}
        _ => {
            return Err(format!(
                "claims shape {dims:?} of {elem}-byte values, more than a {file_len}-byte file can hold"
            ))
        }
    }
    let data = ds
        .read_f32()
        .map_err(|e| format!("cannot read its values: {e}"))?;
    let shape: Vec<usize> = dims.iter().map(|&d| d as usize).collect();
    if data.len() != shape.iter().product::<usize>() {
        return Err(format!("holds {} values for shape {shape:?}", data.len()));
    }
    Ok(Dataset { shape, data })
}

/// Writes `datasets` (name, shape, f32 values) into a new file at `path`, replacing it.
pub fn write(path: &Path, datasets: &[(&str, &[usize], &[f32])]) -> Result<(), String> {
    let mut builder = FileBuilder::new();
    for &(name, shape, data) in datasets {
        let dims: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
        builder
            .create_dataset(name)
            .with_f32_data(data)
            .with_shape(&dims);
    }
    builder
        .write(path)
        .map_err(|e| format!("cannot write HDF5 file `{}`: {e}", path.display()))
}
