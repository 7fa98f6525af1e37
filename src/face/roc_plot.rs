//! `netrun verify --plot roc.png`: the ROC curve, TAR against FAR on a
//! logarithmic FAR axis (the range face verification is judged in), from
//! one false accept in the mismatched pairs (or 10⁻⁴) to 1. Points with
//! FAR = 0 sit on the left edge. The title gives the cross-validated
//! accuracy and the AUC.

use super::verify::VerifyReport;
use crate::error::Result;
use crate::pictures::{color, tick, write_chart, Chart, FONT};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

/// Writes the ROC of `report` to `path` (`.png` or `.svg`).
pub fn write(path: &Path, report: &VerifyReport) -> Result<()> {
    write_chart(path, (800, 700), &RocChart { report })
}

struct RocChart<'a> {
    report: &'a VerifyReport,
}

impl Chart for RocChart<'_> {
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> std::result::Result<(), String> {
        let r = self.report;
        let title = format!(
            "ROC: accuracy {:.2}% ± {:.2}%, AUC {:.4}",
            100.0 * r.cv.mean(),
            100.0 * r.cv.std(),
            r.auc
        );
        let area = root
            .titled(&title, (FONT, 24))
            .map_err(crate::pictures::drawing)?;
        let lo = (1.0 / r.roc.negatives as f64).clamp(1e-4, 1e-1);
        let mut chart = ChartBuilder::on(&area)
            .margin(20)
            .x_label_area_size(50)
            .y_label_area_size(65)
            .build_cartesian_2d((lo..1.0).log_scale(), 0.0..1.0)
            .map_err(crate::pictures::drawing)?;
        chart
            .configure_mesh()
            .x_desc("false accept rate (FAR)")
            .y_desc("true accept rate (TAR)")
            .x_label_formatter(&|v| tick(*v))
            .y_label_formatter(&|v| tick(*v))
            .label_style((FONT, 15))
            .axis_desc_style((FONT, 17))
            .light_line_style(RGBColor(242, 242, 242))
            .bold_line_style(RGBColor(220, 220, 220))
            .draw()
            .map_err(crate::pictures::drawing)?;
        let pts: Vec<(f64, f64)> = r
            .roc
            .points
            .iter()
            .map(|p| (p.far.max(lo), p.tar))
            .collect();
        chart
            .draw_series(LineSeries::new(pts, color(0).stroke_width(3)))
            .map_err(crate::pictures::drawing)?
            .label(format!(
                "{} matched / {} mismatched pairs",
                r.roc.positives, r.roc.negatives
            ))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color(0).stroke_width(3)));
        for (i, (far, p)) in r.tar_at_far.iter().enumerate() {
            if *far < lo {
                continue;
            }
            let col = color(i + 1);
            chart
                .draw_series(std::iter::once(Circle::new((*far, p.tar), 6, col.filled())))
                .map_err(crate::pictures::drawing)?
                .label(format!("TAR {:.2}% at FAR {far:e}", 100.0 * p.tar))
                .legend(move |(x, y)| Circle::new((x + 10, y), 5, col.filled()));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .label_font((FONT, 16))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(200, 200, 200))
            .draw()
            .map_err(crate::pictures::drawing)?;
        Ok(())
    }
}
