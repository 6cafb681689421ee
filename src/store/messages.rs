//! The customers' WhatsApp messages: one per (order, step), recorded before it is sent, with
//! WhatsApp's message id once accepted and the state its status webhooks report. See
//! `migrations/0008_messages.sql` for the states.

use super::{now_ms, Result, Store};
use rusqlite::{params, OptionalExtension, Row};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Message {
    pub id: i64,
    pub channel: String,
    pub external_id: String,
    pub step: String,
    pub event_id: i64,
    pub state: String,
    pub phone: Option<String>,
    pub template: Option<String>,
    pub language: Option<String>,
    pub wamid: Option<String>,
    pub reason: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str =
    "id, channel, external_id, step, event_id, state, phone, template, language, \
                       wamid, reason, created_at, updated_at";

fn row(r: &Row<'_>) -> rusqlite::Result<Message> {
    Ok(Message {
        id: r.get(0)?,
        channel: r.get(1)?,
        external_id: r.get(2)?,
        step: r.get(3)?,
        event_id: r.get(4)?,
        state: r.get(5)?,
        phone: r.get(6)?,
        template: r.get(7)?,
        language: r.get(8)?,
        wamid: r.get(9)?,
        reason: r.get(10)?,
        created_at: r.get(11)?,
        updated_at: r.get(12)?,
    })
}

/// Records the message of an order's step (once: a second call returns the first's id).
pub fn plan_in(
    tx: &rusqlite::Transaction<'_>,
    channel: &str,
    external_id: &str,
    step: &str,
    event_id: i64,
) -> Result<i64> {
    let now = now_ms();
    tx.execute(
        "INSERT INTO messages (channel, external_id, step, event_id, state, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, 'planned', ?5, ?5) \
         ON CONFLICT (channel, external_id, step) DO NOTHING",
        params![channel, external_id, step, event_id, now],
    )?;
    Ok(tx.query_row(
        "SELECT id FROM messages WHERE channel = ?1 AND external_id = ?2 AND step = ?3",
        params![channel, external_id, step],
        |r| r.get(0),
    )?)
}

pub fn get(store: &Store, id: i64) -> Result<Option<Message>> {
    store.read(|c| {
        Ok(c.query_row(
            &format!("SELECT {COLUMNS} FROM messages WHERE id = ?1"),
            [id],
            row,
        )
        .optional()?)
    })
}

/// Moves a message from `from` to `to` (with its phone, template and language): false when
/// it was no longer in `from` (another worker took it, or a webhook settled it).
pub fn claim(
    store: &Store,
    id: i64,
    from: &str,
    to: &str,
    phone: &str,
    template: &str,
    language: &str,
) -> Result<bool> {
    store.write(|tx| {
        Ok(tx.execute(
            "UPDATE messages SET state = ?3, phone = ?4, template = ?5, language = ?6, updated_at = ?7, \
             sent_at = ?7 WHERE id = ?1 AND state = ?2",
            params![id, from, to, phone, template, language, now_ms()],
        )? == 1)
    })
}

/// Sets a message's state (and reason, wamid when given), whatever it was.
pub fn settle(
    store: &Store,
    id: i64,
    state: &str,
    reason: Option<&str>,
    wamid: Option<&str>,
) -> Result<()> {
    store.write(|tx| {
        tx.execute(
            "UPDATE messages SET state = ?2, reason = COALESCE(?3, reason), \
             wamid = COALESCE(?4, wamid), updated_at = ?5 WHERE id = ?1",
            params![id, state, reason, wamid, now_ms()],
        )?;
        Ok(())
    })
}

/// Moves a message on from `from` only (a status webhook that came first is kept); the wamid
/// is recorded either way.
pub fn settle_from(
    store: &Store,
    id: i64,
    from: &str,
    state: &str,
    reason: Option<&str>,
    wamid: Option<&str>,
) -> Result<()> {
    store.write(|tx| {
        tx.execute(
            "UPDATE messages SET \
             reason = CASE WHEN state = ?2 THEN COALESCE(?4, reason) ELSE reason END, \
             state = CASE WHEN state = ?2 THEN ?3 ELSE state END, \
             wamid = COALESCE(wamid, ?5), updated_at = ?6 WHERE id = ?1",
            params![id, from, state, reason, wamid, now_ms()],
        )?;
        Ok(())
    })
}

/// Where a status webhook's message is: by its wamid, else by the id it was sent with
/// (`biz_opaque_callback_data`, for a message whose answer was lost).
pub fn find_in(
    tx: &rusqlite::Connection,
    wamid: &str,
    callback_id: Option<i64>,
) -> Result<Option<Message>> {
    let by_wamid = tx
        .query_row(
            &format!("SELECT {COLUMNS} FROM messages WHERE wamid = ?1"),
            [wamid],
            row,
        )
        .optional()?;
    if by_wamid.is_some() {
        return Ok(by_wamid);
    }
    match callback_id {
        Some(id) => Ok(tx
            .query_row(
                &format!("SELECT {COLUMNS} FROM messages WHERE id = ?1"),
                [id],
                row,
            )
            .optional()?),
        None => Ok(None),
    }
}

/// Records a status webhook's news of message `id`, as far as it goes: a status ranked at or
/// under the present one changes nothing. True when it changed the message.
pub fn report_in(
    tx: &rusqlite::Transaction<'_>,
    m: &Message,
    wamid: &str,
    state: &str,
    reason: Option<&str>,
) -> Result<bool> {
    let rank = crate::channel::whatsapp::wire::rank;
    if rank(state) <= rank(&m.state) || ["skipped", "dead"].contains(&m.state.as_str()) {
        if m.wamid.is_none() {
            tx.execute(
                "UPDATE messages SET wamid = ?2 WHERE id = ?1 AND wamid IS NULL",
                params![m.id, wamid],
            )?;
        }
        return Ok(false);
    }
    tx.execute(
        "UPDATE messages SET state = ?2, wamid = COALESCE(wamid, ?3), reason = COALESCE(?4, reason), \
         updated_at = ?5 WHERE id = ?1",
        params![m.id, state, wamid, reason, now_ms()],
    )?;
    Ok(true)
}

/// Whether WhatsApp said this number is not on WhatsApp.
pub fn number_unreachable(store: &Store, phone: &str) -> Result<Option<String>> {
    store.read(|c| {
        Ok(c.query_row(
            "SELECT reason FROM unreachable_numbers WHERE phone = ?1",
            [phone],
            |r| r.get(0),
        )
        .optional()?)
    })
}

pub fn mark_number_unreachable_in(
    tx: &rusqlite::Transaction<'_>,
    phone: &str,
    reason: &str,
) -> Result<()> {
    tx.execute(
        "INSERT INTO unreachable_numbers (phone, reason, at) VALUES (?1, ?2, ?3) \
         ON CONFLICT (phone) DO UPDATE SET reason = excluded.reason, at = excluded.at",
        params![phone, reason, now_ms()],
    )?;
    Ok(())
}

/// The unconfirmed messages (their answer lost) sent before `older` that WhatsApp has shown
/// never left: a message sent after them has had a status webhook, and they none.
/// They are planned again (their order's notify job sends them) and returned.
pub fn resend_unconfirmed(store: &Store, older: i64) -> Result<Vec<Message>> {
    store.write(|tx| {
        let mut stmt = tx.prepare(&format!(
            "SELECT {COLUMNS} FROM messages m WHERE state = 'unconfirmed' AND coalesce(sent_at, updated_at) < ?1 \
             AND EXISTS (SELECT 1 FROM messages n WHERE n.id != m.id AND n.sent_at > coalesce(m.sent_at, m.updated_at) \
                         AND n.state IN ('sent', 'delivered', 'read', 'failed'))"
        ))?;
        let found = stmt
            .query_map([older], row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        drop(stmt);
        for m in &found {
            tx.execute(
                "UPDATE messages SET state = 'planned', reason = NULL, updated_at = ?2 WHERE id = ?1",
                params![m.id, now_ms()],
            )?;
        }
        Ok(found)
    })
}

/// Messages still to send, or left sending, last touched before `older`.
pub fn stuck(store: &Store, older: i64) -> Result<Vec<Message>> {
    store.read(|c| {
        let mut stmt = c.prepare(&format!(
            "SELECT {COLUMNS} FROM messages WHERE state IN ('planned', 'sending') AND updated_at < ?1 \
             ORDER BY id LIMIT 500"
        ))?;
        let rows = stmt
            .query_map([older], row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    })
}

/// The filter of `marketsync messages`.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub channel: Option<String>,
    pub external_id: Option<String>,
    pub state: Option<String>,
    pub limit: Option<usize>,
}

/// Messages, newest first.
pub fn list(store: &Store, f: &Filter) -> Result<Vec<Message>> {
    store.read(|c| {
        let mut stmt = c.prepare(&format!(
            "SELECT {COLUMNS} FROM messages \
             WHERE (?1 IS NULL OR channel = ?1) AND (?2 IS NULL OR external_id = ?2) \
             AND (?3 IS NULL OR state = ?3) ORDER BY id DESC LIMIT ?4"
        ))?;
        let limit = f.limit.map_or(-1, |l| l as i64);
        let rows = stmt
            .query_map(params![f.channel, f.external_id, f.state, limit], row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    })
}

/// Counts by step and state (for `/metrics`).
pub fn counts(store: &Store) -> Result<Vec<(String, String, i64)>> {
    store.read(|c| {
        let mut stmt = c.prepare(
            "SELECT step, state, count(*) FROM messages GROUP BY step, state ORDER BY step, state",
        )?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    })
}

/// The last message of each of these orders (for `order list`).
pub fn last_of(
    store: &Store,
    orders: &[(String, String)],
) -> Result<std::collections::HashMap<(String, String), Message>> {
    store.read(|c| {
        let mut stmt = c.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM messages WHERE channel = ?1 AND external_id = ?2 \
             ORDER BY id DESC LIMIT 1"
        ))?;
        let mut out = std::collections::HashMap::new();
        for (channel, external_id) in orders {
            if let Some(m) = stmt
                .query_row(params![channel, external_id], row)
                .optional()?
            {
                out.insert((channel.clone(), external_id.clone()), m);
            }
        }
        Ok(out)
    })
}
