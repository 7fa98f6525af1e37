//! Helpers for the data-layer tests: building with a context, reading top
//! shapes, scratch folders, and PNG sizes read independently of netrun.
#![allow(dead_code)]

use netrun::graph::{BuildOptions, Graph};
use netrun::netdef::{parse_net_str, Phase};
use std::path::{Path, PathBuf};

/// Builds `text` in TRAIN after `setup` adjusts the options (data dirs, batch, input shapes).
pub fn build_with(text: &str, setup: impl FnOnce(&mut BuildOptions)) -> netrun::Result<Graph> {
    let net = parse_net_str("test.net", text)?;
    let mut opts = BuildOptions::for_phase(Phase::Train);
    setup(&mut opts);
    Graph::build(&net, &opts)
}

/// The rendered error of building `text`, panicking if it builds.
pub fn error_with(text: &str, setup: impl FnOnce(&mut BuildOptions)) -> String {
    match build_with(text, setup) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e.to_string(),
    }
}

/// The top shapes of layer `name`.
pub fn tops(g: &Graph, name: &str) -> Vec<Vec<usize>> {
    let n = g.node(name).expect("layer exists");
    g.nodes[n]
        .tops
        .iter()
        .map(|&t| g.blob_shape(t).to_vec())
        .collect()
}

/// The read-only `shared/` folder beside the repository.
pub fn shared_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared")
}

/// An empty folder under cargo's scratch space for integration tests.
pub fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("netrun-data")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// (height, width) from a PNG's IHDR chunk: big-endian width at bytes 16..20, height at 20..24.
pub fn png_size(path: &Path) -> (usize, usize) {
    let b = std::fs::read(path).unwrap();
    assert_eq!(&b[1..4], b"PNG", "{} is not a PNG", path.display());
    let be = |s: &[u8]| u32::from_be_bytes([s[0], s[1], s[2], s[3]]) as usize;
    (be(&b[20..24]), be(&b[16..20]))
}

/// The folder of the real face crops and the path (relative to it) of the first listed image.
pub fn johns_first() -> (PathBuf, String) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/dlib_johns");
    let list = std::fs::read_to_string(dir.join("list.txt")).unwrap();
    let line = list.lines().find(|l| !l.trim().is_empty()).unwrap();
    let (path, _) = line.rsplit_once(' ').unwrap();
    (dir, path.to_string())
}
