//! The CUDA sources under a folder, for the two kernel tests (`cuda_kernels.rs`,
//! `cuda_emulation/`), which include this file by path.

use std::path::{Path, PathBuf};

/// Every `.cu` file under `dir`, recursively, sorted.
pub fn cu_files(dir: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "cu") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, &mut out);
    out.sort();
    out
}
