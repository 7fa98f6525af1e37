//! Health checks between iterations (divergence, non-finite values) and the
//! test passes.

use super::*;

impl Trainer {
    pub(super) fn diverged(&self, what: String) -> Error {
        let last = match &self.last_snapshot {
            Some(b) => format!(
                "the last good snapshot is `{}` (resume with `--snapshot {}`)",
                b.display(),
                b.display()
            ),
            None => "no snapshot was written by this run".to_string(),
        };
        Error::Other(format!(
            "training diverged at iteration {}: {what}\n  {last}; nothing was saved after it",
            self.iter
        ))
    }

    /// Stops on a non-finite loss or output, or on a layer's health note.
    pub(super) fn check_forward(&self, loss: f64) -> Result<()> {
        let outputs_ok = self
            .net
            .graph
            .outputs
            .iter()
            .all(|&id| non_finite_kind(self.net.blobs[id].data()).is_none());
        if !loss.is_finite() || !outputs_ok {
            let place = locate_forward(&self.net)
                .unwrap_or_else(|| "a net output is not finite".to_string());
            return Err(self.diverged(format!("{place} (loss {})", fmt_g(loss))));
        }
        for node in &self.net.graph.nodes {
            if let Some(note) = node.layer.health() {
                return Err(self.diverged(format!("{}: {note}", node.def.describe())));
            }
        }
        Ok(())
    }

    /// Stops on a non-finite learnable diff.
    pub fn check_diffs(&self) -> Result<()> {
        let owners = owner_nodes(&self.net);
        for l in &self.net.learnables {
            if let Some(kind) = non_finite_kind(self.net.params[l.param].diff()) {
                let layer = owners
                    .get(&l.param)
                    .map(|&n| self.net.graph.nodes[n].def.describe())
                    .unwrap_or_default();
                return Err(self.diverged(format!(
                    "the diff of learnable blob `{}` of {layer} holds {kind} after backward",
                    l.name
                )));
            }
        }
        Ok(())
    }

    /// Tests every test net (Caffe's `TestAll`).
    pub fn test_all(&mut self) -> Result<()> {
        for k in 0..self.test_nets.len() {
            if self.stop {
                break;
            }
            let scores = self.test(k)?;
            self.last_tests[k] = scores;
        }
        Ok(())
    }

    /// One test of test net `k` on the train net's current values; `None`
    /// when interrupted by a stop request.
    pub(super) fn test(&mut self, k: usize) -> Result<Option<TestScores>> {
        self.log
            .line(&format!("Iteration {}, Testing net (#{k})", self.iter));
        let tn = &mut self.test_nets[k];
        for &(a, b) in &tn.share {
            tn.net.params[a].share_data(&self.net.params[b]);
        }
        let result = self.test_passes(k);
        let tn = &mut self.test_nets[k];
        for &(a, _) in &tn.share {
            tn.net.params[a].release_shared_data();
        }
        result
    }

    pub(super) fn test_passes(&mut self, k: usize) -> Result<Option<TestScores>> {
        let iters = self.test_nets[k].iters;
        let mut sums: Vec<(String, f32, f64)> = Vec::new();
        let mut loss = 0.0f64;
        for i in 0..iters {
            match self.requested_action() {
                SignalEffect::Stop => {
                    self.stop = true;
                    self.log.line("Test interrupted.");
                    return Ok(None);
                }
                SignalEffect::Snapshot => {
                    self.snapshot()?;
                }
                SignalEffect::None => {}
            }
            self.feed(Role::Test(k), i)?;
            let net = &mut self.test_nets[k].net;
            loss += net.forward()?;
            let values = output_values(net);
            if i == 0 {
                sums = values
                    .into_iter()
                    .map(|(n, w, v)| (n, w, v as f64))
                    .collect();
            } else {
                for (s, (_, _, v)) in sums.iter_mut().zip(values) {
                    s.2 += v as f64;
                }
            }
        }
        let n = iters.max(1) as f64;
        let compute_loss = self.def.params.test_compute_loss;
        if compute_loss {
            self.log.line(&format!("Test loss: {}", fmt_g(loss / n)));
        }
        let outputs: Vec<(String, f64, f32)> = sums
            .into_iter()
            .map(|(name, w, s)| (name, s / n, w))
            .collect();
        for (i, (name, mean, w)) in outputs.iter().enumerate() {
            self.log.line(&format!(
                "    Test net output #{i}: {name} = {}{}",
                fmt_g(*mean),
                loss_note(*w, *mean)
            ));
        }
        let values: Vec<(String, f64)> = outputs.iter().map(|o| (o.0.clone(), o.1)).collect();
        self.log.record(&Record {
            iter: self.iter,
            phase: Phase::Test,
            net: Some(k),
            lr: self.rate() as f32 as f64,
            seconds: self.started.elapsed().as_secs_f64(),
            loss: compute_loss.then_some(loss / n),
            outputs: record_names(&values),
        });
        Ok(Some(TestScores {
            loss: compute_loss.then_some(loss / n),
            outputs,
        }))
    }
}
