//! Reading batches ahead on a background thread, as Caffe's prefetching data
//! layers do, so that the net does not wait for decoding.
//!
//! A [`BatchSource`] produces batches in a fixed order from its own seeded
//! generator; the prefetch thread only calls it repeatedly and queues the
//! results in a bounded channel. Batches are therefore the same, in the same
//! order, whatever the timing, and the same as reading synchronously.
//!
//! Each queued batch travels with the source's position after it, so the
//! [`Feed`] knows the position of the next batch the net will take, however
//! far the thread has read ahead; moving to a saved position stops the
//! thread, takes the source back, seeks it and starts reading afresh.

use std::sync::mpsc::{sync_channel, Receiver};
use std::thread::JoinHandle;

/// One batch: N samples' values and their N labels (N × K for MultiLabelImageData).
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub data: Vec<f32>,
    pub labels: Vec<f32>,
}

/// A read position as named whole numbers (cursor, epoch, generator position),
/// the form layer state is saved in.
pub type Position = Vec<(String, f64)>;

/// Something that yields batches one after another (wrapping around its data).
pub trait BatchSource: Send {
    fn next_batch(&mut self) -> Result<Batch, String>;

    /// Where the next batch starts.
    fn position(&self) -> Position;

    /// Moves to a position returned by [`BatchSource::position`] (of a source
    /// built from the same definition); an error says what does not fit.
    fn seek(&mut self, position: &[(String, f64)]) -> Result<(), String>;
}

/// The whole numbers `keys` of a position, in that order: every key must be
/// given once, nothing else, each a whole number in [0, 2^53].
pub fn read_position(position: &[(String, f64)], keys: &[&str]) -> Result<Vec<u64>, String> {
    let known = crate::proto::de::quote_list(keys);
    let mut values = vec![None; keys.len()];
    for (name, v) in position {
        let Some(i) = keys.iter().position(|k| k == name) else {
            return Err(format!(
                "unknown state `{name}` (the read position is {known})"
            ));
        };
        if !(v.is_finite() && v.fract() == 0.0 && (0.0..=9_007_199_254_740_992.0).contains(v)) {
            return Err(format!(
                "state `{name}` must be a whole number from 0 to 2^53, got {v}"
            ));
        }
        if values[i].replace(*v as u64).is_some() {
            return Err(format!("state `{name}` is given twice"));
        }
    }
    keys.iter()
        .zip(values)
        .map(|(k, v)| {
            v.ok_or_else(|| format!("state `{k}` is missing (the read position is {known})"))
        })
        .collect()
}

/// A batch, or the error that ended reading, with the source's position after it.
type Item = (Result<Batch, String>, Position);

/// A thread filling a queue of up to `depth` prepared batches.
struct Prefetcher {
    rx: Option<Receiver<Item>>,
    /// Gives the source back when the thread ends.
    worker: Option<JoinHandle<Box<dyn BatchSource>>>,
}

impl Prefetcher {
    fn spawn(mut source: Box<dyn BatchSource>, depth: usize) -> Result<Prefetcher, String> {
        // The thread holds one batch while blocked on a full channel.
        let (tx, rx) = sync_channel::<Item>(depth.saturating_sub(1));
        let worker = std::thread::Builder::new()
            .name("netrun-prefetch".into())
            .spawn(move || {
                loop {
                    let batch = source.next_batch();
                    let failed = batch.is_err();
                    if tx.send((batch, source.position())).is_err() || failed {
                        break;
                    }
                }
                source
            })
            .map_err(|e| format!("cannot start the prefetch thread: {e}"))?;
        Ok(Prefetcher {
            rx: Some(rx),
            worker: Some(worker),
        })
    }

    fn next(&mut self) -> Item {
        let rx = self.rx.as_ref().expect("receiver kept until drop");
        rx.recv().unwrap_or_else(|_| {
            (
                Err("the prefetch thread stopped unexpectedly".into()),
                Vec::new(),
            )
        })
    }

    /// Stops the thread (batches read ahead are dropped) and returns its source.
    fn stop(mut self) -> Option<Box<dyn BatchSource>> {
        // Closing the channel first makes a thread blocked on `send` return.
        self.rx.take();
        self.worker.take().and_then(|w| w.join().ok())
    }
}

impl Drop for Prefetcher {
    fn drop(&mut self) {
        self.rx.take();
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

enum State {
    /// Not started: the source, or why there is none.
    Idle(Result<Box<dyn BatchSource>, String>),
    Sync(Box<dyn BatchSource>),
    Running(Prefetcher),
    /// A batch failed; the error is repeated on every later call.
    Failed(String),
}

/// A data layer's supply of batches, started on the first [`Feed::next`]
/// (building a net, e.g. for `netrun check`, reads nothing and starts no thread).
pub struct Feed {
    state: State,
    /// The position of the next batch [`Feed::next`] returns (empty without a source).
    position: Position,
}

impl Feed {
    pub fn new(source: Result<Box<dyn BatchSource>, String>) -> Feed {
        let position = source.as_ref().map(|s| s.position()).unwrap_or_default();
        Feed {
            state: State::Idle(source),
            position,
        }
    }

    /// The next batch; the first call starts a thread keeping `depth` batches
    /// ready, or reads synchronously when `depth` is 0.
    pub fn next(&mut self, depth: usize) -> Result<Batch, String> {
        if let State::Idle(_) = self.state {
            let State::Idle(source) =
                std::mem::replace(&mut self.state, State::Failed(String::new()))
            else {
                unreachable!()
            };
            self.state = match source {
                Err(e) => State::Failed(e),
                Ok(s) if depth == 0 => State::Sync(s),
                Ok(s) => match Prefetcher::spawn(s, depth) {
                    Ok(p) => State::Running(p),
                    Err(e) => State::Failed(e),
                },
            };
        }
        let batch = match &mut self.state {
            State::Sync(s) => {
                let b = s.next_batch();
                self.position = s.position();
                b
            }
            State::Running(p) => {
                let (b, position) = p.next();
                if b.is_ok() {
                    self.position = position;
                }
                b
            }
            State::Failed(e) => return Err(e.clone()),
            State::Idle(_) => unreachable!("started above"),
        };
        if let Err(e) = &batch {
            self.state = State::Failed(e.clone());
        }
        batch
    }

    /// The position of the next batch the net will take (not of what the
    /// thread has read ahead); empty when there is no source.
    pub fn position(&self) -> Position {
        self.position.clone()
    }

    /// Moves to `position`: a running thread is stopped and its read-ahead
    /// dropped; reading restarts from there on the next [`Feed::next`].
    pub fn seek(&mut self, position: &[(String, f64)]) -> Result<(), String> {
        let mut source = match std::mem::replace(&mut self.state, State::Failed(String::new())) {
            State::Idle(Ok(s)) | State::Sync(s) => s,
            State::Running(p) => p.stop().ok_or("the prefetch thread stopped unexpectedly")?,
            State::Idle(Err(e)) => {
                self.state = State::Idle(Err(e.clone()));
                return Err(format!("cannot restore the read position: {e}"));
            }
            State::Failed(e) => {
                self.state = State::Failed(e.clone());
                return Err(format!("cannot restore the read position: {e}"));
            }
        };
        let result = source.seek(position);
        self.position = source.position();
        self.state = State::Idle(Ok(source));
        result
    }
}
