//! The margin-loss forks' published nets in `../shared/configs/forks/` (discovered from
//! the folder): each passes `netrun check` in both phases and runs one forward and
//! backward through `netrun time`. Their data sources are not here, so data tops get
//! `--input-shape` (1×28×28 for the MNIST nets, 3×112×96 for the face nets, as the
//! folder's README says); the NormFace loss heads, published without their trunk, read
//! `last_ip_layer` and `label`, which `--input-shape` turns into inputs.

mod common;

use std::path::{Path, PathBuf};

fn configs() -> Vec<PathBuf> {
    let dir = common::shared("configs/forks");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "prototxt"))
        .collect();
    v.sort();
    assert!(
        v.len() >= 5,
        "expected the fork configs in {}",
        dir.display()
    );
    v
}

fn input_shapes(net: &Path) -> Vec<String> {
    let name = net.file_name().unwrap().to_string_lossy();
    let data = if name.contains("mnist") {
        "1,28,28"
    } else {
        "3,112,96"
    };
    [
        format!("data={data}"),
        "last_ip_layer=512".into(),
        "label=1".into(),
    ]
    .into_iter()
    .flat_map(|s| ["--input-shape".to_string(), s])
    .collect()
}

fn netrun(args: &[&str], net: &Path) -> String {
    common::forks::netrun_ok(args, net, &input_shapes(net))
}

#[test]
fn every_fork_config_checks_in_both_phases() {
    for net in configs() {
        for phase in ["TRAIN", "TEST"] {
            let text = netrun(&["check", "--phase", phase], &net);
            assert!(text.contains("parameters:"), "{}:\n{text}", net.display());
        }
    }
}

#[test]
fn every_fork_config_runs_forward_and_backward() {
    for net in configs() {
        let text = netrun(&["time", "--iterations", "1", "--batch", "2"], &net);
        assert!(
            text.contains("Average Forward-Backward"),
            "{}:\n{text}",
            net.display()
        );
    }
}
