//! ImageData and transform_param: params, shapes from the first listed image,
//! `--input-shape` fallback and every error path.

mod data_support;

use data_support::{build_with, error_with, johns_first, png_size, scratch, tops};
use netrun::data::image_list::{parse_line, Entry, ListError};
use netrun::layers::image_data::ImageDataParams;
use netrun::layers::transform::TransformParams;
use netrun::netdef::parse_net_str;
use std::path::Path;

/// An ImageData layer `data` with these `image_data_param` and `transform_param` bodies.
fn net(image_data: &str, transform: &str) -> String {
    format!(
        "layer {{ name: \"data\" type: \"ImageData\" top: \"data\" top: \"label\"\n\
         transform_param {{ {transform} }}\n\
         image_data_param {{ {image_data} }} }}\n"
    )
}

/// `source` and `root_folder` of the real face crops, by absolute path.
fn johns(extra: &str) -> String {
    let (dir, _) = johns_first();
    format!(
        "source: \"{}\" root_folder: \"{}/\" {extra}",
        dir.join("list.txt").display(),
        dir.display()
    )
}

#[test]
fn image_data_params_parse() {
    let text = net(
        "source: \"l.txt\" batch_size: 9 rand_skip: 3 shuffle: true new_height: 5 \
         new_width: 6 is_color: false root_folder: \"r/\"",
        "",
    );
    let parsed = parse_net_str("t.net", &text).unwrap();
    let p: ImageDataParams = parsed.layers[0].params("image_data_param").unwrap();
    assert_eq!(p.source.as_deref(), Some("l.txt"));
    assert_eq!((p.batch_size, p.rand_skip, p.shuffle), (9, 3, true));
    assert_eq!((p.new_height, p.new_width, p.is_color), (5, 6, false));
    assert_eq!(p.root_folder, "r/");
    let d = ImageDataParams::default();
    assert_eq!((d.batch_size, d.is_color, d.shuffle), (1, true, false));

    let err = error_with(&net("source: \"l.txt\" new_heigth: 3", ""), |_| {});
    assert!(err.contains("unknown field `new_heigth`"), "{err}");
    assert!(err.contains("did you mean `new_height`?"), "{err}");
}

#[test]
fn transform_params_parse() {
    let text = net(
        "source: \"l.txt\"",
        "scale: 0.0078125 mirror: true crop_size: 7 mean_value: 1 mean_value: 2.5 \
         mean_value: 3 force_color: true",
    );
    let parsed = parse_net_str("t.net", &text).unwrap();
    let t: TransformParams = parsed.layers[0].params("transform_param").unwrap();
    assert_eq!(t.scale, 1.0 / 128.0);
    assert!(t.mirror && t.force_color && !t.force_gray);
    assert_eq!(t.crop_size, 7);
    assert_eq!(t.mean_value, vec![1.0, 2.5, 3.0]);
    assert_eq!(t.mean_file, None);
    assert_eq!(TransformParams::default().scale, 1.0);

    let err = error_with(&net("source: \"l.txt\"", "mean_valu: 3"), |_| {});
    assert!(err.contains("did you mean `mean_value`?"), "{err}");
}

#[test]
fn first_real_image_gives_the_shape() {
    let (dir, first) = johns_first();
    let (h, w) = png_size(&dir.join(&first));
    let g = build_with(&net(&johns("batch_size: 4"), ""), |_| {}).unwrap();
    assert_eq!(tops(&g, "data"), vec![vec![4, 3, h, w], vec![4]]);
    assert_eq!((h, w), (150, 150));
}

#[test]
fn new_size_grey_and_batch_override() {
    let g = build_with(
        &net(&johns("new_height: 112 new_width: 96 is_color: false"), ""),
        |o| o.context.batch = Some(7),
    )
    .unwrap();
    assert_eq!(tops(&g, "data"), vec![vec![7, 1, 112, 96], vec![7]]);
    // The shape is fixed by the params: a missing list is not needed to check.
    let g = build_with(
        &net("source: \"nowhere.txt\" new_height: 11 new_width: 13", ""),
        |_| {},
    )
    .unwrap();
    assert_eq!(tops(&g, "data")[0], vec![1, 3, 11, 13]);
}

#[test]
fn crop_and_mean_values() {
    let g = build_with(
        &net(
            &johns(""),
            "crop_size: 101 mean_value: 127.5 mean_value: 1 mean_value: 2",
        ),
        |_| {},
    )
    .unwrap();
    assert_eq!(tops(&g, "data")[0], vec![1, 3, 101, 101]);
    let g = build_with(&net(&johns("is_color: false"), "mean_value: 127.5"), |_| {}).unwrap();
    assert_eq!(tops(&g, "data")[0], vec![1, 1, 150, 150]);
}

#[test]
fn crop_larger_than_the_image_is_an_error() {
    let (dir, first) = johns_first();
    let (h, w) = png_size(&dir.join(first));
    let crop = h.max(w) + 1;
    let err = error_with(&net(&johns(""), &format!("crop_size: {crop}")), |_| {});
    assert!(
        err.contains(&format!(
            "layer `data` (ImageData): crop_size {crop} is larger than the {h}x{w} image"
        )),
        "{err}"
    );
}

#[test]
fn mean_value_count_must_match_channels() {
    let err = error_with(&net(&johns(""), "mean_value: 1 mean_value: 2"), |_| {});
    assert!(
        err.contains(
            "layer `data` (ImageData): `mean_value` has 2 values but the data has 3 channels"
        ),
        "{err}"
    );
    assert!(
        err.contains("give 1 `mean_value` or 3, one per channel"),
        "{err}"
    );
    let err = error_with(
        &net(
            &johns("is_color: false"),
            "mean_value: 1 mean_value: 2 mean_value: 3",
        ),
        |_| {},
    );
    assert!(
        err.contains("has 3 values but the data has 1 channel\n"),
        "{err}"
    );
}

#[test]
fn transform_conflicts_are_errors() {
    let err = error_with(
        &net(&johns(""), "mean_file: \"m.binaryproto\" mean_value: 1"),
        |_| {},
    );
    assert!(
        err.contains(
            "layer `data` (ImageData): `transform_param` has both `mean_file` and `mean_value`"
        ),
        "{err}"
    );
    let err = error_with(
        &net(&johns(""), "force_color: true force_gray: true"),
        |_| {},
    );
    assert!(
        err.contains("`force_color` and `force_gray` cannot both be true"),
        "{err}"
    );
}

#[test]
fn new_height_without_new_width_is_an_error() {
    let err = error_with(&net(&johns("new_height: 112"), ""), |_| {});
    assert!(
        err.contains(
            "layer `data` (ImageData): `new_height` and `new_width` must be given together"
        ),
        "{err}"
    );
    let err = error_with(&net(&johns("new_width: 96"), ""), |_| {});
    assert!(err.contains("must be given together"), "{err}");
}

#[test]
fn missing_list_names_every_path_tried_and_the_option() {
    let text = net("source: \"faces/list.txt\"", "");
    let err = error_with(&text, |o| {
        o.context.data_dirs = vec!["/nonexistent/a".into(), "/nonexistent/b".into()]
    });
    assert!(
        err.contains("layer `data` (ImageData): cannot open list file `faces/list.txt`"),
        "{err}"
    );
    assert!(
        err.contains("tried `/nonexistent/a/faces/list.txt`, `/nonexistent/b/faces/list.txt`"),
        "{err}"
    );
    assert!(err.contains("pass `--input-shape data=C,H,W`"), "{err}");

    let g = build_with(&text, |o| {
        o.context
            .input_shapes
            .insert("data".into(), vec![3, 112, 96]);
        o.context.batch = Some(2);
    })
    .unwrap();
    assert_eq!(tops(&g, "data"), vec![vec![2, 3, 112, 96], vec![2]]);

    let err = error_with(&text, |o| {
        o.context.input_shapes.insert("data".into(), vec![112, 96]);
    });
    assert!(
        err.contains("`--input-shape data=...` has 2 values; a data layer needs C,H,W"),
        "{err}"
    );
}

#[test]
fn relative_paths_resolve_in_data_dirs_in_order() {
    let (dir, first) = johns_first();
    let (h, w) = png_size(&dir.join(first));
    // list.txt and its relative image paths are found in the second folder.
    let text = net("source: \"list.txt\"", "");
    let g = build_with(&text, |o| {
        o.context.data_dirs = vec!["/nonexistent".into(), dir.clone()]
    })
    .unwrap();
    assert_eq!(tops(&g, "data")[0], vec![1, 3, h, w]);

    let a = scratch("resolve_a");
    let b = scratch("resolve_b");
    std::fs::write(b.join("x"), "").unwrap();
    let dirs = vec![a.clone(), b.clone()];
    let r = netrun::data::resolve("x", &dirs).unwrap();
    assert_eq!((r.base, r.path), (b.clone(), b.join("x")));
    std::fs::write(a.join("x"), "").unwrap();
    assert_eq!(netrun::data::resolve("x", &dirs).unwrap().base, a);
    let abs = b.join("x");
    let r = netrun::data::resolve(abs.to_str().unwrap(), &dirs).unwrap();
    assert_eq!(r.path, abs);
}

/// A list file in a scratch folder, and an ImageData net reading it with that folder as root.
fn scratch_list(name: &str, list: &str) -> (std::path::PathBuf, String) {
    let dir = scratch(name);
    std::fs::write(dir.join("list.txt"), list).unwrap();
    let text = net(
        &format!(
            "source: \"{}\" root_folder: \"{}/\"",
            dir.join("list.txt").display(),
            dir.display()
        ),
        "",
    );
    (dir, text)
}

#[test]
fn bad_list_lines_name_the_file_and_line() {
    let (dir, text) = scratch_list("bad_label", "\n  \nimg one.png seven\n");
    let list = dir.join("list.txt");
    let err = error_with(&text, |_| {});
    assert!(
        err.contains(&format!(
            "layer `data` (ImageData): list file `{}` line 3: label `seven` is not an integer",
            list.display()
        )),
        "{err}"
    );
    let (dir, text) = scratch_list("no_label", "\nimage.png\n");
    let err = error_with(&text, |_| {});
    assert!(
        err.contains(&format!(
            "list file `{}` line 2: `image.png` has no label",
            dir.join("list.txt").display()
        )),
        "{err}"
    );
    let (_, text) = scratch_list("empty_list", "\n\n");
    let err = error_with(&text, |_| {});
    assert!(err.contains("lists no images"), "{err}");
}

#[test]
fn list_lines_split_at_the_last_space() {
    let e = parse_line("my faces/a b.png 12\r\n", 4).unwrap();
    let want = Entry {
        path: "my faces/a b.png".into(),
        label: 12,
        line: 4,
    };
    assert_eq!(e, Some(want));
    assert_eq!(parse_line("   \r\n", 1).unwrap(), None);
    assert_eq!(parse_line("x.png -3", 1).unwrap().unwrap().label, -3);
    assert!(matches!(
        parse_line(" 3", 9),
        Err(ListError::Line { line: 9, .. })
    ));
}

#[test]
fn undecodable_first_image_is_an_error_even_with_input_shape() {
    let (dir, text) = scratch_list("garbage", "bad.png 0\n");
    std::fs::write(dir.join("bad.png"), b"this is not an image").unwrap();
    let err = error_with(&text, |o| {
        o.context.input_shapes.insert("data".into(), vec![3, 4, 4]);
    });
    assert!(
        err.contains(&format!(
            "layer `data` (ImageData): first image `{}` (line 1 of `{}`) cannot be decoded",
            dir.join("bad.png").display(),
            dir.join("list.txt").display()
        )),
        "{err}"
    );
}

#[test]
fn missing_first_image_falls_back_or_names_the_path() {
    let (dir, text) = scratch_list("missing_image", "gone.png 0\n");
    let err = error_with(&text, |_| {});
    let want = dir.join("gone.png");
    assert!(
        err.contains(&format!("cannot open first image `{}`", want.display())),
        "{err}"
    );
    assert!(
        err.contains(&format!("tried `{}`", want.display())),
        "{err}"
    );
    assert!(err.contains("--input-shape data=C,H,W"), "{err}");
    let g = build_with(&text, |o| {
        o.context.input_shapes.insert("data".into(), vec![1, 5, 6]);
    })
    .unwrap();
    assert_eq!(tops(&g, "data")[0], vec![1, 1, 5, 6]);
}

#[test]
fn root_folder_without_slash_gets_a_hint() {
    let (dir, _) = johns_first();
    let root = dir.display().to_string();
    let text = net(
        &format!(
            "source: \"{}\" root_folder: \"{root}\"",
            dir.join("list.txt").display()
        ),
        "",
    );
    let err = error_with(&text, |_| {});
    assert!(
        err.contains(&format!(
            "`root_folder` is prefixed as written (did you mean \"{root}/\")"
        )),
        "{err}"
    );
    assert!(Path::new(&root).is_dir());
}

#[test]
fn jpeg_first_image_is_read() {
    // 30 wide, 20 high, grey: ImageData still gives 3 channels when is_color.
    let (dir, text) = scratch_list("jpeg", "a.jpg 1\n");
    let img = image::GrayImage::from_fn(30, 20, |x, y| image::Luma([(x * 8 + y) as u8]));
    img.save(dir.join("a.jpg")).unwrap();
    let g = build_with(&text, |_| {}).unwrap();
    assert_eq!(tops(&g, "data")[0], vec![1, 3, 20, 30]);
}

#[test]
fn source_and_positive_batch_are_required() {
    let err = error_with(&net("batch_size: 2", ""), |_| {});
    assert!(
        err.contains("layer `data` (ImageData) needs `image_data_param { source: ... }`"),
        "{err}"
    );
    let err = error_with(&net(&johns("batch_size: 0"), ""), |_| {});
    assert!(
        err.contains("layer `data` (ImageData): batch_size must be positive"),
        "{err}"
    );
}
