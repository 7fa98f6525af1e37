//! LevelDB data sources: databases written by plyvel (Google's C++ LevelDB,
//! Snappy tables, records left in the log) read by the reader and the Data
//! layer without writing to the folder; a damaged table is a clear error;
//! `netrun convert --backend leveldb` writes what plyvel reads back.

mod common;
mod data_support;

use common::python::run_script;
use data_support::{johns_first, scratch};
use netrun::data::datum::Datum;
use netrun::data::db::{self, Backend};
use netrun::data::lmdb;
use netrun::graph::{BuildOptions, Graph};
use netrun::net::Net;
use netrun::netdef::{parse_net_str, Phase};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

const N: usize = 6000;
/// C×H×W of every record.
const SIZE: usize = 3 * 16 * 16;

/// The bytes and label plyvel's script gives record `i`.
fn expected(i: usize) -> (Vec<u8>, i32) {
    let i = i as u64;
    (
        (0..SIZE as u64)
            .map(|j| (((i * 2_654_435_761 + j * 40_503) >> 7) % 256) as u8)
            .collect(),
        (i % 7) as i32,
    )
}

/// A database of `N` records written by plyvel in a scratch folder.
fn plyvel_db(name: &str) -> PathBuf {
    let dir = scratch(name).join("db");
    run_script(
        "leveldb_interop.py",
        &[Path::new("write"), &dir, Path::new(&N.to_string())],
    );
    dir
}

/// Every file of a folder with its size and modification time.
fn listing(dir: &Path) -> Vec<(String, u64, SystemTime)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            (name, m.len(), m.modified().unwrap())
        })
        .collect();
    files.sort();
    files
}

#[test]
fn reads_what_plyvel_wrote_without_writing_to_the_folder() {
    let dir = plyvel_db("plyvel_read");
    let files = listing(&dir);
    assert!(
        files.iter().filter(|f| f.0.ends_with(".ldb")).count() > 1,
        "{files:?}"
    );
    let reader = db::open(Backend::Leveldb, &dir).unwrap();
    assert_eq!(reader.len().unwrap(), N);
    // In chunks, as the Data layer reads, across tables and the replayed log.
    let mut seen = Vec::new();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let chunk = reader.records(after.as_deref(), 256).unwrap();
        let Some(last) = chunk.last() else { break };
        after = Some(last.0.clone());
        seen.extend(chunk);
    }
    assert_eq!(seen.len(), N);
    for (i, (k, v)) in seen.iter().enumerate() {
        assert_eq!(k, format!("{i:08}").as_bytes());
        let d = Datum::decode(v).unwrap();
        let (data, label) = expected(i);
        assert_eq!((d.channels, d.height, d.width), (3, 16, 16));
        assert_eq!((d.data, d.label), (data, label), "record {i}");
    }
    assert_eq!(
        reader.key_at(N - 1).unwrap(),
        Some(format!("{:08}", N - 1).into_bytes())
    );
    assert_eq!(reader.key_at(N).unwrap(), None);
    drop(reader);
    assert_eq!(db::count(Backend::Leveldb, &dir).unwrap(), N);
    // No LOCK, LOG or table was written, renamed or removed.
    assert_eq!(listing(&dir), files);
}

/// A Data layer over `dir` with LevelDB as its (default) backend.
fn data_net(dir: &Path, batch: usize) -> Net {
    try_data_net(dir, batch).unwrap()
}

/// [`data_net`], or the error of building it.
fn try_data_net(dir: &Path, batch: usize) -> netrun::Result<Net> {
    let text = format!(
        "layer {{ name: \"d\" type: \"Data\" top: \"data\" top: \"label\" \
         transform_param {{ scale: 0.5 }} \
         data_param {{ source: \"{}\" batch_size: {batch} prefetch: 0 }} }}",
        dir.display()
    );
    let net = parse_net_str("leveldb.net", &text)?;
    Net::new(
        Graph::build(&net, &BuildOptions::for_phase(Phase::Test))?,
        1,
    )
}

#[test]
fn the_data_layer_reads_leveldb_by_default_and_wraps_around() {
    let dir = plyvel_db("plyvel_layer");
    let batch = 2500;
    let mut net = data_net(&dir, batch);
    assert_eq!(net.blob("data").unwrap().shape(), &[batch, 3, 16, 16]);
    for b in 0..3 {
        net.forward().unwrap();
        let data = net.blob("data").unwrap().data().to_vec();
        let labels = net.blob("label").unwrap().data().to_vec();
        for s in 0..batch {
            let i = (b * batch + s) % N;
            let (bytes, label) = expected(i);
            let want: Vec<f32> = bytes.iter().map(|&x| f32::from(x) * 0.5).collect();
            assert_eq!(&data[s * SIZE..][..SIZE], &want[..], "batch {b} sample {s}");
            assert_eq!(labels[s], label as f32);
        }
    }
}

#[test]
fn a_damaged_table_is_an_error_naming_the_file() {
    let dir = plyvel_db("plyvel_damaged");
    let mut tables: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ldb"))
        .collect();
    tables.sort();
    let victim = &tables[tables.len() / 2];
    let mut bytes = std::fs::read(victim).unwrap();
    let mid = bytes.len() / 3;
    bytes[mid] ^= 0x5a;
    std::fs::write(victim, bytes).unwrap();
    let name = victim.file_name().unwrap().to_string_lossy().into_owned();

    let err = db::open(Backend::Leveldb, &dir)
        .and_then(|r| r.len())
        .expect_err("a flipped byte must not read as a shorter database");
    assert!(
        err.contains(&format!("file `{name}` is damaged")) && err.contains("checksum"),
        "{err}"
    );

    // At build (the first record opens every level-0 table) or at the first forward.
    let err = match try_data_net(&dir, N) {
        Err(e) => e.to_string(),
        Ok(mut net) => net.forward().expect_err("damaged").to_string(),
    };
    assert!(!err.contains("backend: LMDB"), "{err}");
    assert!(err.contains("LevelDB"), "{err}");
    assert!(err.contains(&dir.display().to_string()), "{err}");
    assert!(err.contains(&name), "{err}");

    // A cut table: its footer is gone.
    let mut cut = std::fs::read(victim).unwrap();
    cut.truncate(cut.len() - 20);
    std::fs::write(victim, cut).unwrap();
    let err = db::open(Backend::Leveldb, &dir)
        .and_then(|r| r.len())
        .unwrap_err();
    assert!(err.contains(&name), "{err}");
}

#[test]
fn not_a_leveldb_folder_is_a_clear_error() {
    let dir = scratch("not_leveldb");
    std::fs::write(dir.join("data.mdb"), b"x").unwrap();
    let err = db::open(Backend::Leveldb, &dir).err().unwrap();
    assert!(err.contains("not a LevelDB database"), "{err}");
    // An LMDB folder read with the default backend: the message says what to set.
    let err = try_data_net(&dir, 2).err().unwrap().to_string();
    assert!(err.contains("not a LevelDB database"), "{err}");
    assert!(err.contains("set `backend: LMDB`"), "{err}");
}

/// The face crops' list with absolute paths, label = line index, in `dir`.
fn johns_list(dir: &Path) -> PathBuf {
    let (johns, _) = johns_first();
    let list = std::fs::read_to_string(johns.join("list.txt")).unwrap();
    let lines: Vec<String> = list
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(12)
        .enumerate()
        .map(|(i, l)| format!("{} {i}", l.rsplit_once(' ').unwrap().0))
        .collect();
    let path = dir.join("list.txt");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

#[test]
fn convert_writes_a_leveldb_that_plyvel_reads_back() {
    let dir = scratch("convert_leveldb");
    let (johns, _) = johns_first();
    let list = johns_list(&dir);
    let (level, lm) = (dir.join("faces_leveldb"), dir.join("faces_lmdb"));
    for (out, backend) in [(&level, "leveldb"), (&lm, "lmdb")] {
        let run = Command::new(env!("CARGO_BIN_EXE_netrun"))
            .args(["convert", "imageset"])
            .args([&johns, &list, out])
            .args(["--resize", "24x20", "--backend", backend])
            .output()
            .unwrap();
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
    }
    let json = dir.join("read.json");
    run_script("leveldb_interop.py", &[Path::new("read"), &level, &json]);
    let rows: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    // The same records as the LMDB conversion of the same list.
    let want = lmdb::open(&lm).unwrap().records(None, 100).unwrap();
    assert_eq!(rows.len(), 12);
    assert_eq!(rows.len(), want.len());
    for (row, (key, value)) in rows.iter().zip(&want) {
        let d = Datum::decode(value).unwrap();
        assert_eq!(row[0].as_str().unwrap().as_bytes(), &key[..]);
        let dims: Vec<i64> = (1..5).map(|k| row[k].as_i64().unwrap()).collect();
        assert_eq!(
            dims,
            [d.channels, d.height, d.width, d.label].map(i64::from)
        );
        assert_eq!((d.channels, d.height, d.width), (3, 24, 20));
        let data: Vec<u8> = row[6]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u8)
            .collect();
        assert_eq!(data, d.data);
    }
    // And netrun reads its own LevelDB back identically.
    let back = db::open(Backend::Leveldb, &level)
        .unwrap()
        .records(None, 100)
        .unwrap();
    assert_eq!(back, want);
    // --force replaces a LevelDB folder (its files are known database files).
    let again = Command::new(env!("CARGO_BIN_EXE_netrun"))
        .args(["convert", "imageset"])
        .args([&johns, &list, &level])
        .args(["--backend", "leveldb", "--force"])
        .output()
        .unwrap();
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(db::count(Backend::Leveldb, &level).unwrap(), 12);
}
