//! Admin API: Odoo's deliveries become the store's fulfillments, shipped with their tracking,
//! then delivered; an order cancelled in Odoo has its fulfillments cancelled first; a
//! delivered (and paid, as configured) order is completed.
//!
//! Every step reads the order first (`fixtures/medusa-v2/fulfillment.jsonl`): a create answers
//! with the order and no fulfillment, and is not idempotent (a retry of one that went through
//! is refused, "No stock reservation found"), so what the store already holds decides what is
//! left to do. Each fulfillment marketsync makes names its Odoo delivery in its metadata
//! (`odoo_picking_id`): one fulfillment per delivery, never two.

use super::*;
use crate::channel::medusa::config::CompleteOrders;
use crate::channel::medusa::status::ONCE_PAID;
use crate::store::order_events::Shipment;

/// Whether the whole order is shipped (`order.shipped`, `order.delivered`), or only the
/// deliveries done so far (`order.shipment`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scope {
    Done,
    Whole,
}

impl Medusa {
    /// The order as the fulfillment steps need it.
    async fn fulfillment_state(&self, id: &str) -> Result<wire::StateOrder, JobError> {
        let v = self
            .api
            .get(
                &format!("admin/orders/{id}"),
                &[("fields", wire::StateOrder::FIELDS.to_string())],
            )
            .await
            .map_err(job_err)?;
        serde_json::from_value::<wire::StateAnswer>(v)
            .map(|a| a.order)
            .map_err(|e| {
                JobError::new(
                    RetryClass::Transient,
                    format!("Medusa's order {id} (its items and fulfillments) is not as documented: {e}"),
                )
            })
    }

    /// Makes the store hold a shipped fulfillment for every Odoo delivery of the job, each
    /// with its quantities and tracking; with `Scope::Whole`, also ships what is fulfilled
    /// but not shipped, and (for a job that names no delivery: one queued by an older
    /// marketsync) fulfils what is left. Returns the order as it now is.
    pub(super) async fn ship_deliveries(
        &self,
        id: &str,
        p: &jobs::SendStatus,
        scope: Scope,
    ) -> Result<wire::StateOrder, JobError> {
        let mut order = self.fulfillment_state(id).await?;
        if matches!(order.status.as_deref(), Some("canceled")) {
            return Err(JobError::new(
                RetryClass::Permanent,
                format!("Medusa order {id} is canceled in the store; its shipment is not sent"),
            ));
        }
        let mut shipments: Vec<Shipment> = p.shipments.clone();
        if shipments.is_empty() && scope == Scope::Whole {
            // Nothing says which delivery carried what: the rest of the order, as one.
            shipments.push(Shipment {
                tracking: p.tracking_number.clone(),
                ..Default::default()
            });
        }
        let mut last_tracking = p.tracking_number.clone();
        for s in &shipments {
            if s.tracking.is_some() {
                last_tracking.clone_from(&s.tracking);
            }
            let known = (s.picking_id > 0)
                .then(|| order.of_picking(s.picking_id).map(|f| f.id.clone()))
                .flatten();
            let fid = match known {
                Some(f) => f,
                None => {
                    let (items, unmatched) = if s.lines.is_empty() {
                        (order.unfulfilled(), Vec::new())
                    } else {
                        order.items_for(&s.lines)
                    };
                    if items.is_empty() {
                        if unmatched.is_empty() || order.unfulfilled().is_empty() {
                            // Already fulfilled in the store (by its staff, or by an earlier
                            // fulfillment of what the courier took before Odoo split the
                            // delivery into a backorder): nothing to add.
                            continue;
                        }
                        return Err(JobError::new(
                            RetryClass::Permanent,
                            format!(
                                "Odoo delivery {} of Medusa order {id} carried {}, of which the order has nothing left to fulfil; fulfil it in the Medusa admin",
                                s.picking.as_deref().unwrap_or("(unnamed)"),
                                unmatched.join(", ")
                            ),
                        ));
                    }
                    let before: Vec<String> = order.live().map(|f| f.id.clone()).collect();
                    self.api
                        .post(
                            &format!("admin/orders/{id}/fulfillments"),
                            &wire::CreateFulfillment {
                                items: &items,
                                location_id: self.settings.location_id.as_deref(),
                                metadata: wire::FulfillmentMetadata {
                                    odoo_picking_id: (s.picking_id > 0).then_some(s.picking_id),
                                    odoo_picking: s.picking.as_deref(),
                                },
                            },
                        )
                        .await
                        .map_err(job_err)?;
                    order = self.fulfillment_state(id).await?;
                    let made = if s.picking_id > 0 {
                        order.of_picking(s.picking_id)
                    } else {
                        order.live().find(|f| !before.contains(&f.id))
                    };
                    match made {
                        Some(f) => f.id.clone(),
                        None => {
                            return Err(JobError::new(
                                RetryClass::Transient,
                                format!(
                                "Medusa took a fulfillment for order {id} but does not show it yet"
                            ),
                            ))
                        }
                    }
                }
            };
            self.ship_one(id, &mut order, &fid, s.tracking.as_deref())
                .await?;
        }
        if scope == Scope::Whole {
            let unshipped: Vec<String> = order
                .live()
                .filter(|f| !f.shipped())
                .map(|f| f.id.clone())
                .collect();
            for fid in unshipped {
                self.ship_one(id, &mut order, &fid, last_tracking.as_deref())
                    .await?;
            }
        }
        Ok(order)
    }

    /// Ships one fulfillment (once: a shipped one is left as it is), with its tracking.
    async fn ship_one(
        &self,
        id: &str,
        order: &mut wire::StateOrder,
        fid: &str,
        tracking: Option<&str>,
    ) -> Result<(), JobError> {
        let Some(f) = order.fulfillments.iter_mut().find(|f| f.id == fid) else {
            return Ok(());
        };
        if f.shipped() {
            return Ok(());
        }
        let labels = match tracking.filter(|t| !t.is_empty()) {
            Some(t) => vec![wire::Label {
                tracking_number: t,
                tracking_url: "",
                label_url: "",
            }],
            None => Vec::new(),
        };
        self.api
            .post(
                &format!("admin/orders/{id}/fulfillments/{fid}/shipments"),
                &wire::CreateShipment {
                    items: &f.shipment_items(),
                    labels,
                },
            )
            .await
            .map_err(job_err)?;
        f.shipped_at = Some(chrono::Utc::now().to_rfc3339());
        Ok(())
    }

    /// Every fulfillment shipped and marked delivered; then the order completed if it is
    /// due (see [`Medusa::complete_if_due`]).
    pub(super) async fn deliver(
        &self,
        id: &str,
        p: &jobs::SendStatus,
        known: &order_state::ChannelOrder,
    ) -> Result<(), JobError> {
        let order = self.ship_deliveries(id, p, Scope::Whole).await?;
        let undelivered: Vec<String> = order
            .live()
            .filter(|f| f.delivered_at.is_none())
            .map(|f| f.id.clone())
            .collect();
        for fid in &undelivered {
            self.api
                .post(
                    &format!("admin/orders/{id}/fulfillments/{fid}/mark-as-delivered"),
                    &wire::Empty {},
                )
                .await
                .map_err(job_err)?;
        }
        let paid = known.meta[ONCE_PAID] == true;
        let due = match self.settings.complete_orders {
            CompleteOrders::Delivered => true,
            CompleteOrders::DeliveredAndPaid => paid,
            CompleteOrders::Never => false,
        };
        if due {
            self.complete(id).await?;
        }
        Ok(())
    }

    /// After the payment: completes an order already delivered, when completing waits for it.
    pub(super) async fn complete_if_due(
        &self,
        id: &str,
        known: &order_state::ChannelOrder,
    ) -> Result<(), JobError> {
        let delivered =
            crate::channel::medusa::status::rank(known.sent_status.as_deref().unwrap_or(""))
                >= crate::channel::medusa::status::rank("order.delivered");
        if self.settings.complete_orders == CompleteOrders::DeliveredAndPaid && delivered {
            self.complete(id).await?;
        }
        Ok(())
    }

    /// Completes the order when the store shows all of it delivered (Medusa completes any
    /// order it is asked to, even one nothing of which left: so the store's word decides).
    async fn complete(&self, id: &str) -> Result<(), JobError> {
        let order = self.fulfillment_state(id).await?;
        if order.status.as_deref() != Some("pending")
            || order.fulfillment_status.as_deref() != Some("delivered")
        {
            return Ok(());
        }
        self.api
            .post(&format!("admin/orders/{id}/complete"), &wire::Empty {})
            .await
            .map_err(job_err)?;
        Ok(())
    }

    /// Cancels the order's fulfillments not shipped yet, then the order. Medusa cancels no
    /// shipped fulfillment and no completed order: those are said, with what to do.
    pub(super) async fn cancel_order(&self, id: &str) -> Result<(), JobError> {
        let order = self.fulfillment_state(id).await?;
        match order.status.as_deref() {
            Some("canceled") => return Ok(()),
            Some("completed") => {
                return Err(JobError::new(
                    RetryClass::Permanent,
                    format!("Medusa order {id} is completed, and Medusa cancels no completed order; record a return for it in the Medusa admin"),
                ))
            }
            _ => {}
        }
        let shipped: Vec<&str> = order
            .live()
            .filter(|f| f.shipped() || f.delivered_at.is_some())
            .map(|f| f.id.as_str())
            .collect();
        if !shipped.is_empty() {
            return Err(JobError::new(
                RetryClass::Permanent,
                format!(
                    "Medusa order {id} has shipped fulfillment(s) {}, and Medusa cancels only unshipped ones; record a return for it in the Medusa admin, or cancel it there",
                    shipped.join(", ")
                ),
            ));
        }
        for f in order.live() {
            self.api
                .post(
                    &format!("admin/orders/{id}/fulfillments/{}/cancel", f.id),
                    &wire::Empty {},
                )
                .await
                .map_err(job_err)?;
        }
        self.api
            .post(&format!("admin/orders/{id}/cancel"), &wire::Empty {})
            .await
            .map_err(job_err)?;
        Ok(())
    }
}
