//! Medusa's catalog job payloads, typed and parsed once per job ([`parse`]): a quantity of 0 in
//! place of a missing one would tell the store the product is sold out, a mapping id of 0 would
//! record the wrong product as sent.

use super::Listing;
use crate::daemon::workers::JobError;
use crate::store::queue::Job;
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

pub use crate::channel::kit::parse_job as parse;

/// Parses every job of a batch: the payloads, or each job's error.
pub fn parse_all<T: serde::de::DeserializeOwned>(jobs: &[Job]) -> Vec<Result<T, JobError>> {
    jobs.iter().map(parse).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retry::RetryClass;

    fn job(kind: &str, payload: serde_json::Value) -> Job {
        Job {
            id: 7,
            channel: "medusa".into(),
            kind: kind.into(),
            key: "k".into(),
            payload: payload.into(),
            state: crate::store::queue::JobState::Running,
            attempts: 0,
            next_attempt_at: 0,
            last_error: None,
            error_class: None,
            correlation_id: None,
            created_at: 0,
            updated_at: 0,
        }
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
}
