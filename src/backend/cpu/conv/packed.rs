//! A convolution's weights kept in a kernel's own layout for as long as they
//! stay the same: packed for the fused shifted-window kernel (`direct.rs`), or
//! transformed to Winograd's U = G g Gᵀ (`winograd_weights.rs`).

use super::winograd::ULayout;
use super::{direct, Plan, TileKind};

/// Weights in one kernel's layout and the stamp
/// ([`crate::blob::Blob::data_stamp`]) of the weights they were made from.
/// They are made when a forward sees the same stamp as the forward before it:
/// a training step changes the weights every iteration and would pay for a
/// copy it reads once, while a deploy net makes it on its second forward and
/// keeps it. A layer holds one per kernel, so that bottoms of different
/// shapes (one shifted, one Winograd) do not evict each other's copy; the
/// copy also records its layout (Winograd's tile kind and order of U), so a
/// batch that changes them remakes it.
#[derive(Debug, Default)]
pub struct PackedWeights {
    seen: u64,
    held: Option<(u64, Option<Layout>, Vec<f32>)>,
}

/// A Winograd U's tile kind and order (`None` in [`PackedWeights::kept`]: the
/// shifted windows' packed layout).
type Layout = (TileKind, ULayout);

impl PackedWeights {
    /// The packed form of `w` (stamped `stamp`) for `plan`, where the plan's
    /// kernel reads packed weights and they are current; otherwise `None`,
    /// and a stale copy is dropped.
    pub fn packed(&mut self, plan: &Plan, w: &[f32], stamp: u64) -> Option<&[f32]> {
        if !plan.packs() {
            return None;
        }
        let (cg, og) = plan.per_group();
        self.kept(stamp, None, || direct::pack(w, og, cg * plan.taps()))
    }

    /// Winograd's U of `kind` for `w` (stamped `stamp`), for a plan whose
    /// forward runs those tiles on a batch of `batch` (`inference`: see
    /// [`Plan::winograd_forward`]), when current; otherwise `None`, as
    /// [`PackedWeights::packed`].
    pub fn winograd(
        &mut self,
        plan: &Plan,
        forward: (TileKind, usize, bool),
        w: &[f32],
        stamp: u64,
    ) -> Option<&[f32]> {
        let (kind, batch, inference) = forward;
        let layout = plan.winograd_layout(kind, batch, inference);
        self.kept(stamp, Some((kind, layout)), || {
            plan.winograd_weights(kind, layout, w)
        })
    }

    fn kept(
        &mut self,
        stamp: u64,
        layout: Option<Layout>,
        make: impl FnOnce() -> Vec<f32>,
    ) -> Option<&[f32]> {
        if !matches!(&self.held, Some((s, l, _)) if *s == stamp && *l == layout) {
            self.held = None;
            if std::mem::replace(&mut self.seen, stamp) != stamp {
                return None;
            }
            self.held = Some((stamp, layout, make()));
        }
        self.held.as_ref().map(|(_, _, p)| p.as_slice())
    }
}
