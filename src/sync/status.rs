//! Which marketplace orders changed on the Odoo side: shared by every channel's status stream.
//! An order counts as changed when the `sale.order` or one of its outgoing deliveries was
//! written since the poll window's start.

use crate::odoo::{Domain, OdooClient, OdooError, SearchOpts, Value};
use crate::store::{orders, Store};
use crate::sync::catalog::Since;
use std::collections::BTreeSet;

/// A changed Odoo order that the channel knows as one of its marketplace orders.
pub struct KnownChange<'a> {
    pub order: &'a Value,
    pub id: i64,
    pub reference: &'a str,
    pub known: orders::ChannelOrder,
}

/// Changed orders of one channel and all their outgoing deliveries.
pub struct Changed {
    pub orders: Vec<Value>,
    pub pickings: Vec<Value>,
}

impl Changed {
    /// The changed orders that are marketplace orders the state knows (by `client_order_ref`).
    pub fn known(&self, store: &Store) -> Result<Vec<KnownChange<'_>>, String> {
        let mut out = Vec::new();
        for order in &self.orders {
            let Some(reference) = order.get("client_order_ref").and_then(Value::as_opt_str) else {
                continue;
            };
            if let Some(known) =
                orders::by_reference(store, reference).map_err(|e| e.to_string())?
            {
                out.push(KnownChange {
                    order,
                    id: order.get("id").and_then(Value::as_i64).unwrap_or(0),
                    reference,
                    known,
                });
            }
        }
        Ok(out)
    }

    /// The outgoing deliveries of one order.
    pub fn pickings_of(&self, order: i64) -> Vec<&Value> {
        self.pickings
            .iter()
            .filter(|p| p.get("sale_id").and_then(Value::as_id) == Some(order))
            .collect()
    }

    /// Every delivery of the order is done or cancelled, and at least one is done.
    pub fn delivered(&self, order: i64) -> bool {
        let states: Vec<&str> = self
            .pickings_of(order)
            .iter()
            .filter_map(|p| p.get("state").and_then(Value::as_str))
            .collect();
        !states.is_empty()
            && states.iter().all(|s| matches!(*s, "done" | "cancel"))
            && states.contains(&"done")
    }
}

/// Orders whose `client_order_ref` starts with `prefix` (e.g. `CARTONA-`) changed since `since`.
pub async fn changed_orders(
    odoo: &OdooClient,
    prefix: &str,
    since: &Since,
    order_fields: &[&str],
    picking_fields: &[&str],
) -> Result<Changed, OdooError> {
    let like = format!("{prefix}%");
    let mut orders = odoo
        .search_read(
            "sale.order",
            &Domain::all()
                .and("client_order_ref", "=like", like.as_str())
                .and("write_date", since.op, since.at.as_str()),
            order_fields,
            SearchOpts::default(),
        )
        .await?;
    let moved = odoo
        .search_read(
            "stock.picking",
            &Domain::all()
                .and("sale_id.client_order_ref", "=like", like.as_str())
                .and("picking_type_code", "=", "outgoing")
                .and("write_date", since.op, since.at.as_str()),
            &["sale_id", "write_date"],
            SearchOpts::default(),
        )
        .await?;
    let mut ids: Vec<i64> = orders
        .iter()
        .filter_map(|r| r.get("id").and_then(Value::as_i64))
        .collect();
    let extra: Vec<i64> = moved
        .iter()
        .filter_map(|p| p.get("sale_id").and_then(Value::as_id))
        .filter(|id| !ids.contains(id))
        .collect();
    if !extra.is_empty() {
        orders.extend(odoo.read("sale.order", &extra, order_fields).await?);
        ids.extend(extra);
    }
    let pickings = if ids.is_empty() {
        Vec::new()
    } else {
        odoo.search_read(
            "stock.picking",
            &Domain::all()
                .and("sale_id", "in", ids)
                .and("picking_type_code", "=", "outgoing"),
            picking_fields,
            SearchOpts::default(),
        )
        .await?
    };
    Ok(Changed { orders, pickings })
}

/// A marketplace order whose customer invoices are all paid.
#[derive(Debug, Clone, PartialEq)]
pub struct Paid {
    pub id: i64,
    pub name: String,
    pub reference: String,
    /// When Odoo last wrote the invoices (the payment, for a paid one).
    pub at: Option<String>,
}

/// Payment states of an invoice whose whole amount is paid (`in_payment`: registered, the
/// bank statement not reconciled yet).
const PAID: [&str; 2] = ["paid", "in_payment"];

/// Order names looked up per invoice search.
const ORIGINS_PER_SEARCH: usize = 200;

/// Orders whose `client_order_ref` starts with `prefix`, fully invoiced, whose posted customer
/// invoices are all paid, among those with an invoice written since `since`: a payment writes
/// the invoice, never the order. Invoices find their orders by `invoice_origin`, the order
/// names Odoo writes there (comma-separated when one invoice covers several orders).
pub async fn paid_orders(
    odoo: &OdooClient,
    prefix: &str,
    since: &Since,
) -> Result<Vec<Paid>, OdooError> {
    let invoices = || {
        Domain::all()
            .and("move_type", "=", "out_invoice")
            .and("state", "=", "posted")
    };
    let touched = odoo
        .search_read(
            "account.move",
            &invoices()
                .and("write_date", since.op, since.at.as_str())
                .and("invoice_origin", "!=", false),
            &["invoice_origin"],
            SearchOpts::default(),
        )
        .await?;
    let names: BTreeSet<String> = touched.iter().flat_map(origins).collect();
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let like = format!("{prefix}%");
    let orders = odoo
        .search_read(
            "sale.order",
            &Domain::all()
                .and("name", "in", names.into_iter().collect::<Vec<_>>())
                .and("client_order_ref", "=like", like.as_str())
                .and("invoice_status", "=", "invoiced"),
            &["name", "client_order_ref"],
            SearchOpts::default(),
        )
        .await?;
    if orders.is_empty() {
        return Ok(Vec::new());
    }
    let text = |r: &Value, k: &str| r.get(k).and_then(Value::as_opt_str).map(str::to_string);
    let names: Vec<String> = orders.iter().filter_map(|o| text(o, "name")).collect();
    // Every invoice of these orders, a bounded domain at a time (a mass reconciliation can
    // touch thousands).
    let mut all = Vec::new();
    for chunk in names.chunks(ORIGINS_PER_SEARCH) {
        all.extend(
            odoo.search_read(
                "account.move",
                &invoices().any_of(
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
    let mut paid = Vec::new();
    for o in &orders {
        let (Some(name), Some(reference)) = (text(o, "name"), text(o, "client_order_ref")) else {
            continue;
        };
        let mine: Vec<&Value> = all.iter().filter(|i| origins(i).contains(&name)).collect();
        let settled = mine.iter().all(|i| {
            i.get("payment_state")
                .and_then(Value::as_str)
                .is_some_and(|s| PAID.contains(&s))
        });
        if !mine.is_empty() && settled {
            paid.push(Paid {
                id: o.get("id").and_then(Value::as_i64).unwrap_or(0),
                name,
                reference,
                at: mine.iter().filter_map(|i| text(i, "write_date")).max(),
            });
        }
    }
    Ok(paid)
}

/// The order names in an invoice's `invoice_origin`.
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
