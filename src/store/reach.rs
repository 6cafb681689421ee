//! Which channels' peers cannot be reached, since when and why. The first job that cannot
//! reach its peer marks the channel; the jobs that could not reach it wait without spending
//! attempts; the channel's probe clears the mark when the peer answers again, and releases
//! the waiting jobs at once (they do not sit out their backoff).

use super::{Result, Store};
use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};

/// A channel whose peer cannot be reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unreachable {
    #[serde(skip)]
    pub channel: String,
    /// When it first failed to answer (ms).
    pub since: i64,
    /// The last failure, in the operator's words ("connection refused").
    pub error: String,
    /// Probes that failed since.
    #[serde(default)]
    pub probes: u32,
    /// When the next probe is due (ms).
    #[serde(default)]
    pub next_probe_at: i64,
    /// The peer answers but refuses the channel's credential (Meta's code 190): the channel is
    /// stopped until a probe with a good one is accepted (a new token and a restart).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stopped: bool,
}

impl Unreachable {
    /// "cartona unreachable since 2026-12-02 18:02:11 UTC: connection refused".
    pub fn describe(&self) -> String {
        let since = chrono::DateTime::from_timestamp_millis(self.since)
            .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
            .unwrap_or_default();
        let what = if self.stopped {
            "stopped"
        } else {
            "unreachable"
        };
        format!("{} {what} since {since}: {}", self.channel, self.error)
    }
}

const PREFIX: &str = "channel.";
const SUFFIX: &str = ".unreachable";

fn key(channel: &str) -> String {
    format!("{PREFIX}{channel}{SUFFIX}")
}

fn read(tx: &rusqlite::Connection, channel: &str) -> Result<Option<Unreachable>> {
    let value: Option<String> = tx
        .query_row(
            "SELECT value FROM facts WHERE key = ?1",
            [key(channel)],
            |r| r.get(0),
        )
        .optional()?;
    Ok(value.and_then(|v| parse(channel, &v)))
}

fn parse(channel: &str, value: &str) -> Option<Unreachable> {
    let mut u: Unreachable = serde_json::from_str(value).ok()?;
    u.channel = channel.to_string();
    Some(u)
}

fn write(tx: &rusqlite::Connection, u: &Unreachable, now: i64) -> Result<()> {
    let value = serde_json::to_string(u).expect("serializable");
    tx.execute(
        "INSERT INTO facts (key, value, updated_at) VALUES (?1, ?2, ?3) \
         ON CONFLICT (key) DO UPDATE SET value = ?2, updated_at = ?3",
        params![key(&u.channel), value, now],
    )?;
    Ok(())
}

/// Marks `channel` unreachable because of `error` (its first `since` is kept; it is probed at
/// the next look) and, when it was reachable until now, says so in the sync log: one line for
/// all of its jobs and streams. True when it was reachable until now.
pub fn mark_in(
    tx: &rusqlite::Transaction<'_>,
    channel: &str,
    error: &str,
    now: i64,
) -> Result<bool> {
    let error = crate::secret::scrub(error);
    let (u, new) = match read(tx, channel)? {
        Some(mut u) => {
            u.error = error;
            (u, false)
        }
        None => (
            Unreachable {
                channel: channel.to_string(),
                since: now,
                error,
                probes: 0,
                next_probe_at: now,
                stopped: false,
            },
            true,
        ),
    };
    write(tx, &u, now)?;
    if new {
        let e = crate::internal_events::ChannelUnreachable {
            channel,
            error: &u.error,
        };
        crate::internal_events::emit_in(tx, &e)?;
    }
    Ok(new)
}

/// Stops `channel`: its peer refuses its credential (`error` says which and what to do). Its
/// jobs wait as for an unreachable peer, without spending attempts, and its probe releases
/// them once the credential is accepted. Said once in the sync log; true when it was not
/// stopped until now.
pub fn stop(store: &Store, channel: &str, error: &str) -> Result<bool> {
    let error = crate::secret::scrub(error);
    let now = super::now_ms();
    store.write(|tx| {
        let (u, new) = match read(tx, channel)? {
            Some(u) if u.stopped => (
                Unreachable {
                    error: error.clone(),
                    ..u
                },
                false,
            ),
            _ => (
                Unreachable {
                    channel: channel.to_string(),
                    since: now,
                    error: error.clone(),
                    probes: 0,
                    next_probe_at: now,
                    stopped: true,
                },
                true,
            ),
        };
        write(tx, &u, now)?;
        if new {
            let e = crate::internal_events::ChannelStopped {
                channel,
                error: &u.error,
            };
            crate::internal_events::emit_in(tx, &e)?;
        }
        Ok(new)
    })
}

/// The channel's mark, if its peer cannot be reached.
pub fn get(store: &Store, channel: &str) -> Result<Option<Unreachable>> {
    store.read(|c| read(c, channel))
}

/// Every channel whose peer cannot be reached, by name.
pub fn all(store: &Store) -> Result<Vec<Unreachable>> {
    store.read(|c| {
        let mut stmt = c.prepare_cached(
            "SELECT key, value FROM facts WHERE key LIKE 'channel.%.unreachable' ORDER BY key",
        )?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows
            .into_iter()
            .filter_map(|(k, v)| {
                let channel = k.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
                parse(channel, &v)
            })
            .collect())
    })
}

/// A probe failed with `error`: the next one is due at `next_probe_at`.
pub fn probe_failed(store: &Store, channel: &str, error: &str, next_probe_at: i64) -> Result<()> {
    let error = crate::secret::scrub(error);
    store.write(|tx| {
        if let Some(mut u) = read(tx, channel)? {
            u.error = error;
            u.probes += 1;
            u.next_probe_at = next_probe_at;
            write(tx, &u, super::now_ms())?;
        }
        Ok(())
    })
}

/// The peer answers again: clears the mark and makes the jobs that waited for it due now.
/// Returns the mark that was cleared and how many jobs it released (`None`: it was not
/// marked).
pub fn clear(store: &Store, channel: &str, now: i64) -> Result<Option<(Unreachable, usize)>> {
    store.write(|tx| {
        let Some(u) = read(tx, channel)? else {
            return Ok(None);
        };
        tx.execute("DELETE FROM facts WHERE key = ?1", [key(channel)])?;
        let released = tx.execute(
            "UPDATE jobs SET next_attempt_at = ?2, updated_at = ?2 \
             WHERE channel = ?1 AND state = 'retrying' AND error_class = 'unreachable'",
            params![channel, now],
        )?;
        Ok(Some((u, released)))
    })
}

/// How many of the channel's jobs wait for its peer.
pub fn waiting(store: &Store, channel: &str) -> Result<i64> {
    store.read(|c| {
        Ok(c.query_row(
            "SELECT count(*) FROM jobs WHERE channel = ?1 AND state = 'retrying' \
             AND error_class = 'unreachable'",
            [channel],
            |r| r.get(0),
        )?)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retry::RetryClass;
    use crate::store::queue::{self, NewJob};

    #[test]
    fn a_mark_keeps_its_first_time_and_clearing_it_releases_only_the_waiting_jobs() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state.db")).unwrap();
        let policy = crate::config::RetryConfig::default();
        let job = |key: &str| NewJob {
            channel: "cartona".into(),
            kind: "product".into(),
            key: key.into(),
            payload: serde_json::json!({}).into(),
            correlation_id: None,
        };
        let ids: Vec<i64> = queue::enqueue_many(&store, &[job("a"), job("b"), job("c")])
            .unwrap()
            .into_iter()
            .map(|e| e.id())
            .collect();
        let now = 1_000_000;
        queue::fail(
            &store,
            ids[0],
            RetryClass::Unreachable,
            "refused",
            &policy,
            now,
        )
        .unwrap();
        queue::fail(
            &store,
            ids[1],
            RetryClass::Transient,
            "HTTP 500",
            &policy,
            now,
        )
        .unwrap();
        assert!(store
            .write(|tx| mark_in(tx, "cartona", "refused", now))
            .unwrap());
        assert!(!store
            .write(|tx| mark_in(tx, "cartona", "reset", now + 5))
            .unwrap());
        let u = get(&store, "cartona").unwrap().unwrap();
        assert_eq!((u.since, u.error.as_str()), (now, "reset"));
        assert_eq!(all(&store).unwrap(), vec![u.clone()]);
        assert!(u
            .describe()
            .starts_with("cartona unreachable since 1970-01-01"));
        assert_eq!(waiting(&store, "cartona").unwrap(), 1);

        // The job that waited did not spend an attempt; the one that failed did.
        let attempts = |id: i64| {
            store
                .read(|c| {
                    Ok(
                        c.query_row("SELECT attempts FROM jobs WHERE id = ?1", [id], |r| {
                            r.get::<_, i64>(0)
                        })?,
                    )
                })
                .unwrap()
        };
        assert_eq!((attempts(ids[0]), attempts(ids[1])), (0, 1));

        let (cleared, released) = clear(&store, "cartona", now + 10).unwrap().unwrap();
        assert_eq!((cleared.since, released), (now, 1));
        assert!(get(&store, "cartona").unwrap().is_none());
        assert!(clear(&store, "cartona", now + 20).unwrap().is_none());
        let due: i64 = store
            .read(|c| {
                Ok(c.query_row(
                    "SELECT next_attempt_at FROM jobs WHERE id = ?1",
                    [ids[0]],
                    |r| r.get(0),
                )?)
            })
            .unwrap();
        assert_eq!(
            due,
            now + 10,
            "the waiting job is due as soon as the peer answers"
        );
    }
}
