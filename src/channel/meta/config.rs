//! `[channels.meta]`: the Meta catalog's settings, raw (as written) and validated. Every
//! field's `///` comment is its documentation, repeated in `config.example.toml`.

use crate::config::{invalid, record_id, ConfigError, HumanDuration, RawChannel};
use serde::Deserialize;
use std::time::Duration;

/// The Graph API version marketsync speaks, pinned in the default `base_url` (API-NOTES §3:
/// the newest listed, v26.0 of 2026-07-29, supported for about two years).
pub const DEFAULT_BASE_URL: &str = "https://graph.facebook.com/v26.0/";

/// What identifies an Odoo product in the catalog (the item's `retailer_id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RetailerId {
    /// The product's internal reference (`default_code`); a product without one is not sent.
    #[default]
    DefaultCode,
    /// Odoo's product id (`odoo-42`): every product has one, and it never changes.
    OdooId,
}

/// What becomes of the item of a product archived, no longer saleable or out of the filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OnRemove {
    /// It is deleted from the catalog.
    #[default]
    Delete,
    /// It stays, out of stock (its ads and links keep working).
    OutOfStock,
}

crate::config::channel_table! {
/// `[channels.meta]`: the keys every channel has, plus the catalog's own (its `token` is a
/// system user's access token with `catalog_management`).
pub struct RawMeta {
    /// The Commerce Manager catalog's id (digits).
    pub catalog_id: Option<String>,
    /// The catalog's currency (ISO 4217, e.g. `KWD`): prices go out as `"12.900 KWD"`.
    pub currency: Option<String>,
    /// `"default_code"` (default: the internal reference) or `"odoo_id"`.
    #[serde(default)]
    pub retailer_id: RetailerId,
    /// The item's page in the supplier's store, a template of `{id}`, `{default_code}`,
    /// `{template_id}` and `{slug}` (e.g. `"https://shop.example.com/products/{slug}"`); https.
    pub link: Option<String>,
    /// The item's main image, a template as `link`; https. Default: Odoo's own image URL
    /// (`{odoo.url}web/image/product.product/{id}/image_1920`), when Odoo is served over https.
    pub image_link: Option<String>,
    /// More images, templates as `link` (at most 20).
    #[serde(default)]
    pub additional_image_links: Vec<String>,
    /// The brand every item carries (Odoo has no brand field).
    pub brand: Option<String>,
    /// The items' `condition`: `new` (default), `refurbished` or `used`.
    #[serde(default = "default_condition")]
    pub condition: String,
    /// A product archived, unsaleable or out of the filter: `"delete"` (default) its item, or
    /// keep it `"out_of_stock"`.
    #[serde(default)]
    pub on_remove: OnRemove,
    /// Odoo language of the titles, descriptions and attribute values (e.g. `ar_001`); unset:
    /// Odoo's default.
    pub lang: Option<String>,
    /// Which Meta variant field each Odoo attribute fills, by the attribute's name (e.g.
    /// `{ "Couleur" = "color" }`): one of color, size, pattern, material, gender, age_group,
    /// or "additional" (`additional_variant_attribute`). Without it: Color/Colour/اللون are
    /// color, Size/المقاس size, and so on; any other attribute goes in
    /// `additional_variant_attribute`.
    #[serde(default)]
    pub attribute_fields: std::collections::BTreeMap<String, String>,
    #[serde(default = "crate::config::default_stock_field")]
    pub stock_field: String,
    /// Units held back from the catalog's `inventory` (a product at or under it is out of
    /// stock). Default 0.
    #[serde(default)]
    pub stock_buffer: u32,
    /// Which Odoo products the catalog shows: an Odoo domain (default: every active, saleable
    /// product). A product that leaves it is removed (`on_remove`).
    pub products: Option<serde_json::Value>,
    /// Sell at this Odoo pricelist's prices for one unit; a lower price whose rule has dates
    /// goes out as `sale_price` with `sale_price_effective_date`.
    pub pricelist_id: Option<i64>,
    #[serde(default = "crate::config::default_overlap")]
    pub poll_overlap: HumanDuration,
}
}

fn default_condition() -> String {
    "new".into()
}

/// The Meta catalog's own settings, validated.
#[derive(Debug, Clone)]
pub struct MetaSettings {
    pub catalog_id: String,
    /// Upper case (`KWD`).
    pub currency: String,
    pub retailer_id: RetailerId,
    pub link: String,
    /// `None`: Odoo's own image URL.
    pub image_link: Option<String>,
    pub additional_image_links: Vec<String>,
    pub brand: Option<String>,
    pub condition: String,
    pub on_remove: OnRemove,
    pub lang: Option<String>,
    /// Odoo attribute name in lower case -> Meta field (or "additional").
    pub attribute_fields: std::collections::BTreeMap<String, String>,
    pub stock_field: String,
    pub stock_buffer: u32,
    pub products: Option<crate::odoo::Domain>,
    pub pricelist_id: Option<i64>,
    pub poll_overlap: Duration,
}

/// The placeholders a `link` or `image_link` template may name.
pub const PLACEHOLDERS: [&str; 4] = ["{id}", "{default_code}", "{template_id}", "{slug}"];

/// A link template: https, and only known placeholders.
fn template(path: &str, text: &str) -> Result<String, ConfigError> {
    let mut rest = text.to_string();
    for p in PLACEHOLDERS {
        rest = rest.replace(p, "x");
    }
    if let Some(at) = rest.find('{') {
        let name: String = rest[at..].chars().take_while(|c| *c != '}').collect();
        return Err(invalid(
            path,
            format!(
                "{name}}} is not a placeholder; use {}",
                PLACEHOLDERS.join(", ")
            ),
        ));
    }
    match url::Url::parse(&rest) {
        Ok(u) if u.scheme() == "https" && u.host().is_some() => Ok(text.to_string()),
        Ok(_) => Err(invalid(
            path,
            format!("{text:?} must be an https URL: Meta refuses items whose links are not"),
        )),
        Err(e) => Err(invalid(path, format!("{text:?} is not a URL ({e})"))),
    }
}

impl RawMeta {
    pub(crate) fn split(mut self) -> Result<(RawChannel, MetaSettings), ConfigError> {
        let key = |k: &str| format!("channels.meta.{k}");
        let mut common = self.take_common();
        if common.base_url.is_none() {
            common.base_url = Some(DEFAULT_BASE_URL.into());
        }
        record_id(&key("pricelist_id"), self.pricelist_id)?;
        crate::config::stock_field(&key("stock_field"), &self.stock_field)?;
        let enabled = common.enabled;
        let required = |name: &str, v: Option<String>, what: &str| match v {
            Some(v) if !v.trim().is_empty() => Ok(v.trim().to_string()),
            _ if !enabled => Ok(String::new()),
            _ => Err(invalid(&key(name), format!("missing; {what}"))),
        };
        let catalog_id = required(
            "catalog_id",
            self.catalog_id,
            "the catalog's id is in Commerce Manager > Catalog > Settings",
        )?;
        if !catalog_id.chars().all(|c| c.is_ascii_digit()) {
            return Err(invalid(
                &key("catalog_id"),
                format!("{catalog_id:?} is not a catalog id (digits, from Commerce Manager)"),
            ));
        }
        let currency = required(
            "currency",
            self.currency,
            "the catalog's currency (ISO 4217, e.g. \"KWD\")",
        )?
        .to_ascii_uppercase();
        if enabled && (currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_alphabetic())) {
            return Err(invalid(
                &key("currency"),
                format!("{currency:?} is not an ISO 4217 code such as \"KWD\""),
            ));
        }
        let link = required(
            "link",
            self.link,
            "each item needs the page of the supplier's store it leads to, e.g. \"https://shop.example.com/products/{slug}\"",
        )?;
        let link = if link.is_empty() {
            link
        } else {
            template(&key("link"), &link)?
        };
        let image_link = self
            .image_link
            .map(|t| template(&key("image_link"), &t))
            .transpose()?;
        if self.additional_image_links.len() > 20 {
            return Err(invalid(
                &key("additional_image_links"),
                "at most 20 (Meta takes no more)",
            ));
        }
        let additional_image_links = self
            .additional_image_links
            .iter()
            .map(|t| template(&key("additional_image_links"), t))
            .collect::<Result<Vec<_>, _>>()?;
        if !["new", "refurbished", "used"].contains(&self.condition.as_str()) {
            return Err(invalid(
                &key("condition"),
                format!("{:?} is not one of new, refurbished, used", self.condition),
            ));
        }
        let mut attribute_fields = std::collections::BTreeMap::new();
        for (attribute, field) in &self.attribute_fields {
            let f = field.trim().to_ascii_lowercase();
            if f != super::wire::ADDITIONAL && !super::wire::VARIANT_FIELDS.contains(&f.as_str()) {
                return Err(invalid(
                    &key(&format!("attribute_fields.{attribute}")),
                    format!(
                        "{field:?} is not a Meta variant field; use one of {}, or \"{}\"",
                        super::wire::VARIANT_FIELDS.join(", "),
                        super::wire::ADDITIONAL
                    ),
                ));
            }
            attribute_fields.insert(attribute.trim().to_lowercase(), f);
        }
        Ok((
            common,
            MetaSettings {
                catalog_id,
                currency,
                retailer_id: self.retailer_id,
                link,
                image_link,
                additional_image_links,
                brand: self.brand.filter(|b| !b.trim().is_empty()),
                condition: self.condition,
                on_remove: self.on_remove,
                lang: self.lang.filter(|l| !l.trim().is_empty()),
                attribute_fields,
                stock_field: self.stock_field,
                stock_buffer: self.stock_buffer,
                products: crate::channel::medusa::config::products_filter(
                    &key("products"),
                    self.products.as_ref(),
                )?,
                pricelist_id: self.pricelist_id,
                poll_overlap: self.poll_overlap.0,
            },
        ))
    }
}

/// Odoo's image URL is the default `image_link`: Meta takes only https ones.
pub fn image_default_usable(odoo_url: &url::Url) -> bool {
    odoo_url.scheme() == "https"
}
