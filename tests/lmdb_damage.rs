//! Damaged LMDB files are refused when opened, with a message naming the
//! file, instead of killing the process with SIGBUS later: a truncated
//! `data.mdb`, a branch page pointing outside the file, a root page that is
//! not one. A half-truncated database must not "train successfully".

use netrun::data::lmdb;
use std::path::{Path, PathBuf};

/// A database of 3000 records of 200 bytes: a root branch page over many leaves.
fn database(dir: &Path) -> PathBuf {
    let db = dir.join("db");
    let records =
        (0..3000u32).map(|i| (format!("{i:08}").into_bytes(), vec![(i % 251) as u8; 200]));
    lmdb::write_records(&db, records).unwrap();
    db
}

fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}

/// (page size, main root, last page) of the newest meta page.
fn meta(bytes: &[u8]) -> (usize, usize, u64) {
    let psize = u32::from_le_bytes(bytes[40..44].try_into().unwrap()) as usize;
    let newest = if u64_at(bytes, psize + 144) > u64_at(bytes, 144) {
        psize
    } else {
        0
    };
    (
        psize,
        u64_at(bytes, newest + 128) as usize,
        u64_at(bytes, newest + 136),
    )
}

fn open_error(db: &Path) -> String {
    match lmdb::open(db) {
        Ok(_) => panic!("a damaged database opened"),
        Err(e) => e,
    }
}

#[test]
fn an_intact_database_opens_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path());
    assert_eq!(lmdb::count(&db).unwrap(), 3000);
}

#[test]
fn a_truncated_database_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path());
    let data = db.join("data.mdb");
    let len = std::fs::metadata(&data).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&data).unwrap();
    f.set_len(len / 2).unwrap();
    drop(f);
    let err = open_error(&db);
    assert!(err.contains("data.mdb` is damaged"), "{err}");
    assert!(err.contains("the file was truncated"), "{err}");
}

#[test]
fn a_branch_page_pointing_outside_the_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path());
    let data = db.join("data.mdb");
    let mut bytes = std::fs::read(&data).unwrap();
    let (psize, root, _) = meta(&bytes);
    let page = root * psize;
    assert_eq!(
        u16::from_le_bytes([bytes[page + 10], bytes[page + 11]]) & 1,
        1,
        "root is a branch"
    );
    // The first child's page number (low 16 bits, then 16, then 16).
    let node = page + u16::from_le_bytes([bytes[page + 16], bytes[page + 17]]) as usize;
    bytes[node..node + 6].copy_from_slice(&[0xff, 0xff, 0xff, 0x0f, 0, 0]);
    std::fs::write(&data, &bytes).unwrap();
    let err = open_error(&db);
    assert!(err.contains("points at page"), "{err}");

    // A root that does not know its own number.
    let db2 = dir.path().join("db2");
    std::fs::create_dir(&db2).unwrap();
    let mut bytes = std::fs::read(database(&dir.path().join("x")).join("data.mdb")).unwrap();
    bytes[page] ^= 0x55;
    std::fs::write(db2.join("data.mdb"), &bytes).unwrap();
    let err = open_error(&db2);
    assert!(err.contains("records itself as page"), "{err}");
}

#[test]
fn netrun_check_on_a_truncated_database_is_an_error_not_a_bus_error() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path());
    let data = db.join("data.mdb");
    let len = std::fs::metadata(&data).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&data)
        .unwrap()
        .set_len(len - 4096)
        .unwrap();
    let net = dir.path().join("net.prototxt");
    std::fs::write(
        &net,
        "name: \"n\"\nlayer { name: \"data\" type: \"Data\" top: \"data\" top: \"label\"\n\
         data_param { source: \"db\" backend: LMDB batch_size: 2 } }\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_netrun"))
        .arg("check")
        .arg(&net)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("the file was truncated"), "{err}");
}

/// The child of `a_file_cut_while_in_use_ends_in_a_message_not_a_bare_bus_error`:
/// opens the database named by `NETRUN_SIGBUS_DB`, cuts its data.mdb to the
/// two meta pages while it is mapped, and reads every record.
#[test]
#[ignore = "run as a child process by the test below"]
fn sigbus_child() {
    let db = PathBuf::from(std::env::var_os("NETRUN_SIGBUS_DB").expect("NETRUN_SIGBUS_DB"));
    let reader = lmdb::open(&db).unwrap();
    let data = db.join("data.mdb");
    let psize = meta(&std::fs::read(&data).unwrap()).0;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&data)
        .unwrap()
        .set_len(2 * psize as u64)
        .unwrap();
    let _ = reader.records(None, 3000);
    unreachable!("reading past the end of a cut map did not raise SIGBUS");
}

#[test]
fn a_file_cut_while_in_use_ends_in_a_message_not_a_bare_bus_error() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path());
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["sigbus_child", "--exact", "--ignored", "--nocapture"])
        .env("NETRUN_SIGBUS_DB", &db)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(74), "{err}");
    assert!(
        err.contains("bus error reading a memory-mapped LMDB database"),
        "{err}"
    );
    let canonical = std::fs::canonicalize(&db).unwrap();
    assert!(err.contains(&*canonical.to_string_lossy()), "{err}");
}
