//! Medusa's JSON, typed: the bodies marketsync sends and the answers it reads.
//!
//! Status out, MarqaSouq flavour: `POST odoo/webhooks/order-status` with
//! `{"event_type": "order.shipped", "order": {...}}`. Admin API flavour (Medusa v2): order
//! metadata, fulfillments, shipments, delivery and cancellation (see `fixtures/medusa-v2`).

use serde::{Deserialize, Serialize};

/// MarqaSouq's order-status webhook.
#[derive(Debug, Serialize)]
pub struct OrderStatus<'a> {
    pub event_type: &'a str,
    pub order: StatusOrder<'a>,
}

/// The order part of [`OrderStatus`]: which order, and what the event says of it.
#[derive(Debug, Default, Serialize)]
pub struct StatusOrder<'a> {
    pub medusa_order_id: &'a str,
    pub odoo_order_id: Option<i64>,
    pub odoo_order_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracking_number: Option<Option<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shipped_date: Option<Option<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivered_date: Option<Option<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_date: Option<Option<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancelled_reason: Option<&'a str>,
}

/// An order's line as a fulfillment or shipment names it (kept in the order's channel data).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FulfillmentItem {
    pub id: String,
    pub quantity: i64,
}

/// `POST admin/orders/{id}`: metadata only.
#[derive(Debug, Serialize)]
pub struct OrderMetadata {
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

impl OrderMetadata {
    pub fn one(key: &str, value: impl Into<serde_json::Value>) -> OrderMetadata {
        let mut metadata = serde_json::Map::new();
        metadata.insert(key.into(), value.into());
        OrderMetadata { metadata }
    }
}

/// `POST admin/orders/{id}/fulfillments`.
#[derive(Debug, Serialize)]
pub struct CreateFulfillment<'a> {
    pub items: &'a [FulfillmentItem],
    pub location_id: Option<&'a str>,
}

/// `POST admin/orders/{id}/fulfillments/{fid}/shipments`.
#[derive(Debug, Serialize)]
pub struct CreateShipment<'a> {
    pub items: &'a [FulfillmentItem],
    pub labels: Vec<Label<'a>>,
}

#[derive(Debug, Serialize)]
pub struct Label<'a> {
    pub tracking_number: &'a str,
    pub tracking_url: &'a str,
    pub label_url: &'a str,
}

/// A body-less admin action (`mark-as-delivered`, `cancel`): `{}`.
#[derive(Debug, Serialize)]
pub struct Empty {}

/// The answer to a fulfillment's creation: the order with its fulfillments, the new one last.
#[derive(Debug, Deserialize)]
pub struct OrderAnswer {
    pub order: FulfilledOrder,
}

#[derive(Debug, Deserialize)]
pub struct FulfilledOrder {
    #[serde(default)]
    pub fulfillments: Vec<Fulfillment>,
}

#[derive(Debug, Deserialize)]
pub struct Fulfillment {
    pub id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marqasouq_status_bodies_carry_only_their_events_fields() {
        let shipped = OrderStatus {
            event_type: "order.shipped",
            order: StatusOrder {
                medusa_order_id: "order_1",
                odoo_order_id: Some(7),
                odoo_order_name: Some("S00007"),
                tracking_number: Some(Some("TRK1")),
                shipped_date: Some(None),
                ..Default::default()
            },
        };
        assert_eq!(
            serde_json::to_value(&shipped).unwrap(),
            serde_json::json!({"event_type": "order.shipped", "order": {
                "medusa_order_id": "order_1", "odoo_order_id": 7, "odoo_order_name": "S00007",
                "tracking_number": "TRK1", "shipped_date": null}})
        );
    }

    #[test]
    fn the_new_fulfillment_is_read_from_the_answer() {
        let a: OrderAnswer = serde_json::from_value(
            serde_json::json!({"order": {"id": "order_1", "fulfillments": [{"id": "ful_1"}, {"id": "ful_2"}]}}),
        )
        .unwrap();
        assert_eq!(a.order.fulfillments.last().unwrap().id, "ful_2");
    }
}
