//! The inbox: every event received from a channel (webhook or pull) is committed here before it
//! is acknowledged, and the same event id from the same source is stored once.

use super::{now_ms, Result, Store};
use rusqlite::{params, OptionalExtension};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    New(i64),
    /// Already in the inbox (a webhook retried, an order pulled twice).
    Duplicate(i64),
}

#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub id: i64,
    pub subject: Option<String>,
    pub source: String,
    pub event_id: String,
    pub kind: String,
    pub payload: serde_json::Value,
    pub state: String,
    pub error: Option<String>,
    pub attempts: u32,
    pub received_at: i64,
}

/// Stores an event unless the same (source, event id) is already there. `subject` names the
/// record it is about (an order id), so its events can be taken together.
pub fn receive(
    store: &Store,
    source: &str,
    event_id: &str,
    kind: &str,
    subject: Option<&str>,
    payload: &serde_json::Value,
) -> Result<Received> {
    // Pulls see the same events again and again: a read answers them without the write lock.
    if let Some(id) = known(store, source, event_id, false)? {
        return Ok(Received::Duplicate(id));
    }
    let body = payload.to_string();
    store.write(|tx| insert_in(tx, source, event_id, kind, subject, &body, now_ms()))
}

/// The id of the event (source, event id) if it is stored (and, with `settled`, processed or
/// parked), read without the write lock.
fn known(store: &Store, source: &str, event_id: &str, settled: bool) -> Result<Option<i64>> {
    store.read(|c| {
        Ok(c.query_row(
            "SELECT id FROM inbox WHERE source = ?1 AND event_id = ?2 AND (?3 = 0 OR state != 'received')",
            params![source, event_id, settled],
            |r| r.get(0),
        )
        .optional()?)
    })
}

/// Inserts the event unless (source, event id) is there already.
fn insert_in(
    tx: &rusqlite::Transaction<'_>,
    source: &str,
    event_id: &str,
    kind: &str,
    subject: Option<&str>,
    body: &str,
    now: i64,
) -> Result<Received> {
    let n = tx
        .prepare_cached(
            "INSERT INTO inbox (source, event_id, kind, payload, state, received_at, subject) \
             VALUES (?1, ?2, ?3, ?4, 'received', ?5, ?6) ON CONFLICT (source, event_id) DO NOTHING",
        )?
        .execute(params![source, event_id, kind, body, now, subject])?;
    if n == 1 {
        return Ok(Received::New(tx.last_insert_rowid()));
    }
    let id = tx.query_row(
        "SELECT id FROM inbox WHERE source = ?1 AND event_id = ?2",
        params![source, event_id],
        |r| r.get(0),
    )?;
    Ok(Received::Duplicate(id))
}

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Event> {
    let payload: String = r.get(4)?;
    Ok(Event {
        id: r.get(0)?,
        subject: r.get(9)?,
        source: r.get(1)?,
        event_id: r.get(2)?,
        kind: r.get(3)?,
        payload: serde_json::from_str(&payload).unwrap_or(serde_json::Value::String(payload)),
        state: r.get(5)?,
        error: r.get(6)?,
        attempts: r.get(7)?,
        received_at: r.get(8)?,
    })
}

const COLUMNS: &str =
    "id, source, event_id, kind, payload, state, error, attempts, received_at, subject";

/// The newest event about `subject` that is not done (received or parked).
pub fn latest_open(store: &Store, source: &str, subject: &str) -> Result<Option<Event>> {
    store.read(|c| {
        Ok(c.query_row(
            &format!(
                "SELECT {COLUMNS} FROM inbox WHERE source = ?1 AND subject = ?2 AND state != 'done' ORDER BY id DESC LIMIT 1"
            ),
            params![source, subject],
            from_row,
        )
        .optional()?)
    })
}

/// Every event of `kind` about `subject`, oldest first, whatever its state.
pub fn list_subject(store: &Store, source: &str, subject: &str, kind: &str) -> Result<Vec<Event>> {
    store.read(|c| {
        let mut stmt = c.prepare(&format!("SELECT {COLUMNS} FROM inbox WHERE source = ?1 AND subject = ?2 AND kind = ?3 ORDER BY id"))?;
        let rows = stmt.query_map(params![source, subject, kind], from_row)?.collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    })
}

/// The newest event about `subject`, whatever its state.
pub fn latest(store: &Store, source: &str, subject: &str) -> Result<Option<Event>> {
    store.read(|c| {
        Ok(c.query_row(
            &format!("SELECT {COLUMNS} FROM inbox WHERE source = ?1 AND subject = ?2 ORDER BY id DESC LIMIT 1"),
            params![source, subject],
            from_row,
        )
        .optional()?)
    })
}

/// Marks every open event about `subject` up to `upto_id` done (the newest one carried them all).
pub fn close_subject(store: &Store, source: &str, subject: &str, upto_id: i64) -> Result<usize> {
    let now = now_ms();
    store.write(|tx| {
        Ok(tx.execute(
            "UPDATE inbox SET state = 'done', error = NULL, processed_at = ?4 \
             WHERE source = ?1 AND subject = ?2 AND id <= ?3 AND state != 'done'",
            params![source, subject, upto_id, now],
        )?)
    })
}

/// Stores an event and queues the job that processes it, in one transaction: a crash can never
/// leave an event without its job. A duplicate of an event still waiting gets its job back if it
/// has none (a state written by an older version, or by hand).
pub fn receive_with_job(
    store: &Store,
    source: &str,
    event_id: &str,
    kind: &str,
    subject: Option<&str>,
    payload: &serde_json::Value,
    job: &crate::store::queue::NewJob,
) -> Result<Received> {
    // Pulls see the same events again and again: a read answers the settled ones without the
    // write lock (one still waiting may need its job back, which the write below checks).
    if let Some(id) = known(store, source, event_id, true)? {
        return Ok(Received::Duplicate(id));
    }
    let body = payload.to_string();
    store.write(|tx| receive_with_job_in(tx, source, event_id, kind, subject, &body, job, now_ms()))
}

/// [`receive_with_job`] inside the caller's transaction (webhooks commit several together).
#[allow(clippy::too_many_arguments)]
pub fn receive_with_job_in(
    tx: &rusqlite::Transaction<'_>,
    source: &str,
    event_id: &str,
    kind: &str,
    subject: Option<&str>,
    body: &str,
    job: &crate::store::queue::NewJob,
    now: i64,
) -> Result<Received> {
    let id = match insert_in(tx, source, event_id, kind, subject, body, now)? {
        Received::New(id) => {
            crate::store::queue::enqueue_in(tx, std::slice::from_ref(job))?;
            return Ok(Received::New(id));
        }
        Received::Duplicate(id) => id,
    };
    let state: String =
        tx.query_row("SELECT state FROM inbox WHERE id = ?1", [id], |r| r.get(0))?;
    if state == "received" {
        // A job that died waits for the operator (`queue retry`, with its reason on show) or the
        // reconcile's revive: a pull seeing its event again every poll does not queue another
        // to die the same way.
        let has_job: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM jobs WHERE coalesce_key = ?1 AND state IN ('pending', 'retrying', 'running', 'dead'))",
            [&job.key],
            |r| r.get(0),
        )?;
        if !has_job {
            crate::store::queue::enqueue_in(tx, std::slice::from_ref(job))?;
        }
    }
    Ok(Received::Duplicate(id))
}

/// Events not yet processed, oldest first.
pub fn pending(store: &Store, source: Option<&str>, limit: usize) -> Result<Vec<Event>> {
    store.read(|c| {
        let mut stmt = c.prepare(&format!(
            "SELECT {COLUMNS} FROM inbox WHERE state = 'received' AND (?1 IS NULL OR source = ?1) ORDER BY id LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![source, limit as i64], from_row)?.collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    })
}

pub fn get(store: &Store, id: i64) -> Result<Option<Event>> {
    store.read(|c| {
        Ok(c.query_row(
            &format!("SELECT {COLUMNS} FROM inbox WHERE id = ?1"),
            [id],
            from_row,
        )
        .optional()?)
    })
}

pub fn mark_done(store: &Store, id: i64) -> Result<()> {
    let now = now_ms();
    store.write(|tx| {
        tx.execute(
            "UPDATE inbox SET state = 'done', error = NULL, processed_at = ?2 WHERE id = ?1",
            params![id, now],
        )?;
        Ok(())
    })
}

/// Sets an event aside with the reason (an unknown product, a malformed order): it waits for
/// the operator, and other events keep flowing.
pub fn park(store: &Store, id: i64, reason: &str) -> Result<()> {
    let now = now_ms();
    let reason = crate::secret::scrub(reason);
    store.write(|tx| {
        tx.execute(
            "UPDATE inbox SET state = 'parked', error = ?2, attempts = attempts + 1, processed_at = ?3 WHERE id = ?1",
            params![id, reason, now],
        )?;
        Ok(())
    })
}

/// Events by state, newest first.
pub fn list(store: &Store, state: Option<&str>, limit: usize) -> Result<Vec<Event>> {
    store.read(|c| {
        let mut stmt = c.prepare(&format!(
            "SELECT {COLUMNS} FROM inbox WHERE (?1 IS NULL OR state = ?1) ORDER BY id DESC LIMIT ?2"
        ))?;
        let rows = stmt
            .query_map(params![state, limit as i64], from_row)?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    })
}

/// Counts per (source, state).
pub fn counts(store: &Store) -> Result<Vec<(String, String, i64)>> {
    store.read(|c| {
        let mut stmt = c.prepare(
            "SELECT source, state, COUNT(*) FROM inbox GROUP BY source, state ORDER BY source",
        )?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_event_is_stored_once() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("s.db")).unwrap();
        let p = serde_json::json!({"hashed_id": "632717520571"});
        let a = receive(
            &s,
            "cartona",
            "632717520571",
            "order",
            Some("632717520571"),
            &p,
        )
        .unwrap();
        let b = receive(
            &s,
            "cartona",
            "632717520571",
            "order",
            Some("632717520571"),
            &p,
        )
        .unwrap();
        assert!(matches!(a, Received::New(_)));
        assert_eq!(
            b,
            Received::Duplicate(match a {
                Received::New(id) => id,
                _ => unreachable!(),
            })
        );
        assert_eq!(pending(&s, None, 10).unwrap().len(), 1);
        park(
            &s,
            pending(&s, None, 10).unwrap()[0].id,
            "product 904#2 is not mapped",
        )
        .unwrap();
        assert!(pending(&s, None, 10).unwrap().is_empty());
        assert_eq!(
            list(&s, Some("parked"), 10).unwrap()[0].error.as_deref(),
            Some("product 904#2 is not mapped")
        );
    }

    #[test]
    fn an_event_seen_again_queues_its_job_again_only_when_none_lives_or_died() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("s.db")).unwrap();
        let job = crate::store::queue::NewJob {
            channel: "medusa".into(),
            kind: "order".into(),
            key: "medusa:order:order_1".into(),
            payload: crate::store::queue::Payload::of(&serde_json::json!({"subject": "order_1"})),
            correlation_id: None,
        };
        let seen = || {
            s.write(|tx| {
                receive_with_job_in(
                    tx,
                    "medusa",
                    "order:order_1",
                    "order",
                    Some("order_1"),
                    "{}",
                    &job,
                    0,
                )
            })
            .unwrap()
        };
        let jobs = || {
            crate::store::queue::list(&s, None, None, 100)
                .unwrap()
                .len()
        };
        seen();
        assert_eq!(jobs(), 1);
        seen();
        assert_eq!(jobs(), 1, "one waits: no second");
        s.write(|tx| Ok(tx.execute("UPDATE jobs SET state = 'done'", [])?))
            .unwrap();
        seen();
        assert_eq!(jobs(), 2, "done but the event still open: queued again");
        s.write(|tx| Ok(tx.execute("UPDATE jobs SET state = 'dead' WHERE state = 'pending'", [])?))
            .unwrap();
        seen();
        seen();
        assert_eq!(
            jobs(),
            2,
            "a dead one waits for the operator: none queued to die again"
        );
    }
}
