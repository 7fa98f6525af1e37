//! `netrun align --draw`: boxes and landmarks drawn over a copy of the
//! input, for a person to check the detections.

use super::mtcnn::Face;
use image::{Rgb as Px, RgbImage};

/// Colours: the kept face, the other faces, the landmarks.
const KEPT: Px<u8> = Px([40, 220, 40]);
const OTHER: Px<u8> = Px([250, 200, 0]);
const POINTS: [Px<u8>; 5] = [
    Px([255, 40, 40]),
    Px([255, 40, 40]),
    Px([40, 120, 255]),
    Px([255, 0, 255]),
    Px([255, 0, 255]),
];

/// Draws every face's box (the `kept` one in green) and its five points.
pub fn draw(img: &mut RgbImage, faces: &[Face], kept: Option<usize>) {
    let side = img.width().min(img.height()) as f32;
    let thick = (side / 150.0).ceil().max(1.0) as i64;
    let radius = (side / 100.0).ceil().max(2.0) as i64;
    for (n, f) in faces.iter().enumerate() {
        let col = if Some(n) == kept { KEPT } else { OTHER };
        let [x1, y1, x2, y2] = f.bbox.map(|v| v.round() as i64);
        for t in 0..thick {
            hline(img, x1 - t, x2 + t, y1 - t, col);
            hline(img, x1 - t, x2 + t, y2 + t, col);
            vline(img, x1 - t, y1 - t, y2 + t, col);
            vline(img, x2 + t, y1 - t, y2 + t, col);
        }
        for (k, p) in f.landmarks.iter().enumerate() {
            disc(
                img,
                p[0].round() as i64,
                p[1].round() as i64,
                radius,
                POINTS[k],
            );
        }
    }
}

fn put(img: &mut RgbImage, x: i64, y: i64, c: Px<u8>) {
    if x >= 0 && y >= 0 && (x as u32) < img.width() && (y as u32) < img.height() {
        img.put_pixel(x as u32, y as u32, c);
    }
}

fn hline(img: &mut RgbImage, x1: i64, x2: i64, y: i64, c: Px<u8>) {
    for x in x1..=x2 {
        put(img, x, y, c);
    }
}

fn vline(img: &mut RgbImage, x: i64, y1: i64, y2: i64, c: Px<u8>) {
    for y in y1..=y2 {
        put(img, x, y, c);
    }
}

fn disc(img: &mut RgbImage, cx: i64, cy: i64, r: i64, c: Px<u8>) {
    for y in -r..=r {
        for x in -r..=r {
            if x * x + y * y <= r * r {
                put(img, cx + x, cy + y, c);
            }
        }
    }
}
