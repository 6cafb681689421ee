//! The probe: a diagnostic subscriber, not a marketplace. Every marketplace order's events are
//! posted to `{base_url}events`, one request per event, in order, with
//! `Authorization: Bearer {token}`. Each carries its `event_id`: a delivery made just before a
//! crash, whose success could not be recorded, is made again with the same id, so a receiver
//! keeps each event once by it. The tests use it as a second, independent subscriber beside
//! each order's owner; an operator can point it at a script to watch orders move.
//!
//! Files: this one (the whole channel: it has no catalog, orders or jobs of its own).

use crate::channel::events::{Delivered, Interest, Subscriber};
use crate::channel::http::HttpClient;
use crate::channel::Started;
use crate::config::ChannelConfig;
use crate::daemon::workers::{ChannelWorkers, JobError, JobHandler};
use crate::secret::Secret;
use crate::store::order_events::{OrderEvent, Subscription};
use crate::store::orders::ChannelOrder;
use crate::store::queue::Job;
use crate::store::Store;
use futures_util::future::BoxFuture;
use serde::Serialize;
use std::sync::Arc;

pub const CHANNEL: &str = "probe";

/// What one request carries.
#[derive(Debug, Serialize)]
pub struct Posted<'a> {
    pub event_id: i64,
    pub channel: &'a str,
    pub external_id: &'a str,
    pub reference: &'a str,
    pub kind: &'a str,
    pub data: &'a serde_json::Value,
}

pub struct Probe {
    api: HttpClient,
}

pub fn client(cfg: &ChannelConfig) -> Result<HttpClient, crate::error::Error> {
    let (token, base) = crate::channel::kit::token_and_base(cfg)?;
    let bearer = Secret::new(format!("Bearer {}", token.expose()));
    Ok(HttpClient::new(
        "the probe",
        base,
        cfg.timeout,
        vec![("Authorization", bearer)],
    ))
}

/// The probe's endpoint takes events only: `check` says where they go (reaching it is its
/// first delivery).
pub fn check(cfg: &ChannelConfig) -> (bool, String) {
    match client(cfg) {
        Err(e) => (false, e.to_string()),
        Ok(_) => (
            true,
            format!(
                "the probe posts order events to {}events",
                cfg.base_url.as_ref().map(|u| u.as_str()).unwrap_or("")
            ),
        ),
    }
}

/// Starts the probe: it runs no streams, only its deliveries.
pub fn start(cfg: &ChannelConfig, store: Store) -> Result<Started, crate::error::Error> {
    let probe = Arc::new(Probe { api: client(cfg)? });
    Ok(Started {
        name: CHANNEL,
        workers: ChannelWorkers {
            handler: Arc::new(crate::channel::events::Subscribed {
                name: CHANNEL,
                store,
                jobs: probe.clone(),
                subscriber: probe.clone(),
            }),
            concurrency: cfg.concurrency,
        },
        streams: Vec::new(),
        subscription: Some(Subscription {
            subscriber: CHANNEL.into(),
            interest: probe.interest(),
        }),
        owns: None,
        poll_overlap: std::time::Duration::ZERO,
    })
}

impl JobHandler for Probe {
    /// The probe queues no jobs of its own.
    fn handle<'a>(&'a self, job: &'a Job) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(async move { Err(crate::channel::kit::unknown_kind(job)) })
    }
}

impl Subscriber for Probe {
    fn interest(&self) -> Interest {
        Interest::All
    }

    fn deliver<'a>(
        &'a self,
        order: &'a ChannelOrder,
        events: &'a [OrderEvent],
    ) -> BoxFuture<'a, Delivered> {
        Box::pin(async move {
            for (taken, e) in events.iter().enumerate() {
                let body = Posted {
                    event_id: e.id,
                    channel: &e.channel,
                    external_id: &e.external_id,
                    reference: &order.reference,
                    kind: e.kind.as_str(),
                    data: &e.data,
                };
                if let Err(err) = self.api.post("events", &body).await {
                    return Delivered {
                        taken,
                        jobs: Vec::new(),
                        failure: Some(err.into()),
                    };
                }
            }
            Delivered::all(events, Vec::new())
        })
    }
}
