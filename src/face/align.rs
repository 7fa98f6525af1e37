//! `netrun align IN_DIR OUT_DIR`: detect each photo's face and five
//! landmarks ([`super::mtcnn`]), fit the similarity transform taking the
//! landmarks onto the template's points ([`super::similarity`]), and write
//! the face warped by it (bilinear, black outside the photo) under the same
//! relative path in OUT_DIR. `OUT_DIR/landmarks.tsv` lists every photo:
//! its status, the number of faces found, and the kept face's box, score and
//! landmarks in the photo's coordinates (continuous: pixel (i, j) covers
//! [j, j+1) × [i, i+1)). With several faces the largest box is kept, or the
//! one whose centre is nearest the photo's ([`Keep`]).

use super::image::Rgb;
use super::mtcnn::{Face, Mtcnn, MtcnnOptions};
use super::similarity::{template, Similarity, Template, TEMPLATES};
use crate::error::{Error, Result};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Which face of several is aligned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// The largest box.
    Largest,
    /// The box whose centre is nearest the photo's centre.
    Central,
}

impl std::str::FromStr for Keep {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Keep, String> {
        match s {
            "largest" => Ok(Keep::Largest),
            "central" => Ok(Keep::Central),
            _ => Err(format!("expected largest or central, found `{s}`")),
        }
    }
}

#[derive(Debug, Clone)]
pub struct AlignOptions {
    pub input: PathBuf,
    pub output: PathBuf,
    /// Height, width of the crops.
    pub size: [usize; 2],
    pub template: String,
    /// Folder of det1..det3 `.prototxt` and weights.
    pub models: PathBuf,
    pub mtcnn: MtcnnOptions,
    pub keep: Keep,
    /// Folder for copies of the photos with the detections drawn.
    pub draw: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct AlignReport {
    pub images: usize,
    pub aligned: usize,
    /// Photos skipped: relative path and why.
    pub skipped: Vec<(String, String)>,
    pub seconds: f64,
    pub landmarks: PathBuf,
}

impl std::fmt::Display for AlignReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (file, why) in &self.skipped {
            writeln!(f, "skipped `{file}`: {why}")?;
        }
        writeln!(
            f,
            "aligned {} of {} images in {:.1} s ({:.2} images/s); landmarks in `{}`",
            self.aligned,
            self.images,
            self.seconds,
            self.images as f64 / self.seconds.max(1e-9),
            self.landmarks.display()
        )
    }
}

/// Index of the face to keep.
pub fn choose(faces: &[Face], keep: Keep, width: usize, height: usize) -> Option<usize> {
    let key = |f: &Face| -> f32 {
        let [x1, y1, x2, y2] = f.bbox;
        match keep {
            Keep::Largest => -(x2 - x1) * (y2 - y1),
            Keep::Central => {
                let dx = 0.5 * (x1 + x2) - 0.5 * width as f32;
                let dy = 0.5 * (y1 + y2) - 0.5 * height as f32;
                dx * dx + dy * dy
            }
        }
    };
    (0..faces.len()).min_by(|&a, &b| key(&faces[a]).total_cmp(&key(&faces[b])))
}

/// The transform of a face's landmarks onto the template and the aligned crop.
pub fn align_face(
    img: &Rgb,
    face: &Face,
    t: &Template,
    size: [usize; 2],
) -> Option<(Similarity, Rgb)> {
    let from: Vec<[f64; 2]> = face
        .landmarks
        .iter()
        .map(|p| [f64::from(p[0]), f64::from(p[1])])
        .collect();
    let to = t.points_for(size);
    let s = Similarity::fit(&from, &to)?;
    let crop = img.warp(&s, size[1], size[0])?;
    Some((s, crop))
}

/// Image files under `dir`, relative, sorted.
fn images_under(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let here = dir.join(&rel);
        let entries = std::fs::read_dir(&here).map_err(|e| Error::Io {
            path: here.clone(),
            message: e.to_string(),
        })?;
        for e in entries {
            let e = e.map_err(|e| Error::Io {
                path: here.clone(),
                message: e.to_string(),
            })?;
            let p = rel.join(e.file_name());
            if e.path().is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| {
                matches!(
                    x.to_string_lossy().to_ascii_lowercase().as_str(),
                    "png" | "jpg" | "jpeg"
                )
            }) {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

fn save(img: &image::RgbImage, path: &Path) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::Io {
            path: parent.to_path_buf(),
            message: e.to_string(),
        })?;
    }
    img.save(path)
        .map_err(|e| Error::Other(format!("cannot write `{}`: {e}", path.display())))
}

pub fn run(opts: &AlignOptions) -> Result<AlignReport> {
    let t = template(&opts.template).ok_or_else(|| {
        Error::Other(format!(
            "unknown template `{}` (known: {})",
            opts.template,
            TEMPLATES.join(", ")
        ))
    })?;
    let mut mtcnn = Mtcnn::load(&opts.models, opts.mtcnn.clone())?;
    let files = images_under(&opts.input)?;
    if files.is_empty() {
        return Err(Error::Other(format!(
            "no .png or .jpg images under `{}`",
            opts.input.display()
        )));
    }
    let start = Instant::now();
    let mut tsv = String::from("file\tstatus\tfaces\tx1\ty1\tx2\ty2\tscore\tleye_x\tleye_y\treye_x\treye_y\tnose_x\tnose_y\tlmouth_x\tlmouth_y\trmouth_x\trmouth_y\n");
    let mut report = AlignReport {
        images: files.len(),
        aligned: 0,
        skipped: vec![],
        seconds: 0.0,
        landmarks: opts.output.join("landmarks.tsv"),
    };
    for rel in &files {
        let name = rel.to_string_lossy().replace('\t', " ");
        let img = match Rgb::read(&opts.input.join(rel)) {
            Ok(i) => i,
            Err(e) => {
                writeln!(tsv, "{name}\tunreadable: {e}\t0").expect("string");
                report.skipped.push((name, e.to_string()));
                continue;
            }
        };
        let faces = mtcnn.detect(&img)?;
        let kept = choose(&faces, opts.keep, img.width, img.height);
        if let Some(dir) = &opts.draw {
            let mut copy = img.to_image();
            super::overlay::draw(&mut copy, &faces, kept);
            save(&copy, &dir.join(rel).with_extension("png"))?;
        }
        let Some(k) = kept else {
            writeln!(tsv, "{name}\tno face found\t0").expect("string");
            report.skipped.push((name, "no face found".into()));
            continue;
        };
        let face = &faces[k];
        let Some((_, crop)) = align_face(&img, face, &t, opts.size) else {
            writeln!(tsv, "{name}\tdegenerate landmarks\t{}", faces.len()).expect("string");
            report.skipped.push((name, "degenerate landmarks".into()));
            continue;
        };
        save(&crop.to_image(), &opts.output.join(rel))?;
        report.aligned += 1;
        let mut line = format!("{name}\tok\t{}", faces.len());
        for v in face.bbox {
            write!(line, "\t{v:.2}").expect("string");
        }
        write!(line, "\t{:.4}", face.score).expect("string");
        for p in &face.landmarks {
            write!(line, "\t{:.2}\t{:.2}", p[0], p[1]).expect("string");
        }
        tsv += &line;
        tsv.push('\n');
    }
    report.seconds = start.elapsed().as_secs_f64();
    std::fs::create_dir_all(&opts.output).map_err(|e| Error::Io {
        path: opts.output.clone(),
        message: e.to_string(),
    })?;
    std::fs::write(&report.landmarks, tsv).map_err(|e| Error::Io {
        path: report.landmarks.clone(),
        message: e.to_string(),
    })?;
    Ok(report)
}
