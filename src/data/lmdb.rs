//! LMDB databases as Caffe's Data layer uses them: one folder holding
//! `data.mdb`, records in the unnamed database, keys sorted bytewise (Caffe's
//! converters write zero-padded indices so that key order is write order).

use heed::types::Bytes;
use heed::{CommitOrAbort, Database, EnvFlags, EnvOpenOptions};
use std::path::Path;

/// Virtual address space reserved for a database being written. LMDB never
/// grows the map by itself; the file only takes the pages actually used.
const WRITE_MAP_SIZE: usize = 1 << 38;

/// Records per write transaction.
const COMMIT_EVERY: usize = 1000;

/// A key and its value.
pub type Record = (Vec<u8>, Vec<u8>);

/// The first record (smallest key) of the database in folder `dir`, or None when empty.
///
/// Opened read-only and without the lock file, so that databases in read-only
/// folders (shared datasets) can be read; nothing may write to it meanwhile.
pub fn read_first(dir: &Path) -> Result<Option<Record>, String> {
    let mut opts = EnvOpenOptions::new();
    // SAFETY: READ_ONLY | NO_LOCK maps the file read-only; the caller reads one
    // record while no process writes the database.
    let env = unsafe {
        opts.flags(EnvFlags::READ_ONLY | EnvFlags::NO_LOCK);
        opts.open(dir)
    }
    .map_err(|e| e.to_string())?;
    let rtxn = env.read_txn().map_err(|e| e.to_string())?;
    let db: Option<Database<Bytes, Bytes>> = env
        .open_databases_and_commit(rtxn, |o, t| {
            o.open_database(t, None).map(CommitOrAbort::<_, ()>::Commit)
        })
        .map_err(|e: heed::Error| e.to_string())?
        .unwrap_commit();
    let Some(db) = db else { return Ok(None) };
    let rtxn = env.read_txn().map_err(|e| e.to_string())?;
    let first = db.first(&rtxn).map_err(|e| e.to_string())?;
    Ok(first.map(|(k, v)| (k.to_vec(), v.to_vec())))
}

/// Creates a database in folder `dir` (made if missing, refused if not empty)
/// holding `records` as key → value; returns how many were written.
pub fn write_records<I>(dir: &Path, records: I) -> Result<usize, String>
where
    I: IntoIterator<Item = Record>,
{
    if dir.exists() {
        let mut entries = std::fs::read_dir(dir).map_err(|e| e.to_string())?;
        if entries.next().is_some() {
            return Err(format!(
                "`{}` already exists and is not empty",
                dir.display()
            ));
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let mut opts = EnvOpenOptions::new();
    opts.map_size(WRITE_MAP_SIZE);
    // SAFETY: a fresh database that no other process has open.
    let env = unsafe { opts.open(dir) }.map_err(|e| e.to_string())?;
    let wtxn = env.write_txn().map_err(|e| e.to_string())?;
    let db: Database<Bytes, Bytes> = env
        .create_databases_and_commit(wtxn, |o, t| {
            o.create_database(t, None)
                .map(CommitOrAbort::<_, ()>::Commit)
        })
        .map_err(|e: heed::Error| e.to_string())?
        .unwrap_commit();
    let mut n = 0;
    let mut records = records.into_iter().peekable();
    while records.peek().is_some() {
        let mut wtxn = env.write_txn().map_err(|e| e.to_string())?;
        for (k, v) in records.by_ref().take(COMMIT_EVERY) {
            db.put(&mut wtxn, &k, &v).map_err(|e| e.to_string())?;
            n += 1;
        }
        wtxn.commit().map_err(|e| e.to_string())?;
    }
    Ok(n)
}
