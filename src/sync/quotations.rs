//! Quotations of one channel's marketplace orders written in Odoo since a poll's window start
//! (Cartona hears the edited lines). Orders' progress (confirmed, delivered...) is the
//! watcher's: `sync::order_watch`.

use crate::odoo::{Domain, OdooClient, OdooError, SearchOpts, Value};
use crate::store::{orders, Store};
use crate::sync::catalog::Since;

/// A changed Odoo quotation that the channel knows as one of its marketplace orders.
pub struct KnownChange {
    pub id: i64,
    pub known: orders::ChannelOrder,
}

/// Quotations (`draft`, `sent`) whose `client_order_ref` starts with `prefix` (e.g. `CARTONA-`),
/// written since `since`.
pub async fn changed(
    odoo: &OdooClient,
    prefix: &str,
    since: &Since,
    fields: &[&str],
) -> Result<Vec<Value>, OdooError> {
    odoo.search_read(
        "sale.order",
        &Domain::all()
            .and("client_order_ref", "=like", format!("{prefix}%").as_str())
            .and("state", "in", vec!["draft", "sent"])
            .and("write_date", since.op, since.at.as_str()),
        fields,
        SearchOpts::default(),
    )
    .await
}

/// The quotations that are marketplace orders the state knows, with what it knows of them.
pub fn known(store: &Store, quotations: &[Value]) -> crate::store::Result<Vec<KnownChange>> {
    let ids: Vec<i64> = quotations
        .iter()
        .filter_map(|o| o.get("id").and_then(Value::as_i64))
        .collect();
    let mut by_id = orders::by_odoo_ids(store, &ids)?;
    Ok(quotations
        .iter()
        .filter_map(|order| {
            let id = order.get("id").and_then(Value::as_i64)?;
            let known = by_id.remove(&id)?;
            Some(KnownChange { id, known })
        })
        .collect())
}
