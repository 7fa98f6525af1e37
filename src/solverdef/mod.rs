//! Solver files: Caffe's `SolverParameter`, read and checked like a net file.
//!
//! A solver names one train net and zero or more test nets, the learning-rate
//! schedule ([`learning_rate`]) and the update rule (`type`). Reading one
//! ([`parse_solver`]) collects every problem at once: unknown fields, values
//! Caffe would reject at start-up or at its first iteration, and net paths
//! that do not exist.
//!
//! Net paths (`net`, `train_net`, `test_net`) are tried relative to the
//! solver file's folder first, then to the working directory (Caffe's only
//! base); [`ResolvedPath`] records which one matched.
//!
//! `snapshot_format: BINARYPROTO` also writes each snapshot's weights as
//! `<prefix>_iter_N.caffemodel` (Caffe's default format; netrun's own files
//! are safetensors and are always written); `HDF5` is accepted, not written.
//! Accepted but not acted on today: `device_id`, `layer_wise_reduce`.
//! An explicit `solver_mode: GPU` is refused by `netrun train` until the
//! device backend exists (`--cpu` trains on the CPU).

use crate::error::{did_you_mean, Diagnostic, Error, Result};
use crate::netdef::{self, NetDef, NetState, Phase};
use crate::proto::de::from_block;
use crate::proto::{self, Block, Document, Value};
use crate::source::{SourceFile, Span};
use serde::Deserialize;
use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

mod check;
mod nets;
mod params;
mod schedule;
mod summary;

use check::*;
pub use nets::*;
pub use params::*;
pub use schedule::*;
pub use summary::*;

/// Reads a solver file; relative net paths are tried against its folder,
/// then the working directory.
pub fn read_solver_file(path: &Path) -> Result<SolverDef> {
    let cwd = std::env::current_dir().map_err(|e| Error::Other(e.to_string()))?;
    read_solver_file_in(path, &cwd)
}

/// [`read_solver_file`] with an explicit working directory.
pub fn read_solver_file_in(path: &Path, cwd: &Path) -> Result<SolverDef> {
    let source = SourceFile::read(path)?;
    parse_solver(&proto::parse(&source)?, cwd)
}

/// A solver from text; `name` stands for the file (its folder is the solver folder).
pub fn parse_solver_str(name: &str, text: &str, cwd: &Path) -> Result<SolverDef> {
    parse_solver(&proto::parse_str(name, text)?, cwd)
}

/// Reads and checks a solver. All independent problems are reported together.
pub fn parse_solver(doc: &Document, cwd: &Path) -> Result<SolverDef> {
    let source = &doc.source;
    let root = &doc.root;
    let mut params = read_params(root, source)?;
    let mut diags = Vec::new();
    let check = Check { root, source };
    check.solver_type(&mut params, &mut diags);
    let policy = check.lr_policy(&params, &mut diags);
    check.values(&params, &mut diags);
    let solver_dir = normalize(&cwd.join(source.path.parent().unwrap_or(Path::new(""))));
    let nets = check.nets(&params, &solver_dir, cwd, &mut diags);
    if !diags.is_empty() {
        diags.sort_by_key(|d| d.location.as_ref().map(|(_, s)| s.start));
        return Err(Error::Config(diags));
    }
    let (Some(policy), Some((train_net, test_nets))) = (policy, nets) else {
        return Err(Error::Other(
            "solver check failed without a diagnostic".into(),
        ));
    };
    Ok(SolverDef {
        params,
        policy,
        block: root.clone(),
        source: source.clone(),
        train_net,
        test_nets,
    })
}

/// The serde stage: typed fields, with the inline nets kept as raw blocks.
fn read_params(root: &Block, source: &Arc<SourceFile>) -> Result<SolverParams> {
    let typed = root.filtered(|f| !INLINE_NETS.contains(&f.name.as_str()));
    let mut params: SolverParams = from_block(&typed, "").map_err(|mut e| {
        // Unknown fields of nested blocks (`train_state`) already name their block.
        if e.message.starts_with("unknown field") && !e.message.contains(" in `") {
            let field = e.message.split('`').nth(1).unwrap_or("").to_string();
            e.message = format!("unknown solver field `{field}`");
            e.help = if NET_ONLY_FIELDS.contains(&field.as_str()) {
                Some(format!(
                    "`{field}` belongs to a net: put it in the net file, \
                     or inside `net_param {{ ... }}`"
                ))
            } else {
                did_you_mean(&field, SOLVER_FIELDS.iter().copied()).or_else(|| {
                    Some(
                        "a solver holds Caffe's SolverParameter fields \
                          (net, base_lr, lr_policy, max_iter, ...)"
                            .into(),
                    )
                })
            };
        }
        Error::from(e.into_diagnostic(source, root.span))
    })?;
    let mut diags = Vec::new();
    let mut inline = |name: &str| -> Vec<Block> {
        root.all(name)
            .filter_map(|f| match &f.value {
                Value::Block(b) => Some(b.clone()),
                Value::Scalar(s) => {
                    diags.push(
                        Diagnostic::new(format!(
                            "`{name}` is an inline net block, found {}",
                            s.describe()
                        ))
                        .at(source, f.value_span)
                        .with_help(format!(
                            "write `{name} {{ layer {{ ... }} }}`, or name a file with `{}`",
                            name.trim_end_matches("_param")
                        )),
                    );
                    None
                }
            })
            .collect()
    };
    let net_param = inline("net_param");
    let train_net_param = inline("train_net_param");
    params.test_net_param = inline("test_net_param");
    for (name, blocks) in [
        ("net_param", &net_param),
        ("train_net_param", &train_net_param),
    ] {
        if let Some(second) = root.all(name).nth(1) {
            diags.push(
                Diagnostic::new(format!(
                    "field `{name}` is given {} times but takes one value",
                    blocks.len()
                ))
                .at(source, second.name_span)
                .with_help("a solver has one train net"),
            );
        }
    }
    params.net_param = net_param.into_iter().next();
    params.train_net_param = train_net_param.into_iter().next();
    if !diags.is_empty() {
        return Err(Error::Config(diags));
    }
    Ok(params)
}
