//! Id mappings: which Odoo record is which record on a channel (unique both ways), and the hash
//! of what was last sent for it, so only differences go out.

use super::{now_ms, Result, Store, StoreError};
use rusqlite::{params, OptionalExtension};
use serde::Serialize;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Mapping {
    pub id: i64,
    pub channel: String,
    pub kind: String,
    pub odoo_model: String,
    pub odoo_id: i64,
    pub external_id: String,
    pub last_hash: Option<String>,
    /// Hash of the value last queued for the channel (batch pushes).
    pub planned_hash: Option<String>,
    pub last_sent_at: Option<i64>,
    pub updated_at: i64,
    /// Channel-specific ids (JSON object), e.g. Medusa's product and variant ids.
    pub meta: serde_json::Value,
}

const COLUMNS: &str = "id, channel, kind, odoo_model, odoo_id, external_id, last_hash, last_sent_at, updated_at, meta, planned_hash";

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Mapping> {
    Ok(Mapping {
        id: r.get(0)?,
        channel: r.get(1)?,
        kind: r.get(2)?,
        odoo_model: r.get(3)?,
        odoo_id: r.get(4)?,
        external_id: r.get(5)?,
        last_hash: r.get(6)?,
        last_sent_at: r.get(7)?,
        updated_at: r.get(8)?,
        meta: r
            .get::<_, Option<String>>(9)?
            .and_then(|m| serde_json::from_str(&m).ok())
            .unwrap_or(serde_json::Value::Null),
        planned_hash: r.get(10)?,
    })
}

/// Records, inside the caller's transaction, the value queued for each mapping (`(id, hash)`).
pub fn set_planned_in(tx: &rusqlite::Transaction<'_>, planned: &[(i64, &str)]) -> Result<()> {
    let mut stmt = tx.prepare_cached("UPDATE mappings SET planned_hash = ?2 WHERE id = ?1")?;
    for (id, hash) in planned {
        stmt.execute(params![id, hash])?;
    }
    Ok(())
}

/// The value last queued for each of these mappings (absent: none, or no such mapping). One
/// statement however many ids: SQLite walks the list itself.
pub fn planned_hashes(
    store: &Store,
    ids: &[i64],
) -> Result<std::collections::HashMap<i64, String>> {
    let list = serde_json::to_string(ids).unwrap_or_else(|_| "[]".into());
    store.read(|c| {
        let mut stmt = c.prepare_cached(
            "SELECT m.id, m.planned_hash FROM json_each(?1) AS j \
             JOIN mappings AS m ON m.id = j.value WHERE m.planned_hash IS NOT NULL",
        )?;
        let rows = stmt.query_map([list], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    })
}

/// Links an Odoo record to an external id. Re-linking the same pair is a no-op; linking either
/// side to something else is refused with a message naming the existing link.
pub fn set(
    store: &Store,
    channel: &str,
    kind: &str,
    odoo_model: &str,
    odoo_id: i64,
    external_id: &str,
) -> Result<Mapping> {
    store.write(|tx| set_in(tx, channel, kind, odoo_model, odoo_id, external_id))
}

/// [`set`] inside the caller's transaction (a page of products linked in one commit). A
/// refused link ([`StoreError::Conflict`]) writes nothing and leaves the transaction usable.
pub fn set_in(
    tx: &rusqlite::Transaction<'_>,
    channel: &str,
    kind: &str,
    odoo_model: &str,
    odoo_id: i64,
    external_id: &str,
) -> Result<Mapping> {
    let now = now_ms();
    {
        let by_odoo: Option<Mapping> = tx
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM mappings WHERE channel = ?1 AND kind = ?2 AND odoo_id = ?3"
            ))?
            .query_row(params![channel, kind, odoo_id], from_row)
            .optional()?;
        let by_ext: Option<Mapping> = tx
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM mappings WHERE channel = ?1 AND kind = ?2 AND external_id = ?3"
            ))?
            .query_row(params![channel, kind, external_id], from_row)
            .optional()?;
        match (by_odoo, by_ext) {
            (Some(a), Some(b)) if a.id == b.id => return Ok(a),
            (Some(a), _) => {
                return Err(StoreError::Conflict(format!(
                "{odoo_model} {odoo_id} is already mapped to {channel} {kind} {:?}; unset it first",
                a.external_id
            )))
            }
            (_, Some(b)) => {
                return Err(StoreError::Conflict(format!(
                    "{channel} {kind} {external_id:?} is already mapped to {} {}; unset it first",
                    b.odoo_model, b.odoo_id
                )))
            }
            (None, None) => {}
        }
        tx.prepare_cached(
            "INSERT INTO mappings (channel, kind, odoo_model, odoo_id, external_id, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
        )?
        .execute(params![channel, kind, odoo_model, odoo_id, external_id, now])?;
        let id = tx.last_insert_rowid();
        Ok(tx
            .prepare_cached(&format!("SELECT {COLUMNS} FROM mappings WHERE id = ?1"))?
            .query_row([id], from_row)?)
    }
}

/// Removes the mapping of an Odoo id or an external id. Returns whether one existed.
pub fn unset(
    store: &Store,
    channel: &str,
    kind: &str,
    odoo_id: Option<i64>,
    external_id: Option<&str>,
) -> Result<bool> {
    store.write(|tx| {
        let n = tx.execute(
            "DELETE FROM mappings WHERE channel = ?1 AND kind = ?2 AND (odoo_id = ?3 OR external_id = ?4)",
            params![channel, kind, odoo_id, external_id],
        )?;
        Ok(n > 0)
    })
}

pub fn by_odoo(store: &Store, channel: &str, kind: &str, odoo_id: i64) -> Result<Option<Mapping>> {
    store.read(|c| {
        Ok(c.query_row(
            &format!(
                "SELECT {COLUMNS} FROM mappings WHERE channel = ?1 AND kind = ?2 AND odoo_id = ?3"
            ),
            params![channel, kind, odoo_id],
            from_row,
        )
        .optional()?)
    })
}

/// The mappings of these Odoo records, in one read (a page of products, not the whole table):
/// one range scan when the ids are dense (a page of a full read), point lookups otherwise.
pub fn by_odoo_many(
    store: &Store,
    channel: &str,
    kind: &str,
    odoo_ids: &[i64],
) -> Result<std::collections::HashMap<i64, Mapping>> {
    let mut out = std::collections::HashMap::with_capacity(odoo_ids.len());
    let (Some(&lo), Some(&hi)) = (odoo_ids.iter().min(), odoo_ids.iter().max()) else {
        return Ok(out);
    };
    let dense = odoo_ids.len() > 32 && ((hi - lo) as usize) < odoo_ids.len() * 4;
    store.read(|c| {
        if dense {
            let wanted: std::collections::HashSet<i64> = odoo_ids.iter().copied().collect();
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM mappings WHERE channel = ?1 AND kind = ?2 AND odoo_id BETWEEN ?3 AND ?4"
            ))?;
            for m in stmt.query_map(params![channel, kind, lo, hi], from_row)? {
                let m = m?;
                if wanted.contains(&m.odoo_id) {
                    out.insert(m.odoo_id, m);
                }
            }
        } else {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM mappings WHERE channel = ?1 AND kind = ?2 AND odoo_id = ?3"
            ))?;
            for &id in odoo_ids {
                if let Some(m) = stmt
                    .query_row(params![channel, kind, id], from_row)
                    .optional()?
                {
                    out.insert(id, m);
                }
            }
        }
        Ok(out)
    })
}

pub fn by_external(
    store: &Store,
    channel: &str,
    kind: &str,
    external_id: &str,
) -> Result<Option<Mapping>> {
    store.read(|c| {
        Ok(c.query_row(
            &format!("SELECT {COLUMNS} FROM mappings WHERE channel = ?1 AND kind = ?2 AND external_id = ?3"),
            params![channel, kind, external_id],
            from_row,
        )
        .optional()?)
    })
}

/// Stores channel-specific ids with a mapping (merged into what is there).
pub fn merge_meta(store: &Store, mapping_id: i64, meta: &serde_json::Value) -> Result<()> {
    store.write(|tx| {
        let current: Option<String> = tx.query_row(
            "SELECT meta FROM mappings WHERE id = ?1",
            [mapping_id],
            |r| r.get(0),
        )?;
        let mut merged = current
            .and_then(|c| serde_json::from_str::<serde_json::Value>(&c).ok())
            .unwrap_or_else(|| serde_json::json!({}));
        if let (Some(m), Some(new)) = (merged.as_object_mut(), meta.as_object()) {
            for (k, v) in new {
                m.insert(k.clone(), v.clone());
            }
        }
        tx.execute(
            "UPDATE mappings SET meta = ?2 WHERE id = ?1",
            params![mapping_id, merged.to_string()],
        )?;
        Ok(())
    })
}

/// Records, inside the caller's transaction, what the channel accepted for these mappings
/// (`(id, hash)`).
pub fn mark_sent_in(tx: &rusqlite::Transaction<'_>, sent: &[(i64, String)]) -> Result<()> {
    let now = now_ms();
    let mut stmt = tx.prepare_cached(
        "UPDATE mappings SET last_hash = ?2, last_sent_at = ?3, updated_at = ?3 WHERE id = ?1",
    )?;
    for (id, hash) in sent {
        stmt.execute(params![id, hash, now])?;
    }
    Ok(())
}

/// Records what the channel accepted for a mapped record.
pub fn mark_sent(store: &Store, mapping_id: i64, hash: &str) -> Result<()> {
    store.write(|tx| mark_sent_in(tx, &[(mapping_id, hash.to_string())]))
}

pub fn list(
    store: &Store,
    channel: Option<&str>,
    kind: Option<&str>,
    limit: usize,
) -> Result<Vec<Mapping>> {
    store.read(|c| {
        let mut stmt = c.prepare(&format!(
            "SELECT {COLUMNS} FROM mappings WHERE {LIST_FILTER} ORDER BY channel, kind, odoo_id LIMIT ?3"
        ))?;
        let rows = stmt
            .query_map(params![channel, kind, limit as i64], from_row)?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    })
}

/// What [`list`] and [`list_count`] select by: channel (?1) and kind (?2), each optional.
const LIST_FILTER: &str = "(?1 IS NULL OR channel = ?1) AND (?2 IS NULL OR kind = ?2)";

/// How many mappings [`list`] would give without its limit.
pub fn list_count(store: &Store, channel: Option<&str>, kind: Option<&str>) -> Result<i64> {
    store.read(|c| {
        Ok(c.query_row(
            &format!("SELECT COUNT(*) FROM mappings WHERE {LIST_FILTER}"),
            params![channel, kind],
            |r| r.get(0),
        )?)
    })
}

pub fn count(store: &Store, channel: &str) -> Result<i64> {
    store.read(|c| {
        Ok(c.query_row(
            "SELECT COUNT(*) FROM mappings WHERE channel = ?1",
            [channel],
            |r| r.get(0),
        )?)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mappings_are_unique_both_ways() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("s.db")).unwrap();
        let m = set(&s, "cartona", "product", "product.product", 7, "SP-7").unwrap();
        assert_eq!(
            set(&s, "cartona", "product", "product.product", 7, "SP-7").unwrap(),
            m
        );
        let e = set(&s, "cartona", "product", "product.product", 7, "SP-8").unwrap_err();
        assert!(
            e.to_string()
                .contains("already mapped to cartona product \"SP-7\""),
            "{e}"
        );
        let e = set(&s, "cartona", "product", "product.product", 8, "SP-7").unwrap_err();
        assert!(
            e.to_string()
                .contains("already mapped to product.product 7"),
            "{e}"
        );
        set(&s, "medusa", "product", "product.product", 7, "SP-7").unwrap();
        mark_sent(&s, m.id, "abc").unwrap();
        assert_eq!(
            by_external(&s, "cartona", "product", "SP-7")
                .unwrap()
                .unwrap()
                .last_hash
                .as_deref(),
            Some("abc")
        );
        assert!(unset(&s, "cartona", "product", Some(7), None).unwrap());
        assert!(by_odoo(&s, "cartona", "product", 7).unwrap().is_none());
        assert_eq!(list(&s, None, None, 10).unwrap().len(), 1);
    }
}
