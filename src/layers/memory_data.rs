//! MemoryData: samples handed to the net by the program (Caffe's `MemoryDataLayer::Reset`).
//! Legend: B = batch_size, sample = channels × height × width. Tops: data B × C × H × W and
//! label B. The program hands over n samples and n labels (n a multiple of B) through
//! `Net::set_memory_data`; forward k copies samples [p, p + B) with p = k·B mod n.
//! No backward (a data layer).

use super::{Arity, BuildContext, Layer, Shape, ShapeError};
use crate::error::Diagnostic;
use crate::layer_io::{LayerIo, RunCtx};
use crate::netdef::LayerDef;
use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MemoryDataParams {
    pub batch_size: Option<u32>,
    pub channels: Option<u32>,
    pub height: Option<u32>,
    pub width: Option<u32>,
}

pub struct MemoryDataLayer {
    pub params: MemoryDataParams,
    /// The layer's name, for messages.
    name: String,
    batch: usize,
    /// C·H·W.
    sample: [usize; 3],
    tops: usize,
    data: Vec<f32>,
    labels: Vec<f32>,
    /// Index of the next sample to copy.
    pos: usize,
}

pub fn build(def: &LayerDef, ctx: &BuildContext) -> Result<Box<dyn Layer>, Diagnostic> {
    const BLOCK: &str = "memory_data_param";
    let p: MemoryDataParams = def.params(BLOCK)?;
    let mut dims = [0usize; 4];
    for (i, (field, v)) in [
        ("batch_size", p.batch_size),
        ("channels", p.channels),
        ("height", p.height),
        ("width", p.width),
    ]
    .into_iter()
    .enumerate()
    {
        let v = super::required(def, v, BLOCK, field)?;
        if v == 0 {
            return Err(super::checks::param_error(
                def,
                BLOCK,
                field,
                &format!("{field} must be positive"),
            ));
        }
        dims[i] = v as usize;
    }
    let mut batch = ctx.batch.unwrap_or(dims[0]);
    // `netrun forward --inputs`: the tensor for the data top decides the batch.
    if let Some(shape) = def.top.first().and_then(|t| ctx.input_tops.get(t)) {
        if shape.len() != 4 || shape[1..] != dims[1..] {
            return Err(def.error(
                def.name_span(),
                format!(
                    "{}: the input tensor `{}` has shape {} but memory_data_param gives samples of {}x{}x{}",
                    def.describe(),
                    def.top[0],
                    super::fmt_shape(shape),
                    dims[1],
                    dims[2],
                    dims[3]
                ),
            ));
        }
        batch = shape[0];
    }
    Ok(Box::new(MemoryDataLayer {
        params: p,
        name: def.name.clone(),
        batch,
        sample: [dims[1], dims[2], dims[3]],
        tops: def.top.len(),
        data: vec![],
        labels: vec![],
        pos: 0,
    }))
}

impl MemoryDataLayer {
    /// Hands the layer n samples (n·C·H·W values, sample-major) and n labels;
    /// n must be a positive multiple of the batch size. The next forward starts at sample 0.
    pub fn reset(&mut self, data: Vec<f32>, labels: Vec<f32>) -> Result<(), String> {
        let per: usize = self.sample.iter().product();
        let n = labels.len();
        if n == 0 || data.len() != n * per {
            return Err(format!(
                "MemoryData layer `{}`: {} values for {n} labels, but each sample has {per} values ({}x{}x{}): need {n}·{per} = {}",
                self.name,
                data.len(),
                self.sample[0],
                self.sample[1],
                self.sample[2],
                n * per
            ));
        }
        if !n.is_multiple_of(self.batch) {
            return Err(format!(
                "MemoryData layer `{}`: {n} samples is not a multiple of the batch size {}",
                self.name, self.batch
            ));
        }
        (self.data, self.labels, self.pos) = (data, labels, 0);
        Ok(())
    }

    pub fn batch_size(&self) -> usize {
        self.batch
    }
}

impl Layer for MemoryDataLayer {
    fn type_name(&self) -> &'static str {
        "MemoryData"
    }
    fn bottoms(&self) -> Arity {
        Arity::exactly(0)
    }
    fn tops(&self) -> Arity {
        Arity::between(1, 2)
    }
    fn is_data(&self) -> bool {
        true
    }

    fn reshape(&mut self, _bottom: &[Shape]) -> Result<Vec<Shape>, ShapeError> {
        let [c, h, w] = self.sample;
        let mut tops = vec![vec![self.batch, c, h, w]];
        if self.tops == 2 {
            tops.push(vec![self.batch]);
        }
        Ok(tops)
    }

    fn forward(&mut self, io: &mut LayerIo, _ctx: &mut RunCtx) -> Result<(), String> {
        if self.labels.is_empty() {
            return Err(format!(
                "MemoryData layer `{}` has no data: hand it samples first (the library's \
                 Net::set_memory_data, or `netrun forward --inputs` with a tensor named like its tops)",
                self.name
            ));
        }
        let per: usize = self.sample.iter().product();
        let (b, p) = (self.batch, self.pos);
        io.top_mut(0)
            .data_mut()
            .copy_from_slice(&self.data[p * per..(p + b) * per]);
        if self.tops == 2 {
            io.top_mut(1)
                .data_mut()
                .copy_from_slice(&self.labels[p..p + b]);
        }
        self.pos = (p + b) % self.labels.len();
        Ok(())
    }
}
