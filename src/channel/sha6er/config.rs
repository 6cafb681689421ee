//! `[channels.sha6er]`: the deliveries' settings, raw (as written) and validated. Every
//! field's `///` comment is its documentation, repeated in `config.example.toml`.

use crate::config::{invalid, ConfigError, HumanDuration, RawChannel};
use std::time::Duration;

/// The marketplaces whose orders Sha6er may deliver, and the Odoo-side name for orders made in
/// Odoo itself (`cod_for`).
pub const MARKETPLACES: [&str; 2] = ["medusa", "cartona"];
pub const ODOO_ORDERS: &str = "odoo";

crate::config::channel_table! {
/// `[channels.sha6er]`: the keys every channel has (`base_url`, `token` (Sha6er's API key,
/// sent as `Authorization: Bearer`), `webhook_secret` (signs the status webhooks)), plus the
/// deliveries' own.
pub struct RawSha6er {
    /// The code of the Odoo warehouse the couriers pick up from (`stock.warehouse.code`, e.g.
    /// `WH`); its address (the warehouse's partner) is the pickup address.
    pub warehouse: Option<String>,
    /// The marketplaces whose ready deliveries become shipments (default medusa, cartona);
    /// of Cartona's, only the orders `delivered_by_supplier` (Cartona delivers the others).
    pub ship_for: Option<Vec<String>>,
    /// Also (or, with `ship_for = []`, only) the deliveries whose Odoo carrier
    /// (`stock.picking.carrier_id`, the delivery module) has this name, whatever the order.
    pub carrier: Option<String>,
    /// Whose orders are cash on delivery when Odoo does not show them paid: any of medusa,
    /// cartona, odoo (orders made in Odoo); default cartona. The courier collects the
    /// delivery's value. Cartona's installment and wallet orders are never COD (Cartona
    /// collects those).
    pub cod_for: Option<Vec<String>>,
    /// A shipment without news (webhook) for this long is read from Sha6er (default 30m): the
    /// safety net for lost webhooks.
    #[serde(default = "default_stale")]
    pub stale_after: HumanDuration,
    /// How far a webhook's signature time may be from now (default 5m).
    #[serde(default = "default_tolerance")]
    pub webhook_tolerance: HumanDuration,
}
}

fn default_stale() -> HumanDuration {
    HumanDuration(Duration::from_secs(1800))
}
fn default_tolerance() -> HumanDuration {
    HumanDuration(Duration::from_secs(300))
}

/// The deliveries' own settings, validated.
#[derive(Debug, Clone)]
pub struct Sha6erSettings {
    pub warehouse: String,
    pub ship_for: Vec<String>,
    pub carrier: Option<String>,
    pub cod_for: Vec<String>,
    pub stale_after: Duration,
    pub webhook_tolerance: Duration,
}

fn names(
    path: &str,
    given: Option<Vec<String>>,
    default: &[&str],
    allowed: &[&str],
) -> Result<Vec<String>, ConfigError> {
    let list = given.unwrap_or_else(|| default.iter().map(|s| s.to_string()).collect());
    for (i, c) in list.iter().enumerate() {
        if !allowed.contains(&c.as_str()) {
            return Err(invalid(
                &format!("{path}[{i}]"),
                format!("{c:?} is not one of {}", allowed.join(", ")),
            ));
        }
    }
    Ok(list)
}

impl RawSha6er {
    pub(crate) fn split(mut self) -> Result<(RawChannel, Sha6erSettings), ConfigError> {
        let key = |k: &str| format!("channels.sha6er.{k}");
        let common = self.take_common();
        let enabled = common.enabled;
        let warehouse = self
            .warehouse
            .map(|w| w.trim().to_string())
            .unwrap_or_default();
        if enabled && warehouse.is_empty() {
            return Err(invalid(
                &key("warehouse"),
                "missing; give the code of the Odoo warehouse the couriers pick up from (Inventory > Configuration > Warehouses: Short Name, e.g. WH)",
            ));
        }
        let ship_for = names(
            &key("ship_for"),
            self.ship_for,
            &MARKETPLACES,
            &MARKETPLACES,
        )?;
        let carrier = self
            .carrier
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty());
        if enabled && ship_for.is_empty() && carrier.is_none() {
            return Err(invalid(
                &key("ship_for"),
                "is empty and no carrier is named: nothing would be shipped; list medusa and/or cartona, or set carrier",
            ));
        }
        let cod_for = names(
            &key("cod_for"),
            self.cod_for,
            &["cartona"],
            &["medusa", "cartona", ODOO_ORDERS],
        )?;
        let secret_set = common.webhook_secret.is_some()
            || common.webhook_secret_file.is_some()
            || common.webhook_secret_env.is_some();
        if enabled && !secret_set {
            return Err(invalid(
                &key("webhook_secret"),
                "missing; Sha6er signs its status webhooks with it (or set webhook_secret_file / webhook_secret_env)",
            ));
        }
        if self.stale_after.0 < Duration::from_secs(10) {
            return Err(invalid(&key("stale_after"), "must be at least 10s"));
        }
        Ok((
            common,
            Sha6erSettings {
                warehouse,
                ship_for,
                carrier,
                cod_for,
                stale_after: self.stale_after.0,
                webhook_tolerance: self.webhook_tolerance.0,
            },
        ))
    }
}

impl Sha6erSettings {
    /// Whether orders of `channel` (a marketplace, or [`ODOO_ORDERS`]) are cash on delivery
    /// when unpaid.
    pub fn cod(&self, channel: &str) -> bool {
        self.cod_for.iter().any(|c| c == channel)
    }
}

#[cfg(test)]
mod tests {
    use crate::config::RawConfig;

    const MINIMAL: &str = "[odoo]\nurl = \"https://erp.example.com/\"\ndatabase = \"odoo\"\nusername = \"u\"\napi_key = \"a-long-enough-api-key-1\"\n";

    fn err(text: &str) -> String {
        RawConfig::parse(text)
            .unwrap()
            .validate()
            .unwrap_err()
            .to_string()
    }

    const OK: &str = "[channels.sha6er]\nenabled = true\nbase_url = \"https://api.sha6er.example/v1/\"\ntoken = \"k-123456\"\nwebhook_secret = \"whsec-sha6er\"\nwarehouse = \"WH\"\n";

    #[test]
    fn each_refusal_names_its_key_and_says_what_to_do() {
        let cases = [
            (
                OK.replace("warehouse = \"WH\"\n", ""),
                "channels.sha6er.warehouse: missing",
            ),
            (
                OK.replace("webhook_secret = \"whsec-sha6er\"\n", ""),
                "channels.sha6er.webhook_secret: missing",
            ),
            (
                format!("{OK}ship_for = [\"meta\"]\n"),
                "channels.sha6er.ship_for[0]: \"meta\" is not one of medusa, cartona",
            ),
            (format!("{OK}ship_for = []\n"), "nothing would be shipped"),
            (
                format!("{OK}cod_for = [\"whatsapp\"]\n"),
                "channels.sha6er.cod_for[0]",
            ),
            (
                format!("{OK}stale_after = \"1s\"\n"),
                "channels.sha6er.stale_after: must be at least 10s",
            ),
        ];
        for (table, want) in cases {
            let e = err(&format!("{MINIMAL}\n{table}"));
            assert!(e.contains(want), "{want:?} not in {e:?}");
            assert!(
                !e.contains("k-123456") && !e.contains("whsec-sha6er"),
                "{e}"
            );
        }
        let c = RawConfig::parse(&format!(
            "{MINIMAL}\n{OK}ship_for = []\ncarrier = \"Sha6er\"\ncod_for = [\"odoo\", \"medusa\"]\n"
        ))
        .unwrap()
        .validate()
        .unwrap();
        let s = c.channels[0].sha6er().unwrap();
        assert_eq!(s.carrier.as_deref(), Some("Sha6er"));
        assert!(s.cod("odoo") && s.cod("medusa") && !s.cod("cartona"));
    }
}
