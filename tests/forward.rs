//! `netrun forward`: inputs deciding shapes, what is written, seeding of
//! diffs, and the errors that name a file and a tensor.

use netrun::forward::{run, ForwardOptions};
use netrun::netdef::Phase;
use netrun::weights::{load, save_f32};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// x (2x3) → ip (4 outputs, weights + bias) → y; y → SoftmaxWithLoss (weight 2) with label.
const NET: &str = r#"
layer { name: "data" type: "Input" top: "x" top: "label"
        input_param { shape { dim: 2 dim: 3 } shape { dim: 2 } } }
layer { name: "ip" type: "InnerProduct" bottom: "x" top: "y" inner_product_param { num_output: 4 } }
layer { name: "act" type: "TanH" bottom: "y" top: "z" }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "y" bottom: "label" top: "loss" loss_weight: 2 }
"#;

type Named = Vec<(&'static str, Vec<usize>, Vec<f32>)>;

fn write(dir: &Path, file: &str, tensors: &Named) -> PathBuf {
    let views: Vec<(&str, &[usize], &[f32])> = tensors
        .iter()
        .map(|(n, s, v)| (*n, s.as_slice(), v.as_slice()))
        .collect();
    let path = dir.join(file);
    save_f32(&path, &views, &BTreeMap::new()).unwrap();
    path
}

fn values(n: usize, scale: f32) -> Vec<f32> {
    (0..n)
        .map(|i| ((i * 7 % 11) as f32 - 5.0) * scale)
        .collect()
}

struct Setup {
    _dir: tempfile::TempDir,
    opts: ForwardOptions,
}

/// Batch 5 (the file says 2), with the given tensors replacing the defaults.
fn setup(x: Named, w: Named, d: Option<Named>) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let net = dir.path().join("net.prototxt");
    std::fs::write(&net, NET).unwrap();
    let opts = ForwardOptions {
        net,
        weights: Some(write(dir.path(), "w.safetensors", &w)),
        inputs: write(dir.path(), "x.safetensors", &x),
        top_diff: d.map(|d| write(dir.path(), "d.safetensors", &d)),
        backward: true,
        phase: Phase::Train,
        output: dir.path().join("out.safetensors"),
        extra_data_dirs: vec![],
    };
    Setup { _dir: dir, opts }
}

fn x5() -> Named {
    vec![
        ("x", vec![5, 3], values(15, 0.1)),
        ("label", vec![5], vec![0.0, 3.0, 1.0, 2.0, 3.0]),
    ]
}

fn w() -> Named {
    vec![
        ("ip.0", vec![4, 3], values(12, 0.2)),
        ("ip.1", vec![4], vec![0.1, -0.2, 0.3, 0.0]),
    ]
}

fn dz() -> Named {
    vec![("z", vec![5, 4], values(20, 0.05))]
}

fn error(s: &Setup) -> String {
    run(&s.opts).expect_err("expected an error").to_string()
}

#[test]
fn inputs_decide_the_batch_and_every_blob_and_param_is_written() {
    let s = setup(x5(), w(), Some(dz()));
    let report = run(&s.opts).unwrap();
    let out = load(&s.opts.output).unwrap().tensors;
    let names: Vec<&str> = out.keys().map(String::as_str).collect();
    // y feeds two layers, so a split gives each its own copy.
    assert_eq!(
        names,
        vec![
            "ip.0",
            "ip.0.diff",
            "ip.1",
            "ip.1.diff",
            "label",
            "label.diff",
            "loss",
            "loss.diff",
            "x",
            "x.diff",
            "y",
            "y.diff",
            "y_ip_0_split_0",
            "y_ip_0_split_0.diff",
            "y_ip_0_split_1",
            "y_ip_0_split_1.diff",
            "z",
            "z.diff"
        ]
    );
    let (x, wt, b) = (&x5()[0].2, &w()[0].2, &w()[1].2);
    let labels = [0usize, 3, 1, 2, 3];
    let dzv = &dz()[0].2;
    // y = x·Wᵀ + b; z = tanh y; loss = −mean log softmax(y)[label].
    let mut y = vec![0f64; 20];
    for n in 0..5 {
        for o in 0..4 {
            y[n * 4 + o] = b[o] as f64
                + (0..3)
                    .map(|k| x[n * 3 + k] as f64 * wt[o * 3 + k] as f64)
                    .sum::<f64>();
        }
    }
    let close = |got: &[f32], want: &[f64], what: &str| {
        assert_eq!(got.len(), want.len(), "{what}");
        for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
            assert!(
                (g as f64 - w).abs() <= 1e-5 + 1e-4 * w.abs(),
                "{what}[{i}]: {g} vs {w}"
            );
        }
    };
    close(&out["y"].data, &y, "y");
    assert_eq!(out["y"].shape, vec![5, 4]);
    let z: Vec<f64> = y.iter().map(|v| v.tanh()).collect();
    close(&out["z"].data, &z, "z");
    let mut loss = 0.0;
    let mut dy = vec![0f64; 20];
    for n in 0..5 {
        let row = &y[n * 4..n * 4 + 4];
        let m = row.iter().cloned().fold(f64::MIN, f64::max);
        let sum: f64 = row.iter().map(|v| (v - m).exp()).sum();
        for o in 0..4 {
            let p = (row[o] - m).exp() / sum;
            let onehot = if o == labels[n] { 1.0 } else { 0.0 };
            if o == labels[n] {
                loss -= p.ln() / 5.0;
            }
            // From the loss (weight 2, mean over 5) and from tanh's top diff.
            dy[n * 4 + o] =
                2.0 * (p - onehot) / 5.0 + dzv[n * 4 + o] as f64 * (1.0 - z[n * 4 + o].powi(2));
        }
    }
    close(&out["loss"].data, &[loss], "loss");
    assert!((report.loss - 2.0 * loss).abs() < 1e-5, "{}", report.loss);
    close(&out["loss.diff"].data, &[2.0], "loss.diff");
    close(&out["y.diff"].data, &dy, "y.diff");
    let dx: Vec<f64> = (0..15)
        .map(|i| {
            (0..4)
                .map(|o| dy[(i / 3) * 4 + o] * wt[o * 3 + i % 3] as f64)
                .sum()
        })
        .collect();
    close(&out["x.diff"].data, &dx, "x.diff");
    let dw: Vec<f64> = (0..12)
        .map(|i| {
            (0..5)
                .map(|n| dy[n * 4 + i / 3] * x[n * 3 + i % 3] as f64)
                .sum()
        })
        .collect();
    close(&out["ip.0.diff"].data, &dw, "ip.0.diff");
    let db: Vec<f64> = (0..4)
        .map(|o| (0..5).map(|n| dy[n * 4 + o]).sum())
        .collect();
    close(&out["ip.1.diff"].data, &db, "ip.1.diff");
    assert_eq!(out["ip.0"].data, *wt);
    assert_eq!(report.written, out.len());
    assert_eq!(load(&s.opts.output).unwrap().metadata["backward"], "true");
}

#[test]
fn forward_only_writes_no_diffs() {
    let mut s = setup(x5(), w(), None);
    s.opts.backward = false;
    run(&s.opts).unwrap();
    let out = load(&s.opts.output).unwrap().tensors;
    assert!(out.contains_key("z") && out.contains_key("ip.1"));
    assert!(
        !out.keys().any(|k| k.ends_with(".diff")),
        "{:?}",
        out.keys()
    );
}

/// Asserts that running `s` fails with a message holding `want`, `{}` standing for `file`.
fn assert_error(s: &Setup, file: &Path, want: &str) {
    let e = error(s);
    let want = want.replace("{}", &file.display().to_string());
    assert!(e.contains(&want), "{e}\nwanted: {want}");
}

#[test]
fn input_errors_name_the_file_and_tensor() {
    let s = setup(vec![("x", vec![5, 3], values(15, 0.1))], w(), None);
    let want = "`{}` has no tensor `label` for the top of Input layer `data`";
    assert_error(&s, &s.opts.inputs, want);
    let mut extra = x5();
    extra.push(("lable", vec![5], vec![0.0; 5]));
    let s = setup(extra, w(), None);
    let want = "tensor `lable` in `{}` names no Input layer's top (they are: x, label); did you mean `label`?";
    assert_error(&s, &s.opts.inputs, want);
    // A feature size the weights do not fit.
    let x2 = vec![
        ("x", vec![5, 2], values(10, 0.1)),
        ("label", vec![5], vec![0.0; 5]),
    ];
    let s = setup(x2, w(), None);
    let want = "tensor `ip.0` in `{}` has shape 4x3, but the net's `ip.0` is 4x2";
    assert_error(&s, s.opts.weights.as_ref().unwrap(), want);
}

#[test]
fn weight_errors_name_the_file_and_tensor() {
    let s = setup(x5(), vec![("ip.0", vec![4, 3], values(12, 0.2))], None);
    assert_error(
        &s,
        s.opts.weights.as_ref().unwrap(),
        "`{}` has no tensor for the net's `ip.1`",
    );
    // Tensors the net does not use (a snapshot's solver state, say) are only reported.
    let mut more = w();
    more.push(("ip.0.history", vec![4, 3], vec![0.0; 12]));
    let s = setup(x5(), more, None);
    let report = run(&s.opts).unwrap();
    assert_eq!(report.unused_weights, vec!["ip.0.history"]);
    assert!(report
        .to_string()
        .contains("note: the net uses none of these tensors of `"));
}

#[test]
fn top_diff_errors_name_the_file_and_tensor() {
    let cases: Vec<(Named, String)> = vec![
        (vec![("zz", vec![5, 4], vec![0.0; 20])], "the net has no blob of that name; did you mean `z`?".into()),
        (vec![("loss", vec![], vec![1.0])], "`loss` is a loss top; its diff is its loss_weight (2)".into()),
        (
            vec![("x", vec![5, 3], vec![0.0; 15])],
            "blob `x` is read by layer `ip`, whose backward writes its diff; D holds diffs of net outputs only (z)".into(),
        ),
        (vec![("z", vec![2, 4], vec![0.0; 8])], "has shape 2x4, but blob `z` is 5x4".into()),
    ];
    for (d, want) in cases {
        let s = setup(x5(), w(), Some(d.clone()));
        let e = error(&s);
        let tensor = format!(
            "tensor `{}` in `{}`",
            d[0].0,
            s.opts.top_diff.as_ref().unwrap().display()
        );
        assert!(
            e.contains(&tensor) && e.contains(&want),
            "{e}\nwant: {tensor} … {want}"
        );
    }
}

#[test]
fn the_command_line_prints_a_summary_and_needs_backward_for_top_diff() {
    let s = setup(x5(), w(), Some(dz()));
    let bin = env!("CARGO_BIN_EXE_netrun");
    let o = &s.opts;
    let args = |extra: &[&str]| {
        let mut c = std::process::Command::new(bin);
        c.arg("forward")
            .arg(&o.net)
            .arg("--weights")
            .arg(o.weights.as_ref().unwrap())
            .arg("--inputs")
            .arg(&o.inputs)
            .arg("--top-diff")
            .arg(o.top_diff.as_ref().unwrap())
            .arg("-o")
            .arg(&o.output)
            .args(extra);
        c.output().unwrap()
    };
    let refused = args(&[]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--backward"));
    assert!(!o.output.exists());
    let ran = args(&["--backward", "--phase", "TEST"]);
    let stdout = String::from_utf8_lossy(&ran.stdout);
    assert!(
        ran.status.success(),
        "{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    assert!(
        stdout.starts_with(&format!(
            "forward + backward of `{}` (TEST): loss ",
            o.net.display()
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("tensors to `{}`", o.output.display())),
        "{stdout}"
    );
    assert_eq!(load(&o.output).unwrap().metadata["phase"], "TEST");
}
