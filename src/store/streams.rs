//! Streams (e.g. `cartona.catalog`, `odoo.health`): each has a cursor and the outcome of its runs.

use super::{now_ms, Result, Store};
use rusqlite::{params, OptionalExtension};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Stream {
    pub name: String,
    pub cursor: Option<String>,
    pub last_run_at: Option<i64>,
    pub last_success_at: Option<i64>,
    pub last_error: Option<String>,
    pub last_error_at: Option<i64>,
}

/// Records a successful run (and its new cursor, if it has one).
pub fn succeeded(store: &Store, name: &str, cursor: Option<&str>) -> Result<()> {
    let now = now_ms();
    store.write(|tx| {
        tx.execute(
            "INSERT INTO streams (name, cursor, last_run_at, last_success_at) VALUES (?1, ?2, ?3, ?3) \
             ON CONFLICT (name) DO UPDATE SET cursor = COALESCE(?2, cursor), last_run_at = ?3, last_success_at = ?3",
            params![name, cursor, now],
        )?;
        Ok(())
    })
}

pub fn failed(store: &Store, name: &str, error: &str) -> Result<()> {
    let now = now_ms();
    let error = crate::secret::scrub(error);
    store.write(|tx| {
        tx.execute(
            "INSERT INTO streams (name, last_run_at, last_error, last_error_at) VALUES (?1, ?2, ?3, ?2) \
             ON CONFLICT (name) DO UPDATE SET last_run_at = ?2, last_error = ?3, last_error_at = ?2",
            params![name, now, error],
        )?;
        Ok(())
    })
}

pub fn get(store: &Store, name: &str) -> Result<Option<Stream>> {
    store.read(|c| {
        Ok(c.query_row(
            "SELECT name, cursor, last_run_at, last_success_at, last_error, last_error_at FROM streams WHERE name = ?1",
            [name],
            from_row,
        )
        .optional()?)
    })
}

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Stream> {
    Ok(Stream {
        name: r.get(0)?,
        cursor: r.get(1)?,
        last_run_at: r.get(2)?,
        last_success_at: r.get(3)?,
        last_error: r.get(4)?,
        last_error_at: r.get(5)?,
    })
}

pub fn list(store: &Store) -> Result<Vec<Stream>> {
    store.read(|c| {
        let mut stmt = c.prepare(
            "SELECT name, cursor, last_run_at, last_success_at, last_error, last_error_at FROM streams ORDER BY name",
        )?;
        let rows = stmt.query_map([], from_row)?.collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    })
}
