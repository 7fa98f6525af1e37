//! Features of face images: decode, resize, preprocess, run the deploy net
//! on the image and (optionally) its horizontal mirror, read one blob.
//!
//! Images are decoded as Caffe's ImageData layer decodes them (BGR, or grey
//! for one-channel nets, [`crate::data::decode`]) and resized to the net's
//! input H×W with the same bilinear (triangle) filter when their size
//! differs. Each value becomes (pixel − mean) · scale. The mirror is the
//! preprocessed image flipped left–right; with [`Mirror::Concat`] a feature
//! is [f(x), f(mirror x)] (SphereFace's evaluation), with [`Mirror::Sum`]
//! f(x) + f(mirror x), with [`Mirror::None`] f(x).

use super::deploy::DeployNet;
use crate::data::decode::decode;
use crate::data::transform::Mean;
use crate::error::{did_you_mean, Error, Result};
use crate::graph::BuildOptions;
use crate::net::Net;
use crate::netdef::Phase;
use crate::weights::{self, ApplyOptions};
use std::path::{Path, PathBuf};

/// How the mirror image's feature is combined with the image's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mirror {
    Concat,
    Sum,
    None,
}

impl std::str::FromStr for Mirror {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Mirror, String> {
        match s {
            "concat" => Ok(Mirror::Concat),
            "sum" => Ok(Mirror::Sum),
            "none" => Ok(Mirror::None),
            _ => Err(format!("expected concat, sum or none, found `{s}`")),
        }
    }
}

/// Per-pixel preprocessing: out = (pixel − mean) · scale.
#[derive(Debug, Clone, PartialEq)]
pub struct Preprocess {
    pub mean: Mean,
    pub scale: f32,
    /// Where these values come from, for the report.
    pub origin: String,
}

impl Preprocess {
    /// SphereFace's convention: (x − 127.5) / 128.
    pub fn sphereface() -> Preprocess {
        Preprocess {
            mean: Mean::Values(vec![127.5]),
            scale: 1.0 / 128.0,
            origin: "SphereFace's default (x - 127.5) / 128".into(),
        }
    }

    /// (x − mean) · scale of one C×H×W image of bytes.
    pub fn apply(&self, bytes: &[u8], sample: [usize; 3]) -> Vec<f32> {
        let [c, h, w] = sample;
        let plane = h * w;
        let mut out = Vec::with_capacity(bytes.len());
        for (i, &b) in bytes.iter().enumerate() {
            let m = match &self.mean {
                Mean::None => 0.0,
                Mean::Values(v) if v.len() == 1 => v[0],
                Mean::Values(v) => v[(i / plane).min(c - 1)],
                Mean::Image(m) => m[i],
            };
            out.push((f32::from(b) - m) * self.scale);
        }
        out
    }
}

/// Flips every row of a C×H×W image left–right.
pub fn mirror(values: &[f32], sample: [usize; 3]) -> Vec<f32> {
    let w = sample[2];
    values
        .chunks(w)
        .flat_map(|row| row.iter().rev().copied())
        .collect()
}

/// The deploy net built for a batch, with its weights.
pub struct Embedder {
    net: Net,
    input: usize,
    output: usize,
    /// Samples per forward pass.
    batch: usize,
    pub sample: [usize; 3],
    pub pre: Preprocess,
    pub mirror: Mirror,
    /// The blob's values per sample.
    pub blob_dim: usize,
}

impl Embedder {
    /// Builds `deploy` for `batch` samples per pass and loads `weights`
    /// (every learnable blob must be in them).
    pub fn new(
        deploy: &DeployNet,
        net_file: &Path,
        weight_files: &[PathBuf],
        blob: &str,
        batch: usize,
        pre: Preprocess,
        mirror: Mirror,
    ) -> Result<Embedder> {
        let [c, h, w] = deploy.sample;
        if let Mean::Values(v) = &pre.mean {
            if v.len() != 1 && v.len() != c {
                return Err(Error::Other(format!(
                    "{} mean values for a {c}-channel input: give 1 or {c}",
                    v.len()
                )));
            }
        }
        if let Mean::Image(m) = &pre.mean {
            if m.len() != c * h * w {
                return Err(Error::Other(format!(
                    "the mean image has {} values; the net's input is {c}x{h}x{w} ({})",
                    m.len(),
                    c * h * w
                )));
            }
        }
        let batch = batch.max(1) * if mirror == Mirror::None { 1 } else { 2 };
        let mut opts = BuildOptions::for_phase(Phase::Test);
        opts.context.data_dirs = crate::data::data_dirs(net_file, &[]);
        let graph =
            super::stage::build_with_input(&deploy.def, &deploy.input, &[batch, c, h, w], opts)?;
        let find = |name: &str| graph.blobs.iter().position(|b| b.name == name);
        let input = find(&deploy.input).expect("the input top is a blob");
        let output = find(blob).ok_or_else(|| {
            let mut m = format!("`{}` has no blob `{blob}`", net_file.display());
            if let Some(help) = did_you_mean(blob, graph.blobs.iter().map(|b| b.name.as_str())) {
                m += &format!("; {help}");
            }
            Error::Other(m)
        })?;
        let blob_dim = graph.blob_shape(output).iter().skip(1).product();
        let mut net = Net::new(graph, 1)?;
        let mut loaded = Vec::new();
        for f in weight_files {
            let t = weights::load(f)?;
            loaded.extend(weights::apply(&mut net, &t, ApplyOptions::default())?.loaded);
        }
        let missing: Vec<&str> = net
            .learnables
            .iter()
            .map(|l| l.name.as_str())
            .filter(|n| !loaded.iter().any(|l| l == n))
            .collect();
        if !missing.is_empty() {
            return Err(Error::Other(format!(
                "the weights ({}) lack learnable blobs of `{}`: {}",
                weight_files
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                net_file.display(),
                missing.join(", ")
            )));
        }
        let read = [input, output].map(|b| net.graph.blobs[b].name.clone());
        net.recycle_activations(&read.each_ref().map(String::as_str))?;
        Ok(Embedder {
            net,
            input,
            output,
            batch,
            sample: deploy.sample,
            pre,
            mirror,
            blob_dim,
        })
    }

    /// Length of one feature.
    pub fn dim(&self) -> usize {
        match self.mirror {
            Mirror::Concat => 2 * self.blob_dim,
            _ => self.blob_dim,
        }
    }

    /// Decodes and preprocesses one image file.
    pub fn load(&self, path: &Path) -> Result<Vec<f32>> {
        let bytes = std::fs::read(path).map_err(|e| Error::Io {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let [c, h, w] = self.sample;
        let (pixels, _) = decode(&bytes, Some(c), Some([h, w]))
            .map_err(|e| Error::Other(format!("cannot decode image `{}`: {e}", path.display())))?;
        Ok(self.pre.apply(&pixels, self.sample))
    }

    /// Features of preprocessed images, one row of [`Embedder::dim`] each.
    pub fn features(&mut self, images: &[Vec<f32>]) -> Result<Vec<Vec<f32>>> {
        let per_pass = if self.mirror == Mirror::None {
            self.batch
        } else {
            self.batch / 2
        };
        let size: usize = self.sample.iter().product();
        let mut rows = Vec::with_capacity(images.len());
        for chunk in images.chunks(per_pass) {
            {
                let data = self.net.blobs[self.input].data_mut();
                data.fill(0.0);
                for (i, img) in chunk.iter().enumerate() {
                    data[i * size..][..size].copy_from_slice(img);
                    if self.mirror != Mirror::None {
                        data[(per_pass + i) * size..][..size]
                            .copy_from_slice(&mirror(img, self.sample));
                    }
                }
            }
            self.net.forward()?;
            let out = self.net.blobs[self.output].data();
            let d = self.blob_dim;
            for i in 0..chunk.len() {
                let f = &out[i * d..][..d];
                let row = match self.mirror {
                    Mirror::None => f.to_vec(),
                    Mirror::Concat => {
                        let mut r = f.to_vec();
                        r.extend_from_slice(&out[(per_pass + i) * d..][..d]);
                        r
                    }
                    Mirror::Sum => f
                        .iter()
                        .zip(&out[(per_pass + i) * d..][..d])
                        .map(|(a, b)| a + b)
                        .collect(),
                };
                rows.push(row);
            }
        }
        Ok(rows)
    }
}

/// Cosine similarity a·b / (|a| |b|), in f64; 0 when either is zero.
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let (mut ab, mut aa, mut bb) = (0.0f64, 0.0f64, 0.0f64);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (f64::from(x), f64::from(y));
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa == 0.0 || bb == 0.0 {
        0.0
    } else {
        ab / (aa.sqrt() * bb.sqrt())
    }
}
