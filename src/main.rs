//! The `netrun` command line.

mod face_cli;

use clap::{Parser, Subcommand, ValueEnum};
use netrun::graph::{BuildOptions, Graph};
use netrun::netdef::{self, Phase};
use netrun::proto::{self, Document};
use netrun::solverdef::{self, NetSpec, SolverDef};
use netrun::source::SourceFile;
use netrun::{Diagnostic, Error};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "netrun",
    version,
    about = "Caffe-style declarative deep learning for face recognition"
)]
struct Cli {
    /// Compute threads (GEMM and parallel loops); default `NETRUN_THREADS` or all cores.
    #[arg(long, global = true, value_name = "N")]
    threads: Option<usize>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum PhaseArg {
    #[value(name = "TRAIN", alias = "train")]
    Train,
    #[value(name = "TEST", alias = "test")]
    Test,
}

impl From<PhaseArg> for Phase {
    fn from(p: PhaseArg) -> Phase {
        match p {
            PhaseArg::Train => Phase::Train,
            PhaseArg::Test => Phase::Test,
        }
    }
}

/// Options shared by commands that build a net.
#[derive(clap::Args)]
struct NetArgs {
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

#[derive(Subcommand)]
enum Command {
    /// Validate a net or solver file and print its layers, shapes, parameters and FLOPs.
    Check {
        /// A net (`.net`, `.prototxt`) or a solver file.
        file: PathBuf,
        #[command(flatten)]
        net: NetArgs,
    },
    /// Time forward and backward per layer on random data, like `caffe time`.
    Time {
        /// A net file (`.net`, `.prototxt`).
        file: PathBuf,
        #[command(flatten)]
        net: NetArgs,
        /// Timed iterations (after one warm-up).
        #[arg(long, default_value_t = 10)]
        iterations: usize,
        /// Time the forward pass only.
        #[arg(long)]
        forward_only: bool,
    },
    /// Run one forward (and backward) pass on given inputs and weights; write every blob.
    Forward {
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
    },
    /// Convert datasets into the LMDB databases the Data layer reads.
    Convert {
        #[command(subcommand)]
        what: netrun::data::convert::ConvertCommand,
    },
    /// Write generated net and solver files (SphereFace-4/10/20/36/64).
    Generate {
        #[command(subcommand)]
        what: netrun::generate::GenerateCommand,
    },
    /// Train the nets of a solver file, like `caffe train`.
    Train {
        /// A solver file.
        solver: PathBuf,
        /// Resume from a snapshot: `<prefix>_iter_N` or one of its `.safetensors` files.
        #[arg(long, value_name = "SNAPSHOT")]
        snapshot: Option<PathBuf>,
        /// Initialise from weights files (same-named blobs; comma-separated or repeated).
        #[arg(long, value_name = "FILE", value_delimiter = ',')]
        weights: Vec<PathBuf>,
        /// What SIGINT and SIGTERM do after the current iteration.
        #[arg(long, value_enum, default_value = "stop")]
        sigint_effect: netrun::train::SignalEffect,
        /// What SIGHUP does after the current iteration.
        #[arg(long, value_enum, default_value = "snapshot")]
        sighup_effect: netrun::train::SignalEffect,
        /// Replaces the batch size of data and input layers.
        #[arg(long, value_name = "N")]
        batch: Option<usize>,
    },
    /// Run the TEST phase of a net with trained weights and average its outputs, like `caffe test`.
    Test {
        /// A net file (`.net`, `.prototxt`).
        net: PathBuf,
        /// Weights files (comma-separated or repeated).
        #[arg(long, value_name = "FILE", value_delimiter = ',', required = true)]
        weights: Vec<PathBuf>,
        /// Batches to run.
        #[arg(long, default_value_t = 50)]
        iterations: usize,
        /// Replaces the batch size of data and input layers.
        #[arg(long, value_name = "N")]
        batch: Option<usize>,
    },
    /// Plot a training log: loss, test outputs and learning rate against iteration (PNG or SVG).
    Plot(netrun::pictures::plot::PlotArgs),
    /// Run a net over its data source and write one blob's rows and the labels (safetensors).
    Features(netrun::pictures::features::FeaturesArgs),
    /// Scatter two feature dimensions coloured by class, as the center-loss paper's MNIST figure.
    PlotFeatures(netrun::pictures::scatter::PlotFeaturesArgs),
    /// Draw the layer graph of a net as Graphviz DOT (or SVG/PNG/PDF through `dot`).
    Draw(netrun::pictures::draw::DrawArgs),
    /// Face verification accuracy on LFW-style pairs (10-fold cross-validation, ROC).
    Verify(face_cli::VerifyArgs),
    /// Detect faces and five landmarks (MTCNN) and warp each onto a template (112x96).
    Align(face_cli::AlignArgs),
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

fn build_options(args: &NetArgs, net_file: &Path) -> BuildOptions {
    let mut opts = BuildOptions::for_phase(args.phase.into());
    opts.context.batch = args.batch;
    opts.context.input_shapes = args.input_shape.iter().cloned().collect();
    opts.context.data_dirs = netrun::layers::data_dirs(net_file);
    opts
}

fn check(file: &Path, args: &NetArgs) -> netrun::Result<()> {
    let doc = proto::parse(&SourceFile::read(file)?)?;
    if solverdef::looks_like_solver(&doc.root) {
        return check_solver(&doc, args);
    }
    let net = netdef::parse_net(&doc)?;
    let graph = Graph::build(&net, &build_options(args, file))?;
    print!("{}", netrun::summary::render(&graph));
    Ok(())
}

/// Checks a solver, then its train net and each test net in the phase and
/// state the solver gives them. Problems of all nets are reported together.
fn check_solver(doc: &Document, args: &NetArgs) -> netrun::Result<()> {
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
        match build_solver_net(&solver, spec, args) {
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

fn build_solver_net(solver: &SolverDef, spec: &NetSpec, args: &NetArgs) -> netrun::Result<Graph> {
    let loaded = solver.load_net(spec)?;
    let mut opts = build_options(args, &loaded.file);
    opts.context.phase = loaded.state.phase;
    opts.state = loaded.state;
    Graph::build(&loaded.net, &opts)
}

fn time(file: &Path, args: &NetArgs, iterations: usize, forward_only: bool) -> netrun::Result<()> {
    let net = netdef::read_net_file(file)?;
    let graph = Graph::build(&net, &build_options(args, file))?;
    let mut net = netrun::net::Net::new(graph, 1)?;
    println!(
        "timing `{}` on {} thread(s), {}",
        net.graph.name,
        netrun::backend::threads(),
        netrun::backend::name()
    );
    let timings = netrun::timing::time(&mut net, iterations, !forward_only)?;
    print!(
        "{}",
        netrun::timing::render(&timings, netrun::timing::peak_rss())
    );
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(n) = cli.threads {
        netrun::backend::set_threads(n);
    }
    let result = match &cli.command {
        Command::Check { file, net } => check(file, net),
        Command::Time {
            file,
            net,
            iterations,
            forward_only,
        } => time(file, net, *iterations, *forward_only),
        Command::Forward {
            file,
            weights,
            inputs,
            top_diff,
            backward,
            phase,
            output,
        } => netrun::forward::run(&netrun::forward::ForwardOptions {
            net: file.clone(),
            weights: weights.clone(),
            inputs: inputs.clone(),
            top_diff: top_diff.clone(),
            backward: *backward,
            phase: (*phase).into(),
            output: output.clone(),
        })
        .map(|report| print!("{report}")),
        Command::Convert { what } => netrun::data::convert::run(what),
        Command::Generate { what } => netrun::generate::run(what),
        Command::Train {
            solver,
            snapshot,
            weights,
            sigint_effect,
            sighup_effect,
            batch,
        } => netrun::train::train_command(
            solver,
            snapshot.as_deref(),
            weights,
            netrun::train::TrainOptions {
                sigint_effect: *sigint_effect,
                sighup_effect: *sighup_effect,
                batch: *batch,
                ..Default::default()
            },
        ),
        Command::Test {
            net,
            weights,
            iterations,
            batch,
        } => netrun::train::test_command(
            net,
            weights,
            *iterations,
            &netrun::train::TrainOptions {
                batch: *batch,
                ..Default::default()
            },
        )
        .map(|_| ()),
        Command::Plot(a) => netrun::pictures::plot::run(a).map(|r| println!("{r}")),
        Command::Features(a) => netrun::pictures::features::run(a).map(|r| println!("{r}")),
        Command::PlotFeatures(a) => netrun::pictures::scatter::run(a).map(|r| println!("{r}")),
        Command::Draw(a) => netrun::pictures::draw::run(a).map(|r| println!("{r}")),
        Command::Verify(a) => face_cli::verify(a),
        Command::Align(a) => face_cli::align(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
