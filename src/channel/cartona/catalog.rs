//! Cartona catalog out: Odoo products to `supplier-product/bulk-update`, only what changed.

use super::*;
use crate::channel::drift::{Held, Repaired, Wanted};
use crate::error::Context;
use std::collections::HashSet;

impl Cartona {
    /// What Cartona should hold for a product.
    pub fn desired(&self, p: &ProductSnapshot, supplier_product_id: &str) -> ProductUpdate {
        let stock =
            (p.stock.floor() - Decimal::from(self.settings.stock_buffer)).max(Decimal::ZERO);
        let qty = stock.to_i64().unwrap_or(0);
        let published = p.sellable();
        ProductUpdate {
            supplier_product_id: supplier_product_id.to_string(),
            selling_price: p
                .price
                .round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
                .to_string(),
            available_stock_quantity: if published { qty } else { 0 },
            in_stock: published && qty > 0,
            is_published: published,
            min_order: self.settings.min_order,
            max_order: self.settings.max_order,
        }
    }

    /// The mapped products whose desired state differs from what Cartona last accepted and
    /// from what is already queued for it.
    pub(super) fn plan(
        &self,
        products: &[ProductSnapshot],
        mappings: &HashMap<i64, mapping::Mapping>,
    ) -> Vec<PlannedItem> {
        products
            .iter()
            .filter(|p| p.unpriced.is_none())
            .filter_map(|p| {
                let m = mappings.get(&p.id)?;
                let item = self.item(p, m);
                let (sent, queued) = (m.last_hash.as_deref(), m.planned_hash.as_deref());
                // Nothing to do when this value is queued, or was sent and nothing else is
                // queued since. A value that went back to what was sent while another one
                // waits is queued again: the waiting one must not have the last word.
                let settled =
                    sent == Some(item.hash.as_str()) && queued.is_none_or(|q| Some(q) == sent);
                if settled || queued == Some(item.hash.as_str()) {
                    return None;
                }
                Some(item)
            })
            .collect()
    }

    /// The update a mapped product is planned with, and its hash.
    fn item(&self, p: &ProductSnapshot, m: &mapping::Mapping) -> PlannedItem {
        let mut update = self.desired(p, &m.external_id);
        // Keep the key stable: format the price with two decimals ("12.50").
        if let Ok(d) = update.selling_price.parse::<Decimal>() {
            update.selling_price = format!("{d:.2}");
        }
        PlannedItem {
            mapping_id: m.id,
            odoo_id: p.id,
            hash: update.hash(),
            update,
        }
    }

    /// The mappings of these products only: a poll never loads the whole table.
    pub(super) fn mappings(
        &self,
        products: &[ProductSnapshot],
    ) -> Result<HashMap<i64, mapping::Mapping>, crate::error::Error> {
        let ids: Vec<i64> = products.iter().map(|p| p.id).collect();
        Ok(mapping::by_odoo_many(
            &self.store,
            CHANNEL,
            "product",
            &ids,
        )?)
    }

    /// Queues the planned updates in jobs of [`JOB_REQUESTS`] bulk requests of `batch_size`
    /// products and records each product's queued value, in one transaction: a crash keeps
    /// both or neither.
    pub(super) fn enqueue(&self, items: Vec<PlannedItem>) -> Result<usize, crate::error::Error> {
        if items.is_empty() {
            return Ok(0);
        }
        let jobs: Vec<NewJob> = items
            .chunks(self.batch_size.max(1) * JOB_REQUESTS)
            .map(|chunk| {
                let hashes: Vec<&str> = chunk.iter().map(|i| i.hash.as_str()).collect();
                NewJob {
                    channel: CHANNEL.into(),
                    kind: jobs::Kind::Product.as_str().into(),
                    key: format!(
                        "{CHANNEL}:products:{}-{}:{}",
                        chunk[0].odoo_id,
                        chunk[chunk.len() - 1].odoo_id,
                        fnv(&hashes.join(","))
                    ),
                    payload: Payload::of(&ProductJobRef { items: chunk }),
                    correlation_id: None,
                }
            })
            .collect();
        let planned: Vec<(i64, &str)> = items
            .iter()
            .map(|i| (i.mapping_id, i.hash.as_str()))
            .collect();
        self.store.write(|tx| {
            queue::enqueue_in(tx, &jobs)?;
            mapping::set_planned_in(tx, &planned)
        })?;
        Ok(items.len())
    }

    pub(super) async fn catalog_full(&self) -> Result<StreamOutcome, crate::error::Error> {
        let started = poll_start();
        let mut planned = 0usize;
        let mut failure = None;
        let mut unpriced = Unpriced::default();
        self.reader
            .read_all(|page| {
                unpriced.note(&page);
                let planned_page = self
                    .mappings(&page)
                    .and_then(|m| self.enqueue(self.plan(&page, &m)));
                match planned_page {
                    Ok(n) => planned += n,
                    Err(e) => failure = Some(e),
                }
            })
            .await
            .context("reading the catalog from Odoo")?;
        if let Some(e) = failure {
            return Err(e);
        }
        unpriced.verdict(&self.reader).await?;
        Ok(StreamOutcome {
            cursor: Some(started),
            note: (planned > 0).then(|| {
                (
                    format!("full read: {planned} product update(s) to send"),
                    planned as i64,
                )
            }),
        })
    }

    pub(super) async fn catalog_changes(&self) -> Result<StreamOutcome, crate::error::Error> {
        let cursor =
            streams::get(&self.store, &format!("{CHANNEL}.catalog"))?.and_then(|s| s.cursor);
        // A deleted pricelist rule leaves no trace to find its products by: read them all.
        let rules = self
            .reader
            .pricelist_rules()
            .await
            .context("reading the pricelist's rules from Odoo")?;
        let outcome = match cursor.filter(|_| !rules.deleted) {
            None => self.catalog_full().await?,
            Some(cursor) => self.catalog_since(&cursor).await?,
        };
        self.reader.remember_rules(rules);
        Ok(outcome)
    }

    pub(super) async fn catalog_since(
        &self,
        cursor: &str,
    ) -> Result<StreamOutcome, crate::error::Error> {
        let started = poll_start();
        let since = with_overlap(cursor, self.settings.poll_overlap);
        let products = self
            .reader
            .changed_since(&since)
            .await
            .context("reading changes from Odoo")?;
        let queued = self.enqueue(self.plan(&products, &self.mappings(&products)?))?;
        // The others went out; the cursor stays until these have a price.
        Unpriced::among(&products).verdict(&self.reader).await?;
        Ok(StreamOutcome {
            cursor: Some(started),
            note: (queued > 0)
                .then(|| (format!("{queued} product update(s) to send"), queued as i64)),
        })
    }

    /// Sends one job's products, `batch_size` per bulk request. Products queued again since (a
    /// newer value) are left to their newer job. If Cartona refuses a request, its products are
    /// sent one by one; the ones it refuses get a job of their own, which fails with Cartona's
    /// reason. If a request fails (retried later), what went through so far is recorded and the
    /// job keeps only the rest.
    pub(super) async fn push_job(&self, job: &Job) -> Result<(), JobError> {
        let items: Vec<PlannedItem> = match job.payload.parse::<ProductJob>() {
            Ok(batch) => Ok(batch.items),
            // A job queued by an older marketsync: one product.
            Err(e) => job
                .payload
                .parse::<PlannedItem>()
                .map(|i| vec![i])
                .map_err(|_| e),
        }
        .map_err(|e| {
            JobError::new(
                RetryClass::Permanent,
                format!(
                    "job {} has a payload this marketsync cannot read: {e}",
                    job.id
                ),
            )
        })?;
        let ids: Vec<i64> = items.iter().map(|i| i.mapping_id).collect();
        let planned = self
            .store
            .run(move |s| mapping::planned_hashes(s, &ids))
            .await
            .map_err(store_err)?;
        let live: Vec<&PlannedItem> = items
            .iter()
            .filter(|i| planned.get(&i.mapping_id).is_none_or(|h| *h == i.hash))
            .collect();
        fn body<'a>(items: &[&'a PlannedItem]) -> Vec<&'a ProductUpdate> {
            items.iter().map(|i| &i.update).collect()
        }
        let mut accepted: Vec<&PlannedItem> = Vec::new();
        let mut refused: Vec<&PlannedItem> = Vec::new();
        let mut requests = 0usize;
        for (n, chunk) in live.chunks(self.batch_size.max(1)).enumerate() {
            let failure = match self
                .api
                .post("supplier-product/bulk-update", &body(chunk))
                .await
            {
                Ok(_) => {
                    requests += 1;
                    accepted.extend_from_slice(chunk);
                    None
                }
                Err(e) if e.status == Some(400) && chunk.len() > 1 => {
                    requests += 1;
                    let mut failure = None;
                    for (k, item) in chunk.iter().enumerate() {
                        match self
                            .api
                            .post("supplier-product/bulk-update", &body(&[*item]))
                            .await
                        {
                            Ok(_) => accepted.push(*item),
                            Err(e) if e.status == Some(400) => refused.push(*item),
                            Err(e) => {
                                failure = Some((e, &chunk[k..]));
                                break;
                            }
                        }
                        requests += 1;
                    }
                    failure
                }
                Err(e) if e.status == Some(400) && live.len() > 1 => {
                    // A one-product request refused: that product's own job says why.
                    requests += 1;
                    refused.extend_from_slice(chunk);
                    None
                }
                Err(e) => Some((e, chunk)),
            };
            if let Some((e, unsent)) = failure {
                let rest: Vec<&PlannedItem> = unsent
                    .iter()
                    .copied()
                    .chain(live.iter().skip((n + 1) * self.batch_size.max(1)).copied())
                    .collect();
                if !accepted.is_empty() || !refused.is_empty() {
                    let rest = Payload::of(&ProductJobRef { items: &rest });
                    self.record(job.id, &accepted, &refused, Outcome::Rest(rest))
                        .await?;
                }
                return Err(job_err(e));
            }
        }
        let line = if refused.is_empty() {
            (!accepted.is_empty()).then(|| {
                (
                    Level::Info,
                    format!(
                        "pushed {} product(s) in {requests} request(s)",
                        accepted.len()
                    ),
                )
            })
        } else {
            Some((
                Level::Warn,
                format!(
                    "Cartona refused {} of {} product(s) (each waits in a job of its own, with the reason); {} pushed",
                    refused.len(),
                    live.len(),
                    accepted.len()
                ),
            ))
        };
        self.record(job.id, &accepted, &refused, Outcome::Done(line))
            .await
    }

    /// Records what a product job did, in one transaction: what Cartona accepted, a job of its
    /// own for each product it refused (so each fails with Cartona's reason), and then either
    /// the job done with its sync-log line (see `records_completion`) or, for a job that failed
    /// part way, the job left with only the products still to send.
    pub(super) async fn record(
        &self,
        job: i64,
        accepted: &[&PlannedItem],
        refused: &[&PlannedItem],
        outcome: Outcome,
    ) -> Result<(), JobError> {
        let sent: Vec<(i64, String)> = accepted
            .iter()
            .map(|i| (i.mapping_id, i.hash.clone()))
            .collect();
        let singles: Vec<NewJob> = refused
            .iter()
            .map(|i| NewJob {
                channel: CHANNEL.into(),
                kind: jobs::Kind::Product.as_str().into(),
                key: format!("{CHANNEL}:product:{}", i.odoo_id),
                payload: Payload::of(&ProductJobRef { items: &[i] }),
                correlation_id: None,
            })
            .collect();
        let n = sent.len() as i64;
        self.store
            .run(move |s| {
                s.write(|tx| {
                    mapping::mark_sent_in(tx, &sent)?;
                    queue::enqueue_in(tx, &singles)?;
                    match &outcome {
                        Outcome::Rest(rest) => queue::set_payload_in(tx, job, rest),
                        Outcome::Done(line) => {
                            if let Some((level, text)) = line {
                                let e = events::Pushed {
                                    channel: CHANNEL,
                                    stock: false,
                                    count: n,
                                    problem: Some((*level, text)),
                                };
                                events::emit_in(tx, &e)?;
                            }
                            queue::complete_in(tx, &[job])
                        }
                    }
                })
            })
            .await
            .map_err(store_err)
    }
}

/// How a product job ends: done (with what to tell the operator), or failed part way with
/// the payload of what is left.
pub(super) enum Outcome {
    Done(Option<(Level, String)>),
    Rest(Payload),
}

/// Bulk requests' worth of products in one product job: fewer, larger jobs cost less to
/// queue, claim and record, with the same requests on the wire.
pub(super) const JOB_REQUESTS: usize = 10;

/// The payload of a product job.
#[derive(serde::Deserialize)]
pub(super) struct ProductJob {
    items: Vec<PlannedItem>,
}

/// [`ProductJob`] to write, from borrowed items.
#[derive(serde::Serialize)]
pub(super) struct ProductJobRef<'a, T: serde::Serialize> {
    items: &'a [T],
}

/// One product update queued for Cartona.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(super) struct PlannedItem {
    mapping_id: i64,
    odoo_id: i64,
    /// Hash of `update`, as recorded in the mapping once Cartona accepts it.
    hash: String,
    update: ProductUpdate,
}

impl crate::channel::drift::ReadBack for Cartona {
    async fn holdings(&self) -> Result<HashMap<String, Held>, crate::error::Error> {
        let rows = super::matching::cartona_products(&self.api, 100).await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let price = r.selling_price.as_deref().and_then(|p| p.parse().ok());
                let held = Held {
                    price,
                    stock: r.available_stock_quantity,
                    published: r.is_published,
                };
                (r.id, held)
            })
            .collect())
    }

    /// The mapped products: Cartona lists what its catalogue team matched, nothing else.
    async fn wanted(&self, page: &[ProductSnapshot]) -> Result<Vec<Wanted>, crate::error::Error> {
        let mappings = self.mappings(page)?;
        Ok(page
            .iter()
            .filter_map(|p| {
                let m = mappings.get(&p.id)?;
                let u = self.item(p, m).update;
                let price = u
                    .selling_price
                    .parse()
                    .ok()
                    .filter(|_| p.unpriced.is_none());
                let held = Held {
                    price,
                    stock: Some(u.available_stock_quantity),
                    published: Some(u.is_published),
                };
                Some(Wanted::new(p.id, &m.external_id, held))
            })
            .collect())
    }

    /// Queues each product's update as if never sent. A product Cartona no longer lists
    /// cannot be listed from here: Cartona's catalogue team adds products.
    async fn repair(
        &self,
        page: &[ProductSnapshot],
        missing: &HashSet<i64>,
    ) -> Result<Repaired, crate::error::Error> {
        let mappings = self.mappings(page)?;
        let mut not_repaired = Vec::new();
        let mut items = Vec::new();
        for p in page {
            let Some(m) = mappings.get(&p.id) else {
                continue;
            };
            if missing.contains(&p.id) {
                not_repaired.push(format!(
                    "Odoo product {} is mapped to supplier product {}, which Cartona no longer lists: ask Cartona to list it again, then run `marketsync map import --channel cartona`",
                    p.id, m.external_id
                ));
                continue;
            }
            if p.unpriced.is_some() {
                continue;
            }
            items.push(self.item(p, m));
        }
        Ok(Repaired {
            queued: self.enqueue(items)?,
            not_repaired,
        })
    }

    fn reader(&self) -> &crate::sync::catalog::CatalogReader {
        &self.reader
    }
}

impl crate::channel::Catalog for Cartona {
    async fn catalog(&self, full: bool) -> crate::channel::StreamResult {
        if !full {
            return self.catalog_changes().await;
        }
        // The reconcile keeps no cursor of its own: the catalog stream's stays as it was.
        let note = self.catalog_full().await?.note;
        Ok(StreamOutcome { cursor: None, note })
    }
}
