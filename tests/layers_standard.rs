//! Standard Caffe layers: parameter parsing, shape rules, learnable blobs, FLOPs and errors.

mod common;

use common::{build, build_error, shared};
use netrun::graph::{BuildOptions, Graph};
use netrun::layers::{
    batch_norm::BatchNormParams, bias::BiasParams, concat::ConcatParams, convolution::Engine,
    dropout::DropoutParams, flatten::FlattenParams, pooling::PoolMethod, pooling::PoolingParams,
    pooling::RoundMode, relu::ReLUParams, reshape::ReshapeParams, scale::ScaleParams,
    sigmoid::SigmoidParams, slice::SliceParams, tanh::TanHParams,
};
use netrun::netdef::{parse_net_str, read_net_file, Phase};
use serde::Deserialize;

/// An Input layer with one top `data` of the given shape.
fn input(dims: &[usize]) -> String {
    let dims: String = dims.iter().map(|d| format!("dim: {d} ")).collect();
    format!("layer {{ name: \"in\" type: \"Input\" top: \"data\" input_param {{ shape {{ {dims}}} }} }}\n")
}

/// The 2x3x7x5 input followed by `layers`.
fn net(layers: &str) -> String {
    input(&[2, 3, 7, 5]) + layers
}

fn graph(text: &str) -> Graph {
    build(text, Phase::Train).unwrap_or_else(|e| panic!("{e}\nfor net:\n{text}"))
}

fn shape(g: &Graph, blob: &str) -> Vec<usize> {
    let id = g
        .blobs
        .iter()
        .position(|b| b.name == blob)
        .unwrap_or_else(|| panic!("no blob `{blob}`"));
    g.blob_shape(id).to_vec()
}

fn param_shapes(g: &Graph, layer: &str) -> Vec<Vec<usize>> {
    g.nodes[g.node(layer).expect("layer")].param_shapes.clone()
}

fn flops(g: &Graph, layer: &str) -> u64 {
    let n = &g.nodes[g.node(layer).expect("layer")];
    let shapes = |ids: &[usize]| -> Vec<Vec<usize>> {
        ids.iter().map(|&i| g.blob_shape(i).to_vec()).collect()
    };
    n.layer.flops(&shapes(&n.bottoms), &shapes(&n.tops))
}

/// Reads layer `layer`'s `block` from net text without building the graph.
fn params<T: for<'de> Deserialize<'de> + Default>(text: &str, layer: &str, block: &str) -> T {
    let net = parse_net_str("test.net", text).expect("parses");
    let def = net.layers.iter().find(|l| l.name == layer).expect("layer");
    def.params(block).unwrap_or_else(|e| panic!("{e}"))
}

fn count(s: &[usize]) -> usize {
    s.iter().product()
}

fn assert_contains(text: &str, parts: &[&str]) {
    for p in parts {
        assert!(text.contains(p), "missing `{p}` in:\n{text}");
    }
}

// ---------------------------------------------------------------- Pooling

/// Caffe's pooled length, written from the formula with floating-point ceil.
fn caffe_pooled(h: usize, k: usize, s: usize, p: usize) -> usize {
    let mut out = ((h + 2 * p - k) as f64 / s as f64).ceil() as usize + 1;
    if p > 0 && (out - 1) * s >= h + p {
        out -= 1;
    }
    out
}

fn pool_net(h: usize, w: usize, param: &str) -> String {
    input(&[1, 2, h, w])
        + &format!("layer {{ name: \"pool\" type: \"Pooling\" bottom: \"data\" top: \"pool\" pooling_param {{ {param} }} }}")
}

#[test]
fn pooling_params_parse_numeric_and_named_enums() {
    let text = pool_net(
        7,
        5,
        "pool: 1 kernel_h: 3 kernel_w: 2 stride_h: 2 stride_w: 1 pad_h: 1 pad_w: 0 \
         engine: 2 round_mode: 1",
    );
    let p: PoolingParams = params(&text, "pool", "pooling_param");
    assert_eq!(p.pool, PoolMethod::Ave);
    assert_eq!((p.kernel_h, p.kernel_w), (Some(3), Some(2)));
    assert_eq!((p.stride_h, p.stride_w), (Some(2), Some(1)));
    assert_eq!((p.pad_h, p.pad_w), (Some(1), Some(0)));
    assert_eq!(p.engine, Engine::Cudnn);
    assert_eq!(p.round_mode, RoundMode::Floor);
    assert!(!p.global_pooling);

    let named: PoolingParams = params(
        &pool_net(7, 5, "pool: STOCHASTIC kernel_size: 2 round_mode: CEIL"),
        "pool",
        "pooling_param",
    );
    assert_eq!(named.pool, PoolMethod::Stochastic);
    assert_eq!(named.round_mode, RoundMode::Ceil);
    let default: PoolingParams = params(&pool_net(7, 5, ""), "pool", "pooling_param");
    assert_eq!(default.pool, PoolMethod::Max);
}

#[test]
fn pooling_unknown_field_suggests_the_right_one() {
    let err = build_error(&pool_net(7, 5, "pool: MAX kernal_size: 3"));
    assert_contains(
        &err,
        &[
            "layer `pool` (Pooling): unknown field `kernal_size`",
            "did you mean `kernel_size`?",
        ],
    );
}

#[test]
fn pooling_uses_caffe_ceil_rounding_and_padding_clip() {
    // (H, k, s, p): H=7,k=3,s=2,p=1 windows start at -1,1,3,5 -> 4.
    // H=5,k=2,s=2,p=1: ceil gives starts -1,1,3,5; the one at 5 = H lies wholly in the
    // padding, so the clip rule drops it -> 3.
    // H=6,k=3,s=2,p=1: starts -1,1,3,5 and 5 < H, so no clip -> 4.
    // H=6,k=3,s=2,p=0: ceil(1.5)+1 = 3 where convolution would floor to 2.
    let cases = [
        (7, 3, 2, 1, 4),
        (5, 2, 2, 1, 3),
        (6, 3, 2, 1, 4),
        (6, 3, 2, 0, 3),
        (28, 2, 2, 0, 14),
        (7, 3, 2, 0, 3),
        (4, 3, 2, 2, 3),
    ];
    for (h, k, s, p, by_hand) in cases {
        assert_eq!(caffe_pooled(h, k, s, p), by_hand, "H={h} k={k} s={s} p={p}");
        let g = graph(&pool_net(
            h,
            h,
            &format!("kernel_size: {k} stride: {s} pad: {p}"),
        ));
        assert_eq!(
            shape(&g, "pool"),
            vec![1, 2, by_hand, by_hand],
            "H={h} k={k} s={s} p={p}"
        );
    }
}

#[test]
fn pooling_non_square_window_and_floor_mode() {
    let g = graph(&pool_net(
        7,
        5,
        "pool: AVE kernel_h: 3 kernel_w: 2 stride_h: 2 stride_w: 1 pad_h: 1 pad_w: 0",
    ));
    let (h, w) = (caffe_pooled(7, 3, 2, 1), caffe_pooled(5, 2, 1, 0));
    assert_eq!(shape(&g, "pool"), vec![1, 2, h, w]);
    assert_eq!(flops(&g, "pool"), (3 * 2 * 2 * h * w) as u64);

    let floor = graph(&pool_net(
        6,
        6,
        "kernel_size: 3 stride: 2 round_mode: FLOOR",
    ));
    // floor((6 - 3)/2) + 1
    assert_eq!(shape(&floor, "pool"), vec![1, 2, 2, 2]);
}

#[test]
fn pooling_pairs_must_be_complete_and_exclusive() {
    let err = build_error(&pool_net(7, 5, "kernel_size: 3 pad_h: 1"));
    assert_contains(&err, &["`pad_h` and `pad_w` must be given together"]);
    let err = build_error(&pool_net(7, 5, "kernel_size: 3 kernel_h: 3 kernel_w: 3"));
    assert_contains(
        &err,
        &["give either `kernel` or `kernel_h`/`kernel_w`, not both"],
    );
}

#[test]
fn global_pooling_takes_the_whole_plane() {
    let g = graph(&net(
        "layer { name: \"gp\" type: \"Pooling\" bottom: \"data\" top: \"gp\" \
         pooling_param { pool: AVE global_pooling: true } }",
    ));
    assert_eq!(shape(&g, "gp"), vec![2, 3, 1, 1]);
    // One 7x5 window per output.
    assert_eq!(flops(&g, "gp"), (7 * 5 * 2 * 3) as u64);

    let err = build_error(&net(
        "layer { name: \"gp\" type: \"Pooling\" bottom: \"data\" top: \"gp\" \
         pooling_param { global_pooling: true kernel_size: 2 } }",
    ));
    assert_contains(
        &err,
        &["layer `gp` (Pooling): global pooling takes its kernel from the bottom"],
    );
    let err = build_error(&net(
        "layer { name: \"gp\" type: \"Pooling\" bottom: \"data\" top: \"gp\" \
         pooling_param { global_pooling: true stride: 2 } }",
    ));
    assert_contains(&err, &["global pooling needs pad 0 and stride 1"]);
}

#[test]
fn max_pooling_may_output_its_mask() {
    let g = graph(&net(
        "layer { name: \"p\" type: \"Pooling\" bottom: \"data\" top: \"p\" top: \"mask\" \
         pooling_param { pool: MAX kernel_size: 2 stride: 2 } }",
    ));
    let want = vec![2, 3, caffe_pooled(7, 2, 2, 0), caffe_pooled(5, 2, 2, 0)];
    assert_eq!(shape(&g, "p"), want);
    assert_eq!(shape(&g, "mask"), want);

    let err = build_error(&net(
        "layer { name: \"p\" type: \"Pooling\" bottom: \"data\" top: \"p\" top: \"mask\" \
         pooling_param { pool: AVE kernel_size: 2 } }",
    ));
    assert_contains(
        &err,
        &[
            "layer `p` (Pooling): only MAX pooling has a second top (the argmax mask)",
            "use `pool: MAX`",
        ],
    );
}

#[test]
fn pooling_errors_name_the_problem() {
    let err = build_error(&pool_net(7, 5, "pool: MAX"));
    assert_contains(
        &err,
        &["layer `pool` (Pooling) needs `pooling_param { kernel_size: ... }`"],
    );
    let err = build_error(&pool_net(7, 5, "kernel_size: 0"));
    assert_contains(&err, &["layer `pool` (Pooling): kernel must be positive"]);
    let err = build_error(&pool_net(7, 5, "kernel_size: 2 stride: 0"));
    assert_contains(&err, &["layer `pool` (Pooling): stride must be positive"]);
    let err = build_error(&pool_net(7, 5, "kernel_size: 2 pad: 2"));
    assert_contains(&err, &["pad 2x2 must be smaller than the kernel 2x2"]);
    let err = build_error(&pool_net(7, 5, "pool: STOCHASTIC kernel_size: 3 pad: 1"));
    assert_contains(&err, &["padding is only supported for MAX and AVE pooling"]);
    let err = build_error(&pool_net(7, 5, "kernel_size: 9"));
    assert_contains(
        &err,
        &[
            "layer `pool` (Pooling) (bottom `data`)",
            "kernel 9x9 (stride 1x1, pad 0x0) does not fit the 7x5 input",
        ],
    );
    let err = build_error(&(input(&[2, 3, 7])
        + "layer { name: \"p\" type: \"Pooling\" bottom: \"data\" top: \"p\" pooling_param { kernel_size: 2 } }"));
    assert_contains(&err, &["needs an NxCxHxW bottom, got 2x3x7"]);
}

// ---------------------------------------------------------------- Flatten and Reshape

#[test]
fn flatten_merges_the_chosen_axes() {
    let g = graph(&net(
        "layer { name: \"f\" type: \"Flatten\" bottom: \"data\" top: \"f\" }",
    ));
    assert_eq!(shape(&g, "f"), vec![2, 3 * 7 * 5]);
    assert_eq!(flops(&g, "f"), 0);

    let text = net(
        "layer { name: \"f\" type: \"Flatten\" bottom: \"data\" top: \"f\" \
                    flatten_param { axis: -3 end_axis: -2 } }",
    );
    let p: FlattenParams = params(&text, "f", "flatten_param");
    assert_eq!((p.axis, p.end_axis), (-3, -2));
    assert_eq!(shape(&graph(&text), "f"), vec![2, 3 * 7, 5]);
}

#[test]
fn flatten_errors() {
    let err = build_error(&net(
        "layer { name: \"f\" type: \"Flatten\" bottom: \"data\" top: \"f\" \
         flatten_param { axis: 2 end_axis: 1 } }",
    ));
    assert_contains(&err, &["end_axis 1 comes before axis 2 in shape 2x3x7x5"]);
    let err = build_error(&net(
        "layer { name: \"f\" type: \"Flatten\" bottom: \"data\" top: \"f\" flatten_param { axis: 4 } }",
    ));
    assert_contains(&err, &["axis 4 is out of range for shape 2x3x7x5"]);
    let err = build_error(&net(
        "layer { name: \"f\" type: \"Flatten\" bottom: \"data\" top: \"data\" }",
    ));
    assert_contains(
        &err,
        &[
            "layer `f` (Flatten) cannot work in place",
            "give the top its own name",
        ],
    );
    let err = build_error(&net(
        "layer { name: \"f\" type: \"Flatten\" bottom: \"data\" top: \"f\" flatten_param { end_axs: 2 } }",
    ));
    assert_contains(
        &err,
        &["unknown field `end_axs`", "did you mean `end_axis`?"],
    );
}

fn reshape_net(param: &str) -> String {
    net(&format!(
        "layer {{ name: \"r\" type: \"Reshape\" bottom: \"data\" top: \"r\" reshape_param {{ {param} }} }}"
    ))
}

#[test]
fn reshape_copies_zero_dims_and_infers_minus_one() {
    let text = reshape_net("shape { dim: 0 dim: -1 dim: 5 }");
    let p: ReshapeParams = params(&text, "r", "reshape_param");
    assert_eq!(p.shape.dim, vec![0, -1, 5]);
    assert_eq!((p.axis, p.num_axes), (0, -1));
    // dim 0 copies N = 2; -1 = 210 / (2 * 5).
    assert_eq!(
        shape(&graph(&text), "r"),
        vec![2, 2 * 3 * 7 * 5 / (2 * 5), 5]
    );

    let g = graph(&reshape_net("axis: 2 num_axes: 2 shape { dim: -1 }"));
    assert_eq!(shape(&g, "r"), vec![2, 3, 7 * 5]);
    // axis -1 inserts after the last axis.
    let g = graph(&reshape_net("axis: -1 num_axes: 0 shape { dim: 1 }"));
    assert_eq!(shape(&g, "r"), vec![2, 3, 7, 5, 1]);
    let g = graph(&reshape_net("axis: 1 num_axes: 1 shape { dim: 1 dim: 3 }"));
    assert_eq!(shape(&g, "r"), vec![2, 1, 3, 7, 5]);
}

#[test]
fn reshape_errors() {
    let err = build_error(&reshape_net("shape { dim: -1 dim: -1 }"));
    assert_contains(
        &err,
        &["layer `r` (Reshape): at most one dim may be -1 (inferred)"],
    );
    let err = build_error(&reshape_net("shape { dim: 4 dim: -1 }"));
    assert_contains(
        &err,
        &["cannot infer the -1 dim: 210 values of 2x3x7x5 are not a multiple of 4"],
    );
    let err = build_error(&reshape_net("shape { dim: 0 dim: 100 }"));
    assert_contains(
        &err,
        &["cannot reshape 2x3x7x5 (210 values) to 2x100 (200 values)"],
    );
    let err = build_error(&reshape_net("shape { dim: -2 }"));
    assert_contains(&err, &["dim -2 is invalid"]);
    let err = build_error(&reshape_net("axis: 3 shape { dim: 0 dim: 0 }"));
    assert_contains(&err, &["dim 1 is 0 (copy) but shape 2x3x7x5 has no axis 4"]);
    let err = build_error(&reshape_net("shap { dim: 1 }"));
    assert_contains(&err, &["unknown field `shap`", "did you mean `shape`?"]);
}

// ---------------------------------------------------------------- Concat and Slice

/// Input tops `a` and `b` with the given shapes.
fn two_inputs(a: &[usize], b: &[usize]) -> String {
    let dims = |s: &[usize]| s.iter().map(|d| format!("dim: {d} ")).collect::<String>();
    format!(
        "layer {{ name: \"in\" type: \"Input\" top: \"a\" top: \"b\" \
         input_param {{ shape {{ {} }} shape {{ {} }} }} }}\n",
        dims(a),
        dims(b)
    )
}

fn concat(a: &[usize], b: &[usize], param: &str) -> String {
    two_inputs(a, b)
        + &format!("layer {{ name: \"cat\" type: \"Concat\" bottom: \"a\" bottom: \"b\" top: \"c\" concat_param {{ {param} }} }}")
}

#[test]
fn concat_sums_the_joined_axis() {
    let g = graph(&concat(&[2, 3, 7, 5], &[2, 4, 7, 5], ""));
    assert_eq!(shape(&g, "c"), vec![2, 3 + 4, 7, 5]);
    assert_eq!(flops(&g, "cat"), 0);

    let text = concat(&[2, 3, 7, 5], &[2, 3, 2, 5], "concat_dim: 2");
    let p: ConcatParams = params(&text, "cat", "concat_param");
    assert_eq!((p.axis, p.concat_dim), (None, Some(2)));
    assert_eq!(shape(&graph(&text), "c"), vec![2, 3, 7 + 2, 5]);

    let g = graph(&concat(&[2, 3, 7, 5], &[2, 3, 7, 1], "axis: -1"));
    assert_eq!(shape(&g, "c"), vec![2, 3, 7, 5 + 1]);
}

#[test]
fn concat_mismatch_names_bottom_and_both_shapes() {
    let err = build_error(&concat(&[2, 3, 7, 5], &[2, 4, 6, 5], "axis: 1"));
    assert_contains(
        &err,
        &[
            "layer `cat` (Concat): bottom 1 (`b`) has shape 2x4x6x5 but bottom 0 (`a`) has shape 2x3x7x5",
            "only axis 1 may differ",
        ],
    );
    let err = build_error(&concat(&[2, 3, 7, 5], &[2, 3, 7], ""));
    assert_contains(
        &err,
        &["bottom 1 (`b`) has shape 2x3x7 but bottom 0 (`a`) has shape 2x3x7x5"],
    );
    let err = build_error(&concat(&[2, 3], &[2, 3], "axis: 1 concat_dim: 1"));
    assert_contains(
        &err,
        &["give either `axis` or the legacy `concat_dim`, not both"],
    );
    let err = build_error(&concat(&[2, 3], &[2, 3], "axes: 1"));
    assert_contains(&err, &["unknown field `axes`", "did you mean `axis`?"]);
}

fn slice(shape: &[usize], tops: usize, param: &str) -> String {
    let tops: String = (0..tops).map(|i| format!("top: \"s{i}\" ")).collect();
    input(shape)
        + &format!("layer {{ name: \"sl\" type: \"Slice\" bottom: \"data\" {tops}slice_param {{ {param} }} }}")
}

#[test]
fn slice_points_cut_consecutive_pieces() {
    let text = slice(&[2, 6, 7, 5], 3, "slice_point: 1 slice_point: 4");
    let p: SliceParams = params(&text, "sl", "slice_param");
    assert_eq!(p.slice_point, vec![1, 4]);
    let g = graph(&text);
    // Pieces [0,1), [1,4), [4,6).
    assert_eq!(shape(&g, "s0"), vec![2, 1, 7, 5]);
    assert_eq!(shape(&g, "s1"), vec![2, 3, 7, 5]);
    assert_eq!(shape(&g, "s2"), vec![2, 2, 7, 5]);

    let g = graph(&slice(&[2, 6, 7, 5], 3, ""));
    for i in 0..3 {
        assert_eq!(shape(&g, &format!("s{i}")), vec![2, 6 / 3, 7, 5]);
    }
    let g = graph(&slice(&[2, 6, 7, 5], 2, "slice_dim: 2 slice_point: 3"));
    assert_eq!(shape(&g, "s0"), vec![2, 6, 3, 5]);
    assert_eq!(shape(&g, "s1"), vec![2, 6, 7 - 3, 5]);
    let g = graph(&slice(&[2, 6, 7, 5], 5, "axis: -1"));
    assert_eq!(shape(&g, "s4"), vec![2, 6, 7, 1]);
}

#[test]
fn slice_errors() {
    let err = build_error(&slice(&[2, 6, 7, 5], 4, ""));
    assert_contains(
        &err,
        &["axis 1 of 2x6x7x5 has 6 entries, not divisible into 4 equal tops"],
    );
    let err = build_error(&slice(&[2, 6, 7, 5], 3, "slice_point: 2"));
    assert_contains(&err, &["layer `sl` (Slice): 1 slice points for 3 tops"]);
    let err = build_error(&slice(&[2, 6, 7, 5], 3, "slice_point: 3 slice_point: 3"));
    assert_contains(
        &err,
        &["slice points must be positive and increasing, found 3 after 3"],
    );
    let err = build_error(&slice(&[2, 6, 7, 5], 2, "slice_point: 6"));
    assert_contains(
        &err,
        &["slice point 6 is not inside axis 1 of 2x6x7x5 (length 6)"],
    );
    let err = build_error(&slice(&[2, 6, 7, 5], 2, "slice_points: 3"));
    assert_contains(&err, &["did you mean `slice_point`?"]);
}

// ---------------------------------------------------------------- Silence, Dropout, neurons

#[test]
fn silence_consumes_without_tops() {
    let g = graph(&net(
        "layer { name: \"s\" type: \"Silence\" bottom: \"data\" }",
    ));
    let data = g.blobs.iter().position(|b| b.name == "data").unwrap();
    assert!(!g.outputs.contains(&data));
    assert_eq!(flops(&g, "s"), 0);
    let err = build_error(&net(
        "layer { name: \"s\" type: \"Silence\" bottom: \"data\" top: \"x\" }",
    ));
    assert_contains(&err, &["layer `s` (Silence) takes exactly 0 tops, found 1"]);
    let err = build_error(&net("layer { name: \"s\" type: \"Silence\" }"));
    assert_contains(&err, &["takes at least 1 bottom"]);
}

#[test]
fn dropout_reads_params_and_works_in_place() {
    let text = net(
        "layer { name: \"d\" type: \"Dropout\" bottom: \"data\" top: \"data\" \
                    dropout_param { dropout_ratio: 0.25 scale_train: false } }",
    );
    let p: DropoutParams = params(&text, "d", "dropout_param");
    assert_eq!((p.dropout_ratio, p.scale_train), (0.25, false));
    let default: DropoutParams = params(&text, "in", "dropout_param");
    assert_eq!((default.dropout_ratio, default.scale_train), (0.5, true));
    let g = graph(&text);
    assert_eq!(shape(&g, "data"), vec![2, 3, 7, 5]);
    assert_eq!(flops(&g, "d"), (2 * 3 * 7 * 5) as u64);

    let err = build_error(&net(
        "layer { name: \"d\" type: \"Dropout\" bottom: \"data\" top: \"d\" dropout_param { dropout_ratio: 1 } }",
    ));
    assert_contains(
        &err,
        &["layer `d` (Dropout): dropout_ratio 1 must be in [0, 1)"],
    );
    let err = build_error(&net(
        "layer { name: \"d\" type: \"Dropout\" bottom: \"data\" top: \"d\" dropout_param { drop_ratio: 0.1 } }",
    ));
    assert_contains(&err, &["did you mean `dropout_ratio`?"]);
}

#[test]
fn relu_sigmoid_tanh_are_elementwise() {
    let text = net(
        "layer { name: \"r\" type: \"ReLU\" bottom: \"data\" top: \"data\" relu_param { negative_slope: 0.1 engine: 1 } }\n\
         layer { name: \"s\" type: \"Sigmoid\" bottom: \"data\" top: \"s\" sigmoid_param { engine: CUDNN } }\n\
         layer { name: \"t\" type: \"TanH\" bottom: \"s\" top: \"t\" tanh_param { engine: 1 } }",
    );
    let r: ReLUParams = params(&text, "r", "relu_param");
    assert_eq!((r.negative_slope, r.engine), (0.1, Engine::Caffe));
    let s: SigmoidParams = params(&text, "s", "sigmoid_param");
    assert_eq!(s.engine, Engine::Cudnn);
    let t: TanHParams = params(&text, "t", "tanh_param");
    assert_eq!(t.engine, Engine::Caffe);

    let g = graph(&text);
    let n = (2 * 3 * 7 * 5) as u64;
    assert_eq!(shape(&g, "data"), vec![2, 3, 7, 5]);
    assert_eq!(shape(&g, "t"), vec![2, 3, 7, 5]);
    assert_eq!(flops(&g, "r"), n);
    assert_eq!(flops(&g, "s"), netrun::layers::sigmoid::SIGMOID_FLOPS * n);
    assert_eq!(flops(&g, "t"), netrun::layers::tanh::TANH_FLOPS * n);

    let err = build_error(&net(
        "layer { name: \"r\" type: \"ReLU\" bottom: \"data\" top: \"r\" relu_param { negative_slop: 0.1 } }",
    ));
    assert_contains(
        &err,
        &[
            "layer `r` (ReLU): unknown field `negative_slop`",
            "did you mean `negative_slope`?",
        ],
    );
    let err = build_error(&net(
        "layer { name: \"r\" type: \"ReLU\" bottom: \"data\" top: \"r\" relu_param { engine: CUDA } }",
    ));
    assert_contains(&err, &["unknown value `CUDA`"]);
}

// ---------------------------------------------------------------- BatchNorm, Scale, Bias

#[test]
fn batch_norm_params_and_statistics_blobs() {
    let text = net(
        "layer { name: \"bn\" type: \"BatchNorm\" bottom: \"data\" top: \"data\" \
         batch_norm_param { use_global_stats: false moving_average_fraction: 0.9 eps: 0.001 } }",
    );
    let p: BatchNormParams = params(&text, "bn", "batch_norm_param");
    assert_eq!(p.use_global_stats, Some(false));
    assert_eq!((p.moving_average_fraction, p.eps), (0.9, 0.001));
    let d: BatchNormParams = params(&text, "in", "batch_norm_param");
    assert_eq!(d.use_global_stats, None);
    assert_eq!((d.moving_average_fraction, d.eps), (0.999, 1e-5));

    let g = graph(&text);
    assert_eq!(param_shapes(&g, "bn"), vec![vec![3], vec![3], vec![1]]);
    assert_eq!(g.param_count(), 3 + 3 + 1);
    assert_eq!(flops(&g, "bn"), 2 * (2 * 3 * 7 * 5) as u64);

    // A 1-axis bottom is one channel.
    let g = graph(
        &(input(&[8]) + "layer { name: \"bn\" type: \"BatchNorm\" bottom: \"data\" top: \"bn\" }"),
    );
    assert_eq!(param_shapes(&g, "bn"), vec![vec![1], vec![1], vec![1]]);
}

#[test]
fn batch_norm_statistics_are_not_learned() {
    let ok = net(
        "layer { name: \"bn\" type: \"BatchNorm\" bottom: \"data\" top: \"bn\" \
         param { lr_mult: 0 } param { lr_mult: 0 } param { lr_mult: 0 } }",
    );
    assert_eq!(graph(&ok).param_count(), 7);
    let err = build_error(&net(
        "layer { name: \"bn\" type: \"BatchNorm\" bottom: \"data\" top: \"bn\" \
         param { lr_mult: 0 } param { lr_mult: 1 } }",
    ));
    assert_contains(
        &err,
        &["layer `bn` (BatchNorm): blob 1 holds running statistics, so its `lr_mult` must be 0, found 1"],
    );
    let err = build_error(&net(
        "layer { name: \"bn\" type: \"BatchNorm\" bottom: \"data\" top: \"bn\" batch_norm_param { use_global_stat: true } }",
    ));
    assert_contains(&err, &["did you mean `use_global_stats`?"]);
}

fn scale_net(param: &str) -> String {
    net(&format!(
        "layer {{ name: \"sc\" type: \"Scale\" bottom: \"data\" top: \"data\" scale_param {{ {param} }} }}"
    ))
}

#[test]
fn scale_with_learned_factor() {
    let d: ScaleParams = params(&scale_net(""), "sc", "scale_param");
    assert_eq!((d.axis, d.num_axes, d.bias_term), (1, 1, false));
    assert_eq!(
        (d.filler.type_name.as_str(), d.filler.value),
        ("constant", 1.0)
    );
    assert_eq!(d.bias_filler.value, 0.0);

    let g = graph(&scale_net(""));
    assert_eq!(param_shapes(&g, "sc"), vec![vec![3]]);
    assert_eq!(flops(&g, "sc"), (2 * 3 * 7 * 5) as u64);

    let text = scale_net(
        "axis: 2 num_axes: -1 bias_term: true filler { type: \"gaussian\" std: 0.5 } \
         bias_filler { value: 0.25 }",
    );
    let p: ScaleParams = params(&text, "sc", "scale_param");
    assert_eq!((p.axis, p.num_axes, p.bias_term), (2, -1, true));
    assert_eq!(
        (p.filler.type_name.as_str(), p.filler.std),
        ("gaussian", 0.5)
    );
    assert_eq!(p.bias_filler.value, 0.25);
    let g = graph(&text);
    assert_eq!(param_shapes(&g, "sc"), vec![vec![7, 5], vec![7, 5]]);
    assert_eq!(g.param_count(), 2 * 7 * 5);
    // Multiply and add per element.
    assert_eq!(flops(&g, "sc"), 2 * (2 * 3 * 7 * 5) as u64);

    let g = graph(&scale_net("axis: -3 num_axes: 2"));
    assert_eq!(param_shapes(&g, "sc"), vec![vec![3, 7]]);
    let g = graph(&scale_net("num_axes: 0"));
    assert_eq!(param_shapes(&g, "sc"), vec![Vec::<usize>::new()]);
    assert_eq!(g.param_count(), 1);
}

#[test]
fn scale_with_second_bottom() {
    let text = two_inputs(&[2, 3, 7, 5], &[3, 7])
        + "layer { name: \"sc\" type: \"Scale\" bottom: \"a\" bottom: \"b\" top: \"y\" \
           scale_param { bias_term: true } }";
    let g = graph(&text);
    assert_eq!(shape(&g, "y"), vec![2, 3, 7, 5]);
    // Only the bias is learned; it is shaped like bottom 1.
    assert_eq!(param_shapes(&g, "sc"), vec![vec![3, 7]]);

    let err = build_error(
        &(two_inputs(&[2, 3, 7, 5], &[3, 5])
            + "layer { name: \"sc\" type: \"Scale\" bottom: \"a\" bottom: \"b\" top: \"y\" }"),
    );
    assert_contains(
        &err,
        &[
            "layer `sc` (Scale): bottom 1 (`b`) has shape 3x5",
            "bottom 1 (`b`) has shape 3x5 but bottom 0 (`a`) has shape 2x3x7x5; bottom 1 (`b`) must equal bottom 0 (`a`)'s axes 1..3",
        ],
    );
    let err = build_error(
        &(two_inputs(&[2, 3, 7, 5], &[7, 5, 1])
            + "layer { name: \"sc\" type: \"Scale\" bottom: \"a\" bottom: \"b\" top: \"y\" scale_param { axis: 2 } }"),
    );
    assert_contains(
        &err,
        &["bottom 1 (`b`) has shape 7x5x1 but bottom 0 (`a`) has shape 2x3x7x5"],
    );
}

#[test]
fn scale_errors() {
    let err = build_error(&scale_net("num_axes: 4"));
    assert_contains(
        &err,
        &["axis 1 with num_axes 4 reaches past the end of shape 2x3x7x5"],
    );
    let err = build_error(&scale_net("num_axes: -2"));
    assert_contains(&err, &["layer `sc` (Scale): num_axes -2 is invalid"]);
    let err = build_error(&scale_net("filler { type: \"gausian\" }"));
    assert_contains(
        &err,
        &[
            "unknown filler type \"gausian\" in `filler`",
            "did you mean `gaussian`?",
        ],
    );
    let err = build_error(&scale_net("bias_trem: true"));
    assert_contains(&err, &["did you mean `bias_term`?"]);
}

#[test]
fn bias_learned_or_from_second_bottom() {
    let text = net(
        "layer { name: \"b\" type: \"Bias\" bottom: \"data\" top: \"data\" \
         bias_param { axis: 2 num_axes: 2 filler { value: 0.5 } } }",
    );
    let p: BiasParams = params(&text, "b", "bias_param");
    assert_eq!((p.axis, p.num_axes, p.filler.value), (2, 2, 0.5));
    let d: BiasParams = params(&text, "in", "bias_param");
    assert_eq!((d.axis, d.num_axes, d.filler.value), (1, 1, 0.0));
    let g = graph(&text);
    assert_eq!(param_shapes(&g, "b"), vec![vec![7, 5]]);
    assert_eq!(flops(&g, "b"), (2 * 3 * 7 * 5) as u64);

    let g = graph(
        &(two_inputs(&[2, 3, 7, 5], &[])
            + "layer { name: \"b\" type: \"Bias\" bottom: \"a\" bottom: \"b\" top: \"y\" bias_param { axis: 3 } }"),
    );
    assert_eq!(shape(&g, "y"), vec![2, 3, 7, 5]);
    assert!(param_shapes(&g, "b").is_empty());

    let err = build_error(
        &(two_inputs(&[2, 3, 7, 5], &[4])
            + "layer { name: \"b\" type: \"Bias\" bottom: \"a\" bottom: \"b\" top: \"y\" }"),
    );
    assert_contains(
        &err,
        &["bottom 1 (`b`) has shape 4 but bottom 0 (`a`) has shape 2x3x7x5"],
    );
    let err = build_error(&net(
        "layer { name: \"b\" type: \"Bias\" bottom: \"data\" top: \"y\" bias_param { axis: 5 } }",
    ));
    assert_contains(&err, &["axis 5 is out of range for shape 2x3x7x5"]);
}

// ---------------------------------------------------------------- Registry and published configs

#[test]
fn standard_types_are_registered_with_their_blocks() {
    for (name, block) in [
        ("BatchNorm", Some("batch_norm_param")),
        ("Bias", Some("bias_param")),
        ("Concat", Some("concat_param")),
        ("Dropout", Some("dropout_param")),
        ("Flatten", Some("flatten_param")),
        ("Pooling", Some("pooling_param")),
        ("ReLU", Some("relu_param")),
        ("Reshape", Some("reshape_param")),
        ("Scale", Some("scale_param")),
        ("Sigmoid", Some("sigmoid_param")),
        ("Silence", None),
        ("Slice", Some("slice_param")),
        ("TanH", Some("tanh_param")),
    ] {
        let ty = netrun::layers::find(name).unwrap_or_else(|| panic!("{name} not registered"));
        assert_eq!(ty.params, block.as_slice(), "{name}");
    }
    let names: Vec<&str> = netrun::layers::REGISTRY.iter().map(|t| t.name).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "REGISTRY is kept in order");
}

#[test]
fn wrong_block_on_a_standard_layer_is_reported() {
    let err = build_error(&net(
        "layer { name: \"p\" type: \"Pooling\" bottom: \"data\" top: \"p\" pool_param { pool: MAX } }",
    ));
    assert_contains(&err, &["did you mean `pooling_param`?"]);
}

#[test]
fn siamese_deploy_net_shapes_and_parameters() {
    let path = shared("configs/siamese/mnist_siamese.prototxt");
    let net = read_net_file(&path).unwrap_or_else(|e| panic!("{e}"));
    let g =
        Graph::build(&net, &BuildOptions::for_phase(Phase::Test)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(shape(&g, "feat"), vec![10000, 2]);
    let feat = g.blobs.iter().position(|b| b.name == "feat").unwrap();
    assert_eq!(g.outputs, vec![feat]);

    // One tower, from the architecture: 1x28x28 -conv5-> 20x24x24 -pool2-> 20x12x12
    // -conv5-> 50x8x8 -pool2-> 50x4x4 -> 500 -> 10 -> 2; weights plus biases.
    let conv1 = 20 * 5 * 5 + 20;
    let conv2 = 50 * 20 * 5 * 5 + 50;
    let ip1 = 500 * (50 * 4 * 4) + 500;
    let ip2 = 10 * 500 + 10;
    let feat_ip = 2 * 10 + 2;
    assert_eq!(conv1 + conv2 + ip1 + ip2 + feat_ip, 431_102);
    assert_eq!(g.param_count(), 431_102);
    assert_eq!(shape(&g, "pool1"), vec![10000, 20, 12, 12]);
    assert_eq!(shape(&g, "pool2"), vec![10000, 50, 4, 4]);
    assert_eq!(
        flops(&g, "pool2"),
        (2 * 2 * count(&[10000, 50, 4, 4])) as u64
    );
    assert_eq!(flops(&g, "relu1"), count(&[10000, 500]) as u64);
}

#[test]
fn netrun_check_reports_the_siamese_deploy_net() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_netrun"))
        .arg("check")
        .arg(shared("configs/siamese/mnist_siamese.prototxt"))
        .output()
        .expect("runs netrun");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_contains(&stdout, &["Pooling", "ReLU", "10000x2", "431,102"]);
}
