//! Durable order events: what happened to a marketplace order on the Odoo side (confirmed,
//! each delivery done, shipped, delivered, cancelled, invoiced, paid, returned), each fact once
//! per order (a delivery's once per delivery), and per subscriber the last one it took.
//!
//! The watcher records facts with [`record`]; in the same transaction every subscriber of an
//! order that got a new event has a delivery job queued ([`delivery_job`]). That job reads the
//! events after the subscriber's cursor ([`after`]) and moves the cursor in the transaction
//! that records what it did ([`advance_in`]): so an event is never lost between its row and its
//! deliveries, every subscriber takes every event once and in order, and a subscriber that
//! fails holds no other back.

use super::queue::{self, NewJob, Payload};
use super::{now_ms, Result, Store};
use rusqlite::params;
use serde::{Deserialize, Serialize};

/// One fact about an order. The order of the variants is the order they are recorded in when
/// one poll finds several.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    Confirmed,
    /// One delivery of the order is done (a part of it, when Odoo made a backorder), with its
    /// lines and tracking: once per delivery ([`Shipment`] in its data).
    Shipment,
    Shipped,
    Delivered,
    Cancelled,
    Invoiced,
    Paid,
    Returned,
}

impl EventKind {
    pub const ALL: [EventKind; 8] = [
        EventKind::Confirmed,
        EventKind::Shipment,
        EventKind::Shipped,
        EventKind::Delivered,
        EventKind::Cancelled,
        EventKind::Invoiced,
        EventKind::Paid,
        EventKind::Returned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Confirmed => "confirmed",
            EventKind::Shipment => "shipment",
            EventKind::Shipped => "shipped",
            EventKind::Delivered => "delivered",
            EventKind::Cancelled => "cancelled",
            EventKind::Invoiced => "invoiced",
            EventKind::Paid => "paid",
            EventKind::Returned => "returned",
        }
    }

    pub fn parse(s: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// One Odoo delivery of an order, done: the data of a [`EventKind::Shipment`] event, and the
/// list a `shipped` event carries of all of them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Shipment {
    /// The delivery (`stock.picking`) and its name (`WH/OUT/00012`).
    pub picking_id: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub picking: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking: Option<String>,
    /// When it was validated (Odoo's `date_done`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    /// What left, product by product.
    #[serde(default)]
    pub lines: Vec<ShippedLine>,
}

/// A product's quantity in a delivery (its SKU is Odoo's internal reference, if it has one).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ShippedLine {
    pub product_id: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
    pub quantity: i64,
}

impl EventKind {
    /// What makes two facts of this kind of one order distinct: a shipment's delivery; the
    /// other kinds happen once per order.
    pub fn part_of(self, data: &serde_json::Value) -> String {
        match self {
            EventKind::Shipment => data
                .get("picking_id")
                .and_then(serde_json::Value::as_i64)
                .map(|p| p.to_string())
                .unwrap_or_default(),
            _ => String::new(),
        }
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A recorded event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OrderEvent {
    pub id: i64,
    /// The order's owner and its id there.
    pub channel: String,
    pub external_id: String,
    pub kind: EventKind,
    /// Order name, tracking number, dates: what the Odoo side said with it.
    pub data: serde_json::Value,
    pub at: i64,
}

impl OrderEvent {
    /// A text field of the event's data.
    pub fn text(&self, key: &str) -> Option<&str> {
        self.data
            .get(key)
            .and_then(serde_json::Value::as_str)
            .filter(|s| !s.is_empty())
    }
}

/// The facts the watcher found for one order, in the order they happened.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    pub channel: String,
    pub external_id: String,
    pub reference: String,
    pub facts: Vec<(EventKind, serde_json::Value)>,
}

/// Which orders a subscriber takes the events of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interest {
    /// The orders the channel owns (a marketplace hears about its own orders).
    Own,
    /// Every marketplace order (notifications, carriers).
    All,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub subscriber: String,
    pub interest: Interest,
}

impl Subscription {
    pub fn wants(&self, owner: &str) -> bool {
        match self.interest {
            Interest::Own => self.subscriber == owner,
            Interest::All => true,
        }
    }
}

/// The job kind that delivers an order's events to a subscriber.
pub const DELIVERY_KIND: &str = "order_events";

/// What a delivery job is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub channel: String,
    pub external_id: String,
}

/// The job that delivers an order's events to `subscriber`: one per subscriber and order, so
/// the order's events go out one at a time and in order; queued again while one waits, it is
/// the same job.
pub fn delivery_job(subscriber: &str, channel: &str, external_id: &str, reference: &str) -> NewJob {
    NewJob {
        channel: subscriber.into(),
        kind: DELIVERY_KIND.into(),
        key: format!("{subscriber}:events:{channel}:{external_id}"),
        payload: Payload::of(&Delivery {
            channel: channel.into(),
            external_id: external_id.into(),
        }),
        correlation_id: Some(reference.into()),
    }
}

/// Records the facts not recorded yet, and queues a delivery for each subscriber of each order
/// that got one, all in one transaction. Returns the new events.
pub fn record(store: &Store, found: &[Facts], subs: &[Subscription]) -> Result<Vec<OrderEvent>> {
    if found.iter().all(|f| f.facts.is_empty()) {
        return Ok(Vec::new());
    }
    let now = now_ms();
    store.write(|tx| {
        let mut insert = tx.prepare_cached(
            "INSERT INTO order_events (channel, external_id, kind, part, data, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
             ON CONFLICT (channel, external_id, kind, part) DO NOTHING",
        )?;
        let mut new = Vec::new();
        let mut jobs = Vec::new();
        for order in found {
            let before = new.len();
            for (kind, data) in &order.facts {
                if insert.execute(params![
                    order.channel,
                    order.external_id,
                    kind.as_str(),
                    kind.part_of(data),
                    data.to_string(),
                    now
                ])? == 1
                {
                    new.push(OrderEvent {
                        id: tx.last_insert_rowid(),
                        channel: order.channel.clone(),
                        external_id: order.external_id.clone(),
                        kind: *kind,
                        data: data.clone(),
                        at: now,
                    });
                }
            }
            if new.len() > before {
                jobs.extend(subs.iter().filter(|s| s.wants(&order.channel)).map(|s| {
                    delivery_job(
                        &s.subscriber,
                        &order.channel,
                        &order.external_id,
                        &order.reference,
                    )
                }));
            }
        }
        queue::enqueue_in(tx, &jobs)?;
        Ok(new)
    })
}

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<OrderEvent> {
    let kind: String = r.get(3)?;
    let data: String = r.get(4)?;
    Ok(OrderEvent {
        id: r.get(0)?,
        channel: r.get(1)?,
        external_id: r.get(2)?,
        kind: EventKind::parse(&kind).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                3,
                rusqlite::types::Type::Text,
                format!("unknown order event kind {kind:?}").into(),
            )
        })?,
        data: serde_json::from_str(&data).unwrap_or(serde_json::Value::Null),
        at: r.get(5)?,
    })
}

/// The order's events `subscriber` has not taken yet, oldest first.
pub fn after(
    store: &Store,
    subscriber: &str,
    channel: &str,
    external_id: &str,
) -> Result<Vec<OrderEvent>> {
    store.read(|c| {
        let mut stmt = c.prepare_cached(
            "SELECT e.id, e.channel, e.external_id, e.kind, e.data, e.at FROM order_events e \
             WHERE e.channel = ?2 AND e.external_id = ?3 AND e.id > COALESCE( \
               (SELECT through FROM order_event_cursors k \
                WHERE k.subscriber = ?1 AND k.channel = ?2 AND k.external_id = ?3), 0) \
             ORDER BY e.id",
        )?;
        let rows = stmt
            .query_map(params![subscriber, channel, external_id], from_row)?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    })
}

/// Every event of an order, oldest first.
pub fn of_order(store: &Store, channel: &str, external_id: &str) -> Result<Vec<OrderEvent>> {
    store.read(|c| {
        let mut stmt = c.prepare_cached(
            "SELECT id, channel, external_id, kind, data, at FROM order_events \
             WHERE channel = ?1 AND external_id = ?2 ORDER BY id",
        )?;
        let rows = stmt
            .query_map(params![channel, external_id], from_row)?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    })
}

/// `subscriber` took the order's events up to and including `through`.
pub fn advance_in(
    tx: &rusqlite::Transaction<'_>,
    subscriber: &str,
    channel: &str,
    external_id: &str,
    through: i64,
) -> Result<()> {
    tx.execute(
        "INSERT INTO order_event_cursors (subscriber, channel, external_id, through) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (subscriber, channel, external_id) DO UPDATE SET through = MAX(through, ?4)",
        params![subscriber, channel, external_id, through],
    )?;
    Ok(())
}

/// The Odoo orders whose story is not over (not cancelled, and not both delivered and paid),
/// among the orders updated in the last `days` days: what a reconcile reads again.
pub fn open_orders(store: &Store, days: i64) -> Result<Vec<i64>> {
    let since = now_ms() - days * 86_400_000;
    store.read(|c| {
        let mut stmt = c.prepare_cached(
            "SELECT o.odoo_id FROM channel_orders o WHERE o.odoo_id IS NOT NULL AND o.updated_at >= ?1 \
             AND NOT EXISTS (SELECT 1 FROM order_events e WHERE e.channel = o.channel AND e.external_id = o.external_id AND e.kind = 'cancelled') \
             AND (SELECT COUNT(*) FROM order_events e WHERE e.channel = o.channel AND e.external_id = o.external_id \
                  AND e.kind IN ('delivered', 'paid')) < 2 \
             ORDER BY o.odoo_id",
        )?;
        let rows = stmt
            .query_map([since], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::orders;

    fn facts(ext: &str, kinds: &[EventKind]) -> Facts {
        Facts {
            channel: "cartona".into(),
            external_id: ext.into(),
            reference: format!("CARTONA-{ext}"),
            facts: kinds
                .iter()
                .map(|k| (*k, serde_json::json!({"k": k.as_str()})))
                .collect(),
        }
    }

    #[test]
    fn each_fact_is_recorded_once_and_queues_one_delivery_per_subscriber() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("s.db")).unwrap();
        orders::seen(&s, "cartona", "h1", "CARTONA-h1", "pending", None).unwrap();
        let subs = [
            Subscription {
                subscriber: "cartona".into(),
                interest: Interest::Own,
            },
            Subscription {
                subscriber: "medusa".into(),
                interest: Interest::Own,
            },
            Subscription {
                subscriber: "probe".into(),
                interest: Interest::All,
            },
        ];
        let new = record(&s, &[facts("h1", &[EventKind::Confirmed])], &subs).unwrap();
        assert_eq!(new.len(), 1);
        let again = record(
            &s,
            &[facts("h1", &[EventKind::Confirmed, EventKind::Delivered])],
            &subs,
        )
        .unwrap();
        assert_eq!(
            again.iter().map(|e| e.kind).collect::<Vec<_>>(),
            [EventKind::Delivered]
        );
        // Nothing new: nothing queued.
        assert!(record(&s, &[facts("h1", &[EventKind::Delivered])], &subs)
            .unwrap()
            .is_empty());
        let jobs = queue::list(&s, None, None, 100).unwrap();
        let mut keys: Vec<&str> = jobs.iter().map(|j| j.key.as_str()).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(
            keys,
            ["cartona:events:cartona:h1", "probe:events:cartona:h1"],
            "the owner and the subscriber to all orders; not another marketplace"
        );

        // Cursors are per subscriber.
        let pending = after(&s, "probe", "cartona", "h1").unwrap();
        assert_eq!(pending.len(), 2);
        s.write(|tx| advance_in(tx, "probe", "cartona", "h1", pending[0].id))
            .unwrap();
        assert_eq!(after(&s, "probe", "cartona", "h1").unwrap(), pending[1..]);
        assert_eq!(after(&s, "cartona", "cartona", "h1").unwrap(), pending);
        // A cursor never moves back.
        s.write(|tx| advance_in(tx, "probe", "cartona", "h1", 0))
            .unwrap();
        assert_eq!(after(&s, "probe", "cartona", "h1").unwrap(), pending[1..]);
    }
}
