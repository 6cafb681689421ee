//! The durable queue's workers: backoff within bounds (paused time), dead letters, Retry-After,
//! per-channel concurrency, and graceful shutdown with jobs in flight.

use futures_util::future::BoxFuture;
use marketsync::config::{HumanDuration, RetryConfig};
use marketsync::daemon::workers::{
    ChannelWorkers, Clock, JobError, JobHandler, Progress, WorkerPool,
};
use marketsync::retry::RetryClass;
use marketsync::store::queue::{self, JobState, NewJob};
use marketsync::store::synclog::{self, Query};
use marketsync::store::Store;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// A handler that follows a script of outcomes and records when each attempt started.
struct Scripted {
    outcomes: Mutex<Vec<Result<(), JobError>>>,
    attempts: Mutex<Vec<Instant>>,
    work: Duration,
    running: AtomicUsize,
    max_running: AtomicUsize,
}

impl Scripted {
    fn new(outcomes: Vec<Result<(), JobError>>, work: Duration) -> Arc<Scripted> {
        Arc::new(Scripted {
            outcomes: Mutex::new(outcomes),
            attempts: Mutex::default(),
            work,
            running: 0.into(),
            max_running: 0.into(),
        })
    }
}

impl JobHandler for Scripted {
    fn handle<'a>(&'a self, _job: &'a queue::Job) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(async move {
            self.attempts.lock().unwrap().push(Instant::now());
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_running.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(self.work).await;
            self.running.fetch_sub(1, Ordering::SeqCst);
            let mut o = self.outcomes.lock().unwrap();
            if o.is_empty() {
                Ok(())
            } else {
                o.remove(0)
            }
        })
    }
}

fn policy(max_attempts: u32) -> RetryConfig {
    RetryConfig {
        max_attempts,
        base_delay: HumanDuration(Duration::from_secs(2)),
        max_delay: HumanDuration(Duration::from_secs(60)),
    }
}

fn pool(
    store: &Store,
    handler: Arc<Scripted>,
    concurrency: usize,
    retry: RetryConfig,
    grace: Duration,
) -> WorkerPool {
    let mut channels = HashMap::new();
    channels.insert(
        "test".to_string(),
        ChannelWorkers {
            handler,
            concurrency,
        },
    );
    WorkerPool {
        store: store.clone(),
        clock: Clock::tokio(),
        channels,
        retry,
        poll: Duration::from_millis(500),
        grace,
        progress: Arc::new(Progress::default()),
    }
}

fn job(key: &str) -> NewJob {
    NewJob {
        channel: "test".into(),
        kind: "stock".into(),
        key: key.into(),
        payload: serde_json::json!({"qty": 1}).into(),
        correlation_id: None,
    }
}

fn state(store: &Store, id: i64) -> (JobState, u32) {
    let j = queue::get(store, id).unwrap().unwrap();
    (j.state, j.attempts)
}

/// Advances paused time in small steps until `check` holds (bounded).
async fn run_until(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let end = Instant::now() + limit;
    while !check() {
        assert!(
            Instant::now() < end,
            "not reached within {limit:?} of paused time: {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn temp_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("state.db")).unwrap();
    (dir, store)
}

#[tokio::test(start_paused = true)]
async fn transient_failures_back_off_within_bounds_then_succeed() {
    let (_d, store) = temp_store();
    let transient = || Err(JobError::new(RetryClass::Transient, "connection refused"));
    let handler = Scripted::new(vec![transient(), transient(), transient()], Duration::ZERO);
    let id = queue::enqueue(&store, job("k")).unwrap().id();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(
        pool(
            &store,
            handler.clone(),
            2,
            policy(10),
            Duration::from_secs(5),
        )
        .run(shutdown.clone()),
    );
    run_until("job done", Duration::from_secs(600), || {
        state(&store, id).0 == JobState::Done
    })
    .await;
    shutdown.cancel();
    task.await.unwrap();

    let at = handler.attempts.lock().unwrap().clone();
    assert_eq!(at.len(), 4, "three failures then a success");
    for (n, pair) in at.windows(2).enumerate() {
        let gap = pair[1] - pair[0];
        // Full jitter: the wait after failure n is at most base * 2^(n-1) (plus one poll tick).
        let ceiling = Duration::from_secs(2 << n) + Duration::from_millis(600);
        assert!(
            gap <= ceiling,
            "wait {} was {gap:?}, above {ceiling:?}",
            n + 1
        );
    }
    let log = synclog::query(
        &store,
        &Query {
            limit: 10,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        log.iter()
            .filter(|r| r.level == "warn" && r.message.contains("retrying in"))
            .count(),
        3
    );
}

#[tokio::test(start_paused = true)]
async fn retries_stop_at_max_attempts_with_the_reason() {
    let (_d, store) = temp_store();
    let handler = Scripted::new(
        (0..10)
            .map(|_| Err(JobError::new(RetryClass::Transient, "HTTP 503")))
            .collect(),
        Duration::ZERO,
    );
    let id = queue::enqueue(&store, job("k")).unwrap().id();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(
        pool(
            &store,
            handler.clone(),
            2,
            policy(3),
            Duration::from_secs(5),
        )
        .run(shutdown.clone()),
    );
    run_until("job dead", Duration::from_secs(600), || {
        state(&store, id).0 == JobState::Dead
    })
    .await;
    shutdown.cancel();
    task.await.unwrap();
    assert_eq!(handler.attempts.lock().unwrap().len(), 3);
    let j = queue::get(&store, id).unwrap().unwrap();
    assert_eq!(
        j.last_error.as_deref(),
        Some("gave up after 3 attempts: HTTP 503")
    );
}

#[tokio::test(start_paused = true)]
async fn permanent_and_auth_errors_are_dead_lettered_without_retry() {
    let (_d, store) = temp_store();
    for (key, class, msg) in [
        (
            "p",
            RetryClass::Permanent,
            "400: selling_price must be a number",
        ),
        ("a", RetryClass::Auth, "Cartona rejected the token"),
    ] {
        let handler = Scripted::new(vec![Err(JobError::new(class, msg))], Duration::ZERO);
        let id = queue::enqueue(&store, job(key)).unwrap().id();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(
            pool(
                &store,
                handler.clone(),
                2,
                policy(10),
                Duration::from_secs(5),
            )
            .run(shutdown.clone()),
        );
        run_until("job dead", Duration::from_secs(60), || {
            state(&store, id).0 == JobState::Dead
        })
        .await;
        // Give it ample time to (wrongly) try again.
        tokio::time::sleep(Duration::from_secs(120)).await;
        shutdown.cancel();
        task.await.unwrap();
        assert_eq!(
            handler.attempts.lock().unwrap().len(),
            1,
            "{class:?} is not retried"
        );
        let j = queue::get(&store, id).unwrap().unwrap();
        assert!(j.last_error.unwrap().contains(msg));
    }
}

#[tokio::test(start_paused = true)]
async fn rate_limits_wait_at_least_retry_after() {
    let (_d, store) = temp_store();
    let handler = Scripted::new(
        vec![Err(JobError::new(
            RetryClass::RateLimited {
                after: Some(Duration::from_secs(30)),
            },
            "429",
        ))],
        Duration::ZERO,
    );
    let id = queue::enqueue(&store, job("k")).unwrap().id();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(
        pool(
            &store,
            handler.clone(),
            2,
            policy(10),
            Duration::from_secs(5),
        )
        .run(shutdown.clone()),
    );
    run_until("job done", Duration::from_secs(300), || {
        state(&store, id).0 == JobState::Done
    })
    .await;
    shutdown.cancel();
    task.await.unwrap();
    let at = handler.attempts.lock().unwrap().clone();
    assert_eq!(at.len(), 2);
    assert!(
        at[1] - at[0] >= Duration::from_secs(30),
        "waited only {:?}",
        at[1] - at[0]
    );
}

#[tokio::test(start_paused = true)]
async fn a_channel_never_runs_more_jobs_than_its_concurrency() {
    let (_d, store) = temp_store();
    let handler = Scripted::new(vec![], Duration::from_secs(1));
    let ids: Vec<i64> = (0..10)
        .map(|i| queue::enqueue(&store, job(&format!("k{i}"))).unwrap().id())
        .collect();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(
        pool(
            &store,
            handler.clone(),
            3,
            policy(10),
            Duration::from_secs(5),
        )
        .run(shutdown.clone()),
    );
    run_until("all done", Duration::from_secs(120), || {
        ids.iter().all(|id| state(&store, *id).0 == JobState::Done)
    })
    .await;
    shutdown.cancel();
    task.await.unwrap();
    assert_eq!(handler.max_running.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn shutdown_lets_an_in_flight_job_finish_within_the_grace_period() {
    let (_d, store) = temp_store();
    let handler = Scripted::new(vec![], Duration::from_secs(5));
    let id = queue::enqueue(&store, job("k")).unwrap().id();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(
        pool(
            &store,
            handler.clone(),
            2,
            policy(10),
            Duration::from_secs(30),
        )
        .run(shutdown.clone()),
    );
    run_until("job running", Duration::from_secs(10), || {
        state(&store, id).0 == JobState::Running
    })
    .await;
    shutdown.cancel();
    task.await.unwrap();
    assert_eq!(state(&store, id), (JobState::Done, 0));
}

#[tokio::test(start_paused = true)]
async fn shutdown_puts_back_a_job_that_outlives_the_grace_period() {
    let (_d, store) = temp_store();
    let handler = Scripted::new(vec![], Duration::from_secs(300));
    let id = queue::enqueue(&store, job("k")).unwrap().id();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(
        pool(
            &store,
            handler.clone(),
            2,
            policy(10),
            Duration::from_secs(10),
        )
        .run(shutdown.clone()),
    );
    run_until("job running", Duration::from_secs(10), || {
        state(&store, id).0 == JobState::Running
    })
    .await;
    let stop_at = Instant::now();
    shutdown.cancel();
    task.await.unwrap();
    assert!(
        Instant::now() - stop_at <= Duration::from_secs(11),
        "the grace period bounds the stop"
    );
    assert_eq!(
        state(&store, id),
        (JobState::Pending, 0),
        "back to pending, no attempt counted"
    );
}

#[tokio::test(start_paused = true)]
async fn jobs_of_channels_without_workers_wait() {
    let (_d, store) = temp_store();
    let mut other = job("x");
    other.channel = "disabled".into();
    let id = queue::enqueue(&store, other).unwrap().id();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(
        pool(
            &store,
            Scripted::new(vec![], Duration::ZERO),
            2,
            policy(10),
            Duration::from_secs(5),
        )
        .run(shutdown.clone()),
    );
    tokio::time::sleep(Duration::from_secs(30)).await;
    shutdown.cancel();
    task.await.unwrap();
    assert_eq!(
        state(&store, id),
        (JobState::Pending, 0),
        "a disabled channel's jobs are kept, not failed"
    );
}

#[tokio::test(start_paused = true)]
async fn a_job_queued_while_the_workers_are_idle_starts_at_once_not_at_the_next_poll() {
    let (_d, store) = temp_store();
    let handler = Scripted::new(Vec::new(), Duration::ZERO);
    let mut pool = pool(
        &store,
        handler.clone(),
        2,
        policy(3),
        Duration::from_secs(5),
    );
    pool.poll = Duration::from_secs(3600);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(pool.run(shutdown.clone()));
    // The workers found nothing and sleep until their next poll, an hour away.
    tokio::time::sleep(Duration::from_secs(5)).await;
    for round in 0..3 {
        let queued_at = Instant::now();
        let id = queue::enqueue(&store, job(&format!("k{round}")))
            .unwrap()
            .id();
        run_until("the job done", Duration::from_secs(10), || {
            state(&store, id).0 == JobState::Done
        })
        .await;
        let started = *handler.attempts.lock().unwrap().last().unwrap();
        assert!(
            started - queued_at < Duration::from_secs(1),
            "round {round}: started {:?} after it was queued",
            started - queued_at
        );
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    shutdown.cancel();
    task.await.unwrap();
}
