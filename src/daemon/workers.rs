//! Workers: claim due jobs from the durable queue, run them with a per-channel concurrency
//! limit, and record the outcome (done, retry with backoff, or dead with the reason). On
//! shutdown they stop claiming, give in-flight jobs the grace period, and put back any that
//! did not finish, without counting an attempt.

use crate::config::RetryConfig;
use crate::retry::RetryClass;
use crate::store::queue::{self, FailOutcome, Job};
use crate::store::synclog::Level;
use crate::store::{now_ms, Store};
use futures_util::future::BoxFuture;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Why a job failed, and so whether it is retried.
#[derive(Debug, Clone)]
pub struct JobError {
    pub class: RetryClass,
    pub message: String,
}

impl JobError {
    pub fn new(class: RetryClass, message: impl Into<String>) -> Self {
        JobError {
            class,
            message: message.into(),
        }
    }

    pub fn from_error<E: crate::retry::Classify + std::fmt::Display>(e: &E) -> Self {
        JobError::new(e.retry_class(), e.to_string())
    }
}

impl std::fmt::Display for JobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for JobError {}

impl crate::retry::Classify for JobError {
    fn retry_class(&self) -> RetryClass {
        self.class
    }
}

/// Runs the jobs of one channel.
pub trait JobHandler: Send + Sync + 'static {
    fn handle<'a>(&'a self, job: &'a Job) -> BoxFuture<'a, Result<(), JobError>>;

    /// How many jobs of `kind` one call to [`JobHandler::handle_batch`] takes (bulk endpoints).
    fn batch_size(&self, _kind: &str) -> usize {
        1
    }

    /// True when the handler records its successful jobs of `kind` done itself, in the
    /// transaction that records what they did (one commit per job instead of two). The pool
    /// then only counts them.
    fn records_completion(&self, _kind: &str) -> bool {
        false
    }

    /// Runs jobs of one kind together; one outcome per job, in order, so one bad record does
    /// not fail the others.
    fn handle_batch<'a>(&'a self, jobs: &'a [Job]) -> BoxFuture<'a, Vec<Result<(), JobError>>> {
        Box::pin(one_by_one(self, jobs))
    }
}

/// Runs jobs one after the other through [`JobHandler::handle`] (kinds without a bulk endpoint).
pub async fn one_by_one<H: JobHandler + ?Sized>(
    handler: &H,
    jobs: &[Job],
) -> Vec<Result<(), JobError>> {
    let mut out = Vec::with_capacity(jobs.len());
    for job in jobs {
        out.push(handler.handle(job).await);
    }
    out
}

/// A channel's handler and how many of its calls may run at once.
#[derive(Clone)]
pub struct ChannelWorkers {
    pub handler: Arc<dyn JobHandler>,
    pub concurrency: usize,
}

/// Shared signals between the pool, the scheduler, `/healthz` and the watchdog.
#[derive(Default)]
pub struct Progress {
    /// Last loop of the dispatcher (ms): proves it is not stuck.
    pub dispatcher_tick: AtomicI64,
    /// Last job that finished, whatever the outcome (ms).
    pub last_job_finished: AtomicI64,
    /// Paused while the state cannot be written.
    pub storage: super::storage::StorageGate,
}

impl Progress {
    pub fn touch(cell: &AtomicI64) {
        cell.store(now_ms(), Ordering::Relaxed);
    }
}

/// Where the workers read the time. The system clock in production; tests with paused tokio
/// time use [`Clock::tokio`] so backoff and schedules run without real waiting.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> i64 + Send + Sync>);

impl Clock {
    pub fn system() -> Clock {
        Clock(Arc::new(now_ms))
    }

    /// Wall time at creation plus tokio's elapsed time (which a paused runtime advances).
    pub fn tokio() -> Clock {
        let base_wall = now_ms();
        let base = tokio::time::Instant::now();
        Clock(Arc::new(move || {
            base_wall + base.elapsed().as_millis() as i64
        }))
    }

    pub fn now(&self) -> i64 {
        (self.0)()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::system()
    }
}

pub struct WorkerPool {
    pub store: Store,
    pub clock: Clock,
    pub channels: HashMap<String, ChannelWorkers>,
    pub retry: RetryConfig,
    pub poll: Duration,
    pub grace: Duration,
    pub progress: Arc<Progress>,
}

impl WorkerPool {
    /// Runs until `shutdown` is cancelled and in-flight jobs are settled.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut running: JoinSet<(Vec<i64>, String)> = JoinSet::new();
        let mut in_flight: HashMap<String, usize> = HashMap::new();
        let mut job_ids: HashMap<tokio::task::Id, Vec<i64>> = HashMap::new();
        loop {
            Progress::touch(&self.progress.dispatcher_tick);
            // Settle finished jobs first so their slots are free.
            while let Some(done) = running.try_join_next_with_id() {
                self.settled(done, &mut in_flight, &mut job_ids);
            }
            if shutdown.is_cancelled() {
                break;
            }
            if self.progress.storage.is_paused() {
                // Take nothing new; settle what runs; wait for the state to be writable.
                tokio::select! {
                    _ = self.progress.storage.wait_resumed(&shutdown) => {}
                    Some(done) = running.join_next_with_id(), if !running.is_empty() => {
                        self.settled(done, &mut in_flight, &mut job_ids);
                    }
                }
                continue;
            }
            let slots: HashMap<String, usize> = self
                .channels
                .iter()
                .map(|(name, w)| {
                    (
                        name.clone(),
                        w.concurrency
                            .saturating_sub(*in_flight.get(name).unwrap_or(&0)),
                    )
                })
                .collect();
            let handlers: HashMap<String, Arc<dyn JobHandler>> = self
                .channels
                .iter()
                .map(|(n, w)| (n.clone(), w.handler.clone()))
                .collect();
            let now = self.clock.now();
            let batches = match self
                .store
                .run(move |s| {
                    queue::claim_batches(s, now, &slots, &|ch, kind| {
                        handlers.get(ch).map(|h| h.batch_size(kind)).unwrap_or(1)
                    })
                })
                .await
            {
                Ok(b) => b,
                Err(e) => {
                    if !self.progress.storage.trip(&e) {
                        tracing::error!(error = %e, "cannot read the job queue; workers pause");
                    }
                    Vec::new()
                }
            };
            let claimed_any = !batches.is_empty();
            for batch in batches {
                let channel = batch[0].channel.clone();
                let Some(workers) = self.channels.get(&channel) else {
                    continue;
                };
                *in_flight.entry(channel.clone()).or_default() += 1;
                let handler = workers.handler.clone();
                let store = self.store.clone();
                let retry = self.retry.clone();
                let progress = self.progress.clone();
                let clock = self.clock.clone();
                let ids: Vec<i64> = batch.iter().map(|j| j.id).collect();
                let handle = running.spawn(async move {
                    let gate = &progress.storage;
                    run_batch(&store, handler.as_ref(), &batch, &retry, &clock, gate).await;
                    Progress::touch(&progress.last_job_finished);
                    (batch.iter().map(|j| j.id).collect::<Vec<_>>(), channel)
                });
                job_ids.insert(handle.id(), ids);
            }
            if claimed_any {
                continue;
            }
            let wait = self.idle_wait().await;
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = self.store.job_queued() => {}
                _ = tokio::time::sleep(wait) => {}
                Some(done) = running.join_next_with_id(), if !running.is_empty() => {
                    self.settled(done, &mut in_flight, &mut job_ids);
                }
            }
        }
        self.drain(running, job_ids).await;
    }

    fn settled(
        &self,
        done: Result<(tokio::task::Id, (Vec<i64>, String)), tokio::task::JoinError>,
        in_flight: &mut HashMap<String, usize>,
        job_ids: &mut HashMap<tokio::task::Id, Vec<i64>>,
    ) {
        let channel = match done {
            Ok((task, (_, channel))) => {
                job_ids.remove(&task);
                channel
            }
            Err(e) => {
                // A handler panicked: its jobs are dead-lettered rather than retried forever.
                let ids = job_ids.remove(&e.id()).unwrap_or_default();
                tracing::error!(jobs = ?ids, "job handler panicked");
                let mut channel = None;
                for id in ids {
                    let _ = queue::fail(
                        &self.store,
                        id,
                        RetryClass::Permanent,
                        "the job handler panicked (a bug: please report it)",
                        &self.retry,
                        self.clock.now(),
                    );
                    if let Ok(Some(job)) = queue::get(&self.store, id) {
                        channel = Some(job.channel);
                    }
                }
                if let Some(channel) = channel {
                    dec(in_flight, &channel);
                }
                return;
            }
        };
        dec(in_flight, &channel);
    }

    /// How long to sleep when nothing is due: until the next retry, at most one poll period.
    async fn idle_wait(&self) -> Duration {
        let next = self.store.run(queue::next_due_at).await.ok().flatten();
        match next {
            Some(at) => Duration::from_millis(
                (at - self.clock.now()).clamp(10, self.poll.as_millis() as i64) as u64,
            ),
            None => self.poll,
        }
    }

    async fn drain(
        &self,
        mut running: JoinSet<(Vec<i64>, String)>,
        mut job_ids: HashMap<tokio::task::Id, Vec<i64>>,
    ) {
        if running.is_empty() {
            return;
        }
        tracing::info!(
            jobs = running.len(),
            grace_s = self.grace.as_secs(),
            "waiting for in-flight jobs"
        );
        let deadline = tokio::time::Instant::now() + self.grace;
        loop {
            match tokio::time::timeout_at(deadline, running.join_next_with_id()).await {
                Ok(Some(Ok((task, _)))) => {
                    job_ids.remove(&task);
                }
                Ok(Some(Err(e))) => {
                    job_ids.remove(&e.id());
                }
                Ok(None) => return,
                Err(_) => break,
            }
        }
        running.abort_all();
        for id in job_ids.into_values().flatten() {
            tracing::warn!(
                job = id,
                "job did not finish within the grace period; it will run again at next start"
            );
            if let Err(e) = queue::release(&self.store, id) {
                tracing::error!(job = id, error = %e, "cannot put the job back; it will be recovered at next start");
            }
        }
    }
}

fn dec(in_flight: &mut HashMap<String, usize>, channel: &str) {
    if let Some(n) = in_flight.get_mut(channel) {
        *n = n.saturating_sub(1);
    }
}

async fn run_batch(
    store: &Store,
    handler: &dyn JobHandler,
    jobs: &[Job],
    retry: &RetryConfig,
    clock: &Clock,
    gate: &super::storage::StorageGate,
) {
    let results = if jobs.len() == 1 {
        vec![handler.handle(&jobs[0]).await]
    } else {
        handler.handle_batch(jobs).await
    };
    // One sync-log line per distinct failure, however many jobs of the batch it hit.
    let mut lines: Vec<(Level, String, Vec<i64>)> = Vec::new();
    let mut done = Vec::new();
    for (i, job) in jobs.iter().enumerate() {
        let result = results.get(i).cloned().unwrap_or_else(|| {
            Err(JobError::new(
                RetryClass::Transient,
                format!(
                    "the {} handler gave {} outcomes for {} jobs",
                    job.channel,
                    results.len(),
                    jobs.len()
                ),
            ))
        });
        let err = match result {
            Ok(()) => {
                done.push(job.id);
                continue;
            }
            Err(err) => err,
        };
        if let Some((level, text)) = record_failure(store, job, err, retry, clock, gate).await {
            match lines.iter_mut().find(|(l, t, _)| *l == level && *t == text) {
                Some((_, _, ids)) => ids.push(job.id),
                None => lines.push((level, text, vec![job.id])),
            }
        }
    }
    if !done.is_empty() {
        crate::telemetry::counters::add(
            crate::telemetry::counters::JOB_OUTCOMES,
            &[
                ("channel", &jobs[0].channel),
                ("kind", &jobs[0].kind),
                ("outcome", "done"),
            ],
            done.len() as u64,
        );
    }
    if !done.is_empty() && !handler.records_completion(&jobs[0].kind) {
        let ids = done.clone();
        if let Err(e) = store.run(move |s| queue::complete_many(s, &ids)).await {
            if gate.trip(&e) {
                gate.unrecorded(&done);
            }
            tracing::error!(jobs = ?done, error = %e, "jobs succeeded but their completion could not be recorded; they may run again");
        }
    }
    for (level, text, ids) in lines {
        let (channel, kind) = (jobs[0].channel.clone(), jobs[0].kind.clone());
        let _ = store
            .run(move |s| {
                let e = crate::internal_events::JobsReported {
                    channel: &channel,
                    kind: &kind,
                    level,
                    ids: &ids,
                    text: &text,
                };
                s.write(|tx| crate::internal_events::emit_in(tx, &e))
            })
            .await;
    }
}

/// Records one job's failure in the queue (successes are completed per batch); returns what to
/// tell the operator, if anything.
async fn record_failure(
    store: &Store,
    job: &Job,
    err: JobError,
    retry: &RetryConfig,
    clock: &Clock,
    gate: &super::storage::StorageGate,
) -> Option<(Level, String)> {
    let id = job.id;
    let retry = retry.clone();
    let message = crate::secret::scrub(&err.message);
    let class = err.class;
    let m = message.clone();
    let now = clock.now();
    let channel = job.channel.clone();
    let outcome = store
        .run(move |s| {
            if class == RetryClass::Unavailable {
                // Odoo did not answer: `status` and `/healthz` say so from the first failure
                // (the odoo.health stream clears it when Odoo answers again).
                crate::store::facts::set_if_absent(
                    s,
                    crate::store::facts::ODOO_DOWN_SINCE,
                    &now_ms().to_string(),
                )?;
            }
            if class == RetryClass::Unreachable {
                // The channel's peer did not answer: one line says so for all its jobs, and
                // its probe releases them when it answers again.
                s.write(|tx| crate::store::reach::mark_in(tx, &channel, &m, now))?;
            }
            queue::fail(s, id, class, &m, &retry, now)
        })
        .await;
    let counted = match &outcome {
        Ok(FailOutcome::Retrying { .. }) => Some("retry"),
        Ok(FailOutcome::Dead { .. }) => Some("dead"),
        Ok(FailOutcome::Superseded { .. }) => Some("superseded"),
        Err(_) => None,
    };
    if let Some(what) = counted {
        use crate::telemetry::counters;
        let labels = [
            ("channel", job.channel.as_str()),
            ("kind", job.kind.as_str()),
        ];
        counters::inc(
            counters::JOB_OUTCOMES,
            &[labels[0], labels[1], ("outcome", what)],
        );
        if what == "retry" {
            counters::inc(counters::RETRIES, &labels);
        }
    }
    match outcome {
        // Said once for the channel (`ChannelUnreachable`), not once per job.
        Ok(FailOutcome::Retrying { .. }) if class == RetryClass::Unreachable => None,
        Ok(FailOutcome::Retrying {
            attempt,
            next_attempt_at,
        }) => {
            let wait_s = ((next_attempt_at - now).max(0) as f64) / 1000.0;
            Some((
                Level::Warn,
                format!(
                    "failed ({}, attempt {attempt}): {message}; retrying in {wait_s:.1}s",
                    class.as_str()
                ),
            ))
        }
        Ok(FailOutcome::Dead { reason }) => Some((Level::Error, format!("is dead: {reason}"))),
        Ok(FailOutcome::Superseded { by }) => {
            tracing::info!(job = id, by, "failed job superseded by a newer one");
            None
        }
        Err(e) => {
            if gate.trip(&e) {
                gate.unrecorded(&[id]);
            }
            tracing::error!(job = id, error = %e, "cannot record the job's failure; it will run again");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retry::Classify;

    #[test]
    fn a_job_error_is_an_error_with_its_message_and_class() {
        let e = JobError::new(RetryClass::Auth, "Cartona refused the token (401)");
        assert_eq!(e.retry_class(), RetryClass::Auth);
        let boxed: Box<dyn std::error::Error> = Box::new(e);
        assert_eq!(boxed.to_string(), "Cartona refused the token (401)");
    }
}
