//! `LossParameter` (`loss_param`) and the shape checks shared by the loss layers.
//!
//! Caffe's `LossLayer` requires bottom 0 and bottom 1 to agree on their first
//! axis; the loss top is a scalar (`[]`, one value) whose default `loss_weight` is 1.
//! Only SoftmaxWithLoss uses `loss_param`; the other loss layers accept the block
//! (Caffe allows it on every layer) but reject settings they would silently ignore.

use super::{count, fmt_shape, ShapeError};
use crate::error::Diagnostic;
use crate::netdef::LayerDef;
use serde::Deserialize;

/// `LossParameter.NormalizationMode`: what the summed loss is divided by.
/// FULL = 0 (outer·inner), VALID = 1 (non-ignored positions), BATCH_SIZE = 2 (outer), NONE = 3 (1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NormalizationMode {
    Full,
    Valid,
    BatchSize,
    None,
}

/// `loss_param { ignore_label normalization normalize }`. `normalization` and the
/// deprecated `normalize` are kept optional so [`LossParams::mode`] can apply
/// Caffe's precedence.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LossParams {
    /// Positions whose label equals this add no loss and get no gradient.
    pub ignore_label: Option<i32>,
    pub normalization: Option<NormalizationMode>,
    /// Deprecated: true → VALID, false → BATCH_SIZE, used only without `normalization`.
    pub normalize: Option<bool>,
}

impl LossParams {
    /// The effective mode: `normalization` if given, else the legacy `normalize`, else VALID.
    pub fn mode(&self) -> NormalizationMode {
        match (self.normalization, self.normalize) {
            (Some(m), _) => m,
            (None, Some(true)) => NormalizationMode::Valid,
            (None, Some(false)) => NormalizationMode::BatchSize,
            (None, None) => NormalizationMode::Valid,
        }
    }

    /// The divisor D = max(1, n) of a summed loss over outer × inner positions of
    /// which `valid` were counted.
    pub fn normalizer(&self, outer: usize, inner: usize, valid: usize) -> f64 {
        let n = match self.mode() {
            NormalizationMode::Full => outer * inner,
            NormalizationMode::Valid => valid,
            NormalizationMode::BatchSize => outer,
            NormalizationMode::None => 1,
        };
        n.max(1) as f64
    }

    /// For loss layers whose normaliser is fixed: reads `loss_param` (so typos are
    /// still reported) and rejects any setting, which Caffe would ignore silently.
    pub fn reject_settings(def: &LayerDef) -> Result<(), Diagnostic> {
        let p: LossParams = def.params("loss_param")?;
        let set: Vec<&str> = [
            ("ignore_label", p.ignore_label.is_some()),
            ("normalization", p.normalization.is_some()),
            ("normalize", p.normalize.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, on)| on.then_some(name))
        .collect();
        if set.is_empty() {
            return Ok(());
        }
        let span = def
            .block
            .get("loss_param")
            .map_or(def.name_span(), |f| f.value_span);
        Err(def
            .error(
                span,
                format!(
                    "{}: `loss_param.{}` has no effect on {} layers",
                    def.describe(),
                    set.join("`, `loss_param."),
                    def.type_name
                ),
            )
            .with_help("this loss has a fixed normaliser and no ignore label; remove the setting"))
    }
}

/// Caffe's `LossLayer` check: bottoms 0 and `i` have the same first axis.
pub fn check_same_num(bottom: &[Vec<usize>], i: usize) -> Result<(), ShapeError> {
    let (a, b) = (&bottom[0], &bottom[i]);
    if a.first() != b.first() {
        return Err(ShapeError::at_bottom(
            i,
            format!(
                "bottom {i} has shape {} but bottom 0 has shape {}: their first (batch) axes must agree",
                fmt_shape(b),
                fmt_shape(a)
            ),
        ));
    }
    Ok(())
}

/// Labels in bottom `i` must hold one value per position of bottom 0 outside `axis`,
/// i.e. `outer·inner = count(shape[..axis])·count(shape[axis+1..])` values.
pub fn check_label_count(bottom: &[Vec<usize>], axis: usize, i: usize) -> Result<(), ShapeError> {
    let (scores, label) = (&bottom[0], &bottom[i]);
    let want = count(&scores[..axis]) * count(&scores[axis + 1..]);
    if count(label) != want {
        return Err(ShapeError::at_bottom(
            i,
            format!(
                "label bottom {i} has shape {} ({} values) but bottom 0 has shape {}, \
                 which needs {want} labels (one per position outside axis {axis})",
                fmt_shape(label),
                count(label),
                fmt_shape(scores)
            ),
        ));
    }
    Ok(())
}

/// Resolves `axis` against bottom `i`'s shape, or says why it cannot.
pub fn axis_of(axis: i32, shape: &[usize], i: usize) -> Result<usize, ShapeError> {
    super::canonical_axis(axis, shape.len()).ok_or_else(|| {
        ShapeError::at_bottom(
            i,
            format!("axis {axis} is out of range for shape {}", fmt_shape(shape)),
        )
    })
}

/// Where a label sits, for messages: sample `sample`, position `position` of
/// the `positions` per sample (spatial labels).
#[derive(Debug, Clone, Copy)]
pub struct LabelAt {
    pub sample: usize,
    pub position: usize,
    pub positions: usize,
}

impl std::fmt::Display for LabelAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "sample {}", self.sample)?;
        if self.positions > 1 {
            write!(f, " (position {} of {})", self.position, self.positions)?;
        }
        Ok(())
    }
}

/// Reads a float label as Caffe does (`static_cast<int>`, truncation toward 0):
/// `None` for the ignore label, else the class, which must lie in `0..classes`.
/// An out-of-range or non-finite label is an error, never a wrong index.
pub fn class_of(
    value: f32,
    classes: usize,
    ignore: Option<i32>,
    at: LabelAt,
) -> Result<Option<usize>, String> {
    let truncated = value.trunc();
    if truncated.is_finite() && ignore.is_some_and(|i| truncated == i as f32) {
        return Ok(None);
    }
    if truncated.is_finite() && truncated >= 0.0 && (truncated as usize) < classes {
        return Ok(Some(truncated as usize));
    }
    let mut msg = format!(
        "{at} has label {value}, but there are {classes} classes (labels 0 to {})",
        classes.saturating_sub(1)
    );
    if let Some(i) = ignore {
        msg += &format!(" and ignore_label is {i}");
    }
    if truncated == classes as f32 {
        msg += "; labels count from 0: are they 1-based?";
    }
    Err(msg)
}
