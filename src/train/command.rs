//! The `netrun train` and `netrun test` commands.

use super::log::{fmt_g, Log};
use super::{
    load_weights, loss_note, output_values, Feed, Feeder, Role, Signals, TestScores, TrainOptions,
    Trainer, DEFAULT_SEED,
};
use crate::error::{Diagnostic, Error, Result};
use crate::graph::{BuildOptions, Graph};
use crate::net::Net;
use crate::netdef::Phase;
use crate::solverdef::{SolverDef, SolverMode};
use std::path::{Path, PathBuf};

/// An explicit `solver_mode: GPU` cannot run in this build (no device backend
/// yet): an error at the field unless `--cpu` asks for the CPU. A solver that
/// does not name the mode runs on the CPU (Caffe's default would be GPU).
pub fn refuse_gpu_mode(def: &SolverDef, opts: &TrainOptions) -> Result<()> {
    let Some(field) = def.block.get("solver_mode") else {
        return Ok(());
    };
    if def.params.solver_mode != SolverMode::Gpu || opts.cpu {
        return Ok(());
    }
    Err(Error::Config(vec![Diagnostic::new(
        crate::backend::no_gpu_message("solver_mode: GPU"),
    )
    .at(&def.source, field.value_span)
    .with_help(
        "pass --cpu to train on the CPU, or write `solver_mode: CPU`",
    )]))
}

/// `netrun train SOLVER`: trains from scratch, from `--weights` (and the
/// solver's `weights`), or resumes from `--snapshot`, with signal handlers installed.
pub fn train_command(
    solver: &Path,
    resume: Option<&Path>,
    weights: &[PathBuf],
    opts: TrainOptions,
) -> Result<()> {
    if resume.is_some() && !weights.is_empty() {
        return Err(Error::Other(
            "give --snapshot to resume training or --weights to finetune, not both".into(),
        ));
    }
    let def = crate::solverdef::read_solver_file(solver)?;
    refuse_gpu_mode(&def, &opts)?;
    let mut files: Vec<PathBuf> = def.params.weights.iter().map(PathBuf::from).collect();
    files.extend(weights.iter().cloned());
    let log = Log::stdout(def.params.max_iter.max(0) as u64);
    let mut t = Trainer::new(def, opts, log)?;
    t.signals = Signals::install()?;
    match resume {
        Some(r) => t.resume(r)?,
        None => t.finetune(&files)?,
    }
    t.solve()?;
    Ok(())
}

/// `netrun test NET --weights W`: builds the TEST phase of a net file, loads
/// the weights (and the centres beside them when the net needs them) and
/// prints the outputs of `iterations` batches and their means.
pub fn test_command(
    net_file: &Path,
    weights: &[PathBuf],
    iterations: usize,
    opts: &TrainOptions,
) -> Result<TestScores> {
    let def = crate::netdef::read_net_file(net_file)?;
    let mut b = BuildOptions::for_phase(Phase::Test);
    b.context.batch = opts.batch;
    b.context.input_shapes = opts.input_shapes.clone();
    b.context.data_dirs = crate::data::data_dirs(net_file, &opts.extra_data_dirs);
    let mut net = Net::new(Graph::build(&def, &b)?, DEFAULT_SEED)?;
    let mut log = Log::new(Box::new(std::io::stdout()));
    for line in load_weights(&mut net, weights, true)? {
        log.line(&line);
    }
    evaluate(&mut net, iterations, &mut log, None)
}

/// `netrun test`: runs the TEST phase of `net` for `iterations` batches and
/// prints each batch's outputs and their means, like `caffe test`; returns the means.
pub fn evaluate(
    net: &mut Net,
    iterations: usize,
    log: &mut Log,
    mut feeder: Option<&mut Feeder>,
) -> Result<TestScores> {
    let mut sums: Vec<(String, f32, f64)> = Vec::new();
    let mut loss = 0.0f64;
    for i in 0..iterations {
        if let Some(f) = feeder.as_mut() {
            f(
                net,
                &Feed {
                    role: Role::Test(0),
                    iter: 0,
                    pass: i,
                },
            )?;
        }
        loss += net.forward()?;
        let values = output_values(net);
        for (name, _, v) in &values {
            log.line(&format!("Batch {i}, {name} = {}", fmt_g(*v as f64)));
        }
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
    let n = iterations.max(1) as f64;
    log.line(&format!("Loss: {}", fmt_g(loss / n)));
    let outputs: Vec<(String, f64, f32)> = sums
        .into_iter()
        .map(|(name, w, s)| (name, s / n, w))
        .collect();
    for (name, mean, w) in &outputs {
        log.line(&format!(
            "{name} = {}{}",
            fmt_g(*mean),
            loss_note(*w, *mean)
        ));
    }
    log.finish();
    Ok(TestScores {
        loss: Some(loss / n),
        outputs,
    })
}
