//! Caffe's protobuf text format: a generic tree of fields with source spans.
//!
//! The grammar (`grammar/netrun.pest`) knows nothing about layers or solvers;
//! [`de`] turns blocks of this tree into typed serde structs.

pub mod de;

use crate::error::{Diagnostic, Error, Result};
use crate::source::{SourceFile, Span};
use pest::Parser;
use std::sync::Arc;

mod syntax;

use syntax::*;

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
