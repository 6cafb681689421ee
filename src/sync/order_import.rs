//! Inbound orders -> Odoo sale orders, shared by every channel. Exactly one Odoo order per
//! marketplace order, guarded twice: the local mapping, then a search in Odoo by the
//! deterministic `client_order_ref` before creating. Customers are found by their channel key
//! (mapping, then `ref`) or created; every line must map to a product, or the order is parked
//! with the reason and nothing is half-created.

use crate::channel::optional::OptionalPart;
use crate::daemon::workers::JobError;
use crate::odoo::profile::{MoveQuantity, Profile};
use crate::odoo::{Domain, OdooClient, OdooError, SearchOpts, Value};
use crate::retry::{Classify, RetryClass};
use crate::store::{mapping, Store};
use crate::sync::order_money::{self, Basis, Charge, OrderTaxes, Terms};
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
    /// Shipping methods, at what they charged.
    pub charges: Vec<Charge>,
    /// What the customer pays, to compare with Odoo's `amount_total`.
    pub total: Option<Decimal>,
    /// The order's currency (the channel's), for rounding and the total check.
    pub currency: String,
    pub note: Option<String>,
    /// How the channel's orders carry taxes, discounts and shipping into Odoo.
    pub terms: Terms,
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
    /// As the marketplace lists it: with its tax when `tax_included`.
    pub unit_price: Decimal,
    pub tax_included: bool,
    /// The marketplace's tax rate on the line, in percent (0 when it charged none).
    pub tax_rate: Decimal,
    /// What the customer was let off the whole line, on the same footing as `unit_price`.
    pub discount: Decimal,
}

impl InboundLine {
    /// A line at a plain price: no tax of the marketplace's, no discount.
    pub fn plain(
        product_key: String,
        description: String,
        quantity: Decimal,
        unit_price: Decimal,
    ) -> Self {
        InboundLine {
            product_key,
            description,
            quantity,
            unit_price,
            tax_included: false,
            tax_rate: Decimal::ZERO,
            discount: Decimal::ZERO,
        }
    }
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
    import_many(odoo, store, &[order]).await.remove(0)
}

/// Finds or creates the Odoo orders of a batch, one outcome per order, in order. The Odoo calls
/// are shared: one search by reference, one lookup and one create of the new customers, one
/// create of the new orders (a single transaction in Odoo). If Odoo refuses the batch's create
/// for a reason that is not transient, each order is created alone so one bad order does not
/// hold back the others.
pub async fn import_many(
    odoo: &OdooClient,
    store: &Store,
    orders: &[&InboundOrder],
) -> Vec<Result<Imported, JobError>> {
    let mut out: Vec<Option<Result<Imported, JobError>>> = vec![None; orders.len()];
    let open = |out: &[Option<Result<Imported, JobError>>]| -> Vec<usize> {
        (0..out.len()).filter(|&i| out[i].is_none()).collect()
    };
    fn fail(out: &mut [Option<Result<Imported, JobError>>], which: &[usize], e: &JobError) {
        for &i in which {
            out[i] = Some(Err(e.clone()));
        }
    }

    // 1. Known locally.
    for (i, o) in orders.iter().enumerate() {
        match mapping::by_external(store, o.channel, "order", &o.external_id) {
            Ok(Some(m)) => out[i] = Some(Ok(Imported::Existing(m.odoo_id))),
            Ok(None) => {}
            Err(e) => out[i] = Some(Err(store_err(e))),
        }
    }
    // 2. Already in Odoo (created before a crash, or by hand): found by reference.
    let todo = open(&out);
    if todo.is_empty() {
        return finish(out);
    }
    let refs: Vec<&str> = todo.iter().map(|&i| orders[i].reference.as_str()).collect();
    match odoo
        .search_read(
            "sale.order",
            &Domain::all().and("client_order_ref", "in", refs),
            &["client_order_ref"],
            SearchOpts::default(),
        )
        .await
    {
        Ok(rows) => {
            for row in rows {
                let (Some(id), Some(r)) = (
                    row.get("id").and_then(Value::as_i64),
                    row.get("client_order_ref").and_then(Value::as_str),
                ) else {
                    continue;
                };
                for &i in &todo {
                    if out[i].is_none() && orders[i].reference == r {
                        let o = orders[i];
                        out[i] = Some(
                            link(store, o.channel, "order", "sale.order", id, &o.external_id)
                                .map(|_| Imported::Existing(id)),
                        );
                    }
                }
            }
        }
        Err(e) => fail(&mut out, &todo, &odoo_job_error(&e)),
    }

    // 3. Every line must be known before anything is written.
    let mut products: Vec<Vec<i64>> = vec![Vec::new(); orders.len()];
    for i in open(&out) {
        let o = orders[i];
        let mut unknown = Vec::new();
        for line in &o.lines {
            match mapping::by_external(store, o.channel, "product", &line.product_key) {
                Ok(Some(m)) => products[i].push(m.odoo_id),
                Ok(None) => unknown.push(format!("{} ({})", line.product_key, line.description)),
                Err(e) => {
                    out[i] = Some(Err(store_err(e)));
                    break;
                }
            }
        }
        if out[i].is_none() && !unknown.is_empty() {
            let ch = o.channel;
            out[i] = Some(Ok(Imported::Parked(format!(
                "order {} not imported: {} product(s) not mapped to Odoo: {}; map them (`marketsync map import --channel {ch}` or `marketsync map set --channel {ch} --odoo-id <id> --external-id <id>`), then `marketsync queue retry <job>`",
                o.external_id,
                unknown.len(),
                unknown.join(", ")
            ))));
        }
    }

    // 3b. The configured taxes exist, and whether they are included in the price.
    let mut bases: Vec<Basis> = vec![Basis::Net; orders.len()];
    for i in open(&out) {
        match taxes_included(odoo, &orders[i].terms).await {
            Ok(Ok(included)) => bases[i] = orders[i].terms.basis(included),
            Ok(Err(reason)) => {
                out[i] = Some(Ok(Imported::Parked(format!(
                    "order {} not imported: {reason}",
                    orders[i].external_id
                ))))
            }
            Err(e) => out[i] = Some(Err(e)),
        }
    }

    // 4. Customers, found or created together.
    let todo = open(&out);
    if todo.is_empty() {
        return finish(out);
    }
    let wanted: Vec<&InboundOrder> = todo.iter().map(|&i| orders[i]).collect();
    let partners = match customers(odoo, store, &wanted).await {
        Ok(p) => p,
        Err(e) => {
            fail(&mut out, &todo, &e);
            return finish(out);
        }
    };

    // 5. Delivery contacts (rare: only orders shipped elsewhere than the customer's address).
    let mut vals_of: Vec<(usize, Value)> = Vec::new();
    for &i in &todo {
        let o = orders[i];
        let partner = partners[&(o.channel, o.customer.key.clone())];
        let shipping = match &o.customer.shipping {
            Some(address) => match delivery_contact(odoo, store, o.channel, partner, address).await
            {
                Ok(id) => Some(id),
                Err(e) => {
                    out[i] = Some(Err(e));
                    continue;
                }
            },
            None => None,
        };
        vals_of.push((
            i,
            order_vals(o, partner, shipping, &products[i], bases[i], odoo.company()),
        ));
    }

    // 6. The new orders, in one create (one transaction), or one by one if Odoo refuses it.
    let created = odoo
        .create(
            "sale.order",
            vals_of.iter().map(|(_, v)| v.clone()).collect(),
        )
        .await;
    match created {
        Ok(ids) if ids.len() == vals_of.len() => {
            for ((i, _), id) in vals_of.iter().zip(ids) {
                let o = orders[*i];
                out[*i] = Some(
                    link(store, o.channel, "order", "sale.order", id, &o.external_id)
                        .map(|_| Imported::Created(id)),
                );
            }
        }
        Err(e) if vals_of.len() > 1 && !e.retry_class().is_retryable() => {
            for (i, vals) in vals_of {
                let o = orders[i];
                out[i] = Some(match odoo.create("sale.order", vec![vals]).await {
                    Ok(ids) => link(
                        store,
                        o.channel,
                        "order",
                        "sale.order",
                        ids[0],
                        &o.external_id,
                    )
                    .map(|_| Imported::Created(ids[0])),
                    Err(e) => Err(odoo_job_error(&e)),
                });
            }
        }
        Err(e) => {
            let which: Vec<usize> = vals_of.iter().map(|(i, _)| *i).collect();
            fail(&mut out, &which, &odoo_job_error(&e));
        }
        Ok(ids) => {
            let which: Vec<usize> = vals_of.iter().map(|(i, _)| *i).collect();
            let e = JobError::new(
                RetryClass::Transient,
                format!(
                    "Odoo created {} sale orders for {} asked",
                    ids.len(),
                    which.len()
                ),
            );
            fail(&mut out, &which, &e);
        }
    }
    finish(out)
}

/// The ORM command creating an order line: `(0, 0, {product, quantity, price, ...})`: the
/// price on the basis the taxes want, the discount in percent (unless a discount product
/// carries them all), the configured taxes.
fn line_command(product: i64, line: &InboundLine, terms: &Terms, basis: Basis) -> Value {
    let price = order_money::on_basis(line.unit_price, line.tax_included, line.tax_rate, basis);
    let mut vals = vec![
        ("product_id", Value::Int(product)),
        ("product_uom_qty", Value::from(line.quantity)),
        ("price_unit", Value::from(price)),
    ];
    if terms.discount_product.is_none() && line.discount > Decimal::ZERO {
        let percent = order_money::discount_percent(line.discount, line.unit_price * line.quantity);
        vals.push(("discount", Value::from(percent.round_dp(6))));
    }
    if let Some((field, taxes)) = terms.tax_command() {
        vals.push((field, taxes));
    }
    create_command(vals)
}

fn create_command(vals: Vec<(&str, Value)>) -> Value {
    Value::Array(vec![Value::Int(0), Value::Int(0), Value::record(vals)])
}

/// The lines beside the products: one discount line (with a discount product), one line per
/// shipping method (with a shipping product; free ones only when asked).
fn extra_lines(order: &InboundOrder, basis: Basis) -> Vec<Value> {
    let terms = &order.terms;
    let mut out = Vec::new();
    if let Some(product) = terms.discount_product {
        let off: Decimal = order
            .lines
            .iter()
            .map(|l| order_money::on_basis(l.discount, l.tax_included, l.tax_rate, basis))
            .sum();
        if off > Decimal::ZERO {
            let mut vals = vec![
                ("product_id", Value::Int(product)),
                ("name", Value::from("Discount")),
                ("product_uom_qty", Value::from(Decimal::ONE)),
                ("price_unit", Value::from(-off)),
            ];
            if let Some((field, taxes)) = terms.tax_command() {
                vals.push((field, taxes));
            }
            out.push(create_command(vals));
        }
    }
    if let Some(product) = terms.shipping_product {
        for c in &order.charges {
            if c.amount <= Decimal::ZERO && !terms.free_shipping_line {
                continue;
            }
            let mut vals = vec![
                ("product_id", Value::Int(product)),
                ("name", Value::from(c.name.as_str())),
                ("product_uom_qty", Value::from(Decimal::ONE)),
                (
                    "price_unit",
                    Value::from(order_money::on_basis(
                        c.amount.max(Decimal::ZERO),
                        c.tax_included,
                        c.tax_rate,
                        basis,
                    )),
                ),
            ];
            if terms.is_delivery {
                vals.push(("is_delivery", Value::Bool(true)));
            }
            if let Some((field, taxes)) = terms.tax_command() {
                vals.push((field, taxes));
            }
            out.push(create_command(vals));
        }
    }
    out
}

/// For taxes named by id: whether they are all included in the price (`Ok(Ok(Some))`), or
/// why the order cannot carry them (`Ok(Err)`: a tax Odoo does not have, or not a sale tax);
/// `Ok(Ok(None))` for "product" and "none".
pub async fn taxes_included(
    odoo: &OdooClient,
    terms: &Terms,
) -> Result<Result<Option<bool>, String>, JobError> {
    let OrderTaxes::Ids(ids) = &terms.taxes else {
        return Ok(Ok(None));
    };
    let rows = match odoo
        .read("account.tax", ids, &["price_include", "type_tax_use", "active"])
        .await
    {
        Ok(rows) => rows,
        // A tax of another company than the one marketsync works in (taxes are per company).
        Err(OdooError::AccessError(_)) => {
            return Ok(Err(format!(
                "order_taxes names Odoo tax(es) {} that {} cannot use (a tax belongs to one company); name taxes of that company, then `marketsync queue retry <job>`",
                ids.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", "),
                odoo.company_words()
            )))
        }
        Err(e) => return Err(odoo_job_error(&e)),
    };
    let missing: Vec<String> = ids
        .iter()
        .filter(|id| {
            !rows
                .iter()
                .any(|r| r.get("id").and_then(Value::as_i64) == Some(**id))
        })
        .map(|id| id.to_string())
        .collect();
    if !missing.is_empty() {
        return Ok(Err(format!(
            "order_taxes names Odoo tax(es) {} that Odoo does not have (or this user cannot read); fix order_taxes (`marketsync check` lists what it sees), then `marketsync queue retry <job>`",
            missing.join(", ")
        )));
    }
    let wrong: Vec<String> = rows
        .iter()
        .filter(|r| r.get("type_tax_use").and_then(Value::as_str) != Some("sale"))
        .filter_map(|r| r.get("id").and_then(Value::as_i64).map(|i| i.to_string()))
        .collect();
    if !wrong.is_empty() {
        return Ok(Err(format!(
            "order_taxes names Odoo tax(es) {} that are not sales taxes; fix order_taxes, then `marketsync queue retry <job>`",
            wrong.join(", ")
        )));
    }
    Ok(Ok(Some(rows.iter().all(|r| {
        r.get("price_include").and_then(Value::as_bool) == Some(true)
    }))))
}

fn finish(out: Vec<Option<Result<Imported, JobError>>>) -> Vec<Result<Imported, JobError>> {
    out.into_iter()
        .map(|o| {
            o.unwrap_or_else(|| {
                Err(JobError::new(
                    RetryClass::Transient,
                    "the order import left an order without an outcome (a bug: please report it)",
                ))
            })
        })
        .collect()
}

fn order_vals(
    order: &InboundOrder,
    partner: i64,
    shipping: Option<i64>,
    products: &[i64],
    basis: Basis,
    company: Option<i64>,
) -> Value {
    let mut order_lines: Vec<Value> = order
        .lines
        .iter()
        .zip(products)
        .map(|(line, product)| line_command(*product, line, &order.terms, basis))
        .collect();
    order_lines.extend(extra_lines(order, basis));
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
    if let Some(pricelist) = order.terms.pricelist {
        vals.push(("pricelist_id", Value::Int(pricelist)));
    }
    if let Some(company) = company {
        vals.push(("company_id", Value::Int(company)));
    }
    Value::record(vals)
}

/// Reads the state and total (taxes included) of orders in one call: id -> (state,
/// amount_total).
pub async fn read_orders(
    odoo: &OdooClient,
    ids: &[i64],
) -> Result<std::collections::HashMap<i64, (String, Decimal)>, JobError> {
    if ids.is_empty() {
        return Ok(Default::default());
    }
    let rows = odoo
        .read("sale.order", ids, &["state", "amount_total"])
        .await
        .map_err(|e| odoo_job_error(&e))?;
    Ok(rows
        .iter()
        .filter_map(|row| {
            Some((
                row.get("id").and_then(Value::as_i64)?,
                (
                    row.get("state")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    row.get("amount_total")
                        .and_then(Value::as_decimal)
                        .unwrap_or_default(),
                ),
            ))
        })
        .collect())
}

/// Compares a new Odoo order's `amount_total` with what the marketplace says the customer
/// pays: a difference beyond the currency's smallest unit is kept on the order (its channel
/// data's `totals`, shown by `order list` and counted in `/metrics`) and said in the sync log
/// with both figures and the difference. Returns the difference.
pub fn check_totals(
    store: &Store,
    order: &InboundOrder,
    odoo_total: Decimal,
) -> Result<Option<Decimal>, JobError> {
    let Some(theirs) = order.total else {
        return Ok(None);
    };
    let currency = order.currency.to_ascii_uppercase();
    let odoo_total = super::money::round(odoo_total, &currency);
    let Some(diff) = order_money::totals_differ(odoo_total, theirs, &currency) else {
        return Ok(None);
    };
    // Written with the currency's digits: 90.150 KWD, not 90.15.
    let digits = |mut d: Decimal| {
        d.rescale(super::money::exponent(&currency));
        d.to_string()
    };
    let (odoo, theirs) = (digits(odoo_total), digits(theirs));
    let difference = if diff.is_sign_positive() {
        format!("+{}", digits(diff))
    } else {
        digits(diff)
    };
    crate::store::orders::merge_meta(
        store,
        order.channel,
        &order.external_id,
        &serde_json::json!({"totals": {"odoo": odoo, "marketplace": theirs, "difference": difference, "currency": currency}}),
    )
    .map_err(store_err)?;
    crate::internal_events::emit(
        store,
        &crate::internal_events::OrderNoted {
            channel: order.channel,
            reference: &order.reference,
            note: crate::internal_events::OrderNote::TotalsDiffer {
                odoo: &odoo,
                theirs: &theirs,
                difference: &difference,
                currency: &currency,
            },
        },
    );
    Ok(Some(diff))
}

/// Replaces the lines of a quotation with the marketplace's current ones.
pub async fn replace_lines(
    odoo: &OdooClient,
    store: &Store,
    order_id: i64,
    order: &InboundOrder,
) -> Result<Option<String>, JobError> {
    let basis = match taxes_included(odoo, &order.terms).await? {
        Ok(included) => order.terms.basis(included),
        Err(reason) => return Ok(Some(reason)),
    };
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
        cmds.push(line_command(m.odoo_id, line, &order.terms, basis));
    }
    cmds.extend(extra_lines(order, basis));
    odoo.write(
        "sale.order",
        &[order_id],
        Value::record([("order_line", Value::Array(cmds))]),
    )
    .await
    .map_err(|e| odoo_job_error(&e))?;
    Ok(None)
}

/// The Odoo order's state and total.
pub async fn read_order(odoo: &OdooClient, id: i64) -> Result<(String, Decimal), JobError> {
    read_orders(odoo, &[id]).await?.remove(&id).ok_or_else(|| {
        JobError::new(
            RetryClass::Permanent,
            format!("sale.order {id} no longer exists in Odoo"),
        )
    })
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

/// The customer's delivery contact at this address, found or created. The country is an
/// optional part: if Odoo refuses to look it up, the contact is made without it (said once).
async fn delivery_contact(
    odoo: &OdooClient,
    store: &Store,
    channel: &'static str,
    parent: i64,
    a: &Address,
) -> Result<i64, JobError> {
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
        let part = OptionalPart::new(store, channel, "delivery country");
        match odoo
            .search(
                "res.country",
                &Domain::all().and("code", "=", code.to_ascii_uppercase()),
                Some(1),
            )
            .await
        {
            Ok(country) => {
                part.available();
                if let Some(&c) = country.first() {
                    vals.push(("country_id", Value::Int(c)));
                }
            }
            Err(e) if e.is_unreachable() => return Err(odoo_job_error(&e)),
            Err(e) => part.unavailable(&format!(
                "Odoo refused to look up countries ({e}); delivery contacts are made without their country"
            )),
        }
    }
    if let Some(company) = odoo.company() {
        vals.push(("company_id", Value::Int(company)));
    }
    Ok(odoo
        .create("res.partner", vec![Value::record(vals)])
        .await
        .map_err(|e| odoo_job_error(&e))?[0])
}

/// A new customer's partner: in the configured company; its second number in `mobile` where
/// Odoo has that field, else in `phone` when the first is missing (Odoo 19 has no `mobile`).
fn partner_vals(c: &Customer, reference: &str, company: Option<i64>, mobile_field: bool) -> Value {
    let mut vals = vec![
        ("name", Value::from(c.name.as_str())),
        ("ref", Value::from(reference)),
        ("customer_rank", Value::Int(1)),
    ];
    let (phone, mobile) = match mobile_field {
        true => (c.phone.as_ref(), c.mobile.as_ref()),
        false => (c.phone.as_ref().or(c.mobile.as_ref()), None),
    };
    for (k, v) in [
        ("phone", phone),
        ("mobile", mobile),
        ("email", c.email.as_ref()),
        ("street", c.street.as_ref()),
        ("comment", c.notes.as_ref()),
    ] {
        if let Some(v) = v {
            vals.push((k, Value::from(v.as_str())));
        }
    }
    if let Some(company) = company {
        vals.push(("company_id", Value::Int(company)));
    }
    Value::record(vals)
}

/// The Odoo partners of these orders' customers, keyed by (channel, customer key): found by
/// mapping, then by `ref` = `<channel>:<key>` in one search, the rest created in one call.
async fn customers(
    odoo: &OdooClient,
    store: &Store,
    orders: &[&InboundOrder],
) -> Result<std::collections::HashMap<(&'static str, String), i64>, JobError> {
    let mut found = std::collections::HashMap::new();
    let mut missing: Vec<(&'static str, &Customer)> = Vec::new();
    let mobile_field = orders.iter().all(|o| o.terms.partner_mobile);
    for o in orders {
        let key = (o.channel, o.customer.key.clone());
        if found.contains_key(&key)
            || missing
                .iter()
                .any(|(ch, c)| *ch == o.channel && c.key == o.customer.key)
        {
            continue;
        }
        match mapping::by_external(store, o.channel, "partner", &o.customer.key)
            .map_err(store_err)?
        {
            Some(m) => {
                found.insert(key, m.odoo_id);
            }
            None => missing.push((o.channel, &o.customer)),
        }
    }
    if missing.is_empty() {
        return Ok(found);
    }
    let refs: Vec<String> = missing
        .iter()
        .map(|(ch, c)| format!("{ch}:{}", c.key))
        .collect();
    let rows = odoo
        .search_read(
            "res.partner",
            &Domain::all().and(
                "ref",
                "in",
                refs.iter().map(String::as_str).collect::<Vec<_>>(),
            ),
            &["ref"],
            SearchOpts::default(),
        )
        .await
        .map_err(|e| odoo_job_error(&e))?;
    let mut by_ref: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
    for row in rows {
        if let (Some(id), Some(r)) = (
            row.get("id").and_then(Value::as_i64),
            row.get("ref").and_then(Value::as_str),
        ) {
            by_ref.entry(r.to_string()).or_insert(id);
        }
    }
    let mut to_create = Vec::new();
    for ((ch, c), reference) in missing.iter().zip(&refs) {
        match by_ref.get(reference) {
            Some(&id) => {
                link(store, ch, "partner", "res.partner", id, &c.key)?;
                found.insert((*ch, c.key.clone()), id);
            }
            None => to_create.push((*ch, *c, reference.as_str())),
        }
    }
    if to_create.is_empty() {
        return Ok(found);
    }
    let vals: Vec<Value> = to_create
        .iter()
        .map(|(_, c, reference)| partner_vals(c, reference, odoo.company(), mobile_field))
        .collect();
    let ids = odoo
        .create("res.partner", vals)
        .await
        .map_err(|e| odoo_job_error(&e))?;
    for ((ch, c, _), id) in to_create.iter().zip(ids) {
        link(store, ch, "partner", "res.partner", id, &c.key)?;
        found.insert((*ch, c.key.clone()), id);
    }
    Ok(found)
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

#[cfg(test)]
mod tests {
    /// Odoo 19 has no `res.partner.mobile` (fixtures/odoo19/partner-phone.json): a second
    /// number goes in `phone` when there is no first, and never in a field Odoo refuses.
    #[test]
    fn a_customer_s_second_number_goes_where_odoo_has_a_field_for_it() {
        let c = |phone: Option<&str>| Customer {
            key: "R1".into(),
            name: "Retailer".into(),
            phone: phone.map(str::to_string),
            mobile: Some("01012345678".into()),
            email: None,
            street: None,
            notes: None,
            shipping: None,
        };
        let fields = |v: Value| serde_json::Value::from(v);
        let on17 = fields(partner_vals(&c(Some("0222")), "cartona:R1", None, true));
        assert_eq!(
            (on17["phone"].as_str(), on17["mobile"].as_str()),
            (Some("0222"), Some("01012345678"))
        );
        let on19 = fields(partner_vals(&c(None), "cartona:R1", Some(2), false));
        assert_eq!(on19["phone"], "01012345678");
        assert!(on19.get("mobile").is_none(), "{on19}");
        assert_eq!(on19["company_id"], 2);
        let both = fields(partner_vals(&c(Some("0222")), "cartona:R1", None, false));
        assert_eq!(both["phone"], "0222");
        assert!(both.get("mobile").is_none());
    }

    use super::*;

    fn order(charges: Vec<Charge>, terms: Terms) -> InboundOrder {
        InboundOrder {
            channel: "medusa",
            external_id: "order_1".into(),
            reference: "MEDUSA-1".into(),
            origin: "Medusa #1".into(),
            customer: Customer {
                key: "cus_1".into(),
                name: "A".into(),
                phone: None,
                mobile: None,
                email: None,
                street: None,
                notes: None,
                shipping: None,
            },
            lines: vec![InboundLine {
                discount: Decimal::new(1_000, 3),
                ..InboundLine::plain("SKU-1".into(), "One".into(), Decimal::ONE, Decimal::TEN)
            }],
            charges,
            total: None,
            currency: "KWD".into(),
            note: None,
            terms,
        }
    }

    fn charge(amount: i64) -> Charge {
        Charge {
            name: "Standard Shipping".into(),
            amount: Decimal::new(amount, 3),
            tax_included: false,
            tax_rate: Decimal::ZERO,
        }
    }

    /// The shipping and discount lines beside the products: a paid method is a delivery line
    /// of the shipping product; a free one adds nothing unless asked (then a zero line); no
    /// shipping product, no line; the discounts one negative line of the discount product.
    #[test]
    fn shipping_and_discount_lines_follow_the_settings() {
        let terms = |free: bool, discount: Option<i64>| Terms {
            shipping_product: Some(45),
            free_shipping_line: free,
            discount_product: discount,
            is_delivery: true,
            line_taxes: "tax_id",
            ..Default::default()
        };
        let vals = |l: &Value| serde_json::Value::from(l.clone())[2].clone();
        let lines = extra_lines(
            &order(vec![charge(1_500), charge(0)], terms(false, None)),
            Basis::Net,
        );
        assert_eq!(lines.len(), 1, "the free method adds nothing");
        let ship = vals(&lines[0]);
        assert_eq!(ship["product_id"], 45);
        assert_eq!(ship["is_delivery"], true);
        assert_eq!(ship["price_unit"].as_f64(), Some(1.5));
        let lines = extra_lines(&order(vec![charge(0)], terms(true, None)), Basis::Net);
        assert_eq!(lines.len(), 1, "a zero line when asked");
        assert_eq!(vals(&lines[0])["price_unit"].as_f64(), Some(0.0));
        let none = Terms {
            shipping_product: None,
            ..terms(false, None)
        };
        assert!(extra_lines(&order(vec![charge(1_500)], none), Basis::Net).is_empty());
        let lines = extra_lines(&order(vec![], terms(false, Some(46))), Basis::Net);
        let d = vals(&lines[0]);
        assert_eq!(
            (d["product_id"].as_i64(), d["price_unit"].as_f64()),
            (Some(46), Some(-1.0))
        );
    }
}
