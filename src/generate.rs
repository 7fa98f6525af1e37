//! `netrun generate`: nets written by a program instead of by hand.
//!
//! `sphereface`: the residual nets of the SphereFace paper (Liu et al., CVPR 2017,
//! Table 2), in the layout and with the fillers of the published SphereFace-20
//! (`sphereface_model.prototxt`). Four stages of widths 64, 128, 256, 512; stage s
//! opens with a stride-2 3×3 convolution `convS_1` (xavier, bias lr_mult 2) and PReLU,
//! then holds u_s residual units. Unit k (k = 1..u_s) is two stride-1 3×3
//! convolutions `convS_{2k}`, `convS_{2k+1}` (gaussian σ 0.01, frozen zero bias), each
//! followed by PReLU, and `resS_{2k+1}` = Eltwise SUM of the unit's input and output.
//! Then `fc5` (512) and, in the train net, the A-Softmax head `fc6`
//! (MarginInnerProduct, m = 4, λ = max(5, 1000·(1 + 0.12·iter)^−1)) and SoftmaxWithLoss.
//!
//! ```text
//! depth 4: u = [0,0,0,0]   10: [0,1,2,0]   20: [1,2,4,1]   36: [2,4,8,2]   64: [3,8,16,3]
//! ```
//!
//! Convolutions: 4 + 2·Σu = depth. Input 3×112×96 gives 512×7×6 before fc5.

use crate::error::{Error, Result};
use std::fmt::Write;
use std::path::PathBuf;

/// Residual units per stage of each SphereFace depth.
pub const SPHEREFACE_UNITS: [(u32, [u32; 4]); 5] = [
    (4, [0, 0, 0, 0]),
    (10, [0, 1, 2, 0]),
    (20, [1, 2, 4, 1]),
    (36, [2, 4, 8, 2]),
    (64, [3, 8, 16, 3]),
];

/// Output widths of the four stages.
pub const SPHEREFACE_WIDTHS: [u32; 4] = [64, 128, 256, 512];

/// CASIA-WebFace identities: the published `fc6` width.
pub const CASIA_CLASSES: u32 = 10572;

/// Where the generated train net reads its ImageData list and images by default
/// (relative to the net file; see `nets/sphereface/README.md`).
pub const DEFAULT_SOURCE: &str = "data/casia_list.txt";
pub const DEFAULT_ROOT_FOLDER: &str = "data/CASIA-WebFace-112X96/";

/// The `netrun generate` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum GenerateCommand {
    /// A SphereFace-{4,10,20,36,64} train net (default), deploy net or solver.
    Sphereface {
        /// Number of convolution layers: 4, 10, 20, 36 or 64.
        #[arg(long)]
        depth: u32,
        /// Identities, i.e. the A-Softmax layer's outputs (train net).
        #[arg(long, default_value_t = CASIA_CLASSES)]
        classes: u32,
        /// The deploy net (Input 1×3×112×96 up to fc5) instead of the train net.
        #[arg(long, conflicts_with = "solver")]
        deploy: bool,
        /// The published solver, for the train net `sphereface<DEPTH>_train.prototxt`.
        #[arg(long)]
        solver: bool,
        /// The ImageData list file of the train net.
        #[arg(long, default_value = DEFAULT_SOURCE)]
        source: String,
        /// Prefixed to every listed image path of the train net ("" for none).
        #[arg(long, default_value = DEFAULT_ROOT_FOLDER)]
        root_folder: String,
        /// Output file (standard output when absent).
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

/// Which file of a SphereFace net to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SphereFaceFile {
    Train,
    Deploy,
    Solver,
}

/// A SphereFace net to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct SphereFace {
    pub depth: u32,
    pub classes: u32,
    pub file: SphereFaceFile,
    pub source: String,
    pub root_folder: String,
}

impl SphereFace {
    /// The train net of `depth` with the default class count and data paths.
    pub fn new(depth: u32, file: SphereFaceFile) -> SphereFace {
        SphereFace {
            depth,
            classes: CASIA_CLASSES,
            file,
            source: DEFAULT_SOURCE.to_string(),
            root_folder: DEFAULT_ROOT_FOLDER.to_string(),
        }
    }

    /// The command line that writes this file (non-default options only).
    pub fn command(&self) -> String {
        let mut c = format!("netrun generate sphereface --depth {}", self.depth);
        match self.file {
            SphereFaceFile::Deploy => c.push_str(" --deploy"),
            SphereFaceFile::Solver => c.push_str(" --solver"),
            SphereFaceFile::Train => {
                if self.classes != CASIA_CLASSES {
                    let _ = write!(c, " --classes {}", self.classes);
                }
                if self.source != DEFAULT_SOURCE {
                    let _ = write!(c, " --source \"{}\"", self.source);
                }
                if self.root_folder != DEFAULT_ROOT_FOLDER {
                    let _ = write!(c, " --root-folder \"{}\"", self.root_folder);
                }
            }
        }
        c
    }
}

/// Runs a `netrun generate` command.
pub fn run(cmd: &GenerateCommand) -> Result<()> {
    let GenerateCommand::Sphereface {
        depth,
        classes,
        deploy,
        solver,
        source,
        root_folder,
        output,
    } = cmd;
    let file = match (deploy, solver) {
        (true, _) => SphereFaceFile::Deploy,
        (_, true) => SphereFaceFile::Solver,
        _ => SphereFaceFile::Train,
    };
    let text = sphereface(&SphereFace {
        depth: *depth,
        classes: *classes,
        file,
        source: source.clone(),
        root_folder: root_folder.clone(),
    })?;
    match output {
        None => print!("{text}"),
        Some(path) => std::fs::write(path, text).map_err(|e| Error::Io {
            path: path.clone(),
            message: e.to_string(),
        })?,
    }
    Ok(())
}

/// The residual units per stage of a SphereFace depth.
pub fn sphereface_units(depth: u32) -> Result<[u32; 4]> {
    SPHEREFACE_UNITS
        .iter()
        .find(|(d, _)| *d == depth)
        .map(|(_, u)| *u)
        .ok_or_else(|| {
            Error::Other(format!(
                "SphereFace has no depth {depth}; the paper's depths are 4, 10, 20, 36 and 64"
            ))
        })
}

/// The text of a SphereFace train net, deploy net or solver.
pub fn sphereface(spec: &SphereFace) -> Result<String> {
    let units = sphereface_units(spec.depth)?;
    if spec.classes == 0 {
        return Err(Error::Other("--classes must be positive".into()));
    }
    let mut out = format!("# Generated by `{}`; do not edit.\n", spec.command());
    if spec.file == SphereFaceFile::Solver {
        solver(&mut out, spec.depth);
        return Ok(out);
    }
    let _ = writeln!(out, "name: \"SpherefaceNet-{}\"", spec.depth);
    match spec.file {
        SphereFaceFile::Deploy => {
            out.push_str("input: \"data\"\n");
            for d in [1, 3, 112, 96] {
                let _ = writeln!(out, "input_dim: {d}");
            }
        }
        _ => data_layer(&mut out, &spec.source, &spec.root_folder),
    }
    out.push_str("############## CNN Architecture ###############\n");
    let mut last = "data".to_string();
    for (s, (&n, &width)) in units.iter().zip(&SPHEREFACE_WIDTHS).enumerate() {
        let s = s + 1;
        let stem = format!("conv{s}_1");
        conv(&mut out, &stem, &last, width, true);
        prelu(&mut out, &format!("relu{s}_1"), &stem);
        last = stem;
        for k in 1..=n {
            let (a, b) = (
                format!("conv{s}_{}", 2 * k),
                format!("conv{s}_{}", 2 * k + 1),
            );
            conv(&mut out, &a, &last, width, false);
            prelu(&mut out, &format!("relu{s}_{}", 2 * k), &a);
            conv(&mut out, &b, &a, width, false);
            prelu(&mut out, &format!("relu{s}_{}", 2 * k + 1), &b);
            let res = format!("res{s}_{}", 2 * k + 1);
            eltwise_sum(&mut out, &res, &last, &b);
            last = res;
        }
    }
    let _ = write!(
        out,
        "layer {{\n  name: \"fc5\"\n  type: \"InnerProduct\"\n  bottom: \"{last}\"\n  top: \"fc5\"\n\
         {}  inner_product_param {{\n    num_output: 512\n{}  }}\n}}\n",
        params(&[(1, 1), (2, 0)]),
        fillers("xavier", true)
    );
    if spec.file == SphereFaceFile::Train {
        a_softmax(&mut out, spec.classes);
    }
    Ok(out)
}

fn data_layer(out: &mut String, source: &str, root_folder: &str) {
    let root = if root_folder.is_empty() {
        String::new()
    } else {
        format!("    root_folder: \"{root_folder}\"\n")
    };
    let _ = write!(
        out,
        "layer {{\n  name: \"data\"\n  type: \"ImageData\"\n  top: \"data\"\n  top: \"label\"\n\
         \x20 transform_param {{\n    mean_value: 127.5\n    mean_value: 127.5\n    mean_value: 127.5\n\
         \x20   scale: 0.0078125\n    mirror: true\n  }}\n\
         \x20 image_data_param {{\n    source: \"{source}\"\n{root}    batch_size: 256\n    shuffle: true\n  }}\n}}\n"
    );
}

/// `param { lr_mult decay_mult }` blocks.
fn params(mults: &[(u32, u32)]) -> String {
    mults
        .iter()
        .map(|(lr, decay)| {
            format!("  param {{\n    lr_mult: {lr}\n    decay_mult: {decay}\n  }}\n")
        })
        .collect()
}

/// Weight filler (and a zero bias filler), indented for a `*_param` block.
fn fillers(weight: &str, bias: bool) -> String {
    let w = match weight {
        "gaussian" => {
            "    weight_filler {\n      type: \"gaussian\"\n      std: 0.01\n    }\n".to_string()
        }
        other => format!("    weight_filler {{\n      type: \"{other}\"\n    }}\n"),
    };
    let b = if bias {
        "    bias_filler {\n      type: \"constant\"\n      value: 0\n    }\n"
    } else {
        ""
    };
    format!("{w}{b}")
}

/// A 3×3 convolution: a stage's stride-2 entry (xavier, trained bias) or a
/// residual one (gaussian σ 0.01, bias frozen at 0 as in the published nets).
fn conv(out: &mut String, name: &str, bottom: &str, width: u32, entry: bool) {
    let (mults, stride, filler) = if entry {
        ([(1, 1), (2, 0)], 2, "xavier")
    } else {
        ([(1, 1), (0, 0)], 1, "gaussian")
    };
    let _ = write!(
        out,
        "layer {{\n  name: \"{name}\"\n  type: \"Convolution\"\n  bottom: \"{bottom}\"\n  top: \"{name}\"\n\
         {}  convolution_param {{\n    num_output: {width}\n    kernel_size: 3\n    stride: {stride}\n    pad: 1\n\
         {}  }}\n}}\n",
        params(&mults),
        fillers(filler, true)
    );
}

fn prelu(out: &mut String, name: &str, blob: &str) {
    let _ = write!(
        out,
        "layer {{\n  name: \"{name}\"\n  type: \"PReLU\"\n  bottom: \"{blob}\"\n  top: \"{blob}\"\n}}\n"
    );
}

/// Eltwise SUM (operation 1) of a unit's input and output.
fn eltwise_sum(out: &mut String, name: &str, a: &str, b: &str) {
    let _ = write!(
        out,
        "layer {{\n  name: \"{name}\"\n  type: \"Eltwise\"\n  bottom: \"{a}\"\n  bottom: \"{b}\"\n  top: \"{name}\"\n\
         \x20 eltwise_param {{\n    operation: 1\n  }}\n}}\n"
    );
}

/// The published A-Softmax head: m = 4 (QUADRUPLE), λ = max(lambda_min,
/// base·(1 + gamma·iter)^−power), and the softmax loss on its output.
fn a_softmax(out: &mut String, classes: u32) {
    let _ = write!(
        out,
        "############### A-Softmax Loss ##############\n\
         layer {{\n  name: \"fc6\"\n  type: \"MarginInnerProduct\"\n  bottom: \"fc5\"\n  bottom: \"label\"\n\
         \x20 top: \"fc6\"\n  top: \"lambda\"\n{}  margin_inner_product_param {{\n    num_output: {classes}\n\
         \x20   type: QUADRUPLE\n{}    base: 1000\n    gamma: 0.12\n    power: 1\n    lambda_min: 5\n\
         \x20   iteration: 0\n  }}\n}}\n\
         layer {{\n  name: \"softmax_loss\"\n  type: \"SoftmaxWithLoss\"\n  bottom: \"fc6\"\n  bottom: \"label\"\n\
         \x20 top: \"softmax_loss\"\n}}\n",
        params(&[(1, 1)]),
        fillers("xavier", false)
    );
}

/// The published `sphereface_solver.prototxt` (its commented-out lines
/// included), with `net` and `snapshot_prefix` for this depth.
fn solver(out: &mut String, depth: u32) {
    let _ = write!(
        out,
        "net: \"sphereface{depth}_train.prototxt\"\n#test_iter: 100\n#test_interval: 2000\n\n\
         base_lr: 0.1\nlr_policy: \"multistep\"\ngamma: 0.1\n\n\
         stepvalue: 16000\nstepvalue: 24000\nstepvalue: 28000\nmax_iter: 28000\n\n\
         display: 100\nmomentum: 0.9\nweight_decay: 0.0005\n#snapshot: 1000\n\
         snapshot_prefix: \"snapshots/sphereface{depth}\"\n\nsolver_mode: GPU\n"
    );
}
