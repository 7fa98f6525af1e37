//! The learning-rate schedule: Caffe's policies, and the schedule in words.

use super::*;

/// Learning rate at 0-based iteration `iter` under Caffe's policies:
///
/// * fixed: `base_lr`
/// * step: `base_lr · gamma^floor(iter / stepsize)`
/// * exp: `base_lr · gamma^iter`
/// * inv: `base_lr · (1 + gamma · iter)^(−power)`
/// * multistep: `base_lr · gamma^s`, `s` = how many leading `stepvalue`s are ≤ iter
/// * poly: `base_lr · (1 − iter / max_iter)^power`
/// * sigmoid: `base_lr / (1 + exp(−gamma · (iter − stepsize)))`
///
/// Parsing rejects unknown policies; for one the result is NaN.
pub fn learning_rate(p: &SolverParams, iter: u64) -> f64 {
    let base = p.base_lr as f64;
    let gamma = p.gamma as f64;
    let power = p.power as f64;
    let it = iter as f64;
    match LrPolicy::from_name(&p.lr_policy) {
        Some(LrPolicy::Fixed) => base,
        Some(LrPolicy::Step) => {
            let step = if p.stepsize > 0 {
                iter / p.stepsize as u64
            } else {
                0
            };
            base * gamma.powf(step as f64)
        }
        Some(LrPolicy::Exp) => base * gamma.powf(it),
        Some(LrPolicy::Inv) => base * (1.0 + gamma * it).powf(-power),
        Some(LrPolicy::MultiStep) => {
            // Caffe advances one step at a time while the next stepvalue is reached,
            // so only the leading run of reached values counts.
            let s = p
                .stepvalue
                .iter()
                .take_while(|&&v| iter as i64 >= v as i64)
                .count();
            base * gamma.powi(s as i32)
        }
        Some(LrPolicy::Poly) => base * (1.0 - it / p.max_iter as f64).powf(power),
        Some(LrPolicy::Sigmoid) => base / (1.0 + (-gamma * (it - p.stepsize as f64)).exp()),
        None => f64::NAN,
    }
}

/// A number with at most 6 significant digits, without trailing zeros.
pub fn fmt_num(x: f64) -> String {
    let rounded: f64 = format!("{x:.5e}").parse().unwrap_or(x);
    format!("{rounded}")
}

/// The schedule in words, e.g. `multistep: 0.01 until 5000, 0.008 until 8000, 0.0064 after`.
pub fn describe_schedule(p: &SolverParams) -> String {
    let Some(policy) = LrPolicy::from_name(&p.lr_policy) else {
        return format!("unknown policy \"{}\"", p.lr_policy);
    };
    let lr = |i: u64| fmt_num(learning_rate(p, i));
    let max = p.max_iter.max(0) as u64;
    let name = policy.name();
    let g = fmt_num(p.gamma as f64);
    let pw = fmt_num(p.power as f64);
    let formula = match policy {
        LrPolicy::Fixed => return format!("fixed: {}", lr(0)),
        LrPolicy::Step | LrPolicy::MultiStep => {
            let bounds: Vec<u64> = if policy == LrPolicy::Step {
                let s = p.stepsize.max(1) as u64;
                (1..).map(|k| k * s).take_while(|&b| b < max).collect()
            } else {
                p.stepvalue
                    .iter()
                    .map(|&v| v.max(0) as u64)
                    .filter(|&b| b > 0 && b < max)
                    .collect()
            };
            if bounds.is_empty() {
                return format!("{name}: {} throughout", lr(0));
            }
            let mut parts = vec![];
            let mut from = 0;
            for (i, &b) in bounds.iter().enumerate() {
                if i == 4 && bounds.len() > 5 {
                    parts.push("…".to_string());
                    break;
                }
                parts.push(format!("{} until {b}", lr(from)));
                from = b;
            }
            let last = *bounds.last().unwrap_or(&0);
            parts.push(format!("{} after", lr(last)));
            return format!("{name}: {}", parts.join(", "));
        }
        LrPolicy::Exp => format!("base_lr · {g}^iter"),
        LrPolicy::Inv => format!("base_lr · (1 + {g} · iter)^-{pw}"),
        LrPolicy::Poly => format!("base_lr · (1 - iter/{max})^{pw}"),
        LrPolicy::Sigmoid => format!("base_lr / (1 + exp(-{g} · (iter - {})))", p.stepsize),
    };
    format!(
        "{name}: {formula}, from {} at 0 to {} at {max}",
        lr(0),
        lr(max)
    )
}
