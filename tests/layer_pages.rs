//! The layer reference pages in `layers/` stay in step with the code: every
//! registered type has a page named after its module and every page belongs to a
//! type; every module that builds a layer is registered; and each page's parameter
//! tables list exactly the fields of the blocks the type reads, as the code's
//! structs declare them (found through `layers::param_fields`, not a list kept here).

use netrun::layers::filler::FillerParams;
use netrun::layers::{param_fields, REGISTRY};
use netrun::proto::de::from_block;
use netrun::proto::{parse_str, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Pages that document no single layer type.
const SHARED_PAGES: &[&str] = &["README", "filler", "recurrent"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Module stems declared `pub mod` in src/layers/mod.rs.
fn declared_modules() -> Vec<String> {
    declared_with("pub mod ")
}

/// Module stems declared in src/layers/mod.rs by lines starting with `prefix`.
fn declared_with(prefix: &str) -> Vec<String> {
    read(&root().join("src/layers/mod.rs"))
        .lines()
        .filter_map(|l| l.trim().strip_prefix(prefix))
        .map(|m| m.trim_end_matches(';').to_string())
        .collect()
}

/// The source of module `stem`: `<stem>.rs` or `<stem>/mod.rs`.
fn module_source(stem: &str) -> String {
    let dir = root().join("src/layers");
    let file = dir.join(format!("{stem}.rs"));
    if file.exists() {
        read(&file)
    } else {
        read(&dir.join(stem).join("mod.rs"))
    }
}

/// The string literal returned by the module's `fn type_name`.
fn type_name_in(source: &str) -> Option<String> {
    let at = source.find("fn type_name(&self) -> &'static str")?;
    let rest = &source[at..];
    let open = rest.find('"')? + 1;
    let close = rest[open..].find('"')? + open;
    Some(rest[open..close].to_string())
}

/// Layer modules (those defining `pub fn build`): type name → module stem.
fn layer_modules() -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for stem in declared_modules() {
        let source = module_source(&stem);
        if !source.contains("pub fn build(") {
            continue;
        }
        let name = type_name_in(&source)
            .unwrap_or_else(|| panic!("module `{stem}` has a `build` but no `fn type_name`"));
        if let Some(other) = map.insert(name.clone(), stem.clone()) {
            panic!("modules `{other}` and `{stem}` both build `{name}`");
        }
    }
    map
}

fn page_path(stem: &str) -> PathBuf {
    root().join("layers").join(format!("{stem}.md"))
}

/// Page stems in layers/.
fn pages() -> BTreeSet<String> {
    std::fs::read_dir(root().join("layers"))
        .expect("layers/ exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect()
}

/// The `### \`block\`` tables of the page's `## Parameters` section: block → field
/// names from the first column, in page order.
fn parameter_tables(page: &str) -> BTreeMap<String, Vec<String>> {
    let mut tables: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut in_params = false;
    let mut block: Option<String> = None;
    for line in page.lines() {
        if let Some(h) = line.strip_prefix("## ") {
            in_params = h.trim() == "Parameters";
            block = None;
            continue;
        }
        if !in_params {
            continue;
        }
        if let Some(h) = line.strip_prefix("### ") {
            let name = h.trim().trim_matches('`').to_string();
            tables.entry(name.clone()).or_default();
            block = Some(name);
            continue;
        }
        let (Some(b), Some(row)) = (&block, line.strip_prefix('|')) else {
            continue;
        };
        let first = row.split('|').next().unwrap_or("").trim();
        if first == "field" || first.starts_with("---") {
            continue;
        }
        tables
            .get_mut(b)
            .unwrap()
            .push(first.trim_matches('`').to_string());
    }
    tables
}

/// Differences between documented and declared fields, as readable lines.
fn compare(what: &str, documented: &[String], declared: &[&str]) -> Vec<String> {
    let doc: BTreeSet<&str> = documented.iter().map(String::as_str).collect();
    let dec: BTreeSet<&str> = declared.iter().copied().collect();
    let mut out = Vec::new();
    for f in dec.difference(&doc) {
        out.push(format!("{what}: field `{f}` is not documented"));
    }
    for f in doc.difference(&dec) {
        out.push(format!(
            "{what}: documents `{f}`, which the code does not have"
        ));
    }
    if doc.len() != documented.len() {
        out.push(format!("{what}: a field is documented twice"));
    }
    out
}

#[test]
fn every_layer_module_is_registered_and_every_registered_type_has_a_module() {
    let modules = layer_modules();
    let registered: BTreeSet<&str> = REGISTRY.iter().map(|t| t.name).collect();
    let unregistered: Vec<_> = modules
        .iter()
        .filter(|(name, _)| !registered.contains(name.as_str()))
        .map(|(name, stem)| format!("{name} (src/layers/{stem})"))
        .collect();
    assert!(
        unregistered.is_empty(),
        "layer modules missing from REGISTRY: {unregistered:?}"
    );
    let orphans: Vec<_> = registered
        .iter()
        .filter(|n| !modules.contains_key(**n))
        .collect();
    assert!(
        orphans.is_empty(),
        "registered types without a module: {orphans:?}"
    );
}

#[test]
fn every_file_under_src_layers_is_a_declared_module() {
    // Private modules of the layers' core (the registry) are declared `mod x;`.
    let declared: BTreeSet<String> = (declared_modules().into_iter())
        .chain(declared_with("mod "))
        .collect();
    let mut stray = Vec::new();
    for entry in std::fs::read_dir(root().join("src/layers")).unwrap() {
        let path = entry.unwrap().path();
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        let is_module = path.is_dir() || path.extension().is_some_and(|e| e == "rs");
        if is_module && stem != "mod" && !declared.contains(&stem) {
            stray.push(stem);
        }
    }
    assert!(
        stray.is_empty(),
        "files under src/layers that mod.rs never declares (dead code): {stray:?}"
    );
}

#[test]
fn every_type_has_a_page_and_every_page_a_type() {
    let modules = layer_modules();
    let pages = pages();
    let mut problems = Vec::new();
    for t in REGISTRY {
        match modules.get(t.name) {
            Some(stem) if !pages.contains(stem) => {
                problems.push(format!("{} has no page layers/{stem}.md", t.name))
            }
            _ => {}
        }
    }
    let stems: BTreeSet<&str> = modules.values().map(String::as_str).collect();
    for p in &pages {
        if !stems.contains(p.as_str()) && !SHARED_PAGES.contains(&p.as_str()) {
            problems.push(format!("layers/{p}.md documents no registered type"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn pages_are_titled_with_their_type_and_listed_in_the_index() {
    let index = read(&page_path("README"));
    let mut problems = Vec::new();
    for (name, stem) in layer_modules() {
        // A missing page is reported by `every_type_has_a_page_and_every_page_a_type`.
        let Ok(page) = std::fs::read_to_string(page_path(&stem)) else {
            continue;
        };
        if page.lines().next() != Some(&format!("# {name}")) {
            problems.push(format!("layers/{stem}.md does not start with `# {name}`"));
        }
        let row = format!("| {name} |");
        let link = format!("]({stem}.md)");
        if !index
            .lines()
            .any(|l| l.starts_with(&row) && l.contains(&link))
        {
            problems.push(format!("layers/README.md has no row `{row} ... {link}`"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn parameter_tables_match_the_param_structs() {
    let modules = layer_modules();
    let mut problems = Vec::new();
    for t in REGISTRY {
        let Some(stem) = modules.get(t.name) else {
            continue;
        };
        let Ok(page) = std::fs::read_to_string(page_path(stem)) else {
            continue;
        };
        let tables = parameter_tables(&page);
        let fields = param_fields(t.name).expect("a registered type");
        for (block, declared) in &fields {
            let Some(declared) = declared else {
                problems.push(format!(
                    "{}: REGISTRY lists `{block}` but its constructor never reads it",
                    t.name
                ));
                continue;
            };
            match tables.get(*block) {
                None => problems.push(format!(
                    "layers/{stem}.md has no `### \\`{block}\\`` table under `## Parameters`"
                )),
                Some(documented) => problems.extend(compare(
                    &format!("layers/{stem}.md `{block}`"),
                    documented,
                    declared,
                )),
            }
        }
        for block in tables.keys() {
            if !fields.iter().any(|(b, _)| b == block) {
                problems.push(format!(
                    "layers/{stem}.md documents `{block}`, which {} does not read",
                    t.name
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The probe error of `block { netrun_probe: 0 }` deserialized as `T`.
fn probe<T: for<'de> serde::Deserialize<'de> + std::fmt::Debug>(
    block: &str,
) -> netrun::proto::de::DeError {
    let doc = parse_str("probe", &format!("{block} {{ netrun_probe: 0 }}")).unwrap();
    let Value::Block(b) = &doc.root.fields[0].value else {
        panic!("a block")
    };
    from_block::<T>(b, block).expect_err("an unknown field is rejected")
}

#[test]
fn filler_page_matches_filler_params() {
    let expected = probe::<FillerParams>("weight_filler")
        .expected
        .expect("unknown_field carries the field list");
    let tables = parameter_tables(&read(&page_path("filler")));
    let documented = tables.get("*_filler").expect("a `*_filler` table");
    let problems = compare("layers/filler.md", documented, expected);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// The library support the checks above rely on.

#[test]
fn unknown_field_errors_carry_the_full_field_list_and_others_none() {
    let e = probe::<FillerParams>("weight_filler");
    assert_eq!(
        e.expected.unwrap(),
        [
            "type",
            "value",
            "min",
            "max",
            "mean",
            "std",
            "sparse",
            "variance_norm",
            "alpha"
        ]
    );
    assert!(e.message.contains("unknown field `netrun_probe`"), "{e}");
    let doc = parse_str("f", "weight_filler { std: \"x\" }").unwrap();
    let Value::Block(b) = &doc.root.fields[0].value else {
        panic!("a block")
    };
    let e = from_block::<FillerParams>(b, "weight_filler").unwrap_err();
    assert!(e.expected.is_none(), "a type error lists no fields: {e}");
}

#[test]
fn layer_errors_keep_the_field_list() {
    let net = netrun::netdef::parse_net_str(
        "t.net",
        "layer { name: \"p\" type: \"Pooling\" pooling_param { kernal_size: 2 } }",
    )
    .unwrap();
    let d = net.layers[0]
        .params::<netrun::layers::pooling::PoolingParams>("pooling_param")
        .unwrap_err();
    assert!(d.help.as_deref().unwrap().contains("`kernel_size`"));
    assert!(d.expected.unwrap().contains(&"kernel_size"));
    assert!(d.expected.unwrap().contains(&"round_mode"));
}

#[test]
fn param_fields_probes_each_block_in_registry_order() {
    let fields = param_fields("SoftmaxWithLoss").unwrap();
    let blocks: Vec<&str> = fields.iter().map(|(b, _)| *b).collect();
    assert_eq!(blocks, ["softmax_param", "loss_param"]);
    assert_eq!(fields[0].1.unwrap(), ["engine", "axis", "normalize_type"]);
    assert_eq!(
        fields[1].1.unwrap(),
        ["ignore_label", "normalization", "normalize"]
    );
    // Data reads two blocks; the probe in the second is found after the first is read.
    let data = param_fields("Data").unwrap();
    assert!(data[1].1.unwrap().contains(&"mean_value"));
    assert!(data[0].1.unwrap().contains(&"prefetch"));
    assert!(param_fields("Split").unwrap().is_empty());
    assert!(param_fields("Convolutoin").is_none());
}
