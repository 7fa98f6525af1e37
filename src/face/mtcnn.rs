//! The MTCNN cascade (Zhang et al., 2016) on netrun's engine.
//!
//! 1. P-Net, fully convolutional, over an image pyramid: scales
//!    m·fᵏ with m = 12 / min_face and f = 0.709, while min(H, W)·m·fᵏ ≥ 12.
//!    Output cell (i, j) of a level at scale s stands for the 12×12 window at
//!    (2j, 2i) of that level, i.e. [2j/s, (2j + 12)/s) × [2i/s, (2i + 12)/s)
//!    in the image. Cells scoring ≥ t₁ become candidates, suppressed at IoU
//!    0.5 within the level and 0.7 across levels, then moved by their
//!    regression and made square.
//! 2. R-Net on 24×24 crops of the candidates (batched): score ≥ t₂, NMS at
//!    IoU 0.7, regression, square.
//! 3. O-Net on 48×48 crops: score ≥ t₃, five landmarks
//!    (xₖ = x1 + w·pₖ, yₖ = y1 + h·p₅₊ₖ on the box it saw), regression,
//!    NMS at 0.7 of the smaller box ("min").
//!
//! Conventions of the published weights: RGB, (x − 127.5) · 0.0078125, and
//! every input transposed (see [`super::image::Rgb::mtcnn_input`]); P-Net's
//! maps come out transposed too (read back as [c][x][y]), while the
//! regression and landmark vectors are in the image's own x, y order.
//! Crops that leave the image are padded with black.

use super::image::{Outside, Rgb};
use super::nms::{nms, Candidate, Overlap};
use super::stage::StageNet;
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// Cascade settings.
#[derive(Debug, Clone, PartialEq)]
pub struct MtcnnOptions {
    /// Smallest face side looked for, pixels.
    pub min_face: f32,
    /// Score thresholds of P-Net, R-Net, O-Net.
    pub thresholds: [f32; 3],
    /// Pyramid factor.
    pub factor: f32,
    /// Candidates per R-Net / O-Net pass.
    pub batch: usize,
}

impl Default for MtcnnOptions {
    fn default() -> Self {
        MtcnnOptions {
            min_face: 20.0,
            thresholds: [0.6, 0.7, 0.7],
            factor: 0.709,
            batch: 64,
        }
    }
}

/// A detected face.
#[derive(Debug, Clone, PartialEq)]
pub struct Face {
    /// x1, y1, x2, y2.
    pub bbox: [f32; 4],
    pub score: f32,
    /// Left eye, right eye, nose, left and right mouth corner, (x, y).
    pub landmarks: [[f32; 2]; 5],
}

/// The three nets.
pub struct Mtcnn {
    pub pnet: StageNet,
    pub rnet: StageNet,
    pub onet: StageNet,
    pub opts: MtcnnOptions,
}

/// The weights file of `detN` in `dir`: `.caffemodel`, else `.safetensors`.
pub fn weights_file(dir: &Path, stem: &str) -> Result<PathBuf> {
    let tried = [
        dir.join(format!("{stem}.caffemodel")),
        dir.join(format!("{stem}.safetensors")),
    ];
    tried.iter().find(|p| p.is_file()).cloned().ok_or_else(|| {
        Error::Other(format!(
            "no weights for `{stem}` in `{}` (tried {})",
            dir.display(),
            crate::data::fmt_paths(&tried)
        ))
    })
}

impl Mtcnn {
    /// Loads `det1`..`det3` (`.prototxt` and weights) from `dir`.
    pub fn load(dir: &Path, opts: MtcnnOptions) -> Result<Mtcnn> {
        let stage = |stem: &str| {
            StageNet::load(
                &dir.join(format!("{stem}.prototxt")),
                &weights_file(dir, stem)?,
            )
        };
        Ok(Mtcnn {
            pnet: stage("det1")?,
            rnet: stage("det2")?,
            onet: stage("det3")?,
            opts,
        })
    }

    /// All faces of `img`, best first.
    pub fn detect(&mut self, img: &Rgb) -> Result<Vec<Face>> {
        let c = self.proposals(img)?;
        let c = self.refine(img, c)?;
        let c = self.output(img, c)?;
        Ok(c.into_iter()
            .map(|c| Face {
                bbox: [c.x1, c.y1, c.x2, c.y2],
                score: c.score,
                landmarks: c
                    .landmarks
                    .map_or([[0.0; 2]; 5], |l| std::array::from_fn(|k| [l[k], l[5 + k]])),
            })
            .collect())
    }

    /// Stage 1: P-Net over the pyramid.
    pub fn proposals(&mut self, img: &Rgb) -> Result<Vec<Candidate>> {
        let mut all = Vec::new();
        for s in scales(img.height, img.width, self.opts.min_face, self.opts.factor) {
            let hs = (img.height as f32 * s).ceil() as usize;
            let ws = (img.width as f32 * s).ceil() as usize;
            let level = img.resize(ws, hs);
            let mut input = Vec::with_capacity(3 * ws * hs);
            level.mtcnn_input(&mut input);
            let out = self
                .pnet
                .run(&input, [1, 3, ws, hs], &["prob1", "conv4-2"])?;
            let found = pnet_candidates(&out[0], &out[1], s, self.opts.thresholds[0]);
            all.extend(nms(found, 0.5, Overlap::Union));
        }
        let mut all = nms(all, 0.7, Overlap::Union);
        for c in &mut all {
            c.regress();
            c.square();
        }
        Ok(all)
    }

    /// Stage 2: R-Net.
    pub fn refine(&mut self, img: &Rgb, cands: Vec<Candidate>) -> Result<Vec<Candidate>> {
        let scored = score_crops(
            &mut self.rnet,
            img,
            cands,
            24,
            &["prob1", "conv5-2"],
            self.opts.batch,
        )?;
        let kept: Vec<Candidate> = scored
            .into_iter()
            .filter(|(c, _)| c.score >= self.opts.thresholds[1])
            .map(|(c, _)| c)
            .collect();
        let mut kept = nms(kept, 0.7, Overlap::Union);
        for c in &mut kept {
            c.regress();
            c.square();
        }
        Ok(kept)
    }

    /// Stage 3: O-Net, with landmarks.
    pub fn output(&mut self, img: &Rgb, cands: Vec<Candidate>) -> Result<Vec<Candidate>> {
        let scored = score_crops(
            &mut self.onet,
            img,
            cands,
            48,
            &["prob1", "conv6-2", "conv6-3"],
            self.opts.batch,
        )?;
        let mut kept = Vec::new();
        for (mut c, points) in scored {
            if c.score < self.opts.thresholds[2] {
                continue;
            }
            let (w, h) = (c.width(), c.height());
            let p = points.expect("O-Net gives points");
            c.landmarks = Some(std::array::from_fn(|k| {
                if k < 5 {
                    c.x1 + w * p[k]
                } else {
                    c.y1 + h * p[k]
                }
            }));
            c.regress();
            kept.push(c);
        }
        Ok(nms(kept, 0.7, Overlap::Min))
    }
}

/// The pyramid's scales (see the module docs).
pub fn scales(height: usize, width: usize, min_face: f32, factor: f32) -> Vec<f32> {
    let m = 12.0 / min_face;
    let mut side = height.min(width) as f32 * m;
    let mut s = m;
    let mut out = Vec::new();
    while side >= 12.0 {
        out.push(s);
        s *= factor;
        side *= factor;
    }
    out
}

/// Candidates of one P-Net level from its transposed maps (`prob1` 1×2×W'×H',
/// `conv4-2` 1×4×W'×H').
pub fn pnet_candidates(
    prob: &(Vec<usize>, Vec<f32>),
    reg: &(Vec<usize>, Vec<f32>),
    scale: f32,
    threshold: f32,
) -> Vec<Candidate> {
    let (mw, mh) = (prob.0[2], prob.0[3]);
    let plane = mw * mh;
    let mut out = Vec::new();
    for j in 0..mw {
        for i in 0..mh {
            let at = j * mh + i;
            let score = prob.1[plane + at];
            if score < threshold {
                continue;
            }
            let (x, y) = (2.0 * j as f32, 2.0 * i as f32);
            out.push(Candidate {
                x1: x / scale,
                y1: y / scale,
                x2: (x + 12.0) / scale,
                y2: (y + 12.0) / scale,
                score,
                reg: std::array::from_fn(|k| reg.1[k * plane + at]),
                landmarks: None,
            });
        }
    }
    out
}

/// Runs `net` on size×size crops of the candidates, `batch` at a time;
/// returns each candidate with its new score and regression, and the
/// third output's row (landmarks) when asked for.
fn score_crops(
    net: &mut StageNet,
    img: &Rgb,
    cands: Vec<Candidate>,
    size: usize,
    outputs: &[&str],
    batch: usize,
) -> Result<Vec<(Candidate, Option<Vec<f32>>)>> {
    let mut out = Vec::with_capacity(cands.len());
    for chunk in cands.chunks(batch.max(1)) {
        let input = crops_input(img, chunk, size);
        let res = net.run(&input, [chunk.len(), 3, size, size], outputs)?;
        for (n, c) in chunk.iter().enumerate() {
            let mut c = c.clone();
            c.score = res[0].1[2 * n + 1];
            c.reg = std::array::from_fn(|k| res[1].1[4 * n + k]);
            let extra = res.get(2).map(|r| r.1[10 * n..][..10].to_vec());
            out.push((c, extra));
        }
    }
    Ok(out)
}

/// The net input of size×size crops of boxes, one after the other.
pub fn crops_input(img: &Rgb, boxes: &[Candidate], size: usize) -> Vec<f32> {
    let mut input = Vec::with_capacity(boxes.len() * 3 * size * size);
    for c in boxes {
        img.crop([c.x1, c.y1, c.x2, c.y2], size, size, Outside::Black)
            .mtcnn_input(&mut input);
    }
    input
}
