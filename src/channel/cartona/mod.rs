//! Cartona (B2B marketplace, Egypt): the supplier-integrations API.
//!
//! - Catalog out (`cartona.catalog` every `schedule.catalog_poll`, `cartona.reconcile` on
//!   `schedule.reconcile`): Odoo products -> `supplier-product/bulk-update` for mapped products,
//!   only what differs from what was last accepted, `batch_size` per request.
//! - Orders in (`cartona.orders` every `schedule.orders_poll`): `order/pull-orders` pages ->
//!   inbox -> one `order` job per order -> Odoo sale order (shared `sync::order_import`) ->
//!   Cartona status applied -> acknowledged with `synced`.
//! - Status out: the order events of its orders (confirmed, delivered, cancelled; found by the
//!   watcher `odoo.orders`, see `sync::order_watch`) -> one `status` job per order ->
//!   `order/update-order-status` (single endpoint when an OTP goes along). Quotations edited in
//!   Odoo (`cartona.edits` every `schedule.status_poll`) -> `order/update-order-details`.
//! - `map import` matches Cartona's products to Odoo's (see [`matching`]).
//!
//! Files: this one (what the channel is, wiring), `config.rs` (its settings), `client.rs` (auth,
//! healthcheck), `catalog.rs`, `orders.rs`, `status.rs` (one per flow), `jobs.rs` (the job
//! payloads, typed), `wire.rs` (Cartona's JSON, typed) and `matching.rs` (`map import`).

mod catalog;
mod client;
pub mod config;
pub mod jobs;
mod orders;
mod status;
pub use client::*;
pub use orders::*;
pub use status::*;
pub mod matching;
pub mod setup;
pub mod wire;

use crate::channel::http::{ChannelError, HttpClient};
use crate::channel::StreamKind;
use crate::config::{CartonaSettings, ChannelConfig};
use crate::daemon::scheduler::StreamOutcome;
use crate::daemon::workers::JobError;
use crate::internal_events as events;
use crate::odoo::profile::Profile;
use crate::odoo::{Domain, OdooClient, SearchOpts, Value};
use crate::retry::RetryClass;
use crate::store::order_events::{EventKind, OrderEvent};
use crate::store::queue::{self, Job, NewJob, Payload};
use crate::store::synclog::Level;
use crate::store::{inbox, mapping, orders as order_state, streams, Store};
use crate::sync::catalog::{poll_start, with_overlap, CatalogReader, ProductSnapshot, Unpriced};
use crate::sync::order_import::{
    self, store_err, Customer, Imported, InboundLine, InboundOrder, StatusAction,
};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use std::collections::HashMap;
use wire::{LineEdit, LineId, Order, OrderHead, ProductUpdate, StatusUpdate};

pub const CHANNEL: &str = "cartona";
/// Cartona sells in Egyptian pounds.
pub const CURRENCY: &str = "EGP";
const NEEDS_OTP: &str = "delivered in Odoo; Cartona needs the retailer's OTP: run `marketsync order otp <reference> <otp>`";

pub use crate::channel::kit::fnv;

/// A job's open inbox event and its order (with the order in Odoo's terms), or why it cannot
/// be read.
struct Loaded {
    event: inbox::Event,
    order: Result<(Order, InboundOrder), crate::error::Error>,
}

/// An order in Odoo, waiting for its acknowledgement to Cartona.
struct AwaitingAck {
    hashed_id: String,
    event_id: i64,
    /// What is said once acknowledged.
    imported: crate::internal_events::OrderImported,
}

/// What Cartona alone knows about one of its orders, kept in the order's channel data.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(default)]
pub(crate) struct OrderData {
    /// `delivered_by_cartona` or `delivered_by_supplier`.
    pub delivered_by: Option<String>,
    /// Installment and wallet top-up orders: delivered only with the retailer's OTP.
    pub needs_otp: bool,
}

impl OrderData {
    fn of(order: &Order) -> Self {
        OrderData {
            delivered_by: order.delivered_by.clone(),
            needs_otp: order.needs_otp(),
        }
    }

    /// What a known order holds (nothing yet for one seen before Cartona said).
    pub(crate) fn read(known: &order_state::ChannelOrder) -> Self {
        serde_json::from_value(known.meta.clone()).unwrap_or_default()
    }

    /// The patch of the order's channel data: a delivery mode Cartona left out keeps the
    /// earlier one.
    fn patch(&self) -> serde_json::Value {
        let mut v = serde_json::json!({ "needs_otp": self.needs_otp });
        if let Some(by) = &self.delivered_by {
            v["delivered_by"] = serde_json::Value::from(by.as_str());
        }
        v
    }
}

/// The name of the retailer's OTP among the order's secrets.
pub(crate) const OTP: &str = "otp";

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

impl Cartona {
    /// How its orders carry taxes into Odoo (Cartona has no shipping lines or discounts of its
    /// own: `selling_price` is after discounts).
    pub fn terms(&self) -> crate::sync::order_money::Terms {
        crate::sync::order_money::Terms {
            taxes: self.settings.order_taxes.clone(),
            pricelist: self.settings.pricelist_id,
            line_taxes: self.profile.line_taxes,
            is_delivery: self.profile.is_delivery,
            partner_mobile: self.profile.partner_mobile,
            ..Default::default()
        }
    }
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
        filter: settings.products.clone(),
        known_rules: Default::default(),
        currency_guard: Default::default(),
        company_currency: Default::default(),
        config_key: "channels.cartona",
    }
}

/// The channel as `diff` and the daemon use it.
pub fn build(w: &crate::channel::Wiring<'_>) -> Result<Cartona, crate::error::Error> {
    let settings =
        w.cfg.cartona().cloned().ok_or_else(|| {
            crate::error::Error::invalid("channels.cartona has no Cartona settings")
        })?;
    Ok(Cartona {
        api: client(w.cfg)?,
        reader: reader(&settings, w.odoo.clone()),
        batch_size: w.cfg.batch_size as usize,
        odoo: w.odoo.clone(),
        store: w.store.clone(),
        profile: w.profile.clone(),
        settings,
    })
}

fn job_err(e: ChannelError) -> JobError {
    e.into()
}

// ---------------------------------------------------------------------------------------------
// Wiring
// ---------------------------------------------------------------------------------------------

impl crate::channel::MarketChannel for Cartona {
    const STREAMS: &'static [StreamKind] = &[
        StreamKind::Catalog,
        StreamKind::Reconcile,
        StreamKind::Orders,
        StreamKind::Edits,
    ];
    const ORDER_PREFIX: Option<&'static str> = Some("CARTONA-");
    type Kind = jobs::Kind;

    async fn run(&self, kind: jobs::Kind, jobs: &[Job]) -> crate::channel::Outcomes {
        match kind {
            jobs::Kind::Status => self.send_statuses(jobs).await,
            jobs::Kind::Order => self.import_orders(jobs).await,
            jobs::Kind::Product => crate::channel::kit::each(jobs, |j| self.push_job(j)).await,
            jobs::Kind::Details => crate::channel::kit::each(jobs, |j| self.send_details(j)).await,
        }
    }

    fn poll_overlap(&self) -> std::time::Duration {
        self.settings.poll_overlap
    }

    async fn probe(&self) -> Result<(), ChannelError> {
        client::probe(&self.api).await
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
