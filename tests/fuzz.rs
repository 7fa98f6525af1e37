//! Fuzz targets for every reader of untrusted bytes, on stable Rust.
//!
//! Each target takes arbitrary bytes and must return (an error is fine) —
//! never panic, abort or allocate by an unchecked header:
//!
//! * `text`: the net/solver text reader (`parse_net_str` + `Graph::build`,
//!   and `parse_solver_str`);
//! * `datum`: the LMDB `Datum` decoder and its shape check;
//! * `idx`: the MNIST IDX reader;
//! * `safetensors`: the weights/snapshot loader (`weights::load`);
//! * `caffemodel`: Caffe's binary `NetParameter` through the same loader
//!   (`weights::load` tells the formats apart by content), seeded with files
//!   Python's protobuf encoded (`tests/python/caffe_interop.py encode`).
//!
//! `replay_corpora` (part of the regular suite) runs every file of
//! `fuzz/corpus/<target>/`. `fuzz` (ignored by default) mutates the corpus
//! for a while — `NETRUN_FUZZ_SECONDS` per target (default 60),
//! `NETRUN_FUZZ_TARGETS` to pick targets — and saves inputs whose outcome
//! (the first words of the error, or success) was not seen before into the
//! corpus, a cheap stand-in for coverage feedback; an input that panics is
//! saved to `fuzz/crashes/<target>/` and fails the test:
//!
//! ```text
//! NETRUN_FUZZ_SECONDS=150 nice cargo test --release --test fuzz -- --ignored --nocapture
//! ```
//!
//! A hand-rolled mutation loop rather than cargo-fuzz: it runs on the stable
//! toolchain with the dependencies already built, where libFuzzer would
//! rebuild the whole dependency tree with coverage instrumentation on nightly.

use std::collections::HashSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const TARGETS: &[&str] = &["text", "datum", "idx", "safetensors", "caffemodel"];

/// Most files a target's corpus keeps (the suite replays them all).
const MAX_CORPUS: usize = 40;

fn corpus_dir(target: &str) -> PathBuf {
    Path::new("fuzz/corpus").join(target)
}

/// Runs one input through a target; Err(outcome) for a refused input.
fn run(target: &str, bytes: &[u8], scratch: &Path) -> Result<(), String> {
    match target {
        "text" => {
            let text = String::from_utf8_lossy(bytes);
            let net = netrun::netdef::parse_net_str("fuzz.net", &text).map_err(|e| e.to_string());
            if let Ok(net) = &net {
                use netrun::graph::{BuildOptions, Graph};
                use netrun::netdef::Phase;
                for phase in [Phase::Train, Phase::Test] {
                    Graph::build(net, &BuildOptions::for_phase(phase))
                        .map_err(|e| e.to_string())?;
                }
            }
            netrun::solverdef::parse_solver_str("fuzz.solver", &text, scratch)
                .map(|_| ())
                .map_err(|e| e.to_string())
                .and(net.map(|_| ()))
        }
        "datum" => {
            let d = netrun::data::datum::Datum::decode(bytes)?;
            d.sample_shape(None).map(|_| ())?;
            d.sample_shape(Some(1)).map(|_| ())
        }
        "idx" => {
            let path = Path::new("fuzz.idx");
            for magic in [0x801, 0x803] {
                netrun::data::mnist::parse_idx(bytes.to_vec(), path, magic)?;
            }
            Ok(())
        }
        "safetensors" | "caffemodel" => {
            let path = scratch.join(format!("fuzz.{target}"));
            std::fs::write(&path, bytes).map_err(|e| e.to_string())?;
            netrun::weights::load(&path)
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
        t => panic!("unknown fuzz target {t}"),
    }
}

/// The outcome's signature: its first words with digits dropped.
fn signature(r: &Result<(), String>) -> String {
    match r {
        Ok(()) => "ok".into(),
        Err(e) => e
            .lines()
            .next()
            .unwrap_or("")
            .chars()
            .filter(|c| !c.is_ascii_digit())
            .take(60)
            .collect(),
    }
}

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = corpus_dir(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let b = std::fs::read(&p).expect("corpus file");
            (p, b)
        })
        .collect()
}

fn scratch(target: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("netrun-fuzz-{target}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

#[test]
fn replay_corpora() {
    for target in TARGETS {
        let files = corpus(target);
        assert!(
            files.len() >= 3,
            "corpus of {target} has {} files",
            files.len()
        );
        let dir = scratch(target);
        for (path, bytes) in files {
            let r = catch_unwind(AssertUnwindSafe(|| run(target, &bytes, &dir)));
            assert!(r.is_ok(), "{target}: {} panics", path.display());
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// xorshift64*: the mutator's randomness (seeded from the clock).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Tokens worth splicing in: delimiters, edge numbers, format magic.
const TOKENS: &[&[u8]] = &[
    b"{",
    b"}",
    b"<",
    b">",
    b"[",
    b"]",
    b":",
    b"\"",
    b"'",
    b"\\",
    b"#",
    b"\n",
    b"0",
    b"-1",
    b"nan",
    b"inf",
    b"-inf",
    b"1e40",
    b"4294967295",
    b"4294967296",
    b"18446744073709551615",
    b"0x7fffffff",
    b"layer {",
    b"num_output: 0",
    b"dim: 0",
    b"kernel_size: 0",
    b"type: \"uniform\" min: 1 max: -1",
    b"\xff\xff\xff\xff",
    b"\x00\x00\x00\x00",
    b"\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01",
    b"\x7f\xff\xff\xff",
    b"\x00\x00\x08\x03",
    b"{\"__metadata__\":{}}",
    b"\"F32\"",
    b"\"shape\":[",
    b"\"data_offsets\":[",
];

fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut b = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(b.len() + 1);
        match rng.below(8) {
            0 if !b.is_empty() => {
                let i = rng.below(b.len());
                b[i] ^= 1 << rng.below(8);
            }
            1 if !b.is_empty() => {
                let i = rng.below(b.len());
                b[i] = rng.next() as u8;
            }
            2 => b.insert(at, rng.next() as u8),
            3 if !b.is_empty() => {
                let end = (at + 1 + rng.below(16)).min(b.len());
                b.drain(at.min(end)..end);
            }
            4 => {
                let t = TOKENS[rng.below(TOKENS.len())];
                b.splice(at..at, t.iter().copied());
            }
            5 if !b.is_empty() => {
                let s = rng.below(b.len());
                let e = (s + 1 + rng.below(64)).min(b.len());
                let piece = b[s..e].to_vec();
                b.splice(at..at, piece);
            }
            6 if !other.is_empty() => {
                let s = rng.below(other.len());
                let e = (s + 1 + rng.below(256)).min(other.len());
                b.splice(at..at, other[s..e].iter().copied());
            }
            _ => b.truncate(at),
        }
    }
    b
}

#[test]
#[ignore = "runs for minutes; see the module docs"]
fn fuzz() {
    let seconds: u64 = std::env::var("NETRUN_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let chosen = std::env::var("NETRUN_FUZZ_TARGETS").unwrap_or_default();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    let mut rng = Rng(seed);
    // Panics are counted, not printed for each input.
    std::panic::set_hook(Box::new(|_| {}));
    let mut crashes = 0;
    for target in TARGETS
        .iter()
        .filter(|t| chosen.is_empty() || chosen.contains(*t))
    {
        let dir = scratch(target);
        let mut pool: Vec<Vec<u8>> = corpus(target).into_iter().map(|(_, b)| b).collect();
        let mut seen: HashSet<String> = pool
            .iter()
            .map(|b| signature(&run(target, b, &dir)))
            .collect();
        let (mut execs, mut added) = (0u64, 0usize);
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(seconds) {
            let a = &pool[rng.below(pool.len())];
            let o = &pool[rng.below(pool.len())];
            let input = mutate(&mut rng, a, o);
            if input.len() > 1 << 20 {
                continue;
            }
            execs += 1;
            match catch_unwind(AssertUnwindSafe(|| run(target, &input, &dir))) {
                Err(_) => {
                    crashes += 1;
                    let cdir = Path::new("fuzz/crashes").join(target);
                    std::fs::create_dir_all(&cdir).expect("crash dir");
                    std::fs::write(cdir.join(format!("crash-{execs}")), &input)
                        .expect("crash file");
                }
                Ok(r) => {
                    let sig = signature(&r);
                    if seen.insert(sig) {
                        pool.push(input.clone());
                        if corpus(target).len() < MAX_CORPUS && input.len() < 4096 {
                            let name = format!("found-{:016x}", rng.next());
                            std::fs::write(corpus_dir(target).join(name), &input)
                                .expect("corpus file");
                            added += 1;
                        }
                    }
                }
            }
        }
        println!(
            "fuzz {target}: {execs} executions in {:.0} s, {} distinct outcomes, {added} added to the corpus",
            start.elapsed().as_secs_f64(),
            seen.len()
        );
        let _ = std::fs::remove_dir_all(dir);
    }
    let _ = std::panic::take_hook();
    assert_eq!(
        crashes, 0,
        "{crashes} crashing inputs saved under fuzz/crashes/"
    );
}
