//! Decoding samples on several threads (`data::decode_pool`, `--decode-threads`):
//! ImageData and Data batches, shuffled, resized, cropped and mirrored, are the
//! same bits whatever the thread count, the work does run on the decode pool,
//! and a bad image in the middle of a batch is reported as reading one by one
//! reports it.

mod data_support;

use data_support::{johns_first, scratch};
use netrun::data::datum::Datum;
use netrun::data::decode_pool::{map_in_order, set_decode_threads};
use netrun::data::lmdb;
use netrun::graph::{BuildOptions, Graph};
use netrun::net::Net;
use netrun::netdef::{parse_net_str, Phase};
use std::sync::Mutex;

/// The decode thread count is process-wide: tests that set it take turns.
static THREADS: Mutex<()> = Mutex::new(());

fn net(text: &str) -> Net {
    let parsed = parse_net_str("test.net", text).unwrap();
    let mut opts = BuildOptions::for_phase(Phase::Train);
    opts.context.seed = 11;
    Net::new(Graph::build(&parsed, &opts).unwrap(), 1).unwrap()
}

/// `data` and `label` of `n` forwards, as bits.
fn batches(text: &str, n: usize) -> Vec<Vec<u32>> {
    let mut net = net(text);
    let mut out = Vec::new();
    for _ in 0..n {
        net.forward().unwrap();
        for top in ["data", "label"] {
            let values = net.blob(top).unwrap().data();
            out.push(values.iter().map(|v| v.to_bits()).collect());
        }
    }
    out
}

/// The face crops' list with absolute paths, labels = line index.
fn face_list() -> (std::path::PathBuf, Vec<std::path::PathBuf>) {
    let (johns, _) = johns_first();
    let list = std::fs::read_to_string(johns.join("list.txt")).unwrap();
    let images: Vec<_> = list
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| johns.join(l.rsplit_once(' ').unwrap().0))
        .collect();
    let dir = scratch("decode_threads_list");
    let path = dir.join("faces.txt");
    let lines: Vec<String> = images
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{} {i}", p.display()))
        .collect();
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    (path, images)
}

fn same_at_every_thread_count(text: &str, n: usize) {
    let _turn = THREADS.lock().unwrap_or_else(|e| e.into_inner());
    let mut runs = Vec::new();
    for threads in [1, 2, 3] {
        set_decode_threads(threads);
        runs.push(batches(text, n));
    }
    set_decode_threads(0);
    for (i, run) in runs.iter().enumerate().skip(1) {
        for (b, (x, y)) in runs[0].iter().zip(run).enumerate() {
            assert!(
                x == y,
                "{} decode threads: batch {} {} differs from one thread's",
                i + 1,
                b / 2,
                ["data", "label"][b % 2]
            );
        }
    }
}

#[test]
fn image_data_batches_do_not_depend_on_the_decode_threads() {
    let (list, _) = face_list();
    // 55 images in batches of 16: the fourth batch wraps into a reshuffled epoch.
    let text = format!(
        "layer {{ name: \"data\" type: \"ImageData\" top: \"data\" top: \"label\"\n\
         transform_param {{ crop_size: 80 mirror: true scale: 0.0078125 mean_value: 127.5 }}\n\
         image_data_param {{ source: \"{}\" batch_size: 16 shuffle: true new_height: 96 new_width: 88 }} }}\n",
        list.display()
    );
    same_at_every_thread_count(&text, 5);
}

#[test]
fn encoded_data_batches_do_not_depend_on_the_decode_threads() {
    let (_, images) = face_list();
    let dir = scratch("decode_threads_lmdb").join("db");
    let records = images.iter().enumerate().map(|(i, p)| {
        let d = Datum {
            data: std::fs::read(p).unwrap(),
            encoded: true,
            label: i as i32,
            ..Datum::default()
        };
        (format!("{i:08}").into_bytes(), d.encode())
    });
    assert_eq!(lmdb::write_records(&dir, records).unwrap(), images.len());
    let text = format!(
        "layer {{ name: \"data\" type: \"Data\" top: \"data\" top: \"label\"\n\
         transform_param {{ crop_size: 64 mirror: true }}\n\
         data_param {{ source: \"{}\" backend: LMDB batch_size: 12 force_encoded_color: true }} }}\n",
        dir.display()
    );
    same_at_every_thread_count(&text, 6);
}

#[test]
fn samples_decode_on_the_pool_in_order() {
    let _turn = THREADS.lock().unwrap_or_else(|e| e.into_inner());
    set_decode_threads(2);
    let items: Vec<usize> = (0..64).collect();
    let out = map_in_order(&items, |&i| {
        // Long enough that both threads take part.
        std::thread::sleep(std::time::Duration::from_millis(2));
        (i, std::thread::current().name().map(str::to_string))
    });
    set_decode_threads(1);
    let alone = map_in_order(&items, |&i| {
        (i, std::thread::current().name().map(str::to_string))
    });
    set_decode_threads(0);
    assert!(out.iter().enumerate().all(|(k, (i, _))| k == *i));
    let pool: std::collections::BTreeSet<_> = out.iter().filter_map(|(_, n)| n.clone()).collect();
    assert!(
        pool.iter().all(|n| n.starts_with("netrun-decode-")) && pool.len() == 2,
        "{pool:?}"
    );
    let here = std::thread::current().name().map(str::to_string);
    assert!(
        alone.iter().all(|(_, n)| *n == here),
        "one thread decodes in place"
    );
}

#[test]
fn a_bad_image_mid_batch_is_reported_and_reported_again() {
    let _turn = THREADS.lock().unwrap_or_else(|e| e.into_inner());
    set_decode_threads(3);
    let (_, images) = face_list();
    let dir = scratch("decode_threads_bad");
    let lines = format!(
        "{} 0\n{} 1\ngone.png 2\n{} 3\n{} 4\n",
        images[0].display(),
        images[1].display(),
        images[3].display(),
        images[4].display()
    );
    let list = dir.join("list.txt");
    std::fs::write(&list, lines).unwrap();
    let text = format!(
        "layer {{ name: \"data\" type: \"ImageData\" top: \"data\" top: \"label\"\n\
         image_data_param {{ source: \"{}\" batch_size: 3 }} }}\n",
        list.display()
    );
    let mut net = net(&text);
    let first = net.forward().unwrap_err().to_string();
    let again = net.forward().unwrap_err().to_string();
    set_decode_threads(0);
    assert!(
        first.contains(&format!(
            "image `gone.png` (line 3 of `{}`) not found",
            list.display()
        )),
        "{first}"
    );
    assert_eq!(first, again, "the failing image is where reading resumes");
}

#[test]
fn time_data_reports_each_data_layer_in_images_per_second() {
    let (list, _) = face_list();
    let dir = scratch("decode_threads_time");
    let file = dir.join("faces.prototxt");
    let layer = |name: &str, batch: usize| {
        format!(
            "layer {{ name: \"{name}\" type: \"ImageData\" top: \"{name}\" top: \"{name}_label\"\n\
             image_data_param {{ source: \"{}\" batch_size: {batch} new_height: 56 new_width: 48 }} }}\n",
            list.display()
        )
    };
    std::fs::write(&file, layer("faces", 16) + &layer("more", 5)).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_netrun"))
        .args([
            "time",
            "--data",
            "--iterations",
            "3",
            "--decode-threads",
            "2",
        ])
        .arg(&file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("Data layers (3 batches each, 2 decode thread(s)):"),
        "{stdout}"
    );
    for (name, batch) in [("faces", 16), ("more", 5)] {
        let row = stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no row for `{name}`:\n{stdout}"));
        let cols: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cols[1..3], ["ImageData", &batch.to_string()[..]], "{row}");
        let ms: f64 = cols[3].parse().unwrap();
        let rate: f64 = cols[4].parse().unwrap();
        assert!(ms > 0.0, "{row}");
        // images/s is the batch over the time per batch (rounded to 0.1 in the table).
        let want = batch as f64 * 1e3 / ms;
        assert!((rate - want).abs() <= 0.05 + want * 1e-3, "{row}");
    }
}
