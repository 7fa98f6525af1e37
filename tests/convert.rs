//! `netrun convert`: MNIST from the real IDX files (first/last records, counts,
//! labels from the dataset's README), IDX and MD5 checks, downloading from a
//! local HTTP server, the offline error, overwrite protection, imageset
//! conversion, and Data layers reading what was converted.

mod data_support;

use data_support::{johns_first, scratch};
use netrun::data::convert::{convert_imageset, convert_mnist, prepare_output, ImagesetOptions};
use netrun::data::datum::Datum;
use netrun::data::lmdb;
use netrun::data::mnist::{self, Fetch};
use netrun::graph::{BuildOptions, Graph};
use netrun::net::Net;
use netrun::netdef::{parse_net_str, Phase};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn mnist_dir() -> PathBuf {
    data_support::shared_dir().join("data/mnist")
}

fn fetch(mirrors: &[String], verify: bool) -> Fetch {
    Fetch {
        mirrors: mirrors.to_vec(),
        offline_dirs: vec![],
        verify,
        progress: false,
    }
}

/// The uncompressed bytes of a shared MNIST file, read with flate2 here.
fn idx_bytes(name: &str) -> Vec<u8> {
    let gz = std::fs::read(mnist_dir().join(format!("{name}.gz"))).unwrap();
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// The real MNIST converted once for this test binary: `<dir>/mnist_example/data/`.
fn converted() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = scratch("mnist_converted");
        let out = root.join("mnist_example/data");
        let written = convert_mnist(&mnist_dir(), &out, &fetch(&[], true), false).unwrap();
        assert_eq!(
            written,
            vec![
                (out.join("mnist_train_lmdb"), 60000),
                (out.join("mnist_test_lmdb"), 10000)
            ]
        );
        root
    })
}

fn db(which: &str) -> PathBuf {
    converted().join(format!("mnist_example/data/mnist_{which}_lmdb"))
}

/// Record `i` of a converted database, by its `%08d` key.
fn record(dir: &Path, i: usize) -> (String, Datum) {
    let reader = lmdb::open(dir).unwrap();
    let after = (i > 0).then(|| format!("{:08}", i - 1).into_bytes());
    let (k, v) = reader.records(after.as_deref(), 1).unwrap().remove(0);
    (String::from_utf8(k).unwrap(), Datum::decode(&v).unwrap())
}

#[test]
fn mnist_converts_with_caffe_keys_and_the_known_labels() {
    let images = idx_bytes("t10k-images-idx3-ubyte");
    let labels = idx_bytes("t10k-labels-idx1-ubyte");
    let test = db("test");
    let all = lmdb::open(&test)
        .unwrap()
        .records(None, usize::MAX)
        .unwrap();
    assert_eq!(all.len(), 10000);
    for (i, (k, v)) in all.iter().enumerate() {
        assert_eq!(k, format!("{i:08}").as_bytes());
        let d = Datum::decode(v).unwrap();
        assert_eq!((d.channels, d.height, d.width), (1, 28, 28));
        assert_eq!(&d.data[..], &images[16 + i * 784..][..784], "image {i}");
        assert_eq!(d.label, i32::from(labels[8 + i]));
    }
    let first: Vec<i32> = all[..10]
        .iter()
        .map(|(_, v)| Datum::decode(v).unwrap().label)
        .collect();
    assert_eq!(first, vec![7, 2, 1, 0, 4, 1, 4, 9, 5, 9]);
    let mut counts = [0usize; 10];
    for (_, v) in &all {
        counts[Datum::decode(v).unwrap().label as usize] += 1;
    }
    assert_eq!(
        counts,
        [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    );

    let train = db("train");
    let reader = lmdb::open(&train).unwrap();
    let labels: Vec<i32> = reader
        .records(None, 5)
        .unwrap()
        .iter()
        .map(|(_, v)| Datum::decode(v).unwrap().label)
        .collect();
    assert_eq!(labels, vec![5, 0, 4, 1, 9]);
    let (key, last) = record(&train, 59999);
    assert_eq!(key, "00059999");
    let train_images = idx_bytes("train-images-idx3-ubyte");
    let train_labels = idx_bytes("train-labels-idx1-ubyte");
    assert_eq!(&last.data[..], &train_images[16 + 59999 * 784..]);
    assert_eq!(last.label, i32::from(train_labels[8 + 59999]));
    assert!(reader.records(Some(b"00059999"), 1).unwrap().is_empty());
}

/// A net of one Data layer reading `dir`, with these transform and extra data_param fields.
fn data_net(dir: &Path, batch: usize, transform: &str, extra: &str) -> Net {
    let text = format!(
        "layer {{ name: \"mnist\" type: \"Data\" top: \"data\" top: \"label\"\n\
         transform_param {{ {transform} }}\n\
         data_param {{ source: \"{}\" backend: LMDB batch_size: {batch} {extra} }} }}\n",
        dir.display()
    );
    let net = parse_net_str("t.net", &text).unwrap();
    let graph = Graph::build(&net, &BuildOptions::for_phase(Phase::Test)).unwrap();
    Net::new(graph, 1).unwrap()
}

#[test]
fn data_layer_batches_are_the_idx_pixels_transformed() {
    let images = idx_bytes("t10k-images-idx3-ubyte");
    let labels = idx_bytes("t10k-labels-idx1-ubyte");
    // 3000 a batch: the fourth batch wraps around after record 9999.
    let mut net = data_net(&db("test"), 3000, "mean_value: 127.5 scale: 0.0078125", "");
    for b in 0..4 {
        net.forward().unwrap();
        let data = net.blob("data").unwrap().data().to_vec();
        let label = net.blob("label").unwrap().data().to_vec();
        assert_eq!(net.blob("data").unwrap().shape(), &[3000, 1, 28, 28]);
        for s in 0..3000 {
            let i = (b * 3000 + s) % 10000;
            assert_eq!(label[s], f32::from(labels[8 + i]), "batch {b} sample {s}");
            for p in 0..784 {
                let want = (f64::from(images[16 + i * 784 + p]) - 127.5) / 128.0;
                assert_eq!(
                    data[s * 784 + p] as f64,
                    want,
                    "batch {b} sample {s} pixel {p}"
                );
            }
        }
    }
}

#[test]
fn the_published_mnist_config_trains_on_converted_data() {
    let file = data_support::shared_dir()
        .join("configs/caffe-face/mnist_example/mnist_train_test.prototxt");
    let net = netrun::netdef::read_net_file(&file).unwrap();
    for phase in [Phase::Train, Phase::Test] {
        let mut opts = BuildOptions::for_phase(phase);
        opts.context.data_dirs = vec![converted().to_path_buf()];
        // A small batch keeps the debug build quick.
        opts.context.batch = Some(8);
        let graph = Graph::build(&net, &opts).unwrap();
        let mut net = Net::new(graph, 3).unwrap();
        let loss = net.forward().unwrap();
        // Ten classes from random weights: the softmax loss is near ln 10.
        assert!(loss.is_finite() && loss > 1.0, "{phase:?}: loss {loss}");
        let label = net.blob("label").unwrap().data().to_vec();
        let want: &[f32] = if phase == Phase::Train {
            &[5.0, 0.0, 4.0, 1.0, 9.0]
        } else {
            &[7.0, 2.0, 1.0, 0.0, 4.0]
        };
        assert_eq!(&label[..5], want);
        net.backward().unwrap();
    }
}

#[test]
fn two_nets_share_one_open_database() {
    let dir = db("test");
    let mut a = data_net(&dir, 10, "", "");
    a.forward().unwrap();
    // `a`'s prefetch thread holds the environment open; `b` opens it again.
    let mut b = data_net(&dir, 10, "", "prefetch: 0");
    b.forward().unwrap();
    assert_eq!(
        a.blob("data").unwrap().data(),
        b.blob("data").unwrap().data()
    );
    a.forward().unwrap();
    b.forward().unwrap();
    assert_eq!(
        a.blob("label").unwrap().data(),
        b.blob("label").unwrap().data()
    );
}

/// Writes an IDX file of unsigned bytes: magic, big-endian dims, values.
fn write_idx(path: &Path, magic: u32, dims: &[u32], values: &[u8]) {
    let mut b = magic.to_be_bytes().to_vec();
    for d in dims {
        b.extend_from_slice(&d.to_be_bytes());
    }
    b.extend_from_slice(values);
    std::fs::write(path, b).unwrap();
}

/// Four tiny IDX files: `n_train` 2×3 images with `n_labels` labels for training, 1 test image.
fn tiny_mnist(name: &str, n_train: u32, n_labels: u32) -> PathBuf {
    let dir = scratch(name);
    let pix: Vec<u8> = (0..n_train * 6).map(|i| i as u8).collect();
    write_idx(
        &dir.join("train-images-idx3-ubyte"),
        0x803,
        &[n_train, 2, 3],
        &pix,
    );
    let labels: Vec<u8> = (0..n_labels).map(|i| (i % 10) as u8).collect();
    write_idx(
        &dir.join("train-labels-idx1-ubyte"),
        0x801,
        &[n_labels],
        &labels,
    );
    write_idx(
        &dir.join("t10k-images-idx3-ubyte"),
        0x803,
        &[1, 2, 3],
        &[9; 6],
    );
    write_idx(&dir.join("t10k-labels-idx1-ubyte"), 0x801, &[1], &[3]);
    dir
}

#[test]
fn idx_checks_name_the_file_and_the_problem() {
    let dir = tiny_mnist("idx_counts", 2, 3);
    let out = dir.join("out");
    let err = convert_mnist(&dir, &out, &fetch(&[], false), false)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!(
            "`{}` holds 2 images but `{}` holds 3 labels",
            dir.join("train-images-idx3-ubyte").display(),
            dir.join("train-labels-idx1-ubyte").display()
        )),
        "{err}"
    );

    let f = Path::new("x-idx3-ubyte");
    let err = mnist::parse_idx(vec![0, 0, 8, 1, 0, 0, 0, 1, 7], f, 0x803).unwrap_err();
    assert!(
        err.contains("`x-idx3-ubyte` has magic number 0x00000801, expected 0x00000803"),
        "{err}"
    );
    let err = mnist::parse_idx(vec![0, 0, 8, 1, 0, 0, 0, 3, 7], f, 0x801).unwrap_err();
    assert!(
        err.contains("its header says 3 = 3 values but it holds 1"),
        "{err}"
    );
    let err = mnist::parse_idx(vec![0, 0, 8], f, 0x801).unwrap_err();
    assert!(err.contains("is 3 bytes long, too short"), "{err}");
    let err = mnist::parse_idx(vec![0, 0, 8, 3, 0, 0], f, 0x803).unwrap_err();
    assert!(err.contains("ends inside its 16-byte IDX header"), "{err}");
}

#[test]
fn tiny_idx_files_convert_and_existing_databases_are_kept() {
    let dir = tiny_mnist("idx_tiny", 3, 3);
    let out = dir.join("out");
    // Not the canonical files: an error unless verification is off.
    let err = convert_mnist(&dir, &out, &fetch(&[], true), false)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("the MD5 of its uncompressed contents is"),
        "{err}"
    );
    assert!(err.contains("pass --no-verify"), "{err}");
    assert!(!out.join("mnist_train_lmdb/data.mdb").exists());

    let written = convert_mnist(&dir, &out, &fetch(&[], false), false).unwrap();
    assert_eq!(written[0].1, 3);
    let (key, d) = record(&out.join("mnist_train_lmdb"), 2);
    assert_eq!(key, "00000002");
    assert_eq!((d.channels, d.height, d.width, d.label), (1, 2, 3, 2));
    assert_eq!(d.data, vec![12, 13, 14, 15, 16, 17]);

    let err = convert_mnist(&dir, &out, &fetch(&[], false), false)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!(
            "`{}` already exists; pass --force to replace it",
            out.join("mnist_train_lmdb").display()
        )),
        "{err}"
    );
    write_idx(&dir.join("t10k-labels-idx1-ubyte"), 0x801, &[1], &[8]);
    convert_mnist(&dir, &out, &fetch(&[], false), true).unwrap();
    assert_eq!(record(&out.join("mnist_test_lmdb"), 0).1.label, 8);

    // --force removes an LMDB's files only.
    std::fs::write(out.join("mnist_test_lmdb/notes.txt"), "mine").unwrap();
    let err = prepare_output(&out.join("mnist_test_lmdb"), true)
        .unwrap_err()
        .to_string();
    assert!(err.contains("holds files other than an LMDB's"), "{err}");
    assert!(out.join("mnist_test_lmdb/data.mdb").exists());
}

#[test]
fn gzipped_or_plain_and_dotted_names_are_found() {
    let dir = scratch("idx_names");
    std::fs::write(dir.join("t10k-labels.idx1-ubyte"), b"x").unwrap();
    std::fs::write(dir.join("train-labels-idx1-ubyte.gz"), b"x").unwrap();
    assert_eq!(
        mnist::find(&dir, "t10k-labels-idx1-ubyte"),
        Some(dir.join("t10k-labels.idx1-ubyte"))
    );
    assert_eq!(
        mnist::find(&dir, "train-labels-idx1-ubyte"),
        Some(dir.join("train-labels-idx1-ubyte.gz"))
    );
    assert_eq!(mnist::find(&dir, "t10k-images-idx3-ubyte"), None);
    // Contents decide whether to gunzip, not the name.
    let plain = mnist::read(&mnist_dir().join("t10k-labels-idx1-ubyte.gz")).unwrap();
    assert_eq!(mnist::md5_hex(&plain), "27ae3e4e09519cfbb04c329615203637");
}

#[test]
fn local_copies_with_a_wrong_md5_warn_only_without_verification() {
    let dir = scratch("idx_md5");
    let mut labels = idx_bytes("train-labels-idx1-ubyte");
    labels[8] = 3;
    std::fs::write(dir.join("train-labels-idx1-ubyte"), &labels).unwrap();
    let mut f = fetch(&[], true);
    f.offline_dirs = vec![data_support::shared_dir().join("data")];
    let err = mnist::load_all(&dir, &f).unwrap_err();
    assert!(
        err.contains(&format!(
            "`{}`: the MD5 of its uncompressed contents is {}, but the canonical \
             `train-labels-idx1-ubyte` has a25bea736e30d166cdddb491f175f624",
            dir.join("train-labels-idx1-ubyte").display(),
            mnist::md5_hex(&labels)
        )),
        "{err}"
    );
    f.verify = false;
    let files = mnist::load_all(&dir, &f).unwrap();
    assert_eq!(files[1].1, labels);
    // The others come from the offline folder's `mnist/`.
    assert_eq!(files[3].0, mnist_dir().join("t10k-labels-idx1-ubyte.gz"));
}

/// Serves `GET /ok/<name>` from the shared MNIST folder and 404 for anything
/// else, on a local port, for `requests` requests.
fn serve(requests: usize) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(requests) {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let mut header = String::new();
            while reader.read_line(&mut header).unwrap() > 2 {
                header.clear();
            }
            let path = line.split(' ').nth(1).unwrap_or("").to_string();
            let body = path
                .strip_prefix("/ok/")
                .and_then(|n| std::fs::read(mnist_dir().join(n)).ok());
            let (status, body) = match body {
                Some(b) => ("200 OK", b),
                None => ("404 Not Found", b"no".to_vec()),
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            stream.write_all(head.as_bytes()).unwrap();
            stream.write_all(&body).unwrap();
        }
    });
    format!("http://{addr}")
}

#[test]
fn missing_files_are_downloaded_from_the_first_working_mirror() {
    let base = serve(8);
    let dir = scratch("idx_download");
    let mirrors = [format!("{base}/missing/"), format!("{base}/ok/")];
    let files = mnist::load_all(&dir, &fetch(&mirrors, true)).unwrap();
    for (file, (path, bytes)) in mnist::FILES.iter().zip(&files) {
        assert_eq!(path, &dir.join(format!("{}.gz", file.name)));
        assert_eq!(mnist::md5_hex(bytes), file.md5);
        let here = std::fs::read(path).unwrap();
        assert_eq!(
            here,
            std::fs::read(mnist_dir().join(format!("{}.gz", file.name))).unwrap()
        );
    }
    assert!(!dir.join("train-images-idx3-ubyte.gz.part").exists());
}

#[test]
fn no_network_names_the_url_and_the_offline_options() {
    let dir = scratch("idx_offline");
    let err =
        mnist::load_all(&dir, &fetch(&["http://127.0.0.1:1/mnist/".into()], true)).unwrap_err();
    assert!(err.contains("`train-images-idx3-ubyte` is not in"), "{err}");
    assert!(
        err.contains("http://127.0.0.1:1/mnist/train-images-idx3-ubyte.gz: "),
        "{err}"
    );
    assert!(err.contains("`../shared/data/mnist/`"), "{err}");
    assert!(err.contains("NETRUN_DATA_DIR"), "{err}");
    assert!(!dir.join("train-images-idx3-ubyte.gz").exists());
}

fn imageset(resize: Option<[usize; 2]>, gray: bool, encoded: bool) -> ImagesetOptions {
    ImagesetOptions {
        resize,
        gray,
        shuffle: false,
        encoded,
        force: false,
        seed: 1,
        backend: netrun::data::db::Backend::Lmdb,
    }
}

#[test]
fn imageset_converts_the_face_list() {
    let (johns, first) = johns_first();
    let list = johns.join("list.txt");
    let out = scratch("imageset").join("raw");
    let n = convert_imageset(&johns, &list, &out, &imageset(Some([20, 16]), false, false)).unwrap();
    assert_eq!(n, 55);
    let (key, v) = lmdb::read_first(&out).unwrap().unwrap();
    assert_eq!(String::from_utf8(key).unwrap(), format!("00000000_{first}"));
    let d = Datum::decode(&v).unwrap();
    assert_eq!(
        (d.channels, d.height, d.width, d.encoded),
        (3, 20, 16, false)
    );
    // Channel 0 is blue: compare with the image resized here.
    let rgb = image::open(johns.join(&first)).unwrap().to_rgb8();
    let small = image::imageops::resize(&rgb, 16, 20, image::imageops::FilterType::Triangle);
    for (i, px) in small.pixels().enumerate() {
        assert_eq!(
            [d.data[i], d.data[320 + i], d.data[640 + i]],
            [px[2], px[1], px[0]]
        );
    }

    // Encoded without changes keeps the file's bytes; a Data layer decodes them.
    let enc = scratch("imageset").join("enc");
    convert_imageset(&johns, &list, &enc, &imageset(None, false, true)).unwrap();
    let d = Datum::decode(&lmdb::read_first(&enc).unwrap().unwrap().1).unwrap();
    assert!(d.encoded);
    assert_eq!(d.data, std::fs::read(johns.join(&first)).unwrap());
    let mut net = data_net(&enc, 2, "", "prefetch: 0");
    net.forward().unwrap();
    let data = net.blob("data").unwrap().data();
    assert_eq!(data.len(), 2 * 3 * 150 * 150);
    let px = rgb.get_pixel(7, 3);
    assert_eq!(data[3 * 150 + 7], f32::from(px[2]));
    assert_eq!(data[2 * 22500 + 3 * 150 + 7], f32::from(px[0]));

    // Grey and encoded: re-encoded as a 1-channel PNG.
    let grey = scratch("imageset").join("grey");
    convert_imageset(&johns, &list, &grey, &imageset(None, true, true)).unwrap();
    let d = Datum::decode(&lmdb::read_first(&grey).unwrap().unwrap().1).unwrap();
    let img = image::load_from_memory(&d.data).unwrap();
    assert_eq!((img.color(), img.width()), (image::ColorType::L8, 150));
}

#[test]
fn imageset_errors_name_the_image_and_line() {
    let (johns, first) = johns_first();
    let dir = scratch("imageset_errors");
    let list = dir.join("list.txt");
    std::fs::write(&list, format!("{first} 0\nimages/none.png 1\n")).unwrap();
    let out = dir.join("db");
    let err = convert_imageset(&johns, &list, &out, &imageset(None, false, false))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!(
            "cannot read image `{}` (line 2 of `{}`)",
            johns.join("images/none.png").display(),
            list.display()
        )),
        "{err}"
    );
    assert!(!out.exists(), "a failed conversion leaves no database");

    image::RgbImage::new(5, 4)
        .save(dir.join("small.png"))
        .unwrap();
    std::fs::write(
        &list,
        format!("{first} 0\n{} 1\n", dir.join("small.png").display()),
    )
    .unwrap();
    let err = convert_imageset(&johns, &list, &out, &imageset(None, false, false))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!(
            "image `{}` (line 2 of `{}`) is 4x5 but the first image `{}` is 150x150; use --resize",
            dir.join("small.png").display(),
            list.display(),
            johns.join(&first).display()
        )),
        "{err}"
    );
    std::fs::write(&list, "a.png zero\n").unwrap();
    let err = convert_imageset(&johns, &list, &out, &imageset(None, false, false))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("line 1: label `zero` is not an integer"),
        "{err}"
    );
}

#[test]
fn a_failed_forced_conversion_keeps_the_old_databases() {
    let dir = tiny_mnist("force_keeps", 3, 3);
    let out = dir.join("out");
    convert_mnist(&dir, &out, &fetch(&[], false), false).unwrap();
    let before = record(&out.join("mnist_train_lmdb"), 2);
    // The new input is bad: its header's dimensions multiply past 2^64.
    write_idx(
        &dir.join("t10k-images-idx3-ubyte"),
        0x803,
        &[u32::MAX, u32::MAX, u32::MAX],
        &[1; 6],
    );
    let err = convert_mnist(&dir, &out, &fetch(&[], false), true)
        .unwrap_err()
        .to_string();
    assert!(err.contains("multiply past 2^64"), "{err}");
    assert_eq!(record(&out.join("mnist_train_lmdb"), 2), before);
    assert!(out.join("mnist_test_lmdb/data.mdb").exists());
    // Nothing half-written is left beside them.
    let hidden: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().starts_with('.'))
        .collect();
    assert!(hidden.is_empty(), "{hidden:?}");

    // An imageset whose second image is missing: the old database stays.
    let list = dir.join("list.txt");
    std::fs::write(&list, "a.png 0\nmissing.png 1\n").unwrap();
    image::GrayImage::from_pixel(2, 2, image::Luma([7]))
        .save(dir.join("a.png"))
        .unwrap();
    let opts = ImagesetOptions {
        resize: None,
        gray: true,
        shuffle: false,
        encoded: false,
        force: true,
        seed: 0,
        backend: netrun::data::db::Backend::Lmdb,
    };
    let db = out.join("mnist_train_lmdb");
    assert!(convert_imageset(&dir, &list, &db, &opts).is_err());
    assert_eq!(record(&db, 2), before);
    // A first conversion that fails leaves no empty database.
    let fresh = out.join("fresh_lmdb");
    assert!(convert_imageset(&dir, &list, &fresh, &opts).is_err());
    assert!(!fresh.exists());
}
