//! Data layer: data_param parsing, shapes read from the first record of a
//! real LMDB written in a scratch folder, LevelDB refusal and error paths.

mod data_support;

use data_support::{build_with, error_with, johns_first, png_size, scratch, tops};
use netrun::data::datum::Datum;
use netrun::data::lmdb;
use netrun::layers::data::{Backend, DataParams};
use netrun::layers::transform::TransformParams;
use netrun::netdef::parse_net_str;
use std::path::Path;

/// A Data layer `mnist` with these `data_param` and `transform_param` bodies and `tops` tops.
fn net(data: &str, transform: &str, tops: &[&str]) -> String {
    let tops: String = tops.iter().map(|t| format!("top: \"{t}\" ")).collect();
    format!(
        "layer {{ name: \"mnist\" type: \"Data\" {tops}\n\
         transform_param {{ {transform} }}\n\
         data_param {{ {data} }} }}\n"
    )
}

/// A raw c×h×w datum with pixel values derived from the index.
fn raw(c: i32, h: i32, w: i32, label: i32) -> Datum {
    Datum {
        channels: c,
        height: h,
        width: w,
        data: (0..c * h * w).map(|i| (i % 251) as u8).collect(),
        label,
        ..Datum::default()
    }
}

/// Writes `records` under Caffe-style zero-padded keys into a scratch LMDB.
fn write_db(name: &str, records: &[Datum]) -> std::path::PathBuf {
    let dir = scratch(name).join("db");
    let kv = records
        .iter()
        .enumerate()
        .map(|(i, d)| (format!("{i:08}").into_bytes(), d.encode()));
    assert_eq!(lmdb::write_records(&dir, kv).unwrap(), records.len());
    dir
}

fn lmdb_net(dir: &Path, extra: &str, transform: &str) -> String {
    net(
        &format!(
            "source: \"{}\" backend: LMDB batch_size: 64 {extra}",
            dir.display()
        ),
        transform,
        &["data", "label"],
    )
}

#[test]
fn data_params_parse() {
    let text = net(
        "source: \"db\" batch_size: 5 rand_skip: 2 backend: 1 scale: 0.5 crop_size: 3 \
         mirror: true force_encoded_color: true prefetch: 8",
        "",
        &["data"],
    );
    let parsed = parse_net_str("t.net", &text).unwrap();
    let p: DataParams = parsed.layers[0].params("data_param").unwrap();
    assert_eq!(p.backend, Backend::Lmdb);
    assert_eq!((p.batch_size, p.rand_skip, p.prefetch), (Some(5), 2, 8));
    // Caffe's upgrade moves the legacy transform fields into `transform_param`.
    assert_eq!((p.scale, p.crop_size, p.mirror), (None, None, None));
    let t: TransformParams = parsed.layers[0].params("transform_param").unwrap();
    assert_eq!((t.scale, t.crop_size, t.mirror), (0.5, 3, true));
    assert!(p.force_encoded_color);
    let d = DataParams::default();
    assert_eq!(
        (d.backend, d.prefetch, d.batch_size),
        (Backend::Leveldb, 4, None)
    );
    let parsed = parse_net_str("t.net", &net("backend: LEVELDB", "", &["d"])).unwrap();
    let p: DataParams = parsed.layers[0].params("data_param").unwrap();
    assert_eq!(p.backend, Backend::Leveldb);

    let err = error_with(&net("source: \"db\" bakend: LMDB", "", &["d"]), |_| {});
    assert!(err.contains("did you mean `backend`?"), "{err}");
}

#[test]
fn shape_comes_from_the_first_record() {
    // Keys sort bytewise, so "00000000" is first although written second.
    let dir = scratch("first_key").join("db");
    let kv = vec![
        (b"00000001".to_vec(), raw(3, 5, 5, 1).encode()),
        (b"00000000".to_vec(), raw(1, 28, 28, 0).encode()),
    ];
    lmdb::write_records(&dir, kv).unwrap();
    let g = build_with(&lmdb_net(&dir, "", "mean_value: 127.5"), |_| {}).unwrap();
    assert_eq!(tops(&g, "mnist"), vec![vec![64, 1, 28, 28], vec![64]]);
    let g = build_with(&lmdb_net(&dir, "", "crop_size: 20"), |o| {
        o.context.batch = Some(3)
    })
    .unwrap();
    assert_eq!(tops(&g, "mnist"), vec![vec![3, 1, 20, 20], vec![3]]);
}

#[test]
fn single_top_and_relative_source() {
    let dir = write_db("single_top", &[raw(2, 4, 6, 0), raw(2, 4, 6, 1)]);
    let text = net("source: \"db\" backend: LMDB batch_size: 10", "", &["pair"]);
    let g = build_with(&text, |o| {
        o.context.data_dirs = vec!["/nonexistent".into(), dir.parent().unwrap().into()]
    })
    .unwrap();
    assert_eq!(tops(&g, "mnist"), vec![vec![10, 2, 4, 6]]);
}

#[test]
fn encoded_records_decode_their_image() {
    let (root, first) = johns_first();
    let png = std::fs::read(root.join(&first)).unwrap();
    let (h, w) = png_size(&root.join(&first));
    let d = Datum {
        data: png,
        encoded: true,
        ..Datum::default()
    };
    let dir = write_db("encoded", &[d]);
    let g = build_with(&lmdb_net(&dir, "", ""), |_| {}).unwrap();
    assert_eq!(tops(&g, "mnist")[0], vec![64, 3, h, w]);
    let g = build_with(&lmdb_net(&dir, "", "force_gray: true"), |_| {}).unwrap();
    assert_eq!(tops(&g, "mnist")[0], vec![64, 1, h, w]);

    // A grey PNG keeps its single channel unless colour is forced.
    let grey = image::GrayImage::from_fn(7, 5, |x, _| image::Luma([x as u8]));
    let mut png = Vec::new();
    grey.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let d = Datum {
        data: png,
        encoded: true,
        ..Datum::default()
    };
    let dir = write_db("encoded_grey", &[d]);
    let g = build_with(&lmdb_net(&dir, "", ""), |_| {}).unwrap();
    assert_eq!(tops(&g, "mnist")[0], vec![64, 1, 5, 7]);
    let g = build_with(&lmdb_net(&dir, "force_encoded_color: true", ""), |_| {}).unwrap();
    assert_eq!(tops(&g, "mnist")[0], vec![64, 3, 5, 7]);
}

#[test]
fn legacy_transform_fields_in_data_param() {
    let dir = write_db("legacy", &[raw(1, 28, 28, 0)]);
    let g = build_with(&lmdb_net(&dir, "crop_size: 24", "mean_value: 1"), |_| {}).unwrap();
    assert_eq!(tops(&g, "mnist")[0], vec![64, 1, 24, 24]);
    let err = error_with(&lmdb_net(&dir, "scale: 0.5", "scale: 0.25"), |_| {});
    // Upgraded into `transform_param`, the two values collide there.
    assert!(
        err.contains("layer `mnist` (Data): field `scale` is given 2 times"),
        "{err}"
    );
}

#[test]
fn a_missing_leveldb_is_refused_unless_input_shape_is_given() {
    let text = net(
        "source: \"pairs_leveldb\" batch_size: 64",
        "scale: 0.00390625",
        &["pair_data", "sim"],
    );
    let err = error_with(&text, |_| {});
    assert!(
        err.contains("layer `mnist` (Data): cannot open LevelDB `pairs_leveldb` (tried "),
        "{err}"
    );
    assert!(err.contains("`--input-shape pair_data=C,H,W`"), "{err}");
    let g = build_with(&text, |o| {
        o.context
            .input_shapes
            .insert("pair_data".into(), vec![2, 28, 28]);
    })
    .unwrap();
    assert_eq!(tops(&g, "mnist"), vec![vec![64, 2, 28, 28], vec![64]]);
}

#[test]
fn missing_database_names_paths_and_option() {
    let text = net(
        "source: \"data/train_lmdb\" backend: LMDB batch_size: 8",
        "",
        &["data", "label"],
    );
    let err = error_with(&text, |o| {
        o.context.data_dirs = vec!["/nonexistent/x".into()]
    });
    assert!(
        err.contains("layer `mnist` (Data): cannot open LMDB `data/train_lmdb` (tried `/nonexistent/x/data/train_lmdb`)"),
        "{err}"
    );
    assert!(err.contains("--input-shape data=C,H,W"), "{err}");
    let g = build_with(&text, |o| {
        o.context
            .input_shapes
            .insert("data".into(), vec![1, 28, 28]);
    })
    .unwrap();
    assert_eq!(tops(&g, "mnist")[0], vec![8, 1, 28, 28]);
}

#[test]
fn empty_or_foreign_databases() {
    let empty = write_db("empty", &[]);
    let err = error_with(&lmdb_net(&empty, "", ""), |_| {});
    assert!(
        err.contains(&format!("LMDB `{}` is empty", empty.display())),
        "{err}"
    );

    let not_db = scratch("not_db");
    let err = error_with(&lmdb_net(&not_db, "", ""), |_| {});
    assert!(
        err.contains(&format!("cannot open LMDB `{}`", not_db.display())),
        "{err}"
    );

    let dir = scratch("garbage_value").join("db");
    lmdb::write_records(&dir, vec![(b"k".to_vec(), vec![0x0A, 9])]).unwrap();
    let err = error_with(&lmdb_net(&dir, "", ""), |o| {
        o.context.input_shapes.insert("data".into(), vec![1, 2, 2]);
    });
    assert!(
        err.contains(&format!(
            "first record of `{}` (key `k`) is not a Datum",
            dir.display()
        )),
        "{err}"
    );

    let mut short = raw(1, 4, 4, 0);
    short.data.truncate(10);
    let dir = write_db("short", &[short]);
    let err = error_with(&lmdb_net(&dir, "", ""), |_| {});
    assert!(
        err.contains("(key `00000000`) is 1x4x4 = 16 values but holds 10 data bytes"),
        "{err}"
    );
}

#[test]
fn batch_size_is_required_unless_given_on_the_command_line() {
    let dir = write_db("no_batch", &[raw(1, 2, 2, 0)]);
    let text = net(
        &format!("source: \"{}\" backend: LMDB", dir.display()),
        "",
        &["data"],
    );
    let err = error_with(&text, |_| {});
    assert!(
        err.contains("layer `mnist` (Data) needs `data_param { batch_size: ... }`"),
        "{err}"
    );
    let g = build_with(&text, |o| o.context.batch = Some(5)).unwrap();
    assert_eq!(tops(&g, "mnist")[0], vec![5, 1, 2, 2]);
}

#[test]
fn writer_refuses_a_non_empty_folder() {
    let dir = write_db("twice", &[raw(1, 1, 1, 0)]);
    let err = lmdb::write_records(&dir, vec![]).unwrap_err();
    assert!(err.contains("already exists and is not empty"), "{err}");
    let first = lmdb::read_first(&dir).unwrap().unwrap();
    assert_eq!(Datum::decode(&first.1).unwrap(), raw(1, 1, 1, 0));
}

#[test]
fn mnist_config_gets_past_its_data_layers() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/configs/caffe-face/mnist_example/mnist_train_test.prototxt");
    let net = netrun::netdef::read_net_file(&file).unwrap();
    let mut opts = netrun::graph::BuildOptions::for_phase(netrun::netdef::Phase::Train);
    opts.context
        .input_shapes
        .insert("data".into(), vec![1, 28, 28]);
    if let Err(e) = netrun::graph::Graph::build(&net, &opts) {
        let text = e.to_string();
        assert!(!text.contains("(Data)"), "{text}");
        assert!(!e.diagnostics().is_empty());
        for d in e.diagnostics() {
            assert!(d.message.starts_with("unknown layer type"), "{text}");
        }
    }
}
