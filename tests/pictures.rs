//! `netrun plot`, `features`, `plot-features` and `draw`, end to end through
//! the command line, plus the log parser on its own.

use netrun::data::datum::Datum;
use netrun::data::lmdb;
use netrun::pictures::plot::{parse_log, LogFormat};
use netrun::pictures::PALETTE;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs the binary in `dir`; returns (success, stdout, stderr).
fn netrun_in(dir: &Path, args: &[&str], path_env: Option<&str>) -> (bool, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_netrun"));
    cmd.args(args).current_dir(dir);
    if let Some(p) = path_env {
        cmd.env("PATH", p);
    }
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn netrun(dir: &Path, args: &[&str]) -> (bool, String, String) {
    netrun_in(dir, args, None)
}

/// Runs and expects success; returns stdout.
fn ok(dir: &Path, args: &[&str]) -> String {
    let (success, out, err) = netrun(dir, args);
    assert!(success, "netrun {args:?} failed:\n{out}\n{err}");
    out
}

/// Runs and expects failure; returns stderr.
fn fails(dir: &Path, args: &[&str]) -> String {
    let (success, out, err) = netrun(dir, args);
    assert!(!success, "netrun {args:?} succeeded:\n{out}");
    err
}

/// Decodes a PNG with the `image` crate, checks its size and that it is not one colour.
fn png(path: &Path, size: (u32, u32)) -> image::RgbImage {
    let img = image::open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .to_rgb8();
    assert_eq!(img.dimensions(), size, "{}", path.display());
    let first = img.get_pixel(0, 0);
    assert!(
        img.pixels().any(|p| p != first),
        "{} is one colour",
        path.display()
    );
    img
}

/// Pixels of exactly colour `c`.
fn count_color(img: &image::RgbImage, c: plotters::style::RGBColor) -> usize {
    img.pixels().filter(|p| p.0 == [c.0, c.1, c.2]).count()
}

// ------------------------------------------------------------------ plot

/// A netrun JSON-lines log: TRAIN every 10 iterations, TEST every 50.
fn json_log() -> (String, usize, usize) {
    let mut s = String::new();
    let (mut train, mut test) = (0, 0);
    for it in (0..=200).step_by(10) {
        let lr = if it < 100 { 0.01 } else { 0.001 };
        let loss = 2.3 * (-(it as f64) / 60.0).exp() + 0.05;
        s += &format!(
            "{{\"iter\":{it},\"phase\":\"TRAIN\",\"lr\":{lr},\"seconds\":{},\"loss\":{loss},\
             \"outputs\":{{\"softmax_loss\":{loss}}}}}\n",
            it as f64 / 10.0
        );
        train += 1;
        if it % 50 == 0 {
            let acc = 1.0 - 0.9 * (-(it as f64) / 40.0).exp();
            s += &format!(
                "{{\"iter\":{it},\"phase\":\"TEST\",\"net\":0,\"lr\":{lr},\"seconds\":1,\
                 \"outputs\":{{\"accuracy\":{acc},\"softmax_loss\":{}}}}}\n",
                loss * 1.1
            );
            test += 1;
        }
    }
    (s, train, test)
}

#[test]
fn plot_draws_a_json_log_as_png() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (text, train, test) = json_log();
    std::fs::write(d.join("run.log.jsonl"), text).unwrap();
    let out = ok(
        d,
        &[
            "plot",
            "run.log.jsonl",
            "-o",
            "curves.png",
            "--title",
            "LeNet++",
        ],
    );
    assert!(
        out.contains(&format!(
            "({train} loss points, {test} tests, {train} learning-rate points)"
        )),
        "{out}"
    );
    // Three panels (loss, test output, learning rate) of 300 px under a 70 px title.
    let img = png(&d.join("curves.png"), (1000, 70 + 3 * 300));
    // Train loss (palette 0), test loss (1), accuracy (2) and learning rate (3) all show.
    for (k, c) in PALETTE.iter().take(4).enumerate() {
        assert!(count_color(&img, *c) > 50, "colour {k} missing");
    }
    // Not a fifth series.
    assert_eq!(count_color(&img, PALETTE[4]), 0);
}

#[test]
fn plot_writes_beside_the_log_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("run.log.jsonl"), json_log().0).unwrap();
    ok(d, &["plot", "run.log.jsonl"]);
    png(&d.join("run.log.png"), (1000, 970));
}

/// The log `netrun train` itself writes plots, with every record counted.
#[test]
fn plot_reads_the_log_netrun_train_writes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let net = r#"
    layer { name: "x" type: "DummyData" top: "x" top: "y"
      dummy_data_param { shape { dim: 4 dim: 3 } shape { dim: 4 dim: 2 }
        data_filler { type: "gaussian" std: 1 } } }
    layer { name: "ip" type: "InnerProduct" bottom: "x" top: "p"
      inner_product_param { num_output: 2 weight_filler { type: "gaussian" std: 0.1 } } }
    layer { name: "loss" type: "EuclideanLoss" bottom: "p" bottom: "y" top: "loss" }
    "#;
    std::fs::write(d.join("net.prototxt"), net).unwrap();
    std::fs::write(
        d.join("solver.prototxt"),
        "net: \"net.prototxt\"\ntest_iter: 2\ntest_interval: 3\nbase_lr: 0.01\n\
         lr_policy: \"step\"\ngamma: 0.5\nstepsize: 4\nmax_iter: 9\ndisplay: 2\n\
         snapshot_prefix: \"out/run\"\n",
    )
    .unwrap();
    ok(d, &["train", "solver.prototxt"]);
    let log = std::fs::read_to_string(d.join("out/run.log.jsonl")).unwrap();
    let records: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let phase = |p: &str| records.iter().filter(|r| r["phase"] == p).count();
    let (train, test) = (phase("TRAIN"), phase("TEST"));
    assert!(train >= 4 && test >= 3, "{log}");
    let out = ok(d, &["plot", "out/run.log.jsonl", "-o", "out/run.svg"]);
    assert!(
        out.contains(&format!(
            "({train} loss points, {test} tests, {train} learning-rate points)"
        )),
        "{out}\n{log}"
    );
    let svg = std::fs::read_to_string(d.join("out/run.svg")).unwrap();
    for label in [
        "<svg",
        "iteration",
        "learning rate",
        "train loss",
        "test loss",
        "run.log.jsonl",
    ] {
        assert!(svg.contains(label), "no `{label}` in the SVG");
    }
}

/// glog-prefixed Caffe lines, two test nets, a `Test loss` line and noise.
const CAFFE_LOG: &str = "\
I0101 10:00:00.000 1 solver.cpp:60] Solving LeNet
I0101 10:00:00.100 1 solver.cpp:330] Iteration 0, Testing net (#0)
I0101 10:00:00.200 1 solver.cpp:397]     Test net output #0: accuracy = 0.1
I0101 10:00:00.200 1 solver.cpp:397]     Test net output #1: loss = 2.30 (* 1 = 2.30 loss)
I0101 10:00:00.300 1 solver.cpp:330] Iteration 0, Testing net (#1)
I0101 10:00:00.400 1 solver.cpp:397]     Test net output #0: accuracy = 0.12
I0101 10:00:00.500 1 solver.cpp:218] Iteration 0 (0 iter/s, 0.5s/100 iters), loss = 2.31
I0101 10:00:00.500 1 solver.cpp:237]     Train net output #0: loss = 2.31 (* 1 = 2.31 loss)
I0101 10:00:00.500 1 sgd_solver.cpp:105] Iteration 0, lr = 0.01
I0101 10:00:05.000 1 solver.cpp:218] Iteration 100 (20 iter/s, 5s/100 iters), loss = 0.52
I0101 10:00:05.000 1 sgd_solver.cpp:105] Iteration 100, lr = 0.00932
I0101 10:00:09.000 1 solver.cpp:447] Snapshotting to binary proto file lenet_iter_200.caffemodel
I0101 10:00:09.100 1 solver.cpp:330] Iteration 200, Testing net (#0)
I0101 10:00:09.200 1 solver.cpp:414]     Test loss: 0.4
I0101 10:00:09.200 1 solver.cpp:397]     Test net output #0: accuracy = 0.9
I0101 10:00:09.200 1 solver.cpp:397]     Test net output #1: loss = 0.41 (* 1 = 0.41 loss)
I0101 10:00:09.300 1 solver.cpp:218] Iteration 200 (25 iter/s, 4s/100 iters), loss = nan
I0101 10:00:09.300 1 sgd_solver.cpp:105] Iteration 200, lr = 0.0087
";

#[test]
fn caffe_text_logs_parse() {
    let log = parse_log(CAFFE_LOG).unwrap();
    assert_eq!(log.format, LogFormat::CaffeText);
    // The NaN loss at 200 is left out.
    assert_eq!(log.loss.points, vec![(0.0, 2.31), (100.0, 0.52)]);
    assert_eq!(
        log.lr.points,
        vec![(0.0, 0.01), (100.0, 0.00932), (200.0, 0.0087)]
    );
    let test: HashMap<&str, &Vec<(f64, f64)>> = log
        .test
        .iter()
        .map(|c| (c.name.as_str(), &c.points))
        .collect();
    assert_eq!(test["accuracy"], &vec![(0.0, 0.1), (200.0, 0.9)]);
    // An output named `loss` and the total of `Test loss:` are two curves;
    // a second value at one iteration replaces the first.
    assert_eq!(test["loss"], &vec![(0.0, 2.30), (200.0, 0.41)]);
    assert_eq!(test["total loss"], &vec![(200.0, 0.4)]);
    assert_eq!(test["accuracy (net 1)"], &vec![(0.0, 0.12)]);
    assert_eq!(log.test.len(), 4);
}

#[test]
fn caffe_text_logs_plot_as_svg() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("caffe.INFO"), CAFFE_LOG).unwrap();
    let out = ok(
        d,
        &[
            "plot",
            "caffe.INFO",
            "-o",
            "caffe.svg",
            "--title",
            "old run",
        ],
    );
    assert!(
        out.contains("(2 loss points, 2 tests, 3 learning-rate points)"),
        "{out}"
    );
    let svg = std::fs::read_to_string(d.join("caffe.svg")).unwrap();
    for label in [
        "old run",
        "iteration",
        "learning rate",
        "test accuracy",
        "test accuracy (net 1)",
        "test loss",
        "train loss",
    ] {
        assert!(svg.contains(label), "no `{label}` in the SVG");
    }
}

/// A resumed run appends to the same log: the second run's records replace
/// the first run's from the iteration it resumed at.
#[test]
fn resumed_runs_continue_their_curves() {
    let rec = |it: u64, loss: &str| {
        format!("{{\"iter\":{it},\"phase\":\"TRAIN\",\"lr\":0.1,\"seconds\":0,\"loss\":{loss},\"outputs\":{{}}}}\n")
    };
    let text = [
        rec(0, "4"),
        rec(10, "3"),
        rec(20, "2"),
        rec(30, "1"),
        rec(20, "2.5"),
        rec(30, "null"),
        rec(40, "1.5"),
    ]
    .concat();
    let log = parse_log(&text).unwrap();
    assert_eq!(log.format, LogFormat::JsonLines);
    assert_eq!(
        log.loss.points,
        vec![(0.0, 4.0), (10.0, 3.0), (20.0, 2.5), (40.0, 1.5)]
    );
    // A last line cut short (a run still writing) is skipped; one inside is an error.
    let cut = format!("{}{{\"iter\":50,\"pha", rec(0, "1"));
    assert_eq!(parse_log(&cut).unwrap().loss.points, vec![(0.0, 1.0)]);
    let inside = format!("{}{{\"iter\":50,\"pha\n{}", rec(0, "1"), rec(10, "1"));
    let err = parse_log(&inside).unwrap_err();
    assert!(err.starts_with("line 2 is not a JSON record"), "{err}");
}

#[test]
fn plot_errors_name_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let err = fails(d, &["plot", "missing.jsonl", "-o", "x.png"]);
    assert!(err.contains("cannot read `missing.jsonl`"), "{err}");

    std::fs::write(
        d.join("empty.log"),
        "\n\nI0101 solver.cpp:60] Solving LeNet\n",
    )
    .unwrap();
    let err = fails(d, &["plot", "empty.log", "-o", "x.png"]);
    assert!(
        err.contains("`empty.log` holds no training records: expected netrun's JSON-lines log"),
        "{err}"
    );
    assert!(!d.join("x.png").exists());

    std::fs::write(
        d.join("bad.jsonl"),
        "{\"iter\":1,\"phase\":\"TRAIN\"}\nnot json\n",
    )
    .unwrap();
    let err = fails(d, &["plot", "bad.jsonl", "-o", "x.png"]);
    assert!(
        err.contains("`bad.jsonl` line 2 is not a JSON record"),
        "{err}"
    );

    std::fs::write(d.join("noiter.jsonl"), "{\"phase\":\"TRAIN\"}\n").unwrap();
    let err = fails(d, &["plot", "noiter.jsonl", "-o", "x.png"]);
    assert!(err.contains("line 1 has no `iter`"), "{err}");

    std::fs::write(d.join("run.log.jsonl"), json_log().0).unwrap();
    let err = fails(d, &["plot", "run.log.jsonl", "-o", "x.jpg"]);
    assert!(
        err.contains("cannot tell the picture format of `x.jpg`: name it `.png` or `.svg`"),
        "{err}"
    );
}

// -------------------------------------------------------------- features

/// 2-layer net over an LMDB of 3×1×1 raw samples: ip1 (2 outputs) → ip2 (3) → softmax loss.
fn features_net(db: &Path, batch: usize) -> String {
    format!(
        r#"name: "tiny"
        layer {{ name: "data" type: "Data" top: "pixels" top: "digit"
          data_param {{ source: "{}" batch_size: {batch} backend: LMDB }} }}
        layer {{ name: "ip1" type: "InnerProduct" bottom: "pixels" top: "ip1"
          inner_product_param {{ num_output: 2 }} }}
        layer {{ name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2"
          inner_product_param {{ num_output: 3 }} }}
        layer {{ name: "loss" type: "SoftmaxWithLoss" bottom: "ip2" bottom: "digit" top: "loss" }}
        "#,
        db.display()
    )
}

/// The samples: record i holds bytes (i, 2i, 3i + 1) and label i % 3.
fn sample(i: usize) -> ([f32; 3], f32) {
    let x = [i as f32, (2 * i) as f32, (3 * i + 1) as f32];
    (x, (i % 3) as f32)
}

/// An LMDB of `n` samples, the net over it, and a weights file written by the snapshot code.
fn features_setup(d: &Path, n: usize, batch: usize) -> ([f32; 6], [f32; 2]) {
    let records = (0..n).map(|i| {
        let (x, label) = sample(i);
        let datum = Datum {
            channels: 3,
            height: 1,
            width: 1,
            data: x.iter().map(|v| *v as u8).collect(),
            label: label as i32,
            ..Datum::default()
        };
        (format!("{i:08}").into_bytes(), datum.encode())
    });
    lmdb::write_records(&d.join("db"), records).unwrap();
    std::fs::write(d.join("net.prototxt"), features_net(&d.join("db"), batch)).unwrap();
    let w1 = [0.5, -1.0, 0.25, 2.0, 0.0, -0.5];
    let b1 = [0.125, -3.0];
    let w2 = [0.1f32; 6];
    let b2 = [0.0f32; 3];
    let tensors: Vec<(String, &[usize], &[f32])> = vec![
        ("ip1.0".into(), &[2, 3], &w1),
        ("ip1.1".into(), &[2], &b1),
        ("ip2.0".into(), &[3, 2], &w2),
        ("ip2.1".into(), &[3], &b2),
    ];
    netrun::train::snapshot::write(&d.join("w.weights.safetensors"), &tensors, &BTreeMap::new())
        .unwrap();
    (w1, b1)
}

/// ip1 of sample i, computed here: W x + b.
fn ip1(w: &[f32; 6], b: &[f32; 2], i: usize) -> [f32; 2] {
    let (x, _) = sample(i);
    [0, 1].map(|r| (0..3).map(|c| w[r * 3 + c] * x[c]).sum::<f32>() + b[r])
}

/// The tensors of a features file read with the `safetensors` crate, as numpy's reader would.
fn read_features(path: &Path) -> HashMap<String, (Vec<usize>, Vec<f32>)> {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    st.tensors()
        .into_iter()
        .map(|(name, view)| {
            assert_eq!(view.dtype(), safetensors::Dtype::F32);
            let values = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                .collect();
            (name, (view.shape().to_vec(), values))
        })
        .collect()
}

#[test]
fn features_cover_the_lmdb_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (w, b) = features_setup(d, 5, 2);
    let out = ok(
        d,
        &[
            "features",
            "net.prototxt",
            "--weights",
            "w.weights.safetensors",
            "--blob",
            "ip1",
            "-o",
            "f.safetensors",
        ],
    );
    assert!(
        out.contains("features 5x2 from blob `ip1` (3 batches), labels from `digit`"),
        "{out}"
    );
    let t = read_features(&d.join("f.safetensors"));
    let (shape, values) = &t["features"];
    assert_eq!(shape, &vec![5, 2]);
    for i in 0..5 {
        let want = ip1(&w, &b, i);
        assert_eq!(&values[2 * i..2 * i + 2], &want, "row {i}");
    }
    let (shape, labels) = &t["labels"];
    assert_eq!(shape, &vec![5]);
    let want: Vec<f32> = (0..5).map(|i| sample(i).1).collect();
    assert_eq!(labels, &want);
}

#[test]
fn features_with_iterations_wrap_around_the_source() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (w, b) = features_setup(d, 5, 2);
    ok(
        d,
        &[
            "features",
            "net.prototxt",
            "--weights",
            "w.weights.safetensors",
            "--blob",
            "ip1",
            "--iterations",
            "4",
            "-o",
            "f.safetensors",
        ],
    );
    let t = read_features(&d.join("f.safetensors"));
    let (shape, values) = &t["features"];
    assert_eq!(shape, &vec![8, 2]);
    for row in 0..8 {
        let i = row % 5;
        assert_eq!(&values[2 * row..2 * row + 2], &ip1(&w, &b, i), "row {row}");
        assert_eq!(t["labels"].1[row], sample(i).1);
    }
}

#[test]
fn features_errors_name_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    features_setup(d, 5, 2);
    let base = [
        "features",
        "net.prototxt",
        "--weights",
        "w.weights.safetensors",
        "-o",
        "f.safetensors",
    ];
    let with =
        |extra: &[&'static str]| -> Vec<&str> { base.iter().chain(extra).copied().collect() };

    let err = fails(d, &with(&["--blob", "ip3"]));
    assert!(
        err.contains("the TEST net of `net.prototxt` has no blob `ip3`: did you mean `ip1`?"),
        "{err}"
    );
    let err = fails(d, &with(&["--blob", "zzzzzz"]));
    assert!(
        err.contains("its blobs are pixels, digit, ip1, ip2, loss"),
        "{err}"
    );
    let err = fails(d, &with(&["--blob", "loss"]));
    assert!(
        err.contains(
            "blob `loss` (scalar) does not hold one row per sample: \
             its first axis is not the batch of layer `data` (Data), 2"
        ),
        "{err}"
    );
    assert!(!d.join("f.safetensors").exists());

    // DummyData has no record count; Input gets no values.
    std::fs::write(
        d.join("dummy.prototxt"),
        r#"layer { name: "x" type: "DummyData" top: "x" dummy_data_param { shape { dim: 2 dim: 3 } } }
        layer { name: "ip1" type: "InnerProduct" bottom: "x" top: "ip1" inner_product_param { num_output: 2 } }"#,
    )
    .unwrap();
    let err = fails(
        d,
        &[
            "features",
            "dummy.prototxt",
            "--weights",
            "w.weights.safetensors",
            "--blob",
            "ip1",
            "-o",
            "f.safetensors",
        ],
    );
    assert!(
        err.contains("give --iterations: layer `x` (DummyData) has no record count to cover"),
        "{err}"
    );
    let out = ok(
        d,
        &[
            "features",
            "dummy.prototxt",
            "--weights",
            "w.weights.safetensors",
            "--blob",
            "ip1",
            "--iterations",
            "2",
            "-o",
            "f.safetensors",
        ],
    );
    assert!(
        out.contains("features 4x2 from blob `ip1` (2 batches), no labels"),
        "{out}"
    );

    std::fs::write(
        d.join("input.prototxt"),
        r#"layer { name: "x" type: "Input" top: "x" input_param { shape { dim: 2 dim: 3 } } }
        layer { name: "ip1" type: "InnerProduct" bottom: "x" top: "ip1" inner_product_param { num_output: 2 } }"#,
    )
    .unwrap();
    let err = fails(
        d,
        &[
            "features",
            "input.prototxt",
            "--weights",
            "w.weights.safetensors",
            "--blob",
            "ip1",
            "-o",
            "g.safetensors",
        ],
    );
    assert!(
        err.contains("the TEST net of `input.prototxt` has no data layer to read samples from"),
        "{err}"
    );

    let err = fails(
        d,
        &[
            "features",
            "net.prototxt",
            "--weights",
            "w.weights.safetensors",
            "--blob",
            "ip1",
            "--phase",
            "VAL",
            "-o",
            "g.safetensors",
        ],
    );
    assert!(err.contains("expected TRAIN or TEST, found `VAL`"), "{err}");
}

// --------------------------------------------------------- plot-features

/// N×dims features in three clusters (class k around (4k, −3k) in dims 0 and 1) and their labels.
fn clusters(n: usize, dims: usize) -> (Vec<f32>, Vec<f32>) {
    let mut f = Vec::new();
    let mut l = Vec::new();
    for i in 0..n {
        let k = i % 3;
        // Two unrelated jitters in [-1, 1): the dots of a class fill an area.
        let jx = ((i * 7919) % 100) as f32 / 50.0 - 1.0;
        let jy = ((i * 104_729) % 97) as f32 / 48.5 - 1.0;
        let mut row = vec![4.0 * k as f32 + jx, -3.0 * k as f32 + jy];
        row.extend((2..dims).map(|j| (j * i) as f32));
        row.truncate(dims);
        f.extend(row);
        l.push(k as f32);
    }
    (f, l)
}

fn write_features(path: &Path, n: usize, dims: usize, labels: bool) {
    let (f, l) = clusters(n, dims);
    let shape = [n, dims];
    let mut t: Vec<(&str, &[usize], &[f32])> = vec![("features", &shape, &f)];
    let ls = [n];
    if labels {
        t.push(("labels", &ls, &l));
    }
    netrun::weights::save_f32(path, &t, &BTreeMap::new()).unwrap();
}

#[test]
fn plot_features_colours_each_class() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_features(&d.join("f.safetensors"), 300, 2, true);
    let out = ok(
        d,
        &[
            "plot-features",
            "f.safetensors",
            "-o",
            "mnist_2d.png",
            "--title",
            "centre loss",
        ],
    );
    assert!(
        out.contains("(300 points, 3 classes, dimensions 0 and 1)"),
        "{out}"
    );
    assert!(!out.contains("note:"), "{out}");
    let img = png(&d.join("mnist_2d.png"), (900, 800));
    // The legend shows each class's colour at full strength; no fourth class.
    for (k, c) in PALETTE.iter().take(3).enumerate() {
        assert!(count_color(&img, *c) > 20, "class {k} colour missing");
    }
    assert_eq!(count_color(&img, PALETTE[3]), 0);
    // Class 0 sits left of class 2: the mean column of their translucent dots.
    let dot = |c: plotters::style::RGBColor| {
        let mix = |v: u8| (0.6 * v as f64 + 0.4 * 255.0).round() as i32;
        let want = [mix(c.0), mix(c.1), mix(c.2)];
        let xs: Vec<u32> = img
            .enumerate_pixels()
            .filter(|(_, _, p)| (0..3).all(|i| (p.0[i] as i32 - want[i]).abs() <= 2))
            .map(|(x, _, _)| x)
            .collect();
        assert!(xs.len() > 50, "too few dots of {c:?}");
        xs.iter().map(|&x| x as f64).sum::<f64>() / xs.len() as f64
    };
    assert!(dot(PALETTE[0]) < dot(PALETTE[2]));
}

#[test]
fn plot_features_picks_dims_and_reads_integer_labels() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_features(&d.join("f3.safetensors"), 60, 3, true);
    let out = ok(d, &["plot-features", "f3.safetensors", "-o", "a.svg"]);
    assert!(
        out.contains("note: the features have 3 dimensions; plotting dimensions 0 and 1"),
        "{out}"
    );
    let svg = std::fs::read_to_string(d.join("a.svg")).unwrap();
    for label in ["<svg", "feature 0", "feature 1", "class", "f3.safetensors"] {
        assert!(svg.contains(label), "no `{label}` in the SVG");
    }
    let out = ok(
        d,
        &[
            "plot-features",
            "f3.safetensors",
            "--dims",
            "2,0",
            "-o",
            "b.svg",
        ],
    );
    assert!(
        out.contains("dimensions 2 and 0") && !out.contains("note:"),
        "{out}"
    );
    let svg = std::fs::read_to_string(d.join("b.svg")).unwrap();
    assert!(svg.contains("feature 2") && svg.contains("feature 0"));

    // Labels as numpy writes int64 arrays, features as float64.
    let (f, _) = clusters(40, 2);
    let f64s: Vec<u8> = f.iter().flat_map(|v| (*v as f64).to_le_bytes()).collect();
    let labels: Vec<u8> = (0..40i64).flat_map(|i| (i % 4).to_le_bytes()).collect();
    let views = vec![
        (
            "features",
            safetensors::tensor::TensorView::new(safetensors::Dtype::F64, vec![40, 2], &f64s)
                .unwrap(),
        ),
        (
            "labels",
            safetensors::tensor::TensorView::new(safetensors::Dtype::I64, vec![40], &labels)
                .unwrap(),
        ),
    ];
    safetensors::serialize_to_file(views, None, &d.join("np.safetensors")).unwrap();
    let out = ok(d, &["plot-features", "np.safetensors", "-o", "np.png"]);
    assert!(out.contains("(40 points, 4 classes"), "{out}");
    let img = png(&d.join("np.png"), (900, 800));
    for (k, c) in PALETTE.iter().take(4).enumerate() {
        assert!(count_color(&img, *c) > 20, "class {k} colour missing");
    }
}

#[test]
fn plot_features_errors_name_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_features(&d.join("one.safetensors"), 10, 1, true);
    let err = fails(d, &["plot-features", "one.safetensors", "-o", "x.png"]);
    assert!(
        err.contains("`one.safetensors`: `features` is 10x1: a 2-D scatter needs at least 2 feature dimensions, it has 1"),
        "{err}"
    );
    write_features(&d.join("f.safetensors"), 10, 3, true);
    let err = fails(
        d,
        &[
            "plot-features",
            "f.safetensors",
            "--dims",
            "0,3",
            "-o",
            "x.png",
        ],
    );
    assert!(
        err.contains("dimension 3 of --dims is out of range: `features` has 3 (0 to 2)"),
        "{err}"
    );
    let err = fails(
        d,
        &[
            "plot-features",
            "f.safetensors",
            "--dims",
            "1,1",
            "-o",
            "x.png",
        ],
    );
    assert!(
        err.contains("expected two different dimensions I,J"),
        "{err}"
    );
    let err = fails(d, &["plot-features", "f.safetensors", "-o", "x.bmp"]);
    assert!(err.contains("name it `.png` or `.svg`"), "{err}");
    let err = fails(d, &["plot-features", "nothing.safetensors", "-o", "x.png"]);
    assert!(err.contains("cannot read `nothing.safetensors`"), "{err}");

    let w = [1.0f32; 4];
    netrun::weights::save_f32(
        &d.join("w.safetensors"),
        &[("ip.0", &[2, 2], &w)],
        &BTreeMap::new(),
    )
    .unwrap();
    let err = fails(d, &["plot-features", "w.safetensors", "-o", "x.png"]);
    assert!(
        err.contains("has no tensor `features` (it has ip.0)"),
        "{err}"
    );

    let (f, l) = clusters(10, 2);
    netrun::weights::save_f32(
        &d.join("short.safetensors"),
        &[("features", &[10, 2], &f), ("labels", &[9], &l[..9])],
        &BTreeMap::new(),
    )
    .unwrap();
    let err = fails(d, &["plot-features", "short.safetensors", "-o", "x.png"]);
    assert!(
        err.contains("`labels` has 9 values but `features` has 10 rows"),
        "{err}"
    );
    assert!(!d.join("x.png").exists());
}

// ------------------------------------------------------------------ draw

/// (from, to, edge label).
type Edge = (String, String, Option<String>);

/// Node id → label and the edges of DOT text as `draw` writes it.
fn parse_dot(dot: &str) -> (HashMap<String, String>, Vec<Edge>) {
    let label_of = |attrs: &str| {
        let at = attrs.find("label=\"")? + 7;
        let rest = &attrs[at..];
        let end = rest
            .find("\"]")
            .or_else(|| rest.find("\","))
            .unwrap_or(rest.len());
        Some(rest[..end].replace("\\n", "\n"))
    };
    let mut nodes = HashMap::new();
    let mut edges = Vec::new();
    for line in dot.lines().map(str::trim) {
        if let Some((from, rest)) = line.split_once(" -> ") {
            let to: String = rest.chars().take_while(|c| c.is_alphanumeric()).collect();
            edges.push((from.to_string(), to, label_of(rest)));
        } else if let Some((id, attrs)) = line.split_once(" [") {
            if !["graph", "node", "edge"].contains(&id) {
                nodes.insert(id.to_string(), label_of(attrs).unwrap());
            }
        }
    }
    (nodes, edges)
}

fn lenet() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("nets/caffe-face/mnist_train_test.prototxt")
}

/// Every layer of the phase is a box, every bottom an edge into it from its
/// blob (or from the in-place layer that rewrote it last), every top an edge out.
fn check_drawing(dot: &str, net: &netrun::netdef::NetDef, phase: netrun::netdef::Phase) {
    let state = netrun::netdef::NetState {
        phase,
        ..net.state.clone()
    };
    let layers: Vec<_> = net
        .layers
        .iter()
        .filter(|l| netrun::netdef::layer_included(l, &state))
        .collect();
    let (nodes, edges) = parse_dot(dot);
    let box_of = |name: &str| {
        let ids: Vec<&String> = nodes
            .iter()
            .filter(|(id, l)| id.starts_with('l') && l.split('\n').next() == Some(name))
            .map(|(id, _)| id)
            .collect();
        assert_eq!(ids.len(), 1, "layer `{name}` drawn {} times", ids.len());
        ids[0].clone()
    };
    let boxes: HashSet<String> = layers.iter().map(|l| box_of(&l.name)).collect();
    assert_eq!(boxes.len(), layers.len());
    assert_eq!(
        nodes.keys().filter(|id| id.starts_with('l')).count(),
        layers.len()
    );
    for l in &layers {
        let id = box_of(&l.name);
        assert!(nodes[&id].contains(&l.type_name), "{}", nodes[&id]);
        for b in &l.bottom {
            let found = edges.iter().any(|(from, to, label)| {
                to == &id && (nodes[from] == *b || label.as_deref() == Some(b.as_str()))
            });
            assert!(found, "no edge brings `{b}` to layer `{}`", l.name);
        }
        for (t, top) in l.top.iter().enumerate() {
            if l.bottom.get(t) == Some(top) {
                continue;
            }
            let found = edges
                .iter()
                .any(|(from, to, _)| from == &id && nodes[to] == *top);
            assert!(found, "no edge from layer `{}` to blob `{top}`", l.name);
        }
    }
}

#[test]
fn draw_writes_every_layer_and_edge_of_lenet() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let net = netrun::netdef::read_net_file(&lenet()).unwrap();
    let file = lenet().display().to_string();
    for (phase, p) in [
        ("TRAIN", netrun::netdef::Phase::Train),
        ("TEST", netrun::netdef::Phase::Test),
    ] {
        let out = ok(d, &["draw", &file, "--phase", phase, "-o", "net.dot"]);
        assert!(out.contains(&format!("of the {phase} net")), "{out}");
        let dot = std::fs::read_to_string(d.join("net.dot")).unwrap();
        assert!(dot.starts_with("digraph \"LeNet++ ("), "{dot}");
        check_drawing(&dot, &net, p);
    }
}

#[test]
fn draw_shows_in_place_layers_without_a_second_blob() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("net.prototxt"),
        r#"name: "inplace"
        layer { name: "x" type: "Input" top: "x" input_param { shape { dim: 2 dim: 3 } } }
        layer { name: "ip1" type: "InnerProduct" bottom: "x" top: "ip1" inner_product_param { num_output: 4 } }
        layer { name: "relu1" type: "ReLU" bottom: "ip1" top: "ip1" }
        layer { name: "drop1" type: "Dropout" bottom: "ip1" top: "ip1" include { phase: TRAIN } }
        layer { name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2" inner_product_param { num_output: 2 } }
        "#,
    )
    .unwrap();
    ok(d, &["draw", "net.prototxt", "-o", "net.gv"]);
    let dot = std::fs::read_to_string(d.join("net.gv")).unwrap();
    assert!(dot.contains("rankdir=TB,"), "{dot}");
    ok(
        d,
        &["draw", "net.prototxt", "--rankdir", "LR", "-o", "lr.dot"],
    );
    assert!(std::fs::read_to_string(d.join("lr.dot"))
        .unwrap()
        .contains("rankdir=LR,"));
    let net = netrun::netdef::read_net_file(&d.join("net.prototxt")).unwrap();
    check_drawing(&dot, &net, netrun::netdef::Phase::Train);
    let (nodes, edges) = parse_dot(&dot);
    assert_eq!(nodes.values().filter(|l| *l == "ip1").count(), 1, "{dot}");
    let id = |label: &str| nodes.iter().find(|(_, l)| *l == label).unwrap().0.clone();
    assert_eq!(
        nodes[&id("relu1\nReLU (in place)")],
        "relu1\nReLU (in place)"
    );
    // ip1 blob → relu1 → drop1 → ip2, the last two edges labelled with the blob.
    let has = |a: &str, b: &str, l: Option<&str>| {
        edges
            .iter()
            .any(|(f, t, el)| *f == id(a) && *t == id(b) && el.as_deref() == l)
    };
    assert!(has("ip1", "relu1\nReLU (in place)", None), "{dot}");
    assert!(
        has(
            "relu1\nReLU (in place)",
            "drop1\nDropout (in place)",
            Some("ip1")
        ),
        "{dot}"
    );
    assert!(
        has(
            "drop1\nDropout (in place)",
            "ip2\nInnerProduct",
            Some("ip1")
        ),
        "{dot}"
    );
    // In TEST the dropout is left out: relu1 feeds ip2.
    ok(
        d,
        &["draw", "net.prototxt", "--phase", "TEST", "-o", "test.dot"],
    );
    let dot = std::fs::read_to_string(d.join("test.dot")).unwrap();
    assert!(!dot.contains("drop1"));
    let (nodes, edges) = parse_dot(&dot);
    let id = |label: &str| nodes.iter().find(|(_, l)| *l == label).unwrap().0.clone();
    assert!(edges
        .iter()
        .any(|(f, t, _)| *f == id("relu1\nReLU (in place)") && *t == id("ip2\nInnerProduct")));
}

/// `.svg` pipes the DOT text through `dot -Tsvg`: a stand-in `dot` first on
/// PATH records what it is given.
#[test]
fn draw_svg_runs_dot() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let bin = d.join("bin");
    std::fs::create_dir(&bin).unwrap();
    let fake = bin.join("dot");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho \"<svg args='$*'>\"\ncat\necho '</svg>'\n",
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:/usr/bin:/bin", bin.display());
    let file = lenet().display().to_string();
    let (success, out, err) = netrun_in(d, &["draw", &file, "-o", "net.svg"], Some(&path));
    assert!(success, "{out}{err}");
    let svg = std::fs::read_to_string(d.join("net.svg")).unwrap();
    assert!(svg.starts_with("<svg args='-Tsvg'>\ndigraph"), "{svg}");
    for layer in ["conv1", "ip1", "center_loss", "softmax_loss"] {
        assert!(svg.contains(&format!("label=\"{layer}\\n")), "no `{layer}`");
    }
}

#[test]
fn draw_errors_name_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let empty = d.join("empty-path");
    std::fs::create_dir(&empty).unwrap();
    let file = lenet().display().to_string();
    let (success, _, err) = netrun_in(
        d,
        &["draw", &file, "-o", "net.svg"],
        Some(&empty.display().to_string()),
    );
    assert!(!success);
    assert!(
        err.contains("cannot write `net.svg`: Graphviz's `dot` program is not installed (not found on PATH); install Graphviz"),
        "{err}"
    );
    assert!(err.contains("with `-o net.dot`"), "{err}");
    assert!(!d.join("net.svg").exists());

    let err = fails(d, &["draw", &file, "-o", "net.txt"]);
    assert!(
        err.contains("cannot tell the format of `net.txt`: name it `.dot`"),
        "{err}"
    );
    let err = fails(d, &["draw", "missing.prototxt", "-o", "net.dot"]);
    assert!(err.contains("missing.prototxt"), "{err}");

    // `dot` that fails: its message is passed on.
    use std::os::unix::fs::PermissionsExt;
    let bin = d.join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::fs::write(
        bin.join("dot"),
        "#!/bin/sh\necho 'syntax error in line 1' >&2\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(bin.join("dot"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:/usr/bin:/bin", bin.display());
    let (success, _, err) = netrun_in(d, &["draw", &file, "-o", "net.svg"], Some(&path));
    assert!(!success);
    assert!(
        err.contains("`dot -Tsvg` failed (exit status: 1): syntax error in line 1"),
        "{err}"
    );
}

/// With Graphviz installed, the real `dot` renders the net.
#[test]
fn draw_svg_with_graphviz_when_installed() {
    if Command::new("dot").arg("-V").output().is_err() {
        eprintln!("Graphviz is not installed: the real `dot` is not tried");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let file = lenet().display().to_string();
    ok(d, &["draw", &file, "-o", "net.svg"]);
    let svg = std::fs::read_to_string(d.join("net.svg")).unwrap();
    assert!(svg.contains("<svg"));
    for layer in ["conv1", "ip1", "center_loss"] {
        assert!(svg.contains(&format!(">{layer}</text>")), "no `{layer}`");
    }
}
