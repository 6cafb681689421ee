//! Medusa stores, in two flavours chosen by `channels.medusa.flavour`:
//! `marqasouq` (MarqaSouq's `/odoo/*` routes, `x-odoo-api-key`, prices in minor units) and
//! `admin-api` (any Medusa v2 store: the Admin API with a secret key as HTTP Basic, major units).
//!
//! - Catalog out (`medusa.catalog`): products by SKU (`default_code`; none -> skipped with a
//!   logged reason) with title, Arabic title and description (Odoo translation), price, cost,
//!   barcode, weight in grams, category, image, `metadata.odoo_id`; stock as absolute quantities;
//!   archived -> deleted (marqasouq) or set to draft (admin-api). Only differences go out.
//! - Orders in: signed webhooks (`/webhooks/medusa`, received by [`crate::webhook`]) and a pull safety net
//!   (`medusa.orders`) both land in the inbox; one job per order imports it (shared
//!   `sync::order_import`) and marks it synced in Medusa.
//! - Status out: the order events of its orders (found by the watcher `odoo.orders`, see
//!   `sync::order_watch`) -> one `status` job per order: confirmed, shipped (tracking),
//!   delivered, cancelled, each once and in order; invoiced and paid, each once.
//!
//! Files: this one (what the channel is, wiring), `config.rs` (its settings), `client.rs` (auth,
//! healthcheck), `catalog.rs`, `orders.rs`, `status.rs`, `webhook.rs` (one per flow), `jobs.rs`
//! (the job payloads, typed), `wire.rs` (Medusa's JSON, typed) and `flavour/` (what differs
//! between MarqaSouq's routes and the Admin API, behind one trait).

use crate::channel::http::{ChannelError, HttpClient};
use crate::channel::optional::OptionalPart;
use crate::channel::StreamKind;
use crate::config::{ChannelConfig, MedusaFlavour, MedusaSettings, WebhookAuth};
use crate::daemon::scheduler::StreamOutcome;
use crate::daemon::workers::JobError;
use crate::internal_events as events;
use crate::odoo::profile::Profile;
use crate::odoo::{Domain, OdooClient, OdooError, SearchOpts, Value};
use crate::retry::RetryClass;
use crate::secret::Secret;
use crate::store::order_events::{EventKind, OrderEvent, Shipment};
use crate::store::queue::{self, Job, NewJob};
use crate::store::{inbox, mapping, orders as order_state, streams, Store};
use crate::sync::catalog::{poll_start, with_overlap, CatalogReader, ProductSnapshot};
use crate::sync::money;
use crate::sync::order_import::{
    self, store_err, Address, Customer, Imported, InboundLine, InboundOrder, StatusAction,
};
use base64::Engine;
use futures_util::future::BoxFuture;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

pub const CHANNEL: &str = "medusa";

/// The optional part of a listing that is the `lang` translation.
const TRANSLATION: &str = "translation";

mod catalog;
mod client;
pub mod config;
pub mod flavour;
/// Coalescing key of a product's listing job (latest value wins).
pub mod jobs;
mod orders;
pub mod setup;
mod status;
mod webhook;
pub mod wire;
pub use catalog::*;
pub use client::*;
pub use webhook::*;

use crate::store::queue::Payload;
use jobs::{ProductPush, StockPush};

fn product_key(odoo_id: i64) -> String {
    format!("{CHANNEL}:product:{odoo_id}")
}

/// Coalescing key of a product's stock job.
fn stock_key(odoo_id: i64) -> String {
    format!("{CHANNEL}:stock:{odoo_id}")
}

use crate::channel::kit::{decimal_of, fnv};

pub struct Medusa {
    pub api: HttpClient,
    pub settings: MedusaSettings,
    pub batch_size: usize,
    pub odoo: OdooClient,
    pub store: Store,
    pub profile: Profile,
    pub reader: CatalogReader,
    pub odoo_url: url::Url,
    /// The translated title and description (`lang`): left out while Odoo cannot give them.
    pub translation: OptionalPart,
    /// Whether `lang` was looked up in Odoo's installed languages since the start (again at
    /// every full read, so installing it takes effect by the next reconcile).
    lang_checked: AtomicBool,
}

impl Medusa {
    /// The configured API's differences.
    pub fn flavour(&self) -> &'static dyn flavour::Flavour {
        flavour::of(self.settings.flavour)
    }
}

/// How Medusa reads Odoo's catalog (also what `check --estimate` times).
pub fn reader(settings: &MedusaSettings, odoo: OdooClient) -> CatalogReader {
    CatalogReader {
        odoo,
        stock_field: settings.stock_field.clone(),
        warehouse_id: None,
        pricelist_id: settings.pricelist_id,
        currency: Some(settings.currency.clone()),
        extra_fields: vec!["description_sale", "standard_price", "weight", "categ_id"],
        filter: settings.products.clone(),
        known_rules: Default::default(),
        currency_guard: Default::default(),
        company_currency: Default::default(),
        config_key: "channels.medusa",
    }
}

/// The channel as `diff` and the daemon use it.
pub fn build(w: &crate::channel::Wiring<'_>) -> Result<Medusa, crate::error::Error> {
    let Some(settings) = w.cfg.medusa().cloned() else {
        return Err(crate::error::Error::invalid(
            "channels.medusa has no Medusa settings",
        ));
    };
    Ok(Medusa {
        api: client(w.cfg)?,
        reader: reader(&settings, w.odoo.clone()),
        translation: OptionalPart::new(&w.store, CHANNEL, TRANSLATION),
        lang_checked: AtomicBool::new(false),
        odoo_url: w.config.odoo.url.clone(),
        batch_size: w.cfg.batch_size as usize,
        odoo: w.odoo.clone(),
        store: w.store.clone(),
        profile: w.profile.clone(),
        settings,
    })
}

/// Why the `lang` translation must be left out, or `None` if Odoo has the language installed;
/// `Err` only when Odoo cannot be reached. What the channel logs and `check` warns of.
pub async fn language_left_out(odoo: &OdooClient, lang: &str) -> Result<Option<String>, OdooError> {
    match crate::sync::catalog::language_installed(odoo, lang).await {
        Ok(true) => Ok(None),
        Ok(false) => Ok(Some(format!(
            "the language {lang} is not installed in Odoo, so titles and descriptions go out in Odoo's default language; install it in Odoo (Settings > Languages) or set channels.medusa.lang to an installed one"
        ))),
        Err(e) if e.is_unreachable() => Err(e),
        Err(e) => Ok(Some(format!(
            "Odoo's installed languages cannot be read ({e}); titles and descriptions go out in Odoo's default language"
        ))),
    }
}

fn job_err(e: ChannelError) -> JobError {
    e.into()
}

pub(crate) fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.to_lowercase().chars() {
        if c.is_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

// ---------------------------------------------------------------------------------------------
// Wiring
// ---------------------------------------------------------------------------------------------

impl crate::channel::MarketChannel for Medusa {
    const STREAMS: &'static [StreamKind] = &[
        StreamKind::Catalog,
        StreamKind::Reconcile,
        StreamKind::Orders,
    ];
    const ORDER_PREFIX: Option<&'static str> = Some("MEDUSA-");
    type Kind = jobs::Kind;

    async fn run(&self, kind: jobs::Kind, jobs: &[Job]) -> crate::channel::Outcomes {
        match kind {
            jobs::Kind::Product => self.push_products(jobs).await,
            jobs::Kind::Stock => self.push_stock(jobs).await,
            jobs::Kind::Order => self.import_orders(jobs).await,
            jobs::Kind::Customer => {
                crate::channel::kit::each(jobs, |j| self.import_customer(j)).await
            }
            jobs::Kind::Status => crate::channel::kit::each(jobs, |j| self.send_status(j)).await,
        }
    }

    fn poll_overlap(&self) -> std::time::Duration {
        self.settings.poll_overlap
    }

    async fn probe(&self) -> Result<(), ChannelError> {
        client::probe(&self.api, self.settings.flavour).await
    }
}
