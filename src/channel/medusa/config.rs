//! `[channels.medusa]`: Medusa's settings, raw (as written) and validated. Every field's `///`
//! comment is its documentation, repeated in `config.example.toml`.

use crate::config::{invalid, record_id, ConfigError, HumanDuration, RawChannel};
use serde::Deserialize;
use std::time::Duration;

/// Which Medusa API the store offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MedusaFlavour {
    /// MarqaSouq's `/odoo/*` routes (`x-odoo-api-key`, prices in minor units).
    #[default]
    Marqasouq,
    /// The standard Medusa v2 Admin API (secret key as HTTP Basic, prices in major units).
    AdminApi,
}

impl MedusaFlavour {
    /// As the config writes it (`flavour = "admin-api"`).
    pub fn as_str(self) -> &'static str {
        match self {
            MedusaFlavour::Marqasouq => "marqasouq",
            MedusaFlavour::AdminApi => "admin-api",
        }
    }
}

impl std::fmt::Display for MedusaFlavour {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How inbound Medusa webhooks prove where they come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum WebhookAuth {
    /// `X-Marketsync-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`.
    #[default]
    Hmac,
    /// A static shared secret in a header, for stores that cannot sign.
    Header,
}

/// Admin API: when marketsync completes a store order (`POST admin/orders/{id}/complete`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum CompleteOrders {
    /// Once Odoo has delivered all of it and its invoices are paid.
    #[default]
    DeliveredAndPaid,
    /// Once Odoo has delivered all of it.
    Delivered,
    /// Never: the store's staff complete orders.
    Never,
}

crate::config::channel_table! {
/// `[channels.medusa]`: the keys every channel has, plus Medusa's own (its `token` is
/// MarqaSouq's `x-odoo-api-key` or a Medusa secret API key, `sk_…`).
pub struct RawMedusa {
    /// `marqasouq` or `admin-api`.
    #[serde(default)]
    pub flavour: MedusaFlavour,
    /// `hmac` (default) or `header`.
    #[serde(default)]
    pub webhook_auth: WebhookAuth,
    /// Header carrying the secret when `webhook_auth = "header"`. Default `x-webhook-secret`.
    #[serde(default = "default_webhook_header")]
    pub webhook_header: String,
    /// Signed webhooks older or newer than this are refused (replays). Default `"5m"`.
    #[serde(default = "default_tolerance")]
    pub webhook_tolerance: HumanDuration,
    /// The store's currency (ISO 4217, e.g. `kwd`). Orders in another currency are parked.
    #[serde(default = "default_medusa_currency")]
    pub currency: String,
    /// Odoo language of the Arabic title and description. Default `ar_001`.
    #[serde(default = "default_lang")]
    pub lang: String,
    /// Admin API: the stock location whose levels carry Odoo's stock (`sloc_…`).
    pub location_id: Option<String>,
    /// Admin API: shipping profile given to created products (`sp_…`).
    pub shipping_profile_id: Option<String>,
    /// Admin API: sales channel created products are published to (`sc_…`).
    pub sales_channel_id: Option<String>,
    #[serde(default = "crate::config::default_stock_field")]
    pub stock_field: String,
    /// The Odoo taxes on an imported order's lines: `"product"` (default: the products' own,
    /// the store's untaxed prices), `"none"`, or a list of tax ids (e.g. a price-included
    /// VAT). A store price that includes its tax (`is_tax_inclusive`) is given to Odoo untaxed
    /// for taxes Odoo adds, as it is for price-included ones.
    #[serde(default)]
    pub order_taxes: crate::sync::order_money::OrderTaxes,
    /// The Odoo service product whose lines carry each shipping method, at what it charged
    /// (unset: shipping stays out of the Odoo order, and the total check says so).
    pub shipping_product_id: Option<i64>,
    /// A free shipping method still gets its line, at zero. Default false.
    #[serde(default)]
    pub free_shipping_line: bool,
    /// The Odoo product of one line carrying the order's discounts (promotions), negative;
    /// unset: each line carries its own discount in percent.
    pub discount_product_id: Option<i64>,
    /// Which Odoo products the store sells: an Odoo domain, e.g.
    /// `[["categ_id", "child_of", 12], ["website_published", "=", true]]` (default: every
    /// active, saleable product with a SKU). A product that leaves it is unpublished (draft).
    pub products: Option<serde_json::Value>,
    /// Admin API: when an order is completed in the store: `"delivered-and-paid"` (default),
    /// `"delivered"`, or `"never"`.
    #[serde(default)]
    pub complete_orders: CompleteOrders,
    /// Sell at this Odoo pricelist's prices for one unit instead of the products' sales price
    /// (fixed prices on products or variants only: see [`crate::sync::pricelist`]).
    pub pricelist_id: Option<i64>,
    #[serde(default = "crate::config::default_overlap")]
    pub poll_overlap: HumanDuration,
    /// Orders are pulled (the safety net for lost webhooks) from this far back. Default `"7d"`.
    #[serde(default = "default_medusa_window")]
    pub pull_window: HumanDuration,
}
}

/// A channel's `products` filter, checked for shape (Odoo checks the fields: `marketsync check`).
pub(crate) fn products_filter(
    path: &str,
    raw: Option<&serde_json::Value>,
) -> Result<Option<crate::odoo::Domain>, ConfigError> {
    match raw {
        None => Ok(None),
        Some(v) => crate::odoo::Domain::parse(v)
            .map(|d| (!d.is_empty()).then_some(d))
            .map_err(|e| {
                invalid(
                    path,
                    format!("{e} (an Odoo domain, e.g. [[\"categ_id\", \"child_of\", 12]])"),
                )
            }),
    }
}

fn default_webhook_header() -> String {
    "x-webhook-secret".into()
}
fn default_tolerance() -> HumanDuration {
    HumanDuration(Duration::from_secs(300))
}
fn default_medusa_currency() -> String {
    "kwd".into()
}
fn default_lang() -> String {
    "ar_001".into()
}
fn default_medusa_window() -> HumanDuration {
    HumanDuration(Duration::from_secs(7 * 86_400))
}

/// Medusa's own settings, validated.
#[derive(Debug, Clone)]
pub struct MedusaSettings {
    pub flavour: MedusaFlavour,
    pub webhook_auth: WebhookAuth,
    pub webhook_header: String,
    pub webhook_tolerance: Duration,
    pub currency: String,
    pub lang: String,
    pub location_id: Option<String>,
    pub shipping_profile_id: Option<String>,
    pub sales_channel_id: Option<String>,
    pub stock_field: String,
    pub complete_orders: CompleteOrders,
    pub products: Option<crate::odoo::Domain>,
    pub order_taxes: crate::sync::order_money::OrderTaxes,
    pub shipping_product_id: Option<i64>,
    pub free_shipping_line: bool,
    pub discount_product_id: Option<i64>,
    pub pricelist_id: Option<i64>,
    pub poll_overlap: Duration,
    pub pull_window: Duration,
}

impl RawMedusa {
    pub(crate) fn split(mut self) -> Result<(RawChannel, MedusaSettings), ConfigError> {
        let key = |k: &str| format!("channels.medusa.{k}");
        let common = self.take_common();
        record_id(&key("pricelist_id"), self.pricelist_id)?;
        record_id(&key("shipping_product_id"), self.shipping_product_id)?;
        record_id(&key("discount_product_id"), self.discount_product_id)?;
        let currency = self.currency.trim().to_ascii_lowercase();
        if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_alphabetic()) {
            return Err(invalid(
                &key("currency"),
                format!(
                    "{:?} is not an ISO 4217 code such as \"kwd\"",
                    self.currency
                ),
            ));
        }
        crate::config::stock_field(&key("stock_field"), &self.stock_field)?;
        if common.reconcile_mode == crate::config::ReconcileMode::ReadBack
            && self.flavour == MedusaFlavour::Marqasouq
        {
            return Err(invalid(&key("reconcile_mode"), "\"read-back\" needs a store marketsync can read back, and MarqaSouq's /odoo routes cannot list products; use \"hashes\" (the default), or the admin-api flavour"));
        }
        if common.enabled && self.flavour == MedusaFlavour::AdminApi && self.location_id.is_none() {
            return Err(invalid(&key("location_id"), "missing; the admin-api flavour needs the stock location (sloc_…) that carries Odoo's stock"));
        }
        if common.enabled
            && !(common.webhook_secret.is_some()
                || common.webhook_secret_file.is_some()
                || common.webhook_secret_env.is_some())
        {
            return Err(invalid(&key("webhook_secret"), "missing; webhooks are refused without it (set webhook_secret, webhook_secret_file or webhook_secret_env)"));
        }
        Ok((
            common,
            MedusaSettings {
                flavour: self.flavour,
                webhook_auth: self.webhook_auth,
                webhook_header: self.webhook_header.to_ascii_lowercase(),
                webhook_tolerance: self.webhook_tolerance.0,
                currency,
                lang: self.lang,
                location_id: self.location_id,
                shipping_profile_id: self.shipping_profile_id,
                sales_channel_id: self.sales_channel_id,
                stock_field: self.stock_field,
                complete_orders: self.complete_orders,
                products: products_filter(&key("products"), self.products.as_ref())?,
                order_taxes: self.order_taxes,
                shipping_product_id: self.shipping_product_id,
                free_shipping_line: self.free_shipping_line,
                discount_product_id: self.discount_product_id,
                pricelist_id: self.pricelist_id,
                poll_overlap: self.poll_overlap.0,
                pull_window: self.pull_window.0,
            },
        ))
    }
}
