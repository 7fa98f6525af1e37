//! DummyData: shapes per top or shared, legacy num/channels/height/width, `--batch`, errors.

mod data_support;

use data_support::{build_with, error_with, tops};
use netrun::layers::dummy_data::DummyDataParams;
use netrun::netdef::parse_net_str;

fn net(tops: &[&str], body: &str) -> String {
    let tops: String = tops.iter().map(|t| format!("top: \"{t}\" ")).collect();
    format!(
        "layer {{ name: \"dummy\" type: \"DummyData\" {tops} dummy_data_param {{ {body} }} }}\n"
    )
}

#[test]
fn params_parse() {
    let text = net(
        &["a", "b"],
        "data_filler { type: \"gaussian\" std: 0.5 } data_filler { type: \"constant\" value: 2 } \
         shape { dim: 2 dim: 3 } shape { dim: 5 }",
    );
    let parsed = parse_net_str("t.net", &text).unwrap();
    let p: DummyDataParams = parsed.layers[0].params("dummy_data_param").unwrap();
    assert_eq!(p.data_filler.len(), 2);
    assert_eq!(
        (p.data_filler[0].type_name.as_str(), p.data_filler[0].std),
        ("gaussian", 0.5)
    );
    assert_eq!(p.data_filler[1].value, 2.0);
    assert_eq!(p.shape[0].dim, vec![2, 3]);
    assert_eq!(p.shape[1].dim, vec![5]);
    // `variance_norm: 2` is the numeric form of AVERAGE.
    let text = net(
        &["a"],
        "data_filler { type: \"xavier\" variance_norm: 2 } shape { dim: 1 }",
    );
    let parsed = parse_net_str("t.net", &text).unwrap();
    let p: DummyDataParams = parsed.layers[0].params("dummy_data_param").unwrap();
    assert_eq!(
        p.data_filler[0].variance_norm,
        netrun::layers::filler::VarianceNorm::Average
    );

    let err = error_with(&net(&["a"], "shape { dim: 1 } chanels: 3"), |_| {});
    assert!(err.contains("did you mean `channels`?"), "{err}");
}

#[test]
fn one_shape_per_top_or_shared() {
    let g = build_with(
        &net(
            &["a", "b"],
            "shape { dim: 2 dim: 3 dim: 4 } shape { dim: 6 }",
        ),
        |_| {},
    )
    .unwrap();
    assert_eq!(tops(&g, "dummy"), vec![vec![2, 3, 4], vec![6]]);
    let g = build_with(&net(&["a", "b", "c"], "shape { dim: 7 dim: 1 }"), |_| {}).unwrap();
    assert_eq!(tops(&g, "dummy"), vec![vec![7, 1]; 3]);
}

#[test]
fn batch_replaces_dimension_zero() {
    let g = build_with(
        &net(&["a", "b"], "shape { dim: 2 dim: 3 } shape { dim: 9 }"),
        |o| o.context.batch = Some(5),
    )
    .unwrap();
    assert_eq!(tops(&g, "dummy"), vec![vec![5, 3], vec![5]]);
}

#[test]
fn legacy_dimensions() {
    let body = "num: 2 channels: 3 channels: 1 height: 4 width: 5 width: 6";
    let g = build_with(&net(&["a", "b"], body), |_| {}).unwrap();
    assert_eq!(tops(&g, "dummy"), vec![vec![2, 3, 4, 5], vec![2, 1, 4, 6]]);
    let g = build_with(&net(&["a", "b"], body), |o| o.context.batch = Some(8)).unwrap();
    assert_eq!(tops(&g, "dummy")[1], vec![8, 1, 4, 6]);
}

#[test]
fn count_mismatches_are_errors() {
    let err = error_with(
        &net(&["a", "b", "c"], "shape { dim: 1 } shape { dim: 2 }"),
        |_| {},
    );
    assert!(
        err.contains("layer `dummy` (DummyData) has 3 tops but 2 `shape` values"),
        "{err}"
    );
    assert!(
        err.contains("give 1 `shape` shared by all tops, or 3, one per top"),
        "{err}"
    );
    let err = error_with(
        &net(
            &["a", "b", "c"],
            "shape { dim: 1 } data_filler { } data_filler { }",
        ),
        |_| {},
    );
    assert!(
        err.contains("has 3 tops but 2 `data_filler` values"),
        "{err}"
    );
    let err = error_with(&net(&["a"], "num: 1 channels: 1 height: 1"), |_| {});
    assert!(err.contains("has 1 top but 0 `width` values"), "{err}");
}

#[test]
fn shape_and_legacy_together_or_neither_are_errors() {
    let err = error_with(&net(&["a"], "shape { dim: 1 } num: 1"), |_| {});
    assert!(
        err.contains("give either `shape` or `num`/`channels`/`height`/`width`, not both"),
        "{err}"
    );
    let err = error_with(&net(&["a"], ""), |_| {});
    assert!(
        err.contains("layer `dummy` (DummyData) needs `dummy_data_param { shape { dim: ... } }`"),
        "{err}"
    );
}

#[test]
fn negative_dims_and_bad_fillers_are_errors() {
    let err = error_with(&net(&["a"], "shape { dim: 2 dim: -1 }"), |_| {});
    assert!(
        err.contains("layer `dummy` (DummyData): dimension -1 is negative"),
        "{err}"
    );
    let err = error_with(
        &net(&["a"], "shape { dim: 2 } data_filler { type: \"gausian\" }"),
        |_| {},
    );
    assert!(
        err.contains("unknown filler type \"gausian\" in `data_filler`"),
        "{err}"
    );
}

#[test]
fn takes_no_bottoms() {
    let text = "layer { name: \"dummy\" type: \"DummyData\" bottom: \"x\" top: \"a\" \
                dummy_data_param { shape { dim: 1 } } }";
    let err = error_with(text, |_| {});
    assert!(
        err.contains("layer `dummy` (DummyData) takes exactly 0 bottoms, found 1"),
        "{err}"
    );
}

/// A net of the DummyData layer of `net(tops, body)`, blobs allocated.
fn run_net(tops: &[&str], body: &str, seed: u64) -> netrun::net::Net {
    let g = build_with(&net(tops, body), |_| {}).unwrap();
    netrun::net::Net::new(g, seed).unwrap()
}

#[test]
fn forward_fills_constants_once_and_refills_random_tops() {
    let mut n = run_net(
        &["c", "g", "z"],
        "data_filler { type: \"constant\" value: 2.5 } \
         data_filler { type: \"uniform\" min: -3 max: -1 } \
         data_filler { type: \"constant\" } shape { dim: 4 dim: 50 }",
        9,
    );
    n.forward().unwrap();
    assert!(n.blob("c").unwrap().data().iter().all(|&v| v == 2.5));
    assert!(n.blob("z").unwrap().data().iter().all(|&v| v == 0.0));
    let g1 = n.blob("g").unwrap().data().to_vec();
    assert!(g1.iter().all(|&v| (-3.0..-1.0).contains(&v)), "{g1:?}");
    let mean = g1.iter().map(|&v| v as f64).sum::<f64>() / g1.len() as f64;
    // U(-3, -1) over 200 values: mean -2, standard error 0.04.
    assert!((mean + 2.0).abs() < 0.2, "mean {mean}");

    // Caffe refills only non-constant tops: a change to a constant top stays.
    n.blob_mut("c").unwrap().data_mut()[0] = 7.0;
    n.forward().unwrap();
    assert_eq!(n.blob("c").unwrap().data()[0], 7.0);
    let g2 = n.blob("g").unwrap().data().to_vec();
    assert_ne!(g1, g2, "a uniform top is drawn again on every forward");

    // The draws come from the net's seeded generator.
    let mut again = run_net(
        &["c", "g", "z"],
        "data_filler { type: \"constant\" value: 2.5 } \
         data_filler { type: \"uniform\" min: -3 max: -1 } \
         data_filler { type: \"constant\" } shape { dim: 4 dim: 50 }",
        9,
    );
    again.forward().unwrap();
    assert_eq!(again.blob("g").unwrap().data(), &g1[..]);
}

#[test]
fn default_filler_is_constant_zero_and_one_filler_is_shared() {
    let mut n = run_net(&["a", "b"], "shape { dim: 3 }", 1);
    n.blob_mut("a").unwrap().data_mut().fill(4.0);
    n.forward().unwrap();
    assert_eq!(n.blob("a").unwrap().data(), &[0.0; 3]);
    let mut n = run_net(
        &["a", "b"],
        "data_filler { type: \"gaussian\" mean: 10 std: 0.1 } shape { dim: 100 }",
        1,
    );
    n.forward().unwrap();
    for top in ["a", "b"] {
        let d = n.blob(top).unwrap().data();
        let mean = d.iter().map(|&v| v as f64).sum::<f64>() / 100.0;
        assert!((mean - 10.0).abs() < 0.05, "{top}: mean {mean}");
    }
    assert_ne!(n.blob("a").unwrap().data(), n.blob("b").unwrap().data());
}
