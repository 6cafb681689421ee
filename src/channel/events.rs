//! Order events, channel side: a channel that subscribes to orders' events is handed each
//! order's events it has not taken yet, in order, by a delivery job of its own
//! ([`order_events::delivery_job`]); what it took and the jobs it queued for them are recorded in
//! one transaction with its cursor.

use crate::daemon::workers::{one_by_one, JobError, JobHandler};
use crate::retry::RetryClass;
use crate::store::order_events::{self, Delivery, OrderEvent, DELIVERY_KIND};
use crate::store::orders::ChannelOrder;
use crate::store::queue::{self, Job, NewJob};
use crate::store::{orders, Store};
use futures_util::future::BoxFuture;
use std::sync::Arc;

pub use crate::store::order_events::Interest;

/// What a subscriber did with the events it was handed.
#[derive(Debug, Default)]
pub struct Delivered {
    /// How many of the events (from the first) it took.
    pub taken: usize,
    /// Jobs to queue with them (a marketplace's own status job, say).
    pub jobs: Vec<NewJob>,
    /// Why it stopped before the rest: the delivery is retried from the first not taken.
    pub failure: Option<JobError>,
}

impl Delivered {
    /// Took them all by queueing `job` (a marketplace's status job), or none if it could not
    /// tell what to queue.
    pub fn queueing(events: &[OrderEvent], job: Result<Option<NewJob>, JobError>) -> Delivered {
        match job {
            Ok(job) => Delivered::all(events, job.into_iter().collect()),
            Err(e) => Delivered {
                failure: Some(e),
                ..Default::default()
            },
        }
    }

    /// Took them all, queueing `jobs`.
    pub fn all(events: &[OrderEvent], jobs: Vec<NewJob>) -> Delivered {
        Delivered {
            taken: events.len(),
            jobs,
            failure: None,
        }
    }
}

/// A channel that takes orders' events.
pub trait Subscriber: Send + Sync + 'static {
    /// Which orders it hears about.
    fn interest(&self) -> Interest;

    /// Takes `events` (oldest first, all of `order`) as far as it can.
    fn deliver<'a>(
        &'a self,
        order: &'a ChannelOrder,
        events: &'a [OrderEvent],
    ) -> BoxFuture<'a, Delivered>;
}

/// Runs one delivery job of `subscriber`.
pub async fn deliver_job(
    store: &Store,
    subscriber: &str,
    handler: &dyn Subscriber,
    job: &Job,
) -> Result<(), JobError> {
    let store_err = crate::sync::order_import::store_err;
    let d: Delivery = job.payload.parse().map_err(|e| {
        JobError::new(
            RetryClass::Permanent,
            format!("order events job {} has a damaged payload: {e}", job.id),
        )
    })?;
    let order = orders::get(store, &d.channel, &d.external_id)
        .map_err(store_err)?
        .ok_or_else(|| {
            JobError::new(
                RetryClass::Permanent,
                format!("{} order {} is not known", d.channel, d.external_id),
            )
        })?;
    let events =
        order_events::after(store, subscriber, &d.channel, &d.external_id).map_err(store_err)?;
    if events.is_empty() {
        return Ok(());
    }
    let done = handler.deliver(&order, &events).await;
    let taken = done.taken.min(events.len());
    if taken > 0 || !done.jobs.is_empty() {
        store
            .write(|tx| {
                if taken > 0 {
                    order_events::advance_in(
                        tx,
                        subscriber,
                        &d.channel,
                        &d.external_id,
                        events[taken - 1].id,
                    )?;
                }
                queue::enqueue_in(tx, &done.jobs)?;
                Ok(())
            })
            .map_err(store_err)?;
    }
    match done.failure {
        Some(e) => Err(e),
        None if taken < events.len() => Err(JobError::new(
            RetryClass::Transient,
            format!(
                "{subscriber} took {taken} of the {} event(s) of order {}",
                events.len(),
                order.reference
            ),
        )),
        None => Ok(()),
    }
}

/// A channel's job handler with its order-event deliveries routed to its subscriber side.
pub struct Subscribed {
    pub name: &'static str,
    pub store: Store,
    pub jobs: Arc<dyn JobHandler>,
    pub subscriber: Arc<dyn Subscriber>,
}

impl JobHandler for Subscribed {
    fn handle<'a>(&'a self, job: &'a Job) -> BoxFuture<'a, Result<(), JobError>> {
        if job.kind == DELIVERY_KIND {
            Box::pin(deliver_job(
                &self.store,
                self.name,
                self.subscriber.as_ref(),
                job,
            ))
        } else {
            self.jobs.handle(job)
        }
    }

    fn batch_size(&self, kind: &str) -> usize {
        if kind == DELIVERY_KIND {
            1
        } else {
            self.jobs.batch_size(kind)
        }
    }

    fn records_completion(&self, kind: &str) -> bool {
        kind != DELIVERY_KIND && self.jobs.records_completion(kind)
    }

    fn handle_batch<'a>(&'a self, jobs: &'a [Job]) -> BoxFuture<'a, Vec<Result<(), JobError>>> {
        match jobs.first() {
            Some(j) if j.kind == DELIVERY_KIND => Box::pin(one_by_one(self, jobs)),
            _ => self.jobs.handle_batch(jobs),
        }
    }
}
