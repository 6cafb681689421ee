//! A pricelist's price for one unit today, as Odoo computes it, for the rules marketsync can
//! reproduce exactly: fixed prices set on a product variant or on a product (template).
//!
//! Odoo takes the first rule in effect (its dates hold and its minimum quantity is at most the
//! one unit sold) in the order `applied_on, min_quantity desc, categ_id desc, id desc`: a
//! variant's rules before its product's, a higher minimum before a lower one, the newest first.
//! A product no rule applies to sells at its list price. Rules on a category or on all
//! products (where a product has none of its own), and percentage or formula prices, are
//! refused with the rule's id rather than guessed: a wrong price sent to a marketplace is
//! worse than none. Only the products concerned wait; the rest of the catalog goes on.

use crate::error::Context;
use crate::odoo::{Domain, OdooClient, SearchOpts, Value};
use rust_decimal::Decimal;

/// The pricelist item fields a price needs.
pub const ITEM_FIELDS: &[&str] = &[
    "applied_on",
    "product_id",
    "product_tmpl_id",
    "min_quantity",
    "date_start",
    "date_end",
    "compute_price",
    "fixed_price",
    "currency_id",
];

/// What a rule is set on, in Odoo's order (`applied_on`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Variant(i64),
    Template(i64),
    Category,
    Global,
}

impl Scope {
    fn rank(self) -> u8 {
        match self {
            Scope::Variant(_) => 0,
            Scope::Template(_) => 1,
            Scope::Category => 2,
            Scope::Global => 3,
        }
    }
}

#[derive(Debug, Clone)]
struct Rule {
    id: i64,
    scope: Scope,
    min_quantity: f64,
    /// `None` when the rule is not a fixed price (`compute_price` names it).
    fixed: Option<Decimal>,
    compute: String,
    /// The pricelist's currency (ISO 4217), as the rule carries it.
    currency: Option<String>,
}

/// The rules of one pricelist in effect at a time, in the order Odoo tries them, and the
/// currency the channel sells in.
#[derive(Debug, Default)]
pub struct Rules(Vec<Rule>, Option<String>);

impl Rules {
    /// The rules among `rows` (pricelist items read with [`ITEM_FIELDS`]) in effect at `now`
    /// (an Odoo datetime) for one unit, for a channel selling in `currency`.
    pub fn in_effect(rows: &[Value], now: &str, currency: Option<&str>) -> Rules {
        let mut rules: Vec<Rule> = rows
            .iter()
            .filter(|r| {
                let date = |k: &str| r.get(k).and_then(Value::as_opt_str).map(str::to_string);
                date("date_start").is_none_or(|s| s.as_str() <= now)
                    && date("date_end").is_none_or(|e| e.as_str() >= now)
            })
            .filter_map(rule)
            .filter(|r| r.min_quantity <= 1.0)
            .collect();
        rules.sort_by(|a, b| {
            (a.scope.rank(), b.min_quantity, b.id)
                .partial_cmp(&(b.scope.rank(), a.min_quantity, a.id))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        Rules(rules, currency.map(str::to_ascii_uppercase))
    }

    /// One unit's price of `variant` (of product `template`): `Some` from its first rule,
    /// `None` when no rule applies (the list price holds), or why marketsync cannot tell.
    pub fn price(
        &self,
        variant: i64,
        template: Option<i64>,
    ) -> Result<Option<Decimal>, crate::error::Error> {
        let first = self.0.iter().find(|r| match r.scope {
            Scope::Variant(v) => v == variant,
            Scope::Template(t) => Some(t) == template,
            Scope::Category | Scope::Global => false,
        });
        match (first, self.broad()) {
            (Some(r), _) => {
                self.same_currency(r)?;
                r.fixed.map(Some).ok_or_else(|| {
                    crate::error::Error::refused(not_fixed(r, &format!("product {variant}")))
                })
            }
            // Rules on a category or on everything come after a product's own.
            (None, Some(r)) => Err(crate::error::Error::refused(broad_refused(r))),
            (None, None) => Ok(None),
        }
    }

    /// The first reason these rules would fail a catalog read (for `marketsync check`): a rule
    /// on a category or on all products, or a rule that is not a fixed price and comes first
    /// for its variant or product.
    pub fn problem(&self) -> Option<String> {
        if let Some(r) = self.broad() {
            return Some(broad_refused(r));
        }
        if let Some(Err(e)) = self.0.first().map(|r| self.same_currency(r)) {
            return Some(e.to_string());
        }
        self.0.iter().enumerate().find_map(|(i, r)| {
            let first = !self.0[..i].iter().any(|o| o.scope == r.scope);
            (r.fixed.is_none() && first).then(|| {
                let whom = match r.scope {
                    Scope::Variant(v) => format!("product {v}"),
                    Scope::Template(t) => format!("the variants of product template {t}"),
                    Scope::Category | Scope::Global => unreachable!("refused above"),
                };
                not_fixed(r, &whom)
            })
        })
    }

    /// How many rules are in effect.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A price in another currency than the channel's would be sent as if it were in the
    /// channel's: refused.
    fn same_currency(&self, r: &Rule) -> Result<(), crate::error::Error> {
        match (&r.currency, &self.1) {
            (Some(theirs), Some(ours)) if !theirs.eq_ignore_ascii_case(ours) => Err(crate::error::Error::refused(format!(
                "rule {} is in {theirs}, and the channel sells in {ours}: use a pricelist in {ours}",
                r.id
            ))),
            _ => Ok(()),
        }
    }

    fn broad(&self) -> Option<&Rule> {
        self.0
            .iter()
            .find(|r| matches!(r.scope, Scope::Category | Scope::Global))
    }
}

fn broad_refused(r: &Rule) -> String {
    format!(
        "rule {} is set on {}; marketsync applies only fixed prices set on a product or a \
         variant: give the products theirs, or use a pricelist that has only those",
        r.id,
        if r.scope == Scope::Global {
            "all products"
        } else {
            "a product category"
        }
    )
}

fn not_fixed(r: &Rule, whom: &str) -> String {
    format!(
        "rule {} (a {} price) is the first that applies to {whom}; marketsync applies only \
         fixed prices: make it a fixed price",
        r.id, r.compute
    )
}

/// `marketsync check`'s look at a pricelist: what is in effect, or what would fail the sync.
pub async fn inspect(
    odoo: &OdooClient,
    pricelist: i64,
    currency: Option<&str>,
) -> Result<String, crate::error::Error> {
    let named = odoo
        .search_read(
            "product.pricelist",
            &Domain::all().and("id", "=", pricelist),
            &["name"],
            SearchOpts::default(),
        )
        .await
        .context(format!("reading pricelist {pricelist}"))?;
    let Some(name) = named
        .first()
        .and_then(|p| p.get("name"))
        .and_then(Value::as_opt_str)
        .map(str::to_string)
    else {
        return Err(crate::error::Error::invalid(format!(
            "pricelist {pricelist} is not in Odoo (or archived): check the channel's pricelist_id"
        )));
    };
    let items = odoo
        .search_read(
            "product.pricelist.item",
            &Domain::all()
                .and("pricelist_id", "=", pricelist)
                .and("min_quantity", "<=", 1.0),
            ITEM_FIELDS,
            SearchOpts::default(),
        )
        .await
        .context(format!("reading pricelist {pricelist}'s rules"))?;
    let now = crate::sync::catalog::poll_start();
    let rules = Rules::in_effect(&items, &now, currency);
    match rules.problem() {
        Some(why) => Err(crate::error::Error::invalid(format!(
            "pricelist {pricelist} ({name:?}): {why}"
        ))),
        None => Ok(format!(
            "pricelist {pricelist} ({name:?}): {} fixed price(s) in effect",
            rules.len()
        )),
    }
}

fn rule(row: &Value) -> Option<Rule> {
    let id = row.get("id").and_then(Value::as_i64)?;
    let scope = match row.get("applied_on").and_then(Value::as_opt_str)? {
        "0_product_variant" => Scope::Variant(row.get("product_id").and_then(Value::as_id)?),
        "1_product" => Scope::Template(row.get("product_tmpl_id").and_then(Value::as_id)?),
        "2_product_category" => Scope::Category,
        _ => Scope::Global,
    };
    let compute = row
        .get("compute_price")
        .and_then(Value::as_opt_str)
        .unwrap_or("fixed")
        .to_string();
    let fixed = if compute == "fixed" {
        Some(
            row.get("fixed_price")
                .and_then(Value::as_decimal)
                .unwrap_or_default(),
        )
    } else {
        None
    };
    let currency = row
        .get("currency_id")
        .and_then(Value::as_many2one)
        .map(|(_, name)| name.to_ascii_uppercase());
    Some(Rule {
        id,
        currency,
        scope,
        min_quantity: row
            .get("min_quantity")
            .and_then(Value::as_f64)
            .unwrap_or(0.0),
        fixed,
        compute,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn item(id: i64, applied_on: &str, target: i64, price: f64, extra: &[(&str, Value)]) -> Value {
        let mut v = vec![
            ("id", Value::Int(id)),
            ("applied_on", Value::from(applied_on)),
            ("product_id", Value::Bool(false)),
            ("product_tmpl_id", Value::Bool(false)),
            ("min_quantity", Value::Double(0.0)),
            ("date_start", Value::Bool(false)),
            ("date_end", Value::Bool(false)),
            ("compute_price", Value::from("fixed")),
            ("fixed_price", Value::Double(price)),
        ];
        let key = if applied_on == "0_product_variant" {
            "product_id"
        } else {
            "product_tmpl_id"
        };
        v.retain(|(k, _)| *k != key && !extra.iter().any(|(e, _)| e == k));
        v.push((key, Value::Int(target)));
        v.extend(extra.iter().cloned());
        Value::record(v)
    }

    const NOW: &str = "2026-11-22 08:00:00";

    fn price(rows: &[Value], variant: i64, template: i64) -> Result<Option<Decimal>, String> {
        Rules::in_effect(rows, NOW, Some("egp"))
            .price(variant, Some(template))
            .map_err(|e| e.to_string())
    }

    fn d(s: &str) -> Option<Decimal> {
        Some(Decimal::from_str(s).unwrap())
    }

    #[test]
    fn a_variant_rule_comes_before_its_products_and_no_rule_keeps_the_list_price() {
        let rows = [
            item(1, "1_product", 10, 7.0, &[]),
            item(2, "0_product_variant", 100, 9.5, &[]),
        ];
        assert_eq!(price(&rows, 100, 10), Ok(d("9.5")));
        assert_eq!(
            price(&rows, 101, 10),
            Ok(d("7")),
            "a sibling has the product's"
        );
        assert_eq!(price(&rows, 102, 11), Ok(None));
    }

    #[test]
    fn rules_out_of_effect_are_skipped_and_the_newest_wins() {
        let q = |n: f64| ("min_quantity", Value::Double(n));
        let rows = [
            item(1, "0_product_variant", 100, 1.0, &[]),
            item(2, "0_product_variant", 100, 2.0, &[]),
            item(3, "0_product_variant", 100, 3.0, &[q(10.0)]),
            item(
                4,
                "0_product_variant",
                100,
                4.0,
                &[("date_end", Value::from("2026-11-01 00:00:00"))],
            ),
            item(
                5,
                "0_product_variant",
                100,
                5.0,
                &[("date_start", Value::from("2026-12-01 00:00:00"))],
            ),
        ];
        assert_eq!(price(&rows, 100, 10), Ok(d("2")));
        // A minimum of one comes before a minimum of none.
        let rows = [
            item(7, "0_product_variant", 100, 7.0, &[]),
            item(6, "0_product_variant", 100, 6.0, &[q(1.0)]),
        ];
        assert_eq!(price(&rows, 100, 10), Ok(d("6")));
    }

    #[test]
    fn a_price_in_another_currency_is_refused() {
        let usd = (
            "currency_id",
            Value::Array(vec![Value::Int(2), "USD".into()]),
        );
        let rows = [item(4, "0_product_variant", 100, 9.5, &[usd])];
        let e = price(&rows, 100, 10).unwrap_err();
        assert_eq!(
            e,
            "rule 4 is in USD, and the channel sells in EGP: use a pricelist in EGP"
        );
        assert_eq!(Rules::in_effect(&rows, NOW, Some("egp")).problem(), Some(e));
        assert_eq!(
            price(&rows, 101, 10),
            Ok(None),
            "another product: its list price"
        );
        assert_eq!(
            Rules::in_effect(&rows, NOW, Some("usd"))
                .price(100, None)
                .ok(),
            Some(d("9.5"))
        );
    }

    #[test]
    fn what_cannot_be_reproduced_is_refused_with_the_rule() {
        let pct = item(
            3,
            "0_product_variant",
            100,
            0.0,
            &[("compute_price", Value::from("percentage"))],
        );
        let e = price(std::slice::from_ref(&pct), 100, 10).unwrap_err();
        assert!(e.contains("rule 3 (a percentage price)"), "{e}");
        // A variant's percentage rule leaves its siblings to their product's fixed price.
        let shadow = [pct, item(4, "1_product", 10, 8.0, &[])];
        assert_eq!(price(&shadow, 101, 10), Ok(d("8")));
        let problem = Rules::in_effect(&shadow, NOW, None).problem().unwrap();
        assert!(problem.contains("rule 3 (a percentage price)"), "{problem}");
        let behind = [
            item(
                5,
                "0_product_variant",
                100,
                5.0,
                &[("min_quantity", Value::Double(1.0))],
            ),
            shadow[0].clone(),
        ];
        assert_eq!(
            Rules::in_effect(&behind, NOW, None).problem(),
            None,
            "never first"
        );
        let global = item(9, "3_global", 0, 1.0, &[]);
        let e = price(std::slice::from_ref(&global), 100, 10).unwrap_err();
        assert!(e.contains("rule 9 is set on all products"), "{e}");
        // A product's own fixed price comes before a rule on everything.
        let own = [global, item(10, "0_product_variant", 100, 4.0, &[])];
        assert_eq!(price(&own, 100, 10), Ok(d("4")));
        assert!(Rules::in_effect(&own, NOW, None).problem().is_some());
    }
}
