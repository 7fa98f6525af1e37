//! Snapshot sets are atomic as sets: a process killed at any step of a
//! snapshot write leaves either a complete set (manifest last) or one that
//! resume refuses naming the newest complete one; resuming that one reaches
//! the same weights as a run never interrupted; temporaries an interrupted
//! write left are removed by the next run. Also: a changed digit in a solver
//! state's metadata, and files of two runs mixed in one set, are refused.

use netrun::data::datum::Datum;
use netrun::data::lmdb;
use netrun::train::{manifest, snapshot};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const NET: &str = r#"name: "tiny"
layer { name: "data" type: "Data" top: "data" top: "label" include { phase: TRAIN }
  transform_param { scale: 0.01 }
  data_param { source: "db" backend: LMDB batch_size: 3 } }
layer { name: "data" type: "Data" top: "data" top: "label" include { phase: TEST }
  transform_param { scale: 0.01 }
  data_param { source: "db" backend: LMDB batch_size: 4 } }
layer { name: "ip" type: "InnerProduct" bottom: "data" top: "score"
  inner_product_param { num_output: 4 weight_filler { type: "xavier" } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "score" bottom: "label" top: "loss" }
"#;

/// Snapshots at 2, 4 and 6; each set is three files of two write steps each
/// (weights, solver state, manifest).
const STEPS_PER_SET: u64 = 6;
const SETS: u64 = 3;

fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let records = (0..11).map(|i| {
        let d = Datum {
            channels: 1,
            height: 3,
            width: 3,
            data: (0..9).map(|k| (7 * i + 3 * k) as u8).collect(),
            label: i % 4,
            ..Datum::default()
        };
        (format!("{i:08}").into_bytes(), d.encode())
    });
    lmdb::write_records(&dir.path().join("db"), records).unwrap();
    std::fs::write(dir.path().join("net.prototxt"), NET).unwrap();
    dir
}

fn solver(dir: &Path, prefix: &str) -> PathBuf {
    let path = dir.join(format!("{prefix}_solver.prototxt"));
    let text = format!(
        "net: \"net.prototxt\"\nsnapshot_prefix: \"{prefix}\"\nbase_lr: 0.1\nlr_policy: \"fixed\"\n\
         momentum: 0.9\nmax_iter: 6\nsnapshot: 2\ndisplay: 0\ntest_iter: 2\ntest_interval: 3\n\
         random_seed: 5\n"
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn train(dir: &Path, prefix: &str, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_netrun"))
        .current_dir(dir)
        .arg("train")
        .arg(solver(dir, prefix))
        .args(extra)
        .env("NETRUN_THREADS", "1")
        .output()
        .unwrap()
}

fn weights(dir: &Path, base: &str) -> BTreeMap<String, Vec<u32>> {
    snapshot::read(&snapshot::file(&dir.join(base), snapshot::WEIGHTS))
        .unwrap()
        .tensors
        .into_iter()
        .map(|(k, t)| (k, t.data.iter().map(|v| v.to_bits()).collect()))
        .collect()
}

fn temporaries(dir: &Path, prefix: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&format!(".{prefix}_")) && n.ends_with(".tmp"))
        .collect()
}

#[test]
fn a_run_killed_at_any_snapshot_write_step_resumes_to_the_same_weights() {
    let dir = setup();
    let d = dir.path();
    let out = train(d, "ref", &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reference = weights(d, "ref_iter_6");
    for n in 1..=STEPS_PER_SET * SETS {
        let prefix = format!("k{n}");
        let out = train(d, &prefix, &["--abort-at-write-step", &n.to_string()]);
        assert!(!out.status.success(), "step {n}: the run was not stopped");
        let latest = manifest::latest(&format!("{}/{prefix}", d.display()));
        // A set is complete once its manifest is renamed in place (the
        // last of its 6 steps); the run died at step n.
        let complete = n / STEPS_PER_SET;
        let expected = complete * 2;
        assert_eq!(
            latest.as_ref().map(|b| b.display().to_string()),
            (expected > 0).then(|| format!("{}/{prefix}_iter_{expected}", d.display())),
            "step {n}"
        );
        // The set being written when the run died is refused, naming the complete one.
        let cut = d.join(format!("{prefix}_iter_{}", expected + 2));
        if expected < 6 && snapshot::file(&cut, snapshot::WEIGHTS).exists() {
            let out = train(d, &prefix, &["--snapshot", &cut.display().to_string()]);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success());
            assert!(err.contains("is incomplete or damaged"), "step {n}: {err}");
            if let Some(l) = &latest {
                assert!(err.contains(&l.display().to_string()), "step {n}: {err}");
            }
        }
        let resume: Vec<String> = latest
            .iter()
            .flat_map(|l| ["--snapshot".to_string(), l.display().to_string()])
            .collect();
        let args: Vec<&str> = resume.iter().map(String::as_str).collect();
        let out = train(d, &prefix, &args);
        assert!(
            out.status.success(),
            "step {n}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            weights(d, &format!("{prefix}_iter_6")) == reference,
            "step {n}: resumed weights differ from the uninterrupted run's"
        );
        assert_eq!(temporaries(d, &prefix), Vec::<String>::new(), "step {n}");
    }
}

#[test]
fn metadata_edits_and_mixed_runs_are_refused() {
    let dir = setup();
    let d = dir.path();
    for p in ["a", "b"] {
        let out = train(d, p, &[]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // A flipped digit of the iteration, in the header: the file's checksum
    // covers its metadata, and the manifest its bytes.
    let state = snapshot::file(&d.join("a_iter_4"), snapshot::SOLVERSTATE);
    let bytes = std::fs::read(&state).unwrap();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let at = text.find("\"iteration\":\"4\"").unwrap() + "\"iteration\":\"".len();
    let mut flipped = bytes.clone();
    flipped[at] = b'5';
    std::fs::write(&state, &flipped).unwrap();
    let err = snapshot::read(&state).unwrap_err().to_string();
    assert!(err.contains("checksum mismatch"), "{err}");
    let out = train(
        d,
        "a",
        &["--snapshot", &d.join("a_iter_4").display().to_string()],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("a_iter_4` is incomplete or damaged"), "{err}");
    assert!(err.contains("the newest complete set is"), "{err}");
    assert!(err.contains("a_iter_6"), "{err}");

    // b's weights in a's set: same net, same shapes, another run.
    std::fs::copy(
        snapshot::file(&d.join("b_iter_2"), snapshot::WEIGHTS),
        snapshot::file(&d.join("a_iter_6"), snapshot::WEIGHTS),
    )
    .unwrap();
    let out = train(
        d,
        "a",
        &["--snapshot", &d.join("a_iter_6").display().to_string()],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is not the file the manifest names"), "{err}");
    assert!(err.contains("a_iter_2"), "{err}");

    // Stale temporaries of this prefix are removed when a run starts.
    let stale = d.join(".a_iter_8.weights.safetensors.999.0.tmp");
    std::fs::write(&stale, b"half").unwrap();
    let out = train(d, "a", &[]);
    assert!(out.status.success());
    assert!(!stale.exists());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("left by an interrupted snapshot")
            || std::fs::read_to_string(d.join("a.log"))
                .unwrap()
                .contains("left by an interrupted snapshot")
    );
}
