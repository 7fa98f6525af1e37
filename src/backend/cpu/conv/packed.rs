//! A convolution's weights kept in the fused shifted-window kernel's packed
//! layout (`direct.rs`) for as long as they stay the same.

use super::{direct, Plan};

/// Packed weights and the stamp ([`crate::blob::Blob::data_stamp`]) of the
/// weights they were packed from. Weights are packed when a forward sees the
/// same stamp as the forward before it: a training step changes them every
/// iteration and would pay for a copy it reads once, while a deploy net packs
/// on its second forward and keeps the copy.
#[derive(Debug, Default)]
pub struct PackedWeights {
    seen: u64,
    held: Option<(u64, Vec<f32>)>,
}

impl PackedWeights {
    /// The packed form of `w` (stamped `stamp`) for `plan`, where the plan's
    /// kernel reads packed weights and they are current; otherwise `None`,
    /// and a stale copy is dropped.
    pub fn get(&mut self, plan: &Plan, w: &[f32], stamp: u64) -> Option<&[f32]> {
        if !plan.packs() {
            return None;
        }
        if !matches!(&self.held, Some((s, _)) if *s == stamp) {
            self.held = None;
            if std::mem::replace(&mut self.seen, stamp) != stamp {
                return None;
            }
            let (cg, og) = plan.per_group();
            self.held = Some((stamp, direct::pack(w, og, cg * plan.taps())));
        }
        self.held.as_ref().map(|(_, p)| p.as_slice())
    }
}
