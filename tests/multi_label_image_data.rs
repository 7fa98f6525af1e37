//! MultiLabelImageData (happynear/caffe-windows, read by FaceVerification's attribute
//! net): list lines with K labels, a label top of N × K, images exactly as ImageData
//! reads them, K from `--input-shape` without the list, and the list's errors.

mod data_support;

use data_support::{build_with, error_with, johns_first, scratch, tops};
use netrun::data::image_list::{parse_multi_line, ListError};
use netrun::layers::multi_label_image_data::MultiLabelImageDataLayer;
use netrun::layers::{image_data::ImageDataLayer, BuildContext, Layer};
use netrun::netdef::{parse_net_str, Phase};
use netrun::testing::{forward, setup};

fn net(ty: &str, image_data: &str) -> String {
    format!(
        "layer {{ name: \"attribute_data\" type: \"{ty}\" top: \"data\" top: \"attr\"\n\
         transform_param {{ scale: 0.0078125 mean_value: 127.5 }}\n\
         image_data_param {{ {image_data} }} }}\n"
    )
}

/// The first `n` face crops, each line `<path> <labels(i)…>`, as a list in `dir`.
fn list_of(dir: &std::path::Path, n: usize, labels: impl Fn(usize) -> String) -> String {
    let (johns, _) = johns_first();
    let text = std::fs::read_to_string(johns.join("list.txt")).unwrap();
    let lines: Vec<String> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(n)
        .enumerate()
        .map(|(i, l)| {
            let path = johns.join(l.rsplit_once(' ').unwrap().0);
            format!("{} {}", path.display(), labels(i))
        })
        .collect();
    let list = dir.join("list.txt");
    std::fs::write(&list, lines.join("\n") + "\n").unwrap();
    format!("source: \"{}\" batch_size: 3", list.display())
}

fn layer_of(text: &str) -> Box<dyn Layer> {
    let net = parse_net_str("test.net", text).unwrap();
    let ctx = BuildContext {
        phase: Phase::Test,
        ..BuildContext::default()
    };
    let def = &net.layers[0];
    match def.type_name.as_str() {
        "ImageData" => Box::new(ImageDataLayer::new(def, &ctx).unwrap()),
        _ => Box::new(MultiLabelImageDataLayer(
            ImageDataLayer::with_labels(def, &ctx, true).unwrap(),
        )),
    }
}

/// Two batches of (data, labels).
fn batches(l: &mut dyn Layer) -> Vec<(Vec<f32>, Vec<f32>)> {
    let (mut tops, mut params) = setup(l, &[], 0);
    (0..2)
        .map(|_| {
            forward(l, &mut [], &mut tops, &mut params);
            (tops[0].data().to_vec(), tops[1].data().to_vec())
        })
        .collect()
}

#[test]
fn list_lines_carry_labels_after_the_path() {
    let (e, labels) = parse_multi_line("img/0001.jpg 0 1 -1 0.5\r\n", 3)
        .unwrap()
        .unwrap();
    assert_eq!((e.path.as_str(), e.line), ("img/0001.jpg", 3));
    assert_eq!(labels, [0.0, 1.0, -1.0, 0.5]);
    assert_eq!(parse_multi_line(" \t\r\n", 1).unwrap(), None);
    for (line, want) in [
        ("a.png", "has no labels"),
        ("a.png 1 x 0", "label `x` is not a finite number"),
        ("a.png 1 nan", "label `nan` is not a finite number"),
    ] {
        match parse_multi_line(line, 7) {
            Err(ListError::Line { line: 7, message }) => {
                assert!(message.contains(want), "{message}")
            }
            other => panic!("{line}: {other:?}"),
        }
    }
}

#[test]
fn label_rows_follow_the_list_and_images_match_image_data() {
    let dir = scratch("multi_label_rows");
    let source = list_of(&dir, 4, |i| format!("{i} {} 0.25", i % 2));
    let mut multi = layer_of(&net("MultiLabelImageData", &source));
    let got = batches(multi.as_mut());
    // Rows in list order, wrapping after the fourth image.
    let row = |i: usize| vec![i as f32, (i % 2) as f32, 0.25];
    assert_eq!(got[0].1, [row(0), row(1), row(2)].concat());
    assert_eq!(got[1].1, [row(3), row(0), row(1)].concat());

    let dir = scratch("multi_label_single");
    let single = list_of(&dir, 4, |i| i.to_string());
    let mut plain = layer_of(&net("ImageData", &single));
    let want = batches(plain.as_mut());
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g.0, w.0, "the images are read as ImageData reads them");
    }
}

#[test]
fn label_top_is_n_by_k_from_the_list_or_input_shape() {
    let dir = scratch("multi_label_shape");
    let source = list_of(&dir, 2, |_| vec!["1"; 40].join(" "));
    let g = build_with(&net("MultiLabelImageData", &source), |o| {
        o.context.batch = Some(5)
    })
    .unwrap();
    let shapes = tops(&g, "attribute_data");
    assert_eq!(shapes[1], [5, 40]);
    assert_eq!(shapes[0][0], 5);

    let missing = net("MultiLabelImageData", "source: \"missing_attr.txt\"");
    let err = error_with(&missing, |o| {
        o.context.input_shapes.insert("data".into(), vec![1, 8, 8]);
    });
    assert!(
        err.contains("cannot open list file `missing_attr.txt`"),
        "{err}"
    );
    assert!(err.contains("pass `--input-shape attr=K`"), "{err}");
    let g = build_with(&missing, |o| {
        o.context.input_shapes.insert("data".into(), vec![1, 8, 8]);
        o.context.input_shapes.insert("attr".into(), vec![40]);
        o.context.batch = Some(2);
    })
    .unwrap();
    assert_eq!(
        tops(&g, "attribute_data"),
        vec![vec![2, 1, 8, 8], vec![2, 40]]
    );
}

#[test]
fn uneven_label_counts_name_the_line() {
    let dir = scratch("multi_label_uneven");
    let list = dir.join("list.txt");
    std::fs::write(&list, "a.png 0 1 1\n\nb.png 1 0\n").unwrap();
    let err = error_with(
        &net(
            "MultiLabelImageData",
            &format!("source: \"{}\"", list.display()),
        ),
        |_| {},
    );
    assert!(
        err.contains(&format!(
            "layer `attribute_data` (MultiLabelImageData): list file `{}` line 3: 2 labels, \
             but line 1 has 3",
            list.display()
        )),
        "{err}"
    );
}
