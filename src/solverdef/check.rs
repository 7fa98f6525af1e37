//! Checks of a solver's values that Caffe makes at start-up or at its first iteration.

use super::*;

pub(super) struct Check<'a> {
    pub(super) root: &'a Block,
    pub(super) source: &'a Arc<SourceFile>,
}

impl Check<'_> {
    /// Span of the `index`-th value of a field, or of the first field of the file.
    pub(super) fn span(&self, field: &str, index: usize) -> Span {
        self.root
            .all(field)
            .nth(index)
            .map(|f| f.value_span)
            .unwrap_or_else(|| self.top())
    }

    /// Where "the solver has no X" points: its first field.
    pub(super) fn top(&self) -> Span {
        self.root
            .fields
            .first()
            .map_or(Span::default(), |f| f.name_span)
    }

    pub(super) fn has(&self, field: &str) -> bool {
        self.root.get(field).is_some()
    }

    pub(super) fn error(
        &self,
        span: Span,
        message: impl Into<String>,
        help: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic::new(message)
            .at(self.source, span)
            .with_help(help)
    }

    pub(super) fn solver_type(&self, p: &mut SolverParams, diags: &mut Vec<Diagnostic>) {
        if let Some(t) = p.solver_type {
            if self.has("type") {
                diags.push(self.error(
                    self.span("solver_type", 0),
                    "both `solver_type` (deprecated) and `type` are given",
                    format!("keep `type: \"{}\"` only", p.type_name),
                ));
                return;
            }
            p.type_name = t.type_name().to_string();
        }
        if !SOLVER_TYPES.contains(&p.type_name.as_str()) {
            diags.push(
                Diagnostic::new(format!("unknown solver type \"{}\"", p.type_name))
                    .at(self.source, self.span("type", 0))
                    .with_help_opt(Some(
                        did_you_mean(&p.type_name, SOLVER_TYPES.iter().copied()).unwrap_or_else(
                            || format!("the types are \"{}\"", SOLVER_TYPES.join("\", \"")),
                        ),
                    )),
            );
        }
    }

    pub(super) fn lr_policy(
        &self,
        p: &SolverParams,
        diags: &mut Vec<Diagnostic>,
    ) -> Option<LrPolicy> {
        let list = format!("the policies are \"{}\"", LR_POLICIES.join("\", \""));
        if !self.has("lr_policy") {
            diags.push(self.error(
                self.top(),
                "the solver has no `lr_policy`",
                format!(
                    "Caffe has no default; write `lr_policy: \"fixed\"` \
                     for a constant rate ({list})"
                ),
            ));
            return None;
        }
        let at = self.span("lr_policy", 0);
        let Some(policy) = LrPolicy::from_name(&p.lr_policy) else {
            diags.push(
                Diagnostic::new(format!("unknown lr_policy \"{}\"", p.lr_policy))
                    .at(self.source, at)
                    .with_help(
                        did_you_mean(&p.lr_policy, LR_POLICIES.iter().copied()).unwrap_or(list),
                    ),
            );
            return None;
        };
        let name = policy.name();
        let formula = match policy {
            LrPolicy::Fixed => "base_lr",
            LrPolicy::Step => "base_lr · gamma^floor(iter / stepsize)",
            LrPolicy::Exp => "base_lr · gamma^iter",
            LrPolicy::Inv => "base_lr · (1 + gamma · iter)^(-power)",
            LrPolicy::MultiStep => "base_lr · gamma^(number of stepvalues reached)",
            LrPolicy::Poly => "base_lr · (1 - iter / max_iter)^power",
            LrPolicy::Sigmoid => "base_lr / (1 + exp(-gamma · (iter - stepsize)))",
        };
        let needs = |field: &str| {
            self.error(
                at,
                format!("lr_policy \"{name}\" needs `{field}`"),
                format!("the rate is {formula}: add `{field}: ...`"),
            )
        };
        let uses_gamma = !matches!(policy, LrPolicy::Fixed | LrPolicy::Poly);
        if uses_gamma && !self.has("gamma") {
            diags.push(needs("gamma"));
        }
        // Caffe checks gamma >= 0 for the decaying policies; sigmoid uses its sign for direction.
        if uses_gamma && policy != LrPolicy::Sigmoid && p.gamma < 0.0 {
            diags.push(self.error(
                self.span("gamma", 0),
                format!("lr_policy \"{name}\" needs gamma >= 0, found {}", p.gamma),
                format!("the rate is {formula}"),
            ));
        }
        if matches!(policy, LrPolicy::Inv | LrPolicy::Poly) && !self.has("power") {
            diags.push(needs("power"));
        }
        if matches!(policy, LrPolicy::Step | LrPolicy::Sigmoid) {
            if !self.has("stepsize") {
                diags.push(needs("stepsize"));
            } else if p.stepsize <= 0 {
                diags.push(self.error(
                    self.span("stepsize", 0),
                    format!(
                        "lr_policy \"{name}\" needs stepsize > 0, found {}",
                        p.stepsize
                    ),
                    format!("the rate is {formula}"),
                ));
            }
        }
        if policy == LrPolicy::Poly && self.has("max_iter") && p.max_iter <= 0 {
            diags.push(self.error(
                self.span("max_iter", 0),
                format!(
                    "lr_policy \"poly\" needs max_iter > 0, found {}",
                    p.max_iter
                ),
                format!("the rate is {formula}"),
            ));
        }
        if policy == LrPolicy::MultiStep {
            if p.stepvalue.is_empty() {
                diags.push(needs("stepvalue").with_help(
                    "one `stepvalue: N` line per iteration where the rate is multiplied by gamma",
                ));
            }
            for (i, w) in p.stepvalue.windows(2).enumerate() {
                if w[1] <= w[0] {
                    diags.push(self.error(
                        self.span("stepvalue", i + 1),
                        format!(
                            "stepvalue {} does not come after the previous stepvalue {}",
                            w[1], w[0]
                        ),
                        "stepvalues must increase: Caffe steps through them in order \
                         and never reaches one below the last",
                    ));
                }
            }
        }
        Some(policy)
    }

    pub(super) fn values(&self, p: &SolverParams, diags: &mut Vec<Diagnostic>) {
        let missing = [
            (
                "base_lr",
                "0, which never changes the weights: add `base_lr: 0.01` or similar",
            ),
            (
                "max_iter",
                "0, which stops before the first iteration: add `max_iter: N`",
            ),
        ];
        for (field, default) in missing {
            if !self.has(field) {
                diags.push(self.error(
                    self.top(),
                    format!("the solver has no `{field}`"),
                    format!("Caffe's default is {default}"),
                ));
            }
        }
        let non_negative = [
            (
                "base_lr",
                p.base_lr,
                "a negative rate climbs the loss; use a positive one",
            ),
            (
                "weight_decay",
                p.weight_decay,
                "weight decay pulls weights toward 0; 0 is off",
            ),
        ];
        for (field, value, why) in non_negative {
            if value < 0.0 {
                diags.push(self.error(
                    self.span(field, 0),
                    format!("{field} is negative ({value})"),
                    why,
                ));
            }
        }
        let minimums = [
            (
                "average_loss",
                p.average_loss,
                1,
                "the shown loss averages this many iterations",
            ),
            (
                "iter_size",
                p.iter_size,
                1,
                "gradients accumulate over this many passes; 1 is plain SGD",
            ),
            (
                "max_iter",
                p.max_iter,
                0,
                "the number of iterations to train",
            ),
            ("display", p.display, 0, "0 turns display off"),
            ("snapshot", p.snapshot, 0, "0 turns periodic snapshots off"),
            ("test_interval", p.test_interval, 0, "0 turns testing off"),
        ];
        let test_iters = p.test_iter.iter().enumerate().map(|(i, &n)| {
            (
                "test_iter",
                n,
                1,
                "test_iter is the number of forward passes per test",
                i,
            )
        });
        let all = minimums
            .into_iter()
            .map(|(f, v, m, w)| (f, v, m, w, 0))
            .chain(test_iters);
        for (field, value, min, why, index) in all {
            if value < min {
                diags.push(self.error(
                    self.span(field, index),
                    format!("{field} must be at least {min}, found {value}"),
                    why,
                ));
            }
        }
        // Caffe's AdaGrad and RMSProp refuse momentum; the rest use it (Adam as beta1).
        let t = p.type_name.as_str();
        if matches!(t, "AdaGrad" | "RMSProp") && p.momentum != 0.0 {
            diags.push(self.error(
                self.span("momentum", 0),
                format!("momentum cannot be used with {t}"),
                "remove `momentum`; the adaptive per-weight scale replaces it",
            ));
        }
        let decays = [
            (
                "momentum",
                p.momentum,
                true,
                "a momentum of 1 or more never forgets a gradient",
            ),
            (
                "momentum2",
                p.momentum2,
                t == "Adam",
                "Adam's decay of the squared-gradient average",
            ),
            (
                "rms_decay",
                p.rms_decay,
                t == "RMSProp",
                "RMSProp's decay of the squared-gradient average",
            ),
        ];
        for (field, value, used, why) in decays {
            if used && !(0.0..1.0).contains(&value) {
                diags.push(self.error(
                    self.span(field, 0),
                    format!("{field} must lie in [0, 1), found {value}"),
                    why,
                ));
            }
        }
        if !matches!(p.regularization_type.as_str(), "L1" | "L2") {
            diags.push(
                self.error(
                    self.span("regularization_type", 0),
                    format!("unknown regularization_type \"{}\"", p.regularization_type),
                    did_you_mean(&p.regularization_type, ["L1", "L2"])
                        .unwrap_or_else(|| "the types are \"L1\" and \"L2\"".into()),
                ),
            );
        }
    }
}
