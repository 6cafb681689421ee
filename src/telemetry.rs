//! Logging: tracing to stderr, as text or one JSON object per line. Under systemd, stderr goes
//! to journald, which adds time and unit; text lines then omit their own timestamp.

use crate::config::LogFormat;
use tracing_subscriber::EnvFilter;

/// Validates a level or filter (`info`, `marketsync=debug,warn`).
pub fn parse_filter(level: &str) -> Result<EnvFilter, crate::config::BadValue> {
    EnvFilter::try_new(level).map_err(|e| {
        crate::config::BadValue(format!(
            "not a log level or filter ({e}); use error, warn, info, debug or trace"
        ))
    })
}

/// Installs the global subscriber. `RUST_LOG` overrides the configured level.
pub fn init(level: &str, format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| parse_filter(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let under_journald = std::env::var_os("JOURNAL_STREAM").is_some();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text if under_journald => builder.without_time().with_ansi(false).try_init(),
        LogFormat::Text => builder
            .with_ansi(
                std::io::IsTerminal::is_terminal(&std::io::stderr())
                    && std::env::var_os("NO_COLOR").is_none(),
            )
            .try_init(),
    };
}

/// Counters for `/metrics` that only the running process knows (the state file holds the rest):
/// marketplace requests by channel and outcome, job outcomes and retries, webhooks by outcome.
/// Process-wide, like the Prometheus client libraries' default registry.
pub mod counters {
    use std::collections::BTreeMap;
    use std::sync::{Mutex, OnceLock};

    /// `marketsync_sends_total{channel, outcome}`: requests to a marketplace.
    pub const SENDS: &str = "marketsync_sends_total";
    /// `marketsync_job_outcomes_total{channel, kind, outcome}`: done, retry, dead, superseded.
    pub const JOB_OUTCOMES: &str = "marketsync_job_outcomes_total";
    /// `marketsync_retries_total{channel, kind}`: failed attempts that will be tried again.
    pub const RETRIES: &str = "marketsync_retries_total";
    /// `marketsync_webhooks_total{source, outcome}`: webhook requests and how they were answered.
    pub const WEBHOOKS: &str = "marketsync_webhooks_total";
    /// `marketsync_events_total{operation, level}`: sync-log lines, by operation and level.
    pub const EVENTS: &str = "marketsync_events_total";

    /// (metric, rendered labels) -> count.
    type Registry = BTreeMap<(&'static str, String), u64>;

    fn registry() -> std::sync::MutexGuard<'static, Registry> {
        static R: OnceLock<Mutex<Registry>> = OnceLock::new();
        R.get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn render_labels(labels: &[(&str, &str)]) -> String {
        let mut out = String::new();
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let v = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            out.push_str(&format!("{k}=\"{v}\""));
        }
        out
    }

    /// Adds `n` to the counter `metric` with these labels.
    pub fn add(metric: &'static str, labels: &[(&str, &str)], n: u64) {
        *registry()
            .entry((metric, render_labels(labels)))
            .or_default() += n;
    }

    pub fn inc(metric: &'static str, labels: &[(&str, &str)]) {
        add(metric, labels, 1);
    }

    /// Every counter of `metric`: (rendered labels, value).
    pub fn snapshot(metric: &'static str) -> Vec<(String, u64)> {
        registry()
            .iter()
            .filter(|((m, _), _)| *m == metric)
            .map(|((_, l), v)| (l.clone(), *v))
            .collect()
    }
}
