//! The `netrun` command line: clap's argument types, the environment
//! variables, and the handlers that turn them into the library's explicit
//! options. The library itself knows nothing of clap or the environment.
//!
//! Environment variables read here (and nowhere else):
//! - `NETRUN_THREADS`: compute threads when `--threads` is not given;
//! - `NETRUN_WINOGRAD`: `0` never use Winograd convolutions, `1` wherever the
//!   geometry allows, unset: where they pay;
//! - `NETRUN_WINOGRAD_TILE`: `2` or `4` forces the output tile side of 3×3
//!   Winograd layers (F(2×2, 3×3) or F(4×4, 3×3)), unset: chosen by batch;
//! - `NETRUN_DATA_DIR`: a last folder for relative data paths, and for
//!   `convert mnist`'s IDX files.

mod convert;
mod device;
mod export;
mod face;
mod generate;
mod net;
mod peak;
mod pictures;
mod train;

use clap::{Parser, Subcommand, ValueEnum};
use netrun::backend::{self, WinogradPolicy};
use netrun::netdef::Phase;
use std::path::PathBuf;
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
    /// Threads decoding data samples (image files, encoded or raw `Datum`s)
    /// beside the compute; default as many as the compute threads. Batches
    /// are the same whatever the count.
    #[arg(long, global = true, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    decode_threads: Option<u64>,
    /// Cap the instruction set of netrun's own CPU kernels (Winograd tiles, row
    /// kernels) below what the CPU has, to check or time the slower paths.
    #[arg(long, global = true, value_name = "ISA", value_parser = parse_isa)]
    isa: Option<backend::Isa>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum PhaseArg {
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

/// `TRAIN` or `TEST` (any case).
pub fn parse_phase(s: &str) -> Result<Phase, String> {
    match s.to_ascii_uppercase().as_str() {
        "TRAIN" => Ok(Phase::Train),
        "TEST" => Ok(Phase::Test),
        _ => Err(format!("expected TRAIN or TEST, found `{s}`")),
    }
}

#[derive(Subcommand)]
enum Command {
    /// Validate a net or solver file and print its layers, shapes, parameters and FLOPs.
    Check(net::CheckArgs),
    /// Time forward and backward per layer on random data, like `caffe time`.
    Time(net::TimeArgs),
    /// Run one forward (and backward) pass on given inputs and weights; write every blob.
    Forward(net::ForwardArgs),
    /// Convert datasets into the LMDB databases the Data layer reads.
    Convert {
        #[command(subcommand)]
        what: convert::ConvertCommand,
    },
    /// Write a trained deploy net in another runtime's format (ONNX).
    Export {
        #[command(subcommand)]
        what: export::ExportCommand,
    },
    /// Write a net in today's text format: V1 `layers` upgraded, legacy inputs as an Input layer.
    Upgrade {
        /// The net file to read.
        file: PathBuf,
        /// Where to write it (default: print it).
        #[arg(short = 'o', long = "output", value_name = "NEW")]
        output: Option<PathBuf>,
    },
    /// Write generated net and solver files (SphereFace-4/10/20/36/64).
    Generate {
        #[command(subcommand)]
        what: generate::GenerateCommand,
    },
    /// Train the nets of a solver file, like `caffe train`.
    Train(train::TrainArgs),
    /// Run the TEST phase of a net with trained weights and average its outputs, like `caffe test`.
    Test(train::TestArgs),
    /// Plot a training log: loss, test outputs and learning rate against iteration (PNG or SVG).
    Plot(pictures::PlotArgs),
    /// Run a net over its data source and write one blob's rows and the labels (safetensors).
    Features(pictures::FeaturesArgs),
    /// Scatter two feature dimensions coloured by class, as the center-loss paper's MNIST figure.
    PlotFeatures(pictures::PlotFeaturesArgs),
    /// Draw the layer graph of a net as Graphviz DOT (or SVG/PNG/PDF through `dot`).
    Draw(pictures::DrawArgs),
    /// Face verification accuracy on LFW-style pairs (10-fold cross-validation, ROC).
    Verify(face::VerifyArgs),
    /// Detect faces and five landmarks (MTCNN) and warp each onto a template (112x96).
    Align(face::AlignArgs),
    /// Measure this CPU's f32 multiply-add peak (GFLOP/s) at each instruction-set level.
    Peak(peak::PeakArgs),
    /// List the CUDA devices (name, memory, compute capability) that `--gpu N` can name.
    Device,
}

/// What the environment says, read once at start.
pub struct Env {
    /// `NETRUN_DATA_DIR`.
    pub data_dir: Option<PathBuf>,
}

impl Env {
    fn read() -> Env {
        Env {
            data_dir: std::env::var_os("NETRUN_DATA_DIR").map(PathBuf::from),
        }
    }

    /// Folders searched for relative data paths after the net's folder and
    /// the working directory.
    pub fn extra_data_dirs(&self) -> Vec<PathBuf> {
        self.data_dir.iter().cloned().collect()
    }
}

/// `avx512`, `avx2` or `scalar`.
fn parse_isa(s: &str) -> Result<backend::Isa, String> {
    backend::Isa::parse(s).ok_or_else(|| format!("expected avx512, avx2 or scalar, found `{s}`"))
}

/// `--threads`, else `NETRUN_THREADS` (a positive integer), else all cores.
fn threads(flag: Option<usize>) -> Option<usize> {
    flag.or_else(|| {
        std::env::var("NETRUN_THREADS")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|&n| n > 0)
    })
}

/// `NETRUN_WINOGRAD_TILE`: `2` or `4` forces the 3×3 Winograd tile side.
fn winograd_side() -> Option<usize> {
    match std::env::var("NETRUN_WINOGRAD_TILE").as_deref() {
        Ok("2") => Some(2),
        Ok("4") => Some(4),
        _ => None,
    }
}

fn winograd() -> WinogradPolicy {
    match std::env::var("NETRUN_WINOGRAD").as_deref() {
        Ok("0") => WinogradPolicy::Never,
        Ok("1") => WinogradPolicy::Always,
        _ => WinogradPolicy::Auto,
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(n) = threads(cli.threads) {
        backend::set_threads(n);
    }
    backend::set_winograd(winograd());
    backend::set_winograd_side(winograd_side());
    if let Some(n) = cli.decode_threads {
        netrun::data::decode_pool::set_decode_threads(n as usize);
    }
    if let Some(isa) = cli.isa {
        if let Err(e) = backend::set_isa(isa) {
            eprintln!("error: --isa {isa}: {e}");
            return ExitCode::FAILURE;
        }
    }
    let env = Env::read();
    let result = match &cli.command {
        Command::Check(a) => net::check(a, &env),
        Command::Time(a) => net::time(a, &env),
        Command::Peak(a) => peak::peak(a),
        Command::Forward(a) => net::forward(a, &env),
        Command::Convert { what } => convert::run(what, &env),
        Command::Export { what } => export::run(what, &env),
        Command::Upgrade { file, output } => {
            netrun::caffe::upgrade::upgrade_file(file).and_then(|(text, applied)| {
                if applied.is_empty() {
                    eprintln!("note: `{}` is already in today's format", file.display());
                } else {
                    eprintln!("note: upgrades applied: {}", applied.join("; "));
                }
                match output {
                    None => {
                        print!("{text}");
                        Ok(())
                    }
                    Some(o) => std::fs::write(o, text).map_err(|e| netrun::Error::Io {
                        path: o.clone(),
                        message: e.to_string(),
                    }),
                }
            })
        }
        Command::Generate { what } => generate::run(what),
        Command::Train(a) => train::train(a, &env),
        Command::Test(a) => train::test(a, &env),
        Command::Plot(a) => netrun::pictures::plot::run(&a.options()).map(|r| println!("{r}")),
        Command::Features(a) => {
            netrun::pictures::features::run(&a.options(&env)).map(|r| println!("{r}"))
        }
        Command::PlotFeatures(a) => {
            netrun::pictures::scatter::run(&a.options()).map(|r| println!("{r}"))
        }
        Command::Draw(a) => netrun::pictures::draw::run(&a.options()).map(|r| println!("{r}")),
        Command::Verify(a) => face::verify(a),
        Command::Align(a) => face::align(a),
        Command::Device => device::run(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
