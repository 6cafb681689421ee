//! What Odoo says each product should look like on a channel: price, stock, published or not.
//! Read in pages by id keyset (full reads) or by change cursor: products whose `write_date`
//! moved, plus products whose stock moved (stock does not touch the product's `write_date`),
//! plus, with a pricelist, products whose price rules were written, began or ended.

use crate::odoo::{Domain, OdooClient, OdooError, SearchOpts, Value};
use crate::sync::pricelist;
use rust_decimal::Decimal;
use std::collections::BTreeSet;
use std::sync::Arc;

/// Pages of ids listed per call by [`CatalogReader::read_all`].
const ID_PAGES: usize = 20;

/// One product as a channel needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProductSnapshot {
    pub id: i64,
    pub default_code: Option<String>,
    pub barcode: Option<String>,
    pub name: String,
    pub price: Decimal,
    pub stock: Decimal,
    pub active: bool,
    pub sale_ok: bool,
    /// Within the channel's `products` filter (always, without one).
    pub in_filter: bool,
    pub write_date: Option<String>,
    /// Why the price cannot be told (a pricelist rule marketsync cannot compute): nothing is
    /// sent for the product, and the stream reports it.
    pub unpriced: Option<String>,
    /// The Odoo row, for channel-specific fields (`extra_fields`).
    pub row: Value,
    /// The pricelist sells it under its sales price by a rule with dates: a sale, for the
    /// channels that show one (Meta's `sale_price`); `price` is the sale price then.
    pub sale: Option<Sale>,
}

/// A pricelist price under the sales price, for a time.
#[derive(Debug, Clone, PartialEq)]
pub struct Sale {
    /// The sales price (`lst_price`) the sale is under.
    pub regular: Decimal,
    /// From and until (Odoo UTC datetimes), where the rule says.
    pub from: Option<String>,
    pub until: Option<String>,
}

pub struct CatalogReader {
    pub odoo: OdooClient,
    /// `free_qty`, `qty_available` or `virtual_available`.
    pub stock_field: String,
    pub warehouse_id: Option<i64>,
    pub pricelist_id: Option<i64>,
    /// The channel's config table (`channels.medusa`), named in what the operator is told.
    pub config_key: &'static str,
    /// The currency the channel sells in (ISO 4217): a pricelist rule in another is refused.
    pub currency: Option<String>,
    /// More product fields a channel needs (e.g. `description_sale`, `weight`).
    pub extra_fields: Vec<&'static str>,
    /// The channel's `products` filter: a product outside it is not sold there (unpublished
    /// if it was).
    pub filter: Option<crate::odoo::Domain>,
    /// The pricelist's rule ids as the last change poll saw them (see
    /// [`CatalogReader::pricelist_rules`]).
    pub known_rules: std::sync::Mutex<Option<BTreeSet<i64>>>,
    /// Whether Odoo's prices are in the channel's currency, as last read (read again by every
    /// full read; see [`crate::sync::currency`]).
    pub currency_guard: std::sync::Mutex<Option<crate::sync::currency::Guard>>,
    /// The company's currency (ISO code), as the guard last read it: a pricelist in another
    /// converts at Odoo's rate.
    pub company_currency: std::sync::Mutex<Option<String>>,
}

/// What a change poll found of the pricelist's rules.
pub struct RuleCheck {
    ids: Option<BTreeSet<i64>>,
    /// A rule the previous poll saw is gone: its products' prices fell back with nothing
    /// written to find them by, so the whole catalog must be read again.
    pub deleted: bool,
}

/// Odoo datetimes compare as text; this one sorts before any real one.
pub const EPOCH: &str = "1970-01-01 00:00:00";

/// Where a change poll starts: records with `write_date` `op` `at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Since {
    pub at: String,
    pub op: &'static str,
}

/// Whether `code` is an installed (active) language of the Odoo database (`res.lang`).
pub async fn language_installed(odoo: &OdooClient, code: &str) -> Result<bool, OdooError> {
    Ok(!odoo
        .search("res.lang", &Domain::all().and("code", "=", code), Some(1))
        .await?
        .is_empty())
}

/// The time a poll starts, as an Odoo datetime (UTC): the cursor it leaves for the next one.
pub fn poll_start() -> String {
    chrono::Utc::now()
        .naive_utc()
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// The poll window after `cursor` (when the previous poll started): `write_date >= cursor -
/// overlap`, since `write_date` has one-second precision and transactions commit late. Records
/// older than that are never read again, however many share one second (a mass import).
/// `overlap` must exceed the longest Odoo transaction plus any clock skew between Odoo and
/// this host.
pub fn with_overlap(cursor: &str, overlap: std::time::Duration) -> Since {
    let Ok(t) = chrono::NaiveDateTime::parse_from_str(cursor, "%Y-%m-%d %H:%M:%S") else {
        return Since {
            at: EPOCH.to_string(),
            op: ">=",
        };
    };
    let overlap = chrono::Duration::from_std(overlap).unwrap_or_default();
    Since {
        at: (t - overlap).format("%Y-%m-%d %H:%M:%S").to_string(),
        op: ">=",
    }
}

/// The products a catalog run left out for want of a price (`unpriced`): their reasons, noted
/// page by page, and the run's verdict.
#[derive(Debug, Default)]
pub struct Unpriced(Vec<String>);

impl Unpriced {
    /// Those among `products`.
    pub fn among(products: &[ProductSnapshot]) -> Unpriced {
        let mut u = Unpriced::default();
        u.note(products);
        u
    }

    pub fn note(&mut self, products: &[ProductSnapshot]) {
        self.0
            .extend(products.iter().filter_map(|p| p.unpriced.clone()));
    }

    /// An error naming the first few (the run's other products went out), or `Ok`. A run that
    /// read no product still fails while the currency guard holds every price back, so the
    /// operator hears of it before the next full read.
    pub async fn verdict(self, reader: &CatalogReader) -> Result<(), crate::error::Error> {
        let mut reasons = self.0;
        let n = reasons.len();
        let mut seen = std::collections::HashSet::new();
        reasons.retain(|r| seen.insert(r.clone()));
        if reasons.is_empty() {
            let guard = reader
                .currency_guard()
                .await
                .map_err(|e| crate::error::Error::from(e).context("reading Odoo's currencies"))?;
            return match guard.refusal() {
                Some(why) => Err(crate::error::Error::invalid(format!(
                    "no price goes out: {why}"
                ))),
                None => Ok(()),
            };
        }
        let more = reasons.len().saturating_sub(3);
        Err(crate::error::Error::invalid(format!(
            "{n} product(s) not sent, their price unknown: {}{}",
            reasons[..reasons.len().min(3)].join("; "),
            if more > 0 {
                format!(" (and {more} more)")
            } else {
                String::new()
            }
        )))
    }
}

/// The product (template) a variant belongs to, when it was read.
fn template_of(p: &ProductSnapshot) -> Option<i64> {
    p.row.get("product_tmpl_id").and_then(Value::as_id)
}

impl ProductSnapshot {
    /// Whether the channel sells it: active, saleable, and within the channel's filter.
    pub fn sellable(&self) -> bool {
        self.active && self.sale_ok && self.in_filter
    }
}

impl CatalogReader {
    /// Marks the products outside the channel's `products` filter (one search of ids a page).
    pub async fn apply_filter(&self, products: &mut [ProductSnapshot]) -> Result<(), OdooError> {
        let Some(filter) = &self.filter else {
            return Ok(());
        };
        let ids: Vec<i64> = products.iter().map(|p| p.id).collect();
        let mut members = BTreeSet::new();
        for chunk in ids.chunks(1000) {
            members.extend(
                self.odoo
                    .search_with(
                        "product.product",
                        &Domain::all()
                            .and("id", "in", chunk.to_vec())
                            .and_domain(filter),
                        vec![("active_test".to_string(), Value::Bool(false))],
                    )
                    .await?,
            );
        }
        for p in products.iter_mut() {
            p.in_filter = members.contains(&p.id);
        }
        Ok(())
    }

    /// The pricelist's rule ids now (one `search`; nothing without a pricelist), and whether one
    /// seen by the previous poll was deleted. The first poll of a process only learns them; a
    /// deletion made while marketsync was stopped waits for the reconcile.
    pub async fn pricelist_rules(&self) -> Result<RuleCheck, OdooError> {
        let Some(pricelist) = self.pricelist_id else {
            return Ok(RuleCheck {
                ids: None,
                deleted: false,
            });
        };
        let ids: BTreeSet<i64> = self
            .odoo
            .search(
                "product.pricelist.item",
                &Domain::all().and("pricelist_id", "=", pricelist),
                None,
            )
            .await?
            .into_iter()
            .collect();
        let known = self.known_rules.lock().unwrap_or_else(|e| e.into_inner());
        let deleted = known
            .as_ref()
            .is_some_and(|k| k.iter().any(|id| !ids.contains(id)));
        Ok(RuleCheck {
            ids: Some(ids),
            deleted,
        })
    }

    /// Remembers the rules a poll saw, once that poll's work is done (a failed poll sees them
    /// again next time).
    pub fn remember_rules(&self, check: RuleCheck) {
        if let Some(ids) = check.ids {
            *self.known_rules.lock().unwrap_or_else(|e| e.into_inner()) = Some(ids);
        }
    }

    /// The product fields every read asks for.
    pub fn fields(&self) -> Vec<&str> {
        let mut f = vec![
            "default_code",
            "barcode",
            "name",
            "list_price",
            // The variant's sales price: the product's plus its attributes' extra prices.
            "lst_price",
            "active",
            "sale_ok",
            "write_date",
            self.stock_field.as_str(),
        ];
        if self.pricelist_id.is_some() {
            f.push("product_tmpl_id");
            // What percentage and formula rules, and category rules, need.
            for extra in ["standard_price", "categ_id"] {
                if !f.contains(&extra) && !self.extra_fields.contains(&extra) {
                    f.push(extra);
                }
            }
        }
        for extra in &self.extra_fields {
            if !f.contains(extra) {
                f.push(extra);
            }
        }
        f
    }

    /// The context of every read: archived products too, stock of the configured warehouse.
    pub fn context(&self) -> Vec<(String, Value)> {
        let mut ctx = vec![("active_test".to_string(), Value::Bool(false))];
        if let Some(w) = self.warehouse_id {
            // `warehouse` up to 16, `warehouse_id` from 17: both are harmless elsewhere.
            ctx.push(("warehouse".into(), Value::Int(w)));
            ctx.push(("warehouse_id".into(), Value::Int(w)));
        }
        ctx
    }

    fn snapshot(&self, row: Value) -> ProductSnapshot {
        let s = |k: &str| row.get(k).and_then(Value::as_opt_str).map(str::to_string);
        ProductSnapshot {
            id: row.get("id").and_then(Value::as_i64).unwrap_or(0),
            default_code: s("default_code"),
            barcode: s("barcode"),
            name: s("name").unwrap_or_default(),
            price: row
                .get("lst_price")
                .or_else(|| row.get("list_price"))
                .and_then(Value::as_decimal)
                .unwrap_or_default(),
            stock: row
                .get(&self.stock_field)
                .and_then(Value::as_decimal)
                .unwrap_or_default(),
            active: row.get("active").and_then(Value::as_bool).unwrap_or(true),
            sale_ok: row.get("sale_ok").and_then(Value::as_bool).unwrap_or(true),
            in_filter: true,
            write_date: s("write_date"),
            unpriced: None,
            row,
            sale: None,
        }
    }

    /// Replaces list prices with the configured pricelist's price for one unit today (see
    /// [`pricelist`]); a product whose price marketsync cannot compute exactly is marked
    /// `unpriced` with the rule's id, and the others go on.
    async fn apply_prices(&self, products: &mut [ProductSnapshot]) -> Result<(), OdooError> {
        if products.is_empty() {
            return Ok(());
        }
        let guard = self.currency_guard().await?;
        if let Some(why) = guard.refusal() {
            for p in products.iter_mut() {
                p.unpriced = Some(why.to_string());
            }
            return Ok(());
        }
        self.apply_pricelist(products).await
    }

    /// Whether Odoo's prices are in the channel's currency (the channel's config key is named in
    /// the reason); read once, and again by each full read and, while prices are held back, by
    /// each run.
    pub async fn currency_guard(&self) -> Result<crate::sync::currency::Guard, OdooError> {
        use crate::sync::currency;
        let Some(channel) = self.currency.as_deref() else {
            return Ok(currency::Guard::Priced);
        };
        // A refusal is looked at again every run, so the operator's fix is seen at once.
        if let Some(g) = self
            .cached_guard()
            .clone()
            .filter(|g| *g == currency::Guard::Priced)
        {
            return Ok(g);
        }
        let (company, pricelist) = currency::read(&self.odoo, self.pricelist_id).await?;
        *self
            .company_currency
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(company.code.clone());
        let g = currency::Guard::of(channel, self.config_key, &company, pricelist.as_ref());
        *self.cached_guard() = Some(g.clone());
        Ok(g)
    }

    fn cached_guard(&self) -> std::sync::MutexGuard<'_, Option<crate::sync::currency::Guard>> {
        self.currency_guard
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// A pricelist in another currency than the company's converts the prices it computes from
    /// (and the sales price of a product no rule prices) at Odoo's rate today, as Odoo does.
    async fn apply_pricelist(&self, products: &mut [ProductSnapshot]) -> Result<(), OdooError> {
        let Some(pricelist) = self.pricelist_id else {
            return Ok(());
        };
        let ids: Vec<i64> = products.iter().map(|p| p.id).collect();
        let templates: BTreeSet<i64> = products.iter().filter_map(template_of).collect();
        let scope = Domain::all().any_of(vec![
            Domain::all().and("product_id", "in", ids),
            Domain::all().and(
                "product_tmpl_id",
                "in",
                templates.into_iter().collect::<Vec<_>>(),
            ),
            Domain::all().and("applied_on", "in", vec!["2_product_category", "3_global"]),
        ]);
        let company = self
            .company_currency
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let (items, lists) =
            pricelist::load(&self.odoo, pricelist, &scope, company.as_deref()).await?;
        let category_of = |p: &ProductSnapshot| p.row.get("categ_id").and_then(Value::as_id);
        let categories = if pricelist::rule_categories(&items).is_empty() {
            Default::default()
        } else {
            pricelist::categories(
                &self.odoo,
                pricelist::rule_categories(&items)
                    .into_iter()
                    .chain(products.iter().filter_map(category_of)),
            )
            .await?
        };
        let rules = pricelist::Rules::in_effect(
            &items,
            &poll_start(),
            self.currency.as_deref(),
            categories,
            lists,
        );
        for p in products.iter_mut() {
            let facts = pricelist::Product {
                variant: p.id,
                template: template_of(p),
                category: category_of(p),
                list_price: p.price,
                cost: p
                    .row
                    .get("standard_price")
                    .and_then(Value::as_decimal)
                    .unwrap_or_default(),
            };
            match rules.price(&facts) {
                Ok(Some(price)) => {
                    if price < p.price {
                        if let Some((from, until)) = rules.window(&facts) {
                            p.sale = Some(Sale {
                                regular: p.price,
                                from,
                                until,
                            });
                        }
                    }
                    p.price = price;
                }
                Ok(None) => {}
                Err(why) => p.unpriced = Some(format!("pricelist {pricelist}: {why}")),
            }
        }
        Ok(())
    }

    /// One page of products (archived ones too) with ids above `after`, each marked within
    /// the channel's `products` filter or not.
    pub async fn page_after(&self, after: i64) -> Result<Vec<ProductSnapshot>, OdooError> {
        let rows = self
            .odoo
            .search_read_after(
                "product.product",
                &Domain::all(),
                &self.fields(),
                self.context(),
                after,
            )
            .await?;
        let mut snaps: Vec<ProductSnapshot> = rows.into_iter().map(|r| self.snapshot(r)).collect();
        self.apply_filter(&mut snaps).await?;
        self.apply_prices(&mut snaps).await?;
        Ok(snaps)
    }

    /// Every product (archived ones too), a page at a time, in id order. The ids come first,
    /// many pages' worth per call (a small answer); then the records, a page of ids at a time,
    /// `odoo.reads_in_flight` pages at Odoo at once (one by default: the Odoo serves people
    /// too, and a threaded Odoo answers two at once slower than one after the other). The
    /// next request goes out the moment a page arrives, so Odoo reads it while this side
    /// decodes and plans the page before. At most `reads_in_flight + 1` pages are in memory.
    pub async fn read_all<F>(&self, mut on_page: F) -> Result<usize, OdooError>
    where
        F: FnMut(Vec<ProductSnapshot>),
    {
        // A full read looks at the currencies again (the reconcile's, nightly).
        *self.cached_guard() = None;
        let mut pages = PageIds {
            reader: self,
            page: self.odoo.page_size().max(1),
            fields: Arc::new(self.fields().iter().map(|f| f.to_string()).collect()),
            ids: Default::default(),
            after: 0,
            all_listed: false,
            requested_to: 0,
        };
        let in_flight = self.odoo.reads_in_flight().max(1);
        let mut pending = std::collections::VecDeque::new();
        let outcome = async {
            pages.fill(&mut pending, in_flight).await?;
            let mut total = 0;
            while let Some(request) = pending.pop_front() {
                let rows = request.await.unwrap_or_else(|e| {
                    Err(OdooError::Server(format!("page read task failed: {e}")))
                })?;
                pages.fill(&mut pending, in_flight).await?;
                total += rows.len();
                let mut snaps: Vec<ProductSnapshot> =
                    rows.into_iter().map(|r| self.snapshot(r)).collect();
                self.apply_filter(&mut snaps).await?;
                self.apply_prices(&mut snaps).await?;
                if !snaps.is_empty() {
                    on_page(snaps);
                }
            }
            Ok(total)
        }
        .await;
        for p in pending {
            p.abort();
        }
        outcome
    }

    /// Products written, whose stock moved, or (with a pricelist) whose price rules changed,
    /// in the window `since`.
    pub async fn changed_since(&self, since: &Since) -> Result<Vec<ProductSnapshot>, OdooError> {
        let mut by_id: BTreeSet<i64> = BTreeSet::new();
        let mut products = Vec::new();
        let mut rows_seen = Vec::new();
        self.odoo
            .search_read_pages(
                "product.product",
                &Domain::all().and("write_date", since.op, since.at.as_str()),
                &self.fields(),
                self.context(),
                |rows| {
                    rows_seen.extend(rows);
                    Ok(())
                },
            )
            .await?;
        for row in rows_seen {
            let snap = self.snapshot(row);
            by_id.insert(snap.id);
            products.push(snap);
        }
        let mut moved = BTreeSet::new();
        self.odoo
            .search_read_pages(
                "stock.move",
                &Domain::all().and("write_date", since.op, since.at.as_str()),
                &["product_id", "write_date"],
                vec![],
                |rows| {
                    for m in rows {
                        if let Some(p) = m.get("product_id").and_then(Value::as_id) {
                            moved.insert(p);
                        }
                    }
                    Ok(())
                },
            )
            .await?;
        let mut templates = BTreeSet::new();
        if let Some(pricelist) = self.pricelist_id {
            self.pricelist_changes(pricelist, since, &mut moved, &mut templates)
                .await?;
        }
        let missing: Vec<i64> = moved.into_iter().filter(|id| !by_id.contains(id)).collect();
        for chunk in missing.chunks(1000) {
            let rows = self
                .odoo
                .search_read(
                    "product.product",
                    &Domain::all().and("id", "in", chunk.to_vec()),
                    &self.fields(),
                    SearchOpts {
                        context: self.context(),
                        ..Default::default()
                    },
                )
                .await?;
            products.extend(rows.into_iter().map(|r| self.snapshot(r)));
        }
        if !templates.is_empty() {
            let seen: BTreeSet<i64> = products.iter().map(|p| p.id).collect();
            let rows = self
                .odoo
                .search_read(
                    "product.product",
                    &Domain::all().and(
                        "product_tmpl_id",
                        "in",
                        templates.into_iter().collect::<Vec<_>>(),
                    ),
                    &self.fields(),
                    SearchOpts {
                        context: self.context(),
                        ..Default::default()
                    },
                )
                .await?;
            products.extend(
                rows.into_iter()
                    .map(|r| self.snapshot(r))
                    .filter(|p| !seen.contains(&p.id)),
            );
        }
        self.apply_filter(&mut products).await?;
        self.apply_prices(&mut products).await?;
        Ok(products)
    }

    /// The variants (into `variants`) and products (into `templates`) whose pricelist rules
    /// were written, began or ended in the window `since`: a price moves without touching the
    /// product. A deleted rule leaves no trace: see [`CatalogReader::pricelist_rules`].
    async fn pricelist_changes(
        &self,
        pricelist: i64,
        since: &Since,
        variants: &mut BTreeSet<i64>,
        templates: &mut BTreeSet<i64>,
    ) -> Result<(), OdooError> {
        let now = poll_start();
        let at = since.at.as_str();
        let between = |field: &str| {
            Domain::all()
                .and(field, ">=", at)
                .and(field, "<=", now.as_str())
        };
        let rows = self
            .odoo
            .search_read(
                "product.pricelist.item",
                &Domain::all()
                    .and("pricelist_id", "=", pricelist)
                    .any_of(vec![
                        Domain::all().and("write_date", since.op, at),
                        between("date_start"),
                        between("date_end"),
                    ]),
                &["applied_on", "product_id", "product_tmpl_id", "categ_id"],
                SearchOpts::default(),
            )
            .await?;
        let mut broad: Vec<Domain> = Vec::new();
        for r in rows {
            let id = |k: &str| r.get(k).and_then(Value::as_id);
            match r.get("applied_on").and_then(Value::as_opt_str) {
                Some("0_product_variant") => variants.extend(id("product_id")),
                Some("1_product") => templates.extend(id("product_tmpl_id")),
                // A category's products (its children's too), or every product.
                Some("2_product_category") => {
                    if let Some(c) = id("categ_id") {
                        broad.push(Domain::all().and("categ_id", "child_of", c));
                    }
                }
                _ => broad.push(Domain::all()),
            }
        }
        for d in broad {
            variants.extend(
                self.odoo
                    .search_with(
                        "product.product",
                        &d,
                        vec![("active_test".to_string(), Value::Bool(false))],
                    )
                    .await?,
            );
        }
        Ok(())
    }
}

/// The id ranges of a full read: ids listed [`ID_PAGES`] pages at a time, and each page's
/// records asked for by range.
struct PageIds<'a> {
    reader: &'a CatalogReader,
    page: usize,
    fields: Arc<Vec<String>>,
    /// Listed, not yet requested.
    ids: std::collections::VecDeque<i64>,
    /// The last id listed.
    after: i64,
    all_listed: bool,
    /// The last id whose page was requested.
    requested_to: i64,
}

type PageRequest = tokio::task::JoinHandle<Result<Vec<Value>, OdooError>>;

impl PageIds<'_> {
    /// Sends requests until `n` are on their way or every page was asked for.
    async fn fill(
        &mut self,
        pending: &mut std::collections::VecDeque<PageRequest>,
        n: usize,
    ) -> Result<(), OdooError> {
        while pending.len() < n {
            match self.fetch_next().await? {
                Some(request) => pending.push_back(request),
                None => break,
            }
        }
        Ok(())
    }

    /// Sends the next page's request (listing more ids first when needed); `None` at the end.
    async fn fetch_next(&mut self) -> Result<Option<PageRequest>, OdooError> {
        let r = self.reader;
        if self.ids.len() < self.page && !self.all_listed {
            let limit = (self.page * ID_PAGES) as u32;
            let more = r
                .odoo
                .search_after(
                    "product.product",
                    &Domain::all(),
                    r.context(),
                    self.after,
                    limit,
                )
                .await?;
            self.all_listed = more.len() < limit as usize;
            self.after = more.last().copied().unwrap_or(self.after);
            self.ids.extend(more);
        }
        if self.ids.is_empty() {
            return Ok(None);
        }
        let n = self.page.min(self.ids.len());
        let last = self.ids[n - 1];
        self.ids.drain(..n);
        let after = std::mem::replace(&mut self.requested_to, last);
        let (odoo, fields, context) = (r.odoo.clone(), self.fields.clone(), r.context());
        Ok(Some(tokio::spawn(async move {
            let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
            // The range of ids rather than the list: the same records, found by the primary
            // key, without a thousand ids in the request. Each range starts where the one
            // before ended, so no id between two pages is left out.
            odoo.search_read(
                "product.product",
                &Domain::all().and("id", ">", after).and("id", "<=", last),
                &fields,
                SearchOpts {
                    order: Some("id".into()),
                    context,
                    ..Default::default()
                },
            )
            .await
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_window_reaches_back_by_the_overlap() {
        let w = with_overlap("2026-11-21 10:00:30", Duration::from_secs(10));
        assert_eq!(
            w,
            Since {
                at: "2026-11-21 10:00:20".into(),
                op: ">="
            }
        );
        assert_eq!(with_overlap("garbage", Duration::from_secs(10)).at, EPOCH);
    }
}
