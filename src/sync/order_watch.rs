//! The watcher of the Odoo side: turns what happened to marketplace orders in Odoo into durable
//! order events (`store::order_events`), for every channel that subscribes to them.
//!
//! An order's facts are derived from its current state in Odoo (the order, its deliveries and
//! returns, its invoices), compared with the events already recorded: so a fact one poll missed
//! is found by the next that reads the order, and the reconcile reads every order whose story
//! is not over. The poll reads the orders touched since its cursor: the order itself, one of its
//! pickings, or one of its invoices (a payment writes the invoice, never the order).

use crate::daemon::scheduler::{StreamOutcome, StreamTask};
use crate::odoo::profile::MoveQuantity;
use crate::odoo::{Domain, OdooClient, OdooError, SearchOpts, Value};
use crate::store::order_events::{self, EventKind, Facts, Shipment, ShippedLine, Subscription};
use crate::store::{orders, Store};
use futures_util::future::BoxFuture;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

/// Orders read per request.
const CHUNK: usize = 200;

/// Payment states of an invoice whose whole amount is paid (`in_payment`: registered, the
/// bank statement not reconciled yet).
const PAID: [&str; 2] = ["paid", "in_payment"];

/// How far back the reconcile looks for orders whose story is not over.
const OPEN_DAYS: i64 = 90;

/// Which run this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The orders touched since the cursor.
    Poll,
    /// Every open order the state knows.
    Reconcile,
}

/// The stream stored under [`STREAM`] (poll) and [`RECONCILE`].
pub const STREAM: &str = "odoo.orders";
pub const RECONCILE: &str = "odoo.orders.reconcile";

pub struct Watcher {
    pub odoo: OdooClient,
    pub store: Store,
    /// The reference prefix of each owning marketplace's orders (`CARTONA-`).
    pub prefixes: Vec<String>,
    pub subscriptions: Vec<Subscription>,
    /// `stock.picking.carrier_tracking_ref` exists.
    pub tracking_ref: bool,
    /// Which field of a stock move says how much of it was done.
    pub move_quantity: MoveQuantity,
    /// How far each poll reaches back before its cursor (Odoo's clock and commit lag).
    pub overlap: std::time::Duration,
    pub mode: Mode,
}

impl StreamTask for Watcher {
    fn run(&self) -> BoxFuture<'_, Result<StreamOutcome, crate::error::Error>> {
        Box::pin(self.run_once())
    }
}

impl Watcher {
    async fn run_once(&self) -> Result<StreamOutcome, crate::error::Error> {
        if self.prefixes.is_empty() || self.subscriptions.is_empty() {
            return Ok(StreamOutcome::default());
        }
        let (cursor, ids) = match self.mode {
            Mode::Poll => {
                let (started, since) =
                    crate::channel::kit::poll_window(&self.store, STREAM, self.overlap)?;
                let mut ids = self.touched(&since).await?;
                ids.extend(self.newly_known(&since).await?);
                ids.sort_unstable();
                ids.dedup();
                (Some(started), ids)
            }
            Mode::Reconcile => {
                let store = self.store.clone();
                let ids = store
                    .run(|s| order_events::open_orders(s, OPEN_DAYS))
                    .await?;
                (None, ids)
            }
        };
        let mut new = 0usize;
        for chunk in ids.chunks(CHUNK) {
            let found = self.facts_of(chunk).await?;
            let (store, subs) = (self.store.clone(), self.subscriptions.clone());
            new += store
                .run(move |s| order_events::record(s, &found, &subs))
                .await?
                .len();
        }
        let mut said = Vec::new();
        if new > 0 {
            said.push(format!("{new} order event(s) recorded"));
        }
        if self.mode == Mode::Reconcile {
            let owners: Vec<String> = self
                .subscriptions
                .iter()
                .filter(|s| s.interest == order_events::Interest::Own)
                .map(|s| s.subscriber.clone())
                .collect();
            let store = self.store.clone();
            let revived = store
                .run(move |s| crate::store::queue::revive_for_orders(s, &owners, OPEN_DAYS))
                .await?;
            if !revived.is_empty() {
                said.push(format!(
                    "{} dead job(s) of recent orders queued again (a status or an acknowledgement the marketplace has not heard)",
                    revived.len()
                ));
            }
        }
        Ok(StreamOutcome {
            cursor,
            note: (!said.is_empty()).then(|| (said.join("; "), new as i64)),
        })
    }

    /// The marketplace orders' domain: a reference with one of the owners' prefixes.
    fn marketplace(&self, field: &str) -> Domain {
        Domain::all().any_of(
            self.prefixes
                .iter()
                .map(|p| Domain::all().and(field, "=like", format!("{p}%").as_str()))
                .collect(),
        )
    }

    /// The orders the state came to know since `since` (imported, or found already in Odoo
    /// when their marketplace sent them) that Odoo has confirmed or cancelled: Odoo may have
    /// written them before, out of the poll's window, and only the nightly reconcile would
    /// read them otherwise.
    async fn newly_known(
        &self,
        since: &crate::sync::catalog::Since,
    ) -> Result<Vec<i64>, crate::error::Error> {
        let from = chrono::NaiveDateTime::parse_from_str(&since.at, "%Y-%m-%d %H:%M:%S")
            .map(|t| t.and_utc().timestamp_millis())
            .unwrap_or(0);
        let store = self.store.clone();
        let known = store.run(move |s| orders::linked_since(s, from)).await?;
        let mut out = Vec::new();
        for chunk in known.chunks(CHUNK) {
            out.extend(
                self.odoo
                    .search(
                        "sale.order",
                        &Domain::all().and("id", "in", chunk.to_vec()).and(
                            "state",
                            "in",
                            vec!["sale", "done", "cancel"],
                        ),
                        None,
                    )
                    .await?,
            );
        }
        Ok(out)
    }

    /// Ids of the marketplace orders written since `since`, or whose pickings or invoices were.
    async fn touched(&self, since: &crate::sync::catalog::Since) -> Result<Vec<i64>, OdooError> {
        let mut ids: BTreeSet<i64> = self
            .odoo
            .search(
                "sale.order",
                // A quotation has no facts yet: an import of a thousand orders is not read back.
                &self
                    .marketplace("client_order_ref")
                    .and("state", "in", vec!["sale", "done", "cancel"])
                    .and("write_date", since.op, since.at.as_str()),
                None,
            )
            .await?
            .into_iter()
            .collect();
        let moved = self
            .odoo
            .search_read(
                "stock.picking",
                &self
                    .marketplace("sale_id.client_order_ref")
                    .and("picking_type_code", "in", vec!["outgoing", "incoming"])
                    .and("write_date", since.op, since.at.as_str()),
                &["sale_id"],
                SearchOpts::default(),
            )
            .await?;
        ids.extend(
            moved
                .iter()
                .filter_map(|p| p.get("sale_id").and_then(Value::as_id)),
        );
        let invoiced = self
            .odoo
            .search_read(
                "account.move",
                &customer_invoices()
                    .and("write_date", since.op, since.at.as_str())
                    .and("invoice_origin", "!=", false),
                &["invoice_origin"],
                SearchOpts::default(),
            )
            .await?;
        let names: Vec<String> = invoiced
            .iter()
            .flat_map(origins)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        for chunk in names.chunks(CHUNK) {
            ids.extend(
                self.odoo
                    .search(
                        "sale.order",
                        &self
                            .marketplace("client_order_ref")
                            .and("name", "in", chunk.to_vec()),
                        None,
                    )
                    .await?,
            );
        }
        Ok(ids.into_iter().collect())
    }

    /// The facts of these Odoo orders, for the ones the state knows as marketplace orders.
    async fn facts_of(&self, ids: &[i64]) -> Result<Vec<Facts>, crate::error::Error> {
        let store = self.store.clone();
        let wanted = ids.to_vec();
        let known = store.run(move |s| orders::by_odoo_ids(s, &wanted)).await?;
        let ids: Vec<i64> = ids
            .iter()
            .copied()
            .filter(|id| known.contains_key(id))
            .collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sale_orders = self
            .odoo
            .read("sale.order", &ids, &["name", "state", "invoice_status"])
            .await?;
        let mut pfields = vec!["sale_id", "name", "state", "picking_type_code", "date_done"];
        if self.tracking_ref {
            pfields.push("carrier_tracking_ref");
        }
        let pickings = self
            .odoo
            .search_read(
                "stock.picking",
                &Domain::all().and("sale_id", "in", ids.clone()).and(
                    "picking_type_code",
                    "in",
                    vec!["outgoing", "incoming"],
                ),
                &pfields,
                SearchOpts::default(),
            )
            .await?;
        let done_out: Vec<i64> = pickings
            .iter()
            .filter(|p| {
                state_of(p) == "done"
                    && p.get("picking_type_code").and_then(Value::as_str) == Some("outgoing")
            })
            .filter_map(|p| p.get("id").and_then(Value::as_i64))
            .collect();
        let lines = self.lines_of(&done_out).await?;
        let invoiced: Vec<String> = sale_orders
            .iter()
            .filter(|o| text(o, "invoice_status").as_deref() == Some("invoiced"))
            .filter_map(|o| text(o, "name"))
            .collect();
        let invoices = self.invoices_of(&invoiced).await?;
        let mut out = Vec::new();
        for so in &sale_orders {
            let Some(id) = so.get("id").and_then(Value::as_i64) else {
                continue;
            };
            let Some(order) = known.get(&id) else {
                continue;
            };
            let mine: Vec<&Value> = pickings
                .iter()
                .filter(|p| p.get("sale_id").and_then(Value::as_id) == Some(id))
                .collect();
            out.push(Facts {
                channel: order.channel.clone(),
                external_id: order.external_id.clone(),
                reference: order.reference.clone(),
                facts: derive(so, &lines, &mine, &invoices),
            });
        }
        Ok(out)
    }

    /// What each of these done deliveries carried: its done moves' quantities, by product, with
    /// the product's internal reference (the SKU a marketplace knows it by).
    async fn lines_of(
        &self,
        pickings: &[i64],
    ) -> Result<BTreeMap<i64, Vec<ShippedLine>>, OdooError> {
        let mut out: BTreeMap<i64, Vec<ShippedLine>> = BTreeMap::new();
        if pickings.is_empty() {
            return Ok(out);
        }
        let qty_field = match self.move_quantity {
            MoveQuantity::QuantityPicked => "quantity",
            MoveQuantity::QuantityDone => "quantity_done",
        };
        let mut moves = Vec::new();
        for chunk in pickings.chunks(CHUNK) {
            moves.extend(
                self.odoo
                    .search_read(
                        "stock.move",
                        &Domain::all()
                            .and("picking_id", "in", chunk.to_vec())
                            .and("state", "=", "done"),
                        &["picking_id", "product_id", qty_field],
                        SearchOpts::default(),
                    )
                    .await?,
            );
        }
        let products: Vec<i64> = moves
            .iter()
            .filter_map(|m| m.get("product_id").and_then(Value::as_id))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut skus: BTreeMap<i64, String> = BTreeMap::new();
        for chunk in products.chunks(CHUNK) {
            for p in self
                .odoo
                .read("product.product", chunk, &["default_code"])
                .await?
            {
                if let (Some(id), Some(code)) = (
                    p.get("id").and_then(Value::as_i64),
                    text(&p, "default_code"),
                ) {
                    skus.insert(id, code);
                }
            }
        }
        for m in &moves {
            let (Some(picking), Some(product)) = (
                m.get("picking_id").and_then(Value::as_id),
                m.get("product_id").and_then(Value::as_id),
            ) else {
                continue;
            };
            let qty = m
                .get(qty_field)
                .and_then(Value::as_f64)
                .unwrap_or(0.0)
                .round() as i64;
            if qty <= 0 {
                continue;
            }
            let lines = out.entry(picking).or_default();
            match lines.iter_mut().find(|l| l.product_id == product) {
                Some(l) => l.quantity += qty,
                None => lines.push(ShippedLine {
                    product_id: product,
                    sku: skus.get(&product).cloned(),
                    quantity: qty,
                }),
            }
        }
        Ok(out)
    }

    /// The posted customer invoices of these orders (by `invoice_origin`, the order names Odoo
    /// writes there), a bounded domain at a time.
    async fn invoices_of(&self, names: &[String]) -> Result<Vec<Value>, OdooError> {
        let mut all = Vec::new();
        for chunk in names.chunks(CHUNK) {
            all.extend(
                self.odoo
                    .search_read(
                        "account.move",
                        &customer_invoices().any_of(
                            chunk
                                .iter()
                                .map(|n| Domain::all().and("invoice_origin", "ilike", n.as_str()))
                                .collect(),
                        ),
                        &["invoice_origin", "payment_state", "write_date"],
                        SearchOpts::default(),
                    )
                    .await?,
            );
        }
        Ok(all)
    }
}

fn customer_invoices() -> Domain {
    Domain::all()
        .and("move_type", "=", "out_invoice")
        .and("state", "=", "posted")
}

fn text(r: &Value, key: &str) -> Option<String> {
    r.get(key).and_then(Value::as_opt_str).map(str::to_string)
}

/// The order names in an invoice's `invoice_origin` (comma-separated when one invoice covers
/// several orders).
fn origins(invoice: &Value) -> Vec<String> {
    invoice
        .get("invoice_origin")
        .and_then(Value::as_opt_str)
        .map(|o| {
            o.split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn state_of(p: &Value) -> &str {
    p.get("state").and_then(Value::as_str).unwrap_or("")
}

/// The facts an Odoo order's current state shows, in the order they happen.
///
/// - confirmed: the order is a sale order (`sale`, or `done` when locked);
/// - shipment: each outgoing delivery done, with what it carried (`lines`, by picking id) and
///   its tracking: a part of the order when Odoo made a backorder for the rest;
/// - shipped and delivered: every outgoing delivery is done or cancelled, one at least done
///   (with its tracking reference and date, and every shipment);
/// - cancelled: the order is cancelled;
/// - invoiced: fully invoiced; paid: and every posted invoice is paid;
/// - returned: a return of it (an incoming picking of the order) is done.
pub fn derive(
    order: &Value,
    lines: &BTreeMap<i64, Vec<ShippedLine>>,
    pickings: &[&Value],
    invoices: &[Value],
) -> Vec<(EventKind, serde_json::Value)> {
    let name = text(order, "name");
    let id = order.get("id").and_then(Value::as_i64);
    let base = || json!({"order": name, "odoo_id": id});
    let with = |extra: serde_json::Value| {
        let mut d = base();
        if let (Some(d), Some(extra)) = (d.as_object_mut(), extra.as_object()) {
            d.extend(extra.clone());
        }
        d
    };
    let mut facts = Vec::new();
    let state = order.get("state").and_then(Value::as_str).unwrap_or("");
    let of_type = |code: &str| -> Vec<&Value> {
        pickings
            .iter()
            .copied()
            .filter(|p| p.get("picking_type_code").and_then(Value::as_str) == Some(code))
            .collect()
    };
    match state {
        "sale" | "done" => {
            facts.push((EventKind::Confirmed, base()));
            let out = of_type("outgoing");
            let mut done: Vec<&Value> = out
                .iter()
                .copied()
                .filter(|p| state_of(p) == "done")
                .collect();
            done.sort_by_key(|p| p.get("id").and_then(Value::as_i64));
            let shipments: Vec<Shipment> = done
                .iter()
                .filter_map(|p| {
                    let picking_id = p.get("id").and_then(Value::as_i64)?;
                    Some(Shipment {
                        picking_id,
                        picking: text(p, "name"),
                        tracking: text(p, "carrier_tracking_ref"),
                        date: text(p, "date_done"),
                        lines: lines.get(&picking_id).cloned().unwrap_or_default(),
                    })
                })
                .collect();
            for s in &shipments {
                facts.push((
                    EventKind::Shipment,
                    with(serde_json::to_value(s).unwrap_or_default()),
                ));
            }
            if !done.is_empty() && out.iter().all(|p| matches!(state_of(p), "done" | "cancel")) {
                let tracking = done.iter().find_map(|p| text(p, "carrier_tracking_ref"));
                let date = done.iter().filter_map(|p| text(p, "date_done")).max();
                let shipped =
                    with(json!({"tracking": tracking, "date": date, "shipments": shipments}));
                facts.push((EventKind::Shipped, shipped.clone()));
                facts.push((EventKind::Delivered, shipped));
            }
        }
        "cancel" => facts.push((EventKind::Cancelled, base())),
        _ => return facts,
    }
    if text(order, "invoice_status").as_deref() == Some("invoiced") {
        facts.push((EventKind::Invoiced, base()));
        let mine: Vec<&Value> = name
            .as_ref()
            .map(|n| invoices.iter().filter(|i| origins(i).contains(n)).collect())
            .unwrap_or_default();
        let settled = mine.iter().all(|i| {
            i.get("payment_state")
                .and_then(Value::as_str)
                .is_some_and(|s| PAID.contains(&s))
        });
        if !mine.is_empty() && settled {
            let at = mine.iter().filter_map(|i| text(i, "write_date")).max();
            facts.push((EventKind::Paid, with(json!({"date": at}))));
        }
    }
    let returned: Vec<&Value> = of_type("incoming")
        .into_iter()
        .filter(|p| state_of(p) == "done")
        .collect();
    if !returned.is_empty() {
        let date = returned.iter().filter_map(|p| text(p, "date_done")).max();
        facts.push((EventKind::Returned, with(json!({"date": date}))));
    }
    facts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(j: serde_json::Value) -> Value {
        Value::from(j)
    }

    fn kinds(f: &[(EventKind, serde_json::Value)]) -> Vec<EventKind> {
        f.iter()
            .map(|(k, _)| *k)
            .filter(|k| *k != EventKind::Shipment)
            .collect()
    }

    #[test]
    fn facts_follow_the_order_its_deliveries_and_its_invoices() {
        use EventKind::*;
        let none = BTreeMap::new();
        let order = |state: &str, inv: &str| {
            v(json!({"id": 7, "name": "S00007", "state": state, "invoice_status": inv}))
        };
        let out = |state: &str| {
            v(
                json!({"sale_id": [7, "S00007"], "state": state, "picking_type_code": "outgoing",
                     "date_done": "2026-12-01 10:00:00", "carrier_tracking_ref": "TRK1"}),
            )
        };
        assert!(derive(&order("draft", "no"), &none, &[], &[]).is_empty());
        assert_eq!(
            kinds(&derive(&order("sale", "no"), &none, &[], &[])),
            [Confirmed]
        );
        let (a, b) = (out("done"), out("assigned"));
        assert_eq!(
            kinds(&derive(&order("sale", "no"), &none, &[&a, &b], &[])),
            [Confirmed],
            "one delivery still open"
        );
        let c = out("cancel");
        let f = derive(&order("sale", "to invoice"), &none, &[&a, &c], &[]);
        assert_eq!(kinds(&f), [Confirmed, Shipped, Delivered]);
        assert_eq!(f[1].1["tracking"], "TRK1");
        assert_eq!(f[1].1["order"], "S00007");
        let unpaid = v(json!({"invoice_origin": "S00007", "payment_state": "not_paid"}));
        let paid = v(
            json!({"invoice_origin": "S00006, S00007", "payment_state": "in_payment",
                           "write_date": "2026-12-02 09:00:00"}),
        );
        assert_eq!(
            kinds(&derive(
                &order("sale", "invoiced"),
                &none,
                &[&a],
                std::slice::from_ref(&unpaid)
            )),
            [Confirmed, Shipped, Delivered, Invoiced]
        );
        let f = derive(
            &order("done", "invoiced"),
            &none,
            &[&a],
            std::slice::from_ref(&paid),
        );
        assert_eq!(kinds(&f), [Confirmed, Shipped, Delivered, Invoiced, Paid]);
        assert_eq!(f[4].1["date"], "2026-12-02 09:00:00");
        // Another order's invoice is not this one's.
        let other = v(json!({"invoice_origin": "S000071", "payment_state": "paid"}));
        assert_eq!(
            kinds(&derive(&order("sale", "invoiced"), &none, &[], &[other])),
            [Confirmed, Invoiced]
        );
        assert_eq!(
            kinds(&derive(&order("cancel", "no"), &none, &[&b], &[])),
            [Cancelled]
        );
        let back =
            v(json!({"sale_id": [7, "S00007"], "state": "done", "picking_type_code": "incoming"}));
        assert_eq!(
            kinds(&derive(&order("sale", "no"), &none, &[&a, &back], &[])),
            [Confirmed, Shipped, Delivered, Returned]
        );
    }

    #[test]
    fn each_delivery_done_is_a_shipment_with_its_lines_and_the_last_ships_the_order() {
        use EventKind::*;
        let order = v(json!({"id": 7, "name": "S00007", "state": "sale", "invoice_status": "no"}));
        // As fixtures/odoo17/backorders.json: WH/OUT/00017 done with 2, its backorder open.
        let first = v(
            json!({"id": 32, "name": "WH/OUT/00017", "sale_id": [7, "S00007"], "state": "done",
                             "picking_type_code": "outgoing", "date_done": "2026-12-02 13:51:41",
                             "carrier_tracking_ref": "TRK-A"}),
        );
        let open = v(
            json!({"id": 33, "name": "WH/OUT/00018", "sale_id": [7, "S00007"], "state": "assigned",
                            "picking_type_code": "outgoing", "backorder_id": [32, "WH/OUT/00017"]}),
        );
        let line = |q| ShippedLine {
            product_id: 37,
            sku: Some("DESK0005".into()),
            quantity: q,
        };
        let mut lines = BTreeMap::from([(32, vec![line(2)])]);
        let f = derive(&order, &lines, &[&first, &open], &[]);
        let all: Vec<EventKind> = f.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            all,
            [Confirmed, Shipment],
            "a part shipped; the order not yet"
        );
        let s: order_events::Shipment = serde_json::from_value(f[1].1.clone()).unwrap();
        assert_eq!(
            (s.picking_id, s.picking.as_deref(), s.tracking.as_deref()),
            (32, Some("WH/OUT/00017"), Some("TRK-A"))
        );
        assert_eq!(s.lines, [line(2)]);
        assert_eq!(EventKind::Shipment.part_of(&f[1].1), "32");

        let done = v(
            json!({"id": 33, "name": "WH/OUT/00018", "sale_id": [7, "S00007"], "state": "done",
                            "picking_type_code": "outgoing", "date_done": "2026-12-03 09:00:00"}),
        );
        lines.insert(33, vec![line(3)]);
        let f = derive(&order, &lines, &[&done, &first], &[]);
        let all: Vec<EventKind> = f.iter().map(|(k, _)| *k).collect();
        assert_eq!(all, [Confirmed, Shipment, Shipment, Shipped, Delivered]);
        assert_eq!(f[1].1["picking_id"], 32, "in the order they were made");
        assert_eq!(f[2].1["lines"][0]["quantity"], 3);
        let shipped = &f[3].1;
        assert_eq!(shipped["shipments"].as_array().unwrap().len(), 2);
        assert_eq!(shipped["date"], "2026-12-03 09:00:00");
    }
}
