//! Syntax errors in words: what pest expected, with the usual slips (a missing
//! `:`, a field without value, an unclosed string or block) located where the
//! fix goes.

use super::*;

/// Turns pest's error into a diagnostic that names what was expected in words,
/// with the usual slips (a missing `:`, a field without value, an unclosed
/// string or block) recognised and located where the fix goes.
pub(super) fn syntax_error(source: &Arc<SourceFile>, e: pest::error::Error<Rule>) -> Error {
    use pest::error::{ErrorVariant, InputLocation};
    let text = source.text.as_str();
    let pos = match e.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((s, _)) => s,
    }
    .min(text.len());
    let rest = &text[pos..];
    let found = describe_found(rest);
    let mut positives = match &e.variant {
        ErrorVariant::ParsingError { positives, .. } => positives.clone(),
        ErrorVariant::CustomError { .. } => vec![],
    };
    positives.sort_by_key(|r| rule_name(*r));
    positives.dedup_by_key(|r| rule_name(*r));
    let at = |start: usize, end: usize| Span::new(start, end);
    let diag = if rest.is_empty() && !unclosed_braces(text).is_empty() {
        let open = unclosed_braces(text);
        let innermost = open[open.len() - 1];
        let block_name = |at: usize| word_before(text, at).map(|(_, w)| w).unwrap_or("");
        // A `layer {` inside the unclosed `layer {` shows where its `}` belonged.
        let nested_same = brace_pairs(text)
            .1
            .into_iter()
            .filter(|&(o, _)| o > innermost && block_name(o) == block_name(innermost))
            .map(|(o, _)| o)
            .min();
        let help = match (misindented_block(text), nested_same) {
            (Some(b), _) => format!(
                "judging by the indentation, the `{} {{` on line {} is the one missing its `}}`",
                block_name(b),
                source.line_col(b).0
            ),
            (None, Some(b)) => format!(
                "add the missing `}}` before the `{} {{` on line {}",
                block_name(b),
                source.line_col(b).0
            ),
            (None, None) if open.len() == 1 => "add the missing `}`".to_string(),
            (None, None) => format!(
                "{} blocks are not closed; add the missing `}}`s",
                open.len()
            ),
        };
        Diagnostic::new(format!(
            "syntax error: the file ends inside this `{} {{` block",
            block_name(innermost)
        ))
        .at(source, at(innermost, innermost + 1))
        .with_help(help)
    } else if rest.starts_with(['"', '\'']) && !closes_on_its_line(rest) {
        let quote = &rest[..1];
        let line_end = rest.find(['\n', '\r']).unwrap_or(rest.len());
        Diagnostic::new("syntax error: this string is not closed")
            .at(source, at(pos, pos + line_end))
            .with_help(format!(
                "a string ends on the line it starts, with a matching `{quote}`"
            ))
    } else if let Some((name, value)) = missing_value(text, pos) {
        let (line, _) = source.line_col(value.start);
        Diagnostic::new(format!(
            "syntax error: `{}:` has no value",
            &text[name.start..name.end]
        ))
        .at(source, name)
        .with_help(format!(
            "`{}` on line {line} was read as its value",
            &text[value.start..value.end]
        ))
    } else if positives == [Rule::block] {
        let field = word_before(text, pos).map(|(_, w)| w).unwrap_or("");
        let help = if rest.starts_with('=') {
            "fields are written `name: value`, with a colon".to_string()
        } else {
            format!("write `{field}: value` for a value or `{field} {{ ... }}` for a block")
        };
        Diagnostic::new(format!(
            "syntax error: expected `:` or `{{` after `{field}`, found {found}"
        ))
        .at(source, at(pos, pos + 1))
        .with_help(help)
    } else {
        let wants_field = positives
            .iter()
            .any(|r| matches!(r, Rule::field | Rule::name));
        if wants_field {
            // After a string, another string could continue it; that is never the fix.
            positives.retain(|r| !matches!(r, Rule::string | Rule::quoted));
        }
        let mut words: Vec<&str> = positives.iter().map(|r| rule_name(*r)).collect();
        // Inside a block, its closing brace is the other way on (literals are not rules).
        if wants_field && !positives.contains(&Rule::EOI) {
            words.push("`}`");
        }
        let expected = match words.split_last() {
            Some((last, [])) => last.to_string(),
            Some((last, init)) => format!("{} or {last}", init.join(", ")),
            None => "something else".to_string(),
        };
        let help = rest
            .starts_with('}')
            .then(|| "this `}` closes no block, or a field before it is incomplete".to_string());
        Diagnostic::new(format!("syntax error: expected {expected}, found {found}"))
            .at(source, at(pos, pos + 1))
            .with_help_opt(help)
    };
    diag.into()
}

pub(super) fn describe_found(rest: &str) -> String {
    match rest.chars().next() {
        None => "end of file".to_string(),
        Some(c) if c.is_whitespace() => "whitespace".to_string(),
        Some(_) => {
            let token: String = rest
                .chars()
                .take_while(|c| !c.is_whitespace())
                .take(20)
                .collect();
            format!("`{token}`")
        }
    }
}

pub(super) fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The identifier that ends just before `pos` (whitespace skipped): its span and text.
pub(super) fn word_before(text: &str, pos: usize) -> Option<(Span, &str)> {
    let end = text[..pos].trim_end().len();
    let start = text[..end]
        .bytes()
        .rposition(|b| !is_word_byte(b))
        .map_or(0, |i| i + 1);
    (start < end).then(|| (Span::new(start, end), &text[start..end]))
}

/// `name:` followed by a bare word that is itself followed by `:` — the word
/// was meant as the next field's name, so `name` has no value.
/// Returns the spans of `name` and of the word.
pub(super) fn missing_value(text: &str, pos: usize) -> Option<(Span, Span)> {
    if !text[pos..].starts_with(':') {
        return None;
    }
    let (value, _) = word_before(text, pos)?;
    let before = text[..value.start].trim_end();
    let colon = before.strip_suffix(':')?;
    let (name, _) = word_before(text, colon.len())?;
    Some((name, value))
}

/// Whether the string starting at `rest[0]` (a quote) ends on its line.
pub(super) fn closes_on_its_line(rest: &str) -> bool {
    let quote = rest.as_bytes()[0];
    let mut escaped = false;
    for &b in &rest.as_bytes()[1..] {
        match b {
            b'\n' => return false,
            b'\\' if !escaped => escaped = true,
            _ if b == quote && !escaped => return true,
            _ => escaped = false,
        }
    }
    false
}

/// Byte offsets of the `{` still open at the end of the text, outermost first.
pub(super) fn unclosed_braces(text: &str) -> Vec<usize> {
    brace_pairs(text).0
}

/// The first `{` whose `}` starts a line indented less than the `{`'s line:
/// that `}` most likely closes an outer block, so this block lacks its own.
pub(super) fn misindented_block(text: &str) -> Option<usize> {
    let line_start = |at: usize| text[..at].rfind('\n').map_or(0, |i| i + 1);
    let indent = |at: usize| {
        let start = line_start(at);
        text[start..].len() - text[start..].trim_start_matches([' ', '\t']).len()
    };
    let mut pairs = brace_pairs(text).1;
    pairs.sort();
    pairs.into_iter().find_map(|(open, close)| {
        let close_starts_line = text[line_start(close)..close].trim().is_empty();
        (close_starts_line && indent(close) < indent(open)).then_some(open)
    })
}

/// The `{` left open at the end (outermost first) and the matched `{`/`}`
/// pairs, as byte offsets. Braces in strings and comments do not count.
pub(super) fn brace_pairs(text: &str) -> (Vec<usize>, Vec<(usize, usize)>) {
    let bytes = text.as_bytes();
    let mut open = Vec::new();
    let mut pairs = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            q @ (b'"' | b'\'') => {
                i += 1;
                while i < bytes.len() && bytes[i] != q && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'{' => open.push(i),
            b'}' => {
                if let Some(o) = open.pop() {
                    pairs.push((o, i));
                }
            }
            _ => {}
        }
        i += 1;
    }
    (open, pairs)
}

/// Human names for grammar rules in "expected ..." messages.
pub(super) fn rule_name(rule: Rule) -> &'static str {
    match rule {
        Rule::file | Rule::EOI => "end of file",
        Rule::field | Rule::name => "a field name",
        Rule::block => "`{`",
        Rule::list => "`[`",
        Rule::string | Rule::quoted => "a quoted string",
        Rule::number => "a number",
        Rule::ident => "an identifier",
        Rule::dq_inner | Rule::sq_inner | Rule::escape => "string text",
        Rule::WHITESPACE | Rule::COMMENT | Rule::scalar | Rule::ident_char | Rule::separator => {
            "a separator"
        }
    }
}
