//! `[channels.cartona]`: Cartona's settings, raw (as written) and validated. Every field's
//! `///` comment is its documentation, repeated in `config.example.toml`.

use crate::config::{invalid, record_id, ConfigError, HumanDuration, RawChannel};
use serde::Deserialize;
use std::time::Duration;

crate::config::channel_table! {
/// `[channels.cartona]`: the keys every channel has, plus Cartona's own.
pub struct RawCartona {
    /// How Cartona products are matched to Odoo by `map import`: `internal_product_id` (Cartona's
    /// `internal_product_id` holds the Odoo product id, as Cartona's own connector does),
    /// `default_code` (it holds the Odoo SKU) or `barcode`. Default `internal_product_id`.
    #[serde(default)]
    pub match_key: MatchKey,
    /// Sell at this Odoo pricelist's prices for one unit instead of the products' sales price
    /// (fixed prices on products or variants only: see [`crate::sync::pricelist`]).
    pub pricelist_id: Option<i64>,
    /// The Odoo taxes on an imported order's lines: `"product"` (default: the products' own,
    /// Cartona's prices taken as untaxed), `"none"`, or a list of tax ids (e.g. a
    /// price-included VAT, so Cartona's price is the tax-inclusive price).
    #[serde(default)]
    pub order_taxes: crate::sync::order_money::OrderTaxes,
    /// Which Odoo products Cartona sells: an Odoo domain, e.g. `[["categ_id", "child_of", 12]]`
    /// (default: every active, saleable product). `map import` keeps to it; a product that
    /// leaves it is unpublished.
    pub products: Option<serde_json::Value>,
    /// Odoo quantity field pushed as stock: `free_qty` (default: on hand minus reserved),
    /// `qty_available` or `virtual_available`.
    #[serde(default = "crate::config::default_stock_field")]
    pub stock_field: String,
    /// Count stock in this Odoo warehouse only (default: all).
    pub warehouse_id: Option<i64>,
    /// Units kept back from Cartona per product (never pushes below zero). Default 0.
    #[serde(default)]
    pub stock_buffer: u32,
    /// `min_order` / `max_order` sent with every product, when set.
    pub min_order: Option<u32>,
    pub max_order: Option<u32>,
    /// Orders are pulled from this far back. Default `"24h"`.
    #[serde(default = "default_pull_window")]
    pub pull_window: HumanDuration,
    /// Orders per page when pulling. Default 100.
    #[serde(default = "default_cartona_page")]
    pub page_size: u32,
    /// Odoo `write_date` is read with this much overlap, since it has one-second precision and
    /// transactions commit late. Default `"10s"`.
    #[serde(default = "crate::config::default_overlap")]
    pub poll_overlap: HumanDuration,
    /// A `sale.order` field where staff record the retailer's delivery OTP (optional; the
    /// operator can also run `marketsync order otp <ref> <otp>`).
    pub otp_field: Option<String>,
    /// Reason sent when an order is cancelled in Odoo. Default `out_of_stock`.
    #[serde(default = "default_cancellation_reason")]
    pub cancellation_reason: String,
    /// What a Cartona status does to the Odoo order, overriding the defaults (approved =
    /// "confirm", assigned_to_salesman = "confirm_and_reserve", delivered = "deliver",
    /// cancelled_by_retailer / cancelled_by_supplier = "cancel", returned = "flag"). Actions:
    /// nothing, confirm, confirm_and_reserve, deliver, cancel, flag.
    #[serde(default)]
    pub status_actions: std::collections::BTreeMap<String, String>,
}
}

/// Cartona's order statuses.
pub const CARTONA_STATUSES: &[&str] = &[
    "pending",
    "editing",
    "approved",
    "assigned_to_salesman",
    "delivered",
    "cancelled_by_retailer",
    "cancelled_by_supplier",
    "returned",
];

/// What an inbound status may do to the Odoo order (see `channels.cartona.status_actions`).
pub const STATUS_ACTIONS: &[&str] = &[
    "nothing",
    "confirm",
    "confirm_and_reserve",
    "deliver",
    "cancel",
    "flag",
];

fn default_cartona_url() -> Option<String> {
    Some("https://supplier-integrations.cartona.com/api/v1/".into())
}
fn default_pull_window() -> HumanDuration {
    HumanDuration(Duration::from_secs(86_400))
}
fn default_cartona_page() -> u32 {
    100
}
fn default_cancellation_reason() -> String {
    "out_of_stock".into()
}

/// Cartona's `cancellation_reason` values.
pub const CARTONA_CANCELLATION_REASONS: &[&str] = &[
    "out_of_stock",
    "cannot_deliver_the_order",
    "supplier_asked_me_to_cancel",
    "delayed_order",
    "pending_order_without_action",
    "removed_items",
    "supplier_attitude",
    "missing_items",
    "expired_products",
    "different_prices",
    "different_products",
];

/// How `map import` matches Cartona products to Odoo products.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum MatchKey {
    #[default]
    InternalProductId,
    DefaultCode,
    Barcode,
}

/// Cartona's own settings, validated.
#[derive(Debug, Clone)]
pub struct CartonaSettings {
    pub match_key: MatchKey,
    pub pricelist_id: Option<i64>,
    pub order_taxes: crate::sync::order_money::OrderTaxes,
    pub products: Option<crate::odoo::Domain>,
    pub stock_field: String,
    pub warehouse_id: Option<i64>,
    pub stock_buffer: u32,
    pub min_order: Option<u32>,
    pub max_order: Option<u32>,
    pub pull_window: Duration,
    pub page_size: u32,
    pub poll_overlap: Duration,
    pub otp_field: Option<String>,
    pub cancellation_reason: String,
    /// Overrides of the status -> action defaults (validated names).
    pub status_actions: std::collections::BTreeMap<String, String>,
}

impl RawCartona {
    pub(crate) fn split(mut self) -> Result<(RawChannel, CartonaSettings), ConfigError> {
        let key = |k: &str| format!("channels.cartona.{k}");
        let mut common = self.take_common();
        for (name, set) in [
            ("webhook_secret", common.webhook_secret.is_some()),
            ("webhook_secret_file", common.webhook_secret_file.is_some()),
            ("webhook_secret_env", common.webhook_secret_env.is_some()),
        ] {
            if set {
                return Err(invalid(
                    &key(name),
                    "Cartona sends marketsync no webhooks (its orders are pulled); remove this key",
                ));
            }
        }
        common.base_url = common.base_url.or_else(default_cartona_url);
        crate::config::stock_field(&key("stock_field"), &self.stock_field)?;
        if !CARTONA_CANCELLATION_REASONS.contains(&self.cancellation_reason.as_str()) {
            return Err(invalid(
                &key("cancellation_reason"),
                format!(
                    "{:?} is not one of Cartona's reasons: {}",
                    self.cancellation_reason,
                    CARTONA_CANCELLATION_REASONS.join(", ")
                ),
            ));
        }
        if self.page_size == 0 || self.page_size > 500 {
            return Err(invalid(&key("page_size"), "must be between 1 and 500"));
        }
        if let (Some(min), Some(max)) = (self.min_order, self.max_order) {
            if min > max {
                return Err(invalid(
                    &key("min_order"),
                    "must not be larger than max_order",
                ));
            }
        }
        for (status, action) in &self.status_actions {
            if !CARTONA_STATUSES.contains(&status.as_str()) {
                return Err(invalid(
                    &key(&format!("status_actions.{status}")),
                    format!(
                        "{status:?} is not a Cartona status: {}",
                        CARTONA_STATUSES.join(", ")
                    ),
                ));
            }
            if !STATUS_ACTIONS.contains(&action.as_str()) {
                return Err(invalid(
                    &key(&format!("status_actions.{status}")),
                    format!("{action:?} is not an action: {}", STATUS_ACTIONS.join(", ")),
                ));
            }
        }
        for (name, id) in [
            ("pricelist_id", self.pricelist_id),
            ("warehouse_id", self.warehouse_id),
        ] {
            record_id(&key(name), id)?;
        }
        if let Some(field) = &self.otp_field {
            if field.is_empty() || !field.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(invalid(
                    &key("otp_field"),
                    format!("{field:?} is not an Odoo field name"),
                ));
            }
        }
        Ok((
            common,
            CartonaSettings {
                match_key: self.match_key,
                pricelist_id: self.pricelist_id,
                order_taxes: self.order_taxes,
                products: crate::channel::medusa::config::products_filter(
                    &key("products"),
                    self.products.as_ref(),
                )?,
                stock_field: self.stock_field,
                warehouse_id: self.warehouse_id,
                stock_buffer: self.stock_buffer,
                min_order: self.min_order,
                max_order: self.max_order,
                pull_window: self.pull_window.0,
                page_size: self.page_size,
                poll_overlap: self.poll_overlap.0,
                otp_field: self.otp_field,
                cancellation_reason: self.cancellation_reason,
                status_actions: self.status_actions,
            },
        ))
    }
}
