//! Sizes that cannot exist: shapes with a zero dimension or more elements
//! than memory can address, and nets that do not fit the machine's memory.
//!
//! Every shape a shape rule returns passes [`shape_problem`] before the graph
//! records it, so later element counts (`count`, blob byte sizes, FLOPs) are
//! of shapes known to be addressable; [`check_memory`] refuses a net whose
//! blobs need more memory than the machine has, before anything is allocated.

use crate::error::{Error, Result};
use crate::proto::{Block, Scalar, Value};
use crate::shape::fmt_shape;
use crate::source::Span;

/// Most elements one blob may have: its data and diff (f32 each) and a few
/// more copies must still have a byte size that a `usize` holds.
pub const MAX_ELEMENTS: usize = usize::MAX / 64;

/// The element count of `shape`, or None when it overflows.
pub fn checked_count(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

/// Why a blob of `shape` cannot exist, or None when it can.
pub fn shape_problem(shape: &[usize]) -> Option<String> {
    if shape.contains(&0) {
        return Some(format!(
            "shape {} has a zero dimension: a blob must hold at least one value",
            fmt_shape(shape)
        ));
    }
    match checked_count(shape) {
        None => Some(format!(
            "shape {} has more than 2^64 elements",
            fmt_shape(shape)
        )),
        Some(n) if n > MAX_ELEMENTS => Some(format!(
            "shape {} has {n} elements, more than any memory holds",
            fmt_shape(shape)
        )),
        Some(_) => None,
    }
}

/// Size fields that make a blob empty when zero (Caffe's names).
const SIZE_FIELDS: &[&str] = &[
    "num_output",
    "dim",
    "num",
    "channels",
    "height",
    "width",
    "batch_size",
    "kernel_size",
    "kernel_h",
    "kernel_w",
    "stride",
    "stride_h",
    "stride_w",
    "new_height",
    "new_width",
    "crop_size",
    "slice_point",
    "group",
];

/// The first size field written as `0` in a layer block (nested blocks
/// included): where a zero dimension most likely comes from.
pub fn zero_size_field(block: &Block) -> Option<(Span, String)> {
    for f in &block.fields {
        match &f.value {
            Value::Scalar(Scalar::Number(n))
                if SIZE_FIELDS.contains(&f.name.as_str())
                    && n.parse::<f64>().is_ok_and(|v| v == 0.0) =>
            {
                return Some((f.value_span, f.name.clone()));
            }
            Value::Block(b) => {
                if let Some(found) = zero_size_field(b) {
                    return Some(found);
                }
            }
            _ => {}
        }
    }
    None
}

/// Physical memory plus swap, in bytes (None where it cannot be read).
pub fn machine_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = info.lines().find(|l| l.starts_with(name))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        kib.checked_mul(1024)
    };
    Some(field("MemTotal:")?.saturating_add(field("SwapTotal:").unwrap_or(0)))
}

/// `12.50 GiB`.
pub fn gib(bytes: u128) -> String {
    format!("{:.2} GiB", bytes as f64 / (1u64 << 30) as f64)
}

/// One allocation a net will make: what it is and its shape.
pub struct Allocation {
    pub what: String,
    pub shape: Vec<usize>,
}

/// Refuses allocations (data and diff of each, f32) whose total passes the
/// machine's memory, naming the largest one; `extra_copies` counts further
/// same-sized buffers per learnable blob (solver history) — the caller folds
/// them into `allocations`.
pub fn check_memory(allocations: &[Allocation]) -> Result<()> {
    let bytes = |a: &Allocation| -> u128 {
        checked_count(&a.shape).map_or(u128::MAX / 4, |n| n as u128) * 8
    };
    let total: u128 = allocations.iter().map(bytes).fold(0, u128::saturating_add);
    let Some(limit) = machine_memory() else {
        return Ok(());
    };
    if total <= limit as u128 {
        return Ok(());
    }
    let largest = allocations
        .iter()
        .max_by_key(|a| bytes(a))
        .map(|a| {
            format!(
                "; the largest is {} ({}, {} with its diff)",
                a.what,
                fmt_shape(&a.shape),
                gib(bytes(a))
            )
        })
        .unwrap_or_default();
    Err(Error::Other(format!(
        "the net's blobs need {} but this machine has {} of memory and swap{largest}: \
         lower the batch size or the layer sizes",
        gib(total),
        gib(limit as u128)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_that_cannot_exist_are_named() {
        assert!(shape_problem(&[2, 3]).is_none());
        assert!(shape_problem(&[]).is_none());
        assert!(shape_problem(&[2, 0, 3])
            .unwrap()
            .contains("zero dimension"));
        let huge = [1usize << 32, 1 << 32, 16];
        assert!(shape_problem(&huge).unwrap().contains("2^64"));
        assert!(shape_problem(&[1 << 62])
            .unwrap()
            .contains("more than any memory"));
        assert_eq!(checked_count(&huge), None);
    }

    #[test]
    fn a_net_larger_than_memory_is_refused_naming_its_largest_blob() {
        let a = vec![
            Allocation {
                what: "blob `small`".into(),
                shape: vec![10],
            },
            Allocation {
                what: "blob `ip` of layer `ip`".into(),
                shape: vec![1 << 20, 1 << 20, 64],
            },
        ];
        if machine_memory().is_some() {
            let e = check_memory(&a).unwrap_err().to_string();
            assert!(e.contains("blob `ip` of layer `ip`"), "{e}");
            assert!(e.contains("GiB"), "{e}");
        }
        assert!(check_memory(&a[..1]).is_ok());
    }
}
