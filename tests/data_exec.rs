//! Data layers running: ImageData on the real face crops (BGR order, scale and
//! mean, resize, grey), transform_param semantics on an image whose pixels
//! encode their position (crop offsets, mirroring in both phases, mean
//! files), shuffling, wrap-around and rand_skip, prefetching, Data on
//! synthetic LMDBs, and the error messages of bad samples.

mod data_support;

use data_support::{error_with, johns_first, scratch};
use netrun::data::blob_proto::BlobProto;
use netrun::data::datum::Datum;
use netrun::data::lmdb;
use netrun::graph::{BuildOptions, Graph};
use netrun::layers::image_data::ImageDataLayer;
use netrun::layers::{BuildContext, Layer};
use netrun::net::Net;
use netrun::netdef::{parse_net_str, Phase};
use netrun::testing::{forward, setup};
use std::path::{Path, PathBuf};

/// An ImageData layer `data` with these `image_data_param` and `transform_param` bodies.
fn image_net(image_data: &str, transform: &str) -> String {
    format!(
        "layer {{ name: \"data\" type: \"ImageData\" top: \"data\" top: \"label\"\n\
         transform_param {{ {transform} }}\n\
         image_data_param {{ {image_data} }} }}\n"
    )
}

/// Builds `text` in `phase` with data seed `seed` and allocates it.
fn net_in(text: &str, phase: Phase, seed: u64) -> Net {
    let net = parse_net_str("test.net", text).unwrap();
    let mut opts = BuildOptions::for_phase(phase);
    opts.context.seed = seed;
    Net::new(Graph::build(&net, &opts).unwrap(), 1).unwrap()
}

fn forward_error(net: &mut Net) -> String {
    net.forward().expect_err("forward should fail").to_string()
}

/// `data` and `label` after one forward.
fn batch(net: &mut Net) -> (Vec<f32>, Vec<f32>) {
    net.forward().unwrap();
    (
        net.blob("data").unwrap().data().to_vec(),
        net.blob("label").unwrap().data().to_vec(),
    )
}

/// The face crops' list with absolute paths and label = line index, in `dir`.
fn numbered_johns(dir: &Path) -> PathBuf {
    let (johns, _) = johns_first();
    let list = std::fs::read_to_string(johns.join("list.txt")).unwrap();
    let lines: Vec<String> = list
        .lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            format!(
                "{} {i}",
                johns.join(l.rsplit_once(' ').unwrap().0).display()
            )
        })
        .collect();
    assert_eq!(lines.len(), 55);
    let path = dir.join("numbered.txt");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

fn johns_source(extra: &str) -> String {
    let (dir, _) = johns_first();
    format!(
        "source: \"{}\" root_folder: \"{}/\" {extra}",
        dir.join("list.txt").display(),
        dir.display()
    )
}

fn first_rgb() -> image::RgbImage {
    let (dir, first) = johns_first();
    image::open(dir.join(first)).unwrap().to_rgb8()
}

#[test]
fn real_faces_come_out_bgr_scaled_and_centred() {
    let mut net = net_in(
        &image_net(
            &johns_source("batch_size: 2"),
            "mean_value: 127.5 scale: 0.0078125",
        ),
        Phase::Test,
        1,
    );
    let (data, label) = batch(&mut net);
    assert_eq!(net.blob("data").unwrap().shape(), &[2, 3, 150, 150]);
    assert_eq!(label, vec![0.0, 0.0]);
    let rgb = first_rgb();
    let plane = 150 * 150;
    for (i, px) in rgb.pixels().enumerate() {
        for (c, rgb_index) in [2, 1, 0].into_iter().enumerate() {
            let want = (f64::from(px[rgb_index]) - 127.5) / 128.0;
            assert_eq!(data[c * plane + i] as f64, want, "pixel {i} channel {c}");
        }
    }
    let px = rgb.get_pixel(75, 40);
    assert_eq!(
        data[40 * 150 + 75],
        (f32::from(px[2]) - 127.5) / 128.0,
        "blue first"
    );
}

#[test]
fn per_channel_means_resize_and_grey() {
    let mut net = net_in(
        &image_net(
            &johns_source("new_height: 75 new_width: 50"),
            "mean_value: 10 mean_value: 20 mean_value: 30",
        ),
        Phase::Train,
        1,
    );
    let (data, _) = batch(&mut net);
    assert_eq!(net.blob("data").unwrap().shape(), &[1, 3, 75, 50]);
    let small =
        image::imageops::resize(&first_rgb(), 50, 75, image::imageops::FilterType::Triangle);
    for (i, px) in small.pixels().enumerate() {
        let bgr = [px[2], px[1], px[0]];
        for c in 0..3 {
            let want = f32::from(bgr[c]) - [10.0, 20.0, 30.0][c];
            assert_eq!(data[c * 3750 + i], want, "pixel {i} channel {c}");
        }
    }

    let mut net = net_in(
        &image_net(&johns_source("is_color: false"), ""),
        Phase::Train,
        1,
    );
    let (data, _) = batch(&mut net);
    assert_eq!(data.len(), 150 * 150);
    for (i, px) in first_rgb().pixels().enumerate() {
        let y = 0.299 * f64::from(px[0]) + 0.587 * f64::from(px[1]) + 0.114 * f64::from(px[2]);
        assert!(
            (f64::from(data[i]) - y).abs() <= 0.51,
            "pixel {i}: {} vs {y}",
            data[i]
        );
    }
}

/// A 60 wide, 40 high PNG with R = 4x, G = 5y, B = 7 and a list naming it 8 times.
fn position_image(name: &str) -> (PathBuf, PathBuf) {
    let dir = scratch(name);
    let img = image::RgbImage::from_fn(60, 40, |x, y| image::Rgb([4 * x as u8, 5 * y as u8, 7]));
    img.save(dir.join("pos.png")).unwrap();
    let list = dir.join("list.txt");
    std::fs::write(&list, "pos.png 3\n".repeat(8)).unwrap();
    (dir, list)
}

fn position_net(name: &str, batch: usize, transform: &str) -> String {
    let (dir, list) = position_image(name);
    image_net(
        &format!(
            "source: \"{}\" root_folder: \"{}/\" batch_size: {batch}",
            list.display(),
            dir.display()
        ),
        transform,
    )
}

/// (mirrored, h_off, w_off) of each 30×30 crop of the position image, after
/// checking every value of the crop against that reading.
fn crops(data: &[f32]) -> Vec<(bool, usize, usize)> {
    let (s, plane) = (30usize, 900usize);
    data.chunks(3 * plane)
        .map(|d| {
            let (b, g, r) = (&d[..plane], &d[plane..2 * plane], &d[2 * plane..]);
            let mirrored = r[1] < r[0];
            let x0 = r[0] as usize / 4;
            let w_off = if mirrored { x0 - (s - 1) } else { x0 };
            let h_off = g[0] as usize / 5;
            for y in 0..s {
                for x in 0..s {
                    let sx = w_off + if mirrored { s - 1 - x } else { x };
                    let i = y * s + x;
                    assert_eq!(
                        (b[i], g[i], r[i]),
                        (7.0, (5 * (h_off + y)) as f32, (4 * sx) as f32)
                    );
                }
            }
            (mirrored, h_off, w_off)
        })
        .collect()
}

#[test]
fn random_crops_in_train_and_mirroring_in_both_phases() {
    let mut net = net_in(
        &position_net("crop_train", 40, "crop_size: 30 mirror: true"),
        Phase::Train,
        5,
    );
    let mut seen = Vec::new();
    for _ in 0..10 {
        seen.extend(crops(&batch(&mut net).0));
    }
    let n = seen.len() as f64;
    let mirrored = seen.iter().filter(|s| s.0).count() as f64 / n;
    // 400 fair coin flips: standard error 0.025.
    assert!((mirrored - 0.5).abs() < 0.1, "mirrored fraction {mirrored}");
    let (hs, ws): (Vec<usize>, Vec<usize>) = seen.iter().map(|s| (s.1, s.2)).unzip();
    // Offsets uniform on [0, 40-30] and [0, 60-30].
    assert_eq!(
        (*hs.iter().min().unwrap(), *hs.iter().max().unwrap()),
        (0, 10)
    );
    assert_eq!(
        (*ws.iter().min().unwrap(), *ws.iter().max().unwrap()),
        (0, 30)
    );
    let mean_w = ws.iter().sum::<usize>() as f64 / n;
    assert!((mean_w - 15.0).abs() < 2.5, "mean w_off {mean_w}");

    let mut net = net_in(
        &position_net("crop_test", 40, "crop_size: 30 mirror: true"),
        Phase::Test,
        5,
    );
    let mut seen = Vec::new();
    for _ in 0..5 {
        seen.extend(crops(&batch(&mut net).0));
    }
    assert!(
        seen.iter().all(|&(_, h, w)| (h, w) == (5, 15)),
        "TEST crops are centred"
    );
    let mirrored = seen.iter().filter(|s| s.0).count() as f64 / seen.len() as f64;
    assert!(
        (mirrored - 0.5).abs() < 0.15,
        "TEST mirrors too: {mirrored}"
    );

    let mut net = net_in(
        &position_net("crop_plain", 4, "crop_size: 30"),
        Phase::Train,
        5,
    );
    assert!(
        crops(&batch(&mut net).0).iter().all(|s| !s.0),
        "no mirror unless asked"
    );
}

/// A hand-encoded BlobProto: legacy num/channels/height/width, packed data.
fn legacy_blob_proto(shape: [i32; 4], data: &[f32]) -> Vec<u8> {
    let mut b = Vec::new();
    for (field, v) in (1u8..).zip(shape) {
        b.extend_from_slice(&[field << 3, v as u8]);
        assert!(v < 128);
    }
    b.push((5 << 3) | 2);
    // Base-128 varint length, low 7 bits first.
    let mut n = data.len() * 4;
    while n >= 0x80 {
        b.push((n & 0x7f) as u8 | 0x80);
        n >>= 7;
    }
    b.push(n as u8);
    for v in data {
        b.extend_from_slice(&v.to_le_bytes());
    }
    b
}

#[test]
fn mean_files_are_subtracted_at_the_uncropped_position() {
    let (dir, list) = position_image("mean_file");
    let mean: Vec<f32> = (0..3 * 40 * 60).map(|i| (i % 97) as f32 * 0.5).collect();
    std::fs::write(
        dir.join("mean.binaryproto"),
        legacy_blob_proto([1, 3, 40, 60], &mean),
    )
    .unwrap();
    let text = image_net(
        &format!(
            "source: \"{}\" root_folder: \"{}/\"",
            list.display(),
            dir.display()
        ),
        &format!(
            "mean_file: \"{}\" crop_size: 30 scale: 0.25",
            dir.join("mean.binaryproto").display()
        ),
    );
    let mut net = net_in(&text, Phase::Test, 1);
    let (data, _) = batch(&mut net);
    for c in 0..3 {
        for y in 0..30 {
            for x in 0..30 {
                let (sy, sx) = (y + 5, x + 15);
                let pixel = [7.0, 5.0 * sy as f64, 4.0 * sx as f64][c];
                let want = (pixel - f64::from(mean[(c * 40 + sy) * 60 + sx])) * 0.25;
                assert_eq!(
                    f64::from(data[(c * 30 + y) * 30 + x]),
                    want,
                    "({c}, {y}, {x})"
                );
            }
        }
    }

    std::fs::write(
        dir.join("small.binaryproto"),
        legacy_blob_proto([1, 3, 4, 6], &[0.0; 72]),
    )
    .unwrap();
    let text = image_net(
        &format!(
            "source: \"{}\" root_folder: \"{}/\"",
            list.display(),
            dir.display()
        ),
        &format!("mean_file: \"{}\"", dir.join("small.binaryproto").display()),
    );
    let err = error_with(&text, |_| {});
    assert!(
        err.contains(&format!(
            "layer `data` (ImageData): mean file `{}` is 1x3x4x6 but the stored samples are 3x40x60",
            dir.join("small.binaryproto").display()
        )),
        "{err}"
    );
    let text = image_net(
        &format!(
            "source: \"{}\" root_folder: \"{}/\"",
            list.display(),
            dir.display()
        ),
        "mean_file: \"no/mean.binaryproto\"",
    );
    let err = error_with(&text, |o| o.context.data_dirs = vec![dir.clone()]);
    assert!(
        err.contains(&format!(
            "cannot open mean file `no/mean.binaryproto` (tried `{}`)",
            dir.join("no/mean.binaryproto").display()
        )),
        "{err}"
    );
    std::fs::write(dir.join("bad.binaryproto"), [0x2a, 0x09, 0, 0]).unwrap();
    let text = image_net(
        &format!(
            "source: \"{}\" root_folder: \"{}/\"",
            list.display(),
            dir.display()
        ),
        &format!("mean_file: \"{}\"", dir.join("bad.binaryproto").display()),
    );
    let err = error_with(&text, |_| {});
    assert!(err.contains("is not a valid BlobProto: "), "{err}");
}

#[test]
fn blob_proto_shapes_and_encodings() {
    // shape { dim: 2 dim: 1 } (packed), data unpacked.
    let mut b = vec![(7 << 3) | 2, 4, (1 << 3) | 2, 2, 2, 1];
    for v in [1.5f32, -2.0] {
        b.push((5 << 3) | 5);
        b.extend_from_slice(&v.to_le_bytes());
    }
    let p = BlobProto::decode(&b).unwrap();
    assert_eq!((p.shape, p.data), (vec![2, 1], vec![1.5, -2.0]));
    // Legacy shape and double_data (packed), an unknown field skipped.
    let mut b = vec![
        1 << 3,
        1,
        2 << 3,
        2,
        3 << 3,
        1,
        4 << 3,
        1,
        15 << 3,
        9,
        (8 << 3) | 2,
        16,
    ];
    for v in [0.25f64, 3.0] {
        b.extend_from_slice(&v.to_le_bytes());
    }
    let p = BlobProto::decode(&b).unwrap();
    assert_eq!((p.shape, p.data), (vec![1, 2, 1, 1], vec![0.25, 3.0]));
    let err = BlobProto::decode(&[
        3 << 3,
        2,
        4 << 3,
        1,
        (8 << 3) | 2,
        8,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
    ])
    .unwrap_err();
    assert_eq!(err, "has shape 0x0x2x1 = 0 values but holds 1");
    let b = [1 << 3, 1, 2 << 3, 1, 3 << 3, 1, 4 << 3, 1, (8 << 3) | 2, 8];
    let mut b = b.to_vec();
    b.extend_from_slice(&0.75f64.to_le_bytes());
    assert_eq!(BlobProto::decode(&b).unwrap().data, vec![0.75]);
    assert!(BlobProto::decode(&[(5 << 3) | 2, 3, 0, 0, 0])
        .unwrap_err()
        .contains("not a multiple of 4"));
}

#[test]
fn shuffling_is_seeded_and_redone_at_every_wrap_around() {
    let dir = scratch("shuffle");
    let list = numbered_johns(&dir);
    let text = image_net(
        &format!(
            "source: \"{}\" batch_size: 11 shuffle: true new_height: 8 new_width: 8",
            list.display()
        ),
        "",
    );
    let run = |seed: u64| {
        let mut net = net_in(&text, Phase::Train, seed);
        let (mut labels, mut data) = (Vec::new(), Vec::new());
        for _ in 0..10 {
            let (d, l) = batch(&mut net);
            labels.extend(l.iter().map(|&v| v as usize));
            data.extend(d);
        }
        (labels, data)
    };
    let (labels, data) = run(11);
    let (epoch1, epoch2) = labels.split_at(55);
    let sorted = |e: &[usize]| {
        let mut v = e.to_vec();
        v.sort();
        v
    };
    assert_eq!(sorted(epoch1), (0..55).collect::<Vec<_>>());
    assert_eq!(sorted(epoch2), (0..55).collect::<Vec<_>>());
    assert_ne!(epoch1, (0..55).collect::<Vec<_>>(), "shuffled at setup");
    assert_ne!(epoch1, epoch2, "shuffled again after the wrap-around");
    assert_eq!(run(11), (labels.clone(), data), "same seed, same batches");
    assert_ne!(run(12).0, labels, "another seed, another order");

    // Without shuffling: list order, then from the top again.
    let text = image_net(
        &format!(
            "source: \"{}\" batch_size: 50 new_height: 4 new_width: 4",
            list.display()
        ),
        "",
    );
    let mut net = net_in(&text, Phase::Train, 1);
    batch(&mut net);
    let (_, l) = batch(&mut net);
    let want: Vec<f32> = (50..55).chain(0..45).map(|i| i as f32).collect();
    assert_eq!(l, want);
}

#[test]
fn rand_skip_starts_at_a_seeded_random_line() {
    let dir = scratch("rand_skip");
    let list = numbered_johns(&dir);
    let text = image_net(
        &format!(
            "source: \"{}\" batch_size: 3 rand_skip: 40 new_height: 4 new_width: 4",
            list.display()
        ),
        "",
    );
    let mut starts = Vec::new();
    for seed in 0..6 {
        let mut net = net_in(&text, Phase::Train, seed);
        let (_, l) = batch(&mut net);
        let s = l[0] as usize;
        assert!(s < 40, "skip {s}");
        assert_eq!(
            l,
            vec![s as f32, ((s + 1) % 55) as f32, ((s + 2) % 55) as f32]
        );
        starts.push(s);
        let mut again = net_in(&text, Phase::Train, seed);
        assert_eq!(batch(&mut again).1, l);
    }
    starts.dedup();
    assert!(starts.len() > 1, "{starts:?}");
}

/// Builds the ImageData layer of `text` as its concrete type.
fn image_layer(text: &str, phase: Phase) -> ImageDataLayer {
    let net = parse_net_str("test.net", text).unwrap();
    let ctx = BuildContext {
        phase,
        ..BuildContext::default()
    };
    ImageDataLayer::new(&net.layers[0], &ctx).unwrap()
}

fn layer_batches(layer: &mut dyn Layer, n: usize) -> Vec<Vec<f32>> {
    let (mut tops, mut params) = setup(layer, &[], 0);
    let mut out = Vec::new();
    for _ in 0..n {
        forward(layer, &mut [], &mut tops, &mut params);
        out.push(tops[0].data().to_vec());
        out.push(tops[1].data().to_vec());
    }
    out
}

#[test]
fn prefetching_gives_the_batches_of_a_synchronous_read() {
    let dir = scratch("prefetch");
    let list = numbered_johns(&dir);
    let text = image_net(
        &format!(
            "source: \"{}\" batch_size: 16 shuffle: true rand_skip: 9",
            list.display()
        ),
        "crop_size: 100 mirror: true scale: 0.5",
    );
    let mut sync = image_layer(&text, Phase::Train);
    sync.prefetch = 0;
    let mut ahead = image_layer(&text, Phase::Train);
    assert_eq!(ahead.prefetch, 3);
    let a = layer_batches(&mut sync, 8);
    // Let the thread run ahead before reading, to vary the timing.
    let (mut tops, mut params) = setup(&mut ahead, &[], 0);
    forward(&mut ahead, &mut [], &mut tops, &mut params);
    std::thread::sleep(std::time::Duration::from_millis(50));
    let mut b = vec![tops[0].data().to_vec(), tops[1].data().to_vec()];
    b.extend(layer_batches(&mut ahead, 7));
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert!(
            x == y,
            "batch {} {} differs",
            i / 2,
            ["data", "label"][i % 2]
        );
    }
}

/// A list file with these lines in a scratch folder, and an ImageData net
/// reading it (no root_folder) with these extra params.
fn scratch_list(name: &str, lines: &str, extra: &str) -> (PathBuf, PathBuf, String) {
    let dir = scratch(name);
    let list = dir.join("list.txt");
    std::fs::write(&list, lines).unwrap();
    let text = image_net(&format!("source: \"{}\" {extra}", list.display()), "");
    (dir, list, text)
}

#[test]
fn missing_and_undecodable_images_name_the_file_and_line() {
    let (johns, first) = johns_first();
    let img = johns.join(&first);
    let lines = format!("{} 0\ngone.png 1\n", img.display());
    let (_, list, text) = scratch_list("missing_later", &lines, "batch_size: 2");
    let mut net = net_in(&text, Phase::Train, 1);
    let err = forward_error(&mut net);
    assert!(
        err.contains(&format!(
            "layer `data` (ImageData) forward: image `gone.png` (line 2 of `{}`) not found (tried `gone.png`)",
            list.display()
        )),
        "{err}"
    );
    assert_eq!(forward_error(&mut net), err, "the error repeats");

    // Relative paths resolve in the data folders, as the first image's did.
    let lines = format!("{} 0\n\nbroken.png 1\n", img.display());
    let (dir, list, text) = scratch_list("undecodable", &lines, "batch_size: 2");
    std::fs::write(dir.join("broken.png"), b"not a png").unwrap();
    let parsed = parse_net_str("t.net", &text).unwrap();
    let mut opts = BuildOptions::for_phase(Phase::Train);
    opts.context.data_dirs = vec![dir.clone()];
    let mut net = Net::new(Graph::build(&parsed, &opts).unwrap(), 1).unwrap();
    let err = forward_error(&mut net);
    assert!(
        err.contains(&format!(
            "image `{}` (line 3 of `{}`) cannot be decoded: ",
            dir.join("broken.png").display(),
            list.display()
        )),
        "{err}"
    );
}

#[test]
fn a_bad_line_anywhere_in_the_list_is_a_build_error() {
    let (johns, first) = johns_first();
    let img = johns.join(&first);
    let lines = format!("{} 0\n{} 1\nlast.png one\n", img.display(), img.display());
    let (_, list, text) = scratch_list("bad_later_line", &lines, "");
    let err = error_with(&text, |_| {});
    assert!(
        err.contains(&format!(
            "layer `data` (ImageData): list file `{}` line 3: label `one` is not an integer",
            list.display()
        )),
        "{err}"
    );
}

#[test]
fn images_of_another_size_are_errors_unless_resized() {
    let (johns, first) = johns_first();
    let (dir, list, _) = scratch_list("other_size", "", "");
    image::RgbImage::new(30, 20)
        .save(dir.join("small.png"))
        .unwrap();
    let lines = format!(
        "{} 0\n{} 1\n",
        johns.join(&first).display(),
        dir.join("small.png").display()
    );
    std::fs::write(&list, lines).unwrap();
    let text = |extra: &str| {
        image_net(
            &format!("source: \"{}\" batch_size: 2 {extra}", list.display()),
            "",
        )
    };
    let mut net = net_in(&text(""), Phase::Train, 1);
    let err = forward_error(&mut net);
    assert!(
        err.contains(&format!(
            "image `{}` (line 2 of `{}`) is 20x30 but the first image `{}` is 150x150; \
             set `new_height` and `new_width` to resize every image to one size",
            dir.join("small.png").display(),
            list.display(),
            johns.join(&first).display()
        )),
        "{err}"
    );
    let mut net = net_in(&text("new_height: 10 new_width: 12"), Phase::Train, 1);
    let (data, label) = batch(&mut net);
    assert_eq!((data.len(), label), (2 * 3 * 10 * 12, vec![0.0, 1.0]));
    assert!(
        data[360..].iter().all(|&v| v == 0.0),
        "the black image resized"
    );
}

#[test]
fn an_unreadable_list_fails_at_forward_when_the_shape_is_given() {
    let text = image_net(
        "source: \"/nonexistent/list.txt\" new_height: 4 new_width: 4",
        "",
    );
    let mut net = net_in(&text, Phase::Train, 1);
    let err = forward_error(&mut net);
    assert!(
        err.contains(
            "layer `data` (ImageData) forward: cannot open list file `/nonexistent/list.txt`"
        ),
        "{err}"
    );
}

// ---------------------------------------------------------------- Data (LMDB)

fn write_db(name: &str, records: &[Vec<u8>]) -> PathBuf {
    let dir = scratch(name).join("db");
    let kv = records
        .iter()
        .enumerate()
        .map(|(i, v)| (format!("{i:08}").into_bytes(), v.clone()));
    lmdb::write_records(&dir, kv).unwrap();
    dir
}

fn raw(c: i32, h: i32, w: i32, label: i32, base: u8) -> Vec<u8> {
    Datum {
        channels: c,
        height: h,
        width: w,
        data: (0..c * h * w).map(|i| base.wrapping_add(i as u8)).collect(),
        label,
        ..Datum::default()
    }
    .encode()
}

fn lmdb_net(dir: &Path, batch: usize, transform: &str, extra: &str) -> String {
    format!(
        "layer {{ name: \"d\" type: \"Data\" top: \"data\" top: \"label\"\n\
         transform_param {{ {transform} }}\n\
         data_param {{ source: \"{}\" backend: LMDB batch_size: {batch} {extra} }} }}\n",
        dir.display()
    )
}

#[test]
fn records_of_another_shape_or_not_datums_are_errors() {
    let dir = write_db(
        "lmdb_shapes",
        &[raw(1, 2, 2, 0, 0), raw(1, 2, 2, 1, 0), raw(1, 3, 2, 2, 0)],
    );
    let mut net = net_in(&lmdb_net(&dir, 2, "", ""), Phase::Train, 1);
    batch(&mut net);
    let err = forward_error(&mut net);
    assert!(
        err.contains(&format!(
            "layer `d` (Data) forward: record 2 (key `00000002`) of LMDB `{}` is 1x3x2 \
             but the first record (key `00000000`) is 1x2x2",
            dir.display()
        )),
        "{err}"
    );
    let dir = write_db("lmdb_garbage", &[raw(1, 1, 1, 0, 0), vec![0xff]]);
    let mut net = net_in(&lmdb_net(&dir, 2, "", "prefetch: 0"), Phase::Train, 1);
    let err = forward_error(&mut net);
    assert!(
        err.contains(&format!(
            "record 1 (key `00000001`) of LMDB `{}` is not a Datum: ",
            dir.display()
        )),
        "{err}"
    );
}

#[test]
fn float_data_labels_crops_and_wrap_around() {
    let floats = |label: i32, v: f32| {
        Datum {
            channels: 1,
            height: 4,
            width: 4,
            float_data: (0..16).map(|i| v + i as f32).collect(),
            label,
            ..Datum::default()
        }
        .encode()
    };
    let dir = write_db(
        "lmdb_floats",
        &[floats(4, 0.5), floats(-2, 100.0), floats(9, -50.0)],
    );
    // TEST crops 2×2 at the centre: offsets (1, 1) → source values 5, 6, 9, 10.
    let mut net = net_in(
        &lmdb_net(&dir, 4, "crop_size: 2 scale: 2", ""),
        Phase::Test,
        1,
    );
    let (data, label) = batch(&mut net);
    assert_eq!(label, vec![4.0, -2.0, 9.0, 4.0]);
    let want: Vec<f32> = [0.5f32, 100.0, -50.0, 0.5]
        .iter()
        .flat_map(|v| [5.0, 6.0, 9.0, 10.0].map(|o| (v + o) * 2.0))
        .collect();
    assert_eq!(data, want);
    let (_, label) = batch(&mut net);
    assert_eq!(label, vec![-2.0, 9.0, 4.0, -2.0]);
}

#[test]
fn data_prefetch_matches_a_synchronous_read_and_rand_skip_is_seeded() {
    let records: Vec<Vec<u8>> = (0..13).map(|i| raw(1, 5, 6, i, i as u8 * 3)).collect();
    let dir = write_db("lmdb_prefetch", &records);
    let t = "crop_size: 3 mirror: true mean_value: 1";
    let run = |extra: &str| {
        let mut net = net_in(&lmdb_net(&dir, 5, t, extra), Phase::Train, 4);
        (0..6).map(|_| batch(&mut net)).collect::<Vec<_>>()
    };
    assert_eq!(run("prefetch: 0"), run(""));
    assert_eq!(run("prefetch: 1"), run("prefetch: 7"));
    let skipped = run("rand_skip: 10 prefetch: 0");
    let s = skipped[0].1[0] as usize;
    assert!(s < 10);
    assert_eq!(
        skipped[0].1,
        (s..s + 5).map(|i| (i % 13) as f32).collect::<Vec<_>>()
    );
    assert_eq!(run("rand_skip: 10"), skipped);
}

#[test]
fn a_missing_leveldb_fails_at_forward_when_built_with_an_input_shape() {
    let text = "layer { name: \"d\" type: \"Data\" top: \"data\" \
                data_param { source: \"x_leveldb\" batch_size: 2 } }";
    let net = parse_net_str("t.net", text).unwrap();
    let mut opts = BuildOptions::for_phase(Phase::Train);
    opts.context
        .input_shapes
        .insert("data".into(), vec![1, 2, 2]);
    let mut net = Net::new(Graph::build(&net, &opts).unwrap(), 1).unwrap();
    let err = forward_error(&mut net);
    assert!(
        err.contains("layer `d` (Data) forward: cannot open LevelDB `x_leveldb` (tried "),
        "{err}"
    );
}
