//! The serde reader over the text-format tree (`src/proto/de.rs`): repeated
//! fields, enums by name and number, bools, integer ranges, and the located
//! errors it gives for each kind of mistake.

use netrun::layers::convolution::ConvolutionParams;
use netrun::layers::eltwise::{EltwiseOp, EltwiseParams};
use netrun::netdef::{NetStateRule, Phase};
use netrun::proto::de::from_block;
use netrun::proto::parse_str;
use serde::Deserialize;

#[derive(Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
struct Sample {
    name: String,
    count: Option<u32>,
    offset: i32,
    small: u8,
    big: i64,
    rate: f32,
    precise: f64,
    flag: bool,
    dim: Vec<i64>,
    value: Vec<f32>,
    op: EltwiseOp,
    phase: Option<Phase>,
    inner: Inner,
    rule: Vec<Inner>,
}

impl Default for Sample {
    fn default() -> Self {
        Sample {
            name: String::new(),
            count: None,
            offset: 0,
            small: 0,
            big: 0,
            rate: 0.0,
            precise: 0.0,
            flag: true,
            dim: vec![],
            value: vec![],
            op: EltwiseOp::Sum,
            phase: None,
            inner: Inner::default(),
            rule: vec![],
        }
    }
}

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
struct Inner {
    a: i32,
    s: String,
}

/// A struct with a field that has no default: serde's "missing field".
#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct Strict {
    needed: u32,
    #[serde(default)]
    other: u32,
}

fn read<T: for<'de> Deserialize<'de>>(text: &str) -> Result<T, String> {
    let doc = parse_str("d.net", text).map_err(|e| e.to_string())?;
    from_block::<T>(&doc.root, "sample")
        .map_err(|e| e.into_diagnostic(&doc.source, doc.root.span).to_string())
}

fn ok(text: &str) -> Sample {
    read::<Sample>(text).unwrap_or_else(|e| panic!("{text}\n{e}"))
}

fn err(text: &str) -> String {
    match read::<Sample>(text) {
        Ok(v) => panic!("expected an error for {text:?}, got {v:?}"),
        Err(e) => e,
    }
}

// ---- repeated fields ----------------------------------------------------

#[test]
fn repeated_fields_gather_into_vecs_in_file_order() {
    let s = ok("dim: 1 name: \"n\" dim: 3\ndim: [4, 5]\nvalue: 0.5 value: -2");
    assert_eq!(s.dim, [1, 3, 4, 5]);
    assert_eq!(s.value, [0.5, -2.0]);
    assert_eq!(s.name, "n");
}

#[test]
fn repeated_blocks_gather_into_vecs_of_structs() {
    let s = ok("rule { a: 1 } inner { a: 7 } rule { s: \"x\" }");
    assert_eq!(
        s.rule,
        [
            Inner {
                a: 1,
                s: String::new()
            },
            Inner {
                a: 0,
                s: "x".into()
            }
        ]
    );
    assert_eq!(s.inner.a, 7);
}

#[test]
fn absent_fields_keep_defaults() {
    assert_eq!(ok(""), Sample::default());
    assert!(ok("").flag);
}

#[test]
fn a_single_field_given_twice_is_an_error_at_the_second() {
    let e = err("offset: 1\nname: \"a\"\noffset: 2\n");
    assert!(
        e.contains("field `offset` is given 2 times but takes one value"),
        "{e}"
    );
    assert!(e.contains("d.net:3:1"), "{e}");
    assert!(
        e.contains("only repeated fields may appear more than once"),
        "{e}"
    );
    // Also for optional scalars and for blocks.
    assert!(err("count: 1 count: 2").contains("d.net:1:10"));
    let e = err("inner { a: 1 }\ninner { a: 2 }");
    assert!(
        e.contains("field `inner` is given 2 times") && e.contains("d.net:2:1"),
        "{e}"
    );
}

#[test]
fn a_list_for_a_single_field_is_the_same_error() {
    let e = err("offset: [1, 2]");
    assert!(e.contains("field `offset` is given 2 times"), "{e}");
}

// ---- enums --------------------------------------------------------------

#[test]
fn enums_by_name_and_by_caffe_number() {
    assert_eq!(ok("op: PROD").op, EltwiseOp::Prod);
    assert_eq!(ok("op: MAX").op, EltwiseOp::Max);
    // EltwiseOp: PROD = 0, SUM = 1, MAX = 2.
    assert_eq!(ok("op: 0").op, EltwiseOp::Prod);
    assert_eq!(ok("op: 1").op, EltwiseOp::Sum);
    assert_eq!(ok("op: 2").op, EltwiseOp::Max);
    assert_eq!(ok("phase: TEST").phase, Some(Phase::Test));
    assert_eq!(ok("phase: 0").phase, Some(Phase::Train));
}

#[test]
fn out_of_range_enum_numbers_list_the_values() {
    let e = err("op: 3");
    assert!(
        e.contains("enum value 3 is out of range for field `op`"),
        "{e}"
    );
    assert!(
        e.contains("the values are 0 = PROD, 1 = SUM, 2 = MAX"),
        "{e}"
    );
    assert!(e.contains("d.net:1:5"), "{e}");
    assert!(err("phase: -1").contains("enum value -1 is out of range for field `phase`"));
}

#[test]
fn unknown_enum_names_suggest_the_closest() {
    let e = err("name: \"x\"\nop: SUMM");
    assert!(e.contains("unknown value `SUMM` for field `op`"), "{e}");
    assert!(e.contains("d.net:2:5"), "{e}");
    assert!(e.contains("help: did you mean `SUM`?"), "{e}");
    let e = err("phase: TRAINING");
    assert!(e.contains("did you mean `TRAIN`?"), "{e}");
    // Nothing close: the full list.
    let e = err("op: AVERAGE");
    assert!(e.contains("expected one of `PROD`, `SUM`, `MAX`"), "{e}");
}

#[test]
fn enum_names_are_case_sensitive_like_protobuf() {
    let e = err("op: sum");
    assert!(e.contains("did you mean `SUM`?"), "{e}");
}

#[test]
fn a_float_for_an_enum_is_an_error() {
    let e = err("op: 1.0");
    assert!(
        e.contains("field `op` expects an enum value, found number `1.0`"),
        "{e}"
    );
}

// ---- bool ---------------------------------------------------------------

#[test]
fn bool_forms_protobuf_accepts() {
    for (t, v) in [
        ("true", true),
        ("True", true),
        ("t", true),
        ("1", true),
        ("false", false),
        ("False", false),
        ("f", false),
        ("0", false),
    ] {
        assert_eq!(ok(&format!("flag: {t}")).flag, v, "{t}");
    }
}

#[test]
fn bool_errors() {
    let e = err("flag: \"true\"");
    assert!(
        e.contains("field `flag` expects `true` or `false`, found string \"true\""),
        "{e}"
    );
    assert!(e.contains("booleans are not quoted: `flag: true`"), "{e}");
    assert!(err("flag: 2").contains("found number `2`"));
    assert!(err("flag: yes").contains("found identifier `yes`"));
}

// ---- integers -----------------------------------------------------------

#[test]
fn integer_spellings() {
    assert_eq!(ok("offset: -3").offset, -3);
    assert_eq!(ok("offset: 0x1F").offset, 31);
    assert_eq!(ok("offset: -0x10").offset, -16);
    // A leading zero means octal, as protobuf reads it: 017 = 1·8 + 7.
    assert_eq!(ok("offset: 017").offset, 15);
    assert_eq!(ok("offset: 0").offset, 0);
    assert_eq!(ok("big: 9000000000").big, 9_000_000_000);
}

#[test]
fn integer_range_errors() {
    let e = err("count: -1");
    assert!(
        e.contains("field `count` expects a non-negative integer, but -1 is out of range"),
        "{e}"
    );
    assert!(e.contains("d.net:1:8"), "{e}");
    let e = err("small: 256");
    assert!(e.contains("but 256 is out of range"), "{e}");
    let e = err("offset: 3000000000");
    assert!(
        e.contains("field `offset` expects an integer, but 3000000000 is out of range"),
        "{e}"
    );
}

#[test]
fn a_float_or_string_for_an_integer_is_an_error() {
    let e = err("count: 3.5");
    assert!(
        e.contains("field `count` expects a non-negative integer, found number `3.5`"),
        "{e}"
    );
    assert!(err("offset: 1e3").contains("found number `1e3`"));
    assert!(
        err("offset: 09").contains("found number `09`"),
        "09 is not octal"
    );
    let e = err("count: \"64\"");
    assert!(e.contains("found string \"64\""), "{e}");
    assert!(e.contains("numbers are not quoted: `count: 64`"), "{e}");
}

// ---- floats -------------------------------------------------------------

#[test]
fn float_spellings() {
    let f = |t: &str| ok(&format!("precise: {t}")).precise;
    assert_eq!(f("1e-4"), 1e-4);
    assert_eq!(f(".5"), 0.5);
    assert_eq!(f("2."), 2.0);
    assert_eq!(f("1.5f"), 1.5);
    assert_eq!(f("-3"), -3.0);
    assert_eq!(f("0x10"), 16.0);
    // Integer spellings keep their integer meaning: octal 017 = 15.
    assert_eq!(f("017"), 15.0);
    assert_eq!(f("-inf"), f64::NEG_INFINITY);
    assert_eq!(f("inf"), f64::INFINITY);
    assert!(f("nan").is_nan());
    assert_eq!(ok("rate: 0.1").rate, 0.1f32);
}

#[test]
fn float_errors() {
    let e = err("rate: fast");
    assert!(
        e.contains("field `rate` expects a number, found identifier `fast`"),
        "{e}"
    );
    let e = err("rate: \"0.5\"");
    assert!(e.contains("numbers are not quoted: `rate: 0.5`"), "{e}");
}

// ---- strings ------------------------------------------------------------

#[test]
fn an_unquoted_identifier_for_a_string_gets_the_quoted_form() {
    let e = err("name: conv1");
    assert!(
        e.contains("field `name` expects a quoted string, found identifier `conv1`"),
        "{e}"
    );
    assert!(
        e.contains("= help: strings are quoted: `name: \"conv1\"`"),
        "{e}"
    );
    let e = err("name: 3");
    assert!(
        e.contains("expects a quoted string, found number `3`"),
        "{e}"
    );
}

// ---- blocks -------------------------------------------------------------

#[test]
fn a_scalar_where_a_block_is_expected() {
    let e = err("\ninner: 3");
    assert!(
        e.contains("field `inner` is a block, found number `3`"),
        "{e}"
    );
    assert!(e.contains("d.net:2:8"), "{e}");
    assert!(e.contains("write it as `inner { ... }`"), "{e}");
}

#[test]
fn a_block_where_a_scalar_is_expected() {
    let e = err("offset { a: 1 }");
    assert!(
        e.contains("field `offset` expects an integer, found a block"),
        "{e}"
    );
    let e = err("name { }");
    assert!(
        e.contains("field `name` expects a quoted string, found a block"),
        "{e}"
    );
}

#[test]
fn errors_inside_nested_blocks_point_at_the_nested_value() {
    let e = err("inner {\n  a: x\n}");
    assert!(
        e.contains("field `a` expects an integer, found identifier `x`"),
        "{e}"
    );
    assert!(e.contains("d.net:2:6"), "{e}");
}

#[test]
fn unknown_fields_name_the_block_and_suggest() {
    let e = err("nmae: \"x\"");
    assert!(e.contains("unknown field `nmae` in `sample`"), "{e}");
    assert!(e.contains("did you mean `name`?"), "{e}");
    let e = err("inner { b: 1 }");
    assert!(e.contains("unknown field `b` in `inner`"), "{e}");
    assert!(e.contains("expected one of `a`, `s`"), "{e}");
    assert!(e.contains("d.net:1:9"), "{e}");
}

#[test]
fn a_missing_required_field_points_at_the_block() {
    let e = read::<Strict>("other: 1").unwrap_err();
    assert!(e.contains("missing field `needed`"), "{e}");
    assert!(e.contains("d.net:1:1"), "{e}");
}

// ---- real parameter structs ---------------------------------------------

#[test]
fn real_param_blocks_read_through_the_same_rules() {
    let c: ConvolutionParams =
        read("num_output: 0x20 kernel_size: [3, 5] group: 2 bias_term: false engine: 2").unwrap();
    assert_eq!(c.num_output, Some(32));
    assert_eq!(c.kernel_size, [3, 5]);
    assert_eq!(c.group, 2);
    assert!(!c.bias_term);
    let e: EltwiseParams = read("operation: 0 coeff: 1 coeff: -1").unwrap();
    assert_eq!(e.operation, EltwiseOp::Prod);
    assert_eq!(e.coeff, [1.0, -1.0]);
    let r: NetStateRule = read("phase: TEST stage: \"a\" stage: \"b\" min_level: -1").unwrap();
    assert_eq!(r.phase, Some(Phase::Test));
    assert_eq!(r.stage, ["a", "b"]);
    assert_eq!(r.min_level, Some(-1));
}
