//! LMDB databases as Caffe's Data layer uses them: one folder holding
//! `data.mdb`, records in the unnamed database, keys sorted bytewise (Caffe's
//! converters write zero-padded indices so that key order is write order).

use heed::types::Bytes;
use heed::{CommitOrAbort, Database, Env, EnvFlags, EnvOpenOptions};
use std::collections::HashMap;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, Weak};

/// Virtual address space reserved for a database being written. LMDB never
/// grows the map by itself; the file only takes the pages actually used.
const WRITE_MAP_SIZE: usize = 1 << 38;

/// Records per write transaction.
const COMMIT_EVERY: usize = 1000;

/// A key and its value.
pub type Record = (Vec<u8>, Vec<u8>);

/// Read-only environments open in this process, by canonical folder. heed
/// refuses to open one environment twice in a process, so all readers of a
/// database (a TRAIN and a TEST net, a checker) share one handle; it closes
/// when its last reader is dropped.
static OPEN: LazyLock<Mutex<HashMap<PathBuf, Weak<Env>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// A database open for reading.
pub struct DbReader {
    env: Arc<Env>,
}

/// Opens the database in folder `dir` for reading, sharing an environment
/// another reader in this process already has open.
///
/// Opened read-only and without the lock file, so that databases in read-only
/// folders (shared datasets) can be read; nothing may write to it meanwhile.
pub fn open(dir: &Path) -> Result<DbReader, String> {
    let key = std::fs::canonicalize(dir).map_err(|e| e.to_string())?;
    let mut open = OPEN.lock().unwrap_or_else(|e| e.into_inner());
    let env = match open.get(&key).and_then(Weak::upgrade) {
        Some(env) => env,
        None => {
            let env = Arc::new(open_read_only(&key)?);
            open.retain(|_, w| w.strong_count() > 0);
            open.insert(key, Arc::downgrade(&env));
            env
        }
    };
    Ok(DbReader { env })
}

/// Opens an environment read-only. A reader dropped on another thread may
/// still be closing it (heed then says "already opened"): that is retried.
fn open_read_only(dir: &Path) -> Result<Env, String> {
    super::lmdb_check::verify(dir)?;
    super::lmdb_check::guard(dir);
    let mut opts = EnvOpenOptions::new();
    // SAFETY (flags and open): READ_ONLY | NO_LOCK maps the file read-only;
    // callers read while no process writes the database.
    unsafe { opts.flags(EnvFlags::READ_ONLY | EnvFlags::NO_LOCK) };
    for _ in 0..200 {
        match unsafe { opts.open(dir) } {
            Err(heed::Error::EnvAlreadyOpened) => {
                std::thread::sleep(std::time::Duration::from_millis(5))
            }
            r => return r.map_err(|e| e.to_string()),
        }
    }
    Err("the environment is open elsewhere in this process (for writing?)".into())
}

impl DbReader {
    /// The unnamed database (None when the environment has none), looked up
    /// on each call: heed ties its handle to a borrow of the environment.
    fn database(&self) -> Result<Option<Database<'_, Bytes, Bytes>>, String> {
        let rtxn = self.env.read_txn().map_err(|e| e.to_string())?;
        Ok(self
            .env
            .open_databases_and_commit(rtxn, |o, t| {
                o.open_database(t, None).map(CommitOrAbort::<_, ()>::Commit)
            })
            .map_err(|e: heed::Error| e.to_string())?
            .unwrap_commit())
    }

    /// Up to `n` records in key order: from the first, or after key `after`.
    pub fn records(&self, after: Option<&[u8]>, n: usize) -> Result<Vec<Record>, String> {
        let Some(db) = self.database()? else {
            return Ok(vec![]);
        };
        let rtxn = self.env.read_txn().map_err(|e| e.to_string())?;
        let from = after.map_or(Bound::Unbounded, Bound::Excluded);
        let range = db
            .range(&rtxn, &(from, Bound::Unbounded))
            .map_err(|e| e.to_string())?;
        range
            .take(n)
            .map(|kv| {
                kv.map(|(k, v)| (k.to_vec(), v.to_vec()))
                    .map_err(|e| e.to_string())
            })
            .collect()
    }

    /// The number of records.
    pub fn len(&self) -> Result<usize, String> {
        let Some(db) = self.database()? else {
            return Ok(0);
        };
        let rtxn = self.env.read_txn().map_err(|e| e.to_string())?;
        db.len(&rtxn).map(|n| n as usize).map_err(|e| e.to_string())
    }

    /// Whether the database holds no record.
    pub fn is_empty(&self) -> Result<bool, String> {
        self.len().map(|n| n == 0)
    }

    /// The key at position `index` in key order (None past the end). Walks
    /// the keys from the first: values are mapped, not copied.
    pub fn key_at(&self, index: usize) -> Result<Option<Vec<u8>>, String> {
        let Some(db) = self.database()? else {
            return Ok(None);
        };
        let rtxn = self.env.read_txn().map_err(|e| e.to_string())?;
        let mut iter = db.iter(&rtxn).map_err(|e| e.to_string())?;
        match iter.nth(index) {
            None => Ok(None),
            Some(kv) => kv.map(|(k, _)| Some(k.to_vec())).map_err(|e| e.to_string()),
        }
    }
}

/// The number of records of the database in folder `dir`.
pub fn count(dir: &Path) -> Result<usize, String> {
    let reader = open(dir)?;
    let rtxn = reader.env.read_txn().map_err(|e| e.to_string())?;
    let db: Option<Database<Bytes, Bytes>> = reader
        .env
        .open_databases_and_commit(rtxn, |o, t| {
            o.open_database(t, None).map(CommitOrAbort::<_, ()>::Commit)
        })
        .map_err(|e: heed::Error| e.to_string())?
        .unwrap_commit();
    let Some(db) = db else { return Ok(0) };
    let rtxn = reader.env.read_txn().map_err(|e| e.to_string())?;
    db.len(&rtxn).map(|n| n as usize).map_err(|e| e.to_string())
}

/// The first record (smallest key) of the database in folder `dir`, or None when empty.
pub fn read_first(dir: &Path) -> Result<Option<Record>, String> {
    Ok(open(dir)?.records(None, 1)?.into_iter().next())
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
