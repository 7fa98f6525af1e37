//! The malformed-file corpus: every `.net`/`.prototxt` file in `tests/errors/`
//! holds one real mistake (or, for `*_several_*`, several), and its sibling
//! `<file>.expected` holds the exact text netrun prints for it: the rendered
//! diagnostics with `path:line:col`, source line, caret and help, then the
//! count line. Files are built as `netrun check --phase TRAIN` builds them,
//! through `netdef::read_net_file` and `Graph::build`, with the relative path
//! `tests/errors/<file>` (cargo runs integration tests from the crate root).
//!
//! A file that Caffe reads although it is not what today's format says (a V1
//! net, a `*_param` block its layer type ignores) builds with warnings; its
//! `.expected` holds the rendered warnings and their count line instead. A
//! file that builds with neither an error nor a warning fails the test, as
//! does an `.expected` file without its net file.
//!
//! To (re)write the expectations after changing a message:
//!
//! ```text
//! NETRUN_BLESS=1 cargo test --test error_corpus
//! ```
//!
//! then read every changed `.expected` file before committing it.

use netrun::graph::{BuildOptions, Graph};
use netrun::netdef::{read_net_file, Phase};
use std::path::{Path, PathBuf};

const DIR: &str = "tests/errors";

/// The rendered error of building `path`, or its warnings when it builds
/// with some, or None.
fn render(path: &Path) -> Option<String> {
    let result = read_net_file(path).and_then(|net| {
        Graph::build(&net, &BuildOptions::for_phase(Phase::Train)).map(|_| net.warnings)
    });
    match result {
        Err(e) => Some(format!("{e}\n")),
        Ok(w) if w.is_empty() => None,
        Ok(w) => Some(format!("{}\n", netrun::error::render_warnings(&w))),
    }
}

fn corpus() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(DIR)
        .unwrap_or_else(|e| panic!("cannot list {DIR}: {e}"))
        .map(|e| Path::new(DIR).join(e.expect("directory entry").file_name()))
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("net" | "prototxt")
            )
        })
        .collect();
    files.sort();
    files
}

fn expected_path(net: &Path) -> PathBuf {
    let mut name = net.file_name().expect("file name").to_os_string();
    name.push(".expected");
    net.with_file_name(name)
}

#[test]
fn every_malformed_file_gives_its_expected_diagnostics() {
    let bless = std::env::var_os("NETRUN_BLESS").is_some_and(|v| v == "1");
    let files = corpus();
    assert!(
        files.len() >= 40,
        "the corpus has only {} files",
        files.len()
    );
    let mut failures = Vec::new();
    for net in &files {
        let expected_file = expected_path(net);
        let Some(actual) = render(net) else {
            failures.push(format!(
                "{}: builds without error or warning",
                net.display()
            ));
            continue;
        };
        if bless {
            std::fs::write(&expected_file, &actual)
                .unwrap_or_else(|e| panic!("cannot write {}: {e}", expected_file.display()));
            continue;
        }
        match std::fs::read_to_string(&expected_file) {
            Err(_) => failures.push(format!(
                "{}: no {} (run with NETRUN_BLESS=1)",
                net.display(),
                expected_file.display()
            )),
            Ok(expected) if expected != actual => failures.push(format!(
                "{}: output differs\n--- expected\n{expected}--- actual\n{actual}",
                net.display()
            )),
            Ok(_) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_expectation_has_its_net_file() {
    let nets = corpus();
    let stale: Vec<String> = std::fs::read_dir(DIR)
        .expect("tests/errors")
        .map(|e| Path::new(DIR).join(e.expect("directory entry").file_name()))
        .filter(|p| p.extension().is_some_and(|e| e == "expected"))
        .filter(|p| !nets.iter().any(|n| expected_path(n) == *p))
        .map(|p| p.display().to_string())
        .collect();
    assert!(
        stale.is_empty(),
        "expectations without a net file: {stale:?}"
    );
}
