//! Cartona (B2B marketplace, Egypt): the supplier-integrations API.
//!
//! - Catalog out (`cartona.catalog` every `schedule.catalog_poll`, `cartona.reconcile` on
//!   `schedule.reconcile`): Odoo products -> `supplier-product/bulk-update` for mapped products,
//!   only what differs from what was last accepted, `batch_size` per request.
//! - Orders in (`cartona.orders` every `schedule.orders_poll`): `order/pull-orders` pages ->
//!   inbox -> one `order` job per order -> Odoo sale order (shared `sync::order_import`) ->
//!   Cartona status applied -> acknowledged with `synced`.
//! - Status out (`cartona.status` every `schedule.status_poll`): Odoo confirmations, deliveries
//!   and cancellations -> `order/update-order-status` (single endpoint when an OTP goes along).
//! - `map import` matches Cartona's products to Odoo's (see [`matching`]).

pub mod jobs;
pub mod matching;
pub mod wire;

use crate::channel::http::{ChannelError, HttpClient};
use crate::channel::{Started, StreamKind};
use crate::config::{CartonaSettings, ChannelConfig, Config};
use crate::daemon::scheduler::StreamOutcome;
use crate::daemon::workers::{JobError, JobHandler};
use crate::odoo::profile::Profile;
use crate::odoo::{Domain, OdooClient, SearchOpts, Value};
use crate::retry::RetryClass;
use crate::store::queue::{self, Job, NewJob, Payload};
use crate::store::synclog::{self, Entry, Level};
use crate::store::{inbox, mapping, orders, streams, Store};
use crate::sync::catalog::{
    poll_start, with_overlap, CatalogReader, ProductSnapshot, Unpriced, EPOCH,
};
use crate::sync::order_import::{
    self, store_err, Customer, Imported, InboundLine, InboundOrder, StatusAction,
};
use futures_util::future::BoxFuture;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use std::collections::HashMap;
use std::sync::Arc;
use wire::{Order, ProductUpdate, StatusUpdate};

pub const CHANNEL: &str = "cartona";
/// Cartona sells in Egyptian pounds.
pub const CURRENCY: &str = "EGP";
const NEEDS_OTP: &str = "delivered in Odoo; Cartona needs the retailer's OTP: run `marketsync order otp <reference> <otp>`";

pub use crate::channel::kit::fnv;

/// The Cartona API client: `AuthorizationToken: <token>` (no "Bearer"), JSON both ways.
pub fn client(cfg: &ChannelConfig) -> Result<HttpClient, String> {
    let (token, base) = crate::channel::kit::token_and_base(cfg)?;
    Ok(HttpClient::new(
        "Cartona",
        base,
        cfg.timeout,
        vec![("AuthorizationToken", token)],
    ))
}

/// Orders imported together (one search, one create, one read for the batch).
const ORDER_BATCH: usize = 50;

/// A job's open inbox event and its order (with the order in Odoo's terms), or why it cannot
/// be read.
struct Loaded {
    event: inbox::Event,
    order: Result<(Order, InboundOrder), String>,
}

/// An order in Odoo, waiting for its acknowledgement to Cartona.
struct AwaitingAck {
    hashed_id: String,
    event_id: i64,
    /// The sync-log line once acknowledged.
    note: String,
}

/// What a batch learned about its orders before each goes through its own flow.
#[derive(Default)]
struct Prefetched {
    /// Odoo orders created by this batch.
    created: std::collections::HashSet<i64>,
    /// id -> (state, amount_untaxed).
    read: std::collections::HashMap<i64, (String, rust_decimal::Decimal)>,
}

pub struct Cartona {
    pub api: HttpClient,
    pub settings: CartonaSettings,
    pub batch_size: usize,
    pub odoo: OdooClient,
    pub store: Store,
    pub profile: Profile,
    pub reader: CatalogReader,
}

/// How Cartona reads Odoo's catalog (also what `check --estimate` times).
pub fn reader(settings: &crate::config::CartonaSettings, odoo: OdooClient) -> CatalogReader {
    CatalogReader {
        odoo,
        stock_field: settings.stock_field.clone(),
        warehouse_id: settings.warehouse_id,
        pricelist_id: settings.pricelist_id,
        currency: Some(CURRENCY.into()),
        extra_fields: Vec::new(),
        known_rules: Default::default(),
    }
}

/// Starts the channel: its job handler and its four streams.
pub fn start(
    config: &Config,
    cfg: &ChannelConfig,
    odoo: OdooClient,
    store: Store,
    profile: Profile,
) -> Result<Started, String> {
    let settings = cfg
        .cartona
        .clone()
        .ok_or("channels.cartona has no Cartona settings")?;
    let reader = reader(&settings, odoo.clone());
    let cartona = Arc::new(Cartona {
        api: client(cfg)?,
        settings,
        batch_size: cfg.batch_size as usize,
        odoo,
        store,
        profile,
        reader,
    });
    Ok(crate::channel::started(
        CHANNEL,
        cartona,
        cfg.concurrency,
        &config.schedule,
    ))
}

fn job_err(e: ChannelError) -> JobError {
    e.into()
}

fn log(store: &Store, level: Level, op: &str, message: &str, records: Option<i64>) {
    crate::channel::log(store, CHANNEL, level, op, message, records)
}

// ---------------------------------------------------------------------------------------------
// Catalog out
// ---------------------------------------------------------------------------------------------

impl Cartona {
    /// What Cartona should hold for a product.
    pub fn desired(&self, p: &ProductSnapshot, supplier_product_id: &str) -> ProductUpdate {
        let stock =
            (p.stock.floor() - Decimal::from(self.settings.stock_buffer)).max(Decimal::ZERO);
        let qty = stock.to_i64().unwrap_or(0);
        let published = p.active && p.sale_ok;
        ProductUpdate {
            supplier_product_id: supplier_product_id.to_string(),
            selling_price: p
                .price
                .round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
                .to_string(),
            available_stock_quantity: if published { qty } else { 0 },
            in_stock: published && qty > 0,
            is_published: published,
            min_order: self.settings.min_order,
            max_order: self.settings.max_order,
        }
    }

    /// The mapped products whose desired state differs from what Cartona last accepted and
    /// from what is already queued for it.
    fn plan(
        &self,
        products: &[ProductSnapshot],
        mappings: &HashMap<i64, mapping::Mapping>,
    ) -> Vec<PlannedItem> {
        products
            .iter()
            .filter(|p| p.unpriced.is_none())
            .filter_map(|p| {
                let m = mappings.get(&p.id)?;
                let mut update = self.desired(p, &m.external_id);
                // Keep the key stable: format the price with two decimals ("12.50").
                if let Ok(d) = update.selling_price.parse::<Decimal>() {
                    update.selling_price = format!("{d:.2}");
                }
                let hash = update.hash();
                let (sent, queued) = (m.last_hash.as_deref(), m.planned_hash.as_deref());
                // Nothing to do when this value is queued, or was sent and nothing else is
                // queued since. A value that went back to what was sent while another one
                // waits is queued again: the waiting one must not have the last word.
                let settled = sent == Some(hash.as_str()) && queued.is_none_or(|q| Some(q) == sent);
                if settled || queued == Some(hash.as_str()) {
                    return None;
                }
                Some(PlannedItem {
                    mapping_id: m.id,
                    odoo_id: p.id,
                    hash,
                    update,
                })
            })
            .collect()
    }

    /// The mappings of these products only: a poll never loads the whole table.
    fn mappings(
        &self,
        products: &[ProductSnapshot],
    ) -> Result<HashMap<i64, mapping::Mapping>, String> {
        let ids: Vec<i64> = products.iter().map(|p| p.id).collect();
        mapping::by_odoo_many(&self.store, CHANNEL, "product", &ids).map_err(|e| e.to_string())
    }

    /// Queues the planned updates in jobs of [`JOB_REQUESTS`] bulk requests of `batch_size`
    /// products and records each product's queued value, in one transaction: a crash keeps
    /// both or neither.
    fn enqueue(&self, items: Vec<PlannedItem>) -> Result<usize, String> {
        if items.is_empty() {
            return Ok(0);
        }
        let jobs: Vec<NewJob> = items
            .chunks(self.batch_size.max(1) * JOB_REQUESTS)
            .map(|chunk| {
                let hashes: Vec<&str> = chunk.iter().map(|i| i.hash.as_str()).collect();
                NewJob {
                    channel: CHANNEL.into(),
                    kind: "product".into(),
                    key: format!(
                        "{CHANNEL}:products:{}-{}:{}",
                        chunk[0].odoo_id,
                        chunk[chunk.len() - 1].odoo_id,
                        fnv(&hashes.join(","))
                    ),
                    payload: Payload::of(&ProductJobRef { items: chunk }),
                    correlation_id: None,
                }
            })
            .collect();
        let planned: Vec<(i64, &str)> = items
            .iter()
            .map(|i| (i.mapping_id, i.hash.as_str()))
            .collect();
        self.store
            .write(|tx| {
                queue::enqueue_in(tx, &jobs)?;
                mapping::set_planned_in(tx, &planned)
            })
            .map_err(|e| e.to_string())?;
        Ok(items.len())
    }

    async fn catalog_full(&self) -> Result<StreamOutcome, String> {
        let started = poll_start();
        let mut planned = 0usize;
        let mut failure = None;
        let mut unpriced = Unpriced::default();
        self.reader
            .read_all(|page| {
                unpriced.note(&page);
                let planned_page = self
                    .mappings(&page)
                    .and_then(|m| self.enqueue(self.plan(&page, &m)));
                match planned_page {
                    Ok(n) => planned += n,
                    Err(e) => failure = Some(e),
                }
            })
            .await
            .map_err(|e| format!("reading the catalog from Odoo: {e}"))?;
        if let Some(e) = failure {
            return Err(e);
        }
        unpriced.verdict()?;
        Ok(StreamOutcome {
            cursor: Some(started),
            note: (planned > 0).then(|| {
                (
                    format!("full read: {planned} product update(s) to send"),
                    planned as i64,
                )
            }),
        })
    }

    async fn catalog_changes(&self) -> Result<StreamOutcome, String> {
        let cursor = streams::get(&self.store, &format!("{CHANNEL}.catalog"))
            .map_err(|e| e.to_string())?
            .and_then(|s| s.cursor);
        // A deleted pricelist rule leaves no trace to find its products by: read them all.
        let rules = self
            .reader
            .pricelist_rules()
            .await
            .map_err(|e| format!("reading the pricelist's rules from Odoo: {e}"))?;
        let outcome = match cursor.filter(|_| !rules.deleted) {
            None => self.catalog_full().await?,
            Some(cursor) => self.catalog_since(&cursor).await?,
        };
        self.reader.remember_rules(rules);
        Ok(outcome)
    }

    async fn catalog_since(&self, cursor: &str) -> Result<StreamOutcome, String> {
        let started = poll_start();
        let since = with_overlap(cursor, self.settings.poll_overlap);
        let products = self
            .reader
            .changed_since(&since)
            .await
            .map_err(|e| format!("reading changes from Odoo: {e}"))?;
        let queued = self.enqueue(self.plan(&products, &self.mappings(&products)?))?;
        // The others went out; the cursor stays until these have a price.
        Unpriced::among(&products).verdict()?;
        Ok(StreamOutcome {
            cursor: Some(started),
            note: (queued > 0)
                .then(|| (format!("{queued} product update(s) to send"), queued as i64)),
        })
    }

    /// Sends one job's products, `batch_size` per bulk request. Products queued again since (a
    /// newer value) are left to their newer job. If Cartona refuses a request, its products are
    /// sent one by one; the ones it refuses get a job of their own, which fails with Cartona's
    /// reason. If a request fails (retried later), what went through so far is recorded and the
    /// job keeps only the rest.
    async fn push_job(&self, job: &Job) -> Result<(), JobError> {
        let items: Vec<PlannedItem> = match job.payload.parse::<ProductJob>() {
            Ok(batch) => Ok(batch.items),
            // A job queued by an older marketsync: one product.
            Err(e) => job
                .payload
                .parse::<PlannedItem>()
                .map(|i| vec![i])
                .map_err(|_| e),
        }
        .map_err(|e| {
            JobError::new(
                RetryClass::Permanent,
                format!(
                    "job {} has a payload this marketsync cannot read: {e}",
                    job.id
                ),
            )
        })?;
        let ids: Vec<i64> = items.iter().map(|i| i.mapping_id).collect();
        let planned = self
            .store
            .run(move |s| mapping::planned_hashes(s, &ids))
            .await
            .map_err(store_err)?;
        let live: Vec<&PlannedItem> = items
            .iter()
            .filter(|i| planned.get(&i.mapping_id).is_none_or(|h| *h == i.hash))
            .collect();
        fn body<'a>(items: &[&'a PlannedItem]) -> Vec<&'a ProductUpdate> {
            items.iter().map(|i| &i.update).collect()
        }
        let mut accepted: Vec<&PlannedItem> = Vec::new();
        let mut refused: Vec<&PlannedItem> = Vec::new();
        let mut requests = 0usize;
        for (n, chunk) in live.chunks(self.batch_size.max(1)).enumerate() {
            let failure = match self
                .api
                .post("supplier-product/bulk-update", &body(chunk))
                .await
            {
                Ok(_) => {
                    requests += 1;
                    accepted.extend_from_slice(chunk);
                    None
                }
                Err(e) if e.status == Some(400) && chunk.len() > 1 => {
                    requests += 1;
                    let mut failure = None;
                    for (k, item) in chunk.iter().enumerate() {
                        match self
                            .api
                            .post("supplier-product/bulk-update", &body(&[*item]))
                            .await
                        {
                            Ok(_) => accepted.push(*item),
                            Err(e) if e.status == Some(400) => refused.push(*item),
                            Err(e) => {
                                failure = Some((e, &chunk[k..]));
                                break;
                            }
                        }
                        requests += 1;
                    }
                    failure
                }
                Err(e) if e.status == Some(400) && live.len() > 1 => {
                    // A one-product request refused: that product's own job says why.
                    requests += 1;
                    refused.extend_from_slice(chunk);
                    None
                }
                Err(e) => Some((e, chunk)),
            };
            if let Some((e, unsent)) = failure {
                let rest: Vec<&PlannedItem> = unsent
                    .iter()
                    .copied()
                    .chain(live.iter().skip((n + 1) * self.batch_size.max(1)).copied())
                    .collect();
                if !accepted.is_empty() || !refused.is_empty() {
                    let rest = Payload::of(&ProductJobRef { items: &rest });
                    self.record(job.id, &accepted, &refused, Outcome::Rest(rest))
                        .await?;
                }
                return Err(job_err(e));
            }
        }
        let line = if refused.is_empty() {
            (!accepted.is_empty()).then(|| {
                (
                    Level::Info,
                    format!(
                        "pushed {} product(s) in {requests} request(s)",
                        accepted.len()
                    ),
                )
            })
        } else {
            Some((
                Level::Warn,
                format!(
                    "Cartona refused {} of {} product(s) (each waits in a job of its own, with the reason); {} pushed",
                    refused.len(),
                    live.len(),
                    accepted.len()
                ),
            ))
        };
        self.record(job.id, &accepted, &refused, Outcome::Done(line))
            .await
    }

    /// Records what a product job did, in one transaction: what Cartona accepted, a job of its
    /// own for each product it refused (so each fails with Cartona's reason), and then either
    /// the job done with its sync-log line (see `records_completion`) or, for a job that failed
    /// part way, the job left with only the products still to send.
    async fn record(
        &self,
        job: i64,
        accepted: &[&PlannedItem],
        refused: &[&PlannedItem],
        outcome: Outcome,
    ) -> Result<(), JobError> {
        let sent: Vec<(i64, String)> = accepted
            .iter()
            .map(|i| (i.mapping_id, i.hash.clone()))
            .collect();
        let singles: Vec<NewJob> = refused
            .iter()
            .map(|i| NewJob {
                channel: CHANNEL.into(),
                kind: "product".into(),
                key: format!("{CHANNEL}:product:{}", i.odoo_id),
                payload: Payload::of(&ProductJobRef { items: &[i] }),
                correlation_id: None,
            })
            .collect();
        let n = sent.len() as i64;
        self.store
            .run(move |s| {
                s.write(|tx| {
                    mapping::mark_sent_in(tx, &sent)?;
                    queue::enqueue_in(tx, &singles)?;
                    match &outcome {
                        Outcome::Rest(rest) => queue::set_payload_in(tx, job, rest),
                        Outcome::Done(line) => {
                            if let Some((level, text)) = line {
                                synclog::append_in(
                                    tx,
                                    Entry::new(*level, "catalog.push", text)
                                        .channel(CHANNEL)
                                        .records(n),
                                )?;
                            }
                            queue::complete_in(tx, &[job])
                        }
                    }
                })
            })
            .await
            .map_err(store_err)
    }
}

/// How a product job ends: done (with what to tell the operator), or failed part way with
/// the payload of what is left.
enum Outcome {
    Done(Option<(Level, String)>),
    Rest(Payload),
}

/// Bulk requests' worth of products in one product job: fewer, larger jobs cost less to
/// queue, claim and record, with the same requests on the wire.
const JOB_REQUESTS: usize = 10;

/// The payload of a product job.
#[derive(serde::Deserialize)]
struct ProductJob {
    items: Vec<PlannedItem>,
}

/// [`ProductJob`] to write, from borrowed items.
#[derive(serde::Serialize)]
struct ProductJobRef<'a, T: serde::Serialize> {
    items: &'a [T],
}

/// One product update queued for Cartona.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct PlannedItem {
    mapping_id: i64,
    odoo_id: i64,
    /// Hash of `update`, as recorded in the mapping once Cartona accepts it.
    hash: String,
    update: ProductUpdate,
}

// ---------------------------------------------------------------------------------------------
// Orders in
// ---------------------------------------------------------------------------------------------

/// What a status does: the operator's override (`channels.cartona.status_actions`), or the default.
pub fn action_for(
    status: &str,
    overrides: &std::collections::BTreeMap<String, String>,
) -> StatusAction {
    match overrides.get(status).map(String::as_str) {
        Some("nothing") => StatusAction::Nothing,
        Some("confirm") => StatusAction::Confirm,
        Some("confirm_and_reserve") => StatusAction::ConfirmAndReserve,
        Some("deliver") => StatusAction::Deliver,
        Some("cancel") => StatusAction::Cancel,
        Some("flag") => StatusAction::Flag,
        _ => status_action(status),
    }
}

/// The default action for each Cartona status (seed 002, API notes).
pub fn status_action(status: &str) -> StatusAction {
    match status {
        "approved" => StatusAction::Confirm,
        "assigned_to_salesman" => StatusAction::ConfirmAndReserve,
        "delivered" => StatusAction::Deliver,
        "cancelled_by_retailer" | "cancelled_by_supplier" | "cancelled" => StatusAction::Cancel,
        "returned" => StatusAction::Flag,
        _ => StatusAction::Nothing,
    }
}

/// How far along a status is, so we never send Cartona something behind what it knows.
fn rank(status: &str) -> u8 {
    match status {
        "pending" | "editing" => 0,
        "approved" => 1,
        "assigned_to_salesman" => 2,
        "delivered" => 3,
        "returned" | "cancelled_by_retailer" | "cancelled_by_supplier" | "cancelled" => 4,
        _ => 0,
    }
}

/// The next status to send on the way to `target`: `approved` before `delivered` when Cartona
/// has not heard it yet (it refuses to deliver a pending order), else the target; `None` once
/// the order stands at or past the target, by what we sent or what Cartona reported.
fn next_step<'a>(known: &orders::ChannelOrder, target: &'a str) -> Option<&'a str> {
    let reached = rank(known.marketplace_status.as_deref().unwrap_or("pending"))
        .max(rank(known.sent_status.as_deref().unwrap_or("pending")));
    if rank(target) <= reached {
        return None;
    }
    if target == "delivered" && reached < rank("approved") {
        return Some("approved");
    }
    Some(target)
}

pub fn reference(hashed_id: &str) -> String {
    format!("CARTONA-{hashed_id}")
}

fn inbound(order: &Order) -> InboundOrder {
    let r = &order.retailer;
    InboundOrder {
        channel: CHANNEL,
        external_id: order.hashed_id.clone(),
        reference: reference(&order.hashed_id),
        origin: format!(
            "Cartona {}",
            order.receipt_id.as_deref().unwrap_or(&order.hashed_id)
        ),
        customer: Customer {
            key: r.retailer_code.clone(),
            name: r.retailer_name.clone(),
            phone: r.retailer_number.clone(),
            mobile: r.retailer_number2.clone(),
            email: None,
            street: r.retailer_address.clone(),
            notes: r.address_notes.clone(),
            shipping: None,
        },
        lines: order
            .order_details
            .iter()
            .map(|d| InboundLine {
                product_key: d
                    .supplier_product_id
                    .clone()
                    .or_else(|| d.internal_product_id.clone())
                    .unwrap_or_default(),
                description: d.product_name.clone().unwrap_or_default(),
                quantity: d.amount,
                unit_price: d.selling_price,
            })
            .collect(),
        total: order.total_price,
        note: order.note_message.clone(),
    }
}

/// The lines of an order, for telling a real edit from a status change.
fn lines_hash(order: &Order) -> String {
    let lines: Vec<String> = order
        .order_details
        .iter()
        .map(|d| {
            format!(
                "{:?}|{:?}|{}|{}",
                d.supplier_product_id,
                d.internal_product_id,
                d.amount.normalize(),
                d.selling_price.normalize()
            )
        })
        .collect();
    fnv(&lines.join(";"))
}

impl Cartona {
    /// Pulls orders page by page into the inbox, one `order` job per changed order.
    async fn pull_orders(&self) -> Result<StreamOutcome, String> {
        let now = chrono::Utc::now();
        let from = now - chrono::Duration::from_std(self.settings.pull_window).unwrap_or_default();
        let per_page = self.settings.page_size as usize;
        let (mut pulled, mut new) = (0usize, 0usize);
        let mut previous_first: Option<String> = None;
        for page in 1..=1000u32 {
            let query = [
                ("page", page.to_string()),
                ("per_page", per_page.to_string()),
                ("from", from.format("%Y-%m-%dT%H:%M:%S").to_string()),
                ("to", now.format("%Y-%m-%dT%H:%M:%S").to_string()),
            ];
            let body = self
                .api
                .get("order/pull-orders", &query)
                .await
                .map_err(|e| e.message)?;
            let serde_json::Value::Array(rows) = body else {
                return Err(format!(
                    "Cartona's order/pull-orders answered something other than a list: {}",
                    crate::odoo::transport::summarize_body(&body.to_string())
                ));
            };
            let first = rows.first().map(|r| {
                r.get("hashed_id")
                    .map(|v| v.to_string())
                    .unwrap_or_default()
            });
            if page > 1 && first.is_some() && first == previous_first {
                log(
                    &self.store,
                    Level::Warn,
                    "orders.pull",
                    "Cartona returned the same page twice; stopped paging",
                    None,
                );
                break;
            }
            previous_first = first;
            pulled += rows.len();
            for raw in &rows {
                if self.receive_order(raw)? {
                    new += 1;
                }
            }
            if rows.len() < per_page {
                break;
            }
        }
        Ok(StreamOutcome {
            cursor: None,
            note: (new > 0).then(|| {
                (
                    format!("pulled {pulled} order(s), {new} new or changed"),
                    new as i64,
                )
            }),
        })
    }

    /// Commits one pulled order to the inbox; true when it is new or changed.
    fn receive_order(&self, raw: &serde_json::Value) -> Result<bool, String> {
        let payload_hash = fnv(&raw.to_string());
        let hashed_id = match raw.get("hashed_id") {
            Some(serde_json::Value::String(s)) if !s.is_empty() => s.clone(),
            Some(serde_json::Value::Number(n)) => n.to_string(),
            _ => {
                // Kept for the operator, set aside with the reason; the other orders go on.
                let id = format!("malformed:{payload_hash}");
                if let inbox::Received::New(event) =
                    inbox::receive(&self.store, CHANNEL, &id, "order", None, raw)
                        .map_err(|e| e.to_string())?
                {
                    let reason =
                        "a Cartona order without a hashed_id was received; it cannot be imported";
                    inbox::park(&self.store, event, reason).map_err(|e| e.to_string())?;
                    log(&self.store, Level::Error, "orders.pull", reason, None);
                }
                return Ok(false);
            }
        };
        let status = raw.get("status").and_then(|s| s.as_str()).unwrap_or("?");
        let event_id = format!("{hashed_id}:{status}:{payload_hash}");
        let job = NewJob {
            channel: CHANNEL.into(),
            kind: "order".into(),
            key: format!("{CHANNEL}:order:{hashed_id}"),
            payload: serde_json::json!({ "hashed_id": hashed_id }).into(),
            correlation_id: Some(reference(&hashed_id)),
        };
        // The event and its job are committed together: a crash between them would strand it.
        let received = inbox::receive_with_job(
            &self.store,
            CHANNEL,
            &event_id,
            "order",
            Some(&hashed_id),
            raw,
            &job,
        )
        .map_err(|e| e.to_string())?;
        Ok(matches!(received, inbox::Received::New(_)))
    }

    /// Brings the newest received version of one order into Odoo.
    /// Imports a batch of orders: the new ones are created together and every order's state
    /// and total read in one call (`order_import::import_many`), then each goes through the
    /// rest of its flow alone.
    async fn import_orders(&self, jobs: &[Job]) -> Vec<Result<(), JobError>> {
        let loaded: Vec<Result<Option<Loaded>, JobError>> =
            jobs.iter().map(|j| self.load(j)).collect();
        let refs: Vec<&InboundOrder> = loaded
            .iter()
            .filter_map(|l| match l {
                Ok(Some(Loaded {
                    order: Ok((order, inbound)),
                    ..
                })) if order.status != "editing" => Some(inbound),
                _ => None,
            })
            .collect();
        let mut pre = Prefetched::default();
        let mut ids = Vec::new();
        for r in order_import::import_many(&self.odoo, &self.store, &refs).await {
            match r {
                Ok(Imported::Created(id)) => {
                    pre.created.insert(id);
                    ids.push(id);
                }
                Ok(Imported::Existing(id)) => ids.push(id),
                // Parked or failed: the order's own pass finds out again and says why.
                _ => {}
            }
        }
        // If this read fails, each order reads its own.
        pre.read = order_import::read_orders(&self.odoo, &ids)
            .await
            .unwrap_or_default();
        let mut done = Vec::with_capacity(jobs.len());
        for (job, loaded) in jobs.iter().zip(loaded) {
            done.push(match loaded {
                Ok(loaded) => self.import_order_with(job, loaded, &pre).await,
                Err(e) => Err(e),
            });
        }
        // One acknowledgement for the batch's imported orders.
        let ready: Vec<&AwaitingAck> = done
            .iter()
            .filter_map(|r| r.as_ref().ok().and_then(Option::as_ref))
            .collect();
        let acked = self.acknowledge(&ready).await;
        done.into_iter()
            .map(|r| match r {
                Ok(Some(_)) => acked.clone(),
                Ok(None) => Ok(()),
                Err(e) => Err(e),
            })
            .collect()
    }

    async fn import_order(&self, job: &Job) -> Result<(), JobError> {
        let loaded = self.load(job)?;
        match self
            .import_order_with(job, loaded, &Prefetched::default())
            .await?
        {
            Some(imported) => self.acknowledge(&[&imported]).await,
            None => Ok(()),
        }
    }

    /// Tells Cartona these orders are in Odoo (`synced`: it stops offering them), then closes
    /// their events. Only orders whose Odoo order exists get here.
    async fn acknowledge(&self, orders: &[&AwaitingAck]) -> Result<(), JobError> {
        if orders.is_empty() {
            return Ok(());
        }
        let acks: Vec<StatusUpdate> = orders
            .iter()
            .map(|o| StatusUpdate {
                hashed_id: o.hashed_id.clone(),
                status: "synced".into(),
                cancellation_reason: None,
                retailer_otp: None,
            })
            .collect();
        self.api
            .post("order/update-order-status", &serde_json::json!(acks))
            .await
            .map_err(job_err)?;
        for o in orders {
            inbox::close_subject(&self.store, CHANNEL, &o.hashed_id, o.event_id)
                .map_err(store_err)?;
            log(&self.store, Level::Info, "orders.import", &o.note, Some(1));
        }
        Ok(())
    }

    /// The job's order as the inbox holds it now (`None`: already processed), parsed.
    fn load(&self, job: &Job) -> Result<Option<Loaded>, JobError> {
        let jobs::ImportOrder { hashed_id } = jobs::parse(job)?;
        Ok(inbox::latest_open(&self.store, CHANNEL, &hashed_id)
            .map_err(store_err)?
            .map(|event| Loaded {
                order: Order::parse(&event.payload).map(|o| {
                    let i = inbound(&o);
                    (o, i)
                }),
                event,
            }))
    }

    /// Everything of an order's import but the acknowledgement; `None` when there is nothing to
    /// acknowledge (already processed, or left alone while the retailer edits it).
    async fn import_order_with(
        &self,
        job: &Job,
        loaded: Option<Loaded>,
        pre: &Prefetched,
    ) -> Result<Option<AwaitingAck>, JobError> {
        let jobs::ImportOrder { hashed_id } = jobs::parse(job)?;
        let Some(Loaded { event, order }) = loaded else {
            return Ok(None); // already processed
        };
        let (order, inbound) = match order {
            Ok(o) => o,
            Err(reason) => return self.park(event.id, &reason).map(|_| None),
        };
        let reference = reference(&order.hashed_id);
        orders::seen(
            &self.store,
            CHANNEL,
            &order.hashed_id,
            &reference,
            &order.status,
            order.delivered_by.as_deref(),
            order.needs_otp(),
        )
        .map_err(store_err)?;
        if order.status == "editing" {
            inbox::close_subject(&self.store, CHANNEL, &hashed_id, event.id).map_err(store_err)?;
            log(&self.store, Level::Info, "orders.import", &format!("order {hashed_id} is being edited by the retailer; left alone until it is pending again"), None);
            return Ok(None);
        }
        let known = orders::get(&self.store, CHANNEL, &order.hashed_id).map_err(store_err)?;
        let lines = lines_hash(&order);
        let (id, created) = match order_import::import(&self.odoo, &self.store, &inbound).await? {
            Imported::Parked(reason) => return self.park(event.id, &reason).map(|_| None),
            Imported::Created(id) => (id, true),
            Imported::Existing(id) => (id, pre.created.contains(&id)),
        };
        let (state, untaxed) = match pre.read.get(&id) {
            Some(known) => known.clone(),
            None => order_import::read_order(&self.odoo, id).await?,
        };
        if created {
            if let Some(total) = order.total_price {
                if total.normalize() != untaxed.normalize() {
                    log(
                        &self.store,
                        Level::Warn,
                        "orders.import",
                        &format!("order {hashed_id}: Odoo's untaxed total {untaxed} differs from Cartona's total_price {total}; check prices and discounts"),
                        None,
                    );
                }
            }
        } else if known
            .as_ref()
            .and_then(|k| k.payload_hash.as_deref())
            .is_some_and(|h| h != lines)
        {
            if matches!(state.as_str(), "draft" | "sent") {
                if let Some(problem) =
                    order_import::replace_lines(&self.odoo, &self.store, id, &inbound).await?
                {
                    return self
                        .park(
                            event.id,
                            &format!("order {hashed_id} was edited on Cartona, but {problem}"),
                        )
                        .map(|_| None);
                }
                log(&self.store, Level::Info, "orders.import", &format!("order {hashed_id} was edited on Cartona; the quotation's lines were updated"), None);
            } else {
                let why = "edited on Cartona after it was confirmed in Odoo: compare the lines and adjust the Odoo order";
                orders::set_attention(&self.store, CHANNEL, &hashed_id, Some(why))
                    .map_err(store_err)?;
                log(
                    &self.store,
                    Level::Warn,
                    "orders.import",
                    &format!("order {hashed_id} {why}"),
                    None,
                );
            }
        }
        let action = action_for(&order.status, &self.settings.status_actions);
        order_import::apply_status(&self.odoo, &self.profile, id, &state, action).await?;
        if action == StatusAction::Flag {
            let why = format!(
                "Cartona reports the order {}: handle it in Odoo",
                order.status
            );
            orders::set_attention(&self.store, CHANNEL, &hashed_id, Some(&why))
                .map_err(store_err)?;
            log(
                &self.store,
                Level::Warn,
                "orders.import",
                &format!("order {hashed_id}: {why}"),
                None,
            );
        }
        orders::set_odoo(&self.store, CHANNEL, &hashed_id, id, &lines).map_err(store_err)?;
        // Acknowledged by the caller, only now that the Odoo order exists.
        let verb = if created { "imported" } else { "updated" };
        Ok(Some(AwaitingAck {
            hashed_id: hashed_id.clone(),
            event_id: event.id,
            note: format!(
                "order {hashed_id} {verb} as sale.order {id} (Cartona status {})",
                order.status
            ),
        }))
    }

    fn park(&self, event: i64, reason: &str) -> Result<(), JobError> {
        inbox::park(&self.store, event, reason).map_err(store_err)?;
        log(&self.store, Level::Error, "orders.import", reason, None);
        Err(JobError::new(RetryClass::Permanent, reason))
    }
}

// ---------------------------------------------------------------------------------------------
// Status out
// ---------------------------------------------------------------------------------------------

impl Cartona {
    /// Finds Odoo-side changes of Cartona orders and queues the statuses Cartona must hear.
    async fn detect_status(&self) -> Result<StreamOutcome, String> {
        let name = format!("{CHANNEL}.status");
        let cursor = streams::get(&self.store, &name)
            .map_err(|e| e.to_string())?
            .and_then(|s| s.cursor)
            .unwrap_or_else(|| EPOCH.to_string());
        let started = poll_start();
        let since = with_overlap(&cursor, self.settings.poll_overlap);
        let odoo_err = |e: crate::odoo::OdooError| format!("reading orders from Odoo: {e}");
        let mut fields = vec!["client_order_ref", "state", "write_date"];
        if let Some(f) = &self.settings.otp_field {
            fields.push(f.as_str());
        }
        let changed = crate::sync::status::changed_orders(
            &self.odoo,
            "CARTONA-",
            &since,
            &fields,
            &["sale_id", "state"],
        )
        .await
        .map_err(odoo_err)?;
        let mut jobs = Vec::new();
        for crate::sync::status::KnownChange {
            order: so,
            id,
            reference,
            known,
        } in changed.known(&self.store)?
        {
            let target = match so.get("state").and_then(Value::as_str) {
                Some("cancel") => "cancelled_by_supplier",
                Some("sale" | "done") if changed.delivered(id) => "delivered",
                Some("sale" | "done") => "approved",
                Some("draft" | "sent") => {
                    // A quotation edited in Odoo: Cartona hears the new quantities.
                    if let Some(job) = self.detail_edits(id, &known).await? {
                        jobs.push(job);
                    }
                    continue;
                }
                _ => continue,
            };
            let known_rank = rank(known.marketplace_status.as_deref().unwrap_or("pending"))
                .max(rank(known.sent_status.as_deref().unwrap_or("pending")));
            if rank(target) <= known_rank {
                continue;
            }
            if known.delivered_by.as_deref() == Some("delivered_by_cartona")
                && target != "cancelled_by_supplier"
            {
                continue; // Cartona delivers these itself: only a cancellation is ours to report.
            }
            if target == "delivered" && known.needs_otp {
                if let Some(otp) = self
                    .settings
                    .otp_field
                    .as_deref()
                    .and_then(|f| so.get(f))
                    .and_then(Value::as_opt_str)
                {
                    orders::set_otp(&self.store, reference, otp).map_err(|e| e.to_string())?;
                } else if !known.otp_recorded {
                    if known.attention.as_deref() != Some(NEEDS_OTP) {
                        orders::set_attention(
                            &self.store,
                            CHANNEL,
                            &known.external_id,
                            Some(NEEDS_OTP),
                        )
                        .map_err(|e| e.to_string())?;
                        log(
                            &self.store,
                            Level::Warn,
                            "status.detect",
                            &format!("order {reference} {NEEDS_OTP}"),
                            None,
                        );
                    }
                    continue;
                }
            }
            jobs.push(status_job(&known.external_id, target));
        }
        let queued = crate::channel::enqueue_planned(&self.store, jobs)?;
        Ok(StreamOutcome {
            cursor: Some(started),
            note: (queued > 0)
                .then(|| (format!("{queued} status update(s) to send"), queued as i64)),
        })
    }

    /// Compares a quotation's lines in Odoo with the order as Cartona last sent it; the
    /// differences become an `update-order-details` job (amount changes, removed lines, new lines).
    async fn detail_edits(
        &self,
        order_id: i64,
        known: &orders::ChannelOrder,
    ) -> Result<Option<NewJob>, String> {
        let Some(event) =
            inbox::latest(&self.store, CHANNEL, &known.external_id).map_err(|e| e.to_string())?
        else {
            return Ok(None);
        };
        let Ok(cartona) = Order::parse(&event.payload) else {
            return Ok(None);
        };
        let lines = self
            .odoo
            .search_read(
                "sale.order.line",
                &Domain::all().and("order_id", "=", order_id),
                &["product_id", "product_uom_qty", "price_unit"],
                SearchOpts {
                    order: Some("id".into()),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| format!("reading order lines from Odoo: {e}"))?;
        let mut odoo_lines: Vec<(String, Decimal, Decimal)> = Vec::new();
        for l in &lines {
            let Some(product) = l.get("product_id").and_then(Value::as_id) else {
                continue;
            };
            let Some(m) = mapping::by_odoo(&self.store, CHANNEL, "product", product)
                .map_err(|e| e.to_string())?
            else {
                continue;
            };
            let qty = l
                .get("product_uom_qty")
                .and_then(Value::as_decimal)
                .unwrap_or_default();
            let price = l
                .get("price_unit")
                .and_then(Value::as_decimal)
                .unwrap_or_default();
            odoo_lines.push((m.external_id, qty, price));
        }
        let mut edits = Vec::new();
        // Line ids go back as Cartona sent them: numbers stay numbers.
        let line_id = |id: &Option<String>| match id.as_deref().map(|s| (s, s.parse::<i64>())) {
            Some((_, Ok(n))) => serde_json::Value::from(n),
            Some((s, Err(_))) => serde_json::Value::from(s),
            None => serde_json::Value::Null,
        };
        for d in &cartona.order_details {
            let key = d
                .supplier_product_id
                .clone()
                .or_else(|| d.internal_product_id.clone())
                .unwrap_or_default();
            // Pair with the first Odoo line of the same product and price (offers split a product in two).
            match odoo_lines
                .iter()
                .position(|(k, _, p)| *k == key && p.normalize() == d.selling_price.normalize())
            {
                Some(i) => {
                    let (_, qty, _) = odoo_lines.remove(i);
                    if qty.normalize() != d.amount.normalize() {
                        edits.push(serde_json::json!({"id": line_id(&d.id), "amount": qty.to_i64().unwrap_or(0)}));
                    }
                }
                None => edits.push(serde_json::json!({"id": line_id(&d.id), "cancelled": true})),
            }
        }
        for (key, qty, price) in odoo_lines {
            edits.push(serde_json::json!({"supplier_product_id": key, "amount": qty.to_i64().unwrap_or(0), "price": price.to_string()}));
        }
        if edits.is_empty() {
            return Ok(None);
        }
        Ok(Some(NewJob {
            channel: CHANNEL.into(),
            kind: "details".into(),
            key: format!("{CHANNEL}:details:{}", known.external_id),
            payload:
                serde_json::json!([{ "hashed_id": known.external_id, "order_details": edits }])
                    .into(),
            correlation_id: Some(known.reference.clone()),
        }))
    }

    /// Sends each job's status, with the steps before it Cartona has not heard yet: Cartona
    /// refuses `delivered` for an order still `pending` (and its bulk endpoint drops a refused
    /// update without a word), so an order confirmed and delivered between two polls hears
    /// `approved` first. The steps go out in rounds, one step per order per bulk request; a
    /// step already sent (a retry) or already known to Cartona is skipped.
    async fn send_statuses(&self, jobs: &[Job]) -> Vec<Result<(), JobError>> {
        let mut results: Vec<Option<Result<(), JobError>>> = vec![None; jobs.len()];
        let targets = jobs::parse_all::<jobs::SendStatus>(jobs);
        loop {
            let mut bulk = Vec::new();
            for (i, target) in targets.iter().enumerate() {
                if results[i].is_some() {
                    continue;
                }
                let (hashed_id, target) = match target {
                    Ok(t) => (&t.hashed_id, t.status.as_str()),
                    Err(e) => {
                        results[i] = Some(Err(e.clone()));
                        continue;
                    }
                };
                let known = match orders::get(&self.store, CHANNEL, hashed_id) {
                    Ok(Some(k)) => k,
                    Ok(None) => {
                        results[i] = Some(Err(JobError::new(
                            RetryClass::Permanent,
                            format!("order {hashed_id} is not known to marketsync"),
                        )));
                        continue;
                    }
                    Err(e) => {
                        results[i] = Some(Err(store_err(e)));
                        continue;
                    }
                };
                let Some(status) = next_step(&known, target) else {
                    results[i] = Some(Ok(()));
                    continue;
                };
                let update = StatusUpdate {
                    hashed_id: hashed_id.clone(),
                    status: status.to_string(),
                    cancellation_reason: (status == "cancelled_by_supplier")
                        .then(|| self.settings.cancellation_reason.clone()),
                    retailer_otp: if status == "delivered" && known.needs_otp {
                        known.otp.clone()
                    } else {
                        None
                    },
                };
                if status == "delivered" && known.needs_otp {
                    if update.retailer_otp.is_none() {
                        results[i] = Some(Err(JobError::new(
                            RetryClass::Permanent,
                            format!("order {hashed_id}: {NEEDS_OTP}"),
                        )));
                        continue;
                    }
                    // The single-order endpoint reports a refused OTP; the bulk one would not.
                    let r = self
                        .api
                        .post(
                            &format!("order/update-order-status/{hashed_id}"),
                            &serde_json::to_value(&update).unwrap_or_default(),
                        )
                        .await;
                    if let Err(e) = r
                        .map_err(job_err)
                        .and_then(|_| self.status_sent(hashed_id, status))
                    {
                        results[i] = Some(Err(e));
                    }
                } else {
                    bulk.push((i, update));
                }
            }
            if bulk.is_empty() {
                if results.iter().all(Option::is_some) {
                    break;
                }
                continue;
            }
            let body = serde_json::Value::Array(
                bulk.iter()
                    .map(|(_, u)| serde_json::to_value(u).unwrap_or_default())
                    .collect(),
            );
            let r = self.api.post("order/update-order-status", &body).await;
            for (i, u) in &bulk {
                let sent = match &r {
                    Ok(_) => self.status_sent(&u.hashed_id, &u.status),
                    Err(e) => Err(job_err(e.clone())),
                };
                if let Err(e) = sent {
                    results[*i] = Some(Err(e));
                }
            }
        }
        results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| Err(JobError::new(RetryClass::Transient, "status not sent")))
            })
            .collect()
    }

    fn status_sent(&self, hashed_id: &str, status: &str) -> Result<(), JobError> {
        orders::set_sent(&self.store, CHANNEL, hashed_id, status).map_err(store_err)?;
        orders::set_attention(&self.store, CHANNEL, hashed_id, None).map_err(store_err)?;
        log(
            &self.store,
            Level::Info,
            "status.send",
            &format!("order {hashed_id}: sent {status} to Cartona"),
            Some(1),
        );
        Ok(())
    }
}

/// The job that tells Cartona an order's new status (the OTP is read at send time, never queued).
pub fn status_job(hashed_id: &str, status: &str) -> NewJob {
    NewJob {
        channel: CHANNEL.into(),
        kind: "status".into(),
        key: format!("{CHANNEL}:status:{hashed_id}"),
        payload: serde_json::json!({ "hashed_id": hashed_id, "status": status }).into(),
        correlation_id: Some(reference(hashed_id)),
    }
}

/// After the operator recorded an OTP: queue the delivery status that was waiting for it.
pub fn otp_recorded(store: &Store, order: &orders::ChannelOrder) -> crate::store::Result<bool> {
    if order.attention.as_deref() == Some(NEEDS_OTP) {
        queue::enqueue(store, status_job(&order.external_id, "delivered"))?;
        return Ok(true);
    }
    Ok(false)
}

// ---------------------------------------------------------------------------------------------
// Wiring
// ---------------------------------------------------------------------------------------------

impl JobHandler for Cartona {
    fn handle<'a>(&'a self, job: &'a Job) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(async move {
            match job.kind.as_str() {
                "order" => self.import_order(job).await,
                "product" => self.push_job(job).await,
                "status" => self
                    .send_statuses(std::slice::from_ref(job))
                    .await
                    .remove(0),
                "details" => {
                    let edits: jobs::EditDetails = jobs::parse(job)?;
                    // Sent as queued, once it is known to be a list of orders' edits.
                    self.api
                        .post("order/update-order-details", &job.payload)
                        .await
                        .map_err(job_err)?;
                    let id = edits.0.first().map(|o| o.hashed_id.as_str()).unwrap_or("");
                    log(
                        &self.store,
                        Level::Info,
                        "status.send",
                        &format!("order {id}: sent the quotation's edited lines to Cartona"),
                        Some(1),
                    );
                    Ok(())
                }
                other => Err(JobError::new(
                    RetryClass::Permanent,
                    format!("unknown Cartona job kind {other:?}"),
                )),
            }
        })
    }

    fn records_completion(&self, kind: &str) -> bool {
        kind == "product"
    }

    fn batch_size(&self, kind: &str) -> usize {
        match kind {
            "order" => ORDER_BATCH,
            // A product job is already a batch (one bulk request).
            "product" | "details" => 1,
            _ => self.batch_size,
        }
    }

    fn handle_batch<'a>(&'a self, jobs: &'a [Job]) -> BoxFuture<'a, Vec<Result<(), JobError>>> {
        Box::pin(async move {
            match jobs[0].kind.as_str() {
                "status" => self.send_statuses(jobs).await,
                "order" => self.import_orders(jobs).await,
                _ => crate::daemon::workers::one_by_one(self, jobs).await,
            }
        })
    }
}

impl crate::channel::MarketChannel for Cartona {
    fn run_stream(&self, kind: StreamKind) -> BoxFuture<'_, Result<StreamOutcome, String>> {
        Box::pin(async move {
            match kind {
                StreamKind::Catalog => self.catalog_changes().await,
                StreamKind::Reconcile => self.catalog_full().await.map(|o| StreamOutcome {
                    cursor: None,
                    note: o.note,
                }),
                StreamKind::Orders => self.pull_orders().await,
                StreamKind::Status => self.detect_status().await,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_actions_follow_the_defaults_unless_overridden() {
        let none = std::collections::BTreeMap::new();
        assert_eq!(action_for("approved", &none), StatusAction::Confirm);
        assert_eq!(
            action_for("assigned_to_salesman", &none),
            StatusAction::ConfirmAndReserve
        );
        assert_eq!(action_for("delivered", &none), StatusAction::Deliver);
        assert_eq!(
            action_for("cancelled_by_retailer", &none),
            StatusAction::Cancel
        );
        assert_eq!(action_for("returned", &none), StatusAction::Flag);
        assert_eq!(action_for("pending", &none), StatusAction::Nothing);
        let overrides = std::collections::BTreeMap::from([
            ("approved".to_string(), "nothing".to_string()),
            ("returned".to_string(), "cancel".to_string()),
        ]);
        assert_eq!(action_for("approved", &overrides), StatusAction::Nothing);
        assert_eq!(action_for("returned", &overrides), StatusAction::Cancel);
        assert_eq!(action_for("delivered", &overrides), StatusAction::Deliver);
    }
}
