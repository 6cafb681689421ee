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

/// One Odoo delivery done (Admin API flavour): a part of the order shipped, before the whole.
/// It is not a rung of the ladder: each goes out until the order is shipped.
pub(super) const SHIPMENT: &str = "order.shipment";

/// The order events go out in: the delivery ladder (each delivery just before `shipped`),
/// then invoiced, then paid.
pub(super) fn event_order(event: &str) -> usize {
    match event {
        SHIPMENT => rank("order.shipped"),
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
        let sent = rank(known.sent_status.as_deref().unwrap_or(""));
        // A delivery goes out until the whole order has: the store's state says which parts
        // it has already.
        if event == SHIPMENT {
            if sent >= rank("order.shipped") {
                return Ok(());
            }
            return self.flavour().send_status(self, id, event, p, &known).await;
        }
        // Delivery events go out in order: one already passed is not sent again.
        if once.is_none() && rank(event) <= sent {
            return Ok(());
        }
        self.flavour()
            .send_status(self, id, event, p, &known)
            .await?;
        if let Some(flag) = once {
            order_state::merge_meta(&self.store, CHANNEL, id, &serde_json::json!({ flag: true }))
                .map_err(store_err)?;
        } else {
            order_state::set_sent(&self.store, CHANNEL, id, event).map_err(store_err)?;
        }
        events::emit(
            &self.store,
            &events::StatusSent {
                channel: CHANNEL,
                reference: &known.reference,
                what: event,
            },
        );
        Ok(())
    }
}

impl crate::channel::Progress for Medusa {
    /// The status job an order's events come to: the events Medusa has not heard, in order,
    /// with the delivery's tracking and dates. One job per order, so its events go out one at
    /// a time and in order; it carries on what a waiting one still had to say (what went out
    /// meanwhile is skipped when sent).
    async fn status_for(
        &self,
        known: &order_state::ChannelOrder,
        events: &[OrderEvent],
    ) -> Result<Option<NewJob>, JobError> {
        let sent = rank(known.sent_status.as_deref().unwrap_or(""));
        let store_cancelled = matches!(
            known.marketplace_status.as_deref(),
            Some("canceled" | "cancelled")
        );
        let mut p = jobs::SendStatus {
            order_id: known.external_id.clone(),
            odoo_order_id: known.odoo_id,
            ..Default::default()
        };
        for e in events {
            let name = match e.kind {
                EventKind::Confirmed => "order.confirmed",
                EventKind::Shipment if self.flavour().partial_shipments() => SHIPMENT,
                EventKind::Shipment => continue,
                EventKind::Shipped => "order.shipped",
                EventKind::Delivered => "order.delivered",
                EventKind::Cancelled => "order.cancelled",
                EventKind::Invoiced => "order.invoiced",
                EventKind::Paid => "order.paid",
                EventKind::Returned => continue,
            };
            let wanted = match e.kind {
                // Invoicing and payment are their own facts, beside the delivery ladder: once each.
                EventKind::Invoiced => known.meta[ONCE_INVOICED] != true,
                EventKind::Paid => known.meta[ONCE_PAID] != true,
                EventKind::Cancelled => rank(name) > sent,
                EventKind::Shipment => rank("order.shipped") > sent && !store_cancelled,
                _ => rank(name) > sent && !store_cancelled,
            };
            if !wanted {
                continue;
            }
            if !p.events.iter().any(|n| n == name) {
                p.events.push(name.to_string());
            }
            if p.odoo_order_name.is_none() {
                p.odoo_order_name = e.text("order").map(str::to_string);
            }
            match e.kind {
                EventKind::Shipment => {
                    if let Ok(s) = serde_json::from_value::<Shipment>(e.data.clone()) {
                        p.add_shipment(s);
                    }
                }
                EventKind::Shipped | EventKind::Delivered => {
                    if let Some(all) = e.data.get("shipments") {
                        for s in
                            serde_json::from_value::<Vec<Shipment>>(all.clone()).unwrap_or_default()
                        {
                            p.add_shipment(s);
                        }
                    }
                    p.tracking_number = p
                        .tracking_number
                        .take()
                        .or_else(|| e.text("tracking").map(str::to_string));
                    p.date = p.date.take().or_else(|| e.text("date").map(str::to_string));
                }
                EventKind::Paid => p.payment_date = e.text("date").map(str::to_string),
                _ => {}
            }
        }
        if p.events.is_empty() {
            return Ok(None);
        }
        let key = status_key(&known.external_id);
        let open =
            queue::open_payloads(&self.store, std::slice::from_ref(&key)).map_err(store_err)?;
        for before in open.get(&key).into_iter().flatten() {
            // A waiting payload that does not parse has nothing to carry: its events were not
            // recorded as sent, and a status job is queued again with the next event.
            if let Ok(before) = before.parse::<jobs::SendStatus>() {
                p.carry_on(&before, event_order);
            }
        }
        Ok(Some(NewJob {
            channel: CHANNEL.into(),
            kind: jobs::Kind::Status.as_str().into(),
            key,
            payload: Payload::of(&p),
            correlation_id: Some(known.reference.clone()),
        }))
    }
}
