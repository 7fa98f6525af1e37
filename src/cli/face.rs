//! The command-line arguments of `netrun verify` and `netrun align`.

use netrun::face::align::{self, AlignOptions, Keep};
use netrun::face::embed::Mirror;
use netrun::face::mtcnn::MtcnnOptions;
use netrun::face::verify::{self, VerifyOptions};
use std::path::PathBuf;

/// `netrun verify` arguments.
#[derive(clap::Args)]
pub struct VerifyArgs {
    /// The deploy net (an Input layer taking one image batch), or a net whose TEST phase reads ImageData.
    pub net: PathBuf,
    /// Weights files (comma-separated or repeated).
    #[arg(long, value_name = "FILE", value_delimiter = ',', required = true)]
    pub weights: Vec<PathBuf>,
    /// LFW pair list: `10 300` header (pairs.txt) or a single count (pairsDevTrain/DevTest).
    #[arg(long, value_name = "pairs.txt")]
    pub pairs: PathBuf,
    /// Root folder of the images: ROOT/<name>/<name>_<NNNN>.<ext>.
    #[arg(long, value_name = "ROOT")]
    pub images: PathBuf,
    /// `name number path` lines (paths relative to ROOT) for another layout.
    #[arg(long, value_name = "FILE")]
    pub list: Option<PathBuf>,
    /// Extension of the image files in LFW's layout.
    #[arg(long, default_value = "jpg")]
    pub ext: String,
    /// The feature blob.
    #[arg(long, default_value = "fc5")]
    pub blob: String,
    /// The mirror image's feature: concatenated (SphereFace), summed, or not used.
    #[arg(long, default_value = "concat", value_parser = ["concat", "sum", "none"])]
    pub mirror: String,
    /// Mean: one value, one per channel (`104,117,123`) or a `.binaryproto` file [default: 127.5].
    #[arg(long, value_name = "V|V,V,V|FILE")]
    pub mean: Option<String>,
    /// Scale after subtracting the mean [default: 1/128 with the default mean].
    #[arg(long)]
    pub scale: Option<f32>,
    /// One-channel (grey) images, for nets with one input channel.
    #[arg(long)]
    pub gray: bool,
    /// Cross-validation folds.
    #[arg(long, default_value_t = 10)]
    pub folds: usize,
    /// Images per forward pass.
    #[arg(long, default_value_t = 16)]
    pub batch: usize,
    /// Write the ROC curve (`.png` or `.svg`).
    #[arg(long, value_name = "ROC.png")]
    pub plot: Option<PathBuf>,
    /// Write a JSON summary.
    #[arg(long, value_name = "OUT.json")]
    pub json: Option<PathBuf>,
}

pub fn verify(a: &VerifyArgs) -> netrun::Result<()> {
    let opts = VerifyOptions {
        net: a.net.clone(),
        weights: a.weights.clone(),
        pairs: a.pairs.clone(),
        images: a.images.clone(),
        list: a.list.clone(),
        ext: a.ext.clone(),
        blob: a.blob.clone(),
        mirror: a.mirror.parse::<Mirror>().map_err(netrun::Error::Other)?,
        mean: a.mean.clone(),
        scale: a.scale,
        gray: a.gray,
        folds: a.folds,
        batch: a.batch,
        plot: a.plot.clone(),
        json: a.json.clone(),
    };
    print!("{}", verify::run(&opts)?);
    Ok(())
}

/// `netrun align` arguments.
#[derive(clap::Args)]
pub struct AlignArgs {
    /// Folder of photos (`.png`, `.jpg`), searched recursively.
    pub input: PathBuf,
    /// Where the aligned crops go, under the same relative paths, with `landmarks.tsv`.
    pub output: PathBuf,
    /// Height x width of the crops.
    #[arg(long, default_value = "112x96", value_parser = parse_size)]
    pub size: [usize; 2],
    /// Reference points: sphereface (112x96) or arcface (112x112); scaled to --size.
    #[arg(long, default_value = "sphereface")]
    pub template: String,
    /// Smallest face side looked for, in pixels.
    #[arg(long, default_value_t = 20.0)]
    pub min_face: f32,
    /// Score thresholds of P-Net, R-Net and O-Net.
    #[arg(long, default_value = "0.6,0.7,0.7", value_parser = parse_thresholds)]
    pub thresholds: [f32; 3],
    /// Folder of the MTCNN nets: det1..det3 `.prototxt` with `.caffemodel` (or `.safetensors`) weights.
    #[arg(long, default_value = "../shared/models/mtcnn")]
    pub models: PathBuf,
    /// Which face to align when there are several.
    #[arg(long, default_value = "largest", value_parser = ["largest", "central"])]
    pub keep: String,
    /// Write a copy of each photo with the boxes and landmarks drawn into this folder.
    #[arg(long, value_name = "DIR")]
    pub draw: Option<PathBuf>,
}

fn parse_size(s: &str) -> Result<[usize; 2], String> {
    let err = || format!("expected HEIGHTxWIDTH such as 112x96, found `{s}`");
    let (h, w) = s.split_once(['x', 'X']).ok_or_else(err)?;
    match (h.trim().parse::<usize>(), w.trim().parse::<usize>()) {
        (Ok(h), Ok(w)) if h > 0 && w > 0 => Ok([h, w]),
        _ => Err(err()),
    }
}

fn parse_thresholds(s: &str) -> Result<[f32; 3], String> {
    let v: Vec<f32> = s
        .split(',')
        .map(|t| t.trim().parse::<f32>())
        .collect::<Result<_, _>>()
        .map_err(|_| format!("expected three numbers such as 0.6,0.7,0.7, found `{s}`"))?;
    <[f32; 3]>::try_from(v).map_err(|_| format!("expected three thresholds, found `{s}`"))
}

pub fn align(a: &AlignArgs) -> netrun::Result<()> {
    let opts = AlignOptions {
        input: a.input.clone(),
        output: a.output.clone(),
        size: a.size,
        template: a.template.clone(),
        models: a.models.clone(),
        mtcnn: MtcnnOptions {
            min_face: a.min_face,
            thresholds: a.thresholds,
            ..MtcnnOptions::default()
        },
        keep: a.keep.parse::<Keep>().map_err(netrun::Error::Other)?,
        draw: a.draw.clone(),
    };
    print!("{}", align::run(&opts)?);
    Ok(())
}
