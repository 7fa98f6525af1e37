//! The caffe-face FACE net's snapshot: the weights file leaves the 10572×512
//! CenterLoss centres (5.4M values, 14% of the net's 38.4M) to the centres file.

mod common;

use netrun::solverdef::read_solver_file_in;
use netrun::train::log::Log;
use netrun::train::snapshot;
use netrun::train::{TrainOptions, Trainer};

#[test]
fn face_snapshot_keeps_centres_out_of_the_weights() {
    let text = std::fs::read_to_string(common::shared(
        "configs/caffe-face/face_example/face_train_test.prototxt",
    ))
    .unwrap();
    // Both ImageData layers (TRAIN and TEST) give way to one DummyData layer, batch 2.
    let first = text.find("layer {").unwrap();
    let conv = text.find("layer {\n  name: \"conv1a\"").unwrap();
    assert_eq!(text[first..conv].matches("type: \"ImageData\"").count(), 2);
    let dummy = r#"layer {
  name: "data"
  type: "DummyData"
  top: "data"
  top: "label"
  dummy_data_param {
    shape { dim: 2 dim: 3 dim: 112 dim: 96 }
    shape { dim: 2 }
    data_filler { type: "gaussian" std: 0.5 }
    data_filler { type: "constant" value: 7 }
  }
}
"#;
    let net = format!("{}{dummy}{}", &text[..first], &text[conv..]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("face.prototxt"), net).unwrap();
    let solver = d.join("solver.prototxt");
    std::fs::write(
        &solver,
        format!(
            "net: \"face.prototxt\"\nbase_lr: 0.1\nlr_policy: \"fixed\"\nmax_iter: 1\n\
             momentum: 0.9\nsnapshot_prefix: \"{}\"\n",
            d.join("face").display()
        ),
    )
    .unwrap();
    let def = read_solver_file_in(&solver, d).unwrap();
    let mut t = Trainer::new(
        def,
        TrainOptions::default(),
        Log::new(Box::new(std::io::sink())),
    )
    .unwrap();
    let base = t.snapshot().unwrap();
    assert_eq!(base, d.join("face_iter_0"));

    let weights =
        netrun::tensors::TensorFile::open(&snapshot::file(&base, snapshot::WEIGHTS)).unwrap();
    let names = weights.names().unwrap();
    assert!(
        !names.iter().any(|n| n.starts_with("center_loss.")),
        "{names:?}"
    );
    // fc6 is the only 10572×512 blob left among the weights.
    let big: Vec<&String> = names
        .iter()
        .filter(|n| weights.f32(n).unwrap().0 == [10572, 512])
        .collect();
    assert_eq!(big, [&"fc6.0".to_string()]);
    let centers =
        netrun::tensors::TensorFile::open(&snapshot::file(&base, snapshot::CENTERS)).unwrap();
    assert_eq!(centers.names().unwrap(), ["center_loss.0"]);
    assert_eq!(centers.f32("center_loss.0").unwrap().0, [10572, 512]);

    // Sizes: the centres hold 10572·512 floats, the weights every other learnable value.
    let size = |suffix| {
        std::fs::metadata(snapshot::file(&base, suffix))
            .unwrap()
            .len() as f64
    };
    let (w, c) = (size(snapshot::WEIGHTS), size(snapshot::CENTERS));
    let centre_bytes = 10572.0 * 512.0 * 4.0;
    assert!(
        c >= centre_bytes && c < centre_bytes + 4096.0,
        "centres file {c} bytes"
    );
    let all_values: usize = t.net.params.iter().map(|p| p.count()).sum();
    let weight_bytes = (all_values - 10572 * 512) as f64 * 4.0;
    assert!(
        w >= weight_bytes && w < weight_bytes + 65536.0,
        "weights file {w} bytes"
    );
    // Without the centres the weights file is (all − centres)/all of what it
    // would be with them: about 86% for this net (33.0M other values vs 5.4M centres).
    let ratio = w / (w + c);
    let expected = (all_values - 10572 * 512) as f64 / all_values as f64;
    assert!(
        (ratio - expected).abs() < 0.002,
        "weights are {ratio} of weights + centres, expected {expected}"
    );
    // The solver state holds one momentum history per learnable, centres included.
    let state =
        netrun::tensors::TensorFile::open(&snapshot::file(&base, snapshot::SOLVERSTATE)).unwrap();
    assert!(state
        .names()
        .unwrap()
        .contains(&"center_loss.0.history0".to_string()));
    assert_eq!(state.names().unwrap().len(), t.net.learnables.len());
}
