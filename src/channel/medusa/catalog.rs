//! Medusa catalog out, in both flavours: listings and stock by SKU.

use super::*;

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
    pub(super) async fn check_language(&self) -> Result<(), String> {
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
    pub(super) async fn translations(
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
            published: p.active && p.sale_ok,
        }
    }

    pub(super) fn stock_of(&self, p: &ProductSnapshot) -> i64 {
        if p.active && p.sale_ok {
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
    ) -> Result<Option<(mapping::Mapping, mapping::Mapping)>, String> {
        let get = |kind: &str,
                   known: Option<&mapping::Mapping>|
         -> Result<Option<mapping::Mapping>, String> {
            match known.cloned() {
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
        Ok(match (get("product", known[0])?, get("stock", known[1])?) {
            (Some(a), Some(b)) => Some((a, b)),
            _ => None,
        })
    }

    pub(super) fn link(
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

    pub(super) async fn plan(&self, products: &[ProductSnapshot]) -> Result<usize, String> {
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
        // Both mappings of every product of the page, in two statements.
        let known = |kind: &str| {
            mapping::by_odoo_many(&self.store, CHANNEL, kind, &ids).map_err(|e| e.to_string())
        };
        let (listed, stocked) = (known("product")?, known("stock")?);
        let mut jobs = Vec::new();
        let mut no_sku = Vec::new();
        for p in products {
            let Some(sku) = p.default_code.as_deref() else {
                if p.active && p.sale_ok {
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
                && (pm.last_hash.as_deref() != Some(hash.as_str())
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
                && (sm.last_hash.as_deref() != Some(stock_hash.as_str())
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

    pub(super) async fn catalog(&self, full: bool) -> Result<StreamOutcome, String> {
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

    /// MarqaSouq's product body (seed 004 §5): amounts in minor units (KWD fils).
    pub(super) fn marqasouq_product<'a>(
        &'a self,
        l: &'a Listing,
        quantity: i64,
    ) -> wire::MarqasouqProduct<'a> {
        wire::MarqasouqProduct {
            odoo_product_id: l.odoo_id,
            sku: &l.sku,
            title: &l.title,
            title_ar: l.title_ar.as_deref(),
            description: l.description.as_deref(),
            description_ar: l.description_ar.as_deref(),
            price: self.minor(l.price),
            cost_price: self.minor(l.cost),
            currency_code: self.currency(),
            weight: l.weight_g,
            weight_unit: "g",
            barcode: l.barcode.as_deref(),
            category_handle: l.category.as_deref().map(slug),
            images: [wire::Image {
                url: &l.image_url,
                position: 0,
                is_thumbnail: true,
            }],
            metadata: wire::ProductMetadata {
                odoo_id: l.odoo_id,
                title_ar: l.title_ar.as_deref(),
                description_ar: l.description_ar.as_deref(),
                cost: None,
                image_url: None,
            },
            inventory: wire::Inventory {
                quantity,
                manage_inventory: true,
                allow_backorder: false,
            },
        }
    }

    pub(super) async fn push_products(&self, jobs: &[Job]) -> Vec<Result<(), JobError>> {
        match self.settings.flavour {
            MedusaFlavour::Marqasouq => self.push_products_marqasouq(jobs).await,
            MedusaFlavour::AdminApi => self.push_products_admin(jobs).await,
        }
    }

    pub(super) async fn push_products_marqasouq(&self, jobs: &[Job]) -> Vec<Result<(), JobError>> {
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
            let body = wire::ProductsBulk {
                products: bulk.iter().map(|(_, p, _)| p).collect(),
            };
            match self.api.post("odoo/products/bulk", &body).await {
                Ok(resp) => {
                    // An answer without the refused ones' list refused none.
                    let answer: wire::BulkAnswer = serde_json::from_value(resp).unwrap_or_default();
                    let errors: HashMap<String, String> = answer
                        .results
                        .errors
                        .into_iter()
                        .map(|e| (e.sku, e.message.unwrap_or_else(|| "refused".into())))
                        .collect();
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

    pub(super) async fn push_stock(&self, jobs: &[Job]) -> Vec<Result<(), JobError>> {
        let pushes = jobs::parse_all::<StockPush>(jobs);
        let good: Vec<&StockPush> = pushes.iter().filter_map(|p| p.as_ref().ok()).collect();
        let sent: Result<(), JobError> = if good.is_empty() {
            Ok(())
        } else if self.settings.flavour == MedusaFlavour::AdminApi {
            let items: Vec<(String, i64)> =
                good.iter().map(|p| (p.sku.clone(), p.quantity)).collect();
            self.set_levels(&items).await
        } else {
            let body = wire::InventoryBulk {
                items: good
                    .iter()
                    .map(|p| wire::SkuQuantity {
                        sku: &p.sku,
                        quantity: p.quantity,
                    })
                    .collect(),
            };
            let r = self
                .api
                .post("odoo/inventory/bulk-update", &body)
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
    pub(super) async fn push_products_admin(&self, jobs: &[Job]) -> Vec<Result<(), JobError>> {
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

    pub(super) async fn admin_batch(
        &self,
        pushes: &[Result<ProductPush, JobError>],
        which: &[usize],
    ) -> Result<(), JobError> {
        // What each listing's product and variant are in Medusa (from its mapping), read first:
        // the bodies below borrow them.
        let mut known = Vec::new();
        for &i in which {
            let Ok(push) = &pushes[i] else { continue };
            let l = &push.listing;
            let pm =
                mapping::by_odoo(&self.store, CHANNEL, "product", l.odoo_id).map_err(store_err)?;
            let ids = pm.as_ref().and_then(|m| {
                Some((
                    m.meta["product_id"].as_str()?.to_string(),
                    m.meta["variant_id"].as_str()?.to_string(),
                ))
            });
            known.push((push, pm.map(|m| m.id), ids));
        }
        let mut batch = wire::ProductsBatch {
            create: Vec::new(),
            update: Vec::new(),
        };
        let mut created_for = Vec::new();
        let mut levels = Vec::new();
        for (push, mapping_id, ids) in &known {
            let l = &push.listing;
            // Medusa v2 wants a JSON number in major units; the shortest float text of a
            // currency-rounded decimal is that decimal ("12.9").
            let price = wire::Price {
                currency_code: self.currency(),
                amount: l.price.to_string().parse::<f64>().unwrap_or(0.0),
            };
            let metadata = wire::ProductMetadata {
                odoo_id: l.odoo_id,
                title_ar: l.title_ar.as_deref(),
                description_ar: l.description_ar.as_deref(),
                cost: Some(l.cost),
                image_url: Some(&l.image_url),
            };
            let status = if l.published { "published" } else { "draft" };
            match ids {
                Some((pid, vid)) => batch.update.push(wire::ProductUpdate {
                    id: pid,
                    title: &l.title,
                    description: l.description.as_deref(),
                    status,
                    metadata,
                    variants: [wire::VariantUpdate {
                        id: vid,
                        barcode: l.barcode.as_deref(),
                        weight: l.weight_g,
                        prices: [price],
                    }],
                }),
                None if !l.published => {} // never shown, nothing to hide
                None => {
                    batch.create.push(wire::NewProduct {
                        title: &l.title,
                        handle: slug(&l.sku),
                        status,
                        description: l.description.as_deref(),
                        metadata,
                        options: [wire::ProductOption {
                            title: "Default option",
                            values: ["Default"],
                        }],
                        variants: [wire::NewVariant {
                            title: "Default",
                            sku: &l.sku,
                            barcode: l.barcode.as_deref(),
                            weight: l.weight_g,
                            manage_inventory: true,
                            options: [("Default option", "Default")].into_iter().collect(),
                            prices: [price],
                        }],
                        shipping_profile_id: self.settings.shipping_profile_id.as_deref(),
                        sales_channels: self
                            .settings
                            .sales_channel_id
                            .as_deref()
                            .map(|id| [wire::IdRef { id }]),
                    });
                    created_for.push((l.sku.clone(), *mapping_id));
                }
            }
            levels.push((l.sku.clone(), push.quantity));
        }
        if !batch.create.is_empty() || !batch.update.is_empty() {
            let resp = self
                .api
                .post("admin/products/batch", &batch)
                .await
                .map_err(job_err)?;
            let answer: wire::BatchAnswer = serde_json::from_value(resp).unwrap_or_default();
            for p in answer.created {
                for v in p.variants {
                    let sku = v.sku.as_deref().unwrap_or_default();
                    if let Some((_, Some(mid))) = created_for.iter().find(|(s, _)| s == sku) {
                        mapping::merge_meta(
                            &self.store,
                            *mid,
                            &serde_json::json!({"product_id": p.id, "variant_id": v.id}),
                        )
                        .map_err(store_err)?;
                    }
                }
            }
        }
        self.set_levels(&levels).await
    }

    /// Admin API: sets stock at the configured location (create the level, or update it).
    pub(super) async fn set_levels(&self, items: &[(String, i64)]) -> Result<(), JobError> {
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
        let found: wire::InventoryItems = wire::answer("admin/inventory-items", found)
            .map_err(|e| JobError::new(RetryClass::Transient, e))?;
        let mut batch = wire::LevelsBatch {
            create: Vec::new(),
            update: Vec::new(),
        };
        for (sku, qty) in items {
            let Some(item) = found
                .inventory_items
                .iter()
                .find(|i| i.sku.as_deref() == Some(sku.as_str()))
            else {
                continue; // archived products lose their inventory item: nothing to stock
            };
            let level = wire::Level {
                inventory_item_id: &item.id,
                location_id: &location,
                stocked_quantity: *qty,
            };
            if item
                .location_levels
                .iter()
                .any(|l| l.location_id == location)
            {
                batch.update.push(level);
            } else {
                batch.create.push(level);
            }
        }
        if batch.create.is_empty() && batch.update.is_empty() {
            return Ok(());
        }
        self.api
            .post("admin/inventory-items/location-levels/batch", &batch)
            .await
            .map_err(job_err)?;
        Ok(())
    }
}

pub(super) fn urlencode(s: &str) -> String {
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
