//! WhatsApp Cloud API formats (API-NOTES §3), as pure functions: phone numbers to E.164, the
//! template message body, the error codes and what each means for a message, and the status
//! webhook's entries.

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde_json::{json, Value};

/// A country marketsync knows how to write numbers of: its calling code and how many digits
/// its national (significant) numbers have.
struct Country {
    iso: &'static str,
    code: &'static str,
    digits: &'static [usize],
}

impl Country {
    /// "8", "9 or 10": how many digits its national numbers have.
    fn lengths(&self) -> String {
        let d: Vec<String> = self.digits.iter().map(|d| d.to_string()).collect();
        d.join(" or ")
    }
}

/// The countries of the supplier's markets and their neighbours. A number of another country
/// is taken when written internationally (`+`, `00`) with 8 to 15 digits.
const COUNTRIES: &[Country] = &[
    Country {
        iso: "EG",
        code: "20",
        digits: &[9, 10],
    },
    Country {
        iso: "KW",
        code: "965",
        digits: &[8],
    },
    Country {
        iso: "MR",
        code: "222",
        digits: &[8],
    },
    Country {
        iso: "SA",
        code: "966",
        digits: &[9],
    },
    Country {
        iso: "AE",
        code: "971",
        digits: &[8, 9],
    },
    Country {
        iso: "QA",
        code: "974",
        digits: &[8],
    },
    Country {
        iso: "BH",
        code: "973",
        digits: &[8],
    },
    Country {
        iso: "OM",
        code: "968",
        digits: &[8],
    },
    Country {
        iso: "JO",
        code: "962",
        digits: &[8, 9],
    },
    Country {
        iso: "MA",
        code: "212",
        digits: &[9],
    },
    Country {
        iso: "SN",
        code: "221",
        digits: &[9],
    },
];

/// The countries `default_country` may name.
pub fn known_countries() -> Vec<&'static str> {
    COUNTRIES.iter().map(|c| c.iso).collect()
}

fn country(iso: &str) -> Option<&'static Country> {
    COUNTRIES.iter().find(|c| c.iso.eq_ignore_ascii_case(iso))
}

/// A phone number as Odoo holds it, in E.164 (`+96555123456`): spaces, dashes, dots and
/// brackets dropped, Arabic-Indic and Persian digits read as digits, a leading `00` or `+`
/// international, a leading `0` (or a bare national number) in `default_country`. The error
/// says why it cannot be one.
pub fn e164(raw: &str, default_country: &str) -> Result<String, String> {
    let home = country(default_country)
        .ok_or_else(|| format!("default_country {default_country:?} is not known"))?;
    let mut digits = String::new();
    let mut plus = false;
    for (i, ch) in raw.trim().chars().enumerate() {
        let d = match ch {
            '0'..='9' => Some(ch),
            '\u{0660}'..='\u{0669}' => char::from_digit(ch as u32 - 0x0660, 10),
            '\u{06F0}'..='\u{06F9}' => char::from_digit(ch as u32 - 0x06F0, 10),
            _ => None,
        };
        match (d, ch) {
            (Some(d), _) => digits.push(d),
            (None, '+') if i == 0 || digits.is_empty() => plus = true,
            (None, ' ' | '-' | '.' | '(' | ')' | '/' | '\u{00A0}' | '\u{200E}' | '\u{200F}') => {}
            _ => return Err(format!("{raw:?} has {ch:?} in it: not a phone number")),
        }
    }
    if digits.is_empty() {
        return Err("no phone number".into());
    }
    let international = if plus {
        digits
    } else if let Some(rest) = digits.strip_prefix("00") {
        rest.to_string()
    } else if let Some(rest) = digits.strip_prefix('0') {
        national(home, rest, raw)?
    } else if digits.len() <= home.digits.iter().copied().max().unwrap_or(0) {
        // Short enough to be only a national number: this country's, or none.
        national(home, &digits, raw)?
    } else {
        digits
    };
    if !(8..=15).contains(&international.len()) {
        return Err(format!(
            "{raw:?} has {} digits with its country code; a phone number has 8 to 15",
            international.len()
        ));
    }
    if let Some(c) = COUNTRIES.iter().find(|c| international.starts_with(c.code)) {
        let rest = international.len() - c.code.len();
        if !c.digits.contains(&rest) {
            return Err(format!(
                "{raw:?} is not a {} number: +{} numbers have {} digits after the country code, it has {rest}",
                c.iso,
                c.code,
                c.lengths()
            ));
        }
    }
    Ok(format!("+{international}"))
}

fn national(home: &Country, rest: &str, raw: &str) -> Result<String, String> {
    if !home.digits.contains(&rest.len()) {
        return Err(format!(
            "{raw:?} is not a {} number ({} digits after the leading 0 or country code; {} expected)",
            home.iso,
            rest.len(),
            home.lengths()
        ));
    }
    Ok(format!("{}{rest}", home.code))
}

/// One template parameter's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Text(String),
    /// An amount: `fallback_value` as the customer reads it, `amount_1000` the amount × 1000.
    Currency {
        amount: Decimal,
        code: String,
    },
}

/// The `amount_1000` of an amount (× 1000, rounded half away from zero).
pub fn amount_1000(amount: Decimal) -> i64 {
    (amount * Decimal::from(1000))
        .round_dp_with_strategy(0, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
        .to_i64()
        .unwrap_or(0)
}

fn param_json(p: &Param) -> Value {
    match p {
        Param::Text(t) => json!({"type": "text", "text": t}),
        Param::Currency { amount, code } => json!({"type": "currency", "currency": {
            "fallback_value": crate::channel::meta::wire::price(*amount, code),
            "code": code,
            "amount_1000": amount_1000(*amount),
        }}),
    }
}

/// The body of `POST /{phone_number_id}/messages`: a template message to `to` (E.164), with
/// its body parameters and one URL button's (index 0) parameters; `callback` comes back in
/// every status webhook of the message (`biz_opaque_callback_data`), which is how a message
/// whose answer was lost is found again.
pub fn template_message(
    to: &str,
    template: &str,
    language: &str,
    body: &[Param],
    button: &[Param],
    callback: &str,
) -> Value {
    let mut components = Vec::new();
    if !body.is_empty() {
        components.push(json!({"type": "body",
            "parameters": body.iter().map(param_json).collect::<Vec<_>>()}));
    }
    if !button.is_empty() {
        components.push(json!({"type": "button", "sub_type": "url", "index": "0",
            "parameters": button.iter().map(param_json).collect::<Vec<_>>()}));
    }
    json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to.trim_start_matches('+'),
        "type": "template",
        "biz_opaque_callback_data": callback,
        "template": {
            "name": template,
            "language": {"code": language, "policy": "deterministic"},
            "components": components,
        }
    })
}

/// The `wamid` of an accepted send (`{"messages":[{"id":"wamid..."}]}`).
pub fn accepted_id(answer: &Value) -> Option<String> {
    answer["messages"][0]["id"].as_str().map(str::to_string)
}

/// Template does not exist in that language.
pub const TEMPLATE_MISSING: i64 = 132001;
/// Parameters do not match the template.
pub const PARAMS_MISMATCH: i64 = 132000;
/// The number is not on WhatsApp, or cannot be reached.
pub const UNDELIVERABLE: i64 = 131026;
pub const TOKEN_INVALID: i64 = 190;
/// Throughput (130429), pair rate (131056) and the business use case's (80007) limits.
pub const RATE_CODES: [i64; 3] = [130429, 131056, 80007];

/// What a Graph error means for one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// No such template in that language: the next of the fallback chain.
    TemplateMissing,
    /// The parameters do not fit the template: dead, with the reason.
    Params,
    /// The number is not on WhatsApp: dead, and the number is not tried again.
    Undeliverable,
    /// Over a limit: wait, without spending attempts.
    RateLimited,
    /// The token is refused: the channel stops.
    Token,
    /// Anything else, by HTTP status (4xx refused, 5xx again).
    Other,
}

pub fn failure(code: i64) -> Failure {
    match code {
        TEMPLATE_MISSING => Failure::TemplateMissing,
        PARAMS_MISMATCH => Failure::Params,
        UNDELIVERABLE => Failure::Undeliverable,
        TOKEN_INVALID => Failure::Token,
        c if RATE_CODES.contains(&c) => Failure::RateLimited,
        _ => Failure::Other,
    }
}

/// One message status of a webhook (`entry[].changes[].value.statuses[]`).
#[derive(Debug, Clone, PartialEq)]
pub struct StatusUpdate {
    pub wamid: String,
    /// sent, delivered, read or failed.
    pub status: String,
    pub at: Option<i64>,
    /// The `biz_opaque_callback_data` the message was sent with.
    pub callback: Option<String>,
    /// A failed status's first error: code and title.
    pub error: Option<(i64, String)>,
}

/// A customer's own message (its text is not kept).
#[derive(Debug, Clone, PartialEq)]
pub struct InboundMessage {
    pub id: String,
    /// The sender's number, digits only as WhatsApp writes it.
    pub from: String,
}

/// The statuses and the inbound customer messages of a webhook body (`object` =
/// `whatsapp_business_account`). Anything else is an error naming what is wrong.
pub fn webhook_entries(body: &Value) -> Result<(Vec<StatusUpdate>, Vec<InboundMessage>), String> {
    if body["object"] != "whatsapp_business_account" {
        return Err("not a WhatsApp Business Account webhook (object)".into());
    }
    let entries = body["entry"]
        .as_array()
        .ok_or("a WhatsApp webhook without entry[]")?;
    let mut statuses = Vec::new();
    let mut inbound = Vec::new();
    for change in entries
        .iter()
        .flat_map(|e| e["changes"].as_array().into_iter().flatten())
    {
        let value = &change["value"];
        for m in value["messages"].as_array().into_iter().flatten() {
            inbound.push(InboundMessage {
                id: m["id"].as_str().unwrap_or("").to_string(),
                from: m["from"].as_str().unwrap_or("").to_string(),
            });
        }
        for s in value["statuses"].as_array().into_iter().flatten() {
            let wamid = s["id"].as_str().ok_or("a status without id")?;
            let status = s["status"].as_str().ok_or("a status without status")?;
            if !["sent", "delivered", "read", "failed"].contains(&status) {
                return Err(format!("unknown message status {status:?}"));
            }
            let error = s["errors"][0].as_object().map(|e| {
                (
                    e.get("code").and_then(Value::as_i64).unwrap_or(0),
                    e.get("title")
                        .or_else(|| e.get("message"))
                        .and_then(Value::as_str)
                        .unwrap_or("failed")
                        .to_string(),
                )
            });
            statuses.push(StatusUpdate {
                wamid: wamid.to_string(),
                status: status.to_string(),
                at: s["timestamp"]
                    .as_str()
                    .and_then(|t| t.parse::<i64>().ok())
                    .or_else(|| s["timestamp"].as_i64()),
                callback: s["biz_opaque_callback_data"].as_str().map(str::to_string),
                error,
            });
        }
    }
    Ok((statuses, inbound))
}

/// How far a status goes: a later webhook never takes a message back (read after delivered,
/// and a delivered that arrives after read, stay read).
pub fn rank(status: &str) -> u8 {
    match status {
        "sending" | "unconfirmed" => 1,
        "accepted" => 2,
        "sent" => 3,
        "delivered" => 4,
        "read" => 5,
        "failed" => 6,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn numbers_are_written_in_e164_from_what_customers_type() {
        for (raw, home, want) in [
            ("+965 5512 3456", "KW", "+96555123456"),
            ("00965-5512-3456", "EG", "+96555123456"),
            ("5512 3456", "KW", "+96555123456"),
            ("010 1234 5678", "EG", "+201012345678"),
            ("٠١٠١٢٣٤٥٦٧٨", "EG", "+201012345678"),
            ("۰۱۰۱۲۳۴۵۶۷۸", "EG", "+201012345678"),
            ("(+222) 36 00 00 00", "KW", "+22236000000"),
            ("36000000", "MR", "+22236000000"),
            ("201012345678", "EG", "+201012345678"),
            ("+44 20 7946 0958", "KW", "+442079460958"),
        ] {
            assert_eq!(e164(raw, home).as_deref(), Ok(want), "{raw} in {home}");
        }
        for (raw, home, why) in [
            ("", "KW", "no phone number"),
            ("call me", "KW", "not a phone number"),
            ("5512 345", "KW", "not a KW number"),
            ("+965 5512 34567", "EG", "+965 numbers have 8 digits"),
            ("0123", "EG", "not a EG number"),
            ("+1234567", "EG", "8 to 15"),
        ] {
            let e = e164(raw, home).unwrap_err();
            assert!(e.contains(why), "{raw}: {e}");
        }
        assert!(e164("5512 3456", "XX").unwrap_err().contains("XX"));
    }

    #[test]
    fn a_template_message_carries_its_parameters_and_callback() {
        let body = template_message(
            "+96555123456",
            "order_shipped",
            "ar",
            &[
                Param::Text("Mona".into()),
                Param::Currency {
                    amount: Decimal::from_str("12.9").unwrap(),
                    code: "KWD".into(),
                },
            ],
            &[Param::Text("TRK123".into())],
            "ms:7",
        );
        assert_eq!(body["to"], "96555123456");
        assert_eq!(body["biz_opaque_callback_data"], "ms:7");
        assert_eq!(body["template"]["language"]["code"], "ar");
        let c = &body["template"]["components"];
        assert_eq!(c[0]["parameters"][1]["currency"]["amount_1000"], 12900);
        assert_eq!(
            c[0]["parameters"][1]["currency"]["fallback_value"],
            "12.900 KWD"
        );
        assert_eq!(c[1]["sub_type"], "url");
        assert_eq!(c[1]["parameters"][0]["text"], "TRK123");
        assert_eq!(amount_1000(Decimal::from_str("0.0005").unwrap()), 1);
    }

    #[test]
    fn error_codes_mean_what_whatsapp_says() {
        assert_eq!(failure(132001), Failure::TemplateMissing);
        assert_eq!(failure(132000), Failure::Params);
        assert_eq!(failure(131026), Failure::Undeliverable);
        assert_eq!(failure(190), Failure::Token);
        for c in [130429, 131056, 80007] {
            assert_eq!(failure(c), Failure::RateLimited);
        }
        assert_eq!(failure(100), Failure::Other);
    }

    #[test]
    fn webhook_statuses_and_inbound_messages_are_read() {
        let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{
            "field": "messages", "value": {"messaging_product": "whatsapp",
            "statuses": [{"id": "wamid.A", "status": "delivered", "timestamp": "1764748800",
                          "recipient_id": "96555123456", "biz_opaque_callback_data": "ms:7"},
                         {"id": "wamid.B", "status": "failed", "timestamp": "1764748801",
                          "errors": [{"code": 131026, "title": "Message undeliverable"}]}],
            "messages": [{"from": "96555123456", "id": "wamid.IN", "type": "text"}]}}]}]});
        let (statuses, inbound) = webhook_entries(&body).unwrap();
        assert_eq!(inbound.len(), 1);
        assert_eq!(inbound[0].from, "96555123456");
        assert_eq!(statuses[0].callback.as_deref(), Some("ms:7"));
        assert_eq!(statuses[0].at, Some(1764748800));
        assert_eq!(
            statuses[1].error,
            Some((131026, "Message undeliverable".into()))
        );
        assert!(webhook_entries(&json!({"object": "page"})).is_err());
        assert!(
            webhook_entries(&json!({"object": "whatsapp_business_account",
            "entry": [{"changes": [{"value": {"statuses": [{"id": "w", "status": "lost"}]}}]}]}))
            .unwrap_err()
            .contains("lost")
        );
        assert!(rank("read") > rank("delivered") && rank("delivered") > rank("sent"));
    }
}
