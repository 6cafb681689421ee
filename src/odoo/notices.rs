//! What the operator should hear before Odoo stops answering: an API key of the integration
//! user that expires soon (Odoo 18 and later record an expiry), and a protocol that the Odoo
//! version has deprecated (XML-RPC and JSON-RPC from 19, removed in 22). `check` prints these
//! as warnings; the daemon records them for `status`.

use super::{Domain, OdooClient, SearchOpts, Value};
use crate::config::OdooProtocol;
use chrono::{DateTime, NaiveDateTime, Utc};

/// How far ahead an expiring key is announced.
pub const KEY_NOTICE_DAYS: i64 = 14;

/// The notices for this Odoo, as of `now`. A failure to read the keys says nothing: a user
/// may not be allowed to read them, and nothing is wrong then.
pub async fn ahead(odoo: &OdooClient, protocol: OdooProtocol, now: DateTime<Utc>) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(n) = protocol_notice(odoo.version().major, protocol) {
        out.push(n);
    }
    if odoo.version().major >= 18 {
        if let Ok(keys) = expiring_keys(odoo).await {
            out.extend(key_notices(&keys, now));
        }
    }
    out
}

/// Deprecated since Odoo 19, removed in Odoo 22 (fall 2028; Odoo Online 21.1, winter 2027).
pub fn protocol_notice(major: u32, protocol: OdooProtocol) -> Option<String> {
    (major >= 19 && protocol != OdooProtocol::Json2).then(|| {
        format!(
            "odoo.protocol = \"{}\" is deprecated since Odoo 19 and removed in Odoo 22 (fall 2028; Odoo Online 21.1, winter 2027): set odoo.protocol = \"json2\"",
            protocol.as_str()
        )
    })
}

/// The integration user's API keys that have an expiry, as (description, expiry).
async fn expiring_keys(
    odoo: &OdooClient,
) -> Result<Vec<(String, NaiveDateTime)>, super::OdooError> {
    let rows = odoo
        .search_read(
            "res.users.apikeys",
            &Domain::all()
                .and("user_id", "=", odoo.uid())
                .and("expiration_date", "!=", false),
            &["name", "expiration_date"],
            SearchOpts::default(),
        )
        .await?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            let at = r.get("expiration_date").and_then(Value::as_opt_str)?;
            let at = NaiveDateTime::parse_from_str(at, "%Y-%m-%d %H:%M:%S").ok()?;
            let name = r
                .get("name")
                .and_then(Value::as_opt_str)
                .unwrap_or("(no description)");
            Some((name.to_string(), at))
        })
        .collect())
}

/// A notice per key that expires within [`KEY_NOTICE_DAYS`] (or has expired).
pub fn key_notices(keys: &[(String, NaiveDateTime)], now: DateTime<Utc>) -> Vec<String> {
    let mut soon: Vec<&(String, NaiveDateTime)> = keys
        .iter()
        .filter(|(_, at)| at.and_utc() - now <= chrono::Duration::days(KEY_NOTICE_DAYS))
        .collect();
    soon.sort_by_key(|(_, at)| *at);
    soon.into_iter()
        .map(|(name, at)| {
            let left = at.and_utc() - now;
            let when = if left <= chrono::Duration::zero() {
                "expired".to_string()
            } else if left < chrono::Duration::days(1) {
                format!("expires in {} hours", left.num_hours().max(1))
            } else {
                // Rounded up: 5 days and 23 hours is "6 days".
                format!("expires in {} days", (left.num_seconds() + 86_399) / 86_400)
            };
            format!(
                "the integration user's API key {name:?} {when} ({} UTC): if it is the key in odoo.api_key, make a new one in Odoo (Preferences > Account Security > New API Key) and put it there before then",
                at.format("%Y-%m-%d %H:%M")
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    #[test]
    fn keys_are_announced_14_days_ahead() {
        let now = at("2026-12-01 12:00:00").and_utc();
        let keys = vec![
            ("far".to_string(), at("2026-12-20 12:00:00")),
            ("soon".to_string(), at("2026-12-10 12:00:00")),
            ("today".to_string(), at("2026-12-01 18:00:00")),
            ("gone".to_string(), at("2026-11-30 12:00:00")),
        ];
        let n = key_notices(&keys, now);
        assert_eq!(n.len(), 3, "{n:?}");
        assert!(n[0].contains("\"gone\" expired"), "{}", n[0]);
        assert!(n[1].contains("\"today\" expires in 6 hours"), "{}", n[1]);
        assert!(
            n[2].contains("\"soon\" expires in 9 days (2026-12-10 12:00 UTC)"),
            "{}",
            n[2]
        );
    }

    #[test]
    fn legacy_protocols_are_announced_from_odoo_19() {
        assert!(protocol_notice(18, OdooProtocol::Xmlrpc).is_none());
        assert!(protocol_notice(19, OdooProtocol::Json2).is_none());
        let n = protocol_notice(19, OdooProtocol::Jsonrpc).unwrap();
        assert!(
            n.starts_with(
                "odoo.protocol = \"jsonrpc\" is deprecated since Odoo 19 and removed in Odoo 22"
            ),
            "{n}"
        );
    }
}
