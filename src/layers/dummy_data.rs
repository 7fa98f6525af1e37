//! DummyData: tops of given shapes filled by fillers (constant 0 by default),
//! for tests and benchmarks.
//! Shapes: one `shape` per top or one shared; or the legacy `num`/`channels`/
//! `height`/`width` lists (each 1 value shared or one per top) giving
//! num×channels×height×width. `--batch` replaces dimension 0.
//! Forward: the first call fills every top; later calls refill only the tops
//! whose filler is not `constant` (as Caffe), from a counter-based stream per
//! top keyed by the build seed and `<layer>.<top>`, its iteration drawn from the
//! net's generator (so a resumed run repeats the draws).

use super::filler::{fill, FillerParams};
use super::input::to_shape;
use super::transform::param_span;
use super::{Arity, BuildContext, Layer, Shape, ShapeError};
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::{BlobShape, LayerDef};
use crate::philox::{key_for, Stream};
use rand::Rng as _;
use serde::Deserialize;

const BLOCK: &str = "dummy_data_param";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DummyDataParams {
    /// None (constant 0), one shared, or one per top.
    pub data_filler: Vec<FillerParams>,
    pub shape: Vec<BlobShape>,
    pub num: Vec<u32>,
    pub channels: Vec<u32>,
    pub height: Vec<u32>,
    pub width: Vec<u32>,
}

pub struct DummyDataLayer {
    pub params: DummyDataParams,
    pub shapes: Vec<Shape>,
    /// The filler of each top.
    pub fillers: Vec<FillerParams>,
    /// Whether a forward has filled the constant tops.
    filled: bool,
    /// The generator key of each top.
    keys: Vec<[u32; 2]>,
}

/// Checks that a repeated field has 1 value or one per top (or none, when `none_ok`).
fn per_top(def: &LayerDef, field: &str, len: usize, none_ok: bool) -> Result<(), Diagnostic> {
    let n = def.top.len();
    if len == 1 || len == n || (none_ok && len == 0) {
        return Ok(());
    }
    Err(def
        .error(
            param_span(def, BLOCK, field),
            format!(
                "{} has {n} top{} but {len} `{field}` value{}",
                def.describe(),
                if n == 1 { "" } else { "s" },
                if len == 1 { "" } else { "s" }
            ),
        )
        .with_help(format!(
            "give 1 `{field}` shared by all tops, or {n}, one per top"
        )))
}

pub fn build(def: &LayerDef, ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    let p: DummyDataParams = def.params(BLOCK)?;
    let n = def.top.len();
    per_top(def, "data_filler", p.data_filler.len(), true)?;
    for f in &p.data_filler {
        f.validate(def, BLOCK, "data_filler")?;
    }
    let legacy = [&p.num, &p.channels, &p.height, &p.width];
    let mut shapes = Vec::with_capacity(n);
    if legacy.iter().any(|l| !l.is_empty()) {
        if !p.shape.is_empty() {
            return Err(def.error(
                param_span(def, BLOCK, "shape"),
                format!(
                    "{}: give either `shape` or `num`/`channels`/`height`/`width`, not both",
                    def.describe()
                ),
            ));
        }
        for (field, list) in ["num", "channels", "height", "width"].iter().zip(legacy) {
            per_top(def, field, list.len(), false)?;
        }
        for i in 0..n {
            let dims: Vec<i64> = legacy
                .iter()
                .map(|l| i64::from(l[i.min(l.len() - 1)]))
                .collect();
            shapes.push(to_shape(&dims, ctx.batch).unwrap_or_default());
        }
    } else {
        if p.shape.is_empty() {
            return Err(def.error(
                def.block
                    .get(BLOCK)
                    .map_or(def.name_span(), |f| f.name_span),
                format!(
                    "{} needs `{BLOCK} {{ shape {{ dim: ... }} }}`",
                    def.describe()
                ),
            ));
        }
        per_top(def, "shape", p.shape.len(), false)?;
        for i in 0..n {
            let dims = &p.shape[i.min(p.shape.len() - 1)].dim;
            let shape = to_shape(dims, ctx.batch).map_err(|m| {
                def.error(
                    param_span(def, BLOCK, "shape"),
                    format!("{}: {m}", def.describe()),
                )
            })?;
            shapes.push(shape);
        }
    }
    let fillers = (0..n)
        .map(|i| match p.data_filler.len() {
            0 => FillerParams::default(),
            k => p.data_filler[i.min(k - 1)].clone(),
        })
        .collect();
    Ok(Box::new(DummyDataLayer {
        params: p,
        shapes,
        fillers,
        filled: false,
        keys: (0..def.top.len())
            .map(|i| key_for(ctx.seed, &format!("{}.{i}", def.name)))
            .collect(),
    }))
}

impl Layer for DummyDataLayer {
    fn type_name(&self) -> &'static str {
        "DummyData"
    }
    fn bottoms(&self) -> Arity {
        Arity::exactly(0)
    }
    fn tops(&self) -> Arity {
        Arity::at_least(1)
    }
    fn is_data(&self) -> bool {
        true
    }
    fn reshape(&mut self, _bottom: &[Shape]) -> Result<Vec<Shape>, ShapeError> {
        Ok(self.shapes.clone())
    }
    fn forward(&mut self, io: &mut LayerIo, ctx: &mut RunCtx) -> Result<(), String> {
        for (i, f) in self.fillers.iter().enumerate() {
            if !self.filled || f.type_name != "constant" {
                let stream = Stream {
                    key: self.keys[i],
                    iteration: ctx.rng.gen(),
                };
                fill(f, io.top_mut(i), stream);
            }
        }
        self.filled = true;
        Ok(())
    }
}
