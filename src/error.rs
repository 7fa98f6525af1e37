//! Errors and compiler-style diagnostics.
//!
//! A [`Diagnostic`] points into a [`SourceFile`] and renders as
//!
//! ```text
//! error: unknown field `num_ouput` in `convolution_param`
//!   --> net.prototxt:12:5
//!    |
//! 12 |     num_ouput: 64
//!    |     ^^^^^^^^^
//!    = help: did you mean `num_output`?
//! ```
//!
//! Checking a file collects every independent problem into one [`Error::Config`].

use crate::source::{SourceFile, Span};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// One problem, located in a source file when it has a location.
#[derive(Debug, Clone)]
pub struct Diagnostic {
    pub message: String,
    pub location: Option<(Arc<SourceFile>, Span)>,
    pub help: Option<String>,
    /// For an unknown field: every name the block accepts (see `proto::de::DeError`).
    pub expected: Option<&'static [&'static str]>,
    /// A warning (rendered `warning:`): the file is read, but not as written.
    pub warning: bool,
}

impl Diagnostic {
    pub fn new(message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            message: message.into(),
            location: None,
            help: None,
            expected: None,
            warning: false,
        }
    }

    /// Marks the diagnostic as a warning.
    pub fn as_warning(mut self) -> Diagnostic {
        self.warning = true;
        self
    }

    pub fn with_expected(mut self, expected: Option<&'static [&'static str]>) -> Diagnostic {
        self.expected = expected;
        self
    }

    pub fn at(mut self, file: &Arc<SourceFile>, span: Span) -> Diagnostic {
        self.location = Some((file.clone(), span));
        self
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    pub fn with_help_opt(mut self, help: Option<String>) -> Diagnostic {
        if help.is_some() {
            self.help = help;
        }
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = if self.warning { "warning" } else { "error" };
        writeln!(f, "{level}: {}", self.message)?;
        if let Some((file, span)) = &self.location {
            let (line, col) = file.line_col(span.start);
            let text = file.line_text(line);
            let gutter = line.to_string().len();
            let pad = " ".repeat(gutter);
            writeln!(f, "{pad}--> {}:{}:{}", file.path.display(), line, col)?;
            writeln!(f, "{pad} |")?;
            writeln!(f, "{line} | {text}")?;
            // Underline up to the end of the span or of the line, whichever comes first.
            let line_chars = text.chars().count();
            let span_chars = file.text[span.start..span.end.min(file.text.len())]
                .chars()
                .take_while(|&c| c != '\n')
                .count();
            let width = span_chars.clamp(1, (line_chars + 1).saturating_sub(col - 1).max(1));
            let indent: String = text
                .chars()
                .take(col - 1)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            writeln!(f, "{pad} | {indent}{}", "^".repeat(width))?;
        }
        if let Some(help) = &self.help {
            let pad = match &self.location {
                Some((file, span)) => " ".repeat(file.line_col(span.start).0.to_string().len()),
                None => String::new(),
            };
            writeln!(f, "{pad} = help: {help}")?;
        }
        Ok(())
    }
}

/// The library's error type. Nothing in netrun panics on bad input.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Problems found in config files, all of them, in file order.
    #[error("{}", render_all(.0))]
    Config(Vec<Diagnostic>),
    #[error("cannot read `{}`: {message}", path.display())]
    Io { path: PathBuf, message: String },
    #[error("{0}")]
    Other(String),
}

fn render_all(diags: &[Diagnostic]) -> String {
    let mut out = String::new();
    for d in diags {
        out.push_str(&d.to_string());
        out.push('\n');
    }
    let n = diags.len();
    out.push_str(&format!(
        "{} error{} found",
        n,
        if n == 1 { "" } else { "s" }
    ));
    out
}

impl From<Diagnostic> for Error {
    fn from(d: Diagnostic) -> Error {
        Error::Config(vec![d])
    }
}

impl Error {
    /// The diagnostics of a config error (empty for other errors).
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            Error::Config(d) => d,
            _ => &[],
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Warnings rendered as the error list is, with a count line.
pub fn render_warnings(diags: &[Diagnostic]) -> String {
    let mut out = String::new();
    for d in diags {
        out.push_str(&d.to_string());
        out.push('\n');
    }
    let n = diags.len();
    out.push_str(&format!("{n} warning{}", if n == 1 { "" } else { "s" }));
    out
}

/// Prints warnings to stderr, each text once per process (a file built as
/// both the train and the test net warns once).
pub fn print_warnings(diags: &[Diagnostic]) {
    use std::collections::HashSet;
    use std::sync::Mutex;
    static PRINTED: Mutex<Option<HashSet<String>>> = Mutex::new(None);
    let mut printed = PRINTED.lock().unwrap_or_else(|e| e.into_inner());
    let seen = printed.get_or_insert_with(HashSet::new);
    for d in diags {
        let text = d.to_string();
        if seen.insert(text.clone()) {
            eprint!("{text}");
        }
    }
}

/// "did you mean `x`?" for the closest candidate, when one is close enough:
/// Jaro-Winkler similarity ≥ 0.85, or (for words of 3+ letters) at most one
/// edit per 4 letters, so that short slips such as `dta` → `data` are caught.
/// On equal similarity the earlier candidate wins.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    let lower = word.to_ascii_lowercase();
    let max_edits = if word.chars().count() >= 3 {
        (word.chars().count() / 4).max(1)
    } else {
        0
    };
    let mut best: Option<(f64, &str)> = None;
    for c in candidates {
        let c_lower = c.to_ascii_lowercase();
        let score = strsim::jaro_winkler(&lower, &c_lower);
        let close = score >= 0.85
            || lower == c_lower
            || strsim::osa_distance(&lower, &c_lower) <= max_edits;
        if close && best.is_none_or(|(s, _)| score > s) {
            best = Some((score, c));
        }
    }
    best.map(|(_, c)| format!("did you mean `{c}`?"))
}

#[cfg(test)]
mod tests {
    use super::did_you_mean;

    #[test]
    fn suggestions_for_slips_and_none_for_unrelated_words() {
        let fields = ["num_output", "bottom", "data", "kernel_size", "SUM"];
        let dym = |w| did_you_mean(w, fields);
        assert_eq!(
            dym("num_ouput").as_deref(),
            Some("did you mean `num_output`?")
        );
        assert_eq!(dym("botom").as_deref(), Some("did you mean `bottom`?"));
        assert_eq!(dym("dta").as_deref(), Some("did you mean `data`?"));
        assert_eq!(
            dym("kernal_size").as_deref(),
            Some("did you mean `kernel_size`?")
        );
        assert_eq!(dym("sum").as_deref(), Some("did you mean `SUM`?"));
        assert_eq!(dym("xyz"), None);
        assert_eq!(dym("ab"), None);
        assert_eq!(dym("weights"), None);
    }
}
