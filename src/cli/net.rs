//! `netrun check`, `time` and `forward`: commands that build one net.

use super::{Env, PhaseArg};
use netrun::graph::{BuildOptions, Graph};
use netrun::netdef;
use netrun::proto::{self, Document};
use netrun::solverdef::{self, NetSpec, SolverDef};
use netrun::source::SourceFile;
use netrun::{Diagnostic, Error};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Options shared by commands that build a net.
#[derive(clap::Args)]
pub struct NetArgs {
    /// Which phase's layers to build (net files; a solver gives each of its nets its phase).
    #[arg(long, value_enum, default_value = "TRAIN")]
    phase: PhaseArg,
    /// Per-sample shape of a data layer's top whose source cannot be read, e.g. `data=3,112,96`.
    #[arg(long = "input-shape", value_name = "TOP=C,H,W", value_parser = parse_input_shape)]
    input_shape: Vec<(String, Vec<usize>)>,
    /// Replaces the batch size of data and input layers.
    #[arg(long, value_name = "N")]
    batch: Option<usize>,
}

#[derive(clap::Args)]
pub struct CheckArgs {
    /// A net (`.net`, `.prototxt`) or a solver file.
    file: PathBuf,
    #[command(flatten)]
    net: NetArgs,
}

#[derive(clap::Args)]
pub struct TimeArgs {
    /// A net file (`.net`, `.prototxt`).
    file: PathBuf,
    #[command(flatten)]
    net: NetArgs,
    /// Timed iterations (after one warm-up; two with --forward-only, whose second keeps the weights in each layer's own layout).
    #[arg(long, default_value_t = 10)]
    iterations: usize,
    /// Time the forward pass only.
    #[arg(long)]
    forward_only: bool,
    /// Time the data layers instead: `--iterations` batches of each, read and
    /// decoded from its source, in ms per batch and images per second.
    #[arg(long, conflicts_with_all = ["forward_only", "gpu"])]
    data: bool,
    /// Run on GPU N (layers without a device path are marked as CPU fallbacks).
    #[arg(long, value_name = "N")]
    gpu: Option<usize>,
}

#[derive(clap::Args)]
pub struct ForwardArgs {
    /// A net file (`.net`, `.prototxt`).
    file: PathBuf,
    /// Learnable blobs, named `<layer>.<index>` (safetensors), or a `.caffemodel`;
    /// without it the net's fillers give them (seeded).
    #[arg(long, value_name = "W.safetensors")]
    weights: Option<PathBuf>,
    /// One tensor per Input-layer top, named like the top; its shape replaces the file's.
    #[arg(long, value_name = "X.safetensors")]
    inputs: PathBuf,
    /// Diffs for net outputs that are not loss tops, by blob name.
    #[arg(long = "top-diff", value_name = "D.safetensors", requires = "backward")]
    top_diff: Option<PathBuf>,
    /// Run backward too (as with `force_backward: true`).
    #[arg(long)]
    backward: bool,
    #[arg(long, value_enum, default_value = "TRAIN")]
    phase: PhaseArg,
    /// Where to write every blob (and diff) and learnable blob.
    #[arg(short = 'o', long = "output", value_name = "OUT.safetensors")]
    output: PathBuf,
}

fn parse_input_shape(s: &str) -> Result<(String, Vec<usize>), String> {
    let (top, dims) = s
        .split_once('=')
        .ok_or_else(|| format!("expected TOP=C,H,W, found `{s}`"))?;
    let dims: Result<Vec<usize>, _> = dims.split(',').map(|d| d.trim().parse::<usize>()).collect();
    match dims {
        Ok(d) if !d.is_empty() && !top.is_empty() => Ok((top.to_string(), d)),
        _ => Err(format!(
            "expected TOP=C,H,W with positive integers, found `{s}`"
        )),
    }
}

fn build_options(args: &NetArgs, net_file: &Path, env: &Env) -> BuildOptions {
    let mut opts = BuildOptions::for_phase(args.phase.into());
    opts.context.batch = args.batch;
    opts.context.input_shapes = args.input_shape.iter().cloned().collect();
    opts.context.data_dirs = netrun::data::data_dirs(net_file, &env.extra_data_dirs());
    opts
}

pub fn check(a: &CheckArgs, env: &Env) -> netrun::Result<()> {
    let doc = proto::parse(&SourceFile::read(&a.file)?)?;
    if solverdef::looks_like_solver(&doc.root) {
        return check_solver(&doc, &a.net, env);
    }
    let net = netdef::parse_net(&doc)?;
    let graph = Graph::build(&net, &build_options(&a.net, &a.file, env))?;
    print!("{}", netrun::summary::render(&graph));
    Ok(())
}

/// Checks a solver, then its train net and each test net in the phase and
/// state the solver gives them. Problems of all nets are reported together.
fn check_solver(doc: &Document, args: &NetArgs, env: &Env) -> netrun::Result<()> {
    let cwd = std::env::current_dir().map_err(|e| Error::Other(e.to_string()))?;
    let solver = solverdef::parse_solver(doc, &cwd)?;
    print!("{}", solverdef::summary(&solver));
    let mut diags: Vec<Diagnostic> = Vec::new();
    // A net that is both the train and the test net reports a shared problem once.
    let mut seen = HashSet::new();
    let nets = std::iter::once(("train net".to_string(), &solver.train_net)).chain(
        solver
            .test_nets
            .iter()
            .enumerate()
            .map(|(i, t)| (format!("test net #{i}"), t)),
    );
    for (label, spec) in nets {
        println!();
        println!(
            "== {label}: {}, phase {}",
            spec.describe(&solver.source),
            spec.phase
        );
        match build_solver_net(&solver, spec, args, env) {
            Ok(graph) => print!("{}", netrun::summary::render(&graph)),
            Err(e) => {
                println!("(not built: see the errors below)");
                let found = match e {
                    Error::Config(d) => d,
                    other => vec![Diagnostic::new(other.to_string())],
                };
                for d in found {
                    if seen.insert(d.to_string()) {
                        diags.push(d);
                    }
                }
            }
        }
    }
    if diags.is_empty() {
        Ok(())
    } else {
        Err(Error::Config(diags))
    }
}

fn build_solver_net(
    solver: &SolverDef,
    spec: &NetSpec,
    args: &NetArgs,
    env: &Env,
) -> netrun::Result<Graph> {
    let loaded = solver.load_net(spec)?;
    let mut opts = build_options(args, &loaded.file, env);
    opts.context.phase = loaded.state.phase;
    opts.state = loaded.state;
    Graph::build(&loaded.net, &opts)
}

pub fn time(a: &TimeArgs, env: &Env) -> netrun::Result<()> {
    if let Some(n) = a.gpu {
        return Err(Error::Other(netrun::backend::no_gpu_message(&format!(
            "--gpu {n}"
        ))));
    }
    let net = netdef::read_net_file(&a.file)?;
    let graph = Graph::build(&net, &build_options(&a.net, &a.file, env))?;
    let mut net = netrun::net::Net::new(graph, 1)?;
    println!(
        "timing `{}` on {} thread(s), {}, CPU kernels {} (CPU has {})",
        net.graph.name,
        netrun::backend::threads(),
        netrun::backend::name(),
        netrun::backend::isa(),
        netrun::backend::Isa::detected()
    );
    if a.data {
        let timings = netrun::timing_data::time_data(&mut net, a.iterations)?;
        let threads = netrun::data::decode_pool::decode_threads();
        print!(
            "{}",
            netrun::timing_data::render_data(&timings, a.iterations, threads)
        );
        return Ok(());
    }
    if a.forward_only {
        // What a deploy net runs with (`features`, `verify`): nothing reads
        // the activations after the pass.
        net.recycle_activations(&[])?;
        println!("forward only: activation storage recycled between layers, no diffs");
    }
    let timings = netrun::timing::time(&mut net, a.iterations, !a.forward_only)?;
    print!(
        "{}",
        netrun::timing::render(&timings, netrun::timing::peak_rss())
    );
    Ok(())
}

pub fn forward(a: &ForwardArgs, env: &Env) -> netrun::Result<()> {
    let report = netrun::forward::run(&netrun::forward::ForwardOptions {
        net: a.file.clone(),
        weights: a.weights.clone(),
        inputs: a.inputs.clone(),
        top_diff: a.top_diff.clone(),
        backward: a.backward,
        phase: a.phase.into(),
        output: a.output.clone(),
        extra_data_dirs: env.extra_data_dirs(),
    })?;
    print!("{report}");
    Ok(())
}
