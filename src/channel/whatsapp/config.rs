//! `[channels.whatsapp]`: the WhatsApp notifications' settings, raw (as written) and
//! validated. Every field's `///` comment is its documentation, repeated in
//! `config.example.toml`.

use crate::config::{invalid, ConfigError, RawChannel};
use crate::secret::{Secret, SecretSpec};
use crate::store::order_events::EventKind;
use serde::Deserialize;
use std::collections::BTreeMap;

/// The Graph API version marketsync speaks, pinned in the default `base_url` (API-NOTES §3).
pub const DEFAULT_BASE_URL: &str = "https://graph.facebook.com/v26.0/";

/// The steps a customer is told of.
pub const STEPS: [EventKind; 4] = [
    EventKind::Confirmed,
    EventKind::Shipped,
    EventKind::Delivered,
    EventKind::Cancelled,
];

/// What a template parameter is filled with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamSource {
    /// The Odoo customer's name.
    CustomerName,
    /// The order's reference on the marketplace (what the customer saw when ordering).
    OrderReference,
    /// The order's total, as a currency parameter (`amount_1000`).
    Total,
    /// The delivery's carrier.
    Carrier,
    TrackingNumber,
    /// `tracking_url` filled with the tracking number.
    TrackingUrl,
    /// The date of the step (delivered, shipped), as YYYY-MM-DD.
    DeliveryDate,
}

impl ParamSource {
    pub const ALL: [&'static str; 7] = [
        "customer_name",
        "order_reference",
        "total",
        "carrier",
        "tracking_number",
        "tracking_url",
        "delivery_date",
    ];
}

/// `[channels.whatsapp.notify.<step>]`: the template of one step.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNotify {
    /// The approved template's name in WhatsApp Manager (e.g. `order_shipped`).
    pub template: Option<String>,
    /// The template's language code (e.g. `ar`, `en_US`); unset: the customer's (from the
    /// Odoo partner's `lang`), else the channel's `language`.
    pub language: Option<String>,
    /// The body's parameters, in order ({{1}}, {{2}}, ...): each one of customer_name,
    /// order_reference, total, carrier, tracking_number, tracking_url, delivery_date.
    #[serde(default)]
    pub body: Vec<String>,
    /// The URL button's (index 0) parameter, if the template has one (e.g. tracking_number).
    #[serde(default)]
    pub button: Vec<String>,
}

/// One step's template, validated.
#[derive(Debug, Clone)]
pub struct Notify {
    pub template: String,
    pub language: Option<String>,
    pub body: Vec<ParamSource>,
    pub button: Vec<ParamSource>,
}

crate::config::channel_table! {
/// `[channels.whatsapp]`: the keys every channel has (its `token` is a system user's access
/// token with `whatsapp_business_messaging`), plus the business number's own.
pub struct RawWhatsapp {
    /// The business phone number's id (WhatsApp Manager > Phone numbers; digits).
    pub phone_number_id: Option<String>,
    /// The Meta app's secret (App settings > Basic), which signs the webhooks (or
    /// `app_secret_file` / `app_secret_env`).
    pub app_secret: Option<String>,
    pub app_secret_file: Option<std::path::PathBuf>,
    pub app_secret_env: Option<String>,
    /// The token the webhook subscription's handshake must bring (or `verify_token_file` /
    /// `verify_token_env`): chosen by you, typed again in the app's webhook settings.
    pub verify_token: Option<String>,
    pub verify_token_file: Option<std::path::PathBuf>,
    pub verify_token_env: Option<String>,
    /// For numbers written without a country code (ISO 3166: EG, KW, MR, SA, AE, ...).
    pub default_country: Option<String>,
    /// The template language when neither the step nor the customer gives one (e.g. `ar`).
    pub language: Option<String>,
    /// The language tried when a template does not exist in the customer's (132001).
    pub fallback_language: Option<String>,
    /// The template tried last, in `fallback_language`, when a step's own does not exist in
    /// either language; with the step's parameters.
    pub fallback_template: Option<String>,
    /// Odoo language -> template language (e.g. `{ "ar_001" = "ar", "en_US" = "en_US" }`);
    /// without an entry, the Odoo code's first part (`ar_001` -> `ar`).
    #[serde(default)]
    pub languages: BTreeMap<String, String>,
    /// The marketplaces whose customers are told (default both: cartona, medusa).
    pub for_channels: Option<Vec<String>>,
    /// Only customers who agreed get messages (default true).
    #[serde(default = "yes")]
    pub require_opt_in: bool,
    /// The Odoo partner's boolean field that records the agreement (default
    /// `x_whatsapp_opt_in`, a custom field the supplier adds).
    pub opt_in_field: Option<String>,
    /// The partner's fields read for the number, first filled wins (default mobile, phone;
    /// Odoo 19 has no `mobile`: fields Odoo does not have are skipped).
    pub phone_fields: Option<Vec<String>>,
    /// The tracking page, a template of `{tracking}` (for the tracking_url parameter).
    pub tracking_url: Option<String>,
    /// How long sends wait after WhatsApp says a limit is reached (130429 throughput, 131056
    /// pair rate, 80007 account rate), without spending attempts (default 60s).
    #[serde(default = "default_rate_wait")]
    pub rate_limit_wait: crate::config::HumanDuration,
    /// A message whose answer was lost is sent again once this old, if WhatsApp has since
    /// reported a message sent after it and not it (default 2m).
    #[serde(default = "default_confirm_after")]
    pub confirm_after: crate::config::HumanDuration,
    /// One table per step told: confirmed, shipped, delivered, cancelled.
    #[serde(default)]
    pub notify: BTreeMap<String, RawNotify>,
}
}

fn yes() -> bool {
    true
}

fn default_confirm_after() -> crate::config::HumanDuration {
    crate::config::HumanDuration(std::time::Duration::from_secs(120))
}

fn default_rate_wait() -> crate::config::HumanDuration {
    crate::config::HumanDuration(std::time::Duration::from_secs(60))
}

/// The notifications' own settings, validated.
#[derive(Debug, Clone)]
pub struct WhatsappSettings {
    pub phone_number_id: String,
    pub app_secret: Option<Secret>,
    pub verify_token: Option<Secret>,
    pub default_country: String,
    pub language: String,
    pub fallback_language: Option<String>,
    pub fallback_template: Option<String>,
    pub languages: BTreeMap<String, String>,
    pub for_channels: Vec<String>,
    pub require_opt_in: bool,
    pub opt_in_field: String,
    pub phone_fields: Vec<String>,
    pub tracking_url: Option<String>,
    pub rate_limit_wait: std::time::Duration,
    pub confirm_after: std::time::Duration,
    pub notify: BTreeMap<EventKind, Notify>,
}

impl WhatsappSettings {
    /// The template language for a customer whose Odoo `lang` is `partner_lang`.
    pub fn language_for(&self, step: &Notify, partner_lang: Option<&str>) -> String {
        if let Some(l) = &step.language {
            return l.clone();
        }
        match partner_lang.filter(|l| !l.is_empty()) {
            Some(l) => self
                .languages
                .get(l)
                .cloned()
                .unwrap_or_else(|| l.split('_').next().unwrap_or(l).to_string()),
            None => self.language.clone(),
        }
    }

    /// The (template, language) pairs tried in turn while WhatsApp says the template does
    /// not exist in that language (132001).
    pub fn chain(&self, step: &Notify, first_language: &str) -> Vec<(String, String)> {
        let mut out = vec![(step.template.clone(), first_language.to_string())];
        let fallback = self
            .fallback_language
            .clone()
            .unwrap_or_else(|| self.language.clone());
        out.push((step.template.clone(), fallback.clone()));
        if let Some(t) = &self.fallback_template {
            out.push((t.clone(), fallback));
        }
        out.dedup();
        out
    }
}

fn spec(
    inline: Option<String>,
    file: Option<std::path::PathBuf>,
    env: Option<String>,
) -> SecretSpec {
    SecretSpec { inline, file, env }
}

fn sources(path: &str, names: &[String]) -> Result<Vec<ParamSource>, ConfigError> {
    names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            serde_json::from_value::<ParamSource>(serde_json::Value::String(n.clone())).map_err(
                |_| {
                    invalid(
                        &format!("{path}[{i}]"),
                        format!(
                            "{n:?} is not a parameter marketsync fills; use one of {}",
                            ParamSource::ALL.join(", ")
                        ),
                    )
                },
            )
        })
        .collect()
}

fn language_code(path: &str, l: &str) -> Result<String, ConfigError> {
    let ok =
        !l.is_empty() && l.len() <= 8 && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(l.to_string())
    } else {
        Err(invalid(
            path,
            format!("{l:?} is not a template language code such as \"ar\" or \"en_US\""),
        ))
    }
}

impl RawWhatsapp {
    pub(crate) fn split(mut self) -> Result<(RawChannel, WhatsappSettings), ConfigError> {
        let key = |k: &str| format!("channels.whatsapp.{k}");
        let mut common = self.take_common();
        if common.base_url.is_none() {
            common.base_url = Some(DEFAULT_BASE_URL.into());
        }
        let enabled = common.enabled;
        let resolve = |name: &str, s: SecretSpec| -> Result<Option<Secret>, ConfigError> {
            if !s.is_set() {
                return Ok(None);
            }
            s.resolve(&key(name))
                .map(Some)
                .map_err(|e| crate::config::invalid_whole(&e.to_string()))
        };
        let app_secret = resolve(
            "app_secret",
            spec(self.app_secret, self.app_secret_file, self.app_secret_env),
        )?;
        let verify_token = resolve(
            "verify_token",
            spec(
                self.verify_token,
                self.verify_token_file,
                self.verify_token_env,
            ),
        )?;
        let phone_number_id = self
            .phone_number_id
            .map(|p| p.trim().to_string())
            .unwrap_or_default();
        if enabled && phone_number_id.is_empty() {
            return Err(invalid(
                &key("phone_number_id"),
                "missing; the business number's id is in WhatsApp Manager > Phone numbers",
            ));
        }
        if !phone_number_id.chars().all(|c| c.is_ascii_digit()) {
            return Err(invalid(
                &key("phone_number_id"),
                format!("{phone_number_id:?} is not a phone number id (digits, from WhatsApp Manager; not the number itself)"),
            ));
        }
        if enabled && (app_secret.is_none() || verify_token.is_none()) {
            let missing = if app_secret.is_none() {
                "app_secret"
            } else {
                "verify_token"
            };
            return Err(invalid(
                &key(missing),
                "missing; WhatsApp's status webhooks are signed with the app secret and subscribed with the verify token",
            ));
        }
        let default_country = self
            .default_country
            .unwrap_or_default()
            .trim()
            .to_ascii_uppercase();
        if enabled && !super::wire::known_countries().contains(&default_country.as_str()) {
            return Err(invalid(
                &key("default_country"),
                format!(
                    "{default_country:?}: give the country of numbers written without a code, one of {}",
                    super::wire::known_countries().join(", ")
                ),
            ));
        }
        let language = language_code(&key("language"), self.language.as_deref().unwrap_or("en"))?;
        let fallback_language = self
            .fallback_language
            .map(|l| language_code(&key("fallback_language"), &l))
            .transpose()?;
        for (odoo, wa) in &self.languages {
            language_code(&key(&format!("languages.{odoo}")), wa)?;
        }
        let for_channels = self
            .for_channels
            .unwrap_or_else(|| vec!["cartona".into(), "medusa".into()]);
        for (i, c) in for_channels.iter().enumerate() {
            if !["cartona", "medusa"].contains(&c.as_str()) {
                return Err(invalid(
                    &format!("{}[{i}]", key("for_channels")),
                    format!("{c:?} brings no orders; use cartona or medusa"),
                ));
            }
        }
        if let Some(t) = &self.tracking_url {
            if !t.contains("{tracking}") || url::Url::parse(&t.replace("{tracking}", "x")).is_err()
            {
                return Err(invalid(
                    &key("tracking_url"),
                    format!("{t:?} must be a URL with {{tracking}} in it"),
                ));
            }
        }
        let mut notify = BTreeMap::new();
        for (name, raw) in self.notify {
            let step = STEPS
                .into_iter()
                .find(|s| s.as_str() == name)
                .ok_or_else(|| {
                    invalid(
                        &key(&format!("notify.{name}")),
                        "is not a step customers are told of; use confirmed, shipped, delivered or cancelled",
                    )
                })?;
            let path = |k: &str| key(&format!("notify.{name}.{k}"));
            let template = raw
                .template
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
                .ok_or_else(|| {
                    invalid(&path("template"), "missing; the approved template's name")
                })?;
            let body = sources(&path("body"), &raw.body)?;
            let button = sources(&path("button"), &raw.button)?;
            if button.contains(&ParamSource::Total) {
                return Err(invalid(
                    &path("button"),
                    "total is a currency parameter, which a URL button cannot take",
                ));
            }
            let names_url = body
                .iter()
                .chain(&button)
                .any(|p| *p == ParamSource::TrackingUrl);
            if names_url && self.tracking_url.is_none() {
                return Err(invalid(
                    &key("tracking_url"),
                    format!("missing; channels.whatsapp.notify.{name} names tracking_url"),
                ));
            }
            notify.insert(
                step,
                Notify {
                    template,
                    language: raw
                        .language
                        .map(|l| language_code(&path("language"), &l))
                        .transpose()?,
                    body,
                    button,
                },
            );
        }
        if enabled && notify.is_empty() {
            return Err(invalid(
                &key("notify"),
                "missing; add a [channels.whatsapp.notify.<step>] table for each step customers are told of (confirmed, shipped, delivered, cancelled)",
            ));
        }
        Ok((
            common,
            WhatsappSettings {
                phone_number_id,
                app_secret,
                verify_token,
                default_country,
                language,
                fallback_language,
                fallback_template: self.fallback_template.filter(|t| !t.trim().is_empty()),
                languages: self.languages,
                for_channels,
                require_opt_in: self.require_opt_in,
                opt_in_field: self
                    .opt_in_field
                    .unwrap_or_else(|| "x_whatsapp_opt_in".into()),
                phone_fields: self
                    .phone_fields
                    .unwrap_or_else(|| vec!["mobile".into(), "phone".into()]),
                tracking_url: self.tracking_url,
                rate_limit_wait: self.rate_limit_wait.0,
                confirm_after: self.confirm_after.0,
                notify,
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use crate::config::RawConfig;

    const BASE: &str = "[odoo]\nurl = \"https://erp.example.com/\"\ndatabase = \"odoo\"\nusername = \"u\"\napi_key = \"a-long-enough-api-key-1\"\n\
        [channels.whatsapp]\nenabled = true\ntoken = \"a-long-enough-token-22\"\nphone_number_id = \"1065403522\"\n\
        app_secret = \"a-long-enough-secret-3\"\nverify_token = \"a-long-enough-verify-4\"\ndefault_country = \"KW\"\n";
    const STEP: &str = "[channels.whatsapp.notify.confirmed]\ntemplate = \"order_confirmed\"\nbody = [\"customer_name\", \"total\"]\n";

    fn error(text: &str) -> String {
        RawConfig::parse(text)
            .unwrap()
            .validate()
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_whatsapp_table_is_checked_key_by_key() {
        let ok = RawConfig::parse(&format!("{BASE}{STEP}"))
            .unwrap()
            .validate()
            .unwrap();
        let s = ok
            .channel(crate::config::ChannelKind::Whatsapp)
            .unwrap()
            .whatsapp()
            .unwrap()
            .clone();
        assert_eq!(s.for_channels, ["cartona", "medusa"]);
        assert_eq!(s.opt_in_field, "x_whatsapp_opt_in");
        for (text, want) in [
            (
                BASE.replace("app_secret = \"a-long-enough-secret-3\"\n", "") + STEP,
                "channels.whatsapp.app_secret: missing",
            ),
            (
                BASE.replace("KW", "XX") + STEP,
                "channels.whatsapp.default_country: \"XX\"",
            ),
            (
                BASE.replace("1065403522", "+965 2200 0000") + STEP,
                "not a phone number id",
            ),
            (BASE.to_string(), "channels.whatsapp.notify: missing"),
            (
                format!("{BASE}{}", STEP.replace("customer_name", "customer_email")),
                "notify.confirmed.body[0]: \"customer_email\" is not a parameter",
            ),
            (
                format!("{BASE}{}", STEP.replace("confirmed]", "paid]")),
                "notify.paid: is not a step",
            ),
            (
                format!("{BASE}for_channels = [\"meta\"]\n{STEP}"),
                "for_channels[0]: \"meta\" brings no orders",
            ),
            (
                format!("{BASE}{STEP}button = [\"total\"]\n"),
                "a URL button cannot take",
            ),
            (
                format!("{BASE}{STEP}button = [\"tracking_url\"]\n"),
                "channels.whatsapp.tracking_url: missing",
            ),
            (
                format!("{BASE}language = \"ar-EG!\"\n{STEP}"),
                "not a template language code",
            ),
        ] {
            let e = error(&text);
            assert!(e.contains(want), "{want}: {e}");
            assert!(!e.contains("a-long-enough"), "no secret in {e}");
        }
    }

    #[test]
    fn the_language_follows_the_step_then_the_customer_then_the_channel() {
        let text = format!("{BASE}language = \"en\"\nfallback_template = \"order_update\"\nlanguages = {{ \"en_GB\" = \"en_GB\" }}\n{STEP}");
        let c = RawConfig::parse(&text).unwrap().validate().unwrap();
        let s = c
            .channel(crate::config::ChannelKind::Whatsapp)
            .unwrap()
            .whatsapp()
            .unwrap()
            .clone();
        let step = s.notify.values().next().unwrap().clone();
        assert_eq!(s.language_for(&step, Some("ar_001")), "ar");
        assert_eq!(s.language_for(&step, Some("en_GB")), "en_GB");
        assert_eq!(s.language_for(&step, None), "en");
        let mut fixed = step.clone();
        fixed.language = Some("fr".into());
        assert_eq!(s.language_for(&fixed, Some("ar_001")), "fr");
        assert_eq!(
            s.chain(&step, "ar"),
            [
                ("order_confirmed".to_string(), "ar".to_string()),
                ("order_confirmed".into(), "en".into()),
                ("order_update".into(), "en".into())
            ]
        );
    }
}
