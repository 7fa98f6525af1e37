//! SphereFace-20's deploy forward (batch 1 or BATCH, `NETRUN_THREADS` or 2
//! threads) in variants that one process alternates forward by forward, so
//! that the noise of a shared machine falls on all of them alike: the
//! convolutions read the weights they keep (packed for the shifted windows,
//! Winograd's U; the same weights as the forward before) or the weights as
//! stored (written before the forward, as in training).
//!
//! Prints min, first quartile and median per variant.
//! `cargo bench --bench deploy_variants [-- ROUNDS [BATCH]]`.

use netrun::graph::{BuildOptions, Graph};
use netrun::net::Net;
use netrun::netdef::{read_net_file, Phase};
use std::path::PathBuf;
use std::time::Instant;

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

fn touch_weights(net: &mut Net) {
    for p in net.params.iter_mut() {
        p.data_mut();
    }
}

fn main() {
    let numbers: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let rounds = numbers.first().copied().unwrap_or(60);
    let batch = numbers.get(1).copied().unwrap_or(1);
    let threads = std::env::var("NETRUN_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(2);
    netrun::backend::set_threads(threads);
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/configs/sphereface/sphereface_deploy.prototxt");
    let def = read_net_file(&path).expect("the shared SphereFace deploy net");
    let mut options = BuildOptions::for_phase(Phase::Test);
    options.context.batch = Some(batch);
    let graph = Graph::build(&def, &options).unwrap();
    let mut net = Net::new(graph, 42).unwrap();
    for _ in 0..3 {
        net.forward().unwrap();
    }
    let names = ["weights written before (as stored)", "same weights (kept)"];
    let mut times = vec![Vec::new(); names.len()];
    for _ in 0..rounds {
        touch_weights(&mut net);
        let t = Instant::now();
        net.forward().unwrap();
        times[0].push(ms(t));
        // Same weights twice: the first of these keeps them, the second reads.
        net.forward().unwrap();
        let t = Instant::now();
        net.forward().unwrap();
        times[1].push(ms(t));
    }
    println!("SphereFace-20 deploy b{batch}, {threads} threads, {rounds} rounds (ms)");
    for (name, t) in names.iter().zip(&mut times) {
        t.sort_by(f64::total_cmp);
        println!(
            "{name:34} min {:7.2}  q1 {:7.2}  median {:7.2}",
            t[0],
            t[t.len() / 4],
            t[t.len() / 2]
        );
    }
}
