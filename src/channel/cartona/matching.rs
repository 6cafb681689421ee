//! `marketsync map import --channel cartona`: reads the supplier's Cartona products and matches
//! them to Odoo products by the configured key, then reports matched, unmatched and ambiguous
//! on both sides. `--dry-run` writes nothing.
//!
//! Keys: `internal_product_id` (Cartona's `internal_product_id` is the Odoo product id, as
//! Cartona's own connector sets it), `default_code` (it is the Odoo SKU), `barcode`.

use super::wire::SupplierProduct;
use super::CHANNEL;
use crate::channel::http::HttpClient;
use crate::config::MatchKey;
use crate::error::Context;
use crate::odoo::{Domain, OdooClient, Value};
use crate::store::{mapping, Store};
use serde::Serialize;
use std::collections::HashMap;

#[derive(Debug, Default, Serialize)]
pub struct MatchReport {
    pub cartona_products: usize,
    pub odoo_products: usize,
    /// (Odoo product id, Cartona supplier_product_id, key)
    pub matched: Vec<(i64, String, String)>,
    pub already_mapped: usize,
    /// Cartona products no Odoo product matches: (supplier_product_id, key or "")
    pub unmatched_cartona: Vec<(String, String)>,
    /// Odoo products (active, sellable) not on Cartona: (id, SKU)
    pub unmatched_odoo: Vec<(i64, String)>,
    /// Keys that match more than one product, or pairs that conflict with an existing mapping.
    pub ambiguous: Vec<String>,
    pub dry_run: bool,
}

/// Every supplier product on Cartona, page by page.
pub async fn cartona_products(
    api: &HttpClient,
    per_page: usize,
) -> Result<Vec<SupplierProduct>, crate::error::Error> {
    cartona_products_with(api, per_page, &|_| {}).await
}

/// [`cartona_products`], telling `read` how many it has so far after each page.
async fn cartona_products_with(
    api: &HttpClient,
    per_page: usize,
    read: &(dyn Fn(usize) + Sync),
) -> Result<Vec<SupplierProduct>, crate::error::Error> {
    let mut out = Vec::new();
    for page in 1..=10_000u32 {
        let body = api
            .get(
                "supplier-product",
                &[
                    ("page", page.to_string()),
                    ("per_page", per_page.to_string()),
                ],
            )
            .await?;
        let rows = match <super::wire::Listing as serde::Deserialize>::deserialize(&body) {
            Ok(listing) => listing.rows(),
            Err(_) => {
                return Err(crate::error::Error::unreadable(
                    "Cartona",
                    format!(
                        "Cartona's supplier-product answered something other than a list: {}",
                        crate::odoo::transport::summarize_body_from(&body.to_string(), "Cartona")
                    ),
                ))
            }
        };
        let n = rows.len();
        for row in rows {
            out.push(
                serde_json::from_value::<SupplierProduct>(row.clone()).map_err(|e| {
                    crate::error::Error::invalid(format!(
                        "a Cartona product is malformed ({e}): {row}"
                    ))
                })?,
            );
        }
        read(out.len());
        if n < per_page {
            break;
        }
    }
    Ok(out)
}

struct OdooProduct {
    id: i64,
    sku: Option<String>,
    barcode: Option<String>,
    sellable: bool,
}

pub async fn import(
    api: &HttpClient,
    odoo: &OdooClient,
    store: &Store,
    key: MatchKey,
    dry_run: bool,
) -> Result<MatchReport, crate::error::Error> {
    import_with(api, odoo, store, key, None, dry_run, &|_, _| {}).await
}

/// [`import`], telling `progress` what it is reading and how many so far (for a terminal).
/// `marketsync map import --channel cartona`: matches with the channel's settings, and says
/// what it found in the operator's lines.
pub async fn map_import(
    ch: &crate::config::ChannelConfig,
    odoo: &OdooClient,
    store: &Store,
    dry_run: bool,
    progress: &(dyn Fn(&str, usize) + Sync),
) -> Result<crate::channel::MapImport, crate::error::Error> {
    let settings = ch
        .cartona()
        .ok_or_else(|| crate::error::Error::invalid("channels.cartona has no Cartona settings"))?;
    let key = settings.match_key;
    let api = super::client(ch)?;
    let report = import_with(
        &api,
        odoo,
        store,
        key,
        settings.products.as_ref(),
        dry_run,
        progress,
    )
    .await?;
    Ok(crate::channel::MapImport {
        json: serde_json::to_value(&report).unwrap_or_default(),
        lines: report.lines(key),
    })
}

impl MatchReport {
    /// The report as the operator reads it (at most 20 of each list).
    pub fn lines(&self, key: MatchKey) -> Vec<String> {
        let verb = if self.dry_run { "would map" } else { "mapped" };
        let mut out = vec![
            format!(
                "Cartona products: {}   Odoo products: {}   (key: {key:?})",
                self.cartona_products, self.odoo_products
            ),
            format!(
                "{verb}: {}   already mapped: {}",
                self.matched.len(),
                self.already_mapped
            ),
            format!(
                "on Cartona, not matched in Odoo: {}",
                self.unmatched_cartona.len()
            ),
        ];
        for (id, key) in self.unmatched_cartona.iter().take(20) {
            out.push(format!("  {id} (key {key:?})"));
        }
        out.push(format!(
            "sellable in Odoo, not on Cartona: {}",
            self.unmatched_odoo.len()
        ));
        for (id, sku) in self.unmatched_odoo.iter().take(20) {
            out.push(format!("  product.product {id} {sku}"));
        }
        out.push(format!("ambiguous: {}", self.ambiguous.len()));
        for line in &self.ambiguous {
            out.push(format!("  {line}"));
        }
        out
    }
}

pub async fn import_with(
    api: &HttpClient,
    odoo: &OdooClient,
    store: &Store,
    key: MatchKey,
    filter: Option<&Domain>,
    dry_run: bool,
    progress: &(dyn Fn(&str, usize) + Sync),
) -> Result<MatchReport, crate::error::Error> {
    let cartona = cartona_products_with(api, 100, &|n| progress("Cartona products", n)).await?;
    let mut odoo_products = Vec::new();
    // Only the products the channel sells (`products`) are matched.
    let domain = match filter {
        Some(f) => Domain::all().and_domain(f),
        None => Domain::all(),
    };
    odoo.search_read_pages(
        "product.product",
        &domain,
        &["default_code", "barcode", "active", "sale_ok"],
        vec![("active_test".into(), Value::Bool(false))],
        |rows| {
            for r in rows {
                odoo_products.push(OdooProduct {
                    id: r.get("id").and_then(Value::as_i64).unwrap_or(0),
                    sku: r
                        .get("default_code")
                        .and_then(Value::as_opt_str)
                        .map(str::to_string),
                    barcode: r
                        .get("barcode")
                        .and_then(Value::as_opt_str)
                        .map(str::to_string),
                    sellable: r.get("active").and_then(Value::as_bool).unwrap_or(true)
                        && r.get("sale_ok").and_then(Value::as_bool).unwrap_or(true),
                });
            }
            progress("Odoo products", odoo_products.len());
            Ok(())
        },
    )
    .await
    .context("reading products from Odoo")?;

    let odoo_key = |p: &OdooProduct| -> Option<String> {
        match key {
            MatchKey::InternalProductId => Some(p.id.to_string()),
            MatchKey::DefaultCode => p.sku.clone(),
            MatchKey::Barcode => p.barcode.clone(),
        }
    };
    let cartona_key = |c: &SupplierProduct| -> Option<String> {
        match key {
            MatchKey::InternalProductId | MatchKey::DefaultCode => c.internal_product_id.clone(),
            MatchKey::Barcode => c.barcode.clone(),
        }
        .map(|k| k.trim().to_string())
        .filter(|k| !k.is_empty())
    };
    let mut by_key: HashMap<String, Vec<&OdooProduct>> = HashMap::new();
    for p in &odoo_products {
        if let Some(k) = odoo_key(p) {
            by_key.entry(k).or_default().push(p);
        }
    }
    let mut cartona_count: HashMap<String, usize> = HashMap::new();
    for c in &cartona {
        if let Some(k) = cartona_key(c) {
            *cartona_count.entry(k).or_default() += 1;
        }
    }

    let mut report = MatchReport {
        cartona_products: cartona.len(),
        odoo_products: odoo_products.len(),
        dry_run,
        ..Default::default()
    };
    let mut matched_odoo = std::collections::HashSet::new();
    for c in &cartona {
        let Some(k) = cartona_key(c) else {
            report.unmatched_cartona.push((c.id.clone(), String::new()));
            continue;
        };
        if cartona_count[&k] > 1 {
            report.ambiguous.push(format!(
                "{} Cartona products share the key {k:?} (one is {})",
                cartona_count[&k], c.id
            ));
            continue;
        }
        match by_key.get(&k).map(Vec::as_slice) {
            None | Some([]) => report.unmatched_cartona.push((c.id.clone(), k)),
            Some([p]) => {
                matched_odoo.insert(p.id);
                let existing = mapping::by_odoo(store, CHANNEL, "product", p.id)?;
                let existing_ext = mapping::by_external(store, CHANNEL, "product", &c.id)?;
                match (existing, existing_ext) {
                    (Some(m), _) if m.external_id == c.id => report.already_mapped += 1,
                    (Some(m), _) => report.ambiguous.push(format!(
                        "Odoo product {} matches Cartona product {} by {k:?}, but is mapped to {}",
                        p.id, c.id, m.external_id
                    )),
                    (None, Some(m)) => report.ambiguous.push(format!(
                        "Cartona product {} matches Odoo product {} by {k:?}, but is mapped to {}",
                        c.id, p.id, m.odoo_id
                    )),
                    (None, None) => {
                        if !dry_run {
                            mapping::set(
                                store,
                                CHANNEL,
                                "product",
                                "product.product",
                                p.id,
                                &c.id,
                            )?;
                        }
                        report.matched.push((p.id, c.id.clone(), k));
                    }
                }
            }
            Some(many) => report.ambiguous.push(format!(
                "Cartona product {} matches {} Odoo products by {k:?}: {}",
                c.id,
                many.len(),
                many.iter()
                    .map(|p| p.id.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
    report.unmatched_odoo = odoo_products
        .iter()
        .filter(|p| p.sellable && !matched_odoo.contains(&p.id))
        .filter(|p| {
            mapping::by_odoo(store, CHANNEL, "product", p.id)
                .ok()
                .flatten()
                .is_none()
        })
        .map(|p| (p.id, p.sku.clone().unwrap_or_default()))
        .collect();
    if dry_run {
        return Ok(report);
    }
    let summary = format!(
        "mapped {} product(s); {} already mapped, {} Cartona and {} Odoo unmatched, {} ambiguous",
        report.matched.len(),
        report.already_mapped,
        report.unmatched_cartona.len(),
        report.unmatched_odoo.len(),
        report.ambiguous.len()
    );
    crate::internal_events::emit(
        store,
        &crate::internal_events::ProductsMatched {
            channel: CHANNEL,
            summary: &summary,
            matched: report.matched.len() as i64,
        },
    );
    Ok(report)
}
