//! Winograd F(2×2, 3×3) and F(4×4, 5×5) convolution, forced on for every 3×3
//! and 5×5 stride-1 layer of this test binary with `backend::set_winograd(Always)`
//! (what `NETRUN_WINOGRAD=1` does on the command line; by default it runs only
//! where the channel counts make it pay, too wide for the gradient checker),
//! 3×3 layers on 2×2 tiles whatever the batch (`NETRUN_WINOGRAD_TILE=2`;
//! F(4×4, 3×3) is `conv_winograd_large.rs`). Every check runs at each
//! instruction-set level of the tile transforms this machine supports.

mod common;

use common::conv::{conv_case, conv_check_against_naive, three_by_three_cases};
use common::isa::each_isa;

fn force_winograd() {
    // Every test of this binary wants it, so concurrent tests agree.
    netrun::backend::set_winograd(netrun::backend::WinogradPolicy::Always);
    netrun::backend::set_winograd_side(Some(2));
}

// Odd output sizes leave partial 2×2 tiles; pads 0 and 2 give the data
// gradient pads 2 and 0.
#[test]
fn winograd_pads_partial_tiles_and_gradients() {
    force_winograd();
    each_isa(|_| {
        three_by_three_cases(&[(1, [2, 3, 5, 7]), (0, [1, 4, 6, 5]), (2, [3, 2, 3, 4])]);
    });
}

#[test]
fn winograd_rectangular_pad_and_no_bias() {
    force_winograd();
    each_isa(|_| {
        conv_case(
            "num_output: 2 kernel_size: 3 pad_h: 2 pad_w: 0 bias_term: false",
            &[2, 3, 4, 9],
            1,
            [1, 1],
            [2, 0],
            [1, 1],
        );
    });
}

#[test]
fn winograd_bands_of_tile_rows_across_a_batch() {
    force_winograd();
    each_isa(|_| {
        // 16 → 4 channels run banded: 32×32 tiles per sample in bands of 4 tile
        // rows, 72 bands spread over the threads, whose weight-gradient sums add up.
        conv_check_against_naive(
            "num_output: 4 kernel_size: 3 pad: 1",
            &[9, 16, 64, 63],
            (1, [1, 1], [1, 1], [1, 1]),
        );
    });
}

#[test]
fn winograd_channel_blocks_with_a_remainder() {
    force_winograd();
    each_isa(|_| {
        // The transforms run 16 channels per vector step: 20 inputs are a full
        // block and 4, 35 outputs two full blocks and 3, for x, y, dy and the
        // kernels alike; odd planes leave partial tiles in both directions.
        conv_check_against_naive(
            "num_output: 35 kernel_size: 3 pad: 1",
            &[3, 20, 7, 9],
            (1, [1, 1], [1, 1], [1, 1]),
        );
        conv_check_against_naive(
            "num_output: 17 kernel_size: 3 pad: 0",
            &[2, 33, 6, 5],
            (1, [1, 1], [0, 0], [1, 1]),
        );
    });
}

#[test]
fn winograd_whole_batch_path_for_wide_layers_in_two_chunks() {
    force_winograd();
    each_isa(|_| {
        // 100 → 96 channels make U too big to run banded (16·C·O > 2¹⁷ floats), and
        // 10 samples of 12×12 tiles overflow one chunk of V (2²¹ floats): 9 + 1.
        conv_check_against_naive(
            "num_output: 96 kernel_size: 3 pad: 1",
            &[10, 100, 24, 23],
            (1, [1, 1], [1, 1], [1, 1]),
        );
    });
}

// F(4×4, 5×5): pads 0 to 4 (data-gradient pads 4 to 0), odd planes with
// partial tiles, and channel counts off the 16-lane blocks.
#[test]
fn winograd_five_by_five_pads_and_partial_tiles() {
    force_winograd();
    each_isa(|_| {
        for (pad, shape) in [(2, [2, 3, 7, 6]), (0, [1, 2, 9, 8]), (4, [2, 3, 3, 5])] {
            conv_case(
                &format!("num_output: 3 kernel_size: 5 pad: {pad}"),
                &shape,
                1,
                [1, 1],
                [pad, pad],
                [1, 1],
            );
        }
        conv_check_against_naive(
            "num_output: 19 kernel_size: 5 pad_h: 1 pad_w: 3",
            &[3, 21, 9, 7],
            (1, [1, 1], [1, 3], [1, 1]),
        );
    });
}

#[test]
fn winograd_five_by_five_whole_batch_path() {
    force_winograd();
    each_isa(|_| {
        // 36·64·64 floats of U are too many to run banded: whole samples in chunks.
        conv_check_against_naive(
            "num_output: 64 kernel_size: 5 pad: 2",
            &[5, 64, 7, 7],
            (1, [1, 1], [2, 2], [1, 1]),
        );
    });
}
