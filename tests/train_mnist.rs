//! Real MNIST, end to end: the IDX files converted with the library's
//! converter, caffe-face's LeNet++ + CenterLoss (nets/caffe-face, smaller
//! batches) trained for a short while from its LMDBs. The loss falls, the
//! test accuracy is logged, the snapshot files hold what they should, and a
//! run resumed from the middle snapshot ends bit-identically (weights, centres
//! and logged losses) with the uninterrupted one: the Data layers' read
//! positions travel in the solver state.

use netrun::data::convert::convert_mnist;
use netrun::data::mnist::Fetch;
use netrun::solverdef::read_solver_file_in;
use netrun::train::log::Log;
use netrun::train::snapshot;
use netrun::train::{TrainOptions, Trainer};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Iterations of the uninterrupted run, snapshotted every `SNAPSHOT`; the
/// resumed run starts from the middle snapshot, `RESUME_AT`. Batches of 8
/// learn more per sample than 128 in so short a run, and keep it within
/// about a minute on two cores.
const ITERS: u64 = 240;
const SNAPSHOT: u64 = 80;
const RESUME_AT: u64 = 160;
const TRAIN_BATCH: usize = 8;
const TEST_BATCH: usize = 50;

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// The net of nets/caffe-face with smaller batches, beside `data/`.
fn write_net(dir: &Path) {
    let text = std::fs::read_to_string(repo("nets/caffe-face/mnist_train_test.prototxt")).unwrap();
    assert_eq!(text.matches("batch_size: 128").count(), 1);
    assert_eq!(text.matches("batch_size: 100").count(), 1);
    let text = text
        .replace("batch_size: 128", &format!("batch_size: {TRAIN_BATCH}"))
        .replace("batch_size: 100", &format!("batch_size: {TEST_BATCH}"));
    std::fs::write(dir.join("mnist_train_test.prototxt"), text).unwrap();
}

/// The quick solver's hyper-parameters, displaying every iteration.
fn trainer(dir: &Path, prefix: &str) -> Trainer {
    let solver = format!(
        "net: \"mnist_train_test.prototxt\"\n\
         test_iter: 4\ntest_interval: {ITERS}\ntest_initialization: false\n\
         base_lr: 0.01\nmomentum: 0.9\nweight_decay: 0.0005\n\
         lr_policy: \"multistep\"\ngamma: 0.8\nstepvalue: 5000\n\
         display: 1\nmax_iter: {ITERS}\nsnapshot: {SNAPSHOT}\nrandom_seed: 7\n\
         snapshot_prefix: \"{}\"\n",
        dir.join("snapshots").join(prefix).display()
    );
    let path = dir.join(format!("{prefix}_solver.prototxt"));
    std::fs::write(&path, solver).unwrap();
    let def = read_solver_file_in(&path, dir).unwrap();
    Trainer::new(
        def,
        TrainOptions::default(),
        Log::new(Box::new(std::io::sink())),
    )
    .unwrap()
}

fn tensors(base: &Path, suffix: &str) -> BTreeMap<String, (Vec<usize>, Vec<f32>)> {
    snapshot::read(&snapshot::file(base, suffix))
        .unwrap()
        .tensors
        .into_iter()
        .map(|(k, t)| (k, (t.shape, t.data)))
        .collect()
}

/// The JSON records of a run from iteration `from` on, without the wall-clock field.
fn records(dir: &Path, prefix: &str, from: u64) -> Vec<serde_json::Value> {
    let path = dir.join(format!("snapshots/{prefix}.log.jsonl"));
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["iter"].as_u64().unwrap() >= from)
        .map(|mut r| {
            r.as_object_mut().unwrap().remove("seconds");
            r
        })
        .collect()
}

/// `(iteration, loss text)` of the text log's display lines from `from` on.
fn logged_losses(dir: &Path, prefix: &str, from: u64) -> Vec<(u64, String)> {
    let text = std::fs::read_to_string(dir.join(format!("snapshots/{prefix}.log"))).unwrap();
    text.lines()
        .filter_map(|l| {
            let rest = l.split_once("] Iteration ")?.1;
            let (head, loss) = rest.split_once(", loss = ")?;
            let iter = head.split([' ', ',']).next()?;
            Some((iter.parse().ok()?, loss.to_string()))
        })
        .filter(|(i, _)| *i >= from)
        .collect()
}

#[test]
fn lenet_plus_plus_learns_mnist_and_resumes_bit_identically() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let fetch = Fetch {
        mirrors: vec![],
        offline_dirs: vec![],
        verify: true,
        progress: false,
    };
    let idx = repo("../shared/data/mnist");
    let written = convert_mnist(&idx, &d.join("data"), &fetch, false).unwrap();
    assert_eq!(written[0].1, 60_000);
    write_net(d);

    let mut a = trainer(d, "a");
    a.solve().unwrap();

    // The loss falls clearly (display every iteration, average_loss 1: the raw loss).
    let train: Vec<f64> = records(d, "a", 0)
        .iter()
        .filter(|r| r["phase"] == "TRAIN")
        .map(|r| r["loss"].as_f64().unwrap())
        .collect();
    assert_eq!(train.len() as u64, ITERS);
    let tail = &train[train.len() - 20..];
    let last20 = tail.iter().sum::<f64>() / 20.0;
    assert!(
        last20 < 0.6 * train[0],
        "first loss {}, mean of the last 20 {last20}",
        train[0]
    );
    // The test accuracy is logged, above chance.
    let tests: Vec<serde_json::Value> = records(d, "a", 0)
        .into_iter()
        .filter(|r| r["phase"] == "TEST")
        .collect();
    assert_eq!(tests.len(), 1);
    assert_eq!(tests[0]["iter"], ITERS);
    let accuracy = tests[0]["outputs"]["accuracy"].as_f64().unwrap();
    assert!((0.3..=1.0).contains(&accuracy), "accuracy {accuracy}");
    let log = std::fs::read_to_string(d.join("snapshots/a.log")).unwrap();
    assert!(log.contains(&format!("] Iteration {ITERS}, Testing net (#0)")));
    assert!(log
        .lines()
        .any(|l| l.contains("]     Test net output #") && l.contains(": accuracy = ")));

    // Snapshots: the weights without the centres, the centres (10 classes × 2-D) alone.
    for iter in [SNAPSHOT, RESUME_AT, ITERS] {
        let base = d.join(format!("snapshots/a_iter_{iter}"));
        let weights = tensors(&base, snapshot::WEIGHTS);
        assert!(weights.contains_key("conv1.0") && weights.contains_key("ip2.0"));
        assert!(!weights.contains_key("center_loss.0"));
        let centers = tensors(&base, snapshot::CENTERS);
        assert_eq!(centers.keys().collect::<Vec<_>>(), ["center_loss.0"]);
        assert_eq!(centers["center_loss.0"].0, [10, 2]);
        assert!(snapshot::file(&base, snapshot::SOLVERSTATE).is_file());
    }

    // Resumed from the middle: the same end, the same losses on the way.
    let mut b = trainer(d, "b");
    b.resume(&d.join(format!("snapshots/a_iter_{RESUME_AT}")))
        .unwrap();
    b.solve().unwrap();
    let (ea, eb) = (
        d.join(format!("snapshots/a_iter_{ITERS}")),
        d.join(format!("snapshots/b_iter_{ITERS}")),
    );
    for suffix in [snapshot::WEIGHTS, snapshot::CENTERS] {
        assert!(tensors(&ea, suffix) == tensors(&eb, suffix), "{suffix}");
    }
    assert_eq!(records(d, "a", RESUME_AT), records(d, "b", RESUME_AT));
    let (la, lb) = (
        logged_losses(d, "a", RESUME_AT),
        logged_losses(d, "b", RESUME_AT),
    );
    assert_eq!(la.len() as u64, ITERS - RESUME_AT + 1, "{la:?}");
    assert_eq!(la, lb);
}
