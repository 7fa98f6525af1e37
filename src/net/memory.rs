//! Inference memory: a net that only runs forward (a deploy net extracting
//! features, `netrun time --forward-only`) needs a blob's values only from the
//! layer that writes them to the last layer that reads them, and no diff at
//! all. [`Net::recycle_activations`] turns that on: the diffs are freed, and
//! after each layer the blobs it was the last to use hand their storage to a
//! pool that the next layers' tops take from, so the activations of a whole
//! pass occupy about the largest set alive at once rather than their sum.
//!
//! Kept whole are the net's outputs (blobs no layer reads), the tops of layers
//! without bottoms and blobs no layer writes (inputs the caller writes before
//! each forward, data layers), and the blobs the caller names. Every other blob's `data()` is
//! empty between passes; reading one is the caller's mistake, which is why the
//! names a caller reads after a forward must be given.

use super::Net;
use crate::error::{Error, Result};

/// The recycling state of a net (see the module documentation).
#[derive(Debug, Default)]
pub(super) struct Recycling {
    /// Per node, the blobs whose storage goes back to the pool after it runs.
    last_use: Vec<Vec<usize>>,
    /// Per node, the tops that take storage from the pool before it runs
    /// (none for Split, whose tops view their bottom's values).
    needs_storage: Vec<Vec<usize>>,
    /// Storage let go by blobs past their last use.
    pool: Vec<Vec<f32>>,
}

impl Net {
    /// Runs the net for inference from here on: frees every diff and recycles
    /// activation storage between layers (see `net/memory.rs`). `keep` names
    /// the blobs the caller will read after a forward besides the outputs.
    /// [`Net::backward`] is refused afterwards.
    pub fn recycle_activations(&mut self, keep: &[&str]) -> Result<()> {
        let mut kept = vec![false; self.blobs.len()];
        for name in keep {
            let Some(i) = self.blob_index(name) else {
                return Err(Error::Other(format!(
                    "the net has no blob `{name}` to keep"
                )));
            };
            kept[i] = true;
        }
        let nodes = &self.graph.nodes;
        let mut last = vec![None; self.blobs.len()];
        let mut read = vec![false; self.blobs.len()];
        let mut written = vec![false; self.blobs.len()];
        for (n, node) in nodes.iter().enumerate() {
            for &b in node.bottoms.iter().chain(&node.tops) {
                last[b] = Some(n);
            }
            node.bottoms.iter().for_each(|&b| read[b] = true);
            node.tops.iter().for_each(|&t| written[t] = true);
            if node.bottoms.is_empty() {
                node.tops.iter().for_each(|&t| kept[t] = true);
            }
        }
        // A blob no layer writes holds what the caller put there.
        (kept.iter_mut().zip(&written)).for_each(|(k, &w)| *k |= !w);
        let mut recycling = Recycling {
            last_use: vec![Vec::new(); nodes.len()],
            needs_storage: vec![Vec::new(); nodes.len()],
            pool: Vec::new(),
        };
        for (b, last) in last.iter().enumerate() {
            if let Some(n) = *last {
                if read[b] && !kept[b] {
                    recycling.last_use[n].push(b);
                }
            }
        }
        for (n, node) in nodes.iter().enumerate() {
            if node.layer.type_name() != "Split" {
                recycling.needs_storage[n] = node.tops.clone();
            }
        }
        for (b, blob) in self.blobs.iter_mut().enumerate() {
            blob.drop_diff();
            if !kept[b] && read[b] {
                blob.take_data();
            }
        }
        self.params.iter_mut().for_each(|p| p.drop_diff());
        self.recycling = Some(recycling);
        Ok(())
    }

    /// Before layer `n` runs: storage for its tops that let theirs go.
    pub(super) fn take_storage(&mut self, n: usize) {
        let Some(r) = &mut self.recycling else {
            return;
        };
        for &t in &r.needs_storage[n] {
            let blob = &mut self.blobs[t];
            let count = blob.count();
            if blob.data().len() == count {
                continue;
            }
            // The smallest buffer that holds the top without growing.
            let best = (r.pool.iter().enumerate())
                .filter(|(_, v)| v.capacity() >= count)
                .min_by_key(|(_, v)| v.capacity())
                .map(|(i, _)| i);
            let values = match best {
                Some(i) => r.pool.swap_remove(i),
                None => {
                    // Too small for this top everywhere: let the largest go
                    // rather than let the pool grow pass after pass.
                    let largest = (r.pool.iter().enumerate())
                        .max_by_key(|(_, v)| v.capacity())
                        .map(|(i, _)| i);
                    if let Some(i) = largest {
                        r.pool.swap_remove(i);
                    }
                    Vec::with_capacity(count)
                }
            };
            blob.give_data(values);
        }
    }

    /// After layer `n` ran: the blobs it used last give their storage back.
    pub(super) fn return_storage(&mut self, n: usize) {
        let Some(r) = &mut self.recycling else {
            return;
        };
        for &b in &r.last_use[n] {
            if let Some(values) = self.blobs[b].take_data() {
                r.pool.push(values);
            }
        }
    }
}
