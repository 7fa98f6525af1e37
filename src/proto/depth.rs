//! A bound on block nesting, checked before any recursive pass.
//!
//! The grammar, the tree builder, the typed reader and even dropping the
//! tree recurse once per nested block, so a file of thousands of nested `{`
//! would overflow the stack. Real nets and solvers nest a handful of levels
//! (`layer { convolution_param { weight_filler { ... } } }`), so a file
//! deeper than [`MAX_DEPTH`] is refused with the position of the block that
//! goes too deep, before it is parsed.

use crate::error::{Diagnostic, Error, Result};
use crate::source::{SourceFile, Span};
use std::sync::Arc;

/// Deepest block nesting a file may have.
pub const MAX_DEPTH: usize = 64;

/// Refuses `source` when its blocks (`{ }` or `< >`, outside strings and
/// comments) nest deeper than [`MAX_DEPTH`].
pub fn check(source: &Arc<SourceFile>) -> Result<()> {
    match too_deep(&source.text) {
        None => Ok(()),
        Some(at) => Err(Error::from(
            Diagnostic::new(format!(
                "blocks nested more than {MAX_DEPTH} levels deep"
            ))
            .at(source, Span::new(at, at + 1))
            .with_help("a net or solver file nests a few levels; is a `}` missing, or was the file generated wrongly?"),
        )),
    }
}

/// The byte offset of the first opening delimiter past [`MAX_DEPTH`].
fn too_deep(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, b) in super::syntax::delimiters(text) {
        if b == b'{' || b == b'<' {
            depth += 1;
            if depth > MAX_DEPTH {
                return Some(i);
            }
        } else {
            depth = depth.saturating_sub(1);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::{too_deep, MAX_DEPTH};

    #[test]
    fn depth_counts_blocks_outside_strings_and_comments() {
        let ok = "a {".repeat(MAX_DEPTH) + &"}".repeat(MAX_DEPTH);
        assert_eq!(too_deep(&ok), None);
        let deep = "a {".repeat(MAX_DEPTH + 1);
        assert_eq!(too_deep(&deep), Some(3 * MAX_DEPTH + 2));
        let quoted = format!("s: \"{}\" # {}\n", "{".repeat(500), "<".repeat(500));
        assert_eq!(too_deep(&quoted), None);
        let angles = "a <".repeat(MAX_DEPTH + 1);
        assert!(too_deep(&angles).is_some());
    }
}
