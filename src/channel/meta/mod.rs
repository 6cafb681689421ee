//! Meta's Commerce catalog (Facebook and Instagram shops, ads): Odoo's products, prices and
//! stock kept in step through the Graph API. Meta brings no orders in: buyers follow each
//! item's link to the supplier's store, whose own channel brings the order.
//!
//! - Catalog out (`meta.catalog`, `meta.reconcile`): one `item` job per product whose item
//!   changed (title, description, price and sale price, availability and inventory, brand,
//!   GTIN, images, link, item group); a removed product is deleted or kept out of stock
//!   (`on_remove`). Up to `batch_size` items go in one `POST /{catalog_id}/items_batch`
//!   (under 28 MB, halved on code 1); the jobs then wait for the batch's handles, polled with
//!   `check_batch_request_status` until finished. Only then is an item recorded as sent; one
//!   Meta refused is dead with Meta's message, its batch-mates done.
//! - Throttling as Meta signals it: the usage headers of every answer slow calls down from
//!   75 %; a throttle code pauses every call of the channel for the regain time (jobs wait
//!   without spending attempts); code 190 stops the channel (`status` says so) until a probe
//!   with a good token is accepted.
//!
//! Files: this one (what the channel is, wiring, the Graph calls), `config.rs`, `catalog.rs`
//! (items planned and pushed, batches polled, the read-back of `diff`), `jobs.rs` (payloads),
//! `wire.rs` (Meta's formats, pure functions).

use crate::channel::http::{ChannelError, HttpClient, RawAnswer};
use crate::channel::StreamKind;
use crate::config::ChannelConfig;
use crate::daemon::workers::JobError;
use crate::odoo::OdooClient;
use crate::retry::RetryClass;
use crate::store::queue::Job;
use crate::store::Store;
use crate::sync::catalog::CatalogReader;
use config::MetaSettings;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

pub const CHANNEL: &str = "meta";

mod catalog;
pub mod config;
pub mod jobs;
pub mod wire;

/// The fact that holds the channel's pause after a throttle code: `{"until": ms, "reason"}`.
pub const THROTTLED_FACT: &str = "channel.meta.throttled_until";

/// Usage from which calls slow down (Meta throttles at 100 %).
const PACE_FROM: u32 = 75;
/// The longest pause before one call while usage is high.
const PACE_MAX: Duration = Duration::from_secs(15);

/// The pause before a call at `percent` of a quota: none under [`PACE_FROM`], then growing
/// with the square of the distance past it, to [`PACE_MAX`] at 100 %.
pub fn pace_wait(percent: u32) -> Option<Duration> {
    if percent < PACE_FROM {
        return None;
    }
    let step = u64::from(percent.min(100) - PACE_FROM + 1);
    Some(Duration::from_millis(step * step * 25).min(PACE_MAX))
}

pub struct Meta {
    pub api: HttpClient,
    pub settings: MetaSettings,
    pub odoo: OdooClient,
    pub store: Store,
    pub reader: CatalogReader,
    pub odoo_url: url::Url,
    /// Items per call now: `batch_size`, halved by each "reduce the amount of data" (code 1).
    max_items: AtomicUsize,
    /// The usage Meta's last answer reported.
    usage: Mutex<wire::Usage>,
    /// The catalog stream is planning: item jobs wait for its next pages to fill their call.
    planning: std::sync::atomic::AtomicBool,
}

/// Why a Graph call did not give an answer to use.
#[derive(Debug, Clone)]
pub enum Refused {
    /// Over a quota: nothing goes out for this long.
    Throttled(Duration, String),
    /// Code 190: the channel is stopped.
    Token(String),
    /// Code 1: the request was too big.
    TooBig(String),
    /// Anything else.
    Failed(ChannelError),
}

impl Refused {
    pub fn message(&self) -> &str {
        match self {
            Refused::Throttled(_, m) | Refused::Token(m) | Refused::TooBig(m) => m,
            Refused::Failed(e) => &e.message,
        }
    }
}

impl From<Refused> for JobError {
    fn from(r: Refused) -> JobError {
        match r {
            Refused::Throttled(after, m) => JobError::new(RetryClass::Throttled { after }, m),
            // Waits as for an unreachable peer: the probe releases it once a token is taken.
            Refused::Token(m) => JobError::new(RetryClass::Unreachable, m),
            Refused::TooBig(m) => JobError::new(RetryClass::Permanent, m),
            Refused::Failed(e) => e.into(),
        }
    }
}

impl From<Refused> for crate::error::Error {
    fn from(r: Refused) -> crate::error::Error {
        crate::error::Error::invalid(r.message().to_string())
    }
}

/// A Graph call.
enum Call<'a> {
    Get(&'a str, &'a [(&'a str, String)]),
    Post(&'a str, Vec<u8>),
}

/// The HTTP client: the system user's token as `Authorization: Bearer`.
pub fn client(cfg: &ChannelConfig) -> Result<HttpClient, crate::error::Error> {
    let (token, base) = crate::channel::kit::token_and_base(cfg)?;
    let header = (
        "authorization",
        crate::secret::Secret::new(format!("Bearer {}", token.expose())),
    );
    Ok(HttpClient::new("Meta", base, cfg.timeout, vec![header]))
}

/// How Meta reads Odoo's catalog (also what `check --estimate` times).
pub fn reader(settings: &MetaSettings, odoo: OdooClient) -> CatalogReader {
    CatalogReader {
        odoo,
        stock_field: settings.stock_field.clone(),
        warehouse_id: None,
        pricelist_id: settings.pricelist_id,
        currency: Some(settings.currency.clone()),
        extra_fields: vec![
            "description_sale",
            "product_tmpl_id",
            "product_template_attribute_value_ids",
        ],
        filter: settings.products.clone(),
        known_rules: Default::default(),
        currency_guard: Default::default(),
        company_currency: Default::default(),
        config_key: "channels.meta",
    }
}

/// The channel as `diff` and the daemon use it.
pub fn build(w: &crate::channel::Wiring<'_>) -> Result<Meta, crate::error::Error> {
    let Some(settings) = w.cfg.meta().cloned() else {
        return Err(crate::error::Error::invalid(
            "channels.meta has no Meta settings",
        ));
    };
    Ok(Meta {
        api: client(w.cfg)?,
        reader: reader(&settings, w.odoo.clone()),
        odoo_url: w.config.odoo.url.clone(),
        max_items: AtomicUsize::new(w.cfg.batch_size.max(1) as usize),
        usage: Mutex::default(),
        planning: Default::default(),
        odoo: w.odoo.clone(),
        store: w.store.clone(),
        settings,
    })
}

/// The cheapest call that shows the catalog answers and takes the token.
async fn read_catalog(api: &HttpClient, catalog_id: &str) -> Result<serde_json::Value, Refused> {
    let query = [("fields", "id,name,product_count".to_string())];
    let answer = api
        .get_raw(catalog_id, &query)
        .await
        .map_err(Refused::Failed)?;
    interpret(
        &answer,
        &format!("GET {catalog_id}"),
        wire::Usage::default(),
    )
}

/// `check`: the catalog's name and item count, or why it cannot be read.
pub async fn check(cfg: &ChannelConfig) -> (bool, String) {
    let (api, settings) = match (client(cfg), cfg.meta()) {
        (Ok(api), Some(s)) => (api, s),
        (Err(e), _) => return (false, e.to_string()),
        (_, None) => return (false, "channels.meta has no Meta settings".into()),
    };
    match read_catalog(&api, &settings.catalog_id).await {
        Ok(c) => (
            true,
            format!(
                "Meta catalog {:?} ({}) at {}: token accepted, {} item(s)",
                c["name"].as_str().unwrap_or("?"),
                settings.catalog_id,
                cfg.base_url.as_ref().map(|u| u.as_str()).unwrap_or(""),
                c["product_count"].as_i64().unwrap_or(0)
            ),
        ),
        Err(r) => (false, r.message().to_string()),
    }
}

/// What an answer says: its JSON, or why it is refused (Graph's error envelope read).
fn interpret(
    answer: &RawAnswer,
    what: &str,
    usage: wire::Usage,
) -> Result<serde_json::Value, Refused> {
    if answer.status < 300 {
        return serde_json::from_slice(&answer.body).map_err(|_| {
            Refused::Failed(ChannelError::new(
                RetryClass::Transient,
                format!(
                    "Meta answered {what} with a body that is not JSON: {}",
                    crate::odoo::transport::summarize_body_from(
                        &String::from_utf8_lossy(&answer.body),
                        "Meta"
                    )
                ),
            ))
        });
    }
    let status = answer.status;
    let Some(e) = wire::GraphError::of(&answer.body) else {
        let class =
            crate::channel::http::status_class(status, None).unwrap_or(RetryClass::Permanent);
        let mut err = ChannelError::new(
            class,
            format!(
                "Meta answered HTTP {status} to {what}: {}",
                crate::odoo::transport::summarize_body_from(
                    &String::from_utf8_lossy(&answer.body),
                    "Meta"
                )
            ),
        );
        err.status = Some(status);
        return Err(Refused::Failed(err));
    };
    let said = format!("Meta refused {what} (code {}): {}", e.code, e.message);
    Err(match wire::react(&e, status, usage.regain) {
        wire::Reaction::Throttled(after) => Refused::Throttled(
            after,
            format!(
                "{said}; Meta takes calls again in about {} min, and nothing goes out until then",
                after.as_secs().div_ceil(60)
            ),
        ),
        wire::Reaction::TokenRefused => Refused::Token(format!(
            "{said}; the access token is invalid or expired: give channels.meta a new system-user token (Business Settings > System users > Generate token, with catalog_management) and restart marketsync"
        )),
        wire::Reaction::Smaller => Refused::TooBig(said),
        wire::Reaction::Other(class) => {
            let mut err = ChannelError::new(class, said);
            err.status = Some(status);
            Refused::Failed(err)
        }
    })
}

impl Meta {
    /// Items per call now.
    pub fn max_items(&self) -> usize {
        self.max_items.load(Ordering::Relaxed).max(1)
    }

    /// Code 1: later calls carry half as many items.
    fn halve(&self, from: usize) {
        let half = (from / 2).max(1);
        self.max_items.fetch_min(half, Ordering::Relaxed);
    }

    /// Whether calls may go out: not while the channel is stopped (a refused token) or
    /// paused (a throttle code, until its regain time).
    fn gate(&self) -> Result<(), Refused> {
        let store_err = |e: crate::store::StoreError| {
            Refused::Failed(ChannelError::new(RetryClass::Transient, e.to_string()))
        };
        if let Some(u) = crate::store::reach::get(&self.store, CHANNEL).map_err(store_err)? {
            if u.stopped {
                return Err(Refused::Token(u.error));
            }
        }
        if let Some((value, _)) =
            crate::store::facts::get(&self.store, THROTTLED_FACT).map_err(store_err)?
        {
            let v: serde_json::Value = serde_json::from_str(&value).unwrap_or_default();
            let until = v["until"].as_i64().unwrap_or(0);
            let left = until - crate::store::now_ms();
            if left > 0 {
                return Err(Refused::Throttled(
                    Duration::from_millis(left as u64),
                    v["reason"]
                        .as_str()
                        .unwrap_or("Meta is throttling")
                        .to_string(),
                ));
            }
        }
        Ok(())
    }

    /// Holds every call of the channel for `after` (said once in the sync log).
    fn pause(&self, after: Duration, reason: &str) {
        let until = crate::store::now_ms() + after.as_millis() as i64;
        let value = serde_json::json!({"until": until, "reason": reason}).to_string();
        if crate::store::facts::set(&self.store, THROTTLED_FACT, &value).is_ok() {
            crate::internal_events::emit(
                &self.store,
                &crate::internal_events::ChannelThrottled {
                    channel: CHANNEL,
                    reason,
                },
            );
        }
    }

    /// Above [`PACE_FROM`] % of a quota, a pause before each call, growing to [`PACE_MAX`]
    /// near 100 %: slower, rather than throttled.
    async fn pace(&self) {
        let percent = self.usage.lock().unwrap_or_else(|e| e.into_inner()).percent;
        if let Some(wait) = pace_wait(percent) {
            tokio::time::sleep(wait).await;
        }
    }

    /// One Graph call, through the gate and the pace; the usage headers read; a throttle
    /// pauses the channel, a refused token stops it.
    async fn graph(&self, call: Call<'_>) -> Result<serde_json::Value, Refused> {
        self.gate()?;
        self.pace().await;
        let (answer, what) = match call {
            Call::Get(path, query) => (self.api.get_raw(path, query).await, format!("GET {path}")),
            Call::Post(path, body) => (self.api.post_raw(path, body).await, format!("POST {path}")),
        };
        let answer = answer.map_err(Refused::Failed)?;
        let usage = wire::Usage::of(
            answer.header("x-app-usage"),
            answer.header("x-business-use-case-usage"),
        );
        *self.usage.lock().unwrap_or_else(|e| e.into_inner()) = usage;
        let result = interpret(&answer, &what, usage);
        match &result {
            Err(Refused::Throttled(after, reason)) => {
                // The pause does the slowing down; the first call after it learns anew.
                *self.usage.lock().unwrap_or_else(|e| e.into_inner()) = wire::Usage::default();
                self.pause(*after, reason)
            }
            Err(Refused::Token(reason)) => {
                let _ = crate::store::reach::stop(&self.store, CHANNEL, reason);
            }
            _ => {}
        }
        result
    }
}

impl crate::channel::MarketChannel for Meta {
    const STREAMS: &'static [StreamKind] = &[StreamKind::Catalog, StreamKind::Reconcile];
    const ORDER_PREFIX: Option<&'static str> = None;
    type Kind = jobs::Kind;

    async fn run(&self, kind: jobs::Kind, jobs: &[Job]) -> crate::channel::Outcomes {
        match kind {
            jobs::Kind::Item => self.push_items(jobs).await,
        }
    }

    fn poll_overlap(&self) -> Duration {
        self.settings.poll_overlap
    }

    /// The catalog read with the token, past the gate: a refused token keeps the channel
    /// stopped (the probe fails as unreachable); a token taken again releases its jobs.
    async fn probe(&self) -> Result<(), ChannelError> {
        match read_catalog(&self.api, &self.settings.catalog_id).await {
            Ok(_) => Ok(()),
            Err(Refused::Token(m)) => Err(ChannelError::new(RetryClass::Unreachable, m)),
            Err(Refused::Failed(e)) => Err(e),
            // Any other answer shows the peer is up and takes the token.
            Err(_) => Ok(()),
        }
    }
}

/// Meta brings no orders in.
impl crate::channel::Orders for Meta {
    async fn orders(&self) -> crate::channel::StreamResult {
        Ok(Default::default())
    }
}

/// Meta hears nothing of orders.
impl crate::channel::Progress for Meta {
    async fn status_for(
        &self,
        _order: &crate::store::orders::ChannelOrder,
        _events: &[crate::store::order_events::OrderEvent],
    ) -> Result<Option<crate::store::queue::NewJob>, JobError> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_slow_down_from_three_quarters_of_a_quota_and_most_near_its_end() {
        assert_eq!(pace_wait(0), None);
        assert_eq!(pace_wait(74), None);
        assert_eq!(pace_wait(75), Some(Duration::from_millis(25)));
        assert_eq!(pace_wait(85), Some(Duration::from_millis(11 * 11 * 25)));
        assert_eq!(pace_wait(99), Some(Duration::from_millis(15_000)));
        assert_eq!(
            pace_wait(400),
            Some(PACE_MAX),
            "a malformed figure waits the most, no more"
        );
        let waits: Vec<Duration> = (75..=100).filter_map(pace_wait).collect();
        assert!(
            waits.windows(2).all(|w| w[0] <= w[1]),
            "never less as usage grows"
        );
    }
}
