//! Solver files: parsing, Caffe's defaults, validation, net paths, the learning-rate schedule.

mod common;

use common::shared;
use netrun::netdef::Phase;
use netrun::proto::parse_str;
use netrun::solverdef::{
    describe_schedule, learning_rate, looks_like_solver, parse_solver_str, read_solver_file_in,
    LrPolicy, NetOrigin, PathBase, SnapshotFormat, SolverDef, SolverMode, SolverParams, SolverType,
    LR_POLICIES, SOLVER_TYPES,
};
use netrun::Diagnostic;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The fields every valid solver below needs, with an inline net so no file is read.
const BASE: &str =
    "net_param { name: \"n\" }\nbase_lr: 0.01\nmax_iter: 100\nlr_policy: \"fixed\"\n";

fn nowhere() -> PathBuf {
    PathBuf::from("/nonexistent-netrun-cwd")
}

fn solver(text: &str) -> SolverDef {
    match parse_solver_str("solver.prototxt", text, &nowhere()) {
        Ok(s) => s,
        Err(e) => panic!("expected the solver to parse:\n{text}\n{e}"),
    }
}

fn errors(text: &str) -> Vec<Diagnostic> {
    match parse_solver_str("solver.prototxt", text, &nowhere()) {
        Ok(_) => panic!("expected errors for:\n{text}"),
        Err(e) => e.diagnostics().to_vec(),
    }
}

fn line_col(d: &Diagnostic) -> (usize, usize) {
    let (file, span) = d.location.as_ref().expect("diagnostic has a location");
    file.line_col(span.start)
}

/// The one diagnostic whose message contains `needle`, with its line and column.
fn find<'a>(diags: &'a [Diagnostic], needle: &str) -> (&'a Diagnostic, (usize, usize)) {
    let found: Vec<&Diagnostic> = diags
        .iter()
        .filter(|d| d.message.contains(needle))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected one error containing `{needle}`, got: {:#?}",
        diags.iter().map(|d| &d.message).collect::<Vec<_>>()
    );
    (found[0], line_col(found[0]))
}

fn help(d: &Diagnostic) -> &str {
    d.help.as_deref().unwrap_or("")
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * b.abs().max(1e-12)
}

// ---------------------------------------------------------------- shared configs

#[test]
fn caffe_face_mnist_solver_parses_and_resolves_from_the_repo_root() {
    let cwd = shared("configs/caffe-face");
    let s = read_solver_file_in(&cwd.join("mnist_example/mnist_solver.prototxt"), &cwd).unwrap();
    let p = &s.params;
    assert_eq!(
        p.net.as_deref(),
        Some("mnist_example/mnist_train_test.prototxt")
    );
    assert_eq!(p.test_iter, vec![100]);
    assert_eq!(p.test_interval, 1000);
    assert_eq!((p.base_lr, p.momentum, p.weight_decay), (0.01, 0.9, 0.0005));
    assert_eq!(s.policy, LrPolicy::MultiStep);
    assert_eq!(p.gamma, 0.8);
    assert_eq!(p.stepvalue, vec![5000, 8000, 10000]);
    assert_eq!((p.display, p.max_iter, p.snapshot), (100, 10000, 1000));
    assert_eq!(
        p.snapshot_prefix,
        "mnist_example/mnist_snapshot/mnist_train"
    );
    assert_eq!(p.solver_mode, SolverMode::Gpu);
    let NetOrigin::File(r) = &s.train_net.origin else {
        panic!("expected a net file")
    };
    assert_eq!(r.base, PathBase::WorkingDir);
    assert!(r
        .path
        .ends_with("caffe-face/mnist_example/mnist_train_test.prototxt"));
    // `net` with one test_iter: the TEST phase of the same file is the test net.
    assert_eq!(s.test_nets.len(), 1);
    assert_eq!(s.test_nets[0].phase, Phase::Test);
    assert_eq!(s.test_nets[0].test_iter, Some(100));
    let NetOrigin::File(t) = &s.test_nets[0].origin else {
        panic!("expected a net file")
    };
    assert_eq!(t.path, r.path);
    let train = s.load_net(&s.train_net).unwrap();
    assert_eq!(train.state.phase, Phase::Train);
    assert_eq!(train.net.name, "LeNet++");
    assert_eq!(
        s.load_net(&s.test_nets[0]).unwrap().state.phase,
        Phase::Test
    );
}

#[test]
fn caffe_face_face_solver_parses() {
    let cwd = shared("configs/caffe-face");
    let s = read_solver_file_in(&cwd.join("face_example/face_solver.prototxt"), &cwd).unwrap();
    assert_eq!(s.params.base_lr, 0.1);
    assert_eq!(s.params.gamma, 0.1);
    assert_eq!(s.params.stepvalue, vec![16000, 24000, 28000]);
    assert_eq!(s.params.test_interval, 2000);
    assert_eq!(s.test_nets.len(), 1);
    assert!(s.load_net(&s.train_net).is_ok());
}

/// Copies `shared/<from>` to `<dir>/<to>`, making folders.
fn lay_out(dir: &Path, from: &str, to: &str) {
    let dest = dir.join(to);
    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
    std::fs::copy(shared(from), dest).unwrap();
}

#[test]
fn siamese_solver_parses_with_its_net_where_it_names_it() {
    let cwd = tempfile::tempdir().unwrap();
    lay_out(
        cwd.path(),
        "configs/siamese/mnist_siamese_train_test.prototxt",
        "examples/siamese/mnist_siamese_train_test.prototxt",
    );
    let s = read_solver_file_in(
        &shared("configs/siamese/mnist_siamese_solver.prototxt"),
        cwd.path(),
    )
    .unwrap();
    assert_eq!(s.policy, LrPolicy::Inv);
    assert_eq!((s.params.gamma, s.params.power), (0.0001, 0.75));
    assert_eq!(s.params.weight_decay, 0.0);
    assert_eq!(s.params.snapshot, 5000);
    assert_eq!(s.test_nets.len(), 1);
    let NetOrigin::File(r) = &s.train_net.origin else {
        panic!("expected a net file")
    };
    assert_eq!(r.base, PathBase::WorkingDir);
}

#[test]
fn sphereface_solver_parses_without_test_net() {
    let cwd = tempfile::tempdir().unwrap();
    lay_out(
        cwd.path(),
        "configs/sphereface/sphereface_model.prototxt",
        "code/sphereface_model.prototxt",
    );
    let s = read_solver_file_in(
        &shared("configs/sphereface/sphereface_solver.prototxt"),
        cwd.path(),
    )
    .unwrap();
    // test_iter, test_interval and snapshot are commented out.
    assert!(s.test_nets.is_empty());
    assert_eq!((s.params.test_interval, s.params.snapshot), (0, 0));
    assert!(s.params.snapshot_after_train);
    assert_eq!(s.params.snapshot_prefix, "result/sphereface_model");
    assert_eq!(s.params.stepvalue, vec![16000, 24000, 28000]);
    assert_eq!(
        s.load_net(&s.train_net).unwrap().net.name,
        "SpherefaceNet-20"
    );
}

#[test]
fn sphereface_solver_from_elsewhere_names_every_path_tried() {
    let cwd = tempfile::tempdir().unwrap();
    let file = shared("configs/sphereface/sphereface_solver.prototxt");
    let e = read_solver_file_in(&file, cwd.path()).unwrap_err();
    let (d, at) = find(e.diagnostics(), "not found");
    assert_eq!(at, (1, 6));
    let solver_dir = file.parent().unwrap().canonicalize().unwrap();
    assert!(d
        .message
        .starts_with("net file `code/sphereface_model.prototxt` not found; tried: "));
    assert!(d.message.contains(
        &solver_dir
            .join("code/sphereface_model.prototxt")
            .display()
            .to_string()
    ));
    assert!(d.message.contains(
        &cwd.path()
            .join("code/sphereface_model.prototxt")
            .display()
            .to_string()
    ));
    assert_eq!(
        help(d),
        "`sphereface_model.prototxt` is beside the solver: \
         write `net: \"sphereface_model.prototxt\"`"
    );
}

#[test]
fn mnist_solver_from_its_own_folder_points_to_the_repo_root() {
    let cwd = tempfile::tempdir().unwrap();
    let file = shared("configs/caffe-face/mnist_example/mnist_solver.prototxt");
    let e = read_solver_file_in(&file, cwd.path()).unwrap_err();
    let (d, _) = find(e.diagnostics(), "not found");
    let root = shared("configs/caffe-face").canonicalize().unwrap();
    assert!(
        help(d).contains(&format!("it exists relative to `{}`", root.display())),
        "{}",
        help(d)
    );
}

// ---------------------------------------------------------------- defaults and values

#[test]
fn caffe_defaults() {
    let p = SolverParams::default();
    assert_eq!(p.type_name, "SGD");
    assert_eq!(p.iter_size, 1);
    assert_eq!(p.average_loss, 1);
    assert_eq!(p.regularization_type, "L2");
    assert_eq!(p.random_seed, -1);
    assert!(p.test_initialization);
    assert!(!p.test_compute_loss);
    assert_eq!(p.clip_gradients, -1.0);
    assert_eq!(p.snapshot_format, None);
    assert_eq!(p.solver_mode, SolverMode::Gpu);
    assert_eq!((p.delta, p.momentum2, p.rms_decay), (1e-8, 0.999, 0.99));
    assert!(p.snapshot_after_train && p.layer_wise_reduce);
    // The same defaults come out of a file that sets none of them.
    let s = solver(BASE);
    assert_eq!(s.params.type_name, "SGD");
    assert_eq!(s.params.iter_size, 1);
    assert_eq!(s.params.regularization_type, "L2");
    assert_eq!(s.params.random_seed, -1);
    assert!(s.params.test_initialization);
    assert!(s.test_nets.is_empty());
    // Caffe's default snapshot prefix is the solver path without its extension.
    assert_eq!(s.snapshot_prefix(), "solver");
}

#[test]
fn non_default_values_are_read() {
    let s = solver(&format!(
        "{BASE}type: \"Adam\"\nmomentum: 0.9\nmomentum2: 0.99\ndelta: 1e-6\niter_size: 4\n\
         average_loss: 20\nclip_gradients: 35\nrandom_seed: 1701\nsnapshot_format: HDF5\n\
         solver_mode: CPU\ndevice_id: 2\nregularization_type: \"L1\"\ndebug_info: true\n\
         snapshot_after_train: false\nsnapshot_diff: true\ntest_compute_loss: true\n\
         test_initialization: false\nlayer_wise_reduce: false\nweights: \"a.caffemodel\"\n\
         weights: \"b.caffemodel\"\nsnapshot_prefix: \"out/x\"\n"
    ));
    let p = &s.params;
    assert_eq!(p.type_name, "Adam");
    assert_eq!((p.momentum, p.momentum2, p.delta), (0.9, 0.99, 1e-6));
    assert_eq!((p.iter_size, p.average_loss), (4, 20));
    assert_eq!(p.clip_gradients, 35.0);
    assert_eq!(p.random_seed, 1701);
    assert_eq!(p.snapshot_format, Some(SnapshotFormat::Hdf5));
    assert_eq!((p.solver_mode, p.device_id), (SolverMode::Cpu, 2));
    assert_eq!(p.regularization_type, "L1");
    assert!(p.debug_info && p.snapshot_diff && p.test_compute_loss);
    assert!(!p.snapshot_after_train && !p.test_initialization && !p.layer_wise_reduce);
    assert_eq!(p.weights, vec!["a.caffemodel", "b.caffemodel"]);
    assert_eq!(s.snapshot_prefix(), "out/x");
}

#[test]
fn numeric_enums_are_accepted() {
    let s = solver(&format!("{BASE}snapshot_format: 0\nsolver_mode: 0\n"));
    assert_eq!(s.params.snapshot_format, Some(SnapshotFormat::Hdf5));
    assert_eq!(s.params.solver_mode, SolverMode::Cpu);
}

#[test]
fn all_six_types_parse() {
    for t in ["SGD", "Nesterov", "AdaGrad", "RMSProp", "AdaDelta", "Adam"] {
        let s = solver(&format!("{BASE}type: \"{t}\"\n"));
        assert_eq!(s.params.type_name, t);
    }
    assert_eq!(SOLVER_TYPES.len(), 6);
}

/// Each policy with exactly the parameters its formula uses.
const POLICIES: &[(&str, &str)] = &[
    ("fixed", ""),
    ("step", "gamma: 0.1 stepsize: 10"),
    ("exp", "gamma: 0.99"),
    ("inv", "gamma: 0.0001 power: 0.75"),
    ("multistep", "gamma: 0.1 stepvalue: 10 stepvalue: 20"),
    ("poly", "power: 2"),
    ("sigmoid", "gamma: -0.1 stepsize: 50"),
];

#[test]
fn all_seven_lr_policies_parse() {
    for (name, extra) in POLICIES {
        let text = BASE.replace(
            "lr_policy: \"fixed\"",
            &format!("lr_policy: \"{name}\" {extra}"),
        );
        let s = solver(&text);
        assert_eq!(s.policy.name(), *name);
        assert_eq!(LrPolicy::from_name(name), Some(s.policy));
    }
    assert_eq!(LR_POLICIES.len(), 7);
}

#[test]
fn deprecated_solver_type_sets_type() {
    let s = solver(&format!("{BASE}solver_type: 5\n"));
    assert_eq!(s.params.type_name, "Adam");
    assert_eq!(s.params.solver_type, Some(SolverType::Adam));
    let s = solver(&format!("{BASE}solver_type: NESTEROV\n"));
    assert_eq!(s.params.type_name, "Nesterov");
    let s = solver(&format!("{BASE}solver_type: 2\n"));
    assert_eq!(s.params.type_name, "AdaGrad");
    let d = errors(&format!("{BASE}solver_type: 6\n"));
    let (d, at) = find(&d, "out of range");
    assert_eq!(at, (5, 14));
    assert!(help(d).contains("5 = ADAM"), "{}", help(d));
}

#[test]
fn solver_type_and_type_together_is_an_error() {
    let d = errors(&format!("{BASE}type: \"SGD\"\nsolver_type: ADAM\n"));
    let (d, at) = find(&d, "both `solver_type` (deprecated) and `type`");
    assert_eq!(at, (6, 14));
    assert_eq!(help(d), "keep `type: \"SGD\"` only");
}

#[test]
fn train_and_test_state_are_merged_like_caffe() {
    let s = solver(
        "net_param { name: \"n\" state { level: 3 stage: \"own\" } }\n\
         base_lr: 0.01 max_iter: 10 lr_policy: \"fixed\"\n\
         train_state { stage: \"train-stage\" }\n\
         test_iter: 1 test_iter: 2 test_interval: 5\n\
         test_state { stage: \"a\" } test_state { phase: TRAIN level: 1 }\n",
    );
    let train = s.load_net(&s.train_net).unwrap();
    // Phase first, then the net's own state, then train_state; a block without `phase` keeps it.
    assert_eq!(train.state.phase, Phase::Train);
    assert_eq!(train.state.level, 3);
    assert_eq!(train.state.stage, vec!["own", "train-stage"]);
    assert_eq!(s.test_nets.len(), 2);
    let t0 = s.load_net(&s.test_nets[0]).unwrap();
    assert_eq!((t0.state.phase, t0.state.level), (Phase::Test, 3));
    assert_eq!(t0.state.stage, vec!["own", "a"]);
    let t1 = s.load_net(&s.test_nets[1]).unwrap();
    assert_eq!((t1.state.phase, t1.state.level), (Phase::Train, 1));
    assert_eq!(s.test_nets[1].test_iter, Some(2));
}

#[test]
fn explicit_test_nets_come_in_caffes_order() {
    let dir = tempfile::tempdir().unwrap();
    for f in ["train.prototxt", "t1.prototxt", "t2.prototxt"] {
        std::fs::write(dir.path().join(f), "name: \"x\"\n").unwrap();
    }
    std::fs::write(
        dir.path().join("solver.prototxt"),
        "train_net: \"train.prototxt\"\ntest_net: \"t1.prototxt\"\ntest_net: \"t2.prototxt\"\n\
         test_net_param { name: \"inline\" }\ntest_iter: 7 test_iter: 8 test_iter: 9\n\
         test_interval: 10\nbase_lr: 0.1 max_iter: 10 lr_policy: \"fixed\"\n",
    )
    .unwrap();
    let s = read_solver_file_in(&dir.path().join("solver.prototxt"), &nowhere()).unwrap();
    let names: Vec<String> = s
        .test_nets
        .iter()
        .map(|t| match &t.origin {
            NetOrigin::File(r) => r.given.clone(),
            NetOrigin::Inline { field, .. } => field.to_string(),
        })
        .collect();
    assert_eq!(names, vec!["test_net_param", "t1.prototxt", "t2.prototxt"]);
    let iters: Vec<Option<i32>> = s.test_nets.iter().map(|t| t.test_iter).collect();
    assert_eq!(iters, vec![Some(7), Some(8), Some(9)]);
    assert_eq!(s.load_net(&s.test_nets[0]).unwrap().net.name, "inline");
}

// ---------------------------------------------------------------- field errors

#[test]
fn unknown_field_gets_did_you_mean() {
    let d = errors(&format!("{BASE}momentun: 0.9\n"));
    let (d, at) = find(&d, "unknown solver field `momentun`");
    assert_eq!(at, (5, 1));
    assert_eq!(help(d), "did you mean `momentum`?");
}

#[test]
fn net_fields_in_a_solver_are_pointed_to_net_param() {
    let d = errors(&format!("{BASE}layer {{ name: \"x\" }}\n"));
    let (d, _) = find(&d, "unknown solver field `layer`");
    assert!(
        help(d).contains("inside `net_param { ... }`"),
        "{}",
        help(d)
    );
}

#[test]
fn unknown_type_policy_and_regularization_are_all_reported() {
    let text = "net_param { name: \"n\" }\nbase_lr: 0.01\nmax_iter: 100\n\
                lr_policy: \"mutlistep\"\ntype: \"sgd\"\nregularization_type: \"l2\"\n";
    let d = errors(text);
    assert_eq!(d.len(), 3);
    let (p, at) = find(&d, "unknown lr_policy \"mutlistep\"");
    assert_eq!((at, help(p)), ((4, 12), "did you mean `multistep`?"));
    let (t, at) = find(&d, "unknown solver type \"sgd\"");
    assert_eq!((at, help(t)), ((5, 7), "did you mean `SGD`?"));
    let (r, at) = find(&d, "unknown regularization_type \"l2\"");
    assert_eq!((at, help(r)), ((6, 22), "did you mean `L2`?"));
    let d = errors(&BASE.replace("\"fixed\"", "\"cosine\""));
    let (p, _) = find(&d, "unknown lr_policy");
    assert!(help(p)
        .contains("\"fixed\", \"step\", \"exp\", \"inv\", \"multistep\", \"poly\", \"sigmoid\""));
}

#[test]
fn unquoted_string_gets_a_hint() {
    let d = errors(&BASE.replace("\"fixed\"", "fixed"));
    let (d, at) = find(&d, "expects a quoted string");
    assert_eq!(at, (4, 12));
    assert_eq!(help(d), "strings are quoted: `lr_policy: \"fixed\"`");
}

#[test]
fn inline_net_written_as_a_string_is_an_error() {
    let d = errors("net_param: \"n.prototxt\"\nbase_lr: 0.01 max_iter: 1 lr_policy: \"fixed\"\n");
    let (d, at) = find(&d, "`net_param` is an inline net block, found string");
    assert_eq!(at, (1, 12));
    assert!(help(d).contains("name a file with `net`"), "{}", help(d));
}

// ---------------------------------------------------------------- semantic errors

#[test]
fn missing_required_fields_are_all_reported_at_the_first_field() {
    let d = errors("# a solver\ndisplay: 10\n");
    assert_eq!(d.len(), 4);
    for needle in [
        "the solver names no train net",
        "the solver has no `lr_policy`",
        "the solver has no `base_lr`",
        "the solver has no `max_iter`",
    ] {
        let (_, at) = find(&d, needle);
        assert_eq!(at, (2, 1), "{needle}");
    }
    let (lr, _) = find(&d, "no `lr_policy`");
    assert!(help(lr).contains("lr_policy: \"fixed\""));
}

#[test]
fn two_train_nets_are_an_error() {
    let d = errors(&format!("{BASE}train_net_param {{ name: \"m\" }}\n"));
    let (d, at) = find(
        &d,
        "`net_param` and `train_net_param` both name the train net",
    );
    assert_eq!(at, (5, 1));
    assert_eq!(
        help(d),
        "keep exactly one of net, net_param, train_net, train_net_param"
    );
}

#[test]
fn step_needs_stepsize_and_gamma() {
    let d = errors(&BASE.replace("\"fixed\"", "\"step\""));
    assert_eq!(d.len(), 2);
    let (s, at) = find(&d, "lr_policy \"step\" needs `stepsize`");
    assert_eq!(at, (4, 12));
    assert!(help(s).contains("base_lr · gamma^floor(iter / stepsize)"));
    let (_, at) = find(&d, "lr_policy \"step\" needs `gamma`");
    assert_eq!(at, (4, 12));
    let d = errors(&BASE.replace("\"fixed\"", "\"step\" gamma: 0.1 stepsize: 0"));
    let (_, at) = find(&d, "lr_policy \"step\" needs stepsize > 0, found 0");
    assert_eq!(at, (4, 40));
}

#[test]
fn multistep_needs_increasing_stepvalues() {
    let d = errors(&BASE.replace("\"fixed\"", "\"multistep\" gamma: 0.1"));
    let (s, at) = find(&d, "lr_policy \"multistep\" needs `stepvalue`");
    assert_eq!(at, (4, 12));
    assert!(help(s).contains("stepvalue: N"));
    let text = BASE.replace(
        "\"fixed\"",
        "\"multistep\" gamma: 0.1\nstepvalue: 100\nstepvalue: 50\nstepvalue: 50\n",
    );
    let d = errors(&text);
    assert_eq!(d.len(), 2);
    let (s, at) = find(
        &d,
        "stepvalue 50 does not come after the previous stepvalue 100",
    );
    assert_eq!(at, (6, 12));
    assert!(help(s).starts_with("stepvalues must increase"));
    let (_, at) = find(
        &d,
        "stepvalue 50 does not come after the previous stepvalue 50",
    );
    assert_eq!(at, (7, 12));
}

#[test]
fn inv_poly_sigmoid_exp_need_their_parameters() {
    let cases: &[(&str, &[&str])] = &[
        ("inv", &["gamma", "power"]),
        ("poly", &["power"]),
        ("sigmoid", &["gamma", "stepsize"]),
        ("exp", &["gamma"]),
    ];
    for (policy, fields) in cases {
        let d = errors(&BASE.replace("\"fixed\"", &format!("\"{policy}\"")));
        assert_eq!(d.len(), fields.len(), "{policy}: {d:?}");
        for f in *fields {
            let (_, at) = find(&d, &format!("lr_policy \"{policy}\" needs `{f}`"));
            assert_eq!(at, (4, 12));
        }
    }
}

#[test]
fn negative_gamma_is_rejected_except_for_sigmoid() {
    let d = errors(&BASE.replace("\"fixed\"", "\"exp\"\ngamma: -0.5"));
    let (_, at) = find(&d, "lr_policy \"exp\" needs gamma >= 0, found -0.5");
    assert_eq!(at, (5, 8));
    solver(&BASE.replace("\"fixed\"", "\"sigmoid\" gamma: -0.5 stepsize: 10"));
}

#[test]
fn poly_needs_positive_max_iter() {
    let d = errors(
        &BASE
            .replace("max_iter: 100", "max_iter: 0")
            .replace("\"fixed\"", "\"poly\" power: 1"),
    );
    let (_, at) = find(&d, "lr_policy \"poly\" needs max_iter > 0, found 0");
    assert_eq!(at, (3, 11));
}

#[test]
fn invalid_numbers_are_all_reported() {
    let text = format!(
        "{}\naverage_loss: 0\niter_size: 0\nmomentum: 1\nweight_decay: -0.1\n",
        BASE.replace("base_lr: 0.01", "base_lr: -0.01")
    );
    let d = errors(&text);
    assert_eq!(d.len(), 5);
    let (b, at) = find(&d, "base_lr is negative (-0.01)");
    assert_eq!(at, (2, 10));
    assert!(help(b).contains("positive"));
    assert_eq!(
        find(&d, "average_loss must be at least 1, found 0").1,
        (6, 15)
    );
    assert_eq!(find(&d, "iter_size must be at least 1, found 0").1, (7, 12));
    assert_eq!(find(&d, "momentum must lie in [0, 1), found 1").1, (8, 11));
    assert_eq!(find(&d, "weight_decay is negative (-0.1)").1, (9, 15));
}

#[test]
fn adaptive_solvers_reject_momentum() {
    let d = errors(&format!("{BASE}type: \"AdaGrad\"\nmomentum: 0.9\n"));
    let (_, at) = find(&d, "momentum cannot be used with AdaGrad");
    assert_eq!(at, (6, 11));
    let d = errors(&format!("{BASE}type: \"RMSProp\"\nrms_decay: 1.5\n"));
    assert_eq!(
        find(&d, "rms_decay must lie in [0, 1), found 1.5").1,
        (6, 12)
    );
    let d = errors(&format!("{BASE}type: \"Adam\"\nmomentum2: 1\n"));
    assert_eq!(find(&d, "momentum2 must lie in [0, 1), found 1").1, (6, 12));
}

#[test]
fn test_iter_count_must_match_explicit_test_nets() {
    let text = "train_net_param { name: \"n\" }\ntest_net_param { name: \"a\" }\n\
                test_net_param { name: \"b\" }\ntest_iter: 10\ntest_interval: 100\n\
                base_lr: 0.1 max_iter: 10 lr_policy: \"fixed\"\n";
    let d = errors(text);
    let (d, at) = find(
        &d,
        "2 test nets (test_net / test_net_param) but 1 `test_iter` value",
    );
    assert_eq!(at, (4, 12));
    assert!(help(d).contains("one `test_iter` per test net"));
    // With a generic `net`, extra test_iter values are more instances of it: not an error.
    let s = solver(&format!(
        "{BASE}test_net_param {{ name: \"a\" }}\ntest_iter: 1 test_iter: 2\ntest_interval: 5\n"
    ));
    assert_eq!(s.test_nets.len(), 2);
    assert!(matches!(
        s.test_nets[1].origin,
        NetOrigin::Inline {
            field: "net_param",
            ..
        }
    ));
}

#[test]
fn test_state_count_must_match_test_nets() {
    let d = errors(&format!(
        "{BASE}test_iter: 1\ntest_interval: 5\n\
         test_state {{ stage: \"a\" }}\ntest_state {{ stage: \"b\" }}\n"
    ));
    let (_, at) = find(&d, "2 `test_state` blocks for 1 test net(s)");
    assert_eq!(at, (7, 1));
}

#[test]
fn test_interval_without_test_iter_is_an_error() {
    let d = errors(&format!("{BASE}test_interval: 500\n"));
    let (d, at) = find(
        &d,
        "test_interval is 500 but no test net runs (no `test_iter`)",
    );
    assert_eq!(at, (5, 16));
    assert!(help(d).contains("add `test_iter: N`"));
}

#[test]
fn test_iter_without_test_interval_is_an_error() {
    let d = errors(&format!("{BASE}test_iter: 100\n"));
    let (d, at) = find(&d, "1 test net(s) but no `test_interval`");
    assert_eq!(at, (5, 12));
    assert!(help(d).contains("test_interval > 0"));
    let d = errors(&format!("{BASE}test_iter: 0\ntest_interval: 10\n"));
    assert_eq!(find(&d, "test_iter must be at least 1, found 0").1, (5, 12));
}

// ---------------------------------------------------------------- net paths

fn write(dir: &Path, rel: &str, text: &str) -> PathBuf {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, text).unwrap();
    p
}

const TAIL: &str = "base_lr: 0.1\nmax_iter: 10\nlr_policy: \"fixed\"\n";

#[test]
fn net_path_relative_to_the_solver_file_wins() {
    let root = tempfile::tempdir().unwrap();
    let cwd = root.path().join("cwd");
    write(root.path(), "solvers/net.prototxt", "name: \"beside\"\n");
    write(&cwd, "net.prototxt", "name: \"in-cwd\"\n");
    let file = write(
        root.path(),
        "solvers/s.prototxt",
        &format!("net: \"net.prototxt\"\n{TAIL}"),
    );
    let s = read_solver_file_in(&file, &cwd).unwrap();
    let NetOrigin::File(r) = &s.train_net.origin else {
        panic!("expected a file")
    };
    assert_eq!(r.base, PathBase::SolverDir);
    assert_eq!(r.path, root.path().join("solvers/net.prototxt"));
    assert_eq!(
        r.tried,
        vec![
            root.path().join("solvers/net.prototxt"),
            cwd.join("net.prototxt")
        ]
    );
    assert_eq!(s.load_net(&s.train_net).unwrap().net.name, "beside");
    assert_eq!(
        s.train_net.describe(&s.source),
        "net.prototxt (relative to the solver file)"
    );
}

#[test]
fn net_path_relative_to_the_working_directory_is_second() {
    let root = tempfile::tempdir().unwrap();
    let cwd = root.path().join("cwd");
    write(&cwd, "nets/net.prototxt", "name: \"in-cwd\"\n");
    let file = write(
        root.path(),
        "solvers/s.prototxt",
        &format!("train_net: \"nets/net.prototxt\"\n{TAIL}"),
    );
    let s = read_solver_file_in(&file, &cwd).unwrap();
    let NetOrigin::File(r) = &s.train_net.origin else {
        panic!("expected a file")
    };
    assert_eq!(r.base, PathBase::WorkingDir);
    assert_eq!(r.path, cwd.join("nets/net.prototxt"));
    assert_eq!(s.load_net(&s.train_net).unwrap().net.name, "in-cwd");
    assert_eq!(
        s.train_net.describe(&s.source),
        "nets/net.prototxt (relative to the working directory)"
    );
}

#[test]
fn absolute_net_path() {
    let root = tempfile::tempdir().unwrap();
    let net = write(root.path(), "a/net.prototxt", "name: \"abs\"\n");
    let file = write(
        root.path(),
        "b/s.prototxt",
        &format!("net: \"{}\"\n{TAIL}", net.display()),
    );
    let s = read_solver_file_in(&file, &nowhere()).unwrap();
    let NetOrigin::File(r) = &s.train_net.origin else {
        panic!("expected a file")
    };
    assert_eq!((r.base, &r.path), (PathBase::Absolute, &net));
}

#[test]
fn missing_net_files_are_all_reported_with_the_paths_tried() {
    let root = tempfile::tempdir().unwrap();
    let cwd = root.path().join("cwd");
    std::fs::create_dir_all(&cwd).unwrap();
    write(root.path(), "solvers/t2.prototxt", "name: \"t\"\n");
    let file = write(
        root.path(),
        "solvers/s.prototxt",
        &format!(
            "train_net: \"gone.prototxt\"\ntest_net: \"x/t2.prototxt\"\ntest_iter: 1\n\
             test_interval: 1\n{TAIL}"
        ),
    );
    let e = read_solver_file_in(&file, &cwd).unwrap_err();
    let d = e.diagnostics();
    assert_eq!(d.len(), 2);
    let (gone, at) = find(d, "train_net file `gone.prototxt` not found");
    assert_eq!(at, (1, 12));
    assert_eq!(
        gone.message,
        format!(
            "train_net file `gone.prototxt` not found; tried: {}, {}",
            root.path().join("solvers/gone.prototxt").display(),
            cwd.join("gone.prototxt").display()
        )
    );
    assert!(help(gone).contains("from the solver's folder, then from the working directory"));
    let (t2, at) = find(d, "test_net file `x/t2.prototxt` not found");
    assert_eq!(at, (2, 11));
    assert_eq!(
        help(t2),
        "`t2.prototxt` is beside the solver: write `test_net: \"t2.prototxt\"`"
    );
}

#[test]
fn net_file_with_errors_reports_them_on_load() {
    let root = tempfile::tempdir().unwrap();
    write(
        root.path(),
        "net.prototxt",
        "layer { name: \"a\" tpye: \"Input\" }\n",
    );
    let file = write(
        root.path(),
        "s.prototxt",
        &format!("net: \"net.prototxt\"\n{TAIL}"),
    );
    let s = read_solver_file_in(&file, &nowhere()).unwrap();
    let e = s.load_net(&s.train_net).unwrap_err();
    let (d, at) = find(e.diagnostics(), "unknown field `tpye`");
    assert_eq!(at, (1, 19));
    assert!(d
        .location
        .as_ref()
        .unwrap()
        .0
        .path
        .ends_with("net.prototxt"));
}

// ---------------------------------------------------------------- solver or net

#[test]
fn solver_files_are_told_from_net_files() {
    let is = |t: &str| looks_like_solver(&parse_str("f", t).unwrap().root);
    assert!(is("net: \"a.prototxt\"\nbase_lr: 0.1\n"));
    assert!(is("train_net_param { layer { name: \"x\" } }\n"));
    assert!(is("base_lr: 0.1\n"));
    assert!(!is(
        "name: \"LeNet\"\nlayer { name: \"x\" type: \"Input\" }\n"
    ));
    assert!(!is("input: \"data\"\ninput_dim: 1\n"));
    assert!(!is("name: \"n\"\ndebug_info: true\n"));
    assert!(!is(""));
    for f in [
        "sphereface/sphereface_solver.prototxt",
        "siamese/mnist_siamese_solver.prototxt",
    ] {
        let text = std::fs::read_to_string(shared(&format!("configs/{f}"))).unwrap();
        assert!(is(&text), "{f}");
    }
    for f in [
        "sphereface/sphereface_model.prototxt",
        "sphereface/sphereface_deploy.prototxt",
    ] {
        let text = std::fs::read_to_string(shared(&format!("configs/{f}"))).unwrap();
        assert!(!is(&text), "{f}");
    }
}

// ---------------------------------------------------------------- learning rate

fn params(text: &str) -> SolverParams {
    solver(text).params
}

#[test]
fn mnist_center_loss_schedule() {
    let cwd = shared("configs/caffe-face");
    let s = read_solver_file_in(&cwd.join("mnist_example/mnist_solver.prototxt"), &cwd).unwrap();
    // 0.01 · 0.8^k, k = stepvalues (5000, 8000, 10000) reached.
    for (iter, k) in [
        (0, 0),
        (4999, 0),
        (5000, 1),
        (7999, 1),
        (8000, 2),
        (9999, 2),
        (10000, 3),
    ] {
        let want = 0.01 * 0.8f64.powi(k);
        let got = learning_rate(&s.params, iter);
        assert!(close(got, want), "iter {iter}: {got} vs {want}");
    }
    assert_eq!(
        describe_schedule(&s.params),
        "multistep: 0.01 until 5000, 0.008 until 8000, 0.0064 after"
    );
}

#[test]
fn sphereface_schedule() {
    let p = params(
        &BASE
            .replace(
                "\"fixed\"",
                "\"multistep\" gamma: 0.1 stepvalue: 16000 stepvalue: 24000 stepvalue: 28000",
            )
            .replace("max_iter: 100", "max_iter: 28000")
            .replace("0.01", "0.1"),
    );
    assert!(close(learning_rate(&p, 15999), 0.1));
    assert!(close(learning_rate(&p, 16000), 0.01));
    assert!(close(learning_rate(&p, 27999), 0.001));
    assert_eq!(
        describe_schedule(&p),
        "multistep: 0.1 until 16000, 0.01 until 24000, 0.001 after"
    );
}

#[test]
fn every_policy_matches_its_formula() {
    let with = |policy: &str| {
        let extra = POLICIES.iter().find(|(n, _)| *n == policy).unwrap().1;
        params(&BASE.replace("\"fixed\"", &format!("\"{policy}\" {extra}")))
    };
    // Parameters as in POLICIES, base_lr 0.01, max_iter 100.
    for iter in [0u64, 1, 9, 10, 25, 50, 99] {
        let i = iter as f64;
        let cases = [
            ("fixed", 0.01),
            ("step", 0.01 * 0.1f64.powf((iter / 10) as f64)),
            ("exp", 0.01 * 0.99f64.powf(i)),
            ("inv", 0.01 * (1.0 + 0.0001 * i).powf(-0.75)),
            (
                "multistep",
                0.01 * 0.1f64.powi((iter >= 10) as i32 + (iter >= 20) as i32),
            ),
            ("poly", 0.01 * (1.0 - i / 100.0).powi(2)),
            ("sigmoid", 0.01 / (1.0 + (0.1 * (i - 50.0)).exp())),
        ];
        for (policy, want) in cases {
            let got = learning_rate(&with(policy), iter);
            assert!(close(got, want), "{policy} at {iter}: {got} vs {want}");
        }
    }
}

#[test]
fn siamese_inv_schedule() {
    let p = params(&BASE.replace("\"fixed\"", "\"inv\" gamma: 0.0001 power: 0.75"));
    // 0.01 · (1 + 0.0001 · 10000)^-0.75 = 0.01 · 2^-0.75
    assert!(close(learning_rate(&p, 10000), 0.01 / 2f64.powf(0.75)));
}

#[test]
fn step_schedule_is_described() {
    let p = params(&BASE.replace("\"fixed\"", "\"step\" gamma: 0.5 stepsize: 30"));
    assert_eq!(
        describe_schedule(&p),
        "step: 0.01 until 30, 0.005 until 60, 0.0025 until 90, 0.00125 after"
    );
    assert_eq!(describe_schedule(&params(BASE)), "fixed: 0.01");
    let p = params(&BASE.replace("\"fixed\"", "\"poly\" power: 2"));
    assert_eq!(
        describe_schedule(&p),
        "poly: base_lr · (1 - iter/100)^2, from 0.01 at 0 to 0 at 100"
    );
}

// ---------------------------------------------------------------- netrun check

const SMALL_NET: &str = "name: \"small\"\n\
    layer { name: \"data\" type: \"Input\" top: \"data\"\n\
            input_param { shape { dim: 2 dim: 3 } } }\n\
    layer { name: \"fc\" type: \"InnerProduct\" bottom: \"data\" top: \"fc\"\n\
            inner_product_param { num_output: 4 } }\n";

fn netrun_check(dir: &Path, file: &str) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_netrun"))
        .args(["check", file])
        .current_dir(dir)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_builds_the_train_and_test_nets_of_a_solver() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "nets/small.prototxt", SMALL_NET);
    write(
        dir.path(),
        "solver.prototxt",
        "net: \"nets/small.prototxt\"\ntest_iter: 3\ntest_interval: 20\nbase_lr: 0.01\n\
         lr_policy: \"multistep\"\ngamma: 0.8\nstepvalue: 50\nmax_iter: 100\nsnapshot: 40\n",
    );
    let (ok, out, err) = netrun_check(dir.path(), "solver.prototxt");
    assert!(ok, "{out}\n{err}");
    assert!(
        out.contains("multistep: 0.01 until 50, 0.008 after"),
        "{out}"
    );
    assert!(
        out.contains("every 40 iterations and at the end (100)"),
        "{out}"
    );
    assert!(
        out.contains("train net    nets/small.prototxt (relative to the solver file)"),
        "{out}"
    );
    assert!(
        out.contains("3 forward passes every 20 iterations, first at 0"),
        "{out}"
    );
    assert!(out.contains("net `small`, phase TRAIN"), "{out}");
    assert!(out.contains("net `small`, phase TEST"), "{out}");
}

#[test]
fn check_reports_a_missing_net_file() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "solver.prototxt",
        &format!("net: \"missing.prototxt\"\n{TAIL}"),
    );
    let (ok, _, err) = netrun_check(dir.path(), "solver.prototxt");
    assert!(!ok);
    assert!(
        err.contains("net file `missing.prototxt` not found; tried: "),
        "{err}"
    );
    assert!(err.contains("solver.prototxt:1:6"), "{err}");
}
