//! Small facts the daemon publishes for the CLI: Odoo reachability and version, the heartbeat.

use super::{now_ms, Result, Store};
use rusqlite::{params, OptionalExtension};

pub const ODOO_VERSION: &str = "odoo.version";
pub const ODOO_USER: &str = "odoo.user";
/// "ok" or the error text.
pub const ODOO_STATUS: &str = "odoo.status";
/// What the operator should hear before Odoo stops answering (an expiring API key, a
/// deprecated protocol), one a line; absent when there is nothing to say.
pub const ODOO_NOTICES: &str = "odoo.notices";
/// When Odoo stopped answering (ms), absent while it answers.
pub const ODOO_DOWN_SINCE: &str = "odoo.down_since";
pub const DAEMON_HEARTBEAT: &str = "daemon.heartbeat";
pub const DAEMON_PID: &str = "daemon.pid";
/// Where the running daemon's listener is bound (`status` asks it for `/healthz`).
pub const DAEMON_LISTEN: &str = "daemon.listen";
/// Where the running daemon's operator listener (`/metrics`) is bound.
pub const DAEMON_ADMIN_LISTEN: &str = "daemon.admin_listen";
/// Why the daemon stopped taking work (storage trouble), absent while all is well.
pub const DAEMON_PAUSED: &str = "daemon.paused";

/// The daemon's last heartbeat (ms), if it recorded one.
pub fn heartbeat(store: &Store) -> Result<Option<i64>> {
    Ok(get(store, DAEMON_HEARTBEAT)?.and_then(|(v, _)| v.parse().ok()))
}

/// Whether the daemon beat in the last 30 s (three missed beats mean it is gone).
pub fn beating(heartbeat: Option<i64>) -> bool {
    heartbeat.is_some_and(|h| super::now_ms() - h < 30_000)
}

pub fn set(store: &Store, key: &str, value: &str) -> Result<()> {
    let now = now_ms();
    let value = crate::secret::scrub(value);
    store.write(|tx| {
        tx.execute(
            "INSERT INTO facts (key, value, updated_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (key) DO UPDATE SET value = ?2, updated_at = ?3",
            params![key, value, now],
        )?;
        Ok(())
    })
}

/// Sets the value only if the key is absent (e.g. "down since" keeps the first failure time).
pub fn set_if_absent(store: &Store, key: &str, value: &str) -> Result<()> {
    let now = now_ms();
    store.write(|tx| {
        tx.execute(
            "INSERT INTO facts (key, value, updated_at) VALUES (?1, ?2, ?3) ON CONFLICT (key) DO NOTHING",
            params![key, value, now],
        )?;
        Ok(())
    })
}

pub fn remove(store: &Store, key: &str) -> Result<()> {
    store.write(|tx| {
        tx.execute("DELETE FROM facts WHERE key = ?1", [key])?;
        Ok(())
    })
}

/// The value and when it was set.
pub fn get(store: &Store, key: &str) -> Result<Option<(String, i64)>> {
    store.read(|c| {
        Ok(c.query_row(
            "SELECT value, updated_at FROM facts WHERE key = ?1",
            [key],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?)
    })
}

/// Every fact whose key starts with `prefix`, as (key, value), in key order.
pub fn with_prefix(store: &Store, prefix: &str) -> Result<Vec<(String, String)>> {
    store.read(|c| {
        let mut stmt = c.prepare(
            "SELECT key, value FROM facts WHERE substr(key, 1, length(?1)) = ?1 ORDER BY key",
        )?;
        let rows = stmt
            .query_map([prefix], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<std::result::Result<Vec<(String, String)>, _>>()?;
        Ok(rows)
    })
}
