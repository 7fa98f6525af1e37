//! LevelDB databases as Caffe's Data layer uses them with `backend: LEVELDB`
//! (Caffe's default): one folder of table files (`.ldb`, or `.sst` from older
//! LevelDB releases), logs and a manifest; records in key order, bytewise;
//! table blocks usually Snappy-compressed. Read and written with
//! rusty-leveldb (pure Rust).
//!
//! Opening a LevelDB database writes to its folder (a LOCK file, an info
//! LOG, a replayed log turned into a table, a new manifest, a compaction
//! left pending). A data source is only read, and may sit in a read-only
//! folder, so the reader runs on a [`SnapshotEnv`]: files are read from the
//! folder, and everything the library writes (or deletes) stays in memory
//! and is forgotten on close. Every file of the folder is checked whole the
//! first time it is read ([`super::leveldb_check`]), because the library
//! itself passes over damaged blocks in silence.

use super::leveldb_check;
use super::lmdb::Record;
use rusty_leveldb::env::{Env, FileLock, Logger, RandomAccess};
use rusty_leveldb::{DBIterator, LdbIterator, MemEnv, Options, Status, StatusCode, DB};
use std::collections::HashSet;
use std::io::{Read, Write as _};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::{Arc, Mutex};

/// The first damage found in a database's files, shared by its reader and
/// its environment (the library drops the environment's errors while iterating).
type Damage = Arc<Mutex<Option<String>>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Reads from the disk, writes to memory (see the module docs).
pub struct SnapshotEnv {
    mem: MemEnv,
    /// Disk files the library deleted or renamed away.
    gone: Mutex<HashSet<PathBuf>>,
    /// Disk files already checked.
    checked: Mutex<HashSet<PathBuf>>,
    damage: Damage,
}

fn not_found(p: &Path) -> Status {
    Status::new(StatusCode::NotFound, &p.display().to_string())
}

fn io_status(p: &Path, e: std::io::Error) -> Status {
    let code = match e.kind() {
        std::io::ErrorKind::NotFound => StatusCode::NotFound,
        _ => StatusCode::IOError,
    };
    Status::new(code, &format!("{}: {e}", p.display()))
}

impl SnapshotEnv {
    fn new(damage: Damage) -> SnapshotEnv {
        SnapshotEnv {
            mem: MemEnv::new(),
            gone: Mutex::new(HashSet::new()),
            checked: Mutex::new(HashSet::new()),
            damage,
        }
    }

    fn in_mem(&self, p: &Path) -> bool {
        self.mem.exists(p).unwrap_or(false)
    }

    /// The disk file standing for `p`: `p` itself, or for a table `N.ldb`
    /// the `N.sst` older LevelDB releases wrote. None when absent or gone.
    fn on_disk(&self, p: &Path) -> Option<PathBuf> {
        if lock(&self.gone).contains(p) {
            return None;
        }
        if p.exists() {
            return Some(p.to_path_buf());
        }
        let sst = p.with_extension("sst");
        (p.extension().is_some_and(|e| e == "ldb") && sst.exists()).then_some(sst)
    }

    /// Checks a disk file once, recording the first damage found.
    fn check(&self, p: &Path) -> rusty_leveldb::Result<()> {
        if lock(&self.checked).contains(p) {
            return Ok(());
        }
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let verdict = if name.ends_with(".ldb") || name.ends_with(".sst") {
            leveldb_check::verify_table(p)
        } else if name.ends_with(".log") || name.starts_with("MANIFEST-") {
            leveldb_check::verify_log(p)
        } else {
            Ok(())
        };
        if let Err(e) = verdict {
            let message = format!("file `{name}` is damaged: {e}");
            lock(&self.damage).get_or_insert(message.clone());
            return Err(Status::new(StatusCode::Corruption, &message));
        }
        lock(&self.checked).insert(p.to_path_buf());
        Ok(())
    }

    fn disk_file(&self, p: &Path) -> rusty_leveldb::Result<std::fs::File> {
        let path = self.on_disk(p).ok_or_else(|| not_found(p))?;
        self.check(&path)?;
        std::fs::File::open(&path).map_err(|e| io_status(&path, e))
    }
}

impl Env for SnapshotEnv {
    fn open_sequential_file(&self, p: &Path) -> rusty_leveldb::Result<Box<dyn Read>> {
        if self.in_mem(p) {
            return self.mem.open_sequential_file(p);
        }
        Ok(Box::new(self.disk_file(p)?))
    }
    fn open_random_access_file(&self, p: &Path) -> rusty_leveldb::Result<Box<dyn RandomAccess>> {
        if self.in_mem(p) {
            return self.mem.open_random_access_file(p);
        }
        Ok(Box::new(self.disk_file(p)?))
    }
    fn open_writable_file(&self, p: &Path) -> rusty_leveldb::Result<Box<dyn std::io::Write>> {
        lock(&self.gone).insert(p.to_path_buf());
        self.mem.open_writable_file(p)
    }
    fn open_appendable_file(&self, p: &Path) -> rusty_leveldb::Result<Box<dyn std::io::Write>> {
        // Only a log or manifest being reused is appended to: nothing is
        // written to it here, so starting it empty in memory is enough.
        lock(&self.gone).insert(p.to_path_buf());
        self.mem.open_appendable_file(p)
    }
    fn exists(&self, p: &Path) -> rusty_leveldb::Result<bool> {
        Ok(self.in_mem(p) || self.on_disk(p).is_some())
    }
    fn children(&self, p: &Path) -> rusty_leveldb::Result<Vec<PathBuf>> {
        let gone = lock(&self.gone).clone();
        let mut names: Vec<PathBuf> = std::fs::read_dir(p)
            .map_err(|e| io_status(p, e))?
            .filter_map(|e| e.ok().map(|e| PathBuf::from(e.file_name())))
            .filter(|n| !gone.contains(&p.join(n)))
            .collect();
        for n in self.mem.children(p)? {
            if !names.contains(&n) {
                names.push(n);
            }
        }
        Ok(names)
    }
    fn size_of(&self, p: &Path) -> rusty_leveldb::Result<usize> {
        if self.in_mem(p) {
            return self.mem.size_of(p);
        }
        let path = self.on_disk(p).ok_or_else(|| not_found(p))?;
        let meta = std::fs::metadata(&path).map_err(|e| io_status(&path, e))?;
        Ok(meta.len() as usize)
    }
    fn delete(&self, p: &Path) -> rusty_leveldb::Result<()> {
        if self.in_mem(p) {
            self.mem.delete(p)?;
        }
        lock(&self.gone).insert(p.to_path_buf());
        Ok(())
    }
    fn mkdir(&self, _: &Path) -> rusty_leveldb::Result<()> {
        Ok(())
    }
    fn rmdir(&self, _: &Path) -> rusty_leveldb::Result<()> {
        Ok(())
    }
    fn rename(&self, from: &Path, to: &Path) -> rusty_leveldb::Result<()> {
        if !self.in_mem(from) {
            // A disk file (the info LOG becoming LOG.old): copied into memory.
            let mut bytes = Vec::new();
            self.disk_file(from)?
                .read_to_end(&mut bytes)
                .map_err(|e| io_status(from, e))?;
            self.mem
                .open_writable_file(from)?
                .write_all(&bytes)
                .map_err(|e| io_status(from, e))?;
        }
        self.mem.rename(from, to)?;
        lock(&self.gone).extend([from.to_path_buf(), to.to_path_buf()]);
        Ok(())
    }
    fn lock(&self, p: &Path) -> rusty_leveldb::Result<FileLock> {
        Ok(FileLock {
            id: p.display().to_string(),
        })
    }
    fn unlock(&self, _: FileLock) -> rusty_leveldb::Result<()> {
        Ok(())
    }
    fn new_logger(&self, _: &Path) -> rusty_leveldb::Result<Logger> {
        Ok(Logger::new(Box::new(std::io::sink())))
    }
    fn micros(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64)
    }
    fn sleep_for(&self, micros: u32) {
        std::thread::sleep(std::time::Duration::from_micros(u64::from(micros)));
    }
}

/// A database open for reading.
pub struct DbReader {
    db: Mutex<DB>,
    damage: Damage,
}

/// Opens the LevelDB database in folder `dir` for reading (see the module docs).
pub fn open(dir: &Path) -> Result<DbReader, String> {
    let dir = std::fs::canonicalize(dir).map_err(|e| e.to_string())?;
    if !dir.join("CURRENT").is_file() {
        return Err("no `CURRENT` file: not a LevelDB database".into());
    }
    let damage = Damage::default();
    let opt = Options {
        env: Rc::new(Box::new(SnapshotEnv::new(damage.clone()))),
        create_if_missing: false,
        ..Options::default()
    };
    let db =
        DB::open(&dir, opt).map_err(|e| lock(&damage).clone().unwrap_or_else(|| describe(&e)))?;
    let damaged = lock(&damage).clone();
    match damaged {
        Some(e) => Err(e),
        None => Ok(DbReader {
            db: Mutex::new(db),
            damage,
        }),
    }
}

/// A library status as a message.
fn describe(s: &Status) -> String {
    s.err.clone()
}

impl DbReader {
    /// `value`, or the damage found meanwhile.
    fn checked<T>(&self, value: T) -> Result<T, String> {
        match lock(&self.damage).clone() {
            Some(e) => Err(e),
            None => Ok(value),
        }
    }

    /// Calls `f` with an iterator at the first record, or after key `after`.
    fn walk<T>(
        &self,
        after: Option<&[u8]>,
        f: impl FnOnce(&mut DBIterator) -> T,
    ) -> Result<T, String> {
        let mut db = lock(&self.db);
        let mut it = db
            .new_iter()
            .map_err(|e| lock(&self.damage).clone().unwrap_or_else(|| describe(&e)))?;
        match after {
            None => it.seek_to_first(),
            Some(key) => {
                it.seek(key);
                let (mut k, mut v) = (Vec::new(), Vec::new());
                if it.current(&mut k, &mut v) && k == key {
                    it.advance();
                }
            }
        }
        let out = f(&mut it);
        drop(it);
        drop(db);
        self.checked(out)
    }

    /// Up to `n` records in key order: from the first, or after key `after`.
    pub fn records(&self, after: Option<&[u8]>, n: usize) -> Result<Vec<Record>, String> {
        self.walk(after, |it| {
            let mut out = Vec::new();
            let (mut k, mut v) = (Vec::new(), Vec::new());
            while out.len() < n && it.current(&mut k, &mut v) {
                out.push((k.clone(), v.clone()));
                it.advance();
            }
            out
        })
    }

    /// The number of records (reads the whole database).
    pub fn len(&self) -> Result<usize, String> {
        self.walk(None, |it| {
            let mut n = 0;
            while it.valid() {
                n += 1;
                it.advance();
            }
            n
        })
    }

    /// Whether the database holds no record.
    pub fn is_empty(&self) -> Result<bool, String> {
        self.records(None, 1).map(|r| r.is_empty())
    }

    /// The key at position `index` in key order (None past the end).
    pub fn key_at(&self, index: usize) -> Result<Option<Vec<u8>>, String> {
        self.walk(None, |it| {
            for _ in 0..index {
                if !it.advance() {
                    return None;
                }
            }
            let (mut k, mut v) = (Vec::new(), Vec::new());
            it.current(&mut k, &mut v).then_some(k)
        })
    }
}

/// Creates a database in folder `dir` (made if missing, refused if not
/// empty) holding `records` as key → value, Snappy-compressed and compacted
/// into tables; returns how many were written.
pub fn write_records<I>(dir: &Path, records: I) -> Result<usize, String>
where
    I: IntoIterator<Item = Record>,
{
    if std::fs::read_dir(dir).is_ok_and(|mut e| e.next().is_some()) {
        return Err(format!(
            "`{}` already exists and is not empty",
            dir.display()
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let opt = Options {
        // The folder was checked empty above; the library's own check
        // refuses any existing folder.
        create_if_missing: true,
        compressor:
            <rusty_leveldb::compressor::SnappyCompressor as rusty_leveldb::CompressorId>::ID,
        ..Options::default()
    };
    let mut db = DB::open(dir, opt).map_err(|e| describe(&e))?;
    let mut n = 0;
    let mut range: Option<(Vec<u8>, Vec<u8>)> = None;
    for (k, v) in records {
        db.put(&k, &v).map_err(|e| describe(&e))?;
        range = Some(match range {
            None => (k.clone(), k),
            Some((lo, hi)) => (lo.min(k.clone()), hi.max(k)),
        });
        n += 1;
    }
    if let Some((lo, hi)) = range {
        // Moves the last records out of the log into tables, so that a reader
        // need not replay the log into memory.
        db.compact_range(&lo, &hi).map_err(|e| describe(&e))?;
    }
    db.close().map_err(|e| describe(&e))?;
    Ok(n)
}
