//! The text training log `<snapshot_prefix>.log`: glog's line prefix, and
//! Caffe's `tools/extra/parse_log.py` reading it. The script's regular
//! expressions and its row logic are re-implemented here and applied to a
//! real run's log; the values it extracts must be the run's (its JSON record).

use netrun::solverdef::read_solver_file_in;
use netrun::train::log::{glog_prefix, utc_time, Log};
use netrun::train::{TrainOptions, Trainer};
use regex::Regex;
use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

#[test]
fn utc_dates_follow_the_gregorian_calendar() {
    // Timestamps computed outside netrun (Python's calendar.timegm).
    assert_eq!(utc_time(0), [1, 1, 0, 0, 0]);
    assert_eq!(utc_time(1_709_210_096), [2, 29, 12, 34, 56]);
    assert_eq!(utc_time(951_782_400), [2, 29, 0, 0, 0]);
    // 2100 is not a leap year.
    assert_eq!(utc_time(4_107_628_799), [3, 1, 23, 59, 59]);
    assert_eq!(utc_time(946_684_799), [12, 31, 23, 59, 59]);
    assert_eq!(utc_time(-1), [12, 31, 23, 59, 59]);
}

#[test]
fn the_prefix_is_glog_s() {
    // 2024-02-29 12:34:56.123456 UTC.
    let at = UNIX_EPOCH + Duration::new(1_709_210_096, 123_456_789);
    let p = glog_prefix('I', at, 4321, "train/mod.rs", 77);
    let re = Regex::new(r"^I(\d\d)(\d\d) (\d\d):(\d\d):(\d\d)\.123456  4321 train/mod.rs:77\] $")
        .unwrap();
    let c = re.captures(&p).unwrap_or_else(|| panic!("{p:?}"));
    // Local time: the day may be a neighbour's and the hour any; the seconds stay.
    let (mo, d) = (&c[1], &c[2]);
    assert!(
        [("02", "28"), ("02", "29"), ("03", "01")].contains(&(mo, d)),
        "{p}"
    );
    assert!(c[3].parse::<u32>().unwrap() < 24 && c[4].parse::<u32>().unwrap() < 60);
    assert_eq!(&c[5], "56");
    assert!(glog_prefix('W', at, 123_456, "a.rs", 1).starts_with('W'));
    assert!(glog_prefix('W', at, 123_456, "a.rs", 1).contains(" 123456 a.rs:1] "));
}

const NET: &str = r#"
name: "logged"
layer { name: "x" type: "DummyData" top: "x" top: "y"
  dummy_data_param { shape { dim: 4 dim: 3 } shape { dim: 4 dim: 2 }
    data_filler { type: "gaussian" std: 1 } } }
layer { name: "ip" type: "InnerProduct" bottom: "x" top: "p"
  inner_product_param { num_output: 2 weight_filler { type: "gaussian" std: 0.1 } } }
layer { name: "loss" type: "EuclideanLoss" bottom: "p" bottom: "y" top: "loss" }
layer { name: "l1" type: "EuclideanLoss" bottom: "p" bottom: "y" top: "l1"
  loss_weight: 0 include { phase: TEST } }
"#;

const SOLVER: &str = r#"
test_iter: 2
test_interval: 10
base_lr: 0.01
lr_policy: "step"
gamma: 0.5
stepsize: 10
display: 5
max_iter: 20
random_seed: 1
"#;

/// One row of parse_log.py's output tables.
#[derive(Debug, Clone)]
struct Row {
    iters: f64,
    seconds: f64,
    lr: f64,
    values: BTreeMap<String, f64>,
}

/// parse_log.py's `parse_line_for_net_output`: a matching line adds its value
/// to the row of the current iteration (starting a new row when the
/// iteration changed); a row with as many columns as the first row is complete.
fn net_output(
    re: &Regex,
    row: &mut Option<Row>,
    rows: &mut Vec<Row>,
    line: &str,
    at: (f64, f64, f64),
) {
    if let Some(c) = re.captures(line) {
        if row.as_ref().is_none_or(|r| r.iters != at.0) {
            if let Some(r) = row.take() {
                rows.push(r);
            }
            *row = Some(Row {
                iters: at.0,
                seconds: at.1,
                lr: at.2,
                values: BTreeMap::new(),
            });
        }
        let value: f64 = c[3].parse().unwrap();
        row.as_mut().unwrap().values.insert(c[2].to_string(), value);
    }
    let full = match (row.as_ref(), rows.first()) {
        (Some(r), Some(first)) => r.values.len() == first.values.len(),
        _ => false,
    };
    if full {
        rows.push(row.take().unwrap());
    }
}

/// extract_seconds.py's `extract_datetime_from_line`: the first word's
/// month and day, the second word's time; as seconds of a (leap) year.
fn line_time(line: &str) -> Option<f64> {
    let mut words = line.split_whitespace();
    let (first, time) = (words.next()?, words.next()?);
    let month: u32 = first.get(1..3)?.parse().ok()?;
    let day: u32 = first.get(3..5)?.parse().ok()?;
    let (hms, micros) = time.rsplit_once('.')?;
    let hms: Vec<u32> = hms
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let micros: u32 = micros.parse().ok()?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hms.len() != 3 {
        return None;
    }
    let days_before = [0, 31, 60, 91, 121, 152, 182, 213, 244, 274, 305, 335];
    let days = (days_before[month as usize - 1] + day - 1) as f64;
    Some(days * 86_400.0 + (hms[0] * 3600 + hms[1] * 60 + hms[2]) as f64 + micros as f64 * 1e-6)
}

/// parse_log.py's `parse_log`: (train rows, test rows, every lr match).
fn parse_log(text: &str) -> (Vec<Row>, Vec<Row>, Vec<f64>) {
    let iteration = Regex::new(r"Iteration (\d+)").unwrap();
    let train_output = Regex::new(r"Train net output #(\d+): (\S+) = ([\.\deE+-]+)").unwrap();
    let test_output = Regex::new(r"Test net output #(\d+): (\S+) = ([\.\deE+-]+)").unwrap();
    let learning_rate = Regex::new(r"lr = ([-+]?[0-9]*\.?[0-9]+([eE]?[-+]?[0-9]+)?)").unwrap();
    // get_start_time: the first line containing 'Solving'.
    let start = text
        .lines()
        .find(|l| l.contains("Solving"))
        .and_then(line_time)
        .expect("a dated `Solving` line");
    let (mut train, mut test, mut rates) = (Vec::new(), Vec::new(), Vec::new());
    let (mut train_row, mut test_row) = (None, None);
    let (mut iter, mut lr) = (-1.0, f64::NAN);
    for line in text.lines() {
        if let Some(c) = iteration.captures(line) {
            iter = c[1].parse().unwrap();
        }
        if iter == -1.0 {
            continue;
        }
        let Some(time) = line_time(line) else {
            continue;
        };
        let seconds = time - start;
        if let Some(c) = learning_rate.captures(line) {
            lr = c[1].parse().unwrap();
            rates.push(lr);
        }
        let at = (iter, seconds, lr);
        net_output(&train_output, &mut train_row, &mut train, line, at);
        net_output(&test_output, &mut test_row, &mut test, line, at);
    }
    train.extend(train_row);
    test.extend(test_row);
    (train, test, rates)
}

#[test]
fn parse_log_reads_the_text_log() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("net.prototxt"), NET).unwrap();
    let solver = format!(
        "net: \"net.prototxt\"\nsnapshot_prefix: \"{}\"\n{SOLVER}",
        d.join("out/run").display()
    );
    std::fs::write(d.join("solver.prototxt"), solver).unwrap();
    let def = read_solver_file_in(&d.join("solver.prototxt"), d).unwrap();
    let log = Log::new(Box::new(std::io::sink()));
    let mut t = Trainer::new(def, TrainOptions::default(), log).unwrap();
    t.solve().unwrap();

    let text = std::fs::read_to_string(d.join("out/run.log")).unwrap();
    // Every line is glog's, tagged with a source file and a line it has.
    let prefix =
        Regex::new(r"^I\d{4} \d\d:\d\d:\d\d\.\d{6} +(\d+) ([\w/+]+\.rs):(\d+)\] ").unwrap();
    for line in text.lines() {
        let c = prefix.captures(line).unwrap_or_else(|| panic!("{line}"));
        assert_eq!(c[1].parse::<u32>().unwrap(), std::process::id());
        let source = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("src")
                .join(&c[2]),
        )
        .unwrap_or_else(|e| panic!("{}: {e}", &c[2]));
        let n: usize = c[3].parse().unwrap();
        assert!(n >= 1 && n <= source.lines().count(), "{line}");
    }
    // The first lines were logged before the file was opened.
    assert!(text
        .lines()
        .any(|l| l.contains("] Created snapshot folder ")));
    assert!(text.lines().any(|l| l.ends_with("] Solving logged")));

    let (train, test, rates) = parse_log(&text);
    let jsonl = std::fs::read_to_string(d.join("out/run.log.jsonl")).unwrap();
    let records: Vec<serde_json::Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let of = |phase: &str| -> Vec<&serde_json::Value> {
        records.iter().filter(|r| r["phase"] == phase).collect()
    };
    // %g keeps 6 significant digits.
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-5 * b.abs().max(1e-30);

    // Train rows at every display (0, 5, 10, 15) with the train net's output.
    let iters: Vec<f64> = train.iter().map(|r| r.iters).collect();
    assert_eq!(iters, [0.0, 5.0, 10.0, 15.0]);
    for (row, rec) in train.iter().zip(of("TRAIN")) {
        assert_eq!(row.iters, rec["iter"].as_f64().unwrap());
        assert_eq!(row.values.len(), 1);
        let want = rec["outputs"]["loss"].as_f64().unwrap();
        assert!(close(row.values["loss"], want), "{row:?} vs {rec}");
        assert!(row.seconds >= 0.0);
    }
    // Test rows at 0, 10 and 20 with both test outputs.
    let iters: Vec<f64> = test.iter().map(|r| r.iters).collect();
    assert_eq!(iters, [0.0, 10.0, 20.0]);
    for (row, rec) in test.iter().zip(of("TEST")) {
        for name in ["loss", "l1"] {
            let want = rec["outputs"][name].as_f64().unwrap();
            assert!(close(row.values[name], want), "{name}: {row:?} vs {rec}");
        }
    }
    assert!(test.windows(2).all(|w| w[0].seconds <= w[1].seconds));
    // One `lr = ` per display, the step policy's rate: 0.01 · 0.5^⌊iter/10⌋.
    assert_eq!(rates, [0.01, 0.01, 0.005, 0.005]);
    // Caffe logs the rate after the outputs, so a row carries the previous display's.
    assert!(train[0].lr.is_nan());
    assert_eq!(train[3].lr, 0.005);
}
