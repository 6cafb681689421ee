//! Medusa's catalog job payloads, typed and parsed once per job ([`parse`]): a quantity of 0 in
//! place of a missing one would tell the store the product is sold out, a mapping id of 0 would
//! record the wrong product as sent.

use super::Listing;
use serde::{Deserialize, Serialize};

/// `product`: a listing (with its stock) to create or update in the store.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProductPush {
    pub mapping_id: i64,
    pub stock_mapping_id: i64,
    pub hash: String,
    pub stock_hash: String,
    pub listing: Listing,
    pub quantity: i64,
}

/// `stock`: only the stock of a product the store already has.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StockPush {
    pub mapping_id: i64,
    pub product_mapping_id: i64,
    pub hash: String,
    pub sku: String,
    pub quantity: i64,
}

/// `order` and `customer`: the Medusa id whose latest inbox event is to be imported.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ImportSubject {
    pub subject: String,
}

/// `status`: an order's events to send, in the order they go out, with what they tell.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SendStatus {
    pub order_id: String,
    #[serde(default)]
    pub events: Vec<String>,
    /// The one event of a job queued by an older marketsync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    #[serde(default)]
    pub odoo_order_id: Option<i64>,
    #[serde(default)]
    pub odoo_order_name: Option<String>,
    #[serde(default)]
    pub tracking_number: Option<String>,
    /// When the delivery was validated.
    #[serde(default)]
    pub date: Option<String>,
    #[serde(default)]
    pub payment_date: Option<String>,
    /// The Odoo deliveries done, each with its lines and tracking (a backorder's parts become
    /// the store's fulfillments one by one).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shipments: Vec<crate::store::order_events::Shipment>,
}

impl SendStatus {
    /// The events to send: `events`, or the one `event` of an older job.
    pub fn all_events(&self) -> Vec<String> {
        let mut all = self.events.clone();
        all.extend(self.event.clone());
        all
    }

    /// Adds a delivery, once.
    pub fn add_shipment(&mut self, s: crate::store::order_events::Shipment) {
        if !self.shipments.iter().any(|k| k.picking_id == s.picking_id) {
            self.shipments.push(s);
            self.shipments.sort_by_key(|k| k.picking_id);
        }
    }

    /// Adds what an unfinished job of the same order still had to say, every event in the
    /// order they go out (`order_of`).
    pub fn carry_on(&mut self, before: &SendStatus, order_of: impl Fn(&str) -> usize) {
        let mut events = before.all_events();
        events.extend(self.all_events());
        events.sort_by_key(|e| order_of(e));
        events.dedup();
        self.events = events;
        self.event = None;
        for (mine, theirs) in [
            (&mut self.payment_date, &before.payment_date),
            (&mut self.tracking_number, &before.tracking_number),
            (&mut self.date, &before.date),
            (&mut self.odoo_order_name, &before.odoo_order_name),
        ] {
            if mine.is_none() {
                mine.clone_from(theirs);
            }
        }
        if self.odoo_order_id.is_none() {
            self.odoo_order_id = before.odoo_order_id;
        }
        for s in &before.shipments {
            self.add_shipment(s.clone());
        }
    }
}

/// Medusa's job kinds: the queue's `kind` column, matched here only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `order`: an order to import from the inbox.
    Order,
    /// `customer`: a customer to create or update.
    Customer,
    /// `status`: an order's events to send.
    Status,
    /// `product`: a listing with its stock.
    Product,
    /// `stock`: only the stock of a listing.
    Stock,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Order => "order",
            Kind::Customer => "customer",
            Kind::Status => "status",
            Kind::Product => "product",
            Kind::Stock => "stock",
        }
    }
}

impl crate::channel::JobKind for Kind {
    fn of(kind: &str) -> Option<Kind> {
        match kind {
            "order" => Some(Kind::Order),
            "customer" => Some(Kind::Customer),
            "status" => Some(Kind::Status),
            "product" => Some(Kind::Product),
            "stock" => Some(Kind::Stock),
            _ => None,
        }
    }

    fn batching(self) -> crate::channel::Batching {
        use crate::channel::Batching;
        match self {
            Kind::Product | Kind::Stock => Batching::Setting,
            Kind::Order => Batching::Orders,
            Kind::Customer | Kind::Status => Batching::One,
        }
    }
}

pub use crate::channel::kit::{parse_all, parse_job as parse};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retry::RetryClass;

    fn job(kind: &str, payload: serde_json::Value) -> crate::store::queue::Job {
        crate::channel::kit::test_job("medusa", kind, payload)
    }

    #[test]
    fn a_stock_job_without_its_quantity_is_refused_not_sent_as_zero() {
        let good = serde_json::json!({"mapping_id": 3, "product_mapping_id": 2, "hash": "h", "sku": "SKU-1", "quantity": 4});
        let s: StockPush = parse(&job("stock", good.clone())).unwrap();
        assert_eq!((s.mapping_id, s.quantity), (3, 4));
        let mut bad = good;
        bad.as_object_mut().unwrap().remove("quantity");
        let e = parse::<StockPush>(&job("stock", bad)).unwrap_err();
        assert_eq!(e.class, RetryClass::Permanent);
        assert!(
            e.message.starts_with(
                "Medusa stock job 7 has a malformed payload (missing field `quantity`"
            ),
            "{}",
            e.message
        );
    }

    #[test]
    fn an_import_job_without_its_subject_names_it() {
        let ok: ImportSubject =
            parse(&job("order", serde_json::json!({"subject": "order_01"}))).unwrap();
        assert_eq!(ok.subject, "order_01");
        let e = parse::<ImportSubject>(&job("customer", serde_json::json!({}))).unwrap_err();
        assert!(
            e.message.starts_with(
                "Medusa customer job 7 has a malformed payload (missing field `subject`"
            ),
            "{}",
            e.message
        );
    }

    #[test]
    fn a_newer_status_job_carries_on_what_an_unfinished_one_had_to_say() {
        let status = |v: serde_json::Value| -> SendStatus { serde_json::from_value(v).unwrap() };
        let order = super::super::status::event_order;
        // Running: paid (found through its invoice). Newer: the delivery ladder.
        let before = status(
            serde_json::json!({"order_id": "order_1", "events": ["order.paid"],
                                               "payment_date": "2026-11-22 08:00:00"}),
        );
        let mut newer = status(serde_json::json!({"order_id": "order_1",
                                                  "events": ["order.shipped", "order.confirmed"]}));
        newer.carry_on(&before, order);
        assert_eq!(
            newer.all_events(),
            vec!["order.confirmed", "order.shipped", "order.paid"],
            "all of them, in the order they go out"
        );
        assert_eq!(newer.payment_date.as_deref(), Some("2026-11-22 08:00:00"));
        // A job queued by an older marketsync carries one event.
        newer.carry_on(
            &status(serde_json::json!({"order_id": "order_1", "event": "order.invoiced"})),
            order,
        );
        assert_eq!(
            newer.all_events(),
            vec![
                "order.confirmed",
                "order.shipped",
                "order.invoiced",
                "order.paid"
            ]
        );
    }
}
