//! Sha6er deliveries: a ready Odoo delivery (an outgoing picking, `assigned`) of an order
//! Sha6er ships becomes one Sha6er shipment, and the courier's progress comes back into Odoo.
//! Not a marketplace: it brings no orders and lists no products.
//!
//! - Out (`ship.rs`): which deliveries (`ship_for`: Medusa's orders and Cartona's
//!   `delivered_by_supplier` ones; and/or the deliveries whose Odoo carrier is `carrier`), from
//!   the pickup warehouse; one shipment per delivery, even under SIGKILL: its row is written
//!   before `create_shipment` goes out, and a create whose answer was lost is looked up by its
//!   reference before it is tried again. The tracking number goes on the picking
//!   (`carrier_tracking_ref` where it exists, and a chatter message); a delivery cancelled in
//!   Odoo cancels a shipment the courier has not picked up.
//! - In (`progress.rs`): a signed webhook (`/webhooks/sha6er`) or, for a shipment silent for
//!   `stale_after`, the pull, has the shipment read from Sha6er; each new step of its history is
//!   a chatter message on the picking. Picked up: the order's marketplace hears it shipped with
//!   its tracking (order events). Delivered: the proof attached to the picking, a Cartona
//!   order's OTP recorded for its `delivered`, and the picking validated with what was
//!   delivered (per package: a backorder for the rest, as Odoo makes it). Failed and returned
//!   flag the order for the operator and touch nothing in Odoo.
//!
//! Files: this one (wiring, `check`, the streams, the jobs), `config.rs`, `wire.rs` (Sha6er's
//! contract, as we read it), `ship.rs`, `progress.rs`.

use crate::channel::http::{ChannelError, HttpClient};
use crate::channel::Started;
use crate::config::ChannelConfig;
use crate::daemon::scheduler::{StreamOutcome, StreamSpec, StreamTask};
use crate::daemon::workers::{ChannelWorkers, JobError, JobHandler};
use crate::odoo::OdooClient;
use crate::retry::RetryClass;
use crate::secret::Secret;
use crate::store::order_events::Subscription;
use crate::store::queue::{Job, NewJob, Payload};
use crate::store::synclog::Level;
use crate::store::{shipments, Store};
use config::Sha6erSettings;
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, OnceLock};

pub mod config;
mod progress;
mod ship;
pub mod wire;

pub use ship::ship_by_hand;

pub const CHANNEL: &str = "sha6er";

/// Job kinds: ask for a delivery's shipment; read a shipment's news and act on it; cancel the
/// shipment of a delivery cancelled in Odoo.
pub const SHIP: &str = "ship";
pub const PROGRESS: &str = "progress";
pub const CANCEL: &str = "cancel";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PickingJob {
    pub picking_id: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProgressJob {
    pub shipment_id: String,
}

/// Where the started channels' subscriptions go once all are started.
pub type Listeners = Arc<OnceLock<Vec<Subscription>>>;

pub struct Sha6er {
    pub api: HttpClient,
    pub settings: Sha6erSettings,
    pub odoo: OdooClient,
    pub store: Store,
    pub profile: crate::odoo::profile::Profile,
    /// Who hears the order events a pickup records (the started channels' subscriptions,
    /// known once every channel is started).
    pub subscriptions: Listeners,
    /// What this Odoo has of the optional fields (read once).
    fields: tokio::sync::OnceCell<ship::Fields>,
    /// The pickup warehouse's id (read once; its address is read for each shipment).
    warehouse_id: tokio::sync::OnceCell<i64>,
}

fn job_err(e: ChannelError) -> JobError {
    JobError::new(e.class, e.message)
}

pub fn client(cfg: &ChannelConfig) -> Result<HttpClient, crate::error::Error> {
    crate::channel::kit::bearer_client("Sha6er", cfg)
}

fn settings(cfg: &ChannelConfig) -> Result<&Sha6erSettings, crate::error::Error> {
    cfg.sha6er()
        .ok_or_else(|| crate::error::Error::invalid("channels.sha6er has no settings"))
}

impl Sha6er {
    pub fn new(
        cfg: &ChannelConfig,
        odoo: OdooClient,
        store: Store,
        profile: crate::odoo::profile::Profile,
    ) -> Result<Sha6er, crate::error::Error> {
        Ok(Sha6er {
            api: client(cfg)?,
            settings: settings(cfg)?.clone(),
            odoo,
            store,
            profile,
            subscriptions: Default::default(),
            fields: Default::default(),
            warehouse_id: Default::default(),
        })
    }

    fn note(&self, reference: &str, picking: &str, level: Level, what: &str) {
        crate::internal_events::emit(
            &self.store,
            &crate::internal_events::ShipmentNoted {
                reference,
                picking,
                level,
                what,
            },
        );
    }
}

/// `check`: the account the token belongs to (`GET account`).
pub async fn check(cfg: &ChannelConfig) -> (bool, String) {
    let api = match client(cfg) {
        Ok(a) => a,
        Err(e) => return (false, e.to_string()),
    };
    match api.get(wire::ACCOUNT, &[]).await {
        Ok(v) => (
            true,
            format!(
                "Sha6er account {}",
                v.get("name")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("(unnamed)")
            ),
        ),
        Err(e) if e.class == RetryClass::Auth => (
            false,
            format!(
                "Sha6er refused the token ({}); give channels.sha6er the API key Sha6er issued",
                e.message
            ),
        ),
        Err(e) => (false, e.message),
    }
}

/// What `check` says with Odoo reached: the pickup warehouse and its address, and the
/// carrier field when `carrier` is set.
pub async fn findings(s: &Sha6erSettings, odoo: &OdooClient) -> Vec<crate::channel::Finding> {
    use crate::channel::Finding;
    let mut out = Vec::new();
    let target = "sha6er.warehouse".to_string();
    let mobile = odoo
        .fields_get("res.partner", &["type"])
        .await
        .map(|f| f.get("mobile").is_some())
        .unwrap_or(false);
    match ship::warehouse(odoo, &s.warehouse, mobile).await {
        Ok(w) => out.push(Finding::new(
            target,
            true,
            format!(
                "couriers pick up at warehouse {} ({}), address {}",
                s.warehouse, w.name, w.address.name
            ),
        )),
        Err(e) => out.push(Finding::new(target, false, e.message)),
    }
    if let Some(c) = &s.carrier {
        let has = odoo
            .fields_get("stock.picking", &["type"])
            .await
            .map(|f| f.get("carrier_id").is_some());
        out.push(match has {
            Ok(true) => Finding::new(
                "sha6er.carrier".to_string(),
                true,
                format!("deliveries whose carrier is {c:?} are shipped"),
            ),
            Ok(false) => Finding::new(
                "sha6er.carrier".to_string(),
                false,
                format!("carrier = {c:?}, but Odoo's deliveries have no carrier (install the delivery module, or remove carrier)"),
            ),
            Err(e) => Finding::new(
                "sha6er.carrier".to_string(),
                false,
                format!("cannot read stock.picking's fields: {e}"),
            ),
        });
    }
    out
}

/// Starts the deliveries: their jobs, the stream that finds ready and cancelled deliveries and
/// silent shipments, and the reach stream. Returns the cell the channels' subscriptions go in
/// once all are started.
pub fn start(w: &crate::channel::Wiring<'_>) -> Result<(Started, Listeners), crate::error::Error> {
    let channel = Arc::new(Sha6er::new(
        w.cfg,
        w.odoo.clone(),
        w.store.clone(),
        w.profile.clone(),
    )?);
    let cell = channel.subscriptions.clone();
    Ok((
        Started {
            name: CHANNEL,
            workers: ChannelWorkers {
                handler: channel.clone(),
                concurrency: w.cfg.concurrency,
            },
            streams: vec![
                crate::channel::reach_stream(CHANNEL, Probe(channel.clone()), w),
                StreamSpec {
                    name: format!("{CHANNEL}.deliveries"),
                    channel: Some(CHANNEL.into()),
                    schedule: w.cfg.schedule.over(&w.config.schedule).status_poll,
                    run_at_start: true,
                    task: Arc::new(Deliveries(channel)),
                },
            ],
            subscription: None,
            owns: None,
            poll_overlap: std::time::Duration::ZERO,
        },
        cell,
    ))
}

struct Probe(Arc<Sha6er>);

impl crate::channel::PeerProbe for Probe {
    async fn probe(&self) -> Result<(), ChannelError> {
        self.0.api.get(wire::ACCOUNT, &[]).await.map(|_| ())
    }
}

pub fn job(kind: &str, key: String, payload: Payload, reference: Option<&str>) -> NewJob {
    NewJob {
        channel: CHANNEL.into(),
        kind: kind.into(),
        key,
        payload,
        correlation_id: reference.map(str::to_string),
    }
}

pub fn ship_job(picking_id: i64) -> NewJob {
    job(
        SHIP,
        format!("{CHANNEL}:ship:{picking_id}"),
        Payload::of(&PickingJob { picking_id }),
        None,
    )
}

pub fn progress_job(shipment_id: &str) -> NewJob {
    job(
        PROGRESS,
        format!("{CHANNEL}:progress:{shipment_id}"),
        Payload::of(&ProgressJob {
            shipment_id: shipment_id.into(),
        }),
        None,
    )
}

pub fn cancel_job(picking_id: i64) -> NewJob {
    job(
        CANCEL,
        format!("{CHANNEL}:cancel:{picking_id}"),
        Payload::of(&PickingJob { picking_id }),
        None,
    )
}

/// The stream: ready deliveries without a shipment get one; deliveries cancelled in Odoo have
/// their shipment cancelled; shipments silent for `stale_after` (and creates cut off) are
/// read again.
struct Deliveries(Arc<Sha6er>);

impl StreamTask for Deliveries {
    fn run(&self) -> BoxFuture<'_, Result<StreamOutcome, crate::error::Error>> {
        Box::pin(async move {
            let s = &self.0;
            let ready = s.ready().await?;
            let cancelled = s.cancelled().await?;
            let before = crate::store::now_ms() - s.settings.stale_after.as_millis() as i64;
            let stale = shipments::stale(&s.store, before)?;
            let mut jobs: Vec<NewJob> = ready.iter().map(|p| ship_job(*p)).collect();
            jobs.extend(cancelled.iter().map(|p| cancel_job(*p)));
            for r in &stale {
                match &r.shipment_id {
                    Some(id) => jobs.push(progress_job(id)),
                    None => jobs.push(ship_job(r.picking_id)),
                }
            }
            let n = crate::store::queue::enqueue_missing(&s.store, jobs)?;
            Ok(StreamOutcome {
                cursor: None,
                note: (n > 0).then(|| {
                    (
                        format!(
                            "{} delivery(ies) to ship, {} shipment(s) to cancel, {} silent shipment(s) to read",
                            ready.len(),
                            cancelled.len(),
                            stale.len()
                        ),
                        n as i64,
                    )
                }),
            })
        })
    }
}

impl JobHandler for Sha6er {
    fn handle<'a>(&'a self, job: &'a Job) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(async move {
            match job.kind.as_str() {
                SHIP => {
                    let p: PickingJob = crate::channel::kit::payload(job)?;
                    self.ship(p.picking_id, false).await.map(|_| ())
                }
                CANCEL => {
                    let p: PickingJob = crate::channel::kit::payload(job)?;
                    self.cancel(p.picking_id).await
                }
                PROGRESS => {
                    let p: ProgressJob = crate::channel::kit::payload(job)?;
                    self.progress(&p.shipment_id).await
                }
                _ => Err(crate::channel::kit::unknown_kind(job)),
            }
        })
    }
}

/// `/webhooks/sha6er`: signed with the webhook secret (`X-Sha6er-Signature`, see `wire.rs`);
/// each status event is kept once in the inbox and queues the read of its shipment.
pub fn spec(cfg: &ChannelConfig) -> Option<crate::webhook::intake::WebhookSpec> {
    use crate::webhook::intake::{Inbound, ReceiveError, Verification, WebhookSpec};
    let s = cfg.sha6er()?;
    Some(WebhookSpec {
        source: CHANNEL,
        paths: vec!["/webhooks/sha6er"],
        verification: Verification::Hmac {
            secret: cfg.webhook_secret.clone()?,
            tolerance: s.webhook_tolerance,
            header: wire::SIGNATURE_HEADER,
        },
        prepare: Arc::new(|body| {
            let w = wire::Webhook::parse(body).map_err(ReceiveError::Invalid)?;
            Ok(vec![Inbound {
                source: CHANNEL,
                event_id: w.event_id.clone(),
                kind: format!("shipment.{}", w.status),
                subject: Some(w.shipment_id.clone()),
                body: body.to_string(),
                job: progress_job(&w.shipment_id),
            }])
        }),
    })
}
