//! `netrun verify`: the fold logic and the ROC against hand-computed
//! examples, LFW's own protocol lists, and a real run on dlib's face crops
//! with the nets/faces-demo model trained here.

mod common;

use netrun::data::list_builder::{build_list, write_list};
use netrun::face::folds::{best_threshold, cross_validate, Scored};
use netrun::face::lfw::PairList;
use netrun::face::roc::Roc;
use netrun::solverdef::read_solver_file_in;
use netrun::train::log::Log;
use netrun::train::{TrainOptions, Trainer};
use std::path::{Path, PathBuf};
use std::process::Command;

fn s(score: f64, same: bool, fold: usize) -> Scored {
    Scored { score, same, fold }
}

/// Three folds of two pairs; the thresholds and accuracies worked out by hand:
/// fold 1 is tested at the best threshold of folds 2 and 3 (scores 0.4 S,
/// 0.5 D, 0.6 D, 0.8 S: 3 of 4 right between 0.6 and 0.8, t = 0.7), and so on.
fn example() -> Vec<Scored> {
    vec![
        s(0.9, true, 0),
        s(0.2, false, 0),
        s(0.8, true, 1),
        s(0.5, false, 1),
        s(0.4, true, 2),
        s(0.6, false, 2),
    ]
}

#[test]
fn folds_match_a_hand_computed_example() {
    let cv = cross_validate(&example(), 3).unwrap();
    let thresholds: Vec<f64> = cv.folds.iter().map(|f| f.threshold).collect();
    let expect = [0.7, 0.3, 0.65];
    for (t, e) in thresholds.iter().zip(expect) {
        assert!(
            (t - e).abs() < 1e-12,
            "thresholds {thresholds:?}, expected {expect:?}"
        );
    }
    let correct: Vec<usize> = cv.folds.iter().map(|f| f.correct).collect();
    assert_eq!(correct, [2, 1, 1]);
    assert!((cv.mean() - 2.0 / 3.0).abs() < 1e-12);
    // Sample std of (1, ½, ½): sqrt(((1/3)² + 2·(1/6)²) / 2) = sqrt(1/12).
    assert!((cv.std() - (1.0f64 / 12.0).sqrt()).abs() < 1e-12);
    // Training accuracy of fold 3's threshold: folds 1 and 2 all right.
    assert_eq!(cv.folds[2].train_accuracy, 1.0);
}

#[test]
fn best_threshold_handles_ties_and_one_class() {
    // Tied scores move together: a threshold cannot split them. Calling all
    // three "same" and calling only 0.9 "same" both get 2 right; the lower
    // candidate (below every score) wins the tie.
    let tied = [s(0.5, true, 0), s(0.5, false, 0), s(0.9, true, 0)];
    assert_eq!(best_threshold(&tied), (-0.5, 2));
    let split = [s(0.5, true, 0), s(0.4, false, 0), s(0.9, true, 0)];
    assert_eq!(best_threshold(&split), (0.45, 3));
    let all_same = [s(0.1, true, 0), s(0.3, true, 0)];
    let (t, c) = best_threshold(&all_same);
    assert_eq!(c, 2);
    assert!(t < 0.1);
    assert!(cross_validate(&tied, 2)
        .unwrap_err()
        .contains("fold 2 holds no pairs"));
}

#[test]
fn roc_matches_a_hand_computed_example() {
    let roc = Roc::new(&example()).unwrap();
    let pts: Vec<(f64, f64)> = roc.points.iter().map(|p| (p.far, p.tar)).collect();
    let third = 1.0 / 3.0;
    let expect = [
        (0.0, 0.0),
        (0.0, third),
        (0.0, 2.0 * third),
        (third, 2.0 * third),
        (2.0 * third, 2.0 * third),
        (2.0 * third, 1.0),
        (1.0, 1.0),
    ];
    assert_eq!(pts.len(), expect.len());
    for (p, e) in pts.iter().zip(expect) {
        assert!(
            (p.0 - e.0).abs() < 1e-12 && (p.1 - e.1).abs() < 1e-12,
            "{pts:?}"
        );
    }
    // 7 of the 9 (same, different) pairs are ordered right (Mann–Whitney).
    assert!((roc.auc() - 7.0 / 9.0).abs() < 1e-12);
    let p = roc.tar_at_far(1e-2);
    assert_eq!((p.tar, p.threshold), (2.0 * third, 0.8));
    assert!(Roc::new(&[s(0.1, true, 0)]).is_none());
}

#[test]
fn lfw_protocol_lists_parse_completely() {
    let dir = common::shared("data/lfw_protocol");
    let view2 = PairList::read(&dir.join("pairs.txt")).unwrap();
    assert_eq!(
        (view2.pairs.len(), view2.sets, view2.per_set),
        (6000, 10, 300)
    );
    let folds = view2.folds(10);
    for f in 0..10 {
        let in_fold: Vec<_> = view2
            .pairs
            .iter()
            .zip(&folds)
            .filter(|(_, &k)| k == f)
            .map(|(p, _)| p)
            .collect();
        assert_eq!(in_fold.len(), 600);
        assert_eq!(in_fold.iter().filter(|p| p.same).count(), 300);
        assert!(in_fold[..300]
            .iter()
            .all(|p| p.same && p.a.name == p.b.name));
        assert!(in_fold[300..].iter().all(|p| !p.same));
    }
    let first = &view2.pairs[0];
    assert_eq!(
        (first.a.name.as_str(), first.a.number, first.b.number),
        ("Abel_Pacheco", 1, 4)
    );
    let last = view2.pairs.last().unwrap();
    assert!(!last.same);
    // View 1: a single count, one set.
    let train = PairList::read(&dir.join("pairsDevTrain.txt")).unwrap();
    assert_eq!(
        (train.pairs.len(), train.sets, train.per_set),
        (2200, 1, 1100)
    );
    let test = PairList::read(&dir.join("pairsDevTest.txt")).unwrap();
    assert_eq!((test.pairs.len(), test.sets, test.per_set), (1000, 1, 500));
    // Without 10 sets, each kind is dealt round-robin over the folds.
    let f = test.folds(10);
    assert_eq!(f.iter().filter(|&&k| k == 3).count(), 100);
}

#[test]
fn malformed_pair_lists_are_refused_with_their_line() {
    let cases = [
        ("", "1: the file is empty"),
        (
            "2 1\nA 1 2\nA 1 B 1\n",
            "4: the file ends at matched pair 1 of set 2",
        ),
        (
            "1\nA 1 2\nA 1 B\n",
            "3: expected a mismatched pair of set 1",
        ),
        ("1\nA 0 2\nA 1 B 1\n", "2: `0` is not an image number"),
        (
            "1\nA 1 2\nA 1 B 1\nC 1 2\n",
            "4: `C 1 2` follows the 2 pairs",
        ),
        ("ten 300\n", "1: the header must be `SETS PAIRS`"),
    ];
    for (text, want) in cases {
        let err = PairList::parse(text).unwrap_err();
        assert!(
            err.starts_with(want),
            "for {text:?}: `{err}` does not start with `{want}`"
        );
    }
}

/// dlib's 5 people × 11 crops: (person, sorted file names).
fn people() -> Vec<(String, Vec<String>)> {
    let root = common::shared("data/dlib_johns/images");
    let mut out: Vec<(String, Vec<String>)> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            let mut files: Vec<String> = std::fs::read_dir(&p)
                .unwrap()
                .map(|f| f.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            files.sort();
            (p.file_name().unwrap().to_string_lossy().into_owned(), files)
        })
        .collect();
    out.sort();
    out
}

/// A `10 27` pair list over dlib's crops: 270 of the 275 same-person pairs
/// and 270 of the 1,210 different-person pairs, spread evenly, dealt
/// round-robin into 10 sets.
fn write_pairs(path: &Path, people: &[(String, Vec<String>)]) {
    let mut same = Vec::new();
    let mut diff = Vec::new();
    for (a, (pa, fa)) in people.iter().enumerate() {
        for i in 0..fa.len() {
            for j in i + 1..fa.len() {
                same.push(format!("{pa}\t{}\t{}", i + 1, j + 1));
            }
        }
        for (pb, fb) in &people[a + 1..] {
            for i in 0..fa.len() {
                for j in 0..fb.len() {
                    diff.push(format!("{pa}\t{}\t{pb}\t{}", i + 1, j + 1));
                }
            }
        }
    }
    let pick =
        |v: &[String]| -> Vec<String> { (0..270).map(|k| v[k * v.len() / 270].clone()).collect() };
    let (same, diff) = (pick(&same), pick(&diff));
    let mut text = String::from("10\t27\n");
    for set in 0..10 {
        for k in 0..27 {
            text += &same[set + 10 * k];
            text.push('\n');
        }
        for k in 0..27 {
            text += &diff[set + 10 * k];
            text.push('\n');
        }
    }
    std::fs::write(path, text).unwrap();
}

/// Trains nets/faces-demo for `iters` iterations on the dlib crops (45 of
/// them; 2 per person held out) and saves the weights.
fn train_faces_demo(dir: &Path, iters: i32) -> PathBuf {
    let nets = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("nets/faces-demo");
    for f in [
        "faces_train_test.prototxt",
        "faces_solver.prototxt",
        "faces_deploy.prototxt",
    ] {
        std::fs::copy(nets.join(f), dir.join(f)).unwrap();
    }
    let data = dir.join("data");
    std::fs::create_dir(&data).unwrap();
    std::os::unix::fs::symlink(common::shared("data/dlib_johns/images"), data.join("johns"))
        .unwrap();
    let list = build_list(&data.join("johns"), 2).unwrap();
    write_list(&data.join("train.txt"), &list.train).unwrap();
    write_list(&data.join("val.txt"), &list.val).unwrap();
    let mut def = read_solver_file_in(&dir.join("faces_solver.prototxt"), dir).unwrap();
    def.params.max_iter = iters;
    def.params.snapshot = 0;
    def.params.snapshot_after_train = false;
    def.params.test_interval = 0;
    def.params.snapshot_prefix = dir.join("snap").to_string_lossy().into_owned();
    let mut t = Trainer::new(
        def,
        TrainOptions::default(),
        Log::new(Box::new(std::io::sink())),
    )
    .unwrap();
    t.solve().unwrap();
    let path = dir.join("faces_demo.weights.safetensors");
    let blobs: Vec<(String, &netrun::blob::Blob)> = t
        .net
        .learnables
        .iter()
        .map(|l| (l.name.clone(), &t.net.params[l.param]))
        .collect();
    netrun::weights::save(&path, &blobs, &Default::default()).unwrap();
    path
}

fn verify_cli(
    dir: &Path,
    threads: &str,
    layout: &[&str],
    tag: &str,
) -> (String, serde_json::Value) {
    verify_net(dir, "faces_deploy.prototxt", threads, layout, tag)
}

fn verify_net(
    dir: &Path,
    net: &str,
    threads: &str,
    layout: &[&str],
    tag: &str,
) -> (String, serde_json::Value) {
    let json = dir.join(format!("{tag}.json"));
    let out = Command::new(env!("CARGO_BIN_EXE_netrun"))
        .args(["--threads", threads, "verify"])
        .arg(dir.join(net))
        .arg("--weights")
        .arg(dir.join("faces_demo.weights.safetensors"))
        .arg("--pairs")
        .arg(dir.join("pairs.txt"))
        .args(layout)
        .arg("--json")
        .arg(&json)
        .arg("--plot")
        .arg(dir.join(format!("{tag}.png")))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    (stdout, v)
}

#[test]
fn verify_on_dlib_faces_with_the_faces_demo_net() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let people = people();
    write_pairs(&dir.join("pairs.txt"), &people);
    // nets/faces-demo/dlib_pairs.txt is this list, and dlib_images.txt numbers the crops the same way.
    let demo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("nets/faces-demo");
    assert_eq!(
        std::fs::read_to_string(dir.join("pairs.txt")).unwrap(),
        std::fs::read_to_string(demo.join("dlib_pairs.txt")).unwrap()
    );
    let mut list = String::new();
    for (p, files) in &people {
        for (i, f) in files.iter().enumerate() {
            list += &format!("{p} {} {p}/{f}\n", i + 1);
        }
    }
    let committed = std::fs::read_to_string(demo.join("dlib_images.txt")).unwrap();
    assert_eq!(committed.split_once('\n').unwrap().1, list);
    train_faces_demo(dir, 60);
    // The crops through the `name number path` list ...
    let images = common::shared("data/dlib_johns/images");
    let listed = [
        "--images",
        images.to_str().unwrap(),
        "--list",
        demo.join("dlib_images.txt").to_str().unwrap(),
    ]
    .map(String::from);
    // ... and the same crops in LFW's layout (ROOT/<name>/<name>_<NNNN>.png).
    let lfw = dir.join("lfw");
    for (p, files) in &people {
        std::fs::create_dir_all(lfw.join(p)).unwrap();
        for (i, f) in files.iter().enumerate() {
            std::os::unix::fs::symlink(
                images.join(p).join(f),
                lfw.join(p).join(format!("{p}_{:04}.png", i + 1)),
            )
            .unwrap();
        }
    }
    let lfw_args = ["--images", lfw.to_str().unwrap(), "--ext", "png"].map(String::from);
    let (text1, one) = verify_cli(
        dir,
        "1",
        &listed.iter().map(String::as_str).collect::<Vec<_>>(),
        "t1",
    );
    let (text2, two) = verify_cli(
        dir,
        "2",
        &lfw_args.iter().map(String::as_str).collect::<Vec<_>>(),
        "t2",
    );
    println!("{text1}");
    assert_eq!(one, two, "1 thread and 2 threads differ:\n{text1}\n{text2}");
    assert_eq!(text1.replace("t1.", "t2."), text2);
    let acc = one["accuracy_mean"].as_f64().unwrap();
    assert!(
        acc > 0.75,
        "accuracy {acc} is not well above chance:\n{text1}"
    );
    assert_eq!(one["pairs"], 540);
    assert_eq!(one["images"], 55);
    assert_eq!(one["feature_dim"], 512);
    assert!(one["auc"].as_f64().unwrap() > 0.8);
    assert!(text1.contains("preprocessing: SphereFace's default (x - 127.5) / 128"));
    assert!(text1.contains("resized from 150x150"));
    // The train/test net: its TEST ImageData layer stands for the input and
    // its transform_param (mean 127.5, scale 0.0078125 = 1/128) is used.
    let args: Vec<&str> = listed.iter().map(String::as_str).collect();
    let (text3, three) = verify_net(dir, "faces_train_test.prototxt", "2", &args, "t3");
    assert!(
        text3.contains("preprocessing: the net's transform_param (mean_value 127.5,127.5,127.5, scale 0.0078125)"),
        "{text3}"
    );
    for key in ["accuracy_mean", "folds", "auc", "tar_at_far"] {
        assert_eq!(one[key], three[key], "{key}");
    }
    let png = image::open(dir.join("t1.png")).unwrap();
    assert_eq!((png.width(), png.height()), (800, 700));
}

#[test]
fn verify_reports_missing_images_and_blobs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(
        dir.join("pairs.txt"),
        "1\nNobody\t1\t2\nNobody\t1\tNoone\t1\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_netrun"))
        .arg("verify")
        .arg(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("nets/faces-demo/faces_deploy.prototxt"),
        )
        .args(["--weights", "none.safetensors", "--pairs"])
        .arg(dir.join("pairs.txt"))
        .arg("--images")
        .arg(dir)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("3 of the 3 images of"), "{err}");
    assert!(err.contains("Nobody/Nobody_0001.jpg"), "{err}");
}
