//! The configuration file: parsed from TOML (unknown keys rejected, every error naming its key
//! path), then [`RawConfig::validate`]d without touching the network into a [`Config`].
//!
//! Every field's `///` comment is its documentation; `config.example.toml` repeats them with the
//! defaults, and a test proves that file parses and validates.

use crate::secret::{Secret, SecretSpec};
use serde::{Deserialize, Deserializer};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

pub use crate::channel::cartona::config::{
    CartonaSettings, MatchKey, RawCartona, CARTONA_CANCELLATION_REASONS, CARTONA_STATUSES,
    STATUS_ACTIONS,
};
pub use crate::channel::medusa::config::{MedusaFlavour, MedusaSettings, RawMedusa, WebhookAuth};

/// Where the config is read from when neither `--config` nor `MARKETSYNC_CONFIG` says otherwise.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/marketsync/config.toml";

/// A config problem, always naming the key path (`channels.cartona.batch_size: expected an integer`).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

/// An Odoo record id in the config: a positive number.
pub(crate) fn record_id(path: &str, id: Option<i64>) -> Result<(), ConfigError> {
    match id {
        Some(n) if n < 1 => Err(invalid(
            path,
            format!("{n} is not an Odoo record id (ids start at 1); leave it out for none"),
        )),
        _ => Ok(()),
    }
}

pub(crate) fn invalid(path: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        path: path.to_string(),
        message: message.into(),
    }
}

// ---------------------------------------------------------------------------------------------
// Value types
// ---------------------------------------------------------------------------------------------

/// A duration written as `"30s"`, `"5m"`, `"2h"`, `"1d"`, `"250ms"`, or an integer of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

/// A value that does not parse (a duration, a schedule, a channel's name); the message says
/// what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadValue(pub String);

/// Parses `"30s"`, `"5m"`, `"2h"`, `"1d"`, `"250ms"` (and a bare number of seconds).
pub fn parse_duration(text: &str) -> Result<Duration, BadValue> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().map_err(|_| {
        BadValue(format!(
            "expected a duration such as \"30s\", \"5m\" or \"2h\", got {text:?}"
        ))
    })?;
    let secs = match unit.trim() {
        "" | "s" | "sec" | "secs" => n,
        "ms" => return Ok(Duration::from_millis(n)),
        "m" | "min" | "mins" => n * 60,
        "h" | "hour" | "hours" => n * 3600,
        "d" | "day" | "days" => n * 86_400,
        other => {
            return Err(BadValue(format!(
                "unknown duration unit {other:?} in {text:?}; use ms, s, m, h or d"
            )))
        }
    };
    Ok(Duration::from_secs(secs))
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Secs(u64),
            Text(String),
        }
        match Repr::deserialize(d).map_err(|_| {
            serde::de::Error::custom("expected a duration such as \"30s\" or \"5m\"")
        })? {
            Repr::Secs(s) => Ok(HumanDuration(Duration::from_secs(s))),
            Repr::Text(t) => parse_duration(&t)
                .map(HumanDuration)
                .map_err(serde::de::Error::custom),
        }
    }
}

/// When a stream runs: a fixed interval (`"30s"`) or a 5-field cron expression (`"0 3 * * *"`, UTC).
#[derive(Debug, Clone)]
pub enum Schedule {
    Every(Duration),
    Cron(Box<croner::Cron>),
}

impl Schedule {
    /// The first time at or after `now` plus one tick, as a delay from `now`.
    pub fn next_delay(&self, now: chrono::DateTime<chrono::Utc>) -> Duration {
        match self {
            Schedule::Every(d) => *d,
            Schedule::Cron(cron) => cron
                .find_next_occurrence(&now, false)
                .ok()
                .and_then(|next| (next - now).to_std().ok())
                .unwrap_or(Duration::from_secs(60)),
        }
    }
}

impl FromStr for Schedule {
    type Err = BadValue;
    fn from_str(s: &str) -> Result<Self, BadValue> {
        if s.split_whitespace().count() >= 5 {
            croner::Cron::from_str(s)
                .map(|c| Schedule::Cron(Box::new(c)))
                .map_err(|e| BadValue(format!("invalid cron expression {s:?}: {e}")))
        } else {
            let d = parse_duration(s)?;
            if d.is_zero() {
                return Err(BadValue("an interval must be longer than zero".into()));
            }
            Ok(Schedule::Every(d))
        }
    }
}

impl<'de> Deserialize<'de> for Schedule {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// How marketsync speaks to Odoo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OdooProtocol {
    /// `/xmlrpc/2/common` + `/xmlrpc/2/object`: every Odoo from 8 to 21.
    Xmlrpc,
    /// `/jsonrpc`: every Odoo from 8 to 21.
    Jsonrpc,
    /// `/json/2/<model>/<method>` with a bearer API key: Odoo 19 and later.
    Json2,
}

impl OdooProtocol {
    pub fn as_str(self) -> &'static str {
        match self {
            OdooProtocol::Xmlrpc => "xmlrpc",
            OdooProtocol::Jsonrpc => "jsonrpc",
            OdooProtocol::Json2 => "json2",
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (journald adds its own timestamps).
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

// ---------------------------------------------------------------------------------------------
// Raw file shape
// ---------------------------------------------------------------------------------------------

/// The whole file, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub odoo: RawOdoo,
    #[serde(default)]
    pub state: StateConfig,
    #[serde(default)]
    pub webhooks: WebhookConfig,
    #[serde(default)]
    pub admin: AdminConfig,
    #[serde(default)]
    pub schedule: ScheduleConfig,
    #[serde(default)]
    pub retry: RetryConfig,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub daemon: DaemonConfig,
    #[serde(default)]
    pub channels: RawChannels,
}

/// `[odoo]`: the supplier's Odoo.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOdoo {
    /// Base URL, e.g. `https://erp.example.com` (no path).
    pub url: String,
    /// Database name.
    pub database: String,
    /// Login of the (preferably dedicated) integration user.
    pub username: String,
    /// API key (Preferences > Account Security) or password. Or `api_key_file` / `api_key_env`.
    pub api_key: Option<String>,
    pub api_key_file: Option<PathBuf>,
    pub api_key_env: Option<String>,
    /// `xmlrpc`, `jsonrpc` or `json2` (Odoo 19+). Default `xmlrpc`.
    #[serde(default = "default_protocol")]
    pub protocol: OdooProtocol,
    /// At most this many Odoo calls in flight at once. Default 2.
    #[serde(default = "default_max_concurrent_calls")]
    pub max_concurrent_calls: usize,
    /// Per-call timeout. Default 60s.
    #[serde(default = "default_call_timeout")]
    pub timeout: HumanDuration,
    /// Records per page when reading large sets. Default 1000.
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// Pages a full catalog read asks Odoo for at once. Default 1.
    #[serde(default = "default_reads_in_flight")]
    pub reads_in_flight: usize,
    /// The Odoo company marketsync works in (`res.company` id): orders, customers and delivery
    /// contacts are created in it, stock is its warehouses', products those it can sell. Every
    /// call carries it (`allowed_company_ids`). Default: the user's own company.
    pub company_id: Option<i64>,
}

fn default_protocol() -> OdooProtocol {
    OdooProtocol::Xmlrpc
}
fn default_max_concurrent_calls() -> usize {
    2
}
fn default_call_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(60))
}
fn default_page_size() -> u32 {
    1000
}
fn default_reads_in_flight() -> usize {
    1
}

/// `[state]`: the SQLite state file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateConfig {
    /// Path of the state database. Default `/var/lib/marketsync/state.db`.
    #[serde(default = "default_state_path")]
    pub path: PathBuf,
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            path: default_state_path(),
        }
    }
}

fn default_state_path() -> PathBuf {
    PathBuf::from("/var/lib/marketsync/state.db")
}

/// `[webhooks]`: the daemon's HTTP listener (`/healthz`, channel webhooks).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Address to listen on. Default `127.0.0.1:8787`; put a TLS reverse proxy in front.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Largest request body accepted, in bytes. Default 1048576 (1 MiB).
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// Longest a client may take to send a request body. Default 10s; a slower sender gets 408
    /// and holds nothing.
    #[serde(default = "default_body_timeout")]
    pub body_timeout: HumanDuration,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            listen: default_listen(),
            max_body_bytes: default_max_body(),
            body_timeout: default_body_timeout(),
        }
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8787))
}

/// `[admin]`: the operator's own listener, never behind the public proxy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Address of `/metrics` and `/healthz` for the operator and the monitoring. Default
    /// `127.0.0.1:8788`; keep it off the address the webhook proxy forwards to.
    #[serde(default = "default_admin_listen")]
    pub listen: SocketAddr,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            listen: default_admin_listen(),
        }
    }
}

fn default_admin_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8788))
}
fn default_body_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(10))
}
fn default_max_body() -> usize {
    1 << 20
}

/// `[schedule]`: when each stream runs. An interval (`"30s"`) or a cron expression (UTC).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    /// Poll Odoo for changed products, prices and stock. Default `"30s"`.
    #[serde(default = "default_catalog_poll")]
    pub catalog_poll: Schedule,
    /// Pull marketplace orders. Default `"1m"`.
    #[serde(default = "default_orders_poll")]
    pub orders_poll: Schedule,
    /// Poll Odoo for order status changes to send back. Default `"1m"`.
    #[serde(default = "default_orders_poll")]
    pub status_poll: Schedule,
    /// Full catalog reconciliation (corrects drift). Default `"0 3 * * *"`.
    #[serde(default = "default_reconcile")]
    pub reconcile: Schedule,
    /// Sync-log pruning and WAL checkpoint. Default `"0 4 * * *"`.
    #[serde(default = "default_housekeeping")]
    pub housekeeping: Schedule,
    /// Check that Odoo answers. Default `"1m"`.
    #[serde(default = "default_orders_poll")]
    pub odoo_health: Schedule,
    /// How often a channel whose peer cannot be reached is looked at: it is probed at the
    /// first look, then with backoff (doubling, at most a minute apart) until it answers and
    /// its waiting jobs are released. Default `"5s"`.
    #[serde(default = "default_channel_probe")]
    pub channel_probe: Schedule,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        ScheduleConfig {
            catalog_poll: default_catalog_poll(),
            orders_poll: default_orders_poll(),
            status_poll: default_orders_poll(),
            reconcile: default_reconcile(),
            housekeeping: default_housekeeping(),
            odoo_health: default_orders_poll(),
            channel_probe: default_channel_probe(),
        }
    }
}

fn default_catalog_poll() -> Schedule {
    Schedule::Every(Duration::from_secs(30))
}
fn default_orders_poll() -> Schedule {
    Schedule::Every(Duration::from_secs(60))
}
fn default_channel_probe() -> Schedule {
    Schedule::Every(Duration::from_secs(5))
}
fn default_reconcile() -> Schedule {
    "0 3 * * *".parse().expect("valid cron")
}
fn default_housekeeping() -> Schedule {
    "0 4 * * *".parse().expect("valid cron")
}

/// `[retry]`: the durable queue's retry policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// Attempts before a retryable job is dead-lettered. Default 10.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// First backoff ceiling; doubles each attempt (full jitter). Default `"2s"`.
    #[serde(default = "default_base_delay")]
    pub base_delay: HumanDuration,
    /// Longest wait between two attempts. Default `"10m"`.
    #[serde(default = "default_max_delay")]
    pub max_delay: HumanDuration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_attempts: default_max_attempts(),
            base_delay: default_base_delay(),
            max_delay: default_max_delay(),
        }
    }
}

fn default_max_attempts() -> u32 {
    10
}
fn default_base_delay() -> HumanDuration {
    HumanDuration(Duration::from_secs(2))
}
fn default_max_delay() -> HumanDuration {
    HumanDuration(Duration::from_secs(600))
}

/// `[log]`: logging and the sync log.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `error`, `warn`, `info`, `debug` or `trace` (or a tracing filter). Default `info`.
    #[serde(default = "default_level")]
    pub level: String,
    /// `text` or `json`. Default `text`. `--log-format` overrides it.
    #[serde(default)]
    pub format: LogFormat,
    /// Days of sync log kept; older rows are pruned by housekeeping. Default 30.
    #[serde(default = "default_retention_days")]
    pub retention_days: u32,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: default_level(),
            format: LogFormat::Text,
            retention_days: default_retention_days(),
        }
    }
}

fn default_level() -> String {
    "info".into()
}
fn default_retention_days() -> u32 {
    30
}

/// `[daemon]`: the running service.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonConfig {
    /// On SIGTERM, how long in-flight jobs may take to finish. Default `"30s"`.
    #[serde(default = "default_grace")]
    pub shutdown_grace: HumanDuration,
    /// How often idle workers look for due jobs. Default `"1s"`.
    #[serde(default = "default_poll")]
    pub queue_poll: HumanDuration,
    /// `/healthz` turns unhealthy when due jobs have not moved for this long. Default `"15m"`.
    #[serde(default = "default_stall")]
    pub stall_after: HumanDuration,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            shutdown_grace: default_grace(),
            queue_poll: default_poll(),
            stall_after: default_stall(),
        }
    }
}

fn default_grace() -> HumanDuration {
    HumanDuration(Duration::from_secs(30))
}
fn default_poll() -> HumanDuration {
    HumanDuration(Duration::from_secs(1))
}
fn default_stall() -> HumanDuration {
    HumanDuration(Duration::from_secs(900))
}

/// `[channels.*]`: one table per marketplace or carrier.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawChannels {
    pub cartona: Option<RawCartona>,
    pub medusa: Option<RawMedusa>,
    pub meta: Option<crate::channel::meta::config::RawMeta>,
    pub whatsapp: Option<crate::channel::whatsapp::config::RawWhatsapp>,
    pub sha6er: Option<crate::channel::sha6er::config::RawSha6er>,
    /// A diagnostic subscriber: every marketplace order's events, posted as JSON to
    /// `{base_url}events` with `Authorization: Bearer {token}`. The tests' second subscriber;
    /// not a marketplace, and left out of `status`.
    pub probe: Option<RawChannel>,
}

/// Declares a channel's raw table: the keys every channel shares (those of [`RawChannel`]),
/// written here once, then the channel's own. One flat struct, so a typo is still refused
/// (`deny_unknown_fields`) and a bad value still names its line, which `#[serde(flatten)]`
/// would lose; `take_common` hands the shared keys to [`validate_channel`].
macro_rules! channel_table {
    ($(#[$meta:meta])* pub struct $name:ident { $($(#[$fm:meta])* pub $field:ident: $ty:ty,)* }) => {
        $(#[$meta])*
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            /// Whether the daemon runs this channel. Default false.
            #[serde(default)]
            pub enabled: bool,
            /// API base URL.
            pub base_url: Option<String>,
            /// The channel's API token (or `token_file` / `token_env`).
            pub token: Option<String>,
            pub token_file: Option<std::path::PathBuf>,
            pub token_env: Option<String>,
            /// Shared secret for inbound webhooks (or `webhook_secret_file` / `webhook_secret_env`).
            pub webhook_secret: Option<String>,
            pub webhook_secret_file: Option<std::path::PathBuf>,
            pub webhook_secret_env: Option<String>,
            /// Records per request to bulk endpoints. Default 100 (Meta: 1,000); at most 1,000
            /// (Meta: 5,000).
            pub batch_size: Option<u32>,
            /// Jobs of this channel run at most this many at once. Default 2.
            #[serde(default = "crate::config::default_concurrency")]
            pub concurrency: usize,
            /// Longest wait for one answer of the channel's API. Default 30s.
            #[serde(default = "crate::config::default_channel_timeout")]
            pub timeout: crate::config::HumanDuration,
            /// Its streams' own schedules (`[channels.<name>.schedule]`), in place of `[schedule]`'s.
            #[serde(default)]
            pub schedule: crate::config::ChannelSchedule,
            /// What the reconcile compares Odoo with: `hashes` (default: what marketsync last
            /// sent) or `read-back` (what the marketplace holds now, for one whose data can
            /// change behind marketsync's back: an admin edits a price there).
            #[serde(default)]
            pub reconcile_mode: crate::config::ReconcileMode,
            $($(#[$fm])* pub $field: $ty,)*
        }

        impl $name {
            /// Takes out the keys every channel shares.
            pub fn take_common(&mut self) -> crate::config::RawChannel {
                crate::config::RawChannel {
                    enabled: self.enabled,
                    base_url: self.base_url.take(),
                    token: self.token.take(),
                    token_file: self.token_file.take(),
                    token_env: self.token_env.take(),
                    webhook_secret: self.webhook_secret.take(),
                    webhook_secret_file: self.webhook_secret_file.take(),
                    webhook_secret_env: self.webhook_secret_env.take(),
                    batch_size: self.batch_size,
                    concurrency: self.concurrency,
                    timeout: self.timeout,
                    schedule: std::mem::take(&mut self.schedule),
                    reconcile_mode: self.reconcile_mode,
                }
            }
        }
    };
}
pub(crate) use channel_table;

/// `reconcile_mode`: what a channel's reconcile compares Odoo with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReconcileMode {
    /// What marketsync last sent (the hashes in the mappings): no read of the marketplace.
    #[default]
    Hashes,
    /// What the marketplace holds now, read back as `marketsync diff` does; the differences
    /// are queued as fixes. (The hash comparison runs too.)
    ReadBack,
}

/// Checks a channel's `stock_field`: the Odoo quantity pushed as stock.
pub fn stock_field(key: &str, field: &str) -> Result<(), ConfigError> {
    if ["free_qty", "qty_available", "virtual_available"].contains(&field) {
        return Ok(());
    }
    Err(invalid(
        key,
        format!("{field:?} is not one of free_qty, qty_available, virtual_available"),
    ))
}

channel_table! {
    /// The keys every channel table shares; a channel adds its own with [`channel_table!`].
    pub struct RawChannel {}
}

/// `[channels.<name>.schedule]`: this channel's streams on their own schedules, instead of
/// `[schedule]`'s (e.g. a slow marketplace's orders pulled every 5 minutes).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelSchedule {
    pub catalog_poll: Option<Schedule>,
    pub orders_poll: Option<Schedule>,
    pub status_poll: Option<Schedule>,
    pub reconcile: Option<Schedule>,
}

impl ChannelSchedule {
    /// `[schedule]`, with this channel's own schedules in place of its.
    pub fn over(&self, global: &ScheduleConfig) -> ScheduleConfig {
        let pick =
            |own: &Option<Schedule>, all: &Schedule| own.clone().unwrap_or_else(|| all.clone());
        ScheduleConfig {
            catalog_poll: pick(&self.catalog_poll, &global.catalog_poll),
            orders_poll: pick(&self.orders_poll, &global.orders_poll),
            status_poll: pick(&self.status_poll, &global.status_poll),
            reconcile: pick(&self.reconcile, &global.reconcile),
            ..global.clone()
        }
    }
}

pub(crate) fn default_channel_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(30))
}

impl ChannelKind {
    /// `batch_size` when the table does not say, and the most it may be: what the channel's
    /// bulk endpoint takes (Meta's `items_batch` takes 5,000 requests a call).
    pub fn batch_limits(self) -> (u32, u32) {
        match self {
            ChannelKind::Meta => (1000, 5000),
            _ => (100, 1000),
        }
    }
}

pub(crate) fn default_stock_field() -> String {
    "free_qty".into()
}
pub(crate) fn default_overlap() -> HumanDuration {
    HumanDuration(Duration::from_secs(10))
}
pub(crate) fn default_concurrency() -> usize {
    2
}

// ---------------------------------------------------------------------------------------------
// Validated shape
// ---------------------------------------------------------------------------------------------

/// The validated configuration the daemon and CLI work from.
#[derive(Debug, Clone)]
pub struct Config {
    pub odoo: OdooConfig,
    pub state: StateConfig,
    pub webhooks: WebhookConfig,
    pub admin: AdminConfig,
    pub schedule: ScheduleConfig,
    pub retry: RetryConfig,
    pub log: LogConfig,
    pub daemon: DaemonConfig,
    pub channels: Vec<ChannelConfig>,
}

/// `[odoo]`, validated.
#[derive(Debug, Clone)]
pub struct OdooConfig {
    pub company_id: Option<i64>,
    pub url: url::Url,
    pub database: String,
    pub username: String,
    pub api_key: Secret,
    pub protocol: OdooProtocol,
    pub max_concurrent_calls: usize,
    pub timeout: Duration,
    pub page_size: u32,
    pub reads_in_flight: usize,
}

/// The channels marketsync knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChannelKind {
    Cartona,
    Medusa,
    Meta,
    Whatsapp,
    Sha6er,
    /// The diagnostic subscriber (`[channels.probe]`), not in [`ChannelKind::ALL`].
    Probe,
}

impl ChannelKind {
    pub const ALL: [ChannelKind; 5] = [
        ChannelKind::Cartona,
        ChannelKind::Medusa,
        ChannelKind::Meta,
        ChannelKind::Whatsapp,
        ChannelKind::Sha6er,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ChannelKind::Cartona => "cartona",
            ChannelKind::Medusa => "medusa",
            ChannelKind::Meta => "meta",
            ChannelKind::Whatsapp => "whatsapp",
            ChannelKind::Sha6er => "sha6er",
            ChannelKind::Probe => "probe",
        }
    }

    /// Whether this build carries the channel's implementation.
    pub fn implemented(self) -> bool {
        matches!(
            self,
            ChannelKind::Cartona
                | ChannelKind::Medusa
                | ChannelKind::Meta
                | ChannelKind::Whatsapp
                | ChannelKind::Sha6er
                | ChannelKind::Probe
        )
    }
}

impl FromStr for ChannelKind {
    type Err = BadValue;
    fn from_str(s: &str) -> Result<Self, BadValue> {
        ChannelKind::ALL
            .into_iter()
            .chain([ChannelKind::Probe])
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                BadValue(format!(
                    "unknown channel {s:?}; expected one of cartona, medusa, meta, whatsapp, sha6er"
                ))
            })
    }
}

/// One `[channels.*]` table, validated.
#[derive(Debug, Clone)]
pub struct ChannelConfig {
    pub kind: ChannelKind,
    pub enabled: bool,
    pub base_url: Option<url::Url>,
    pub token: Option<Secret>,
    pub webhook_secret: Option<Secret>,
    pub batch_size: u32,
    pub concurrency: usize,
    /// Longest wait for one answer of the channel's API.
    pub timeout: Duration,
    /// The channel's own settings.
    pub settings: ChannelSettings,
    /// Its streams' own schedules, where it has them.
    pub schedule: ChannelSchedule,
    pub reconcile_mode: ReconcileMode,
}

/// A channel's own settings, validated: one variant per channel that has any.
#[derive(Debug, Clone)]
pub enum ChannelSettings {
    /// The channel has only the keys every channel shares.
    Common,
    Cartona(CartonaSettings),
    Medusa(MedusaSettings),
    Meta(crate::channel::meta::config::MetaSettings),
    Whatsapp(crate::channel::whatsapp::config::WhatsappSettings),
    Sha6er(crate::channel::sha6er::config::Sha6erSettings),
}

impl ChannelConfig {
    pub fn cartona(&self) -> Option<&CartonaSettings> {
        match &self.settings {
            ChannelSettings::Cartona(s) => Some(s),
            _ => None,
        }
    }

    pub fn medusa(&self) -> Option<&MedusaSettings> {
        match &self.settings {
            ChannelSettings::Medusa(s) => Some(s),
            _ => None,
        }
    }

    pub fn meta(&self) -> Option<&crate::channel::meta::config::MetaSettings> {
        match &self.settings {
            ChannelSettings::Meta(s) => Some(s),
            _ => None,
        }
    }

    pub fn whatsapp(&self) -> Option<&crate::channel::whatsapp::config::WhatsappSettings> {
        match &self.settings {
            ChannelSettings::Whatsapp(s) => Some(s),
            _ => None,
        }
    }

    pub fn sha6er(&self) -> Option<&crate::channel::sha6er::config::Sha6erSettings> {
        match &self.settings {
            ChannelSettings::Sha6er(s) => Some(s),
            _ => None,
        }
    }
}

impl Config {
    /// Reads and validates the file. No network is touched.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let raw = RawConfig::parse(&text)?;
        let mut config = raw.validate()?;
        // A relative state path is relative to the config file, so a config can travel with its state.
        if config.state.path.is_relative() {
            if let Some(dir) = path.parent() {
                config.state.path = dir.join(&config.state.path);
            }
        }
        Ok(config)
    }

    pub fn channel(&self, kind: ChannelKind) -> Option<&ChannelConfig> {
        self.channels.iter().find(|c| c.kind == kind)
    }

    pub fn enabled_channels(&self) -> impl Iterator<Item = &ChannelConfig> {
        self.channels.iter().filter(|c| c.enabled)
    }

    /// Every secret of the config with its key (`odoo.api_key`, `channels.cartona.token`...).
    pub fn secrets(&self) -> Vec<(String, &Secret)> {
        let mut out = vec![("odoo.api_key".to_string(), &self.odoo.api_key)];
        for c in &self.channels {
            let name = c.kind.name();
            for (key, secret) in [("token", &c.token), ("webhook_secret", &c.webhook_secret)] {
                if let Some(secret) = secret {
                    out.push((format!("channels.{name}.{key}"), secret));
                }
            }
        }
        out
    }

    /// Warnings of `config check`: secrets short enough to be guessed, or to be an ordinary
    /// word that the log scrubber cannot blank everywhere.
    pub fn warnings(&self) -> Vec<String> {
        self.secrets()
            .into_iter()
            .filter(|(_, s)| s.expose().chars().count() < crate::secret::SHORT_SECRET)
            .map(|(key, s)| {
                format!(
                    "{key} is {} characters long: a secret under {} characters is easy to guess, and can only be kept out of the logs where it stands as a whole word; use a longer API key or token",
                    s.expose().chars().count(),
                    crate::secret::SHORT_SECRET
                )
            })
            .collect()
    }
}

impl RawConfig {
    /// Parses TOML; an error names the key path (`retry.max_attempts: expected an integer`).
    pub fn parse(text: &str) -> Result<RawConfig, ConfigError> {
        let line_of = |span: Option<std::ops::Range<usize>>| {
            span.map(|s| {
                format!(
                    " (line {})",
                    text[..s.start.min(text.len())].matches('\n').count() + 1
                )
            })
            .unwrap_or_default()
        };
        let de = toml::Deserializer::parse(text).map_err(|e| {
            invalid(
                "(file)",
                format!(
                    "not valid TOML: {}{}",
                    first_line(e.message()),
                    line_of(e.span())
                ),
            )
        })?;
        serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let message = format!(
                "{}{}",
                friendly(e.inner().message()),
                line_of(e.inner().span())
            );
            let mut path = if path == "." { String::new() } else { path };
            // serde reports a missing key at its table; name the key itself.
            if let Some(key) = e
                .inner()
                .message()
                .strip_prefix("missing field `")
                .and_then(|r| r.strip_suffix('`'))
            {
                path = if path.is_empty() {
                    key.to_string()
                } else {
                    format!("{path}.{key}")
                };
                return invalid(&path, "missing; this key is required");
            }
            invalid(
                if path.is_empty() {
                    "(top level)"
                } else {
                    &path
                },
                message,
            )
        })
    }

    /// Checks values and resolves secrets. No network is touched.
    pub fn validate(self) -> Result<Config, ConfigError> {
        let o = self.odoo;
        let url = parse_base_url("odoo.url", &o.url)?;
        if o.database.trim().is_empty() {
            return Err(invalid("odoo.database", "must not be empty"));
        }
        if o.username.trim().is_empty() {
            return Err(invalid("odoo.username", "must not be empty"));
        }
        let api_key = SecretSpec {
            inline: o.api_key,
            file: o.api_key_file,
            env: o.api_key_env,
        }
        .resolve("odoo.api_key")
        .map_err(|m| invalid_whole(&m.to_string()))?;
        if o.max_concurrent_calls == 0 || o.max_concurrent_calls > 64 {
            return Err(invalid(
                "odoo.max_concurrent_calls",
                "must be between 1 and 64",
            ));
        }
        if o.page_size == 0 || o.page_size > 10_000 {
            return Err(invalid("odoo.page_size", "must be between 1 and 10000"));
        }
        if o.reads_in_flight == 0 || o.reads_in_flight > o.max_concurrent_calls {
            return Err(invalid(
                "odoo.reads_in_flight",
                format!(
                    "must be between 1 and odoo.max_concurrent_calls ({})",
                    o.max_concurrent_calls
                ),
            ));
        }
        if o.timeout.0.is_zero() {
            return Err(invalid("odoo.timeout", "must be longer than zero"));
        }
        record_id("odoo.company_id", o.company_id)?;
        let odoo = OdooConfig {
            url,
            database: o.database,
            username: o.username,
            api_key,
            protocol: o.protocol,
            max_concurrent_calls: o.max_concurrent_calls,
            timeout: o.timeout.0,
            page_size: o.page_size,
            reads_in_flight: o.reads_in_flight,
            company_id: o.company_id,
        };

        if self.retry.max_attempts == 0 {
            return Err(invalid("retry.max_attempts", "must be at least 1"));
        }
        if self.retry.base_delay.0 > self.retry.max_delay.0 {
            return Err(invalid(
                "retry.base_delay",
                "must not be longer than retry.max_delay",
            ));
        }
        if self.log.retention_days == 0 {
            return Err(invalid("log.retention_days", "must be at least 1"));
        }
        if self.webhooks.max_body_bytes < 1024 {
            return Err(invalid("webhooks.max_body_bytes", "must be at least 1024"));
        }
        if self.webhooks.body_timeout.0 < Duration::from_millis(100) {
            return Err(invalid("webhooks.body_timeout", "must be at least 100ms"));
        }
        if self.admin.listen == self.webhooks.listen && self.admin.listen.port() != 0 {
            return Err(invalid(
                "admin.listen",
                "is the same address as webhooks.listen; the operator's listener (/metrics) must not be where the public webhooks arrive: give it another port",
            ));
        }
        crate::telemetry::parse_filter(&self.log.level).map_err(|e| invalid("log.level", e.0))?;

        let mut channels = Vec::new();
        let raw = self.channels;
        if let Some(table) = raw.cartona {
            let (common, settings) = table.split()?;
            let mut channel = validate_channel(ChannelKind::Cartona, common)?;
            channel.settings = ChannelSettings::Cartona(settings);
            channels.push(channel);
        }
        if let Some(table) = raw.medusa {
            let (common, settings) = table.split()?;
            let mut channel = validate_channel(ChannelKind::Medusa, common)?;
            channel.settings = ChannelSettings::Medusa(settings);
            channels.push(channel);
        }
        if let Some(table) = raw.meta {
            let (common, settings) = table.split()?;
            let mut channel = validate_channel(ChannelKind::Meta, common)?;
            if channel.enabled
                && settings.image_link.is_none()
                && !crate::channel::meta::config::image_default_usable(&odoo.url)
            {
                return Err(invalid(
                    "channels.meta.image_link",
                    format!(
                        "missing; Odoo is served over {} and Meta takes only https images: give an https template, e.g. \"https://shop.example.com/images/{{default_code}}.jpg\"",
                        odoo.url.scheme()
                    ),
                ));
            }
            channel.settings = ChannelSettings::Meta(settings);
            channels.push(channel);
        }
        if let Some(table) = raw.whatsapp {
            let (common, settings) = table.split()?;
            let mut channel = validate_channel(ChannelKind::Whatsapp, common)?;
            channel.settings = ChannelSettings::Whatsapp(settings);
            channels.push(channel);
        }
        if let Some(table) = raw.sha6er {
            let (common, settings) = table.split()?;
            let mut channel = validate_channel(ChannelKind::Sha6er, common)?;
            channel.settings = ChannelSettings::Sha6er(settings);
            channels.push(channel);
        }
        if let Some(table) = raw.probe {
            channels.push(validate_channel(ChannelKind::Probe, table)?);
        }
        Ok(Config {
            odoo,
            state: self.state,
            webhooks: self.webhooks,
            admin: self.admin,
            schedule: self.schedule,
            retry: self.retry,
            log: self.log,
            daemon: self.daemon,
            channels,
        })
    }
}

fn validate_channel(kind: ChannelKind, t: RawChannel) -> Result<ChannelConfig, ConfigError> {
    let prefix = format!("channels.{}", kind.name());
    let key = |k: &str| format!("{prefix}.{k}");
    if t.enabled && !kind.implemented() {
        return Err(invalid(
            &key("enabled"),
            format!(
                "the {} channel is not part of this version of marketsync yet; set enabled = false",
                kind.name()
            ),
        ));
    }
    let (default_batch, max_batch) = kind.batch_limits();
    let batch_size = t.batch_size.unwrap_or(default_batch);
    if batch_size == 0 || batch_size > max_batch {
        return Err(invalid(
            &key("batch_size"),
            format!("must be between 1 and {max_batch}"),
        ));
    }
    if t.concurrency == 0 || t.concurrency > 32 {
        return Err(invalid(&key("concurrency"), "must be between 1 and 32"));
    }
    let base_url = match &t.base_url {
        Some(u) => Some(parse_base_url(&key("base_url"), u)?),
        None if t.enabled => {
            return Err(invalid(&key("base_url"), "missing; the channel is enabled"))
        }
        None => None,
    };
    let token_spec = SecretSpec {
        inline: t.token,
        file: t.token_file,
        env: t.token_env,
    };
    let token = if t.enabled || token_spec.is_set() {
        Some(
            token_spec
                .resolve(&key("token"))
                .map_err(|m| invalid_whole(&m.to_string()))?,
        )
    } else {
        None
    };
    let hook_spec = SecretSpec {
        inline: t.webhook_secret,
        file: t.webhook_secret_file,
        env: t.webhook_secret_env,
    };
    let webhook_secret = if hook_spec.is_set() {
        Some(
            hook_spec
                .resolve(&key("webhook_secret"))
                .map_err(|m| invalid_whole(&m.to_string()))?,
        )
    } else {
        None
    };
    Ok(ChannelConfig {
        kind,
        enabled: t.enabled,
        base_url,
        token,
        webhook_secret,
        batch_size,
        concurrency: t.concurrency,
        timeout: t.timeout.0,
        settings: ChannelSettings::Common,
        schedule: t.schedule,
        reconcile_mode: t.reconcile_mode,
    })
}

/// `SecretSpec::resolve` already formats `path: message`; split it back for the typed error.
pub(crate) fn invalid_whole(message: &str) -> ConfigError {
    match message.split_once(": ") {
        Some((path, rest)) => invalid(path, rest),
        None => invalid("(config)", message),
    }
}

fn parse_base_url(key: &str, text: &str) -> Result<url::Url, ConfigError> {
    let url = url::Url::parse(text)
        .map_err(|e| invalid(key, format!("not a valid URL ({e}): {text:?}")))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(invalid(
            key,
            format!("must start with http:// or https://, got {text:?}"),
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            key,
            "must not carry credentials; use the secret keys instead",
        ));
    }
    Ok(url)
}

fn first_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// serde speaks Rust (`expected u32`); operators read TOML (`expected an integer`).
fn friendly(message: &str) -> String {
    let mut m = first_line(message);
    for (rust, toml) in [
        ("expected u32", "expected an integer"),
        ("expected u64", "expected an integer"),
        ("expected usize", "expected an integer"),
        ("expected i64", "expected an integer"),
        ("expected a string", "expected a string"),
        ("expected a boolean", "expected true or false"),
    ] {
        if let Some(pos) = m.find(rust) {
            m.replace_range(pos.., toml);
        }
    }
    if let Some(rest) = m.strip_prefix("invalid type: ") {
        // "integer `5`, expected a string" -> "expected a string, found integer `5`"
        if let Some((found, expected)) = rest.split_once(", ") {
            return format!("{expected}, found {found}");
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[odoo]
url = "http://127.0.0.1:8069"
database = "odoo"
username = "admin"
api_key = "admin-key-1234"
"#;

    fn err(text: &str) -> String {
        match RawConfig::parse(text).and_then(RawConfig::validate) {
            Ok(_) => panic!("config unexpectedly valid"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let c = RawConfig::parse(MINIMAL).unwrap().validate().unwrap();
        assert_eq!(c.odoo.protocol, OdooProtocol::Xmlrpc);
        assert_eq!(c.odoo.max_concurrent_calls, 2);
        assert_eq!(c.retry.max_attempts, 10);
        assert_eq!(c.log.retention_days, 30);
        assert_eq!(c.state.path, PathBuf::from("/var/lib/marketsync/state.db"));
    }

    #[test]
    fn reads_in_flight_stays_within_the_calls_allowed() {
        let c = RawConfig::parse(MINIMAL).unwrap().validate().unwrap();
        assert_eq!(c.odoo.reads_in_flight, 1);
        let with =
            |n: &str| MINIMAL.replace("[odoo]\n", &format!("[odoo]\nreads_in_flight = {n}\n"));
        let ok = RawConfig::parse(&with("2")).unwrap().validate().unwrap();
        assert_eq!(ok.odoo.reads_in_flight, 2);
        for n in ["0", "3"] {
            assert_eq!(
                err(&with(n)),
                "odoo.reads_in_flight: must be between 1 and odoo.max_concurrent_calls (2)"
            );
        }
    }

    #[test]
    fn unknown_key_names_its_path() {
        let e = err(&format!("{MINIMAL}\n[retry]\nmax_atempts = 3\n"));
        assert!(
            e.starts_with("retry.max_atempts: unknown field")
                || e.starts_with("retry: unknown field `max_atempts`"),
            "{e}"
        );
        assert!(e.contains("max_atempts"), "{e}");
    }

    #[test]
    fn wrong_type_names_its_path() {
        let e = err(&format!(
            "{MINIMAL}\n[channels.cartona]\nbatch_size = \"many\"\n"
        ));
        assert_eq!(
            e,
            "channels.cartona.batch_size: expected an integer, found string \"many\" (line 9)"
        );
    }

    #[test]
    fn missing_required_value_names_its_path() {
        let e = err("[odoo]\nurl = \"http://x\"\nusername = \"a\"\napi_key = \"k123\"\n");
        assert_eq!(e, "odoo.database: missing; this key is required");
    }

    #[test]
    fn missing_secret_file_names_the_key() {
        let text = MINIMAL.replace(
            "api_key = \"admin-key-1234\"",
            "api_key_file = \"/nonexistent/odoo-key\"",
        );
        let e = err(&text);
        assert!(
            e.starts_with("odoo.api_key_file: cannot read /nonexistent/odoo-key"),
            "{e}"
        );
    }

    #[test]
    fn missing_secret_names_all_three_ways() {
        let e = err(&MINIMAL.replace("api_key = \"admin-key-1234\"", ""));
        assert!(e.starts_with("odoo.api_key: missing"), "{e}");
        assert!(
            e.contains("api_key_file") && e.contains("api_key_env"),
            "{e}"
        );
    }

    #[test]
    fn secret_from_environment() {
        std::env::set_var("MARKETSYNC_TEST_ODOO_KEY", "from-env-999");
        let text = MINIMAL.replace(
            "api_key = \"admin-key-1234\"",
            "api_key_env = \"MARKETSYNC_TEST_ODOO_KEY\"",
        );
        let c = RawConfig::parse(&text).unwrap().validate().unwrap();
        assert_eq!(c.odoo.api_key.expose(), "from-env-999");
        assert!(!format!("{c:?}").contains("from-env-999"));
    }

    #[test]
    fn bad_protocol_and_schedule_are_named() {
        let e = err(&MINIMAL.replace("username", "protocol = \"soap\"\nusername"));
        assert!(
            e.starts_with("odoo.protocol: unknown variant `soap`"),
            "{e}"
        );
        let e = err(&format!(
            "{MINIMAL}\n[schedule]\ncatalog_poll = \"5 parsecs\"\n"
        ));
        assert!(e.starts_with("schedule.catalog_poll:"), "{e}");
        let e = err(&format!(
            "{MINIMAL}\n[schedule]\nreconcile = \"99 * * * *\"\n"
        ));
        assert!(
            e.starts_with("schedule.reconcile: invalid cron expression"),
            "{e}"
        );
    }

    #[test]
    fn a_channel_s_own_schedule_replaces_the_global_one_for_its_streams_only() {
        let text = format!(
            "{MINIMAL}\n[schedule]\norders_poll = \"1m\"\ncatalog_poll = \"45s\"\n\
             [channels.cartona]\nenabled = true\ntoken = \"tok-1234\"\n\
             [channels.cartona.schedule]\norders_poll = \"5m\"\n\
             [channels.medusa]\nbase_url = \"http://x\"\n"
        );
        let c = RawConfig::parse(&text).unwrap().validate().unwrap();
        let every = |s: &Schedule| match s {
            Schedule::Every(d) => d.as_secs(),
            Schedule::Cron(_) => 0,
        };
        let cartona = c
            .channel(ChannelKind::Cartona)
            .unwrap()
            .schedule
            .over(&c.schedule);
        assert_eq!(every(&cartona.orders_poll), 300);
        assert_eq!(every(&cartona.catalog_poll), 45, "the rest stays global");
        let medusa = c
            .channel(ChannelKind::Medusa)
            .unwrap()
            .schedule
            .over(&c.schedule);
        assert_eq!(
            every(&medusa.orders_poll),
            60,
            "another channel keeps [schedule]"
        );
        let e = err(&format!(
            "{MINIMAL}\n[channels.cartona.schedule]\nhousekeeping = \"1h\"\n"
        ));
        assert!(e.contains("housekeeping"), "{e}");
        let e = err(&format!(
            "{MINIMAL}\n[channels.medusa.schedule]\norders_poll = \"soon\"\n"
        ));
        assert!(e.starts_with("channels.medusa.schedule.orders_poll"), "{e}");
    }

    #[test]
    fn cartona_settings_are_checked_and_other_channels_refused_when_enabled() {
        let base = format!("{MINIMAL}\n[channels.cartona]\nenabled = true\ntoken = \"tok-1234\"\n");
        let c = RawConfig::parse(&base).unwrap().validate().unwrap();
        let cartona = c.channel(ChannelKind::Cartona).unwrap();
        assert!(cartona.enabled);
        assert_eq!(
            cartona.base_url.as_ref().unwrap().as_str(),
            "https://supplier-integrations.cartona.com/api/v1/"
        );
        assert_eq!(cartona.cartona().unwrap().stock_field, "free_qty");
        let e = err(&format!("{base}cancellation_reason = \"bored\"\n"));
        assert!(
            e.starts_with(
                "channels.cartona.cancellation_reason: \"bored\" is not one of Cartona's reasons"
            ),
            "{e}"
        );
        let e = err(&format!("{base}stock_field = \"list_price\"\n"));
        assert!(e.starts_with("channels.cartona.stock_field:"), "{e}");
        let e = err(&format!("{base}pricelist_id = 0\n"));
        assert_eq!(
            e,
            "channels.cartona.pricelist_id: 0 is not an Odoo record id (ids start at 1); leave it out for none"
        );
        let e = err(&format!(
            "{MINIMAL}\n[channels.medusa]\nenabled = true\npricelist_id = -3\n"
        ));
        assert!(
            e.starts_with("channels.medusa.pricelist_id: -3 is not"),
            "{e}"
        );
        let e = err(&format!(
            "{base}[channels.cartona.status_actions]\napproved = \"ship\"\n"
        ));
        assert!(
            e.starts_with("channels.cartona.status_actions.approved: \"ship\" is not an action"),
            "{e}"
        );
        let c = RawConfig::parse(&format!(
            "{base}[channels.cartona.status_actions]\napproved = \"nothing\"\n"
        ))
        .unwrap()
        .validate()
        .unwrap();
        assert_eq!(
            c.channel(ChannelKind::Cartona)
                .unwrap()
                .cartona()
                .unwrap()
                .status_actions["approved"],
            "nothing"
        );
        let e = err(&format!("{base}match_key = \"name\"\n"));
        assert!(
            e.starts_with("channels.cartona.match_key: unknown variant `name`"),
            "{e}"
        );
        let e = err(&format!("{MINIMAL}\n[channels.cartona]\nenabled = true\n"));
        assert!(e.starts_with("channels.cartona.token: missing"), "{e}");
        let e = err(&format!("{MINIMAL}\n[channels.sha6er]\nenabled = true\n"));
        assert!(e.starts_with("channels.sha6er.warehouse: missing"), "{e}");
        let e = err(&format!("{MINIMAL}\n[channels.meta]\nenabled = true\n"));
        assert!(e.starts_with("channels.meta.catalog_id: missing"), "{e}");
        let meta = |extra: &str| {
            format!(
                "{MINIMAL}\n[channels.meta]\nenabled = true\ncatalog_id = \"1234\"\ntoken = \"EAAG-1234\"\n\
                 currency = \"kwd\"\nlink = \"https://shop.example.com/p/{{slug}}\"\n\
                 image_link = \"https://shop.example.com/i/{{id}}.jpg\"\n{extra}"
            )
        };
        let ok = RawConfig::parse(&meta("")).unwrap().validate().unwrap();
        let m = ok.channel(ChannelKind::Meta).unwrap();
        assert_eq!(m.batch_size, 1000, "Meta's default batch");
        assert_eq!(
            m.base_url.as_ref().unwrap().as_str(),
            "https://graph.facebook.com/v26.0/"
        );
        assert_eq!(m.meta().unwrap().currency, "KWD");
        assert!(RawConfig::parse(&meta("batch_size = 5000\n"))
            .unwrap()
            .validate()
            .is_ok());
        let e = err(&meta("batch_size = 5001\n"));
        assert!(
            e.starts_with("channels.meta.batch_size: must be between 1 and 5000"),
            "{e}"
        );
        let e = err(&format!(
            "{MINIMAL}\n[channels.cartona]\nbatch_size = 1001\n"
        ));
        assert!(
            e.starts_with("channels.cartona.batch_size: must be between 1 and 1000"),
            "{e}"
        );
        let e = err(&meta("").replace("https://shop.example.com/p/", "http://shop.example.com/p/"));
        assert!(
            e.starts_with(
                "channels.meta.link: \"http://shop.example.com/p/{slug}\" must be an https URL"
            ),
            "{e}"
        );
        let e = err(&meta("").replace("{id}.jpg", "{sku}.jpg"));
        assert!(
            e.starts_with("channels.meta.image_link: {sku} is not a placeholder"),
            "{e}"
        );
        let e = err(&meta("attribute_fields = { \"Couleur\" = \"colour\" }\n"));
        assert!(
            e.starts_with("channels.meta.attribute_fields.Couleur: \"colour\" is not a Meta variant field; use one of color, size,"),
            "{e}"
        );
        let ok = RawConfig::parse(&meta("attribute_fields = { \"Couleur\" = \"Color\" }\n"))
            .unwrap()
            .validate()
            .unwrap();
        let fields = &ok
            .channel(ChannelKind::Meta)
            .unwrap()
            .meta()
            .unwrap()
            .attribute_fields;
        assert_eq!(fields.get("couleur").map(String::as_str), Some("color"));
        let e = err(&meta("").replace("image_link = ", "# image_link = "));
        assert!(
            e.starts_with("channels.meta.image_link: missing; Odoo is served over http"),
            "{e}"
        );
        let e = err(&format!("{MINIMAL}\n[channels.medusa]\nenabled = true\nbase_url = \"http://x\"\ntoken = \"k-1234\"\n"));
        assert!(
            e.starts_with("channels.medusa.webhook_secret: missing"),
            "{e}"
        );
        let e = err(&format!(
            "{MINIMAL}\n[channels.medusa]\nflavour = \"shopify\"\n"
        ));
        assert!(
            e.starts_with("channels.medusa.flavour: unknown variant `shopify`"),
            "{e}"
        );
    }

    #[test]
    fn a_channel_s_shared_keys_reach_its_config_and_cartona_refuses_a_webhook_secret() {
        let text = format!(
            "{MINIMAL}\n[channels.medusa]\nenabled = true\nbase_url = \"http://shop.example/\"\n\
             token = \"medusa-key-1234\"\nwebhook_secret = \"medusa-hook-1234\"\nbatch_size = 7\n\
             concurrency = 3\ntimeout = \"9s\"\n[channels.medusa.schedule]\norders_poll = \"2m\"\n\
             [channels.cartona]\ntoken = \"cartona-token-1234\"\n"
        );
        let c = RawConfig::parse(&text).unwrap().validate().unwrap();
        let m = c
            .channels
            .iter()
            .find(|c| c.kind == ChannelKind::Medusa)
            .unwrap();
        assert!(m.enabled);
        assert_eq!(
            m.base_url.as_ref().unwrap().as_str(),
            "http://shop.example/"
        );
        assert_eq!(m.token.as_ref().unwrap().expose(), "medusa-key-1234");
        assert_eq!(
            m.webhook_secret.as_ref().unwrap().expose(),
            "medusa-hook-1234"
        );
        assert_eq!((m.batch_size, m.concurrency), (7, 3));
        assert_eq!(m.timeout, Duration::from_secs(9));
        assert!(m.schedule.orders_poll.is_some());
        let cartona = c
            .channels
            .iter()
            .find(|c| c.kind == ChannelKind::Cartona)
            .unwrap();
        assert_eq!(
            cartona.base_url.as_ref().unwrap().as_str(),
            "https://supplier-integrations.cartona.com/api/v1/"
        );
        let e = err(&format!(
            "{MINIMAL}\n[channels.medusa]\nreconcile_mode = \"read-back\"\n"
        ));
        assert!(
            e.starts_with("channels.medusa.reconcile_mode: \"read-back\" needs a store marketsync can read back"),
            "{e}"
        );
        let e = err(&format!(
            "{MINIMAL}\n[channels.cartona]\ntoken = \"cartona-token-1234\"\nwebhook_secret_env = \"X\"\n"
        ));
        assert!(
            e.starts_with(
                "channels.cartona.webhook_secret_env: Cartona sends marketsync no webhooks"
            ),
            "{e}"
        );
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn cron_schedule_finds_next_occurrence() {
        let s: Schedule = "0 3 * * *".parse().unwrap();
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-21T02:00:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(s.next_delay(now), Duration::from_secs(3600));
    }
}
