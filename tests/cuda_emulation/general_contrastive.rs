//! GeneralContrastiveLoss's kernels against the layer's CPU path, one case per option
//! (the cross-sample ones included: `max_positive_only`'s selection, the
//! `normalize_negative` cap and the running `add_intra_mae` margin, whose host steps
//! are done here as the layer's GPU path will do them).

use crate::harness::{assert_near, Dev, Module, Order};
use crate::losses::device_sum;
use crate::{cpu_pass, each_order};
use netrun::blob::Blob;
use netrun::testing::{layer, uniform_blob};

const ROWS: usize = 7;
const C: usize = 5;
// Class 0 targets (max_negative_only's first candidate) and a fractional label.
const LABELS: [f32; ROWS] = [0.0, 3.0, 4.0, 0.0, 1.5, 2.0, 4.0];

// The `flags` bits of the `.cu` file.
const POSITIVE_FIRST: i32 = 1;
const MAX_POSITIVE_ONLY: i32 = 2;
const MAX_NEGATIVE_ONLY: i32 = 4;
const EXP_NEGATIVE: i32 = 8;

#[rustfmt::skip]
type Fwd = unsafe extern "C" fn(*const f32, *const f32, *mut f64, *mut f64, *mut f64, *mut f64, *mut i32, f64, f32, f32, f32, f32, f32, i32, i64, i64, *mut i32);
type Keep = unsafe extern "C" fn(*const f64, *mut f64, *mut i32, i32, i64);
#[rustfmt::skip]
type Neg = unsafe extern "C" fn(*const f32, *const f32, *const f32, *const i32, *mut f64, *mut f64, f64, f32, f32, i32, i64, i64);
#[rustfmt::skip]
type Bwd = unsafe extern "C" fn(*const f32, *const f32, *const f32, *const i32, *const i32, *mut f32, f64, f64, f64, f64, f64, f32, f32, f32, f32, f32, i32, i64, i64);

/// One configuration: the parameter text, its values as the kernels take them, the
/// layer's μ before the forward (add_intra_mae), and whether bottom 2 is given.
struct Case {
    opts: &'static str,
    pm: f32,
    nm: f32,
    pw: f32,
    nw: f32,
    thresh: f32,
    ub: f32,
    flags: i32,
    normalize: Option<f32>,
    intra_mae: Option<(f64, f32)>,
    weighted: bool,
    /// The normalize_negative cap must bite (S > pw) in this case.
    capped: bool,
}

const fn case(opts: &'static str, pm: f32, nm: f32, pw: f32, nw: f32) -> Case {
    Case {
        opts,
        pm,
        nm,
        pw,
        nw,
        thresh: 4.0,
        ub: 1.0,
        flags: 0,
        normalize: None,
        intra_mae: None,
        weighted: false,
        capped: false,
    }
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            thresh: 1.1,
            weighted: true,
            normalize: Some(100.0),
            ..case(
                "positive_margin: 0.2 negative_margin: 0.9 positive_weight: 0.5 \
                 negative_weight: 2 positive_outlier_thresh: 1.1 normalize_negative: 100",
                0.2,
                0.9,
                0.5,
                2.0,
            )
        },
        Case {
            flags: EXP_NEGATIVE,
            normalize: Some(0.5),
            capped: true,
            ..case(
                "negative_margin: 1.2 exp_negative_weight: true normalize_negative: 0.5",
                0.0,
                1.2,
                1.0,
                1.0,
            )
        },
        Case {
            flags: MAX_POSITIVE_ONLY | MAX_NEGATIVE_ONLY,
            weighted: true,
            ..case(
                "positive_margin: 0.1 negative_margin: 1.1 max_positive_only: true \
                 max_negative_only: true negative_weight: 1.5",
                0.1,
                1.1,
                1.0,
                1.5,
            )
        },
        Case {
            flags: POSITIVE_FIRST,
            ub: 0.7,
            normalize: Some(1.0),
            capped: true,
            ..case(
                "negative_margin: 1.3 positive_first: true positive_upper_bound: 0.7 \
                 normalize_negative: 1",
                0.0,
                1.3,
                1.0,
                1.0,
            )
        },
        Case {
            intra_mae: Some((0.15, 1.2)),
            ..case(
                "negative_margin: 0.8 add_intra_mae: true square: true",
                0.0,
                0.8,
                1.0,
                1.0,
            )
        },
        Case {
            intra_mae: Some((0.5, 0.3)),
            flags: MAX_NEGATIVE_ONLY,
            weighted: true,
            ..case(
                "negative_margin: 0.6 add_intra_mae: true max_negative_margin: 0.3 \
                 max_negative_only: true",
                0.0,
                0.6,
                1.0,
                1.0,
            )
        },
    ]
}

#[test]
fn general_contrastive_loss_kernels_match_the_layer_for_each_option() {
    each_order(|order| {
        let d = distances();
        let weights = uniform_blob(&[ROWS], 0.5, 2.0, 231);
        for c in cases() {
            check(order, &c, &d, &weights);
        }
    });
}

/// Seeded distances with ties placed where the fork's selections must keep the first:
/// rows 1 and 3 share the smallest target distance (max_positive_only), row 2's two
/// nearest other classes are equally near (max_negative_only), and row 0's target,
/// class 0, is far enough that its term beats every negative (the fork's rule drops them).
fn distances() -> Blob {
    let mut d = uniform_blob(&[ROWS, C], 0.0, 1.5, 230);
    let v = d.data_mut();
    v[..C].iter_mut().for_each(|x| *x = x.max(0.3));
    v[2 * C..3 * C].copy_from_slice(&[0.8, 0.3, 0.9, 0.3, 1.2]);
    for (i, t) in [1.45f32, 0.45, 1.2, 0.45, 0.7, 1.0, 0.8]
        .into_iter()
        .enumerate()
    {
        v[i * C + LABELS[i] as usize] = t;
    }
    d
}

fn check(order: Order, case: &Case, d: &Blob, weights: &Blob) {
    let m = Module::get("src/layers/general_contrastive_loss.cu");
    let (fwd, keep, negs, bwd): (Fwd, Keep, Neg, Bwd) = (
        m.kernel("general_contrastive_loss_forward"),
        m.kernel("general_contrastive_loss_keep_positive"),
        m.kernel("general_contrastive_loss_negatives"),
        m.kernel("general_contrastive_loss_backward"),
    );
    let what = format!("GeneralContrastiveLoss {{ {} }}", case.opts);
    let extra = if case.weighted { "bottom: \"v\"" } else { "" };
    let mut l = layer(&format!(
        "name: \"g\" type: \"GeneralContrastiveLoss\" bottom: \"d\" bottom: \"l\" {extra} \
         top: \"loss\" top: \"stats\" general_contrastive_loss_param {{ {} }}",
        case.opts
    ));
    // The running margin μ as the layer holds it before this forward.
    let mu = case.intra_mae.map_or(0.0, |(mu, _)| mu);
    if case.intra_mae.is_some() {
        l.set_state(&[("intra_mae".to_string(), mu)]).unwrap();
    }
    let mut bottoms = vec![d.clone(), Blob::from_data(&[ROWS], LABELS.to_vec())];
    if case.weighted {
        bottoms.push(weights.clone());
    }
    let (tops, bottoms, _) = cpu_pass(l.as_mut(), bottoms, None, 232);

    // Forward: per-sample terms, the kept positive, then the sums.
    let nm = case.nm as f64 + mu;
    let (dd, lab, wd) = (
        Dev::new(d.data()),
        Dev::new(&LABELS),
        Dev::new(weights.data()),
    );
    let z = || Dev::filled(ROWS, 0.0f64);
    let (mut term, mut pos_e, mut hinge, mut neg) = (z(), z(), z(), z());
    let (mut kept_neg, mut kept, mut bad) = (
        Dev::filled(ROWS, 0i32),
        Dev::filled(1, -1i32),
        Dev::filled(1, 0i32),
    );
    let (dp, lp, tp, pp, hp, np, knp, kp, bp) = (
        dd.c(),
        lab.c(),
        term.p(),
        pos_e.p(),
        hinge.p(),
        neg.p(),
        kept_neg.p(),
        kept.p(),
        bad.p(),
    );
    let (ci, ri) = (C as i64, ROWS as i64);
    let (pm, pw, nw, thresh, ub, flags) =
        (case.pm, case.pw, case.nw, case.thresh, case.ub, case.flags);
    m.launch(2, 2, 0, order, || unsafe {
        fwd(
            dp, lp, tp, pp, hp, np, knp, nm, pm, pw, nw, thresh, ub, flags, ci, ri, bp,
        )
    });
    assert_eq!(bad.get(), [0], "{what}: labels");
    m.launch(1, 4, 0, order, || unsafe { keep(pp, tp, kp, flags, ri) });
    let mf = ROWS as f64;
    let loss = device_sum(order, &term, ROWS) / mf;
    assert_near(
        &[loss as f32],
        tops[0].data(),
        1e-6,
        &format!("{what}: loss"),
    );
    let pos_mean = device_sum(order, &hinge, ROWS) / mf;
    let mut stats = vec![
        pos_mean as f32,
        (device_sum(order, &neg, ROWS) / mf / (C - 1) as f64) as f32,
    ];
    if let Some((_, max_nm)) = case.intra_mae {
        // The host's update of μ (layer state), reported as the third value.
        stats.push((0.99 * mu + 0.01 * pos_mean).min(max_nm as f64) as f32);
    }
    assert_near(&stats, tops[1].data(), 1e-6, &format!("{what}: statistics"));

    // Backward: the negatives' total and the weights' mean, then every entry.
    let (mut neg_w, mut v) = (z(), z());
    let wp = if case.weighted {
        wd.c()
    } else {
        std::ptr::null()
    };
    let (nwp, vp) = (neg_w.p(), v.p());
    m.launch(2, 2, 0, order, || unsafe {
        negs(dp, lp, wp, knp, nwp, vp, nm, nw, ub, flags, ci, ri)
    });
    let s = device_sum(order, &neg_w, ROWS).abs();
    let divisor = match case.normalize {
        Some(r) if s / r as f64 / mf > pw as f64 => s / r as f64 / mf,
        _ => 1.0,
    };
    assert_eq!(divisor > 1.0, case.capped, "{what}: the cap bites");
    let mean = device_sum(order, &v, ROWS) / mf;
    let g = tops[0].diff()[0] as f64;
    let mut grad = Dev::filled(ROWS * C, 0.0f32);
    let gp = grad.p();
    let count = (ROWS * C) as i64;
    m.launch(3, 4, 0, order, || unsafe {
        bwd(
            dp, lp, wp, knp, kp, gp, g, mf, mean, divisor, nm, pm, pw, nw, thresh, ub, flags, ci,
            count,
        )
    });
    assert_near(&grad.get(), bottoms[0].diff(), 1e-6, &format!("{what}: dd"));
}
