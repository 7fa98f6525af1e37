//! `netrun time --data`: how fast each data layer produces batches, so a user
//! sees whether the net would wait on its data. Each data layer is run alone:
//! one batch first (which starts its prefetch thread), then `batches` timed
//! ones. Nothing else consumes time between them, so the prefetch queue stays
//! empty and every batch waits on its production: the time measured is the
//! rate of reading, decoding and transforming, not of the queue.

use crate::error::Result;
use crate::net::Net;
use std::fmt::Write;
use std::time::Instant;

/// One data layer's rate.
#[derive(Debug, Clone)]
pub struct DataTiming {
    pub name: String,
    pub type_name: String,
    /// Samples per batch (the first top's first axis).
    pub batch: usize,
    /// Milliseconds per batch, averaged over the timed batches.
    pub ms_per_batch: f64,
}

impl DataTiming {
    pub fn images_per_second(&self) -> f64 {
        self.batch as f64 * 1e3 / self.ms_per_batch
    }
}

/// Times `batches` batches of every data layer of `net`, in net order.
pub fn time_data(net: &mut Net, batches: usize) -> Result<Vec<DataTiming>> {
    let batches = batches.max(1);
    let mut out = Vec::new();
    for l in 0..net.graph.nodes.len() {
        if !net.graph.nodes[l].layer.is_data() {
            continue;
        }
        net.forward_layer(l)?;
        let start = Instant::now();
        for _ in 0..batches {
            net.forward_layer(l)?;
        }
        let ms = start.elapsed().as_secs_f64() * 1e3 / batches as f64;
        let node = &net.graph.nodes[l];
        let batch = node
            .tops
            .first()
            .and_then(|&t| net.blobs[t].shape().first().copied())
            .unwrap_or(0);
        out.push(DataTiming {
            name: node.def.name.clone(),
            type_name: node.layer.type_name().to_string(),
            batch,
            ms_per_batch: ms,
        });
    }
    Ok(out)
}

/// The table: layer, type, batch, ms per batch, images per second.
pub fn render_data(timings: &[DataTiming], batches: usize, decode_threads: usize) -> String {
    let mut out = String::new();
    let width = timings
        .iter()
        .map(|t| t.name.len())
        .max()
        .unwrap_or(5)
        .max(5);
    let _ = writeln!(
        out,
        "Data layers ({batches} batches each, {decode_threads} decode thread(s)):"
    );
    let _ = writeln!(
        out,
        "{:<width$}  {:<16} {:>6} {:>12} {:>10}",
        "layer", "type", "batch", "ms/batch", "images/s"
    );
    for t in timings {
        let _ = writeln!(
            out,
            "{:<width$}  {:<16} {:>6} {:>12.3} {:>10.1}",
            t.name,
            t.type_name,
            t.batch,
            t.ms_per_batch,
            t.images_per_second()
        );
    }
    if timings.is_empty() {
        out.push_str("(the net has no data layers)\n");
    }
    out
}
