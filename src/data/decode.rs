//! Decoding PNG/JPEG bytes into planar C×H×W bytes the way Caffe's OpenCV
//! calls do: colour is BGR (channel 0 = blue), a grey file decoded as colour
//! repeats its grey level in all three channels, alpha is dropped.
//!
//! Grey from colour uses the BT.601 luma weights in 14-bit fixed point, as
//! OpenCV's RGB→grey conversion does:
//! Y = (4899·R + 9617·G + 1868·B + 2¹³) >> 14  (0.299, 0.587, 0.114 · 2¹⁴).
//! Resizing uses `image`'s Triangle filter (bilinear, OpenCV's INTER_LINEAR
//! default); when shrinking, Triangle widens its support to the scale factor,
//! so it averages over the source area where INTER_LINEAR samples 2×2 pixels.

use image::imageops::{self, FilterType};
use image::{DynamicImage, GrayImage, Luma, RgbImage};

/// Planar bytes and their C, H, W.
pub type Planar = (Vec<u8>, [usize; 3]);

/// Decodes `bytes` into `channels` channels (1 grey, 3 BGR; None = the file's
/// own: grey stays 1, colour gives 3), resized to `resize` = [H, W] when given.
pub fn decode(
    bytes: &[u8],
    channels: Option<usize>,
    resize: Option<[usize; 2]>,
) -> Result<Planar, String> {
    let img = image::load_from_memory(bytes).map_err(|e| e.to_string())?;
    let colour = channels.map_or(img.color().has_color(), |c| c == 3);
    let fit = |w: u32, h: u32| -> Option<(u32, u32)> {
        resize
            .map(|[rh, rw]| (rw as u32, rh as u32))
            .filter(|&s| s != (w, h))
    };
    if colour {
        let mut rgb: RgbImage = img.to_rgb8();
        if let Some((w, h)) = fit(rgb.width(), rgb.height()) {
            rgb = imageops::resize(&rgb, w, h, FilterType::Triangle);
        }
        let (w, h) = (rgb.width() as usize, rgb.height() as usize);
        let mut out = vec![0u8; 3 * h * w];
        let (b, rest) = out.split_at_mut(h * w);
        let (g, r) = rest.split_at_mut(h * w);
        for (i, px) in rgb.pixels().enumerate() {
            (r[i], g[i], b[i]) = (px[0], px[1], px[2]);
        }
        return Ok((out, [3, h, w]));
    }
    let mut grey = luma(&img);
    if let Some((w, h)) = fit(grey.width(), grey.height()) {
        grey = imageops::resize(&grey, w, h, FilterType::Triangle);
    }
    let (w, h) = (grey.width() as usize, grey.height() as usize);
    Ok((grey.into_raw(), [1, h, w]))
}

/// Grey levels: a grey file as stored, a colour one by BT.601 weights.
fn luma(img: &DynamicImage) -> GrayImage {
    if !img.color().has_color() {
        return img.to_luma8();
    }
    let rgb = img.to_rgb8();
    GrayImage::from_fn(rgb.width(), rgb.height(), |x, y| {
        let p = rgb.get_pixel(x, y);
        let y =
            (4899 * u32::from(p[0]) + 9617 * u32::from(p[1]) + 1868 * u32::from(p[2]) + (1 << 13))
                >> 14;
        Luma([y as u8])
    })
}
