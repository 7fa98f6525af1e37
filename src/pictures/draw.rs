//! `netrun draw NET -o net.dot|net.svg`: the layer graph of one phase as
//! Graphviz DOT, or rendered by Graphviz's `dot` program (`.svg`, `.png`, `.pdf`).
//!
//! Layers are boxes labelled with their name and type, coloured by kind
//! (data, learnable, loss, accuracy, other); blobs are ellipses labelled with
//! their name, one per layer top. An in-place layer (top named as its bottom
//! at the same index) gets no ellipse of its own: it hangs below the blob it
//! rewrites, and the layers that read the blob afterwards are joined to it by
//! edges labelled with the blob's name. The layers drawn are those the
//! phase's include/exclude rules keep; nothing is built, so a net whose data
//! is not on this machine draws all the same.

use crate::error::{Error, Result};
use crate::graph::filter::filter;
use crate::netdef::{LayerDef, NetDef, Phase};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// `netrun draw` arguments.
#[derive(Debug, Clone)]
pub struct DrawOptions {
    /// A net file (`.net`, `.prototxt`).
    pub net: PathBuf,
    /// `.dot` (or `.gv`) for Graphviz source; `.svg`, `.png` or `.pdf` are rendered by `dot`.
    pub output: PathBuf,
    /// Which phase's layers to draw: TRAIN or TEST.
    pub phase: Phase,
    /// Direction of the flow: TB (top to bottom) or LR (left to right; wide nets read better).
    pub rankdir: String,
}

/// A DOT string literal.
fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Fill colour of a layer box by its kind.
fn fill(type_name: &str) -> &'static str {
    match type_name {
        t if t.ends_with("Data") || t == "Input" => "#d5ecd4",
        t if t.ends_with("Loss") => "#f8d0cf",
        "Accuracy" => "#fff2cc",
        "Convolution"
        | "Deconvolution"
        | "InnerProduct"
        | "MarginInnerProduct"
        | "CombinedMarginInnerProduct"
        | "PReLU"
        | "BatchNorm"
        | "Scale"
        | "Bias" => "#cfe2f3",
        _ => "#eeeeee",
    }
}

/// Where the current value of a blob comes from.
#[derive(Clone)]
enum Current {
    /// The ellipse node of the blob.
    Ellipse(String),
    /// The in-place layer that rewrote it last.
    InPlace(String),
}

/// The layers of `net` that run in `phase` (the file's state with that phase).
pub fn phase_layers(net: &NetDef, phase: Phase) -> Vec<LayerDef> {
    let mut state = net.state.clone();
    state.phase = phase;
    filter(net, &state)
}

/// The DOT text of the layers of `net` that run in `phase`, flowing `rankdir` (`TB`, `LR`, ...).
pub fn dot(net: &NetDef, phase: Phase, rankdir: &str) -> String {
    let layers = phase_layers(net, phase);
    let title = if net.name.is_empty() {
        format!("{phase}")
    } else {
        format!("{} ({phase})", net.name)
    };
    let mut out = String::new();
    let _ = writeln!(out, "digraph {} {{", quote(&title));
    let _ = writeln!(
        out,
        "  graph [rankdir={rankdir}, label={}, labelloc=t, fontsize=18, fontname=\"Helvetica\"];",
        quote(&title)
    );
    let _ = writeln!(out, "  node [fontname=\"Helvetica\", fontsize=11];");
    let _ = writeln!(
        out,
        "  edge [fontname=\"Helvetica\", fontsize=9, color=\"#555555\", fontcolor=\"#555555\"];"
    );
    let mut current: HashMap<String, Current> = HashMap::new();
    let mut ellipses = 0usize;
    let mut ellipse = |out: &mut String, name: &str, style: &str| {
        let id = format!("b{ellipses}");
        ellipses += 1;
        let _ = writeln!(
            out,
            "  {id} [shape=ellipse, style={}, fillcolor=\"#f7f7f7\", label={}];",
            quote(style),
            quote(name)
        );
        id
    };
    for (i, layer) in layers.iter().enumerate() {
        let id = format!("l{i}");
        let in_place = |t: usize| layer.bottom.get(t) == layer.top.get(t);
        let any_in_place = (0..layer.top.len()).any(in_place);
        let label = format!(
            "{}\n{}{}",
            layer.name,
            layer.type_name,
            if any_in_place { " (in place)" } else { "" }
        );
        let _ = writeln!(
            out,
            "  {id} [shape=box, style=\"rounded,filled\", fillcolor=\"{}\", label={}];",
            fill(&layer.type_name),
            quote(&label)
        );
        for name in &layer.bottom {
            let from = match current.get(name) {
                Some(c) => c.clone(),
                // Read but never written: drawn dashed, so the gap shows.
                None => {
                    let e = ellipse(&mut out, name, "filled,dashed");
                    current.insert(name.clone(), Current::Ellipse(e.clone()));
                    Current::Ellipse(e)
                }
            };
            match from {
                Current::Ellipse(e) => {
                    let _ = writeln!(out, "  {e} -> {id};");
                }
                Current::InPlace(l) => {
                    let _ = writeln!(out, "  {l} -> {id} [label={}];", quote(name));
                }
            }
        }
        for (t, name) in layer.top.iter().enumerate() {
            if in_place(t) {
                current.insert(name.clone(), Current::InPlace(id.clone()));
            } else {
                let e = ellipse(&mut out, name, "filled");
                let _ = writeln!(out, "  {id} -> {e};");
                current.insert(name.clone(), Current::Ellipse(e));
            }
        }
    }
    out.push_str("}\n");
    out
}

/// What `dot -T<format>` is asked for, or `None` for DOT text.
fn render_format(path: &Path) -> Result<Option<&'static str>> {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    match ext.as_deref() {
        Some("dot") | Some("gv") => Ok(None),
        Some("svg") => Ok(Some("svg")),
        Some("png") => Ok(Some("png")),
        Some("pdf") => Ok(Some("pdf")),
        _ => Err(Error::Other(format!(
            "cannot tell the format of `{}`: name it `.dot` (Graphviz source), \
             or `.svg`, `.png` or `.pdf` (rendered by Graphviz's `dot`)",
            path.display()
        ))),
    }
}

/// Renders DOT text with Graphviz's `dot`.
fn run_dot(text: &str, format: &str, output: &Path) -> Result<Vec<u8>> {
    let spawned = Command::new("dot")
        .arg(format!("-T{format}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::Other(format!(
                "cannot write `{}`: Graphviz's `dot` program is not installed (not found on PATH); \
                 install Graphviz (e.g. `apt-get install graphviz`), or write the DOT source \
                 with `-o {}` and render it elsewhere",
                output.display(),
                output.with_extension("dot").display()
            )))
        }
        Err(e) => return Err(Error::Other(format!("cannot run `dot`: {e}"))),
    };
    // `dot` reads all its input before writing: no deadlock on full pipes.
    // A `dot` that stops early closes the pipe; its own message says why.
    let fed = match child.stdin.take() {
        Some(mut stdin) => stdin.write_all(text.as_bytes()),
        None => Ok(()),
    };
    let done = child
        .wait_with_output()
        .map_err(|e| Error::Other(format!("cannot run `dot`: {e}")))?;
    if !done.status.success() {
        return Err(Error::Other(format!(
            "`dot -T{format}` failed ({}): {}",
            done.status,
            String::from_utf8_lossy(&done.stderr).trim()
        )));
    }
    fed.map_err(|e| Error::Other(format!("cannot feed `dot`: {e}")))?;
    Ok(done.stdout)
}

/// Runs `netrun draw`; returns the report.
pub fn run(args: &DrawOptions) -> Result<String> {
    let format = render_format(&args.output)?;
    let net = crate::netdef::read_net_file(&args.net)?;
    let text = dot(&net, args.phase, &args.rankdir);
    let bytes = match format {
        None => text.into_bytes(),
        Some(f) => run_dot(&text, f, &args.output)?,
    };
    std::fs::write(&args.output, bytes)
        .map_err(|e| Error::Other(format!("cannot write `{}`: {e}", args.output.display())))?;
    Ok(format!(
        "Wrote {} ({} layers of the {} net)",
        args.output.display(),
        phase_layers(&net, args.phase).len(),
        args.phase
    ))
}
