//! MarqaSouq's `/odoo/*` routes (seed 004): `x-odoo-api-key`, amounts in minor units.

use super::*;

pub struct Marqasouq;

impl Flavour for Marqasouq {
    fn auth(&self, token: Secret) -> (&'static str, Secret) {
        ("x-odoo-api-key", token)
    }

    fn check_path(&self) -> &'static str {
        "odoo/orders"
    }

    fn order_path(&self, id: &str) -> String {
        format!("odoo/orders/{id}")
    }

    fn order_list(
        &self,
        from: &str,
        limit: usize,
        offset: String,
    ) -> (&'static str, Vec<(&'static str, String)>) {
        (
            "odoo/orders",
            vec![
                ("synced", "false".into()),
                ("date_from", from.to_string()),
                ("limit", limit.to_string()),
                ("offset", offset),
            ],
        )
    }

    /// Minor units: a whole number, or not a price.
    fn unit_price(&self, amount: Decimal, currency: &str) -> Option<Decimal> {
        amount
            .fract()
            .is_zero()
            .then(|| Some(money::from_minor(amount.to_i64()?, currency)))?
    }

    fn synced(&self, id: &str, odoo_id: i64, at: &str) -> (String, serde_json::Value) {
        (
            format!("odoo/orders/{id}/synced"),
            serde_json::to_value(wire::Synced {
                odoo_order_id: odoo_id,
                synced_at: at,
            })
            .unwrap_or_default(),
        )
    }

    fn push_products<'a>(
        &'a self,
        m: &'a Medusa,
        jobs: &'a [Job],
    ) -> BoxFuture<'a, Vec<Result<(), JobError>>> {
        Box::pin(m.push_products_marqasouq(jobs))
    }

    fn push_stock<'a>(
        &'a self,
        m: &'a Medusa,
        pushes: &'a [&'a StockPush],
    ) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(m.push_stock_marqasouq(pushes))
    }

    fn send_status<'a>(
        &'a self,
        m: &'a Medusa,
        id: &'a str,
        event: &'a str,
        p: &'a jobs::SendStatus,
        _known: &'a order_state::ChannelOrder,
    ) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(m.send_status_marqasouq(id, event, p))
    }
}

impl Medusa {
    /// MarqaSouq's product body (seed 004 §5): amounts in minor units (KWD fils).
    pub(in crate::channel::medusa) fn marqasouq_product<'a>(
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

    pub(in crate::channel::medusa) async fn push_products_marqasouq(
        &self,
        jobs: &[Job],
    ) -> Vec<Result<(), JobError>> {
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
                    events::emit(
                        &self.store,
                        &events::Pushed {
                            channel: CHANNEL,
                            stock: false,
                            count: ok,
                            problem: None,
                        },
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

    pub(in crate::channel::medusa) async fn push_stock_marqasouq(
        &self,
        good: &[&StockPush],
    ) -> Result<(), JobError> {
        let body = wire::InventoryBulk {
            items: good
                .iter()
                .map(|p| wire::SkuQuantity {
                    sku: &p.sku,
                    quantity: p.quantity,
                })
                .collect(),
        };
        self.api
            .post("odoo/inventory/bulk-update", &body)
            .await
            .map_err(job_err)?;
        events::emit(
            &self.store,
            &events::Pushed {
                channel: CHANNEL,
                stock: true,
                count: good.len() as i64,
                problem: None,
            },
        );
        Ok(())
    }
    /// MarqaSouq's order-status webhook: the event and what it says of the order.
    pub(in crate::channel::medusa) async fn send_status_marqasouq(
        &self,
        id: &str,
        event: &str,
        p: &jobs::SendStatus,
    ) -> Result<(), JobError> {
        let mut order = wire::StatusOrder {
            medusa_order_id: id,
            odoo_order_id: p.odoo_order_id,
            odoo_order_name: p.odoo_order_name.as_deref(),
            ..Default::default()
        };
        match event {
            "order.shipped" => {
                order.tracking_number = Some(p.tracking_number.as_deref());
                order.shipped_date = Some(p.date.as_deref());
            }
            "order.delivered" => order.delivered_date = Some(p.date.as_deref()),
            "order.paid" => order.payment_date = Some(p.payment_date.as_deref()),
            "order.cancelled" => order.cancelled_reason = Some("Cancelled in Odoo"),
            _ => {}
        }
        self.api
            .post(
                "odoo/webhooks/order-status",
                &wire::OrderStatus {
                    event_type: event,
                    order,
                },
            )
            .await
            .map_err(job_err)?;
        Ok(())
    }
}
