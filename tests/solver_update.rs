//! Update rules, regularisation, iter_size scaling and gradient clipping
//! against hand computations in f64 on a one-layer net's two blobs.

mod common;

use netrun::net::Net;
use netrun::netdef::Phase;
use netrun::solver::{history_name, Hyper, Regularization, Rule, Solver};

/// Input 1×3 → InnerProduct 2: W (2×3, lr_mult 1, decay_mult 1) and b (2, lr_mult 2, decay_mult 0).
const NET: &str = r#"
layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 1 dim: 3 } } }
layer { name: "ip" type: "InnerProduct" bottom: "x" top: "y"
  param { lr_mult: 1 decay_mult: 1 } param { lr_mult: 2 decay_mult: 0 }
  inner_product_param { num_output: 2
    weight_filler { type: "uniform" min: -1 max: 1 }
    bias_filler { type: "constant" value: 0.5 } } }
"#;

fn net() -> Net {
    Net::new(common::build(NET, Phase::Train).unwrap(), 7).unwrap()
}

/// The gradient of element `i` of blob `b` at step `s`: a spread of signs and a zero.
fn grad(s: usize, b: usize, i: usize) -> f64 {
    ((s * 7 + b * 3 + i) % 5) as f64 * 0.3 - 0.6
}

const HYPER: Hyper = Hyper {
    momentum: 0.9,
    momentum2: 0.999,
    rms_decay: 0.98,
    delta: 1e-6,
};

/// One blob of the reference model: weights and two histories in f64.
#[derive(Clone)]
struct Ref {
    w: Vec<f64>,
    h0: Vec<f64>,
    h1: Vec<f64>,
    lr_mult: f64,
    decay_mult: f64,
}

/// The documented formulas, written out independently of the library.
#[allow(clippy::too_many_arguments)]
fn reference_step(rule: Rule, r: &mut Ref, g: &[f64], rate: f64, decay: f64, l1: bool, t: i32) {
    let (mu, b2, rho, delta) = (0.9f64, 0.999f64, 0.98f64, 1e-6f64);
    let lr = rate * r.lr_mult;
    let d = decay * r.decay_mult;
    for i in 0..r.w.len() {
        let w = r.w[i];
        let reg = if l1 {
            w.signum() * (w != 0.0) as i32 as f64
        } else {
            w
        };
        let g = g[i] + d * reg;
        let step = match rule {
            Rule::Sgd => {
                r.h0[i] = mu * r.h0[i] + lr * g;
                r.h0[i]
            }
            Rule::Nesterov => {
                let old = r.h0[i];
                r.h0[i] = mu * r.h0[i] + lr * g;
                (1.0 + mu) * r.h0[i] - mu * old
            }
            Rule::AdaGrad => {
                r.h0[i] += g * g;
                lr * g / (r.h0[i].sqrt() + delta)
            }
            Rule::RmsProp => {
                r.h0[i] = rho * r.h0[i] + (1.0 - rho) * g * g;
                lr * g / (r.h0[i].sqrt() + delta)
            }
            Rule::AdaDelta => {
                r.h0[i] = mu * r.h0[i] + (1.0 - mu) * g * g;
                let u = g * ((r.h1[i] + delta) / (r.h0[i] + delta)).sqrt();
                r.h1[i] = mu * r.h1[i] + (1.0 - mu) * u * u;
                lr * u
            }
            Rule::Adam => {
                r.h0[i] = mu * r.h0[i] + (1.0 - mu) * g;
                r.h1[i] = b2 * r.h1[i] + (1.0 - b2) * g * g;
                let corr = (1.0 - b2.powi(t)).sqrt() / (1.0 - mu.powi(t));
                lr * corr * r.h0[i] / (r.h1[i].sqrt() + delta)
            }
        };
        r.w[i] -= step;
    }
}

fn refs(net: &Net) -> Vec<Ref> {
    net.learnables
        .iter()
        .map(|l| {
            let n = net.params[l.param].count();
            Ref {
                w: net.params[l.param]
                    .data()
                    .iter()
                    .map(|&v| v as f64)
                    .collect(),
                h0: vec![0.0; n],
                h1: vec![0.0; n],
                lr_mult: l.lr_mult as f64,
                decay_mult: l.decay_mult as f64,
            }
        })
        .collect()
}

fn set_grads(net: &mut Net, s: usize, scale: f64) {
    for b in 0..net.learnables.len() {
        let p = net.learnables[b].param;
        for (i, d) in net.params[p].diff_mut().iter_mut().enumerate() {
            *d = (grad(s, b, i) * scale) as f32;
        }
    }
}

fn assert_matches(net: &Net, want: &[Ref], what: &str) {
    for (b, r) in want.iter().enumerate() {
        let got = net.params[net.learnables[b].param].data();
        for (i, (&g, &w)) in got.iter().zip(&r.w).enumerate() {
            assert!(
                (g as f64 - w).abs() <= 2e-5 * w.abs().max(1.0),
                "{what}: blob {b} element {i}: {g} vs reference {w}"
            );
        }
    }
}

/// Three updates of `rule` with weight decay; the rates change per step.
fn check_rule(rule: Rule, l1: bool) {
    let mut net = net();
    let mut solver = Solver::with_rule(rule, HYPER, &net);
    solver.weight_decay = 0.01;
    if l1 {
        solver.regularization = Regularization::L1;
    }
    let mut want = refs(&net);
    let rates = [0.1, 0.05, 0.2];
    for (s, &rate) in rates.iter().enumerate() {
        set_grads(&mut net, s, 1.0);
        solver.apply_update(&mut net, rate as f32, s as u64);
        for (b, r) in want.iter_mut().enumerate() {
            let g: Vec<f64> = (0..r.w.len()).map(|i| grad(s, b, i)).collect();
            reference_step(rule, r, &g, rate, 0.01, l1, s as i32 + 1);
        }
        assert_matches(&net, &want, &format!("{} step {s}", rule.name()));
    }
    assert_eq!(solver.history[0].len(), rule.histories());
}

#[test]
fn sgd_momentum() {
    check_rule(Rule::Sgd, false);
}

#[test]
fn nesterov() {
    check_rule(Rule::Nesterov, false);
}

#[test]
fn adagrad() {
    check_rule(Rule::AdaGrad, false);
}

#[test]
fn rmsprop() {
    check_rule(Rule::RmsProp, false);
}

#[test]
fn adadelta() {
    check_rule(Rule::AdaDelta, false);
}

#[test]
fn adam() {
    check_rule(Rule::Adam, false);
}

#[test]
fn l1_regularisation() {
    check_rule(Rule::Sgd, true);
}

/// First SGD step by hand: w' = w − lr·lr_mult·(g + decay·decay_mult·w).
#[test]
fn sgd_first_step_by_hand() {
    let mut net = net();
    let mut solver = Solver::with_rule(Rule::Sgd, HYPER, &net);
    solver.weight_decay = 0.1;
    let w0: Vec<f32> = net.params[0].data().to_vec();
    let b0: Vec<f32> = net.params[1].data().to_vec();
    net.params[0].diff_mut().fill(1.0);
    net.params[1].diff_mut().fill(-2.0);
    solver.apply_update(&mut net, 0.5, 0);
    for (&w, &w0) in net.params[0].data().iter().zip(&w0) {
        let want = w0 as f64 - 0.5 * (1.0 + 0.1 * w0 as f64);
        assert!((w as f64 - want).abs() < 1e-6, "{w} vs {want}");
    }
    // Bias: lr_mult 2, decay_mult 0 → b' = b − 1·(−2) = b + 2.
    for (&b, &b0) in net.params[1].data().iter().zip(&b0) {
        assert!((b - (b0 + 2.0)).abs() < 1e-6, "{b} vs {}", b0 + 2.0);
    }
    // The history holds the step.
    assert!((solver.history[1][0][0] - (-2.0)).abs() < 1e-6);
}

#[test]
fn iter_size_divides_the_accumulated_diff() {
    let mut a = net();
    let mut b = net();
    let mut sa = Solver::with_rule(Rule::Sgd, HYPER, &a);
    let mut sb = Solver::with_rule(Rule::Sgd, HYPER, &b);
    sb.iter_size = 4;
    for s in 0..3 {
        set_grads(&mut a, s, 1.0);
        // Four passes summing to 4·g, as accumulation over iter_size 4 gives.
        set_grads(&mut b, s, 4.0);
        sa.apply_update(&mut a, 0.1, s as u64);
        sb.apply_update(&mut b, 0.1, s as u64);
    }
    for p in 0..2 {
        for (x, y) in a.params[p].data().iter().zip(b.params[p].data()) {
            assert!((x - y).abs() < 1e-6, "{x} vs {y}");
        }
    }
}

#[test]
fn clipping_scales_by_the_global_norm() {
    let mut net = net();
    let w0: Vec<Vec<f32>> = net.params.iter().map(|p| p.data().to_vec()).collect();
    set_grads(&mut net, 1, 1.0);
    let norm: f64 = (0..2)
        .flat_map(|b| (0..net.params[b].count()).map(move |i| grad(1, b, i).powi(2)))
        .sum::<f64>()
        .sqrt();
    let mut solver = Solver::with_rule(Rule::Sgd, HYPER, &net);
    solver.clip_gradients = 0.5;
    let info = solver.apply_update(&mut net, 1.0, 0);
    let (got_norm, scale) = info.clipped.expect("norm above the threshold");
    assert!((got_norm - norm).abs() < 1e-6);
    assert!((scale as f64 - 0.5 / norm).abs() < 1e-6);
    for b in 0..2 {
        let lr_mult = net.learnables[b].lr_mult as f64;
        for (i, (&w, &w0)) in net.params[b].data().iter().zip(&w0[b]).enumerate() {
            let want = w0 as f64 - lr_mult * grad(1, b, i) * 0.5 / norm;
            assert!(
                (w as f64 - want).abs() < 1e-6,
                "blob {b} [{i}]: {w} vs {want}"
            );
        }
    }
    // Below the threshold nothing is scaled.
    set_grads(&mut net, 1, 1.0);
    solver.clip_gradients = (norm * 2.0) as f32;
    assert_eq!(solver.apply_update(&mut net, 1.0, 1).clipped, None);
}

#[test]
fn history_names_follow_the_learnables() {
    let net = net();
    let solver = Solver::with_rule(Rule::Adam, HYPER, &net);
    let names: Vec<String> = solver.history_entries(&net).map(|e| e.0).collect();
    assert_eq!(
        names,
        [
            "ip.0.history0",
            "ip.0.history1",
            "ip.1.history0",
            "ip.1.history1"
        ]
    );
    assert_eq!(history_name("fc6.1", 0), "fc6.1.history0");
    assert_eq!(Rule::from_name("RMSProp"), Some(Rule::RmsProp));
    assert_eq!(Rule::from_name("rmsprop"), None);
}
