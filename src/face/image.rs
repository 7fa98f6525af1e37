//! RGB images as f32 values for the detector and the aligner, with
//! bilinear sampling in the continuous coordinates of [`super::nms`]:
//! the value at (x, y) interpolates the four pixels whose centres
//! (j + ½, i + ½) surround it. Sampling outside the image gives the
//! nearest edge pixel (resizing) or black (crops and warps, as MTCNN pads
//! boxes that leave the image with zeros).

use super::similarity::Similarity;
use crate::error::{Error, Result};
use std::path::Path;

/// An RGB image, values 0..255, rows of interleaved R, G, B.
#[derive(Debug, Clone, PartialEq)]
pub struct Rgb {
    pub width: usize,
    pub height: usize,
    pub data: Vec<f32>,
}

/// What lies outside the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outside {
    /// The nearest edge pixel.
    Edge,
    /// Zero.
    Black,
}

impl Rgb {
    /// Reads a PNG or JPEG file as RGB.
    pub fn read(path: &Path) -> Result<Rgb> {
        let img = image::open(path)
            .map_err(|e| Error::Other(format!("cannot read image `{}`: {e}", path.display())))?
            .to_rgb8();
        Ok(Rgb {
            width: img.width() as usize,
            height: img.height() as usize,
            data: img.into_raw().into_iter().map(f32::from).collect(),
        })
    }

    /// Rounded to bytes, for writing.
    pub fn to_image(&self) -> image::RgbImage {
        let bytes = self
            .data
            .iter()
            .map(|&v| v.round().clamp(0.0, 255.0) as u8)
            .collect();
        image::RgbImage::from_raw(self.width as u32, self.height as u32, bytes)
            .expect("width × height × 3 values")
    }

    /// The three values at continuous position (x, y).
    pub fn sample(&self, x: f32, y: f32, outside: Outside) -> [f32; 3] {
        let (fx, fy) = (x - 0.5, y - 0.5);
        let (j0, i0) = (fx.floor(), fy.floor());
        let (ax, ay) = (fx - j0, fy - i0);
        let (j0, i0) = (j0 as i64, i0 as i64);
        let mut out = [0.0f32; 3];
        for (di, wy) in [(0, 1.0 - ay), (1, ay)] {
            for (dj, wx) in [(0, 1.0 - ax), (1, ax)] {
                let w = wx * wy;
                if w == 0.0 {
                    continue;
                }
                let (i, j) = (i0 + di, j0 + dj);
                let inside =
                    (0..self.height as i64).contains(&i) && (0..self.width as i64).contains(&j);
                let (i, j) = match (inside, outside) {
                    (true, _) => (i as usize, j as usize),
                    (false, Outside::Black) => continue,
                    (false, Outside::Edge) => (
                        i.clamp(0, self.height as i64 - 1) as usize,
                        j.clamp(0, self.width as i64 - 1) as usize,
                    ),
                };
                let p = &self.data[(i * self.width + j) * 3..][..3];
                for c in 0..3 {
                    out[c] += w * p[c];
                }
            }
        }
        out
    }

    /// The region [x1, x2) × [y1, y2) resampled to `width` × `height`.
    pub fn crop(&self, rect: [f32; 4], width: usize, height: usize, outside: Outside) -> Rgb {
        let [x1, y1, x2, y2] = rect;
        let (sx, sy) = ((x2 - x1) / width as f32, (y2 - y1) / height as f32);
        let mut data = Vec::with_capacity(width * height * 3);
        for v in 0..height {
            for u in 0..width {
                let x = x1 + (u as f32 + 0.5) * sx;
                let y = y1 + (v as f32 + 0.5) * sy;
                data.extend_from_slice(&self.sample(x, y, outside));
            }
        }
        Rgb {
            width,
            height,
            data,
        }
    }

    /// The whole image resized (bilinear, edges repeated).
    pub fn resize(&self, width: usize, height: usize) -> Rgb {
        self.crop(
            [0.0, 0.0, self.width as f32, self.height as f32],
            width,
            height,
            Outside::Edge,
        )
    }

    /// The `width` × `height` image whose pixel at (u, v) is this one's at
    /// `to_output⁻¹(u, v)` (black outside): the image carried by a transform.
    pub fn warp(&self, to_output: &Similarity, width: usize, height: usize) -> Option<Rgb> {
        let back = to_output.inverse()?;
        let mut data = Vec::with_capacity(width * height * 3);
        for v in 0..height {
            for u in 0..width {
                let [x, y] = back.apply([u as f64 + 0.5, v as f64 + 0.5]);
                data.extend_from_slice(&self.sample(x as f32, y as f32, Outside::Black));
            }
        }
        Some(Rgb {
            width,
            height,
            data,
        })
    }

    /// The net input of MTCNN: (x − 127.5) · 0.0078125, channels R, G, B,
    /// each plane transposed (the nets were trained on transposed images):
    /// value [c][x][y] = pixel (row y, column x), channel c. Appended to `out`.
    pub fn mtcnn_input(&self, out: &mut Vec<f32>) {
        for c in 0..3 {
            for x in 0..self.width {
                for y in 0..self.height {
                    out.push((self.data[(y * self.width + x) * 3 + c] - 127.5) * 0.0078125);
                }
            }
        }
    }
}
