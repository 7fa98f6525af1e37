//! Every solver and net shipped in nets/ checks: the solver validates and its
//! nets build (data shapes given, as the databases are made by `netrun convert`).

mod common;

use netrun::graph::{BuildOptions, Graph};
use netrun::netdef::read_net_file;
use netrun::proto;
use netrun::solverdef::{looks_like_solver, parse_solver};
use netrun::source::SourceFile;
use std::path::PathBuf;

#[test]
fn every_file_in_nets_checks() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("nets");
    let mut checked = 0;
    for dir in std::fs::read_dir(&root).unwrap() {
        let dir = dir.unwrap().path();
        for file in std::fs::read_dir(&dir).unwrap() {
            let file = file.unwrap().path();
            if file.extension().and_then(|e| e.to_str()) != Some("prototxt") {
                continue;
            }
            let doc = proto::parse(&SourceFile::read(&file).unwrap()).unwrap();
            let mut opts = BuildOptions::default();
            opts.context.input_shapes = [("data".to_string(), vec![1, 28, 28])]
                .into_iter()
                .collect();
            if looks_like_solver(&doc.root) {
                let solver =
                    parse_solver(&doc, &dir).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
                let loaded = solver.load_net(&solver.train_net).unwrap();
                opts.state = loaded.state.clone();
                opts.context.phase = loaded.state.phase;
                Graph::build(&loaded.net, &opts)
                    .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            } else {
                let net = read_net_file(&file).unwrap();
                Graph::build(&net, &opts).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            }
            checked += 1;
        }
    }
    assert!(checked >= 3, "{checked}");
}
