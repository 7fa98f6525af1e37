//! The training loop: building the nets, feeding, stepping, displaying,
//! snapshotting and reacting to signals.

use super::*;

impl Trainer {
    /// Builds the nets and the solver; output goes to `log`.
    pub fn new(def: SolverDef, opts: TrainOptions, log: Log) -> Result<Trainer> {
        let p = &def.params;
        let seed = if p.random_seed >= 0 {
            p.random_seed as u64
        } else {
            DEFAULT_SEED
        };
        let net = build_net(&def, &def.train_net, &opts, seed)?;
        let mut test_nets = Vec::new();
        for (k, spec) in def.test_nets.iter().enumerate() {
            let mut tnet = build_net(&def, spec, &opts, seed.wrapping_add(1 + k as u64))?;
            let share = share_map(&net, &tnet)?;
            // The test net's own initial values of shared blobs are never read: free them now.
            for &(a, b) in &share {
                tnet.params[a].share_data(&net.params[b]);
                tnet.params[a].release_shared_data();
            }
            test_nets.push(TestNet {
                net: tnet,
                iters: spec.test_iter.unwrap_or(0).max(0) as usize,
                share,
            });
        }
        let solver = Solver::new(p, &net)?;
        let prefix = def.snapshot_prefix();
        let now = Instant::now();
        Ok(Trainer {
            last_tests: vec![None; test_nets.len()],
            smoothed: Smoother::new(p.average_loss.max(1) as usize),
            def,
            net,
            test_nets,
            solver,
            iter: 0,
            prefix,
            seed,
            log,
            signals: Signals::default(),
            opts,
            feeder: None,
            started: now,
            last_display: (now, 0),
            last_snapshot: None,
            resumed_from: None,
            stop: false,
        })
    }

    /// Calls `f` before every forward pass of every net.
    pub fn set_feeder(&mut self, f: Feeder) {
        self.feeder = Some(f);
    }

    /// The learning rate of the current iteration.
    pub fn rate(&self) -> f64 {
        learning_rate(&self.def.params, self.iter)
    }

    /// The base name of the latest snapshot written or resumed from.
    pub fn last_snapshot(&self) -> Option<&Path> {
        self.last_snapshot.as_deref()
    }

    pub(super) fn feed(&mut self, role: Role, pass: usize) -> Result<()> {
        let feed = Feed {
            role,
            iter: self.iter,
            pass,
        };
        let net = match role {
            Role::Train => &mut self.net,
            Role::Test(k) => &mut self.test_nets[k].net,
        };
        match &mut self.feeder {
            Some(f) => f(net, &feed),
            None => Ok(()),
        }
    }

    /// Caffe's `Solve`: trains to `max_iter` (from the current iteration), then
    /// snapshots, displays and tests as Caffe does at the end.
    pub fn solve(&mut self) -> Result<Outcome> {
        let result = self.solve_inner();
        // On error too: the progress bar must not stay on screen above the message.
        self.log.finish();
        result
    }

    pub(super) fn solve_inner(&mut self) -> Result<Outcome> {
        let p = self.def.params.clone();
        self.open_logs()?;
        self.log.line(&format!("Solving {}", self.net.graph.name));
        self.log
            .line(&format!("Learning Rate Policy: {}", p.lr_policy));
        self.log.start_at(self.iter);
        self.started = Instant::now();
        self.last_display = (self.started, self.iter);
        let start = self.iter;
        let max = p.max_iter.max(0) as u64;
        self.step(max.saturating_sub(self.iter))?;
        let periodic = every(self.iter, p.snapshot);
        let ran = self.iter > start || self.resumed_from.is_none();
        if p.snapshot_after_train && !periodic && ran {
            self.snapshot()?;
        }
        if self.stop {
            self.log.line("Optimization stopped early.");
            return Ok(Outcome::Stopped);
        }
        if every(self.iter, p.display) {
            self.feed(Role::Train, 0)?;
            let loss = self.net.forward()?;
            self.smoothed.push(loss);
            self.log.line(&format!(
                "Iteration {}, loss = {}",
                self.iter,
                fmt_g(self.smoothed.value)
            ));
        }
        if every(self.iter, p.test_interval) {
            self.test_all()?;
        }
        self.log.line("Optimization Done.");
        Ok(if self.stop {
            Outcome::Stopped
        } else {
            Outcome::Finished
        })
    }

    /// `<prefix>.log` (glog-prefixed lines) and `<prefix>.log.jsonl`, appended
    /// to; their folder (the snapshots') is created if missing.
    pub(super) fn open_logs(&mut self) -> Result<()> {
        let text = PathBuf::from(format!("{}.log", self.prefix));
        if let Some(dir) = text.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.is_dir() {
                std::fs::create_dir_all(dir).map_err(|e| Error::Io {
                    path: dir.to_path_buf(),
                    message: e.to_string(),
                })?;
                self.log
                    .line(&format!("Created snapshot folder {}", dir.display()));
            }
        }
        let open = |path: PathBuf| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| Error::Io {
                    path,
                    message: e.to_string(),
                })
        };
        self.log.set_text(open(text)?);
        self.log
            .set_jsonl(open(PathBuf::from(format!("{}.log.jsonl", self.prefix)))?);
        Ok(())
    }

    /// Runs up to `iters` iterations (fewer when a stop is requested).
    pub fn step(&mut self, iters: u64) -> Result<()> {
        let p = self.def.params.clone();
        let stop_at = self.iter + iters;
        let iter_size = p.iter_size.max(1) as usize;
        while self.iter < stop_at && !self.stop {
            self.net.clear_param_diffs();
            if every(self.iter, p.test_interval) && (self.iter > 0 || p.test_initialization) {
                self.test_all()?;
                if self.stop {
                    break;
                }
            }
            let display = every(self.iter, p.display);
            let mut loss = 0.0f64;
            for pass in 0..iter_size {
                self.feed(Role::Train, pass)?;
                let l = self.net.forward()?;
                self.check_forward(l)?;
                self.net.backward()?;
                loss += l;
            }
            loss /= iter_size as f64;
            self.smoothed.push(loss);
            if display {
                self.display();
            }
            self.check_diffs()?;
            let rate = self.rate();
            if display {
                self.log
                    .line(&format!("Iteration {}, lr = {}", self.iter, fmt_g(rate)));
            }
            let info = self
                .solver
                .apply_update(&mut self.net, rate as f32, self.iter);
            if let Some((norm, scale)) = info.clipped {
                self.log.line(&format!(
                    "Gradient clipping: scaling down gradients (L2 norm {} > {}) by scale factor {}",
                    fmt_g(norm),
                    fmt_g(p.clip_gradients as f64),
                    fmt_g(scale as f64)
                ));
            }
            self.iter += 1;
            self.log.progress(self.iter, self.smoothed.value);
            let action = self.requested_action();
            if (every(self.iter, p.snapshot)) || action == SignalEffect::Snapshot {
                self.snapshot()?;
            }
            if action == SignalEffect::Stop {
                self.stop = true;
            }
        }
        Ok(())
    }

    /// Caffe's display block: smoothed loss, speed and each train output.
    pub(super) fn display(&mut self) {
        let (since, from) = self.last_display;
        let lapse = since.elapsed().as_secs_f64();
        let per_s = (self.iter - from) as f64 / lapse.max(1e-9);
        let shown = self.def.params.display;
        let head = if self.iter > from {
            format!(
                "Iteration {} ({} iter/s, {}s/{shown} iters), loss = {}",
                self.iter,
                fmt_g(per_s),
                fmt_g(lapse),
                fmt_g(self.smoothed.value)
            )
        } else {
            format!(
                "Iteration {}, loss = {}",
                self.iter,
                fmt_g(self.smoothed.value)
            )
        };
        self.log.line(&head);
        let outputs = output_values(&self.net);
        for (k, (name, w, v)) in outputs.iter().enumerate() {
            self.log.line(&format!(
                "    Train net output #{k}: {name} = {}{}",
                fmt_g(*v as f64),
                loss_note(*w, *v as f64)
            ));
        }
        let values: Vec<(String, f64)> =
            outputs.into_iter().map(|(n, _, v)| (n, v as f64)).collect();
        self.log.record(&Record {
            iter: self.iter,
            phase: Phase::Train,
            net: None,
            lr: self.rate() as f32 as f64,
            seconds: self.started.elapsed().as_secs_f64(),
            loss: Some(self.smoothed.value),
            outputs: record_names(&values),
        });
        self.last_display = (Instant::now(), self.iter);
    }

    /// Caffe's `GetRequestedAction`: an interrupt first, then a hangup.
    pub(super) fn requested_action(&mut self) -> SignalEffect {
        if self.signals.interrupt.swap(false, Ordering::SeqCst) {
            return self.opts.sigint_effect;
        }
        if self.signals.hangup.swap(false, Ordering::SeqCst) {
            return self.opts.sighup_effect;
        }
        SignalEffect::None
    }
}
