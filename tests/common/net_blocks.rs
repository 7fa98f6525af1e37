//! Layer blocks that the published-net tests write many times: LightCNN's V1
//! Max-Feature-Map, max pooling, and mxnet2caffe's BatchNorm + Scale, bias-free
//! convolutions and SE-ResNet units, and the conv + activation units of the L-Softmax,
//! FaceVerification and NormFace nets, and MobileNet-V2's inverted residuals. Each returns prototxt text.

/// A V1-syntax learned layer (CONVOLUTION or INNER_PRODUCT, xavier weights, 0.1 biases)
/// followed by LightCNN's Max-Feature-Map: its channels split in halves by SLICE and the
/// element-wise maximum of the halves taken by ELTWISE MAX. `conv` is e.g. "kernel_size: 3 pad: 1".
pub fn v1_mfm(name: &str, bottom: &str, kind: &str, out: u32, conv: &str) -> String {
    let param = if kind == "CONVOLUTION" {
        "convolution_param"
    } else {
        "inner_product_param"
    };
    format!(
        r#"
layers {{ name: "{name}" type: {kind} bottom: "{bottom}" top: "{name}"
  blobs_lr: 1 blobs_lr: 2 weight_decay: 1 weight_decay: 0
  {param} {{ num_output: {out} {conv}
    weight_filler {{ type: "xavier" }} bias_filler {{ type: "constant" value: 0.1 }} }} }}
layers {{ name: "slice_{name}" type: SLICE bottom: "{name}" top: "{name}_1" top: "{name}_2"
  slice_param {{ slice_dim: 1 }} }}
layers {{ name: "mfm_{name}" type: ELTWISE bottom: "{name}_1" bottom: "{name}_2" top: "mfm_{name}"
  eltwise_param {{ operation: MAX }} }}
"#
    )
}

/// A V1-syntax stride-2 2×2 max pooling.
pub fn v1_pool(name: &str, bottom: &str) -> String {
    format!(
        r#"
layers {{ name: "{name}" type: POOLING bottom: "{bottom}" top: "{name}"
  pooling_param {{ pool: MAX kernel_size: 2 stride: 2 }} }}
"#
    )
}

/// A stride-2 max pooling of `bottom` with a k×k window.
pub fn max_pool(name: &str, bottom: &str, k: u32) -> String {
    format!(
        r#"
layer {{ name: "{name}" type: "Pooling" bottom: "{bottom}" top: "{name}"
  pooling_param {{ pool: MAX kernel_size: {k} stride: 2 }} }}
"#
    )
}

/// A BatchNorm with frozen statistics followed by its learned Scale, as mxnet2caffe writes it.
pub fn bn_scale(name: &str, bottom: &str, top: &str) -> String {
    format!(
        r#"
layer {{ bottom: "{bottom}" top: "{top}" name: "{name}" type: "BatchNorm"
  batch_norm_param {{ use_global_stats: true moving_average_fraction: 0.9 eps: 2e-05 }} }}
layer {{ bottom: "{top}" top: "{top}" name: "{name}_scale" type: "Scale" scale_param {{ bias_term: true }} }}
"#
    )
}

pub fn conv(
    name: &str,
    bottom: &str,
    out: u32,
    k: u32,
    pad: u32,
    stride: u32,
    bias: bool,
) -> String {
    format!(
        r#"
layer {{ bottom: "{bottom}" top: "{name}" name: "{name}" type: "Convolution"
  convolution_param {{ num_output: {out} kernel_size: {k} pad: {pad} stride: {stride} bias_term: {bias} }} }}
"#
    )
}

/// A layer with no parameters block (PReLU, Sigmoid) from `bottom` to `top`.
pub fn plain(kind: &str, bottom: &str, top: &str) -> String {
    format!("layer {{ bottom: \"{bottom}\" top: \"{top}\" name: \"{top}\" type: \"{kind}\" }}\n")
}

/// One SE-ResNet unit: BN, conv, BN, PReLU, conv, BN; a squeeze-excite gate on that
/// branch (global AVE pool, 1×1 conv down by 4, PReLU, 1×1 conv back, Sigmoid); `Axpy`
/// computes gate·branch + shortcut (a strided 1×1 conv + BN when `shortcut` is given).
pub fn se_unit(name: &str, bottom: &str, out: u32, stride: u32, shortcut: Option<&str>) -> String {
    let p = |s: &str| format!("{name}_{s}");
    let mut s = bn_scale(&p("bn1"), bottom, &p("bn1"));
    s += &conv(&p("conv1"), &p("bn1"), out, 3, 1, 1, false);
    s += &bn_scale(&p("bn2"), &p("conv1"), &p("bn2"));
    s += &plain("PReLU", &p("bn2"), &p("relu1"));
    s += &conv(&p("conv2"), &p("relu1"), out, 3, 1, stride, false);
    s += &bn_scale(&p("bn3"), &p("conv2"), &p("bn3"));
    s += &format!(
        r#"
layer {{ bottom: "{name}_bn3" top: "{name}_se_pool1" name: "{name}_se_pool1" type: "Pooling"
  pooling_param {{ pool: AVE global_pooling: true }} }}
"#
    );
    s += &conv(&p("se_conv1"), &p("se_pool1"), out / 4, 1, 0, 1, true);
    s += &plain("PReLU", &p("se_conv1"), &p("se_relu1"));
    s += &conv(&p("se_conv2"), &p("se_relu1"), out, 1, 0, 1, true);
    s += &plain("Sigmoid", &p("se_conv2"), &p("se_sigmoid"));
    let sc = match shortcut {
        Some(from) => {
            s += &conv(&p("conv1sc"), from, out, 1, 0, stride, false);
            s += &bn_scale(&p("sc"), &p("conv1sc"), &p("sc"));
            p("sc")
        }
        None => bottom.to_string(),
    };
    s += &format!(
        r#"
layer {{ type: "Axpy" top: "{name}_plus" name: "{name}_plus"
  bottom: "{name}_se_sigmoid" bottom: "{name}_bn3" bottom: "{sc}" }}
"#
    );
    s
}

/// A 3×3, stride-1, padded convolution `conv<name>` with weight lr 1 and bias lr 2, and
/// the given filler blocks.
pub fn conv3x3(name: &str, bottom: &str, out: u32, weights: &str, bias: &str) -> String {
    format!(
        r#"
layer {{ name: "conv{name}" type: "Convolution" bottom: "{bottom}" top: "conv{name}"
  param {{ lr_mult: 1 decay_mult: 1 }} param {{ lr_mult: 2 decay_mult: 0 }}
  convolution_param {{ num_output: {out} kernel_size: 3 stride: 1 pad: 1
    weight_filler {weights} bias_filler {bias} }} }}
"#
    )
}

/// A convolution + fork `BN` + ReLU unit of the L-Softmax CIFAR net.
pub fn lsoftmax_unit(name: &str, bottom: &str, out: u32) -> String {
    conv3x3(
        name,
        bottom,
        out,
        r#"{ type: "msra" }"#,
        r#"{ type: "constant" }"#,
    ) + &format!(
        r#"layer {{ name: "bn{name}" type: "BN" bottom: "conv{name}" top: "bn{name}"
  param {{ lr_mult: 1 decay_mult: 0 }} param {{ lr_mult: 1 decay_mult: 0 }}
  bn_param {{ slope_filler {{ type: "constant" value: 1 }}
    bias_filler {{ type: "constant" value: 0 }} }} }}
layer {{ name: "relu{name}" type: "ReLU" bottom: "bn{name}" top: "bn{name}" }}
"#
    )
}

/// A convolution with named, shared-by-name parameters, msra-with-alpha weights and an
/// Insanity (randomised leaky ReLU) after it, as in the CASIA net.
pub fn insanity_unit(name: &str, bottom: &str, out: u32, alpha: f32, lb: f32, ub: f32) -> String {
    format!(
        r#"
layer {{ name: "conv{name}" type: "Convolution" bottom: "{bottom}" top: "conv{name}"
  param {{ lr_mult: 1 decay_mult: 0 name: "conv{name}_w" }}
  param {{ lr_mult: 1 decay_mult: 0 name: "conv{name}_b" }}
  convolution_param {{ num_output: {out} kernel_size: 3 stride: 1 pad: 1
    weight_filler {{ type: "msra" alpha: {alpha} }} bias_filler {{ type: "constant" }} }} }}
layer {{ name: "relu{name}" type: "Insanity" bottom: "conv{name}" top: "conv{name}"
  insanity_param {{ lb: {lb} ub: {ub} }} }}
"#
    )
}

/// A PReLU residual block (two bias-free gaussian convolutions added to the input).
pub fn prelu_residual(name: &str, bottom: &str, out: u32) -> String {
    let mut s = String::new();
    let mut prev = bottom.to_string();
    for i in 1..=2 {
        s += &format!(
            r#"
layer {{ name: "conv{name}_{i}" type: "Convolution" bottom: "{prev}" top: "conv{name}_{i}"
  param {{ lr_mult: 1 decay_mult: 1 }}
  convolution_param {{ num_output: {out} kernel_size: 3 stride: 1 pad: 1 bias_term: false
    weight_filler {{ type: "gaussian" std: 0.01 }} }} }}
layer {{ name: "relu{name}_{i}" type: "PReLU" bottom: "conv{name}_{i}" top: "conv{name}_{i}" }}
"#
        );
        prev = format!("conv{name}_{i}");
    }
    s += &format!(
        r#"
layer {{ name: "res{name}" type: "Eltwise" bottom: "{bottom}" bottom: "{prev}" top: "res{name}"
  eltwise_param {{ operation: 1 }} }}
"#
    );
    s
}

/// A convolution and its PReLU, as LeNet++ in NormFace writes them.
pub fn lenet_unit(name: &str, bottom: &str, out: u32) -> String {
    conv3x3(
        name,
        bottom,
        out,
        r#"{ type: "gaussian" value: 0.01 }"#,
        r#"{ type: "constant" value: 0 }"#,
    ) + &format!(
        r#"layer {{ name: "prelu{name}" type: "PReLU" bottom: "conv{name}" top: "conv{name}"
  param {{ lr_mult: 1 decay_mult: 0 }} }}
"#
    )
}

/// One MobileNet-V2 stage: a conv + BatchNorm + Scale (+ ReLU) unit per step, named
/// the way the arcface-caffe landmark net names them.
pub fn mbv2_conv(
    name: &str,
    bottom: &str,
    kind: &str,
    out: u32,
    k: u32,
    stride: u32,
    relu: bool,
) -> String {
    let pad = k / 2;
    let mut s = format!(
        r#"
layer {{ name: "{name}" type: "{kind}" bottom: "{bottom}" top: "{name}"
  param {{ lr_mult: 1 decay_mult: 1 }}
  convolution_param {{ num_output: {out} bias_term: false pad: {pad} kernel_size: {k}
    engine: CAFFE stride: {stride} weight_filler {{ type: "msra" }} }} }}
layer {{ name: "{name}/bn" type: "BatchNorm" bottom: "{name}" top: "{name}"
  param {{ lr_mult: 0 decay_mult: 0 }} param {{ lr_mult: 0 decay_mult: 0 }}
  param {{ lr_mult: 0 decay_mult: 0 }} }}
layer {{ name: "{name}/scale" type: "Scale" bottom: "{name}" top: "{name}"
  scale_param {{ filler {{ value: 1 }} bias_term: true bias_filler {{ value: 0 }} }} }}
"#
    );
    if relu {
        s += &format!(
            "layer {{ name: \"{name}/relu\" type: \"ReLU\" bottom: \"{name}\" top: \"{name}\" }}\n"
        );
    }
    s
}

/// An inverted-residual unit: expand ×6 by 1×1, depthwise 3×3, project by 1×1.
pub fn mbv2_unit(name: &str, bottom: &str, cin: u32, cout: u32, stride: u32) -> String {
    let mut s = mbv2_conv(
        &format!("{name}/in/pw"),
        bottom,
        "Convolution",
        6 * cin,
        1,
        1,
        true,
    );
    s += &mbv2_conv(
        &format!("{name}/dw"),
        &format!("{name}/in/pw"),
        "DepthwiseConvolution",
        6 * cin,
        3,
        stride,
        true,
    );
    s += &mbv2_conv(
        &format!("{name}/out/pw"),
        &format!("{name}/dw"),
        "Convolution",
        cout,
        1,
        1,
        false,
    );
    s
}
