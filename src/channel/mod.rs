//! The channels: one folder per marketplace or carrier. A channel sees canonical values
//! (listings, stock levels, inbound orders), never Odoo rows; its `wire.rs` converts canonical
//! <-> the marketplace's JSON. Each channel is a job handler for the worker pool plus the
//! streams the scheduler runs.

pub mod cartona;
pub mod drift;
pub mod events;
pub mod http;
pub mod kit;
pub mod medusa;
pub mod meta;
pub mod optional;
pub mod probe;
pub mod sha6er;
pub mod whatsapp;

use crate::config::{ChannelKind, ChannelSettings, Config, ScheduleConfig};
use crate::daemon::scheduler::{StreamOutcome, StreamSpec, StreamTask};
use crate::daemon::workers::{ChannelWorkers, JobError, JobHandler};
use crate::error::Context;
use crate::odoo::OdooClient;
use crate::retry::Classify;
use crate::store::order_events::Subscription;
use crate::store::queue::{self, Job, NewJob};
use crate::store::Store;
use events::Subscriber;
use futures_util::future::BoxFuture;
use std::future::Future;
use std::sync::Arc;

/// A running channel: its workers and its streams.
pub struct Started {
    pub name: &'static str,
    pub workers: ChannelWorkers,
    pub streams: Vec<StreamSpec>,
    /// Whose order events it takes, if any.
    pub subscription: Option<Subscription>,
    /// The reference prefix of the orders it owns (`CARTONA-`), if it brings orders in.
    pub owns: Option<&'static str>,
    /// How far its Odoo-side polls reach back before their cursors.
    pub poll_overlap: std::time::Duration,
}

/// What `marketsync map import` found: as JSON (`--json`), and in lines for the operator.
pub struct MapImport {
    pub json: serde_json::Value,
    pub lines: Vec<String>,
}

/// `marketsync map import` for a channel that can match its products with Odoo's.
pub async fn map_import(
    ch: &crate::config::ChannelConfig,
    odoo: &OdooClient,
    store: &Store,
    dry_run: bool,
    progress: &(dyn Fn(&str, usize) + Sync),
) -> anyhow::Result<MapImport> {
    match ch.kind {
        ChannelKind::Cartona => cartona::matching::map_import(ch, odoo, store, dry_run, progress)
            .await
            .map_err(anyhow::Error::from),
        other => anyhow::bail!(
            "map import is available for cartona; {} has no product import yet",
            other.name()
        ),
    }
}

/// The channels `marketsync init` sets up, in the order it asks about them.
pub const SET_UP: &[ChannelKind] = &[ChannelKind::Cartona, ChannelKind::Medusa];

/// Every channel's `marketsync init` flags.
#[derive(Debug, Default, clap::Args)]
pub struct SetupArgs {
    #[command(flatten)]
    pub cartona: cartona::setup::CartonaSetup,
    #[command(flatten)]
    pub medusa: medusa::setup::MedusaSetup,
}

/// Asks a channel's `marketsync init` questions (or takes its flags).
pub(crate) fn setup(
    kind: ChannelKind,
    args: &SetupArgs,
    ask: &crate::cli::init::Asker,
) -> anyhow::Result<crate::cli::init::ChannelSetup> {
    match kind {
        ChannelKind::Cartona => cartona::setup::setup(&args.cartona, ask),
        ChannelKind::Medusa => medusa::setup::setup(&args.medusa, ask),
        other => anyhow::bail!("marketsync init does not set up {} yet", other.name()),
    }
}

/// What an order still needs from the operator, as its channel says, when no attention line
/// does.
pub fn order_needs(order: &crate::store::orders::ChannelOrder) -> Option<String> {
    let totals = &order.meta["totals"];
    if totals.is_object() {
        let t = |k: &str| totals[k].as_str().unwrap_or("?").to_string();
        return Some(format!(
            "totals differ: Odoo {} {}, marketplace {} ({})",
            t("odoo"),
            t("currency"),
            t("marketplace"),
            t("difference")
        ));
    }
    match order.channel.parse::<ChannelKind>().ok()? {
        ChannelKind::Cartona => cartona::needs(order).map(str::to_string),
        _ => None,
    }
}

/// The enabled channels, started, and the streams they share (the watcher of their orders).
pub struct Running {
    pub channels: Vec<Started>,
    pub streams: Vec<StreamSpec>,
}

/// Builds every enabled channel of the config (after the Odoo login, which they use), and the
/// watcher that turns their orders' progress in Odoo into order events.
pub async fn start_enabled(
    config: &Config,
    odoo: &OdooClient,
    store: &Store,
) -> Result<Running, crate::error::Error> {
    let mut out = Vec::new();
    // Channels that record order events themselves learn who hears them once all are started.
    let mut late = Vec::new();
    if config.enabled_channels().next().is_none() {
        return Ok(Running {
            channels: out,
            streams: Vec::new(),
        });
    }
    // Odoo's version differences, looked up once for every channel.
    let profile = crate::odoo::profile::Profile::detect(odoo)
        .await
        .context("reading Odoo's field definitions")?;
    for ch in config.enabled_channels() {
        let w = Wiring {
            config,
            cfg: ch,
            odoo: odoo.clone(),
            store: store.clone(),
            profile: profile.clone(),
        };
        match ch.kind {
            ChannelKind::Cartona => out.push(started(cartona::CHANNEL, cartona::build(&w)?, &w)),
            ChannelKind::Medusa => out.push(started(medusa::CHANNEL, medusa::build(&w)?, &w)),
            ChannelKind::Meta => out.push(started(meta::CHANNEL, meta::build(&w)?, &w)),
            ChannelKind::Whatsapp => out.push(whatsapp::start(&w)?),
            ChannelKind::Sha6er => {
                let (started, cell) = sha6er::start(&w)?;
                late.push(cell);
                out.push(started);
            }
            ChannelKind::Probe => out.push(probe::start(ch, store.clone())?),
        }
    }
    let subscriptions: Vec<Subscription> =
        out.iter().filter_map(|s| s.subscription.clone()).collect();
    for cell in late {
        let _ = cell.set(subscriptions.clone());
    }
    let streams = watcher_streams(config, odoo, store, &profile, &out);
    Ok(Running {
        channels: out,
        streams,
    })
}

/// The watcher of the channels' orders: a poll of the orders touched in Odoo
/// (`schedule.status_poll`) and a reconcile of every open one (`schedule.reconcile`).
fn watcher_streams(
    config: &Config,
    odoo: &OdooClient,
    store: &Store,
    profile: &crate::odoo::profile::Profile,
    started: &[Started],
) -> Vec<StreamSpec> {
    use crate::sync::order_watch::{Mode, Watcher, RECONCILE, STREAM};
    let subscriptions: Vec<Subscription> = started
        .iter()
        .filter_map(|s| s.subscription.clone())
        .collect();
    let prefixes: Vec<String> = started
        .iter()
        .filter_map(|s| s.owns.map(str::to_string))
        .collect();
    if subscriptions.is_empty() || prefixes.is_empty() {
        return Vec::new();
    }
    let overlap = started
        .iter()
        .map(|s| s.poll_overlap)
        .max()
        .unwrap_or_default();
    let spec = |name: &str, mode: Mode, schedule: &crate::config::Schedule| StreamSpec {
        name: name.into(),
        channel: None,
        schedule: schedule.clone(),
        run_at_start: mode == Mode::Poll,
        task: Arc::new(Watcher {
            odoo: odoo.clone(),
            store: store.clone(),
            prefixes: prefixes.clone(),
            subscriptions: subscriptions.clone(),
            tracking_ref: profile.tracking_ref,
            move_quantity: profile.move_quantity,
            overlap,
            mode,
        }),
    };
    vec![
        spec(STREAM, Mode::Poll, &config.schedule.status_poll),
        spec(RECONCILE, Mode::Reconcile, &config.schedule.reconcile),
    ]
}

/// One line of `check`: what was checked, whether it holds, what was seen.
#[derive(Debug, serde::Serialize)]
pub struct Finding {
    pub target: String,
    pub ok: bool,
    /// Works, but something optional is left out (the exit status stays 0).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub warning: bool,
    pub detail: String,
}

impl Finding {
    pub fn new(target: impl Into<String>, ok: bool, detail: impl Into<String>) -> Finding {
        Finding {
            target: target.into(),
            ok,
            warning: false,
            detail: detail.into(),
        }
    }

    /// Works, with something the operator should know (`WARN`; the exit status stays 0).
    pub fn warn(target: impl Into<String>, detail: impl Into<String>) -> Finding {
        Finding {
            warning: true,
            ..Finding::new(target, true, detail)
        }
    }
}

/// Reaches the channel with its credentials (`check`): (answered and accepted, what was seen).
pub async fn reach(ch: &crate::config::ChannelConfig) -> (bool, String) {
    match ch.kind {
        ChannelKind::Cartona => cartona::check(ch).await,
        ChannelKind::Medusa => medusa::check(ch).await,
        ChannelKind::Meta => meta::check(ch).await,
        ChannelKind::Whatsapp => whatsapp::check(ch).await,
        ChannelKind::Sha6er => sha6er::check(ch).await,
        ChannelKind::Probe => probe::check(ch),
    }
}

/// What else `check` says of the channel, with Odoo reached.
pub async fn findings(ch: &crate::config::ChannelConfig, odoo: &OdooClient) -> Vec<Finding> {
    use crate::sync::order_money;
    let name = ch.kind.name();
    match &ch.settings {
        ChannelSettings::Medusa(s) => {
            let mut out = medusa::findings(ch, odoo).await;
            out.extend(
                order_money::findings(
                    odoo,
                    name,
                    &s.currency,
                    &s.order_taxes,
                    Some(s.shipping_product_id),
                    s.discount_product_id,
                )
                .await,
            );
            out.extend(products_finding(odoo, name, s.products.as_ref()).await);
            out
        }
        ChannelSettings::Cartona(s) => {
            let mut out =
                order_money::findings(odoo, name, cartona::CURRENCY, &s.order_taxes, None, None)
                    .await;
            out.extend(products_finding(odoo, name, s.products.as_ref()).await);
            out
        }
        ChannelSettings::Meta(s) => products_finding(odoo, name, s.products.as_ref())
            .await
            .into_iter()
            .collect(),
        ChannelSettings::Whatsapp(s) => whatsapp::findings(s, odoo).await,
        ChannelSettings::Sha6er(s) => sha6er::findings(s, odoo).await,
        ChannelSettings::Common => Vec::new(),
    }
}

/// `products`: Odoo takes the filter, and how many active, saleable products it holds.
async fn products_finding(
    odoo: &OdooClient,
    channel: &str,
    filter: Option<&crate::odoo::Domain>,
) -> Option<Finding> {
    let filter = filter?;
    let target = format!("{channel}.products");
    let sold = crate::odoo::Domain::all()
        .and("active", "=", true)
        .and("sale_ok", "=", true)
        .and_domain(filter);
    Some(match odoo.search_count("product.product", &sold).await {
        Ok(0) => Finding::warn(
            target,
            "the filter holds no active, saleable product: the channel sells nothing",
        ),
        Ok(n) => Finding::new(
            target,
            true,
            format!("{n} active, saleable product(s) are in the filter"),
        ),
        Err(e) => Finding::new(
            target,
            false,
            format!("Odoo refuses the filter channels.{channel}.products: {e}"),
        ),
    })
}

/// The channel's pricelist and currency, for the channels that sell from a catalog.
pub fn pricing(ch: &crate::config::ChannelConfig) -> (Option<i64>, Option<String>) {
    match &ch.settings {
        ChannelSettings::Cartona(s) => (s.pricelist_id, Some(cartona::CURRENCY.to_string())),
        ChannelSettings::Medusa(s) => (s.pricelist_id, Some(s.currency.clone())),
        ChannelSettings::Meta(s) => (s.pricelist_id, Some(s.currency.clone())),
        ChannelSettings::Whatsapp(_) | ChannelSettings::Sha6er(_) | ChannelSettings::Common => {
            (None, None)
        }
    }
}

/// How the channel reads Odoo's catalog, for the channels that push one.
pub fn catalog_reader(
    ch: &crate::config::ChannelConfig,
    odoo: &OdooClient,
) -> Option<crate::sync::catalog::CatalogReader> {
    match &ch.settings {
        ChannelSettings::Cartona(s) => Some(cartona::reader(s, odoo.clone())),
        ChannelSettings::Medusa(s) => Some(medusa::reader(s, odoo.clone())),
        ChannelSettings::Meta(s) => Some(meta::reader(s, odoo.clone())),
        ChannelSettings::Whatsapp(_) | ChannelSettings::Sha6er(_) | ChannelSettings::Common => None,
    }
}

/// The webhooks of the enabled channels that take them (known from the config alone: the
/// listener takes webhooks before Odoo is reached).
pub fn webhook_specs(config: &Config) -> Vec<crate::webhook::intake::WebhookSpec> {
    config
        .enabled_channels()
        .filter_map(|ch| match ch.kind {
            ChannelKind::Medusa => medusa::spec(ch),
            ChannelKind::Whatsapp => whatsapp::webhook::spec(ch),
            ChannelKind::Sha6er => sha6er::spec(ch),
            _ => None,
        })
        .collect()
}

/// The streams a marketplace channel may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// Changed products, prices and stock (`schedule.catalog_poll`).
    Catalog,
    /// Everything again, to correct drift (`schedule.reconcile`).
    Reconcile,
    /// Orders pulled from the marketplace (`schedule.orders_poll`).
    Orders,
    /// Quotations of its orders edited in Odoo (`schedule.status_poll`).
    Edits,
}

impl StreamKind {
    fn name(self) -> &'static str {
        match self {
            StreamKind::Catalog => "catalog",
            StreamKind::Reconcile => "reconcile",
            StreamKind::Orders => "orders",
            StreamKind::Edits => "edits",
        }
    }

    fn schedule(self, s: &ScheduleConfig) -> &crate::config::Schedule {
        match self {
            StreamKind::Catalog => &s.catalog_poll,
            StreamKind::Reconcile => &s.reconcile,
            StreamKind::Orders => &s.orders_poll,
            StreamKind::Edits => &s.status_poll,
        }
    }
}

/// A marketplace channel: the orders it owns and its jobs (wired in its `mod.rs`), and its
/// three roles, each implemented in the file of that name.
pub trait MarketChannel:
    Catalog + Orders + Progress + drift::ReadBack + Send + Sync + 'static
{
    /// The streams it runs.
    const STREAMS: &'static [StreamKind];
    /// The reference prefix of its orders in Odoo (`client_order_ref`); `None` for a channel
    /// that brings no orders in (a catalog: Meta), which takes no order events either.
    const ORDER_PREFIX: Option<&'static str>;
    /// Its kinds of job.
    type Kind: JobKind;
    /// Runs jobs of one kind, as many as the kind's [`Batching`] allows: one outcome per job,
    /// in order, so one bad record does not fail the others.
    fn run(&self, kind: Self::Kind, jobs: &[Job]) -> impl Future<Output = Outcomes> + Send;
    /// How far its Odoo-side polls reach back before their cursors.
    fn poll_overlap(&self) -> std::time::Duration;
    /// The cheapest call that shows its peer answers (the probe of an unreachable channel).
    fn probe(&self) -> impl Future<Output = Result<(), http::ChannelError>> + Send;
}

/// `catalog.rs`: what the marketplace must hear of Odoo's catalog.
pub trait Catalog {
    /// Plans what changed since the last run, or (`full`, the reconcile) everything.
    fn catalog(&self, full: bool) -> impl Future<Output = StreamResult> + Send;
}

/// `orders.rs`: the marketplace's orders into the inbox.
pub trait Orders {
    /// Pulls its orders into the inbox (the orders stream).
    fn orders(&self) -> impl Future<Output = StreamResult> + Send;
}

/// `status.rs`: what the marketplace hears of its orders' progress in Odoo.
pub trait Progress {
    /// The status job an order's new events come to, if the marketplace must hear anything.
    fn status_for(
        &self,
        order: &crate::store::orders::ChannelOrder,
        events: &[crate::store::order_events::OrderEvent],
    ) -> impl Future<Output = Result<Option<NewJob>, JobError>> + Send;
    /// Plans what it must hear of its quotations edited in Odoo; only a channel that declares
    /// [`StreamKind::Edits`] runs it.
    fn edits(&self) -> impl Future<Output = StreamResult> + Send {
        async { Ok(StreamOutcome::default()) }
    }
}

/// What a stream's run comes to.
pub type StreamResult = Result<StreamOutcome, crate::error::Error>;

/// One outcome per job of a batch, in order.
pub type Outcomes = Vec<Result<(), JobError>>;

/// A channel's kinds of job, as the queue's `kind` column names them.
pub trait JobKind: Copy + Send + Sync + 'static {
    /// The kind of a queued job; `None` for one this build does not know.
    fn of(kind: &str) -> Option<Self>;
    /// How many jobs of this kind one run takes.
    fn batching(self) -> Batching {
        Batching::One
    }
    /// True when the channel records its successful jobs of this kind done itself (see
    /// `JobHandler::records_completion`).
    fn recorded_by_run(self) -> bool {
        false
    }
}

/// How many jobs of a kind one [`MarketChannel::run`] takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Batching {
    /// One at a time: no bulk endpoint, or each job is a bulk request already.
    One,
    /// Orders, imported together ([`kit::ORDER_BATCH`] at a time).
    Orders,
    /// As many as the channel's `batch_size` setting (a bulk endpoint).
    Setting,
}

/// A marketplace channel as the worker pool sees it: its jobs, sorted by kind, and its
/// `batch_size` setting (the jobs of a [`Batching::Setting`] kind one run takes).
struct Jobs<C>(Arc<C>, usize);

impl<C: MarketChannel> JobHandler for Jobs<C> {
    fn handle<'a>(&'a self, job: &'a Job) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(async move {
            let mut one = self.handle_batch(std::slice::from_ref(job)).await;
            one.pop().unwrap_or_else(|| Err(kit::unknown_kind(job)))
        })
    }

    fn batch_size(&self, kind: &str) -> usize {
        match C::Kind::of(kind).map(JobKind::batching) {
            Some(Batching::Orders) => kit::ORDER_BATCH,
            Some(Batching::Setting) => self.1,
            Some(Batching::One) | None => 1,
        }
    }

    fn records_completion(&self, kind: &str) -> bool {
        C::Kind::of(kind).is_some_and(JobKind::recorded_by_run)
    }

    /// The pool hands over jobs of one kind at a time.
    fn handle_batch<'a>(&'a self, jobs: &'a [Job]) -> BoxFuture<'a, Outcomes> {
        Box::pin(async move {
            match jobs.first().and_then(|j| C::Kind::of(&j.kind)) {
                Some(kind) => self.0.run(kind, jobs).await,
                None => jobs.iter().map(|j| Err(kit::unknown_kind(j))).collect(),
            }
        })
    }
}

/// A marketplace as the subscriber to its own orders' events.
struct Owner<C>(Arc<C>);

impl<C: MarketChannel> Subscriber for Owner<C> {
    fn interest(&self) -> events::Interest {
        events::Interest::Own
    }

    fn deliver<'a>(
        &'a self,
        order: &'a crate::store::orders::ChannelOrder,
        events: &'a [crate::store::order_events::OrderEvent],
    ) -> BoxFuture<'a, events::Delivered> {
        Box::pin(async move {
            events::Delivered::queueing(events, self.0.status_for(order, events).await)
        })
    }
}

struct ChannelStream<C> {
    name: &'static str,
    channel: Arc<C>,
    kind: StreamKind,
    /// `reconcile_mode = "read-back"`: the reconcile also reads the marketplace back.
    read_back: bool,
}

impl<C: MarketChannel> ChannelStream<C> {
    /// The reconcile: every product planned against what was last sent, then (read-back)
    /// against what the marketplace holds now, the differences queued as fixes.
    async fn reconcile(&self) -> StreamResult {
        let planned = self.channel.catalog(true).await?;
        if !self.read_back {
            return Ok(planned);
        }
        let report = drift::diff(self.channel.as_ref(), true).await?;
        let name = self.name;
        let mut said: Vec<String> = planned.note.iter().map(|(n, _)| n.clone()).collect();
        if !report.drifts.is_empty() {
            said.push(format!(
                "read back: {}; fixes of {} product(s) queued",
                report.summary(name),
                report.queued
            ));
        }
        said.extend(
            report
                .not_repaired
                .iter()
                .map(|w| format!("not repaired: {w}")),
        );
        let records = planned.note.map_or(0, |(_, n)| n) + report.queued as i64;
        Ok(StreamOutcome {
            cursor: None,
            note: (!said.is_empty()).then(|| (said.join("; "), records)),
        })
    }
}

impl<C: MarketChannel> StreamTask for ChannelStream<C> {
    fn run(&self) -> BoxFuture<'_, Result<StreamOutcome, crate::error::Error>> {
        Box::pin(async move {
            match self.kind {
                StreamKind::Catalog => self.channel.catalog(false).await,
                StreamKind::Reconcile => self.reconcile().await,
                StreamKind::Orders => self.channel.orders().await,
                StreamKind::Edits => self.channel.edits().await,
            }
        })
    }
}

/// A channel's healthcheck: while its peer is marked unreachable, probes it (at the first
/// look, then with backoff); when it answers, clears the mark and releases the jobs that
/// waited for it, with one sync-log line.
/// What the reach stream asks to see whether a channel's peer answers again.
pub trait PeerProbe: Send + Sync + 'static {
    /// The cheapest call that shows the peer answers.
    fn probe(&self) -> impl Future<Output = Result<(), http::ChannelError>> + Send;
}

/// A marketplace's own probe.
struct Market<C>(Arc<C>);

impl<C: MarketChannel> PeerProbe for Market<C> {
    fn probe(&self) -> impl Future<Output = Result<(), http::ChannelError>> + Send {
        self.0.probe()
    }
}

struct Reach<P> {
    name: &'static str,
    channel: P,
    store: Store,
    /// The first wait between probes, doubled after each that fails.
    base: std::time::Duration,
}

/// The longest wait between two probes of an unreachable peer.
const PROBE_MAX_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// The `<name>.reach` stream: while the channel is marked unreachable (or stopped), its
/// probe is asked, backing off; an answer clears the mark and releases the waiting jobs.
pub fn reach_stream<P: PeerProbe>(name: &'static str, channel: P, w: &Wiring<'_>) -> StreamSpec {
    let schedule = w.config.schedule.channel_probe.clone();
    let base = match &schedule {
        crate::config::Schedule::Every(d) => *d,
        crate::config::Schedule::Cron(_) => std::time::Duration::from_secs(5),
    };
    StreamSpec {
        name: format!("{name}.reach"),
        channel: Some(name.into()),
        schedule,
        run_at_start: true,
        task: Arc::new(Reach {
            name,
            channel,
            store: w.store.clone(),
            base,
        }),
    }
}

impl<P: PeerProbe> StreamTask for Reach<P> {
    fn run(&self) -> BoxFuture<'_, StreamResult> {
        Box::pin(async move {
            let quiet = Ok(StreamOutcome::default());
            let Some(down) = crate::store::reach::get(&self.store, self.name)? else {
                return quiet;
            };
            let now = crate::store::now_ms();
            if now < down.next_probe_at {
                return quiet;
            }
            match self.channel.probe().await {
                Err(e) if e.class == crate::retry::RetryClass::Unreachable => {
                    let wait = self
                        .base
                        .saturating_mul(1 << down.probes.min(16))
                        .min(PROBE_MAX_WAIT);
                    let next = now + wait.as_millis() as i64;
                    crate::store::reach::probe_failed(&self.store, self.name, &e.message, next)?;
                }
                // Any answer shows the peer is up: what it thinks of a job is the job's to hear.
                _ => {
                    if let Some((u, released)) =
                        crate::store::reach::clear(&self.store, self.name, now)?
                    {
                        let after = std::time::Duration::from_millis((now - u.since).max(0) as u64);
                        crate::internal_events::emit(
                            &self.store,
                            &crate::internal_events::ChannelRecovered {
                                channel: self.name,
                                after,
                                released,
                            },
                        );
                    }
                }
            }
            quiet
        })
    }
}

/// What a channel is built from: the config with its own table, and the Odoo, store and
/// profile every channel shares.
pub struct Wiring<'a> {
    pub config: &'a Config,
    pub cfg: &'a crate::config::ChannelConfig,
    pub odoo: OdooClient,
    pub store: Store,
    pub profile: crate::odoo::profile::Profile,
}

/// A marketplace channel's workers (its own jobs and its order-event deliveries) and its
/// streams, on the configured schedules.
pub fn started<C: MarketChannel>(name: &'static str, channel: C, w: &Wiring<'_>) -> Started {
    let poll_overlap = channel.poll_overlap();
    let channel = Arc::new(channel);
    let (store, concurrency) = (&w.store, w.cfg.concurrency);
    let s = &w.cfg.schedule.over(&w.config.schedule);
    let spec = |kind: StreamKind| StreamSpec {
        name: format!("{name}.{}", kind.name()),
        channel: Some(name.into()),
        schedule: kind.schedule(s).clone(),
        run_at_start: kind != StreamKind::Reconcile,
        task: Arc::new(ChannelStream {
            name,
            channel: channel.clone(),
            kind,
            read_back: w.cfg.reconcile_mode == crate::config::ReconcileMode::ReadBack,
        }),
    };
    Started {
        name,
        workers: ChannelWorkers {
            handler: Arc::new(events::Subscribed {
                name,
                store: store.clone(),
                jobs: Arc::new(Jobs(channel.clone(), w.cfg.batch_size as usize)),
                subscriber: Arc::new(Owner(channel.clone())),
            }),
            concurrency,
        },
        streams: C::STREAMS
            .iter()
            .map(|k| spec(*k))
            .chain([reach_stream(name, Market(channel.clone()), w)])
            .collect(),
        subscription: C::ORDER_PREFIX.map(|_| Subscription {
            subscriber: name.into(),
            interest: events::Interest::Own,
        }),
        owns: C::ORDER_PREFIX,
        poll_overlap,
    }
}

impl From<http::ChannelError> for JobError {
    fn from(e: http::ChannelError) -> JobError {
        JobError::new(e.retry_class(), e.message)
    }
}

/// Queues planned jobs, except values that already died for the same record (no retry storm).
pub fn enqueue_planned(store: &Store, jobs: Vec<NewJob>) -> Result<usize, crate::error::Error> {
    let jobs = queue::without_dead_repeats(store, jobs)?;
    if !jobs.is_empty() {
        queue::enqueue_many(store, &jobs)?;
    }
    Ok(jobs.len())
}
