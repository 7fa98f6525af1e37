//! The training loop: learning on a separable problem, Caffe's log lines, the
//! JSON record, determinism, bit-identical resume, iter_size, divergence,
//! signals, snapshots, finetuning and `netrun test`.

mod common;

use netrun::net::Net;
use netrun::solverdef::read_solver_file_in;
use netrun::train::log::{fmt_g, Log};
use netrun::train::snapshot;
use netrun::train::{Feeder, Outcome, Role, SignalEffect, TrainOptions, Trainer};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

/// A log sink the test can read back.
#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Buf {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

/// Writes `net.prototxt` and `solver.prototxt` (with `net:` and
/// `snapshot_prefix: "<dir>/<prefix>"` added) into `dir` and builds a trainer.
fn trainer_with(
    dir: &Path,
    net: &str,
    solver: &str,
    prefix: &str,
    opts: TrainOptions,
) -> (Trainer, Buf) {
    std::fs::write(dir.join("net.prototxt"), net).unwrap();
    let text = format!(
        "net: \"net.prototxt\"\nsnapshot_prefix: \"{}\"\n{solver}",
        dir.join(prefix).display()
    );
    let path = dir.join(format!("{prefix}_solver.prototxt"));
    std::fs::write(&path, text).unwrap();
    let def = read_solver_file_in(&path, dir).unwrap();
    let buf = Buf::default();
    let t = Trainer::new(def, opts, Log::new(Box::new(buf.clone()))).unwrap();
    (t, buf)
}

fn trainer(dir: &Path, net: &str, solver: &str, prefix: &str) -> (Trainer, Buf) {
    trainer_with(dir, net, solver, prefix, TrainOptions::default())
}

const CENTRES: [(f32, f32); 3] = [(2.0, 0.0), (-1.0, 1.7), (-1.0, -1.7)];

/// Three Gaussian clusters (σ 0.4) in 2-D; the batch depends only on
/// (net, iteration, pass), so reruns and resumed runs see the same data.
fn cluster_feeder() -> Feeder {
    Box::new(|net: &mut Net, feed| {
        let role = match feed.role {
            Role::Train => 0,
            Role::Test(k) => 1 + k as u64,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(role << 40 ^ feed.iter << 8 ^ feed.pass as u64);
        let n = net.blob("label").unwrap().count();
        let mut labels = vec![0.0f32; n];
        let mut xs = vec![0.0f32; 2 * n];
        for i in 0..n {
            let c = rng.gen_range(0..3usize);
            labels[i] = c as f32;
            let (u1, u2): (f32, f32) = (rng.gen_range(1e-6..1.0), rng.gen_range(0.0..1.0));
            let r = (-2.0 * u1.ln()).sqrt() * 0.4;
            let a = std::f32::consts::TAU * u2;
            xs[2 * i] = CENTRES[c].0 + r * a.cos();
            xs[2 * i + 1] = CENTRES[c].1 + r * a.sin();
        }
        net.blob_mut("label")
            .unwrap()
            .data_mut()
            .copy_from_slice(&labels);
        net.blob_mut("x").unwrap().data_mut().copy_from_slice(&xs);
        Ok(())
    })
}

const CLUSTER_NET: &str = r#"
name: "clusters"
layer { name: "x" type: "Input" top: "x" top: "label"
  input_param { shape { dim: 16 dim: 2 } shape { dim: 16 } } }
layer { name: "ip" type: "InnerProduct" bottom: "x" top: "score"
  inner_product_param { num_output: 3 weight_filler { type: "gaussian" std: 0.001 } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "score" bottom: "label" top: "loss" }
layer { name: "accuracy" type: "Accuracy" bottom: "score" bottom: "label" top: "accuracy"
  include { phase: TEST } }
"#;

const CLUSTER_SOLVER: &str = r#"
test_iter: 4
test_interval: 50
base_lr: 0.1
lr_policy: "fixed"
momentum: 0.9
weight_decay: 0.0005
display: 25
max_iter: 100
random_seed: 11
"#;

#[test]
fn learns_a_separable_problem() {
    let dir = tempfile::tempdir().unwrap();
    let (mut t, buf) = trainer(dir.path(), CLUSTER_NET, CLUSTER_SOLVER, "clusters");
    t.set_feeder(cluster_feeder());
    // Test at iteration 0: near-zero weights give a uniform softmax, loss ln 3.
    t.test_all().unwrap();
    let first = t.last_tests[0].clone().unwrap();
    let first_loss = first.get("loss").unwrap();
    assert!(
        (first_loss - 3f64.ln()).abs() < 0.01,
        "initial loss {first_loss}"
    );
    assert_eq!(t.solve().unwrap(), Outcome::Finished);
    let last = t.last_tests[0].clone().unwrap();
    let (loss, acc) = (last.get("loss").unwrap(), last.get("accuracy").unwrap());
    assert!(loss < 0.15, "final test loss {loss}\n{}", buf.text());
    assert!(acc >= 0.98, "final test accuracy {acc}");
    assert!(acc > first.get("accuracy").unwrap());
    assert!(t.smoothed.value < 0.2, "train loss {}", t.smoothed.value);
    assert_eq!(t.iter, 100);
}

#[test]
fn log_lines_are_caffe_s() {
    let dir = tempfile::tempdir().unwrap();
    let (mut t, buf) = trainer(dir.path(), CLUSTER_NET, CLUSTER_SOLVER, "clusters");
    t.set_feeder(cluster_feeder());
    t.solve().unwrap();
    let text = buf.text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "Solving clusters");
    assert_eq!(lines[1], "Learning Rate Policy: fixed");
    // iteration 0: test first, then the display block.
    assert_eq!(lines[2], "Iteration 0, Testing net (#0)");
    // Outputs in blob order: the loss (weight 1), then the accuracy (weight 0).
    assert!(
        lines[3].starts_with("    Test net output #0: loss = "),
        "{}",
        lines[3]
    );
    assert!(lines[3].ends_with(" loss)") && lines[3].contains(" (* 1 = "));
    assert!(
        lines[4].starts_with("    Test net output #1: accuracy = "),
        "{}",
        lines[4]
    );
    assert!(!lines[4].contains("(*"));
    assert!(lines[5].starts_with("Iteration 0, loss = "), "{}", lines[5]);
    assert!(lines[6].starts_with("    Train net output #0: loss = "));
    assert_eq!(lines[7], "Iteration 0, lr = 0.1");
    let speed = lines
        .iter()
        .find(|l| l.starts_with("Iteration 25 ("))
        .expect("a display line at 25");
    assert!(
        speed.contains(" iter/s, ") && speed.contains("s/25 iters), loss = "),
        "{speed}"
    );
    assert!(text.contains("Iteration 50, Testing net (#0)"));
    let end: Vec<&&str> = lines.iter().rev().take(8).collect();
    assert!(end.iter().any(|l| l.starts_with("Iteration 100, loss = ")));
    assert!(end.iter().any(|l| **l == "Iteration 100, Testing net (#0)"));
    assert_eq!(*lines.last().unwrap(), "Optimization Done.");
    // The final snapshot (snapshot_after_train, no periodic snapshots).
    let base = dir.path().join("clusters_iter_100");
    assert!(text.contains(&format!(
        "Snapshotting to {}",
        snapshot::file(&base, snapshot::WEIGHTS).display()
    )));
    assert!(snapshot::file(&base, snapshot::SOLVERSTATE).is_file());
    assert!(!snapshot::file(&base, snapshot::CENTERS).exists());

    // The JSON record: displays at 0, 25, 50, 75 and tests at 0, 50, 100.
    let jsonl = std::fs::read_to_string(dir.path().join("clusters.log.jsonl")).unwrap();
    let recs: Vec<serde_json::Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let of = |phase: &str| -> Vec<u64> {
        recs.iter()
            .filter(|r| r["phase"] == phase)
            .map(|r| r["iter"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(of("TRAIN"), [0, 25, 50, 75]);
    assert_eq!(of("TEST"), [0, 50, 100]);
    let last = recs.last().unwrap();
    assert_eq!(last["net"], 0);
    assert_eq!(last["lr"], 0.1);
    assert!(last["seconds"].as_f64().unwrap() >= 0.0);
    let acc = last["outputs"]["accuracy"].as_f64().unwrap();
    assert_eq!(
        acc,
        t.last_tests[0].as_ref().unwrap().get("accuracy").unwrap()
    );
    let train = recs
        .iter()
        .find(|r| r["phase"] == "TRAIN" && r["iter"] == 25)
        .unwrap();
    assert!(train["loss"].as_f64().is_some());
    assert!(train["outputs"]["loss"].as_f64().is_some());
}

#[test]
fn fmt_g_matches_cpp_streams() {
    let cases = [
        (0.1, "0.1"),
        (2.302587, "2.30259"),
        (1e-5, "1e-05"),
        (0.0001, "0.0001"),
        (0.00012345678, "0.000123457"),
        (100000.0, "100000"),
        (1234567.0, "1.23457e+06"),
        (87.3365, "87.3365"),
        (-3.0, "-3"),
        (0.0, "0"),
        (f64::NAN, "nan"),
        (f64::INFINITY, "inf"),
    ];
    for (x, want) in cases {
        assert_eq!(fmt_g(x), want, "{x}");
    }
}

/// DummyData features (random per forward), labels from the iteration,
/// Dropout in place, a MarginInnerProduct head (λ counter state) and
/// CenterLoss (centres file), tested every 5 iterations.
const RESUME_NET: &str = r#"
name: "resume"
layer { name: "data" type: "DummyData" top: "x"
  dummy_data_param { shape { dim: 6 dim: 5 } data_filler { type: "gaussian" std: 1 } } }
layer { name: "label" type: "Input" top: "label" input_param { shape { dim: 6 } } }
layer { name: "drop" type: "Dropout" bottom: "x" top: "x" dropout_param { dropout_ratio: 0.3 } }
layer { name: "ip1" type: "InnerProduct" bottom: "x" top: "h"
  inner_product_param { num_output: 8 weight_filler { type: "xavier" }
    bias_filler { type: "constant" value: 0.1 } } }
layer { name: "margin" type: "MarginInnerProduct" bottom: "h" bottom: "label" top: "m"
  margin_inner_product_param { num_output: 3 type: DOUBLE base: 100 gamma: 0.5 power: 1
    lambda_min: 1 weight_filler { type: "xavier" } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "m" bottom: "label" top: "loss" }
layer { name: "center" type: "CenterLoss" bottom: "h" bottom: "label" top: "closs"
  param { lr_mult: 1 decay_mult: 2 }
  center_loss_param { num_output: 3 center_filler { type: "xavier" } } loss_weight: 0.01 }
"#;

fn resume_solver(max_iter: u32) -> String {
    format!(
        "test_iter: 2\ntest_interval: 5\nbase_lr: 0.05\nlr_policy: \"step\"\ngamma: 0.5\n\
         stepsize: 7\nmomentum: 0.9\nweight_decay: 0.001\nmax_iter: {max_iter}\nsnapshot: 10\n\
         random_seed: 3\ndisplay: 4\naverage_loss: 3\n"
    )
}

fn label_feeder() -> Feeder {
    Box::new(|net: &mut Net, feed| {
        let off = matches!(feed.role, Role::Test(_)) as u64;
        let labels = net.blob_mut("label").unwrap().data_mut();
        for (i, l) in labels.iter_mut().enumerate() {
            *l = ((feed.iter * 7 + i as u64 * 5 + feed.pass as u64 + off) % 3) as f32;
        }
        Ok(())
    })
}

/// Every tensor's bytes and every metadata entry of a snapshot file.
type Tensors = Vec<(String, Vec<usize>, Vec<u32>)>;

fn contents(path: &Path) -> (Tensors, Vec<(String, String)>) {
    let c = snapshot::read(path).unwrap();
    let tensors = c
        .tensors
        .into_iter()
        .map(|(n, t)| (n, t.shape, t.data.iter().map(|x| x.to_bits()).collect()))
        .collect();
    // The run identity (and so the checksum over it) differs between runs.
    let meta = c
        .metadata
        .into_iter()
        .filter(|(k, _)| k != "run" && k != "checksum")
        .collect();
    (tensors, meta)
}

fn assert_same_snapshot(a: &Path, b: &Path) {
    for suffix in [snapshot::WEIGHTS, snapshot::CENTERS, snapshot::SOLVERSTATE] {
        let (fa, fb) = (snapshot::file(a, suffix), snapshot::file(b, suffix));
        assert!(
            fa.is_file() && fb.is_file(),
            "{} / {}",
            fa.display(),
            fb.display()
        );
        assert!(
            contents(&fa) == contents(&fb),
            "{} differs from {}",
            fa.display(),
            fb.display()
        );
    }
}

#[test]
fn resumed_run_continues_bit_identically() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // 20 iterations straight.
    let (mut a, a_log) = trainer(d, RESUME_NET, &resume_solver(20), "a");
    a.set_feeder(label_feeder());
    a.solve().unwrap();
    // 10 iterations, then a new process-like trainer resumes to 20.
    let (mut b, _) = trainer(d, RESUME_NET, &resume_solver(10), "b");
    b.set_feeder(label_feeder());
    b.solve().unwrap();
    assert_same_snapshot(&d.join("a_iter_10"), &d.join("b_iter_10"));
    let (mut c, log) = trainer(d, RESUME_NET, &resume_solver(20), "b");
    c.set_feeder(label_feeder());
    c.resume(&snapshot::file(&d.join("b_iter_10"), snapshot::SOLVERSTATE))
        .unwrap();
    assert_eq!(c.iter, 10);
    assert!(log.text().contains("Resuming from"));
    c.solve().unwrap();
    assert_same_snapshot(&d.join("a_iter_20"), &d.join("b_iter_20"));
    // The displayed loss (smoothed over `average_loss: 3`) after the resume
    // is the uninterrupted run's: the window travelled in the solver state.
    let shown = |text: &str| -> Vec<(u32, String)> {
        (text.lines())
            .filter_map(|l| {
                let rest = l.split("Iteration ").nth(1)?;
                let iter: u32 = rest.split([' ', ',']).next()?.parse().ok()?;
                let loss = rest.split(", loss = ").nth(1)?;
                (iter > 10).then(|| (iter, loss.to_string()))
            })
            .collect()
    };
    let (straight, resumed) = (shown(&a_log.text()), shown(&log.text()));
    assert!(!straight.is_empty());
    assert_eq!(straight, resumed);
    // The λ counter and the random streams travelled: the state holds them.
    let (_, meta) = contents(&snapshot::file(&d.join("a_iter_20"), snapshot::SOLVERSTATE));
    let get = |k: &str| meta.iter().find(|m| m.0 == k).map(|m| m.1.clone());
    assert_eq!(get("iteration").as_deref(), Some("20"));
    assert_eq!(get("type").as_deref(), Some("SGD"));
    // One forward per iteration in the train net: the counter equals the iteration.
    assert_eq!(get("state.train.margin.iteration").as_deref(), Some("20.0"));
    assert!(get("rng.train").is_some() && get("rng.test0").is_some());
    // A resume without the layer state would differ: the run is not trivially identical.
    let (mut e, _) = trainer(d, RESUME_NET, &resume_solver(20), "e");
    e.set_feeder(label_feeder());
    e.resume(&d.join("b_iter_10")).unwrap();
    let margin = e.net.graph.node("margin").unwrap();
    e.net.graph.nodes[margin]
        .layer
        .set_state(&[("iteration".into(), 0.0)])
        .unwrap();
    e.solve().unwrap();
    let w = |p: &str| contents(&snapshot::file(&d.join(p), snapshot::WEIGHTS)).0;
    assert!(w("e_iter_20") != w("a_iter_20"));
}

#[test]
fn snapshot_files_split_weights_centres_and_history() {
    let dir = tempfile::tempdir().unwrap();
    let (mut t, _) = trainer(dir.path(), RESUME_NET, &resume_solver(3), "s");
    t.set_feeder(label_feeder());
    t.solve().unwrap();
    let base = dir.path().join("s_iter_3");
    let names = |suffix| -> Vec<String> {
        let mut n: Vec<String> = contents(&snapshot::file(&base, suffix))
            .0
            .into_iter()
            .map(|t| t.0)
            .collect();
        n.sort();
        n
    };
    assert_eq!(names(snapshot::WEIGHTS), ["ip1.0", "ip1.1", "margin.0"]);
    assert_eq!(names(snapshot::CENTERS), ["center.0"]);
    assert_eq!(
        names(snapshot::SOLVERSTATE),
        [
            "center.0.history0",
            "ip1.0.history0",
            "ip1.1.history0",
            "margin.0.history0"
        ]
    );
    // The saved values are the net's.
    let (shape, values) =
        netrun::tensors::read_f32(&snapshot::file(&base, snapshot::CENTERS), "center.0").unwrap();
    assert_eq!(shape, [3, 8]);
    let p = t
        .net
        .learnables
        .iter()
        .find(|l| l.name == "center.0")
        .unwrap()
        .param;
    assert_eq!(values, t.net.params[p].data());
}

#[test]
fn binaryproto_snapshot_format_also_writes_the_weights_as_a_caffemodel() {
    let dir = tempfile::tempdir().unwrap();
    let solver = format!("{}snapshot_format: BINARYPROTO\n", resume_solver(3));
    let (mut t, _) = trainer(dir.path(), RESUME_NET, &solver, "b");
    t.set_feeder(label_feeder());
    t.solve().unwrap();
    let base = dir.path().join("b_iter_3");
    let model = netrun::caffe::CaffeModel::read(&snapshot::file(&base, ".caffemodel")).unwrap();
    let weights = snapshot::read(&snapshot::file(&base, snapshot::WEIGHTS)).unwrap();
    let ip1 = model.layers.iter().find(|l| l.name == "ip1").unwrap();
    assert_eq!(ip1.type_name, "InnerProduct");
    assert_eq!(ip1.blobs[0].data, weights.tensors["ip1.0"].data);
    assert_eq!(ip1.blobs[1].shape, [8]);
    // Without the option (netrun's default), no caffemodel.
    let (mut t, _) = trainer(dir.path(), RESUME_NET, &resume_solver(3), "s");
    t.set_feeder(label_feeder());
    t.solve().unwrap();
    assert!(!snapshot::file(&dir.path().join("s_iter_3"), ".caffemodel").exists());
}

#[test]
fn same_seed_same_run_other_seed_other_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let run = |prefix: &str, seed: i64| {
        let solver = resume_solver(6).replace("random_seed: 3", &format!("random_seed: {seed}"));
        let (mut t, _) = trainer(d, RESUME_NET, &solver, prefix);
        t.set_feeder(label_feeder());
        t.solve().unwrap();
        contents(&snapshot::file(
            &d.join(format!("{prefix}_iter_6")),
            snapshot::WEIGHTS,
        ))
        .0
    };
    assert!(run("x", 3) == run("y", 3));
    assert!(run("z", 4) != run("x", 3));
    // random_seed −1 is a fixed seed, not the clock.
    assert!(run("m1", -1) == run("m2", -1));
}

/// Euclidean regression with targets from the sample index: batch 8 with
/// iter_size 1 against batch 4 with iter_size 2 over the same samples.
fn regression(batch: usize, iter_size: usize, prefix: &str, dir: &Path) -> Vec<f32> {
    let net = format!(
        r#"layer {{ name: "x" type: "Input" top: "x" top: "y"
          input_param {{ shape {{ dim: {batch} dim: 3 }} shape {{ dim: {batch} dim: 2 }} }} }}
        layer {{ name: "ip" type: "InnerProduct" bottom: "x" top: "p"
          inner_product_param {{ num_output: 2 weight_filler {{ type: "uniform" min: -0.5 max: 0.5 }} }} }}
        layer {{ name: "loss" type: "EuclideanLoss" bottom: "p" bottom: "y" top: "loss" }}"#
    );
    let solver = format!(
        "base_lr: 0.05\nlr_policy: \"fixed\"\nmomentum: 0.9\nweight_decay: 0.01\nmax_iter: 5\n\
         iter_size: {iter_size}\nrandom_seed: 9\nsnapshot_after_train: false\n"
    );
    let (mut t, _) = trainer(dir, &net, &solver, prefix);
    t.set_feeder(Box::new(move |net: &mut Net, feed| {
        let first = feed.iter as usize * 8 + feed.pass * batch;
        let x = net.blob_mut("x").unwrap().data_mut();
        for (k, v) in x.iter_mut().enumerate() {
            let s = first + k / 3;
            *v = ((s * 13 + k % 3 * 7) % 11) as f32 / 11.0 - 0.5;
        }
        let y = net.blob_mut("y").unwrap().data_mut();
        for (k, v) in y.iter_mut().enumerate() {
            *v = ((first + k / 2) % 5) as f32 * 0.2 - (k % 2) as f32 * 0.3;
        }
        Ok(())
    }));
    t.solve().unwrap();
    t.net
        .params
        .iter()
        .flat_map(|p| p.data().to_vec())
        .collect()
}

#[test]
fn iter_size_accumulates_like_a_bigger_batch() {
    let dir = tempfile::tempdir().unwrap();
    let big = regression(8, 1, "big", dir.path());
    let acc = regression(4, 2, "acc", dir.path());
    let half = regression(4, 1, "half", dir.path());
    for (a, b) in big.iter().zip(&acc) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }
    assert!(big.iter().zip(&half).any(|(a, b)| (a - b).abs() > 1e-3));
    assert!(!dir.path().join("big_iter_5.weights.safetensors").exists());
}

const EXPLODE_NET: &str = r#"
layer { name: "x" type: "Input" top: "x" top: "y"
  input_param { shape { dim: 4 dim: 3 } shape { dim: 4 dim: 2 } } }
layer { name: "ip" type: "InnerProduct" bottom: "x" top: "p"
  inner_product_param { num_output: 2 weight_filler { type: "constant" value: 0.1 } } }
layer { name: "loss" type: "EuclideanLoss" bottom: "p" bottom: "y" top: "loss" }
"#;

fn ones_feeder() -> Feeder {
    Box::new(|net: &mut Net, _| {
        net.blob_mut("x").unwrap().data_mut().fill(1.0);
        net.blob_mut("y").unwrap().data_mut().fill(-1.0);
        Ok(())
    })
}

#[test]
fn divergence_stops_and_points_at_the_last_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    // lr = 0.01 · 1e6^iter: the weights overflow within a few iterations.
    let solver = "base_lr: 0.01\nlr_policy: \"exp\"\ngamma: 1e6\nmax_iter: 50\nsnapshot: 1\n";
    let (mut t, log) = trainer(dir.path(), EXPLODE_NET, solver, "boom");
    t.set_feeder(ones_feeder());
    let err = t.solve().unwrap_err().to_string();
    let n = t.iter;
    assert!(n > 1 && n < 50, "{err}");
    assert!(
        err.starts_with(&format!("training diverged at iteration {n}: ")),
        "{err}"
    );
    // The outputs p grow by ~1e6 per step while finite; their square overflows first.
    assert!(
        err.contains(
            "layer `loss` (EuclideanLoss) wrote an infinite value into top `loss` (loss inf)"
        ),
        "{err}"
    );
    let last = dir.path().join(format!("boom_iter_{n}"));
    assert!(
        err.contains(&format!("the last good snapshot is `{}`", last.display())),
        "{err}"
    );
    assert!(snapshot::file(&last, snapshot::SOLVERSTATE).is_file());
    let later = dir.path().join(format!("boom_iter_{}", n + 1));
    assert!(!snapshot::file(&later, snapshot::WEIGHTS).exists());
    assert!(!log.text().contains("Optimization Done."));
}

#[test]
fn a_clamped_softmax_stops_training() {
    let dir = tempfile::tempdir().unwrap();
    // Zero weights, biases far apart: every score row is the bias row; the
    // feeder labels every sample with the lowest-bias class, so p(label) < FLT_MIN.
    let net = r#"
    layer { name: "x" type: "Input" top: "x" top: "label"
      input_param { shape { dim: 3 dim: 2 } shape { dim: 3 } } }
    layer { name: "ip" type: "InnerProduct" bottom: "x" top: "s"
      inner_product_param { num_output: 3 bias_filler { type: "uniform" min: -1000 max: 1000 } } }
    layer { name: "loss" type: "SoftmaxWithLoss" bottom: "s" bottom: "label" top: "loss" }
    "#;
    let (mut t, _) = trainer(
        dir.path(),
        net,
        "base_lr: 0.01\nlr_policy: \"fixed\"\nmax_iter: 5\n",
        "clamp",
    );
    t.set_feeder(Box::new(|net: &mut Net, _| {
        let b = net.params[1].data();
        let low = (0..3).min_by(|&i, &j| b[i].total_cmp(&b[j])).unwrap();
        net.blob_mut("label").unwrap().data_mut().fill(low as f32);
        Ok(())
    }));
    let err = t.solve().unwrap_err().to_string();
    assert!(
        err.starts_with("training diverged at iteration 0: layer `loss` (SoftmaxWithLoss)"),
        "{err}"
    );
    assert!(err.contains("FLT_MIN clamp"), "{err}");
    assert!(err.contains("no snapshot was written by this run"), "{err}");
    assert!(!snapshot::file(&dir.path().join("clamp_iter_0"), snapshot::WEIGHTS).exists());
}

#[test]
fn a_non_finite_diff_names_its_blob() {
    let dir = tempfile::tempdir().unwrap();
    let (mut t, _) = trainer(
        dir.path(),
        EXPLODE_NET,
        "base_lr: 0.01\nlr_policy: \"fixed\"\nmax_iter: 5\n",
        "d",
    );
    t.net.params[0].diff_mut()[3] = f32::INFINITY;
    let err = t.check_diffs().unwrap_err().to_string();
    assert!(
        err.contains("the diff of learnable blob `ip.0` of layer `ip` (InnerProduct) holds an infinite value"),
        "{err}"
    );
}

#[test]
fn signals_stop_or_snapshot_after_the_iteration() {
    let dir = tempfile::tempdir().unwrap();
    let solver = "base_lr: 0.01\nlr_policy: \"fixed\"\nmax_iter: 10\nsnapshot: 100\n";
    // SIGHUP at iteration 3 (snapshot), SIGINT at iteration 6 (stop).
    let (mut t, log) = trainer(dir.path(), EXPLODE_NET, solver, "sig");
    let (hup, int) = (t.signals.hangup.clone(), t.signals.interrupt.clone());
    let mut feed = ones_feeder();
    t.set_feeder(Box::new(move |net: &mut Net, f| {
        match f.iter {
            3 => hup.store(true, Ordering::SeqCst),
            6 => int.store(true, Ordering::SeqCst),
            _ => {}
        }
        feed(net, f)
    }));
    assert_eq!(t.solve().unwrap(), Outcome::Stopped);
    assert_eq!(t.iter, 7);
    let exists = |n: u64| {
        snapshot::file(&dir.path().join(format!("sig_iter_{n}")), snapshot::WEIGHTS).exists()
    };
    assert!(exists(4), "SIGHUP snapshot after iteration 3");
    assert!(exists(7), "the snapshot of a stopped run");
    assert!(!exists(10));
    assert!(log.text().contains("Optimization stopped early."));

    // With --sigint-effect none the run goes on.
    let opts = TrainOptions {
        sigint_effect: SignalEffect::None,
        ..TrainOptions::default()
    };
    let (mut t, _) = trainer_with(dir.path(), EXPLODE_NET, solver, "on", opts);
    let int = t.signals.interrupt.clone();
    let mut feed = ones_feeder();
    t.set_feeder(Box::new(move |net: &mut Net, f| {
        int.store(true, Ordering::SeqCst);
        feed(net, f)
    }));
    assert_eq!(t.solve().unwrap(), Outcome::Finished);
    assert_eq!(t.iter, 10);
}

#[test]
fn finetune_copies_matching_blobs_and_reports_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let w = d.join("w.safetensors");
    let wv: Vec<f32> = (0..6).map(|i| i as f32 * 0.25).collect();
    let extra = vec![1.0f32; 4];
    snapshot::write(
        &w,
        &[
            ("ip.0".into(), &[2, 3], &wv),
            ("old_fc.0".into(), &[4], &extra),
        ],
        &Default::default(),
    )
    .unwrap();
    let (mut t, log) = trainer(
        d,
        EXPLODE_NET,
        "base_lr: 0.01\nlr_policy: \"fixed\"\nmax_iter: 1\n",
        "f",
    );
    t.finetune(std::slice::from_ref(&w)).unwrap();
    assert_eq!(t.net.params[0].data(), wv.as_slice());
    let text = log.text();
    assert!(
        text.contains(&format!("Copied 1 learnable blob(s) from {}", w.display())),
        "{text}"
    );
    assert!(
        text.contains("skipped (not in the net): old_fc.0"),
        "{text}"
    );

    let bad = d.join("bad.safetensors");
    snapshot::write(&bad, &[("ip.0".into(), &[3, 2], &wv)], &Default::default()).unwrap();
    let err = t
        .finetune(std::slice::from_ref(&bad))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!(
            "tensor `ip.0` in `{}` has shape 3x2, but the net's `ip.0` is 2x3",
            bad.display()
        )
    );
}

#[test]
fn resume_refuses_another_update_rule() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (mut t, _) = trainer(
        d,
        EXPLODE_NET,
        "base_lr: 0.01\nlr_policy: \"fixed\"\nmax_iter: 2\n",
        "r",
    );
    t.set_feeder(ones_feeder());
    t.solve().unwrap();
    let (mut a, _) = trainer(
        d,
        EXPLODE_NET,
        "type: \"Adam\"\nbase_lr: 0.01\nlr_policy: \"fixed\"\nmax_iter: 4\n",
        "r",
    );
    let err = a.resume(&d.join("r_iter_2")).unwrap_err().to_string();
    assert!(
        err.contains("was written by a SGD solver but this solver's type is Adam"),
        "{err}"
    );
    // Another net: its blobs are not in the snapshot.
    let other = EXPLODE_NET.replace("name: \"ip\"", "name: \"fc\"");
    let (mut o, _) = trainer(
        d,
        &other,
        "base_lr: 0.01\nlr_policy: \"fixed\"\nmax_iter: 4\n",
        "o",
    );
    let err = o.resume(&d.join("r_iter_2")).unwrap_err().to_string();
    assert!(
        err.ends_with("has no tensor for the net's `fc.0`, `fc.1`: the snapshot is of another net"),
        "{err}"
    );
    // A damaged file is refused by its checksum.
    let (mut g, _) = trainer(
        d,
        EXPLODE_NET,
        "base_lr: 0.01\nlr_policy: \"fixed\"\nmax_iter: 4\n",
        "g",
    );
    let wfile = snapshot::file(&d.join("r_iter_2"), snapshot::WEIGHTS);
    let mut bytes = std::fs::read(&wfile).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    std::fs::write(&wfile, bytes).unwrap();
    let err = g.resume(&d.join("r_iter_2")).unwrap_err().to_string();
    assert!(
        err.contains("is incomplete or damaged")
            && err.contains("is not the file the manifest names"),
        "{err}"
    );
    // Without the manifest the file's own checksum still catches it.
    std::fs::remove_file(snapshot::file(&d.join("r_iter_2"), ".manifest")).unwrap();
    let err = snapshot::read(&wfile).unwrap_err().to_string();
    assert!(err.contains("checksum mismatch"), "{err}");
}

/// `netrun test`: a constant input through trained weights gives outputs computable from the file.
#[test]
fn test_command_averages_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let net = r#"
    layer { name: "x" type: "DummyData" top: "x" top: "y"
      dummy_data_param { shape { dim: 1 dim: 3 } shape { dim: 1 dim: 2 }
        data_filler { type: "constant" value: 1 } data_filler { type: "constant" value: 0.5 } } }
    layer { name: "ip" type: "InnerProduct" bottom: "x" top: "p"
      inner_product_param { num_output: 2 weight_filler { type: "gaussian" std: 0.3 }
        bias_filler { type: "gaussian" std: 0.3 } } }
    layer { name: "loss" type: "EuclideanLoss" bottom: "p" bottom: "y" top: "loss" }
    "#;
    let (mut t, _) = trainer(
        d,
        net,
        "base_lr: 0.1\nlr_policy: \"fixed\"\nmax_iter: 3\n",
        "tc",
    );
    t.solve().unwrap();
    let wfile = snapshot::file(&d.join("tc_iter_3"), snapshot::WEIGHTS);
    let (_, w) = netrun::tensors::read_f32(&wfile, "ip.0").unwrap();
    let (_, b) = netrun::tensors::read_f32(&wfile, "ip.1").unwrap();
    let p: Vec<f64> = (0..2)
        .map(|j| (0..3).map(|i| w[j * 3 + i] as f64).sum::<f64>() + b[j] as f64)
        .collect();
    let loss = p.iter().map(|v| (v - 0.5).powi(2)).sum::<f64>() / 2.0;
    let scores = netrun::train::test_command(
        &d.join("net.prototxt"),
        &[wfile],
        3,
        &TrainOptions::default(),
    )
    .unwrap();
    let got = scores.get("loss").unwrap();
    assert!((got - loss).abs() < 1e-5 * loss.max(1.0), "{got} vs {loss}");
    assert!((scores.loss.unwrap() - loss).abs() < 1e-5 * loss.max(1.0));
}

/// The command line: SIGINT stops after the running iteration and leaves a snapshot.
#[test]
fn cli_train_stops_on_sigint() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let net = r#"
    layer { name: "x" type: "DummyData" top: "x" top: "y"
      dummy_data_param { shape { dim: 4 dim: 3 } shape { dim: 4 dim: 2 }
        data_filler { type: "gaussian" std: 1 } } }
    layer { name: "ip" type: "InnerProduct" bottom: "x" top: "p"
      inner_product_param { num_output: 2 } }
    layer { name: "loss" type: "EuclideanLoss" bottom: "p" bottom: "y" top: "loss" }
    "#;
    std::fs::write(d.join("net.prototxt"), net).unwrap();
    let solver = d.join("solver.prototxt");
    std::fs::write(
        &solver,
        "net: \"net.prototxt\"\nbase_lr: 0.001\nlr_policy: \"fixed\"\nmax_iter: 100000000\n\
         display: 1\nsnapshot_prefix: \"out/run\"\n",
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_netrun"))
        .args(["train", "solver.prototxt"])
        .current_dir(d)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    let mut seen = String::new();
    // Piped stdout: every line carries glog's prefix, ending in "] ".
    while out.read_line(&mut line).unwrap() > 0 {
        seen += &line;
        if line.contains("] Iteration 3,") {
            break;
        }
        line.clear();
    }
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{seen}{rest}");
    assert!(rest.contains("Optimization stopped early."), "{rest}");
    let snap = rest
        .lines()
        .find_map(|l| l.split_once("] Snapshotting solver state to "))
        .map(|(_, path)| path)
        .expect("a final snapshot");
    assert!(d.join(snap).is_file(), "{snap}");
    assert!(d.join("out/run.log.jsonl").is_file());
    assert!(d.join("out/run.log").is_file());
}

/// Test nets read the train net's current values; the test MarginInnerProduct
/// normalises its own copy of the weights and leaves the train net's alone.
#[test]
fn tests_use_the_train_values_without_changing_them() {
    let dir = tempfile::tempdir().unwrap();
    let (mut t, _) = trainer(dir.path(), RESUME_NET, &resume_solver(3), "share");
    t.set_feeder(label_feeder());
    t.solve().unwrap();
    let before: Vec<Vec<f32>> = t.net.params.iter().map(|p| p.data().to_vec()).collect();
    t.test_all().unwrap();
    let after: Vec<Vec<f32>> = t.net.params.iter().map(|p| p.data().to_vec()).collect();
    assert!(before == after);
    let find = |net: &Net, name: &str| {
        net.learnables
            .iter()
            .find(|l| l.name == name)
            .unwrap()
            .param
    };
    let train_w = &before[find(&t.net, "margin.0")];
    let test = &t.test_nets[0].net;
    let test_w = test.params[find(test, "margin.0")].data();
    // The train rows were updated after their last normalisation: not unit rows.
    let norm = |r: &[f32]| r.iter().map(|v| (*v as f64).powi(2)).sum::<f64>().sqrt();
    assert!(train_w.chunks(8).any(|r| (norm(r) - 1.0).abs() > 1e-4));
    for (tr, te) in train_w.chunks(8).zip(test_w.chunks(8)) {
        let n = norm(tr);
        for (a, b) in tr.iter().zip(te) {
            assert!((*a as f64 / n - *b as f64).abs() < 1e-6, "{a}/{n} vs {b}");
        }
    }
}

/// `netrun test` on a net with CenterLoss reads the centres beside the weights file.
#[test]
fn test_command_reads_the_centres_beside_the_weights() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let net = r#"
    layer { name: "x" type: "DummyData" top: "x" top: "label"
      dummy_data_param { shape { dim: 1 dim: 3 } shape { dim: 1 }
        data_filler { type: "constant" value: 1 } data_filler { type: "constant" value: 1 } } }
    layer { name: "ip" type: "InnerProduct" bottom: "x" top: "h"
      inner_product_param { num_output: 4 weight_filler { type: "xavier" } } }
    layer { name: "center" type: "CenterLoss" bottom: "h" bottom: "label" top: "closs"
      center_loss_param { num_output: 2 center_filler { type: "xavier" } } }
    "#;
    let (mut t, _) = trainer(
        d,
        net,
        "base_lr: 0.1\nlr_policy: \"fixed\"\nmax_iter: 2\nrandom_seed: 4\n",
        "cc",
    );
    t.solve().unwrap();
    let base = d.join("cc_iter_2");
    let wfile = snapshot::file(&base, snapshot::WEIGHTS);
    let (_, w) = netrun::tensors::read_f32(&wfile, "ip.0").unwrap();
    let (_, b) = netrun::tensors::read_f32(&wfile, "ip.1").unwrap();
    let (_, c) =
        netrun::tensors::read_f32(&snapshot::file(&base, snapshot::CENTERS), "center.0").unwrap();
    // closs = ½‖h − c₁‖² for the one sample of label 1, h = W·1 + b.
    let want: f64 = (0..4)
        .map(|j| {
            let h = (0..3).map(|i| w[j * 3 + i] as f64).sum::<f64>() + b[j] as f64;
            (h - c[4 + j] as f64).powi(2)
        })
        .sum::<f64>()
        / 2.0;
    let scores = netrun::train::test_command(
        &d.join("net.prototxt"),
        &[wfile],
        1,
        &TrainOptions::default(),
    )
    .unwrap();
    let got = scores.get("closs").unwrap();
    assert!((got - want).abs() < 1e-5 * want.max(1.0), "{got} vs {want}");
}
