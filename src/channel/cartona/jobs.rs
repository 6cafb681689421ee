//! Cartona's job kinds with their payloads, parsed once per job ([`parse`]): a damaged payload
//! fails its job with the field that is wrong, instead of an empty order id asked for in the
//! inbox or an empty status sent.

use serde::{Deserialize, Serialize};

/// Cartona's job kinds: the queue's `kind` column, matched here only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `order`: an order to import from the inbox.
    Order,
    /// `product`: a batch of product updates (one bulk request each).
    Product,
    /// `status`: a status Cartona must hear.
    Status,
    /// `details`: a quotation's edited lines.
    Details,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Order => "order",
            Kind::Product => "product",
            Kind::Status => "status",
            Kind::Details => "details",
        }
    }
}

impl crate::channel::JobKind for Kind {
    fn of(kind: &str) -> Option<Kind> {
        match kind {
            "order" => Some(Kind::Order),
            "product" => Some(Kind::Product),
            "status" => Some(Kind::Status),
            "details" => Some(Kind::Details),
            _ => None,
        }
    }

    fn batching(self) -> crate::channel::Batching {
        use crate::channel::Batching;
        match self {
            Kind::Order => Batching::Orders,
            Kind::Status => Batching::Setting,
            // A product job is already a batch (one bulk request).
            Kind::Product | Kind::Details => Batching::One,
        }
    }

    fn recorded_by_run(self) -> bool {
        self == Kind::Product
    }
}

pub use crate::channel::kit::{parse_all, parse_job as parse};

/// `order`: the order whose latest inbox event is to be imported.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ImportOrder {
    pub hashed_id: String,
}

/// `status`: the status Cartona must hear (with the steps before it it has not heard).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SendStatus {
    pub hashed_id: String,
    pub status: String,
}

/// `details`: a quotation's edited lines, as `update-order-details` takes them (a list of
/// orders, each with the lines that changed).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(transparent)]
pub struct EditDetails(pub Vec<OrderEdits>);

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OrderEdits {
    pub hashed_id: String,
    pub order_details: Vec<super::wire::LineEdit>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_of_the_previous_version_parse_and_damaged_ones_name_the_field() {
        let job = |kind: &str, payload: serde_json::Value| {
            crate::channel::kit::test_job("cartona", kind, payload)
        };
        let s: SendStatus = parse(&job(
            "status",
            serde_json::json!({"hashed_id": "632717520571", "status": "approved"}),
        ))
        .unwrap();
        assert_eq!(s.status, "approved");
        let d: EditDetails = parse(&job(
            "details",
            serde_json::json!([{"hashed_id": "1", "order_details": [{"id": 5, "amount": 2}]}]),
        ))
        .unwrap();
        assert_eq!(d.0[0].order_details.len(), 1);
        let e =
            parse::<SendStatus>(&job("status", serde_json::json!({"hashed_id": "1"}))).unwrap_err();
        assert!(
            e.message.starts_with(
                "Cartona status job 7 has a malformed payload (missing field `status`"
            ),
            "{}",
            e.message
        );
    }
}
