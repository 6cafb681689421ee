//! The channels: one folder per marketplace or carrier. A channel sees canonical values
//! (listings, stock levels, inbound orders), never Odoo rows; its `wire.rs` converts canonical
//! <-> the marketplace's JSON. Each channel is a job handler for the worker pool plus the
//! streams the scheduler runs.

pub mod cartona;
pub mod http;
pub mod kit;
pub mod medusa;
pub mod optional;

use crate::config::{ChannelKind, Config, ScheduleConfig};
use crate::daemon::scheduler::{StreamOutcome, StreamSpec, StreamTask};
use crate::daemon::workers::{ChannelWorkers, JobError, JobHandler};
use crate::odoo::OdooClient;
use crate::retry::Classify;
use crate::store::queue::{self, NewJob};
use crate::store::synclog::{self, Entry, Level};
use crate::store::Store;
use futures_util::future::BoxFuture;
use std::sync::Arc;

/// A running channel: its workers and its streams.
pub struct Started {
    pub name: &'static str,
    pub workers: ChannelWorkers,
    pub streams: Vec<StreamSpec>,
}

/// Builds every enabled channel of the config (after the Odoo login, which they use).
pub async fn start_enabled(
    config: &Config,
    odoo: &OdooClient,
    store: &Store,
) -> Result<Vec<Started>, String> {
    let mut out = Vec::new();
    if config.enabled_channels().next().is_none() {
        return Ok(out);
    }
    // Odoo's version differences, looked up once for every channel.
    let profile = crate::odoo::profile::Profile::detect(odoo)
        .await
        .map_err(|e| format!("reading Odoo's field definitions: {e}"))?;
    for ch in config.enabled_channels() {
        let (odoo, store, profile) = (odoo.clone(), store.clone(), profile.clone());
        match ch.kind {
            ChannelKind::Cartona => out.push(cartona::start(config, ch, odoo, store, profile)?),
            ChannelKind::Medusa => out.push(medusa::start(config, ch, odoo, store, profile)?),
            other => {
                return Err(format!(
                    "the {} channel is not part of this version",
                    other.name()
                ))
            }
        }
    }
    Ok(out)
}

/// The four streams every marketplace channel runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// Changed products, prices and stock (`schedule.catalog_poll`).
    Catalog,
    /// Everything again, to correct drift (`schedule.reconcile`).
    Reconcile,
    /// Orders pulled from the marketplace (`schedule.orders_poll`).
    Orders,
    /// Odoo-side order changes to report (`schedule.status_poll`).
    Status,
}

impl StreamKind {
    fn name(self) -> &'static str {
        match self {
            StreamKind::Catalog => "catalog",
            StreamKind::Reconcile => "reconcile",
            StreamKind::Orders => "orders",
            StreamKind::Status => "status",
        }
    }
}

/// What a marketplace channel does on each of its streams.
pub trait MarketChannel: JobHandler {
    fn run_stream(&self, kind: StreamKind) -> BoxFuture<'_, Result<StreamOutcome, String>>;
}

struct ChannelStream<C> {
    channel: Arc<C>,
    kind: StreamKind,
}

impl<C: MarketChannel> StreamTask for ChannelStream<C> {
    fn run(&self) -> BoxFuture<'_, Result<StreamOutcome, String>> {
        self.channel.run_stream(self.kind)
    }
}

/// A marketplace channel's workers and its four streams, on the configured schedules.
pub fn started<C: MarketChannel>(
    name: &'static str,
    channel: Arc<C>,
    concurrency: usize,
    s: &ScheduleConfig,
) -> Started {
    let spec = |kind: StreamKind, schedule: &crate::config::Schedule| StreamSpec {
        name: format!("{name}.{}", kind.name()),
        channel: Some(name.into()),
        schedule: schedule.clone(),
        run_at_start: kind != StreamKind::Reconcile,
        task: Arc::new(ChannelStream {
            channel: channel.clone(),
            kind,
        }),
    };
    Started {
        name,
        workers: ChannelWorkers {
            handler: channel.clone(),
            concurrency,
        },
        streams: vec![
            spec(StreamKind::Catalog, &s.catalog_poll),
            spec(StreamKind::Reconcile, &s.reconcile),
            spec(StreamKind::Orders, &s.orders_poll),
            spec(StreamKind::Status, &s.status_poll),
        ],
    }
}

impl From<http::ChannelError> for JobError {
    fn from(e: http::ChannelError) -> JobError {
        JobError::new(e.retry_class(), e.message)
    }
}

/// Writes a line of the channel's sync log; a failure to write it is itself only logged.
pub fn log(
    store: &Store,
    channel: &str,
    level: Level,
    op: &str,
    message: &str,
    records: Option<i64>,
) {
    let mut e = Entry::new(level, op, message).channel(channel);
    if let Some(n) = records {
        e = e.records(n);
    }
    if let Err(err) = synclog::append(store, e) {
        tracing::error!(error = %err, "cannot write the sync log");
    }
}

/// Queues planned jobs, except values that already died for the same record (no retry storm).
pub fn enqueue_planned(store: &Store, jobs: Vec<NewJob>) -> Result<usize, String> {
    let jobs = queue::without_dead_repeats(store, jobs).map_err(|e| e.to_string())?;
    if !jobs.is_empty() {
        queue::enqueue_many(store, &jobs).map_err(|e| e.to_string())?;
    }
    Ok(jobs.len())
}
