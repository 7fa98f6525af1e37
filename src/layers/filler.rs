//! `FillerParameter`: how a learnable blob is initialised.

use crate::error::{did_you_mean, Diagnostic};
use crate::netdef::LayerDef;
use serde::Deserialize;

/// Filler types Caffe knows.
pub const FILLER_TYPES: &[&str] = &[
    "constant",
    "uniform",
    "gaussian",
    "positive_unitball",
    "xavier",
    "msra",
    "bilinear",
];

/// `VarianceNorm` of xavier/msra: FAN_IN = 0, FAN_OUT = 1, AVERAGE = 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum VarianceNorm {
    #[default]
    FanIn,
    FanOut,
    Average,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FillerParams {
    #[serde(rename = "type")]
    pub type_name: String,
    pub value: f32,
    pub min: f32,
    pub max: f32,
    pub mean: f32,
    pub std: f32,
    /// Expected non-zeros per output for sparse gaussian; -1 = dense.
    pub sparse: i32,
    pub variance_norm: VarianceNorm,
}

impl Default for FillerParams {
    fn default() -> Self {
        FillerParams {
            type_name: "constant".into(),
            value: 0.0,
            min: 0.0,
            max: 1.0,
            mean: 0.0,
            std: 1.0,
            sparse: -1,
            variance_norm: VarianceNorm::FanIn,
        }
    }
}

impl FillerParams {
    /// Checks the filler type of `<block>.<field>` in a layer.
    pub fn validate(&self, def: &LayerDef, block: &str, field: &str) -> Result<(), Diagnostic> {
        if FILLER_TYPES.contains(&self.type_name.as_str()) {
            return Ok(());
        }
        let span = def
            .block
            .get(block)
            .and_then(|b| match &b.value {
                crate::proto::Value::Block(b) => b.get(field),
                _ => None,
            })
            .and_then(|f| match &f.value {
                crate::proto::Value::Block(b) => b.get("type").map(|t| t.value_span),
                _ => None,
            })
            .unwrap_or(def.name_span());
        Err(def
            .error(
                span,
                format!(
                    "{}: unknown filler type \"{}\" in `{field}`",
                    def.describe(),
                    self.type_name
                ),
            )
            .with_help(
                did_you_mean(&self.type_name, FILLER_TYPES.iter().copied())
                    .unwrap_or_else(|| format!("filler types: {}", FILLER_TYPES.join(", "))),
            ))
    }
}
