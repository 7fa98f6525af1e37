//! Deserializing one field's value: numbers, strings, enums by name or number.

use super::*;

/// One field's value.
pub(super) struct ValueDe<'a> {
    pub(super) field: &'a Field,
}

impl<'a> ValueDe<'a> {
    fn scalar(&self, expected: &str) -> Result<&'a Scalar, DeError> {
        match &self.field.value {
            Value::Scalar(s) => Ok(s),
            Value::Block(_) => Err(self.error(format!(
                "field `{}` expects {expected}, found a block",
                self.field.name
            ))),
        }
    }

    fn error(&self, message: String) -> DeError {
        DeError {
            message,
            span: Some(self.field.value_span),
            help: None,
            expected: None,
        }
    }

    fn mismatch(&self, expected: &str, found: &Scalar) -> DeError {
        let mut e = self.error(format!(
            "field `{}` expects {expected}, found {}",
            self.field.name,
            found.describe()
        ));
        match found {
            Scalar::Ident(i) if expected.contains("string") => {
                e.help = Some(format!(
                    "strings are quoted: `{}: \"{i}\"`",
                    self.field.name
                ));
            }
            Scalar::Str(v)
                if (expected.contains("number") || expected.contains("integer"))
                    && v.trim().parse::<f64>().is_ok() =>
            {
                e.help = Some(format!(
                    "numbers are not quoted: `{}: {}`",
                    self.field.name,
                    v.trim()
                ));
            }
            _ => {}
        }
        e
    }

    fn integer(&self, expected: &str) -> Result<i128, DeError> {
        let s = self.scalar(expected)?;
        if let Scalar::Number(text) = s {
            let (neg, body) = match text.strip_prefix('-') {
                Some(b) => (true, b),
                None => (false, text.as_str()),
            };
            let parsed =
                if let Some(hex) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
                    i128::from_str_radix(hex, 16).ok()
                } else if body.len() > 1
                    && body.starts_with('0')
                    && body.bytes().all(|b| b.is_ascii_digit())
                {
                    i128::from_str_radix(&body[1..], 8).ok()
                } else {
                    body.parse::<i128>().ok()
                };
            if let Some(v) = parsed {
                return Ok(if neg { -v } else { v });
            }
        }
        Err(self.mismatch(expected, s))
    }

    fn float(&self) -> Result<f64, DeError> {
        let s = self.scalar("a number")?;
        let parsed = match s {
            // Integer spellings (`0x1F`, octal `017`) mean what they mean for integer fields.
            Scalar::Number(text) if is_integer_text(text) => {
                self.integer("a number").ok().map(|v| v as f64)
            }
            Scalar::Number(text) => text.trim_end_matches(['f', 'F']).parse::<f64>().ok(),
            Scalar::Ident(i) => match i.to_ascii_lowercase().as_str() {
                "inf" | "infinity" => Some(f64::INFINITY),
                "-inf" | "-infinity" => Some(f64::NEG_INFINITY),
                "nan" | "-nan" => Some(f64::NAN),
                _ => None,
            },
            Scalar::Str(_) => None,
        };
        parsed.ok_or_else(|| self.mismatch("a number", s))
    }
}

/// `-3`, `017`, `0x1F`: a number token without a fraction, exponent or `f` suffix.
pub(super) fn is_integer_text(text: &str) -> bool {
    let body = text.strip_prefix('-').unwrap_or(text);
    match body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        Some(hex) => !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()),
        None => !body.is_empty() && body.bytes().all(|b| b.is_ascii_digit()),
    }
}

macro_rules! int_method {
    ($method:ident, $visit:ident, $ty:ty, $what:literal) => {
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            let v = self.integer($what)?;
            let v = <$ty>::try_from(v).map_err(|_| {
                self.error(format!(
                    "field `{}` expects {}, but {v} is out of range",
                    self.field.name, $what
                ))
            })?;
            visitor.$visit(v)
        }
    };
}

impl<'de> de::Deserializer<'de> for ValueDe<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.field.value {
            Value::Block(block) => BlockDe {
                block,
                context: &self.field.name,
            }
            .deserialize_any(visitor),
            Value::Scalar(Scalar::Str(s)) => visitor.visit_borrowed_str(s),
            Value::Scalar(Scalar::Ident(s)) => visitor.visit_borrowed_str(s),
            Value::Scalar(Scalar::Number(n)) => match self.integer("a number") {
                Ok(v) if !n.contains('.') => visitor.visit_i64(v as i64),
                _ => visitor.visit_f64(self.float()?),
            },
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let s = self.scalar("`true` or `false`")?;
        match s {
            Scalar::Ident(i) if matches!(i.as_str(), "true" | "True" | "t") => {
                visitor.visit_bool(true)
            }
            Scalar::Ident(i) if matches!(i.as_str(), "false" | "False" | "f") => {
                visitor.visit_bool(false)
            }
            Scalar::Number(n) if n == "1" => visitor.visit_bool(true),
            Scalar::Number(n) if n == "0" => visitor.visit_bool(false),
            other => {
                let mut e = self.mismatch("`true` or `false`", other);
                if let Scalar::Str(v) = other {
                    e.help = Some(format!(
                        "booleans are not quoted: `{}: {v}`",
                        self.field.name
                    ));
                }
                Err(e)
            }
        }
    }

    int_method!(deserialize_i8, visit_i8, i8, "an integer");
    int_method!(deserialize_i16, visit_i16, i16, "an integer");
    int_method!(deserialize_i32, visit_i32, i32, "an integer");
    int_method!(deserialize_i64, visit_i64, i64, "an integer");
    int_method!(deserialize_u8, visit_u8, u8, "a non-negative integer");
    int_method!(deserialize_u16, visit_u16, u16, "a non-negative integer");
    int_method!(deserialize_u32, visit_u32, u32, "a non-negative integer");
    int_method!(deserialize_u64, visit_u64, u64, "a non-negative integer");

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_f32(self.float()? as f32)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_f64(self.float()?)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.scalar("a quoted string")? {
            Scalar::Str(s) => visitor.visit_borrowed_str(s),
            other => Err(self.mismatch("a quoted string", other)),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
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

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_seq(FieldSeq {
            fields: vec![self.field].into_iter(),
        })
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match &self.field.value {
            Value::Block(block) => BlockDe {
                block,
                context: &self.field.name,
            }
            .deserialize_any(visitor),
            Value::Scalar(s) => {
                let mut e = self.error(format!(
                    "field `{}` is a block, found {}",
                    self.field.name,
                    s.describe()
                ));
                e.help = Some(format!("write it as `{} {{ ... }}`", self.field.name));
                Err(e)
            }
        }
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_struct("", &[], visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let expected = "an enum value";
        let s = self.scalar(expected)?;
        let span = self.field.value_span;
        match s {
            Scalar::Ident(name) | Scalar::Str(name) => visitor
                .visit_enum(name.as_str().into_deserializer())
                .map_err(|e: DeError| {
                    let mut e = e.at(span);
                    if e.message.starts_with("unknown value") {
                        e.message = format!("{} for field `{}`", e.message, self.field.name);
                    }
                    e
                }),
            Scalar::Number(_) => {
                let index = self.integer(expected)?;
                if index < 0 || index as usize >= variants.len() {
                    return Err(DeError {
                        message: format!(
                            "enum value {index} is out of range for field `{}`",
                            self.field.name
                        ),
                        span: Some(span),
                        help: Some(format!(
                            "the values are {}",
                            variants
                                .iter()
                                .enumerate()
                                .map(|(i, v)| format!("{i} = {v}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        )),
                        expected: None,
                    });
                }
                visitor
                    .visit_enum(variants[index as usize].into_deserializer())
                    .map_err(|e: DeError| e.at(span))
            }
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        i128 u128 char bytes byte_buf unit unit_struct tuple tuple_struct
    }
}
