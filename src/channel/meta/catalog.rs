//! The catalog out: items planned from Odoo's products (only what changed), sent in
//! `items_batch` calls, their batches polled until Meta finished them; and the catalog read
//! back for `diff`.

use super::jobs::{self, ItemPush};
use super::*;
use crate::channel::drift::{Held, Repaired, Wanted};
use crate::channel::kit::fnv;
use crate::daemon::scheduler::StreamOutcome;
use crate::error::Context;
use crate::odoo::{Domain, SearchOpts, Value};
use crate::store::queue::{self, NewJob, Payload};
use crate::store::{mapping, streams};
use crate::sync::catalog::{poll_start, with_overlap, ProductSnapshot};
use crate::sync::money;
use config::{OnRemove, RetailerId};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

/// The mapping kind of a product's catalog item.
const ITEM: &str = "item";
/// Meta refuses an `items_batch` body over 28 MB: a call carries at most this much.
pub const MAX_BODY_BYTES: usize = 27 << 20;
/// Meta's longest description.
pub const MAX_DESCRIPTION: usize = 9_999;
/// The first wait before a batch's status is asked; doubled by each poll, up to
/// [`POLL_MAX`].
const POLL_FIRST: Duration = Duration::from_millis(250);
const POLL_MAX: Duration = Duration::from_secs(60);
/// Polls of one batch before its items are sent again (a handle Meta forgot).
const POLLS_MAX: u32 = 60;

/// An item planned less than this ago waits for more to share its call (see
/// [`Meta::lingers`]), in steps of [`LINGER_STEP`], never past [`LINGER_MAX`] since it was
/// planned.
const LINGER: Duration = Duration::from_secs(1);
const LINGER_STEP: Duration = Duration::from_millis(250);
const LINGER_MAX: Duration = Duration::from_secs(3);
/// While the catalog stream plans, items wait for its next pages at most this long.
const PLANNING_MAX: Duration = Duration::from_secs(60);

/// Marks the catalog as being planned while it lives.
struct Planning<'a>(&'a std::sync::atomic::AtomicBool);

impl<'a> Planning<'a> {
    fn start(flag: &'a std::sync::atomic::AtomicBool) -> Planning<'a> {
        flag.store(true, std::sync::atomic::Ordering::Relaxed);
        Planning(flag)
    }
}

impl Drop for Planning<'_> {
    fn drop(&mut self) {
        self.0.store(false, std::sync::atomic::Ordering::Relaxed);
    }
}

/// What a page's items need from Odoo beyond the product rows.
#[derive(Debug, Default)]
pub struct PageTexts {
    /// Product id -> its title and description in `lang`.
    tr: HashMap<i64, (Option<String>, Option<String>)>,
    /// `product.template.attribute.value` id -> (attribute name, value), in `lang`.
    values: HashMap<i64, (String, String)>,
}

/// The variant's attribute values (`product_template_attribute_value_ids`), in Odoo's order.
fn attribute_value_ids(p: &ProductSnapshot) -> Vec<i64> {
    p.row
        .get("product_template_attribute_value_ids")
        .map(Value::as_ids)
        .unwrap_or_default()
}

fn item_key(odoo_id: i64) -> String {
    format!("{CHANNEL}:item:{odoo_id}")
}

/// `link`, `image_link`: the template with the product's values.
fn fill(template: &str, p: &ProductSnapshot) -> String {
    let code = p.default_code.as_deref().unwrap_or_default();
    let template_id = p
        .row
        .get("product_tmpl_id")
        .and_then(Value::as_id)
        .unwrap_or(p.id);
    template
        .replace("{id}", &p.id.to_string())
        .replace("{default_code}", &crate::channel::medusa::urlencode(code))
        .replace("{template_id}", &template_id.to_string())
        .replace("{slug}", &crate::channel::medusa::slug(&p.name))
}

/// Meta's datetime (ISO 8601 with its offset) of an Odoo UTC datetime.
fn iso(odoo: &str) -> Option<String> {
    let t = chrono::NaiveDateTime::parse_from_str(odoo, "%Y-%m-%d %H:%M:%S").ok()?;
    Some(t.format("%Y-%m-%dT%H:%M:%S+00:00").to_string())
}

/// The bytes of one `items_batch` body, and the calls a list of requests needs: at most
/// `max_items` and [`MAX_BODY_BYTES`] each (`sizes`: each request's bytes).
pub fn cut(sizes: &[usize], max_items: usize, max_bytes: usize) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, size) in sizes.iter().enumerate() {
        let full = i - start >= max_items.max(1) || (i > start && bytes + size + 1 > max_bytes);
        if full {
            out.push(start..i);
            start = i;
            bytes = 0;
        }
        bytes += size + 1;
    }
    if start < sizes.len() {
        out.push(start..sizes.len());
    }
    out
}

impl Meta {
    /// The item's retailer id (`None`: a product without an internal reference, when the
    /// catalog identifies items by it).
    pub fn retailer_id(&self, p: &ProductSnapshot) -> Option<String> {
        match self.settings.retailer_id {
            RetailerId::DefaultCode => p.default_code.clone(),
            RetailerId::OdooId => Some(format!("odoo-{}", p.id)),
        }
    }

    fn price(&self, amount: Decimal) -> String {
        wire::price(
            money::round(amount, &self.settings.currency),
            &self.settings.currency,
        )
    }

    /// What the catalog shows of its stock: the stock field less the buffer, none when not
    /// sold.
    pub fn inventory(&self, p: &ProductSnapshot) -> i64 {
        if !p.sellable() {
            return 0;
        }
        (p.stock.floor() - Decimal::from(self.settings.stock_buffer))
            .max(Decimal::ZERO)
            .to_i64()
            .unwrap_or(0)
    }

    /// The item's `data` for an `UPDATE` (`texts`: the page's titles and descriptions in
    /// `lang`, and its variants' attribute values).
    pub fn item(
        &self,
        p: &ProductSnapshot,
        retailer_id: &str,
        texts: &PageTexts,
    ) -> serde_json::Value {
        let s = &self.settings;
        let tr = texts.tr.get(&p.id);
        let title = tr
            .and_then(|(t, _)| t.clone())
            .unwrap_or_else(|| p.name.clone());
        let description = tr
            .and_then(|(_, d)| d.clone())
            .or_else(|| {
                p.row
                    .get("description_sale")
                    .and_then(Value::as_opt_str)
                    .map(str::to_string)
            })
            .filter(|d| !d.trim().is_empty())
            .unwrap_or_else(|| title.clone());
        let description: String = description.chars().take(MAX_DESCRIPTION).collect();
        let inventory = self.inventory(p);
        let image = match &s.image_link {
            Some(t) => fill(t, p),
            None => format!(
                "{}web/image/product.product/{}/image_1920",
                self.odoo_url, p.id
            ),
        };
        let template_id = p
            .row
            .get("product_tmpl_id")
            .and_then(Value::as_id)
            .unwrap_or(p.id);
        let mut data = serde_json::json!({
            "id": retailer_id,
            "title": title,
            "description": description,
            "availability": wire::availability(inventory),
            "inventory": inventory,
            "condition": s.condition,
            "price": self.price(p.sale.as_ref().map_or(p.price, |sale| sale.regular)),
            "link": fill(&s.link, p),
            "image_link": image,
            "item_group_id": format!("odoo-template-{template_id}"),
        });
        let o = data.as_object_mut().expect("an object");
        if let Some(sale) = &p.sale {
            o.insert("sale_price".into(), self.price(p.price).into());
            let from = sale.from.as_deref().and_then(iso);
            let until = sale.until.as_deref().and_then(iso);
            if let (from, Some(until)) = (from, until) {
                let from = from.unwrap_or_else(|| iso(&poll_start()).unwrap_or_default());
                o.insert(
                    "sale_price_effective_date".into(),
                    format!("{from}/{until}").into(),
                );
            }
        }
        if let Some(b) = &s.brand {
            o.insert("brand".into(), b.clone().into());
        }
        if let Some(g) = p.barcode.as_deref().and_then(wire::gtin) {
            o.insert("gtin".into(), g.into());
        }
        if !s.additional_image_links.is_empty() {
            let more: Vec<String> = s
                .additional_image_links
                .iter()
                .map(|t| fill(t, p))
                .collect();
            o.insert("additional_image_link".into(), more.into());
        }
        let values: Vec<(String, String)> = attribute_value_ids(p)
            .iter()
            .filter_map(|id| texts.values.get(id).cloned())
            .collect();
        for (field, value) in wire::variant_fields(&values, &s.attribute_fields) {
            o.insert(field, value.into());
        }
        data
    }

    /// The page's texts: titles and descriptions in `lang`, and the attribute values of its
    /// variants (also in `lang`): at most one Odoo call each.
    pub(super) async fn texts(
        &self,
        products: &[ProductSnapshot],
    ) -> Result<PageTexts, crate::error::Error> {
        let all: Vec<i64> = products.iter().map(|p| p.id).collect();
        let tr = self.translations(&all).await?;
        let mut ids: Vec<i64> = products.iter().flat_map(attribute_value_ids).collect();
        ids.sort_unstable();
        ids.dedup();
        let values = self.attribute_values(&ids).await?;
        Ok(PageTexts { tr, values })
    }

    /// The attribute (its name) and value of each `product.template.attribute.value`.
    async fn attribute_values(
        &self,
        ids: &[i64],
    ) -> Result<HashMap<i64, (String, String)>, crate::error::Error> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let mut context = vec![("active_test".to_string(), Value::Bool(false))];
        if let Some(lang) = self.settings.lang.as_deref() {
            context.push(("lang".into(), Value::from(lang)));
        }
        let rows = self
            .odoo
            .search_read(
                "product.template.attribute.value",
                &Domain::all().and("id", "in", ids.to_vec()),
                &["name", "attribute_id"],
                SearchOpts {
                    context,
                    ..Default::default()
                },
            )
            .await
            .context("reading the variants' attribute values from Odoo (product.template.attribute.value)")?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                let id = r.get("id")?.as_i64()?;
                let value = r.get("name")?.as_opt_str()?.to_string();
                let attribute = r.get("attribute_id")?.as_many2one()?.1.to_string();
                Some((id, (attribute, value)))
            })
            .collect())
    }

    /// Titles and descriptions in `lang`, when set and Odoo has it installed.
    async fn translations(
        &self,
        ids: &[i64],
    ) -> Result<HashMap<i64, (Option<String>, Option<String>)>, crate::error::Error> {
        let Some(lang) = self.settings.lang.as_deref() else {
            return Ok(HashMap::new());
        };
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let rows = self
            .odoo
            .search_read(
                "product.product",
                &Domain::all().and("id", "in", ids.to_vec()),
                &["name", "description_sale"],
                SearchOpts {
                    context: vec![
                        ("lang".into(), Value::from(lang)),
                        ("active_test".into(), Value::Bool(false)),
                    ],
                    ..Default::default()
                },
            )
            .await
            .context(format!(
                "reading the {lang} titles and descriptions from Odoo (channels.meta.lang)"
            ))?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                let s = |k: &str| r.get(k).and_then(Value::as_opt_str).map(str::to_string);
                Some((r.get("id")?.as_i64()?, (s("name"), s("description_sale"))))
            })
            .collect())
    }

    fn skipped(&self, skipped: crate::internal_events::Skipped<'_>) {
        crate::internal_events::emit(
            &self.store,
            &crate::internal_events::CatalogSkipped {
                channel: CHANNEL,
                skipped,
            },
        );
    }

    /// The item mappings of these products, linked to their retailer ids: as known, made
    /// when missing, made anew when the retailer id changed; all in one transaction. A retailer
    /// id two products share is refused for the second (said in the sync log).
    fn mappings_for(
        &self,
        wanted: &[(&ProductSnapshot, String)],
        known: &HashMap<i64, mapping::Mapping>,
    ) -> Result<HashMap<i64, mapping::Mapping>, crate::error::Error> {
        use crate::internal_events::Skipped;
        let mut out = HashMap::with_capacity(wanted.len());
        let mut missing = Vec::new();
        for (p, rid) in wanted {
            match known.get(&p.id) {
                Some(m) if &m.external_id == rid => {
                    out.insert(p.id, m.clone());
                }
                other => missing.push((*p, rid, other.map(|m| m.external_id.clone()))),
            }
        }
        if missing.is_empty() {
            return Ok(out);
        }
        let mut said = Vec::new();
        self.store.write(|tx| {
            for (p, rid, before) in &missing {
                if let Some(from) = before {
                    tx.execute(
                        "DELETE FROM mappings WHERE channel = ?1 AND kind = ?2 AND odoo_id = ?3",
                        rusqlite::params![CHANNEL, ITEM, p.id],
                    )?;
                    said.push((p.id, Some(from.clone()), (*rid).clone(), None));
                }
                match mapping::set_in(tx, CHANNEL, ITEM, "product.product", p.id, rid) {
                    Ok(m) => {
                        out.insert(p.id, m);
                    }
                    Err(crate::store::StoreError::Conflict(why)) => {
                        said.push((p.id, None, (*rid).clone(), Some(why)))
                    }
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        })?;
        for (odoo_id, from, to, conflict) in said {
            match (from, conflict) {
                (_, Some(why)) => self.skipped(Skipped::SharedSku {
                    odoo_id,
                    sku: &to,
                    why: &why,
                }),
                (Some(from), None) => self.skipped(Skipped::SkuChanged {
                    odoo_id,
                    from: &from,
                    to: &to,
                }),
                (None, None) => {}
            }
        }
        Ok(out)
    }

    /// The item jobs of these products: what changed since it was sent, or (`force`, a
    /// repair) everything, whatever was sent.
    pub(super) async fn plan_jobs(
        &self,
        products: &[ProductSnapshot],
        force: bool,
    ) -> Result<Vec<NewJob>, crate::error::Error> {
        let ids: Vec<i64> = products.iter().map(|p| p.id).collect();
        let texts = self.texts(products).await?;
        let keys: Vec<String> = ids.iter().map(|id| item_key(*id)).collect();
        // Running jobs count: one a worker holds (lingering for batch-mates, or its call under
        // way) has its value in hand, and Meta has not said yet that it took it (seen in the
        // bench: a poll in that moment sent one item twice).
        let waiting = queue::open_keys(&self.store, &keys)?;
        let known = mapping::by_odoo_many(&self.store, CHANNEL, ITEM, &ids)?;
        let mut jobs = Vec::new();
        let mut no_code = Vec::new();
        let mut wanted = Vec::with_capacity(products.len());
        for p in products {
            let Some(retailer_id) = self.retailer_id(p) else {
                if p.sellable() {
                    no_code.push(p.id);
                }
                continue;
            };
            // Only an item Meta was sent is taken out: a removed product needs no new link.
            let sent = known
                .get(&p.id)
                .is_some_and(|m| m.last_sent_at.is_some() && m.external_id == retailer_id);
            if p.sellable() || sent {
                wanted.push((p, retailer_id));
            }
        }
        let linked = self.mappings_for(&wanted, &known)?;
        for (p, retailer_id) in wanted {
            let retailer_id = retailer_id.as_str();
            let (method, data) = if p.sellable() {
                if p.unpriced.is_some() {
                    continue; // the stream says why
                }
                ("UPDATE", self.item(p, retailer_id, &texts))
            } else {
                // Removed (and sent before: see above).
                match self.settings.on_remove {
                    OnRemove::Delete => ("DELETE", serde_json::json!({"id": retailer_id})),
                    OnRemove::OutOfStock if p.unpriced.is_some() => continue,
                    OnRemove::OutOfStock => ("UPDATE", self.item(p, retailer_id, &texts)),
                }
            };
            let Some(m) = linked.get(&p.id) else {
                continue;
            };
            let hash = fnv(&format!("{method}|{data}"));
            let waits = waiting.contains(&item_key(p.id));
            // A job that waits with this very value (in a batch Meta is processing, say) has
            // it in hand: queuing it again would send it twice.
            let in_hand = waits && m.planned_hash.as_deref() == Some(hash.as_str());
            if force || (!in_hand && (m.last_hash.as_deref() != Some(hash.as_str()) || waits)) {
                jobs.push(NewJob {
                    channel: CHANNEL.into(),
                    kind: jobs::Kind::Item.as_str().into(),
                    key: item_key(p.id),
                    payload: Payload::of(&ItemPush {
                        mapping_id: m.id,
                        odoo_id: p.id,
                        hash,
                        method: method.into(),
                        data,
                        handles: Vec::new(),
                        polls: 0,
                    }),
                    correlation_id: None,
                });
            }
        }
        if !no_code.is_empty() {
            let shown: Vec<String> = no_code.iter().take(20).map(|i| i.to_string()).collect();
            let shown = format!(
                "{}{}",
                shown.join(", "),
                if no_code.len() > 20 { ", …" } else { "" }
            );
            self.skipped(crate::internal_events::Skipped::WithoutSku {
                count: no_code.len(),
                shown: &shown,
            });
        }
        Ok(jobs)
    }

    /// Queues planned item jobs (not a value that already died for the same product, unless
    /// a `repair` asks for everything), and records each one's value as planned, in one
    /// transaction.
    pub(super) fn enqueue(
        &self,
        jobs: Vec<NewJob>,
        repair: bool,
    ) -> Result<usize, crate::error::Error> {
        let jobs = match repair {
            true => jobs,
            false => queue::without_dead_repeats(&self.store, jobs)?,
        };
        if jobs.is_empty() {
            return Ok(0);
        }
        let planned: Vec<(i64, String)> = jobs
            .iter()
            .filter_map(|j| j.payload.parse::<ItemPush>().ok())
            .map(|p| (p.mapping_id, p.hash))
            .collect();
        let planned: Vec<(i64, &str)> = planned.iter().map(|(m, h)| (*m, h.as_str())).collect();
        self.store.write(|tx| {
            queue::enqueue_in(tx, &jobs)?;
            mapping::set_planned_in(tx, &planned)
        })?;
        Ok(jobs.len())
    }

    /// Runs item jobs: the ones in a batch already ask its status; the others go out, as
    /// few calls as the limits allow.
    pub(super) async fn push_items(&self, jobs: &[Job]) -> crate::channel::Outcomes {
        let parsed = jobs::parse_all::<ItemPush>(jobs);
        let mut out: Vec<Option<Result<(), JobError>>> = vec![None; jobs.len()];
        let mut polls: BTreeMap<Vec<String>, Vec<usize>> = BTreeMap::new();
        let mut sends = Vec::new();
        for (i, p) in parsed.iter().enumerate() {
            match p {
                Err(e) => out[i] = Some(Err(e.clone())),
                Ok(p) if !p.handles.is_empty() => {
                    polls.entry(p.handles.clone()).or_default().push(i)
                }
                Ok(_) => sends.push(i),
            }
        }
        let items: Vec<Option<&ItemPush>> = parsed.iter().map(|p| p.as_ref().ok()).collect();
        for (handles, idx) in polls {
            self.poll(&handles, &idx, jobs, &items, &mut out).await;
        }
        if self.lingers(&sends, jobs) {
            // On a grid, so that items put back a moment apart are due together.
            let step = LINGER_STEP.as_millis() as i64;
            let at = (crate::store::now_ms() / step + 1) * step;
            self.put_back(&sends, jobs, &items, &mut out, ItemPush::clone, at);
        } else {
            self.send(&sends, jobs, &items, &mut out).await;
        }
        out.into_iter().map(|o| o.unwrap_or(Ok(()))).collect()
    }

    /// Whether the items at `idx` wait a moment for more to fill their call: fewer than a
    /// call takes, one planned just now (the catalog is being planned, page by page), and
    /// none waiting long already. Batch calls are Meta's scarcest quota (Catalog Batch).
    fn lingers(&self, idx: &[usize], jobs: &[Job]) -> bool {
        if idx.is_empty() || idx.len() >= self.max_items() {
            return false;
        }
        let now = crate::store::now_ms();
        let age = |i: &usize| now - jobs[*i].created_at;
        let youngest = idx.iter().map(age).min().unwrap_or(i64::MAX);
        let oldest = idx.iter().map(age).max().unwrap_or(0);
        if self.planning.load(std::sync::atomic::Ordering::Relaxed) {
            // The catalog is being read: its next pages fill the call (a full push goes out
            // in as few calls as it can), unless the read takes unusually long.
            return oldest < PLANNING_MAX.as_millis() as i64;
        }
        youngest < LINGER.as_millis() as i64 && oldest < LINGER_MAX.as_millis() as i64
    }

    /// Sends the items at `idx`: cut into calls, each call's items put back to wait for its
    /// batch; a call too big (code 1) is halved and sent again.
    async fn send(
        &self,
        idx: &[usize],
        jobs: &[Job],
        items: &[Option<&ItemPush>],
        out: &mut [Option<Result<(), JobError>>],
    ) {
        if idx.is_empty() {
            return;
        }
        let requests: Vec<Vec<u8>> = idx
            .iter()
            .map(|&i| {
                let p = items[i].expect("parsed");
                serde_json::to_vec(&serde_json::json!({"method": p.method, "data": p.data}))
                    .unwrap_or_default()
            })
            .collect();
        let sizes: Vec<usize> = requests.iter().map(Vec::len).collect();
        let mut calls: VecDeque<Vec<usize>> = cut(&sizes, self.max_items(), MAX_BODY_BYTES)
            .into_iter()
            .map(|r| r.collect())
            .collect();
        let path = format!("{}/items_batch", self.settings.catalog_id);
        while let Some(call) = calls.pop_front() {
            let mut body =
                br#"{"item_type":"PRODUCT_ITEM","allow_upsert":true,"requests":["#.to_vec();
            for (n, &k) in call.iter().enumerate() {
                if n > 0 {
                    body.push(b',');
                }
                body.extend_from_slice(&requests[k]);
            }
            body.extend_from_slice(b"]}");
            let taken: Vec<usize> = call.iter().map(|&k| idx[k]).collect();
            match self.graph(Call::Post(&path, body)).await {
                Ok(answer) => {
                    let handles: Vec<String> = answer["handles"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|h| h.as_str().map(str::to_string))
                        .collect();
                    if handles.is_empty() {
                        let e = JobError::new(
                            RetryClass::Transient,
                            format!("Meta answered POST {path} without a batch handle: {answer}"),
                        );
                        for &i in &taken {
                            out[i] = Some(Err(e.clone()));
                        }
                        continue;
                    }
                    let wait = crate::store::now_ms() + POLL_FIRST.as_millis() as i64;
                    self.put_back(
                        &taken,
                        jobs,
                        items,
                        out,
                        |p| ItemPush {
                            handles: handles.clone(),
                            polls: 0,
                            ..p.clone()
                        },
                        wait,
                    );
                }
                Err(Refused::TooBig(why)) if call.len() > 1 => {
                    self.halve(call.len());
                    self.report(
                        &taken,
                        jobs,
                        crate::store::synclog::Level::Warn,
                        &format!(
                            "{why}; sent again in calls of {} item(s), and so from now on",
                            self.max_items()
                        ),
                    );
                    // This call and the ones after it, cut again to the smaller size.
                    let rest: Vec<usize> =
                        call.into_iter().chain(calls.drain(..).flatten()).collect();
                    let rest_sizes: Vec<usize> = rest.iter().map(|&k| sizes[k]).collect();
                    calls = cut(&rest_sizes, self.max_items(), MAX_BODY_BYTES)
                        .into_iter()
                        .map(|r| rest[r].to_vec())
                        .collect();
                }
                Err(r @ (Refused::Throttled(..) | Refused::Token(_))) => {
                    // Nothing more goes out: this call's items and the rest wait.
                    let e: JobError = r.into();
                    for i in taken
                        .into_iter()
                        .chain(calls.drain(..).flatten().map(|k| idx[k]))
                    {
                        out[i] = Some(Err(e.clone()));
                    }
                }
                Err(r) => {
                    let e: JobError = r.into();
                    for &i in &taken {
                        out[i] = Some(Err(e.clone()));
                    }
                }
            }
        }
    }

    /// Puts jobs back to wait (`change`: their payload from now on), in one transaction.
    fn put_back(
        &self,
        taken: &[usize],
        jobs: &[Job],
        items: &[Option<&ItemPush>],
        out: &mut [Option<Result<(), JobError>>],
        change: impl Fn(&ItemPush) -> ItemPush,
        at: i64,
    ) {
        let written = self.store.write(|tx| {
            for &i in taken {
                let p = change(items[i].expect("parsed"));
                queue::defer_in(tx, jobs[i].id, &Payload::of(&p), at)?;
            }
            Ok(())
        });
        let outcome = written.map_err(crate::sync::order_import::store_err);
        for &i in taken {
            out[i] = Some(outcome.clone());
        }
    }

    fn report(&self, idx: &[usize], jobs: &[Job], level: crate::store::synclog::Level, text: &str) {
        let ids: Vec<i64> = idx.iter().map(|&i| jobs[i].id).collect();
        crate::internal_events::emit(
            &self.store,
            &crate::internal_events::JobsReported {
                channel: CHANNEL,
                kind: jobs::Kind::Item.as_str(),
                level,
                ids: &ids,
                text,
            },
        );
    }

    /// Asks the status of the batch the items at `idx` went in: finished, each is done or
    /// (refused) dead with Meta's message; else they wait again, twice as long.
    async fn poll(
        &self,
        handles: &[String],
        idx: &[usize],
        jobs: &[Job],
        items: &[Option<&ItemPush>],
        out: &mut [Option<Result<(), JobError>>],
    ) {
        let path = format!("{}/check_batch_request_status", self.settings.catalog_id);
        let mut finished = true;
        let mut failed_batch = false;
        let mut refused: HashMap<String, String> = HashMap::new();
        let mut warnings: Vec<String> = Vec::new();
        let mut warned = 0i64;
        for handle in handles {
            let query = [
                ("handle", handle.clone()),
                ("load_ids_of_invalid_requests", "true".to_string()),
            ];
            let answer = match self.graph(Call::Get(&path, &query)).await {
                Ok(a) => a,
                Err(Refused::Failed(e)) if !e.class.is_retryable() => {
                    // A handle Meta no longer knows: the items go out again.
                    self.report(
                        idx,
                        jobs,
                        crate::store::synclog::Level::Warn,
                        &format!("batch {handle}: its status cannot be read ({}); its items go out again", e.message),
                    );
                    let now = crate::store::now_ms();
                    self.put_back(idx, jobs, items, out, ItemPush::unsent, now);
                    return;
                }
                Err(r) => {
                    let e: JobError = r.into();
                    for &i in idx {
                        out[i] = Some(Err(e.clone()));
                    }
                    return;
                }
            };
            for d in answer["data"].as_array().into_iter().flatten() {
                match d["status"].as_str().unwrap_or("") {
                    "finished" => {}
                    "error" | "canceled" | "cancelled" => failed_batch = true,
                    _ => finished = false,
                }
                for e in d["errors"].as_array().into_iter().flatten() {
                    let id = e["id"]
                        .as_str()
                        .map(str::to_string)
                        .or_else(|| e["id"].as_i64().map(|n| n.to_string()));
                    if let Some(id) = id {
                        let message = e["message"].as_str().unwrap_or("no reason given");
                        refused.insert(id, message.to_string());
                    }
                }
                for id in d["ids_of_invalid_requests"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    if let Some(id) = id.as_str() {
                        refused
                            .entry(id.to_string())
                            .or_insert_with(|| "Meta marked it invalid and gave no reason".into());
                    }
                }
                warned += d["warnings_total_count"].as_i64().unwrap_or(0);
                for w in d["warnings"].as_array().into_iter().flatten().take(3) {
                    let id = w["id"].as_str().unwrap_or("?");
                    let m = w["message"].as_str().unwrap_or("");
                    warnings.push(format!("{id}: {m}"));
                }
            }
        }
        if !finished {
            let polls = idx
                .iter()
                .map(|&i| items[i].map_or(0, |p| p.polls))
                .max()
                .unwrap_or(0)
                + 1;
            if polls > POLLS_MAX {
                self.report(
                    idx,
                    jobs,
                    crate::store::synclog::Level::Warn,
                    &format!("batch {} is still not finished after {POLLS_MAX} status polls; its items go out again", handles.join(",")),
                );
                self.put_back(
                    idx,
                    jobs,
                    items,
                    out,
                    ItemPush::unsent,
                    crate::store::now_ms(),
                );
                return;
            }
            let wait = POLL_FIRST.saturating_mul(1 << polls.min(16)).min(POLL_MAX);
            let at = crate::store::now_ms() + wait.as_millis() as i64;
            self.put_back(
                idx,
                jobs,
                items,
                out,
                |p| ItemPush { polls, ..p.clone() },
                at,
            );
            return;
        }
        if warned > 0 || !warnings.is_empty() {
            self.report(
                idx,
                jobs,
                crate::store::synclog::Level::Warn,
                &format!(
                    "batch {}: Meta took the items with {} warning(s): {}",
                    handles.join(","),
                    warned.max(warnings.len() as i64),
                    warnings.join("; ")
                ),
            );
        }
        // Done, refused, or (a failed batch that named no reason for an item) sent again.
        let mut done = Vec::new();
        let mut again = Vec::new();
        let mut dead = Vec::new();
        for &i in idx {
            let p = items[i].expect("parsed");
            match refused.get(p.retailer_id()) {
                Some(why) => dead.push((i, why.clone())),
                None if failed_batch => again.push(i),
                None => done.push(i),
            }
        }
        let written = self.store.write(|tx| {
            let sent: Vec<(i64, String)> = done
                .iter()
                .map(|&i| {
                    let p = items[i].expect("parsed");
                    (p.mapping_id, p.hash.clone())
                })
                .collect();
            mapping::mark_sent_in(tx, &sent)?;
            let ids: Vec<i64> = done.iter().map(|&i| jobs[i].id).collect();
            queue::complete_in(tx, &ids)?;
            for (i, _) in &dead {
                let p = items[*i].expect("parsed");
                queue::set_payload_in(tx, jobs[*i].id, &Payload::of(&p.unsent()))?;
            }
            Ok(())
        });
        if let Err(e) = written {
            let e = crate::sync::order_import::store_err(e);
            for &i in idx {
                out[i] = Some(Err(e.clone()));
            }
            return;
        }
        for &i in &done {
            out[i] = Some(Ok(()));
        }
        let text = format!(
            "batch {} finished: Meta took {} item(s){}{}",
            handles.join(","),
            done.len(),
            match dead.len() {
                0 => String::new(),
                n => format!(", refused {n} (dead with Meta's reason)"),
            },
            match again.len() {
                0 => String::new(),
                n => format!(", {n} to send again (the batch failed without naming them)"),
            }
        );
        crate::internal_events::emit(
            &self.store,
            &crate::internal_events::Pushed {
                channel: CHANNEL,
                stock: false,
                count: done.len() as i64,
                problem: Some((crate::store::synclog::Level::Info, &text)),
            },
        );
        for (i, why) in dead {
            let p = items[i].expect("parsed");
            out[i] = Some(Err(JobError::new(
                RetryClass::Permanent,
                format!(
                    "Meta refused item {} (product.product {}): {why}",
                    p.retailer_id(),
                    p.odoo_id
                ),
            )));
        }
        if !again.is_empty() {
            self.put_back(
                &again,
                jobs,
                items,
                out,
                ItemPush::unsent,
                crate::store::now_ms(),
            );
        }
    }
}

impl crate::channel::Catalog for Meta {
    async fn catalog(&self, full: bool) -> crate::channel::StreamResult {
        let name = format!("{CHANNEL}.catalog");
        let cursor = if full {
            None
        } else {
            streams::get(&self.store, &name)?.and_then(|s| s.cursor)
        };
        let started = poll_start();
        let _planning = Planning::start(&self.planning);
        let mut unpriced = crate::sync::catalog::Unpriced::default();
        let rules = self
            .reader
            .pricelist_rules()
            .await
            .context("reading the pricelist's rules from Odoo")?;
        let cursor = cursor.filter(|_| !rules.deleted);
        let planned = match cursor {
            None => {
                let (mut planned, mut after) = (0, 0);
                loop {
                    let page = self
                        .reader
                        .page_after(after)
                        .await
                        .context("reading the catalog from Odoo")?;
                    after = page.last().map(|p| p.id).unwrap_or(after);
                    let jobs = self.plan_jobs(&page, false).await?;
                    planned += self.enqueue(jobs, false)?;
                    unpriced.note(&page);
                    if page.len() < self.odoo.page_size() {
                        break;
                    }
                }
                planned
            }
            Some(cursor) => {
                let since = with_overlap(&cursor, self.settings.poll_overlap);
                let products = self
                    .reader
                    .changed_since(&since)
                    .await
                    .context("reading changes from Odoo")?;
                unpriced.note(&products);
                let jobs = self.plan_jobs(&products, false).await?;
                self.enqueue(jobs, false)?
            }
        };
        unpriced.verdict(&self.reader).await?;
        self.reader.remember_rules(rules);
        Ok(StreamOutcome {
            cursor: if full { None } else { Some(started) },
            note: (planned > 0)
                .then(|| (format!("{planned} item update(s) to send"), planned as i64)),
        })
    }
}

/// A price as the catalog reads it back (`"12.900 KWD"`, `"KWD12.900"`, `"$20.00"`).
pub fn read_price(text: &str) -> Option<Decimal> {
    let number: String = text
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    number.parse().ok()
}

impl crate::channel::drift::ReadBack for Meta {
    /// `GET /{catalog_id}/products`, 500 a page, by Graph's cursors.
    async fn holdings(&self) -> Result<HashMap<String, Held>, crate::error::Error> {
        let path = format!("{}/products", self.settings.catalog_id);
        let mut out = HashMap::new();
        let mut after: Option<String> = None;
        let mut pages = 0;
        loop {
            let mut query = vec![
                (
                    "fields",
                    "retailer_id,price,availability,inventory".to_string(),
                ),
                ("limit", "500".to_string()),
            ];
            if let Some(a) = &after {
                query.push(("after", a.clone()));
            }
            let page = self.graph(Call::Get(&path, &query)).await?;
            for item in page["data"].as_array().into_iter().flatten() {
                let Some(id) = item["retailer_id"].as_str() else {
                    continue;
                };
                let held = Held {
                    price: item["price"].as_str().and_then(read_price),
                    stock: item["inventory"].as_i64(),
                    published: Some(true),
                };
                out.insert(id.to_string(), held);
            }
            pages += 1;
            let next = page["paging"]["cursors"]["after"].as_str();
            match next {
                Some(n) if page["paging"]["next"].is_string() && pages < 100_000 => {
                    after = Some(n.to_string())
                }
                _ => break,
            }
        }
        Ok(out)
    }

    /// Every product with a retailer id: a sold one listed at its price and inventory; a
    /// removed one absent (`delete`) or at no stock (`out_of_stock`).
    async fn wanted(&self, page: &[ProductSnapshot]) -> Result<Vec<Wanted>, crate::error::Error> {
        let mut out = Vec::with_capacity(page.len());
        for p in page {
            let Some(id) = self.retailer_id(p) else {
                continue;
            };
            let sold = p.sellable();
            let price = p.sale.as_ref().map_or(p.price, |s| s.regular);
            let held = match (sold, self.settings.on_remove) {
                (true, _) => Held {
                    price: p
                        .unpriced
                        .is_none()
                        .then(|| money::round(price, &self.settings.currency)),
                    stock: Some(self.inventory(p)),
                    published: Some(true),
                },
                (false, OnRemove::Delete) => Held {
                    published: Some(false),
                    ..Default::default()
                },
                (false, OnRemove::OutOfStock) => Held {
                    stock: Some(0),
                    ..Default::default()
                },
            };
            out.push(Wanted::new(p.id, id, held));
        }
        Ok(out)
    }

    /// Queues each product's item as if never sent (a missing one goes out as an upsert).
    async fn repair(
        &self,
        page: &[ProductSnapshot],
        _missing: &HashSet<i64>,
    ) -> Result<Repaired, crate::error::Error> {
        let jobs = self.plan_jobs(page, true).await?;
        let queued = self.enqueue(jobs, true)?;
        Ok(Repaired {
            queued,
            not_repaired: Vec::new(),
        })
    }

    fn reader(&self) -> &CatalogReader {
        &self.reader
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_carry_at_most_the_batch_and_the_body_limit() {
        assert_eq!(cut(&[10; 5], 2, 1000), vec![0..2, 2..4, 4..5]);
        // 11 bytes each with the comma: three fit in 35, not four.
        assert_eq!(cut(&[10; 7], 100, 35), vec![0..3, 3..6, 6..7]);
        // One request over the limit still goes alone (Meta says whether it takes it).
        assert_eq!(cut(&[50, 10], 100, 35), vec![0..1, 1..2]);
        assert!(cut(&[], 10, 10).is_empty());
    }

    #[test]
    fn prices_are_read_back_in_any_of_meta_s_spellings() {
        for (text, want) in [
            ("12.900 KWD", "12.900"),
            ("KWD12.900", "12.900"),
            ("$20.00", "20.00"),
        ] {
            assert_eq!(
                read_price(text),
                Some(Decimal::from_str_exact(want).unwrap())
            );
        }
        assert_eq!(read_price("free"), None);
    }

    #[test]
    fn odoo_datetimes_become_meta_s() {
        assert_eq!(
            iso("2026-12-24 18:30:00").as_deref(),
            Some("2026-12-24T18:30:00+00:00")
        );
        assert_eq!(iso("not a date"), None);
    }
}
