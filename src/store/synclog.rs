//! The sync log: what happened, in the operator's words, for `marketsync logs` and `status`.
//! Every message is scrubbed of secrets before it is stored.

use super::{now_ms, Result, Store};
use rusqlite::params;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }

    pub fn parse(s: &str) -> Option<Level> {
        match s.to_ascii_lowercase().as_str() {
            "debug" => Some(Level::Debug),
            "info" => Some(Level::Info),
            "warn" | "warning" => Some(Level::Warn),
            "error" => Some(Level::Error),
            _ => None,
        }
    }

    /// The levels at or above `self`, for SQL `IN`.
    fn at_least(self) -> &'static [&'static str] {
        match self {
            Level::Debug => &["debug", "info", "warn", "error"],
            Level::Info => &["info", "warn", "error"],
            Level::Warn => &["warn", "error"],
            Level::Error => &["error"],
        }
    }
}

/// One entry to write.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    pub channel: Option<&'a str>,
    pub operation: &'a str,
    pub level: Level,
    pub message: &'a str,
    pub details: Option<&'a serde_json::Value>,
    pub record_count: Option<i64>,
    pub correlation_id: Option<&'a str>,
}

impl<'a> Entry<'a> {
    pub fn new(level: Level, operation: &'a str, message: &'a str) -> Self {
        Entry {
            channel: None,
            operation,
            level,
            message,
            details: None,
            record_count: None,
            correlation_id: None,
        }
    }

    pub fn channel(mut self, channel: &'a str) -> Self {
        self.channel = Some(channel);
        self
    }

    pub fn records(mut self, n: i64) -> Self {
        self.record_count = Some(n);
        self
    }

    pub fn details(mut self, details: &'a serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn correlation(mut self, id: &'a str) -> Self {
        self.correlation_id = Some(id);
        self
    }
}

/// A stored entry.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub id: i64,
    pub at: i64,
    pub channel: Option<String>,
    pub operation: String,
    pub level: String,
    pub message: String,
    pub details: Option<serde_json::Value>,
    pub record_count: Option<i64>,
    pub correlation_id: Option<String>,
}

pub fn append(store: &Store, e: Entry<'_>) -> Result<i64> {
    store.write(|tx| append_in(tx, e))
}

/// [`append`] inside the caller's transaction (a line that must say what a write did).
pub fn append_in(tx: &rusqlite::Transaction<'_>, e: Entry<'_>) -> Result<i64> {
    let message = crate::secret::scrub(e.message);
    let details = e.details.map(|d| crate::secret::scrub(&d.to_string()));
    tx.prepare_cached(
        "INSERT INTO sync_log (at, channel, operation, level, message, details, record_count, correlation_id) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![now_ms(), e.channel, e.operation, e.level.as_str(), message, details, e.record_count, e.correlation_id])?;
    Ok(tx.last_insert_rowid())
}

/// Filters for [`query`].
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub channel: Option<String>,
    pub min_level: Option<Level>,
    pub since_ms: Option<i64>,
    /// Only rows with a larger id (for `--follow`).
    pub after_id: Option<i64>,
    pub limit: usize,
}

/// The WHERE clause of a query: channel (?1), since (?2) and after id (?3) bound as parameters.
fn filter(q: &Query) -> String {
    let levels = q.min_level.unwrap_or(Level::Debug).at_least();
    let level_list = levels
        .iter()
        .map(|l| format!("'{l}'"))
        .collect::<Vec<_>>()
        .join(",");
    format!(
        "(?1 IS NULL OR channel = ?1) AND level IN ({level_list}) AND (?2 IS NULL OR at >= ?2) \
         AND (?3 IS NULL OR id > ?3)"
    )
}

/// How many rows match the query, whatever its limit.
pub fn count(store: &Store, q: &Query) -> Result<i64> {
    store.read(|c| {
        Ok(c.query_row(
            &format!("SELECT COUNT(*) FROM sync_log WHERE {}", filter(q)),
            params![q.channel, q.since_ms, q.after_id],
            |r| r.get(0),
        )?)
    })
}

/// Matching rows, oldest first (the newest `limit` of them).
pub fn query(store: &Store, q: &Query) -> Result<Vec<Row>> {
    store.read(|c| {
        let mut stmt = c.prepare(&format!(
            "SELECT id, at, channel, operation, level, message, details, record_count, correlation_id FROM sync_log \
             WHERE {} ORDER BY id DESC LIMIT ?4",
            filter(q)
        ))?;
        let mut rows: Vec<Row> = stmt
            .query_map(params![q.channel, q.since_ms, q.after_id, q.limit as i64], |r| {
                let details: Option<String> = r.get(6)?;
                Ok(Row {
                    id: r.get(0)?,
                    at: r.get(1)?,
                    channel: r.get(2)?,
                    operation: r.get(3)?,
                    level: r.get(4)?,
                    message: r.get(5)?,
                    details: details.map(|d| serde_json::from_str(&d).unwrap_or(serde_json::Value::String(d))),
                    record_count: r.get(7)?,
                    correlation_id: r.get(8)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        rows.reverse();
        Ok(rows)
    })
}

/// The newest error of a channel (`None` channel = daemon-wide).
pub fn last_error(store: &Store, channel: Option<&str>) -> Result<Option<Row>> {
    let rows = query(
        store,
        &Query {
            channel: channel.map(str::to_string),
            min_level: Some(Level::Error),
            limit: 1,
            ..Default::default()
        },
    )?;
    Ok(rows.into_iter().next())
}

/// Housekeeping: drop rows older than `before`. Deletes in slices so the writer lock is never held long.
pub fn prune(store: &Store, before: i64) -> Result<usize> {
    let mut total = 0;
    loop {
        let n = store.write(|tx| {
            Ok(tx.execute(
                "DELETE FROM sync_log WHERE id IN (SELECT id FROM sync_log WHERE at < ?1 LIMIT 5000)",
                [before],
            )?)
        })?;
        total += n;
        if n < 5000 {
            return Ok(total);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_query_filter_and_prune() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("s.db")).unwrap();
        append(
            &s,
            Entry::new(Level::Info, "catalog.push", "pushed 3 products")
                .channel("cartona")
                .records(3),
        )
        .unwrap();
        append(
            &s,
            Entry::new(Level::Error, "orders.pull", "Cartona answered 500").channel("cartona"),
        )
        .unwrap();
        append(&s, Entry::new(Level::Warn, "odoo.health", "Odoo slow")).unwrap();
        let all = query(
            &s,
            &Query {
                limit: 10,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].message, "pushed 3 products");
        let errors = query(
            &s,
            &Query {
                min_level: Some(Level::Warn),
                channel: Some("cartona".into()),
                limit: 10,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(errors.len(), 1);
        assert_eq!(
            last_error(&s, Some("cartona")).unwrap().unwrap().message,
            "Cartona answered 500"
        );
        assert_eq!(prune(&s, now_ms() + 1).unwrap(), 3);
        assert!(query(
            &s,
            &Query {
                limit: 10,
                ..Default::default()
            }
        )
        .unwrap()
        .is_empty());
    }
}
