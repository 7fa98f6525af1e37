//! The shifted-window forward as one fused implicit GEMM: for output rows o
//! (channels) and grid columns j (see `shifted.rs`),
//!   grid[o][j] = Σ_c Σ_tap W[o][c][tap] · P[c][shift(tap) + j],
//! with W read in its stored order (row o is contiguous over (c, tap)) and the
//! B operand's row (c, tap) a plain offset into the padded planes P. Nothing
//! is packed or copied: a tile of MR output channels × 16 grid columns keeps
//! its MR × 16 sums in registers across all C·taps products, where the
//! per-tap GEMMs read and write the whole grid once per tap and repack the
//! strided weight slice every call. The tile broadcasts MR weights and loads
//! 16 columns of P per (c, tap), then updates the MR × 16 sums.
//!
//! The tile's MR weights of one (c, tap) lie C·taps floats apart in W, MR
//! separate streams that miss the L1 cache on every panel of 16 columns once
//! a tile's weights outgrow it. Where the weights stay the same over forwards
//! (a deploy net) and a tile runs over enough panels, the layer keeps them
//! packed ([`pack`]): each tile of MR rows side by side,
//!   packed[R·K + (c·taps + tap)·m + i] = W[R + i][c][tap]   (i < m ≤ MR),
//! for the tile starting at row R of a group (K = C·taps, m its rows), which is
//! one sequential stream and occupies the same K·m floats as the rows it holds.
//! The sums are the same in either layout.
//!
//! The tile is AVX2+FMA (the AVX-512 level runs it too); the baseline level
//! runs a portable tile computing the same correctly rounded fused
//! multiply-adds in the same order, so every level gives the same bits. Grid
//! columns are computed in panels of 16 and a last panel of 8 where 8 columns
//! are left or fewer (the 7×6 stage's grid of 54 columns is 56 computed, not
//! 64), so the caller's P must hold [`SLACK`] readable floats past the last
//! plane and the output rows `grid_len(n)` columns; the extra columns are
//! never read back.

use super::kernels::ranges;
use std::ops::Range;

/// Output channels per register tile.
const MR: usize = 6;
/// Grid columns per register tile (two 8-lane vectors).
const NR: usize = 16;
/// Columns of the narrow last panel (one vector).
const HALF: usize = 8;
/// Readable floats P needs past its last plane for the final panel.
pub const SLACK: usize = NR;
/// Panels of 16 columns a tile must sweep before packed weights pay for their
/// memory; below it the weights are read a few times only.
const PACK_MIN_PANELS: usize = 8;

/// Whether the fused kernel runs: wherever the CPU has FMA (at the baseline
/// level too, through the portable tile, so that every level gives the same
/// bits). A CPU without FMA keeps the per-tap GEMMs.
pub fn available() -> bool {
    fma_in_cpu()
}

fn fma_in_cpu() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::arch::is_x86_feature_detected!("fma");
    #[cfg(not(target_arch = "x86_64"))]
    true
}

/// Columns of a grid row the kernel writes for a grid of `n` columns.
pub fn grid_len(n: usize) -> usize {
    n.div_ceil(HALF) * HALF
}

/// Whether keeping packed weights pays for a grid of `n` columns.
pub fn worth_packing(n: usize) -> bool {
    available() && grid_len(n) / NR >= PACK_MIN_PANELS
}

/// W (groups × `per_group` rows of `k` floats) in the packed layout (module doc).
pub fn pack(w: &[f32], per_group: usize, k: usize) -> Vec<f32> {
    let mut packed = vec![0.0; w.len()];
    for (group, dst) in w
        .chunks(per_group * k)
        .zip(packed.chunks_mut(per_group * k))
    {
        for (tile, dst) in group.chunks(MR * k).zip(dst.chunks_mut(MR * k)) {
            let m = tile.len() / k;
            for (i, row) in tile.chunks(k).enumerate() {
                for (d, &v) in dst[i..].iter_mut().step_by(m).zip(row) {
                    *d = v;
                }
            }
        }
    }
    packed
}

/// `outputs` rows (groups of `per_group`) split into at most `parts` ranges
/// of whole packed tiles, as even as tiles allow.
pub fn tile_ranges(outputs: usize, per_group: usize, parts: usize) -> Vec<Range<usize>> {
    let tiles = per_group.div_ceil(MR);
    let row = |unit: usize| (unit / tiles) * per_group + ((unit % tiles) * MR).min(per_group);
    let units = outputs / per_group.max(1) * tiles;
    ranges(units, parts)
        .into_iter()
        .map(|r| row(r.start)..if r.end == units { outputs } else { row(r.end) })
        .collect()
}

/// The operands of one group's rows: `w` starts at the group's first row to
/// compute (`w_row` floats per row, C·taps), `p` at the group's first plane.
/// With `packed`, `w` is in the packed layout, starts at a tile and `w_row` is
/// C·taps; the rows asked for are then whole tiles.
pub struct Operands<'a> {
    pub w: &'a [f32],
    pub w_row: usize,
    pub packed: bool,
    pub p: &'a [f32],
    pub plane: usize,
    pub channels: usize,
    pub shifts: &'a [usize],
}

/// grid[i][j] = Σ_{c,tap} w[i][c·taps + tap] · p[c·plane + shift(tap) + j]
/// for rows i < `rows` and columns j < grid_len(n); `grid` rows are `ld` apart.
pub fn rows(op: &Operands, rows: usize, n: usize, grid: &mut [f32], ld: usize) {
    let cols = grid_len(n);
    let taps = op.shifts.len();
    let reach = op.shifts.iter().max().copied().unwrap_or(0) + cols;
    assert!(
        op.w.len() >= (rows.max(1) - 1) * op.w_row + op.channels * taps
            && op.w_row >= op.channels * taps
            && (!op.packed || op.w_row == op.channels * taps)
            && op.p.len() >= (op.channels.max(1) - 1) * op.plane + reach
            && grid.len() >= (rows.max(1) - 1) * ld + cols
            && ld >= cols,
        "direct convolution: operand too small"
    );
    let vector = crate::backend::cpu::isa::isa() >= crate::backend::cpu::isa::Isa::Avx2;
    for i0 in (0..rows).step_by(MR) {
        let m = (rows - i0).min(MR);
        for j0 in (0..cols).step_by(NR) {
            let wide = cols - j0 >= NR;
            let a = op.w[i0 * op.w_row..].as_ptr();
            let b = op.p[j0..].as_ptr();
            let c = grid[i0 * ld + j0..].as_mut_ptr();
            // SAFETY: the assert above bounds every read (rows i0..i0+m of w
            // over C·taps, planes of p up to shift + j0 + 16 or 8 ≤ reach) and
            // write (16 or 8 columns of m rows, ld apart); the vector tile runs
            // only where the dispatch level has AVX2 and FMA.
            unsafe {
                #[cfg(target_arch = "x86_64")]
                if vector {
                    match wide {
                        true => x86::tile::<2>(op, m, a, b, c, ld),
                        false => x86::tile::<1>(op, m, a, b, c, ld),
                    }
                    continue;
                }
                let width = if wide { NR } else { HALF };
                tile(op, m, width, a, b, c, ld);
            }
        }
    }
}

/// The portable tile, for the baseline level: the same sums in the same
/// (c, tap) order with a correctly rounded fused multiply-add (`mul_add`), so
/// its bits equal the vector tile's. Without FMA in the CPU `mul_add` is a
/// library routine; [`available`] keeps such CPUs on the per-tap GEMMs.
unsafe fn tile(
    op: &Operands,
    m: usize,
    width: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    ld: usize,
) {
    let taps = op.shifts.len();
    // Weight (i, c·taps + t) is at i·row + (c·taps + t)·step.
    let (row, step) = if op.packed { (1, m) } else { (op.w_row, 1) };
    for i in 0..m {
        let mut acc = [0.0f32; NR];
        let acc = &mut acc[..width];
        for ci in 0..op.channels {
            let bc = b.add(ci * op.plane);
            for (t, &s) in op.shifts.iter().enumerate() {
                let w = *a.add(i * row + (ci * taps + t) * step);
                for (l, v) in acc.iter_mut().enumerate() {
                    *v = w.mul_add(*bc.add(s + l), *v);
                }
            }
        }
        std::ptr::copy_nonoverlapping(acc.as_ptr(), c.add(i * ld), width);
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::Operands;
    use std::arch::x86_64::*;

    /// One m × 8·V tile (V vectors of 8 columns): `a` at the tile's first
    /// weight row (or its packed weights), `b` at its first grid column in
    /// plane 0, `c` at its first output.
    #[inline(always)]
    pub(super) unsafe fn tile<const V: usize>(
        op: &Operands,
        m: usize,
        a: *const f32,
        b: *const f32,
        c: *mut f32,
        ld: usize,
    ) {
        match (m, op.packed) {
            (6, false) => sums::<6, false, V>(op, a, b, c, ld),
            (6, true) => sums::<6, true, V>(op, a, b, c, ld),
            (5, false) => sums::<5, false, V>(op, a, b, c, ld),
            (5, true) => sums::<5, true, V>(op, a, b, c, ld),
            (4, false) => sums::<4, false, V>(op, a, b, c, ld),
            (4, true) => sums::<4, true, V>(op, a, b, c, ld),
            (3, false) => sums::<3, false, V>(op, a, b, c, ld),
            (3, true) => sums::<3, true, V>(op, a, b, c, ld),
            (2, false) => sums::<2, false, V>(op, a, b, c, ld),
            (2, true) => sums::<2, true, V>(op, a, b, c, ld),
            (_, false) => sums::<1, false, V>(op, a, b, c, ld),
            (_, true) => sums::<1, true, V>(op, a, b, c, ld),
        }
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn sums<const M: usize, const PACKED: bool, const V: usize>(
        op: &Operands,
        a: *const f32,
        b: *const f32,
        c: *mut f32,
        ld: usize,
    ) {
        let taps = op.shifts.len();
        let (row, step) = if PACKED { (1, M) } else { (op.w_row, 1) };
        let mut lo = [_mm256_setzero_ps(); M];
        let mut hi = [_mm256_setzero_ps(); M];
        for ci in 0..op.channels {
            let bc = b.add(ci * op.plane);
            let ac = a.add(ci * taps * step);
            for (t, &s) in op.shifts.iter().enumerate() {
                let b0 = _mm256_loadu_ps(bc.add(s));
                let b1 = if V == 2 {
                    _mm256_loadu_ps(bc.add(s + 8))
                } else {
                    b0
                };
                for i in 0..M {
                    let w = _mm256_broadcast_ss(&*ac.add(i * row + t * step));
                    lo[i] = _mm256_fmadd_ps(w, b0, lo[i]);
                    if V == 2 {
                        hi[i] = _mm256_fmadd_ps(w, b1, hi[i]);
                    }
                }
            }
        }
        for i in 0..M {
            _mm256_storeu_ps(c.add(i * ld), lo[i]);
            if V == 2 {
                _mm256_storeu_ps(c.add(i * ld + 8), hi[i]);
            }
        }
    }
}
