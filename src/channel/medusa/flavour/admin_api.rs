//! Any Medusa v2 store's Admin API: the secret key as `Authorization: Basic base64("sk_…:")`
//! (a secret key sent as Bearer is refused), amounts in major units (see `fixtures/medusa-v2`).

use super::*;

pub struct AdminApi;

impl Flavour for AdminApi {
    fn auth(&self, token: Secret) -> (&'static str, Secret) {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{}:", token.expose()));
        ("Authorization", Secret::new(format!("Basic {encoded}")))
    }

    fn check_path(&self) -> &'static str {
        "admin/orders"
    }

    fn order_path(&self, id: &str) -> String {
        format!("admin/orders/{id}")
    }

    fn order_list(
        &self,
        from: &str,
        limit: usize,
        offset: String,
    ) -> (&'static str, Vec<(&'static str, String)>) {
        (
            "admin/orders",
            vec![
                ("fields", "id,display_id,status,email,currency_code,metadata,created_at,updated_at,total,*items,items.tax_lines.*,items.adjustments.*,*shipping_methods,shipping_methods.tax_lines.*,shipping_methods.adjustments.*,*customer,*shipping_address".into()),
                ("created_at[$gte]", from.to_string()),
                ("limit", limit.to_string()),
                ("offset", offset),
            ],
        )
    }

    /// Major units, as written.
    fn unit_price(&self, amount: Decimal, _currency: &str) -> Option<Decimal> {
        Some(amount)
    }

    fn synced(&self, id: &str, odoo_id: i64, at: &str) -> (String, serde_json::Value) {
        (
            format!("admin/orders/{id}"),
            serde_json::to_value(wire::synced_metadata(odoo_id, at)).unwrap_or_default(),
        )
    }

    fn push_products<'a>(
        &'a self,
        m: &'a Medusa,
        jobs: &'a [Job],
    ) -> BoxFuture<'a, Vec<Result<(), JobError>>> {
        Box::pin(m.push_products_admin(jobs))
    }

    fn push_stock<'a>(
        &'a self,
        m: &'a Medusa,
        pushes: &'a [&'a StockPush],
    ) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(async move {
            let items: Vec<(String, i64)> =
                pushes.iter().map(|p| (p.sku.clone(), p.quantity)).collect();
            m.set_levels(&items).await
        })
    }

    /// Each Odoo delivery becomes a fulfillment of its quantities.
    fn partial_shipments(&self) -> bool {
        true
    }

    fn send_status<'a>(
        &'a self,
        m: &'a Medusa,
        id: &'a str,
        event: &'a str,
        p: &'a jobs::SendStatus,
        known: &'a order_state::ChannelOrder,
    ) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(m.send_status_admin(id, event, p, known))
    }
}

impl Medusa {
    /// Admin API: create new products, update known ones (draft when archived), then stock.
    pub(in crate::channel::medusa) async fn push_products_admin(
        &self,
        jobs: &[Job],
    ) -> Vec<Result<(), JobError>> {
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
                events::emit(
                    &self.store,
                    &events::Pushed {
                        channel: CHANNEL,
                        stock: false,
                        count: jobs.len() as i64,
                        problem: None,
                    },
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

    pub(in crate::channel::medusa) async fn admin_batch(
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

    /// Admin API: the inventory items of these SKUs, with their levels (as answered).
    pub(in crate::channel::medusa) async fn inventory_items(
        &self,
        skus: &[&str],
    ) -> Result<serde_json::Value, ChannelError> {
        let query: Vec<(&str, String)> = skus
            .iter()
            .map(|sku| ("sku[]", sku.to_string()))
            .chain([("limit", skus.len().to_string())])
            .collect();
        self.api.get("admin/inventory-items", &query).await
    }

    /// Admin API: sets stock at the configured location (create the level, or update it).
    pub(in crate::channel::medusa) async fn set_levels(
        &self,
        items: &[(String, i64)],
    ) -> Result<(), JobError> {
        if items.is_empty() {
            return Ok(());
        }
        let location = self.settings.location_id.clone().unwrap_or_default();
        let skus: Vec<&str> = items.iter().map(|(sku, _)| sku.as_str()).collect();
        let found = self.inventory_items(&skus).await.map_err(job_err)?;
        let found: wire::InventoryItems = wire::answer("admin/inventory-items", found)
            .map_err(|e| JobError::new(RetryClass::Transient, e.to_string()))?;
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

    pub(in crate::channel::medusa) async fn send_status_admin(
        &self,
        id: &str,
        event: &str,
        p: &jobs::SendStatus,
        known: &order_state::ChannelOrder,
    ) -> Result<(), JobError> {
        match event {
            "order.confirmed" => {
                self.api
                    .post(
                        &format!("admin/orders/{id}"),
                        &wire::OrderMetadata::one("odoo_state", "confirmed"),
                    )
                    .await
                    .map_err(job_err)?;
            }
            crate::channel::medusa::status::SHIPMENT => {
                self.ship_deliveries(id, p, fulfil::Scope::Done).await?;
            }
            "order.shipped" => {
                self.ship_deliveries(id, p, fulfil::Scope::Whole).await?;
            }
            "order.delivered" => self.deliver(id, p, known).await?,
            "order.invoiced" | "order.paid" => {
                let flag = if event == "order.paid" {
                    "odoo_paid"
                } else {
                    "odoo_invoiced"
                };
                self.api
                    .post(
                        &format!("admin/orders/{id}"),
                        &wire::OrderMetadata::one(flag, true),
                    )
                    .await
                    .map_err(job_err)?;
                if event == "order.paid" {
                    self.complete_if_due(id, known).await?;
                }
            }
            "order.cancelled" => self.cancel_order(id).await?,
            _ => {}
        }
        Ok(())
    }
}
