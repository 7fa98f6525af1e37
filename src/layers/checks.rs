//! Locating and reporting bad values inside a layer's `*_param` block.

use crate::error::Diagnostic;
use crate::netdef::LayerDef;
use crate::proto::Value;
use crate::source::Span;

/// Span of `field`'s value inside the layer's `block`, else of the block, else of the layer's name.
pub fn param_span(def: &LayerDef, block: &str, field: &str) -> Span {
    let Some(b) = def.block.get(block) else {
        return def.name_span();
    };
    match &b.value {
        Value::Block(inner) => inner.get(field).map_or(b.value_span, |f| f.value_span),
        Value::Scalar(_) => b.value_span,
    }
}

/// An error about `block.field` of this layer, prefixed with the layer's description.
pub fn param_error(def: &LayerDef, block: &str, field: &str, message: &str) -> Diagnostic {
    def.error(
        param_span(def, block, field),
        format!("{}: {message}", def.describe()),
    )
}
