//! ImageData list files: one sample per line, `<image path> <integer label>`.
//! The label follows the LAST space, so paths may contain spaces; blank lines
//! are skipped and trailing whitespace (including a CR) is ignored.
//! MultiLabelImageData lists (`read_multi`): `<image path> <label> <label> …`.

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

/// One line of a MultiLabelImageData list (happynear/caffe-windows): `<image path>
/// <label> <label> …`, fields split at whitespace (the path has no spaces, as the fork
/// reads it with `>>`), every label a number. `Ok(None)` for a blank line. The entry's
/// `label` is 0; the labels come second.
pub fn parse_multi_line(text: &str, line: usize) -> Result<Option<(Entry, Vec<f32>)>, ListError> {
    let mut fields = text.split_whitespace();
    let Some(path) = fields.next() else {
        return Ok(None);
    };
    let bad = |message: String| ListError::Line { line, message };
    let labels = fields
        .map(|f| {
            f.parse::<f32>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| bad(format!("label `{f}` is not a finite number")))
        })
        .collect::<Result<Vec<f32>, ListError>>()?;
    if labels.is_empty() {
        return Err(bad(format!(
            "`{}` has no labels; expected `<image path> <label> <label> ...`",
            text.trim()
        )));
    }
    let entry = Entry {
        path: path.to_string(),
        label: 0,
        line,
    };
    Ok(Some((entry, labels)))
}

/// The entries of a MultiLabelImageData list and each one's labels; every line must
/// carry as many labels as the first (the fork's check).
pub fn read_multi(path: &Path) -> Result<Vec<(Entry, Vec<f32>)>, ListError> {
    let text = std::fs::read(path).map_err(|e| ListError::Io(e.to_string()))?;
    let mut out: Vec<(Entry, Vec<f32>)> = Vec::new();
    for (k, raw) in String::from_utf8_lossy(&text).lines().enumerate() {
        let Some((entry, labels)) = parse_multi_line(raw, k + 1)? else {
            continue;
        };
        if let Some((first, want)) = out.first().map(|(e, l)| (e.line, l.len())) {
            if labels.len() != want {
                return Err(ListError::Line {
                    line: k + 1,
                    message: format!(
                        "{} labels, but line {first} has {want} (every image needs the same number)",
                        labels.len()
                    ),
                });
            }
        }
        out.push((entry, labels));
    }
    Ok(out)
}
