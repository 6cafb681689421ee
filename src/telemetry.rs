//! Logging: tracing to stderr, as text or one JSON object per line. Under systemd, stderr goes
//! to journald, which adds time and unit; text lines then omit their own timestamp.

use crate::config::LogFormat;
use tracing_subscriber::EnvFilter;

/// Validates a level or filter (`info`, `marketsync=debug,warn`).
pub fn parse_filter(level: &str) -> Result<EnvFilter, String> {
    EnvFilter::try_new(level).map_err(|e| {
        format!("not a log level or filter ({e}); use error, warn, info, debug or trace")
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
