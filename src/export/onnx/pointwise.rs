//! Element-wise and per-channel layers: activations, Eltwise, BatchNorm, Scale, Bias,
//! Normalize, Softmax, and a Dropout whose TEST pass scales.

use super::builder::Attr;
use super::Emit;
use crate::layers::batch_norm::BatchNormLayer;
use crate::layers::bias::BiasLayer;
use crate::layers::dropout::DropoutLayer;
use crate::layers::eltwise::{EltwiseLayer, EltwiseOp};
use crate::layers::normalize::NormalizeLayer;
use crate::layers::prelu::PReLULayer;
use crate::layers::relu::ReLULayer;
use crate::layers::scale::ScaleLayer;
use crate::layers::softmax::SoftmaxLayer;
use crate::shape::canonical_axis;

/// Dropout with `scale_train: false`: TEST multiplies by 1 − ratio.
pub fn dropout_scale(e: &mut Emit) -> Result<(), String> {
    let s = e.get::<DropoutLayer>()?.test_scale();
    let c = e.constant("scale", &[], &[s]);
    let x = e.inputs[0].clone();
    e.out(0, "Mul", &[&x, &c], vec![]);
    Ok(())
}

/// Relu, or LeakyRelu(α = negative_slope).
pub fn relu(e: &mut Emit) -> Result<(), String> {
    let slope = e.get::<ReLULayer>()?.params.negative_slope;
    let x = e.inputs[0].clone();
    if slope == 0.0 {
        e.out(0, "Relu", &[&x], vec![]);
    } else {
        e.out(0, "LeakyRelu", &[&x], vec![("alpha", Attr::Float(slope))]);
    }
    Ok(())
}

/// PRelu with the slopes shaped [C, 1, …] to broadcast over axis 1 ([1] when shared).
pub fn prelu(e: &mut Emit) -> Result<(), String> {
    let shared = e.get::<PReLULayer>()?.params.channel_shared;
    let rank = e.bottoms[0].len();
    let dims = if shared {
        vec![1]
    } else {
        let mut d = vec![1; rank.saturating_sub(1).max(1)];
        d[0] = e.params[0].count();
        d
    };
    let slope = e.param(0, &dims);
    let x = e.inputs[0].clone();
    e.out(0, "PRelu", &[&x, &slope], vec![]);
    Ok(())
}

pub fn sigmoid(e: &mut Emit) -> Result<(), String> {
    let x = e.inputs[0].clone();
    e.out(0, "Sigmoid", &[&x], vec![]);
    Ok(())
}

pub fn tanh(e: &mut Emit) -> Result<(), String> {
    let x = e.inputs[0].clone();
    e.out(0, "Tanh", &[&x], vec![]);
    Ok(())
}

/// SUM: Σ c_k·x_k (a Mul by each coefficient other than 1, then Sum); PROD: a chain
/// of Mul; MAX: Max.
pub fn eltwise(e: &mut Emit) -> Result<(), String> {
    let p = e.get::<EltwiseLayer>()?.params.clone();
    let xs = e.inputs.clone();
    match p.operation {
        EltwiseOp::Sum => {
            let mut terms = Vec::new();
            for (k, x) in xs.iter().enumerate() {
                let c = p.coeff.get(k).copied().unwrap_or(1.0);
                if c == 1.0 {
                    terms.push(x.clone());
                } else {
                    let cn = e.constant(&format!("coeff{k}"), &[], &[c]);
                    terms.push(e.tmp("Mul", &format!("term{k}"), &[x, &cn], vec![]));
                }
            }
            let refs: Vec<&str> = terms.iter().map(String::as_str).collect();
            e.out(0, "Sum", &refs, vec![]);
        }
        EltwiseOp::Prod => {
            let mut acc = xs[0].clone();
            for (k, x) in xs.iter().enumerate().skip(1) {
                if k + 1 == xs.len() {
                    e.out(0, "Mul", &[&acc, x], vec![]);
                } else {
                    acc = e.tmp("Mul", &format!("prod{k}"), &[&acc, x], vec![]);
                }
            }
            if xs.len() == 1 {
                e.out(0, "Identity", &[&acc], vec![]);
            }
        }
        EltwiseOp::Max => {
            let refs: Vec<&str> = xs.iter().map(String::as_str).collect();
            e.out(0, "Max", &refs, vec![]);
        }
    }
    Ok(())
}

/// BatchNormalization with Caffe's stored statistics: μ = m/s, σ² = v/s, where s is
/// the third blob (the running sums' scale factor; 0 reads as μ = σ² = 0), scale 1
/// and bias 0 (Caffe puts the affine part in a following Scale layer).
pub fn batch_norm(e: &mut Emit) -> Result<(), String> {
    let bn = e.get::<BatchNormLayer>()?;
    if !bn.use_global_stats {
        return Err(super::BATCH_STATS.into());
    }
    if e.bottoms[0].len() < 2 {
        return Err("ONNX BatchNormalization needs an N×C×… bottom".into());
    }
    let (c, eps) = (bn.channels, bn.params.eps);
    let s = e.params[2].data()[0];
    let k = if s == 0.0 { 0.0 } else { 1.0 / s };
    let mean: Vec<f32> = e.params[0].data().iter().map(|&v| v * k).collect();
    let var: Vec<f32> = e.params[1].data().iter().map(|&v| v * k).collect();
    let mean = e.constant("mean", &[c], &mean);
    let var = e.constant("var", &[c], &var);
    let gamma = e.constant("scale", &[c], &vec![1.0; c]);
    let beta = e.constant("bias", &[c], &vec![0.0; c]);
    let x = e.inputs[0].clone();
    e.out(
        0,
        "BatchNormalization",
        &[&x, &gamma, &beta, &mean, &var],
        vec![("epsilon", Attr::Float(eps))],
    );
    Ok(())
}

/// The operand's shape for numpy broadcasting against the bottom: its own axes
/// (from `axis` on), then 1 for each remaining axis of the bottom.
fn broadcast_shape(bottom: &[usize], operand: &[usize], axis: i32) -> Result<Vec<usize>, String> {
    let axis = canonical_axis(axis, bottom.len()).ok_or("axis out of range")?;
    let mut dims = operand.to_vec();
    dims.resize(bottom.len() - axis, 1);
    if dims.is_empty() {
        dims.push(1);
    }
    Ok(dims)
}

/// The operand of Scale (γ) or Bias (β) shaped `dims`: learnable blob 0, or bottom 1
/// reshaped.
fn operand(e: &mut Emit, learned: bool, dims: &[usize], what: &str) -> String {
    if learned {
        return e.param(0, dims);
    }
    // From axis 0 (all of the bottom's axes), the operand has the batch axis too.
    let shape = if dims.len() == e.bottoms[0].len() {
        e.batch_shape(&format!("{what}_shape"), dims)
    } else {
        let shape: Vec<i64> = dims.iter().map(|&d| d as i64).collect();
        e.ints(&format!("{what}_shape"), &shape)
    };
    let bottom = e.inputs[1].clone();
    e.tmp("Reshape", what, &[&bottom, &shape], vec![])
}

/// γ ⊙ x (+ β): Mul (and Add) with γ and β shaped to broadcast from `axis`.
pub fn scale(e: &mut Emit) -> Result<(), String> {
    let layer = e.get::<ScaleLayer>()?;
    let (axis, learned, bias) = (layer.params.axis, layer.learned, layer.params.bias_term);
    let dims = broadcast_shape(&e.bottoms[0], &layer.shape, axis)?;
    let x = e.inputs[0].clone();
    let gamma = operand(e, learned, &dims, "gamma");
    if bias {
        let y = e.tmp("Mul", "scaled", &[&x, &gamma], vec![]);
        let beta = e.param(usize::from(learned), &dims);
        e.out(0, "Add", &[&y, &beta], vec![]);
    } else {
        e.out(0, "Mul", &[&x, &gamma], vec![]);
    }
    Ok(())
}

/// x + β: Add with β (learned, or bottom 1) shaped to broadcast from `axis`.
pub fn bias(e: &mut Emit) -> Result<(), String> {
    let layer = e.get::<BiasLayer>()?;
    let (axis, learned) = (layer.params.axis, layer.learned);
    let dims = broadcast_shape(&e.bottoms[0], &layer.shape, axis)?;
    let x = e.inputs[0].clone();
    let beta = operand(e, learned, &dims, "beta");
    e.out(0, "Add", &[&x, &beta], vec![]);
    Ok(())
}

/// x / √(Σ x² + eps) over all axes after the first: ReduceSumSquare, Add, Sqrt, Div.
pub fn normalize(e: &mut Emit) -> Result<(), String> {
    let eps = e.get::<NormalizeLayer>()?.params.eps;
    let rank = e.bottoms[0].len();
    if rank < 2 {
        return Err("Normalize of a 1-axis bottom has no axes to reduce".into());
    }
    let x = e.inputs[0].clone();
    let axes: Vec<i64> = (1..rank as i64).collect();
    let mut sq = e.tmp(
        "ReduceSumSquare",
        "sumsq",
        &[&x],
        vec![("axes", Attr::Ints(axes)), ("keepdims", Attr::Int(1))],
    );
    if eps != 0.0 {
        let c = e.constant("eps", &[], &[eps]);
        sq = e.tmp("Add", "sumsq_eps", &[&sq, &c], vec![]);
    }
    let norm = e.tmp("Sqrt", "norm", &[&sq], vec![]);
    e.out(0, "Div", &[&x, &norm], vec![]);
    Ok(())
}

/// Softmax along the layer's axis (opset 13's Softmax is over that one axis).
pub fn softmax(e: &mut Emit) -> Result<(), String> {
    let axis = e.get::<SoftmaxLayer>()?.axis;
    let x = e.inputs[0].clone();
    e.out(0, "Softmax", &[&x], vec![("axis", Attr::Int(axis as i64))]);
    Ok(())
}
