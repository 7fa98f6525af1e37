//! im2col / col2im for 2-D convolution and pooling-like windows.
//!
//! The column matrix has one row per (channel, kernel row, kernel column) and
//! one column per output position (out row, out column), so a convolution is
//! `W (O × C·kh·kw) · col (C·kh·kw × Ho·Wo)`.

/// Window geometry of one 2-D sliding operation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub kernel: [usize; 2],
    pub pad: [usize; 2],
    pub stride: [usize; 2],
    pub dilation: [usize; 2],
    pub out: [usize; 2],
}

impl Window {
    /// Rows of the column matrix: C·kh·kw.
    pub fn col_rows(&self) -> usize {
        self.channels * self.kernel[0] * self.kernel[1]
    }
    /// Columns of the column matrix: Ho·Wo.
    pub fn col_cols(&self) -> usize {
        self.out[0] * self.out[1]
    }
    /// A 1×1 kernel with stride 1 and no padding reads the image as it is.
    pub fn is_identity(&self) -> bool {
        self.kernel == [1, 1] && self.stride == [1, 1] && self.pad == [0, 0]
    }

    /// For kernel offset `k` along axis `a`, the output range whose input
    /// coordinate o·s − p + k·d falls inside [0, len).
    fn valid(&self, a: usize, k: usize, len: usize) -> (usize, usize) {
        let (s, p, d, out) = (
            self.stride[a] as isize,
            self.pad[a] as isize,
            self.dilation[a] as isize,
            self.out[a] as isize,
        );
        let off = k as isize * d - p;
        // o·s + off ≥ 0  ⇔  o ≥ ceil(−off / s);  o·s + off < len  ⇔  o < ceil((len − off) / s).
        let lo = if off >= 0 { 0 } else { (-off + s - 1) / s };
        let hi = ((len as isize - off + s - 1) / s).clamp(0, out);
        (lo.min(out) as usize, hi.max(lo.min(out)) as usize)
    }
}

use super::copy::{copy, zero};

/// Writes the column matrix of one image (C×H×W) into `col`.
pub fn im2col(w: &Window, image: &[f32], col: &mut [f32]) {
    im2col_pitched(w, image, col, w.col_cols());
}

/// [`im2col`] with column-matrix rows `pitch` floats apart, so several images'
/// matrices can sit side by side in one wider matrix.
pub fn im2col_pitched(w: &Window, image: &[f32], col: &mut [f32], pitch: usize) {
    let (ho, wo) = (w.out[0], w.out[1]);
    let mut row = 0;
    for c in 0..w.channels {
        let plane = &image[c * w.height * w.width..(c + 1) * w.height * w.width];
        for ki in 0..w.kernel[0] {
            let (y0, y1) = w.valid(0, ki, w.height);
            for kj in 0..w.kernel[1] {
                let (x0, x1) = w.valid(1, kj, w.width);
                let dst = &mut col[row * pitch..row * pitch + ho * wo];
                zero(&mut dst[..y0 * wo]);
                zero(&mut dst[y1 * wo..]);
                for oy in y0..y1 {
                    let iy = oy * w.stride[0] + ki * w.dilation[0] - w.pad[0];
                    let src = &plane[iy * w.width..(iy + 1) * w.width];
                    let line = &mut dst[oy * wo..(oy + 1) * wo];
                    zero(&mut line[..x0]);
                    zero(&mut line[x1..]);
                    let base = kj * w.dilation[1];
                    if w.stride[1] == 1 {
                        let start = x0 + base - w.pad[1];
                        copy(&mut line[x0..x1], &src[start..start + (x1 - x0)]);
                    } else {
                        for (ox, v) in line.iter_mut().enumerate().take(x1).skip(x0) {
                            *v = src[ox * w.stride[1] + base - w.pad[1]];
                        }
                    }
                }
                row += 1;
            }
        }
    }
}

/// Adds the column matrix back into an image (C×H×W), which it overwrites.
pub fn col2im(w: &Window, col: &[f32], image: &mut [f32]) {
    col2im_pitched(w, col, w.col_cols(), image);
}

/// [`col2im`] reading column-matrix rows `pitch` floats apart.
pub fn col2im_pitched(w: &Window, col: &[f32], pitch: usize, image: &mut [f32]) {
    image.fill(0.0);
    let (ho, wo) = (w.out[0], w.out[1]);
    let mut row = 0;
    for c in 0..w.channels {
        let plane = &mut image[c * w.height * w.width..(c + 1) * w.height * w.width];
        for ki in 0..w.kernel[0] {
            let (y0, y1) = w.valid(0, ki, w.height);
            for kj in 0..w.kernel[1] {
                let (x0, x1) = w.valid(1, kj, w.width);
                let src = &col[row * pitch..row * pitch + ho * wo];
                let base = kj * w.dilation[1];
                for oy in y0..y1 {
                    let iy = oy * w.stride[0] + ki * w.dilation[0] - w.pad[0];
                    let dst = &mut plane[iy * w.width..(iy + 1) * w.width];
                    let line = &src[oy * wo..(oy + 1) * wo];
                    for ox in x0..x1 {
                        dst[ox * w.stride[1] + base - w.pad[1]] += line[ox];
                    }
                }
                row += 1;
            }
        }
    }
}
