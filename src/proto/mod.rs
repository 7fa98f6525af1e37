//! Caffe's protobuf text format: a generic tree of fields with source spans.
//!
//! The grammar (`grammar/netrun.pest`) knows nothing about layers or solvers;
//! [`de`] turns blocks of this tree into typed serde structs.

pub mod de;
mod depth;

use crate::error::{Diagnostic, Error, Result};
use crate::source::{SourceFile, Span};
use pest::Parser;
use std::sync::Arc;

#[derive(pest_derive::Parser)]
#[grammar = "grammar/netrun.pest"]
struct TextFormat;

/// A scalar as written. Numbers keep their text so that the typed reader can
/// say "expected an integer, found `0.5`".
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Str(String),
    Number(String),
    Ident(String),
}

impl Scalar {
    /// How the value reads in a message.
    pub fn describe(&self) -> String {
        match self {
            Scalar::Str(s) => format!("string \"{s}\""),
            Scalar::Number(n) => format!("number `{n}`"),
            Scalar::Ident(i) => format!("identifier `{i}`"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scalar(Scalar),
    Block(Block),
}

/// One `name: value` or `name { ... }`. A `[a, b]` list becomes one field per element.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub name: String,
    pub name_span: Span,
    pub value: Value,
    pub value_span: Span,
}

/// A message: the fields in file order, and the span of the whole block.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Block {
    pub fields: Vec<Field>,
    pub span: Span,
}

impl Block {
    /// All fields with this name, in order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Field> + 'a {
        self.fields.iter().filter(move |f| f.name == name)
    }

    /// The first field with this name.
    pub fn get(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// A copy holding only the fields that `keep` accepts.
    pub fn filtered(&self, keep: impl Fn(&Field) -> bool) -> Block {
        Block {
            fields: self.fields.iter().filter(|f| keep(f)).cloned().collect(),
            span: self.span,
        }
    }
}

/// A parsed file: its source (for diagnostics) and its top-level block.
#[derive(Debug, Clone)]
pub struct Document {
    pub source: Arc<SourceFile>,
    pub root: Block,
}

/// Parses Caffe text format. A syntax error comes back as one diagnostic at
/// the first offending character.
pub fn parse(source: &Arc<SourceFile>) -> Result<Document> {
    depth::check(source)?;
    let mut pairs =
        TextFormat::parse(Rule::file, &source.text).map_err(|e| syntax_error(source, e))?;
    let file = pairs.next().expect("grammar: `file` is the root rule");
    let mut fields = Vec::new();
    for pair in file.into_inner() {
        if pair.as_rule() == Rule::field {
            read_field(source, pair, &mut fields)?;
        }
    }
    Ok(Document {
        source: source.clone(),
        root: Block {
            fields,
            span: Span::new(0, source.text.len()),
        },
    })
}

/// Parses text that has no file behind it (tests, generated nets).
pub fn parse_str(name: &str, text: &str) -> Result<Document> {
    parse(&SourceFile::new(name, text))
}

type Pair<'i> = pest::iterators::Pair<'i, Rule>;

fn span_of(pair: &Pair) -> Span {
    Span::new(pair.as_span().start(), pair.as_span().end())
}

fn read_field(source: &Arc<SourceFile>, pair: Pair, out: &mut Vec<Field>) -> Result<()> {
    let mut inner = pair.into_inner();
    let name_pair = inner.next().expect("grammar: a field starts with its name");
    let name = name_pair.as_str().to_string();
    let name_span = span_of(&name_pair);
    for value in inner {
        if value.as_rule() == Rule::list {
            for item in value.into_inner() {
                let value_span = span_of(&item);
                let value = Value::Scalar(read_scalar(source, item)?);
                out.push(Field {
                    name: name.clone(),
                    name_span,
                    value,
                    value_span,
                });
            }
        } else {
            let value_span = span_of(&value);
            let value = read_value(source, value)?;
            out.push(Field {
                name: name.clone(),
                name_span,
                value,
                value_span,
            });
        }
    }
    Ok(())
}

fn read_value(source: &Arc<SourceFile>, pair: Pair) -> Result<Value> {
    if pair.as_rule() == Rule::block {
        let span = span_of(&pair);
        let mut fields = Vec::new();
        for f in pair.into_inner() {
            read_field(source, f, &mut fields)?;
        }
        return Ok(Value::Block(Block { fields, span }));
    }
    Ok(Value::Scalar(read_scalar(source, pair)?))
}

fn read_scalar(source: &Arc<SourceFile>, pair: Pair) -> Result<Scalar> {
    match pair.as_rule() {
        Rule::number => Ok(Scalar::Number(pair.as_str().to_string())),
        Rule::ident => Ok(Scalar::Ident(pair.as_str().to_string())),
        Rule::string => {
            let mut s = String::new();
            for quoted in pair.into_inner() {
                let inner = quoted
                    .into_inner()
                    .next()
                    .expect("grammar: quoted has a body");
                unescape(source, &inner, &mut s)?;
            }
            Ok(Scalar::Str(s))
        }
        r => unreachable!("grammar: unexpected scalar rule {r:?}"),
    }
}

/// Protobuf text escapes: `\n \t \r \\ \' \" \a \b \f \v`, `\xHH` and octal `\ooo`.
fn unescape(source: &Arc<SourceFile>, pair: &Pair, out: &mut String) -> Result<()> {
    let text = pair.as_str();
    let base = pair.as_span().start();
    let mut bytes = Vec::with_capacity(text.len());
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c != '\\' {
            let mut buf = [0u8; 4];
            bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        let Some((_, e)) = chars.next() else { break };
        let simple = match e {
            'n' => Some(b'\n'),
            't' => Some(b'\t'),
            'r' => Some(b'\r'),
            'a' => Some(7),
            'b' => Some(8),
            'f' => Some(12),
            'v' => Some(11),
            '\\' => Some(b'\\'),
            '\'' => Some(b'\''),
            '"' => Some(b'"'),
            '?' => Some(b'?'),
            _ => None,
        };
        if let Some(b) = simple {
            bytes.push(b);
        } else if e == 'x' || e == 'X' {
            let mut v = 0u32;
            let mut n = 0;
            while n < 2 {
                match chars.peek() {
                    Some(&(_, h)) if h.is_ascii_hexdigit() => {
                        v = v * 16 + h.to_digit(16).unwrap_or(0);
                        chars.next();
                        n += 1;
                    }
                    _ => break,
                }
            }
            if n == 0 {
                return Err(bad_escape(source, base + i, "`\\x` needs hex digits"));
            }
            bytes.push(v as u8);
        } else if ('0'..='7').contains(&e) {
            let mut v = e.to_digit(8).unwrap_or(0);
            let mut n = 1;
            while n < 3 {
                match chars.peek() {
                    Some(&(_, o)) if ('0'..='7').contains(&o) => {
                        v = v * 8 + o.to_digit(8).unwrap_or(0);
                        chars.next();
                        n += 1;
                    }
                    _ => break,
                }
            }
            bytes.push((v & 0xff) as u8);
        } else {
            return Err(bad_escape(
                source,
                base + i,
                &format!("unknown escape `\\{e}`"),
            ));
        }
    }
    match String::from_utf8(bytes) {
        Ok(s) => {
            out.push_str(&s);
            Ok(())
        }
        Err(_) => Err(bad_escape(
            source,
            base,
            "the escapes do not form valid UTF-8",
        )),
    }
}

fn bad_escape(source: &Arc<SourceFile>, at: usize, what: &str) -> Error {
    Diagnostic::new(format!("bad string escape: {what}"))
        .at(source, Span::new(at, at + 2))
        .into()
}

/// Turns pest's error into a diagnostic that names what was expected in words,
/// with the usual slips (a missing `:`, a field without value, an unclosed
/// string or block) recognised and located where the fix goes.
fn syntax_error(source: &Arc<SourceFile>, e: pest::error::Error<Rule>) -> Error {
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

fn describe_found(rest: &str) -> String {
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

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The identifier that ends just before `pos` (whitespace skipped): its span and text.
fn word_before(text: &str, pos: usize) -> Option<(Span, &str)> {
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
fn missing_value(text: &str, pos: usize) -> Option<(Span, Span)> {
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
fn closes_on_its_line(rest: &str) -> bool {
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
fn unclosed_braces(text: &str) -> Vec<usize> {
    brace_pairs(text).0
}

/// The first `{` whose `}` starts a line indented less than the `{`'s line:
/// that `}` most likely closes an outer block, so this block lacks its own.
fn misindented_block(text: &str) -> Option<usize> {
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
fn brace_pairs(text: &str) -> (Vec<usize>, Vec<(usize, usize)>) {
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
fn rule_name(rule: Rule) -> &'static str {
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

/// Token-level checks of the grammar rules; the tree built from them is
/// tested in `tests/grammar.rs`.
#[cfg(test)]
mod tests {
    use super::{Rule, TextFormat};
    use pest::{consumes_to, fails_with, parses_to};

    #[test]
    fn field_forms() {
        parses_to! { parser: TextFormat, input: "a: 1;", rule: Rule::field,
        tokens: [field(0, 5, [name(0, 1), number(3, 4)])] };
        parses_to! { parser: TextFormat, input: "p { a: 1 }", rule: Rule::field,
        tokens: [field(0, 10, [name(0, 1), block(2, 10, [field(4, 9, [name(4, 5), number(7, 8)])])])] };
        parses_to! { parser: TextFormat, input: "p: <>", rule: Rule::field,
        tokens: [field(0, 5, [name(0, 1), block(3, 5)])] };
        parses_to! { parser: TextFormat, input: "d: [1, x]", rule: Rule::field,
        tokens: [field(0, 9, [name(0, 1), list(3, 9, [number(4, 5), ident(7, 8)])])] };
    }

    #[test]
    fn field_needs_colon_before_a_scalar() {
        fails_with! { parser: TextFormat, input: "a 1", rule: Rule::field,
        positives: vec![Rule::block], negatives: vec![], pos: 2 };
    }

    #[test]
    fn adjacent_quoted_strings_form_one_string() {
        parses_to! { parser: TextFormat, input: "\"a\" 'b'", rule: Rule::string,
        tokens: [string(0, 7, [quoted(0, 3, [dq_inner(1, 2)]), quoted(4, 7, [sq_inner(5, 6)])])] };
        parses_to! { parser: TextFormat, input: r#""\x41""#, rule: Rule::string,
        tokens: [string(0, 6, [quoted(0, 6, [dq_inner(1, 5)])])] };
    }

    #[test]
    fn numbers_and_identifiers_are_single_tokens() {
        for (input, end) in [
            ("-3", 2),
            ("0x1F", 4),
            ("017", 3),
            ("1e-4", 4),
            (".5", 2),
            ("2.", 2),
            ("1.5f", 4),
        ] {
            parses_to! { parser: TextFormat, input: input, rule: Rule::number,
            tokens: [number(0, end)] };
        }
        for (input, end) in [("MAX", 3), ("-inf", 4), ("nan", 3), ("true", 4)] {
            parses_to! { parser: TextFormat, input: input, rule: Rule::ident,
            tokens: [ident(0, end)] };
        }
        fails_with! { parser: TextFormat, input: "3x", rule: Rule::number,
        positives: vec![Rule::number], negatives: vec![], pos: 0 };
    }

    /// A field's own span runs over the whitespace and comment looked past for
    /// its optional separator; diagnostics use the name and value spans instead.
    #[test]
    fn comments_are_skipped_up_to_end_of_input() {
        parses_to! { parser: TextFormat, input: "a: 1 # c", rule: Rule::file,
        tokens: [file(0, 8, [field(0, 8, [name(0, 1), number(3, 4)]), EOI(8, 8)])] };
    }
}
