//! Blob: an N-d array of f32 `data` with a same-shaped `diff` (its gradient),
//! as in Caffe. Storage is host memory; a device backend keeps its own copy
//! behind the same API.
//!
//! `data` is reference-counted so that a Split can hand its bottom's values
//! to its tops without copying ([`Blob::share_data`]); writing through
//! [`Blob::data_mut`] copies first only while the values are shared.

use crate::shape::{count, fmt_shape, Shape};
use std::sync::Arc;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Blob {
    shape: Shape,
    data: Arc<Vec<f32>>,
    diff: Vec<f32>,
}

impl Blob {
    /// A zero-filled blob.
    pub fn new(shape: &[usize]) -> Blob {
        let n = count(shape);
        Blob {
            shape: shape.to_vec(),
            data: Arc::new(vec![0.0; n]),
            diff: vec![0.0; n],
        }
    }

    /// A blob holding `data` (diff zeroed); `data.len()` must equal the shape's count.
    pub fn from_data(shape: &[usize], data: Vec<f32>) -> Blob {
        assert_eq!(
            count(shape),
            data.len(),
            "Blob::from_data: shape {} vs {} values",
            fmt_shape(shape),
            data.len()
        );
        let diff = vec![0.0; data.len()];
        Blob {
            shape: shape.to_vec(),
            data: Arc::new(data),
            diff,
        }
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Extent of axis `i` (Caffe's `shape(i)`; missing trailing axes read as 1).
    pub fn dim(&self, i: usize) -> usize {
        self.shape.get(i).copied().unwrap_or(1)
    }

    pub fn count(&self) -> usize {
        count(&self.shape)
    }

    /// Elements from axis `start` on (Caffe's `count(start)`).
    pub fn count_from(&self, start: usize) -> usize {
        count(&self.shape[start.min(self.shape.len())..])
    }

    /// Changes the shape, keeping the allocation when the count does not grow.
    pub fn reshape(&mut self, shape: &[usize]) {
        let n = count(shape);
        self.shape = shape.to_vec();
        Arc::make_mut(&mut self.data).resize(n, 0.0);
        self.diff.resize(n, 0.0);
    }

    pub fn data(&self) -> &[f32] {
        &self.data
    }
    /// The values for writing; copies them first if they are shared.
    pub fn data_mut(&mut self) -> &mut [f32] {
        Arc::make_mut(&mut self.data).as_mut_slice()
    }
    pub fn diff(&self) -> &[f32] {
        &self.diff
    }
    pub fn diff_mut(&mut self) -> &mut [f32] {
        &mut self.diff
    }

    /// The values (read) and the diff (written) at once; never copies shared values.
    pub fn data_and_diff_mut(&mut self) -> (&[f32], &mut [f32]) {
        (&self.data[..], &mut self.diff)
    }

    /// Values and diff both writable (solver updates), copying shared values first.
    pub fn data_mut_and_diff_mut(&mut self) -> (&mut [f32], &mut [f32]) {
        (Arc::make_mut(&mut self.data).as_mut_slice(), &mut self.diff)
    }

    pub fn zero_diff(&mut self) {
        self.diff.fill(0.0);
    }

    /// Replaces this blob's data with another's (shapes may differ only in form).
    pub fn copy_data_from(&mut self, other: &Blob) {
        self.data_mut().copy_from_slice(&other.data);
    }

    /// Makes this blob's values those of `other` without copying them (Split).
    pub fn share_data(&mut self, other: &Blob) {
        debug_assert_eq!(self.count(), other.count());
        self.data = Arc::clone(&other.data);
    }

    /// Drops a shared view of another blob's values (taken by [`Blob::share_data`]),
    /// so that the owner can write without copying. Until values are shared or
    /// written again, `data()` is empty.
    pub fn release_shared_data(&mut self) {
        if Arc::strong_count(&self.data) > 1 {
            self.data = Arc::new(Vec::new());
        }
    }

    /// Σ x² of the data, accumulated in f64.
    pub fn sumsq_data(&self) -> f64 {
        self.data.iter().map(|&v| (v as f64) * (v as f64)).sum()
    }

    /// Σ x² of the diff, accumulated in f64.
    pub fn sumsq_diff(&self) -> f64 {
        self.diff.iter().map(|&v| (v as f64) * (v as f64)).sum()
    }
}
