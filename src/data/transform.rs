//! Applying `transform_param` to one stored C×H×W sample (Caffe's
//! DataTransformer). Per sample, the random choices come first, from the
//! data layer's own seeded generator: the mirror flag (probability ½ when
//! `mirror`, in TRAIN *and* TEST, as Caffe does: only cropping depends on the
//! phase), then the crop offsets (uniform h_off ∈ [0, H−crop], w_off ∈
//! [0, W−crop] in TRAIN; ((H−crop)/2, (W−crop)/2) in TEST). Then, for every
//! output position (c, y, x) of the crop, with source position
//! (c, y + h_off, x + w_off) and x mirrored to crop_w − 1 − x when flipped:
//!   out = (pixel − mean) · scale,
//! mean = mean_file[c, y + h_off, x + w_off] (the mean image is indexed at the
//! uncropped source position), else mean_value[c] (one value = every
//! channel), else 0.

use crate::layer_io::Rng;
use crate::netdef::Phase;
use rand::Rng as _;

/// What is subtracted before scaling.
#[derive(Debug, Clone, PartialEq)]
pub enum Mean {
    None,
    /// One value per channel, or one for all.
    Values(Vec<f32>),
    /// A C×H×W image, the stored sample's shape.
    Image(Vec<f32>),
}

#[derive(Debug, Clone)]
pub struct Transformer {
    pub scale: f32,
    pub mirror: bool,
    /// 0 = no cropping.
    pub crop: usize,
    pub mean: Mean,
    pub phase: Phase,
    /// C, H, W of a stored sample.
    pub sample: [usize; 3],
}

/// The random choices of one sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Draw {
    pub mirror: bool,
    pub h_off: usize,
    pub w_off: usize,
}

impl Transformer {
    /// C, H, W of a transformed sample.
    pub fn out_shape(&self) -> [usize; 3] {
        let [c, h, w] = self.sample;
        if self.crop == 0 {
            [c, h, w]
        } else {
            [c, self.crop, self.crop]
        }
    }

    /// Draws the mirror flag, then the crop offsets (only what is random).
    pub fn draw(&self, rng: &mut Rng) -> Draw {
        let [_, h, w] = self.sample;
        let mirror = self.mirror && rng.gen_bool(0.5);
        let (h_off, w_off) = match (self.crop, self.phase) {
            (0, _) => (0, 0),
            (c, Phase::Train) => (rng.gen_range(0..=h - c), rng.gen_range(0..=w - c)),
            (c, Phase::Test) => ((h - c) / 2, (w - c) / 2),
        };
        Draw {
            mirror,
            h_off,
            w_off,
        }
    }

    /// Transforms `src` (the stored sample, C·H·W values) into `out`.
    pub fn apply(&self, src: &[f32], d: Draw, out: &mut [f32]) {
        let [c, h, w] = self.sample;
        let [_, oh, ow] = self.out_shape();
        debug_assert_eq!((src.len(), out.len()), (c * h * w, c * oh * ow));
        for ch in 0..c {
            let value_mean = match &self.mean {
                Mean::Values(v) if v.len() == 1 => v[0],
                Mean::Values(v) => v[ch],
                _ => 0.0,
            };
            for y in 0..oh {
                let row = (ch * h + y + d.h_off) * w + d.w_off;
                let dst = &mut out[(ch * oh + y) * ow..][..ow];
                for (x, o) in dst.iter_mut().enumerate() {
                    let sx = if d.mirror { ow - 1 - x } else { x };
                    let mean = match &self.mean {
                        Mean::Image(m) => m[row + sx],
                        _ => value_mean,
                    };
                    *o = (src[row + sx] - mean) * self.scale;
                }
            }
        }
    }

    /// Draws and applies.
    pub fn transform(&self, src: &[f32], out: &mut [f32], rng: &mut Rng) {
        let d = self.draw(rng);
        self.apply(src, d, out);
    }
}
