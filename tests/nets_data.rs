//! The data steps of nets/: `netrun convert list` (ImageData lists labelled by
//! subfolder) and `netrun convert mnist-siamese` (MNIST pairs).

mod common;

use netrun::data::convert::load_mnist;
use netrun::data::datum::Datum;
use netrun::data::list_builder::{build_list, write_list};
use netrun::data::lmdb;
use netrun::data::mnist::Fetch;
use netrun::data::pairs::{convert_mnist_siamese, PairOptions};
use std::path::Path;
use std::process::Command;

fn offline() -> Fetch {
    Fetch {
        mirrors: vec![],
        offline_dirs: vec![],
        verify: true,
        progress: false,
    }
}

fn touch(path: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, b"x").unwrap();
}

#[test]
fn the_list_labels_images_by_sorted_subfolder() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("faces");
    for f in [
        "bob/2.png",
        "bob/10.JPG",
        "bob/notes.txt",
        "alice smith/b.jpeg",
        "alice smith/a.png",
        "alice smith/more/c.png",
        "loose.png",
    ] {
        touch(&root.join(f));
    }
    let list = build_list(&root, 0).unwrap();
    assert_eq!(list.classes, vec!["alice smith", "bob"]);
    let want: Vec<(String, i32)> = [
        ("alice smith/a.png", 0),
        ("alice smith/b.jpeg", 0),
        ("alice smith/more/c.png", 0),
        ("bob/10.JPG", 1),
        ("bob/2.png", 1),
    ]
    .iter()
    .map(|(p, l)| (p.to_string(), *l))
    .collect();
    assert_eq!(list.train, want);
    assert!(list.val.is_empty());

    // The written file reads back through the ImageData list parser.
    let file = dir.path().join("out/list.txt");
    write_list(&file, &list.train).unwrap();
    let read = netrun::data::image_list::read(&file, None).unwrap();
    let back: Vec<(String, i32)> = read.into_iter().map(|e| (e.path, e.label)).collect();
    assert_eq!(back, want);

    let split = build_list(&root, 1).unwrap();
    let names = |v: &[(String, i32)]| v.iter().map(|e| e.0.clone()).collect::<Vec<_>>();
    assert_eq!(
        names(&split.train),
        ["alice smith/a.png", "alice smith/b.jpeg", "bob/10.JPG"]
    );
    assert_eq!(names(&split.val), ["alice smith/more/c.png", "bob/2.png"]);

    let err = build_list(&root, 2).unwrap_err().to_string();
    assert!(err.contains("bob` holds 2 image(s)"), "{err}");
    assert!(err.contains("to keep one for training"), "{err}");
    std::fs::create_dir_all(root.join("carol")).unwrap();
    let err = build_list(&root, 0).unwrap_err().to_string();
    assert!(err.contains("carol` holds 0 image(s)"), "{err}");
    let err = build_list(&root.join("bob"), 0).unwrap_err().to_string();
    assert!(err.contains("has no subfolders"), "{err}");
}

#[test]
fn the_johns_list_matches_the_published_one() {
    let images = common::shared("data/dlib_johns/images");
    let list = build_list(&images, 0).unwrap();
    let published =
        netrun::data::image_list::read(&common::shared("data/dlib_johns/list.txt"), None).unwrap();
    let mut want: Vec<(String, i32)> = published
        .into_iter()
        .map(|e| (e.path.trim_start_matches("images/").to_string(), e.label))
        .collect();
    want.sort();
    assert_eq!(list.train, want);
    assert_eq!(list.classes.len(), 5);
    let split = build_list(&images, 2).unwrap();
    assert_eq!((split.train.len(), split.val.len()), (45, 10));
}

#[test]
fn convert_list_command_writes_both_lists() {
    let dir = tempfile::tempdir().unwrap();
    let (train, val) = (dir.path().join("train.txt"), dir.path().join("val.txt"));
    let out = Command::new(env!("CARGO_BIN_EXE_netrun"))
        .args(["convert", "list"])
        .arg(common::shared("data/dlib_johns/images"))
        .arg("-o")
        .arg(&train)
        .args(["--val-per-class", "2", "--val-output"])
        .arg(&val)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("wrote 45 images of 5 identities"),
        "{stdout}"
    );
    let text = std::fs::read_to_string(&val).unwrap();
    assert_eq!(text.lines().count(), 10);
    assert!(text.lines().all(|l| l.starts_with("John_")));
}

fn read_all(db: &Path) -> Vec<(String, Datum)> {
    let reader = lmdb::open(db).unwrap();
    reader
        .records(None, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|(k, v)| (String::from_utf8(k).unwrap(), Datum::decode(&v).unwrap()))
        .collect()
}

#[test]
fn siamese_pairs_stack_two_digits_and_label_equality() {
    let mnist = common::shared("data/mnist");
    let [train, test] = load_mnist(&mnist, &offline()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let opts = PairOptions {
        pairs: Some(300),
        seed: 5,
        force: false,
    };
    let written = convert_mnist_siamese(&mnist, dir.path(), &offline(), &opts).unwrap();
    assert_eq!(
        written,
        vec![
            (dir.path().join("mnist_siamese_train_lmdb"), 300),
            (dir.path().join("mnist_siamese_test_lmdb"), 300)
        ]
    );
    for (split, (db, _)) in [&train, &test].into_iter().zip(&written) {
        let records = read_all(db);
        assert_eq!(records.len(), 300);
        let label_of: std::collections::HashMap<&[u8], u8> = (0..split.len())
            .map(|i| (split.image(i), split.labels.data[i]))
            .collect();
        let mut similar = 0;
        for (k, (key, d)) in records.iter().enumerate() {
            assert_eq!(key, &format!("{k:08}"));
            assert_eq!((d.channels, d.height, d.width), (2, 28, 28));
            // Each channel is one whole image of the split.
            let label = |bytes: &[u8]| {
                *label_of
                    .get(bytes)
                    .unwrap_or_else(|| panic!("pair {k}: a channel is no MNIST image"))
            };
            let same = label(&d.data[..784]) == label(&d.data[784..]);
            assert_eq!(d.label, same as i32, "pair {k}");
            similar += same as usize;
        }
        // Uniform pairs: P(same digit) = Σ p_d² ≈ 0.1.
        assert!(
            (10..=60).contains(&similar),
            "{similar} similar pairs of 300"
        );
    }
    // Seeded: the same seed gives the same pairs, another seed others.
    let again = tempfile::tempdir().unwrap();
    convert_mnist_siamese(&mnist, again.path(), &offline(), &opts).unwrap();
    let db = |d: &Path| read_all(&d.join("mnist_siamese_train_lmdb"));
    assert_eq!(
        db(dir.path())
            .iter()
            .map(|r| r.1.data.clone())
            .collect::<Vec<_>>(),
        db(again.path())
            .iter()
            .map(|r| r.1.data.clone())
            .collect::<Vec<_>>()
    );
    let other = tempfile::tempdir().unwrap();
    let opts6 = PairOptions {
        seed: 6,
        ..opts.clone()
    };
    convert_mnist_siamese(&mnist, other.path(), &offline(), &opts6).unwrap();
    assert_ne!(db(dir.path())[0].1.data, db(other.path())[0].1.data);

    // Existing databases are kept without --force.
    let err = convert_mnist_siamese(&mnist, dir.path(), &offline(), &opts)
        .unwrap_err()
        .to_string();
    assert!(err.contains("pass --force to replace it"), "{err}");
}
