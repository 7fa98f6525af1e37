//! One network of the cascade run through netrun's engine: its deploy
//! file and weights, built for whatever input shape a call needs (each
//! pyramid level, each batch of candidates) and kept for reuse.

use crate::error::{Error, Result};
use crate::graph::{BuildOptions, Graph};
use crate::net::Net;
use crate::netdef::{read_net_file, NetDef, Phase};
use crate::weights::{self, ApplyOptions, Tensors};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Built nets kept per stage; older shapes are dropped beyond this.
const KEEP: usize = 24;

pub struct StageNet {
    file: PathBuf,
    def: NetDef,
    input: String,
    weights: Tensors,
    nets: HashMap<[usize; 4], Net>,
}

impl StageNet {
    /// Reads the net file and its weights (every learnable blob must be there).
    pub fn load(net: &Path, weights_file: &Path) -> Result<StageNet> {
        let def = read_net_file(net)?;
        let input = def
            .inputs
            .first()
            .map(|i| i.name.clone())
            .or_else(|| {
                def.layers
                    .iter()
                    .find(|l| l.type_name == "Input")
                    .and_then(|l| l.top.first().cloned())
            })
            .ok_or_else(|| {
                Error::Other(format!(
                    "`{}` has no input (Input layer or `input:`)",
                    net.display()
                ))
            })?;
        let weights = weights::load(weights_file)?;
        let stage = StageNet {
            file: net.to_path_buf(),
            def,
            input,
            weights,
            nets: HashMap::new(),
        };
        // Check the weights once, at the file's own input shape.
        stage.build(None)?;
        Ok(stage)
    }

    fn build(&self, shape: Option<[usize; 4]>) -> Result<Net> {
        let graph = match shape {
            Some(s) => build_with_input(
                &self.def,
                &self.input,
                &s,
                BuildOptions::for_phase(Phase::Test),
            )?,
            None => Graph::build(&self.def, &BuildOptions::for_phase(Phase::Test))?,
        };
        let mut net = Net::new(graph, 1)?;
        weights::apply(&mut net, &self.weights, ApplyOptions { require_all: true })
            .map_err(|e| Error::Other(format!("weights of `{}`: {e}", self.file.display())))?;
        Ok(net)
    }

    /// Runs the net on `input` (N×C×H×W values) and returns the named blobs' values and shapes.
    pub fn run(
        &mut self,
        input: &[f32],
        shape: [usize; 4],
        outputs: &[&str],
    ) -> Result<Vec<(Vec<usize>, Vec<f32>)>> {
        assert_eq!(input.len(), shape.iter().product::<usize>());
        if !self.nets.contains_key(&shape) {
            if self.nets.len() >= KEEP {
                self.nets.clear();
            }
            let net = self.build(Some(shape))?;
            self.nets.insert(shape, net);
        }
        let net = self.nets.get_mut(&shape).expect("just built");
        net.blob_mut(&self.input)
            .expect("the input is a blob")
            .data_mut()
            .copy_from_slice(input);
        net.forward()?;
        outputs
            .iter()
            .map(|name| {
                let b = net.blob(name).ok_or_else(|| {
                    Error::Other(format!("`{}` has no blob `{name}`", self.file.display()))
                })?;
                Ok((b.shape().to_vec(), b.data().to_vec()))
            })
            .collect()
    }
}

/// Builds `def` with its input `top` shaped `shape`, whether the input is an
/// Input layer or the legacy `input:` header (whose shape the file fixes).
pub fn build_with_input(
    def: &NetDef,
    top: &str,
    shape: &[usize],
    mut opts: BuildOptions,
) -> Result<Graph> {
    let mut def = def.clone();
    for i in def.inputs.iter_mut().filter(|i| i.name == top) {
        i.shape = shape.iter().map(|&d| d as i64).collect();
    }
    opts.context.input_tops = [(top.to_string(), shape.to_vec())].into();
    Graph::build(&def, &opts)
}
