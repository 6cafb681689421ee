//! The durable job queue: jobs survive restarts, coalesce on their key (latest value wins),
//! retry with backoff by error class, and end `done` or `dead` with the reason.

use super::{now_ms, Result, Store, StoreError};
use crate::config::RetryConfig;
use crate::retry::{backoff_delay, RetryClass};
use rusqlite::{params, OptionalExtension, Row};
use serde::Serialize;
use std::collections::HashMap;

/// A job's life: `pending` -> `running` -> `done`, or -> `retrying` -> `running` ..., or -> `dead`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Pending,
    Running,
    Retrying,
    Done,
    Dead,
}

impl JobState {
    pub const ALL: [JobState; 5] = [
        JobState::Pending,
        JobState::Running,
        JobState::Retrying,
        JobState::Done,
        JobState::Dead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Pending => "pending",
            JobState::Running => "running",
            JobState::Retrying => "retrying",
            JobState::Done => "done",
            JobState::Dead => "dead",
        }
    }

    pub fn parse(s: &str) -> Option<JobState> {
        JobState::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

/// A job's payload: JSON kept as its text, parsed only when read. A handler that wants a type
/// parses the text straight into it ([`Payload::parse`]); others read it as a JSON value
/// (through `Deref`), parsed once.
#[derive(Clone)]
pub struct Payload {
    text: String,
    value: std::sync::OnceLock<serde_json::Value>,
}

impl Payload {
    /// The payload of `value` serialized, without building a JSON value first.
    pub fn of<T: Serialize + ?Sized>(value: &T) -> Payload {
        Payload::from_text(serde_json::to_string(value).unwrap_or_else(|_| "null".into()))
    }

    fn from_text(text: String) -> Payload {
        Payload {
            text,
            value: std::sync::OnceLock::new(),
        }
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// The payload as a JSON value (text that is not JSON, from a hand-edited row, reads as a
    /// string).
    pub fn value(&self) -> &serde_json::Value {
        self.value.get_or_init(|| {
            serde_json::from_str(&self.text)
                .unwrap_or_else(|_| serde_json::Value::String(self.text.clone()))
        })
    }

    /// The payload parsed straight from its text into `T`.
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> serde_json::Result<T> {
        serde_json::from_str(&self.text)
    }
}

impl From<serde_json::Value> for Payload {
    fn from(value: serde_json::Value) -> Payload {
        Payload {
            text: value.to_string(),
            value: value.into(),
        }
    }
}

impl std::ops::Deref for Payload {
    type Target = serde_json::Value;
    fn deref(&self) -> &serde_json::Value {
        self.value()
    }
}

impl std::fmt::Debug for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl PartialEq for Payload {
    fn eq(&self, other: &Payload) -> bool {
        self.text == other.text || self.value() == other.value()
    }
}

impl Serialize for Payload {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.value().serialize(s)
    }
}

/// A job as stored.
#[derive(Debug, Clone, Serialize)]
pub struct Job {
    pub id: i64,
    pub channel: String,
    pub kind: String,
    pub key: String,
    pub payload: Payload,
    pub state: JobState,
    pub attempts: u32,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub error_class: Option<String>,
    pub correlation_id: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str =
    "id, channel, kind, coalesce_key, payload, state, attempts, next_attempt_at, \
                       last_error, error_class, correlation_id, created_at, updated_at";

fn job_from_row(r: &Row<'_>) -> rusqlite::Result<Job> {
    let payload: String = r.get(4)?;
    let state: String = r.get(5)?;
    Ok(Job {
        id: r.get(0)?,
        channel: r.get(1)?,
        kind: r.get(2)?,
        key: r.get(3)?,
        payload: Payload::from_text(payload),
        state: JobState::parse(&state).unwrap_or(JobState::Dead),
        attempts: r.get(6)?,
        next_attempt_at: r.get(7)?,
        last_error: r.get(8)?,
        error_class: r.get(9)?,
        correlation_id: r.get(10)?,
        created_at: r.get(11)?,
        updated_at: r.get(12)?,
    })
}

/// A job to add.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub channel: String,
    pub kind: String,
    /// Coalescing key: a waiting job with the same key gets this payload instead of a new row.
    pub key: String,
    pub payload: Payload,
    pub correlation_id: Option<String>,
}

/// What enqueueing did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    New(i64),
    /// A waiting job with the same key now carries the new payload.
    Coalesced(i64),
}

impl Enqueued {
    pub fn id(self) -> i64 {
        match self {
            Enqueued::New(id) | Enqueued::Coalesced(id) => id,
        }
    }
}

/// What became of a failed job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailOutcome {
    Retrying {
        attempt: u32,
        next_attempt_at: i64,
    },
    Dead {
        reason: String,
    },
    /// A newer job with the same key is already waiting; this one is closed in its favour.
    Superseded {
        by: i64,
    },
}

/// Adds jobs in one transaction, coalescing each with a waiting job of the same key.
pub fn enqueue_many(store: &Store, jobs: &[NewJob]) -> Result<Vec<Enqueued>> {
    store.write(|tx| enqueue_in(tx, jobs))
}

/// Enqueues inside a caller's transaction (an event and its job are committed together).
pub fn enqueue_in(tx: &rusqlite::Transaction<'_>, jobs: &[NewJob]) -> Result<Vec<Enqueued>> {
    if !jobs.is_empty() {
        super::note_jobs_queued();
    }
    let now = now_ms();
    let mut out = Vec::with_capacity(jobs.len());
    let mut find = tx.prepare_cached(
        "SELECT id FROM jobs WHERE coalesce_key = ?1 AND state IN ('pending', 'retrying')",
    )?;
    let mut update =
        tx.prepare_cached("UPDATE jobs SET payload = ?2, correlation_id = COALESCE(?3, correlation_id), updated_at = ?4 WHERE id = ?1")?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO jobs (channel, kind, coalesce_key, payload, state, attempts, next_attempt_at, \
         correlation_id, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, 'pending', 0, ?5, ?6, ?5, ?5)",
    )?;
    for job in jobs {
        let payload = job.payload.text();
        let existing: Option<i64> = find.query_row([&job.key], |r| r.get(0)).optional()?;
        match existing {
            Some(id) => {
                update.execute(params![id, payload, job.correlation_id, now])?;
                out.push(Enqueued::Coalesced(id));
            }
            None => {
                insert.execute(params![
                    job.channel,
                    job.kind,
                    job.key,
                    payload,
                    now,
                    job.correlation_id
                ])?;
                out.push(Enqueued::New(tx.last_insert_rowid()));
            }
        }
    }
    Ok(out)
}

pub fn enqueue(store: &Store, job: NewJob) -> Result<Enqueued> {
    Ok(enqueue_many(store, std::slice::from_ref(&job))?[0])
}

/// Which of these coalescing keys have a job waiting (pending or retrying), in one statement.
pub fn waiting_keys(store: &Store, keys: &[String]) -> Result<std::collections::HashSet<String>> {
    let list = serde_json::to_string(keys).unwrap_or_else(|_| "[]".into());
    store.read(|c| {
        let mut stmt = c.prepare_cached(
            "SELECT j.value FROM json_each(?1) AS j WHERE EXISTS (SELECT 1 FROM jobs \
             WHERE coalesce_key = j.value AND state IN ('pending', 'retrying'))",
        )?;
        let rows = stmt.query_map([list], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    })
}

/// The keys, of these, that have a job not finished: waiting, or running now (a job taken by
/// a worker, whose call may be under way).
pub fn open_keys(store: &Store, keys: &[String]) -> Result<std::collections::HashSet<String>> {
    let list = serde_json::to_string(keys).unwrap_or_else(|_| "[]".into());
    store.read(|c| {
        let mut stmt = c.prepare_cached(
            "SELECT j.value FROM json_each(?1) AS j WHERE EXISTS (SELECT 1 FROM jobs \
             WHERE coalesce_key = j.value AND state IN ('pending', 'retrying', 'running'))",
        )?;
        let rows = stmt.query_map([list], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    })
}

/// Queues the jobs whose key has no unfinished job (one per key): what a safety-net stream
/// adds without disturbing work already waiting or running. Returns how many were queued.
pub fn enqueue_missing(store: &Store, mut jobs: Vec<NewJob>) -> Result<usize> {
    let keys: Vec<String> = jobs.iter().map(|j| j.key.clone()).collect();
    let open = open_keys(store, &keys)?;
    jobs.retain(|j| !open.contains(&j.key));
    jobs.sort_by(|a, b| a.key.cmp(&b.key));
    jobs.dedup_by(|a, b| a.key == b.key);
    if !jobs.is_empty() {
        enqueue_many(store, &jobs)?;
    }
    Ok(jobs.len())
}

/// The payloads of the unfinished jobs (pending, retrying or running) under these coalescing
/// keys: what a newer job must carry on, since it replaces a waiting one, and supersedes a
/// running one that fails.
pub fn open_payloads(
    store: &Store,
    keys: &[String],
) -> Result<std::collections::HashMap<String, Vec<Payload>>> {
    let list = serde_json::to_string(keys).unwrap_or_else(|_| "[]".into());
    store.read(|c| {
        let mut stmt = c.prepare_cached(
            "SELECT coalesce_key, payload FROM jobs WHERE coalesce_key IN (SELECT value FROM json_each(?1)) \
             AND state IN ('pending', 'retrying', 'running') ORDER BY id",
        )?;
        let mut out: std::collections::HashMap<String, Vec<Payload>> = Default::default();
        let rows = stmt.query_map([list], |r| {
            Ok((r.get::<_, String>(0)?, Payload::from_text(r.get(1)?)))
        })?;
        for row in rows {
            let (key, payload) = row?;
            out.entry(key).or_default().push(payload);
        }
        Ok(out)
    })
}

/// Leaves out jobs whose exact payload is already waiting for the same record (queueing it
/// again would change nothing), or that the peer refused for good (a permanent rejection: it
/// would only be refused again, a retry storm by another name). A value that died of anything
/// else (an outage, the retries running out, a credential since fixed) is queued again: the
/// queue is a cache of work, and what the channel must hold comes from Odoo. A new value, or
/// the operator's `queue retry`, sends a refused one again.
pub fn without_dead_repeats(store: &Store, jobs: Vec<NewJob>) -> Result<Vec<NewJob>> {
    store.read(|c| {
        let mut stmt = c.prepare_cached(
            "SELECT payload, state = 'dead' AND coalesce(error_class, '') != 'permanent' \
             FROM jobs WHERE coalesce_key = ?1 AND state IN ('dead', 'pending', 'retrying') \
             ORDER BY id DESC LIMIT 1",
        )?;
        let mut out = Vec::with_capacity(jobs.len());
        for job in jobs {
            let last: Option<(String, bool)> = stmt
                .query_row([&job.key], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            let repeat = match last {
                Some((payload, false)) => Payload::from_text(payload) == job.payload,
                _ => false,
            };
            if !repeat {
                out.push(job);
            }
        }
        Ok(out)
    })
}

/// A job waits while another of its record (coalescing key) runs: one job per record at a
/// time, so a newer value never overtakes an older one in flight, and a record's jobs never
/// race each other's writes.
const NOT_RUNNING: &str =
    "NOT EXISTS (SELECT 1 FROM jobs AS r WHERE r.coalesce_key = jobs.coalesce_key \
                           AND r.state = 'running')";

/// Claims due jobs (pending or retrying with `next_attempt_at <= now`), oldest first, at most
/// `room[channel]` per channel (channels absent from `room` have no worker and are left
/// waiting), and marks them running.
pub fn claim_due(store: &Store, now: i64, room: &HashMap<String, usize>) -> Result<Vec<Job>> {
    store.write(|tx| {
        let mut stmt = tx.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM jobs WHERE state IN ('pending', 'retrying') AND next_attempt_at <= ?1 \
             AND {NOT_RUNNING} ORDER BY next_attempt_at, id LIMIT ?2"
        ))?;
        let limit: usize = room.values().sum();
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut room = room.clone();
        // Over-fetch so jobs of a full channel do not starve the others.
        let fetch = (limit * 4 + 16) as i64;
        let candidates: Vec<Job> = stmt
            .query_map(params![now, fetch], job_from_row)?
            .collect::<rusqlite::Result<_>>()?;
        let mut claimed = Vec::new();
        let mut mark = tx.prepare_cached("UPDATE jobs SET state = 'running', updated_at = ?2 WHERE id = ?1")?;
        for mut job in candidates {
            match room.get_mut(&job.channel) {
                Some(free) if *free > 0 => *free -= 1,
                _ => continue,
            }
            mark.execute(params![job.id, now])?;
            job.state = JobState::Running;
            claimed.push(job);
        }
        Ok(claimed)
    })
}

/// Claims due jobs already cut into the batches the workers will run: per channel at most
/// `slots[channel]` batches, each of one kind and at most `batch(channel, kind)` jobs. Only what
/// will run is marked running, so nothing claimed has to be put back.
pub fn claim_batches(
    store: &Store,
    now: i64,
    slots: &HashMap<String, usize>,
    batch: &(dyn Fn(&str, &str) -> usize + Sync),
) -> Result<Vec<Vec<Job>>> {
    let total: usize = slots.values().sum();
    if total == 0 {
        return Ok(Vec::new());
    }
    store.write(|tx| {
        // Per channel (so a busy one never starves another), choose on (id, kind) only, reading
        // a few candidates per free slot and more only while batches are left unfilled; whole
        // rows are read just for the jobs that will run.
        let mut stmt = tx.prepare_cached(&format!(
            "SELECT id, kind FROM jobs WHERE channel = ?1 AND state IN ('pending', 'retrying') \
                 AND next_attempt_at <= ?2 AND {NOT_RUNNING} ORDER BY next_attempt_at, id LIMIT ?3"
        ))?;
        let mut channels: Vec<(&String, &usize)> = slots.iter().filter(|(_, f)| **f > 0).collect();
        channels.sort();
        // (kind, ids) per batch, per channel.
        let mut groups: Vec<(String, Vec<i64>)> = Vec::new();
        for (channel, &free) in channels {
            let mut fetch = (free * 4 + 16) as i64;
            let chosen = loop {
                let candidates: Vec<(i64, String)> = stmt
                    .query_map(params![channel, now, fetch], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<rusqlite::Result<_>>()?;
                let more_due = candidates.len() as i64 == fetch;
                let mut chosen: Vec<(String, Vec<i64>)> = Vec::new();
                for (id, kind) in candidates {
                    let size = batch(channel, &kind).max(1);
                    match chosen
                        .iter()
                        .position(|(k, ids)| *k == kind && ids.len() < size)
                    {
                        Some(i) => chosen[i].1.push(id),
                        None if chosen.len() < free => chosen.push((kind, vec![id])),
                        None => {}
                    }
                }
                let unfilled = chosen.len() < free
                    || chosen
                        .iter()
                        .any(|(k, ids)| ids.len() < batch(channel, k).max(1));
                if !more_due || !unfilled || fetch >= 5000 {
                    break chosen;
                }
                fetch = (fetch * 8).min(5000);
            };
            groups.extend(chosen);
        }
        let mut mark = tx.prepare_cached(&format!(
            "UPDATE jobs SET state = 'running', updated_at = ?2 WHERE id = ?1 RETURNING {COLUMNS}"
        ))?;
        let mut out = Vec::with_capacity(groups.len());
        for (_, ids) in groups {
            let mut jobs = Vec::with_capacity(ids.len());
            for id in ids {
                jobs.push(mark.query_row(params![id, now], job_from_row)?);
            }
            out.push(jobs);
        }
        Ok(out)
    })
}

/// These jobs finished their work (one transaction for a whole batch).
pub fn complete_many(store: &Store, ids: &[i64]) -> Result<()> {
    store.write(|tx| complete_in(tx, ids))
}

/// [`complete_many`] inside the caller's transaction: a handler records a job done together
/// with what the job did (see `JobHandler::records_completion`).
///
/// A job done settles the dead jobs of the same record before it: it carried the record's
/// newer value, so theirs is moot (a stock level that died in an outage, then sent by the
/// reconcile, is no longer the operator's problem). An event delivery never settles another.
pub fn complete_in(tx: &rusqlite::Transaction<'_>, ids: &[i64]) -> Result<()> {
    let now = now_ms();
    let mut stmt = tx.prepare_cached(
        "UPDATE jobs SET state = 'done', updated_at = ?2, last_error = NULL WHERE id = ?1",
    )?;
    let mut settle = tx.prepare_cached(
        "UPDATE jobs SET state = 'done', updated_at = ?2,            last_error = 'settled by job ' || ?1 || ', which sent a newer value after: ' || coalesce(last_error, '')          WHERE state = 'dead' AND id < ?1 AND kind != ?3            AND coalesce_key = (SELECT coalesce_key FROM jobs WHERE id = ?1)",
    )?;
    for id in ids {
        stmt.execute(params![id, now])?;
        settle.execute(params![id, now, crate::store::order_events::DELIVERY_KIND])?;
    }
    Ok(())
}

/// Replaces a job's payload inside the caller's transaction (a job that did part of its work
/// keeps only the rest).
pub fn set_payload_in(tx: &rusqlite::Transaction<'_>, id: i64, payload: &Payload) -> Result<()> {
    tx.execute(
        "UPDATE jobs SET payload = ?2, updated_at = ?3 WHERE id = ?1",
        params![id, payload.text(), now_ms()],
    )?;
    Ok(())
}

/// A job that did its part and must look again later (a batch the peer is still processing):
/// back to pending with its new payload, due at `at` (ms), no attempt spent, no error. A newer
/// value of the same record queued meanwhile replaces it (at most one job per record waits):
/// then it is done, superseded, and false is returned.
pub fn defer_in(
    tx: &rusqlite::Transaction<'_>,
    id: i64,
    payload: &Payload,
    at: i64,
) -> Result<bool> {
    let newer: Option<i64> = tx
        .prepare_cached(
            "SELECT w.id FROM jobs AS w JOIN jobs AS j ON j.coalesce_key = w.coalesce_key \
             WHERE j.id = ?1 AND w.state IN ('pending', 'retrying') AND w.id != ?1",
        )?
        .query_row([id], |r| r.get(0))
        .optional()?;
    if let Some(newer) = newer {
        tx.execute(
            "UPDATE jobs SET state = 'done', updated_at = ?2, \
             last_error = 'superseded by job ' || ?3 || ', which carries a newer value' WHERE id = ?1",
            params![id, now_ms(), newer],
        )?;
        return Ok(false);
    }
    tx.prepare_cached(
        "UPDATE jobs SET state = 'pending', payload = ?2, next_attempt_at = ?3, updated_at = ?4, \
         last_error = NULL, error_class = NULL WHERE id = ?1 AND state = 'running'",
    )?
    .execute(params![id, payload.text(), at, now_ms()])?;
    Ok(true)
}

/// The job finished its work.
pub fn complete(store: &Store, id: i64) -> Result<()> {
    complete_many(store, &[id])
}

/// The job failed with an error of `class`: retry later or dead-letter it.
pub fn fail(
    store: &Store,
    id: i64,
    class: RetryClass,
    error: &str,
    policy: &RetryConfig,
    now: i64,
) -> Result<FailOutcome> {
    let error = crate::secret::scrub(error);
    store.write(|tx| {
        let (attempts, key): (u32, String) = tx
            .query_row("SELECT attempts, coalesce_key FROM jobs WHERE id = ?1", [id], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?
            .ok_or_else(|| StoreError::NotFound(format!("job {id} does not exist")))?;
        // Waiting for an unreachable dependency does not count as an attempt; its backoff
        // grows as if it did, up to `max_delay`.
        let counted = !class.is_waiting();
        let attempt = if counted { attempts + 1 } else { attempts };
        let waiting: Option<i64> = tx
            .query_row(
                "SELECT id FROM jobs WHERE coalesce_key = ?1 AND state IN ('pending', 'retrying') AND id != ?2",
                params![key, id],
                |r| r.get(0),
            )
            .optional()?;
        let outcome = if class.is_retryable() && (attempt < policy.max_attempts || !counted) {
            if let Some(by) = waiting {
                FailOutcome::Superseded { by }
            } else {
                let delay = if let RetryClass::Throttled { after } = class {
                    // The peer named the time it takes calls again: exactly that.
                    after
                } else if class == RetryClass::Unreachable {
                    // Its channel's probe releases it when the peer answers; until then it
                    // is tried again only at the policy's longest wait.
                    policy.max_delay.0
                } else {
                    backoff_delay(
                        attempt.max(if counted { 1 } else { 6 }),
                        policy.base_delay.0,
                        policy.max_delay.0,
                        class,
                        &mut rand::rng(),
                    )
                };
                FailOutcome::Retrying {
                    attempt,
                    next_attempt_at: now + delay.as_millis() as i64,
                }
            }
        } else {
            let why = if class.is_retryable() {
                format!("gave up after {attempt} attempts: {error}")
            } else {
                format!("{} error, not retried: {error}", class.as_str())
            };
            FailOutcome::Dead { reason: why }
        };
        match &outcome {
            FailOutcome::Retrying { next_attempt_at, .. } => tx.execute(
                "UPDATE jobs SET state = 'retrying', attempts = ?2, next_attempt_at = ?3, last_error = ?4, \
                 error_class = ?5, updated_at = ?6 WHERE id = ?1",
                params![id, attempt, next_attempt_at, error, class.as_str(), now],
            )?,
            FailOutcome::Dead { reason } => tx.execute(
                "UPDATE jobs SET state = 'dead', attempts = ?2, last_error = ?3, error_class = ?4, updated_at = ?5 \
                 WHERE id = ?1",
                params![id, attempt, reason, class.as_str(), now],
            )?,
            FailOutcome::Superseded { by } => tx.execute(
                "UPDATE jobs SET state = 'done', attempts = ?2, last_error = ?3, error_class = ?4, updated_at = ?5 \
                 WHERE id = ?1",
                params![id, attempt, format!("superseded by job {by} after: {error}"), class.as_str(), now],
            )?,
        };
        Ok(outcome)
    })
}

/// Puts a running job back to waiting without counting an attempt (shutdown cut it short).
pub fn release(store: &Store, id: i64) -> Result<()> {
    let now = now_ms();
    store.write(|tx| {
        release_or_supersede(tx, id, now)?;
        Ok(())
    })
}

fn release_or_supersede(tx: &rusqlite::Transaction<'_>, id: i64, now: i64) -> Result<()> {
    let waiting: Option<i64> = tx
        .query_row(
            "SELECT w.id FROM jobs w JOIN jobs j ON j.coalesce_key = w.coalesce_key \
             WHERE j.id = ?1 AND w.id != ?1 AND w.state IN ('pending', 'retrying')",
            [id],
            |r| r.get(0),
        )
        .optional()?;
    match waiting {
        // A newer value is already waiting; the interrupted older one would only be overwritten.
        Some(by) => tx.execute(
            "UPDATE jobs SET state = 'done', last_error = ?2, updated_at = ?3 WHERE id = ?1",
            params![id, format!("superseded by job {by}"), now],
        )?,
        None => tx.execute(
            "UPDATE jobs SET state = 'pending', next_attempt_at = MIN(next_attempt_at, ?2), updated_at = ?2 WHERE id = ?1",
            params![id, now],
        )?,
    };
    Ok(())
}

/// At start: jobs left `running` by a crash go back to `pending`. Returns how many.
pub fn recover_running(store: &Store) -> Result<usize> {
    let now = now_ms();
    store.write(|tx| {
        let ids: Vec<i64> = tx
            .prepare("SELECT id FROM jobs WHERE state = 'running' ORDER BY id")?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        for id in &ids {
            release_or_supersede(tx, *id, now)?;
        }
        Ok(ids.len())
    })
}

pub fn get(store: &Store, id: i64) -> Result<Option<Job>> {
    store.read(|c| {
        Ok(c.query_row(
            &format!("SELECT {COLUMNS} FROM jobs WHERE id = ?1"),
            [id],
            job_from_row,
        )
        .optional()?)
    })
}

/// Jobs, newest first, optionally of one state and channel.
pub fn list(
    store: &Store,
    state: Option<JobState>,
    channel: Option<&str>,
    limit: usize,
) -> Result<Vec<Job>> {
    store.read(|c| {
        let mut stmt = c.prepare(&format!(
            "SELECT {COLUMNS} FROM jobs WHERE {LIST_FILTER} ORDER BY id DESC LIMIT ?3"
        ))?;
        let rows = stmt
            .query_map(
                params![state.map(JobState::as_str), channel, limit as i64],
                job_from_row,
            )?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    })
}

/// What [`list`] and [`list_count`] select by: state (?1) and channel (?2), each optional.
const LIST_FILTER: &str = "(?1 IS NULL OR state = ?1) AND (?2 IS NULL OR channel = ?2)";

/// How many jobs [`list`] would give without its limit.
pub fn list_count(store: &Store, state: Option<JobState>, channel: Option<&str>) -> Result<i64> {
    store.read(|c| {
        Ok(c.query_row(
            &format!("SELECT COUNT(*) FROM jobs WHERE {LIST_FILTER}"),
            params![state.map(JobState::as_str), channel],
            |r| r.get(0),
        )?)
    })
}

/// Job counts per (channel, state).
pub fn counts(store: &Store) -> Result<Vec<(String, JobState, i64)>> {
    store.read(|c| {
        let mut stmt = c.prepare(
            "SELECT channel, state, COUNT(*) FROM jobs GROUP BY channel, state ORDER BY channel",
        )?;
        let rows = stmt
            .query_map([], |r| {
                let state: String = r.get(1)?;
                Ok((
                    r.get(0)?,
                    JobState::parse(&state).unwrap_or(JobState::Dead),
                    r.get(2)?,
                ))
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    })
}

/// The earliest `next_attempt_at` among waiting jobs (so idle workers sleep until then).
pub fn next_due_at(store: &Store) -> Result<Option<i64>> {
    store.read(|c| {
        Ok(c.query_row(
            "SELECT MIN(next_attempt_at) FROM jobs WHERE state IN ('pending', 'retrying')",
            [],
            |r| r.get(0),
        )?)
    })
}

/// What `queue retry` did to one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requeued {
    /// Back to pending, due now, attempts reset.
    Requeued,
    /// A newer job with the same key is waiting, so this one was closed instead.
    Superseded { by: i64 },
}

/// Operator: run a dead or retrying job again now, attempts reset.
pub fn retry_now(store: &Store, id: i64) -> Result<Requeued> {
    let now = now_ms();
    store.write(|tx| {
        let row: Option<(String, String)> = tx
            .query_row("SELECT state, coalesce_key FROM jobs WHERE id = ?1", [id], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        let (state, key) = row.ok_or_else(|| StoreError::NotFound(format!("job {id} does not exist")))?;
        match state.as_str() {
            "dead" | "retrying" | "pending" => {}
            other => {
                return Err(StoreError::Conflict(format!(
                    "job {id} is {other}; only dead, retrying or pending jobs can be retried"
                )))
            }
        }
        let waiting: Option<i64> = tx
            .query_row(
                "SELECT id FROM jobs WHERE coalesce_key = ?1 AND state IN ('pending', 'retrying') AND id != ?2",
                params![key, id],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(by) = waiting {
            tx.execute(
                "UPDATE jobs SET state = 'done', last_error = ?2, updated_at = ?3 WHERE id = ?1",
                params![id, format!("superseded by job {by}"), now],
            )?;
            return Ok(Requeued::Superseded { by });
        }
        tx.execute(
            "UPDATE jobs SET state = 'pending', attempts = 0, next_attempt_at = ?2, updated_at = ?2 WHERE id = ?1",
            params![id, now],
        )?;
        Ok(Requeued::Requeued)
    })
}

/// Operator: retry every dead job. Returns the ids requeued.
pub fn retry_dead(store: &Store, channel: Option<&str>) -> Result<Vec<i64>> {
    let ids: Vec<i64> = store.read(|c| {
        Ok(c.prepare(
            "SELECT id FROM jobs WHERE state = 'dead' AND (?1 IS NULL OR channel = ?1) ORDER BY id",
        )?
        .query_map([channel], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?)
    })?;
    let mut requeued = Vec::new();
    for id in ids {
        if retry_now(store, id)? == Requeued::Requeued {
            requeued.push(id);
        }
    }
    Ok(requeued)
}

/// The reconcile's part of "the queue is a cache of work": what a marketplace must hear of
/// its recent orders (a status, an order's acknowledgement) is said again when the last job to
/// say it died of anything but a permanent refusal (an outage that outlasted the policy, a
/// credential since fixed). Only the newest job of each record, only while none of its record
/// waits, and never an event delivery (those are the watcher's own). Returns the ids requeued.
pub fn revive_for_orders(store: &Store, channels: &[String], days: i64) -> Result<Vec<i64>> {
    let now = now_ms();
    let since = now - days * 86_400_000;
    store.write(|tx| {
        let mut revived = Vec::new();
        let mut find = tx.prepare_cached(
            "SELECT j.id FROM jobs j WHERE j.channel = ?1 AND j.state = 'dead' \
               AND coalesce(j.error_class, '') != 'permanent' AND j.kind != 'order_events' \
               AND EXISTS (SELECT 1 FROM channel_orders o WHERE o.channel = ?1 AND o.updated_at >= ?2 \
                           AND (j.correlation_id = o.reference \
                                OR j.coalesce_key = o.channel || ':order:' || o.external_id)) \
               AND j.id = (SELECT max(d.id) FROM jobs d WHERE d.coalesce_key = j.coalesce_key) \
             ORDER BY j.id",
        )?;
        for channel in channels {
            let ids: Vec<i64> = find
                .query_map(params![channel, since], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            for id in ids {
                tx.execute(
                    "UPDATE jobs SET state = 'pending', attempts = 0, next_attempt_at = ?2, \
                     updated_at = ?2, last_error = 'said again by the reconcile after: ' || coalesce(last_error, '') \
                     WHERE id = ?1",
                    params![id, now],
                )?;
                revived.push(id);
            }
        }
        Ok(revived)
    })
}

/// Operator: delete a job that is not running.
pub fn drop_job(store: &Store, id: i64) -> Result<()> {
    store.write(|tx| {
        let state: Option<String> = tx
            .query_row("SELECT state FROM jobs WHERE id = ?1", [id], |r| r.get(0))
            .optional()?;
        match state.as_deref() {
            None => Err(StoreError::NotFound(format!("job {id} does not exist"))),
            Some("running") => Err(StoreError::Conflict(format!(
                "job {id} is running; wait for it to finish or fail, then drop it"
            ))),
            Some(_) => {
                tx.execute("DELETE FROM jobs WHERE id = ?1", [id])?;
                Ok(())
            }
        }
    })
}

/// Housekeeping: forget finished jobs older than `before`.
pub fn prune_done(store: &Store, before: i64) -> Result<usize> {
    store.write(|tx| {
        Ok(tx.execute(
            "DELETE FROM jobs WHERE state = 'done' AND updated_at < ?1",
            [before],
        )?)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HumanDuration;
    use std::time::Duration;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state.db")).unwrap();
        (dir, store)
    }

    fn job(key: &str, value: i64) -> NewJob {
        NewJob {
            channel: "test".into(),
            kind: "stock".into(),
            key: key.into(),
            payload: serde_json::json!({ "qty": value }).into(),
            correlation_id: None,
        }
    }

    fn room(n: usize) -> HashMap<String, usize> {
        HashMap::from([("test".to_string(), n), ("other".to_string(), n)])
    }

    fn policy(max_attempts: u32) -> RetryConfig {
        RetryConfig {
            max_attempts,
            base_delay: HumanDuration(Duration::from_secs(1)),
            max_delay: HumanDuration(Duration::from_secs(60)),
        }
    }

    #[test]
    fn enqueue_coalesces_on_a_waiting_job_and_latest_value_wins() {
        let (_d, s) = store();
        let a = enqueue(&s, job("test:stock:1", 5)).unwrap();
        let b = enqueue(&s, job("test:stock:1", 7)).unwrap();
        let c = enqueue(&s, job("test:stock:2", 1)).unwrap();
        assert!(matches!(a, Enqueued::New(_)));
        assert_eq!(b, Enqueued::Coalesced(a.id()));
        assert!(matches!(c, Enqueued::New(_)));
        let j = get(&s, a.id()).unwrap().unwrap();
        assert_eq!(j.payload["qty"], 7);
        assert_eq!(
            list(&s, Some(JobState::Pending), None, 10).unwrap().len(),
            2
        );
    }

    #[test]
    fn a_newer_value_sent_settles_the_dead_jobs_of_its_record_only() {
        let (_d, s) = store();
        let die = |key: &str, value: i64| {
            let id = enqueue(&s, job(key, value)).unwrap().id();
            claim_due(&s, now_ms(), &room(10)).unwrap();
            let out = fail(&s, id, RetryClass::Transient, "503", &policy(1), now_ms()).unwrap();
            assert!(matches!(out, FailOutcome::Dead { .. }), "{out:?}");
            id
        };
        let old = die("test:stock:1", 5);
        let other = die("test:stock:2", 9);
        let newer = enqueue(&s, job("test:stock:1", 7)).unwrap().id();
        claim_due(&s, now_ms(), &room(10)).unwrap();
        complete(&s, newer).unwrap();
        let settled = get(&s, old).unwrap().unwrap();
        assert_eq!(settled.state, JobState::Done);
        assert!(
            settled
                .last_error
                .as_deref()
                .is_some_and(|e| e.starts_with(&format!("settled by job {newer}, which sent a newer value after: gave up after 1 attempts: 503"))),
            "{:?}",
            settled.last_error
        );
        assert_eq!(get(&s, other).unwrap().unwrap().state, JobState::Dead);
        // An event delivery done settles no other delivery.
        let delivery = |n: i64| NewJob {
            kind: crate::store::order_events::DELIVERY_KIND.into(),
            ..job("test:events:cartona:1", n)
        };
        let dead = enqueue(&s, delivery(1)).unwrap().id();
        claim_due(&s, now_ms(), &room(10)).unwrap();
        fail(&s, dead, RetryClass::Transient, "503", &policy(1), now_ms()).unwrap();
        let later = enqueue(&s, delivery(2)).unwrap().id();
        claim_due(&s, now_ms(), &room(10)).unwrap();
        complete(&s, later).unwrap();
        assert_eq!(get(&s, dead).unwrap().unwrap().state, JobState::Dead);
    }

    #[test]
    fn a_running_job_does_not_absorb_a_newer_value() {
        let (_d, s) = store();
        let a = enqueue(&s, job("k", 1)).unwrap().id();
        let claimed = claim_due(&s, now_ms(), &room(10)).unwrap();
        assert_eq!(claimed.len(), 1);
        let b = enqueue(&s, job("k", 2)).unwrap();
        assert!(matches!(b, Enqueued::New(id) if id != a));
        // The running one fails: the newer waiting job supersedes it, no duplicate retry.
        let out = fail(
            &s,
            a,
            RetryClass::Transient,
            "timeout",
            &policy(5),
            now_ms(),
        )
        .unwrap();
        assert_eq!(out, FailOutcome::Superseded { by: b.id() });
    }

    #[test]
    fn a_records_newer_job_waits_while_its_older_one_runs() {
        let (_d, s) = store();
        let a = enqueue(&s, job("k", 1)).unwrap().id();
        enqueue(&s, job("j", 1)).unwrap();
        assert_eq!(claim_due(&s, now_ms(), &room(10)).unwrap().len(), 2);
        let b = enqueue(&s, job("k", 2)).unwrap().id();
        let c = enqueue(&s, job("i", 1)).unwrap().id();
        let ids = |jobs: Vec<Job>| jobs.iter().map(|j| j.id).collect::<Vec<_>>();
        let batches = claim_batches(&s, now_ms(), &room(10), &|_, _| 10).unwrap();
        assert_eq!(
            batches.into_iter().flat_map(ids).collect::<Vec<_>>(),
            vec![c],
            "k's newer job waits for the running one"
        );
        assert!(claim_due(&s, now_ms(), &room(10)).unwrap().is_empty());
        complete(&s, a).unwrap();
        assert_eq!(ids(claim_due(&s, now_ms(), &room(10)).unwrap()), vec![b]);
    }

    #[test]
    fn open_payloads_include_a_running_job() {
        let (_d, s) = store();
        enqueue(&s, job("k", 1)).unwrap();
        claim_due(&s, now_ms(), &room(10)).unwrap();
        enqueue(&s, job("k", 2)).unwrap();
        enqueue(&s, job("done", 3)).unwrap();
        let done = claim_due(&s, now_ms(), &room(10)).unwrap();
        complete(&s, done[0].id).unwrap();
        let open = open_payloads(&s, &["k".into(), "done".into()]).unwrap();
        let qty = |p: &Payload| p["qty"].as_i64().unwrap();
        assert_eq!(open["k"].iter().map(qty).collect::<Vec<_>>(), vec![1, 2]);
        assert!(!open.contains_key("done"), "finished jobs say nothing more");
    }

    #[test]
    fn transient_errors_retry_then_dead_letter_after_max_attempts() {
        let (_d, s) = store();
        let id = enqueue(&s, job("k", 1)).unwrap().id();
        let p = policy(3);
        let mut now = now_ms();
        for attempt in 1..=2 {
            assert_eq!(claim_due(&s, now, &room(1)).unwrap().len(), 1);
            match fail(&s, id, RetryClass::Transient, "connection refused", &p, now).unwrap() {
                FailOutcome::Retrying {
                    attempt: a,
                    next_attempt_at,
                } => {
                    assert_eq!(a, attempt);
                    assert!(next_attempt_at >= now && next_attempt_at <= now + 60_000);
                    // Not due before its time.
                    if next_attempt_at > now {
                        assert!(claim_due(&s, next_attempt_at - 1, &room(1))
                            .unwrap()
                            .is_empty());
                    }
                    now = next_attempt_at;
                }
                other => panic!("expected a retry, got {other:?}"),
            }
        }
        assert_eq!(claim_due(&s, now, &room(1)).unwrap().len(), 1);
        let out = fail(&s, id, RetryClass::Transient, "connection refused", &p, now).unwrap();
        assert!(
            matches!(out, FailOutcome::Dead { ref reason } if reason.contains("gave up after 3 attempts"))
        );
        assert_eq!(get(&s, id).unwrap().unwrap().state, JobState::Dead);
    }

    #[test]
    fn waiting_for_an_unreachable_odoo_never_dead_letters() {
        let (_d, s) = store();
        let id = enqueue(&s, job("k", 1)).unwrap().id();
        let mut now = now_ms();
        for _ in 0..20 {
            claim_due(&s, now + 10_000_000, &room(1)).unwrap();
            match fail(
                &s,
                id,
                RetryClass::Unavailable,
                "cannot reach Odoo",
                &policy(3),
                now,
            )
            .unwrap()
            {
                FailOutcome::Retrying {
                    attempt,
                    next_attempt_at,
                } => {
                    assert_eq!(attempt, 0, "no attempt spent");
                    assert!(next_attempt_at <= now + 60_000);
                    now = next_attempt_at;
                }
                other => panic!("an outage must not kill the job: {other:?}"),
            }
        }
        assert_eq!(
            get(&s, id).unwrap().unwrap().error_class.as_deref(),
            Some("unavailable")
        );
    }

    #[test]
    fn a_throttled_job_waits_exactly_the_named_time_without_spending_attempts() {
        let (_d, s) = store();
        let id = enqueue(&s, job("k", 1)).unwrap().id();
        let now = now_ms();
        // Longer than the policy's longest wait (60 s): the peer's word wins.
        let after = std::time::Duration::from_secs(19 * 60);
        for _ in 0..10 {
            claim_due(&s, now + 10_000_000_000, &room(1)).unwrap();
            let out = fail(
                &s,
                id,
                RetryClass::Throttled { after },
                "Meta: catalog batch quota used up",
                &policy(3),
                now,
            )
            .unwrap();
            match out {
                FailOutcome::Retrying {
                    attempt,
                    next_attempt_at,
                } => {
                    assert_eq!(attempt, 0, "no attempt spent");
                    assert_eq!(next_attempt_at, now + after.as_millis() as i64);
                }
                other => panic!("a throttle must not kill the job: {other:?}"),
            }
        }
        assert_eq!(
            get(&s, id).unwrap().unwrap().error_class.as_deref(),
            Some("throttled")
        );
    }

    #[test]
    fn permanent_and_auth_errors_go_straight_to_dead_with_the_reason() {
        let (_d, s) = store();
        for (key, class, msg) in [
            (
                "a",
                RetryClass::Permanent,
                "Cartona answered 400: invalid price",
            ),
            ("b", RetryClass::Auth, "Cartona rejected the token"),
        ] {
            let id = enqueue(&s, job(key, 1)).unwrap().id();
            claim_due(&s, now_ms(), &room(10)).unwrap();
            let out = fail(&s, id, class, msg, &policy(10), now_ms()).unwrap();
            let FailOutcome::Dead { reason } = out else {
                panic!("not dead")
            };
            assert!(reason.contains(msg));
            let j = get(&s, id).unwrap().unwrap();
            assert_eq!((j.state, j.attempts), (JobState::Dead, 1));
            assert_eq!(j.error_class.as_deref(), Some(class.as_str()));
        }
    }

    #[test]
    fn only_a_permanently_refused_value_is_kept_from_being_planned_again() {
        let (_d, s) = store();
        // a: refused for good; b: gave up after transient failures; c: waiting; d: auth.
        for (key, class, attempts) in [
            ("a", RetryClass::Permanent, 1),
            ("b", RetryClass::Transient, 2),
            ("d", RetryClass::Auth, 1),
        ] {
            let id = enqueue(&s, job(key, 1)).unwrap().id();
            for _ in 0..attempts {
                claim_due(&s, i64::MAX / 2, &room(10)).unwrap();
                fail(&s, id, class, "no", &policy(2), now_ms()).unwrap();
            }
            assert_eq!(get(&s, id).unwrap().unwrap().state, JobState::Dead, "{key}");
        }
        enqueue(&s, job("c", 1)).unwrap();
        let planned = |jobs: Vec<NewJob>| -> Vec<String> {
            without_dead_repeats(&s, jobs)
                .unwrap()
                .into_iter()
                .map(|j| format!("{}={}", j.key, j.payload.text))
                .collect()
        };
        assert_eq!(
            planned(vec![
                job("a", 1),
                job("b", 1),
                job("c", 1),
                job("d", 1),
                job("a", 2)
            ]),
            vec!["b={\"qty\":1}", "d={\"qty\":1}", "a={\"qty\":2}"],
            "the value that died of anything but a refusal is planned again, and a new value is"
        );
    }

    #[test]
    fn the_reconcile_revives_what_a_recent_order_s_marketplace_has_not_heard() {
        let (_d, s) = store();
        crate::store::orders::seen(&s, "cartona", "h1", "CARTONA-h1", "approved", None).unwrap();
        let dead = |key: &str, correlation: Option<&str>, class: RetryClass| {
            let mut j = job(key, 1);
            j.channel = "cartona".into();
            j.correlation_id = correlation.map(str::to_string);
            let id = enqueue(&s, j).unwrap().id();
            claim_due(
                &s,
                i64::MAX / 2,
                &HashMap::from([("cartona".to_string(), 10)]),
            )
            .unwrap();
            fail(&s, id, class, "no", &policy(1), now_ms()).unwrap();
            id
        };
        // The status (found by its reference) and the import whose acknowledgement died (by its
        // key, as a Medusa import knows only the order's id); not a refusal, not another order.
        let status = dead(
            "cartona:status:h1",
            Some("CARTONA-h1"),
            RetryClass::Transient,
        );
        let import = dead("cartona:order:h1", None, RetryClass::Auth);
        dead("cartona:edit:h1", Some("CARTONA-h1"), RetryClass::Permanent);
        dead(
            "cartona:status:h2",
            Some("CARTONA-h2"),
            RetryClass::Transient,
        );
        let revived = revive_for_orders(&s, &["cartona".to_string()], 90).unwrap();
        assert_eq!(revived, vec![status, import]);
        let j = get(&s, status).unwrap().unwrap();
        assert_eq!((j.state, j.attempts), (JobState::Pending, 0));
        assert!(revive_for_orders(&s, &["cartona".to_string()], 90)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn crash_recovery_returns_running_jobs_to_pending() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        {
            let s = Store::open(&path).unwrap();
            enqueue(&s, job("a", 1)).unwrap();
            enqueue(&s, job("b", 1)).unwrap();
            assert_eq!(claim_due(&s, now_ms(), &room(10)).unwrap().len(), 2);
            // process "crashes" here: the store is dropped with both jobs running
        }
        let s = Store::open(&path).unwrap();
        assert_eq!(recover_running(&s).unwrap(), 2);
        assert_eq!(
            list(&s, Some(JobState::Pending), None, 10).unwrap().len(),
            2
        );
        assert_eq!(
            list(&s, Some(JobState::Running), None, 10).unwrap().len(),
            0
        );
    }

    #[test]
    fn full_channels_are_skipped() {
        let (_d, s) = store();
        let mut other = job("x", 1);
        other.channel = "other".into();
        enqueue(&s, job("a", 1)).unwrap();
        enqueue(&s, other).unwrap();
        let mut r = room(10);
        r.insert("test".into(), 0);
        let claimed = claim_due(&s, now_ms(), &r).unwrap();
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].channel, "other");
    }

    #[test]
    fn operator_retry_and_drop() {
        let (_d, s) = store();
        let id = enqueue(&s, job("a", 1)).unwrap().id();
        claim_due(&s, now_ms(), &room(1)).unwrap();
        fail(&s, id, RetryClass::Auth, "401", &policy(5), now_ms()).unwrap();
        assert_eq!(
            retry_dead(&s, Some("medusa")).unwrap(),
            Vec::<i64>::new(),
            "another channel's dead jobs stay dead"
        );
        assert_eq!(get(&s, id).unwrap().unwrap().state, JobState::Dead);
        assert_eq!(retry_dead(&s, Some("test")).unwrap(), vec![id]);
        let j = get(&s, id).unwrap().unwrap();
        assert_eq!((j.state, j.attempts), (JobState::Pending, 0));
        assert!(matches!(drop_job(&s, 999), Err(StoreError::NotFound(_))));
        drop_job(&s, id).unwrap();
        assert!(get(&s, id).unwrap().is_none());
    }
}
