//! Meta's Graph API as the catalog channel speaks it: item fields, the error envelope and
//! the usage headers (API-NOTES §3). Pure functions, no I/O.

use crate::retry::RetryClass;
use crate::sync::money;
use rust_decimal::Decimal;
use serde::Deserialize;
use std::time::Duration;

/// An item's `price` (or `sale_price`): the amount with the currency's exponent, a space, the
/// ISO 4217 code: `"12.900 KWD"`, `"20.00 EGP"`.
pub fn price(amount: Decimal, currency: &str) -> String {
    let code = currency.to_ascii_uppercase();
    let digits = money::exponent(&code);
    let mut rounded = money::round(amount, &code);
    rounded.rescale(digits);
    format!("{rounded} {code}")
}

/// The barcode as a `gtin` when it is a valid GTIN-8, -12, -13 or -14 (digits, right length,
/// check digit); anything else is sent as no GTIN rather than one Meta would refuse.
pub fn gtin(barcode: &str) -> Option<String> {
    let code = barcode.trim();
    if !matches!(code.len(), 8 | 12 | 13 | 14) || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits: Vec<u32> = code.bytes().map(|b| u32::from(b - b'0')).collect();
    let (body, check) = digits.split_at(digits.len() - 1);
    // From the right of the body: weights 3, 1, 3, ...
    let sum: u32 = body
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| if i % 2 == 0 { d * 3 } else { *d })
        .sum();
    ((10 - sum % 10) % 10 == check[0]).then(|| code.to_string())
}

/// `availability` of an item from the stock it may sell.
pub fn availability(sellable_stock: i64) -> &'static str {
    if sellable_stock > 0 {
        "in stock"
    } else {
        "out of stock"
    }
}

/// Meta's variant fields: an item of an `item_group_id` shows its variant by these.
pub const VARIANT_FIELDS: [&str; 6] = [
    "color",
    "size",
    "pattern",
    "material",
    "gender",
    "age_group",
];

/// What an Odoo attribute called `name` is in Meta, by default: one of [`VARIANT_FIELDS`]
/// for the usual English and Arabic names, else `None` (it goes in
/// `additional_variant_attribute`).
pub fn default_variant_field(name: &str) -> Option<&'static str> {
    let n = name.trim().to_lowercase();
    let field = match n.as_str() {
        "color" | "colour" | "colors" | "colours" | "لون" | "اللون" | "الألوان" => {
            "color"
        }
        "size" | "sizes" | "مقاس" | "المقاس" | "المقاسات" | "حجم" | "الحجم" => {
            "size"
        }
        "pattern" | "print" | "نقشة" | "النقشة" => "pattern",
        "material" | "fabric" | "خامة" | "الخامة" | "المادة" => "material",
        "gender" | "الجنس" => "gender",
        "age group" | "age_group" | "الفئة العمرية" => "age_group",
        _ => return None,
    };
    Some(field)
}

/// The variant's attribute values as item fields: each attribute named in `fields` (Odoo
/// attribute name in lower case -> Meta field) or known to [`default_variant_field`] becomes
/// that field; the rest go in `additional_variant_attribute` as `"Name:Value,Name:Value"`
/// (a comma or colon inside a name or value would break that list: it becomes a space).
/// Attributes are taken in the order given; a field already filled keeps its first value.
pub fn variant_fields(
    values: &[(String, String)],
    fields: &std::collections::BTreeMap<String, String>,
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut more: Vec<String> = Vec::new();
    let clean = |s: &str| s.replace([',', ':'], " ").trim().to_string();
    for (attribute, value) in values {
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        let field = fields
            .get(&attribute.trim().to_lowercase())
            .map(String::as_str)
            .or_else(|| default_variant_field(attribute));
        match field {
            Some(f) if f != ADDITIONAL => {
                if !out.iter().any(|(k, _)| k == f) {
                    out.push((f.to_string(), value.to_string()));
                }
            }
            _ => more.push(format!("{}:{}", clean(attribute), clean(value))),
        }
    }
    if !more.is_empty() {
        out.push(("additional_variant_attribute".into(), more.join(",")));
    }
    out
}

/// The setting that sends an attribute in `additional_variant_attribute`.
pub const ADDITIONAL: &str = "additional";

/// Graph's error envelope: `{"error":{"message","type","code","error_subcode","fbtrace_id"}}`.
#[derive(Debug, Clone, Deserialize)]
pub struct GraphError {
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub code: i64,
    #[serde(default)]
    pub error_subcode: Option<i64>,
    #[serde(default)]
    pub fbtrace_id: Option<String>,
}

#[derive(Deserialize)]
struct Envelope {
    error: GraphError,
}

impl GraphError {
    /// The error of an answer's body, if it is Graph's envelope.
    pub fn of(body: &[u8]) -> Option<GraphError> {
        serde_json::from_slice::<Envelope>(body)
            .ok()
            .map(|e| e.error)
    }
}

/// The rate-limit codes: app (4), user (17), pages (32), custom (613), ads management (80004),
/// catalog management (80009), catalog batch (80014).
pub const THROTTLE_CODES: [i64; 7] = [4, 17, 32, 613, 80004, 80009, 80014];
/// The access token is invalid or expired.
pub const TOKEN_INVALID: i64 = 190;
/// "Please reduce the amount of data you're asking for": the batch is too big.
pub const TOO_MUCH_DATA: i64 = 1;

/// What the channel does about a Graph error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reaction {
    /// Wait this long (the usage header's `estimated_time_to_regain_access`, else a minute),
    /// spending no attempt.
    Throttled(Duration),
    /// The token is refused: the channel stops until the operator gives a new one.
    TokenRefused,
    /// Halve the batch and go on.
    Smaller,
    /// Anything else: the class its HTTP status implies.
    Other(RetryClass),
}

/// The reaction to a Graph error that came with `status`, given the usage headers' regain time.
pub fn react(e: &GraphError, status: u16, regain: Option<Duration>) -> Reaction {
    if THROTTLE_CODES.contains(&e.code) {
        Reaction::Throttled(regain.unwrap_or(Duration::from_secs(60)))
    } else if e.code == TOKEN_INVALID {
        Reaction::TokenRefused
    } else if e.code == TOO_MUCH_DATA {
        Reaction::Smaller
    } else {
        Reaction::Other(RetryClass::from_status(status, None).unwrap_or(RetryClass::Permanent))
    }
}

/// The longest regain time taken from a usage header, in minutes.
pub const MAX_REGAIN_MINUTES: u64 = 24 * 60;

/// What `X-App-Usage` and `X-Business-Use-Case-Usage` say: the highest percentage of any
/// quota, and the longest time to regain access.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    pub percent: u32,
    pub regain: Option<Duration>,
}

impl Usage {
    /// Reads both headers (either may be absent or malformed: then it says nothing).
    pub fn of(app: Option<&str>, business: Option<&str>) -> Usage {
        let mut u = Usage::default();
        let percents = |v: &serde_json::Value, u: &mut Usage| {
            for k in ["call_count", "total_time", "total_cputime"] {
                if let Some(p) = v.get(k).and_then(serde_json::Value::as_u64) {
                    u.percent = u.percent.max(p.min(1000) as u32);
                }
            }
            if let Some(m) = v
                .get("estimated_time_to_regain_access")
                .and_then(serde_json::Value::as_u64)
                .filter(|m| *m > 0)
            {
                // A day at most: a malformed or hostile value must not park jobs for weeks.
                let d = Duration::from_secs(m.min(MAX_REGAIN_MINUTES) * 60);
                u.regain = Some(u.regain.map_or(d, |r| r.max(d)));
            }
        };
        if let Some(v) = app.and_then(|a| serde_json::from_str::<serde_json::Value>(a).ok()) {
            percents(&v, &mut u);
        }
        if let Some(serde_json::Value::Object(by_id)) =
            business.and_then(|b| serde_json::from_str::<serde_json::Value>(b).ok())
        {
            for entries in by_id.values() {
                for e in entries.as_array().into_iter().flatten() {
                    percents(e, &mut u);
                }
            }
        }
        u
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn variant_values_become_meta_s_fields() {
        let v = |a: &str, b: &str| (a.to_string(), b.to_string());
        let none = std::collections::BTreeMap::new();
        assert_eq!(
            variant_fields(
                &[v("Color", "Red"), v("المقاس", "XL"), v("Legs", "Steel")],
                &none
            ),
            vec![
                v("color", "Red"),
                v("size", "XL"),
                v("additional_variant_attribute", "Legs:Steel")
            ]
        );
        let mut map = std::collections::BTreeMap::new();
        map.insert("couleur".to_string(), "color".to_string());
        map.insert("size".to_string(), ADDITIONAL.to_string());
        assert_eq!(
            variant_fields(
                &[
                    v("Couleur", "Bleu"),
                    v("Size", "L"),
                    v("Scent", "Oud, dark: strong"),
                    v("Color", "x"),
                    v("Empty", " ")
                ],
                &map
            ),
            vec![
                v("color", "Bleu"),
                v(
                    "additional_variant_attribute",
                    "Size:L,Scent:Oud  dark  strong"
                )
            ]
        );
        assert!(variant_fields(&[], &none).is_empty());
    }

    #[test]
    fn prices_carry_the_currency_exponent() {
        let d = |s| Decimal::from_str(s).unwrap();
        assert_eq!(price(d("12.9"), "KWD"), "12.900 KWD");
        assert_eq!(price(d("20"), "egp"), "20.00 EGP");
        assert_eq!(price(d("9.995"), "USD"), "10.00 USD");
        assert_eq!(price(d("1500"), "JPY"), "1500 JPY");
    }

    #[test]
    fn only_valid_gtins_go_out() {
        assert_eq!(gtin("4006381333931").as_deref(), Some("4006381333931"));
        assert_eq!(gtin("036000291452").as_deref(), Some("036000291452"));
        assert_eq!(gtin("96385074").as_deref(), Some("96385074"));
        assert_eq!(gtin("4006381333932"), None, "wrong check digit");
        assert_eq!(gtin("40063813339"), None, "wrong length");
        assert_eq!(gtin("SKU-4006381"), None);
        assert_eq!(gtin(""), None);
    }

    #[test]
    fn availability_follows_stock() {
        assert_eq!(availability(3), "in stock");
        assert_eq!(availability(0), "out of stock");
        assert_eq!(availability(-2), "out of stock");
    }

    #[test]
    fn graph_errors_are_told_apart() {
        let body = br#"{"error":{"message":"(#80014) There have been too many calls","type":"OAuthException","code":80014,"fbtrace_id":"A1"}}"#;
        let e = GraphError::of(body).unwrap();
        let regain = Some(Duration::from_secs(19 * 60));
        assert_eq!(
            react(&e, 400, regain),
            Reaction::Throttled(Duration::from_secs(19 * 60))
        );
        let expired = GraphError::of(br#"{"error":{"message":"Error validating access token: Session has expired","code":190,"error_subcode":463}}"#).unwrap();
        assert_eq!(react(&expired, 400, None), Reaction::TokenRefused);
        let big = GraphError::of(br#"{"error":{"message":"Please reduce the amount of data you're asking for, then retry your request","code":1}}"#).unwrap();
        assert_eq!(react(&big, 500, None), Reaction::Smaller);
        let other =
            GraphError::of(br#"{"error":{"message":"Invalid parameter","code":100}}"#).unwrap();
        assert_eq!(
            react(&other, 400, None),
            Reaction::Other(RetryClass::Permanent)
        );
        assert!(GraphError::of(b"<html>bad gateway</html>").is_none());
    }

    #[test]
    fn usage_headers_give_the_highest_share_and_the_longest_wait() {
        let u = Usage::of(
            Some(r#"{"call_count":28,"total_time":25,"total_cputime":25}"#),
            Some(
                r#"{"1234":[{"type":"catalog_batch","call_count":95,"total_cputime":20,"total_time":20,"estimated_time_to_regain_access":19},{"type":"catalog_management","call_count":10,"estimated_time_to_regain_access":0}]}"#,
            ),
        );
        assert_eq!(u.percent, 95);
        assert_eq!(u.regain, Some(Duration::from_secs(19 * 60)));
        let absurd = Usage::of(Some(r#"{"estimated_time_to_regain_access":9999999}"#), None);
        assert_eq!(absurd.regain, Some(Duration::from_secs(24 * 3600)));
        assert_eq!(Usage::of(Some("not json"), None), Usage::default());
        assert_eq!(Usage::of(None, None), Usage::default());
    }
}
