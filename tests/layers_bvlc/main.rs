//! The BVLC Caffe layers added beside the original set: forward against naive loops
//! or float64 formulas written here, the shared gradient checker, in-place use and
//! parameter errors.

#[path = "../common/mod.rs"]
mod common;

mod deconv;
mod loss;
mod lrn;
mod neuron;
mod structure;

use netrun::blob::Blob;
use netrun::layer_io::{LayerIo, Rng, RunCtx};
use netrun::layers::Layer;
use netrun::netdef::Phase;
use rand::SeedableRng;

/// Runs forward then backward with bottom 0 and top 0 the same blob (in place);
/// `dy` is loaded into the shared diff first. Returns (top data, bottom diff).
pub fn run_in_place(l: &mut dyn Layer, x: &Blob, dy: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let mut store = vec![x.clone()];
    let mut rng = Rng::seed_from_u64(7);
    {
        let mut io = LayerIo::from_store(&mut store, &[0], &[0], vec![]);
        l.forward(
            &mut io,
            &mut RunCtx {
                phase: Phase::Train,
                rng: &mut rng,
            },
        )
        .unwrap();
    }
    let y = store[0].data().to_vec();
    store[0].diff_mut().copy_from_slice(dy);
    {
        let mut io = LayerIo::from_store(&mut store, &[0], &[0], vec![]);
        l.backward(
            &mut io,
            &[true],
            &mut RunCtx {
                phase: Phase::Train,
                rng: &mut rng,
            },
        )
        .unwrap();
    }
    (y, store[0].diff().to_vec())
}

/// The error text of building one layer (the inside of a `layer { }` block) after a 2x3x4x5 input.
pub fn layer_error(text: &str) -> String {
    common::build_error(&format!(
        "layer {{ name: \"in\" type: \"Input\" top: \"x\" input_param {{ shape {{ dim: 2 dim: 3 dim: 4 dim: 5 }} }} }}\n\
         layer {{ {text} }}"
    ))
}
