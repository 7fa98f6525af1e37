//! The solver: turns the accumulated learnable diffs of a [`Net`] into a
//! weight update, as Caffe's `SGDSolver::ApplyUpdate` and its subclasses.
//!
//! Per iteration, in Caffe's order:
//! 1. clip: when `clip_gradients` ≥ 0 and ‖g‖₂ over ALL learnable diffs
//!    exceeds it, every diff is scaled by clip / ‖g‖₂ (before the 1/iter_size
//!    scaling, as Caffe does, so the threshold applies to the summed diffs);
//! 2. normalise: g /= iter_size when iter_size > 1;
//! 3. regularise with decay = weight_decay · decay_mult, when non-zero:
//!    L2 g += decay · w, L1 g += decay · sign(w);
//! 4. the update rule ([`rules`]) with lr = rate · lr_mult gives the step s;
//! 5. w −= s (the diff is left holding s, as Caffe's).
//!
//! Steps 2–5 are element-wise and fused into one parallel pass per blob with
//! the same per-element operation order, so the result does not depend on the
//! thread count. CenterLoss centres go through the same steps: their diff is
//! the centre update rather than a gradient, which the solver does not care about.

pub mod rules;

use crate::blob::Blob;
use crate::error::{Error, Result};
use crate::net::Net;
use crate::solverdef::SolverParams;
use rayon::prelude::*;
pub use rules::{Coeffs, Hyper, Rule};

/// Elements per parallel task.
const CHUNK: usize = 1 << 14;

/// `regularization_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Regularization {
    L1,
    L2,
}

/// What one [`Solver::apply_update`] did, for the log.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UpdateInfo {
    /// ‖g‖₂ and the factor applied, when clipping scaled the diffs down.
    pub clipped: Option<(f64, f32)>,
}

/// An update rule with its history blobs, one set per learnable blob of the net.
#[derive(Debug, Clone)]
pub struct Solver {
    pub rule: Rule,
    pub hyper: Hyper,
    pub regularization: Regularization,
    pub weight_decay: f32,
    pub iter_size: u32,
    /// Negative: off.
    pub clip_gradients: f32,
    /// Per learnable ([`Net::learnables`] order), [`Rule::histories`] blobs of its size.
    pub history: Vec<Vec<Vec<f32>>>,
}

impl Solver {
    /// A solver for `net` from checked solver parameters.
    pub fn new(p: &SolverParams, net: &Net) -> Result<Solver> {
        let rule = Rule::from_name(&p.type_name)
            .ok_or_else(|| Error::Other(format!("unknown solver type \"{}\"", p.type_name)))?;
        let regularization = match p.regularization_type.as_str() {
            "L1" => Regularization::L1,
            "L2" => Regularization::L2,
            other => {
                return Err(Error::Other(format!(
                    "unknown regularization_type \"{other}\""
                )))
            }
        };
        let hyper = Hyper {
            momentum: p.momentum,
            momentum2: p.momentum2,
            rms_decay: p.rms_decay,
            delta: p.delta,
        };
        let mut s = Solver::with_rule(rule, hyper, net);
        s.regularization = regularization;
        s.weight_decay = p.weight_decay;
        s.iter_size = p.iter_size.max(1) as u32;
        s.clip_gradients = p.clip_gradients;
        Ok(s)
    }

    /// A solver with zeroed histories, no weight decay, iter_size 1, no clipping.
    pub fn with_rule(rule: Rule, hyper: Hyper, net: &Net) -> Solver {
        let history = net
            .learnables
            .iter()
            .map(|l| vec![vec![0.0; net.params[l.param].count()]; rule.histories()])
            .collect();
        Solver {
            rule,
            hyper,
            regularization: Regularization::L2,
            weight_decay: 0.0,
            iter_size: 1,
            clip_gradients: -1.0,
            history,
        }
    }

    /// Updates every learnable blob of `net` from its diff at learning rate
    /// `rate` during 0-based iteration `iter`.
    pub fn apply_update(&mut self, net: &mut Net, rate: f32, iter: u64) -> UpdateInfo {
        let mut scale = 1.0f32;
        let mut clipped = None;
        if self.clip_gradients >= 0.0 {
            let sumsq: f64 = net
                .learnables
                .iter()
                .map(|l| net.params[l.param].sumsq_diff())
                .sum();
            let norm = sumsq.sqrt();
            if norm > self.clip_gradients as f64 {
                scale = (self.clip_gradients as f64 / norm) as f32;
                clipped = Some((norm, scale));
            }
        }
        let inv_iter_size = 1.0 / self.iter_size as f32;
        for (i, l) in net.learnables.iter().enumerate() {
            let blob = &mut net.params[l.param];
            let coeffs = Coeffs {
                rule: self.rule,
                hyper: self.hyper,
                local_rate: rate * l.lr_mult,
                t: iter + 1,
            };
            let prep = Prep {
                clip: clipped.map(|_| scale),
                inv_iter_size: (self.iter_size > 1).then_some(inv_iter_size),
                decay: self.weight_decay * l.decay_mult,
                regularization: self.regularization,
            };
            update_blob(&coeffs, &prep, blob, &mut self.history[i]);
        }
        UpdateInfo { clipped }
    }

    /// `(name, values)` of every history blob: `<param name>.history<k>`.
    pub fn history_entries<'a>(
        &'a self,
        net: &'a Net,
    ) -> impl Iterator<Item = (String, &'a [usize], &'a [f32])> + 'a {
        net.learnables
            .iter()
            .zip(&self.history)
            .flat_map(move |(l, hs)| {
                let shape = net.params[l.param].shape();
                hs.iter()
                    .enumerate()
                    .map(move |(k, h)| (history_name(&l.name, k), shape, h.as_slice()))
            })
    }
}

/// The name of history blob `k` of learnable `param`.
pub fn history_name(param: &str, k: usize) -> String {
    format!("{param}.history{k}")
}

/// The element-wise preparation of a diff before the rule.
#[derive(Debug, Clone, Copy)]
struct Prep {
    clip: Option<f32>,
    inv_iter_size: Option<f32>,
    decay: f32,
    regularization: Regularization,
}

/// One parallel task: weights, diffs and history chunks of the same range.
type Task<'a> = (&'a mut [f32], &'a mut [f32], Vec<&'a mut [f32]>);

/// Steps 2–5 on one blob, in parallel chunks.
fn update_blob(c: &Coeffs, p: &Prep, blob: &mut Blob, history: &mut [Vec<f32>]) {
    let (data, diff) = blob.data_mut_and_diff_mut();
    let mut hist: Vec<_> = history.iter_mut().map(|h| h.chunks_mut(CHUNK)).collect();
    let tasks: Vec<Task> = data
        .chunks_mut(CHUNK)
        .zip(diff.chunks_mut(CHUNK))
        .map(|(w, g)| {
            let h = hist.iter_mut().filter_map(|it| it.next()).collect();
            (w, g, h)
        })
        .collect();
    tasks.into_par_iter().for_each(|(w, g, mut h)| {
        prepare(p, w, g);
        rules::steps(c, g, &mut h);
        for (w, s) in w.iter_mut().zip(g.iter()) {
            *w -= *s;
        }
    });
}

/// Clip scale, 1/iter_size and regularisation, each a separate rounding as in Caffe.
fn prepare(p: &Prep, w: &[f32], g: &mut [f32]) {
    if let Some(s) = p.clip {
        g.iter_mut().for_each(|g| *g *= s);
    }
    if let Some(s) = p.inv_iter_size {
        g.iter_mut().for_each(|g| *g *= s);
    }
    if p.decay != 0.0 {
        match p.regularization {
            Regularization::L2 => {
                for (g, &w) in g.iter_mut().zip(w) {
                    *g += p.decay * w;
                }
            }
            Regularization::L1 => {
                for (g, &w) in g.iter_mut().zip(w) {
                    *g += p.decay * sign(w);
                }
            }
        }
    }
}

/// Caffe's `caffe_sign`: −1, 0 or 1.
fn sign(x: f32) -> f32 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        0.0
    }
}
