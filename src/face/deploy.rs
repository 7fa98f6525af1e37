//! A net as a function of one image batch: the Input top it reads, and what
//! a net file says about preprocessing.
//!
//! A deploy net (an Input layer or the legacy `input:` header) is used as it
//! is. A train/test net whose TEST phase starts with an ImageData layer is
//! turned into one: the data layer becomes an Input of its first top, shaped
//! by `new_height`×`new_width` (or `crop_size`) and `is_color`, its
//! `transform_param` becomes the preprocessing, and every layer that needs a
//! blob no longer produced (the label: losses, accuracy) is dropped.

use crate::error::{Error, Result};
use crate::graph::filter::filter;
use crate::layers::image_data::ImageDataParams;
use crate::layers::transform::TransformParams;
use crate::netdef::{LegacyInput, NetDef, NetState, Phase};
use std::collections::HashSet;
use std::path::Path;

/// A net reduced to one image input.
#[derive(Debug, Clone)]
pub struct DeployNet {
    pub def: NetDef,
    /// The top the images go into.
    pub input: String,
    /// C, H, W of one image.
    pub sample: [usize; 3],
    /// The data layer's `transform_param`, when the net had one.
    pub transform: Option<TransformParams>,
}

/// Reads `path` as a deploy net (see the module docs).
pub fn read_deploy(path: &Path) -> Result<DeployNet> {
    let def = crate::netdef::read_net_file(path)?;
    let state = NetState {
        phase: Phase::Test,
        ..def.state.clone()
    };
    let layers = filter(&def, &state);
    let fail = |m: String| Error::Other(format!("`{}`: {m}", path.display()));
    if let Some(input) = layers.iter().find(|l| l.type_name == "Input") {
        let top = input
            .top
            .first()
            .ok_or_else(|| fail(format!("Input layer `{}` has no top", input.name)))?;
        let sample = input_sample(&def, top)?.ok_or_else(|| {
            fail(format!(
                "the shape of input `{top}` is not N×C×H×W; give it as `input_param {{ shape {{ dim: 1 dim: 3 dim: 112 dim: 96 }} }}`"
            ))
        })?;
        return Ok(DeployNet {
            input: top.clone(),
            sample,
            transform: None,
            def,
        });
    }
    let Some(data) = layers.iter().find(|l| l.type_name == "ImageData").cloned() else {
        return Err(fail(
            "the net has no Input layer (and no ImageData layer to stand for one in its TEST phase): \
             give the deploy net, whose Input layer takes one image batch"
                .into(),
        ));
    };
    let p: ImageDataParams = data
        .params("image_data_param")
        .map_err(|d| Error::Config(vec![d]))?;
    let t = TransformParams::read(&data).map_err(|d| Error::Config(vec![d]))?;
    let channels = if p.is_color && !t.force_gray { 3 } else { 1 };
    let (h, w) = match (t.crop_size, p.new_height, p.new_width) {
        (c, _, _) if c > 0 => (c as usize, c as usize),
        (0, h, w) if h > 0 && w > 0 => (h as usize, w as usize),
        _ => {
            return Err(fail(format!(
                "ImageData layer `{}` fixes no image size (`new_height`/`new_width` or `crop_size`): give the deploy net",
                data.name
            )))
        }
    };
    let top = data
        .top
        .first()
        .cloned()
        .ok_or_else(|| fail(format!("layer `{}` has no top", data.name)))?;
    let mut produced: HashSet<String> = HashSet::from([top.clone()]);
    let mut kept = Vec::new();
    for l in layers.into_iter().filter(|l| l.name != data.name) {
        if l.bottom.iter().all(|b| produced.contains(b)) {
            produced.extend(l.top.iter().cloned());
            kept.push(l);
        }
    }
    let mut deploy = def.clone();
    deploy.layers = kept;
    deploy.inputs = vec![LegacyInput {
        name: top.clone(),
        shape: vec![1, channels as i64, h as i64, w as i64],
        span: data.name_span(),
        dim_spans: vec![data.name_span(); 4],
    }];
    deploy.state = state;
    Ok(DeployNet {
        def: deploy,
        input: top,
        sample: [channels, h, w],
        transform: Some(t),
    })
}

/// C, H, W of an Input top, from a build of the net as written.
fn input_sample(def: &NetDef, top: &str) -> Result<Option<[usize; 3]>> {
    let graph =
        crate::graph::Graph::build(def, &crate::graph::BuildOptions::for_phase(Phase::Test))?;
    let Some(id) = graph.blobs.iter().position(|b| b.name == top) else {
        return Ok(None);
    };
    Ok(match *graph.blob_shape(id) {
        [_, c, h, w] => Some([c, h, w]),
        _ => None,
    })
}
