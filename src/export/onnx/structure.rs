//! Concat, Slice, Flatten and Reshape: shapes are known, so these are direct.

use super::builder::Attr;
use super::Emit;
use crate::layers::concat::ConcatLayer;
use crate::layers::slice::SliceLayer;
use crate::shape::canonical_axis;

pub fn concat(e: &mut Emit) -> Result<(), String> {
    let axis = e.get::<ConcatLayer>()?.axis;
    let axis = canonical_axis(axis, e.tops[0].len()).ok_or("axis out of range")?;
    let xs = e.inputs.clone();
    let refs: Vec<&str> = xs.iter().map(String::as_str).collect();
    e.out(0, "Concat", &refs, vec![("axis", Attr::Int(axis as i64))]);
    Ok(())
}

/// Split along the axis into the tops' extents (equal pieces or at the slice points).
pub fn slice(e: &mut Emit) -> Result<(), String> {
    let axis = e.get::<SliceLayer>()?.axis;
    let axis = canonical_axis(axis, e.bottoms[0].len()).ok_or("axis out of range")?;
    let sizes: Vec<i64> = e.tops.iter().map(|t| t[axis] as i64).collect();
    let split = e.ints("split", &sizes);
    let x = e.inputs[0].clone();
    let outs = e.outputs.clone();
    let outs: Vec<&str> = outs.iter().map(String::as_str).collect();
    let name = e.name.to_string();
    e.b.node(
        "Split",
        &name,
        &[&x, &split],
        &outs,
        vec![("axis", Attr::Int(axis as i64))],
    );
    Ok(())
}

/// Flatten and Reshape: a Reshape to the top's shape, which the graph has inferred.
pub fn reshape(e: &mut Emit) -> Result<(), String> {
    let top = e.tops[0].clone();
    let shape = e.batch_shape("shape", &top);
    let x = e.inputs[0].clone();
    e.out(0, "Reshape", &[&x, &shape], vec![]);
    Ok(())
}
