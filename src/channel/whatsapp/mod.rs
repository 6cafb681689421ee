//! WhatsApp notifications: each customer of a Cartona or Medusa order is told, through an
//! approved template from the supplier's business number, when the order is confirmed,
//! shipped (with its tracking), delivered or cancelled in Odoo. Not a marketplace: it brings
//! no orders and lists no products; it subscribes to every marketplace order's events.
//!
//! - One message per (order, step), recorded in the state (`messages`) before anything is
//!   sent, with WhatsApp's message id (`wamid`) once accepted. A send whose answer was lost
//!   after the request went out is not repeated: it is `unconfirmed` until the status webhook
//!   of that message (found by the `biz_opaque_callback_data` it was sent with) settles it.
//!   Only a send that surely did not leave (the connection was never made) is tried again.
//! - Consent: with `require_opt_in`, a customer whose Odoo partner has not agreed
//!   (`opt_in_field`) gets nothing (the message is `skipped`, counted, not an error). Numbers
//!   are normalised to E.164; one that cannot be is the message's reason, nothing sent.
//! - WhatsApp's errors: 132001 (no such template in that language) tries the fallback
//!   language, then `fallback_template`, then the message is dead; 132000 (parameters) dead;
//!   131026 (not on WhatsApp) dead, and the number is not tried for later steps; 130429,
//!   131056, 80007 wait without spending attempts; 190 stops the channel (`status`).
//! - Webhook `/webhooks/whatsapp`: the subscription handshake, `X-Hub-Signature-256` checked
//!   over the raw body; statuses (sent, delivered, read, failed) update the message; inbound
//!   customer messages are counted and logged, not answered.
//!
//! Files: this one (what the channel is, wiring, `check`, the probe, the subscriber),
//! `config.rs`, `notify.rs` (a message sent), `webhook.rs` (statuses in), `wire.rs` (formats).

use crate::channel::events::{Delivered, Interest, Subscriber};
use crate::channel::http::{ChannelError, HttpClient};
use crate::channel::Started;
use crate::config::ChannelConfig;
use crate::daemon::workers::{ChannelWorkers, JobError, JobHandler};
use crate::odoo::OdooClient;
use crate::retry::RetryClass;
use crate::store::order_events::{OrderEvent, Subscription};
use crate::store::orders::ChannelOrder;
use crate::store::queue::{Job, NewJob, Payload};
use crate::store::{messages, Store};
use config::WhatsappSettings;
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

pub mod config;
mod notify;
pub mod webhook;
pub mod wire;

pub const CHANNEL: &str = "whatsapp";

/// Job kinds: the messages of one order to send; a status webhook's news of one message; a
/// webhook's inbound customer messages.
pub const NOTIFY: &str = "notify";
pub const STATUS: &str = "status";
pub const INBOUND: &str = "inbound";

/// The payload of a [`NOTIFY`] job: the order whose planned messages go out.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NotifyOrder {
    pub channel: String,
    pub external_id: String,
}

pub struct Whatsapp {
    pub api: HttpClient,
    pub settings: WhatsappSettings,
    pub odoo: OdooClient,
    pub store: Store,
    /// The partner fields this Odoo has, of those the settings name (read once).
    partner_fields: tokio::sync::OnceCell<notify::PartnerFields>,
    /// The longest wait for one answer (`timeout`).
    send_timeout: std::time::Duration,
}

pub fn client(cfg: &ChannelConfig) -> Result<HttpClient, crate::error::Error> {
    crate::channel::kit::bearer_client("WhatsApp", cfg)
}

fn settings(cfg: &ChannelConfig) -> Result<&WhatsappSettings, crate::error::Error> {
    cfg.whatsapp()
        .ok_or_else(|| crate::error::Error::invalid("channels.whatsapp has no settings"))
}

/// `check`: the business number, read with the token (`GET /{phone_number_id}`).
pub async fn check(cfg: &ChannelConfig) -> (bool, String) {
    let (api, s) = match client(cfg).and_then(|a| Ok((a, settings(cfg)?))) {
        Ok(x) => x,
        Err(e) => return (false, e.to_string()),
    };
    let query = [(
        "fields",
        "display_phone_number,verified_name,quality_rating".to_string(),
    )];
    match api.get_raw(&s.phone_number_id, &query).await {
        Err(e) => (false, e.message),
        Ok(a) if a.status < 300 => {
            let v: serde_json::Value = serde_json::from_slice(&a.body).unwrap_or_default();
            (
                true,
                format!(
                    "WhatsApp business number {} ({}), quality {}; {} step(s) told: {}",
                    v["display_phone_number"].as_str().unwrap_or("?"),
                    v["verified_name"].as_str().unwrap_or("no verified name"),
                    v["quality_rating"].as_str().unwrap_or("unknown"),
                    s.notify.len(),
                    s.notify
                        .iter()
                        .map(|(k, n)| format!("{} ({})", k.as_str(), n.template))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        }
        Ok(a) => {
            let e = crate::channel::meta::wire::GraphError::of(&a.body);
            (
                false,
                match e {
                    Some(e) if e.code == wire::TOKEN_INVALID => format!(
                        "WhatsApp refused the token (code 190: {}); give channels.whatsapp a new system-user token",
                        e.message
                    ),
                    Some(e) => format!(
                        "WhatsApp answered HTTP {} for phone number id {}: {} (code {})",
                        a.status, s.phone_number_id, e.message, e.code
                    ),
                    None => format!("WhatsApp answered HTTP {}", a.status),
                },
            )
        }
    }
}

/// Starts the notifications: its deliveries of order events, its message jobs, the webhook's
/// status jobs, and its reach stream (a refused token stops it until a probe is accepted).
pub fn start(w: &crate::channel::Wiring<'_>) -> Result<Started, crate::error::Error> {
    let cfg = w.cfg;
    let channel = Arc::new(Whatsapp {
        api: client(cfg)?,
        settings: settings(cfg)?.clone(),
        odoo: w.odoo.clone(),
        store: w.store.clone(),
        partner_fields: Default::default(),
        send_timeout: cfg.timeout,
    });
    Ok(Started {
        name: CHANNEL,
        workers: ChannelWorkers {
            handler: Arc::new(crate::channel::events::Subscribed {
                name: CHANNEL,
                store: w.store.clone(),
                jobs: channel.clone(),
                subscriber: channel.clone(),
            }),
            concurrency: cfg.concurrency,
        },
        streams: vec![
            crate::channel::reach_stream(CHANNEL, Probe(channel.clone()), w),
            notify::confirm_stream(channel.clone(), w),
        ],
        subscription: Some(Subscription {
            subscriber: CHANNEL.into(),
            interest: Interest::All,
        }),
        owns: None,
        poll_overlap: std::time::Duration::ZERO,
    })
}

/// What `check` says with Odoo reached: whether Odoo has the consent and phone fields.
pub async fn findings(s: &WhatsappSettings, odoo: &OdooClient) -> Vec<crate::channel::Finding> {
    use crate::channel::Finding;
    let target = "whatsapp.partner_fields".to_string();
    let fields = match notify::PartnerFields::read(odoo, s).await {
        Ok(f) => f,
        Err(e) => {
            return vec![Finding::new(
                target,
                false,
                format!("cannot read res.partner's fields: {e}"),
            )]
        }
    };
    let phones = &fields.phones;
    let mut out = Vec::new();
    if phones.is_empty() {
        out.push(Finding::new(
            target.clone(),
            false,
            format!(
                "Odoo's partners have none of the phone fields {}: no customer can be told",
                s.phone_fields.join(", ")
            ),
        ));
    }
    if s.require_opt_in && fields.opt_in.is_none() {
        out.push(Finding::new(
            target.clone(),
            false,
            format!("Odoo's partners have no field {} (consent): add it as a boolean, or nobody is told", s.opt_in_field),
        ));
    }
    if out.is_empty() {
        out.push(Finding::new(
            target,
            true,
            format!(
                "numbers read from {}{}",
                phones.join(", then "),
                if s.require_opt_in {
                    format!("; consent from {}", s.opt_in_field)
                } else {
                    String::new()
                }
            ),
        ));
    }
    out
}

struct Probe(Arc<Whatsapp>);

impl crate::channel::PeerProbe for Probe {
    /// The business number read with the token: a refused token keeps the channel stopped.
    async fn probe(&self) -> Result<(), ChannelError> {
        let a = self
            .0
            .api
            .get_raw(&self.0.settings.phone_number_id, &[("fields", "id".into())])
            .await?;
        match crate::channel::meta::wire::GraphError::of(&a.body) {
            Some(e) if e.code == wire::TOKEN_INVALID => Err(ChannelError::new(
                RetryClass::Unreachable,
                format!("WhatsApp still refuses the token (code 190: {})", e.message),
            )),
            _ => Ok(()),
        }
    }
}

impl Subscriber for Whatsapp {
    fn interest(&self) -> Interest {
        Interest::All
    }

    /// Records a message for each step the customer is told of, then queues the order's
    /// notify job (both repeatable: a delivery made again records nothing twice).
    fn deliver<'a>(
        &'a self,
        order: &'a ChannelOrder,
        events: &'a [OrderEvent],
    ) -> BoxFuture<'a, Delivered> {
        Box::pin(async move {
            if !self.settings.for_channels.contains(&order.channel) {
                return Delivered::all(events, Vec::new());
            }
            let told: Vec<&OrderEvent> = events
                .iter()
                .filter(|e| self.settings.notify.contains_key(&e.kind))
                .collect();
            if told.is_empty() {
                return Delivered::all(events, Vec::new());
            }
            let planned = self.store.write(|tx| {
                for e in &told {
                    messages::plan_in(
                        tx,
                        &order.channel,
                        &order.external_id,
                        e.kind.as_str(),
                        e.id,
                    )?;
                }
                Ok(())
            });
            if let Err(e) = planned {
                return Delivered {
                    failure: Some(crate::sync::order_import::store_err(e)),
                    ..Default::default()
                };
            }
            Delivered::all(events, vec![notify_job(&order.channel, &order.external_id)])
        })
    }
}

/// The job that sends an order's planned messages.
pub fn notify_job(channel: &str, external_id: &str) -> NewJob {
    NewJob {
        channel: CHANNEL.into(),
        kind: NOTIFY.into(),
        key: format!("{CHANNEL}:notify:{channel}:{external_id}"),
        payload: Payload::of(&NotifyOrder {
            channel: channel.into(),
            external_id: external_id.into(),
        }),
        correlation_id: None,
    }
}

impl JobHandler for Whatsapp {
    fn handle<'a>(&'a self, job: &'a Job) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(async move {
            match job.kind.as_str() {
                NOTIFY => {
                    let o: NotifyOrder = crate::channel::kit::payload(job)?;
                    self.notify_order(&o.channel, &o.external_id).await
                }
                STATUS => {
                    let s: webhook::StatusJob = crate::channel::kit::payload(job)?;
                    webhook::apply(&self.store, &s)
                }
                INBOUND => {
                    let s: webhook::InboundJob = crate::channel::kit::payload(job)?;
                    webhook::inbound(&self.store, &s);
                    Ok(())
                }
                _ => Err(crate::channel::kit::unknown_kind(job)),
            }
        })
    }
}

/// `+965•••3456`: a number as the logs show it.
pub fn masked(phone: &str) -> String {
    let chars: Vec<char> = phone.chars().collect();
    if chars.len() <= 7 {
        return "•••".into();
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}•••{tail}")
}
