//! Snapshots, resume and finetuning of a [`Trainer`] (file layout in [`super::snapshot`]).

use super::Trainer;
use super::{manifest, snapshot};
use crate::blob::Blob;
use crate::error::{Error, Result};
use crate::net::Net;
use crate::weights::{self, ApplyOptions, Tensors};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

impl Trainer {
    /// Writes the three snapshot files for the current iteration; returns their base name.
    pub fn snapshot(&mut self) -> Result<PathBuf> {
        let base = snapshot::base(&self.prefix, self.iter);
        if let Some(dir) = base.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::Io {
                path: dir.to_path_buf(),
                message: e.to_string(),
            })?;
        }
        let (weights, centers) = snapshot::split_params(&self.net);
        let mut meta = BTreeMap::new();
        meta.insert("iteration".to_string(), self.iter.to_string());
        meta.insert("net".to_string(), self.net.graph.name.clone());
        meta.insert("run".to_string(), self.run_id.clone());
        let abort_at = self.opts.abort_at_write_step;
        let mut steps = self.write_steps;
        let mut step = || {
            steps += 1;
            if abort_at == Some(steps) {
                // Fault injection (tests): stop as abruptly as `kill -9`.
                std::process::abort();
            }
        };
        let mut written = Vec::new();
        let mut files = vec![(snapshot::WEIGHTS, weights)];
        if !centers.is_empty() {
            files.push((snapshot::CENTERS, centers));
        }
        for (suffix, list) in &files {
            let path = snapshot::file(&base, suffix);
            self.log
                .line(&format!("Snapshotting to {}", path.display()));
            let refs: Vec<(String, &[usize], &[f32])> = list
                .iter()
                .map(|(n, p)| {
                    let b: &Blob = &self.net.params[*p];
                    (n.clone(), b.shape(), b.data())
                })
                .collect();
            snapshot::write_with(&path, &refs, &meta, &mut step)?;
            written.push(path);
        }
        if self.def.params.snapshot_format == Some(crate::solverdef::SnapshotFormat::BinaryProto) {
            let path = snapshot::file(&base, ".caffemodel");
            self.log.line(&format!(
                "Snapshotting to binary proto file {}",
                path.display()
            ));
            crate::caffe::write::write(&self.net, &path)?;
        }
        meta.insert("type".to_string(), self.solver.rule.name().to_string());
        meta.insert("smoothed_loss".to_string(), self.smoothed.to_meta());
        meta.extend(net_meta("train", &self.net));
        match &self.test_start_meta {
            Some(m) => meta.extend(m.clone()),
            None => meta.extend(self.test_nets_meta()),
        }
        let history: Vec<(String, &[usize], &[f32])> =
            self.solver.history_entries(&self.net).collect();
        let path = snapshot::file(&base, snapshot::SOLVERSTATE);
        self.log
            .line(&format!("Snapshotting solver state to {}", path.display()));
        snapshot::write_with(&path, &history, &meta, &mut step)?;
        written.push(path);
        let files = written
            .iter()
            .map(|p| manifest::entry_of(p))
            .collect::<Result<Vec<_>>>()?;
        let set = manifest::Manifest {
            run: self.run_id.clone(),
            iteration: self.iter,
            files,
        };
        manifest::write(&base, &set, &mut step)?;
        self.write_steps = steps;
        self.last_snapshot = Some(base.clone());
        Ok(base)
    }

    /// The snapshot entries (random stream, layer states) of the test nets.
    pub(super) fn test_nets_meta(&self) -> BTreeMap<String, String> {
        self.test_nets
            .iter()
            .enumerate()
            .flat_map(|(k, t)| net_meta(&format!("test{k}"), &t.net))
            .collect()
    }

    /// Resumes from a snapshot (`<prefix>_iter_N` or one of its files):
    /// weights, centres, solver history, iteration, layer states and random streams.
    pub fn resume(&mut self, arg: &Path) -> Result<()> {
        let base = snapshot::base_of(arg);
        match manifest::verify(&base)? {
            manifest::SetState::Complete(m) => self.run_id = m.run,
            manifest::SetState::Legacy => self.log.line(&format!(
                "{} has no manifest (written by an older netrun): its files are checked one by one",
                base.display()
            )),
        }
        let state = snapshot::read(&snapshot::file(&base, snapshot::SOLVERSTATE))?;
        let iteration = snapshot::meta(&state, "iteration")?;
        let iter: u64 = iteration.parse().map_err(|_| {
            Error::Other(format!(
                "`{}`: iteration `{iteration}` is not a number",
                state.path.display()
            ))
        })?;
        let rule = snapshot::meta(&state, "type")?;
        if rule != self.solver.rule.name() {
            return Err(Error::Other(format!(
                "`{}` was written by a {rule} solver but this solver's type is {}: \
                 its history does not apply (start from its weights with `--weights`)",
                state.path.display(),
                self.solver.rule.name()
            )));
        }
        let (weights, centers) = snapshot::split_params(&self.net);
        restore_file(
            &mut self.net,
            &snapshot::file(&base, snapshot::WEIGHTS),
            &weights,
        )?;
        if !centers.is_empty() {
            restore_file(
                &mut self.net,
                &snapshot::file(&base, snapshot::CENTERS),
                &centers,
            )?;
        }
        self.restore_history(&state)?;
        self.restore_nets(&state)?;
        // The displayed loss's window (`average_loss`); snapshots of older
        // netruns, or of a run with another `average_loss`, start it afresh.
        let window = self.def.params.average_loss.max(1) as usize;
        if let Some(s) = (state.metadata.get("smoothed_loss"))
            .and_then(|m| super::log::Smoother::from_meta(m, window))
        {
            self.smoothed = s;
        }
        self.iter = iter;
        self.resumed_from = Some(iter);
        self.last_snapshot = Some(base.clone());
        self.log.line(&format!(
            "Resuming from {} at iteration {iter}",
            base.display()
        ));
        Ok(())
    }

    fn restore_history(&mut self, state: &Tensors) -> Result<()> {
        for (i, l) in self.net.learnables.iter().enumerate() {
            let shape = self.net.params[l.param].shape();
            for (k, h) in self.solver.history[i].iter_mut().enumerate() {
                let name = crate::solver::history_name(&l.name, k);
                let Some(t) = state.tensors.get(&name) else {
                    return Err(Error::Other(format!(
                        "`{}` has no history `{name}` for the net's blob `{}`",
                        state.path.display(),
                        l.name
                    )));
                };
                if t.shape.as_slice() != shape {
                    return Err(Error::Other(format!(
                        "`{}`: history `{name}` is {} but the blob is {}",
                        state.path.display(),
                        crate::shape::fmt_shape(&t.shape),
                        crate::shape::fmt_shape(shape)
                    )));
                }
                h.copy_from_slice(&t.data);
            }
        }
        Ok(())
    }

    /// Layer states and random streams of every net.
    fn restore_nets(&mut self, state: &Tensors) -> Result<()> {
        let path = state.path.display().to_string();
        let nets = std::iter::once(("train".to_string(), &mut self.net)).chain(
            self.test_nets
                .iter_mut()
                .enumerate()
                .map(|(k, t)| (format!("test{k}"), &mut t.net)),
        );
        for (label, net) in nets {
            let rng = snapshot::meta(state, &format!("rng.{label}"))?;
            net.rng = snapshot::rng_from_string(rng).ok_or_else(|| {
                Error::Other(format!("`{path}`: unreadable random state `{rng}`"))
            })?;
            let prefix = format!("state.{label}.");
            for node in &mut net.graph.nodes {
                let own = format!("{prefix}{}.", node.def.name);
                let mut values = Vec::new();
                for (k, v) in state.metadata.range(own.clone()..) {
                    let Some(key) = k.strip_prefix(&own) else {
                        break;
                    };
                    if key.contains('.') {
                        continue;
                    }
                    let v: f64 = v.parse().map_err(|_| {
                        Error::Other(format!("`{path}`: state `{k}` = `{v}` is not a number"))
                    })?;
                    values.push((key.to_string(), v));
                }
                if !values.is_empty() {
                    node.layer.set_state(&values).map_err(|m| {
                        Error::Other(format!("`{path}`: {}: {m}", node.def.describe()))
                    })?;
                }
            }
        }
        Ok(())
    }

    /// `--weights`: copies same-named blobs from the files into the train net
    /// and logs what was skipped. A shape mismatch is an error.
    pub fn finetune(&mut self, files: &[PathBuf]) -> Result<()> {
        for line in load_weights(&mut self.net, files, false)? {
            self.log.line(&line);
        }
        Ok(())
    }
}

/// A net's snapshot entries: `rng.<label>` and `state.<label>.<layer>.<key>`.
fn net_meta(label: &str, net: &Net) -> BTreeMap<String, String> {
    let mut meta = BTreeMap::new();
    meta.insert(format!("rng.{label}"), snapshot::rng_to_string(&net.rng));
    for node in &net.graph.nodes {
        for (key, v) in node.layer.state() {
            meta.insert(
                format!("state.{label}.{}.{key}", node.def.name),
                format!("{v:?}"),
            );
        }
    }
    meta
}

/// Loads a snapshot file into the net; every blob of `expected` must be in it.
fn restore_file(net: &mut Net, path: &Path, expected: &[(String, usize)]) -> Result<()> {
    let file = snapshot::read(path)?;
    let report = weights::apply(net, &file, ApplyOptions::default())?;
    let absent: Vec<String> = expected
        .iter()
        .filter(|(n, _)| !report.loaded.contains(n))
        .map(|(n, _)| format!("`{n}`"))
        .collect();
    if absent.is_empty() {
        Ok(())
    } else {
        Err(Error::Other(format!(
            "`{}` has no tensor for the net's {}: the snapshot is of another net",
            path.display(),
            absent.join(", ")
        )))
    }
}

/// Copies every tensor of `files` whose name is a learnable blob of `net`
/// (a shape mismatch is an error); with `sibling_centers`, a net with
/// CenterLoss whose centres none of the files hold also reads the
/// `.centers.safetensors` beside a `.weights.safetensors`. Returns report lines.
pub fn load_weights(
    net: &mut Net,
    files: &[PathBuf],
    sibling_centers: bool,
) -> Result<Vec<String>> {
    let mut files = files.to_vec();
    let mut contents = Vec::new();
    for f in &files {
        contents.push(snapshot::read(f)?);
    }
    let (_, centers) = snapshot::split_params(net);
    let has = |c: &[Tensors], name: &str| c.iter().any(|c| c.tensors.contains_key(name));
    if sibling_centers && !centers.is_empty() && !centers.iter().any(|(n, _)| has(&contents, n)) {
        for f in files.clone() {
            let base = snapshot::base_of(&f);
            let c = snapshot::file(&base, snapshot::CENTERS);
            if base != f && c.is_file() {
                contents.push(snapshot::read(&c)?);
                files.push(c);
            }
        }
    }
    let mut lines = Vec::new();
    let mut loaded: Vec<String> = Vec::new();
    for c in &contents {
        let report = weights::apply(net, c, ApplyOptions::default())?;
        lines.push(format!(
            "Copied {} learnable blob(s) from {}",
            report.loaded.len(),
            c.path.display()
        ));
        if !report.unused.is_empty() {
            lines.push(format!(
                "  skipped (not in the net): {}",
                report.unused.join(", ")
            ));
        }
        loaded.extend(report.loaded);
    }
    let missing: Vec<&str> = net
        .learnables
        .iter()
        .map(|l| l.name.as_str())
        .filter(|n| !loaded.iter().any(|l| l == n))
        .collect();
    if !missing.is_empty() && !files.is_empty() {
        lines.push(format!(
            "  not in the weights (kept their initial values): {}",
            missing.join(", ")
        ));
    }
    Ok(lines)
}
