//! `netrun align`: the box and transform arithmetic against hand-computed
//! values, the MTCNN nets against OpenCV's dnn on the same windows, and the
//! whole cascade and alignment on dlib's real face crops.

mod common;

use netrun::face::align::{align_face, choose, Keep};
use netrun::face::image::Rgb;
use netrun::face::mtcnn::{crops_input, scales, weights_file, Mtcnn, MtcnnOptions};
use netrun::face::nms::{nms, overlap, Candidate, Overlap};
use netrun::face::similarity::{template, Similarity};
use netrun::face::stage::StageNet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn cand(x1: f32, y1: f32, x2: f32, y2: f32, score: f32) -> Candidate {
    Candidate {
        x1,
        y1,
        x2,
        y2,
        score,
        reg: [0.0; 4],
        landmarks: None,
    }
}

#[test]
fn overlap_nms_regression_and_square_by_hand() {
    let a = cand(0.0, 0.0, 10.0, 10.0, 0.9);
    let b = cand(5.0, 0.0, 15.0, 10.0, 0.8);
    let inner = cand(2.0, 2.0, 6.0, 6.0, 0.95);
    // Intersection 50, union 150; inside a box, "min" overlap is 1.
    assert!((overlap(&a, &b, Overlap::Union) - 1.0 / 3.0).abs() < 1e-6);
    assert_eq!(overlap(&a, &inner, Overlap::Min), 1.0);
    let far = cand(20.0, 20.0, 30.0, 30.0, 0.5);
    let kept = nms(vec![a.clone(), b.clone(), far.clone()], 0.3, Overlap::Union);
    assert_eq!(kept, vec![a.clone(), far.clone()]);
    let kept = nms(vec![a.clone(), b.clone()], 0.5, Overlap::Union);
    assert_eq!(kept.len(), 2);
    let kept = nms(vec![a.clone(), inner.clone()], 0.7, Overlap::Min);
    assert_eq!(kept, vec![inner]);
    let mut c = cand(10.0, 20.0, 30.0, 60.0, 1.0);
    c.reg = [0.1, -0.05, 0.2, 0.25];
    c.regress();
    assert_eq!([c.x1, c.y1, c.x2, c.y2], [12.0, 18.0, 34.0, 70.0]);
    c.square();
    assert_eq!([c.x1, c.y1, c.x2, c.y2], [-3.0, 18.0, 49.0, 70.0]);
}

#[test]
fn pyramid_scales_stop_at_twelve_pixels() {
    // min face 20: m = 0.6; a 150-pixel side gives 90, 63.8, 45.2, 32.1, 22.7, 16.1 (then 11.4 < 12).
    let s = scales(150, 200, 20.0, 0.709);
    assert!((s[0] - 0.6).abs() < 1e-6);
    let last = *s.last().unwrap();
    assert!(150.0 * last >= 12.0 && 150.0 * last * 0.709 < 12.0, "{s:?}");
    assert_eq!(s.len(), 6);
}

#[test]
fn similarity_fit_recovers_a_known_transform() {
    let truth = Similarity {
        a: 0.8 * 0.3f64.cos(),
        b: 0.8 * 0.3f64.sin(),
        tx: 12.0,
        ty: -7.0,
    };
    let from = [
        [10.0, 20.0],
        [50.0, 22.0],
        [30.0, 40.0],
        [15.0, 60.0],
        [48.0, 61.0],
    ];
    let to: Vec<[f64; 2]> = from.iter().map(|&p| truth.apply(p)).collect();
    let fit = Similarity::fit(&from, &to).unwrap();
    for (x, y) in [
        (fit.a, truth.a),
        (fit.b, truth.b),
        (fit.tx, truth.tx),
        (fit.ty, truth.ty),
    ] {
        assert!((x - y).abs() < 1e-9, "{fit:?} vs {truth:?}");
    }
    let back = fit.inverse().unwrap().apply(fit.apply([3.0, 4.0]));
    assert!((back[0] - 3.0).abs() < 1e-9 && (back[1] - 4.0).abs() < 1e-9);
    assert!(Similarity::fit(&[[1.0, 1.0], [1.0, 1.0]], &[[0.0, 0.0], [1.0, 1.0]]).is_none());
    let t = template("sphereface").unwrap();
    assert_eq!(t.size, [112, 96]);
    // The arcface template is the same face 8 pixels to the right in a 112×112 crop.
    let arc = template("arcface").unwrap();
    assert!((arc.points[0][0] - t.points[0][0] - 8.0).abs() < 1e-12);
}

fn models() -> PathBuf {
    common::shared("models/mtcnn")
}

fn dlib_images() -> Vec<PathBuf> {
    let root = common::shared("data/dlib_johns/images");
    let mut out = Vec::new();
    for p in std::fs::read_dir(&root).unwrap() {
        for f in std::fs::read_dir(p.unwrap().path()).unwrap() {
            out.push(f.unwrap().path());
        }
    }
    out.sort();
    out
}

/// Runs `stem` on `input` through OpenCV (tests/python/mtcnn_opencv.py) and netrun; returns
/// the largest absolute difference over the named outputs, and their sizes.
fn compare(
    dir: &Path,
    stem: &str,
    input: &[f32],
    shape: [usize; 4],
    outputs: &[&str],
) -> (f32, Vec<usize>) {
    let inp = dir.join(format!("{stem}_in.safetensors"));
    let out = dir.join(format!("{stem}_cv.safetensors"));
    netrun::weights::save_f32(&inp, &[("data", &shape[..], input)], &Default::default()).unwrap();
    let mut args: Vec<PathBuf> = vec!["run".into(), models(), stem.into(), inp, out.clone()];
    args.extend(outputs.iter().map(PathBuf::from));
    let refs: Vec<&Path> = args.iter().map(PathBuf::as_path).collect();
    common::python::run_script("mtcnn_opencv.py", &refs);
    let cv = netrun::weights::load(&out).unwrap();
    let mut net = StageNet::load(
        &models().join(format!("{stem}.prototxt")),
        &weights_file(&models(), stem).unwrap(),
    )
    .unwrap();
    let ours = net.run(input, shape, outputs).unwrap();
    let mut worst = 0.0f32;
    let mut sizes = Vec::new();
    for (name, (s, v)) in outputs.iter().zip(&ours) {
        let theirs = &cv.tensors[*name];
        assert_eq!(
            theirs.data.len(),
            v.len(),
            "{stem} {name}: {:?} vs {s:?}",
            theirs.shape
        );
        sizes.push(v.len());
        for (a, b) in v.iter().zip(&theirs.data) {
            worst = worst.max((a - b).abs());
        }
    }
    (worst, sizes)
}

#[test]
fn pnet_rnet_onet_match_opencv_on_the_same_windows() {
    let tmp = tempfile::tempdir().unwrap();
    let img = Rgb::read(&dlib_images()[3]).unwrap();
    // P-Net on a pyramid level that is not square (transposed: W × H).
    let level = img.resize(61, 47);
    let mut input = Vec::new();
    level.mtcnn_input(&mut input);
    let (d1, n1) = compare(
        tmp.path(),
        "det1",
        &input,
        [1, 3, 61, 47],
        &["prob1", "conv4-2"],
    );
    // R-Net and O-Net on the cascade's own candidates of this photo.
    let mut mtcnn = Mtcnn::load(&models(), MtcnnOptions::default()).unwrap();
    let props = mtcnn.proposals(&img).unwrap();
    assert!(props.len() >= 2, "{} proposals", props.len());
    let input = crops_input(&img, &props, 24);
    let (d2, n2) = compare(
        tmp.path(),
        "det2",
        &input,
        [props.len(), 3, 24, 24],
        &["prob1", "conv5-2"],
    );
    let input = crops_input(&img, &props, 48);
    let (d3, n3) = compare(
        tmp.path(),
        "det3",
        &input,
        [props.len(), 3, 48, 48],
        &["prob1", "conv6-2", "conv6-3"],
    );
    println!("max |netrun - OpenCV|: P-Net {d1:e} over {n1:?}, R-Net {d2:e} over {n2:?}, O-Net {d3:e} over {n3:?} ({} windows)", props.len());
    assert!(d1 < 1e-4 && d2 < 1e-4 && d3 < 1e-4, "{d1} {d2} {d3}");
}

#[test]
fn every_dlib_crop_yields_one_face_aligned_onto_the_template() {
    let mut mtcnn = Mtcnn::load(&models(), MtcnnOptions::default()).unwrap();
    let t = template("sphereface").unwrap();
    let mut eyes = Vec::new();
    for path in dlib_images() {
        let img = Rgb::read(&path).unwrap();
        let faces = mtcnn.detect(&img).unwrap();
        assert_eq!(faces.len(), 1, "{}: {faces:?}", path.display());
        let f = &faces[0];
        let [x1, y1, x2, y2] = f.bbox;
        for p in f.landmarks {
            assert!(
                p[0] > x1 && p[0] < x2 && p[1] > y1 && p[1] < y2,
                "{}: {f:?}",
                path.display()
            );
        }
        let [le, re, nose, lm, rm] = f.landmarks;
        assert!(
            le[0] < re[0] && lm[0] < rm[0],
            "{}: left/right {f:?}",
            path.display()
        );
        assert!(
            le[1].max(re[1]) < nose[1] && nose[1] < lm[1].min(rm[1]),
            "{}: {f:?}",
            path.display()
        );
        assert_eq!(
            choose(&faces, Keep::Largest, img.width, img.height),
            Some(0)
        );
        let (s, crop) = align_face(&img, f, &t, [112, 96]).unwrap();
        assert_eq!((crop.width, crop.height), (96, 112));
        // The crop, detected again: its eyes sit on the template's.
        let mut again = mtcnn.detect(&crop).unwrap();
        assert!(
            !again.is_empty(),
            "{}: no face in the aligned crop",
            path.display()
        );
        let k = choose(&again, Keep::Largest, 96, 112).unwrap();
        let g = again.swap_remove(k);
        for e in 0..2 {
            let d = f64::from(g.landmarks[e][0] - t.points[e][0] as f32)
                .hypot(f64::from(g.landmarks[e][1] - t.points[e][1] as f32));
            eyes.push(d);
        }
        assert!(s.scale() > 0.3 && s.scale() < 3.0);
    }
    // Re-detection on a 112×96 crop has its own error of a pixel or two.
    let worst = eyes.iter().cloned().fold(0.0, f64::max);
    let mean = eyes.iter().sum::<f64>() / eyes.len() as f64;
    println!(
        "eye distance from the template after alignment: mean {mean:.2} px, largest {worst:.2} px"
    );
    assert!(mean < 2.5 && worst < 6.0, "mean {mean}, largest {worst}");
}

#[test]
fn align_command_writes_crops_landmarks_and_drawings() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, draw) = (tmp.path().join("aligned"), tmp.path().join("draw"));
    let input = tmp.path().join("in/John_Simm");
    std::fs::create_dir_all(&input).unwrap();
    let src = common::shared("data/dlib_johns/images/John_Simm");
    let first = std::fs::read_dir(&src)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::copy(&first, input.join("face.png")).unwrap();
    // A photo without a face: a flat grey image.
    image::RgbImage::from_pixel(120, 90, image::Rgb([128, 128, 128]))
        .save(input.join("empty.png"))
        .unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_netrun"))
        .arg("align")
        .arg(tmp.path().join("in"))
        .arg(&out)
        .arg("--models")
        .arg(models())
        .arg("--draw")
        .arg(&draw)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        stdout.contains("skipped `John_Simm/empty.png`: no face found"),
        "{stdout}"
    );
    assert!(stdout.contains("aligned 1 of 2 images"), "{stdout}");
    let crop = image::open(out.join("John_Simm/face.png")).unwrap();
    assert_eq!((crop.width(), crop.height()), (96, 112));
    assert!(!out.join("John_Simm/empty.png").exists());
    let tsv = std::fs::read_to_string(out.join("landmarks.tsv")).unwrap();
    let lines: Vec<&str> = tsv.lines().collect();
    assert_eq!(lines.len(), 3, "{tsv}");
    assert_eq!(lines[0].split('\t').count(), 18);
    assert_eq!(lines[1], "John_Simm/empty.png\tno face found\t0");
    assert!(lines[2].starts_with("John_Simm/face.png\tok\t1\t"));
    assert_eq!(lines[2].split('\t').count(), 18);
    assert!(draw.join("John_Simm/face.png").is_file());
}
