//! Medusa status out: confirmed, shipped, delivered, cancelled, invoiced and paid, each once and in order.

use super::*;

pub(super) const EVENTS: [&str; 4] = [
    "order.confirmed",
    "order.shipped",
    "order.delivered",
    "order.cancelled",
];

/// The order's state flags (`meta`) saying an event that goes out once was sent.
pub(super) const ONCE_INVOICED: &str = "invoiced_sent";
pub(super) const ONCE_PAID: &str = "paid_sent";

pub(super) fn status_key(external_id: &str) -> String {
    format!("{CHANNEL}:status:{external_id}")
}

/// The order events go out in: the delivery ladder, then invoiced, then paid.
pub(super) fn event_order(event: &str) -> usize {
    match event {
        "order.invoiced" => EVENTS.len() + 1,
        "order.paid" => EVENTS.len() + 2,
        other => rank(other),
    }
}

pub(super) fn rank(event: &str) -> usize {
    EVENTS
        .iter()
        .position(|e| *e == event)
        .map(|p| p + 1)
        .unwrap_or(0)
}

impl Medusa {
    pub(super) async fn detect_status(&self) -> Result<StreamOutcome, String> {
        let (started, since) = crate::channel::kit::poll_window(
            &self.store,
            &format!("{CHANNEL}.status"),
            self.settings.poll_overlap,
        )?;
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
            let Some(known) = order_state::by_reference(&self.store, &paid.reference)
                .map_err(|e| e.to_string())?
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
    pub(super) async fn send_status(&self, job: &Job) -> Result<(), JobError> {
        let p: jobs::SendStatus = jobs::parse(job)?;
        for event in p.all_events() {
            self.send_event(&p.order_id, &event, &p).await?;
        }
        Ok(())
    }

    pub(super) async fn send_event(
        &self,
        id: &str,
        event: &str,
        p: &jobs::SendStatus,
    ) -> Result<(), JobError> {
        // Read afresh for each event: the one before may have changed it.
        let known = order_state::get(&self.store, CHANNEL, id)
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
            order_state::merge_meta(&self.store, CHANNEL, id, &serde_json::json!({ flag: true }))
                .map_err(store_err)?;
        } else {
            order_state::set_sent(&self.store, CHANNEL, id, event).map_err(store_err)?;
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

    pub(super) async fn send_status_admin(
        &self,
        id: &str,
        event: &str,
        p: &jobs::SendStatus,
        known: &order_state::ChannelOrder,
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
                        order_state::merge_meta(
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
