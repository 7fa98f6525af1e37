//! Reading batches ahead on a background thread, as Caffe's prefetching data
//! layers do, so that the net does not wait for decoding.
//!
//! A [`BatchSource`] produces batches in a fixed order from its own seeded
//! generator; the prefetch thread only calls it repeatedly and queues the
//! results in a bounded channel. Batches are therefore the same, in the same
//! order, whatever the timing, and the same as reading synchronously.

use std::sync::mpsc::{sync_channel, Receiver};
use std::thread::JoinHandle;

/// One batch: N samples' values and their N labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub data: Vec<f32>,
    pub labels: Vec<f32>,
}

/// Something that yields batches one after another (wrapping around its data).
pub trait BatchSource: Send {
    fn next_batch(&mut self) -> Result<Batch, String>;
}

/// A thread filling a queue of up to `depth` prepared batches.
struct Prefetcher {
    rx: Option<Receiver<Result<Batch, String>>>,
    worker: Option<JoinHandle<()>>,
}

impl Prefetcher {
    fn spawn(mut source: Box<dyn BatchSource>, depth: usize) -> Result<Prefetcher, String> {
        // The thread holds one batch while blocked on a full channel.
        let (tx, rx) = sync_channel(depth.saturating_sub(1));
        let worker = std::thread::Builder::new()
            .name("netrun-prefetch".into())
            .spawn(move || loop {
                let batch = source.next_batch();
                let failed = batch.is_err();
                if tx.send(batch).is_err() || failed {
                    break;
                }
            })
            .map_err(|e| format!("cannot start the prefetch thread: {e}"))?;
        Ok(Prefetcher {
            rx: Some(rx),
            worker: Some(worker),
        })
    }

    fn next(&mut self) -> Result<Batch, String> {
        let rx = self.rx.as_ref().expect("receiver kept until drop");
        rx.recv()
            .unwrap_or_else(|_| Err("the prefetch thread stopped unexpectedly".into()))
    }
}

impl Drop for Prefetcher {
    fn drop(&mut self) {
        // Closing the channel first makes a thread blocked on `send` return.
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
}

impl Feed {
    pub fn new(source: Result<Box<dyn BatchSource>, String>) -> Feed {
        Feed {
            state: State::Idle(source),
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
            State::Sync(s) => s.next_batch(),
            State::Running(p) => p.next(),
            State::Failed(e) => return Err(e.clone()),
            State::Idle(_) => unreachable!("started above"),
        };
        if let Err(e) = &batch {
            self.state = State::Failed(e.clone());
        }
        batch
    }
}
