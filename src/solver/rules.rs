//! Caffe's update rules, element by element, in f32 and in Caffe's order of
//! operations (so results match Caffe's BLAS sequence up to FMA contraction).
//! Legend: g gradient (after clipping, 1/iter_size, regularisation), w weight,
//! lr = base rate · lr_mult, μ momentum, β₂ momentum2, ρ rms_decay, δ delta,
//! h₀/h₁ the history blobs; each rule returns the step s and the caller does w −= s.
//!
//! * SGD:      h₀ = μh₀ + lr·g;                     s = h₀
//! * Nesterov: h₀' = μh₀ + lr·g;                    s = (1+μ)h₀' − μh₀
//! * AdaGrad:  h₀ += g²;                            s = lr·g / (√h₀ + δ)
//! * RMSProp:  h₀ = ρh₀ + (1−ρ)g²;                  s = lr·g / (√h₀ + δ)
//! * AdaDelta: h₀ = μh₀ + (1−μ)g²; u = g·√((h₁+δ)/(h₀+δ)); h₁ = μh₁ + (1−μ)u²; s = lr·u
//! * Adam:     h₀ = β₁h₀ + (1−β₁)g; h₁ = β₂h₁ + (1−β₂)g²;
//!   s = lr·√(1−β₂ᵗ)/(1−β₁ᵗ) · h₀ / (√h₁ + δ), t = iteration + 1 (β₁ = μ)

/// The update rule named by the solver's `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    Sgd,
    Nesterov,
    AdaGrad,
    RmsProp,
    AdaDelta,
    Adam,
}

impl Rule {
    /// From a `type` string ([`crate::solverdef::SOLVER_TYPES`]).
    pub fn from_name(name: &str) -> Option<Rule> {
        use Rule::*;
        [Sgd, Nesterov, AdaGrad, RmsProp, AdaDelta, Adam]
            .into_iter()
            .find(|r| r.name() == name)
    }

    pub fn name(self) -> &'static str {
        crate::solverdef::SOLVER_TYPES[self as usize]
    }

    /// History blobs kept per learnable blob (Caffe's `history_` entries).
    pub fn histories(self) -> usize {
        match self {
            Rule::AdaDelta | Rule::Adam => 2,
            _ => 1,
        }
    }
}

/// The solver's coefficients an update rule reads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hyper {
    /// μ (SGD, Nesterov, AdaDelta) or β₁ (Adam).
    pub momentum: f32,
    /// β₂ (Adam).
    pub momentum2: f32,
    /// ρ (RMSProp).
    pub rms_decay: f32,
    /// δ (AdaGrad, RMSProp, AdaDelta, Adam).
    pub delta: f32,
}

/// One learnable blob's update inputs besides its elements.
#[derive(Debug, Clone, Copy)]
pub struct Coeffs {
    pub rule: Rule,
    pub hyper: Hyper,
    /// lr · lr_mult.
    pub local_rate: f32,
    /// Adam's 1-based step t.
    pub t: u64,
}

impl Coeffs {
    /// Adam's rate with bias correction: lr · √(1−β₂ᵗ) / (1−β₁ᵗ); the
    /// correction is formed in f64 (as C++'s `pow(float, int)` does) and rounded once.
    pub fn adam_rate(&self) -> f32 {
        let t = self.t.min(i32::MAX as u64) as i32;
        let b1 = self.hyper.momentum as f64;
        let b2 = self.hyper.momentum2 as f64;
        let correction = ((1.0 - b2.powi(t)).sqrt() / (1.0 - b1.powi(t))) as f32;
        self.local_rate * correction
    }
}

/// Turns gradients `g` into steps in place, updating the histories `h`
/// (as many as [`Rule::histories`], each as long as `g`).
pub fn steps(c: &Coeffs, g: &mut [f32], h: &mut [&mut [f32]]) {
    let Hyper {
        momentum: mu,
        momentum2: b2,
        rms_decay: rho,
        delta,
    } = c.hyper;
    let lr = c.local_rate;
    match (c.rule, h) {
        (Rule::Sgd, [h0, ..]) => {
            for (g, h) in g.iter_mut().zip(h0.iter_mut()) {
                *h = mu * *h + lr * *g;
                *g = *h;
            }
        }
        (Rule::Nesterov, [h0, ..]) => {
            for (g, h) in g.iter_mut().zip(h0.iter_mut()) {
                let old = *h;
                *h = mu * *h + lr * *g;
                *g = (1.0 + mu) * *h - mu * old;
            }
        }
        (Rule::AdaGrad, [h0, ..]) => {
            for (g, h) in g.iter_mut().zip(h0.iter_mut()) {
                *h += *g * *g;
                *g = lr * (*g / (h.sqrt() + delta));
            }
        }
        (Rule::RmsProp, [h0, ..]) => {
            for (g, h) in g.iter_mut().zip(h0.iter_mut()) {
                *h = rho * *h + (1.0 - rho) * (*g * *g);
                *g = lr * (*g / (h.sqrt() + delta));
            }
        }
        (Rule::AdaDelta, [h0, h1, ..]) => {
            for ((g, a), b) in g.iter_mut().zip(h0.iter_mut()).zip(h1.iter_mut()) {
                *a = mu * *a + (1.0 - mu) * (*g * *g);
                let u = *g * ((*b + delta) / (*a + delta)).sqrt();
                *b = mu * *b + (1.0 - mu) * (u * u);
                *g = lr * u;
            }
        }
        (Rule::Adam, [h0, h1, ..]) => {
            let rate = c.adam_rate();
            let b1 = mu;
            for ((g, m), v) in g.iter_mut().zip(h0.iter_mut()).zip(h1.iter_mut()) {
                *m = b1 * *m + (1.0 - b1) * *g;
                *v = b2 * *v + (1.0 - b2) * (*g * *g);
                *g = rate * (*m / (v.sqrt() + delta));
            }
        }
        (rule, h) => unreachable!(
            "{} needs {} history blobs, got {}",
            rule.name(),
            rule.histories(),
            h.len()
        ),
    }
}
