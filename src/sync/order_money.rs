//! What an imported order costs in Odoo: the taxes put on its lines (`order_taxes`), the price
//! each line is given so that Odoo's total is what the customer paid (a marketplace price that
//! includes tax becomes the untaxed price for taxes Odoo adds on top, and stays as it is for a
//! price-included tax), the marketplace's discounts (a line discount, or a line of a discount
//! product), shipping (a line of a service product, marked as a delivery line), and the check
//! of Odoo's `amount_total` against the marketplace's total once the order exists.
//!
//! How Odoo totals these was recorded on a real Odoo 17 (`fixtures/odoo17/order-money.json`):
//! unit prices and discounts are kept to 2 digits (the "Product Price" and "Discount"
//! precisions), each line is rounded to the order's currency, and a price-included tax is
//! taken out of the line's amount.

use crate::odoo::Value;
use rust_decimal::Decimal;
use serde::Deserialize;

/// `order_taxes`: which Odoo taxes an imported order's lines carry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum OrderTaxes {
    /// The products' own taxes (Odoo's default), the marketplace prices taken as untaxed.
    #[default]
    Product,
    /// No tax at all: the marketplace price is the price.
    None,
    /// These taxes on every line (e.g. a price-included VAT, so the marketplace price is the
    /// tax-inclusive price).
    Ids(Vec<i64>),
}

impl<'de> Deserialize<'de> for OrderTaxes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Word(String),
            Ids(Vec<i64>),
        }
        const EXPECTED: &str =
            "\"product\", \"none\", or a list of Odoo tax ids such as [12] (see `marketsync check`)";
        match Raw::deserialize(d)
            .map_err(|_| serde::de::Error::custom(format!("expected {EXPECTED}")))?
        {
            Raw::Word(w) if w == "product" => Ok(OrderTaxes::Product),
            Raw::Word(w) if w == "none" => Ok(OrderTaxes::None),
            Raw::Word(w) => Err(serde::de::Error::custom(format!(
                "{w:?} is not one of: expected {EXPECTED}"
            ))),
            Raw::Ids(ids) if ids.is_empty() => Err(serde::de::Error::custom(
                "an empty list of taxes: write \"none\" for no tax",
            )),
            Raw::Ids(ids) if ids.iter().any(|i| *i <= 0) => Err(serde::de::Error::custom(
                "tax ids are positive Odoo record ids",
            )),
            Raw::Ids(ids) => Ok(OrderTaxes::Ids(ids)),
        }
    }
}

impl std::fmt::Display for OrderTaxes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OrderTaxes::Product => f.write_str("\"product\""),
            OrderTaxes::None => f.write_str("\"none\""),
            OrderTaxes::Ids(ids) => write!(f, "{ids:?}"),
        }
    }
}

/// A channel's money settings, as its orders carry them into the import.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Terms {
    pub taxes: OrderTaxes,
    /// The service product whose lines carry shipping (`shipping_product_id`).
    pub shipping_product: Option<i64>,
    /// A free shipping method still gets a line, at zero (`free_shipping_line`).
    pub free_shipping_line: bool,
    /// The product of one line carrying every discount (`discount_product_id`); without it,
    /// each line carries its own discount in percent.
    pub discount_product: Option<i64>,
    /// The pricelist the order is in (its currency is the order's): the channel's
    /// `pricelist_id`.
    pub pricelist: Option<i64>,
    /// The order line's tax field (`tax_id`, or `tax_ids` from Odoo 18) and whether the
    /// delivery module's `is_delivery` exists (from the Odoo profile).
    pub line_taxes: &'static str,
    pub is_delivery: bool,
    /// The customer's second number goes in `mobile` (up to 18), or in `phone` when Odoo has
    /// no `mobile` (19) and the customer gave no first one.
    pub partner_mobile: bool,
}

/// A charge beside the products: a shipping method, at what the customer was charged for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Charge {
    pub name: String,
    /// After its own discounts.
    pub amount: Decimal,
    pub tax_included: bool,
    /// The marketplace's tax rate on it, in percent.
    pub tax_rate: Decimal,
}

/// Whether the prices sent to Odoo are to include tax.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// Untaxed: Odoo adds the taxes (the products' own, or price-excluded ones).
    Net,
    /// Tax included: no tax, or price-included taxes.
    Gross,
}

impl Terms {
    /// The basis the lines' prices are given on, knowing whether the configured taxes are
    /// included in the price (`None` for "product" and "none").
    pub fn basis(&self, included: Option<bool>) -> Basis {
        match (&self.taxes, included) {
            (OrderTaxes::None, _) => Basis::Gross,
            (OrderTaxes::Ids(_), Some(true)) => Basis::Gross,
            _ => Basis::Net,
        }
    }

    /// The tax field's value on a line: `None` leaves Odoo's (the product's) taxes.
    pub fn tax_command(&self) -> Option<(&'static str, Value)> {
        let ids = match &self.taxes {
            OrderTaxes::Product => return None,
            OrderTaxes::None => Vec::new(),
            OrderTaxes::Ids(ids) => ids.iter().copied().map(Value::Int).collect(),
        };
        let field = if self.line_taxes.is_empty() {
            "tax_id"
        } else {
            self.line_taxes
        };
        Some((
            field,
            Value::Array(vec![Value::Array(vec![
                Value::Int(6),
                Value::Int(0),
                Value::Array(ids),
            ])]),
        ))
    }
}

/// A price written `tax_included` (or not) at `rate` percent, on `basis`.
pub fn on_basis(price: Decimal, tax_included: bool, rate: Decimal, basis: Basis) -> Decimal {
    let factor = Decimal::ONE + rate / Decimal::ONE_HUNDRED;
    if factor <= Decimal::ZERO {
        return price;
    }
    match (tax_included, basis) {
        (true, Basis::Net) => price / factor,
        (false, Basis::Gross) => price * factor,
        _ => price,
    }
}

/// A line's discount in percent: `discount` off `gross` (its price times quantity, on the
/// same footing). Odoo keeps 2 digits: what that loses the total check shows.
pub fn discount_percent(discount: Decimal, gross: Decimal) -> Decimal {
    if gross <= Decimal::ZERO || discount <= Decimal::ZERO {
        return Decimal::ZERO;
    }
    (discount / gross * Decimal::ONE_HUNDRED).min(Decimal::ONE_HUNDRED)
}

/// Odoo's total compared with the marketplace's, in the order's currency: `Some(difference)`
/// (Odoo's minus theirs) when they differ by more than the currency's smallest unit.
pub fn totals_differ(odoo: Decimal, theirs: Decimal, currency: &str) -> Option<Decimal> {
    let unit = Decimal::new(1, super::money::exponent(currency));
    let diff = super::money::round(odoo - theirs, currency);
    (diff.abs() > unit).then_some(diff)
}

/// What `check` says of a channel's money settings: the taxes named exist, are sales taxes,
/// and whether each is included in the price; the shipping and discount products exist (and
/// what leaving shipping out does to the totals).
pub async fn findings(
    odoo: &crate::odoo::OdooClient,
    channel: &str,
    currency: &str,
    taxes: &OrderTaxes,
    shipping: Option<Option<i64>>,
    discount: Option<i64>,
) -> Vec<crate::channel::Finding> {
    use crate::channel::Finding;
    let mut out = Vec::new();
    if let Some(f) = price_digits_finding(odoo, channel, currency).await {
        out.push(f);
    }
    let target = format!("{channel}.order_taxes");
    out.push(match taxes {
        OrderTaxes::Product => Finding::new(
            target,
            true,
            "\"product\": the products' own Odoo taxes are added to the marketplace's prices, taken as untaxed (a marketplace whose prices include tax needs a price-included tax named here)",
        ),
        OrderTaxes::None => Finding::new(target, true, "\"none\": imported orders carry no tax"),
        OrderTaxes::Ids(ids) => match odoo
            .read(
                "account.tax",
                ids,
                &["name", "amount", "price_include", "type_tax_use", "active"],
            )
            .await
        {
            Err(crate::odoo::OdooError::AccessError(_)) => Finding::new(
                target,
                false,
                format!(
                    "tax(es) {ids:?} cannot be used in {} (a tax belongs to one company): name that company's taxes",
                    odoo.company_words()
                ),
            ),
            Err(e) => Finding::new(target, false, format!("reading the taxes failed: {e}")),
            Ok(rows) => tax_finding(target, ids, &rows),
        },
    });
    if let Some(shipping) = shipping {
        let target = format!("{channel}.shipping_product_id");
        out.push(match shipping {
            None => Finding::warn(
                target,
                "not set: shipping the customer paid for stays out of the Odoo orders, whose totals are then flagged",
            ),
            Some(id) => product_finding(odoo, target, id, "shipping lines").await,
        });
    }
    if let Some(id) = discount {
        out.push(
            product_finding(
                odoo,
                format!("{channel}.discount_product_id"),
                id,
                "the discount line",
            )
            .await,
        );
    }
    out
}

/// Odoo keeps an order line's unit price to the "Product Price" decimal accuracy (2 digits as
/// shipped): a currency with more (KWD: 3) loses its last digit on a price or a discount line,
/// and the order's total is then flagged. Said when so; nothing when the digits cannot be read.
async fn price_digits_finding(
    odoo: &crate::odoo::OdooClient,
    channel: &str,
    currency: &str,
) -> Option<crate::channel::Finding> {
    let fields = odoo.fields_get("sale.order.line", &["digits"]).await.ok()?;
    let digits = fields
        .get("price_unit")?
        .get("digits")?
        .as_array()?
        .get(1)?
        .as_i64()?;
    let needs = i64::from(super::money::exponent(currency));
    let code = currency.to_ascii_uppercase();
    let target = format!("{channel}.price_digits");
    Some(if digits < needs {
        crate::channel::Finding::warn(
            target,
            format!("Odoo keeps unit prices to {digits} decimals (Decimal Accuracy \"Product Price\") and {code} has {needs}: a price or discount line in smaller units is rounded, and the order's total flagged; raise \"Product Price\" to {needs} (Settings > Technical > Decimal Accuracy)"),
        )
    } else {
        crate::channel::Finding::new(
            target,
            true,
            format!("Odoo keeps unit prices to {digits} decimals, enough for {code}"),
        )
    })
}

fn tax_finding(target: String, ids: &[i64], rows: &[Value]) -> crate::channel::Finding {
    use crate::channel::Finding;
    let text = |r: &Value, k: &str| r.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let missing: Vec<String> = ids
        .iter()
        .filter(|id| {
            !rows
                .iter()
                .any(|r| r.get("id").and_then(Value::as_i64) == Some(**id))
        })
        .map(|id| id.to_string())
        .collect();
    if !missing.is_empty() {
        return Finding::new(
            target,
            false,
            format!(
                "Odoo has no tax {} (or this user cannot read it); name existing sales taxes",
                missing.join(", ")
            ),
        );
    }
    let mut said = Vec::new();
    let mut wrong = Vec::new();
    let mut included = 0;
    for r in rows {
        let id = r.get("id").and_then(Value::as_i64).unwrap_or(0);
        let name = text(r, "name");
        let incl = r.get("price_include").and_then(Value::as_bool) == Some(true);
        included += usize::from(incl);
        if text(r, "type_tax_use") != "sale" {
            wrong.push(format!("tax {id} {name:?} is not a sales tax"));
        }
        if r.get("active").and_then(Value::as_bool) == Some(false) {
            wrong.push(format!("tax {id} {name:?} is archived"));
        }
        said.push(format!(
            "tax {id} {name:?} ({} %, {})",
            r.get("amount").and_then(Value::as_f64).unwrap_or(0.0),
            if incl {
                "included in the price"
            } else {
                "added to the price"
            }
        ));
    }
    if !wrong.is_empty() {
        return Finding::new(
            target,
            false,
            format!("{}; name sales taxes", wrong.join("; ")),
        );
    }
    let how = match included {
        0 => "the marketplace's price is taken as untaxed",
        n if n == rows.len() => "the marketplace's price is the tax-inclusive price",
        _ => {
            return Finding::warn(
                target,
                format!(
                    "{}: some included in the price and some not; prices are given untaxed, so the included ones are taken out of them",
                    said.join(", ")
                ),
            )
        }
    };
    Finding::new(target, true, format!("{}: {how}", said.join(", ")))
}

async fn product_finding(
    odoo: &crate::odoo::OdooClient,
    target: String,
    id: i64,
    what: &str,
) -> crate::channel::Finding {
    use crate::channel::Finding;
    match odoo
        .read(
            "product.product",
            &[id],
            &["display_name", "active", "sale_ok"],
        )
        .await
    {
        Err(e) => Finding::new(target, false, format!("reading product {id} failed: {e}")),
        Ok(rows) => match rows.first() {
            None => Finding::new(
                target,
                false,
                format!("Odoo has no product {id}; name the service product for {what}"),
            ),
            Some(p) if p.get("active").and_then(Value::as_bool) == Some(false) => Finding::new(
                target,
                false,
                format!("product {id} is archived; {what} need an active product"),
            ),
            Some(p) => Finding::new(
                target,
                true,
                format!(
                    "{what}: product {id} {:?}",
                    p.get("display_name").and_then(Value::as_str).unwrap_or("")
                ),
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn order_taxes_read_as_a_word_or_a_list_of_ids_and_refuse_anything_else() {
        #[derive(Deserialize)]
        struct T {
            order_taxes: OrderTaxes,
        }
        let read = |s: &str| toml::from_str::<T>(s).map(|t| t.order_taxes);
        assert_eq!(
            read("order_taxes = \"product\"").unwrap(),
            OrderTaxes::Product
        );
        assert_eq!(read("order_taxes = \"none\"").unwrap(), OrderTaxes::None);
        assert_eq!(
            read("order_taxes = [3, 4]").unwrap(),
            OrderTaxes::Ids(vec![3, 4])
        );
        for bad in [
            "order_taxes = \"vat\"",
            "order_taxes = []",
            "order_taxes = [0]",
            "order_taxes = 5",
        ] {
            let e = read(bad).unwrap_err().to_string();
            assert!(
                e.contains("\"none\"") || e.contains("positive"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn prices_go_on_the_basis_the_taxes_want() {
        let t = |taxes| Terms {
            taxes,
            line_taxes: "tax_id",
            ..Default::default()
        };
        assert_eq!(t(OrderTaxes::Product).basis(None), Basis::Net);
        assert_eq!(t(OrderTaxes::None).basis(None), Basis::Gross);
        assert_eq!(t(OrderTaxes::Ids(vec![3])).basis(Some(true)), Basis::Gross);
        assert_eq!(t(OrderTaxes::Ids(vec![1])).basis(Some(false)), Basis::Net);
        assert!(t(OrderTaxes::Product).tax_command().is_none());
        let (field, v) = t(OrderTaxes::Ids(vec![3])).tax_command().unwrap();
        assert_eq!(field, "tax_id");
        assert_eq!(v, Value::from(serde_json::json!([[6, 0, [3]]])));
        // A 5 % tax-inclusive 32.75 is 31.19... untaxed; a 10.00 untaxed at 15 % is 11.50.
        let net = on_basis(d("32.75"), true, d("5"), Basis::Net);
        assert_eq!(net.round_dp(4), d("31.1905"));
        assert_eq!(on_basis(d("10"), false, d("15"), Basis::Gross), d("11.50"));
        assert_eq!(on_basis(d("10"), false, d("15"), Basis::Net), d("10"));
        assert_eq!(discount_percent(d("6.55"), d("65.5")), d("10"));
    }

    #[test]
    fn totals_differ_beyond_the_currency_s_smallest_unit_only() {
        assert_eq!(totals_differ(d("90.15"), d("90.15"), "kwd"), None);
        assert_eq!(
            totals_differ(d("90.151"), d("90.15"), "kwd"),
            None,
            "one fils"
        );
        assert_eq!(totals_differ(d("78.2"), d("69.5"), "kwd"), Some(d("8.700")));
        assert_eq!(totals_differ(d("3085.51"), d("3085.50"), "egp"), None);
        assert_eq!(
            totals_differ(d("3548.33"), d("3085.50"), "egp"),
            Some(d("462.83"))
        );
    }

    #[test]
    fn check_names_a_missing_a_wrong_and_a_mixed_tax() {
        let tax = |id: i64, name: &str, incl: bool, used: &str| {
            Value::from(serde_json::json!({"id": id, "name": name, "amount": 5.0,
                "price_include": incl, "type_tax_use": used, "active": true}))
        };
        let f = tax_finding(
            "medusa.order_taxes".into(),
            &[3, 4],
            &[tax(3, "VAT", true, "sale")],
        );
        assert!(!f.ok && f.detail.contains("no tax 4"), "{}", f.detail);
        let f = tax_finding(
            "t".into(),
            &[3],
            &[tax(3, "Purchase VAT", false, "purchase")],
        );
        assert!(
            !f.ok && f.detail.contains("not a sales tax"),
            "{}",
            f.detail
        );
        let f = tax_finding(
            "t".into(),
            &[3, 4],
            &[tax(3, "VAT", true, "sale"), tax(4, "Levy", false, "sale")],
        );
        assert!(f.ok && f.warning, "{}", f.detail);
        let f = tax_finding("t".into(), &[1], &[tax(1, "15%", false, "sale")]);
        assert!(
            f.ok && !f.warning && f.detail.contains("taken as untaxed"),
            "{}",
            f.detail
        );
    }
}
