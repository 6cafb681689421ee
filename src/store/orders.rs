//! Marketplace orders as both sides know them: the Odoo `sale.order`, the status the channel
//! last reported, the status we last sent, and what the operator must still do (a return to
//! handle, an edit made after confirmation). What only one channel knows about its orders is
//! its channel data (`meta`, JSON, shown to the operator) and its order secrets (a retailer's
//! OTP: kept apart, never printed, only their names are read with the order).

use super::{now_ms, Result, Store, StoreError};
use rusqlite::{params, OptionalExtension};
use serde::Serialize;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ChannelOrder {
    pub channel: String,
    pub external_id: String,
    pub reference: String,
    pub odoo_id: Option<i64>,
    pub marketplace_status: Option<String>,
    pub sent_status: Option<String>,
    pub payload_hash: Option<String>,
    pub attention: Option<String>,
    pub updated_at: i64,
    /// The channel's own data about the order (JSON object): a Medusa fulfillment, Cartona's
    /// delivery mode and whether the delivery needs the retailer's OTP.
    pub meta: serde_json::Value,
    /// The names of the order's secrets that are recorded (their values are read only by
    /// [`secret`]).
    pub secrets: Vec<String>,
}

impl ChannelOrder {
    /// Whether the order has a secret of this name recorded.
    pub fn has_secret(&self, name: &str) -> bool {
        self.secrets.iter().any(|s| s == name)
    }
}

const COLUMNS: &str =
    "channel, external_id, reference, odoo_id, marketplace_status, sent_status, payload_hash, \
     attention, updated_at, meta, \
     (SELECT group_concat(name, ',') FROM order_secrets s \
      WHERE s.channel = channel_orders.channel AND s.external_id = channel_orders.external_id)";

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ChannelOrder> {
    Ok(ChannelOrder {
        channel: r.get(0)?,
        external_id: r.get(1)?,
        reference: r.get(2)?,
        odoo_id: r.get(3)?,
        marketplace_status: r.get(4)?,
        sent_status: r.get(5)?,
        payload_hash: r.get(6)?,
        attention: r.get(7)?,
        updated_at: r.get(8)?,
        meta: r
            .get::<_, Option<String>>(9)?
            .and_then(|m| serde_json::from_str(&m).ok())
            .unwrap_or(serde_json::Value::Null),
        secrets: r
            .get::<_, Option<String>>(10)?
            .map(|names| names.split(',').map(str::to_string).collect())
            .unwrap_or_default(),
    })
}

pub fn get(store: &Store, channel: &str, external_id: &str) -> Result<Option<ChannelOrder>> {
    store.read(|c| {
        Ok(c.query_row(
            &format!(
                "SELECT {COLUMNS} FROM channel_orders WHERE channel = ?1 AND external_id = ?2"
            ),
            params![channel, external_id],
            from_row,
        )
        .optional()?)
    })
}

pub fn by_reference(store: &Store, reference: &str) -> Result<Option<ChannelOrder>> {
    store.read(|c| {
        Ok(c.query_row(
            &format!("SELECT {COLUMNS} FROM channel_orders WHERE reference = ?1"),
            [reference],
            from_row,
        )
        .optional()?)
    })
}

/// The known marketplace orders among these Odoo orders, by Odoo id.
pub fn by_odoo_ids(
    store: &Store,
    ids: &[i64],
) -> Result<std::collections::HashMap<i64, ChannelOrder>> {
    let mut out = std::collections::HashMap::new();
    store.read(|c| {
        for chunk in ids.chunks(500) {
            let marks = vec!["?"; chunk.len()].join(", ");
            let mut stmt = c.prepare(&format!(
                "SELECT {COLUMNS} FROM channel_orders WHERE odoo_id IN ({marks})"
            ))?;
            for row in stmt.query_map(rusqlite::params_from_iter(chunk), from_row)? {
                let o = row?;
                if let Some(id) = o.odoo_id {
                    out.insert(id, o);
                }
            }
        }
        Ok(())
    })?;
    Ok(out)
}

/// What the channel just told us about an order: its status, and its own data about it
/// (`data`, a JSON object merged into the order's channel data).
pub fn seen(
    store: &Store,
    channel: &str,
    external_id: &str,
    reference: &str,
    status: &str,
    data: Option<&serde_json::Value>,
) -> Result<()> {
    let now = now_ms();
    let data = data.map(|d| d.to_string());
    store.write(|tx| {
        tx.execute(
            "INSERT INTO channel_orders (channel, external_id, reference, marketplace_status, meta, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
             ON CONFLICT (channel, external_id) DO UPDATE SET marketplace_status = ?4, \
             meta = CASE WHEN ?5 IS NULL THEN meta \
                    ELSE json_patch(CASE WHEN json_type(meta) = 'object' THEN meta ELSE '{}' END, ?5) END, \
             updated_at = ?6",
            params![channel, external_id, reference, status, data, now],
        )?;
        Ok(())
    })
}

/// The Odoo order exists (and carries the payload with this hash).
pub fn set_odoo(
    store: &Store,
    channel: &str,
    external_id: &str,
    odoo_id: i64,
    payload_hash: &str,
) -> Result<()> {
    update(
        store,
        channel,
        external_id,
        "odoo_id = ?3, payload_hash = ?4",
        params![channel, external_id, odoo_id, payload_hash],
    )
}

pub fn set_sent(store: &Store, channel: &str, external_id: &str, status: &str) -> Result<()> {
    update(
        store,
        channel,
        external_id,
        "sent_status = ?3",
        params![channel, external_id, status],
    )
}

/// The status was sent and nothing is left waiting for it, in one write: the attention line
/// cleared and the channel flag `flag` (in `meta`) dropped.
pub fn set_sent_settled(
    store: &Store,
    channel: &str,
    external_id: &str,
    status: &str,
    flag: &str,
) -> Result<()> {
    update(
        store,
        channel,
        external_id,
        "sent_status = ?3, attention = NULL, \
         meta = CASE WHEN json_type(meta) = 'object' THEN json_remove(meta, '$.' || ?4) ELSE meta END",
        params![channel, external_id, status, flag],
    )
}

/// The SQL of `meta` with the JSON object in parameter `param` merged in (key by key).
fn merged_meta(param: &str) -> String {
    format!("json_patch(CASE WHEN json_type(meta) = 'object' THEN meta ELSE '{{}}' END, {param})")
}

/// Merges `patch` (a JSON object) into the order's channel-specific ids, in one statement: a
/// key written by one job never erases another's.
pub fn merge_meta(
    store: &Store,
    channel: &str,
    external_id: &str,
    patch: &serde_json::Value,
) -> Result<()> {
    update(
        store,
        channel,
        external_id,
        &format!("meta = {}", merged_meta("?3")),
        params![channel, external_id, patch.to_string()],
    )
}

/// Sets the attention line and merges `patch` into the channel data, in one write (the words
/// for the operator and the flag behaviour follows never disagree).
pub fn set_attention_with(
    store: &Store,
    channel: &str,
    external_id: &str,
    why: &str,
    patch: &serde_json::Value,
) -> Result<()> {
    update(
        store,
        channel,
        external_id,
        &format!("attention = ?3, meta = {}", merged_meta("?4")),
        params![channel, external_id, why, patch.to_string()],
    )
}

pub fn set_attention(
    store: &Store,
    channel: &str,
    external_id: &str,
    why: Option<&str>,
) -> Result<()> {
    update(
        store,
        channel,
        external_id,
        "attention = ?3",
        params![channel, external_id, why],
    )
}

fn update(
    store: &Store,
    channel: &str,
    external_id: &str,
    set: &str,
    p: &[&dyn rusqlite::ToSql],
) -> Result<()> {
    let now = now_ms();
    store.write(|tx| {
        let sql = format!("UPDATE channel_orders SET {set}, updated_at = {now} WHERE channel = ?1 AND external_id = ?2");
        if tx.execute(&sql, p)? == 0 {
            return Err(StoreError::NotFound(format!("{channel} order {external_id} is not known")));
        }
        Ok(())
    })
}

/// The `channel` order with this reference or external id.
pub fn find(store: &Store, channel: &str, reference_or_id: &str) -> Result<ChannelOrder> {
    store.read(|c| {
        c.query_row(
            &format!(
                "SELECT {COLUMNS} FROM channel_orders WHERE channel = ?1 AND (reference = ?2 OR external_id = ?2)"
            ),
            params![channel, reference_or_id],
            from_row,
        )
        .optional()?
        .ok_or_else(|| {
            StoreError::NotFound(format!(
                "no {channel} order has the reference or id {reference_or_id:?} (see `marketsync order list --channel {channel}`)"
            ))
        })
    })
}

/// Records one of an order's secrets (a retailer's OTP), replacing an earlier one.
pub fn set_secret(
    store: &Store,
    channel: &str,
    external_id: &str,
    name: &str,
    value: &crate::secret::Secret,
) -> Result<()> {
    let now = now_ms();
    store.write(|tx| {
        tx.execute(
            "INSERT INTO order_secrets (channel, external_id, name, value, recorded_at) VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (channel, external_id, name) DO UPDATE SET value = ?4, recorded_at = ?5",
            params![channel, external_id, name, value.expose(), now],
        )?;
        tx.execute(
            "UPDATE channel_orders SET updated_at = ?3 WHERE channel = ?1 AND external_id = ?2",
            params![channel, external_id, now],
        )?;
        Ok(())
    })
}

/// One of an order's secrets, if recorded.
pub fn secret(
    store: &Store,
    channel: &str,
    external_id: &str,
    name: &str,
) -> Result<Option<crate::secret::Secret>> {
    store.read(|c| {
        Ok(c.query_row(
            "SELECT value FROM order_secrets WHERE channel = ?1 AND external_id = ?2 AND name = ?3",
            params![channel, external_id, name],
            |r| r.get::<_, String>(0),
        )
        .optional()?
        .map(crate::secret::Secret::new))
    })
}

/// How many orders [`list`] would give without its limit.
/// The Odoo ids of the orders whose row changed at or after `ms` (a new link to Odoo, a new
/// marketplace status).
pub fn linked_since(store: &Store, ms: i64) -> Result<Vec<i64>> {
    store.read(|c| {
        let mut stmt = c.prepare_cached(
            "SELECT odoo_id FROM channel_orders WHERE odoo_id IS NOT NULL AND updated_at >= ?1 ORDER BY odoo_id",
        )?;
        let rows = stmt
            .query_map([ms], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    })
}

pub fn list_count(store: &Store, channel: Option<&str>) -> Result<i64> {
    store.read(|c| {
        Ok(c.query_row(
            "SELECT COUNT(*) FROM channel_orders WHERE (?1 IS NULL OR channel = ?1)",
            params![channel],
            |r| r.get(0),
        )?)
    })
}

/// Per channel, how many orders' Odoo total differs from the marketplace's (their channel
/// data holds `totals`).
pub fn totals_differ_counts(store: &Store) -> Result<Vec<(String, i64)>> {
    store.read(|c| {
        let mut stmt = c.prepare_cached(
            "SELECT channel, COUNT(*) FROM channel_orders \
             WHERE json_type(meta) = 'object' AND json_type(meta, '$.totals') = 'object' \
             GROUP BY channel ORDER BY channel",
        )?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    })
}

pub fn list(store: &Store, channel: Option<&str>, limit: usize) -> Result<Vec<ChannelOrder>> {
    store.read(|c| {
        let mut stmt = c.prepare(&format!(
            "SELECT {COLUMNS} FROM channel_orders WHERE (?1 IS NULL OR channel = ?1) ORDER BY updated_at DESC LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![channel, limit as i64], from_row)?.collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_settled_status_clears_the_attention_and_only_its_flag() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("s.db")).unwrap();
        seen(&s, "cartona", "h1", "CARTONA-h1", "approved", None).unwrap();
        set_attention(&s, "cartona", "h1", Some("waiting for the OTP")).unwrap();
        merge_meta(
            &s,
            "cartona",
            "h1",
            &serde_json::json!({"awaiting_otp": true, "x": 1}),
        )
        .unwrap();
        set_sent_settled(&s, "cartona", "h1", "delivered", "awaiting_otp").unwrap();
        let o = get(&s, "cartona", "h1").unwrap().unwrap();
        assert_eq!(o.sent_status.as_deref(), Some("delivered"));
        assert_eq!(o.attention, None);
        assert_eq!(o.meta, serde_json::json!({"x": 1}));
        // An order without channel data keeps none.
        seen(&s, "cartona", "h2", "CARTONA-h2", "approved", None).unwrap();
        set_sent_settled(&s, "cartona", "h2", "approved", "awaiting_otp").unwrap();
        assert_eq!(
            get(&s, "cartona", "h2").unwrap().unwrap().meta,
            serde_json::Value::Null
        );
    }

    #[test]
    fn an_order_is_tracked_on_both_sides() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("s.db")).unwrap();
        seen(
            &s,
            "cartona",
            "6327",
            "CARTONA-6327",
            "pending",
            Some(&serde_json::json!({"delivered_by": "delivered_by_supplier", "needs_otp": true})),
        )
        .unwrap();
        set_odoo(&s, "cartona", "6327", 33, "h1").unwrap();
        set_sent(&s, "cartona", "6327", "approved").unwrap();
        let found = find(&s, "cartona", "CARTONA-6327").unwrap();
        set_secret(
            &s,
            "cartona",
            &found.external_id,
            "otp",
            &crate::secret::Secret::new("123456"),
        )
        .unwrap();
        let o = find(&s, "cartona", "6327").unwrap();
        assert_eq!(
            (o.odoo_id, o.sent_status.as_deref(), o.has_secret("otp")),
            (Some(33), Some("approved"), true)
        );
        assert_eq!(o.meta["needs_otp"], true);
        assert_eq!(
            secret(&s, "cartona", "6327", "otp")
                .unwrap()
                .unwrap()
                .expose(),
            "123456"
        );
        // A later sighting without channel data keeps what the channel said before.
        seen(&s, "cartona", "6327", "CARTONA-6327", "approved", None).unwrap();
        assert_eq!(
            get(&s, "cartona", "6327").unwrap().unwrap().meta["delivered_by"],
            "delivered_by_supplier"
        );
        // The time is cleared first: its milliseconds may hold any digits.
        let printed = serde_json::to_string(&ChannelOrder { updated_at: 0, ..o }).unwrap();
        assert!(!printed.contains("123456"), "the OTP is never serialized");
        assert!(find(&s, "cartona", "CARTONA-0000").is_err());
        assert!(
            find(&s, "medusa", "CARTONA-6327").is_err(),
            "another channel's order of the same reference is not this one"
        );
        assert!(set_sent(&s, "cartona", "nope", "x").is_err());
    }

    #[test]
    fn meta_is_merged_key_by_key() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("s.db")).unwrap();
        seen(&s, "medusa", "order_1", "MEDUSA-1", "pending", None).unwrap();
        merge_meta(&s, "medusa", "order_1", &serde_json::json!({"items": [1]})).unwrap();
        merge_meta(
            &s,
            "medusa",
            "order_1",
            &serde_json::json!({"paid_sent": true}),
        )
        .unwrap();
        merge_meta(&s, "medusa", "order_1", &serde_json::json!({"items": [2]})).unwrap();
        assert_eq!(
            get(&s, "medusa", "order_1").unwrap().unwrap().meta,
            serde_json::json!({"items": [2], "paid_sent": true})
        );
        assert!(merge_meta(&s, "medusa", "nope", &serde_json::json!({})).is_err());
    }
}
