//! Winograd F(4×4, 3×3) convolution, forced on for every 3×3 stride-1 layer of
//! this test binary (`backend::set_winograd(Always)` with the tile side forced
//! to 4, what `NETRUN_WINOGRAD=1 NETRUN_WINOGRAD_TILE=4` does on the command
//! line; by default it runs at batches with many tiles). Forward, data and
//! weight gradients against the direct loops and the numerical gradient, at
//! each instruction-set level of the tile transforms this machine supports.

mod common;

use common::conv::{conv_case, conv_check_against_naive, three_by_three_cases};
use common::isa::each_isa;

fn force_large_tiles() {
    // Every test of this binary wants it, so concurrent tests agree.
    netrun::backend::set_winograd(netrun::backend::WinogradPolicy::Always);
    netrun::backend::set_winograd_side(Some(4));
}

// Output sides 5, 7, 6, 3 and 9 leave partial 4×4 tiles of 1, 3, 2 and 3
// rows or columns; pads 0 and 2 give the data gradient pads 2 and 0.
#[test]
fn large_tiles_pad_partial_tiles_and_gradients() {
    force_large_tiles();
    each_isa(|_| {
        three_by_three_cases(&[(1, [2, 3, 5, 7]), (0, [1, 4, 8, 5]), (2, [3, 2, 4, 5])]);
        conv_case(
            "num_output: 2 kernel_size: 3 pad_h: 2 pad_w: 0 bias_term: false",
            &[2, 3, 4, 11],
            1,
            [1, 1],
            [2, 0],
            [1, 1],
        );
    });
}

/// Each (layer, input shape, pad) against the direct loops at every ISA level.
fn against_naive(cases: &[(&str, [usize; 4], usize)]) {
    force_large_tiles();
    each_isa(|_| {
        for &(spec, shape, pad) in cases {
            let spec = format!("kernel_size: 3 pad: {pad} {spec}");
            conv_check_against_naive(&spec, &shape, (1, [1, 1], [pad, pad], [1, 1]));
        }
    });
}

// 20 inputs are a full 16-lane block and 4, 35 outputs two and 3.
#[test]
fn large_tiles_channel_blocks_with_a_remainder() {
    against_naive(&[
        ("num_output: 35", [3, 20, 7, 9], 1),
        ("num_output: 17", [2, 33, 10, 6], 0),
    ]);
}

// 16 → 4 channels run banded: 16×16 tiles of 4×4 per sample in bands of 2
// tile rows, 72 bands over the threads, their weight sums added.
#[test]
fn large_tiles_in_bands_across_a_batch() {
    against_naive(&[("num_output: 4", [9, 16, 64, 63], 1)]);
}

// 100 → 96 channels: U (36·C·O floats) too big to run banded; 20 samples of
// 6×6 tiles overflow one chunk of V (2²¹ floats): 16 + 4.
#[test]
fn large_tiles_whole_batch_path_in_two_chunks() {
    against_naive(&[("num_output: 96", [20, 100, 24, 23], 1)]);
}
