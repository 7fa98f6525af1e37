//! `netrun convert mnist-siamese`: MNIST image pairs for a siamese net, as
//! Caffe's `convert_mnist_siamese_data` makes them.
//!
//! Record k of a split (key `%08d` of k, so key order is record order) is a
//! `Datum` of 2×rows×cols bytes: image i in channel 0 and image j in channel 1,
//! with i, j drawn uniformly (with replacement) from the split, and
//! label = 1 when the two digits are equal, else 0. About 1 pair in 10 is similar.
//! The draws come from a ChaCha8 generator seeded with `seed` (train) and
//! `seed + 1` (test), so a conversion is repeatable. A Slice layer with
//! `slice_point: 1` on the channel axis splits the pair again.

use super::convert::{load_mnist, prepare_output, MnistSplit};
use super::datum::Datum;
use super::{lmdb, mnist};
use crate::error::{Error, Result};
use crate::layer_io::Rng;
use rand::{Rng as _, SeedableRng};
use std::path::{Path, PathBuf};

/// Options of [`convert_mnist_siamese`].
#[derive(Debug, Clone)]
pub struct PairOptions {
    /// Pairs per split; `None` = as many as the split has images (Caffe).
    pub pairs: Option<usize>,
    pub seed: u64,
    pub force: bool,
}

/// Writes `<out>/mnist_siamese_train_lmdb` and `<out>/mnist_siamese_test_lmdb`;
/// returns each database and its record count.
pub fn convert_mnist_siamese(
    idx_dir: &Path,
    out: &Path,
    fetch: &mnist::Fetch,
    opts: &PairOptions,
) -> Result<Vec<(PathBuf, usize)>> {
    let dbs = [
        out.join("mnist_siamese_train_lmdb"),
        out.join("mnist_siamese_test_lmdb"),
    ];
    if opts.pairs == Some(0) {
        return Err(Error::Other("--pairs must be positive".into()));
    }
    for db in &dbs {
        prepare_output(db, opts.force)?;
    }
    let splits = load_mnist(idx_dir, fetch)?;
    let mut written = Vec::new();
    let mut staged = Vec::new();
    for (k, (split, db)) in splits.iter().zip(dbs).enumerate() {
        let stage = super::staged::stage(&db, opts.force)?;
        if split.is_empty() {
            return Err(Error::Other(format!(
                "MNIST split {k} holds no images to pair"
            )));
        }
        let n = opts.pairs.unwrap_or(split.len());
        let mut rng = Rng::seed_from_u64(opts.seed.wrapping_add(k as u64));
        let records = (0..n).map(|r| {
            let (i, j) = (rng.gen_range(0..split.len()), rng.gen_range(0..split.len()));
            (format!("{r:08}").into_bytes(), pair(split, i, j).encode())
        });
        let count = lmdb::write_records(stage.path(), records)
            .map_err(|e| Error::Other(format!("cannot write `{}`: {e}", db.display())))?;
        written.push((db, count));
        staged.push(stage);
    }
    for stage in staged {
        stage.commit()?;
    }
    Ok(written)
}

/// The Datum of images i and j stacked as two channels; label 1 for the same digit.
pub fn pair(split: &MnistSplit, i: usize, j: usize) -> Datum {
    let mut data = Vec::with_capacity(2 * split.image_size());
    data.extend_from_slice(split.image(i));
    data.extend_from_slice(split.image(j));
    Datum {
        channels: 2,
        height: split.images.dims[1] as i32,
        width: split.images.dims[2] as i32,
        data,
        label: i32::from(split.labels.data[i] == split.labels.data[j]),
        ..Datum::default()
    }
}
