//! Blob: an N-d array of f32 `data` with a same-shaped `diff` (its gradient),
//! as in Caffe.
//!
//! `data` is reference-counted so that a Split can hand its bottom's values
//! to its tops without copying ([`Blob::share_data`]); writing through
//! [`Blob::data_mut`] copies first only while the values are shared.
//!
//! Storage follows Caffe's SyncedMemory. With `--features cuda` each of data
//! and diff also has a device copy and a head ([`crate::backend::cuda::Head`]:
//! at the host, at the device, or synced): the writable host accessors bring
//! device values down first and mark the host copy current, the device
//! accessors do the same the other way, and [`Blob::sync_to_host`] brings
//! both down before a layer without a device path reads them through
//! [`Blob::data`] / [`Blob::diff`]. A build without CUDA has host storage only:
//! the accessors below are plain slice borrows, with no head to check.
//!
//! Every write of the values gives the blob a new [`Blob::data_stamp`], so a
//! layer can keep something derived from its weights (a convolution's packed
//! copy) and know without comparing values whether it is still current.
//!
//! Host values are also offered as `ndarray` views ([`Blob::data_view`], ...)
//! for library users and for tests' reference loops (`x[[n, c, h, w]]`
//! instead of index arithmetic).

#[cfg(feature = "cuda")]
use crate::backend::cuda::{Head, Mirror};
use crate::shape::{count, fmt_shape, Shape};
use ndarray::{ArrayViewD, ArrayViewMutD, IxDyn};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Blob {
    shape: Shape,
    data: Arc<Vec<f32>>,
    diff: Vec<f32>,
    /// Set by [`Blob::drop_diff`]: a reshape leaves the diff empty.
    without_diff: bool,
    stamp: Stamp,
    #[cfg(feature = "cuda")]
    data_device: Mirror,
    #[cfg(feature = "cuda")]
    diff_device: Mirror,
}

impl Blob {
    /// A zero-filled blob.
    pub fn new(shape: &[usize]) -> Blob {
        let n = count(shape);
        Blob::from_parts(shape, vec![0.0; n], vec![0.0; n])
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
        Blob::from_parts(shape, data, diff)
    }

    fn from_parts(shape: &[usize], data: Vec<f32>, diff: Vec<f32>) -> Blob {
        Blob {
            shape: shape.to_vec(),
            data: Arc::new(data),
            diff,
            without_diff: false,
            stamp: Stamp::new(),
            #[cfg(feature = "cuda")]
            data_device: Mirror::default(),
            #[cfg(feature = "cuda")]
            diff_device: Mirror::default(),
        }
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// A number that changes whenever the values may have changed (any write
    /// access, a reshape, shared values taken over) and never repeats across
    /// blobs: equal stamps mean equal values (a clone keeps its original's).
    pub fn data_stamp(&self) -> u64 {
        self.stamp.0
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
        self.sync_to_host();
        let n = count(shape);
        self.shape = shape.to_vec();
        Arc::make_mut(&mut self.data).resize(n, 0.0);
        if !self.without_diff {
            self.diff.resize(n, 0.0);
        }
        self.host_data_written();
        self.host_diff_written();
    }

    /// The values on the host. With CUDA, the host copy must be current
    /// ([`Blob::sync_to_host`] after device writes).
    #[inline]
    pub fn data(&self) -> &[f32] {
        #[cfg(feature = "cuda")]
        debug_assert_ne!(
            self.data_device.head(),
            Head::Device,
            "data read on the host while only the device copy is current"
        );
        &self.data
    }
    /// The values for writing; copies them first if they are shared.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [f32] {
        self.host_data_for_write();
        Arc::make_mut(&mut self.data).as_mut_slice()
    }
    #[inline]
    pub fn diff(&self) -> &[f32] {
        #[cfg(feature = "cuda")]
        debug_assert_ne!(
            self.diff_device.head(),
            Head::Device,
            "diff read on the host while only the device copy is current"
        );
        &self.diff
    }
    #[inline]
    pub fn diff_mut(&mut self) -> &mut [f32] {
        self.host_diff_for_write();
        &mut self.diff
    }

    /// The values (read) and the diff (written) at once; never copies shared values.
    #[inline]
    pub fn data_and_diff_mut(&mut self) -> (&[f32], &mut [f32]) {
        self.sync_data_to_host();
        self.host_diff_for_write();
        (&self.data[..], &mut self.diff)
    }

    /// Values and diff both writable (solver updates), copying shared values first.
    #[inline]
    pub fn data_mut_and_diff_mut(&mut self) -> (&mut [f32], &mut [f32]) {
        self.host_data_for_write();
        self.host_diff_for_write();
        (Arc::make_mut(&mut self.data).as_mut_slice(), &mut self.diff)
    }

    /// The data as an N-d view of the shape (row-major).
    pub fn data_view(&self) -> ArrayViewD<'_, f32> {
        let shape = IxDyn(&self.shape);
        ArrayViewD::from_shape(shape, self.data()).expect("blob data matches its shape")
    }
    /// The data as a writable N-d view (copies shared values first).
    pub fn data_view_mut(&mut self) -> ArrayViewMutD<'_, f32> {
        let shape = IxDyn(&self.shape);
        ArrayViewMutD::from_shape(shape, self.data_mut()).expect("blob data matches its shape")
    }
    /// The diff as an N-d view of the shape.
    pub fn diff_view(&self) -> ArrayViewD<'_, f32> {
        let shape = IxDyn(&self.shape);
        ArrayViewD::from_shape(shape, self.diff()).expect("blob diff matches its shape")
    }
    /// The diff as a writable N-d view.
    pub fn diff_view_mut(&mut self) -> ArrayViewMutD<'_, f32> {
        let shape = IxDyn(&self.shape);
        ArrayViewMutD::from_shape(shape, self.diff_mut()).expect("blob diff matches its shape")
    }

    pub fn zero_diff(&mut self) {
        self.diff_mut().fill(0.0);
    }

    /// Replaces this blob's data with another's (shapes may differ only in form).
    pub fn copy_data_from(&mut self, other: &Blob) {
        self.data_mut().copy_from_slice(other.data());
    }

    /// Makes this blob's values those of `other` without copying them (Split).
    /// With CUDA the device copy and head are taken over too (the device side
    /// copies on write, as the host side does through the shared `Arc`).
    pub fn share_data(&mut self, other: &Blob) {
        debug_assert_eq!(self.count(), other.count());
        self.data = Arc::clone(&other.data);
        self.stamp = other.stamp;
        #[cfg(feature = "cuda")]
        {
            self.data_device = other.data_device.clone();
        }
    }

    /// Drops a shared view of another blob's values (taken by [`Blob::share_data`]),
    /// so that the owner can write without copying. Until values are shared or
    /// written again, `data()` is empty.
    pub fn release_shared_data(&mut self) {
        if Arc::strong_count(&self.data) > 1 {
            self.data = Arc::new(Vec::new());
            self.stamp = Stamp::new();
            #[cfg(feature = "cuda")]
            {
                self.data_device = Mirror::default();
            }
        }
    }

    /// Takes the values out, for a net that recycles activation storage
    /// (`net/memory.rs`); `data()` is empty until [`Blob::give_data`].
    /// `None` where other blobs still view them (the last one to let go
    /// gets them).
    pub fn take_data(&mut self) -> Option<Vec<f32>> {
        let values = std::mem::take(&mut self.data);
        self.stamp = Stamp::new();
        #[cfg(feature = "cuda")]
        {
            self.data_device = Mirror::default();
        }
        Arc::try_unwrap(values).ok()
    }

    /// Gives the blob storage for its values: `values` resized to the
    /// blob's count (contents unspecified, as a layer writes its whole top).
    pub fn give_data(&mut self, mut values: Vec<f32>) {
        values.resize(self.count(), 0.0);
        self.data = Arc::new(values);
        self.host_data_written();
    }

    /// Frees the diff for good (a net that only runs forward): `diff()` is
    /// empty from here on, reshapes included.
    pub fn drop_diff(&mut self) {
        self.diff = Vec::new();
        self.without_diff = true;
        #[cfg(feature = "cuda")]
        {
            self.diff_device = Mirror::default();
        }
    }

    /// Σ x² of the data, accumulated in f64.
    pub fn sumsq_data(&self) -> f64 {
        self.data().iter().map(|&v| (v as f64) * (v as f64)).sum()
    }

    /// Σ x² of the diff, accumulated in f64.
    pub fn sumsq_diff(&self) -> f64 {
        self.diff().iter().map(|&v| (v as f64) * (v as f64)).sum()
    }

    /// Brings data and diff to the host where only the device copy is current
    /// (before a layer without a device path runs). Nothing to do without CUDA.
    #[inline(always)]
    pub fn sync_to_host(&mut self) {
        self.sync_data_to_host();
        #[cfg(feature = "cuda")]
        self.diff_device.to_host(&mut self.diff);
    }

    #[inline(always)]
    fn sync_data_to_host(&mut self) {
        #[cfg(feature = "cuda")]
        if self.data_device.head() == Head::Device {
            let data = Arc::make_mut(&mut self.data);
            self.data_device.to_host(data);
        }
    }

    #[inline(always)]
    fn host_data_for_write(&mut self) {
        self.sync_data_to_host();
        self.host_data_written();
    }

    #[inline(always)]
    fn host_diff_for_write(&mut self) {
        #[cfg(feature = "cuda")]
        self.diff_device.to_host(&mut self.diff);
        self.host_diff_written();
    }

    #[inline(always)]
    fn host_data_written(&mut self) {
        self.stamp = Stamp::new();
        #[cfg(feature = "cuda")]
        self.data_device.host_written();
    }

    #[inline(always)]
    fn host_diff_written(&mut self) {
        #[cfg(feature = "cuda")]
        self.diff_device.host_written();
    }
}

/// See [`Blob::data_stamp`]. It says nothing about the values themselves,
/// so blobs compare equal whatever their stamps.
#[derive(Debug, Clone, Copy)]
struct Stamp(u64);

impl Stamp {
    fn new() -> Stamp {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Stamp(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

impl Default for Stamp {
    fn default() -> Stamp {
        Stamp::new()
    }
}

impl PartialEq for Stamp {
    fn eq(&self, _: &Stamp) -> bool {
        true
    }
}

/// The device half of a blob (`--features cuda`).
#[cfg(feature = "cuda")]
impl Blob {
    /// Where the newest data are.
    pub fn data_head(&self) -> Head {
        self.data_device.head()
    }
    /// Where the newest diff is.
    pub fn diff_head(&self) -> Head {
        self.diff_device.head()
    }
    /// The data on the device, copied up when only the host copy is current.
    pub fn device_data(&mut self) -> &[f32] {
        self.data_device.to_device(&self.data)
    }
    /// The data on the device for writing: the host copy becomes stale.
    pub fn device_data_mut(&mut self) -> &mut [f32] {
        self.stamp = Stamp::new();
        self.data_device.device_mut(&self.data)
    }
    /// The diff on the device, copied up when only the host copy is current.
    pub fn device_diff(&mut self) -> &[f32] {
        self.diff_device.to_device(&self.diff)
    }
    /// The diff on the device for writing: the host copy becomes stale.
    pub fn device_diff_mut(&mut self) -> &mut [f32] {
        self.diff_device.device_mut(&self.diff)
    }
}
