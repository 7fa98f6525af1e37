//! Every solver and net shipped in nets/ checks: the solver validates and its
//! nets build (data shapes given, as the databases and lists are made by
//! `netrun convert`), through the library and through `netrun check`.

mod common;

use netrun::graph::{BuildOptions, Graph};
use netrun::netdef::read_net_file;
use netrun::proto;
use netrun::solverdef::{looks_like_solver, parse_solver};
use netrun::source::SourceFile;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Every net and solver file under nets/, sorted.
fn net_files() -> Vec<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("nets");
    let mut files = Vec::new();
    for dir in std::fs::read_dir(&root).unwrap() {
        let dir = dir.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(&dir).unwrap() {
            let file = file.unwrap().path();
            if matches!(
                file.extension().and_then(|e| e.to_str()),
                Some("prototxt" | "net")
            ) {
                files.push(file);
            }
        }
    }
    files.sort();
    files
}

/// Per-sample shapes of the data tops whose sources are absent: MNIST digits
/// (pairs for the siamese net) or 3×112×96 face crops.
fn data_shapes(file: &Path) -> Vec<(String, Vec<usize>)> {
    let name = file.file_name().unwrap().to_string_lossy();
    let data = if name.starts_with("mnist") {
        vec![1, 28, 28]
    } else {
        vec![3, 112, 96]
    };
    vec![
        ("data".to_string(), data),
        ("pair_data".to_string(), vec![2, 28, 28]),
    ]
}

#[test]
fn every_file_in_nets_checks() {
    let files = net_files();
    for file in &files {
        let dir = file.parent().unwrap();
        let doc = proto::parse(&SourceFile::read(file).unwrap()).unwrap();
        let mut opts = BuildOptions::default();
        opts.context.input_shapes = data_shapes(file).into_iter().collect::<HashMap<_, _>>();
        if looks_like_solver(&doc.root) {
            let solver =
                parse_solver(&doc, dir).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            for spec in std::iter::once(&solver.train_net).chain(&solver.test_nets) {
                let loaded = solver.load_net(spec).unwrap();
                opts.state = loaded.state.clone();
                opts.context.phase = loaded.state.phase;
                Graph::build(&loaded.net, &opts)
                    .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            }
        } else {
            let net = read_net_file(file).unwrap();
            Graph::build(&net, &opts).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        }
    }
    // caffe-face 7, sphereface 15, siamese 4, triplet 4, faces-demo 3.
    assert!(files.len() >= 33, "{}", files.len());
}

#[test]
fn netrun_check_accepts_every_file_in_nets() {
    for file in net_files() {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_netrun"));
        cmd.arg("check").arg(&file);
        for (top, shape) in data_shapes(&file) {
            let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
            cmd.arg("--input-shape")
                .arg(format!("{top}={}", dims.join(",")));
        }
        let out = cmd.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "netrun check {}:\n{stdout}\n{}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("parameters:"), "{}", file.display());
    }
}

#[test]
fn every_folder_has_a_readme_naming_its_files() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("nets");
    for dir in std::fs::read_dir(&root).unwrap() {
        let dir = dir.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        let readme = std::fs::read_to_string(dir.join("README.md"))
            .unwrap_or_else(|e| panic!("{}/README.md: {e}", dir.display()));
        assert!(readme.contains("netrun train"), "{}", dir.display());
        for f in net_files().iter().filter(|f| f.parent() == Some(&dir)) {
            let name = f.file_name().unwrap().to_string_lossy();
            let generated = name.starts_with("sphereface") && !name.starts_with("sphereface20");
            assert!(
                generated || readme.contains(name.as_ref()),
                "{}/README.md does not mention {name}",
                dir.display()
            );
        }
    }
}
