//! Inbound orders -> Odoo sale orders, shared by every channel. Exactly one Odoo order per
//! marketplace order, guarded twice: the local mapping, then a search in Odoo by the
//! deterministic `client_order_ref` before creating. Customers are found by their channel key
//! (mapping, then `ref`) or created; every line must map to a product, or the order is parked
//! with the reason and nothing is half-created.

use crate::daemon::workers::JobError;
use crate::odoo::profile::{MoveQuantity, Profile};
use crate::odoo::{Domain, OdooClient, OdooError, SearchOpts, Value};
use crate::retry::{Classify, RetryClass};
use crate::store::{mapping, Store};
use rust_decimal::Decimal;

/// A marketplace order in the channel's terms, already parsed and checked.
#[derive(Debug, Clone)]
pub struct InboundOrder {
    pub channel: &'static str,
    /// The marketplace's order id (Cartona `hashed_id`).
    pub external_id: String,
    /// `client_order_ref` of the Odoo order (e.g. `CARTONA-<hashed_id>`).
    pub reference: String,
    pub origin: String,
    pub customer: Customer,
    pub lines: Vec<InboundLine>,
    /// The marketplace's total of the lines, to compare with Odoo's.
    pub total: Option<Decimal>,
    pub note: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Customer {
    /// Unique per channel (Cartona `retailer_code`); stored as `ref` = `<channel>:<key>`.
    pub key: String,
    pub name: String,
    pub phone: Option<String>,
    pub mobile: Option<String>,
    pub email: Option<String>,
    pub street: Option<String>,
    pub notes: Option<String>,
    /// Where to deliver, when it is not the customer's own address: a delivery contact.
    pub shipping: Option<Address>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Address {
    pub name: String,
    pub street: Option<String>,
    pub city: Option<String>,
    pub zip: Option<String>,
    pub country_code: Option<String>,
    pub phone: Option<String>,
}

#[derive(Debug, Clone)]
pub struct InboundLine {
    /// The channel's product id, looked up in the product mappings.
    pub product_key: String,
    /// What the operator sees when the product is unknown.
    pub description: String,
    pub quantity: Decimal,
    pub unit_price: Decimal,
}

/// How an import ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Imported {
    /// A new Odoo order.
    Created(i64),
    /// Already in Odoo (found by mapping or by reference).
    Existing(i64),
    /// Not imported: the reason waits in the inbox for the operator.
    Parked(String),
}

/// What a marketplace status asks of the Odoo order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusAction {
    Nothing,
    Confirm,
    ConfirmAndReserve,
    Deliver,
    Cancel,
    /// Needs a person (e.g. a return): flagged, not acted on.
    Flag,
}

pub fn odoo_job_error(e: &OdooError) -> JobError {
    // Odoo being down is not the job's failure: it waits without spending attempts.
    let class = if e.is_unreachable() {
        RetryClass::Unavailable
    } else {
        e.retry_class()
    };
    JobError::new(class, format!("Odoo: {e}"))
}

/// Finds or creates the Odoo order. Does not apply a status.
pub async fn import(
    odoo: &OdooClient,
    store: &Store,
    order: &InboundOrder,
) -> Result<Imported, JobError> {
    let ch = order.channel;
    if let Some(m) =
        mapping::by_external(store, ch, "order", &order.external_id).map_err(store_err)?
    {
        return Ok(Imported::Existing(m.odoo_id));
    }
    let found = odoo
        .search(
            "sale.order",
            &Domain::all().and("client_order_ref", "=", order.reference.as_str()),
            Some(2),
        )
        .await
        .map_err(|e| odoo_job_error(&e))?;
    if let Some(&id) = found.first() {
        link(store, ch, "order", "sale.order", id, &order.external_id)?;
        return Ok(Imported::Existing(id));
    }

    // Every line must be known before anything is written.
    let mut lines = Vec::with_capacity(order.lines.len());
    let mut unknown = Vec::new();
    for line in &order.lines {
        match mapping::by_external(store, ch, "product", &line.product_key).map_err(store_err)? {
            Some(m) => lines.push((m.odoo_id, line)),
            None => unknown.push(format!("{} ({})", line.product_key, line.description)),
        }
    }
    if !unknown.is_empty() {
        return Ok(Imported::Parked(format!(
            "order {} not imported: {} product(s) not mapped to Odoo: {}; map them (`marketsync map import --channel {ch}` or `marketsync map set --channel {ch} --odoo-id <id> --external-id <id>`), then `marketsync queue retry <job>`",
            order.external_id,
            unknown.len(),
            unknown.join(", ")
        )));
    }

    let partner = customer(odoo, store, ch, &order.customer).await?;
    let shipping = match &order.customer.shipping {
        Some(address) => Some(delivery_contact(odoo, partner, address).await?),
        None => None,
    };
    let order_lines: Vec<Value> = lines
        .iter()
        .map(|(product, line)| {
            Value::Array(vec![
                Value::Int(0),
                Value::Int(0),
                Value::record([
                    ("product_id", Value::Int(*product)),
                    ("product_uom_qty", Value::from(line.quantity)),
                    ("price_unit", Value::from(line.unit_price)),
                ]),
            ])
        })
        .collect();
    let mut vals = vec![
        ("partner_id", Value::Int(partner)),
        ("client_order_ref", Value::from(order.reference.as_str())),
        ("origin", Value::from(order.origin.as_str())),
        ("order_line", Value::Array(order_lines)),
    ];
    if let Some(note) = &order.note {
        vals.push(("note", Value::from(note.as_str())));
    }
    if let Some(shipping) = shipping {
        vals.push(("partner_shipping_id", Value::Int(shipping)));
    }
    let id = odoo
        .create("sale.order", vec![Value::record(vals)])
        .await
        .map_err(|e| odoo_job_error(&e))?[0];
    link(store, ch, "order", "sale.order", id, &order.external_id)?;
    Ok(Imported::Created(id))
}

/// Replaces the lines of a quotation with the marketplace's current ones.
pub async fn replace_lines(
    odoo: &OdooClient,
    store: &Store,
    order_id: i64,
    order: &InboundOrder,
) -> Result<Option<String>, JobError> {
    let mut cmds = vec![Value::Array(vec![
        Value::Int(5),
        Value::Int(0),
        Value::Int(0),
    ])];
    for line in &order.lines {
        let Some(m) = mapping::by_external(store, order.channel, "product", &line.product_key)
            .map_err(store_err)?
        else {
            return Ok(Some(format!(
                "product {} ({}) is not mapped",
                line.product_key, line.description
            )));
        };
        cmds.push(Value::Array(vec![
            Value::Int(0),
            Value::Int(0),
            Value::record([
                ("product_id", Value::Int(m.odoo_id)),
                ("product_uom_qty", Value::from(line.quantity)),
                ("price_unit", Value::from(line.unit_price)),
            ]),
        ]));
    }
    odoo.write(
        "sale.order",
        &[order_id],
        Value::record([("order_line", Value::Array(cmds))]),
    )
    .await
    .map_err(|e| odoo_job_error(&e))?;
    Ok(None)
}

/// The Odoo order's state and untaxed total.
pub async fn read_order(odoo: &OdooClient, id: i64) -> Result<(String, Decimal), JobError> {
    let rows = odoo
        .read("sale.order", &[id], &["state", "amount_untaxed"])
        .await
        .map_err(|e| odoo_job_error(&e))?;
    let row = rows.first().ok_or_else(|| {
        JobError::new(
            RetryClass::Permanent,
            format!("sale.order {id} no longer exists in Odoo"),
        )
    })?;
    Ok((
        row.get("state")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        row.get("amount_untaxed")
            .and_then(Value::as_decimal)
            .unwrap_or_default(),
    ))
}

/// Applies what a marketplace status asks of the Odoo order, from whatever state it is in.
pub async fn apply_status(
    odoo: &OdooClient,
    profile: &Profile,
    id: i64,
    state: &str,
    action: StatusAction,
) -> Result<(), JobError> {
    let confirm = |state: &str| matches!(state, "draft" | "sent");
    match action {
        StatusAction::Nothing | StatusAction::Flag => Ok(()),
        StatusAction::Confirm => {
            if confirm(state) {
                odoo.call_method("sale.order", "action_confirm", &[id])
                    .await
                    .map_err(|e| odoo_job_error(&e))?;
            }
            Ok(())
        }
        StatusAction::ConfirmAndReserve => {
            if confirm(state) {
                odoo.call_method("sale.order", "action_confirm", &[id])
                    .await
                    .map_err(|e| odoo_job_error(&e))?;
            }
            let open = open_deliveries(odoo, id).await?;
            if !open.is_empty() {
                odoo.call_method("stock.picking", "action_assign", &open)
                    .await
                    .map_err(|e| odoo_job_error(&e))?;
            }
            Ok(())
        }
        StatusAction::Deliver => {
            if state == "cancel" {
                return Err(JobError::new(
                    RetryClass::Permanent,
                    format!(
                        "the marketplace says delivered, but sale.order {id} is cancelled in Odoo"
                    ),
                ));
            }
            if confirm(state) {
                odoo.call_method("sale.order", "action_confirm", &[id])
                    .await
                    .map_err(|e| odoo_job_error(&e))?;
            }
            let open = open_deliveries(odoo, id).await?;
            if open.is_empty() {
                return Ok(());
            }
            odoo.call_method("stock.picking", "action_assign", &open)
                .await
                .map_err(|e| odoo_job_error(&e))?;
            // Deliver what was ordered: every move's quantity is its demand, then validate.
            let moves = odoo
                .search_read(
                    "stock.move",
                    &Domain::all().and("picking_id", "in", open.clone()),
                    &["product_uom_qty", "state"],
                    SearchOpts::default(),
                )
                .await
                .map_err(|e| odoo_job_error(&e))?;
            for m in moves
                .iter()
                .filter(|m| m.get("state").and_then(Value::as_str) != Some("done"))
            {
                let mid = m.get("id").and_then(Value::as_i64).unwrap_or(0);
                let qty = m
                    .get("product_uom_qty")
                    .cloned()
                    .unwrap_or(Value::Double(0.0));
                let vals = match profile.move_quantity {
                    MoveQuantity::QuantityPicked => {
                        Value::record([("quantity", qty), ("picked", Value::Bool(true))])
                    }
                    MoveQuantity::QuantityDone => Value::record([("quantity_done", qty)]),
                };
                odoo.write("stock.move", &[mid], vals)
                    .await
                    .map_err(|e| odoo_job_error(&e))?;
            }
            let result = odoo
                .call_method("stock.picking", "button_validate", &open)
                .await
                .map_err(|e| odoo_job_error(&e))?;
            if let Value::Struct(_) = result {
                return Err(JobError::new(
                    RetryClass::Permanent,
                    format!("Odoo asked for a confirmation wizard when validating the delivery of sale.order {id}; validate it in Odoo"),
                ));
            }
            Ok(())
        }
        StatusAction::Cancel => {
            if state != "cancel" {
                odoo.call_method("sale.order", "action_cancel", &[id])
                    .await
                    .map_err(|e| odoo_job_error(&e))?;
            }
            Ok(())
        }
    }
}

async fn open_deliveries(odoo: &OdooClient, order: i64) -> Result<Vec<i64>, JobError> {
    odoo.search(
        "stock.picking",
        &Domain::all()
            .and("sale_id", "=", order)
            .and("picking_type_code", "=", "outgoing")
            .and("state", "not in", vec!["done", "cancel"]),
        None,
    )
    .await
    .map_err(|e| odoo_job_error(&e))
}

/// The customer's delivery contact at this address, found or created.
async fn delivery_contact(odoo: &OdooClient, parent: i64, a: &Address) -> Result<i64, JobError> {
    let or_false = |v: &Option<String>| v.clone().map(Value::from).unwrap_or(Value::Bool(false));
    let domain = Domain::all()
        .and("parent_id", "=", parent)
        .and("type", "=", "delivery")
        .and("street", "=", or_false(&a.street))
        .and("city", "=", or_false(&a.city));
    if let Some(&id) = odoo
        .search("res.partner", &domain, Some(1))
        .await
        .map_err(|e| odoo_job_error(&e))?
        .first()
    {
        return Ok(id);
    }
    let mut vals = vec![
        ("name", Value::from(a.name.as_str())),
        ("parent_id", Value::Int(parent)),
        ("type", Value::from("delivery")),
    ];
    for (k, v) in [
        ("street", &a.street),
        ("city", &a.city),
        ("zip", &a.zip),
        ("phone", &a.phone),
    ] {
        if let Some(v) = v {
            vals.push((k, Value::from(v.as_str())));
        }
    }
    if let Some(code) = &a.country_code {
        let country = odoo
            .search(
                "res.country",
                &Domain::all().and("code", "=", code.to_ascii_uppercase()),
                Some(1),
            )
            .await
            .map_err(|e| odoo_job_error(&e))?;
        if let Some(&c) = country.first() {
            vals.push(("country_id", Value::Int(c)));
        }
    }
    Ok(odoo
        .create("res.partner", vec![Value::record(vals)])
        .await
        .map_err(|e| odoo_job_error(&e))?[0])
}

async fn customer(
    odoo: &OdooClient,
    store: &Store,
    ch: &str,
    c: &Customer,
) -> Result<i64, JobError> {
    if let Some(m) = mapping::by_external(store, ch, "partner", &c.key).map_err(store_err)? {
        return Ok(m.odoo_id);
    }
    let reference = format!("{ch}:{}", c.key);
    let found = odoo
        .search(
            "res.partner",
            &Domain::all().and("ref", "=", reference.as_str()),
            Some(1),
        )
        .await
        .map_err(|e| odoo_job_error(&e))?;
    let id = match found.first() {
        Some(&id) => id,
        None => {
            let mut vals = vec![
                ("name", Value::from(c.name.as_str())),
                ("ref", Value::from(reference.as_str())),
                ("customer_rank", Value::Int(1)),
            ];
            for (k, v) in [
                ("phone", &c.phone),
                ("mobile", &c.mobile),
                ("email", &c.email),
                ("street", &c.street),
                ("comment", &c.notes),
            ] {
                if let Some(v) = v {
                    vals.push((k, Value::from(v.as_str())));
                }
            }
            odoo.create("res.partner", vec![Value::record(vals)])
                .await
                .map_err(|e| odoo_job_error(&e))?[0]
        }
    };
    link(store, ch, "partner", "res.partner", id, &c.key)?;
    Ok(id)
}

fn link(
    store: &Store,
    ch: &str,
    kind: &str,
    model: &str,
    odoo_id: i64,
    external: &str,
) -> Result<(), JobError> {
    mapping::set(store, ch, kind, model, odoo_id, external)
        .map(|_| ())
        .map_err(store_err)
}

pub fn store_err(e: crate::store::StoreError) -> JobError {
    JobError::new(RetryClass::Transient, format!("state database: {e}"))
}
