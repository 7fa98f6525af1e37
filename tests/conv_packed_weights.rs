//! The convolution's packed weights (`backend/cpu/conv/packed.rs`): a layer
//! whose weights stay the same packs them on its second forward and reads the
//! packed copy from then on. The sums are the same in either layout, so the
//! outputs must be the same bits, at any thread count (the rows are split on
//! tile boundaries), and a weight change must be seen at once. Winograd layers
//! keep their transformed weights the same way.

mod common;

use common::conv::naive_conv;
use common::isa::each_isa;
use netrun::backend::{self, WinogradPolicy};
use netrun::blob::Blob;
use netrun::netdef::Phase;
use netrun::testing::{assert_close, forward, forward_in, layer, setup, uniform_blob};

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|f| f.to_bits()).collect()
}

/// The direct loops at stride 1 for bottom 0 and the layer's weights and bias.
fn direct(
    bottoms: &[Blob],
    params: &[Blob],
    group: usize,
    pad: [usize; 2],
    dilation: [usize; 2],
    out: [usize; 2],
) -> Vec<f64> {
    let (x, w, b) = (&bottoms[0], &params[0], params.get(1));
    naive_conv(x, w, b, group, [1, 1], pad, dilation, out)
}

#[test]
fn packed_weights_give_the_same_bits_and_follow_weight_changes() {
    // 13 outputs per group: tiles of 6, 6 and 1 rows. A 20×18 image padded by
    // 2 at dilation 2 gives a grid of 23 rows of 22 columns, 30 panels of 16.
    let text = "name: \"c\" type: \"Convolution\" convolution_param { num_output: 26 group: 2 \
        kernel_size: 3 pad: 2 dilation: 2 weight_filler { type: \"gaussian\" std: 0.3 } \
        bias_filler { type: \"uniform\" min: -1 max: 1 } }";
    // The direct loops: 2 groups, stride 1, pad 2, dilation 2, 20×18 out.
    let expected = |b: &[Blob], p: &[Blob]| direct(b, p, 2, [2, 2], [2, 2], [20, 18]);
    let mut first: Option<Vec<u32>> = None;
    each_isa(|isa| {
        // Process-wide, so set under each_isa's lock.
        backend::set_winograd(WinogradPolicy::Never);
        for threads in [1, 2, 3] {
            backend::set_threads(threads);
            let mut l = layer(text);
            let mut bottoms = vec![uniform_blob(&[1, 16, 20, 18], -1.0, 1.0, 3)];
            let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 11);
            let mut run = |bottoms: &mut Vec<Blob>, params: &mut Vec<Blob>| {
                forward(l.as_mut(), bottoms, &mut tops, params);
                tops[0].data().to_vec()
            };
            let unpacked = run(&mut bottoms, &mut params);
            let want = expected(&bottoms, &params);
            assert_close(&unpacked, &want, 1e-4, 1e-4, "first forward");
            // Every level and thread count gives the same bits (`tests/isa_levels.rs`).
            let reference = first.get_or_insert_with(|| bits(&unpacked));
            assert_eq!(&bits(&unpacked), reference, "{isa}, {threads} threads");
            let packed = run(&mut bottoms, &mut params);
            assert_eq!(bits(&packed), bits(&unpacked), "{isa}, {threads} threads");
            assert_eq!(
                bits(&run(&mut bottoms, &mut params)),
                bits(&unpacked),
                "third forward"
            );

            // New weights: the packed copy is stale and must not be read.
            params[0]
                .data_mut()
                .iter_mut()
                .for_each(|v| *v = -0.5 * *v + 0.01);
            let changed = run(&mut bottoms, &mut params);
            let want = expected(&bottoms, &params);
            assert_close(&changed, &want, 1e-4, 1e-4, "after the weights changed");
            assert_eq!(
                bits(&run(&mut bottoms, &mut params)),
                bits(&changed),
                "repacked"
            );
        }
    });
    backend::set_threads(0);
}

/// A Winograd layer whose weights stay the same keeps their transform U from
/// its second forward on: the same U as a forward computes for itself, so the
/// same bits, and new weights are transformed afresh. Banded (narrow) and
/// whole-batch (wide) layers, 2×2 and 4×4 tiles of 3×3, 5×5; in the TEST
/// phase, outputs in whole panels of 16 store U in panels for the fused
/// kernel (`ULayout::Panels`), 24 and 20 outputs do not.
#[test]
fn kept_winograd_weights_give_the_same_bits_and_follow_weight_changes() {
    // (inputs, outputs, kernel, pad, batch, H, W): 112 → 112 at 3×3 has a U
    // of 16·112·112 floats, past the banded limit; batch 11 of 14×12 has 132
    // tiles of 4×4, which F(4×4, 3×3) takes.
    for (c, o, k, pad, batch, h, w) in [
        (20, 24, 3, 1, 2, 14, 12),
        (20, 32, 3, 1, 2, 14, 12),
        (20, 32, 3, 1, 11, 14, 12),
        (112, 112, 3, 1, 2, 8, 7),
        (16, 20, 5, 2, 3, 12, 10),
        (16, 32, 5, 2, 3, 12, 10),
    ] {
        let text = format!(
            "name: \"c\" type: \"Convolution\" convolution_param {{ num_output: {o} \
             kernel_size: {k} pad: {pad} weight_filler {{ type: \"gaussian\" std: 0.2 }} \
             bias_filler {{ type: \"uniform\" min: -1 max: 1 }} }}"
        );
        let expected = |b: &[Blob], p: &[Blob]| direct(b, p, 1, [pad, pad], [1, 1], [h, w]);
        each_isa(|isa| {
            // Process-wide, so set under each_isa's lock.
            backend::set_winograd(WinogradPolicy::Always);
            for (threads, phase) in [
                (1, Phase::Train),
                (2, Phase::Train),
                (1, Phase::Test),
                (2, Phase::Test),
            ] {
                backend::set_threads(threads);
                let mut l = layer(&text);
                let mut bottoms = vec![uniform_blob(&[batch, c, h, w], -1.0, 1.0, 5)];
                let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 13);
                let mut run = |bottoms: &mut Vec<Blob>, params: &mut Vec<Blob>| {
                    forward_in(phase, l.as_mut(), bottoms, &mut tops, params);
                    tops[0].data().to_vec()
                };
                let case =
                    format!("{c}->{o} {k}x{k} b{batch}, {isa}, {threads} threads, {phase:?}");
                let fresh = run(&mut bottoms, &mut params);
                let want = expected(&bottoms, &params);
                assert_close(&fresh, &want, 1e-3, 1e-3, &format!("{case}: first forward"));
                for nth in ["second (keeps U)", "third (reads it)"] {
                    let kept = run(&mut bottoms, &mut params);
                    assert_eq!(bits(&kept), bits(&fresh), "{case}: {nth} forward");
                }
                // New weights: the kept U is stale and must not be read.
                params[0].data_mut().iter_mut().for_each(|v| *v = 0.5 - *v);
                let changed = run(&mut bottoms, &mut params);
                let want = expected(&bottoms, &params);
                assert_close(&changed, &want, 1e-3, 1e-3, &format!("{case}: new weights"));
                for _ in 0..2 {
                    let again = run(&mut bottoms, &mut params);
                    assert_eq!(bits(&again), bits(&changed), "{case}: kept again");
                }
            }
            backend::set_winograd(WinogradPolicy::Auto);
        });
    }
    backend::set_threads(0);
}

/// A kept U is of one tile kind: a 3×3 layer on 2×2 tiles at batch 1 runs
/// F(4×4, 3×3) at batch 11 (132 tiles of 4×4), whose U is a different
/// transform of the same weights, so the batch change must not read the U
/// kept before it, and the return to batch 1 must not read the larger one.
#[test]
fn kept_winograd_weights_follow_the_tile_kind_the_batch_picks() {
    let text = "name: \"c\" type: \"Convolution\" convolution_param { num_output: 32 \
        kernel_size: 3 pad: 1 weight_filler { type: \"gaussian\" std: 0.2 } \
        bias_filler { type: \"uniform\" min: -1 max: 1 } }";
    let expected = |b: &[Blob], p: &[Blob]| direct(b, p, 1, [1, 1], [1, 1], [14, 12]);
    let _alone = common::isa::exclusive();
    backend::set_winograd(WinogradPolicy::Always);
    for phase in [Phase::Train, Phase::Test] {
        kinds_in(phase, text, expected);
    }
    backend::set_winograd(WinogradPolicy::Auto);
}

fn kinds_in(phase: Phase, text: &str, expected: impl Fn(&[Blob], &[Blob]) -> Vec<f64>) {
    let mut l = layer(text);
    let small = uniform_blob(&[1, 20, 14, 12], -1.0, 1.0, 5);
    // The large batch's first sample is the small one.
    let mut large = uniform_blob(&[11, 20, 14, 12], -1.0, 1.0, 6);
    large.data_mut()[..small.count()].copy_from_slice(small.data());
    let mut bottoms = vec![small.clone()];
    let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 13);
    let mut outputs = Vec::new();
    for (round, x) in [&small, &small, &small, &large, &large, &large, &small]
        .into_iter()
        .enumerate()
    {
        bottoms[0] = x.clone();
        tops[0].reshape(&[x.dim(0), 32, 14, 12]);
        forward_in(phase, l.as_mut(), &mut bottoms, &mut tops, &mut params);
        let y = tops[0].data().to_vec();
        let want = expected(&bottoms, &params);
        assert_close(&y, &want, 1e-3, 1e-3, &format!("{phase:?} forward {round}"));
        outputs.push(bits(&y));
    }
    // Kept and fresh U give the same bits within each kind.
    assert_eq!(outputs[1], outputs[0]);
    assert_eq!(outputs[2], outputs[0]);
    assert_eq!(outputs[4], outputs[3]);
    assert_eq!(outputs[5], outputs[3]);
    assert_eq!(outputs[6], outputs[0]);
    // The two kinds round the same sample differently: the large batch ran 4×4 tiles.
    assert_ne!(outputs[3][..outputs[0].len()], outputs[0][..]);
}

/// In the TEST phase a kept U is also of one order: the same 2×2 tiles of a
/// 96 → 96 layer on 8×7 planes run the fused kernel on U in panels at batch 2
/// (32 tiles per GEMM) and the GEMM crate on U as rows at batch 20 (320), so
/// the batch change must remake the kept U.
#[test]
fn kept_winograd_weights_follow_the_order_the_batch_picks() {
    let text = "name: \"c\" type: \"Convolution\" convolution_param { num_output: 112 \
        kernel_size: 3 pad: 1 weight_filler { type: \"gaussian\" std: 0.1 } }";
    let _alone = common::isa::exclusive();
    backend::set_winograd(WinogradPolicy::Always);
    let mut l = layer(text);
    let small = uniform_blob(&[2, 112, 8, 7], -1.0, 1.0, 5);
    let large = uniform_blob(&[20, 112, 8, 7], -1.0, 1.0, 6);
    let mut bottoms = vec![small.clone()];
    let (mut tops, mut params) = setup(l.as_mut(), &bottoms, 13);
    for (round, x) in [&small, &small, &large, &large, &small, &small]
        .into_iter()
        .enumerate()
    {
        bottoms[0] = x.clone();
        tops[0].reshape(&[x.dim(0), 112, 8, 7]);
        forward_in(
            Phase::Test,
            l.as_mut(),
            &mut bottoms,
            &mut tops,
            &mut params,
        );
        let want = direct(&bottoms, &params, 1, [1, 1], [1, 1], [8, 7]);
        assert_close(
            tops[0].data(),
            &want,
            1e-3,
            1e-3,
            &format!("forward {round}"),
        );
    }
    backend::set_winograd(WinogradPolicy::Auto);
}

/// Nets run side by side from parallel code (a service extracting features on
/// a pool) give the same bits as one at a time. Whether a pool thread picks up
/// another net's convolution while waiting inside one depends on timing; the
/// nested use of the scratch buffers itself is checked deterministically in
/// `backend/cpu/conv/kernels.rs`.
#[test]
fn nets_run_side_by_side_from_parallel_code() {
    use netrun::net::Net;
    use netrun::netdef::Phase;
    use rayon::prelude::*;
    // Batch 1 splits one sample's shifted windows over threads inside the
    // layer's scratch; the 7×6 planes at batch 4 run chunks of samples.
    let text = "layer { name: \"in\" type: \"Input\" top: \"x\" input_param { shape { dim: 1 dim: 16 dim: 20 dim: 18 } } }\n\
        layer { name: \"a\" type: \"Convolution\" bottom: \"x\" top: \"a\" convolution_param { num_output: 24 kernel_size: 3 pad: 1 weight_filler { type: \"gaussian\" std: 0.2 } } }\n\
        layer { name: \"p\" type: \"Pooling\" bottom: \"a\" top: \"p\" pooling_param { pool: MAX kernel_size: 3 stride: 3 } }\n\
        layer { name: \"r\" type: \"Reshape\" bottom: \"p\" top: \"q\" reshape_param { shape { dim: 4 dim: 6 dim: 7 dim: 6 } } }\n\
        layer { name: \"b\" type: \"Convolution\" bottom: \"q\" top: \"y\" convolution_param { num_output: 8 kernel_size: 3 pad: 1 weight_filler { type: \"gaussian\" std: 0.2 } } }\n";
    let _alone = common::isa::exclusive();
    backend::set_winograd(WinogradPolicy::Never);
    let mut nets: Vec<Net> = (0..16)
        .map(|seed| Net::new(common::build(text, Phase::Test).unwrap(), seed).unwrap())
        .collect();
    let x = uniform_blob(&[1, 16, 20, 18], -1.0, 1.0, 9);
    let mut want = Vec::new();
    for net in &mut nets {
        net.blob_mut("x")
            .unwrap()
            .data_mut()
            .copy_from_slice(x.data());
        net.forward().unwrap();
        want.push(bits(net.blob("y").unwrap().data()));
    }
    for _ in 0..20 {
        let got: Vec<Vec<u32>> = nets
            .par_iter_mut()
            .map(|net| {
                net.forward().unwrap();
                bits(net.blob("y").unwrap().data())
            })
            .collect();
        assert_eq!(got, want);
    }
}

/// `netrun time` of a training net times what a training step runs: the
/// solver writes the weights every step, so each timed iteration gives them
/// new stamps and no layer reads a copy kept from the step before; a
/// forward-only (deploy) timing leaves them as they are, as a deploy net runs.
#[test]
fn timing_a_training_step_writes_the_weights_as_the_update_would() {
    use netrun::net::Net;
    use netrun::netdef::Phase;
    let text = "layer { name: \"in\" type: \"Input\" top: \"x\" input_param { shape { dim: 1 dim: 16 dim: 20 dim: 18 } } }\n\
        layer { name: \"a\" type: \"Convolution\" bottom: \"x\" top: \"a\" convolution_param { num_output: 24 kernel_size: 3 pad: 1 weight_filler { type: \"gaussian\" std: 0.2 } } }\n";
    for (phase, backward) in [(Phase::Train, true), (Phase::Test, false)] {
        let mut net = Net::new(common::build(text, phase).unwrap(), 3).unwrap();
        let before = net.params[0].data_stamp();
        netrun::timing::time(&mut net, 2, backward).unwrap();
        let after = net.params[0].data_stamp();
        assert_eq!(
            after != before,
            backward,
            "{phase:?}: stamps {before} -> {after}"
        );
    }
}
