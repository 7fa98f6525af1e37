//! The element-wise family (Power, Exp, Log, AbsVal, BNLL, Threshold, ELU, Clip, Swish).

use super::{layer_error, run_in_place};
use netrun::blob::Blob;
use netrun::testing::{
    assert_close, backward, forward, layer, setup, uniform_blob, GradientChecker,
};

/// U(−2, 2) values moved at least 0.05 away from every point in `kinks`.
fn input(shape: &[usize], kinks: &[f32], seed: u64) -> Blob {
    let mut b = uniform_blob(shape, -2.0, 2.0, seed);
    for v in b.data_mut() {
        for &k in kinks {
            if (*v - k).abs() < 0.05 {
                let away = if *v < k { -0.075 } else { 0.075 };
                *v = k + away;
            }
        }
    }
    b
}

/// Checks one type: forward against `f` in f64, the gradient checker, and in-place
/// forward/backward giving the same values as out of place.
fn check(spec: &str, kinks: &[f32], f: impl Fn(f64) -> f64) {
    let shape = [2, 3, 4, 5];
    let mut l = layer(&format!("name: \"u\" bottom: \"x\" top: \"y\" {spec}"));
    let mut bottoms = vec![input(&shape, kinks, 3)];
    let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 0);
    forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
    let expected: Vec<f64> = bottoms[0].data().iter().map(|&x| f(x as f64)).collect();
    assert_close(tops[0].data(), &expected, 1e-5, 1e-6, spec);
    let checked = GradientChecker::default()
        .check(l.as_mut(), &mut bottoms, &mut tops, &mut params, &[true])
        .unwrap_or_else(|e| panic!("{spec}: {e}"));
    assert_eq!(checked, 120, "{spec}");

    // Out of place with a random dy, then the same in place.
    let dy = uniform_blob(&shape, -1.0, 1.0, 9);
    tops[0].diff_mut().copy_from_slice(dy.data());
    forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
    backward(l.as_mut(), &mut bottoms, &mut tops, &mut params, &[true]);
    let mut fresh = layer(&format!("name: \"u\" bottom: \"x\" top: \"x\" {spec}"));
    setup(fresh.as_mut(), &bottoms, 0);
    let (y, dx) = run_in_place(fresh.as_mut(), &bottoms[0], dy.data());
    assert_eq!(y, tops[0].data(), "{spec}: in-place forward");
    assert_eq!(dx, bottoms[0].diff(), "{spec}: in-place backward");
}

fn sigmoid(t: f64) -> f64 {
    1.0 / (1.0 + (-t).exp())
}

#[test]
fn power_matches_its_formula() {
    check("type: \"Power\"", &[], |x| x);
    check(
        "type: \"Power\" power_param { power: 2 scale: 0.5 shift: -0.3 }",
        &[],
        |x| (0.5 * x - 0.3).powi(2),
    );
    // Positive base (shift + scale·x ≥ 1) for a fractional power.
    check(
        "type: \"Power\" power_param { power: 1.5 scale: 0.5 shift: 2 }",
        &[],
        |x| (0.5 * x + 2.0).powf(1.5),
    );
    check(
        "type: \"Power\" power_param { power: 0 scale: 3 }",
        &[],
        |_| 1.0,
    );
    check(
        "type: \"Power\" power_param { power: 3 scale: 0 shift: 2 }",
        &[],
        |_| 8.0,
    );
}

#[test]
fn exp_and_log_match_their_formulas() {
    check("type: \"Exp\"", &[], f64::exp);
    check(
        "type: \"Exp\" exp_param { base: 3 scale: 0.5 shift: 0.2 }",
        &[],
        |x| 3f64.powf(0.2 + 0.5 * x),
    );
    check(
        "type: \"Log\" log_param { shift: 3 scale: 0.5 }",
        &[],
        |x| (3.0 + 0.5 * x).ln(),
    );
    check(
        "type: \"Log\" log_param { base: 2 shift: 2.5 scale: -1 }",
        &[],
        |x| (2.5 - x).log2(),
    );
}

#[test]
fn absval_bnll_threshold_match_their_formulas() {
    check("type: \"AbsVal\"", &[0.0], f64::abs);
    check("type: \"BNLL\"", &[], |x| x.exp().ln_1p());
    check("type: \"Threshold\"", &[0.0], |x| {
        if x > 0.0 {
            1.0
        } else {
            0.0
        }
    });
    check(
        "type: \"Threshold\" threshold_param { threshold: 0.4 }",
        &[0.4],
        |x| if x > 0.4 { 1.0 } else { 0.0 },
    );
}

#[test]
fn elu_clip_swish_match_their_formulas() {
    check("type: \"ELU\"", &[0.0], |x| {
        if x > 0.0 {
            x
        } else {
            x.exp() - 1.0
        }
    });
    check("type: \"ELU\" elu_param { alpha: 0.3 }", &[0.0], |x| {
        if x > 0.0 {
            x
        } else {
            0.3 * (x.exp() - 1.0)
        }
    });
    check(
        "type: \"Clip\" clip_param { min: -0.5 max: 1.25 }",
        &[-0.5, 1.25],
        |x| x.clamp(-0.5, 1.25),
    );
    check("type: \"Swish\"", &[], |x| x * sigmoid(x));
    check("type: \"Swish\" swish_param { beta: 2.5 }", &[], |x| {
        x * sigmoid(2.5 * x)
    });
}

#[test]
fn bnll_does_not_overflow() {
    let mut l = layer("name: \"u\" bottom: \"x\" top: \"y\" type: \"BNLL\"");
    let mut bottoms = vec![Blob::from_data(&[4], vec![-200.0, -90.0, 90.0, 200.0])];
    let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 0);
    forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
    assert_close(
        tops[0].data(),
        &[0.0, 0.0, 90.0, 200.0],
        1e-6,
        1e-30,
        "BNLL",
    );
}

#[test]
fn bad_parameters_are_reported() {
    let e =
        layer_error("name: \"c\" type: \"Clip\" bottom: \"x\" top: \"y\" clip_param { min: 0 }");
    assert!(e.contains("needs `clip_param { max: ... }`"), "{e}");
    let e = layer_error(
        "name: \"c\" type: \"Clip\" bottom: \"x\" top: \"y\" clip_param { min: 2 max: 1 }",
    );
    assert!(e.contains("max 1 is below min 2"), "{e}");
    let e =
        layer_error("name: \"e\" type: \"Exp\" bottom: \"x\" top: \"y\" exp_param { base: -2 }");
    assert!(e.contains("base -2 is not positive"), "{e}");
    assert!(e.contains("test.net:2:"), "{e}");
    let e = layer_error("name: \"l\" type: \"Log\" bottom: \"x\" top: \"y\" log_param { base: 1 }");
    assert!(e.contains("base 1 has no logarithm"), "{e}");
    let e =
        layer_error("name: \"p\" type: \"Power\" bottom: \"x\" top: \"y\" power_param { powr: 2 }");
    assert!(e.contains("did you mean `power`?"), "{e}");
}
