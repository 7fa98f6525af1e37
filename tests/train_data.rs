//! Data layers in training: the solver's `random_seed` drives their
//! generators, their read position (cursor, epoch, generator) travels in the
//! solver state so a resumed run continues bit-identically with prefetching
//! on, and a bad saved position is a clear error.

use netrun::data::datum::Datum;
use netrun::data::lmdb;
use netrun::graph::{BuildOptions, Graph};
use netrun::net::Net;
use netrun::netdef::{parse_net_str, Phase};
use netrun::solverdef::read_solver_file_in;
use netrun::train::log::Log;
use netrun::train::snapshot;
use netrun::train::{TrainOptions, Trainer};
use std::collections::BTreeMap;
use std::path::Path;

/// `n` grey 4×4 PNGs `img<i>.png` (pixel (y, x) = 7i + 3y + x) and a list
/// `<name>` of them with label i mod 4.
fn write_images(dir: &Path, name: &str, n: usize) {
    let mut list = String::new();
    for i in 0..n {
        let img =
            image::GrayImage::from_fn(4, 4, |x, y| image::Luma([(7 * i as u32 + 3 * y + x) as u8]));
        img.save(dir.join(format!("img{i}.png"))).unwrap();
        list += &format!("img{i}.png {}\n", i % 4);
    }
    std::fs::write(dir.join(name), list).unwrap();
}

/// A tiny LMDB `<dir>/db` of `n` 1×4×4 raw records, label = record index mod 4,
/// pixel k of record i = 5i + k.
fn write_lmdb(dir: &Path, n: usize) {
    let records = (0..n).map(|i| {
        let d = Datum {
            channels: 1,
            height: 4,
            width: 4,
            data: (0..16).map(|k| (5 * i + k) as u8).collect(),
            label: (i % 4) as i32,
            ..Datum::default()
        };
        (format!("{i:08}").into_bytes(), d.encode())
    });
    lmdb::write_records(&dir.join("db"), records).unwrap();
}

/// TRAIN and TEST data layers named `data`, then a classifier whose weights
/// start at zero: the data layers are the only source of randomness.
fn net(train_data: &str, test_data: &str) -> String {
    format!(
        r#"name: "tiny"
layer {{ name: "data" {train_data} include {{ phase: TRAIN }} }}
layer {{ name: "data" {test_data} include {{ phase: TEST }} }}
layer {{ name: "ip" type: "InnerProduct" bottom: "data" top: "score"
  inner_product_param {{ num_output: 4 weight_filler {{ type: "constant" value: 0 }} }} }}
layer {{ name: "loss" type: "SoftmaxWithLoss" bottom: "score" bottom: "label" top: "loss" }}
layer {{ name: "acc" type: "Accuracy" bottom: "score" bottom: "label" top: "accuracy"
  include {{ phase: TEST }} }}
"#
    )
}

const IMAGE_TRAIN: &str = r#"type: "ImageData" top: "data" top: "label"
  transform_param { scale: 0.01 mirror: true crop_size: 3 }
  image_data_param { source: "train.txt" batch_size: 3 shuffle: true rand_skip: 5 is_color: false }"#;
const IMAGE_TEST: &str = r#"type: "ImageData" top: "data" top: "label"
  transform_param { scale: 0.01 crop_size: 3 }
  image_data_param { source: "test.txt" batch_size: 4 is_color: false }"#;
const LMDB_TRAIN: &str = r#"type: "Data" top: "data" top: "label"
  transform_param { scale: 0.01 mirror: true crop_size: 3 }
  data_param { source: "db" backend: LMDB batch_size: 3 rand_skip: 7 }"#;
const LMDB_TEST: &str = r#"type: "Data" top: "data" top: "label"
  transform_param { scale: 0.01 crop_size: 3 }
  data_param { source: "db" backend: LMDB batch_size: 4 }"#;

fn solver(seed: i64) -> String {
    format!(
        "base_lr: 0.1\nlr_policy: \"fixed\"\nmomentum: 0.9\nmax_iter: 12\nsnapshot: 4\n\
         display: 2\ntest_iter: 3\ntest_interval: 4\nrandom_seed: {seed}\n"
    )
}

/// Writes the net and a solver with `snapshot_prefix: "<dir>/<prefix>"` and builds a trainer.
fn trainer(dir: &Path, net: &str, solver: &str, prefix: &str) -> Trainer {
    std::fs::write(dir.join("net.prototxt"), net).unwrap();
    let text = format!(
        "net: \"net.prototxt\"\nsnapshot_prefix: \"{}\"\n{solver}",
        dir.join(prefix).display()
    );
    let path = dir.join(format!("{prefix}_solver.prototxt"));
    std::fs::write(&path, text).unwrap();
    let def = read_solver_file_in(&path, dir).unwrap();
    Trainer::new(
        def,
        TrainOptions::default(),
        Log::new(Box::new(std::io::sink())),
    )
    .unwrap()
}

/// The weights of snapshot `<dir>/<base>`, by name.
fn weights(dir: &Path, base: &str) -> BTreeMap<String, Vec<f32>> {
    snapshot::read(&snapshot::file(&dir.join(base), snapshot::WEIGHTS))
        .unwrap()
        .tensors
        .into_iter()
        .map(|(k, t)| (k, t.data))
        .collect()
}

/// The JSON records of a run from iteration `from` on, without the wall-clock field.
fn records(dir: &Path, prefix: &str, from: u64) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join(format!("{prefix}.log.jsonl")))
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

/// Rewrites the solver state of snapshot `base` with its metadata changed by `edit`.
fn edit_state(base: &Path, edit: impl FnOnce(&mut BTreeMap<String, String>)) {
    let path = snapshot::file(base, snapshot::SOLVERSTATE);
    let mut file = snapshot::read(&path).unwrap();
    edit(&mut file.metadata);
    let tensors: Vec<(String, &[usize], &[f32])> = file
        .tensors
        .iter()
        .map(|(n, t)| (n.clone(), t.shape.as_slice(), t.data.as_slice()))
        .collect();
    snapshot::write(&path, &tensors, &file.metadata).unwrap();
    // Edited on purpose: the set's manifest is rewritten to match.
    let run = file.metadata.get("run").cloned().unwrap_or_default();
    let iteration = file.metadata["iteration"].parse().unwrap();
    netrun::train::manifest::reseal(base, &run, iteration).unwrap();
}

fn image_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_images(dir.path(), "train.txt", 10);
    write_images(dir.path(), "test.txt", 6);
    dir
}

fn lmdb_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_lmdb(dir.path(), 11);
    dir
}

#[test]
fn random_seed_drives_the_data_layers() {
    for (dir, train, test) in [
        (image_dir(), IMAGE_TRAIN, IMAGE_TEST),
        (lmdb_dir(), LMDB_TRAIN, LMDB_TEST),
    ] {
        let d = dir.path();
        let run = |prefix: &str, seed: i64| {
            trainer(d, &net(train, test), &solver(seed), prefix)
                .solve()
                .unwrap();
            weights(d, &format!("{prefix}_iter_12"))
        };
        let a = run("a", 3);
        assert_eq!(run("b", 3), a, "same seed, same run");
        // The weights start at zero: only the data layers' draws can tell the seeds apart.
        assert_ne!(run("c", 4), a, "another seed, other batches");
    }
}

/// Trains `a` to 12 (snapshots at 4, 8, 12) and `b` from `a_iter_4`; both
/// must end with the same weights and log the same records from 4 on.
fn resume_matches(train: &str, test: &str, dir: &Path, samples: usize) {
    let text = net(train, test);
    trainer(dir, &text, &solver(5), "a").solve().unwrap();
    let state = snapshot::read(&snapshot::file(
        &dir.join("a_iter_4"),
        snapshot::SOLVERSTATE,
    ))
    .unwrap();
    let get = |k: &str| -> f64 { state.metadata[k].parse().unwrap() };
    // Four batches of 3 taken by the net after a rand_skip below 8, whatever
    // the prefetch thread had read ahead by then (an LMDB cursor wraps).
    let epochs = state
        .metadata
        .get("state.train.data.epoch")
        .map_or(0.0, |e| e.parse::<f64>().unwrap());
    let taken = (get("state.train.data.cursor") + samples as f64 * epochs) as i64;
    assert!((taken - 12).rem_euclid(samples as i64) < 8, "{taken}");
    assert!(state.metadata.contains_key("state.train.data.rng"));
    assert!(state.metadata.contains_key("state.test0.data.cursor"));

    let mut b = trainer(dir, &text, &solver(5), "b");
    b.resume(&dir.join("a_iter_4")).unwrap();
    b.solve().unwrap();
    assert!(weights(dir, "b_iter_12") == weights(dir, "a_iter_12"));
    let (ra, rb) = (records(dir, "a", 4), records(dir, "b", 4));
    // Displays at 4, 6, 8, 10 and tests at 4, 8, 12.
    assert_eq!(ra.len(), 7, "{ra:?}");
    assert_eq!(ra, rb);

    // Without the train net's read position the resumed run differs.
    edit_state(&dir.join("a_iter_4"), |m| {
        m.retain(|k, _| !k.starts_with("state.train.data."))
    });
    let mut c = trainer(dir, &text, &solver(5), "c");
    c.resume(&dir.join("a_iter_4")).unwrap();
    c.solve().unwrap();
    assert!(weights(dir, "c_iter_12") != weights(dir, "a_iter_12"));
}

#[test]
fn a_resumed_image_data_run_continues_bit_identically() {
    let dir = image_dir();
    resume_matches(IMAGE_TRAIN, IMAGE_TEST, dir.path(), 10);
}

#[test]
fn a_resumed_lmdb_run_continues_bit_identically() {
    let dir = lmdb_dir();
    resume_matches(LMDB_TRAIN, LMDB_TEST, dir.path(), 11);
}

/// Builds the TRAIN net of `text` (data paths relative to `dir`), seeded.
fn build(text: &str, dir: &Path) -> Net {
    let def = parse_net_str("t.net", text).unwrap();
    let mut opts = BuildOptions::for_phase(Phase::Train);
    opts.context.data_dirs = vec![dir.to_path_buf()];
    opts.context.seed = 9;
    Net::new(Graph::build(&def, &opts).unwrap(), 1).unwrap()
}

/// The data top after one forward.
fn batch(net: &mut Net) -> Vec<f32> {
    net.forward().unwrap();
    net.blob("data").unwrap().data().to_vec()
}

fn layer_state(net: &Net) -> Vec<(String, f64)> {
    net.graph.nodes[0].layer.state()
}

fn set_state(net: &mut Net, state: &[(String, f64)]) -> Result<(), String> {
    net.graph.nodes[0].layer.set_state(state)
}

/// The saved position is the net's next batch, not the prefetch thread's; a
/// position set on a running layer restarts reading from there.
#[test]
fn the_position_is_the_net_s_next_batch() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_images(d, "list.txt", 10);
    write_lmdb(d, 11);
    let image = r#"layer { name: "data" type: "ImageData" top: "data" top: "label"
      image_data_param { source: "list.txt" batch_size: 4 rand_skip: 6 is_color: false } }"#;
    let lmdb = r#"layer { name: "data" type: "Data" top: "data" top: "label"
      data_param { source: "db" backend: LMDB batch_size: 4 rand_skip: 6 } }"#;
    // (net, samples, first-pixel step between samples, state keys)
    for (text, n, step, keys) in [
        (image, 10usize, 7.0f32, vec!["epoch", "cursor", "rng"]),
        (lmdb, 11, 5.0, vec!["cursor", "rng"]),
    ] {
        let mut a = build(text, d);
        let start = layer_state(&a);
        let names: Vec<&str> = start.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, keys);
        let first = batch(&mut a);
        let second = batch(&mut a);
        // Let the thread read ahead of the net.
        std::thread::sleep(std::time::Duration::from_millis(100));
        let state = layer_state(&a);
        let value = |k: &str| state.iter().find(|s| s.0 == k).map_or(0, |s| s.1 as usize);
        // No shuffling: the first pixel names the sample, so the first batch gives the skip.
        let skip = (first[0] / step) as usize;
        assert!(skip < 6);
        let next = skip + 8;
        if keys.len() == 3 {
            assert_eq!((value("epoch"), value("cursor")), (next / n, next % n));
        } else {
            // The LMDB cursor counts records from the first, wrapping with the database.
            assert_eq!(value("cursor") % n, next % n);
        }
        let third = batch(&mut a);
        assert_eq!(third[0], (next % n) as f32 * step);
        // Another net moved to the saved position continues with the third batch.
        let mut b = build(text, d);
        set_state(&mut b, &state).unwrap();
        assert_eq!(layer_state(&b), state);
        assert_eq!(batch(&mut b), third);
        // Back to the start on a layer whose thread is running.
        set_state(&mut a, &start).unwrap();
        assert_eq!(batch(&mut a), first);
        assert_eq!(batch(&mut a), second);
    }
}

#[test]
fn a_bad_read_position_in_the_solver_state_is_an_error() {
    let dir = image_dir();
    let d = dir.path();
    let text = net(IMAGE_TRAIN, IMAGE_TEST);
    let s = solver(5).replace("max_iter: 12", "max_iter: 4");
    trainer(d, &text, &s, "a").solve().unwrap();
    let base = d.join("a_iter_4");
    let path = snapshot::file(&base, snapshot::SOLVERSTATE);
    let original = snapshot::read(&path).unwrap().metadata;
    let layer = format!("`{}`: layer `data` (ImageData): ", path.display());
    let known = "(the read position is `epoch`, `cursor`, `rng`)";
    let cases = [
        (
            "state.train.data.cursor",
            Some("2.5"),
            format!("{layer}state `cursor` must be a whole number from 0 to 2^53, got 2.5"),
        ),
        (
            "state.test0.data.epoch",
            Some("-1"),
            format!("{layer}state `epoch` must be a whole number from 0 to 2^53, got -1"),
        ),
        (
            "state.train.data.cursor",
            Some("10"),
            format!(
                "{layer}state `cursor` 10 is past the end of list file `{}` (10 images): \
                 the list changed since the snapshot",
                d.join("train.txt").display()
            ),
        ),
        (
            "state.train.data.rng",
            None,
            format!("{layer}state `rng` is missing {known}"),
        ),
        (
            "state.train.data.offset",
            Some("3"),
            format!("{layer}unknown state `offset` {known}"),
        ),
        (
            "state.train.data.epoch",
            Some("one"),
            format!(
                "`{}`: state `state.train.data.epoch` = `one` is not a number",
                path.display()
            ),
        ),
    ];
    for (key, value, want) in cases {
        edit_state(&base, |m| {
            *m = original.clone();
            match value {
                Some(v) => m.insert(key.into(), v.into()),
                None => m.remove(key),
            };
        });
        let mut t = trainer(d, &text, &s, "b");
        let err = t.resume(&base).unwrap_err().to_string();
        assert!(err.contains(&want), "{err}\nwanted: {want}");
    }
}

#[test]
fn a_position_for_a_layer_without_source_or_given_twice_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let text = r#"layer { name: "data" type: "ImageData" top: "data" top: "label"
      image_data_param { source: "missing.txt" batch_size: 2 } }"#;
    let def = parse_net_str("t.net", text).unwrap();
    let mut opts = BuildOptions::for_phase(Phase::Train);
    opts.context.data_dirs = vec![dir.path().to_path_buf()];
    opts.context
        .input_shapes
        .insert("data".into(), vec![3, 4, 4]);
    let mut net = Net::new(Graph::build(&def, &opts).unwrap(), 1).unwrap();
    assert!(layer_state(&net).is_empty(), "no source, no position");
    let position = [
        ("epoch".to_string(), 0.0),
        ("cursor".to_string(), 0.0),
        ("rng".to_string(), 0.0),
    ];
    let err = set_state(&mut net, &position).unwrap_err();
    assert!(
        err.starts_with(&format!(
            "cannot restore the read position: cannot open list file `missing.txt` (tried `{}`",
            dir.path().join("missing.txt").display()
        )),
        "{err}"
    );

    write_lmdb(dir.path(), 3);
    let text = r#"layer { name: "data" type: "Data" top: "data" top: "label"
      data_param { source: "db" backend: LMDB batch_size: 2 } }"#;
    let mut net = build(text, dir.path());
    let twice = [
        ("cursor".to_string(), 1.0),
        ("rng".to_string(), 0.0),
        ("cursor".to_string(), 2.0),
    ];
    assert_eq!(
        set_state(&mut net, &twice).unwrap_err(),
        "state `cursor` is given twice"
    );
    let nan = [("cursor".to_string(), f64::NAN), ("rng".to_string(), 0.0)];
    assert_eq!(
        set_state(&mut net, &nan).unwrap_err(),
        "state `cursor` must be a whole number from 0 to 2^53, got NaN"
    );
    // A refused position leaves the layer reading from where it was.
    let first = batch(&mut net);
    assert_eq!(first[0], 0.0);
    // A cursor past the end wraps as reading does: 3 records, cursor 4 is record 1.
    let wrapped = [("cursor".to_string(), 4.0), ("rng".to_string(), 0.0)];
    set_state(&mut net, &wrapped).unwrap();
    assert_eq!(batch(&mut net)[0], 5.0);
}

/// A snapshot asked for (SIGHUP) in the middle of a test phase records the
/// test net's read position as of the start of that test: the run resumed
/// from it tests on the same batches as the run never interrupted.
#[test]
fn a_snapshot_during_a_test_resumes_to_the_same_test_results() {
    use netrun::train::{Feed, Role};
    let dir = lmdb_dir();
    let d = dir.path();
    let text = net(LMDB_TRAIN, LMDB_TEST);
    trainer(d, &text, &solver(5), "a").solve().unwrap();

    let mut b = trainer(d, &text, &solver(5), "b");
    let hup = b.signals.hangup.clone();
    b.set_feeder(Box::new(move |_: &mut Net, f: &Feed| {
        // Second batch of the test at iteration 8: SIGHUP arrives.
        if f.role == Role::Test(0) && f.iter == 8 && f.pass == 1 {
            hup.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        Ok(())
    }));
    b.solve().unwrap();
    assert!(weights(d, "b_iter_12") == weights(d, "a_iter_12"));

    let mut c = trainer(d, &text, &solver(5), "c");
    c.resume(&d.join("b_iter_8")).unwrap();
    c.solve().unwrap();
    assert!(weights(d, "c_iter_12") == weights(d, "a_iter_12"));
    // The tests at 8 and 12 (and the displays) equal the uninterrupted run's.
    assert_eq!(records(d, "c", 8), records(d, "a", 8));
}
