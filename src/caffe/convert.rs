//! `netrun convert caffemodel` and `netrun convert safetensors`: weights
//! between Caffe's binary format and netrun's safetensors.

use super::model::CaffeModel;
use crate::error::Result;
use crate::graph::{BuildOptions, Graph};
use crate::net::Net;
use crate::netdef::Phase;
use crate::weights::{self, ApplyOptions};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// `convert caffemodel IN.caffemodel -o OUT.safetensors [--net NET]`.
#[derive(Debug, Clone, clap::Args)]
pub struct CaffemodelArgs {
    /// The `.caffemodel` to read (`layer` or V1 `layers` encoding).
    pub input: PathBuf,
    /// The safetensors file to write (tensors `<layer>.<index>`).
    #[arg(short = 'o', long = "output", value_name = "OUT.safetensors")]
    pub output: PathBuf,
    /// Check the blobs against this net (Caffe's matching rules) and write
    /// only the blobs it uses, in its shapes.
    #[arg(long, value_name = "NET")]
    pub net: Option<PathBuf>,
}

/// `convert safetensors W.safetensors --net DEPLOY -o W.caffemodel`.
#[derive(Debug, Clone, clap::Args)]
pub struct SafetensorsArgs {
    /// The weights to read (`<layer>.<index>`; a `.caffemodel` works too).
    pub input: PathBuf,
    /// The net whose layers the caffemodel describes (its TEST phase).
    #[arg(long, value_name = "NET")]
    pub net: PathBuf,
    /// The `.caffemodel` to write.
    #[arg(short = 'o', long = "output", value_name = "OUT.caffemodel")]
    pub output: PathBuf,
}

/// Builds a net file's TEST phase with its fillers' values (seeded).
pub fn build_net(path: &Path) -> Result<Net> {
    let def = crate::netdef::read_net_file(path)?;
    let mut opts = BuildOptions::for_phase(Phase::Test);
    opts.context.data_dirs = crate::data::data_dirs(path, &[]);
    Net::new(Graph::build(&def, &opts)?, crate::layers::DEFAULT_SEED)
}

/// Runs `convert caffemodel`; returns the report lines.
pub fn caffemodel(args: &CaffemodelArgs) -> Result<String> {
    let mut meta = BTreeMap::new();
    meta.insert("source".to_string(), args.input.display().to_string());
    match &args.net {
        None => {
            let model = CaffeModel::read(&args.input)?;
            let tensors = super::load::to_tensors(&model);
            let views: Vec<(&str, &[usize], &[f32])> = tensors
                .tensors
                .iter()
                .map(|(n, t)| (n.as_str(), t.shape.as_slice(), t.data.as_slice()))
                .collect();
            weights::save_f32(&args.output, &views, &meta)?;
            let v1 = if model.v1 {
                " (V1 `layers` encoding)"
            } else {
                ""
            };
            Ok(format!(
                "wrote {} tensors of {} layers of `{}`{v1} to `{}`",
                views.len(),
                model.layers.iter().filter(|l| !l.blobs.is_empty()).count(),
                args.input.display(),
                args.output.display()
            ))
        }
        Some(net_file) => {
            let mut net = build_net(net_file)?;
            let file = weights::load(&args.input)?;
            let report = weights::apply(&mut net, &file, ApplyOptions { require_all: true })?;
            let named: Vec<(String, usize)> = weights::net_params(&net);
            let views: Vec<(&str, &[usize], &[f32])> = named
                .iter()
                .map(|(n, p)| (n.as_str(), net.params[*p].shape(), net.params[*p].data()))
                .collect();
            meta.insert("net".to_string(), net_file.display().to_string());
            weights::save_f32(&args.output, &views, &meta)?;
            let mut out = format!(
                "wrote the {} learnable blobs of `{}` from `{}` to `{}`",
                views.len(),
                net_file.display(),
                args.input.display(),
                args.output.display()
            );
            if !report.unused.is_empty() {
                out += &format!(
                    "\nskipped (layers the net lacks): {}",
                    report.unused.join(", ")
                );
            }
            Ok(out)
        }
    }
}

/// Runs `convert safetensors`; returns the report line.
pub fn safetensors(args: &SafetensorsArgs) -> Result<String> {
    let mut net = build_net(&args.net)?;
    let file = weights::load(&args.input)?;
    let report = weights::apply(&mut net, &file, ApplyOptions { require_all: true })?;
    super::write::write(&net, &args.output)?;
    let mut out = format!(
        "wrote {} learnable blobs of `{}` as a caffemodel to `{}`",
        report.loaded.len(),
        args.net.display(),
        args.output.display()
    );
    if !report.unused.is_empty() {
        out += &format!(
            "\nnot written (the net has no such blob): {}",
            report.unused.join(", ")
        );
    }
    Ok(out)
}
