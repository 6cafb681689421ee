//! What Odoo says each product should look like on a channel: price, stock, published or not.
//! Read in pages by id keyset (full reads) or by change cursor: products whose `write_date`
//! moved, plus products whose stock moved (stock does not touch the product's `write_date`).

use crate::odoo::{Domain, OdooClient, OdooError, SearchOpts, Value};
use rust_decimal::Decimal;
use std::collections::{BTreeSet, HashMap};

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
    pub write_date: Option<String>,
    /// The Odoo row, for channel-specific fields (`extra_fields`).
    pub row: Value,
}

pub struct CatalogReader {
    pub odoo: OdooClient,
    /// `free_qty`, `qty_available` or `virtual_available`.
    pub stock_field: String,
    pub warehouse_id: Option<i64>,
    pub pricelist_id: Option<i64>,
    /// More product fields a channel needs (e.g. `description_sale`, `weight`).
    pub extra_fields: Vec<&'static str>,
}

/// Odoo datetimes compare as text; this one sorts before any real one.
pub const EPOCH: &str = "1970-01-01 00:00:00";

/// Where a change poll starts: records with `write_date` `op` `at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Since {
    pub at: String,
    pub op: &'static str,
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

impl CatalogReader {
    /// The product fields every read asks for.
    pub fn fields(&self) -> Vec<&str> {
        let mut f = vec![
            "default_code",
            "barcode",
            "name",
            "list_price",
            "active",
            "sale_ok",
            "write_date",
            self.stock_field.as_str(),
        ];
        f.extend(self.extra_fields.iter().copied());
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
                .get("list_price")
                .and_then(Value::as_decimal)
                .unwrap_or_default(),
            stock: row
                .get(&self.stock_field)
                .and_then(Value::as_decimal)
                .unwrap_or_default(),
            active: row.get("active").and_then(Value::as_bool).unwrap_or(true),
            sale_ok: row.get("sale_ok").and_then(Value::as_bool).unwrap_or(true),
            write_date: s("write_date"),
            row,
        }
    }

    /// Replaces list prices with the pricelist's fixed prices where it has one.
    async fn apply_pricelist(&self, products: &mut [ProductSnapshot]) -> Result<(), OdooError> {
        let Some(pricelist) = self.pricelist_id else {
            return Ok(());
        };
        if products.is_empty() {
            return Ok(());
        }
        let ids: Vec<i64> = products.iter().map(|p| p.id).collect();
        let items = self
            .odoo
            .search_read(
                "product.pricelist.item",
                &Domain::all()
                    .and("pricelist_id", "=", pricelist)
                    .and("applied_on", "=", "0_product_variant")
                    .and("compute_price", "=", "fixed")
                    .and("product_id", "in", ids),
                &["product_id", "fixed_price"],
                SearchOpts::default(),
            )
            .await?;
        let fixed: HashMap<i64, Decimal> = items
            .iter()
            .filter_map(|i| {
                Some((
                    i.get("product_id")?.as_id()?,
                    i.get("fixed_price")?.as_decimal()?,
                ))
            })
            .collect();
        for p in products.iter_mut() {
            if let Some(price) = fixed.get(&p.id) {
                p.price = *price;
            }
        }
        Ok(())
    }

    /// One page of products (archived ones too) with ids above `after`.
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
        self.apply_pricelist(&mut snaps).await?;
        Ok(snaps)
    }

    /// Every product (archived ones too), a page at a time. The next page is fetched while the
    /// current one is handled, so Odoo's answer and our work overlap; at most two pages are in
    /// memory at once.
    pub async fn read_all<F>(&self, mut on_page: F) -> Result<usize, OdooError>
    where
        F: FnMut(Vec<ProductSnapshot>),
    {
        let fetch = |after: i64| {
            let odoo = self.odoo.clone();
            let fields: Vec<String> = self.fields().iter().map(|f| f.to_string()).collect();
            let context = self.context();
            tokio::spawn(async move {
                let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
                odoo.search_read_after("product.product", &Domain::all(), &fields, context, after)
                    .await
            })
        };
        let joined = |r: Result<Result<Vec<Value>, OdooError>, tokio::task::JoinError>| {
            r.unwrap_or_else(|e| Err(OdooError::Server(format!("page read task failed: {e}"))))
        };
        let mut total = 0;
        let mut pending = fetch(0);
        loop {
            let rows = joined(pending.await)?;
            let n = rows.len();
            let last = rows
                .iter()
                .rev()
                .find_map(|r| r.get("id").and_then(Value::as_i64));
            let more = n >= self.odoo.page_size() && last.is_some();
            // Ask for the next page before handling this one.
            let next = more.then(|| fetch(last.unwrap_or(0)));
            let mut snaps: Vec<ProductSnapshot> =
                rows.into_iter().map(|r| self.snapshot(r)).collect();
            total += n;
            if let Err(e) = self.apply_pricelist(&mut snaps).await {
                if let Some(next) = next {
                    next.abort();
                }
                return Err(e);
            }
            if n > 0 {
                on_page(snaps);
            }
            match next {
                Some(next) => pending = next,
                None => return Ok(total),
            }
        }
    }

    /// Products written, or whose stock moved, in the window `since`.
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
        self.apply_pricelist(&mut products).await?;
        Ok(products)
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
