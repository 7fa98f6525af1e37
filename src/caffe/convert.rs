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

/// Builds a net file's TEST phase with its fillers' values (seeded).
/// `extra_dirs`: folders searched for relative data paths after the net's
/// folder and the working directory.
pub fn build_net(path: &Path, extra_dirs: &[PathBuf]) -> Result<Net> {
    let def = crate::netdef::read_net_file(path)?;
    let mut opts = BuildOptions::for_phase(Phase::Test);
    opts.context.data_dirs = crate::data::data_dirs(path, extra_dirs);
    Net::new(Graph::build(&def, &opts)?, crate::layers::DEFAULT_SEED)
}

/// `convert caffemodel IN -o OUT [--net NET]`: without a net, every blob
/// in the file's shape; with one, the blobs it uses by Caffe's rules, in its
/// shapes. Returns the report lines.
pub fn caffemodel_to_safetensors(
    input: &Path,
    output: &Path,
    net: Option<&Path>,
    extra_dirs: &[PathBuf],
) -> Result<String> {
    let mut meta = BTreeMap::new();
    meta.insert("source".to_string(), input.display().to_string());
    match net {
        None => {
            let model = CaffeModel::read(input)?;
            let tensors = super::load::to_tensors(&model);
            let views: Vec<(&str, &[usize], &[f32])> = tensors
                .tensors
                .iter()
                .map(|(n, t)| (n.as_str(), t.shape.as_slice(), t.data.as_slice()))
                .collect();
            weights::save_f32(output, &views, &meta)?;
            let v1 = if model.v1 {
                " (V1 `layers` encoding)"
            } else {
                ""
            };
            Ok(format!(
                "wrote {} tensors of {} layers of `{}`{v1} to `{}`",
                views.len(),
                model.layers.iter().filter(|l| !l.blobs.is_empty()).count(),
                input.display(),
                output.display()
            ))
        }
        Some(net_file) => {
            let mut net = build_net(net_file, extra_dirs)?;
            let file = weights::load(input)?;
            let report = weights::apply(&mut net, &file, ApplyOptions { require_all: true })?;
            let named: Vec<(String, usize)> = weights::net_params(&net);
            let views: Vec<(&str, &[usize], &[f32])> = named
                .iter()
                .map(|(n, p)| (n.as_str(), net.params[*p].shape(), net.params[*p].data()))
                .collect();
            meta.insert("net".to_string(), net_file.display().to_string());
            weights::save_f32(output, &views, &meta)?;
            let mut out = format!(
                "wrote the {} learnable blobs of `{}` from `{}` to `{}`",
                views.len(),
                net_file.display(),
                input.display(),
                output.display()
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

/// `convert safetensors W --net DEPLOY -o OUT.caffemodel`: the net's layers
/// with W's blobs (every learnable blob needed). Returns the report lines.
pub fn safetensors_to_caffemodel(
    input: &Path,
    net_file: &Path,
    output: &Path,
    extra_dirs: &[PathBuf],
) -> Result<String> {
    let mut net = build_net(net_file, extra_dirs)?;
    let file = weights::load(input)?;
    let report = weights::apply(&mut net, &file, ApplyOptions { require_all: true })?;
    super::write::write(&net, output)?;
    let mut out = format!(
        "wrote {} learnable blobs of `{}` as a caffemodel to `{}`",
        report.loaded.len(),
        net_file.display(),
        output.display()
    );
    if !report.unused.is_empty() {
        out += &format!(
            "\nnot written (the net has no such blob): {}",
            report.unused.join(", ")
        );
    }
    Ok(out)
}
