//! The batch sources behind ImageData (a list of image files) and Data (an
//! LMDB or LevelDB of `Datum` records). Each owns generators seeded from the net's seed
//! and the layer's name: `rand_skip` and the per-sample transform draws come
//! from one in a fixed order, a list's shuffles from another, so batches do
//! not depend on timing.
//!
//! Positions ([`BatchSource::position`]) are what a snapshot saves: database
//! `cursor` (records to pass from the first, wrapping) and `rng`; list
//! `epoch`, `cursor` (entry of the epoch's order) and `rng`. `rng` is the
//! word position of the generator, whose seed the definition gives; a list's
//! order in epoch e is the list shuffled by its own generator's stream e, so
//! it is rebuilt from `epoch` alone.

use super::datum::Datum;
use super::db::{self, Backend, Reader};
use super::decode::decode;
use super::decode_pool;
use super::image_list::Entry;
use super::lmdb::Record;
use super::prefetch::{read_position, Batch, BatchSource, Position};
use super::transform::Transformer;
use super::{fmt_paths, resolve};
use crate::layer_io::Rng;
use rand::seq::SliceRandom;
use rand::{Rng as _, SeedableRng};
use std::collections::VecDeque;
use std::path::PathBuf;

/// The generator of a data layer: the net's seed mixed with the layer's name
/// (FNV-1a), so two data layers of a net draw differently.
pub fn layer_rng(seed: u64, layer: &str) -> Rng {
    let h = layer.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    Rng::seed_from_u64(seed ^ h)
}

/// ImageData's samples: the list's images in order (shuffled at setup and at
/// every wrap-around when `shuffle`), decoded, resized, transformed.
pub struct ListSource {
    /// The list file, for messages.
    pub list: PathBuf,
    /// In list order.
    pub entries: Vec<Entry>,
    /// MultiLabelImageData: each entry's labels (K per entry, written in a row of the
    /// label top); empty for ImageData, whose label is the entry's own.
    pub label_rows: Vec<Vec<f32>>,
    /// Prefixed, as a string, to every listed path.
    pub root_folder: String,
    /// Where relative image paths are looked for, in order.
    pub dirs: Vec<PathBuf>,
    pub shuffle: bool,
    /// 3 = BGR colour, 1 = grey.
    pub channels: usize,
    /// [H, W] every image is resized to.
    pub resize: Option<[usize; 2]>,
    /// The first listed image, whose size every image must have without `resize`.
    pub first: Option<PathBuf>,
    pub batch: usize,
    pub transformer: Transformer,
    /// Transform draws and `rand_skip`.
    pub rng: Rng,
    /// Shuffles: epoch e uses its stream e from the start.
    pub shuffler: Rng,
    /// Completed passes over the list.
    pub epoch: u64,
    /// Entry indices in this epoch's order.
    pub order: Vec<usize>,
    /// Next place in `order`.
    pub pos: usize,
}

impl ListSource {
    /// Orders the first epoch, then skips a random number in [0, rand_skip) of entries.
    pub fn start(mut self, rand_skip: u32) -> ListSource {
        self.arrange();
        if rand_skip > 0 && !self.entries.is_empty() {
            self.pos = self.rng.gen_range(0..rand_skip) as usize % self.entries.len();
        }
        self
    }

    /// `order` for `epoch`: list order, or shuffled by stream `epoch` of `shuffler`.
    fn arrange(&mut self) {
        self.order = (0..self.entries.len()).collect();
        if self.shuffle {
            let mut r = self.shuffler.clone();
            r.set_stream(self.epoch);
            r.set_word_pos(0);
            self.order.shuffle(&mut r);
        }
    }

    /// Moves to the next entry of the order, into the next epoch after the last.
    fn step(&mut self) {
        self.pos += 1;
        if self.pos == self.entries.len() {
            self.pos = 0;
            self.epoch += 1;
            self.arrange();
        }
    }

    /// The stored C×H×W values of entry `e`.
    fn load(&self, e: &Entry) -> Result<Vec<f32>, String> {
        let written = format!("{}{}", self.root_folder, e.path);
        let at = format!("line {} of `{}`", e.line, self.list.display());
        let path = resolve(&written, &self.dirs)
            .map_err(|tried| {
                format!(
                    "image `{written}` ({at}) not found (tried {})",
                    fmt_paths(&tried)
                )
            })?
            .path;
        let bytes = std::fs::read(&path)
            .map_err(|err| format!("cannot read image `{}` ({at}): {err}", path.display()))?;
        let (pixels, [_, h, w]) = decode(&bytes, Some(self.channels), self.resize)
            .map_err(|err| format!("image `{}` ({at}) cannot be decoded: {err}", path.display()))?;
        let [_, eh, ew] = self.transformer.sample;
        if (h, w) != (eh, ew) {
            let first = self
                .first
                .as_ref()
                .map_or("the data layer's shape".into(), |f| {
                    format!("the first image `{}`", f.display())
                });
            return Err(format!(
                "image `{}` ({at}) is {h}x{w} but {first} is {eh}x{ew}; \
                 set `new_height` and `new_width` to resize every image to one size",
                path.display()
            ));
        }
        Ok(pixels.into_iter().map(f32::from).collect())
    }
}

impl BatchSource for ListSource {
    fn next_batch(&mut self) -> Result<Batch, String> {
        if self.entries.is_empty() {
            return Err(format!(
                "list file `{}` lists no images",
                self.list.display()
            ));
        }
        let size: usize = self.transformer.out_shape().iter().product();
        let mut b = Batch {
            data: vec![0.0; self.batch * size],
            labels: Vec::with_capacity(self.batch),
        };
        let (pos, epoch) = (self.pos, self.epoch);
        let mut picked = Vec::with_capacity(self.batch);
        for _ in 0..self.batch {
            picked.push(self.order[self.pos]);
            self.step();
        }
        let loaded = decode_pool::map_in_order(&picked, |&e| self.load(&self.entries[e]));
        for (k, ((out, values), &e)) in b.data.chunks_mut(size).zip(loaded).zip(&picked).enumerate()
        {
            let values = match values {
                Ok(v) => v,
                Err(err) => {
                    // Stop at the failing image, as reading one by one would.
                    if self.epoch != epoch {
                        self.epoch = epoch;
                        self.arrange();
                    }
                    self.pos = pos;
                    (0..k).for_each(|_| self.step());
                    return Err(err);
                }
            };
            match self.label_rows.get(e) {
                Some(row) => b.labels.extend_from_slice(row),
                None => b.labels.push(self.entries[e].label as f32),
            }
            self.transformer.transform(&values, out, &mut self.rng);
        }
        Ok(b)
    }

    fn position(&self) -> Position {
        vec![
            ("epoch".into(), self.epoch as f64),
            ("cursor".into(), self.pos as f64),
            ("rng".into(), self.rng.get_word_pos() as f64),
        ]
    }

    fn seek(&mut self, position: &[(String, f64)]) -> Result<(), String> {
        let [epoch, cursor, word] = read_position(position, &["epoch", "cursor", "rng"])?[..]
        else {
            unreachable!("three keys")
        };
        let n = self.entries.len();
        if cursor as usize >= n {
            return Err(format!(
                "state `cursor` {cursor} is past the end of list file `{}` ({n} images): \
                 the list changed since the snapshot",
                self.list.display()
            ));
        }
        self.epoch = epoch;
        self.arrange();
        self.pos = cursor as usize;
        self.rng.set_word_pos(u128::from(word));
        Ok(())
    }
}

/// Data's samples: the records of an LMDB or LevelDB in key order, wrapping around.
pub struct DbSource {
    pub backend: Backend,
    pub dir: PathBuf,
    /// Channels encoded records are decoded to (force_color 3, force_gray 1).
    pub forced: Option<usize>,
    /// Key of the first record, whose shape every record must have.
    pub first_key: String,
    pub batch: usize,
    pub transformer: Transformer,
    pub rng: Rng,
    /// Records still to skip before the first batch.
    pub skip: usize,
    reader: Option<Reader>,
    pending: VecDeque<Record>,
    last_key: Option<Vec<u8>>,
    /// Position in key order of the next record.
    index: usize,
}

/// "`what` LMDB `dir`: `e`".
fn fail(backend: Backend, dir: &std::path::Path, what: &str, e: String) -> String {
    format!("{what} {} `{}`: {e}", backend.name(), dir.display())
}

/// Records read per transaction.
const CHUNK: usize = 256;

impl DbSource {
    /// A source over `dir` skipping a random number in [0, rand_skip) of records first.
    pub fn new(
        backend: Backend,
        dir: PathBuf,
        first_key: String,
        batch: usize,
        transformer: Transformer,
        mut rng: Rng,
        rand_skip: u32,
    ) -> DbSource {
        let skip = if rand_skip > 0 {
            rng.gen_range(0..rand_skip) as usize
        } else {
            0
        };
        DbSource {
            backend,
            dir,
            forced: None,
            first_key,
            batch,
            transformer,
            rng,
            skip,
            reader: None,
            pending: VecDeque::new(),
            last_key: None,
            index: 0,
        }
    }

    /// "`what` LMDB `dir`: `e`".
    fn fail(&self, what: &str, e: String) -> String {
        fail(self.backend, &self.dir, what, e)
    }

    /// The next record and its index, wrapping to the first after the last.
    fn next_record(&mut self) -> Result<(usize, Record), String> {
        if self.pending.is_empty() {
            let reader = match &self.reader {
                Some(r) => r,
                None => self.reader.insert(
                    db::open(self.backend, &self.dir)
                        .map_err(|e| fail(self.backend, &self.dir, "cannot open", e))?,
                ),
            };
            let (backend, dir) = (self.backend, &self.dir);
            let read = |after: Option<&[u8]>| {
                reader
                    .records(after, CHUNK)
                    .map_err(|e| fail(backend, dir, "cannot read", e))
            };
            let mut chunk = read(self.last_key.as_deref())?;
            if chunk.is_empty() && self.last_key.is_some() {
                self.index = 0;
                chunk = read(None)?;
            }
            if chunk.is_empty() {
                return Err(format!(
                    "{} `{}` is empty",
                    self.backend.name(),
                    self.dir.display()
                ));
            }
            self.pending.extend(chunk);
        }
        let record = self.pending.pop_front().expect("refilled above");
        self.last_key = Some(record.0.clone());
        self.index += 1;
        Ok((self.index - 1, record))
    }

    /// The stored C×H×W values of a record, and its label.
    fn load(&self, index: usize, (key, value): &Record) -> Result<(Vec<f32>, i32), String> {
        let key = String::from_utf8_lossy(key);
        let at = || {
            format!(
                "record {index} (key `{key}`) of {} `{}`",
                self.backend.name(),
                self.dir.display()
            )
        };
        let d = Datum::decode(value).map_err(|e| format!("{} is not a Datum: {e}", at()))?;
        let label = d.label;
        let (values, shape) = if d.encoded {
            let (pixels, shape) = decode(&d.data, self.forced, None)
                .map_err(|e| format!("{} holds an undecodable image: {e}", at()))?;
            (pixels.into_iter().map(f32::from).collect(), shape)
        } else {
            let shape = d.sample_shape(None).map_err(|e| format!("{} {e}", at()))?;
            let values = if d.float_data.is_empty() {
                d.data.iter().map(|&b| f32::from(b)).collect()
            } else {
                d.float_data
            };
            (values, shape)
        };
        let want = self.transformer.sample;
        if shape != want {
            let fmt = |s: [usize; 3]| crate::shape::fmt_shape(&s);
            return Err(format!(
                "{} is {} but the first record (key `{}`) is {}",
                at(),
                fmt(shape),
                self.first_key,
                fmt(want)
            ));
        }
        Ok((values, label))
    }
}

impl BatchSource for DbSource {
    fn next_batch(&mut self) -> Result<Batch, String> {
        while self.skip > 0 {
            self.next_record()?;
            self.skip -= 1;
        }
        let size: usize = self.transformer.out_shape().iter().product();
        let mut b = Batch {
            data: vec![0.0; self.batch * size],
            labels: Vec::with_capacity(self.batch),
        };
        let records = (0..self.batch)
            .map(|_| self.next_record())
            .collect::<Result<Vec<_>, _>>()?;
        let loaded =
            decode_pool::map_in_order(&records, |(index, record)| self.load(*index, record));
        for (out, sample) in b.data.chunks_mut(size).zip(loaded) {
            let (values, label) = sample?;
            b.labels.push(label as f32);
            self.transformer.transform(&values, out, &mut self.rng);
        }
        Ok(b)
    }

    fn position(&self) -> Position {
        vec![
            ("cursor".into(), (self.index + self.skip) as f64),
            ("rng".into(), self.rng.get_word_pos() as f64),
        ]
    }

    /// The cursor wraps around the database as reading does.
    fn seek(&mut self, position: &[(String, f64)]) -> Result<(), String> {
        let [cursor, word] = read_position(position, &["cursor", "rng"])?[..] else {
            unreachable!("two keys")
        };
        let reader = db::open(self.backend, &self.dir).map_err(|e| self.fail("cannot open", e))?;
        let cannot = |e: String| self.fail("cannot read", e);
        let n = reader.len().map_err(cannot)?;
        if n == 0 {
            return Err(format!(
                "{} `{}` is empty",
                self.backend.name(),
                self.dir.display()
            ));
        }
        let index = (cursor % n as u64) as usize;
        let last_key = match index {
            0 => None,
            i => Some(
                reader
                    .key_at(i - 1)
                    .map_err(cannot)?
                    .ok_or_else(|| cannot(format!("no record at position {}", i - 1)))?,
            ),
        };
        self.reader = Some(reader);
        self.pending.clear();
        self.last_key = last_key;
        self.index = index;
        self.skip = 0;
        self.rng.set_word_pos(u128::from(word));
        Ok(())
    }
}
