//! Medusa orders in: webhooks and the pull to the inbox, one job per order into Odoo, customers.

use super::*;

/// An order job's order as read from the inbox: its id, the event to close or park, and the
/// order (or why it is parked).
struct LoadedOrder {
    id: String,
    event: i64,
    read: Result<(wire::Order, InboundOrder), crate::error::Error>,
}

impl Medusa {
    /// An item's unit price in major units; `None` when it is missing, not a number, negative,
    /// or (MarqaSouq, minor units) not a whole number: such an order is parked, never imported
    /// at a price nobody charged.
    pub(super) fn unit_price(&self, v: &serde_json::Value) -> Option<Decimal> {
        let d = decimal_of(v).filter(|d| !d.is_sign_negative())?;
        self.flavour().unit_price(d, self.currency())
    }

    /// An amount as the flavour writes it, in major units (0 when it is not one).
    fn amount(&self, v: Decimal) -> Decimal {
        self.flavour()
            .unit_price(v.max(Decimal::ZERO), self.currency())
            .unwrap_or_default()
    }

    /// How its orders carry taxes, discounts and shipping into Odoo.
    pub fn terms(&self) -> crate::sync::order_money::Terms {
        crate::sync::order_money::Terms {
            taxes: self.settings.order_taxes.clone(),
            shipping_product: self.settings.shipping_product_id,
            free_shipping_line: self.settings.free_shipping_line,
            discount_product: self.settings.discount_product_id,
            pricelist: self.settings.pricelist_id,
            line_taxes: self.profile.line_taxes,
            is_delivery: self.profile.is_delivery,
            partner_mobile: self.profile.partner_mobile,
        }
    }

    /// The Medusa order as an inbound order; `Err` is the reason to park it.
    pub(super) fn inbound(&self, o: &wire::Order) -> Result<InboundOrder, crate::error::Error> {
        let id =
            o.id.as_deref()
                .ok_or_else(|| crate::error::Error::invalid("a Medusa order without id"))?;
        let display = o.display().ok_or_else(|| {
            crate::error::Error::invalid(format!("Medusa order {id} has no display_id"))
        })?;
        let currency = o.currency_code.as_deref().unwrap_or(self.currency());
        if !currency.eq_ignore_ascii_case(self.currency()) {
            return Err(crate::error::Error::invalid(format!(
                "Medusa order {display} is in {} but the channel's currency (and Odoo pricelist) is {}; import it by hand or fix channels.medusa.currency",
                currency.to_uppercase(),
                self.currency().to_uppercase()
            )));
        }
        let nobody = wire::Person::default();
        let c = o.customer.as_ref().unwrap_or(&nobody);
        let email = c.email.clone().or(o.email.clone());
        let key =
            c.id.clone()
                .or_else(|| email.clone().map(|e| format!("email:{e}")))
                .ok_or_else(|| {
                    crate::error::Error::invalid(format!(
                        "Medusa order {display} has no customer id or email"
                    ))
                })?;
        let name = c.full_name();
        let shipping = o.shipping_address.as_ref().map(|s| Address {
            name: s.full_name(),
            street: s.address_1.clone(),
            city: s.city.clone(),
            zip: s.postal_code.clone(),
            country_code: s.country_code.clone(),
            phone: s.phone.clone(),
        });
        if o.items.is_empty() {
            return Err(crate::error::Error::invalid(format!(
                "Medusa order {display} has no items"
            )));
        }
        let mut lines = Vec::new();
        for it in &o.items {
            let sku = it
                .sku
                .as_deref()
                .or(it.variant_sku.as_deref())
                .ok_or_else(|| {
                    crate::error::Error::invalid(format!(
                        "an item of Medusa order {display} has no SKU"
                    ))
                })?;
            let qty = decimal_of(&it.quantity)
                .filter(|q| *q > Decimal::ZERO)
                .ok_or_else(|| {
                    crate::error::Error::invalid(format!(
                        "an item of Medusa order {display} has no positive quantity"
                    ))
                })?;
            let unit_price = self.unit_price(&it.unit_price).ok_or_else(|| crate::error::Error::invalid(format!(
                "item {sku} of Medusa order {display} has no usable unit_price ({}); it is not imported at a price nobody charged: import it by hand",
                it.unit_price
            )))?;
            lines.push(InboundLine {
                product_key: sku.to_string(),
                description: it
                    .title
                    .as_deref()
                    .or(it.product_title.as_deref())
                    .unwrap_or("")
                    .to_string(),
                quantity: qty,
                unit_price,
                tax_included: it.charged.is_tax_inclusive,
                tax_rate: it.charged.rate(),
                discount: self.amount(it.charged.discount()),
            });
        }
        let mut charges = Vec::new();
        for m in &o.shipping_methods {
            let amount = self.unit_price(&m.amount).ok_or_else(|| {
                crate::error::Error::invalid(format!(
                    "a shipping method of Medusa order {display} has no usable amount ({}); import it by hand",
                    m.amount
                ))
            })?;
            let off = self.amount(m.charged.discount());
            charges.push(crate::sync::order_money::Charge {
                name: m.name.clone().unwrap_or_else(|| "Shipping".into()),
                amount: (amount - off).max(Decimal::ZERO),
                tax_included: m.charged.is_tax_inclusive,
                tax_rate: m.charged.rate(),
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
                phone: c.phone.clone(),
                mobile: None,
                email,
                street: None,
                notes: None,
                shipping,
            },
            lines,
            charges,
            total: self
                .unit_price(&o.total)
                .map(|t| crate::sync::money::round(t, self.currency())),
            currency: self.currency().to_string(),
            note: None,
            terms: self.terms(),
        })
    }

    /// Maps order SKUs not yet pushed from Odoo's own `default_code`s.
    pub(super) async fn resolve_skus(&self, order: &InboundOrder) -> Result<(), JobError> {
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

    pub(super) async fn fetch_order(&self, id: &str) -> Result<serde_json::Value, JobError> {
        let path = self.flavour().order_path(id);
        let body = self.api.get(&path, &[]).await.map_err(job_err)?;
        Ok(wire::unwrap_order(body))
    }

    /// A job's order, read from its newest open inbox event (fetched from the store when only a
    /// status event came): `None` when nothing is open, `Err(reason)` inside when it must be
    /// parked.
    async fn load_order(&self, job: &Job) -> Result<Option<LoadedOrder>, JobError> {
        let jobs::ImportSubject { subject: id } = jobs::parse(job)?;
        let Some(latest) = inbox::latest_open(&self.store, CHANNEL, &id).map_err(store_err)? else {
            return Ok(None);
        };
        let created =
            inbox::list_subject(&self.store, CHANNEL, &id, "order.created").map_err(store_err)?;
        let order_json = match created.last() {
            Some(e) => wire::event_data::<wire::OrderData>(&e.payload).map(|d| d.order),
            None => Ok(self.fetch_order(&id).await?),
        };
        let read = order_json
            .and_then(|j| wire::Order::parse(&j))
            .and_then(|order| {
                let inbound = self.inbound(&order)?;
                Ok((order, inbound))
            });
        Ok(Some(LoadedOrder {
            id,
            event: latest.id,
            read,
        }))
    }

    /// Imports a batch of orders: the new ones are created in Odoo together
    /// (`order_import::import_many`: one search, one customer lookup and create, one order
    /// create), then each goes through the rest of its flow alone.
    pub(super) async fn import_orders(&self, jobs: &[Job]) -> Vec<Result<(), JobError>> {
        if let [job] = jobs {
            return vec![self.import_order(job).await];
        }
        let mut loaded = Vec::with_capacity(jobs.len());
        for job in jobs {
            let l = self.load_order(job).await;
            if let Ok(Some(LoadedOrder {
                read: Ok((_, inbound)),
                ..
            })) = &l
            {
                // SKUs found by default_code are mapped before the batch's create needs them.
                if let Err(e) = self.resolve_skus(inbound).await {
                    loaded.push(Err(e));
                    continue;
                }
            }
            loaded.push(l);
        }
        let refs: Vec<&InboundOrder> = loaded
            .iter()
            .filter_map(|l| match l {
                Ok(Some(LoadedOrder {
                    read: Ok((_, inbound)),
                    ..
                })) => Some(inbound),
                _ => None,
            })
            .collect();
        let mut created = std::collections::HashSet::new();
        for r in order_import::import_many(&self.odoo, &self.store, &refs).await {
            if let Ok(Imported::Created(id)) = r {
                created.insert(id);
            }
            // Parked or failed: the order's own pass finds out again and says why.
        }
        let mut out = Vec::with_capacity(jobs.len());
        for l in loaded {
            out.push(match l {
                Ok(Some(l)) => self.import_loaded(l, &created).await,
                Ok(None) => Ok(()),
                Err(e) => Err(e),
            });
        }
        out
    }

    pub(super) async fn import_order(&self, job: &Job) -> Result<(), JobError> {
        match self.load_order(job).await? {
            Some(l) => {
                if let Ok((_, inbound)) = &l.read {
                    self.resolve_skus(inbound).await?;
                }
                self.import_loaded(l, &Default::default()).await
            }
            None => Ok(()),
        }
    }

    /// The rest of an order's import, once read: into Odoo (`created`: the Odoo orders a
    /// batch created just before), its store-side status, the lines a fulfillment names, a
    /// cancellation in the store, the synced mark.
    async fn import_loaded(
        &self,
        l: LoadedOrder,
        created: &std::collections::HashSet<i64>,
    ) -> Result<(), JobError> {
        let LoadedOrder { id, event, read } = l;
        let (order, inbound) = match read {
            Ok(r) => r,
            Err(reason) => return self.park(event, &reason.to_string()),
        };
        let (odoo_id, made) = match order_import::import(&self.odoo, &self.store, &inbound).await? {
            Imported::Parked(reason) => return self.park(event, &reason.to_string()),
            Imported::Created(i) => (i, true),
            Imported::Existing(i) => (i, created.contains(&i)),
        };
        let status = order.status.as_deref().unwrap_or("pending").to_string();
        order_state::seen(&self.store, CHANNEL, &id, &inbound.reference, &status, None)
            .map_err(store_err)?;
        if made {
            let (_, total) = order_import::read_order(&self.odoo, odoo_id).await?;
            order_import::check_totals(&self.store, &inbound, total)?;
        }
        let items = order.fulfillment_items();
        order_state::set_odoo(&self.store, CHANNEL, &id, odoo_id, "").map_err(store_err)?;
        let known = order_state::get(&self.store, CHANNEL, &id).map_err(store_err)?;
        if known
            .as_ref()
            .is_some_and(|k| k.meta.get("items").is_none())
        {
            order_state::merge_meta(
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
            let new_status = wire::event_data::<wire::StatusData>(&e.payload)
                .ok()
                .and_then(|d| d.new_status)
                .unwrap_or_default();
            let new_status = new_status.as_str();
            order_state::seen(
                &self.store,
                CHANNEL,
                &id,
                &inbound.reference,
                new_status,
                None,
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
        inbox::close_subject(&self.store, CHANNEL, &id, event).map_err(store_err)?;
        events::emit(
            &self.store,
            &events::OrderImported {
                channel: CHANNEL,
                reference: inbound.reference.clone(),
                created: made,
                odoo_id,
                detail: None,
            },
        );
        Ok(())
    }

    pub(super) async fn mark_synced(&self, id: &str, odoo_id: i64) -> Result<(), JobError> {
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let (path, body) = self.flavour().synced(id, odoo_id, &now);
        self.api.post(&path, &body).await.map_err(job_err)?;
        Ok(())
    }

    pub(super) fn park(&self, event: i64, reason: &str) -> Result<(), JobError> {
        crate::channel::kit::park(&self.store, CHANNEL, event, reason)
    }

    pub(super) async fn import_customer(&self, job: &Job) -> Result<(), JobError> {
        let jobs::ImportSubject { subject: id } = jobs::parse(job)?;
        let Some(event) = inbox::latest_open(&self.store, CHANNEL, &id).map_err(store_err)? else {
            return Ok(());
        };
        let c = match wire::event_data::<wire::CustomerData>(&event.payload) {
            Ok(d) => d.customer,
            Err(reason) => return self.park(event.id, &reason.to_string()),
        };
        let name = c.full_name();
        let mut vals = vec![(
            "name",
            Value::from(if name.is_empty() {
                c.email.as_deref().unwrap_or("Medusa customer")
            } else {
                name.as_str()
            }),
        )];
        let address = c.addresses.first();
        for (k, v) in [
            ("email", c.email.as_deref()),
            ("phone", c.phone.as_deref()),
            ("street", address.and_then(|a| a.address_1.as_deref())),
            ("city", address.and_then(|a| a.city.as_deref())),
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
        events::emit(
            &self.store,
            &events::CustomerImported {
                channel: CHANNEL,
                id: &id,
                partner,
            },
        );
        Ok(())
    }
}

impl crate::channel::Orders for Medusa {
    /// The safety net: orders the store has and marketsync may have missed (lost webhooks).
    async fn orders(&self) -> Result<StreamOutcome, crate::error::Error> {
        let from = chrono::Utc::now()
            - chrono::Duration::from_std(self.settings.pull_window).unwrap_or_default();
        let from = from.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let limit = 50usize;
        let fetch = |page: usize| {
            let (path, query) = self
                .flavour()
                .order_list(&from, limit, (page * limit).to_string());
            async move {
                let body = self.api.get(path, &query).await?;
                match <wire::OrderPage as serde::Deserialize>::deserialize(&body) {
                    Ok(page) => Ok(page.orders),
                    Err(_) => Err(crate::error::Error::unreadable(
                        "Medusa",
                        format!(
                            "Medusa's order list has no `orders`: {}",
                            crate::odoo::transport::summarize_body_from(
                                &body.to_string(),
                                "Medusa"
                            )
                        ),
                    )),
                }
            }
        };
        let got = crate::channel::kit::pull_pages(limit, 2000, fetch, |o| {
            if wire::already_synced(o) {
                return Ok(false);
            }
            let event = serde_json::to_value(wire::PulledEvent {
                event: "order.created",
                source: "pull",
                data: wire::PulledData { order: o },
            })
            .map_err(|e| {
                crate::error::Error::invalid(format!(
                    "a pulled Medusa order cannot be kept in the inbox: {e}"
                ))
            })?;
            Ok(receive_event(&self.store, "order.created", &event)?)
        })
        .await?;
        let (pulled, new) = (got.rows, got.new);
        if new > 0 {
            events::emit(
                &self.store,
                &events::OrdersPulled {
                    channel: CHANNEL,
                    found: events::PullFound::Missed(new as i64),
                },
            );
        }
        Ok(StreamOutcome {
            cursor: None,
            note: (pulled > 0 && new > 0)
                .then(|| (format!("pulled {pulled} order(s), {new} new"), new as i64)),
        })
    }
}
