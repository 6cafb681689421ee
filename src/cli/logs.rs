//! `marketsync logs`: the sync log, filtered by channel, level and age; `--follow` keeps
//! printing new entries.

use super::render::{paint, state_tone, Table, Tone};
use crate::config::parse_duration;
use crate::store::synclog::{self, Level, Query};
use crate::store::{now_ms, Store};

#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// Only this channel.
    #[arg(long)]
    pub channel: Option<String>,
    /// At least this level: debug, info, warn, error.
    #[arg(long, value_parser = parse_level)]
    pub level: Option<Level>,
    /// Only entries newer than this (e.g. 30m, 2h, 7d).
    #[arg(long, value_parser = parse_since)]
    pub since: Option<std::time::Duration>,
    /// At most this many entries (the newest); 0 for all (a cut listing says so on stderr).
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// Keep printing new entries until interrupted.
    #[arg(long, short)]
    pub follow: bool,
    /// Print JSON instead of a table (for scripts).
    #[arg(long)]
    pub json: bool,
}

fn parse_level(s: &str) -> Result<Level, crate::config::BadValue> {
    Level::parse(s).ok_or_else(|| {
        crate::config::BadValue(format!(
            "unknown level {s:?}; use debug, info, warn or error"
        ))
    })
}

fn parse_since(s: &str) -> Result<std::time::Duration, crate::config::BadValue> {
    parse_duration(s)
}

fn print_rows(rows: &[synclog::Row], json: bool, header: bool) -> anyhow::Result<()> {
    if json {
        for r in rows {
            println!("{}", serde_json::to_string(r)?);
        }
        return Ok(());
    }
    let mut t = Table::new(&[
        "TIME (UTC)",
        "LEVEL",
        "CHANNEL",
        "OPERATION",
        "RECORDS",
        "MESSAGE",
    ]);
    for r in rows {
        let at = chrono::DateTime::from_timestamp_millis(r.at).unwrap_or_default();
        let tone = match r.level.as_str() {
            "warn" => Tone::Warn,
            "error" => Tone::Bad,
            _ => Tone::Plain,
        };
        t.row(vec![
            (at.format("%Y-%m-%d %H:%M:%S").to_string(), Tone::Plain),
            (r.level.clone(), tone),
            (r.channel.clone().unwrap_or_else(|| "-".into()), Tone::Plain),
            (r.operation.clone(), Tone::Plain),
            (
                r.record_count
                    .map(|n| n.to_string())
                    .unwrap_or_else(|| "-".into()),
                Tone::Plain,
            ),
            (r.message.replace('\n', " "), Tone::Plain),
        ]);
    }
    let text = t.render();
    let text = if header {
        text.as_str()
    } else {
        text.split_once('\n').map(|(_, rest)| rest).unwrap_or("")
    };
    print!("{text}");
    Ok(())
}

pub fn run(store: &Store, args: &LogsArgs) -> anyhow::Result<i32> {
    let mut q = Query {
        channel: args.channel.clone(),
        min_level: args.level,
        since_ms: args.since.map(|d| now_ms() - d.as_millis() as i64),
        after_id: None,
        limit: super::render::limit(args.limit),
    };
    let rows = synclog::query(store, &q)?;
    super::render::cut_notice(rows.len(), synclog::count(store, &q)?, "log entries");
    if rows.is_empty() && !args.json && !args.follow {
        println!("{}", paint("(no log entries match)", state_tone("")));
        return Ok(0);
    }
    print_rows(&rows, args.json, true)?;
    if !args.follow {
        return Ok(0);
    }
    let mut last = rows.last().map(|r| r.id).unwrap_or(0);
    q.since_ms = None;
    q.limit = 1000;
    loop {
        std::thread::sleep(std::time::Duration::from_secs(1));
        q.after_id = Some(last);
        let rows = synclog::query(store, &q)?;
        if let Some(r) = rows.last() {
            last = r.id;
            print_rows(&rows, args.json, false)?;
        }
    }
}
