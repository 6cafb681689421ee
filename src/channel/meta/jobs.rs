//! The Meta catalog's job payloads, typed and parsed once per job.

use serde::{Deserialize, Serialize};

/// `item`: one catalog item to send (`UPDATE` with upsert, or `DELETE`), then, once sent, the
/// batch handles whose status says whether Meta took it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ItemPush {
    pub mapping_id: i64,
    pub odoo_id: i64,
    /// What the mapping records once Meta took it.
    pub hash: String,
    /// `UPDATE` or `DELETE`.
    pub method: String,
    /// The request's `data` (its `id` is the retailer id).
    pub data: serde_json::Value,
    /// Set once the item went out: the batch's handles, polled until finished.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub handles: Vec<String>,
    /// Status polls so far (the wait between them doubles).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub polls: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl ItemPush {
    /// The retailer id (`data.id`).
    pub fn retailer_id(&self) -> &str {
        self.data["id"].as_str().unwrap_or_default()
    }

    /// As planned, before it went out (what a dead job keeps, so that the same value is not
    /// planned again).
    pub fn unsent(&self) -> ItemPush {
        ItemPush {
            handles: Vec::new(),
            polls: 0,
            ..self.clone()
        }
    }
}

/// Meta's job kinds: the queue's `kind` column, matched here only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Item,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Item => "item",
        }
    }
}

impl crate::channel::JobKind for Kind {
    fn of(kind: &str) -> Option<Kind> {
        (kind == "item").then_some(Kind::Item)
    }

    fn batching(self) -> crate::channel::Batching {
        crate::channel::Batching::Setting
    }

    /// An item done is recorded with its mapping, once its batch finished; one still in a
    /// batch is put back to wait for it.
    fn recorded_by_run(self) -> bool {
        true
    }
}

pub use crate::channel::kit::{parse_all, parse_job as parse};
