//! Import progress: a bar on a terminal (indicatif), a line every few seconds otherwise
//! (a log file, CI), nothing when turned off (tests, library callers).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often a progress line is written when stderr is not a terminal.
const LINE_EVERY: Duration = Duration::from_secs(5);

/// Progress through one file, by bytes read.
pub struct Progress {
    label: String,
    total: u64,
    bar: Option<ProgressBar>,
    lines: bool,
    last_line: Mutex<Instant>,
}

impl Progress {
    /// Progress through `label`, `total` bytes long: a bar when stderr is a terminal,
    /// else periodic lines; nothing at all when `shown` is false.
    pub fn new(label: &str, total: u64, shown: bool) -> Self {
        let bar = shown.then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message(label.to_owned());
            bar
        });
        // indicatif draws nothing when stderr is not a terminal: lines instead.
        let lines = bar.as_ref().is_some_and(ProgressBar::is_hidden);
        Self {
            label: label.to_owned(),
            total,
            bar: bar.filter(|b| !b.is_hidden()),
            lines,
            last_line: Mutex::new(Instant::now()),
        }
    }

    /// No output.
    pub fn hidden() -> Self {
        Self::new("", 0, false)
    }

    fn percent(&self, bytes: u64) -> u64 {
        (bytes * 100)
            .checked_div(self.total)
            .unwrap_or(100)
            .min(100)
    }

    /// `bytes` of the file read, `rows` rows.
    pub fn at(&self, bytes: u64, rows: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(bytes);
            bar.set_message(format!("{}: {rows} rows", self.label));
        } else if self.lines {
            let mut last = self.last_line.lock().unwrap_or_else(|e| e.into_inner());
            if last.elapsed() >= LINE_EVERY {
                *last = Instant::now();
                eprintln!(
                    "{}: {rows} rows read ({}%)",
                    self.label,
                    self.percent(bytes)
                );
            }
        }
    }

    /// The file is read.
    pub fn done(&self, bytes: u64, rows: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(bytes);
            bar.finish_and_clear();
        }
        if self.bar.is_some() || self.lines {
            eprintln!("{}: {rows} rows read", self.label);
        }
    }
}
