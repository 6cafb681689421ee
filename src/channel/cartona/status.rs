//! Cartona status out: Odoo-side progress of its orders to `order/update-order-status`, and quotation edits.

use super::*;
use crate::error::Context;

impl Cartona {
    /// The retailer's OTP as recorded on the Odoo order (`otp_field`), if the field is set.
    async fn otp_in_odoo(
        &self,
        known: &order_state::ChannelOrder,
    ) -> Result<Option<String>, JobError> {
        let (Some(field), Some(id)) = (self.settings.otp_field.as_deref(), known.odoo_id) else {
            return Ok(None);
        };
        let rows = self
            .odoo
            .read("sale.order", &[id], &[field])
            .await
            .map_err(|e| JobError::from_error(&e))?;
        Ok(rows
            .first()
            .and_then(|r| r.get(field))
            .and_then(Value::as_opt_str)
            .map(str::to_string))
    }

    /// Compares a quotation's lines in Odoo with the order as Cartona last sent it; the
    /// differences become an `update-order-details` job (amount changes, removed lines, new lines).
    pub(super) async fn detail_edits(
        &self,
        order_id: i64,
        known: &order_state::ChannelOrder,
    ) -> Result<Option<NewJob>, crate::error::Error> {
        let Some(event) = inbox::latest(&self.store, CHANNEL, &known.external_id)? else {
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
            .context("reading order lines from Odoo")?;
        let mut odoo_lines: Vec<(String, Decimal, Decimal)> = Vec::new();
        for l in &lines {
            let Some(product) = l.get("product_id").and_then(Value::as_id) else {
                continue;
            };
            let Some(m) = mapping::by_odoo(&self.store, CHANNEL, "product", product)? else {
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
        // Cartona counts whole units; a fraction in Odoo cannot be said to it.
        let whole = |qty: Decimal| {
            (qty.fract().is_zero())
                .then(|| qty.to_i64())
                .flatten()
                .ok_or_else(|| {
                    crate::error::Error::refused(format!(
                        "Odoo's quotation has {qty} of a product, and Cartona takes whole amounts only: make it a whole number in Odoo"
                    ))
                })
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
                        edits.push(LineEdit::Amount {
                            id: LineId::of(d.id.as_deref()),
                            amount: whole(qty)?,
                        });
                    }
                }
                None => edits.push(LineEdit::Cancel {
                    id: LineId::of(d.id.as_deref()),
                    cancelled: true,
                }),
            }
        }
        for (key, qty, price) in odoo_lines {
            edits.push(LineEdit::Add {
                supplier_product_id: key,
                amount: whole(qty)?,
                price: price.to_string(),
            });
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
        let retailer_otp = if status == "delivered" && OrderData::read(&known).needs_otp {
            let otp = order_state::secret(&self.store, CHANNEL, hashed_id, OTP)
                .map_err(store_err)?
                .ok_or_else(|| {
                    JobError::new(
                        RetryClass::Permanent,
                        format!("order {hashed_id}: {NEEDS_OTP}"),
                    )
                })?;
            Some(otp.expose().to_string())
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

    /// Sends a quotation's edited lines, as queued once they are known to be a list of
    /// orders' edits.
    pub(super) async fn send_details(&self, job: &Job) -> Result<(), JobError> {
        let edits: jobs::EditDetails = jobs::parse(job)?;
        self.api
            .post("order/update-order-details", &job.payload)
            .await
            .map_err(job_err)?;
        let id = edits.0.first().map(|o| o.hashed_id.as_str()).unwrap_or("");
        crate::internal_events::emit(
            &self.store,
            &crate::internal_events::StatusSent {
                channel: CHANNEL,
                reference: id,
                what: "the quotation's edited lines",
            },
        );
        Ok(())
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
        crate::internal_events::emit(
            &self.store,
            &crate::internal_events::StatusSent {
                channel: CHANNEL,
                reference: hashed_id,
                what: status,
            },
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

/// Records the retailer's OTP for the Cartona order with this reference (or hashed id), and
/// queues the delivery that waited for it; `true` when one did.
pub fn record_otp(
    store: &Store,
    reference_or_id: &str,
    otp: &crate::secret::Secret,
) -> crate::store::Result<(order_state::ChannelOrder, bool)> {
    let order = order_state::find(store, CHANNEL, reference_or_id)?;
    order_state::set_secret(store, CHANNEL, &order.external_id, OTP, otp)?;
    let queued = otp_recorded(store, &order)?;
    Ok((order, queued))
}

/// What a Cartona order still needs from the operator when no attention line says it: the
/// retailer's OTP before its delivery can be reported.
pub fn needs(order: &order_state::ChannelOrder) -> Option<&'static str> {
    (OrderData::read(order).needs_otp && !order.has_secret(OTP)).then_some("OTP at delivery")
}

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

impl crate::channel::Progress for Cartona {
    /// The status Cartona must hear for an order's events, if any: the furthest of them (the
    /// steps before it go out first, see [`Cartona::send_statuses`]). Cartona hears nothing of
    /// shipments, invoices or payments; an order Cartona delivers itself only of its
    /// cancellation; a delivery that needs the retailer's OTP waits for it.
    async fn status_for(
        &self,
        known: &order_state::ChannelOrder,
        events: &[OrderEvent],
    ) -> Result<Option<NewJob>, JobError> {
        let Some(target) = events
            .iter()
            .filter_map(|e| match e.kind {
                EventKind::Confirmed => Some("approved"),
                EventKind::Delivered => Some("delivered"),
                EventKind::Cancelled => Some("cancelled_by_supplier"),
                _ => None,
            })
            .max_by_key(|s| rank(s))
        else {
            return Ok(None);
        };
        if next_step(known, target).is_none() {
            return Ok(None);
        }
        let data = OrderData::read(known);
        if data.delivered_by.as_deref() == Some("delivered_by_cartona")
            && target != "cancelled_by_supplier"
        {
            return Ok(None); // Cartona delivers these itself: only a cancellation is ours to report.
        }
        if target == "delivered" && data.needs_otp && !known.has_secret(OTP) {
            if let Some(otp) = self.otp_in_odoo(known).await? {
                order_state::set_secret(
                    &self.store,
                    CHANNEL,
                    &known.external_id,
                    OTP,
                    &crate::secret::Secret::new(otp),
                )
                .map_err(store_err)?;
            } else {
                if known.meta[AWAITING_OTP] != true {
                    // The words for the operator and the flag behaviour follows, in one write.
                    order_state::set_attention_with(
                        &self.store,
                        CHANNEL,
                        &known.external_id,
                        NEEDS_OTP,
                        &serde_json::json!({ AWAITING_OTP: true }),
                    )
                    .map_err(store_err)?;
                    crate::internal_events::emit(
                        &self.store,
                        &crate::internal_events::StatusWaiting {
                            channel: CHANNEL,
                            reference: &known.reference,
                            waits_for: NEEDS_OTP,
                        },
                    );
                }
                // Queued when the operator records it (`otp_recorded`).
                return Ok(None);
            }
        }
        Ok(Some(status_job(&known.external_id, target)))
    }

    /// Finds quotations of Cartona orders edited in Odoo: Cartona hears the new quantities.
    async fn edits(&self) -> Result<StreamOutcome, crate::error::Error> {
        let (started, since) = crate::channel::kit::poll_window(
            &self.store,
            &format!("{CHANNEL}.edits"),
            self.settings.poll_overlap,
        )?;
        let quotations =
            crate::sync::quotations::changed(&self.odoo, "CARTONA-", &since, &["client_order_ref"])
                .await
                .context("reading quotations from Odoo")?;
        let mut jobs = Vec::new();
        for change in crate::sync::quotations::known(&self.store, &quotations)? {
            match self.detail_edits(change.id, &change.known).await {
                Ok(Some(job)) => jobs.push(job),
                Ok(None) => {}
                // One order Cartona cannot be told about waits for the operator; the others go on.
                Err(crate::error::Error::Refused(why)) => {
                    order_state::set_attention(
                        &self.store,
                        CHANNEL,
                        &change.known.external_id,
                        Some(&why),
                    )?;
                    events::emit(
                        &self.store,
                        &events::OrderNoted {
                            channel: CHANNEL,
                            reference: &change.known.reference,
                            note: events::OrderNote::Check(&why),
                        },
                    );
                }
                Err(e) => return Err(e),
            }
        }
        let queued = crate::channel::enqueue_planned(&self.store, jobs)?;
        Ok(StreamOutcome {
            cursor: Some(started),
            note: (queued > 0)
                .then(|| (format!("{queued} quotation edit(s) to send"), queued as i64)),
        })
    }
}
