//! Convolution, Pooling and InnerProduct as ONNX Conv, MaxPool/AveragePool and Gemm.

use super::builder::Attr;
use super::Emit;
use crate::layers::convolution::ConvolutionLayer;
use crate::layers::inner_product::InnerProductLayer;
use crate::layers::pooling::{PoolMethod, PoolingLayer};
use crate::shape::{canonical_axis, count};

fn ints(v: &[usize]) -> Attr {
    Attr::Ints(v.iter().map(|&x| x as i64).collect())
}

/// Conv with Caffe's weights [O, C/g, kh, kw], symmetric pads, groups and dilation;
/// every bottom of a multi-bottom Convolution gets its own node on the same weights.
pub fn convolution(e: &mut Emit) -> Result<(), String> {
    let conv = e.get::<ConvolutionLayer>()?;
    let g = conv.geometry;
    let (group, bias) = (conv.group, conv.params.bias_term);
    let w_shape = e.params[0].shape().to_vec();
    let w = e.param(0, &w_shape);
    let b = bias.then(|| e.param(1, &[e.params[1].shape().iter().product()]));
    for i in 0..e.inputs.len() {
        let x = e.inputs[i].clone();
        let mut inputs = vec![x.as_str(), w.as_str()];
        if let Some(b) = &b {
            inputs.push(b);
        }
        let attrs = vec![
            ("kernel_shape", ints(&g.kernel)),
            ("strides", ints(&g.stride)),
            ("pads", ints(&[g.pad[0], g.pad[1], g.pad[0], g.pad[1]])),
            ("dilations", ints(&g.dilation)),
            ("group", Attr::Int(group as i64)),
        ];
        e.out(i, "Conv", &inputs, attrs);
    }
    Ok(())
}

/// Caffe's pooling windows, exactly. Output o along an axis of length L covers
/// [o·s − p, o·s − p + k) and there are `out` outputs (the graph's top shape, from
/// Caffe's rounding and its rule that the last window starts inside L + p). ONNX,
/// with ceil_mode 0, explicit pads (p, e) and kernel k, gives ⌊(L + p + e − k)/s⌋ + 1
/// outputs on the same windows; e = (out − 1)·s + k − L − p makes that exactly `out`.
///
/// MAX ignores padding in both. AVE in Caffe sums the window's cells inside the image
/// and divides by its extent clipped to [−p, L + p): the zero padding counts, the
/// overhang past it does not. So the input is first zero-padded by p on both sides
/// (an explicit Pad), and AveragePool runs on that with count_include_pad 0, whose
/// divisor is the window clipped to the padded input: the same count.
pub fn pooling(e: &mut Emit) -> Result<(), String> {
    let pool = e.get::<PoolingLayer>()?;
    let (method, global) = (pool.params.pool, pool.params.global_pooling);
    let (k, s, p) = (pool.kernel, pool.stride, pool.pad);
    if e.tops.len() > 1 {
        return Err("the argmax top of MAX pooling has no ONNX equivalent here".into());
    }
    let x = e.inputs[0].clone();
    let (input, out) = (
        [e.bottoms[0][2], e.bottoms[0][3]],
        [e.tops[0][2], e.tops[0][3]],
    );
    if global {
        let op = match method {
            PoolMethod::Max => "GlobalMaxPool",
            PoolMethod::Ave => "GlobalAveragePool",
            PoolMethod::Stochastic => return Err(super::STOCHASTIC.into()),
        };
        e.out(0, op, &[&x], vec![]);
        return Ok(());
    }
    let padded_len = [input[0] + 2 * p[0], input[1] + 2 * p[1]];
    // (operator, its input, that input's length per axis, pads before).
    let (op, source, len, before) = match method {
        PoolMethod::Max => ("MaxPool", x, input, p),
        PoolMethod::Ave if p == [0, 0] => ("AveragePool", x, input, [0, 0]),
        PoolMethod::Ave => {
            let pads = [0, 0, p[0], p[1], 0, 0, p[0], p[1]].map(|v| v as i64);
            let pads = e.ints("pads", &pads);
            let padded = e.tmp("Pad", "padded", &[&x, &pads], vec![]);
            ("AveragePool", padded, padded_len, [0, 0])
        }
        PoolMethod::Stochastic => return Err(super::STOCHASTIC.into()),
    };
    let mut after = [0usize; 2];
    let mut produced = [0usize; 2];
    for a in 0..2 {
        let need = ((out[a] - 1) * s[a] + k[a]) as i64 - (len[a] + before[a]) as i64;
        after[a] = need.max(0) as usize;
        if after[a] >= k[a] {
            return Err(format!(
                "its last window starts past the input (kernel {}, stride {}, pad {})",
                k[a], s[a], p[a]
            ));
        }
        produced[a] = (len[a] + before[a] + after[a] - k[a]) / s[a] + 1;
    }
    let mut attrs = vec![
        ("kernel_shape", ints(&k)),
        ("strides", ints(&s)),
        ("pads", ints(&[before[0], before[1], after[0], after[1]])),
    ];
    if op == "AveragePool" {
        attrs.push(("count_include_pad", Attr::Int(0)));
    }
    // e ≥ 0 whenever Caffe's rounding gives `out` (its windows never stop short of
    // the input by a whole stride), so the counts agree; checked rather than assumed.
    if produced != out {
        return Err(format!(
            "internal: ONNX would pool {}x{} windows, Caffe {}x{}",
            produced[0], produced[1], out[0], out[1]
        ));
    }
    e.out(0, op, &[&source], attrs);
    Ok(())
}

/// Gemm on the bottom flattened at `axis` to M×K; W is N×K (K×N with `transpose`).
pub fn inner_product(e: &mut Emit) -> Result<(), String> {
    let ip = e.get::<InnerProductLayer>()?;
    let (transpose, bias, n) = (ip.params.transpose, ip.params.bias_term, ip.num_output);
    let rank = e.bottoms[0].len();
    let axis = canonical_axis(ip.params.axis, rank).ok_or("axis out of range")?;
    let k = count(&e.bottoms[0][axis..]);
    let x = e.inputs[0].clone();
    let flat = if rank == 2 && axis == 1 {
        x
    } else {
        e.tmp(
            "Flatten",
            "flat",
            &[&x],
            vec![("axis", Attr::Int(axis as i64))],
        )
    };
    let w_dims = if transpose { [k, n] } else { [n, k] };
    let w = e.param(0, &w_dims);
    let mut inputs = vec![flat.as_str(), w.as_str()];
    let b = bias.then(|| e.param(1, &[n]));
    if let Some(b) = &b {
        inputs.push(b);
    }
    let attrs = vec![("transB", Attr::Int(i64::from(!transpose)))];
    if e.tops[0].len() == 2 {
        e.out(0, "Gemm", &inputs, attrs);
    } else {
        let y = e.tmp("Gemm", "gemm", &inputs, attrs);
        let top = e.tops[0].clone();
        let shape = e.batch_shape("shape", &top);
        e.out(0, "Reshape", &[&y, &shape], vec![]);
    }
    Ok(())
}
