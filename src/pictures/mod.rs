//! Pictures: training curves (`netrun plot`), feature extraction and its
//! 2-D scatter (`netrun features`, `netrun plot-features`), and the layer
//! graph (`netrun draw`).
//!
//! Charts are drawn with `plotters` into a PNG (its bitmap backend, encoded
//! by the `image` crate) or an SVG, chosen by the output's extension. Text
//! is laid out with the DejaVu Sans font embedded in the binary
//! (`assets/fonts/`, Bitstream Vera licence), so no system font is needed.

pub mod draw;
pub mod features;
pub mod plot;
pub mod scatter;

use crate::error::{Error, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;
use std::sync::Once;

/// The font family name the charts ask for.
pub const FONT: &str = "sans-serif";

static FONT_BYTES: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// Registers the embedded font with plotters (once per process).
fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The embedded file is a valid TrueType font; a failure would show as missing text.
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, FONT_BYTES);
    });
}

/// The picture formats charts are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Png,
    Svg,
}

/// The chart format named by `path`'s extension.
pub fn chart_format(path: &Path) -> Result<Format> {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    match ext.as_deref() {
        Some("png") => Ok(Format::Png),
        Some("svg") => Ok(Format::Svg),
        _ => Err(Error::Other(format!(
            "cannot tell the picture format of `{}`: name it `.png` or `.svg`",
            path.display()
        ))),
    }
}

/// An error of plotters, as text.
pub(crate) fn drawing<E: std::fmt::Display>(e: E) -> String {
    format!("drawing failed: {e}")
}

fn write_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Other(format!("cannot write `{}`: {e}", path.display()))
}

/// Writes `chart` to `path` as PNG or SVG (by extension), `size` = (width, height) pixels.
pub fn write_chart<C: Chart>(path: &Path, size: (u32, u32), chart: &C) -> Result<()> {
    register_font();
    let format = chart_format(path)?;
    let (w, h) = size;
    match format {
        Format::Png => {
            let mut pixels = vec![0u8; w as usize * h as usize * 3];
            {
                let root = BitMapBackend::with_buffer(&mut pixels, size).into_drawing_area();
                root.fill(&WHITE).map_err(|e| Error::Other(drawing(e)))?;
                chart.draw(&root).map_err(Error::Other)?;
                root.present().map_err(|e| Error::Other(drawing(e)))?;
            }
            image::save_buffer_with_format(
                path,
                &pixels,
                w,
                h,
                image::ExtendedColorType::Rgb8,
                image::ImageFormat::Png,
            )
            .map_err(|e| write_error(path, e))
        }
        Format::Svg => {
            let mut text = String::new();
            {
                let root = SVGBackend::with_string(&mut text, size).into_drawing_area();
                root.fill(&WHITE).map_err(|e| Error::Other(drawing(e)))?;
                chart.draw(&root).map_err(Error::Other)?;
                root.present().map_err(|e| Error::Other(drawing(e)))?;
            }
            std::fs::write(path, text).map_err(|e| write_error(path, e))
        }
    }
}

/// A picture drawable on any plotters backend.
pub trait Chart {
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> std::result::Result<(), String>;
}

/// Ten distinct colours (Tableau 10), for classes and series.
pub const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Colour `i`: the palette first, then hues spread by the golden angle.
pub fn color(i: usize) -> RGBColor {
    if i < PALETTE.len() {
        return PALETTE[i];
    }
    let hue = ((i - PALETTE.len()) as f64 * 137.507_764) % 360.0;
    let (r, g, b) = hsv(hue, 0.65, 0.85);
    RGBColor(r, g, b)
}

fn hsv(h: f64, s: f64, v: f64) -> (u8, u8, u8) {
    let c = v * s;
    let x = c * (1.0 - ((h / 60.0) % 2.0 - 1.0).abs());
    let (r, g, b) = match (h / 60.0) as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = v - c;
    let byte = |f: f64| ((f + m) * 255.0).round() as u8;
    (byte(r), byte(g), byte(b))
}

/// `[lo, hi]` widened by `margin` of its width on each side (a unit around a single value).
pub fn padded(lo: f64, hi: f64, margin: f64) -> (f64, f64) {
    if !(lo.is_finite() && hi.is_finite()) {
        return (0.0, 1.0);
    }
    let w = hi - lo;
    if w <= f64::EPSILON * hi.abs().max(1.0) {
        let d = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        return (lo - d, hi + d);
    }
    (lo - margin * w, hi + margin * w)
}

/// Tick labels with as few digits as the axis needs (`0.001`, `2.5e-05`, `12000`).
pub fn tick(x: f64) -> String {
    crate::train::log::fmt_g(if x.abs() < 1e-12 { 0.0 } else { x })
}
