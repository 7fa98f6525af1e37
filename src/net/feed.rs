//! Handing samples to a net's MemoryData layers (Caffe's `MemoryDataLayer::Reset`).

use super::Net;
use crate::error::{Error, Result};
use crate::layers::memory_data::MemoryDataLayer;

impl Net {
    /// Gives the MemoryData layer `layer` n samples (n·C·H·W values, sample-major, as
    /// `memory_data_param` shapes them) and their n labels; n must be a multiple of the
    /// layer's batch size. Each forward then takes the next batch, wrapping around.
    pub fn set_memory_data(&mut self, layer: &str, data: Vec<f32>, labels: Vec<f32>) -> Result<()> {
        let names: Vec<String> = (self.graph.nodes.iter())
            .filter(|n| n.layer.type_name() == "MemoryData")
            .map(|n| n.def.name.clone())
            .collect();
        let Some(node) = self.graph.nodes.iter_mut().find(|n| n.def.name == layer) else {
            return Err(Error::Other(format!(
                "the net has no layer `{layer}` (its MemoryData layers: {})",
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            )));
        };
        let Some(memory) = (*node.layer).as_any_mut().downcast_mut::<MemoryDataLayer>() else {
            return Err(Error::Other(format!(
                "layer `{layer}` is a {} layer, not MemoryData",
                node.layer.type_name()
            )));
        };
        memory.reset(data, labels).map_err(Error::Other)
    }
}
