//! `netrun generate sphereface`: the generated SphereFace-20 is the published
//! one layer for layer; every depth has the paper's layout and builds; the
//! files in nets/sphereface/ are exactly the generator's output.

mod common;

use netrun::generate::{sphereface, SphereFace, SphereFaceFile};
use netrun::graph::{BuildOptions, Graph};
use netrun::netdef::{parse_net_str, read_net_file, NetDef, Phase};
use netrun::proto::{Block, Scalar, Value};
use std::path::PathBuf;
use std::process::Command;

/// A block without source positions; numbers compared by value.
#[derive(Debug, PartialEq)]
enum Tree {
    Str(String),
    Num(f64),
    Ident(String),
    Block(Vec<(String, Tree)>),
}

fn tree(b: &Block) -> Vec<(String, Tree)> {
    b.fields
        .iter()
        .map(|f| {
            let v = match &f.value {
                Value::Scalar(Scalar::Str(s)) => Tree::Str(s.clone()),
                Value::Scalar(Scalar::Number(n)) => Tree::Num(n.parse().unwrap()),
                Value::Scalar(Scalar::Ident(i)) => Tree::Ident(i.clone()),
                Value::Block(b) => Tree::Block(tree(b)),
            };
            (f.name.clone(), v)
        })
        .collect()
}

/// Asserts two nets are the same layer for layer: names, types, bottoms, tops,
/// every generic field and every parameter block.
fn assert_same_layers(published: &NetDef, generated: &NetDef) {
    assert_eq!(published.name, generated.name);
    let names = |n: &NetDef| n.layers.iter().map(|l| l.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(published), names(generated));
    for (p, g) in published.layers.iter().zip(&generated.layers) {
        assert_eq!(p.type_name, g.type_name, "{}", p.name);
        assert_eq!(p.bottom, g.bottom, "{}", p.name);
        assert_eq!(p.top, g.top, "{}", p.name);
        assert_eq!(p.param, g.param, "{}", p.name);
        assert_eq!(p.loss_weight, g.loss_weight, "{}", p.name);
        assert_eq!(p.include, g.include, "{}", p.name);
        assert_eq!(p.exclude, g.exclude, "{}", p.name);
        assert_eq!(tree(&p.block), tree(&g.block), "{}", p.name);
    }
    let inputs = |n: &NetDef| {
        n.inputs
            .iter()
            .map(|i| (i.name.clone(), i.shape.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(inputs(published), inputs(generated));
}

/// The `netrun check` table of a net, data given as 3×112×96 faces.
fn check_table(net: &NetDef, phase: Phase) -> String {
    let mut opts = BuildOptions::for_phase(phase);
    opts.context.input_shapes = [("data".to_string(), vec![3, 112, 96])]
        .into_iter()
        .collect();
    let graph = Graph::build(net, &opts).unwrap_or_else(|e| panic!("{}: {e}", net.name));
    netrun::summary::render(&graph)
}

fn generated(depth: u32, file: SphereFaceFile) -> NetDef {
    let spec = SphereFace::new(depth, file);
    parse_net_str("generated.prototxt", &sphereface(&spec).unwrap()).unwrap()
}

#[test]
fn generated_sphereface20_is_the_published_train_net() {
    let published = read_net_file(&common::shared(
        "configs/sphereface/sphereface_model.prototxt",
    ))
    .unwrap();
    let spec = SphereFace {
        source: "data/CASIA-WebFace-112X96.txt".into(),
        root_folder: String::new(),
        ..SphereFace::new(20, SphereFaceFile::Train)
    };
    let text = sphereface(&spec).unwrap();
    let ours = parse_net_str("generated.prototxt", &text).unwrap();
    assert_eq!(published.layers.len(), 1 + 20 + 20 + 8 + 1 + 2);
    assert_same_layers(&published, &ours);
    assert_eq!(
        check_table(&published, Phase::Train),
        check_table(&ours, Phase::Train)
    );
}

#[test]
fn generated_sphereface20_deploy_is_the_published_deploy_net() {
    let published = read_net_file(&common::shared(
        "configs/sphereface/sphereface_deploy.prototxt",
    ))
    .unwrap();
    let ours = generated(20, SphereFaceFile::Deploy);
    assert_same_layers(&published, &ours);
    assert_eq!(
        check_table(&published, Phase::Test),
        check_table(&ours, Phase::Test)
    );
}

#[test]
fn the_default_train_net_differs_from_the_published_only_in_its_data_paths() {
    let published = read_net_file(&common::shared(
        "configs/sphereface/sphereface_model.prototxt",
    ))
    .unwrap();
    let ours = generated(20, SphereFaceFile::Train);
    let data = |n: &NetDef| tree(&n.layers[0].block);
    let mut expected = data(&published);
    let Some((_, Tree::Block(p))) = expected.iter_mut().find(|(n, _)| n == "image_data_param")
    else {
        panic!("no image_data_param")
    };
    p[0].1 = Tree::Str("data/casia_list.txt".into());
    p.insert(
        1,
        (
            "root_folder".into(),
            Tree::Str("data/CASIA-WebFace-112X96/".into()),
        ),
    );
    assert_eq!(data(&ours), expected);
    for (p, g) in published.layers.iter().zip(&ours.layers).skip(1) {
        assert_eq!(tree(&p.block), tree(&g.block), "{}", p.name);
    }
}

/// Stored learnable values, counted from the paper's layout: per 3×3 conv
/// 9·cin·cout weights + cout biases, a PReLU slope per channel, fc5 from
/// 512×7×6, fc6 512 per class (no bias).
fn expected_params(units: [usize; 4], classes: Option<usize>) -> usize {
    let widths = [64, 128, 256, 512];
    let mut cin = 3;
    let mut total = 0;
    for (u, w) in units.into_iter().zip(widths) {
        total += 9 * cin * w + w + w;
        total += 2 * u * (9 * w * w + w + w);
        cin = w;
    }
    total += 512 * 7 * 6 * 512 + 512;
    total + classes.map_or(0, |c| 512 * c)
}

#[test]
fn every_depth_has_the_papers_units_and_builds() {
    let table = [
        (4, [0, 0, 0, 0]),
        (10, [0, 1, 2, 0]),
        (20, [1, 2, 4, 1]),
        (36, [2, 4, 8, 2]),
        (64, [3, 8, 16, 3]),
    ];
    for (depth, units) in table {
        let net = generated(depth, SphereFaceFile::Train);
        assert_eq!(net.name, format!("SpherefaceNet-{depth}"));
        let of_type = |t: &str| net.layers.iter().filter(|l| l.type_name == t).count();
        assert_eq!(of_type("Convolution"), depth as usize, "depth {depth}");
        assert_eq!(of_type("PReLU"), depth as usize, "depth {depth}");
        assert_eq!(of_type("Eltwise"), units.iter().sum::<usize>());
        assert_eq!(of_type("MarginInnerProduct"), 1);
        for (s, u) in units.iter().enumerate() {
            let prefix = format!("conv{}_", s + 1);
            let convs = net
                .layers
                .iter()
                .filter(|l| l.name.starts_with(&prefix))
                .count();
            assert_eq!(convs, 1 + 2 * u, "depth {depth} stage {}", s + 1);
        }
        let mut opts = BuildOptions::for_phase(Phase::Train);
        opts.context.batch = Some(2);
        opts.context.input_shapes = [("data".to_string(), vec![3, 112, 96])]
            .into_iter()
            .collect();
        let graph = Graph::build(&net, &opts).unwrap_or_else(|e| panic!("depth {depth}: {e}"));
        let fc5 = &graph.nodes[graph.node("fc5").unwrap()];
        assert_eq!(graph.blob_shape(fc5.bottoms[0]), &[2, 512, 7, 6]);
        assert_eq!(graph.param_count(), expected_params(units, Some(10572)));

        let deploy = generated(depth, SphereFaceFile::Deploy);
        let graph = Graph::build(&deploy, &BuildOptions::for_phase(Phase::Test))
            .unwrap_or_else(|e| panic!("depth {depth} deploy: {e}"));
        assert_eq!(graph.param_count(), expected_params(units, None));
        let out = graph
            .outputs
            .iter()
            .map(|&b| graph.blob_shape(b))
            .collect::<Vec<_>>();
        assert_eq!(out, vec![&[1usize, 512][..]]);
    }
}

#[test]
fn classes_and_bad_depths() {
    let spec = SphereFace {
        classes: 5,
        ..SphereFace::new(4, SphereFaceFile::Train)
    };
    let text = sphereface(&spec).unwrap();
    assert!(text.starts_with("# Generated by `netrun generate sphereface --depth 4 --classes 5`"));
    let net = parse_net_str("g.prototxt", &text).unwrap();
    let fc6 = net.layers.iter().find(|l| l.name == "fc6").unwrap();
    let Some((_, Tree::Block(p))) = tree(&fc6.block)
        .into_iter()
        .find(|(n, _)| n == "margin_inner_product_param")
    else {
        panic!("no margin_inner_product_param")
    };
    assert_eq!(p[0], ("num_output".to_string(), Tree::Num(5.0)));

    let err = sphereface(&SphereFace::new(18, SphereFaceFile::Train)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "SphereFace has no depth 18; the paper's depths are 4, 10, 20, 36 and 64"
    );
}

fn nets_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("nets/sphereface")
}

#[test]
fn nets_sphereface_files_are_the_generators_output() {
    let mut expected = Vec::new();
    for depth in [4, 10, 20, 36, 64] {
        for (file, suffix) in [
            (SphereFaceFile::Train, "train"),
            (SphereFaceFile::Deploy, "deploy"),
            (SphereFaceFile::Solver, "solver"),
        ] {
            let name = format!("sphereface{depth}_{suffix}.prototxt");
            let committed = std::fs::read_to_string(nets_dir().join(&name))
                .unwrap_or_else(|e| panic!("nets/sphereface/{name}: {e}"));
            let ours = sphereface(&SphereFace::new(depth, file)).unwrap();
            assert!(
                committed == ours,
                "nets/sphereface/{name} differs from `{}`; regenerate it (see nets/sphereface/README.md)",
                SphereFace::new(depth, file).command()
            );
            expected.push(name);
        }
    }
    let mut present: Vec<String> = std::fs::read_dir(nets_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".prototxt"))
        .collect();
    present.sort();
    expected.sort();
    assert_eq!(present, expected);
}

#[test]
fn the_command_writes_the_file_and_refuses_a_bad_depth() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sf10_deploy.prototxt");
    let status = Command::new(env!("CARGO_BIN_EXE_netrun"))
        .args(["generate", "sphereface", "--depth", "10", "--deploy", "-o"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        sphereface(&SphereFace::new(10, SphereFaceFile::Deploy)).unwrap()
    );
    let run = Command::new(env!("CARGO_BIN_EXE_netrun"))
        .args(["generate", "sphereface", "--depth", "12"])
        .output()
        .unwrap();
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("SphereFace has no depth 12"));
}
