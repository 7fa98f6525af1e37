//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod conv;
pub mod forks;
pub mod isa;
pub mod net_blocks;
pub mod python;

use netrun::graph::{BuildOptions, Graph};
use netrun::netdef::{parse_net_str, Phase};
use std::path::PathBuf;

/// `../shared/<rel>`, the read-only folder beside the repository.
pub fn shared(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("shared")
        .join(rel)
}

/// Builds a graph from net text in the given phase.
pub fn build(text: &str, phase: Phase) -> netrun::Result<Graph> {
    let net = parse_net_str("test.net", text)?;
    Graph::build(&net, &BuildOptions::for_phase(phase))
}

/// The rendered error of building `text`, panicking if it builds.
pub fn build_error(text: &str) -> String {
    match build(text, Phase::Train) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e.to_string(),
    }
}
