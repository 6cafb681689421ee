//! `marketsync status`: is the daemon running, does Odoo answer, and per channel whether it is
//! enabled, its queue by state, dead jobs, parked orders, last successful runs and last error.

use super::render::{clip, paint, print_json, state_tone, when, Table, Tone};
use crate::config::{ChannelKind, Config};
use crate::store::queue::JobState;
use crate::store::{facts, inbox, queue, streams, synclog, Store};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Serialize)]
struct ChannelStatus {
    channel: String,
    enabled: bool,
    jobs: BTreeMap<&'static str, i64>,
    inbox_parked: i64,
    inbox_waiting: i64,
    last_success_at: Option<i64>,
    last_error: Option<String>,
    last_error_at: Option<i64>,
    /// Optional parts the channel leaves out now (a translation...), and why.
    left_out: Vec<LeftOut>,
    /// Set while its peer cannot be reached: since when, why, and how many jobs wait for it.
    unreachable: Option<Unreachable>,
    /// Set while its peer asked for a pause (over a quota): until when (ms), and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    throttled: Option<Throttled>,
}

#[derive(Debug, Serialize)]
struct Throttled {
    until: i64,
    reason: String,
}

#[derive(Debug, Serialize)]
struct Unreachable {
    since: i64,
    error: String,
    /// "cartona unreachable since 2026-12-02 18:02:11 UTC: connection refused".
    text: String,
    waiting_jobs: i64,
    next_probe_at: i64,
    /// The peer refused the channel's credential: stopped, not merely unreachable.
    stopped: bool,
}

#[derive(Debug, Serialize)]
struct LeftOut {
    part: String,
    why: String,
}

#[derive(Debug, Serialize)]
struct Report {
    state_path: String,
    daemon_running: bool,
    daemon_heartbeat_at: Option<i64>,
    daemon_paused: Option<String>,
    /// What the running daemon's `/healthz` says: `None` if nothing answered there.
    daemon_health: Option<DaemonHealth>,
    odoo_url: String,
    odoo_protocol: &'static str,
    odoo_version: Option<String>,
    odoo_user: Option<String>,
    odoo_status: Option<String>,
    odoo_unreachable_since: Option<i64>,
    /// What to hear before Odoo stops answering (an expiring key, a deprecated protocol).
    odoo_notices: Vec<String>,
    channels: Vec<ChannelStatus>,
    streams: Vec<streams::Stream>,
}

#[derive(Debug, Serialize)]
struct DaemonHealth {
    healthy: bool,
    problems: Vec<String>,
}

/// Asks the daemon's listener for `/healthz` (it knows what the state file cannot say, e.g.
/// that the state cannot be written). Plain HTTP/1.1 over loopback, short timeouts.
fn ask_daemon(listen: std::net::SocketAddr) -> Option<DaemonHealth> {
    use std::io::{Read, Write};
    use std::time::Duration;
    let mut addr = listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let mut conn = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    conn.set_write_timeout(Some(Duration::from_secs(2))).ok()?;
    conn.write_all(
        format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .ok()?;
    let mut raw = Vec::new();
    conn.take(256 * 1024).read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let code: u16 = head.split_whitespace().nth(1)?.parse().ok()?;
    let json: serde_json::Value = serde_json::from_str(body.trim()).ok()?;
    let problems = json["problems"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    Some(DaemonHealth {
        healthy: code == 200,
        problems,
    })
}

fn gather(config: &Config, store: &Store) -> anyhow::Result<Report> {
    let fact = |k| facts::get(store, k).map(|o| o.map(|(v, _)| v));
    let heartbeat = facts::heartbeat(store)?;
    let all_streams = streams::list(store)?;
    let counts = queue::counts(store)?;
    let inbox_counts = inbox::counts(store)?;
    // The address the daemon says it bound (the configured one may be port 0).
    let listen = fact(facts::DAEMON_LISTEN)?
        .and_then(|a| a.parse().ok())
        .unwrap_or(config.webhooks.listen);
    let daemon_health = ask_daemon(listen);

    let mut names: Vec<String> = ChannelKind::ALL
        .iter()
        .map(|k| k.name().to_string())
        .collect();
    for (ch, _, _) in &counts {
        if !names.contains(ch) {
            names.push(ch.clone());
        }
    }
    let mut channels = Vec::new();
    for name in names {
        let enabled = name
            .parse::<ChannelKind>()
            .ok()
            .and_then(|k| config.channel(k))
            .is_some_and(|c| c.enabled);
        let mut jobs: BTreeMap<&'static str, i64> =
            JobState::ALL.iter().map(|s| (s.as_str(), 0)).collect();
        for (ch, st, n) in &counts {
            if *ch == name {
                jobs.insert(st.as_str(), *n);
            }
        }
        let inbox_n = |state: &str| {
            inbox_counts
                .iter()
                .filter(|(s, st, _)| *s == name && st == state)
                .map(|(_, _, n)| *n)
                .sum()
        };
        let prefix = format!("{name}.");
        let last_success_at = all_streams
            .iter()
            .filter(|s| s.name.starts_with(&prefix))
            .filter_map(|s| s.last_success_at)
            .max();
        let last_error = synclog::last_error(store, Some(&name))?;
        channels.push(ChannelStatus {
            channel: name.clone(),
            enabled,
            jobs,
            inbox_parked: inbox_n("parked"),
            inbox_waiting: inbox_n("received"),
            last_success_at,
            last_error: last_error.as_ref().map(|r| r.message.clone()),
            last_error_at: last_error.map(|r| r.at),
            left_out: crate::channel::optional::left_out(store, &name)?
                .into_iter()
                .map(|(part, why)| LeftOut { part, why })
                .collect(),
            unreachable: match crate::store::reach::get(store, &name)? {
                Some(u) => Some(Unreachable {
                    since: u.since,
                    text: u.describe(),
                    waiting_jobs: crate::store::reach::waiting(store, &name)?,
                    next_probe_at: u.next_probe_at,
                    stopped: u.stopped,
                    error: u.error,
                }),
                None => None,
            },
            throttled: throttled(store, &name)?,
        });
    }
    Ok(Report {
        state_path: if store.path() == std::path::Path::new(":memory:") {
            format!("{} (not created yet)", config.state.path.display())
        } else {
            store.path().display().to_string()
        },
        // A daemon that does not beat is gone, unless its listener still answers (it cannot
        // beat while the state is not writable).
        daemon_running: facts::beating(heartbeat) || daemon_health.is_some(),
        daemon_health,
        daemon_heartbeat_at: heartbeat,
        daemon_paused: fact(facts::DAEMON_PAUSED)?,
        odoo_url: config.odoo.url.to_string(),
        odoo_protocol: config.odoo.protocol.as_str(),
        odoo_version: fact(facts::ODOO_VERSION)?,
        odoo_user: fact(facts::ODOO_USER)?,
        odoo_status: fact(facts::ODOO_STATUS)?,
        odoo_unreachable_since: fact(facts::ODOO_DOWN_SINCE)?.and_then(|v| v.parse().ok()),
        odoo_notices: fact(facts::ODOO_NOTICES)?
            .map(|v| v.lines().map(str::to_string).collect())
            .unwrap_or_default(),
        channels,
        streams: all_streams,
    })
}

/// The pause a channel's peer asked for (`channel.<name>.throttled_until`), while it lasts.
fn throttled(store: &Store, channel: &str) -> anyhow::Result<Option<Throttled>> {
    let key = format!("channel.{channel}.throttled_until");
    let Some((value, _)) = crate::store::facts::get(store, &key)? else {
        return Ok(None);
    };
    let v: serde_json::Value = serde_json::from_str(&value).unwrap_or_default();
    let until = v["until"].as_i64().unwrap_or(0);
    Ok((until > crate::store::now_ms()).then(|| Throttled {
        until,
        reason: v["reason"].as_str().unwrap_or("").to_string(),
    }))
}

pub fn run(config: &Config, store: &Store, json: bool) -> anyhow::Result<i32> {
    let r = gather(config, store)?;
    if json {
        print_json(&r)?;
        return Ok(0);
    }
    println!("state   {}", r.state_path);
    let daemon = match (r.daemon_running, r.daemon_heartbeat_at) {
        (true, _) if r.daemon_health.as_ref().is_some_and(|h| !h.healthy) => {
            paint("running, UNHEALTHY", Tone::Bad)
        }
        (true, Some(h)) => paint(
            &format!("running (last heartbeat {})", super::render::ago(h)),
            Tone::Good,
        ),
        (false, Some(h)) => paint(
            &format!("not running (last heartbeat {})", super::render::ago(h)),
            Tone::Warn,
        ),
        (true, None) => paint("running", Tone::Good),
        _ => paint("not running", Tone::Warn),
    };
    println!("daemon  {daemon}");
    let problems: Vec<String> = r
        .daemon_health
        .as_ref()
        .map(|h| h.problems.clone())
        .unwrap_or_default();
    for p in &problems {
        println!("        {}", paint(p, Tone::Bad));
    }
    if let (true, Some(why)) = (r.daemon_running, &r.daemon_paused) {
        if !problems.iter().any(|p| p.contains(why.as_str())) {
            println!("        {}", paint(&format!("paused: {why}"), Tone::Bad));
        }
    }
    let odoo = match (&r.odoo_status, r.odoo_unreachable_since) {
        (_, Some(since)) => paint(
            &format!(
                "UNREACHABLE since {}: {}",
                when(Some(since)),
                r.odoo_status.as_deref().unwrap_or("")
            ),
            Tone::Bad,
        ),
        (Some(s), None) if s == "ok" => paint("reachable", Tone::Good),
        (Some(s), None) => paint(s, Tone::Bad),
        (None, None) => "not contacted yet".to_string(),
    };
    println!(
        "odoo    {} over {}: {}{}{}",
        r.odoo_url,
        r.odoo_protocol,
        odoo,
        r.odoo_version
            .as_ref()
            .map(|v| format!(", Odoo {v}"))
            .unwrap_or_default(),
        r.odoo_user
            .as_ref()
            .map(|u| format!(", user {u}"))
            .unwrap_or_default()
    );
    for n in &r.odoo_notices {
        println!("        {}", paint(&format!("warning: {n}"), Tone::Warn));
    }
    println!();
    let mut t = Table::new(&[
        "CHANNEL",
        "ENABLED",
        "PENDING",
        "RUNNING",
        "RETRYING",
        "DEAD",
        "DONE",
        "PARKED",
        "LAST SUCCESS",
        "LAST ERROR",
    ]);
    for c in &r.channels {
        let n = |s: &str| c.jobs.get(s).copied().unwrap_or(0);
        let dead = n("dead");
        t.row(vec![
            (c.channel.clone(), Tone::Plain),
            (
                if c.enabled { "yes" } else { "no" }.to_string(),
                if c.enabled { Tone::Good } else { Tone::Plain },
            ),
            (n("pending").to_string(), Tone::Plain),
            (n("running").to_string(), Tone::Plain),
            (
                n("retrying").to_string(),
                if n("retrying") > 0 {
                    Tone::Warn
                } else {
                    Tone::Plain
                },
            ),
            (
                dead.to_string(),
                if dead > 0 { Tone::Bad } else { Tone::Plain },
            ),
            (n("done").to_string(), Tone::Plain),
            (
                c.inbox_parked.to_string(),
                if c.inbox_parked > 0 {
                    Tone::Warn
                } else {
                    Tone::Plain
                },
            ),
            (when(c.last_success_at), Tone::Plain),
            (
                c.last_error
                    .as_deref()
                    .map(|e| clip(e, 60))
                    .unwrap_or_else(|| "-".into()),
                state_tone(if c.last_error.is_some() { "error" } else { "" }),
            ),
        ]);
    }
    print!("{}", t.render());
    for c in &r.channels {
        if let Some(u) = &c.unreachable {
            println!(
                "{}",
                paint(
                    &format!(
                        "{}; {} job(s) wait for it without spending attempts",
                        u.text, u.waiting_jobs
                    ),
                    Tone::Bad
                )
            );
        }
        if let Some(t) = &c.throttled {
            let until = chrono::DateTime::from_timestamp_millis(t.until)
                .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                .unwrap_or_default();
            println!(
                "{}",
                paint(
                    &format!(
                        "{} throttled until {until}: {}; its jobs wait without spending attempts",
                        c.channel, t.reason
                    ),
                    Tone::Bad
                )
            );
        }
        for l in &c.left_out {
            println!(
                "{}",
                paint(
                    &format!("{}: {} left out: {}", c.channel, l.part, l.why),
                    Tone::Warn
                )
            );
        }
    }
    println!();
    let mut t = Table::new(&["STREAM", "LAST RUN", "LAST SUCCESS", "LAST ERROR"]);
    for s in &r.streams {
        let failing = s.last_error_at.unwrap_or(0) > s.last_success_at.unwrap_or(0);
        t.row(vec![
            (s.name.clone(), Tone::Plain),
            (when(s.last_run_at), Tone::Plain),
            (when(s.last_success_at), Tone::Plain),
            (
                s.last_error
                    .as_deref()
                    .map(|e| clip(e, 60))
                    .unwrap_or_else(|| "-".into()),
                if failing { Tone::Bad } else { Tone::Plain },
            ),
        ]);
    }
    print!("{}", t.render());
    if r.streams.is_empty() {
        println!("(no stream has run yet)");
    }
    Ok(0)
}
