//! The Python venv of the real-client tests (OpenCV, ONNX Runtime, Python's protobuf):
//! created under the target folder by `tests/python/setup-venv.sh` on first use
//! (`.ci/run` runs the same script first), then reused.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The venv's interpreter, creating the venv if needed. Panics with the
/// script's message when it cannot be made (no Python, no registry).
pub fn python() -> PathBuf {
    static PY: OnceLock<PathBuf> = OnceLock::new();
    PY.get_or_init(|| {
        let script = repo().join("tests/python/setup-venv.sh");
        let out = Command::new("bash")
            .arg(&script)
            .output()
            .expect("running tests/python/setup-venv.sh");
        assert!(
            out.status.success(),
            "tests/python/setup-venv.sh failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo().join("target"));
        target.join("pyenv/bin/python")
    })
    .clone()
}

/// Runs a Python script file from `tests/python/` with arguments; returns its
/// stdout, panicking with stderr when it fails.
pub fn run_script(script: &str, args: &[&Path]) -> String {
    let out = Command::new(python())
        .arg(repo().join("tests/python").join(script))
        .args(args)
        .output()
        .expect("running the test venv's python");
    assert!(
        out.status.success(),
        "tests/python/{script} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
