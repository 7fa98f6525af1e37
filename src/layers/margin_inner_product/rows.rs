//! Helpers shared by the cosine classifiers (MarginInnerProduct and
//! CombinedMarginInnerProduct): labels, the logits shape, and row normalisation
//! with its gradient.

use crate::backend::cpu::rows::normalize_row;
use crate::layers::loss::{axis_of, check_same_num};
use crate::layers::rows::{rows_per_task, SERIAL_MAX};
use crate::layers::{count, fmt_shape, Shape, ShapeError};
use rayon::prelude::*;

/// Class indices from float labels, truncated toward zero as Caffe's `static_cast<int>`;
/// a label outside [0, n) (or not finite) is an error naming the sample.
pub fn class_labels(labels: &[f32], n: usize) -> Result<Vec<usize>, String> {
    labels
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let y = v.trunc();
            if v.is_finite() && y >= 0.0 && (y as usize) < n {
                Ok(y as usize)
            } else {
                Err(format!(
                    "sample {i} has label {v}, outside the {n} classes [0, {n})"
                ))
            }
        })
        .collect()
}

/// Shape rule shared with CombinedMarginInnerProduct: x (M×K from `axis`) and one
/// label per sample give logits `shape[..axis] + [N]`. Returns the logits shape and K.
pub fn logits_shape(
    bottom: &[Shape],
    axis: i32,
    num_output: usize,
    k_before: usize,
) -> Result<(Shape, usize), ShapeError> {
    let x = &bottom[0];
    let axis = axis_of(axis, x, 0)?;
    let (m, k) = (count(&x[..axis]), count(&x[axis..]));
    let label = &bottom[1];
    if count(label) != m {
        return Err(ShapeError::at_bottom(
            1,
            format!(
                "label bottom 1 has shape {} ({} values) but bottom 0 has shape {}, \
                 which needs {m} labels (one per sample before axis {axis})",
                fmt_shape(label),
                count(label),
                fmt_shape(x)
            ),
        ));
    }
    check_same_num(bottom, 1)?;
    if k_before != 0 && k_before != k {
        return Err(ShapeError::at_bottom(
            0,
            format!("input size changed from {k_before} to {k}"),
        ));
    }
    let mut top = x[..axis].to_vec();
    top.push(num_output);
    Ok((top, k))
}

/// Rows of `data` (length k) scaled to unit length into `unit`; returns the norms
/// (floored at 1e-12).
pub fn unit_rows(data: &[f32], k: usize, unit: &mut Vec<f32>) -> Vec<f64> {
    unit.resize(data.len(), 0.0);
    data.chunks(k)
        .zip(unit.chunks_mut(k))
        .map(|(row, out)| {
            let norm = row
                .iter()
                .map(|&v| v as f64 * v as f64)
                .sum::<f64>()
                .sqrt()
                .max(1e-12);
            out.iter_mut()
                .zip(row)
                .for_each(|(o, &v)| *o = (v as f64 / norm) as f32);
            norm
        })
        .collect()
}

/// Scales every row of `data` (length k) to unit length in place, with no epsilon
/// (a zero row becomes NaN, as in sphereface); returns the norms ‖w_r‖ before.
/// Rows run in parallel (on the calling thread for a small matrix).
pub fn normalize_rows(data: &mut [f32], k: usize) -> Vec<f64> {
    if k == 0 {
        return Vec::new();
    }
    if data.len() <= SERIAL_MAX {
        return data.chunks_mut(k).map(normalize_row).collect();
    }
    data.par_chunks_mut(k)
        .with_min_len(rows_per_task(k))
        .map(normalize_row)
        .collect()
}

/// Per row r of length k: out_r (+)= (g_r − along_r·unit_r)/norm_r, the gradient through
/// a row normalisation given the gradient g w.r.t. the unit row.
pub fn project_rows(
    out: &mut [f32],
    g: &[f32],
    unit: &[f32],
    along: &[f64],
    norm: &[f64],
    k: usize,
    accumulate: bool,
) {
    for (r, o) in out.chunks_mut(k).enumerate() {
        let (gr, ur) = (&g[r * k..(r + 1) * k], &unit[r * k..(r + 1) * k]);
        for ((v, &a), &u) in o.iter_mut().zip(gr).zip(ur) {
            let d = (a as f64 - along[r] * u as f64) / norm[r];
            *v = if accumulate {
                (*v as f64 + d) as f32
            } else {
                d as f32
            };
        }
    }
}
