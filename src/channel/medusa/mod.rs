//! Medusa stores, in two flavours chosen by `channels.medusa.flavour`:
//! `marqasouq` (MarqaSouq's `/odoo/*` routes, `x-odoo-api-key`, prices in minor units) and
//! `admin-api` (any Medusa v2 store: the Admin API with a secret key as HTTP Basic, major units).
//!
//! - Catalog out (`medusa.catalog`): products by SKU (`default_code`; none -> skipped with a
//!   logged reason) with title, Arabic title and description (Odoo translation), price, cost,
//!   barcode, weight in grams, category, image, `metadata.odoo_id`; stock as absolute quantities;
//!   archived -> deleted (marqasouq) or set to draft (admin-api). Only differences go out.
//! - Orders in: signed webhooks (`/webhooks/medusa`, see `webhook::medusa`) and a pull safety net
//!   (`medusa.orders`) both land in the inbox; one job per order imports it (shared
//!   `sync::order_import`) and marks it synced in Medusa.
//! - Status out (`medusa.status`): confirmed, shipped (tracking), delivered, cancelled, each once
//!   and in order; invoiced and paid (every customer invoice paid), each once.

use crate::channel::http::{ChannelError, HttpClient};
use crate::channel::optional::OptionalPart;
use crate::channel::{Started, StreamKind};
use crate::config::{ChannelConfig, Config, MedusaFlavour, MedusaSettings};
use crate::daemon::scheduler::StreamOutcome;
use crate::daemon::workers::{JobError, JobHandler};
use crate::odoo::profile::Profile;
use crate::odoo::{Domain, OdooClient, OdooError, SearchOpts, Value};
use crate::retry::RetryClass;
use crate::secret::Secret;
use crate::store::queue::{self, Job, NewJob};
use crate::store::synclog::Level;
use crate::store::{inbox, mapping, orders, streams, Store};
use crate::sync::catalog::{poll_start, with_overlap, CatalogReader, ProductSnapshot, EPOCH};
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
use std::sync::Arc;

pub const CHANNEL: &str = "medusa";

/// The optional part of a listing that is the `lang` translation.
const TRANSLATION: &str = "translation";

/// Coalescing key of a product's listing job (latest value wins).
pub mod jobs;

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

/// The HTTP client with the flavour's auth: `x-odoo-api-key`, or `Authorization: Basic
/// base64("sk_…:")` (a secret key sent as Bearer is refused by Medusa).
pub fn client(cfg: &ChannelConfig) -> Result<HttpClient, String> {
    let (token, base) = crate::channel::kit::token_and_base(cfg)?;
    let settings = cfg
        .medusa
        .as_ref()
        .ok_or("channels.medusa has no Medusa settings")?;
    let header = match settings.flavour {
        MedusaFlavour::Marqasouq => ("x-odoo-api-key", token),
        MedusaFlavour::AdminApi => {
            let encoded =
                base64::engine::general_purpose::STANDARD.encode(format!("{}:", token.expose()));
            ("Authorization", Secret::new(format!("Basic {encoded}")))
        }
    };
    Ok(HttpClient::new("Medusa", base, cfg.timeout, vec![header]))
}

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

/// How Medusa reads Odoo's catalog (also what `check --estimate` times).
pub fn reader(settings: &MedusaSettings, odoo: OdooClient) -> CatalogReader {
    CatalogReader {
        odoo,
        stock_field: settings.stock_field.clone(),
        warehouse_id: None,
        pricelist_id: settings.pricelist_id,
        currency: Some(settings.currency.clone()),
        extra_fields: vec!["description_sale", "standard_price", "weight", "categ_id"],
        known_rules: Default::default(),
    }
}

pub fn start(
    config: &Config,
    cfg: &ChannelConfig,
    odoo: OdooClient,
    store: Store,
    profile: Profile,
) -> Result<Started, String> {
    let settings = cfg
        .medusa
        .clone()
        .ok_or("channels.medusa has no Medusa settings")?;
    let reader = reader(&settings, odoo.clone());
    let translation = OptionalPart::new(&store, CHANNEL, TRANSLATION);
    let medusa = Arc::new(Medusa {
        api: client(cfg)?,
        settings,
        batch_size: cfg.batch_size as usize,
        odoo,
        store,
        profile,
        reader,
        odoo_url: config.odoo.url.clone(),
        translation,
        lang_checked: AtomicBool::new(false),
    });
    Ok(crate::channel::started(
        CHANNEL,
        medusa,
        cfg.concurrency,
        &config.schedule,
    ))
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

fn log(store: &Store, level: Level, op: &str, message: &str, records: Option<i64>) {
    crate::channel::log(store, CHANNEL, level, op, message, records)
}

fn slug(text: &str) -> String {
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
// Catalog out
// ---------------------------------------------------------------------------------------------

/// What the store should show for one product, in the store's terms (major units).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Listing {
    pub odoo_id: i64,
    pub sku: String,
    pub title: String,
    pub title_ar: Option<String>,
    pub description: Option<String>,
    pub description_ar: Option<String>,
    pub price: Decimal,
    pub cost: Decimal,
    pub barcode: Option<String>,
    pub weight_g: i64,
    pub category: Option<String>,
    pub image_url: String,
    pub published: bool,
}

impl Medusa {
    /// Looks `lang` up in Odoo's installed languages: Odoo 19 refuses a context `lang` that
    /// is not installed (17 ignores it), so without it the translation is left out.
    async fn check_language(&self) -> Result<(), String> {
        match language_left_out(&self.odoo, &self.settings.lang).await {
            Ok(None) => self.translation.available(),
            Ok(Some(why)) => self.translation.unavailable(&why),
            Err(e) => return Err(format!("reading Odoo's installed languages: {e}")),
        }
        self.lang_checked.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Arabic (or the configured language's) names and descriptions of these products; none
    /// while the translation is left out. Only an unreachable Odoo fails the poll: any other
    /// refusal leaves the translation out and the listings go on.
    async fn translations(
        &self,
        ids: &[i64],
    ) -> Result<HashMap<i64, (Option<String>, Option<String>)>, String> {
        if ids.is_empty() || self.translation.left_out().is_some() {
            return Ok(HashMap::new());
        }
        let read = self
            .odoo
            .search_read(
                "product.product",
                &Domain::all().and("id", "in", ids.to_vec()),
                &["name", "description_sale"],
                SearchOpts {
                    context: vec![
                        ("lang".into(), Value::from(self.settings.lang.as_str())),
                        ("active_test".into(), Value::Bool(false)),
                    ],
                    ..Default::default()
                },
            )
            .await;
        let rows = match read {
            Ok(rows) => rows,
            Err(e) if e.is_unreachable() => {
                return Err(format!("reading translations from Odoo: {e}"))
            }
            Err(e) => {
                self.translation.unavailable(&format!(
                    "Odoo refused the {} translation ({e}); titles and descriptions go out in Odoo's default language until the next reconcile looks again",
                    self.settings.lang
                ));
                return Ok(HashMap::new());
            }
        };
        Ok(rows
            .iter()
            .filter_map(|r| {
                let s = |k: &str| r.get(k).and_then(Value::as_opt_str).map(str::to_string);
                Some((r.get("id")?.as_i64()?, (s("name"), s("description_sale"))))
            })
            .collect())
    }

    fn listing(
        &self,
        p: &ProductSnapshot,
        sku: &str,
        ar: Option<&(Option<String>, Option<String>)>,
    ) -> Listing {
        let row = &p.row;
        let description = row
            .get("description_sale")
            .and_then(Value::as_opt_str)
            .map(str::to_string);
        let (title_ar, description_ar) = match ar {
            Some((t, d)) => (
                t.clone().filter(|t| *t != p.name),
                d.clone().filter(|d| Some(d) != description.as_ref()),
            ),
            None => (None, None),
        };
        Listing {
            odoo_id: p.id,
            sku: sku.to_string(),
            title: p.name.clone(),
            title_ar,
            description,
            description_ar,
            price: money::round(p.price, &self.settings.currency),
            cost: money::round(
                row.get("standard_price")
                    .and_then(Value::as_decimal)
                    .unwrap_or_default(),
                &self.settings.currency,
            ),
            barcode: p.barcode.clone(),
            weight_g: (row
                .get("weight")
                .and_then(Value::as_decimal)
                .unwrap_or_default()
                * Decimal::from(1000))
            .round()
            .to_i64()
            .unwrap_or(0),
            category: row
                .get("categ_id")
                .and_then(Value::as_many2one)
                .map(|(_, n)| n.to_string()),
            image_url: format!(
                "{}web/image/product.product/{}/image_1920",
                self.odoo_url, p.id
            ),
            published: p.active && p.sale_ok,
        }
    }

    fn stock_of(&self, p: &ProductSnapshot) -> i64 {
        if p.active && p.sale_ok {
            p.stock.floor().max(Decimal::ZERO).to_i64().unwrap_or(0)
        } else {
            0
        }
    }

    /// Mapping of a product by SKU (created on first sight), and of its stock.
    fn mappings_for(
        &self,
        p: &ProductSnapshot,
        sku: &str,
    ) -> Result<Option<(mapping::Mapping, mapping::Mapping)>, String> {
        let get = |kind: &str| -> Result<Option<mapping::Mapping>, String> {
            match mapping::by_odoo(&self.store, CHANNEL, kind, p.id).map_err(|e| e.to_string())? {
                Some(m) if m.external_id == sku => Ok(Some(m)),
                Some(m) => {
                    // The SKU changed in Odoo: the new one is a new product for the store.
                    mapping::unset(&self.store, CHANNEL, kind, Some(p.id), None)
                        .map_err(|e| e.to_string())?;
                    log(
                        &self.store,
                        Level::Warn,
                        "catalog.plan",
                        &format!(
                            "product.product {} changed SKU from {} to {sku}",
                            p.id, m.external_id
                        ),
                        None,
                    );
                    self.link(kind, p.id, sku)
                }
                None => self.link(kind, p.id, sku),
            }
        };
        Ok(match (get("product")?, get("stock")?) {
            (Some(a), Some(b)) => Some((a, b)),
            _ => None,
        })
    }

    fn link(
        &self,
        kind: &str,
        odoo_id: i64,
        sku: &str,
    ) -> Result<Option<mapping::Mapping>, String> {
        match mapping::set(&self.store, CHANNEL, kind, "product.product", odoo_id, sku) {
            Ok(m) => Ok(Some(m)),
            Err(crate::store::StoreError::Conflict(why)) => {
                log(&self.store, Level::Warn, "catalog.plan", &format!("product.product {odoo_id} skipped: {why} (two Odoo products share the SKU {sku:?})"), None);
                Ok(None)
            }
            Err(e) => Err(e.to_string()),
        }
    }

    async fn plan(&self, products: &[ProductSnapshot]) -> Result<usize, String> {
        let ids: Vec<i64> = products
            .iter()
            .filter(|p| p.default_code.is_some())
            .map(|p| p.id)
            .collect();
        let ar = self.translations(&ids).await?;
        // A value back to what the store holds while another one waits must still be queued
        // (it replaces the waiting one), or the waiting one would have the last word.
        let keys: Vec<String> = ids
            .iter()
            .flat_map(|id| [product_key(*id), stock_key(*id)])
            .collect();
        let waiting = queue::waiting_keys(&self.store, &keys).map_err(|e| e.to_string())?;
        let mut jobs = Vec::new();
        let mut no_sku = Vec::new();
        for p in products {
            let Some(sku) = p.default_code.as_deref() else {
                if p.active && p.sale_ok {
                    no_sku.push(p.id);
                }
                continue;
            };
            let Some((pm, sm)) = self.mappings_for(p, sku)? else {
                continue;
            };
            let listing = self.listing(p, sku, ar.get(&p.id));
            let quantity = self.stock_of(p);
            let listing_value = serde_json::to_value(&listing).unwrap_or_default();
            let hash = fnv(&format!("{}|{}", listing_value, self.settings.currency));
            let stock_hash = fnv(&format!("{sku}|{quantity}"));
            // Without a price the listing waits (the stream says why); its stock does not.
            if p.unpriced.is_none()
                && (pm.last_hash.as_deref() != Some(hash.as_str())
                    || waiting.contains(&product_key(p.id)))
            {
                jobs.push(NewJob {
                    channel: CHANNEL.into(),
                    kind: "product".into(),
                    key: product_key(p.id),
                    payload: Payload::of(&ProductPush {
                        mapping_id: pm.id,
                        stock_mapping_id: sm.id,
                        hash,
                        stock_hash,
                        listing,
                        quantity,
                    }),
                    correlation_id: None,
                });
            } else if pm.last_sent_at.is_some()
                && (sm.last_hash.as_deref() != Some(stock_hash.as_str())
                    || waiting.contains(&stock_key(p.id)))
            {
                jobs.push(NewJob {
                    channel: CHANNEL.into(),
                    kind: "stock".into(),
                    key: stock_key(p.id),
                    payload: Payload::of(&StockPush {
                        mapping_id: sm.id,
                        product_mapping_id: pm.id,
                        hash: stock_hash,
                        sku: sku.to_string(),
                        quantity,
                    }),
                    correlation_id: None,
                });
            }
        }
        if !no_sku.is_empty() {
            let shown: Vec<String> = no_sku.iter().take(20).map(|i| i.to_string()).collect();
            log(
                &self.store,
                Level::Warn,
                "catalog.plan",
                &format!(
                    "{} sellable product(s) without an internal reference (default_code) were skipped: Medusa matches by SKU (product.product {}{})",
                    no_sku.len(),
                    shown.join(", "),
                    if no_sku.len() > 20 { ", …" } else { "" }
                ),
                Some(no_sku.len() as i64),
            );
        }
        crate::channel::enqueue_planned(&self.store, jobs)
    }

    async fn catalog(&self, full: bool) -> Result<StreamOutcome, String> {
        let name = format!("{CHANNEL}.catalog");
        let cursor = if full {
            None
        } else {
            streams::get(&self.store, &name)
                .map_err(|e| e.to_string())?
                .and_then(|s| s.cursor)
        };
        let started = poll_start();
        let mut unpriced = crate::sync::catalog::Unpriced::default();
        // A deleted pricelist rule leaves no trace to find its products by: read them all.
        let rules = self
            .reader
            .pricelist_rules()
            .await
            .map_err(|e| format!("reading the pricelist's rules from Odoo: {e}"))?;
        let cursor = cursor.filter(|_| !rules.deleted);
        if cursor.is_none() || !self.lang_checked.load(Ordering::Relaxed) {
            self.check_language().await?;
        }
        let planned = match cursor {
            None => {
                // One page in memory at a time, each planned before the next is read.
                let (mut planned, mut after) = (0, 0);
                loop {
                    let page = self
                        .reader
                        .page_after(after)
                        .await
                        .map_err(|e| format!("reading the catalog from Odoo: {e}"))?;
                    after = page.last().map(|p| p.id).unwrap_or(after);
                    planned += self.plan(&page).await?;
                    unpriced.note(&page);
                    if page.len() < self.odoo.page_size() {
                        break;
                    }
                }
                planned
            }
            Some(cursor) => {
                let since = with_overlap(&cursor, self.settings.poll_overlap);
                let products = self
                    .reader
                    .changed_since(&since)
                    .await
                    .map_err(|e| format!("reading changes from Odoo: {e}"))?;
                unpriced.note(&products);
                self.plan(&products).await?
            }
        };
        // The others went out; the cursor stays until these have a price.
        unpriced.verdict()?;
        self.reader.remember_rules(rules);
        Ok(StreamOutcome {
            // The reconcile stream leaves the catalog stream's cursor alone.
            cursor: if full { None } else { Some(started) },
            note: (planned > 0).then(|| {
                (
                    format!("{planned} product/stock update(s) to send"),
                    planned as i64,
                )
            }),
        })
    }

    fn mark(&self, mapping_id: i64, hash: &str) -> Result<(), JobError> {
        mapping::mark_sent(&self.store, mapping_id, hash).map_err(store_err)
    }

    fn product_sent(&self, p: &ProductPush) -> Result<(), JobError> {
        self.mark(p.mapping_id, &p.hash)?;
        // The push carried the stock too.
        self.mark(p.stock_mapping_id, &p.stock_hash)
    }
}

// ---------------------------------------------------------------------------------------------
// Catalog out: the two flavours
// ---------------------------------------------------------------------------------------------

impl Medusa {
    fn currency(&self) -> &str {
        &self.settings.currency
    }

    fn minor(&self, amount: Decimal) -> i64 {
        money::to_minor(amount, self.currency()).unwrap_or(0)
    }

    /// MarqaSouq's product body (seed 004 §5): amounts in minor units (KWD fils).
    fn marqasouq_product(&self, l: &Listing, quantity: i64) -> serde_json::Value {
        serde_json::json!({
            "odoo_product_id": l.odoo_id,
            "sku": l.sku,
            "title": l.title,
            "title_ar": l.title_ar,
            "description": l.description,
            "description_ar": l.description_ar,
            "price": self.minor(l.price),
            "cost_price": self.minor(l.cost),
            "currency_code": self.currency(),
            "weight": l.weight_g,
            "weight_unit": "g",
            "barcode": l.barcode,
            "category_handle": l.category.as_deref().map(slug),
            "images": [{"url": l.image_url, "position": 0, "is_thumbnail": true}],
            "metadata": {"odoo_id": l.odoo_id, "title_ar": l.title_ar, "description_ar": l.description_ar},
            "inventory": {"quantity": quantity, "manage_inventory": true, "allow_backorder": false},
        })
    }

    async fn push_products(&self, jobs: &[Job]) -> Vec<Result<(), JobError>> {
        match self.settings.flavour {
            MedusaFlavour::Marqasouq => self.push_products_marqasouq(jobs).await,
            MedusaFlavour::AdminApi => self.push_products_admin(jobs).await,
        }
    }

    async fn push_products_marqasouq(&self, jobs: &[Job]) -> Vec<Result<(), JobError>> {
        let mut results: Vec<Option<Result<(), JobError>>> = vec![None; jobs.len()];
        let mut bulk = Vec::new();
        let pushes = jobs::parse_all::<ProductPush>(jobs);
        for (i, push) in pushes.iter().enumerate() {
            let push = match push {
                Ok(p) => p,
                Err(e) => {
                    results[i] = Some(Err(e.clone()));
                    continue;
                }
            };
            let l = &push.listing;
            if !l.published {
                let r = match self
                    .api
                    .delete(&format!("odoo/products/{}", urlencode(&l.sku)))
                    .await
                {
                    Ok(_) => self.product_sent(push),
                    Err(e) if e.status == Some(404) => self.product_sent(push),
                    Err(e) => Err(job_err(e)),
                };
                results[i] = Some(r);
                continue;
            }
            bulk.push((i, self.marqasouq_product(l, push.quantity), l.sku.clone()));
        }
        if !bulk.is_empty() {
            let body = serde_json::json!({"products": bulk.iter().map(|(_, p, _)| p.clone()).collect::<Vec<_>>()});
            match self.api.post("odoo/products/bulk", &body).await {
                Ok(resp) => {
                    let errors: HashMap<String, String> = resp["results"]["errors"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .map(|e| {
                                    (
                                        e["sku"].as_str().unwrap_or("").to_string(),
                                        e["message"].as_str().unwrap_or("refused").to_string(),
                                    )
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    let mut ok = 0;
                    for (i, _, sku) in &bulk {
                        results[*i] = Some(match errors.get(sku) {
                            Some(why) => Err(JobError::new(
                                RetryClass::Permanent,
                                format!("Medusa refused product {sku}: {why}"),
                            )),
                            None => {
                                ok += 1;
                                match &pushes[*i] {
                                    Ok(p) => self.product_sent(p),
                                    Err(e) => Err(e.clone()),
                                }
                            }
                        });
                    }
                    log(
                        &self.store,
                        Level::Info,
                        "catalog.push",
                        &format!("pushed {ok} product(s)"),
                        Some(ok),
                    );
                }
                Err(e) => {
                    for (i, _, _) in &bulk {
                        results[*i] = Some(Err(job_err(e.clone())));
                    }
                }
            }
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(JobError::new(RetryClass::Transient, "not sent"))))
            .collect()
    }

    async fn push_stock(&self, jobs: &[Job]) -> Vec<Result<(), JobError>> {
        let pushes = jobs::parse_all::<StockPush>(jobs);
        let good: Vec<&StockPush> = pushes.iter().filter_map(|p| p.as_ref().ok()).collect();
        let sent: Result<(), JobError> = if good.is_empty() {
            Ok(())
        } else if self.settings.flavour == MedusaFlavour::AdminApi {
            let items: Vec<(String, i64)> =
                good.iter().map(|p| (p.sku.clone(), p.quantity)).collect();
            self.set_levels(&items).await
        } else {
            let items: Vec<serde_json::Value> = good
                .iter()
                .map(|p| serde_json::json!({"sku": p.sku, "quantity": p.quantity}))
                .collect();
            let r = self
                .api
                .post(
                    "odoo/inventory/bulk-update",
                    &serde_json::json!({"items": items}),
                )
                .await
                .map_err(job_err);
            if r.is_ok() {
                log(
                    &self.store,
                    Level::Info,
                    "stock.push",
                    &format!("pushed stock of {} product(s)", good.len()),
                    Some(good.len() as i64),
                );
            }
            r.map(|_| ())
        };
        pushes
            .iter()
            .map(|p| match (p, &sent) {
                (Err(e), _) => Err(e.clone()),
                (Ok(_), Err(e)) => Err(e.clone()),
                (Ok(p), Ok(())) => self.mark(p.mapping_id, &p.hash),
            })
            .collect()
    }

    /// Admin API: create new products, update known ones (draft when archived), then stock.
    async fn push_products_admin(&self, jobs: &[Job]) -> Vec<Result<(), JobError>> {
        let mut out = Vec::with_capacity(jobs.len());
        // The batch endpoint is atomic and does not say which item failed: one product per call
        // when a batch is refused; otherwise one call for all.
        let pushes = jobs::parse_all::<ProductPush>(jobs);
        let all: Vec<usize> = (0..jobs.len()).collect();
        match self.admin_batch(&pushes, &all).await {
            Ok(()) => {
                for p in &pushes {
                    out.push(match p {
                        Ok(p) => self.product_sent(p),
                        Err(e) => Err(e.clone()),
                    });
                }
                log(
                    &self.store,
                    Level::Info,
                    "catalog.push",
                    &format!("pushed {} product(s)", jobs.len()),
                    Some(jobs.len() as i64),
                );
            }
            Err(e) if e.class == RetryClass::Permanent && jobs.len() > 1 => {
                for (i, p) in pushes.iter().enumerate() {
                    out.push(match p {
                        Ok(p) => self
                            .admin_batch(&pushes, &[i])
                            .await
                            .and_then(|_| self.product_sent(p)),
                        Err(e) => Err(e.clone()),
                    });
                }
            }
            Err(e) => out = jobs.iter().map(|_| Err(e.clone())).collect(),
        }
        out
    }

    async fn admin_batch(
        &self,
        pushes: &[Result<ProductPush, JobError>],
        which: &[usize],
    ) -> Result<(), JobError> {
        let mut create = Vec::new();
        let mut update = Vec::new();
        let mut created_for = Vec::new();
        let mut levels = Vec::new();
        for &i in which {
            let Ok(push) = &pushes[i] else { continue };
            let l = &push.listing;
            let pm =
                mapping::by_odoo(&self.store, CHANNEL, "product", l.odoo_id).map_err(store_err)?;
            let meta = pm.as_ref().map(|m| m.meta.clone()).unwrap_or_default();
            // Medusa v2 wants a JSON number in major units; the shortest float text of a
            // currency-rounded decimal is that decimal ("12.9").
            let amount = l.price.to_string().parse::<f64>().unwrap_or(0.0);
            let price = serde_json::json!([{"currency_code": self.currency(), "amount": amount}]);
            let metadata = serde_json::json!({"odoo_id": l.odoo_id, "title_ar": l.title_ar, "description_ar": l.description_ar, "cost": l.cost, "image_url": l.image_url});
            let status = if l.published { "published" } else { "draft" };
            match (meta["product_id"].as_str(), meta["variant_id"].as_str()) {
                (Some(pid), Some(vid)) => update.push(serde_json::json!({
                    "id": pid, "title": l.title, "description": l.description, "status": status, "metadata": metadata,
                    "variants": [{"id": vid, "barcode": l.barcode, "weight": l.weight_g, "prices": price}],
                })),
                _ if !l.published => {} // never shown, nothing to hide
                _ => {
                    let mut p = serde_json::json!({
                        "title": l.title, "handle": slug(&l.sku), "status": status, "description": l.description, "metadata": metadata,
                        "options": [{"title": "Default option", "values": ["Default"]}],
                        "variants": [{"title": "Default", "sku": l.sku, "barcode": l.barcode, "weight": l.weight_g, "manage_inventory": true,
                                      "options": {"Default option": "Default"}, "prices": price}],
                    });
                    if let Some(sp) = &self.settings.shipping_profile_id {
                        p["shipping_profile_id"] = serde_json::json!(sp);
                    }
                    if let Some(sc) = &self.settings.sales_channel_id {
                        p["sales_channels"] = serde_json::json!([{"id": sc}]);
                    }
                    create.push(p);
                    created_for.push((l.sku.clone(), pm.map(|m| m.id)));
                }
            }
            levels.push((l.sku.clone(), push.quantity));
        }
        if !create.is_empty() || !update.is_empty() {
            let resp = self
                .api
                .post(
                    "admin/products/batch",
                    &serde_json::json!({"create": create, "update": update}),
                )
                .await
                .map_err(job_err)?;
            for p in resp["created"].as_array().cloned().unwrap_or_default() {
                let pid = p["id"].as_str().unwrap_or_default();
                for v in p["variants"].as_array().cloned().unwrap_or_default() {
                    let sku = v["sku"].as_str().unwrap_or_default();
                    if let Some((_, Some(mid))) = created_for.iter().find(|(s, _)| s == sku) {
                        mapping::merge_meta(
                            &self.store,
                            *mid,
                            &serde_json::json!({"product_id": pid, "variant_id": v["id"]}),
                        )
                        .map_err(store_err)?;
                    }
                }
            }
        }
        self.set_levels(&levels).await
    }

    /// Admin API: sets stock at the configured location (create the level, or update it).
    async fn set_levels(&self, items: &[(String, i64)]) -> Result<(), JobError> {
        if items.is_empty() {
            return Ok(());
        }
        let location = self.settings.location_id.clone().unwrap_or_default();
        let query: Vec<(&str, String)> = items
            .iter()
            .map(|(sku, _)| ("sku[]", sku.clone()))
            .chain([("limit", items.len().to_string())])
            .collect();
        let found = self
            .api
            .get("admin/inventory-items", &query)
            .await
            .map_err(job_err)?;
        let mut create = Vec::new();
        let mut update = Vec::new();
        for (sku, qty) in items {
            let Some(item) = found["inventory_items"]
                .as_array()
                .and_then(|a| a.iter().find(|i| i["sku"].as_str() == Some(sku)))
            else {
                continue; // archived products lose their inventory item: nothing to stock
            };
            let level = serde_json::json!({"inventory_item_id": item["id"], "location_id": location, "stocked_quantity": qty});
            let stocked_here = item["location_levels"].as_array().is_some_and(|ls| {
                ls.iter()
                    .any(|l| l["location_id"].as_str() == Some(location.as_str()))
            });
            if stocked_here {
                update.push(level);
            } else {
                create.push(level);
            }
        }
        if create.is_empty() && update.is_empty() {
            return Ok(());
        }
        self.api
            .post(
                "admin/inventory-items/location-levels/batch",
                &serde_json::json!({"create": create, "update": update}),
            )
            .await
            .map_err(job_err)?;
        Ok(())
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

// ---------------------------------------------------------------------------------------------
// Orders in
// ---------------------------------------------------------------------------------------------

/// Why an event was not taken.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ReceiveError {
    /// The event is not one we handle, or lacks what identifies it: the sender's problem (400).
    #[error("{0}")]
    Invalid(String),
    /// The state could not record it: ours, and the sender should retry (503).
    #[error("{0}")]
    Storage(#[source] std::sync::Arc<crate::store::StoreError>),
}

impl From<ReceiveError> for String {
    fn from(e: ReceiveError) -> String {
        e.to_string()
    }
}

/// Commits one Medusa event (webhook or pull) to the inbox and queues its job. True when new.
pub fn receive_event(
    store: &Store,
    event: &str,
    body: &serde_json::Value,
) -> Result<bool, ReceiveError> {
    let e = prepare_event(event, body)?;
    let received = store
        .write(|tx| e.commit_in(tx, crate::store::now_ms()))
        .map_err(|e| ReceiveError::Storage(std::sync::Arc::new(e)))?;
    Ok(matches!(received, inbox::Received::New(_)))
}

/// A checked webhook event, ready to be committed with its job.
pub struct PreparedEvent {
    event_id: String,
    event: String,
    subject: String,
    body: String,
    job: NewJob,
}

impl PreparedEvent {
    /// Stores the event and its job in the caller's transaction (before the webhook is answered).
    pub fn commit_in(
        &self,
        tx: &rusqlite::Transaction<'_>,
        now: i64,
    ) -> crate::store::Result<inbox::Received> {
        inbox::receive_with_job_in(
            tx,
            CHANNEL,
            &self.event_id,
            &self.event,
            Some(&self.subject),
            &self.body,
            &self.job,
            now,
        )
    }
}

/// Checks a webhook event and says what to store, or why it is refused.
pub fn prepare_event(event: &str, body: &serde_json::Value) -> Result<PreparedEvent, ReceiveError> {
    let invalid = |m: &str| ReceiveError::Invalid(m.to_string());
    let data = &body["data"];
    // Ids go into keys, logs and URLs: refuse what no Medusa id looks like.
    let id_of = |v: &serde_json::Value, what: &str| -> Result<String, ReceiveError> {
        let id = v
            .as_str()
            .ok_or_else(|| ReceiveError::Invalid(format!("{event} without {what} (a string)")))?;
        if id.is_empty() || id.len() > 128 || id.chars().any(|c| c.is_control() || c == '/') {
            return Err(ReceiveError::Invalid(format!(
                "{event} has an unusable {what}: it must be 1 to 128 characters, no slashes or control characters"
            )));
        }
        Ok(id.to_string())
    };
    let (event_id, subject, kind, key) = match event {
        "order.created" | "order.placed" => {
            let id = id_of(&data["order"]["id"], "data.order.id")?;
            (
                format!("order:{id}"),
                id.to_string(),
                "order",
                format!("{CHANNEL}:order:{id}"),
            )
        }
        "order.status_updated" => {
            let id = id_of(&data["order_id"], "data.order_id")?;
            let status = data["new_status"].as_str().unwrap_or("?");
            if status.len() > 64 {
                return Err(invalid(
                    "order.status_updated has a data.new_status longer than 64 characters",
                ));
            }
            (
                format!("status:{id}:{status}"),
                id.to_string(),
                "order",
                format!("{CHANNEL}:order:{id}"),
            )
        }
        "customer.created" | "customer.updated" => {
            let id = id_of(&data["customer"]["id"], "data.customer.id")?;
            (
                format!("customer:{id}:{}", fnv(&body.to_string())),
                id.to_string(),
                "customer",
                format!("{CHANNEL}:customer:{id}"),
            )
        }
        other => {
            let other: String = other.chars().take(64).collect();
            return Err(ReceiveError::Invalid(format!(
                "unknown event {other:?}; expected order.created, order.status_updated, customer.created or customer.updated"
            )));
        }
    };
    let job = NewJob {
        channel: CHANNEL.into(),
        kind: kind.into(),
        key,
        payload: serde_json::json!({"subject": subject}).into(),
        correlation_id: None,
    };
    Ok(PreparedEvent {
        event_id,
        event: event.to_string(),
        subject,
        body: body.to_string(),
        job,
    })
}

impl Medusa {
    /// An item's unit price in major units; `None` when it is missing, not a number, negative,
    /// or (MarqaSouq, minor units) not a whole number: such an order is parked, never imported
    /// at a price nobody charged.
    fn unit_price(&self, v: &serde_json::Value) -> Option<Decimal> {
        let d = decimal_of(v).filter(|d| !d.is_sign_negative())?;
        match self.settings.flavour {
            MedusaFlavour::Marqasouq if d.fract().is_zero() => {
                Some(money::from_minor(d.to_i64()?, self.currency()))
            }
            MedusaFlavour::Marqasouq => None,
            MedusaFlavour::AdminApi => Some(d),
        }
    }

    /// The Medusa order as an inbound order; `Err` is the reason to park it.
    fn inbound(&self, o: &serde_json::Value) -> Result<InboundOrder, String> {
        let id = o["id"].as_str().ok_or("a Medusa order without id")?;
        let display = o["display_id"]
            .as_i64()
            .map(|d| d.to_string())
            .or_else(|| o["display_id"].as_str().map(str::to_string))
            .ok_or(format!("Medusa order {id} has no display_id"))?;
        let currency = o["currency_code"].as_str().unwrap_or(self.currency());
        if !currency.eq_ignore_ascii_case(self.currency()) {
            return Err(format!(
                "Medusa order {display} is in {} but the channel's currency (and Odoo pricelist) is {}; import it by hand or fix channels.medusa.currency",
                currency.to_uppercase(),
                self.currency().to_uppercase()
            ));
        }
        let c = &o["customer"];
        let email = c["email"]
            .as_str()
            .or(o["email"].as_str())
            .map(str::to_string);
        let key = c["id"]
            .as_str()
            .map(str::to_string)
            .or_else(|| email.clone().map(|e| format!("email:{e}")))
            .ok_or(format!(
                "Medusa order {display} has no customer id or email"
            ))?;
        let name = [c["first_name"].as_str(), c["last_name"].as_str()]
            .iter()
            .flatten()
            .copied()
            .collect::<Vec<_>>()
            .join(" ");
        let s = &o["shipping_address"];
        let shipping = s.is_object().then(|| Address {
            name: [s["first_name"].as_str(), s["last_name"].as_str()]
                .iter()
                .flatten()
                .copied()
                .collect::<Vec<_>>()
                .join(" "),
            street: s["address_1"].as_str().map(str::to_string),
            city: s["city"].as_str().map(str::to_string),
            zip: s["postal_code"].as_str().map(str::to_string),
            country_code: s["country_code"].as_str().map(str::to_string),
            phone: s["phone"].as_str().map(str::to_string),
        });
        let items = o["items"]
            .as_array()
            .filter(|a| !a.is_empty())
            .ok_or(format!("Medusa order {display} has no items"))?;
        let mut lines = Vec::new();
        for it in items {
            let sku = it["sku"]
                .as_str()
                .or(it["variant_sku"].as_str())
                .ok_or(format!("an item of Medusa order {display} has no SKU"))?;
            let qty = decimal_of(&it["quantity"])
                .filter(|q| *q > Decimal::ZERO)
                .ok_or(format!(
                    "an item of Medusa order {display} has no positive quantity"
                ))?;
            lines.push(InboundLine {
                product_key: sku.to_string(),
                description: it["title"]
                    .as_str()
                    .or(it["product_title"].as_str())
                    .unwrap_or("")
                    .to_string(),
                quantity: qty,
                unit_price: self.unit_price(&it["unit_price"]).ok_or(format!(
                    "item {sku} of Medusa order {display} has no usable unit_price ({}); it is not imported at a price nobody charged: import it by hand",
                    it["unit_price"]
                ))?,
            });
        }
        Ok(InboundOrder {
            channel: CHANNEL,
            external_id: id.to_string(),
            reference: format!("MEDUSA-{display}"),
            origin: format!("Medusa #{display}"),
            customer: Customer {
                key,
                name: if name.is_empty() {
                    email.clone().unwrap_or_else(|| "Medusa customer".into())
                } else {
                    name
                },
                phone: c["phone"].as_str().map(str::to_string),
                mobile: None,
                email,
                street: None,
                notes: None,
                shipping,
            },
            lines,
            total: None,
            note: None,
        })
    }

    /// Maps order SKUs not yet pushed from Odoo's own `default_code`s.
    async fn resolve_skus(&self, order: &InboundOrder) -> Result<(), JobError> {
        for line in &order.lines {
            if mapping::by_external(&self.store, CHANNEL, "product", &line.product_key)
                .map_err(store_err)?
                .is_some()
            {
                continue;
            }
            let found = self
                .odoo
                .search(
                    "product.product",
                    &Domain::all().and("default_code", "=", line.product_key.as_str()),
                    Some(2),
                )
                .await
                .map_err(|e| order_import::odoo_job_error(&e))?;
            if let [id] = found.as_slice() {
                let _ = mapping::set(
                    &self.store,
                    CHANNEL,
                    "product",
                    "product.product",
                    *id,
                    &line.product_key,
                );
            }
        }
        Ok(())
    }

    async fn fetch_order(&self, id: &str) -> Result<serde_json::Value, JobError> {
        let (path, field) = match self.settings.flavour {
            MedusaFlavour::Marqasouq => (format!("odoo/orders/{id}"), "order"),
            MedusaFlavour::AdminApi => (format!("admin/orders/{id}"), "order"),
        };
        let body = self.api.get(&path, &[]).await.map_err(job_err)?;
        Ok(body.get(field).cloned().unwrap_or(body))
    }

    async fn import_order(&self, job: &Job) -> Result<(), JobError> {
        let id = job.payload["subject"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let Some(latest) = inbox::latest_open(&self.store, CHANNEL, &id).map_err(store_err)? else {
            return Ok(());
        };
        // The order itself: from its order.created event, or fetched (a status event came first).
        let created =
            inbox::list_subject(&self.store, CHANNEL, &id, "order.created").map_err(store_err)?;
        let order_json = match created.last() {
            Some(e) => e.payload["data"]["order"].clone(),
            None => self.fetch_order(&id).await?,
        };
        let inbound = match self.inbound(&order_json) {
            Ok(o) => o,
            Err(reason) => return self.park(latest.id, &reason),
        };
        self.resolve_skus(&inbound).await?;
        let (odoo_id, made) = match order_import::import(&self.odoo, &self.store, &inbound).await? {
            Imported::Parked(reason) => return self.park(latest.id, &reason),
            Imported::Created(i) => (i, true),
            Imported::Existing(i) => (i, false),
        };
        let status = order_json["status"]
            .as_str()
            .unwrap_or("pending")
            .to_string();
        orders::seen(
            &self.store,
            CHANNEL,
            &id,
            &inbound.reference,
            &status,
            None,
            false,
        )
        .map_err(store_err)?;
        let items: Vec<serde_json::Value> = order_json["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|i| serde_json::json!({"id": i["id"], "quantity": i["quantity"]}))
            .collect();
        orders::set_odoo(&self.store, CHANNEL, &id, odoo_id, "").map_err(store_err)?;
        let known = orders::get(&self.store, CHANNEL, &id).map_err(store_err)?;
        if known
            .as_ref()
            .is_some_and(|k| k.meta.get("items").is_none())
        {
            orders::merge_meta(
                &self.store,
                CHANNEL,
                &id,
                &serde_json::json!({"items": items}),
            )
            .map_err(store_err)?;
        }
        // A status event: a cancellation in the store cancels the Odoo order.
        for e in inbox::list_subject(&self.store, CHANNEL, &id, "order.status_updated")
            .map_err(store_err)?
        {
            let new_status = e.payload["data"]["new_status"].as_str().unwrap_or("");
            orders::seen(
                &self.store,
                CHANNEL,
                &id,
                &inbound.reference,
                new_status,
                None,
                false,
            )
            .map_err(store_err)?;
            if matches!(new_status, "canceled" | "cancelled") {
                let (state, _) = order_import::read_order(&self.odoo, odoo_id).await?;
                order_import::apply_status(
                    &self.odoo,
                    &self.profile,
                    odoo_id,
                    &state,
                    StatusAction::Cancel,
                )
                .await?;
            }
        }
        self.mark_synced(&id, odoo_id).await?;
        inbox::close_subject(&self.store, CHANNEL, &id, latest.id).map_err(store_err)?;
        let verb = if made { "imported" } else { "updated" };
        log(
            &self.store,
            Level::Info,
            "orders.import",
            &format!("order {} {verb} as sale.order {odoo_id}", inbound.reference),
            Some(1),
        );
        Ok(())
    }

    async fn mark_synced(&self, id: &str, odoo_id: i64) -> Result<(), JobError> {
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        match self.settings.flavour {
            MedusaFlavour::Marqasouq => {
                self.api
                    .post(
                        &format!("odoo/orders/{id}/synced"),
                        &serde_json::json!({"odoo_order_id": odoo_id, "synced_at": now}),
                    )
                    .await
                    .map_err(job_err)?;
            }
            MedusaFlavour::AdminApi => {
                self.api
                    .post(&format!("admin/orders/{id}"), &serde_json::json!({"metadata": {"odoo_order_id": odoo_id, "odoo_synced_at": now}}))
                    .await
                    .map_err(job_err)?;
            }
        }
        Ok(())
    }

    fn park(&self, event: i64, reason: &str) -> Result<(), JobError> {
        inbox::park(&self.store, event, reason).map_err(store_err)?;
        log(&self.store, Level::Error, "orders.import", reason, None);
        Err(JobError::new(RetryClass::Permanent, reason))
    }

    async fn import_customer(&self, job: &Job) -> Result<(), JobError> {
        let id = job.payload["subject"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let Some(event) = inbox::latest_open(&self.store, CHANNEL, &id).map_err(store_err)? else {
            return Ok(());
        };
        let c = &event.payload["data"]["customer"];
        let name = [c["first_name"].as_str(), c["last_name"].as_str()]
            .iter()
            .flatten()
            .copied()
            .collect::<Vec<_>>()
            .join(" ");
        let mut vals = vec![(
            "name",
            Value::from(if name.is_empty() {
                c["email"].as_str().unwrap_or("Medusa customer")
            } else {
                name.as_str()
            }),
        )];
        for (k, v) in [
            ("email", c["email"].as_str()),
            ("phone", c["phone"].as_str()),
            ("street", c["addresses"][0]["address_1"].as_str()),
            ("city", c["addresses"][0]["city"].as_str()),
        ] {
            if let Some(v) = v {
                vals.push((k, Value::from(v)));
            }
        }
        let reference = format!("{CHANNEL}:{id}");
        let existing =
            match mapping::by_external(&self.store, CHANNEL, "partner", &id).map_err(store_err)? {
                Some(m) => Some(m.odoo_id),
                None => self
                    .odoo
                    .search(
                        "res.partner",
                        &Domain::all().and("ref", "=", reference.as_str()),
                        Some(1),
                    )
                    .await
                    .map_err(|e| order_import::odoo_job_error(&e))?
                    .first()
                    .copied(),
            };
        let partner = match existing {
            Some(p) => {
                self.odoo
                    .write("res.partner", &[p], Value::record(vals))
                    .await
                    .map_err(|e| order_import::odoo_job_error(&e))?;
                p
            }
            None => {
                vals.push(("ref", Value::from(reference.as_str())));
                vals.push(("customer_rank", Value::Int(1)));
                self.odoo
                    .create("res.partner", vec![Value::record(vals)])
                    .await
                    .map_err(|e| order_import::odoo_job_error(&e))?[0]
            }
        };
        if mapping::by_external(&self.store, CHANNEL, "partner", &id)
            .map_err(store_err)?
            .is_none()
        {
            mapping::set(&self.store, CHANNEL, "partner", "res.partner", partner, &id)
                .map_err(store_err)?;
        }
        inbox::close_subject(&self.store, CHANNEL, &id, event.id).map_err(store_err)?;
        log(
            &self.store,
            Level::Info,
            "customers.import",
            &format!("customer {id} -> res.partner {partner}"),
            Some(1),
        );
        Ok(())
    }

    /// The safety net: orders the store has and marketsync may have missed (lost webhooks).
    async fn pull_orders(&self) -> Result<StreamOutcome, String> {
        let from = chrono::Utc::now()
            - chrono::Duration::from_std(self.settings.pull_window).unwrap_or_default();
        let from = from.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let (mut pulled, mut new) = (0usize, 0usize);
        let limit = 50usize;
        for page in 0..2000usize {
            let offset = (page * limit).to_string();
            let body = match self.settings.flavour {
                MedusaFlavour::Marqasouq => self
                    .api
                    .get("odoo/orders", &[("synced", "false".into()), ("date_from", from.clone()), ("limit", limit.to_string()), ("offset", offset)])
                    .await,
                MedusaFlavour::AdminApi => self
                    .api
                    .get(
                        "admin/orders",
                        &[
                            ("fields", "id,display_id,status,email,currency_code,metadata,created_at,updated_at,*items,*customer,*shipping_address".into()),
                            ("created_at[$gte]", from.clone()),
                            ("limit", limit.to_string()),
                            ("offset", offset),
                        ],
                    )
                    .await,
            }
            .map_err(|e| e.message)?;
            let rows = body["orders"].as_array().cloned().ok_or_else(|| {
                format!(
                    "Medusa's order list has no `orders`: {}",
                    body.to_string().chars().take(120).collect::<String>()
                )
            })?;
            pulled += rows.len();
            for o in &rows {
                if o["metadata"]["odoo_order_id"].is_number() || o["synced"].as_bool() == Some(true)
                {
                    continue;
                }
                let event = serde_json::json!({"event": "order.created", "source": "pull", "data": {"order": o}});
                if receive_event(&self.store, "order.created", &event)? {
                    new += 1;
                }
            }
            if rows.len() < limit {
                break;
            }
        }
        if new > 0 {
            log(
                &self.store,
                Level::Warn,
                "orders.pull",
                &format!("{new} order(s) found by the pull that no webhook had delivered"),
                Some(new as i64),
            );
        }
        Ok(StreamOutcome {
            cursor: None,
            note: (pulled > 0 && new > 0)
                .then(|| (format!("pulled {pulled} order(s), {new} new"), new as i64)),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Status out
// ---------------------------------------------------------------------------------------------

const EVENTS: [&str; 4] = [
    "order.confirmed",
    "order.shipped",
    "order.delivered",
    "order.cancelled",
];

/// The order's state flags (`meta`) saying an event that goes out once was sent.
const ONCE_INVOICED: &str = "invoiced_sent";
const ONCE_PAID: &str = "paid_sent";

fn status_key(external_id: &str) -> String {
    format!("{CHANNEL}:status:{external_id}")
}

/// The order events go out in: the delivery ladder, then invoiced, then paid.
fn event_order(event: &str) -> usize {
    match event {
        "order.invoiced" => EVENTS.len() + 1,
        "order.paid" => EVENTS.len() + 2,
        other => rank(other),
    }
}

fn rank(event: &str) -> usize {
    EVENTS
        .iter()
        .position(|e| *e == event)
        .map(|p| p + 1)
        .unwrap_or(0)
}

impl Medusa {
    async fn detect_status(&self) -> Result<StreamOutcome, String> {
        let name = format!("{CHANNEL}.status");
        let cursor = streams::get(&self.store, &name)
            .map_err(|e| e.to_string())?
            .and_then(|s| s.cursor)
            .unwrap_or_else(|| EPOCH.to_string());
        let started = poll_start();
        let since = with_overlap(&cursor, self.settings.poll_overlap);
        let odoo_err = |e: crate::odoo::OdooError| format!("reading orders from Odoo: {e}");
        let mut pfields = vec!["sale_id", "state", "write_date", "date_done"];
        if self.profile.tracking_ref {
            pfields.push("carrier_tracking_ref");
        }
        let changed = crate::sync::status::changed_orders(
            &self.odoo,
            "MEDUSA-",
            &since,
            &[
                "client_order_ref",
                "state",
                "write_date",
                "name",
                "invoice_status",
            ],
            &pfields,
        )
        .await
        .map_err(odoo_err)?;
        // Per Medusa order: the status payload to send (its events in order), and its reference.
        let mut outgoing: std::collections::BTreeMap<String, (jobs::SendStatus, String)> =
            Default::default();
        for crate::sync::status::KnownChange {
            order: so,
            id,
            reference,
            known,
        } in changed.known(&self.store)?
        {
            let mine = changed.pickings_of(id);
            let done = changed.delivered(id);
            let targets: Vec<&str> = match so.get("state").and_then(Value::as_str) {
                Some("cancel") => vec!["order.cancelled"],
                Some("sale" | "done") if done => {
                    vec!["order.confirmed", "order.shipped", "order.delivered"]
                }
                Some("sale" | "done") => vec!["order.confirmed"],
                _ => continue,
            };
            let sent = rank(known.sent_status.as_deref().unwrap_or(""));
            let tracking = mine
                .iter()
                .find_map(|p| p.get("carrier_tracking_ref").and_then(Value::as_opt_str))
                .map(str::to_string);
            let when = mine
                .iter()
                .find_map(|p| p.get("date_done").and_then(Value::as_opt_str))
                .map(str::to_string);
            let store_cancelled = matches!(
                known.marketplace_status.as_deref(),
                Some("canceled" | "cancelled")
            );
            let mut events: Vec<&str> = targets
                .into_iter()
                .filter(|e| rank(e) > sent && (*e == "order.cancelled" || !store_cancelled))
                .collect();
            // Invoicing is its own fact, beside the delivery ladder: sent once.
            if so.get("invoice_status").and_then(Value::as_str) == Some("invoiced")
                && known.meta[ONCE_INVOICED] != true
            {
                events.push("order.invoiced");
            }
            if !events.is_empty() {
                outgoing.insert(
                    known.external_id.clone(),
                    (
                        jobs::SendStatus {
                            order_id: known.external_id.clone(),
                            events: events.into_iter().map(str::to_string).collect(),
                            odoo_order_id: Some(id),
                            odoo_order_name: so
                                .get("name")
                                .and_then(Value::as_opt_str)
                                .map(str::to_string),
                            tracking_number: tracking,
                            date: when,
                            ..Default::default()
                        },
                        reference.to_string(),
                    ),
                );
            }
        }
        // Paid is its own fact too: a payment writes the invoice, not the order.
        for paid in crate::sync::status::paid_orders(&self.odoo, "MEDUSA-", &since)
            .await
            .map_err(odoo_err)?
        {
            let Some(known) =
                orders::by_reference(&self.store, &paid.reference).map_err(|e| e.to_string())?
            else {
                continue;
            };
            if known.meta[ONCE_PAID] == true {
                continue;
            }
            let (payload, _) = outgoing
                .entry(known.external_id.clone())
                .or_insert_with(|| {
                    (
                        jobs::SendStatus {
                            order_id: known.external_id.clone(),
                            odoo_order_id: Some(paid.id),
                            odoo_order_name: Some(paid.name.clone()),
                            ..Default::default()
                        },
                        paid.reference.clone(),
                    )
                });
            payload.events.push("order.paid".into());
            payload.payment_date = paid.at.clone();
        }
        // One job per order, so its events go out one at a time and in order. The newer job
        // replaces a waiting one, and supersedes a running one if that fails: what they still
        // had to say goes along (what went out meanwhile is skipped when sent).
        let keys: Vec<String> = outgoing.keys().map(|id| status_key(id)).collect();
        let open = queue::open_payloads(&self.store, &keys).map_err(|e| e.to_string())?;
        let mut queue_now = Vec::new();
        for (external_id, (mut payload, reference)) in outgoing {
            let key = status_key(&external_id);
            for before in open.get(&key).into_iter().flatten() {
                // A waiting payload that does not parse has nothing to carry: its events are
                // found again, as they were not recorded as sent.
                if let Ok(before) = before.parse::<jobs::SendStatus>() {
                    payload.carry_on(&before, event_order);
                }
            }
            queue_now.push(NewJob {
                channel: CHANNEL.into(),
                kind: "status".into(),
                key,
                payload: Payload::of(&payload),
                correlation_id: Some(reference),
            });
        }
        let queued = crate::channel::enqueue_planned(&self.store, queue_now)?;
        Ok(StreamOutcome {
            cursor: Some(started),
            note: (queued > 0).then(|| {
                (
                    format!("status events to send for {queued} order(s)"),
                    queued as i64,
                )
            }),
        })
    }

    /// Sends a status job's events in order, recording each as it goes out: a retry resumes
    /// after the last one sent. (A job queued by an older marketsync carries one `event`.)
    async fn send_status(&self, job: &Job) -> Result<(), JobError> {
        let p: jobs::SendStatus = jobs::parse(job)?;
        for event in p.all_events() {
            self.send_event(&p.order_id, &event, &p).await?;
        }
        Ok(())
    }

    async fn send_event(
        &self,
        id: &str,
        event: &str,
        p: &jobs::SendStatus,
    ) -> Result<(), JobError> {
        // Read afresh for each event: the one before may have changed it.
        let known = orders::get(&self.store, CHANNEL, id)
            .map_err(store_err)?
            .ok_or_else(|| {
                JobError::new(
                    RetryClass::Permanent,
                    format!("Medusa order {id} is not known"),
                )
            })?;
        // Invoiced and paid go out once each, beside the delivery ladder.
        let once = match event {
            "order.invoiced" => Some(ONCE_INVOICED),
            "order.paid" => Some(ONCE_PAID),
            _ => None,
        };
        if once.is_some_and(|flag| known.meta[flag] == true) {
            return Ok(());
        }
        // Delivery events go out in order: one already passed is not sent again.
        if once.is_none() && rank(event) <= rank(known.sent_status.as_deref().unwrap_or("")) {
            return Ok(());
        }
        match self.settings.flavour {
            MedusaFlavour::Marqasouq => {
                let mut order = serde_json::json!({"medusa_order_id": id, "odoo_order_id": p.odoo_order_id, "odoo_order_name": p.odoo_order_name});
                match event {
                    "order.shipped" => {
                        order["tracking_number"] = serde_json::json!(p.tracking_number);
                        order["shipped_date"] = serde_json::json!(p.date);
                    }
                    "order.delivered" => order["delivered_date"] = serde_json::json!(p.date),
                    "order.paid" => order["payment_date"] = serde_json::json!(p.payment_date),
                    "order.cancelled" => {
                        order["cancelled_reason"] = serde_json::json!("Cancelled in Odoo")
                    }
                    _ => {}
                }
                self.api
                    .post(
                        "odoo/webhooks/order-status",
                        &serde_json::json!({"event_type": event, "order": order}),
                    )
                    .await
                    .map_err(job_err)?;
            }
            MedusaFlavour::AdminApi => self.send_status_admin(id, event, p, &known).await?,
        }
        if let Some(flag) = once {
            orders::merge_meta(&self.store, CHANNEL, id, &serde_json::json!({ flag: true }))
                .map_err(store_err)?;
        } else {
            orders::set_sent(&self.store, CHANNEL, id, event).map_err(store_err)?;
        }
        log(
            &self.store,
            Level::Info,
            "status.send",
            &format!("order {}: sent {event} to Medusa", known.reference),
            Some(1),
        );
        Ok(())
    }

    async fn send_status_admin(
        &self,
        id: &str,
        event: &str,
        p: &jobs::SendStatus,
        known: &orders::ChannelOrder,
    ) -> Result<(), JobError> {
        let items = known.meta["items"].clone();
        let fulfillment = known.meta["fulfillment_id"].as_str().map(str::to_string);
        match event {
            "order.confirmed" => {
                self.api
                    .post(
                        &format!("admin/orders/{id}"),
                        &serde_json::json!({"metadata": {"odoo_state": "confirmed"}}),
                    )
                    .await
                    .map_err(job_err)?;
            }
            "order.shipped" => {
                let fid = match fulfillment {
                    Some(f) => f,
                    None => {
                        let body = serde_json::json!({"items": items, "location_id": self.settings.location_id});
                        let resp = self
                            .api
                            .post(&format!("admin/orders/{id}/fulfillments"), &body)
                            .await
                            .map_err(job_err)?;
                        let fid = resp["order"]["fulfillments"].as_array().and_then(|f| f.last()).and_then(|f| f["id"].as_str()).map(str::to_string).ok_or_else(|| {
                            JobError::new(RetryClass::Transient, format!("Medusa created a fulfillment for {id} but returned no fulfillment id"))
                        })?;
                        orders::merge_meta(
                            &self.store,
                            CHANNEL,
                            id,
                            &serde_json::json!({"fulfillment_id": fid}),
                        )
                        .map_err(store_err)?;
                        fid
                    }
                };
                let tracking = p.tracking_number.as_deref().unwrap_or("");
                let labels = if tracking.is_empty() {
                    serde_json::json!([])
                } else {
                    serde_json::json!([{"tracking_number": tracking, "tracking_url": "", "label_url": ""}])
                };
                self.api
                    .post(
                        &format!("admin/orders/{id}/fulfillments/{fid}/shipments"),
                        &serde_json::json!({"items": items, "labels": labels}),
                    )
                    .await
                    .map_err(job_err)?;
            }
            "order.delivered" => {
                let fid = fulfillment.ok_or_else(|| {
                    JobError::new(
                        RetryClass::Transient,
                        format!("order {id} has no fulfillment yet"),
                    )
                })?;
                self.api
                    .post(
                        &format!("admin/orders/{id}/fulfillments/{fid}/mark-as-delivered"),
                        &serde_json::json!({}),
                    )
                    .await
                    .map_err(job_err)?;
            }
            "order.invoiced" | "order.paid" => {
                let flag = if event == "order.paid" {
                    "odoo_paid"
                } else {
                    "odoo_invoiced"
                };
                self.api
                    .post(
                        &format!("admin/orders/{id}"),
                        &serde_json::json!({"metadata": {flag: true}}),
                    )
                    .await
                    .map_err(job_err)?;
            }
            "order.cancelled" => {
                self.api
                    .post(&format!("admin/orders/{id}/cancel"), &serde_json::json!({}))
                    .await
                    .map_err(job_err)?;
            }
            _ => {}
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Wiring
// ---------------------------------------------------------------------------------------------

impl JobHandler for Medusa {
    fn handle<'a>(&'a self, job: &'a Job) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(async move {
            match job.kind.as_str() {
                "order" => self.import_order(job).await,
                "customer" => self.import_customer(job).await,
                "status" => self.send_status(job).await,
                "product" => self
                    .push_products(std::slice::from_ref(job))
                    .await
                    .remove(0),
                "stock" => self.push_stock(std::slice::from_ref(job)).await.remove(0),
                other => Err(JobError::new(
                    RetryClass::Permanent,
                    format!("unknown Medusa job kind {other:?}"),
                )),
            }
        })
    }

    fn batch_size(&self, kind: &str) -> usize {
        match kind {
            "product" | "stock" => self.batch_size,
            _ => 1,
        }
    }

    fn handle_batch<'a>(&'a self, jobs: &'a [Job]) -> BoxFuture<'a, Vec<Result<(), JobError>>> {
        Box::pin(async move {
            match jobs[0].kind.as_str() {
                "product" => self.push_products(jobs).await,
                "stock" => self.push_stock(jobs).await,
                _ => crate::daemon::workers::one_by_one(self, jobs).await,
            }
        })
    }
}

impl crate::channel::MarketChannel for Medusa {
    fn run_stream(&self, kind: StreamKind) -> BoxFuture<'_, Result<StreamOutcome, String>> {
        Box::pin(async move {
            match kind {
                StreamKind::Catalog => self.catalog(false).await,
                StreamKind::Reconcile => self.catalog(true).await,
                StreamKind::Orders => self.pull_orders().await,
                StreamKind::Status => self.detect_status().await,
            }
        })
    }
}
