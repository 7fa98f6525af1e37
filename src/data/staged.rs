//! Databases written beside their final place and swapped in on success.
//!
//! A conversion writes into a fresh hidden folder `.<name>.new-<pid>` next to
//! the destination; only when every record is written is it exchanged with
//! the destination (one atomic `renameat2(RENAME_EXCHANGE)` on Linux, else
//! two renames) and the old database removed. A conversion that fails — a
//! bad image, a missing file, a full disk — leaves the destination as it was
//! (the old database, or nothing) and removes its own folder.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// A database being written at [`Staged::path`], to become `dest`.
pub struct Staged {
    dest: PathBuf,
    temp: PathBuf,
    done: bool,
}

/// Whether `name` is a file of an LMDB folder (`data.mdb`, `lock.mdb`) or of
/// a LevelDB folder (`CURRENT`, `LOCK`, `LOG`, `LOG.old`, `MANIFEST-<n>`,
/// `<n>.ldb|sst|log|dbtmp`); a folder with anything else is not replaced.
pub fn is_db_file(name: &std::ffi::OsStr) -> bool {
    let Some(name) = name.to_str() else {
        return false;
    };
    let number = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match name {
        "data.mdb" | "lock.mdb" | "CURRENT" | "LOCK" | "LOG" | "LOG.old" => true,
        _ => {
            name.strip_prefix("MANIFEST-").is_some_and(number)
                || name.split_once('.').is_some_and(|(n, ext)| {
                    number(n) && matches!(ext, "ldb" | "sst" | "log" | "dbtmp")
                })
        }
    }
}

/// Checks that `dest` may be (re)placed — absent, empty, or with `force` a
/// database folder — and makes the fresh folder to write into.
pub fn stage(dest: &Path, force: bool) -> Result<Staged> {
    if let Ok(entries) = std::fs::read_dir(dest) {
        let names: Vec<_> = entries
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect();
        if !names.is_empty() && !force {
            return Err(Error::Other(format!(
                "`{}` already exists; pass --force to replace it",
                dest.display()
            )));
        }
        if names.iter().any(|n| !is_db_file(n)) {
            return Err(Error::Other(format!(
                "`{}` holds files other than an LMDB's (`data.mdb`, `lock.mdb`) or a \
                 LevelDB's; not replacing it",
                dest.display()
            )));
        }
    } else if dest.exists() {
        return Err(Error::Other(format!(
            "`{}` exists and is not a folder; not replacing it",
            dest.display()
        )));
    }
    let name = dest
        .file_name()
        .ok_or_else(|| Error::Other(format!("`{}` names no folder", dest.display())))?
        .to_string_lossy()
        .into_owned();
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(|e| Error::Io {
        path: parent.clone(),
        message: e.to_string(),
    })?;
    let temp = parent.join(format!(".{name}.new-{}", std::process::id()));
    remove_db(&temp);
    std::fs::create_dir(&temp)
        .map_err(|e| Error::Other(format!("cannot create `{}`: {e}", temp.display())))?;
    Ok(Staged {
        dest: dest.to_path_buf(),
        temp,
        done: false,
    })
}

impl Staged {
    /// Where to write the new database.
    pub fn path(&self) -> &Path {
        &self.temp
    }

    /// Swaps the written database in for `dest` and removes the old one.
    pub fn commit(mut self) -> Result<()> {
        let fail = |e: std::io::Error| {
            Error::Other(format!(
                "cannot move `{}` to `{}`: {e}",
                self.temp.display(),
                self.dest.display()
            ))
        };
        if self.dest.exists() {
            exchange(&self.temp, &self.dest).map_err(fail)?;
            // `temp` now holds the old database.
            remove_db(&self.temp);
        } else {
            std::fs::rename(&self.temp, &self.dest).map_err(fail)?;
        }
        if let Some(parent) = self.dest.parent().filter(|p| !p.as_os_str().is_empty()) {
            let _ = std::fs::File::open(parent).and_then(|d| d.sync_all());
        }
        self.done = true;
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.done {
            remove_db(&self.temp);
        }
    }
}

/// Removes a database folder made here (its database files, then the folder).
fn remove_db(dir: &Path) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if is_db_file(&e.file_name()) {
            let _ = std::fs::remove_file(e.path());
        }
    }
    let _ = std::fs::remove_dir(dir);
}

/// Exchanges two folders: atomically where the OS can, else by renaming the
/// old one aside first.
fn exchange(new: &Path, old: &Path) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::ffi::CString;
        use std::os::unix::ffi::OsStrExt;
        let a = CString::new(new.as_os_str().as_bytes())?;
        let b = CString::new(old.as_os_str().as_bytes())?;
        // SAFETY: two valid NUL-terminated paths; renameat2 reads them only.
        let r = unsafe {
            libc::renameat2(
                libc::AT_FDCWD,
                a.as_ptr(),
                libc::AT_FDCWD,
                b.as_ptr(),
                libc::RENAME_EXCHANGE,
            )
        };
        if r == 0 {
            return Ok(());
        }
    }
    let aside = new.with_extension("old");
    std::fs::rename(old, &aside)?;
    if let Err(e) = std::fs::rename(new, old) {
        let _ = std::fs::rename(&aside, old);
        return Err(e);
    }
    std::fs::rename(&aside, new)
}
