//! NormFace's distance losses: GeneralTripletLoss and GeneralContrastiveLoss's switches
//! (exp_negative_weight, max_negative_only, max_positive_only, positive_first, square,
//! add_intra_mae), against float64 computations of the fork's loss and update rule
//! written here, and the shared gradient checker where the rule is the gradient.

mod common;

use common::forks::{close, f64s, grad_check, labels};
use netrun::blob::Blob;
use netrun::netdef::Phase;
use netrun::testing::{backward, forward, layer, setup};

// ---------------------------------------------------------------- GeneralTripletLoss

/// The fork's loss value and update rule in float64, written from its description.
fn triplet_reference(
    d: &[f64],
    y: &[usize],
    a: f64,
    (pw, nw): (f64, f64),
    hardest: bool,
    center: bool,
) -> (f64, Vec<f64>) {
    let c = d.len() / y.len();
    let m = y.len() as f64;
    let (mut loss, mut grad) = (0.0, vec![0.0; d.len()]);
    for (i, &t) in y.iter().enumerate() {
        let row = &d[i * c..(i + 1) * c];
        let h: Vec<f64> = (0..c)
            .map(|j| {
                if j == t {
                    0.0
                } else {
                    (row[t] + a - row[j]).max(0.0) * nw
                }
            })
            .collect();
        let mut any = false;
        if hardest {
            let mut k = 0;
            for j in 1..c {
                if j != t && h[j] > h[k] {
                    k = j;
                }
            }
            loss += h[k].abs();
            grad[i * c + k] = -nw;
            any = true;
        } else {
            for j in (0..c).filter(|&j| j != t) {
                loss += h[j].abs();
                if row[t] + a > row[j] {
                    grad[i * c + j] = -nw;
                    any = true;
                }
            }
        }
        if center || any {
            grad[i * c + t] = pw;
        }
    }
    (loss / m, grad.iter().map(|g| g / m).collect())
}

#[test]
fn general_triplet_loss_matches_float64_in_both_modes() {
    let d = [
        0.3f32, 0.9, 0.2, 1.5, 0.8, 0.1, 0.7, 0.95, 1.2, 0.4, 0.6, 0.5,
    ];
    let y = [0usize, 2, 1];
    for (opts, hardest, center) in [
        (
            "margin: 0.4 positive_weight: 0.5 negative_weight: 2",
            false,
            true,
        ),
        ("margin: 0.4 add_center_loss: false", false, false),
        (
            "margin: 0.3 hardest_only: true negative_weight: 1.5",
            true,
            true,
        ),
    ] {
        let mut l = layer(&format!(
            r#"name: "t" type: "GeneralTripletLoss" bottom: "d" bottom: "l" top: "loss" top: "dist"
               general_triplet_loss_param {{ {opts} }}"#
        ));
        let mut bottoms = vec![Blob::from_data(&[3, 4], d.to_vec()), labels(&y)];
        let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 1);
        forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
        let p = |k: &str, dflt: f64| {
            opts.split_whitespace()
                .collect::<Vec<_>>()
                .windows(2)
                .find(|w| w[0] == format!("{k}:"))
                .map_or(dflt, |w| w[1].parse().unwrap())
        };
        let (a, pw, nw) = (
            p("margin", 0.2),
            p("positive_weight", 1.0),
            p("negative_weight", 1.0),
        );
        let (loss, grad) = triplet_reference(&f64s(&d), &y, a, (pw, nw), hardest, center);
        close(tops[0].data(), &[loss], 1e-6, opts);
        let dd = f64s(&d);
        let pos = (0..3).map(|i| dd[i * 4 + y[i]]).sum::<f64>() / 3.0;
        let neg = (dd.iter().sum::<f64>() - pos * 3.0) / 9.0;
        close(tops[1].data(), &[pos, neg], 1e-6, "triplet distances");
        tops[0].diff_mut()[0] = 0.5;
        backward(
            l.as_mut(),
            &mut bottoms,
            &mut tops,
            &mut params,
            &[true, false],
        );
        let grad: Vec<f64> = grad.iter().map(|g| g * 0.5).collect();
        close(bottoms[0].diff(), &grad, 1e-6, "triplet update rule");
    }
}

#[test]
fn general_triplet_loss_is_the_gradient_with_one_active_negative_per_row() {
    // Each row has exactly one negative within the margin and pw = nw, where the fork's
    // rule is the true gradient; the values keep 0.05 away from every hinge.
    let d = [
        0.2f32, 0.35, 1.5, 1.6, 1.3, 0.6, 0.9, 2.0, 0.4, 0.1, 1.7, 1.8,
    ];
    let y = [0usize, 1, 0];
    for opts in ["margin: 0.4", "margin: 0.4 hardest_only: true"] {
        let mut l = layer(&format!(
            r#"name: "t" type: "GeneralTripletLoss" bottom: "d" bottom: "l" top: "loss"
               general_triplet_loss_param {{ {opts} }}"#
        ));
        let mut bottoms = vec![Blob::from_data(&[3, 4], d.to_vec()), labels(&y)];
        let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 1);
        grad_check(
            l.as_mut(),
            &mut bottoms,
            &mut tops,
            &mut params,
            &[true, false],
            Phase::Train,
        );
    }
}

// ---------------------------------------------------------------- GeneralContrastiveLoss switches

#[derive(Default, Clone, Copy)]
struct Gcl {
    pm: f64,
    nm: f64,
    thresh: f64,
    exp: bool,
    max_neg: bool,
    max_pos: bool,
    pos_first: Option<f64>,
}

/// Loss and gradient (loss weight 1) of the fork's switches, written from their description.
fn gcl_reference(d: &[f64], y: &[usize], o: Gcl) -> (f64, Vec<f64>) {
    let (m, c) = (y.len(), d.len() / y.len());
    let mut e = vec![0.0; d.len()];
    for i in 0..m {
        for j in 0..c {
            let v = d[i * c + j];
            e[i * c + j] = if j == y[i] {
                (v - o.pm).max(0.0).min(o.thresh)
            } else if v < o.nm {
                if o.exp {
                    (-v).exp()
                } else {
                    o.nm - v
                }
            } else {
                0.0
            };
        }
    }
    let pos_terms: Vec<f64> = (0..m).map(|i| e[i * c + y[i]]).collect();
    let keep_pos = (0..m).fold(0, |b, i| if pos_terms[i] < pos_terms[b] { i } else { b });
    let mut keep = vec![true; d.len()];
    for i in 0..m {
        let mut best = 0;
        for j in 1..c {
            if j != y[i] && d[i * c + j] < o.nm && e[i * c + j] > e[i * c + best] {
                best = j;
            }
        }
        let first = o.pos_first.is_some_and(|b| d[i * c + y[i]] > b);
        for j in 0..c {
            keep[i * c + j] = if j == y[i] {
                !(o.max_pos && i != keep_pos)
            } else {
                !(first || o.max_neg && j != best)
            };
        }
    }
    let loss = (0..d.len()).filter(|&k| keep[k]).map(|k| e[k]).sum::<f64>() / m as f64;
    let mut g = vec![0.0; d.len()];
    for (i, &yi) in y.iter().enumerate() {
        let t = i * c + yi;
        if o.pos_first.is_some_and(|b| d[t] > b) {
            g[t] = 1.0;
            continue;
        }
        if d[t] > o.pm && d[t] < o.thresh && keep[t] {
            g[t] = 1.0;
        }
        for j in (0..c).filter(|&j| j != yi) {
            let k = i * c + j;
            if d[k] < o.nm && keep[k] {
                g[k] = if o.exp { -(-d[k]).exp() } else { -1.0 };
            }
        }
    }
    (loss, g.iter().map(|v| v / m as f64).collect())
}

#[test]
fn general_contrastive_switches_match_float64_and_the_gradient() {
    // Values keep ≥ 0.05 away from the margins (0.2, 1.0) and the threshold (1.5).
    let d = [
        0.6f32, 0.3, 1.4, 0.75, 0.1, 1.35, 1.2, 0.45, 1.9, 0.55, 0.35, 1.3, 0.8, 0.5, 1.1, 0.4,
    ];
    let y = [0usize, 1, 3, 2];
    let base = Gcl {
        pm: 0.2,
        nm: 1.0,
        thresh: 1.5,
        ..Gcl::default()
    };
    let cases = [
        ("", base),
        ("exp_negative_weight: true", Gcl { exp: true, ..base }),
        (
            "max_negative_only: true",
            Gcl {
                max_neg: true,
                ..base
            },
        ),
        (
            "max_positive_only: true",
            Gcl {
                max_pos: true,
                ..base
            },
        ),
        (
            "positive_first: true positive_upper_bound: 1.0",
            Gcl {
                pos_first: Some(1.0),
                ..base
            },
        ),
        ("square: true", base),
    ];
    for (opts, o) in cases {
        let mut l = layer(&format!(
            r#"name: "c" type: "GeneralContrastiveLoss" bottom: "d" bottom: "l" top: "loss"
               general_contrastive_loss_param {{ positive_margin: 0.2 negative_margin: 1
               positive_outlier_thresh: 1.5 {opts} }}"#
        ));
        let mut bottoms = vec![Blob::from_data(&[4, 4], d.to_vec()), labels(&y)];
        let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 1);
        forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
        let (loss, grad) = gcl_reference(&f64s(&d), &y, o);
        close(tops[0].data(), &[loss], 1e-6, &format!("GCL loss {opts}"));
        tops[0].diff_mut()[0] = 1.0;
        backward(
            l.as_mut(),
            &mut bottoms,
            &mut tops,
            &mut params,
            &[true, false],
        );
        close(
            bottoms[0].diff(),
            &grad,
            1e-6,
            &format!("GCL backward {opts}"),
        );
        if o.pos_first.is_none() {
            grad_check(
                l.as_mut(),
                &mut bottoms,
                &mut tops,
                &mut params,
                &[true, false],
                Phase::Train,
            );
        }
    }
}

#[test]
fn general_contrastive_intra_mae_raises_the_negative_margin() {
    let mut l = layer(
        r#"name: "c" type: "GeneralContrastiveLoss" bottom: "d" bottom: "l" top: "loss" top: "dist"
           general_contrastive_loss_param { negative_margin: 0.5 add_intra_mae: true
           max_negative_margin: 0.3 }"#,
    );
    let d = [0.9f32, 0.6, 0.2, 0.8, 0.7, 0.4];
    let y = [0usize, 1];
    let mut bottoms = vec![Blob::from_data(&[2, 3], d.to_vec()), labels(&y)];
    let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 1);
    let mut mu = 0.0f64;
    for _ in 0..3 {
        forward(l.as_mut(), &mut bottoms, &mut tops, &mut params);
        let nm = 0.5 + mu;
        let pos = (0.9 + 0.7) / 2.0;
        let neg_terms: f64 = [0.6, 0.2, 0.8, 0.4].iter().map(|v| (nm - v).max(0.0)).sum();
        mu = (0.99 * mu + 0.01 * pos).min(0.3);
        close(
            tops[0].data(),
            &[(pos * 2.0 + neg_terms) / 2.0],
            1e-6,
            "intra_mae loss",
        );
        close(
            tops[1].data(),
            &[pos, neg_terms / 4.0, mu],
            1e-6,
            "intra_mae top 1",
        );
    }
    assert!((l.state()[0].1 - mu).abs() < 1e-6);
}
