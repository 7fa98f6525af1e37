//! The two key-value stores Caffe's Data layer reads (`DataParameter.DB`):
//! LevelDB (0, Caffe's default) and LMDB (1). Both hold `Datum` records in
//! bytewise key order; this module picks the store, callers see one reader.

use super::lmdb::Record;
use super::{leveldb, lmdb};
use serde::Deserialize;
use std::path::Path;

/// `DataParameter.DB`: LEVELDB = 0, LMDB = 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Backend {
    #[default]
    Leveldb,
    Lmdb,
}

impl Backend {
    /// The store's name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Leveldb => "LevelDB",
            Backend::Lmdb => "LMDB",
        }
    }
}

/// A database open for reading.
pub enum Reader {
    Leveldb(Box<leveldb::DbReader>),
    Lmdb(lmdb::DbReader),
}

/// Opens the database of kind `backend` in folder `dir` for reading.
pub fn open(backend: Backend, dir: &Path) -> Result<Reader, String> {
    Ok(match backend {
        Backend::Leveldb => Reader::Leveldb(Box::new(leveldb::open(dir)?)),
        Backend::Lmdb => Reader::Lmdb(lmdb::open(dir)?),
    })
}

impl Reader {
    /// Up to `n` records in key order: from the first, or after key `after`.
    pub fn records(&self, after: Option<&[u8]>, n: usize) -> Result<Vec<Record>, String> {
        match self {
            Reader::Leveldb(r) => r.records(after, n),
            Reader::Lmdb(r) => r.records(after, n),
        }
    }

    /// The number of records.
    pub fn len(&self) -> Result<usize, String> {
        match self {
            Reader::Leveldb(r) => r.len(),
            Reader::Lmdb(r) => r.len(),
        }
    }

    /// Whether the database holds no record.
    pub fn is_empty(&self) -> Result<bool, String> {
        self.len().map(|n| n == 0)
    }

    /// The key at position `index` in key order (None past the end).
    pub fn key_at(&self, index: usize) -> Result<Option<Vec<u8>>, String> {
        match self {
            Reader::Leveldb(r) => r.key_at(index),
            Reader::Lmdb(r) => r.key_at(index),
        }
    }
}

/// The number of records of the database in folder `dir`.
pub fn count(backend: Backend, dir: &Path) -> Result<usize, String> {
    open(backend, dir)?.len()
}

/// The first record (smallest key), or None when empty.
pub fn read_first(backend: Backend, dir: &Path) -> Result<Option<Record>, String> {
    Ok(open(backend, dir)?.records(None, 1)?.into_iter().next())
}

/// Creates a database of kind `backend` in folder `dir` (made if missing,
/// refused if not empty) holding `records`; returns how many were written.
pub fn write_records<I>(backend: Backend, dir: &Path, records: I) -> Result<usize, String>
where
    I: IntoIterator<Item = Record>,
{
    match backend {
        Backend::Leveldb => leveldb::write_records(dir, records),
        Backend::Lmdb => lmdb::write_records(dir, records),
    }
}
