//! `netrun plot-features FEATS`: a 2-D scatter of two feature dimensions,
//! one colour per class, as the MNIST figures of the center-loss paper.
//!
//! Reads the tensors `features` (N×D, F32 or F64) and optionally `labels`
//! (N or N×1, float or integer) of a safetensors file, as `netrun features`
//! writes them or numpy's `safetensors.numpy.save_file` does. Point i is at
//! (features[i, a], features[i, b]) for `--dims a,b` (default 0,1), coloured
//! by class round(labels[i]); classes are listed in the legend.

use super::{color, padded, tick, Chart};
use crate::error::{Error, Result};
use crate::shape::fmt_shape;
use crate::tensors::TensorFile;
use plotters::coord::Shift;
use plotters::prelude::*;
use safetensors::Dtype;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// `netrun plot-features` arguments.
#[derive(Debug, Clone)]
pub struct PlotFeaturesOptions {
    /// A safetensors file with `features` (N×D) and `labels` (N), as `netrun features` writes.
    pub features: PathBuf,
    /// The picture to write, `.png` or `.svg`.
    pub output: PathBuf,
    /// The title [default: the file's name].
    pub title: Option<String>,
    /// The two feature dimensions to plot, e.g. `0,1`.
    pub dims: Option<[usize; 2]>,
}

/// The points to plot: (x, y, class) and the dimensions they came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Scatter {
    pub points: Vec<(f64, f64, Option<i64>)>,
    pub dims: [usize; 2],
    /// D, the feature dimension of the file.
    pub dim: usize,
}

/// Reads `features` and `labels` from `path` and picks dimensions `dims`.
pub fn read_scatter(path: &Path, dims: Option<[usize; 2]>) -> Result<Scatter> {
    let file = TensorFile::open(path)?;
    let here = || format!("`{}`", path.display());
    let names = file.names()?;
    if !names.iter().any(|n| n == "features") {
        return Err(Error::Other(format!(
            "{} has no tensor `features` (it has {}); write one with `netrun features`",
            here(),
            names.join(", ")
        )));
    }
    let (shape, values) = file.f64("features")?;
    if shape.len() != 2 {
        return Err(Error::Other(format!(
            "{}: `features` is {}, expected N×D (one row per sample)",
            here(),
            fmt_shape(&shape)
        )));
    }
    let (n, d) = (shape[0], shape[1]);
    if d < 2 {
        return Err(Error::Other(format!(
            "{}: `features` is {}: a 2-D scatter needs at least 2 feature dimensions, it has {d}",
            here(),
            fmt_shape(&shape)
        )));
    }
    let dims = dims.unwrap_or([0, 1]);
    if let Some(bad) = dims.iter().find(|&&k| k >= d) {
        return Err(Error::Other(format!(
            "{}: dimension {bad} of --dims is out of range: `features` has {d} (0 to {})",
            here(),
            d - 1
        )));
    }
    let labels = if names.iter().any(|n| n == "labels") {
        let labels = read_labels(&file)?;
        if labels.len() != n {
            return Err(Error::Other(format!(
                "{}: `labels` has {} values but `features` has {n} rows",
                here(),
                labels.len()
            )));
        }
        Some(labels)
    } else {
        None
    };
    let points = (0..n)
        .map(|i| {
            let row = &values[i * d..(i + 1) * d];
            (row[dims[0]], row[dims[1]], labels.as_ref().map(|l| l[i]))
        })
        .collect();
    Ok(Scatter {
        points,
        dims,
        dim: d,
    })
}

/// `labels` as integers, from any float or integer dtype (N or N×1).
fn read_labels(file: &TensorFile) -> Result<Vec<i64>> {
    let raw = file.raw()?;
    let t = raw
        .iter()
        .find(|t| t.name == "labels")
        .expect("listed by names()");
    let here = || format!("tensor `labels` in `{}`", file.path().display());
    if t.shape.len() > 2 || (t.shape.len() == 2 && t.shape[1] != 1) {
        return Err(Error::Other(format!(
            "{}: shape {}, expected N (one label per row)",
            here(),
            fmt_shape(&t.shape)
        )));
    }
    let decode: fn(&[u8]) -> i64 = match t.dtype {
        Dtype::F32 => |b| f32::from_le_bytes(b.try_into().unwrap()).round() as i64,
        Dtype::F64 => |b| f64::from_le_bytes(b.try_into().unwrap()).round() as i64,
        Dtype::I64 => |b| i64::from_le_bytes(b.try_into().unwrap()),
        Dtype::I32 => |b| i32::from_le_bytes(b.try_into().unwrap()) as i64,
        Dtype::U8 => |b| b[0] as i64,
        other => {
            return Err(Error::Other(format!(
                "{}: stored as {other}; use F32, F64, I64, I32 or U8",
                here()
            )))
        }
    };
    let width = t.dtype.bitsize() / 8;
    Ok(t.bytes.chunks_exact(width).map(decode).collect())
}

/// Runs `netrun plot-features`; returns the report.
pub fn run(args: &PlotFeaturesOptions) -> Result<String> {
    super::chart_format(&args.output)?;
    let scatter = read_scatter(&args.features, args.dims)?;
    let title = args.title.clone().unwrap_or_else(|| {
        args.features
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    let chart = ScatterChart {
        scatter: &scatter,
        title,
    };
    super::write_chart(&args.output, (900, 800), &chart)?;
    let classes = chart.classes().len();
    let mut report = String::new();
    if scatter.dim > 2 && args.dims.is_none() {
        report += &format!(
            "note: the features have {} dimensions; plotting dimensions 0 and 1 (choose others with --dims I,J)\n",
            scatter.dim
        );
    }
    report += &format!(
        "Wrote {} ({} points, {} classes, dimensions {} and {})",
        args.output.display(),
        scatter.points.len(),
        classes,
        scatter.dims[0],
        scatter.dims[1]
    );
    Ok(report)
}

struct ScatterChart<'a> {
    scatter: &'a Scatter,
    title: String,
}

impl ScatterChart<'_> {
    /// Class → point count, in class order.
    fn classes(&self) -> BTreeMap<i64, usize> {
        let mut classes = BTreeMap::new();
        for p in &self.scatter.points {
            if let Some(c) = p.2 {
                *classes.entry(c).or_default() += 1;
            }
        }
        classes
    }
}

impl Chart for ScatterChart<'_> {
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> std::result::Result<(), String> {
        let area = root
            .titled(&self.title, (super::FONT, 28))
            .map_err(super::drawing)?;
        let classes = self.classes();
        let (plot, legend) = area.split_horizontally(area.dim_in_pixel().0 as i32 - 120);
        let pts = &self.scatter.points;
        let fold = |f: fn(&(f64, f64, Option<i64>)) -> f64| {
            pts.iter()
                .map(f)
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                    (a.min(v), b.max(v))
                })
        };
        let (x0, x1) = fold(|p| p.0);
        let (y0, y1) = fold(|p| p.1);
        let x = padded(x0, x1, 0.05);
        let y = padded(y0, y1, 0.05);
        let [a, b] = self.scatter.dims;
        let mut chart = ChartBuilder::on(&plot)
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(70)
            .build_cartesian_2d(x.0..x.1, y.0..y.1)
            .map_err(super::drawing)?;
        chart
            .configure_mesh()
            .x_desc(format!("feature {a}"))
            .y_desc(format!("feature {b}"))
            .x_label_formatter(&|v| tick(*v))
            .y_label_formatter(&|v| tick(*v))
            .label_style((super::FONT, 15))
            .axis_desc_style((super::FONT, 17))
            .max_light_lines(1)
            .light_line_style(RGBColor(242, 242, 242))
            .bold_line_style(RGBColor(220, 220, 220))
            .draw()
            .map_err(super::drawing)?;
        // Small translucent dots, so dense clusters still show their shape.
        let radius = if pts.len() > 2000 { 2 } else { 3 };
        let index: BTreeMap<i64, usize> =
            classes.keys().enumerate().map(|(i, &c)| (c, i)).collect();
        chart
            .draw_series(pts.iter().map(|&(px, py, c)| {
                let col = c.map_or(RGBColor(60, 60, 60), |c| color(index[&c]));
                Circle::new((px, py), radius, col.mix(0.6).filled())
            }))
            .map_err(super::drawing)?;
        // The legend: one row per class, beside the plot.
        let text = (super::FONT, 17).into_font();
        legend
            .draw(&Text::new("class", (10, 20), text.clone()))
            .map_err(super::drawing)?;
        // Rows that fit under the title; more classes than that are only counted.
        let rows = ((legend.dim_in_pixel().1 as i32 - 60) / 26).max(1) as usize;
        if classes.len() > rows {
            legend
                .draw(&Text::new(
                    format!("{} classes", classes.len()),
                    (10, 50),
                    text,
                ))
                .map_err(super::drawing)?;
            return Ok(());
        }
        for (row, (&c, _)) in classes.iter().enumerate() {
            let top = 50 + 26 * row as i32;
            let col = color(index[&c]);
            legend
                .draw(&Circle::new((18, top + 8), 6, col.filled()))
                .map_err(super::drawing)?;
            legend
                .draw(&Text::new(c.to_string(), (32, top), text.clone()))
                .map_err(super::drawing)?;
        }
        Ok(())
    }
}
