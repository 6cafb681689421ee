//! Drift: what a marketplace holds against what Odoo says it should (`marketsync diff`, and
//! the reconcile of a channel with `reconcile_mode = "read-back"`). The channel reads its
//! listings back ([`ReadBack::holdings`]) and says what each Odoo product should look like
//! there ([`ReadBack::wanted`]); the comparison is the same for every channel. A repair queues
//! exactly the fixes, whatever was sent before (an admin may have changed a value behind our
//! back, so the last-sent hash says nothing).

use crate::error::{Context, Error};
use crate::sync::catalog::{CatalogReader, ProductSnapshot};
use rust_decimal::Decimal;
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::future::Future;

/// What a listing shows, as far as the marketplace says (`None`: not shown, not compared).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Held {
    pub price: Option<Decimal>,
    pub stock: Option<i64>,
    pub published: Option<bool>,
}

/// What an Odoo product should look like on the marketplace.
#[derive(Debug, Clone)]
pub struct Wanted {
    pub odoo_id: i64,
    /// The marketplace's id for it (Cartona's supplier product id, Medusa's SKU).
    pub external_id: String,
    pub held: Held,
}

impl Wanted {
    pub fn new(odoo_id: i64, external_id: impl Into<String>, held: Held) -> Wanted {
        Wanted {
            odoo_id,
            external_id: external_id.into(),
            held,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftKind {
    Price,
    Stock,
    Published,
    /// Odoo says it should be listed; the marketplace does not have it.
    Missing,
    /// The marketplace lists it; Odoo knows nothing of it (no mapping, no SKU).
    Unknown,
}

impl DriftKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DriftKind::Price => "price",
            DriftKind::Stock => "stock",
            DriftKind::Published => "published",
            DriftKind::Missing => "missing on the channel",
            DriftKind::Unknown => "unknown to Odoo",
        }
    }
}

/// One difference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Drift {
    pub kind: DriftKind,
    pub odoo_id: Option<i64>,
    pub external_id: String,
    /// What Odoo says.
    pub odoo: Option<String>,
    /// What the marketplace holds.
    pub channel: Option<String>,
}

/// A channel whose listings can be read back.
pub trait ReadBack: Send + Sync {
    /// Every listing the marketplace holds, by its id for it.
    fn holdings(&self) -> impl Future<Output = Result<HashMap<String, Held>, Error>> + Send;
    /// What these Odoo products should look like there (the ones it lists, or should).
    fn wanted(
        &self,
        page: &[ProductSnapshot],
    ) -> impl Future<Output = Result<Vec<Wanted>, Error>> + Send;
    /// Queues what makes the marketplace hold Odoo's values for these products (`missing`:
    /// the ones it does not have), whatever was sent before.
    fn repair(
        &self,
        page: &[ProductSnapshot],
        missing: &HashSet<i64>,
    ) -> impl Future<Output = Result<Repaired, Error>> + Send;
    /// How it reads Odoo's catalog.
    fn reader(&self) -> &CatalogReader;
}

/// What a repair queued, and what it cannot fix from here.
#[derive(Debug, Default)]
pub struct Repaired {
    pub queued: usize,
    pub not_repaired: Vec<String>,
}

/// What a diff found.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub drifts: Vec<Drift>,
    /// Odoo products compared.
    pub compared: usize,
    /// Listings the marketplace holds.
    pub held: usize,
    /// Products whose fixes were queued (`--repair`).
    pub queued: usize,
    /// Differences a repair cannot fix from here, and why (one line each).
    pub not_repaired: Vec<String>,
}

impl Report {
    /// How many differences of each kind.
    pub fn counts(&self) -> Vec<(DriftKind, usize)> {
        let mut counts: Vec<(DriftKind, usize)> = Vec::new();
        for d in &self.drifts {
            match counts.iter_mut().find(|(k, _)| *k == d.kind) {
                Some((_, n)) => *n += 1,
                None => counts.push((d.kind, 1)),
            }
        }
        counts.sort();
        counts
    }

    /// The summary line: "3 differences (2 price, 1 missing on the channel) among 50 Odoo
    /// products and 51 listings".
    pub fn summary(&self, channel: &str) -> String {
        let among = format!(
            "among {} Odoo product(s) and {} {channel} listing(s)",
            self.compared, self.held
        );
        if self.drifts.is_empty() {
            return format!("no difference {among}");
        }
        let counts: Vec<String> = self
            .counts()
            .iter()
            .map(|(k, n)| format!("{n} {}", k.as_str()))
            .collect();
        format!(
            "{} difference(s) ({}) {among}",
            self.drifts.len(),
            counts.join(", ")
        )
    }
}

fn show(v: Option<impl ToString>) -> Option<String> {
    v.map(|v| v.to_string())
}

/// The differences between what a product should look like and what is held (`None`: not
/// held at all).
pub fn compare(w: &Wanted, held: Option<Held>) -> Vec<Drift> {
    let drift = |kind, odoo: Option<String>, channel: Option<String>| Drift {
        kind,
        odoo_id: Some(w.odoo_id),
        external_id: w.external_id.clone(),
        odoo,
        channel,
    };
    let Some(h) = held else {
        // Not shown and not held: as it should be.
        if w.held.published == Some(false) {
            return Vec::new();
        }
        return vec![drift(DriftKind::Missing, Some("listed".into()), None)];
    };
    let mut out = Vec::new();
    if differs(w.held.price, h.price) {
        out.push(drift(DriftKind::Price, show(w.held.price), show(h.price)));
    }
    if differs(w.held.stock, h.stock) {
        out.push(drift(DriftKind::Stock, show(w.held.stock), show(h.stock)));
    }
    if differs(w.held.published, h.published) {
        out.push(drift(
            DriftKind::Published,
            show(w.held.published),
            show(h.published),
        ));
    }
    out
}

/// Both shown, and not the same.
fn differs<T: PartialEq>(a: Option<T>, b: Option<T>) -> bool {
    a.is_some() && b.is_some() && a != b
}

/// Compares the whole catalog with what the marketplace holds, a page of Odoo at a time (one
/// page of products in memory, beside the listings); with `repair`, queues each page's fixes
/// before reading the next.
pub async fn diff<C: ReadBack>(c: &C, repair: bool) -> Result<Report, Error> {
    let mut held = c.holdings().await?;
    let mut report = Report {
        held: held.len(),
        ..Default::default()
    };
    let page_size = c.reader().odoo.page_size();
    let mut after = 0;
    loop {
        let page = c
            .reader()
            .page_after(after)
            .await
            .context("reading the catalog from Odoo")?;
        after = page.last().map(|p| p.id).unwrap_or(after);
        let mut fix = HashSet::new();
        let mut missing = HashSet::new();
        for w in c.wanted(&page).await? {
            report.compared += 1;
            let found = compare(&w, held.remove(&w.external_id));
            if !found.is_empty() {
                fix.insert(w.odoo_id);
            }
            if found.iter().any(|d| d.kind == DriftKind::Missing) {
                missing.insert(w.odoo_id);
            }
            report.drifts.extend(found);
        }
        if repair && !fix.is_empty() {
            let products: Vec<ProductSnapshot> = page
                .iter()
                .filter(|p| fix.contains(&p.id))
                .cloned()
                .collect();
            let r = c.repair(&products, &missing).await?;
            report.queued += r.queued;
            report.not_repaired.extend(r.not_repaired);
        }
        if page.len() < page_size {
            break;
        }
    }
    let mut unknown: Vec<(String, Held)> = held.into_iter().collect();
    unknown.sort_by(|a, b| a.0.cmp(&b.0));
    for (external_id, h) in unknown {
        report.drifts.push(Drift {
            kind: DriftKind::Unknown,
            odoo_id: None,
            external_id,
            odoo: None,
            channel: show(h.price.map(|p| format!("listed at {p}"))).or(Some("listed".into())),
        });
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted(price: i64, stock: i64, published: bool) -> Wanted {
        Wanted {
            odoo_id: 7,
            external_id: "SKU-7".into(),
            held: Held {
                price: Some(Decimal::from(price)),
                stock: Some(stock),
                published: Some(published),
            },
        }
    }

    #[test]
    fn each_field_that_differs_is_one_drift_and_an_unshown_field_is_not_compared() {
        let w = wanted(10, 5, true);
        assert!(compare(&w, Some(w.held.clone())).is_empty());
        let held = Held {
            price: Some(Decimal::from(12)),
            stock: None,
            published: Some(false),
        };
        let kinds: Vec<DriftKind> = compare(&w, Some(held)).iter().map(|d| d.kind).collect();
        assert_eq!(kinds, vec![DriftKind::Price, DriftKind::Published]);
        let d = &compare(&w, None)[0];
        assert_eq!((d.kind, d.odoo_id), (DriftKind::Missing, Some(7)));
        assert!(
            compare(&wanted(10, 0, false), None).is_empty(),
            "an unpublished product the store never had is as it should be"
        );
    }

    #[test]
    fn the_summary_counts_each_kind() {
        let w = wanted(10, 5, true);
        let mut r = Report {
            compared: 3,
            held: 2,
            ..Default::default()
        };
        assert_eq!(
            r.summary("cartona"),
            "no difference among 3 Odoo product(s) and 2 cartona listing(s)"
        );
        r.drifts.extend(compare(&w, None));
        r.drifts.extend(compare(
            &w,
            Some(Held {
                price: Some(Decimal::ONE),
                ..w.held.clone()
            }),
        ));
        assert_eq!(
            r.summary("cartona"),
            "2 difference(s) (1 price, 1 missing on the channel) among 3 Odoo product(s) and 2 cartona listing(s)"
        );
    }
}
