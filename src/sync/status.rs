//! Which marketplace orders changed on the Odoo side: shared by every channel's status stream.
//! An order counts as changed when the `sale.order` or one of its outgoing deliveries was
//! written since the poll window's start.

use crate::odoo::{Domain, OdooClient, OdooError, SearchOpts, Value};
use crate::store::{orders, Store};
use crate::sync::catalog::Since;

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
