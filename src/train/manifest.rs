//! Snapshot sets as a unit: `<prefix>_iter_<N>.manifest`, written last.
//!
//! A snapshot is a set of files (weights, centres, solver state). Each is
//! written atomically, but a kill or a full disk between them would leave a
//! half set, and files of two runs could mix. The manifest makes the set the
//! unit: written (atomically) only after every file of the set is on disk,
//! it names each file with its size and the CRC-32 of its bytes, the
//! iteration and the run's identity, and ends with the CRC-32 of its own
//! text. Resume accepts a set only when its manifest is intact and every
//! file matches it; otherwise it names the newest complete older set.
//!
//! Format (text, one entry per line, then the checksum line):
//!
//! ```text
//! netrun-snapshot-set-v1
//! run <hex>
//! iteration <N>
//! file <name> <bytes> crc32:<8 hex>
//! checksum crc32:<8 hex>     (over every line before it, newlines included)
//! ```
//!
//! Sets written before manifests existed (no manifest, and a solver state
//! without a `run` entry) are still resumed, each file checked by its own
//! checksum, with a note in the log; a set whose solver state has a `run`
//! entry but no manifest was cut short and is refused.

use super::snapshot;
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

pub const MANIFEST: &str = ".manifest";
const HEADER: &str = "netrun-snapshot-set-v1";

/// One file of a set: its name (no folder), size and CRC-32.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub name: String,
    pub bytes: u64,
    pub crc: u32,
}

/// A manifest's contents.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    pub run: String,
    pub iteration: u64,
    pub files: Vec<Entry>,
}

/// The entry of a file as it is on disk.
pub fn entry_of(path: &Path) -> Result<Entry> {
    let bytes = std::fs::read(path).map_err(|e| Error::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    Ok(Entry {
        name: file_name(path),
        bytes: bytes.len() as u64,
        crc: crc32fast::hash(&bytes),
    })
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

impl Manifest {
    fn render(&self) -> String {
        let mut s = format!("{HEADER}\nrun {}\niteration {}\n", self.run, self.iteration);
        for f in &self.files {
            s += &format!("file {} {} crc32:{:08x}\n", f.name, f.bytes, f.crc);
        }
        let sum = crc32fast::hash(s.as_bytes());
        s + &format!("checksum crc32:{sum:08x}\n")
    }

    fn parse(text: &str) -> std::result::Result<Manifest, String> {
        let body_end = text
            .rfind("checksum ")
            .ok_or("it has no checksum line (cut short)")?;
        let (body, sum) = text.split_at(body_end);
        let want = format!("checksum crc32:{:08x}\n", crc32fast::hash(body.as_bytes()));
        if sum != want {
            return Err("its checksum does not match its contents (corrupted)".into());
        }
        let mut lines = body.lines();
        if lines.next() != Some(HEADER) {
            return Err(format!("it does not start with `{HEADER}`"));
        }
        let mut m = Manifest {
            run: String::new(),
            iteration: 0,
            files: vec![],
        };
        for line in lines {
            let parts: Vec<&str> = line.split(' ').collect();
            match parts.as_slice() {
                ["run", r] => m.run = r.to_string(),
                ["iteration", n] => m.iteration = n.parse().map_err(|_| "bad iteration")?,
                ["file", name, bytes, crc] => m.files.push(Entry {
                    name: name.to_string(),
                    bytes: bytes.parse().map_err(|_| "bad file size")?,
                    crc: crc
                        .strip_prefix("crc32:")
                        .and_then(|c| u32::from_str_radix(c, 16).ok())
                        .ok_or("bad file checksum")?,
                }),
                _ => return Err(format!("unreadable line `{line}`")),
            }
        }
        Ok(m)
    }
}

/// Writes the manifest of the set at `base` (atomically, after its files).
pub fn write(base: &Path, manifest: &Manifest, step: &mut dyn FnMut()) -> Result<()> {
    let path = snapshot::file(base, MANIFEST);
    crate::weights::write_atomically(&path, manifest.render().as_bytes(), step)
        .map_err(|m| Error::Other(format!("cannot write `{}`: {m}", path.display())))
}

/// Writes a manifest for the files of `base` as they are now (for tools that
/// rewrite a snapshot file on purpose), keeping its run identity.
pub fn reseal(base: &Path, run: &str, iteration: u64) -> Result<()> {
    let mut files = Vec::new();
    for suffix in [snapshot::WEIGHTS, snapshot::CENTERS, snapshot::SOLVERSTATE] {
        let p = snapshot::file(base, suffix);
        if p.is_file() {
            files.push(entry_of(&p)?);
        }
    }
    let m = Manifest {
        run: run.to_string(),
        iteration,
        files,
    };
    write(base, &m, &mut || {})
}

/// What resume may do with the set at `base`.
#[derive(Debug)]
pub enum SetState {
    /// Manifest intact and every file matches it.
    Complete(Manifest),
    /// Written before manifests existed.
    Legacy,
}

/// Checks the set at `base`; the error says what is wrong and which older set is complete.
pub fn verify(base: &Path) -> Result<SetState> {
    let problem = match check(base) {
        Ok(s) => return Ok(s),
        Err(p) => p,
    };
    let older = match newest_complete(base) {
        Some(b) => format!(
            "the newest complete set is `{}` (resume with `--snapshot {}`)",
            b.display(),
            b.display()
        ),
        None => "no complete snapshot set with this prefix was found".to_string(),
    };
    Err(Error::Other(format!(
        "snapshot set `{}` is incomplete or damaged: {problem}; {older}",
        base.display()
    )))
}

fn check(base: &Path) -> std::result::Result<SetState, String> {
    let path = snapshot::file(base, MANIFEST);
    let text = match std::fs::read(&path) {
        Ok(t) => String::from_utf8_lossy(&t).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return legacy(base),
        Err(e) => return Err(format!("cannot read `{}`: {e}", path.display())),
    };
    let m = Manifest::parse(&text).map_err(|e| format!("manifest `{}`: {e}", path.display()))?;
    let dir = base.parent().unwrap_or(Path::new(""));
    let solverstate = file_name(&snapshot::file(base, snapshot::SOLVERSTATE));
    if !m.files.iter().any(|f| f.name == solverstate) {
        return Err(format!(
            "manifest `{}` names no solver state",
            path.display()
        ));
    }
    for f in &m.files {
        let p = dir.join(&f.name);
        let actual = entry_of(&p).map_err(|e| e.to_string())?;
        if actual != *f {
            return Err(format!(
                "`{}` is not the file the manifest names ({} bytes, crc32:{:08x} recorded; \
                 {} bytes, crc32:{:08x} found): from another run, or damaged",
                p.display(),
                f.bytes,
                f.crc,
                actual.bytes,
                actual.crc
            ));
        }
    }
    Ok(SetState::Complete(m))
}

/// No manifest: a set from before manifests, or one cut short.
fn legacy(base: &Path) -> std::result::Result<SetState, String> {
    let state = snapshot::file(base, snapshot::SOLVERSTATE);
    if !state.is_file() {
        return Err(format!(
            "it has no manifest and no solver state `{}`",
            state.display()
        ));
    }
    let file = snapshot::read(&state).map_err(|e| e.to_string())?;
    if file.metadata.contains_key("run") {
        return Err("its manifest is missing: the set was cut short while being written".into());
    }
    Ok(SetState::Legacy)
}

/// `(prefix, N)` of `<prefix>_iter_<N>`.
fn split_base(base: &Path) -> Option<(String, u64)> {
    let s = base.to_string_lossy();
    let (prefix, n) = s.rsplit_once("_iter_")?;
    Some((prefix.to_string(), n.parse().ok()?))
}

/// The iterations of the sets with prefix `prefix` that have a manifest, newest first.
fn manifested(prefix: &str) -> Vec<u64> {
    let p = Path::new(prefix);
    let dir = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let stem = format!("{}_iter_", file_name(p));
    let mut iters: Vec<u64> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let n = e.ok()?.file_name().to_string_lossy().into_owned();
            n.strip_prefix(&stem)?.strip_suffix(MANIFEST)?.parse().ok()
        })
        .collect();
    iters.sort_unstable_by(|a, b| b.cmp(a));
    iters
}

/// The newest complete set other than `base` with the same prefix.
pub fn newest_complete(base: &Path) -> Option<PathBuf> {
    let (prefix, n) = split_base(base)?;
    manifested(&prefix)
        .into_iter()
        .filter(|&i| i != n)
        .map(|i| snapshot::base(&prefix, i))
        .find(|b| matches!(check(b), Ok(SetState::Complete(_))))
}

/// The newest complete set of `prefix`, if any.
pub fn latest(prefix: &str) -> Option<PathBuf> {
    manifested(prefix)
        .into_iter()
        .map(|i| snapshot::base(prefix, i))
        .find(|b| matches!(check(b), Ok(SetState::Complete(_))))
}

/// Removes temporary files that interrupted snapshot writes of `prefix` left
/// (`.<prefix-file>_iter_*.tmp` beside the snapshots); returns their paths.
pub fn remove_stale_temporaries(prefix: &str) -> Vec<PathBuf> {
    let p = Path::new(prefix);
    let dir = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let stem = format!(".{}_iter_", file_name(p));
    let mut removed = Vec::new();
    for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        if n.starts_with(&stem) && n.ends_with(".tmp") && std::fs::remove_file(e.path()).is_ok() {
            removed.push(e.path());
        }
    }
    removed
}

/// A run identity: 16 hex digits from the clock and the process.
pub fn new_run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut h = crc32fast::Hasher::new();
    h.update(&nanos.to_le_bytes());
    h.update(&std::process::id().to_le_bytes());
    format!("{:08x}{:08x}", h.finalize(), nanos as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_round_trips_and_any_changed_byte_is_caught() {
        let m = Manifest {
            run: "00ff".into(),
            iteration: 12,
            files: vec![Entry {
                name: "a_iter_12.weights.safetensors".into(),
                bytes: 10,
                crc: 0xdead_beef,
            }],
        };
        let text = m.render();
        assert_eq!(Manifest::parse(&text).unwrap(), m);
        let flipped = text.replace("iteration 12", "iteration 13");
        assert!(Manifest::parse(&flipped).unwrap_err().contains("checksum"));
        assert!(Manifest::parse(&text[..text.len() - 5]).is_err());
    }
}
