//! Data-layer throughput, images per second: ImageData over the 55 real face
//! crops of `../shared/data/dlib_johns/` (PNG decode, resize to 112×96, crop
//! and mirror), batch 32, on one and on two decode threads
//! (`--decode-threads`). Each forward takes one prepared batch; in steady
//! state that is the rate at which the prefetch thread and its decode pool
//! produce them. `cargo bench --bench decode`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use netrun::data::decode_pool::set_decode_threads;
use netrun::graph::{BuildOptions, Graph};
use netrun::net::Net;
use netrun::netdef::{parse_net_str, Phase};
use std::path::PathBuf;

const BATCH: usize = 32;

/// The crops' list with absolute paths, written to the temporary folder.
fn face_list() -> PathBuf {
    let johns = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/dlib_johns");
    let list = std::fs::read_to_string(johns.join("list.txt"))
        .unwrap_or_else(|e| panic!("{}: {e}", johns.display()));
    let lines: Vec<String> = list
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (path, label) = l.rsplit_once(' ').unwrap();
            format!("{} {label}", johns.join(path).display())
        })
        .collect();
    let out = std::env::temp_dir().join("netrun-bench-faces.txt");
    std::fs::write(&out, lines.join("\n") + "\n").unwrap();
    out
}

fn image_data(c: &mut Criterion) {
    let text = format!(
        "layer {{ name: \"data\" type: \"ImageData\" top: \"data\" top: \"label\"\n\
         transform_param {{ crop_size: 96 mirror: true scale: 0.0078125 mean_value: 127.5 }}\n\
         image_data_param {{ source: \"{}\" batch_size: {BATCH} shuffle: true new_height: 112 new_width: 96 }} }}\n",
        face_list().display()
    );
    let parsed = parse_net_str("decode.net", &text).unwrap();
    let mut group = c.benchmark_group("image_data");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.sample_size(20);
    for threads in [1, 2] {
        set_decode_threads(threads);
        let graph = Graph::build(&parsed, &BuildOptions::for_phase(Phase::Train)).unwrap();
        let mut net = Net::new(graph, 1).unwrap();
        group.bench_function(
            format!("faces_112x96_b{BATCH}_decode_threads_{threads}"),
            |b| b.iter(|| net.forward().unwrap()),
        );
    }
    group.finish();
}

criterion_group!(benches, image_data);
criterion_main!(benches);
