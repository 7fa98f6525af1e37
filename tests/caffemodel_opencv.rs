//! OpenCV's dnn module (`cv2.dnn.readNetFromCaffe`) against `netrun forward`:
//! - caffemodels netrun wrote (`convert safetensors`) for the caffe-face
//!   LeNet++ deploy and SphereFace-20 deploy nets, with the nets' filler
//!   weights and random biases;
//! - the published MTCNN P-, R- and O-Net caffemodels on a real face crop,
//!   preprocessed as their release says (RGB, (x − 127.5)/128, transposed).
//!
//! Outputs must agree within 1e-4 of the largest magnitude of each output.

mod common;

use common::python::run_script;
use netrun::caffe::convert::build_net;
use netrun::weights::{self, Tensors};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn netrun(args: &[&Path]) {
    let out = Command::new(env!("CARGO_BIN_EXE_netrun"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "netrun {args:?}:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn p(s: &str) -> &Path {
    Path::new(s)
}

/// max |a − b| / max |b| over one output.
fn relative_error(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let scale = b
        .iter()
        .fold(0f64, |m, &v| m.max(v.abs() as f64))
        .max(1e-12);
    let diff = a
        .iter()
        .zip(b)
        .fold(0f64, |m, (&x, &y)| m.max((x as f64 - y as f64).abs()));
    diff / scale
}

/// Runs netrun and OpenCV on the same input and compares `(netrun blob,
/// OpenCV layer)` outputs; returns the largest relative error.
fn compare(
    dir: &Path,
    prototxt: &Path,
    model: &Path,
    input: &Path,
    outputs: &[(&str, &str)],
) -> f64 {
    let ours = dir.join("netrun_out.safetensors");
    netrun(&[
        p("forward"),
        prototxt,
        p("--weights"),
        model,
        p("--inputs"),
        input,
        p("--phase"),
        p("TEST"),
        p("-o"),
        &ours,
    ]);
    let theirs = dir.join("opencv_out.safetensors");
    let mut args: Vec<&Path> = vec![p("opencv"), prototxt, model, input, &theirs];
    args.extend(outputs.iter().map(|(_, cv)| p(cv)));
    run_script("caffe_interop.py", &args);
    let ours = weights::load(&ours).unwrap();
    let theirs = weights::load(&theirs).unwrap();
    let mut worst = 0f64;
    for (blob, layer) in outputs {
        let a = &ours.tensors[*blob];
        let b = &theirs.tensors[*layer];
        assert_eq!(a.shape, b.shape, "{blob}");
        let e = relative_error(&a.data, &b.data);
        println!(
            "{}: {blob} vs OpenCV {layer}: max relative error {e:.3e}",
            prototxt.display()
        );
        assert!(e < 1e-4, "{blob}: relative error {e}");
        worst = worst.max(e);
    }
    worst
}

/// splitmix64 in [-1, 1).
fn uniform(state: &mut u64) -> f32 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z >> 40) as f32 / (1u64 << 23) as f32 - 1.0
}

fn write_input(path: &Path, shape: &[usize], seed: u64) {
    let mut s = seed;
    let n: usize = shape.iter().product();
    let x: Vec<f32> = (0..n).map(|_| uniform(&mut s)).collect();
    weights::save_f32(path, &[("data", shape, &x)], &BTreeMap::new()).unwrap();
}

/// The net's filler weights, 1-D blobs (biases, PReLU slopes) shifted by
/// up to ±0.1, written as safetensors and converted to a caffemodel by the CLI.
fn random_caffemodel(dir: &Path, prototxt: &Path) -> PathBuf {
    let mut net = build_net(prototxt, &[]).unwrap();
    let mut s = 7u64;
    for b in &mut net.params {
        if b.shape().len() == 1 {
            b.data_mut()
                .iter_mut()
                .for_each(|v| *v += 0.1 * uniform(&mut s));
        }
    }
    let named = weights::net_params(&net);
    let views: Vec<(String, &netrun::blob::Blob)> = named
        .iter()
        .map(|(n, i)| (n.clone(), &net.params[*i]))
        .collect();
    let st = dir.join("w.safetensors");
    weights::save(&st, &views, &BTreeMap::new()).unwrap();
    let model = dir.join("w.caffemodel");
    netrun(&[
        p("convert"),
        p("safetensors"),
        &st,
        p("--net"),
        prototxt,
        p("-o"),
        &model,
    ]);
    // What netrun wrote reads back as what it was given.
    let back: Tensors = weights::load(&model).unwrap();
    for (name, i) in &named {
        assert_eq!(back.tensors[name].data, net.params[*i].data(), "{name}");
    }
    model
}

fn repo(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

#[test]
fn opencv_runs_caffemodels_netrun_wrote_like_netrun() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let lenet = repo("nets/caffe-face/mnist_deploy.prototxt");
    let input = d.join("lenet_x.safetensors");
    write_input(&input, &[2, 1, 28, 28], 1);
    let model = random_caffemodel(d, &lenet);
    compare(d, &lenet, &model, &input, &[("ip1", "preluip1")]);
    let sphereface = repo("nets/sphereface/sphereface20_deploy.prototxt");
    let input = d.join("sf_x.safetensors");
    write_input(&input, &[1, 3, 112, 96], 2);
    let model = random_caffemodel(d, &sphereface);
    compare(d, &sphereface, &model, &input, &[("fc5", "fc5")]);
}

/// The first image of the first person of the shared face crops.
fn face_image() -> PathBuf {
    let root = common::shared("data/dlib_johns/images");
    let mut people: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    people.sort();
    let mut images: Vec<PathBuf> = std::fs::read_dir(&people[0])
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    images.sort();
    images[0].clone()
}

/// A net of the release, its input's H×W, and its (netrun blob, OpenCV layer) outputs.
type Case = (
    &'static str,
    [usize; 2],
    &'static [(&'static str, &'static str)],
);

#[test]
fn published_mtcnn_caffemodels_give_opencvs_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let image = face_image();
    let cases: [Case; 3] = [
        (
            "det1",
            [36, 30],
            &[("prob1", "prob1"), ("conv4-2", "conv4-2")],
        ),
        (
            "det2",
            [24, 24],
            &[("prob1", "prob1"), ("conv5-2", "conv5-2")],
        ),
        (
            "det3",
            [48, 48],
            &[
                ("prob1", "prob1"),
                ("conv6-2", "conv6-2"),
                ("conv6-3", "conv6-3"),
            ],
        ),
    ];
    for (name, [h, w], outputs) in cases {
        let input = d.join(format!("{name}_x.safetensors"));
        let (hs, ws) = (h.to_string(), w.to_string());
        run_script(
            "caffe_interop.py",
            &[p("mtcnn-input"), &image, p(&hs), p(&ws), &input],
        );
        let prototxt = common::shared(&format!("models/mtcnn/{name}.prototxt"));
        let model = common::shared(&format!("models/mtcnn/{name}.caffemodel"));
        compare(d, &prototxt, &model, &input, outputs);
    }
}
