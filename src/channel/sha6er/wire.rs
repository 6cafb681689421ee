//! Sha6er's API as marketsync reads it: every path, field and status name of the contract in
//! one file. Sha6er publishes no documentation (API-NOTES §4); this is our reading of the
//! specification we were given (seed 000 §6: `create_shipment`, `assign_courier`,
//! `update_status`, `confirm_delivery`, `upload_proof`; HMAC-signed asynchronous webhooks;
//! multi-package shipments and partial deliveries), written out in the README's "Sha6er
//! contract" section. When Sha6er hands over its real contract, this file and a few settings
//! are what change.
//!
//! marketsync calls: `POST create_shipment`, `GET shipments?reference=` (the look-up before a
//! create is tried again), `GET shipments/{id}` (the state and its history), `POST
//! shipments/{id}/cancel`, `GET shipments/{id}/proof`, `GET account` (`check`). Sha6er's side
//! (its dispatch and the couriers' app) calls `assign_courier`, `update_status`,
//! `confirm_delivery` and `upload_proof`; the simulator serves them too.

use serde::{Deserialize, Serialize};

pub const CREATE_SHIPMENT: &str = "create_shipment";
pub const ASSIGN_COURIER: &str = "assign_courier";
pub const UPDATE_STATUS: &str = "update_status";
pub const CONFIRM_DELIVERY: &str = "confirm_delivery";
pub const UPLOAD_PROOF: &str = "upload_proof";
/// `GET shipments?reference=<picking name>`: the shipments made with that reference.
pub const SHIPMENTS: &str = "shipments";
pub const REFERENCE_QUERY: &str = "reference";
/// `GET account`: the account the token belongs to (`check`).
pub const ACCOUNT: &str = "account";

pub fn shipment_path(id: &str) -> String {
    format!("{SHIPMENTS}/{id}")
}
pub fn cancel_path(id: &str) -> String {
    format!("{SHIPMENTS}/{id}/cancel")
}
pub fn proof_path(id: &str) -> String {
    format!("{SHIPMENTS}/{id}/proof")
}

/// The webhook's signature header: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`
/// keyed with the webhook secret.
pub const SIGNATURE_HEADER: &str = "x-sha6er-signature";
/// The webhook's event type for a shipment's status.
pub const STATUS_EVENT: &str = "shipment.status";

/// A shipment's status, in the order a delivery goes through them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Requested, not yet accepted.
    Pending,
    Accepted,
    /// A courier is assigned (name, phone).
    Assigned,
    PickedUp,
    InTransit,
    /// Every package, or some (`packages[].status`), delivered; the proof is ready.
    Delivered,
    /// The courier could not deliver (`reason`); Sha6er may try again.
    Failed,
    /// The parcel came back to the pickup address.
    Returned,
    Cancelled,
}

impl Status {
    pub const ALL: [Status; 9] = [
        Status::Pending,
        Status::Accepted,
        Status::Assigned,
        Status::PickedUp,
        Status::InTransit,
        Status::Delivered,
        Status::Failed,
        Status::Returned,
        Status::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Accepted => "accepted",
            Status::Assigned => "assigned",
            Status::PickedUp => "picked_up",
            Status::InTransit => "in_transit",
            Status::Delivered => "delivered",
            Status::Failed => "failed",
            Status::Returned => "returned",
            Status::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Nothing more happens to the shipment.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Status::Delivered | Status::Returned | Status::Cancelled
        )
    }

    /// The parcel is still at the pickup address: the shipment can be cancelled.
    pub fn before_pickup(self) -> bool {
        matches!(self, Status::Pending | Status::Accepted | Status::Assigned)
    }

    /// What the picking's chatter says of it.
    pub fn label(self) -> &'static str {
        match self {
            Status::Pending => "requested",
            Status::Accepted => "accepted by Sha6er",
            Status::Assigned => "courier assigned",
            Status::PickedUp => "picked up by the courier",
            Status::InTransit => "in transit",
            Status::Delivered => "delivered",
            Status::Failed => "delivery failed",
            Status::Returned => "returned to the warehouse",
            Status::Cancelled => "cancelled",
        }
    }
}

/// An address, as `create_shipment` takes it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Address {
    pub name: String,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub street: Option<String>,
    #[serde(default)]
    pub street2: Option<String>,
    #[serde(default)]
    pub city: Option<String>,
    #[serde(default)]
    pub zip: Option<String>,
    /// ISO 3166 code.
    #[serde(default)]
    pub country: Option<String>,
}

/// An amount in a currency (decimal text, as the order has it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Money {
    pub amount: String,
    pub currency: String,
}

/// What a package holds, product by product.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    #[serde(default)]
    pub sku: Option<String>,
    pub name: String,
    pub quantity: f64,
}

/// One package of a shipment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Package {
    /// The Odoo package's name (`PACK0000012`), or the picking's name for a shipment in one
    /// piece.
    pub reference: String,
    pub weight_kg: f64,
    /// What its goods are worth, in `declared_value`'s currency: on a partial delivery with
    /// cash on delivery, the courier collects the delivered packages' values.
    pub value: String,
    pub items: Vec<Item>,
}

/// `POST create_shipment`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateShipment {
    /// The Odoo delivery's name (`WH/OUT/00012`): unique, what the look-up searches.
    pub reference: String,
    /// The marketplace order's reference (`MEDUSA-order_01..`), or the Odoo order's name.
    pub order_reference: String,
    pub pickup: Address,
    pub delivery: Address,
    pub packages: Vec<Package>,
    pub declared_value: Money,
    /// Cash to collect on delivery (the sum of the packages' values); none when the order is
    /// paid. A partial delivery collects the delivered packages' values only.
    #[serde(default)]
    pub cod: Option<Money>,
}

/// `create_shipment`'s answer, and an entry of `GET shipments?reference=`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Created {
    pub shipment_id: String,
    pub tracking_number: String,
    #[serde(default)]
    pub status: Option<String>,
}

/// `GET shipments?reference=`.
#[derive(Debug, Clone, Deserialize)]
pub struct Found {
    pub shipments: Vec<Created>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Courier {
    pub name: String,
    #[serde(default)]
    pub phone: Option<String>,
}

/// One step of a shipment's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub status: String,
    /// RFC 3339.
    pub at: String,
    #[serde(default)]
    pub courier: Option<Courier>,
    #[serde(default)]
    pub reason: Option<String>,
}

/// A package's own status in `GET shipments/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PackageState {
    pub reference: String,
    pub status: String,
}

/// `GET shipments/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shipment {
    pub shipment_id: String,
    pub reference: String,
    pub tracking_number: String,
    pub status: String,
    #[serde(default)]
    pub courier: Option<Courier>,
    #[serde(default)]
    pub packages: Vec<PackageState>,
    /// Every step so far, oldest first.
    #[serde(default)]
    pub history: Vec<Step>,
}

/// A file of the proof of delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProofFile {
    /// `photo` or `signature`.
    pub kind: String,
    pub filename: String,
    pub content_type: String,
    /// Base64.
    pub data: String,
}

/// `GET shipments/{id}/proof`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Proof {
    /// The code the customer gave the courier.
    #[serde(default)]
    pub otp: Option<String>,
    /// Whether Sha6er checked it against the one it sent the customer.
    #[serde(default)]
    pub otp_verified: bool,
    #[serde(default)]
    pub files: Vec<ProofFile>,
}

/// `POST update_status` (Sha6er's side: dispatch and couriers).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UpdateStatus {
    pub shipment_id: String,
    pub status: String,
    #[serde(default)]
    pub reason: Option<String>,
}

/// `POST assign_courier`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AssignCourier {
    pub shipment_id: String,
    pub courier: Courier,
}

/// `POST confirm_delivery`: the packages delivered (all when none are named), the OTP.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConfirmDelivery {
    pub shipment_id: String,
    #[serde(default)]
    pub packages: Vec<String>,
    #[serde(default)]
    pub otp: Option<String>,
}

/// `POST upload_proof`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UploadProof {
    pub shipment_id: String,
    pub kind: String,
    pub filename: String,
    pub content_type: String,
    pub data: String,
}

/// The webhook body: which shipment moved (the daemon reads the shipment itself: a webhook
/// lost or out of order changes nothing).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Webhook {
    pub event_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub shipment_id: String,
    pub status: String,
    pub at: String,
}

impl Webhook {
    /// A verified body, checked: what is wrong with it, if anything.
    pub fn parse(body: &serde_json::Value) -> Result<Webhook, String> {
        let w: Webhook = serde_json::from_value(body.clone())
            .map_err(|e| format!("not a Sha6er status webhook: {e}"))?;
        let id_ok =
            |s: &str| !s.is_empty() && s.len() <= 128 && s.chars().all(|c| c.is_ascii_graphic());
        if !id_ok(&w.event_id) || !id_ok(&w.shipment_id) {
            return Err(
                "event_id and shipment_id must be 1 to 128 visible ASCII characters".into(),
            );
        }
        if w.kind != STATUS_EVENT {
            return Err(format!("event type {:?} is not {STATUS_EVENT}", w.kind));
        }
        if Status::parse(&w.status).is_none() {
            return Err(format!("unknown shipment status {:?}", w.status));
        }
        Ok(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_and_only_documented_webhooks_parse() {
        for s in Status::ALL {
            assert_eq!(Status::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        let ok = serde_json::json!({"event_id": "evt_1", "type": "shipment.status",
            "shipment_id": "SH-1", "status": "picked_up", "at": "2026-12-03T10:00:00Z"});
        assert_eq!(Webhook::parse(&ok).unwrap().shipment_id, "SH-1");
        for (k, v) in [
            ("status", "teleported"),
            ("type", "shipment.deleted"),
            ("shipment_id", ""),
            ("event_id", "a b"),
        ] {
            let mut bad = ok.clone();
            bad[k] = v.into();
            assert!(Webhook::parse(&bad).is_err(), "{k}={v}");
        }
        assert!(Webhook::parse(&serde_json::json!({"shipment_id": "SH-1"})).is_err());
    }
}
