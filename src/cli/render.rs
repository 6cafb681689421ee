//! Output for people and for scripts: aligned tables (colour only on a terminal and never with
//! `NO_COLOR`), times as UTC plus "how long ago", and `--json` for every listing.

use std::io::IsTerminal;

/// Whether to colour stdout.
pub fn colour() -> bool {
    std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal()
}

#[derive(Clone, Copy)]
pub enum Tone {
    Plain,
    Good,
    Warn,
    Bad,
}

pub fn paint(text: &str, tone: Tone) -> String {
    if !colour() {
        return text.to_string();
    }
    let code = match tone {
        Tone::Plain => return text.to_string(),
        Tone::Good => "32",
        Tone::Warn => "33",
        Tone::Bad => "31",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

/// The tone of a job or inbox state.
pub fn state_tone(state: &str) -> Tone {
    match state {
        "done" | "ok" | "yes" => Tone::Good,
        "retrying" | "parked" | "warn" => Tone::Warn,
        "dead" | "error" | "FAIL" => Tone::Bad,
        _ => Tone::Plain,
    }
}

/// A table with a header row; cells are (text, tone).
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<(String, Tone)>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<(String, Tone)>) {
        self.rows.push(cells);
    }

    pub fn plain_row(&mut self, cells: Vec<String>) {
        self.rows
            .push(cells.into_iter().map(|c| (c, Tone::Plain)).collect());
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn render(&self) -> String {
        let cols = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, (cell, _)) in row.iter().enumerate().take(cols) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let line = |cells: Vec<(String, Tone)>, out: &mut String| {
            let last = cells.len().saturating_sub(1);
            for (i, (cell, tone)) in cells.into_iter().enumerate() {
                let pad = widths[i].saturating_sub(cell.chars().count());
                out.push_str(&paint(&cell, tone));
                if i != last {
                    out.push_str(&" ".repeat(pad + 2));
                }
            }
            out.push('\n');
        };
        line(
            self.header
                .iter()
                .map(|h| (h.clone(), Tone::Plain))
                .collect(),
            &mut out,
        );
        for row in &self.rows {
            line(row.clone(), &mut out);
        }
        out
    }
}

/// `2026-11-21 22:31:45 UTC (3m ago)`, or `-`.
pub fn when(ms: Option<i64>) -> String {
    match ms {
        None => "-".into(),
        Some(ms) => {
            let at = chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default();
            format!("{} ({})", at.format("%Y-%m-%d %H:%M:%S UTC"), ago(ms))
        }
    }
}

/// `3s ago`, `5m ago`, `2h ago`, `4d ago`.
pub fn ago(ms: i64) -> String {
    let secs = ((crate::store::now_ms() - ms) / 1000).max(0);
    match secs {
        0..=59 => format!("{secs}s ago"),
        60..=3599 => format!("{}m ago", secs / 60),
        3600..=86_399 => format!("{}h ago", secs / 3600),
        _ => format!("{}d ago", secs / 86_400),
    }
}

/// Shortens a message for a table cell (full text stays in `--json` and `show`).
pub fn clip(text: &str, max: usize) -> String {
    let one_line = text.replace('\n', " ");
    if one_line.chars().count() <= max {
        one_line
    } else {
        format!("{}…", one_line.chars().take(max - 1).collect::<String>())
    }
}

pub fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// `--limit` as the store takes it: 0 means all.
pub fn limit(n: usize) -> usize {
    if n == 0 {
        i64::MAX as usize
    } else {
        n
    }
}

/// A listing cut by `--limit` says so on stderr (stdout stays the listing, for scripts).
pub fn cut_notice(shown: usize, total: i64, what: &str) {
    if (shown as i64) < total {
        eprintln!(
            "showing {} of {} {what}; --limit 0 for all",
            thousands(shown as i64),
            thousands(total)
        );
    }
}

/// 5029 -> "5,029".
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

/// Progress of a long one-shot command, on stderr and only on a terminal: one line rewritten
/// at most ten times a second, cleared when done.
pub struct Progress {
    what: String,
    on: bool,
    last: std::sync::Mutex<Option<std::time::Instant>>,
}

impl Progress {
    pub fn new(what: &str) -> Progress {
        Progress {
            what: what.to_string(),
            on: std::io::stderr().is_terminal(),
            last: std::sync::Mutex::new(None),
        }
    }

    pub fn show(&self, done: usize) {
        self.show_as(&self.what, done);
    }

    /// Progress of one part of the work (`reading Odoo products: 1,200`).
    pub fn show_as(&self, what: &str, done: usize) {
        if !self.on {
            return;
        }
        let now = std::time::Instant::now();
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|t| now.duration_since(t) < std::time::Duration::from_millis(100)) {
            return;
        }
        *last = Some(now);
        eprint!("\r\x1b[K{what}: {}", thousands(done as i64));
    }

    pub fn done(&self) {
        let shown = self
            .last
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some();
        if self.on && shown {
            eprint!("\r\x1b[K");
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn thousands_are_grouped() {
        assert_eq!(super::thousands(5029), "5,029");
        assert_eq!(super::thousands(100), "100");
        assert_eq!(super::thousands(1_234_567), "1,234,567");
        assert_eq!(super::thousands(0), "0");
    }
}
