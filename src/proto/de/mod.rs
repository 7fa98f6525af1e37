//! A serde `Deserializer` over the text-format tree.
//!
//! * a block deserializes into a struct; fields of the same name are gathered,
//!   so `Vec<T>` members read repeated fields (`stepvalue`, `mean_value`, `param`);
//! * a non-repeated field given twice is an error at its second occurrence;
//! * enums accept the identifier (`MAX`) or Caffe's number (`0`): variants are
//!   declared in Caffe's order, so serde's variant index is Caffe's value;
//! * unknown fields and enum values get "did you mean" from the expected names;
//! * every error carries the span of the field or value it is about.

use super::{Block, Field, Scalar, Value};
use crate::error::{did_you_mean, Diagnostic};
use crate::source::{SourceFile, Span};
use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};
use std::fmt;
use std::sync::Arc;

mod value;

use value::*;

/// A deserialization error with the span it is about.
#[derive(Debug, Clone)]
pub struct DeError {
    pub message: String,
    pub span: Option<Span>,
    pub help: Option<String>,
    /// For an unknown field: every field name the struct accepts, in declaration order.
    pub expected: Option<&'static [&'static str]>,
}

impl DeError {
    fn at(mut self, span: Span) -> DeError {
        if self.span.is_none() {
            self.span = Some(span);
        }
        self
    }

    pub fn into_diagnostic(self, source: &Arc<SourceFile>, fallback: Span) -> Diagnostic {
        Diagnostic::new(self.message)
            .at(source, self.span.unwrap_or(fallback))
            .with_help_opt(self.help)
            .with_expected(self.expected)
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError {
            message: msg.to_string(),
            span: None,
            help: None,
            expected: None,
        }
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        DeError {
            message: format!("unknown field `{field}`"),
            span: None,
            help: did_you_mean(field, expected.iter().copied())
                .or_else(|| Some(format!("expected one of {}", quote_list(expected)))),
            expected: Some(expected),
        }
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        DeError {
            message: format!("unknown value `{variant}`"),
            span: None,
            help: did_you_mean(variant, expected.iter().copied())
                .or_else(|| Some(format!("expected one of {}", quote_list(expected)))),
            expected: None,
        }
    }

    fn missing_field(field: &'static str) -> Self {
        DeError::custom(format!("missing field `{field}`"))
    }
}

/// `a`, `b` or `c`, quoted.
pub fn quote_list(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    quoted.join(", ")
}

/// Deserializes `T` from a block, e.g. a layer's `convolution_param { ... }`.
/// `context` names the block in messages ("unknown field `x` in `convolution_param`").
pub fn from_block<'de, T: serde::Deserialize<'de>>(
    block: &'de Block,
    context: &'de str,
) -> Result<T, DeError> {
    T::deserialize(BlockDe { block, context })
}

/// Deserializes `T` from one field's value (a block or a scalar).
pub fn from_field<'de, T: serde::Deserialize<'de>>(field: &'de Field) -> Result<T, DeError> {
    T::deserialize(ValueDe { field }).map_err(|e| e.at(field.value_span))
}

struct BlockDe<'a> {
    block: &'a Block,
    context: &'a str,
}

impl<'de> de::Deserializer<'de> for BlockDe<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        // Group repeated fields under their first occurrence, keeping file order.
        let mut groups: Vec<(&'de str, Vec<&'de Field>)> = Vec::new();
        for f in &self.block.fields {
            match groups.iter_mut().find(|(n, _)| *n == f.name) {
                Some((_, v)) => v.push(f),
                None => groups.push((f.name.as_str(), vec![f])),
            }
        }
        let span = self.block.span;
        visitor
            .visit_map(BlockMap {
                groups: groups.into_iter(),
                current: None,
                context: self.context,
            })
            .map_err(|e| e.at(span))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

struct BlockMap<'a, I> {
    groups: I,
    current: Option<Vec<&'a Field>>,
    context: &'a str,
}

impl<'de, I: Iterator<Item = (&'de str, Vec<&'de Field>)>> de::MapAccess<'de> for BlockMap<'de, I> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let Some((name, fields)) = self.groups.next() else {
            return Ok(None);
        };
        let span = fields[0].name_span;
        self.current = Some(fields);
        let key = seed
            .deserialize(name.into_deserializer())
            .map_err(|e: DeError| {
                let e = e.at(span);
                if e.message.starts_with("unknown field") && !self.context.is_empty() {
                    DeError {
                        message: format!("{} in `{}`", e.message, self.context),
                        ..e
                    }
                } else {
                    e
                }
            })?;
        Ok(Some(key))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let fields = self.current.take().unwrap_or_default();
        let span = fields.first().map(|f| f.value_span).unwrap_or_default();
        seed.deserialize(FieldsDe { fields })
            .map_err(|e| e.at(span))
    }
}

/// All occurrences of one field name inside a block.
struct FieldsDe<'a> {
    fields: Vec<&'a Field>,
}

impl<'a> FieldsDe<'a> {
    fn single(self) -> Result<ValueDe<'a>, DeError> {
        if self.fields.len() > 1 {
            let second = self.fields[1];
            return Err(DeError {
                message: format!(
                    "field `{}` is given {} times but takes one value",
                    second.name,
                    self.fields.len()
                ),
                span: Some(second.name_span),
                help: Some(
                    "remove the extra lines; only repeated fields may appear more than once".into(),
                ),
                expected: None,
            });
        }
        Ok(ValueDe {
            field: self.fields[0],
        })
    }
}

macro_rules! forward_single {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            self.single()?.$method(visitor)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for FieldsDe<'de> {
    type Error = DeError;

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_seq(FieldSeq {
            fields: self.fields.into_iter(),
        })
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.single()?.deserialize_struct(name, fields, visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.single()?.deserialize_enum(name, variants, visitor)
    }

    forward_single! {
        deserialize_any deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32
        deserialize_i64 deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64
        deserialize_f32 deserialize_f64 deserialize_char deserialize_str deserialize_string
        deserialize_bytes deserialize_byte_buf deserialize_unit deserialize_map
        deserialize_identifier deserialize_ignored_any
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        v: V,
    ) -> Result<V::Value, DeError> {
        self.single()?.deserialize_unit(v)
    }
    fn deserialize_tuple<V: Visitor<'de>>(self, _: usize, v: V) -> Result<V::Value, DeError> {
        self.deserialize_seq(v)
    }
    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: usize,
        v: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(v)
    }
}

struct FieldSeq<'a> {
    fields: std::vec::IntoIter<&'a Field>,
}

impl<'de> de::SeqAccess<'de> for FieldSeq<'de> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        match self.fields.next() {
            None => Ok(None),
            Some(field) => seed
                .deserialize(ValueDe { field })
                .map(Some)
                .map_err(|e| e.at(field.value_span)),
        }
    }
}
