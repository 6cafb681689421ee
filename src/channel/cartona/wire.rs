//! Cartona's JSON, as the real supplier-integrations API sends and accepts it (see
//! fixtures/cartona/): ids that may be numbers or strings, prices in EGP major units as numbers
//! or strings, nulls where a field is unset. Parsing is lenient about representation and strict
//! about meaning: an order without lines or with a negative price is refused with the reason.

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize};

/// A string id that Cartona may send as a number.
fn de_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Ok(s),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        other => Err(serde::de::Error::custom(format!(
            "expected a string or number id, found {other}"
        ))),
    }
}

fn de_opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) if s.is_empty() => None,
        serde_json::Value::String(s) => Some(s),
        serde_json::Value::Number(n) => Some(n.to_string()),
        other => {
            return Err(serde::de::Error::custom(format!(
                "expected a string, found {other}"
            )))
        }
    })
}

pub use crate::channel::kit::decimal_of;

fn de_decimal<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    decimal_of(&v).ok_or_else(|| serde::de::Error::custom(format!("expected a number, found {v}")))
}

fn de_opt_decimal<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    if v.is_null() {
        return Ok(None);
    }
    decimal_of(&v)
        .map(Some)
        .ok_or_else(|| serde::de::Error::custom(format!("expected a number, found {v}")))
}

/// An order as `order/pull-orders` returns it.
#[derive(Debug, Clone, Deserialize)]
pub struct Order {
    #[serde(deserialize_with = "de_string")]
    pub hashed_id: String,
    pub status: String,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub delivered_by: Option<String>,
    #[serde(default, deserialize_with = "de_opt_decimal")]
    pub total_price: Option<Decimal>,
    #[serde(default, deserialize_with = "de_opt_decimal")]
    pub installment_cost: Option<Decimal>,
    #[serde(default, deserialize_with = "de_opt_decimal")]
    pub wallet_top_up: Option<Decimal>,
    #[serde(default, deserialize_with = "de_opt_decimal")]
    pub cartona_credit: Option<Decimal>,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub receipt_id: Option<String>,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub note_message: Option<String>,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub estimated_delivery_day: Option<String>,
    pub retailer: Retailer,
    pub order_details: Vec<Detail>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Retailer {
    pub retailer_name: String,
    #[serde(deserialize_with = "de_string")]
    pub retailer_code: String,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub retailer_number: Option<String>,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub retailer_number2: Option<String>,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub retailer_address: Option<String>,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub address_notes: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Detail {
    #[serde(default, deserialize_with = "de_opt_string")]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub supplier_product_id: Option<String>,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub internal_product_id: Option<String>,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub product_name: Option<String>,
    #[serde(deserialize_with = "de_decimal")]
    pub amount: Decimal,
    #[serde(deserialize_with = "de_decimal")]
    pub selling_price: Decimal,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub comment: Option<String>,
}

impl Order {
    /// Parses and checks an order; the error says what is wrong with which order.
    pub fn parse(raw: &serde_json::Value) -> Result<Order, crate::error::Error> {
        let id = raw
            .get("hashed_id")
            .map(|v| v.to_string())
            .unwrap_or_else(|| "(no hashed_id)".into());
        let order: Order = serde_json::from_value(raw.clone()).map_err(|e| {
            crate::error::Error::unreadable(
                "Cartona",
                format!("Cartona order {id} is malformed: {e}"),
            )
        })?;
        if order.hashed_id.trim().is_empty() {
            return Err(crate::error::Error::unreadable(
                "Cartona",
                "a Cartona order has an empty hashed_id",
            ));
        }
        if order.order_details.is_empty() {
            return Err(crate::error::Error::invalid(format!(
                "Cartona order {} has no lines",
                order.hashed_id
            )));
        }
        for line in &order.order_details {
            if line.amount <= Decimal::ZERO || line.selling_price < Decimal::ZERO {
                return Err(crate::error::Error::invalid(format!(
                    "Cartona order {} has a line with amount {} and price {}: amounts must be positive and prices not negative",
                    order.hashed_id, line.amount, line.selling_price
                )));
            }
            if line.supplier_product_id.is_none() && line.internal_product_id.is_none() {
                return Err(crate::error::Error::invalid(format!("Cartona order {} has a line without supplier_product_id or internal_product_id", order.hashed_id)));
            }
        }
        Ok(order)
    }

    /// Installment and wallet-top-up orders need the retailer's OTP to be marked delivered.
    pub fn needs_otp(&self) -> bool {
        [self.installment_cost, self.wallet_top_up]
            .iter()
            .any(|v| v.is_some_and(|d| d > Decimal::ZERO))
    }

    pub fn delivered_by_cartona(&self) -> bool {
        self.delivered_by.as_deref() == Some("delivered_by_cartona")
    }
}

/// A row of `GET supplier-product`.
#[derive(Debug, Clone, Deserialize)]
pub struct SupplierProduct {
    #[serde(deserialize_with = "de_string")]
    pub id: String,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub internal_product_id: Option<String>,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub barcode: Option<String>,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub product_name: Option<String>,
    /// What the listing shows, where Cartona's row carries it (`diff` compares only what is
    /// shown): the price as a string or a number.
    #[serde(default, deserialize_with = "de_opt_string")]
    pub selling_price: Option<String>,
    #[serde(default)]
    pub available_stock_quantity: Option<i64>,
    #[serde(default)]
    pub is_published: Option<bool>,
}

/// One item of `POST supplier-product/bulk-update`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ProductUpdate {
    pub supplier_product_id: String,
    /// EGP, major units, as a string with two decimals.
    pub selling_price: String,
    pub available_stock_quantity: i64,
    pub in_stock: bool,
    pub is_published: bool,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub min_order: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub max_order: Option<u32>,
}

impl ProductUpdate {
    /// What the mapping records as sent: the FNV-1a hash of the item's JSON with its keys in
    /// alphabetical order (the form every marketsync so far has hashed, so an upgrade does not
    /// resend the catalog).
    pub fn hash(&self) -> String {
        #[derive(Serialize)]
        struct Sorted<'a> {
            available_stock_quantity: i64,
            in_stock: bool,
            is_published: bool,
            #[serde(skip_serializing_if = "Option::is_none")]
            max_order: Option<u32>,
            #[serde(skip_serializing_if = "Option::is_none")]
            min_order: Option<u32>,
            selling_price: &'a str,
            supplier_product_id: &'a str,
        }
        let text = serde_json::to_string(&Sorted {
            available_stock_quantity: self.available_stock_quantity,
            in_stock: self.in_stock,
            is_published: self.is_published,
            max_order: self.max_order,
            min_order: self.min_order,
            selling_price: &self.selling_price,
            supplier_product_id: &self.supplier_product_id,
        })
        .unwrap_or_default();
        super::fnv(&text)
    }
}

/// One item of `POST order/update-order-status` (or the body of the single-order endpoint).
/// One change of an order's lines as `order/edit-order` takes it (seed 006): a line's new
/// amount, a line cancelled, or a product added. Read back from a queued job in the same shape.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum LineEdit {
    Add {
        supplier_product_id: String,
        amount: i64,
        price: String,
    },
    Cancel {
        id: LineId,
        cancelled: bool,
    },
    Amount {
        id: LineId,
        amount: i64,
    },
}

/// A line's id as Cartona sent it: numbers stay numbers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum LineId {
    Number(i64),
    Text(String),
    Missing,
}

impl LineId {
    pub fn of(id: Option<&str>) -> Self {
        match id {
            Some(s) => s
                .parse::<i64>()
                .map(LineId::Number)
                .unwrap_or_else(|_| LineId::Text(s.to_string())),
            None => LineId::Missing,
        }
    }
}

/// The head of a pulled order: what marketsync reads before keeping the order as it came.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct OrderHead {
    pub hashed_id: Option<serde_json::Value>,
    pub status: Option<serde_json::Value>,
}

impl OrderHead {
    pub fn of(raw: &serde_json::Value) -> Self {
        OrderHead::deserialize(raw).unwrap_or_default()
    }

    /// Its hashed_id as a usable key: a non-empty string, or a number.
    pub fn id(&self) -> Option<String> {
        match &self.hashed_id {
            Some(serde_json::Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(serde_json::Value::Number(n)) => Some(n.to_string()),
            _ => None,
        }
    }

    pub fn status(&self) -> &str {
        self.status.as_ref().and_then(|s| s.as_str()).unwrap_or("?")
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StatusUpdate {
    pub hashed_id: String,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cancellation_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub retailer_otp: Option<String>,
}

#[cfg(test)]
mod tests {
    #[test]
    fn hash_is_the_one_of_the_sorted_json_value() {
        for (min, max) in [(None, None), (Some(2), None), (Some(1), Some(50))] {
            let u = super::ProductUpdate {
                supplier_product_id: "SKU \"quoted\" é".into(),
                selling_price: "12.50".into(),
                available_stock_quantity: -3,
                in_stock: false,
                is_published: true,
                min_order: min,
                max_order: max,
            };
            let value = serde_json::to_value(&u).unwrap().to_string();
            assert_eq!(u.hash(), super::super::fnv(&value), "{value}");
        }
    }

    use super::*;

    fn fixture(name: &str) -> serde_json::Value {
        let path = format!("{}/fixtures/cartona/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn the_documented_order_parses() {
        let o = Order::parse(&fixture("order-documented.json")).unwrap();
        assert_eq!(o.hashed_id, "GMNvpbLM");
        assert_eq!(o.retailer.retailer_name, "حياه ماركت");
        assert_eq!(o.total_price, Some(Decimal::from(3040)));
        assert!(o.needs_otp() && o.delivered_by_cartona());
        assert_eq!(
            o.order_details[0].supplier_product_id.as_deref(),
            Some("110774")
        );
    }

    #[test]
    fn bad_orders_are_refused_with_the_reason() {
        let mut raw = fixture("order-documented.json");
        raw["order_details"] = serde_json::json!([]);
        assert_eq!(
            Order::parse(&raw).unwrap_err().to_string(),
            "Cartona order GMNvpbLM has no lines"
        );
        let mut raw = fixture("order-documented.json");
        raw["order_details"][0]["selling_price"] = serde_json::json!("abc");
        assert!(Order::parse(&raw)
            .unwrap_err()
            .to_string()
            .starts_with("Cartona order \"GMNvpbLM\" is malformed"));
        assert!(Order::parse(&serde_json::json!("not an order")).is_err());
    }
}

/// A listing as Cartona answers it: the rows themselves, or `{"data": [...]}`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Listing {
    Rows(Vec<serde_json::Value>),
    Wrapped { data: Vec<serde_json::Value> },
}

impl Listing {
    pub fn rows(self) -> Vec<serde_json::Value> {
        match self {
            Listing::Rows(r) | Listing::Wrapped { data: r } => r,
        }
    }
}
