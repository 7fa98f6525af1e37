//! Decoding a batch's samples on several threads, as Caffe's data layers
//! would with more prefetch threads but without their nondeterminism. Turning
//! a record's bytes into values (reading the file, decoding PNG/JPEG or a
//! `Datum`, resizing) depends on the record alone, so it runs in parallel;
//! the transform that draws random crops and mirrors then runs in sample
//! order on one generator. A batch is the same whatever the thread count.
//!
//! The threads are a pool of their own, not the compute pool: decoding runs
//! on the prefetch thread while the net computes, and should not queue behind
//! (or hold up) the compute pool's jobs.

use rayon::prelude::*;
use rayon::{ThreadPool, ThreadPoolBuilder};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// As set by [`set_decode_threads`]; 0 = as many as the compute threads.
static THREADS: AtomicUsize = AtomicUsize::new(0);
/// The pool and the size it was built with, rebuilt when the size changes.
static POOL: Mutex<Option<(usize, Arc<ThreadPool>)>> = Mutex::new(None);

/// Sets the threads that decode data samples (`0`: as many as the compute
/// threads, [`crate::backend::threads`]). Takes effect for the next batch.
pub fn set_decode_threads(n: usize) {
    THREADS.store(n, Ordering::Relaxed);
}

/// Threads decoding samples: as set, else the compute threads.
pub fn decode_threads() -> usize {
    match THREADS.load(Ordering::Relaxed) {
        0 => crate::backend::threads(),
        n => n,
    }
}

/// The pool for `n` threads, built on first use; `None` if it cannot be
/// built (the caller then decodes on its own thread).
fn pool(n: usize) -> Option<Arc<ThreadPool>> {
    let mut slot = POOL.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((size, pool)) = slot.as_ref() {
        if *size == n {
            return Some(pool.clone());
        }
    }
    let pool = ThreadPoolBuilder::new()
        .num_threads(n)
        .thread_name(|i| format!("netrun-decode-{i}"))
        .build()
        .ok()
        .map(Arc::new)?;
    *slot = Some((n, pool.clone()));
    Some(pool)
}

/// `f` over `items`, results in the items' order; on the decode threads when
/// there are several and more than one item.
pub fn map_in_order<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let n = decode_threads();
    match (n > 1 && items.len() > 1).then(|| pool(n)).flatten() {
        Some(pool) => pool.install(|| items.par_iter().map(&f).collect()),
        None => items.iter().map(f).collect(),
    }
}
