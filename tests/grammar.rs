//! The text-format grammar (`grammar/netrun.pest`) seen through the parsed tree:
//! one group per rule, plus the file-level quirks real configs have (CRLF, a
//! BOM, trailing spaces, a comment on the last line). Spans are checked as
//! `line:col` through `SourceFile::line_col`.

use netrun::proto::{parse_str, Block, Document, Field, Scalar, Value};

fn parse(text: &str) -> Document {
    match parse_str("g.net", text) {
        Ok(d) => d,
        Err(e) => panic!("failed to parse:\n{text}\n{e}"),
    }
}

fn syntax_error(text: &str) -> String {
    match parse_str("g.net", text) {
        Ok(d) => panic!("parsed but should not have:\n{text}\n{:?}", d.root),
        Err(e) => e.to_string(),
    }
}

fn scalar(f: &Field) -> &Scalar {
    match &f.value {
        Value::Scalar(s) => s,
        Value::Block(_) => panic!("field `{}` is a block", f.name),
    }
}

fn block(f: &Field) -> &Block {
    match &f.value {
        Value::Block(b) => b,
        Value::Scalar(s) => panic!("field `{}` is a scalar {s:?}", f.name),
    }
}

/// The single scalar of `name: <value>`.
fn value_of(text: &str) -> Scalar {
    let doc = parse(&format!("v: {text}\n"));
    assert_eq!(doc.root.fields.len(), 1, "{text}");
    scalar(&doc.root.fields[0]).clone()
}

fn string(text: &str) -> String {
    match value_of(text) {
        Scalar::Str(s) => s,
        other => panic!("{text} parsed as {other:?}"),
    }
}

fn number(text: &str) -> String {
    match value_of(text) {
        Scalar::Number(n) => n,
        other => panic!("{text} parsed as {other:?}"),
    }
}

fn ident(text: &str) -> String {
    match value_of(text) {
        Scalar::Ident(i) => i,
        other => panic!("{text} parsed as {other:?}"),
    }
}

fn line_col(doc: &Document, offset: usize) -> (usize, usize) {
    doc.source.line_col(offset)
}

// ---- file / field -------------------------------------------------------

#[test]
fn empty_and_comment_only_files_parse() {
    assert!(parse("").root.fields.is_empty());
    assert!(parse("   \n\t\n").root.fields.is_empty());
    assert!(parse("# nothing here\n# at all").root.fields.is_empty());
}

#[test]
fn fields_keep_file_order_names_and_spans() {
    let doc = parse("name: \"n\"\nbatch_size: 256\n  phase: TRAIN\n");
    let names: Vec<&str> = doc.root.fields.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["name", "batch_size", "phase"]);
    let f = &doc.root.fields[2];
    assert_eq!(line_col(&doc, f.name_span.start), (3, 3));
    assert_eq!(line_col(&doc, f.value_span.start), (3, 10));
    assert_eq!(
        &doc.source.text[f.name_span.start..f.name_span.end],
        "phase"
    );
    assert_eq!(
        &doc.source.text[f.value_span.start..f.value_span.end],
        "TRAIN"
    );
}

#[test]
fn fields_may_share_a_line_without_separators() {
    let doc = parse("a: 1 b: 2 c { d: 3 } e: \"x\"");
    let names: Vec<&str> = doc.root.fields.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "c", "e"]);
}

#[test]
fn field_names_are_protobuf_identifiers() {
    let doc = parse("_x: 1 a_1_b: 2 ABC: 3");
    let names: Vec<&str> = doc.root.fields.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["_x", "a_1_b", "ABC"]);
    let e = syntax_error("1abc: 2");
    assert!(e.contains("g.net:1:1"), "{e}");
}

// ---- separator ----------------------------------------------------------

#[test]
fn comma_and_semicolon_separators_are_optional() {
    let doc = parse("a: 1, b: 2; c { d: 3; e: 4, }, f: 5;");
    let names: Vec<&str> = doc.root.fields.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "c", "f"]);
    assert_eq!(block(&doc.root.fields[2]).fields.len(), 2);
}

#[test]
fn a_separator_needs_a_field_before_it() {
    let e = syntax_error("a: 1,, b: 2");
    assert!(e.contains("g.net:1:6"), "{e}");
}

// ---- block --------------------------------------------------------------

#[test]
fn blocks_with_and_without_colon_and_angle_brackets() {
    let doc = parse("p { a: 1 }\nq: { b: 2 }\nr < c: 3 >\ns: < d { e: 4 } >\n");
    let inner: Vec<(&str, &str)> = doc
        .root
        .fields
        .iter()
        .map(|f| (f.name.as_str(), block(f).fields[0].name.as_str()))
        .collect();
    assert_eq!(inner, [("p", "a"), ("q", "b"), ("r", "c"), ("s", "d")]);
    let nested = block(&block(&doc.root.fields[3]).fields[0]);
    assert_eq!(scalar(&nested.fields[0]), &Scalar::Number("4".into()));
}

#[test]
fn block_span_covers_braces() {
    let doc = parse("layer {\n  name: \"a\"\n}\n");
    let b = block(&doc.root.fields[0]);
    assert_eq!(
        &doc.source.text[b.span.start..b.span.end],
        "{\n  name: \"a\"\n}"
    );
    assert_eq!(line_col(&doc, b.fields[0].name_span.start), (2, 3));
}

#[test]
fn empty_blocks_parse() {
    let doc = parse("a {} b: {} c <>");
    assert!(doc.root.fields.iter().all(|f| block(f).fields.is_empty()));
}

#[test]
fn brackets_must_match() {
    let e = syntax_error("a { b: 1 >");
    assert!(e.contains("g.net:1:10"), "{e}");
    let e = syntax_error("a < b: 1 }");
    assert!(e.contains("g.net:1:10"), "{e}");
}

// ---- list ---------------------------------------------------------------

#[test]
fn lists_become_repeated_fields_with_own_value_spans() {
    let doc = parse("dim: [1, 2, 3]\ndim: 4\n");
    let values: Vec<Scalar> = doc.root.all("dim").map(|f| scalar(f).clone()).collect();
    let n = |s: &str| Scalar::Number(s.into());
    assert_eq!(values, [n("1"), n("2"), n("3"), n("4")]);
    let cols: Vec<(usize, usize)> = doc
        .root
        .all("dim")
        .map(|f| line_col(&doc, f.value_span.start))
        .collect();
    assert_eq!(cols, [(1, 7), (1, 10), (1, 13), (2, 6)]);
    // All list items point back at the one field name.
    assert!(doc.root.all("dim").take(3).all(|f| f.name_span.start == 0));
}

#[test]
fn lists_mix_scalar_kinds_and_may_be_empty() {
    let doc = parse("s: [\"a\", 'b', MAX, -1.5]\ne: []\n");
    let values: Vec<Scalar> = doc.root.all("s").map(|f| scalar(f).clone()).collect();
    assert_eq!(
        values,
        [
            Scalar::Str("a".into()),
            Scalar::Str("b".into()),
            Scalar::Ident("MAX".into()),
            Scalar::Number("-1.5".into()),
        ]
    );
    assert_eq!(doc.root.all("e").count(), 0);
}

#[test]
fn a_list_needs_commas_and_no_trailing_comma() {
    syntax_error("d: [1 2]");
    syntax_error("d: [1, 2,]");
}

// ---- COMMENT ------------------------------------------------------------

#[test]
fn comments_run_to_end_of_line_anywhere() {
    let doc = parse("# header\na: 1 # trailing\nb { # open\n  c: 2 # inner\n} # close\n");
    assert_eq!(doc.root.fields.len(), 2);
    assert_eq!(block(&doc.root.fields[1]).fields.len(), 1);
}

#[test]
fn a_comment_may_end_the_file_without_newline() {
    let doc = parse("a: 1\n# last line, no newline");
    assert_eq!(doc.root.fields.len(), 1);
    let doc = parse("a: 1 # same line, no newline");
    assert_eq!(doc.root.fields.len(), 1);
}

#[test]
fn a_hash_inside_a_string_is_not_a_comment() {
    assert_eq!(string("\"a#b\""), "a#b");
}

// ---- string / quoted / dq_inner / sq_inner / escape ----------------------

#[test]
fn double_and_single_quoted_strings() {
    assert_eq!(string("\"conv1\""), "conv1");
    assert_eq!(string("'conv1'"), "conv1");
    assert_eq!(string("\"it's\""), "it's");
    assert_eq!(string("'say \"hi\"'"), "say \"hi\"");
    assert_eq!(string("\"\""), "");
}

#[test]
fn strings_keep_plus_and_other_punctuation() {
    assert_eq!(string("\"res2_1+res2_2\""), "res2_1+res2_2");
    assert_eq!(string("\"a/b.c-d:e{f}\""), "a/b.c-d:e{f}");
    assert_eq!(string("\"é\u{4e2d}\""), "é\u{4e2d}");
}

#[test]
fn escapes_are_decoded() {
    assert_eq!(string(r#""a\nb""#), "a\nb");
    assert_eq!(string(r#""tab\there""#), "tab\there");
    assert_eq!(string(r#""q\"q""#), "q\"q");
    assert_eq!(string(r#"'q\'q'"#), "q'q");
    assert_eq!(string(r#""back\\slash""#), "back\\slash");
    assert_eq!(string(r#""\x41\x42""#), "AB");
    assert_eq!(string(r#""\101\102""#), "AB");
    // Octal takes at most three digits; hex at most two.
    assert_eq!(string(r#""\1011""#), "A1");
    assert_eq!(string(r#""\x414""#), "A4");
    // Multi-byte UTF-8 written as escaped bytes.
    assert_eq!(string(r#""\303\251""#), "é");
}

#[test]
fn bad_escapes_are_located() {
    let e = syntax_error("v: \"ab\\qc\"");
    assert!(e.contains("unknown escape `\\q`"), "{e}");
    assert!(e.contains("g.net:1:7"), "{e}");
    let e = syntax_error("v: \"\\xZZ\"");
    assert!(e.contains("`\\x` needs hex digits"), "{e}");
    let e = syntax_error("v: \"\\377\"");
    assert!(e.contains("valid UTF-8"), "{e}");
}

#[test]
fn adjacent_strings_concatenate() {
    assert_eq!(string("\"ab\" \"cd\""), "abcd");
    assert_eq!(string("\"ab\"\n  'cd' \"e\""), "abcde");
    let doc = parse("v: \"a\" # split\n \"b\"\nw: 1");
    assert_eq!(scalar(&doc.root.fields[0]), &Scalar::Str("ab".into()));
    assert_eq!(doc.root.fields[1].name, "w");
}

#[test]
fn strings_do_not_span_lines() {
    let e = syntax_error("v: \"abc\nw: 1\n");
    assert!(e.contains("g.net:1:"), "{e}");
}

// ---- number -------------------------------------------------------------

#[test]
fn integers_keep_their_text() {
    for t in ["0", "7", "-3", "256", "0x1F", "0X1f", "-0x10", "017"] {
        assert_eq!(number(t), t);
    }
}

#[test]
fn floats_in_every_protobuf_spelling() {
    for t in [
        "1.5", "1e-4", "1E+4", ".5", "2.", "1.5f", "2F", "-0.25", "3.e2", "-.5e-3f",
    ] {
        assert_eq!(number(t), t);
    }
}

#[test]
fn a_number_must_end_at_a_word_boundary() {
    // `3x`, `0x1G`, `1.5ff` are neither numbers nor identifiers.
    for t in ["3x", "0x1G", "1.5ff", "12abc"] {
        syntax_error(&format!("v: {t}"));
    }
}

// ---- ident --------------------------------------------------------------

#[test]
fn identifiers_for_enums_bools_and_special_floats() {
    for t in [
        "MAX", "TRAIN", "true", "false", "inf", "-inf", "nan", "SUM_2", "_x",
    ] {
        assert_eq!(ident(t), t);
    }
}

// ---- WHITESPACE: trailing spaces, CRLF, BOM, tabs ------------------------

#[test]
fn trailing_spaces_and_tabs_are_ignored() {
    let doc = parse("batch_size: 256 \n\tphase:\tTRAIN\t\t\n");
    assert_eq!(scalar(&doc.root.fields[0]), &Scalar::Number("256".into()));
    assert_eq!(scalar(&doc.root.fields[1]), &Scalar::Ident("TRAIN".into()));
}

#[test]
fn crlf_line_endings() {
    let text = "layer {\r\n  name: \"a\" # c\r\n  top: \"x\"\r\n}\r\n";
    let doc = parse(text);
    let b = block(&doc.root.fields[0]);
    assert_eq!(scalar(&b.fields[0]), &Scalar::Str("a".into()));
    assert_eq!(line_col(&doc, b.fields[1].name_span.start), (3, 3));
    assert_eq!(doc.source.line_text(2), "  name: \"a\" # c");
}

#[test]
fn a_utf8_bom_is_skipped_and_does_not_shift_columns() {
    let doc = parse("\u{FEFF}name: \"n\"\nx: 1\n");
    assert_eq!(doc.root.fields[0].name, "name");
    assert_eq!(line_col(&doc, doc.root.fields[0].name_span.start), (1, 1));
    assert_eq!(line_col(&doc, doc.root.fields[0].value_span.start), (1, 7));
    assert_eq!(doc.source.line_text(1), "name: \"n\"");
}

#[test]
fn columns_count_characters_not_bytes() {
    let doc = parse("a: \"é\" b: 1");
    assert_eq!(line_col(&doc, doc.root.fields[1].name_span.start), (1, 8));
}

// ---- syntax errors name what was expected -------------------------------

#[test]
fn syntax_errors_point_at_the_first_bad_character() {
    let e = syntax_error("layer {\n  name \"a\"\n}\n");
    assert!(e.contains("g.net:2:8"), "{e}");
    let e = syntax_error("a: 1\n}\n");
    assert!(e.contains("g.net:2:1"), "{e}");
    assert!(e.contains("closes no block"), "{e}");
    let e = syntax_error("a: 1 b 2");
    assert!(
        e.contains("expected `:` or `{` after `b`, found `2`"),
        "{e}"
    );
    let e = syntax_error("layer { name: \"a\" 3 }");
    assert!(e.contains("expected a field name or `}`, found `3`"), "{e}");
}

#[test]
fn an_unclosed_block_points_at_its_brace() {
    let e = syntax_error("layer {\n  name: \"a\"\n");
    assert!(
        e.contains("the file ends inside this `layer {` block"),
        "{e}"
    );
    assert!(e.contains("g.net:1:7"), "{e}");
    assert!(e.contains("add the missing `}`"), "{e}");
    // Braces in strings and comments do not count.
    let e = syntax_error("a { s: \"}\" # }\n");
    assert!(e.contains("g.net:1:3"), "{e}");
    let e = syntax_error("a {\n  b {\n    c: 1\n}\n");
    assert!(
        e.contains("the `b {` on line 2 is the one missing its `}`"),
        "{e}"
    );
}

#[test]
fn an_unclosed_string_is_named_as_such() {
    let e = syntax_error("a: 1\nname: 'conv1\nb: 2\n");
    assert!(e.contains("this string is not closed"), "{e}");
    assert!(e.contains("g.net:2:7"), "{e}");
    assert!(e.contains("with a matching `'`"), "{e}");
}

#[test]
fn a_field_without_value_is_found_before_the_next_name() {
    let e = syntax_error("p {\n  kernel_size:\n  stride: 2\n}");
    assert!(e.contains("`kernel_size:` has no value"), "{e}");
    assert!(e.contains("g.net:2:3"), "{e}");
    assert!(
        e.contains("`stride` on line 3 was read as its value"),
        "{e}"
    );
}
