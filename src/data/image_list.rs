//! ImageData list files: one sample per line, `<image path> <integer label>`.
//! The label follows the LAST space, so paths may contain spaces; blank lines
//! are skipped and trailing whitespace (including a CR) is ignored.

use std::io::BufRead;
use std::path::Path;

/// One sample of a list file.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub path: String,
    pub label: i32,
    /// 1-based line number in the list file.
    pub line: usize,
}

/// Why a list could not be read.
#[derive(Debug, Clone, PartialEq)]
pub enum ListError {
    /// The file could not be opened or read.
    Io(String),
    /// A line is malformed.
    Line { line: usize, message: String },
}

/// Parses line number `line` (1-based); `Ok(None)` for a blank line.
pub fn parse_line(text: &str, line: usize) -> Result<Option<Entry>, ListError> {
    let text = text.trim_end();
    if text.trim_start().is_empty() {
        return Ok(None);
    }
    let bad = |message: String| ListError::Line { line, message };
    let Some((path, label)) = text.rsplit_once(' ') else {
        return Err(bad(format!(
            "`{text}` has no label; expected `<image path> <integer label>`"
        )));
    };
    let label: i32 = label
        .parse()
        .map_err(|_| bad(format!("label `{label}` is not an integer")))?;
    if path.trim().is_empty() {
        return Err(bad(format!("`{text}` has no image path")));
    }
    Ok(Some(Entry {
        path: path.to_string(),
        label,
        line,
    }))
}

/// Reads the entries of a list file, at most `limit` of them when given.
pub fn read(path: &Path, limit: Option<usize>) -> Result<Vec<Entry>, ListError> {
    let file = std::fs::File::open(path).map_err(|e| ListError::Io(e.to_string()))?;
    let mut reader = std::io::BufReader::new(file);
    let mut entries = Vec::new();
    let mut buf = Vec::new();
    for line in 1.. {
        if limit.is_some_and(|l| entries.len() >= l) {
            break;
        }
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| ListError::Io(e.to_string()))?;
        if n == 0 {
            break;
        }
        if let Some(e) = parse_line(&String::from_utf8_lossy(&buf), line)? {
            entries.push(e);
        }
    }
    Ok(entries)
}
