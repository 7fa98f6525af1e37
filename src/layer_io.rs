//! The blobs one layer call reads and writes, borrowed from the net.
//!
//! A top may be the same blob as the bottom at its index (in place). Layers
//! that allow that read and write through [`LayerIo::top_mut`] alone; the
//! others take disjoint bottoms and tops with [`LayerIo::forward_split`] /
//! [`LayerIo::backward_split`]. The graph refuses in-place use of a layer
//! whose `supports_in_place` is false, so the splits never see aliasing.

use crate::blob::Blob;
use crate::netdef::Phase;
use rand_chacha::ChaCha8Rng;

/// The random generator used for fillers, dropout, shuffling and mirroring.
pub type Rng = ChaCha8Rng;

/// Per-call context: the phase the net runs in and its random stream.
pub struct RunCtx<'a> {
    pub phase: Phase,
    pub rng: &'a mut Rng,
}

pub struct LayerIo<'a> {
    /// Distinct blobs of the call.
    blobs: Vec<&'a mut Blob>,
    bottom: Vec<usize>,
    top: Vec<usize>,
    params: Vec<&'a mut Blob>,
}

impl<'a> LayerIo<'a> {
    /// Brings every blob of the call to the host (a layer's CPU path in GPU
    /// mode); nothing to do in a build without CUDA.
    #[inline]
    pub fn sync_to_host(&mut self) {
        if cfg!(feature = "cuda") {
            self.blobs.iter_mut().for_each(|b| b.sync_to_host());
            self.params.iter_mut().for_each(|b| b.sync_to_host());
        }
    }

    /// Borrows bottoms and tops from the net's blob store by id; bottom ids
    /// are distinct (splits guarantee it), a top id may repeat its bottom's.
    pub fn from_store(
        store: &'a mut [Blob],
        bottom: &[usize],
        top: &[usize],
        params: Vec<&'a mut Blob>,
    ) -> LayerIo<'a> {
        let mut wanted: Vec<usize> = bottom.iter().chain(top).copied().collect();
        wanted.sort_unstable();
        wanted.dedup();
        let blobs = select_mut(store, &wanted);
        let pos = |id: &usize| {
            wanted
                .binary_search(id)
                .expect("LayerIo: blob id out of range")
        };
        LayerIo {
            bottom: bottom.iter().map(pos).collect(),
            top: top.iter().map(pos).collect(),
            blobs,
            params,
        }
    }

    /// A call over separate bottoms and tops (tests, gradient checks).
    pub fn new(
        bottom: Vec<&'a mut Blob>,
        top: Vec<&'a mut Blob>,
        params: Vec<&'a mut Blob>,
    ) -> LayerIo<'a> {
        let nb = bottom.len();
        let nt = top.len();
        let blobs: Vec<&'a mut Blob> = bottom.into_iter().chain(top).collect();
        LayerIo {
            blobs,
            bottom: (0..nb).collect(),
            top: (nb..nb + nt).collect(),
            params,
        }
    }

    pub fn num_bottoms(&self) -> usize {
        self.bottom.len()
    }
    pub fn num_tops(&self) -> usize {
        self.top.len()
    }
    pub fn num_params(&self) -> usize {
        self.params.len()
    }

    /// Whether top `i` is the same blob as bottom `i`.
    pub fn in_place(&self, i: usize) -> bool {
        self.bottom.get(i) == self.top.get(i)
    }

    pub fn bottom(&self, i: usize) -> &Blob {
        self.blobs[self.bottom[i]]
    }
    pub fn bottom_mut(&mut self, i: usize) -> &mut Blob {
        self.blobs[self.bottom[i]]
    }
    pub fn top(&self, i: usize) -> &Blob {
        self.blobs[self.top[i]]
    }
    pub fn top_mut(&mut self, i: usize) -> &mut Blob {
        self.blobs[self.top[i]]
    }
    pub fn param(&self, i: usize) -> &Blob {
        self.params[i]
    }
    pub fn param_mut(&mut self, i: usize) -> &mut Blob {
        self.params[i]
    }

    /// Bottom `i` and learnable blob `p`, both mutable.
    pub fn bottom_and_param_mut(&mut self, i: usize, p: usize) -> (&mut Blob, &mut Blob) {
        (&mut *self.blobs[self.bottom[i]], &mut *self.params[p])
    }

    /// Top `i` (mutable) and learnable blob `p` (shared).
    pub fn top_mut_and_param(&mut self, i: usize, p: usize) -> (&mut Blob, &Blob) {
        (&mut *self.blobs[self.top[i]], &*self.params[p])
    }

    /// Bottom `i` (shared) and top `j` (mutable), which must be distinct blobs.
    pub fn bottom_and_top_mut(&mut self, i: usize, j: usize) -> (&Blob, &mut Blob) {
        let (b, t) = (self.bottom[i], self.top[j]);
        assert_ne!(b, t, "bottom_and_top_mut on an in-place pair");
        let (lo, hi) = self.blobs.split_at_mut(b.max(t));
        if b < t {
            (&*lo[b], &mut *hi[0])
        } else {
            (&*hi[0], &mut *lo[t])
        }
    }

    /// Top `j` (shared) and bottom `i` (mutable), which must be distinct blobs.
    pub fn top_and_bottom_mut(&mut self, j: usize, i: usize) -> (&Blob, &mut Blob) {
        let (b, t) = (self.bottom[i], self.top[j]);
        assert_ne!(b, t, "top_and_bottom_mut on an in-place pair");
        let (lo, hi) = self.blobs.split_at_mut(b.max(t));
        if t < b {
            (&*lo[t], &mut *hi[0])
        } else {
            (&*hi[0], &mut *lo[b])
        }
    }

    /// Forward of an element-wise layer: makes top `i`'s data a copy of
    /// bottom `i`'s (nothing to do in place), to be transformed in place.
    pub fn copy_bottom_data_to_top(&mut self, i: usize) {
        if !self.in_place(i) {
            let (b, t) = self.bottom_and_top_mut(i, i);
            t.data_mut().copy_from_slice(b.data());
        }
    }

    /// Backward of an element-wise layer: makes bottom `i`'s diff a copy of
    /// top `i`'s (nothing to do in place), to be transformed in place.
    pub fn copy_top_diff_to_bottom(&mut self, i: usize) {
        if !self.in_place(i) {
            let (t, b) = self.top_and_bottom_mut(i, i);
            b.diff_mut().copy_from_slice(t.diff());
        }
    }

    /// All bottoms shared, all tops mutable, and the params (forward of a
    /// layer that never runs in place).
    pub fn forward_split(&mut self) -> (Vec<&Blob>, Vec<&mut Blob>, &mut [&'a mut Blob]) {
        let (shared, mutable) = partition(&mut self.blobs, &self.bottom, &self.top);
        (shared, mutable, &mut self.params)
    }

    /// All bottoms mutable, all tops shared, and the params (backward).
    pub fn backward_split(&mut self) -> (Vec<&mut Blob>, Vec<&Blob>, &mut [&'a mut Blob]) {
        let (shared, mutable) = partition(&mut self.blobs, &self.top, &self.bottom);
        (mutable, shared, &mut self.params)
    }
}

/// Splits `blobs` into read-only ones (indices `shared_idx`) and mutable ones
/// (`mut_idx`), each list in index order. The two index sets must be disjoint.
fn partition<'b>(
    blobs: &'b mut [&mut Blob],
    shared_idx: &[usize],
    mut_idx: &[usize],
) -> (Vec<&'b Blob>, Vec<&'b mut Blob>) {
    assert!(
        shared_idx.iter().all(|i| !mut_idx.contains(i)),
        "forward_split/backward_split on a layer running in place"
    );
    let mut shared: Vec<Option<&Blob>> = vec![None; shared_idx.len()];
    let mut mutable: Vec<Option<&mut Blob>> = (0..mut_idx.len()).map(|_| None).collect();
    for (pos, blob) in blobs.iter_mut().enumerate() {
        if let Some(k) = mut_idx.iter().position(|&i| i == pos) {
            mutable[k] = Some(&mut **blob);
        } else if let Some(k) = shared_idx.iter().position(|&i| i == pos) {
            shared[k] = Some(&**blob);
        }
    }
    (
        shared
            .into_iter()
            .map(|b| b.expect("every shared index bound"))
            .collect(),
        mutable
            .into_iter()
            .map(|b| b.expect("every mutable index bound"))
            .collect(),
    )
}

/// Mutable references to `store[ids[0]], store[ids[1]], ...` in that order; ids must be distinct.
pub fn select_mut<'b, T>(store: &'b mut [T], ids: &[usize]) -> Vec<&'b mut T> {
    let mut slots: Vec<Option<&'b mut T>> = (0..ids.len()).map(|_| None).collect();
    for (id, item) in store.iter_mut().enumerate() {
        if let Some(k) = ids.iter().position(|&i| i == id) {
            slots[k] = Some(item);
        }
    }
    slots
        .into_iter()
        .map(|s| s.expect("select_mut: id out of range or repeated"))
        .collect()
}
