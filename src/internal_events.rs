//! One event for one thing that happened (as vector's internal events): each is a type that
//! knows its operation, level, channel and words, and emitting it writes the tracing line, the
//! sync-log row and the `marketsync_events_total{operation,level}` counter together. Nothing
//! else in the crate writes the sync log, so an operation's name and a message's wording live in
//! one place, and `marketsync logs`, the journal and `/metrics` always agree.

use crate::store::synclog::{self, Entry, Level};
use crate::store::Store;
use std::borrow::Cow;

/// Where an event is filed: the `operation` column of the sync log, a label of the counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation<'a> {
    DaemonStart,
    DaemonStop,
    DaemonResume,
    OdooLogin,
    OdooNotice,
    /// A channel's peer stopped answering, or answers again.
    ChannelReach,
    CatalogPlan,
    CatalogPush,
    StockPush,
    MapImport,
    OrdersPull,
    OrdersImport,
    CustomersImport,
    StatusDetect,
    StatusSend,
    OptionalLeftOut,
    OptionalRestored,
    /// A customer's WhatsApp message: planned, sent, skipped, refused, reported.
    Notify,
    /// A Sha6er shipment: asked for, a step of its delivery, a failure flagged.
    Delivery,
    /// A scheduled stream's own run, under the stream's name (`cartona.orders`).
    Stream(&'a str),
    /// Jobs of one kind, as `job.<kind>`.
    Job(&'a str),
}

impl Operation<'_> {
    pub fn name(&self) -> Cow<'_, str> {
        Cow::Borrowed(match self {
            Operation::DaemonStart => "daemon.start",
            Operation::DaemonStop => "daemon.stop",
            Operation::DaemonResume => "daemon.resume",
            Operation::OdooLogin => "odoo.login",
            Operation::OdooNotice => "odoo.notice",
            Operation::ChannelReach => "channel.reach",
            Operation::CatalogPlan => "catalog.plan",
            Operation::CatalogPush => "catalog.push",
            Operation::StockPush => "stock.push",
            Operation::MapImport => "map.import",
            Operation::OrdersPull => "orders.pull",
            Operation::OrdersImport => "orders.import",
            Operation::CustomersImport => "customers.import",
            Operation::StatusDetect => "status.detect",
            Operation::StatusSend => "status.send",
            Operation::OptionalLeftOut => "optional.left_out",
            Operation::OptionalRestored => "optional.restored",
            Operation::Notify => "notify.message",
            Operation::Delivery => "delivery.shipment",
            Operation::Stream(name) => name,
            Operation::Job(kind) => return Cow::Owned(format!("job.{kind}")),
        })
    }
}

/// Something that happened and that the operator is told about.
pub trait InternalEvent {
    fn operation(&self) -> Operation<'_>;
    fn level(&self) -> Level;
    /// The channel it concerns, if one.
    fn channel(&self) -> Option<&str> {
        None
    }
    /// What happened, in the operator's words.
    fn message(&self) -> Cow<'_, str>;
    /// How many records it concerns.
    fn records(&self) -> Option<i64> {
        None
    }
}

/// Emits `event`: the sync-log row (a failure to write it is itself logged, never raised), the
/// tracing line and the counter.
pub fn emit(store: &Store, event: &impl InternalEvent) {
    if let Err(e) = store.write(|tx| emit_in(tx, event)) {
        tracing::error!(error = %e, "cannot write the sync log");
    }
}

/// [`emit`] inside the caller's transaction, for a line that must say what a write did.
pub fn emit_in(
    tx: &rusqlite::Transaction<'_>,
    event: &impl InternalEvent,
) -> crate::store::Result<()> {
    let operation = event.operation();
    let name = operation.name();
    let message = crate::secret::scrub(&event.message());
    let mut entry = Entry::new(event.level(), &name, &message);
    if let Some(c) = event.channel() {
        entry = entry.channel(c);
    }
    if let Some(n) = event.records() {
        entry = entry.records(n);
    }
    synclog::append_in(tx, entry)?;
    trace(event.level(), &name, event.channel(), &message);
    crate::telemetry::counters::inc(
        crate::telemetry::counters::EVENTS,
        &[("operation", &name), ("level", event.level().as_str())],
    );
    Ok(())
}

fn trace(level: Level, operation: &str, channel: Option<&str>, message: &str) {
    let channel = channel.unwrap_or("");
    match level {
        Level::Debug => tracing::debug!(operation, channel, "{message}"),
        Level::Info => tracing::info!(operation, channel, "{message}"),
        Level::Warn => tracing::warn!(operation, channel, "{message}"),
        Level::Error => tracing::error!(operation, channel, "{message}"),
    }
}

// ---------------------------------------------------------------------------------------------
// The daemon and Odoo
// ---------------------------------------------------------------------------------------------

pub struct DaemonStarted<'a> {
    /// Which Odoo, as whom, over which protocol.
    pub ready: &'a str,
}

impl InternalEvent for DaemonStarted<'_> {
    fn operation(&self) -> Operation<'_> {
        Operation::DaemonStart
    }
    fn level(&self) -> Level {
        Level::Info
    }
    fn message(&self) -> Cow<'_, str> {
        format!("started; {}", self.ready).into()
    }
}

pub struct DaemonStopped;

impl InternalEvent for DaemonStopped {
    fn operation(&self) -> Operation<'_> {
        Operation::DaemonStop
    }
    fn level(&self) -> Level {
        Level::Info
    }
    fn message(&self) -> Cow<'_, str> {
        "stopped".into()
    }
}

/// The state file can be written again and the paused work goes on.
pub struct DaemonResumed<'a> {
    pub text: &'a str,
}

impl InternalEvent for DaemonResumed<'_> {
    fn operation(&self) -> Operation<'_> {
        Operation::DaemonResume
    }
    fn level(&self) -> Level {
        Level::Warn
    }
    fn message(&self) -> Cow<'_, str> {
        self.text.into()
    }
}

pub struct OdooLoginFailed<'a> {
    pub error: &'a str,
}

impl InternalEvent for OdooLoginFailed<'_> {
    fn operation(&self) -> Operation<'_> {
        Operation::OdooLogin
    }
    fn level(&self) -> Level {
        Level::Error
    }
    fn message(&self) -> Cow<'_, str> {
        self.error.into()
    }
}

/// Something about the Odoo server ahead (an expiring key, a database about to expire).
pub struct OdooNoticed<'a> {
    pub notice: &'a str,
}

impl InternalEvent for OdooNoticed<'_> {
    fn operation(&self) -> Operation<'_> {
        Operation::OdooNotice
    }
    fn level(&self) -> Level {
        Level::Warn
    }
    fn message(&self) -> Cow<'_, str> {
        self.notice.into()
    }
}

/// A channel's peer cannot be reached: its jobs wait for it without spending attempts.
pub struct ChannelUnreachable<'a> {
    pub channel: &'a str,
    pub error: &'a str,
}

impl InternalEvent for ChannelUnreachable<'_> {
    fn operation(&self) -> Operation<'_> {
        Operation::ChannelReach
    }
    fn level(&self) -> Level {
        Level::Warn
    }
    fn channel(&self) -> Option<&str> {
        Some(self.channel)
    }
    fn message(&self) -> Cow<'_, str> {
        format!(
            "{} unreachable: {}; its jobs wait for it without spending attempts, and it is probed until it answers",
            self.channel, self.error
        )
        .into()
    }
}

/// A channel's peer refuses its credential: the channel is stopped, its jobs wait.
pub struct ChannelStopped<'a> {
    pub channel: &'a str,
    pub error: &'a str,
}

impl InternalEvent for ChannelStopped<'_> {
    fn operation(&self) -> Operation<'_> {
        Operation::ChannelReach
    }
    fn level(&self) -> Level {
        Level::Error
    }
    fn channel(&self) -> Option<&str> {
        Some(self.channel)
    }
    fn message(&self) -> Cow<'_, str> {
        format!(
            "{} stopped: {}; its jobs wait without spending attempts, and go out once a probe with a good credential is accepted",
            self.channel, self.error
        )
        .into()
    }
}

/// A channel's peer is over a quota: nothing goes out until it takes calls again.
pub struct ChannelThrottled<'a> {
    pub channel: &'a str,
    pub reason: &'a str,
}

impl InternalEvent for ChannelThrottled<'_> {
    fn operation(&self) -> Operation<'_> {
        Operation::ChannelReach
    }
    fn level(&self) -> Level {
        Level::Warn
    }
    fn channel(&self) -> Option<&str> {
        Some(self.channel)
    }
    fn message(&self) -> Cow<'_, str> {
        format!(
            "{} throttled: {}; its jobs wait without spending attempts",
            self.channel, self.reason
        )
        .into()
    }
}

/// `45s`, `12m 5s`, `3h 20m`: how long something lasted, to the operator.
fn span(d: std::time::Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {}s", s / 60, s % 60),
        _ => format!("{}h {}m", s / 3600, s % 3600 / 60),
    }
}

/// A channel's peer answers again: the jobs that waited for it are released.
pub struct ChannelRecovered<'a> {
    pub channel: &'a str,
    /// How long it could not be reached.
    pub after: std::time::Duration,
    pub released: usize,
}

impl InternalEvent for ChannelRecovered<'_> {
    fn operation(&self) -> Operation<'_> {
        Operation::ChannelReach
    }
    fn level(&self) -> Level {
        Level::Info
    }
    fn channel(&self) -> Option<&str> {
        Some(self.channel)
    }
    fn message(&self) -> Cow<'_, str> {
        let released = match self.released {
            0 => "no job was still waiting for it".to_string(),
            n => format!("released {n} waiting job(s)"),
        };
        format!(
            "{} answers again after {}; {released}",
            self.channel,
            span(self.after)
        )
        .into()
    }
    fn records(&self) -> Option<i64> {
        Some(self.released as i64)
    }
}

// ---------------------------------------------------------------------------------------------
// Streams and jobs
// ---------------------------------------------------------------------------------------------

/// A stream's run did something worth telling.
pub struct StreamReported<'a> {
    pub stream: &'a str,
    pub channel: Option<&'a str>,
    pub note: &'a str,
    pub records: i64,
}

impl InternalEvent for StreamReported<'_> {
    fn operation(&self) -> Operation<'_> {
        Operation::Stream(self.stream)
    }
    fn level(&self) -> Level {
        Level::Info
    }
    fn channel(&self) -> Option<&str> {
        self.channel
    }
    fn message(&self) -> Cow<'_, str> {
        self.note.into()
    }
    fn records(&self) -> Option<i64> {
        Some(self.records)
    }
}

pub struct StreamFailed<'a> {
    pub stream: &'a str,
    pub channel: Option<&'a str>,
    pub error: &'a str,
}

impl InternalEvent for StreamFailed<'_> {
    fn operation(&self) -> Operation<'_> {
        Operation::Stream(self.stream)
    }
    fn level(&self) -> Level {
        Level::Error
    }
    fn channel(&self) -> Option<&str> {
        self.channel
    }
    fn message(&self) -> Cow<'_, str> {
        self.error.into()
    }
}

/// What became of one or more jobs of a kind (retried, dead, superseded).
pub struct JobsReported<'a> {
    pub channel: &'a str,
    pub kind: &'a str,
    pub level: Level,
    pub ids: &'a [i64],
    pub text: &'a str,
}

impl InternalEvent for JobsReported<'_> {
    fn operation(&self) -> Operation<'_> {
        Operation::Job(self.kind)
    }
    fn level(&self) -> Level {
        self.level
    }
    fn channel(&self) -> Option<&str> {
        Some(self.channel)
    }
    fn message(&self) -> Cow<'_, str> {
        let who = match self.ids {
            [one] => format!("job {one}"),
            many => format!(
                "{} jobs ({}..{})",
                many.len(),
                many.first().copied().unwrap_or_default(),
                many.last().copied().unwrap_or_default()
            ),
        };
        format!("{who} {}", self.text).into()
    }
    fn records(&self) -> Option<i64> {
        Some(self.ids.len() as i64)
    }
}

// ---------------------------------------------------------------------------------------------
// Catalog
// ---------------------------------------------------------------------------------------------

/// Products (or their stock) went out to a channel.
pub struct Pushed<'a> {
    pub channel: &'a str,
    /// Stock alone, or the products themselves.
    pub stock: bool,
    pub count: i64,
    /// What went wrong with some of them, when the batch was not clean.
    pub problem: Option<(Level, &'a str)>,
}

impl InternalEvent for Pushed<'_> {
    fn operation(&self) -> Operation<'_> {
        if self.stock {
            Operation::StockPush
        } else {
            Operation::CatalogPush
        }
    }
    fn level(&self) -> Level {
        self.problem.map(|(l, _)| l).unwrap_or(Level::Info)
    }
    fn channel(&self) -> Option<&str> {
        Some(self.channel)
    }
    fn message(&self) -> Cow<'_, str> {
        match (self.problem, self.stock) {
            (Some((_, text)), _) => text.into(),
            (None, true) => format!("pushed stock of {} product(s)", self.count).into(),
            (None, false) => format!("pushed {} product(s)", self.count).into(),
        }
    }
    fn records(&self) -> Option<i64> {
        Some(self.count)
    }
}

/// Why a product was left out of a catalog plan.
pub enum Skipped<'a> {
    /// Two Odoo products share a SKU; the mapping refused the second.
    SharedSku {
        odoo_id: i64,
        sku: &'a str,
        why: &'a str,
    },
    /// A product's SKU changed in Odoo.
    SkuChanged {
        odoo_id: i64,
        from: &'a str,
        to: &'a str,
    },
    /// Sellable products without an internal reference (the channel matches by SKU).
    WithoutSku { count: usize, shown: &'a str },
}

pub struct CatalogSkipped<'a> {
    pub channel: &'a str,
    pub skipped: Skipped<'a>,
}

impl InternalEvent for CatalogSkipped<'_> {
    fn operation(&self) -> Operation<'_> {
        Operation::CatalogPlan
    }
    fn level(&self) -> Level {
        Level::Warn
    }
    fn channel(&self) -> Option<&str> {
        Some(self.channel)
    }
    fn message(&self) -> Cow<'_, str> {
        match &self.skipped {
            Skipped::SharedSku { odoo_id, sku, why } => format!(
                "product.product {odoo_id} skipped: {why} (two Odoo products share the SKU {sku:?})"
            ),
            Skipped::SkuChanged { odoo_id, from, to } => {
                format!("product.product {odoo_id} changed SKU from {from} to {to}")
            }
            Skipped::WithoutSku { count, shown } => format!(
                "{count} sellable product(s) without an internal reference (default_code) were skipped: {} matches by SKU (product.product {shown})",
                crate::channel::kit::peer_name(self.channel)
            ),
        }
        .into()
    }
    fn records(&self) -> Option<i64> {
        match self.skipped {
            Skipped::WithoutSku { count, .. } => Some(count as i64),
            _ => None,
        }
    }
}

/// `marketsync map import` matched products.
pub struct ProductsMatched<'a> {
    pub channel: &'a str,
    pub summary: &'a str,
    pub matched: i64,
}

impl InternalEvent for ProductsMatched<'_> {
    fn operation(&self) -> Operation<'_> {
        Operation::MapImport
    }
    fn level(&self) -> Level {
        Level::Info
    }
    fn channel(&self) -> Option<&str> {
        Some(self.channel)
    }
    fn message(&self) -> Cow<'_, str> {
        self.summary.into()
    }
    fn records(&self) -> Option<i64> {
        Some(self.matched)
    }
}

/// An optional part of a channel (a translation, a field) was left out or goes out again.
pub struct PartOptional<'a> {
    pub channel: &'a str,
    pub part: &'a str,
    /// `Some(why)` when it is left out, `None` when it is back.
    pub left_out: Option<&'a str>,
}

impl InternalEvent for PartOptional<'_> {
    fn operation(&self) -> Operation<'_> {
        match self.left_out {
            Some(_) => Operation::OptionalLeftOut,
            None => Operation::OptionalRestored,
        }
    }
    fn level(&self) -> Level {
        match self.left_out {
            Some(_) => Level::Warn,
            None => Level::Info,
        }
    }
    fn channel(&self) -> Option<&str> {
        Some(self.channel)
    }
    fn message(&self) -> Cow<'_, str> {
        match self.left_out {
            Some(why) => format!("{} left out (the rest goes on): {why}", self.part).into(),
            None => format!("{} goes out again", self.part).into(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Orders
// ---------------------------------------------------------------------------------------------

/// An order was created or updated in Odoo.
#[derive(Debug, Clone)]
pub struct OrderImported {
    pub channel: &'static str,
    pub reference: String,
    pub created: bool,
    pub odoo_id: i64,
    /// The peer's own status, when it says something.
    pub detail: Option<String>,
}

impl InternalEvent for OrderImported {
    fn operation(&self) -> Operation<'_> {
        Operation::OrdersImport
    }
    fn level(&self) -> Level {
        Level::Info
    }
    fn channel(&self) -> Option<&str> {
        Some(self.channel)
    }
    fn message(&self) -> Cow<'_, str> {
        let verb = if self.created { "imported" } else { "updated" };
        let mut text = format!(
            "order {} {verb} as sale.order {}",
            self.reference, self.odoo_id
        );
        if let Some(d) = &self.detail {
            text.push_str(&format!(" ({d})"));
        }
        text.into()
    }
    fn records(&self) -> Option<i64> {
        Some(1)
    }
}

/// An order that cannot be imported as it is: parked in the inbox for the operator.
pub struct OrderRefused<'a> {
    pub channel: &'a str,
    /// Found so while pulling, or while importing.
    pub pulling: bool,
    pub reason: &'a str,
}

impl InternalEvent for OrderRefused<'_> {
    fn operation(&self) -> Operation<'_> {
        if self.pulling {
            Operation::OrdersPull
        } else {
            Operation::OrdersImport
        }
    }
    fn level(&self) -> Level {
        Level::Error
    }
    fn channel(&self) -> Option<&str> {
        Some(self.channel)
    }
    fn message(&self) -> Cow<'_, str> {
        self.reason.into()
    }
}

/// Something about an imported order the operator should look at, or a step it is waiting on.
pub enum OrderNote<'a> {
    /// The retailer is editing it on the marketplace: left alone until it is pending again.
    BeingEdited,
    /// It was edited on the marketplace and the quotation's lines follow.
    LinesUpdated,
    /// Odoo's total differs from what the marketplace says the customer pays.
    TotalsDiffer {
        odoo: &'a str,
        theirs: &'a str,
        difference: &'a str,
        currency: &'a str,
    },
    /// Anything else to check, in the operator's words.
    Check(&'a str),
}

pub struct OrderNoted<'a> {
    pub channel: &'a str,
    pub reference: &'a str,
    pub note: OrderNote<'a>,
}

impl InternalEvent for OrderNoted<'_> {
    fn operation(&self) -> Operation<'_> {
        Operation::OrdersImport
    }
    fn level(&self) -> Level {
        match self.note {
            OrderNote::BeingEdited | OrderNote::LinesUpdated => Level::Info,
            OrderNote::TotalsDiffer { .. } | OrderNote::Check(_) => Level::Warn,
        }
    }
    fn channel(&self) -> Option<&str> {
        Some(self.channel)
    }
    fn message(&self) -> Cow<'_, str> {
        let (r, peer) = (self.reference, crate::channel::kit::peer_name(self.channel));
        match &self.note {
            OrderNote::BeingEdited => format!(
                "order {r} is being edited by the retailer; left alone until it is pending again"
            ),
            OrderNote::LinesUpdated => {
                format!("order {r} was edited on {peer}; the quotation's lines were updated")
            }
            OrderNote::TotalsDiffer {
                odoo,
                theirs,
                difference,
                currency,
            } => {
                let settings = match self.channel {
                    "medusa" => "order_taxes, shipping_product_id and discount_product_id",
                    _ => "order_taxes",
                };
                format!(
                    "order {r}: Odoo's total {odoo} {currency} is not what {peer} says the customer pays, {theirs} ({difference} apart); check channels.{}.{settings}, and the order in Odoo",
                    self.channel
                )
            }
            OrderNote::Check(why) => format!("order {r}: {why}"),
        }
        .into()
    }
}

/// A pull of a channel's orders found something.
pub enum PullFound {
    /// Orders no webhook had delivered.
    Missed(i64),
    /// The same page twice: paging stopped.
    SamePageTwice,
}

pub struct OrdersPulled<'a> {
    pub channel: &'a str,
    pub found: PullFound,
}

impl InternalEvent for OrdersPulled<'_> {
    fn operation(&self) -> Operation<'_> {
        Operation::OrdersPull
    }
    fn level(&self) -> Level {
        Level::Warn
    }
    fn channel(&self) -> Option<&str> {
        Some(self.channel)
    }
    fn message(&self) -> Cow<'_, str> {
        match self.found {
            PullFound::Missed(n) => {
                format!("{n} order(s) found by the pull that no webhook had delivered").into()
            }
            PullFound::SamePageTwice => format!(
                "{} returned the same page twice; stopped paging",
                crate::channel::kit::peer_name(self.channel)
            )
            .into(),
        }
    }
    fn records(&self) -> Option<i64> {
        match self.found {
            PullFound::Missed(n) => Some(n),
            PullFound::SamePageTwice => None,
        }
    }
}

pub struct CustomerImported<'a> {
    pub channel: &'a str,
    pub id: &'a str,
    pub partner: i64,
}

impl InternalEvent for CustomerImported<'_> {
    fn operation(&self) -> Operation<'_> {
        Operation::CustomersImport
    }
    fn level(&self) -> Level {
        Level::Info
    }
    fn channel(&self) -> Option<&str> {
        Some(self.channel)
    }
    fn message(&self) -> Cow<'_, str> {
        format!("customer {} -> res.partner {}", self.id, self.partner).into()
    }
    fn records(&self) -> Option<i64> {
        Some(1)
    }
}

// ---------------------------------------------------------------------------------------------
// Status out
// ---------------------------------------------------------------------------------------------

/// An order's progress went out to its channel.
pub struct StatusSent<'a> {
    pub channel: &'a str,
    pub reference: &'a str,
    /// What was sent: a status, an event, "the quotation's edited lines".
    pub what: &'a str,
}

impl InternalEvent for StatusSent<'_> {
    fn operation(&self) -> Operation<'_> {
        Operation::StatusSend
    }
    fn level(&self) -> Level {
        Level::Info
    }
    fn channel(&self) -> Option<&str> {
        Some(self.channel)
    }
    fn message(&self) -> Cow<'_, str> {
        format!(
            "order {}: sent {} to {}",
            self.reference,
            self.what,
            crate::channel::kit::peer_name(self.channel)
        )
        .into()
    }
    fn records(&self) -> Option<i64> {
        Some(1)
    }
}

/// What became of a customer's WhatsApp message of an order's step.
pub struct MessageNoted<'a> {
    pub reference: &'a str,
    pub step: &'a str,
    pub level: Level,
    /// "sent to +965•••3456 (order_shipped, ar)", "not sent: no consent". An empty reference:
    /// not about an order (a customer's reply).
    pub what: &'a str,
}

impl InternalEvent for MessageNoted<'_> {
    fn operation(&self) -> Operation<'_> {
        Operation::Notify
    }
    fn level(&self) -> Level {
        self.level
    }
    fn channel(&self) -> Option<&str> {
        Some("whatsapp")
    }
    fn message(&self) -> Cow<'_, str> {
        if self.reference.is_empty() {
            return format!("WhatsApp: {}", self.what).into();
        }
        format!(
            "order {}: WhatsApp message ({}) {}",
            self.reference, self.step, self.what
        )
        .into()
    }
    fn records(&self) -> Option<i64> {
        Some(1)
    }
}

/// What happened to a Sha6er shipment of an Odoo delivery.
pub struct ShipmentNoted<'a> {
    /// The order's reference (the marketplace's, or the Odoo order's name).
    pub reference: &'a str,
    pub picking: &'a str,
    pub level: Level,
    /// "requested: tracking SH6-1000001, 2 package(s)", "delivered: picking validated".
    pub what: &'a str,
}

impl InternalEvent for ShipmentNoted<'_> {
    fn operation(&self) -> Operation<'_> {
        Operation::Delivery
    }
    fn level(&self) -> Level {
        self.level
    }
    fn channel(&self) -> Option<&str> {
        Some("sha6er")
    }
    fn message(&self) -> Cow<'_, str> {
        format!(
            "order {}: Sha6er shipment of {} {}",
            self.reference, self.picking, self.what
        )
        .into()
    }
    fn records(&self) -> Option<i64> {
        Some(1)
    }
}

/// An order delivered in Odoo waits on something only the operator can give (Cartona's OTP).
pub struct StatusWaiting<'a> {
    pub channel: &'a str,
    pub reference: &'a str,
    pub waits_for: &'a str,
}

impl InternalEvent for StatusWaiting<'_> {
    fn operation(&self) -> Operation<'_> {
        Operation::StatusDetect
    }
    fn level(&self) -> Level {
        Level::Warn
    }
    fn channel(&self) -> Option<&str> {
        Some(self.channel)
    }
    fn message(&self) -> Cow<'_, str> {
        format!("order {} {}", self.reference, self.waits_for).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::synclog::Query;

    #[test]
    fn one_emit_writes_the_row_and_counts_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        let before: u64 = crate::telemetry::counters::snapshot(crate::telemetry::counters::EVENTS)
            .iter()
            .filter(|(l, _)| l.contains("operation=\"status.send\""))
            .map(|(_, n)| n)
            .sum();
        emit(
            &store,
            &StatusSent {
                channel: "medusa",
                reference: "MEDUSA-1001",
                what: "order.shipped",
            },
        );
        let rows = synclog::query(
            &store,
            &Query {
                limit: 10,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].operation, "status.send");
        assert_eq!(rows[0].channel.as_deref(), Some("medusa"));
        assert_eq!(
            rows[0].message,
            "order MEDUSA-1001: sent order.shipped to Medusa"
        );
        assert_eq!(rows[0].record_count, Some(1));
        let after: u64 = crate::telemetry::counters::snapshot(crate::telemetry::counters::EVENTS)
            .iter()
            .filter(|(l, _)| l.contains("operation=\"status.send\""))
            .map(|(_, n)| n)
            .sum();
        assert_eq!(after, before + 1);
    }

    #[test]
    fn jobs_name_their_kind_and_ids() {
        let e = JobsReported {
            channel: "cartona",
            kind: "stock",
            level: Level::Warn,
            ids: &[3, 4, 9],
            text: "failed; retrying in 30s",
        };
        assert_eq!(e.operation().name(), "job.stock");
        assert_eq!(e.message(), "3 jobs (3..9) failed; retrying in 30s");
        assert_eq!(e.records(), Some(3));
    }

    /// Only this module writes the sync log: no other file builds an entry.
    #[test]
    fn nothing_else_writes_the_sync_log() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut stack = vec![src.clone()];
        let mut offenders = Vec::new();
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir).unwrap() {
                let path = e.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                let rel = path
                    .strip_prefix(&src)
                    .unwrap()
                    .to_string_lossy()
                    .to_string();
                if rel == "internal_events.rs" || rel == "store/synclog.rs" {
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                if text.contains("Entry::new(") || text.contains("synclog::append") {
                    offenders.push(rel);
                }
            }
        }
        assert!(
            offenders.is_empty(),
            "these write the sync log without an internal event: {offenders:?}"
        );
    }
}
