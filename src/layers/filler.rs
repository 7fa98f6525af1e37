//! `FillerParameter`: how a learnable blob is initialised.

use crate::error::{did_you_mean, Diagnostic};
use crate::netdef::LayerDef;
use crate::philox::Stream;
use serde::Deserialize;

/// Filler types Caffe knows.
pub const FILLER_TYPES: &[&str] = &[
    "constant",
    "uniform",
    "gaussian",
    "positive_unitball",
    "gaussian_unitball",
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
    /// msra's negative slope a (He et al., eq. 15): std = √(2/((1 + a²)·n)). A field of
    /// the margin-loss forks (happynear/caffe-windows).
    pub alpha: f32,
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
            alpha: 0.0,
        }
    }
}

impl FillerParams {
    /// Checks the filler type of `<block>.<field>` in a layer.
    pub fn validate(&self, def: &LayerDef, block: &str, field: &str) -> Result<(), Diagnostic> {
        // The span of `<block> { <field> { <name>: ... } }`, else of the layer's name.
        let span_of = |name: &str| {
            def.block
                .get(block)
                .and_then(|b| match &b.value {
                    crate::proto::Value::Block(b) => b.get(field),
                    _ => None,
                })
                .and_then(|f| match &f.value {
                    crate::proto::Value::Block(b) => b.get(name).map(|t| t.value_span),
                    _ => None,
                })
                .unwrap_or(def.name_span())
        };
        if FILLER_TYPES.contains(&self.type_name.as_str()) {
            return match self.unsampleable() {
                None => Ok(()),
                Some((name, problem, help)) => Err(def
                    .error(
                        span_of(name),
                        format!(
                            "{}: `{field}` ({}) cannot be sampled: {problem}",
                            def.describe(),
                            self.type_name
                        ),
                    )
                    .with_help(help)),
            };
        }
        let span = span_of("type");
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

impl FillerParams {
    /// The field whose value makes this filler's distribution undefined, why,
    /// and a hint; None when every value it reads can be sampled.
    fn unsampleable(&self) -> Option<(&'static str, String, &'static str)> {
        let finite = |name: &'static str, v: f32| {
            (!v.is_finite()).then(|| (name, format!("`{name}` is {v}"), "give a finite number"))
        };
        match self.type_name.as_str() {
            "constant" => finite("value", self.value),
            "uniform" => finite("min", self.min)
                .or_else(|| finite("max", self.max))
                .or_else(|| {
                    (self.min > self.max).then(|| {
                        (
                            "max",
                            format!("`max` ({}) is below `min` ({})", self.max, self.min),
                            "swap `min` and `max`",
                        )
                    })
                }),
            "gaussian" => finite("mean", self.mean)
                .or_else(|| finite("std", self.std))
                .or_else(|| {
                    (self.std < 0.0).then(|| {
                        (
                            "std",
                            format!("`std` is negative ({})", self.std),
                            "a standard deviation is at least 0",
                        )
                    })
                })
                .or_else(|| {
                    (self.sparse < -1).then(|| {
                        (
                            "sparse",
                            format!("`sparse` is {}", self.sparse),
                            "`sparse` is -1 (dense) or the expected non-zeros per output",
                        )
                    })
                }),
            _ => None,
        }
    }
}

/// Fills `blob` as Caffe's fillers do, from the counter-based `stream`
/// (deterministic: the same values on any thread count or device).
///
/// xavier: U(−√(3/n), √(3/n)); msra: N(0, √(2/((1 + alpha²)·n))); n = fan_in (count/shape[0]),
/// fan_out (count/shape[1]) or their mean, per `variance_norm`.
pub fn fill(p: &FillerParams, blob: &mut crate::blob::Blob, stream: Stream) {
    let count = blob.count();
    let num = blob.dim(0).max(1);
    let fan_in = (count / num).max(1) as f32;
    let fan_out = if blob.shape().len() > 1 {
        (count / blob.dim(1).max(1)).max(1) as f32
    } else {
        count.max(1) as f32
    };
    let n = match p.variance_norm {
        VarianceNorm::FanIn => fan_in,
        VarianceNorm::FanOut => fan_out,
        VarianceNorm::Average => (fan_in + fan_out) / 2.0,
    };
    let data = blob.data_mut();
    let gaussian = |mean: f32, std: f32, data: &mut [f32]| {
        // A zero (or invalid) std gives the mean everywhere.
        if std > 0.0 && std.is_finite() {
            stream.fill_normal(data, mean, std)
        } else {
            data.fill(mean)
        }
    };
    match p.type_name.as_str() {
        "uniform" => stream.fill_uniform(data, p.min, p.max),
        "gaussian" => {
            gaussian(p.mean, p.std, data);
            if p.sparse >= 0 {
                // Keep each weight with probability sparse / num_outputs, from
                // the next iteration of the same key.
                let keep = (p.sparse as f64 / num as f64).min(1.0) as f32;
                let mut u = vec![0.0f32; data.len()];
                Stream {
                    iteration: stream.iteration + 1,
                    ..stream
                }
                .fill(0, &mut u);
                data.iter_mut().zip(&u).for_each(|(v, &u)| {
                    if u >= keep {
                        *v = 0.0
                    }
                });
            }
        }
        "positive_unitball" => {
            stream.fill_uniform(data, 0.0, 1.0);
            let dim = count / num;
            for row in data.chunks_mut(dim.max(1)) {
                let sum: f32 = row.iter().sum();
                row.iter_mut().for_each(|v| *v /= sum);
            }
        }
        "xavier" => {
            let scale = (3.0 / n).sqrt();
            stream.fill_uniform(data, -scale, scale);
        }
        "msra" => gaussian(0.0, (2.0 / ((1.0 + p.alpha * p.alpha) * n)).sqrt(), data),
        "gaussian_unitball" => {
            // NormFace's filler: N(mean, std) values, then every row (count/shape[0]
            // values) scaled to unit L2 norm.
            gaussian(p.mean, p.std, data);
            let dim = (count / num).max(1);
            for row in data.chunks_mut(dim) {
                let norm = row.iter().map(|&v| v as f64 * v as f64).sum::<f64>().sqrt();
                if norm > 0.0 {
                    row.iter_mut().for_each(|v| *v = (*v as f64 / norm) as f32);
                }
            }
        }
        "bilinear" => {
            let shape = blob.shape().to_vec();
            let (h, w) = (shape[shape.len().saturating_sub(2)], shape[shape.len() - 1]);
            let f = (w as f32 / 2.0).ceil();
            let c = (2.0 * f - 1.0 - f % 2.0) / (2.0 * f);
            for (i, v) in blob.data_mut().iter_mut().enumerate() {
                let x = (i % w) as f32;
                let y = ((i / w) % h) as f32;
                *v = (1.0 - (x / f - c).abs()) * (1.0 - (y / f - c).abs());
            }
        }
        _ => data.fill(p.value),
    }
}
