//! Training output: Caffe's log lines (so scripts that parse Caffe logs work
//! on netrun's), an optional progress bar, and the JSON-lines record.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::fs::File;
use std::io::Write;

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

/// Where the run's lines go.
pub struct Log {
    out: Box<dyn Write + Send>,
    bar: Option<ProgressBar>,
    jsonl: Option<File>,
}

impl Log {
    /// Lines to `out`, no progress bar, no JSON record.
    pub fn new(out: Box<dyn Write + Send>) -> Log {
        Log {
            out,
            bar: None,
            jsonl: None,
        }
    }

    /// Lines to stdout, with a progress bar over `total` iterations when stdout is a terminal.
    pub fn stdout(total: u64) -> Log {
        use std::io::IsTerminal;
        let mut log = Log::new(Box::new(std::io::stdout()));
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

    pub fn line(&mut self, s: &str) {
        match &self.bar {
            Some(bar) => bar.println(s),
            None => {
                // A closed pipe must not stop training.
                let _ = writeln!(self.out, "{s}");
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
