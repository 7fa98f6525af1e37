//! Training output: Caffe's log lines (so scripts that parse Caffe logs work
//! on netrun's), an optional progress bar, and the JSON-lines record.
//!
//! Lines written to the text log file (`<snapshot_prefix>.log`), and to
//! stdout when it is not a terminal, carry glog's prefix as Caffe's do:
//! `I1128 15:04:05.123456 12345 train/mod.rs:412] Iteration 100, lr = 0.01`
//! (severity, month and day, local time to the microsecond, process id, the
//! source file below `src/` and line that logged it), which is what Caffe's
//! `parse_log.py` reads the time from. A terminal gets the bare lines.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::fs::File;
use std::io::Write;
use std::panic::Location;
use std::time::{SystemTime, UNIX_EPOCH};

/// Formats like C++'s default `ostream << float` (`%g`, 6 significant digits):
/// `0.1`, `2.30259`, `1e-05`, `1.5e+06`, `nan`, `inf`.
pub fn fmt_g(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.into();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let sci = format!("{x:.5e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let trim = |s: &str| {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s.to_string()
        }
    };
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mantissa), exp.abs())
    } else {
        let decimals = (5 - exp).max(0) as usize;
        trim(&format!("{x:.decimals$}"))
    }
}

/// A JSON string literal.
pub fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A JSON number (`null` for NaN and infinities, which JSON cannot hold).
/// A value that is exactly an f32 (a blob value, the f32 learning rate) is
/// written with the fewest digits that give that f32 back.
pub fn json_num(x: f64) -> String {
    if !x.is_finite() {
        "null".into()
    } else if (x as f32) as f64 == x {
        format!("{}", x as f32)
    } else {
        format!("{x}")
    }
}

/// Broken-down local time: (month 1–12, day, hour, minute, second).
#[cfg(unix)]
fn local_time(secs: i64) -> Option<[u32; 5]> {
    let t = secs as libc::time_t;
    // SAFETY: `tm` is plain data that localtime_r fills; both pointers are valid
    // for the call, and localtime_r (unlike localtime) keeps no shared buffer.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let ok = unsafe { !libc::localtime_r(&t, &mut tm).is_null() };
    ok.then(|| {
        [tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec].map(|v| v.max(0) as u32)
    })
}

#[cfg(not(unix))]
fn local_time(_secs: i64) -> Option<[u32; 5]> {
    None
}

/// UTC as (month, day, hour, minute, second) of `secs` since 1970-01-01, the
/// fallback when local time is unavailable: days to a civil date by the era
/// arithmetic of the proleptic Gregorian calendar (400-year eras of 146 097 days).
pub fn utc_time(secs: i64) -> [u32; 5] {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400) as u32;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    [month, day, rem / 3600, rem / 60 % 60, rem % 60]
}

/// glog's line prefix: `I1128 15:04:05.123456 12345 file.rs:12] `.
pub fn glog_prefix(severity: char, at: SystemTime, id: u32, file: &str, line: u32) -> String {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs() as i64;
    let [mo, d, h, mi, s] = local_time(secs).unwrap_or_else(|| utc_time(secs));
    format!(
        "{severity}{mo:02}{d:02} {h:02}:{mi:02}:{s:02}.{:06} {id:>5} {file}:{line}] ",
        since.subsec_micros()
    )
}

/// The tag of a source location: its path below `src/` (`train/mod.rs`).
fn source_tag(loc: &Location) -> String {
    let f = loc.file().replace('\\', "/");
    match f.rfind("src/") {
        Some(i) => f[i + 4..].to_string(),
        None => f,
    }
}

/// Lines kept for the text log before its file is opened (the first lines of a run).
const EARLY_LINES: usize = 1000;

/// Where the run's lines go.
pub struct Log {
    out: Box<dyn Write + Send>,
    /// Whether lines to `out` get glog's prefix.
    prefix_out: bool,
    bar: Option<ProgressBar>,
    jsonl: Option<File>,
    /// The text log, every line prefixed.
    text: Option<File>,
    /// Prefixed lines logged before `text` was opened.
    early: Vec<String>,
}

impl Log {
    /// Lines to `out` as they are, no progress bar, no JSON record, no text file.
    pub fn new(out: Box<dyn Write + Send>) -> Log {
        Log {
            out,
            prefix_out: false,
            bar: None,
            jsonl: None,
            text: None,
            early: Vec::new(),
        }
    }

    /// Lines to stdout: with a progress bar over `total` iterations when stdout
    /// is a terminal, with glog's prefix when it is not (a file, a pipe).
    pub fn stdout(total: u64) -> Log {
        use std::io::IsTerminal;
        let mut log = Log::new(Box::new(std::io::stdout()));
        log.prefix_out = !std::io::stdout().is_terminal();
        if std::io::stdout().is_terminal() {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stdout());
            if let Ok(style) = ProgressStyle::with_template(
                "{bar:30} {pos}/{len} iter  {per_sec}  ETA {eta}  {msg}",
            ) {
                bar.set_style(style);
            }
            log.bar = Some(bar);
        }
        log
    }

    /// Appends JSON records to `file` from now on.
    pub fn set_jsonl(&mut self, file: File) {
        self.jsonl = Some(file);
    }

    /// Appends prefixed lines to `file` from now on, starting with those
    /// logged before (up to the first thousand).
    pub fn set_text(&mut self, mut file: File) {
        for l in self.early.drain(..) {
            let _ = writeln!(file, "{l}");
        }
        self.text = Some(file);
    }

    /// Logs an information line; the prefix names the caller's file and line.
    #[track_caller]
    pub fn line(&mut self, s: &str) {
        let loc = Location::caller();
        let prefixed = (self.prefix_out || self.text.is_some() || self.early.len() < EARLY_LINES)
            .then(|| {
                let p = glog_prefix(
                    'I',
                    SystemTime::now(),
                    std::process::id(),
                    &source_tag(loc),
                    loc.line(),
                );
                format!("{p}{s}")
            });
        match (&mut self.text, &prefixed) {
            (Some(f), Some(p)) => {
                let _ = writeln!(f, "{p}");
            }
            (None, Some(p)) if self.early.len() < EARLY_LINES => self.early.push(p.clone()),
            _ => {}
        }
        let shown = match &prefixed {
            Some(p) if self.prefix_out => p.as_str(),
            _ => s,
        };
        match &self.bar {
            Some(bar) => bar.println(shown),
            None => {
                // A closed pipe must not stop training.
                let _ = writeln!(self.out, "{shown}");
            }
        }
    }

    /// Moves the progress bar (no-op without one).
    pub fn progress(&mut self, iter: u64, loss: f64) {
        if let Some(bar) = &self.bar {
            bar.set_position(iter);
            bar.set_message(format!("loss {}", fmt_g(loss)));
        }
    }

    /// Sets where the bar starts (a resumed run), without counting those iterations in its rate.
    pub fn start_at(&mut self, iter: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(iter);
            bar.reset_eta();
        }
    }

    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        let _ = self.out.flush();
        if let Some(f) = &mut self.text {
            let _ = f.flush();
        }
    }

    /// Writes one record: `{"iter", "phase", ["net",] "lr", "seconds", ["loss",] "outputs"}`.
    pub fn record(&mut self, r: &Record) {
        let Some(f) = &mut self.jsonl else { return };
        let outputs: Vec<String> = r
            .outputs
            .iter()
            .map(|(k, v)| format!("{}:{}", json_str(k), json_num(*v)))
            .collect();
        let mut s = format!(
            "{{\"iter\":{},\"phase\":{}",
            r.iter,
            json_str(&r.phase.to_string())
        );
        if let Some(n) = r.net {
            s += &format!(",\"net\":{n}");
        }
        s += &format!(
            ",\"lr\":{},\"seconds\":{}",
            json_num(r.lr),
            json_num((r.seconds * 1e3).round() / 1e3)
        );
        if let Some(l) = r.loss {
            s += &format!(",\"loss\":{}", json_num(l));
        }
        s += &format!(",\"outputs\":{{{}}}}}", outputs.join(","));
        let _ = writeln!(f, "{s}");
    }
}

/// One line of the JSON record.
pub struct Record {
    pub iter: u64,
    pub phase: crate::netdef::Phase,
    /// Test net index.
    pub net: Option<usize>,
    pub lr: f64,
    /// Since the start of this run.
    pub seconds: f64,
    /// Train: the smoothed loss; test: the mean loss when `test_compute_loss`.
    pub loss: Option<f64>,
    /// Output name (`name[k]` for element k of a multi-element output) → value.
    pub outputs: Vec<(String, f64)>,
}

/// Caffe's `UpdateSmoothedLoss`: the mean of the last `average_loss` losses.
#[derive(Debug, Clone)]
pub struct Smoother {
    window: usize,
    losses: Vec<f64>,
    next: usize,
    pub value: f64,
}

impl Smoother {
    pub fn new(window: usize) -> Smoother {
        Smoother {
            window: window.max(1),
            losses: Vec::new(),
            next: 0,
            value: 0.0,
        }
    }

    /// The window as snapshot metadata: `window:next:value:loss,loss,...`,
    /// each f64 as its 16 hex digits so a resumed run smooths bit-identically.
    pub fn to_meta(&self) -> String {
        let hex = |v: f64| format!("{:016x}", v.to_bits());
        let losses: Vec<String> = self.losses.iter().map(|&v| hex(v)).collect();
        format!(
            "{}:{}:{}:{}",
            self.window,
            self.next,
            hex(self.value),
            losses.join(",")
        )
    }

    /// Restores [`Smoother::to_meta`]'s text for a window of `window` losses;
    /// `None` when it is malformed or was written for another `average_loss`.
    pub fn from_meta(text: &str, window: usize) -> Option<Smoother> {
        let bits = |h: &str| u64::from_str_radix(h, 16).ok().map(f64::from_bits);
        let mut parts = text.splitn(4, ':');
        let w: usize = parts.next()?.parse().ok()?;
        let next: usize = parts.next()?.parse().ok()?;
        let value = bits(parts.next()?)?;
        let list = parts.next()?;
        let losses = if list.is_empty() {
            Vec::new()
        } else {
            list.split(',').map(bits).collect::<Option<Vec<f64>>>()?
        };
        let full = losses.len() == w;
        (w == window.max(1) && losses.len() <= w && next < w.max(1) && (full || next == 0))
            .then_some(Smoother {
                window: w,
                losses,
                next,
                value,
            })
    }

    pub fn push(&mut self, loss: f64) {
        if self.losses.len() < self.window {
            self.losses.push(loss);
            let n = self.losses.len() as f64;
            self.value = (self.value * (n - 1.0) + loss) / n;
        } else {
            self.value += (loss - self.losses[self.next]) / self.window as f64;
            self.losses[self.next] = loss;
            self.next = (self.next + 1) % self.window;
        }
    }
}
