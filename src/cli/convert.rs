//! `netrun convert`: the subcommands and their printing; the converters are
//! in `netrun::data`.

use super::Env;
use netrun::data::convert::{convert_imageset, convert_mnist_to, ImagesetOptions};
use netrun::data::db::Backend;
use netrun::data::{list_builder, mnist, pairs};
use netrun::Result;
use std::path::PathBuf;

/// The `netrun convert` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum ConvertCommand {
    /// MNIST IDX files (plain or .gz; downloaded when missing) → `<OUT>/mnist_{train,test}_lmdb`
    /// (`_leveldb` with `--backend leveldb`).
    Mnist {
        /// Folder holding (or receiving) the four IDX files.
        idx_dir: PathBuf,
        /// Folder in which the two databases are written.
        out_dir: PathBuf,
        /// The kind of database to write (LMDB is preferred: see the README).
        #[arg(long, value_enum, default_value_t = DbKind::Lmdb)]
        backend: DbKind,
        /// Replace existing databases.
        #[arg(long)]
        force: bool,
        /// Convert even when a file's MD5 differs from the canonical MNIST one (warns instead).
        #[arg(long)]
        no_verify: bool,
    },
    /// MNIST IDX files → image pairs `<OUT>/mnist_siamese_{train,test}_lmdb`, as Caffe's
    /// `convert_mnist_siamese_data` (2 channels, label 1 = same digit).
    MnistSiamese {
        /// Folder holding (or receiving) the four IDX files.
        idx_dir: PathBuf,
        /// Folder in which the two databases are written.
        out_dir: PathBuf,
        /// Pairs per database (default: one per image of the split).
        #[arg(long)]
        pairs: Option<usize>,
        /// Seed of the pair draws (test pairs use seed + 1).
        #[arg(long, default_value_t = netrun::shape::DEFAULT_SEED)]
        seed: u64,
        /// Replace existing databases.
        #[arg(long)]
        force: bool,
        /// Convert even when a file's MD5 differs from the canonical MNIST one (warns instead).
        #[arg(long)]
        no_verify: bool,
    },
    /// A folder with one subfolder of images per identity → an ImageData list
    /// (`<subfolder>/<file> <label>`, labels by sorted subfolder).
    List {
        /// The folder of identity subfolders (the ImageData `root_folder`).
        root: PathBuf,
        /// The list file to write.
        #[arg(short = 'o', long = "output", value_name = "LIST")]
        output: PathBuf,
        /// Hold out the last N images (sorted) of every identity for a validation list.
        #[arg(long, value_name = "N", default_value_t = 0, requires = "val_output")]
        val_per_class: usize,
        /// Where the validation list goes.
        #[arg(long, value_name = "LIST", requires = "val_per_class")]
        val_output: Option<PathBuf>,
    },
    /// An ImageData list of images → an LMDB (or LevelDB), as Caffe's `convert_imageset`.
    Imageset {
        /// Folder the listed paths are relative to.
        root: PathBuf,
        /// The list file: `<image path> <integer label>` per line.
        list: PathBuf,
        /// The database folder to create.
        lmdb: PathBuf,
        /// The kind of database to write (LMDB is preferred: see the README).
        #[arg(long, value_enum, default_value_t = DbKind::Lmdb)]
        backend: DbKind,
        /// Resize every image to H×W (bilinear), e.g. `112x96`.
        #[arg(long, value_name = "HxW", value_parser = parse_size)]
        resize: Option<[usize; 2]>,
        /// Store grey images (1 channel) instead of BGR.
        #[arg(long)]
        gray: bool,
        /// Shuffle the lines (seeded: the same order every run).
        #[arg(long)]
        shuffle: bool,
        /// Store encoded image files instead of raw pixels.
        #[arg(long)]
        encoded: bool,
        /// Replace an existing database.
        #[arg(long)]
        force: bool,
    },
    /// A Caffe `.caffemodel` → netrun weights (safetensors, `<layer>.<index>`).
    Caffemodel {
        /// The `.caffemodel` to read (`layer` or V1 `layers` encoding).
        input: PathBuf,
        /// The safetensors file to write.
        #[arg(short = 'o', long = "output", value_name = "OUT.safetensors")]
        output: PathBuf,
        /// Check the blobs against this net (Caffe's matching rules) and write
        /// only the blobs it uses, in its shapes.
        #[arg(long, value_name = "NET")]
        net: Option<PathBuf>,
    },
    /// netrun weights → a Caffe `.caffemodel` for a net (`--net DEPLOY`).
    Safetensors {
        /// The weights to read (`<layer>.<index>`; a `.caffemodel` works too).
        input: PathBuf,
        /// The net whose layers the caffemodel describes (its TEST phase).
        #[arg(long, value_name = "NET")]
        net: PathBuf,
        /// The `.caffemodel` to write.
        #[arg(short = 'o', long = "output", value_name = "OUT.caffemodel")]
        output: PathBuf,
    },
}

/// `--backend`: the database kinds Caffe's Data layer reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DbKind {
    Lmdb,
    Leveldb,
}

impl DbKind {
    fn backend(self) -> Backend {
        match self {
            DbKind::Lmdb => Backend::Lmdb,
            DbKind::Leveldb => Backend::Leveldb,
        }
    }
}

fn parse_size(s: &str) -> std::result::Result<[usize; 2], String> {
    let parsed = s.split_once(['x', 'X']).and_then(|(h, w)| {
        Some([h.trim().parse().ok()?, w.trim().parse().ok()?]).filter(|[h, w]| *h > 0 && *w > 0)
    });
    parsed.ok_or_else(|| format!("expected HxW with positive integers (e.g. 112x96), found `{s}`"))
}

/// Runs a `netrun convert` command, printing what was written.
pub fn run(cmd: &ConvertCommand, env: &Env) -> Result<()> {
    let fetch = |no_verify: bool| mnist::Fetch {
        mirrors: mnist::MIRRORS.iter().map(|m| m.to_string()).collect(),
        offline_dirs: env.data_dir.iter().cloned().collect(),
        verify: !no_verify,
        progress: true,
    };
    match cmd {
        ConvertCommand::Caffemodel { input, output, net } => println!(
            "{}",
            netrun::caffe::convert::caffemodel_to_safetensors(
                input,
                output,
                net.as_deref(),
                &env.extra_data_dirs()
            )?
        ),
        ConvertCommand::Safetensors { input, net, output } => println!(
            "{}",
            netrun::caffe::convert::safetensors_to_caffemodel(
                input,
                net,
                output,
                &env.extra_data_dirs()
            )?
        ),
        ConvertCommand::Mnist {
            idx_dir,
            out_dir,
            backend,
            force,
            no_verify,
        } => {
            let b = backend.backend();
            for (dir, n) in convert_mnist_to(b, idx_dir, out_dir, &fetch(*no_verify), *force)? {
                println!("wrote {n} records to {}", dir.display());
            }
        }
        ConvertCommand::MnistSiamese {
            idx_dir,
            out_dir,
            pairs,
            seed,
            force,
            no_verify,
        } => {
            let opts = pairs::PairOptions {
                pairs: *pairs,
                seed: *seed,
                force: *force,
            };
            let written =
                pairs::convert_mnist_siamese(idx_dir, out_dir, &fetch(*no_verify), &opts)?;
            for (dir, n) in written {
                println!("wrote {n} pairs to {}", dir.display());
            }
        }
        ConvertCommand::List {
            root,
            output,
            val_per_class,
            val_output,
        } => {
            let list = list_builder::build_list(root, *val_per_class)?;
            list_builder::write_list(output, &list.train)?;
            println!(
                "wrote {} images of {} identities to {}",
                list.train.len(),
                list.classes.len(),
                output.display()
            );
            if let Some(val) = val_output {
                list_builder::write_list(val, &list.val)?;
                println!("wrote {} images to {}", list.val.len(), val.display());
            }
        }
        ConvertCommand::Imageset {
            root,
            list,
            lmdb,
            backend,
            resize,
            gray,
            shuffle,
            encoded,
            force,
        } => {
            let opts = ImagesetOptions {
                resize: *resize,
                gray: *gray,
                shuffle: *shuffle,
                encoded: *encoded,
                force: *force,
                seed: netrun::shape::DEFAULT_SEED,
                backend: backend.backend(),
            };
            let n = convert_imageset(root, list, lmdb, &opts)?;
            println!("wrote {n} records to {}", lmdb.display());
        }
    }
    Ok(())
}
