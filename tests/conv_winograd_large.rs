//! Winograd F(4×4, 3×3) convolution, forced on for every 3×3 stride-1 layer of
//! this test binary (`backend::set_winograd(Always)` with the tile side forced
//! to 4, what `NETRUN_WINOGRAD=1 NETRUN_WINOGRAD_TILE=4` does on the command
//! line; by default it runs at batches with many tiles). Forward, data and
//! weight gradients against the direct loops and the numerical gradient, at
//! each instruction-set level of the tile transforms this machine supports.

mod common;

use common::conv::{conv_case, conv_check_against_naive};
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
        for (pad, shape) in [(1, [2, 3, 5, 7]), (0, [1, 4, 8, 5]), (2, [3, 2, 4, 5])] {
            conv_case(
                &format!("num_output: 3 kernel_size: 3 pad: {pad}"),
                &shape,
                1,
                [1, 1],
                [pad, pad],
                [1, 1],
            );
        }
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

#[test]
fn large_tiles_channel_blocks_with_a_remainder() {
    force_large_tiles();
    each_isa(|_| {
        // 20 inputs are a full 16-lane block and 4, 35 outputs two and 3.
        conv_check_against_naive(
            "num_output: 35 kernel_size: 3 pad: 1",
            &[3, 20, 7, 9],
            (1, [1, 1], [1, 1], [1, 1]),
        );
        conv_check_against_naive(
            "num_output: 17 kernel_size: 3 pad: 0",
            &[2, 33, 10, 6],
            (1, [1, 1], [0, 0], [1, 1]),
        );
    });
}

#[test]
fn large_tiles_in_bands_across_a_batch() {
    force_large_tiles();
    each_isa(|_| {
        // 16 → 4 channels run banded: 16×16 tiles of 4×4 per sample in bands
        // of 2 tile rows, 72 bands over the threads, their weight sums added.
        conv_check_against_naive(
            "num_output: 4 kernel_size: 3 pad: 1",
            &[9, 16, 64, 63],
            (1, [1, 1], [1, 1], [1, 1]),
        );
    });
}

#[test]
fn large_tiles_whole_batch_path_in_two_chunks() {
    force_large_tiles();
    each_isa(|_| {
        // 100 → 96 channels: U (36·C·O floats) too big to run banded; 20
        // samples of 6×6 tiles overflow one chunk of V (2²¹ floats): 16 + 4.
        conv_check_against_naive(
            "num_output: 96 kernel_size: 3 pad: 1",
            &[20, 100, 24, 23],
            (1, [1, 1], [1, 1], [1, 1]),
        );
    });
}
