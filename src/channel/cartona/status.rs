//! Cartona status out: Odoo-side progress of its orders to `order/update-order-status`, and quotation edits.

use super::*;

impl Cartona {
    /// Finds Odoo-side changes of Cartona orders and queues the statuses Cartona must hear.
    pub(super) async fn detect_status(&self) -> Result<StreamOutcome, String> {
        let (started, since) = crate::channel::kit::poll_window(
            &self.store,
            &format!("{CHANNEL}.status"),
            self.settings.poll_overlap,
        )?;
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
                    order_state::set_otp(&self.store, reference, otp).map_err(|e| e.to_string())?;
                } else if !known.otp_recorded {
                    if known.meta[AWAITING_OTP] != true {
                        order_state::set_attention(
                            &self.store,
                            CHANNEL,
                            &known.external_id,
                            Some(NEEDS_OTP),
                        )
                        .map_err(|e| e.to_string())?;
                        order_state::merge_meta(
                            &self.store,
                            CHANNEL,
                            &known.external_id,
                            &serde_json::json!({ AWAITING_OTP: true }),
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
    pub(super) async fn detail_edits(
        &self,
        order_id: i64,
        known: &order_state::ChannelOrder,
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
            kind: jobs::Kind::Details.as_str().into(),
            key: format!("{CHANNEL}:details:{}", known.external_id),
            payload: Payload::of(&jobs::EditDetails(vec![jobs::OrderEdits {
                hashed_id: known.external_id.clone(),
                order_details: edits,
            }])),
            correlation_id: Some(known.reference.clone()),
        }))
    }

    /// The next update to send for a status job, `None` once Cartona stands at or past its
    /// status. A delivery that needs the retailer's OTP carries it (and goes out alone, through
    /// the single-order endpoint); without one recorded it cannot go out at all.
    fn next_update(&self, job: &jobs::SendStatus) -> Result<Option<StatusUpdate>, JobError> {
        let hashed_id = &job.hashed_id;
        let known = order_state::get(&self.store, CHANNEL, hashed_id)
            .map_err(store_err)?
            .ok_or_else(|| {
                JobError::new(
                    RetryClass::Permanent,
                    format!("order {hashed_id} is not known to marketsync"),
                )
            })?;
        let Some(status) = next_step(&known, &job.status) else {
            return Ok(None);
        };
        let retailer_otp = if status == "delivered" && known.needs_otp {
            Some(known.otp.clone().ok_or_else(|| {
                JobError::new(
                    RetryClass::Permanent,
                    format!("order {hashed_id}: {NEEDS_OTP}"),
                )
            })?)
        } else {
            None
        };
        Ok(Some(StatusUpdate {
            hashed_id: hashed_id.clone(),
            status: status.to_string(),
            cancellation_reason: (status == "cancelled_by_supplier")
                .then(|| self.settings.cancellation_reason.clone()),
            retailer_otp,
        }))
    }

    /// Sends each job's status, with the steps before it Cartona has not heard yet: Cartona
    /// refuses `delivered` for an order still `pending` (and its bulk endpoint drops a refused
    /// update without a word), so an order confirmed and delivered between two polls hears
    /// `approved` first. The steps go out in rounds, one step per order per bulk request; a
    /// step already sent (a retry) or already known to Cartona is skipped.
    pub(super) async fn send_statuses(&self, jobs: &[Job]) -> Vec<Result<(), JobError>> {
        let mut results: Vec<Option<Result<(), JobError>>> = vec![None; jobs.len()];
        let targets = jobs::parse_all::<jobs::SendStatus>(jobs);
        loop {
            let mut bulk = Vec::new();
            for (i, target) in targets.iter().enumerate() {
                if results[i].is_some() {
                    continue;
                }
                let update = match target
                    .as_ref()
                    .map_err(Clone::clone)
                    .and_then(|t| self.next_update(t))
                {
                    Err(e) => {
                        results[i] = Some(Err(e));
                        continue;
                    }
                    Ok(None) => {
                        results[i] = Some(Ok(()));
                        continue;
                    }
                    Ok(Some(update)) => update,
                };
                if update.retailer_otp.is_some() {
                    // The single-order endpoint reports a refused OTP; the bulk one would not.
                    let r = self
                        .api
                        .post(
                            &format!("order/update-order-status/{}", update.hashed_id),
                            &serde_json::to_value(&update).unwrap_or_default(),
                        )
                        .await;
                    if let Err(e) = r
                        .map_err(job_err)
                        .and_then(|_| self.status_sent(&update.hashed_id, &update.status))
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

    pub(super) fn status_sent(&self, hashed_id: &str, status: &str) -> Result<(), JobError> {
        order_state::set_sent_settled(&self.store, CHANNEL, hashed_id, status, AWAITING_OTP)
            .map_err(store_err)?;
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
        kind: jobs::Kind::Status.as_str().into(),
        key: format!("{CHANNEL}:status:{hashed_id}"),
        payload: Payload::of(&jobs::SendStatus {
            hashed_id: hashed_id.into(),
            status: status.into(),
        }),
        correlation_id: Some(reference(hashed_id)),
    }
}

/// The order's channel data flag: its delivery waits for the retailer's OTP (the attention
/// line says so to the operator in words; behaviour follows this flag).
const AWAITING_OTP: &str = "awaiting_otp";

/// After the operator recorded an OTP: queue the delivery status that was waiting for it.
pub fn otp_recorded(
    store: &Store,
    order: &order_state::ChannelOrder,
) -> crate::store::Result<bool> {
    if order.meta[AWAITING_OTP] == true {
        queue::enqueue(store, status_job(&order.external_id, "delivered"))?;
        return Ok(true);
    }
    Ok(false)
}
