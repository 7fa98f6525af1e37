//! `netrun plot LOG`: training curves from a training log.
//!
//! Two log formats are read:
//! * netrun's JSON-lines record (`<snapshot_prefix>.log.jsonl`, see
//!   [`crate::train::log::Log::record`]): a TRAIN record gives the smoothed
//!   loss and the learning rate at its `iter`, a TEST record its `outputs`
//!   (and `loss`, shown as `total loss`, when `test_compute_loss`);
//! * a Caffe (or netrun) text log: `Iteration N ..., loss = X`,
//!   `Iteration N, lr = Y`, `Iteration N, Testing net (#k)` followed by
//!   `Test net output #i: name = v` lines; glog prefixes are ignored.
//!
//! Panels, top to bottom: losses (training loss and test outputs whose name
//! holds `loss`), the other test outputs (accuracy), the learning rate; all
//! against the iteration. A resumed run appends to the same log: a point at
//! an iteration not after the curve's last one drops the points from that
//! iteration on, so the curve shows the run as it continued.

use super::{color, padded, tick, Chart};
use crate::error::{Error, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

/// `netrun plot` arguments.
#[derive(Debug, Clone)]
pub struct PlotOptions {
    /// A training log: netrun's `<snapshot_prefix>.log.jsonl` or a Caffe text log.
    pub log: PathBuf,
    /// The picture to write, `.png` or `.svg` [default: LOG with extension `.png`].
    pub output: Option<PathBuf>,
    /// The title [default: the log's file name].
    pub title: Option<String>,
}

/// Values of one quantity against the iteration.
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

impl Curve {
    fn new(name: &str) -> Curve {
        Curve {
            name: name.to_string(),
            points: Vec::new(),
        }
    }

    /// Adds a point; a non-finite value is left out, an iteration not after
    /// the last one restarts the curve there (a resumed run).
    pub fn push(&mut self, iter: f64, value: f64) {
        if !value.is_finite() {
            return;
        }
        while self.points.last().is_some_and(|p| p.0 >= iter) {
            self.points.pop();
        }
        self.points.push((iter, value));
    }
}

/// Which format a log was read as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    JsonLines,
    CaffeText,
}

/// The curves of a training log.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingLog {
    pub format: LogFormat,
    /// The (smoothed) training loss.
    pub loss: Curve,
    pub lr: Curve,
    /// Test outputs in the order first seen; `name` or `name (net k)` for test net k > 0.
    pub test: Vec<Curve>,
}

impl TrainingLog {
    fn new(format: LogFormat) -> TrainingLog {
        TrainingLog {
            format,
            loss: Curve::new("train loss"),
            lr: Curve::new("learning rate"),
            test: Vec::new(),
        }
    }

    fn test_point(&mut self, net: usize, name: &str, iter: f64, value: f64) {
        let name = if net == 0 {
            name.to_string()
        } else {
            format!("{name} (net {net})")
        };
        let i = match self.test.iter().position(|c| c.name == name) {
            Some(i) => i,
            None => {
                self.test.push(Curve::new(&name));
                self.test.len() - 1
            }
        };
        self.test[i].push(iter, value);
    }

    fn is_empty(&self) -> bool {
        self.loss.points.is_empty()
            && self.lr.points.is_empty()
            && self.test.iter().all(|c| c.points.is_empty())
    }
}

/// Reads a log file in either format (decided by its first non-blank line).
pub fn read_log(path: &Path) -> Result<TrainingLog> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let log = parse_log(&text).map_err(|m| Error::Other(format!("`{}` {m}", path.display())))?;
    if log.is_empty() {
        return Err(Error::Other(format!(
            "`{}` holds no training records: expected netrun's JSON-lines log \
             (`<snapshot_prefix>.log.jsonl`) or a Caffe log with `Iteration N, loss = X` lines",
            path.display()
        )));
    }
    Ok(log)
}

/// Parses log text; an error reads after the file name (`line 3: ...`).
pub fn parse_log(text: &str) -> std::result::Result<TrainingLog, String> {
    let first = text.lines().map(str::trim).find(|l| !l.is_empty());
    if first.is_some_and(|l| l.starts_with('{')) {
        parse_jsonl(text)
    } else {
        Ok(parse_caffe(text))
    }
}

fn parse_jsonl(text: &str) -> std::result::Result<TrainingLog, String> {
    use serde_json::Value;
    let mut log = TrainingLog::new(LogFormat::JsonLines);
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = format!("line {}", i + 1);
        let record: Value = match serde_json::from_str(line) {
            Ok(v) => v,
            // A run still writing may leave its last line unfinished.
            Err(_) if i + 1 == lines.len() && !text.ends_with('\n') => break,
            Err(e) => return Err(format!("{at} is not a JSON record: {e}")),
        };
        let iter = record
            .get("iter")
            .and_then(Value::as_u64)
            .ok_or_else(|| format!("{at} has no `iter` (not a netrun training log record)"))?
            as f64;
        let num = |key: &str| record.get(key).and_then(Value::as_f64);
        match record.get("phase").and_then(Value::as_str) {
            Some("TRAIN") => {
                if let Some(l) = num("loss") {
                    log.loss.push(iter, l);
                }
                if let Some(r) = num("lr") {
                    log.lr.push(iter, r);
                }
            }
            Some("TEST") => {
                let net = record.get("net").and_then(Value::as_u64).unwrap_or(0) as usize;
                if let Some(l) = num("loss") {
                    log.test_point(net, "total loss", iter, l);
                }
                if let Some(outputs) = record.get("outputs").and_then(Value::as_object) {
                    for (name, v) in outputs {
                        if let Some(v) = v.as_f64() {
                            log.test_point(net, name, iter, v);
                        }
                    }
                }
            }
            _ => return Err(format!("{at} has no `phase` of TRAIN or TEST")),
        }
    }
    Ok(log)
}

/// The number after `Iteration ` in a line.
fn iteration(line: &str) -> Option<f64> {
    let rest = &line[line.find("Iteration ")? + "Iteration ".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse::<u64>().ok().map(|n| n as f64)
}

/// The number right after `key` (up to the next space or comma).
fn value_after(line: &str, key: &str) -> Option<f64> {
    let rest = &line[line.find(key)? + key.len()..];
    let token = rest.split([' ', ',', '\t']).next()?;
    token.parse().ok()
}

fn parse_caffe(text: &str) -> TrainingLog {
    let mut log = TrainingLog::new(LogFormat::CaffeText);
    // The iteration and test net of the `Testing net (#k)` line above.
    let mut testing: Option<(f64, usize)> = None;
    for line in text.lines() {
        if let Some(at) = line.find("Test net output #") {
            let rest = &line[at + "Test net output #".len()..];
            let (Some((_, assignment)), Some((iter, net))) = (rest.split_once(':'), testing) else {
                continue;
            };
            if let Some((name, _)) = assignment.split_once(" = ") {
                if let Some(v) = value_after(assignment, " = ") {
                    log.test_point(net, name.trim(), iter, v);
                }
            }
        } else if let Some(at) = line.find("Testing net (#") {
            let k = line[at + "Testing net (#".len()..]
                .split(')')
                .next()
                .and_then(|k| k.parse().ok())
                .unwrap_or(0);
            testing = iteration(line).map(|i| (i, k));
        } else if line.contains("Test loss: ") {
            if let (Some(v), Some((iter, net))) = (value_after(line, "Test loss: "), testing) {
                log.test_point(net, "total loss", iter, v);
            }
        } else if let Some(iter) = iteration(line) {
            if let Some(lr) = value_after(line, ", lr = ") {
                log.lr.push(iter, lr);
            } else if let Some(l) = value_after(line, "loss = ") {
                log.loss.push(iter, l);
            }
        }
    }
    log
}

/// Runs `netrun plot`; returns the report line.
pub fn run(args: &PlotOptions) -> Result<String> {
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| args.log.with_extension("png"));
    super::chart_format(&output)?;
    let log = read_log(&args.log)?;
    let title = args.title.clone().unwrap_or_else(|| {
        args.log
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    let chart = CurvesChart { log: &log, title };
    let panels = chart.panels().len() as u32;
    super::write_chart(&output, (1000, 70 + 300 * panels), &chart)?;
    let mut tested: Vec<f64> = log
        .test
        .iter()
        .flat_map(|c| c.points.iter().map(|p| p.0))
        .collect();
    tested.sort_by(f64::total_cmp);
    tested.dedup();
    let tests = tested.len();
    Ok(format!(
        "Wrote {} ({} loss points, {} tests, {} learning-rate points)",
        output.display(),
        log.loss.points.len(),
        tests,
        log.lr.points.len()
    ))
}

/// A curve on a panel and how to draw it.
struct Line<'a> {
    label: String,
    points: &'a [(f64, f64)],
    color: RGBColor,
    /// Markers on the points (sparse curves: tests).
    marks: bool,
}

struct Panel<'a> {
    y_label: &'static str,
    lines: Vec<Line<'a>>,
    /// Where the legend goes; none for a panel whose axis names its one line.
    legend: Option<SeriesLabelPosition>,
}

struct CurvesChart<'a> {
    log: &'a TrainingLog,
    title: String,
}

impl<'a> CurvesChart<'a> {
    /// The panels and their lines; every line of the chart gets its own colour.
    fn panels(&self) -> Vec<Panel<'a>> {
        let log = self.log;
        let is_loss = |c: &&Curve| c.name.contains("loss");
        let mut next = 0usize;
        let mut line = |label: String, points: &'a [(f64, f64)], marks: bool| {
            next += 1;
            Line {
                label,
                points,
                color: color(next - 1),
                marks,
            }
        };
        let mut losses = Vec::new();
        if !log.loss.points.is_empty() {
            losses.push(line(log.loss.name.clone(), &log.loss.points, false));
        }
        for c in log.test.iter().filter(is_loss) {
            losses.push(line(format!("test {}", c.name), &c.points, true));
        }
        let outputs: Vec<Line> = log
            .test
            .iter()
            .filter(|c| !is_loss(c))
            .map(|c| line(format!("test {}", c.name), &c.points, true))
            .collect();
        let rate = line(log.lr.name.clone(), &log.lr.points, false);
        let mut panels = Vec::new();
        for (y_label, lines, legend) in [
            ("loss", losses, Some(SeriesLabelPosition::UpperRight)),
            (
                "test output",
                outputs,
                Some(SeriesLabelPosition::LowerRight),
            ),
            ("learning rate", vec![rate], None),
        ] {
            if lines.iter().any(|l| !l.points.is_empty()) {
                panels.push(Panel {
                    y_label,
                    lines,
                    legend,
                });
            }
        }
        panels
    }
}

impl Chart for CurvesChart<'_> {
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> std::result::Result<(), String> {
        let area = root
            .titled(&self.title, (super::FONT, 28))
            .map_err(super::drawing)?;
        let panels = self.panels();
        let all = panels
            .iter()
            .flat_map(|p| p.lines.iter())
            .flat_map(|l| l.points.iter());
        let (x0, x1) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
            (a.min(p.0), b.max(p.0))
        });
        let x = padded(x0, x1, 0.02);
        let areas = area.split_evenly((panels.len().max(1), 1));
        for (panel, area) in panels.iter().zip(&areas) {
            draw_panel(area, x, panel)?;
        }
        Ok(())
    }
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    x: (f64, f64),
    panel: &Panel,
) -> std::result::Result<(), String> {
    let ys = panel
        .lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1));
    let (lo, hi) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), y| {
        (a.min(y), b.max(y))
    });
    // A learning rate reads best from zero, so that its steps compare.
    let lo = if panel.y_label == "learning rate" && lo > 0.0 {
        0.0
    } else {
        lo
    };
    let y = padded(lo, hi, 0.06);
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .margin_right(30)
        .x_label_area_size(45)
        .y_label_area_size(85)
        .build_cartesian_2d(x.0..x.1, y.0..y.1)
        .map_err(super::drawing)?;
    chart
        .configure_mesh()
        .x_desc("iteration")
        .y_desc(panel.y_label)
        .x_label_formatter(&|v| tick(*v))
        .y_label_formatter(&|v| tick(*v))
        .label_style((super::FONT, 15))
        .axis_desc_style((super::FONT, 17))
        .max_light_lines(1)
        .light_line_style(RGBColor(242, 242, 242))
        .bold_line_style(RGBColor(215, 215, 215))
        .draw()
        .map_err(super::drawing)?;
    for line in &panel.lines {
        let color = line.color;
        chart
            .draw_series(LineSeries::new(
                line.points.iter().copied(),
                color.stroke_width(2),
            ))
            .map_err(super::drawing)?
            .label(line.label.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3))
            });
        if line.marks {
            chart
                .draw_series(
                    line.points
                        .iter()
                        .map(|&p| Circle::new(p, 3, color.filled())),
                )
                .map_err(super::drawing)?;
        }
    }
    let Some(position) = panel.legend.clone() else {
        return Ok(());
    };
    chart
        .configure_series_labels()
        .position(position)
        .label_font((super::FONT, 15))
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(190, 190, 190))
        .draw()
        .map_err(super::drawing)?;
    Ok(())
}
