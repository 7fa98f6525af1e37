//! Winograd for narrow layers, one band of tile rows of one sample at a time.
//! The whole-batch path (`winograd.rs`) writes V and M for many samples and
//! reads them back from memory; at 64 channels the transforms move as many
//! bytes per tile as the GEMMs do multiply-adds, and that traffic makes it
//! slower than direct convolution. Here a band's V and M (and U, 16·C·O
//! floats, read by every band) stay in the core's L2 cache from the input
//! transform through the 16 GEMMs to the output transform.

use super::kernels::{ranges, with_scratch, Scratch};
use super::winograd::ULayout;
use super::winograd_math::TileKind;
use super::winograd_tiles::{Band, Shared, Winograd};
use crate::backend::threads;
use rayon::prelude::*;
use std::cell::RefCell;

/// Outputs per band (whole tile rows): 128 tiles of 2×2, whose V and M at
/// 64 channels take 16·64·128 floats (512 KiB) each; 32 tiles of 4×4.
const BAND_OUTPUTS: usize = 512;

/// Layers whose U has at most this many floats (512 KiB) run banded: at batch
/// 32 SphereFace's 64-channel layers run 1.3× faster banded than whole-batch,
/// its 128-channel ones (1 MiB of U) 1.1× slower.
const BANDED_MAX_U: usize = 36 * 64 * 64;

/// Whether a C → O layer's U (α²·C·O floats) is small enough to stay cached
/// beside a band's V and M.
pub fn banded(c: usize, o: usize, kind: TileKind) -> bool {
    kind.points() * c * o <= BANDED_MAX_U
}

thread_local! {
    /// A band's V and M (or D).
    static BAND: Scratch = const { RefCell::new([Vec::new(), Vec::new(), Vec::new()]) };
}

impl Winograd {
    /// Whether this correlation runs banded (see [`banded`]).
    pub fn banded(&self) -> bool {
        banded(self.inputs, self.outputs, self.kind)
    }

    /// Band `i` of the bands of every sample: (sample, band).
    fn band(&self, i: usize) -> (usize, Band) {
        let [th, tw] = self.tiles();
        let rows = (self.band_tiles() / tw).clamp(1, th);
        let per = th.div_ceil(rows);
        let (s, b) = (i / per, i % per);
        let rows = b * rows..((b + 1) * rows).min(th);
        let t_all = rows.len() * tw;
        (
            s,
            Band {
                rows,
                first: 0,
                t_all,
            },
        )
    }

    /// Tiles of a full band (whole tile rows).
    pub(super) fn band_len(&self) -> usize {
        let [th, tw] = self.tiles();
        (self.band_tiles() / tw).clamp(1, th) * tw
    }

    fn band_tiles(&self) -> usize {
        let m = self.tile_side();
        BAND_OUTPUTS / (m * m)
    }

    fn bands(&self, samples: usize) -> usize {
        let [th, tw] = self.tiles();
        samples * th.div_ceil((self.band_tiles() / tw).clamp(1, th))
    }

    /// [`Winograd::run`] band by band, bands spread over threads.
    pub fn run_banded(
        &self,
        u: &[f32],
        layout: ULayout,
        bias: Option<&[f32]>,
        x: &[f32],
        y: &mut [f32],
    ) {
        let (c, o) = (self.inputs, self.outputs);
        let in_len = c * self.height * self.width;
        let out_len = o * self.out[0] * self.out[1];
        let samples = x.len() / in_len;
        let yp = Shared(y[..samples * out_len].as_mut_ptr());
        (0..self.bands(samples)).into_par_iter().for_each(|i| {
            let (s, band) = self.band(i);
            let t = band.t_all;
            with_scratch(
                &BAND,
                [self.points() * c * t, self.points() * o * t, 0],
                |v, m, _| {
                    self.input_band(&x[s * in_len..][..in_len], &band, v);
                    for (xi, mx) in m.chunks_exact_mut(t * o).enumerate() {
                        self.point_gemm(u, layout, xi, v, mx, t);
                    }
                    // SAFETY: the band's rows of sample s are this task's alone.
                    unsafe { self.output_band(m, bias, &band, Shared(yp.at(s * out_len))) }
                },
            );
        });
    }

    /// [`Winograd::weight_gradient_sums`] band by band: each thread sums its
    /// bands into its own N, and the threads' sums are added into `n`.
    pub fn weight_gradient_banded(&self, x: &[f32], dy: &[f32], n: &mut [f32]) {
        let (c, o) = (self.inputs, self.outputs);
        let in_len = c * self.height * self.width;
        let out_len = o * self.out[0] * self.out[1];
        let samples = x.len() / in_len;
        let sums: Vec<Vec<f32>> = ranges(self.bands(samples), threads())
            .into_par_iter()
            .map(|part| {
                let mut sum = vec![0.0f32; self.points() * o * c];
                for i in part {
                    let (s, band) = self.band(i);
                    let t = band.t_all;
                    with_scratch(
                        &BAND,
                        [self.points() * c * t, self.points() * o * t, 0],
                        |v, d, _| {
                            self.input_band(&x[s * in_len..][..in_len], &band, v);
                            self.gradient_band(&dy[s * out_len..][..out_len], &band, d);
                            for (xi, nx) in sum.chunks_exact_mut(o * c).enumerate() {
                                self.point_weight_gemm(xi, d, v, t, nx);
                            }
                        },
                    );
                }
                sum
            })
            .collect();
        for sum in sums {
            for (a, b) in n.iter_mut().zip(&sum) {
                *a += b;
            }
        }
    }
}
