//! `netrun align` speed on 640×480 photos: the MTCNN cascade (P-Net over the
//! pyramid, batched R-Net and O-Net) plus the similarity warp to 112×96, in
//! images per second. The photos are made here from the first crop of each
//! person in `../shared/data/dlib_johns/`: a 150×150 face pasted onto a
//! 640×480 background that is the same crop blurred beyond recognition
//! (shrunk to 8×6 and blown up), so each photo holds one face at a realistic
//! scale. `cargo bench --bench align`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use netrun::face::align::align_face;
use netrun::face::image::Rgb;
use netrun::face::mtcnn::{Mtcnn, MtcnnOptions};
use netrun::face::similarity::template;
use std::path::PathBuf;

fn shared(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared")
        .join(rel)
}

/// One 640×480 photo: `face` pasted at (x0, y0) onto its own heavy blur.
fn photo(face: &Rgb, x0: usize, y0: usize) -> Rgb {
    let mut img = face.resize(8, 6).resize(640, 480);
    for y in 0..face.height {
        for x in 0..face.width {
            let (s, d) = ((y * face.width + x) * 3, ((y0 + y) * 640 + x0 + x) * 3);
            img.data[d..d + 3].copy_from_slice(&face.data[s..s + 3]);
        }
    }
    img
}

fn photos() -> Vec<Rgb> {
    let root = shared("data/dlib_johns/images");
    let mut people: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.unwrap().path())
        .collect();
    people.sort();
    people
        .iter()
        .enumerate()
        .map(|(i, dir)| {
            let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            files.sort();
            let face = Rgb::read(&files[0]).unwrap();
            photo(&face, 60 + 90 * i, 40 + 50 * i)
        })
        .collect()
}

fn align_640x480(c: &mut Criterion) {
    let mut mtcnn = Mtcnn::load(&shared("models/mtcnn"), MtcnnOptions::default()).unwrap();
    let photos = photos();
    let sphereface = template("sphereface").unwrap();
    let mut group = c.benchmark_group("align");
    group.sample_size(10);
    group.throughput(Throughput::Elements(photos.len() as u64));
    group.bench_function("640x480", |b| {
        b.iter(|| {
            for img in &photos {
                let faces = mtcnn.detect(img).unwrap();
                let face = faces.first().expect("one face per photo");
                align_face(img, face, &sphereface, [112, 96]).expect("aligned");
            }
        })
    });
    group.finish();
}

criterion_group!(benches, align_640x480);
criterion_main!(benches);
