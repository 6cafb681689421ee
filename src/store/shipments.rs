//! Sha6er shipments: one per Odoo delivery, written before the shipment is asked for, then
//! following Sha6er's status. See `migrations/0009_shipments.sql` for the states.

use super::{now_ms, Result, Store};
use rusqlite::{params, OptionalExtension, Row};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShipmentRow {
    pub picking_id: i64,
    pub picking: String,
    pub channel: String,
    pub external_id: String,
    pub order_ref: String,
    pub state: String,
    pub shipment_id: Option<String>,
    pub tracking: Option<String>,
    pub courier: Option<String>,
    pub reason: Option<String>,
    /// What was sent: the packages and the Odoo products in each.
    pub packages: serde_json::Value,
    pub cod: Option<String>,
    pub steps: i64,
    pub told: bool,
    pub validated: bool,
    pub news_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The states of a shipment Sha6er still works on (the pull reads these when silent).
pub const ACTIVE: [&str; 6] = [
    "pending",
    "accepted",
    "assigned",
    "picked_up",
    "in_transit",
    "failed",
];
/// Every state, for `marketsync shipments --state`.
pub const STATES: [&str; 11] = [
    "creating",
    "refused",
    "pending",
    "accepted",
    "assigned",
    "picked_up",
    "in_transit",
    "delivered",
    "failed",
    "returned",
    "cancelled",
];

const COLUMNS: &str =
    "picking_id, picking, channel, external_id, order_ref, state, shipment_id, tracking, \
     courier, reason, packages, cod, steps, told, validated, news_at, created_at, updated_at";

fn row(r: &Row<'_>) -> rusqlite::Result<ShipmentRow> {
    let packages: String = r.get(10)?;
    Ok(ShipmentRow {
        picking_id: r.get(0)?,
        picking: r.get(1)?,
        channel: r.get(2)?,
        external_id: r.get(3)?,
        order_ref: r.get(4)?,
        state: r.get(5)?,
        shipment_id: r.get(6)?,
        tracking: r.get(7)?,
        courier: r.get(8)?,
        reason: r.get(9)?,
        packages: serde_json::from_str(&packages).unwrap_or(serde_json::Value::Null),
        cod: r.get(11)?,
        steps: r.get(12)?,
        told: r.get::<_, i64>(13)? != 0,
        validated: r.get::<_, i64>(14)? != 0,
        news_at: r.get(15)?,
        created_at: r.get(16)?,
        updated_at: r.get(17)?,
    })
}

/// A delivery's shipment about to be asked for.
pub struct Planned<'a> {
    pub picking_id: i64,
    pub picking: &'a str,
    pub channel: &'a str,
    pub external_id: &'a str,
    pub order_ref: &'a str,
    pub packages: &'a serde_json::Value,
    pub cod: Option<&'a str>,
}

/// Records that the delivery's shipment is being asked for. `false` when the delivery has one
/// already (or one is being asked for): nothing is changed then. A refused one is asked again.
pub fn begin(store: &Store, p: &Planned<'_>) -> Result<bool> {
    let now = now_ms();
    store.write(|tx| {
        let n = tx.execute(
            "INSERT INTO shipments (picking_id, picking, channel, external_id, order_ref, state, packages, cod, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, 'creating', ?6, ?7, ?8, ?8) \
             ON CONFLICT (picking_id) DO UPDATE SET state = 'creating', reason = NULL, packages = ?6, cod = ?7, updated_at = ?8 \
             WHERE shipments.state = 'refused'",
            params![p.picking_id, p.picking, p.channel, p.external_id, p.order_ref, p.packages.to_string(), p.cod, now],
        )?;
        Ok(n == 1)
    })
}

pub fn get(store: &Store, picking_id: i64) -> Result<Option<ShipmentRow>> {
    store.read(|c| {
        Ok(c.query_row(
            &format!("SELECT {COLUMNS} FROM shipments WHERE picking_id = ?1"),
            [picking_id],
            row,
        )
        .optional()?)
    })
}

pub fn by_shipment_id(store: &Store, shipment_id: &str) -> Result<Option<ShipmentRow>> {
    store.read(|c| {
        Ok(c.query_row(
            &format!("SELECT {COLUMNS} FROM shipments WHERE shipment_id = ?1"),
            [shipment_id],
            row,
        )
        .optional()?)
    })
}

/// Sha6er took it: its id and tracking number.
pub fn created(
    store: &Store,
    picking_id: i64,
    shipment_id: &str,
    tracking: &str,
    state: &str,
) -> Result<()> {
    let now = now_ms();
    store.write(|tx| {
        tx.execute(
            "UPDATE shipments SET shipment_id = ?2, tracking = ?3, state = ?4, news_at = ?5, updated_at = ?5 WHERE picking_id = ?1",
            params![picking_id, shipment_id, tracking, state, now],
        )?;
        Ok(())
    })
}

/// Sha6er refused the create: why (the operator's `marketsync ship` asks again).
pub fn refused(store: &Store, picking_id: i64, reason: &str) -> Result<()> {
    set(
        store,
        "state = 'refused', reason = ?2",
        params![picking_id, reason],
    )
}

pub fn told(store: &Store, picking_id: i64) -> Result<()> {
    set(store, "told = 1", params![picking_id])
}

pub fn validated(store: &Store, picking_id: i64) -> Result<()> {
    set(store, "validated = 1", params![picking_id])
}

/// Sha6er's news of it: its status, courier and reason as they now are, and how many steps of
/// its history are told (`steps` never moves back).
pub fn news(
    store: &Store,
    picking_id: i64,
    state: &str,
    courier: Option<&str>,
    reason: Option<&str>,
    steps: i64,
) -> Result<()> {
    set(store, "state = ?2, courier = COALESCE(?3, courier), reason = ?4, steps = MAX(steps, ?5), news_at = ?6",
        params![picking_id, state, courier, reason, steps, now_ms()],
    )
}

/// Read from Sha6er just now, with nothing new.
pub fn heard(store: &Store, picking_id: i64) -> Result<()> {
    set(store, "news_at = ?2", params![picking_id, now_ms()])
}

fn set(store: &Store, assignments: &str, p: impl rusqlite::Params) -> Result<()> {
    let sql = format!(
        "UPDATE shipments SET {assignments}, updated_at = {} WHERE picking_id = ?1",
        now_ms()
    );
    store.write(|tx| {
        tx.execute(&sql, p)?;
        Ok(())
    })
}

/// Shipments Sha6er still works on with no news since `before` (ms), or still being asked for.
pub fn stale(store: &Store, before: i64) -> Result<Vec<ShipmentRow>> {
    let states = ACTIVE.map(|s| format!("'{s}'")).join(", ");
    store.read(|c| {
        let mut stmt = c.prepare(&format!(
            "SELECT {COLUMNS} FROM shipments WHERE (state IN ({states}) AND COALESCE(news_at, 0) < ?1) \
             OR (state = 'creating' AND updated_at < ?1) ORDER BY picking_id"
        ))?;
        let rows = stmt.query_map([before], row)?.collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    })
}

/// Every shipment in one of `states` (all when empty), newest first.
pub fn list(store: &Store, states: &[&str], limit: usize) -> Result<Vec<ShipmentRow>> {
    let filter = if states.is_empty() {
        String::new()
    } else {
        format!(
            "WHERE state IN ({})",
            states
                .iter()
                .map(|s| format!("'{}'", s.replace('\'', "")))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    store.read(|c| {
        let mut stmt = c.prepare(&format!(
            "SELECT {COLUMNS} FROM shipments {filter} ORDER BY created_at DESC, picking_id DESC LIMIT ?1"
        ))?;
        let rows = stmt.query_map([limit as i64], row)?.collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    })
}

/// The pickings that have a shipment row, of those given.
pub fn known(store: &Store, pickings: &[i64]) -> Result<std::collections::HashSet<i64>> {
    store.read(|c| {
        let mut stmt = c.prepare_cached("SELECT 1 FROM shipments WHERE picking_id = ?1")?;
        let mut out = std::collections::HashSet::new();
        for p in pickings {
            if stmt.exists([p])? {
                out.insert(*p);
            }
        }
        Ok(out)
    })
}

/// The shipments of the listed orders, by order (for `order list`).
pub fn of_orders(
    store: &Store,
    orders: &[(String, String)],
) -> Result<std::collections::HashMap<(String, String), Vec<ShipmentRow>>> {
    store.read(|c| {
        let mut stmt = c.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM shipments WHERE channel = ?1 AND external_id = ?2 ORDER BY picking_id"
        ))?;
        let mut out = std::collections::HashMap::new();
        for (ch, ext) in orders {
            let rows: Vec<ShipmentRow> = stmt
                .query_map(params![ch, ext], row)?
                .collect::<rusqlite::Result<_>>()?;
            if !rows.is_empty() {
                out.insert((ch.clone(), ext.clone()), rows);
            }
        }
        Ok(out)
    })
}

/// How many shipments are in each state (for `/metrics`).
pub fn counts(store: &Store) -> Result<Vec<(String, i64)>> {
    store.read(|c| {
        let mut stmt = c.prepare_cached(
            "SELECT state, COUNT(*) FROM shipments GROUP BY state ORDER BY state",
        )?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delivery_has_one_shipment_and_a_refused_one_is_asked_again() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("s.db")).unwrap();
        let pk = serde_json::json!([]);
        let p = Planned {
            picking_id: 7,
            picking: "WH/OUT/00007",
            channel: "medusa",
            external_id: "order_1",
            order_ref: "MEDUSA-order_1",
            packages: &pk,
            cod: None,
        };
        assert!(begin(&s, &p).unwrap());
        assert!(!begin(&s, &p).unwrap(), "being asked for: not twice");
        refused(&s, 7, "bad address").unwrap();
        assert!(begin(&s, &p).unwrap(), "refused: asked again");
        created(&s, 7, "SH-1", "TRK-1", "pending").unwrap();
        assert!(!begin(&s, &p).unwrap());
        news(&s, 7, "assigned", Some("Ali (+96550000000)"), None, 3).unwrap();
        news(&s, 7, "picked_up", None, None, 2).unwrap();
        let r = by_shipment_id(&s, "SH-1").unwrap().unwrap();
        assert_eq!(
            (r.state.as_str(), r.steps, r.courier.as_deref()),
            ("picked_up", 3, Some("Ali (+96550000000)"))
        );
        assert_eq!(list(&s, &["picked_up"], 10).unwrap().len(), 1);
        assert!(list(&s, &["delivered"], 10).unwrap().is_empty());
        assert_eq!(stale(&s, now_ms() + 1).unwrap().len(), 1);
        assert!(stale(&s, 0).unwrap().is_empty());
    }
}
