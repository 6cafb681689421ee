//! Medusa catalog out, in both flavours: listings and stock by SKU.

use super::*;
use crate::channel::drift::{Held, Repaired, Wanted};
use crate::error::Context;
use std::collections::HashSet;

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
    pub(super) async fn check_language(&self) -> Result<(), crate::error::Error> {
        match language_left_out(&self.odoo, &self.settings.lang).await {
            Ok(None) => self.translation.available(),
            Ok(Some(why)) => self.translation.unavailable(&why),
            Err(e) => {
                return Err(crate::error::Error::invalid(format!(
                    "reading Odoo's installed languages: {e}"
                )))
            }
        }
        self.lang_checked.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Arabic (or the configured language's) names and descriptions of these products; none
    /// while the translation is left out. Only an unreachable Odoo fails the poll: any other
    /// refusal leaves the translation out and the listings go on.
    pub(super) async fn translations(
        &self,
        ids: &[i64],
    ) -> Result<HashMap<i64, (Option<String>, Option<String>)>, crate::error::Error> {
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
                return Err(crate::error::Error::from(e).context("reading translations from Odoo"))
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

    pub(super) fn listing(
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
            published: p.sellable(),
        }
    }

    pub(super) fn stock_of(&self, p: &ProductSnapshot) -> i64 {
        if p.sellable() {
            p.stock.floor().max(Decimal::ZERO).to_i64().unwrap_or(0)
        } else {
            0
        }
    }

    /// Mapping of a product by SKU (created on first sight), and of its stock.
    /// The product's listing and stock mappings (`known`: as read for its page), linked to
    /// `sku`: made when missing, made anew when the SKU changed in Odoo.
    pub(super) fn mappings_for(
        &self,
        p: &ProductSnapshot,
        sku: &str,
        known: [Option<&mapping::Mapping>; 2],
    ) -> Result<Option<(mapping::Mapping, mapping::Mapping)>, crate::error::Error> {
        let get = |kind: &str,
                   known: Option<&mapping::Mapping>|
         -> Result<Option<mapping::Mapping>, crate::error::Error> {
            match known.cloned() {
                Some(m) if m.external_id == sku => Ok(Some(m)),
                Some(m) => {
                    // The SKU changed in Odoo: the new one is a new product for the store.
                    mapping::unset(&self.store, CHANNEL, kind, Some(p.id), None)?;
                    self.skipped(events::Skipped::SkuChanged {
                        odoo_id: p.id,
                        from: &m.external_id,
                        to: sku,
                    });
                    self.link(kind, p.id, sku)
                }
                None => self.link(kind, p.id, sku),
            }
        };
        Ok(match (get("product", known[0])?, get("stock", known[1])?) {
            (Some(a), Some(b)) => Some((a, b)),
            _ => None,
        })
    }

    fn skipped(&self, skipped: events::Skipped<'_>) {
        events::emit(
            &self.store,
            &events::CatalogSkipped {
                channel: CHANNEL,
                skipped,
            },
        );
    }

    pub(super) fn link(
        &self,
        kind: &str,
        odoo_id: i64,
        sku: &str,
    ) -> Result<Option<mapping::Mapping>, crate::error::Error> {
        match mapping::set(&self.store, CHANNEL, kind, "product.product", odoo_id, sku) {
            Ok(m) => Ok(Some(m)),
            Err(crate::store::StoreError::Conflict(why)) => {
                self.skipped(events::Skipped::SharedSku {
                    odoo_id,
                    sku,
                    why: &why,
                });
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    pub(super) async fn plan(
        &self,
        products: &[ProductSnapshot],
    ) -> Result<usize, crate::error::Error> {
        let jobs = self.plan_jobs(products, false).await?;
        crate::channel::enqueue_planned(&self.store, jobs)
    }

    /// The listing and stock jobs of these products: what changed since it was sent, or
    /// (`force`, a repair) everything, whatever was sent.
    pub(super) async fn plan_jobs(
        &self,
        products: &[ProductSnapshot],
        force: bool,
    ) -> Result<Vec<NewJob>, crate::error::Error> {
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
        let waiting = queue::waiting_keys(&self.store, &keys)?;
        // Both mappings of every product of the page, in two statements.
        let known = |kind: &str| mapping::by_odoo_many(&self.store, CHANNEL, kind, &ids);
        let (listed, stocked) = (known("product")?, known("stock")?);
        let mut jobs = Vec::new();
        let mut no_sku = Vec::new();
        for p in products {
            let Some(sku) = p.default_code.as_deref() else {
                if p.sellable() {
                    no_sku.push(p.id);
                }
                continue;
            };
            let Some((pm, sm)) =
                self.mappings_for(p, sku, [listed.get(&p.id), stocked.get(&p.id)])?
            else {
                continue;
            };
            let listing = self.listing(p, sku, ar.get(&p.id));
            let quantity = self.stock_of(p);
            let listing_value = serde_json::to_value(&listing).unwrap_or_default();
            let hash = fnv(&format!("{}|{}", listing_value, self.settings.currency));
            let stock_hash = fnv(&format!("{sku}|{quantity}"));
            // Without a price the listing waits (the stream says why); its stock does not.
            if p.unpriced.is_none()
                && (force
                    || pm.last_hash.as_deref() != Some(hash.as_str())
                    || waiting.contains(&product_key(p.id)))
            {
                jobs.push(catalog_job(
                    jobs::Kind::Product,
                    product_key(p.id),
                    Payload::of(&ProductPush {
                        mapping_id: pm.id,
                        stock_mapping_id: sm.id,
                        hash,
                        stock_hash,
                        listing,
                        quantity,
                    }),
                ));
            } else if pm.last_sent_at.is_some()
                && (force
                    || sm.last_hash.as_deref() != Some(stock_hash.as_str())
                    || waiting.contains(&stock_key(p.id)))
            {
                jobs.push(catalog_job(
                    jobs::Kind::Stock,
                    stock_key(p.id),
                    Payload::of(&StockPush {
                        mapping_id: sm.id,
                        product_mapping_id: pm.id,
                        hash: stock_hash,
                        sku: sku.to_string(),
                        quantity,
                    }),
                ));
            }
        }
        if !no_sku.is_empty() {
            let shown: Vec<String> = no_sku.iter().take(20).map(|i| i.to_string()).collect();
            let shown = format!(
                "{}{}",
                shown.join(", "),
                if no_sku.len() > 20 { ", …" } else { "" }
            );
            self.skipped(events::Skipped::WithoutSku {
                count: no_sku.len(),
                shown: &shown,
            });
        }
        Ok(jobs)
    }

    pub(super) fn mark(&self, mapping_id: i64, hash: &str) -> Result<(), JobError> {
        mapping::mark_sent(&self.store, mapping_id, hash).map_err(store_err)
    }

    pub(super) fn product_sent(&self, p: &ProductPush) -> Result<(), JobError> {
        self.mark(p.mapping_id, &p.hash)?;
        // The push carried the stock too.
        self.mark(p.stock_mapping_id, &p.stock_hash)
    }
}

impl Medusa {
    pub(super) fn currency(&self) -> &str {
        &self.settings.currency
    }

    pub(super) fn minor(&self, amount: Decimal) -> i64 {
        money::to_minor(amount, self.currency()).unwrap_or(0)
    }

    pub(super) async fn push_products(&self, jobs: &[Job]) -> Vec<Result<(), JobError>> {
        self.flavour().push_products(self, jobs).await
    }

    pub(super) async fn push_stock(&self, jobs: &[Job]) -> Vec<Result<(), JobError>> {
        let pushes = jobs::parse_all::<StockPush>(jobs);
        let good: Vec<&StockPush> = pushes.iter().filter_map(|p| p.as_ref().ok()).collect();
        let sent: Result<(), JobError> = if good.is_empty() {
            Ok(())
        } else {
            self.flavour().push_stock(self, &good).await
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
}

pub(crate) fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A listing or stock job of one product (coalesced by `key`: the latest value wins).
fn catalog_job(kind: jobs::Kind, key: String, payload: Payload) -> NewJob {
    NewJob {
        channel: CHANNEL.into(),
        kind: kind.as_str().into(),
        key,
        payload,
        correlation_id: None,
    }
}

impl crate::channel::drift::ReadBack for Medusa {
    /// Admin API: the products with their variants' prices, then the stock of their SKUs at
    /// the location (100 a request). MarqaSouq's routes have no way to read products back.
    async fn holdings(&self) -> Result<HashMap<String, Held>, crate::error::Error> {
        if self.settings.flavour == MedusaFlavour::Marqasouq {
            return Err(crate::error::Error::invalid(
                "MarqaSouq's /odoo routes offer no way to read the store's products back, so diff cannot compare them (the reconcile compares with what marketsync last sent); use the admin-api flavour for a store whose Admin API marketsync may read",
            ));
        }
        let mut out = HashMap::new();
        let mut offset = 0usize;
        const PAGE: usize = 200;
        loop {
            let query = [
                ("fields", "id,status,*variants,*variants.prices".to_string()),
                // A stable order, so that pages neither skip nor repeat a product.
                ("order", "id".to_string()),
                ("limit", PAGE.to_string()),
                ("offset", offset.to_string()),
            ];
            let body = self.api.get("admin/products", &query).await?;
            let page: wire::ProductPage = wire::answer("admin/products", body)?;
            let n = page.products.len();
            for p in page.products {
                for v in p.variants {
                    let Some(sku) = v.sku else { continue };
                    let price = v
                        .prices
                        .iter()
                        .find(|x| x.currency_code.eq_ignore_ascii_case(self.currency()))
                        .and_then(|x| crate::channel::kit::decimal_of(&x.amount));
                    let held = Held {
                        price,
                        stock: None,
                        published: Some(p.status == "published"),
                    };
                    out.insert(sku, held);
                }
            }
            offset += n;
            if n < PAGE || page.count.is_some_and(|c| offset >= c) {
                break;
            }
        }
        let location = self.settings.location_id.clone().unwrap_or_default();
        let skus: Vec<String> = out.keys().cloned().collect();
        let skus: Vec<&str> = skus.iter().map(String::as_str).collect();
        for chunk in skus.chunks(100) {
            let body = self.inventory_items(chunk).await?;
            let items: wire::InventoryItems = wire::answer("admin/inventory-items", body)?;
            for item in items.inventory_items {
                let Some(held) = item.sku.as_ref().and_then(|s| out.get_mut(s)) else {
                    continue;
                };
                let at = item
                    .location_levels
                    .iter()
                    .find(|l| l.location_id == location);
                held.stock = Some(at.and_then(|l| l.stocked_quantity).unwrap_or(0.0) as i64);
            }
        }
        Ok(out)
    }

    /// Every product with a SKU: the store lists the published ones.
    async fn wanted(&self, page: &[ProductSnapshot]) -> Result<Vec<Wanted>, crate::error::Error> {
        let mut wanted = Vec::with_capacity(page.len());
        for p in page {
            let Some(sku) = p.default_code.as_deref() else {
                continue; // never listed: the catalog stream says why
            };
            let published = p.sellable();
            let price = money::round(p.price, self.currency());
            let held = Held {
                price: p.unpriced.is_none().then_some(price),
                stock: published.then(|| self.stock_of(p)),
                published: Some(published),
            };
            wanted.push(Wanted::new(p.id, sku, held));
        }
        Ok(wanted)
    }

    /// Queues each product's listing and stock as if never sent; one the store no longer has
    /// is created again (its old ids are forgotten).
    async fn repair(
        &self,
        page: &[ProductSnapshot],
        missing: &HashSet<i64>,
    ) -> Result<Repaired, crate::error::Error> {
        let ids: Vec<i64> = missing.iter().copied().collect();
        let gone = mapping::by_odoo_many(&self.store, CHANNEL, "product", &ids)?;
        for m in gone.values() {
            let forget = serde_json::json!({"product_id": null, "variant_id": null});
            mapping::merge_meta(&self.store, m.id, &forget)?;
        }
        let jobs = self.plan_jobs(page, true).await?;
        let queued = queue::enqueue_many(&self.store, &jobs)?.len();
        Ok(Repaired {
            queued,
            not_repaired: Vec::new(),
        })
    }

    fn reader(&self) -> &crate::sync::catalog::CatalogReader {
        &self.reader
    }
}

impl crate::channel::Catalog for Medusa {
    async fn catalog(&self, full: bool) -> Result<StreamOutcome, crate::error::Error> {
        let name = format!("{CHANNEL}.catalog");
        let cursor = if full {
            None
        } else {
            streams::get(&self.store, &name)?.and_then(|s| s.cursor)
        };
        let started = poll_start();
        let mut unpriced = crate::sync::catalog::Unpriced::default();
        // A deleted pricelist rule leaves no trace to find its products by: read them all.
        let rules = self
            .reader
            .pricelist_rules()
            .await
            .context("reading the pricelist's rules from Odoo")?;
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
                        .context("reading the catalog from Odoo")?;
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
                    .context("reading changes from Odoo")?;
                unpriced.note(&products);
                self.plan(&products).await?
            }
        };
        // The others went out; the cursor stays until these have a price.
        unpriced.verdict(&self.reader).await?;
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
}
