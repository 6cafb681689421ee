//! `marketsync run`: the daemon. It opens the state (migrations), logs in to Odoo (retrying
//! while Odoo is unreachable), tells systemd it is ready, then runs the scheduler, the workers,
//! the webhook listener and housekeeping until SIGTERM/SIGINT, and exits 0 after a graceful stop.

pub mod housekeeping;
pub mod notify;
pub mod scheduler;
pub mod storage;
pub mod workers;

use crate::config::Config;
use crate::internal_events;
use crate::odoo::{OdooClient, OdooError};
use crate::retry::{backoff_delay, Classify, RetryClass};
use crate::store::{facts, now_ms, queue, Store};
use futures_util::future::BoxFuture;
use scheduler::{StreamOutcome, StreamSpec, StreamTask};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use workers::{ChannelWorkers, Progress, WorkerPool};

/// Exit status when the configuration (e.g. the Odoo login) is wrong: systemd's unit does not
/// restart on it (`RestartPreventExitStatus=78`), since restarting cannot fix it.
pub const EXIT_CONFIG: i32 = 78;

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Odoo(#[from] OdooError),
    #[error("{0}")]
    Channel(#[from] crate::error::Error),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

impl DaemonError {
    pub fn exit_code(&self) -> i32 {
        match self {
            DaemonError::Odoo(e) if e.retry_class() == RetryClass::Auth => EXIT_CONFIG,
            _ => 1,
        }
    }
}

/// Shared view of the daemon's health, for `/healthz` and the watchdog.
pub struct Health {
    pub store: Store,
    pub progress: Arc<Progress>,
    pub running_streams: Arc<scheduler::Running>,
    pub stall_after: Duration,
    pub started_at: i64,
    /// The Odoo client, once logged in (for `/metrics`).
    pub odoo: std::sync::OnceLock<OdooClient>,
}

impl Health {
    pub fn new(store: Store, stall_after: Duration) -> Health {
        Health {
            store,
            progress: Arc::default(),
            running_streams: Arc::default(),
            stall_after,
            started_at: now_ms(),
            odoo: std::sync::OnceLock::new(),
        }
    }

    /// The channels whose peers cannot be reached, in the operator's words. The daemon itself
    /// is healthy meanwhile (their jobs wait without spending attempts), so `/healthz` still
    /// answers 200, saying `degraded` with these.
    pub fn unreachable(&self) -> Vec<String> {
        crate::store::reach::all(&self.store)
            .map(|all| all.iter().map(|u| u.describe()).collect())
            .unwrap_or_default()
    }

    /// `Ok` or the reasons the daemon is unhealthy.
    pub fn check(&self) -> Result<(), Vec<String>> {
        let now = now_ms();
        let stall = self.stall_after.as_millis() as i64;
        let mut problems = Vec::new();
        if let Some(p) = self.progress.storage.paused() {
            problems.push(format!(
                "paused since {} ({}s): {}",
                chrono::DateTime::from_timestamp_millis(p.since)
                    .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                    .unwrap_or_default(),
                (now - p.since).max(0) / 1000,
                p.why
            ));
        }
        if let Ok(Some((since, _))) = facts::get(&self.store, facts::ODOO_DOWN_SINCE) {
            if let Ok(since) = since.parse::<i64>() {
                if now - since > stall {
                    problems.push(format!("Odoo unreachable for {}s", (now - since) / 1000));
                }
            }
        }
        // Due work that has not moved for `stall_after` means the workers are stuck.
        if let Ok(Some(due)) = queue::next_due_at(&self.store) {
            let last = self
                .progress
                .last_job_finished
                .load(std::sync::atomic::Ordering::Relaxed)
                .max(self.started_at);
            if now - due > stall && now - last > stall {
                problems.push(format!("queue has not moved for {}s", (now - last) / 1000));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

/// The daemon, assembled: what `marketsync run` and `marketsync demo` start.
pub struct Daemon {
    pub config: Config,
    pub store: Store,
    channels: HashMap<String, ChannelWorkers>,
    streams: Vec<StreamSpec>,
    /// Where the listener actually bound (useful with port 0).
    pub bound: Option<tokio::sync::oneshot::Sender<std::net::SocketAddr>>,
}

impl Daemon {
    pub fn new(config: Config, store: Store) -> Daemon {
        Daemon {
            config,
            store,
            channels: HashMap::new(),
            streams: Vec::new(),
            bound: None,
        }
    }

    /// Registers the job handler of a channel.
    pub fn add_channel(&mut self, name: &str, workers: ChannelWorkers) {
        self.channels.insert(name.to_string(), workers);
    }

    pub fn add_stream(&mut self, spec: StreamSpec) {
        self.streams.push(spec);
    }

    /// Runs until `shutdown` is cancelled.
    pub async fn run(mut self, shutdown: CancellationToken) -> Result<(), DaemonError> {
        let store = self.store.clone();
        // Ends with `run` (dropped on every return).
        let _checkpoints = match store.checkpoint_in_background(Duration::from_secs(1)) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(error = %e, "WAL checkpoints stay inside commits");
                None
            }
        };
        let recovered = store.run(queue::recover_running).await?;
        if recovered > 0 {
            tracing::warn!(
                jobs = recovered,
                "jobs left running by an earlier stop are pending again"
            );
        }
        store
            .run(|s| {
                facts::remove(s, facts::DAEMON_PAUSED)?;
                facts::set(s, facts::DAEMON_PID, &std::process::id().to_string())
            })
            .await?;
        // The listener comes first: webhooks are taken into the inbox even while Odoo is down.
        let progress = Arc::new(Progress::default());
        let running_streams = Arc::new(scheduler::Running::default());
        let health = Arc::new(Health {
            store: store.clone(),
            progress: progress.clone(),
            running_streams: running_streams.clone(),
            stall_after: self.config.daemon.stall_after.0,
            started_at: now_ms(),
            odoo: std::sync::OnceLock::new(),
        });

        let (listener, addr) = listen(
            &store,
            self.config.webhooks.listen,
            facts::DAEMON_LISTEN,
            "webhooks",
        )
        .await?;
        // The operator's listener: /metrics stays off the public webhook address.
        let (admin_listener, _) = listen(
            &store,
            self.config.admin.listen,
            facts::DAEMON_ADMIN_LISTEN,
            "operator (/metrics, /healthz)",
        )
        .await?;
        if let Some(tx) = self.bound.take() {
            let _ = tx.send(addr);
        }

        let app_state = crate::webhook::App {
            health: health.clone(),
            store: store.clone(),
            hooks: crate::channel::webhook_specs(&self.config),
            max_body_bytes: self.config.webhooks.max_body_bytes,
            body_timeout: self.config.webhooks.body_timeout.0,
        };
        let admin = crate::webhook::admin_router(app_state.clone());
        let app = crate::webhook::router(app_state);
        let (server_stop, admin_stop) = (shutdown.clone(), shutdown.clone());
        let admin_server = tokio::spawn(async move {
            let _ = axum::serve(admin_listener, admin)
                .with_graceful_shutdown(async move { admin_stop.cancelled().await })
                .await;
        });
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move { server_stop.cancelled().await })
                .await;
            let _ = admin_server.await;
        });
        notify::status("connecting to Odoo");
        let odoo = match connect_odoo(&self.config, &store, &shutdown).await {
            Ok(Some(odoo)) => odoo,
            Ok(None) => {
                let _ = server.await; // stopped while waiting for Odoo
                return Ok(());
            }
            Err(e) => {
                server.abort();
                return Err(e);
            }
        };
        let _ = health.odoo.set(odoo.clone());
        record_notices(&odoo, &store, self.config.odoo.protocol).await;
        let (name, login) = odoo.whoami().await.unwrap_or_default();
        let ready = format!(
            "Odoo {} at {} as {} ({}), protocol {}",
            odoo.version().version,
            self.config.odoo.url,
            name,
            login,
            self.config.odoo.protocol.as_str()
        );
        let ready_msg = ready.clone();
        store
            .run(move |s| {
                facts::set(s, facts::ODOO_USER, &format!("{name} ({login})"))?;
                s.write(|tx| {
                    internal_events::emit_in(
                        tx,
                        &internal_events::DaemonStarted { ready: &ready_msg },
                    )
                })?;
                Ok(())
            })
            .await?;

        let running = crate::channel::start_enabled(&self.config, &odoo, &store)
            .await
            .map_err(DaemonError::Channel)?;
        self.streams.extend(running.streams);
        for started in running.channels {
            tracing::info!(
                channel = started.name,
                streams = started.streams.len(),
                "channel started"
            );
            self.channels
                .insert(started.name.to_string(), started.workers);
            self.streams.extend(started.streams);
        }

        self.streams.push(StreamSpec {
            name: "odoo.health".into(),
            channel: None,
            schedule: self.config.schedule.odoo_health.clone(),
            run_at_start: false,
            task: Arc::new(OdooHealth {
                odoo: odoo.clone(),
                store: store.clone(),
                protocol: self.config.odoo.protocol,
                notices_at: std::sync::Mutex::new(std::time::Instant::now()),
            }),
        });
        self.streams.push(StreamSpec {
            name: "housekeeping".into(),
            channel: None,
            schedule: self.config.schedule.housekeeping.clone(),
            run_at_start: false,
            task: Arc::new(housekeeping::Housekeeping {
                store: store.clone(),
                retention_days: self.config.log.retention_days,
            }),
        });

        let pool = WorkerPool {
            store: store.clone(),
            clock: workers::Clock::system(),
            channels: self.channels,
            retry: self.config.retry.clone(),
            poll: self.config.daemon.queue_poll.0,
            grace: self.config.daemon.shutdown_grace.0,
            progress: progress.clone(),
        };
        let sched = tokio::spawn(scheduler::run(
            store.clone(),
            self.streams,
            running_streams,
            progress.clone(),
            shutdown.clone(),
        ));
        let watchdog = tokio::spawn(notify::watchdog(health.clone(), shutdown.clone()));
        let heartbeat = {
            let (store, progress, stop) = (store.clone(), progress.clone(), shutdown.clone());
            tokio::spawn(async move {
                progress
                    .storage
                    .watch(store, Duration::from_secs(10), stop)
                    .await
            })
        };

        notify::ready(&ready);
        tracing::info!("{ready}; ready");
        pool.run(shutdown.clone()).await;

        notify::stopping();
        let _ = sched.await;
        let _ = server.await;
        watchdog.abort();
        heartbeat.abort();
        let _ = store
            .run(|s| {
                facts::remove(s, facts::DAEMON_HEARTBEAT)?;
                s.write(|tx| internal_events::emit_in(tx, &internal_events::DaemonStopped))?;
                Ok(())
            })
            .await;
        Ok(())
    }
}

/// Logs in to Odoo, retrying with backoff while it is unreachable. A rejected login is final.
async fn connect_odoo(
    config: &Config,
    store: &Store,
    shutdown: &CancellationToken,
) -> Result<Option<OdooClient>, DaemonError> {
    let mut attempt = 0;
    loop {
        match OdooClient::connect(&config.odoo).await {
            Ok(client) => {
                let version = client.version().version.clone();
                store
                    .run(move |s| {
                        facts::set(s, facts::ODOO_VERSION, &version)?;
                        facts::set(s, facts::ODOO_STATUS, "ok")?;
                        facts::remove(s, facts::ODOO_DOWN_SINCE)
                    })
                    .await?;
                return Ok(Some(client));
            }
            Err(e) if e.retry_class().is_retryable() => {
                attempt += 1;
                let wait = backoff_delay(
                    attempt,
                    Duration::from_secs(1),
                    Duration::from_secs(60),
                    RetryClass::Transient,
                    &mut rand::rng(),
                )
                .max(Duration::from_millis(200));
                tracing::warn!(error = %e, retry_in_s = wait.as_secs_f32(), "Odoo not reachable yet");
                notify::status(&format!("waiting for Odoo: {e}"));
                record_odoo_down(store, &e.to_string()).await;
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(None),
                    _ = tokio::time::sleep(wait) => {}
                }
            }
            Err(e) => {
                let text = e.to_string();
                let _ = store
                    .run(move |s| {
                        facts::set(s, facts::ODOO_STATUS, &text)?;
                        s.write(|tx| {
                            internal_events::emit_in(
                                tx,
                                &internal_events::OdooLoginFailed { error: &text },
                            )
                        })
                    })
                    .await;
                return Err(e.into());
            }
        }
    }
}

async fn record_odoo_down(store: &Store, error: &str) {
    let error = error.to_string();
    let _ = store
        .run(move |s| {
            facts::set(s, facts::ODOO_STATUS, &error)?;
            facts::set_if_absent(s, facts::ODOO_DOWN_SINCE, &now_ms().to_string())
        })
        .await;
}

/// Binds a listener and records where it is bound under `fact` (the configured port may be 0).
async fn listen(
    store: &Store,
    at: std::net::SocketAddr,
    fact: &'static str,
    what: &'static str,
) -> Result<(tokio::net::TcpListener, std::net::SocketAddr), DaemonError> {
    let failed = |source| DaemonError::Listen { addr: at, source };
    let listener = tokio::net::TcpListener::bind(at).await.map_err(failed)?;
    let addr = listener.local_addr().map_err(failed)?;
    tracing::info!(%addr, "listening: {what}");
    store
        .run(move |s| facts::set(s, fact, &addr.to_string()))
        .await?;
    Ok((listener, addr))
}

/// Checks that Odoo still answers; `status` and `/healthz` read the outcome. Once an hour it
/// also records again what to hear before Odoo stops answering (the start recorded it first).
struct OdooHealth {
    odoo: OdooClient,
    store: Store,
    protocol: crate::config::OdooProtocol,
    /// When the notices were last recorded (at start, then hourly).
    notices_at: std::sync::Mutex<std::time::Instant>,
}

impl OdooHealth {
    const NOTICES_EVERY: Duration = Duration::from_secs(3600);

    async fn refresh_notices(&self) {
        if self.notices_at.lock().expect("notices lock").elapsed() < Self::NOTICES_EVERY {
            return;
        }
        record_notices(&self.odoo, &self.store, self.protocol).await;
        *self.notices_at.lock().expect("notices lock") = std::time::Instant::now();
    }
}

/// Records the notices for `status` (or clears them), and logs each new one once.
async fn record_notices(odoo: &OdooClient, store: &Store, protocol: crate::config::OdooProtocol) {
    let notices = crate::odoo::notices::ahead(odoo, protocol, chrono::Utc::now()).await;
    let text = notices.join("\n");
    let _ = store
        .run(move |s| {
            let before = facts::get(s, facts::ODOO_NOTICES)?.map(|(v, _)| v);
            for n in &notices {
                if !before.as_deref().unwrap_or("").lines().any(|l| l == n) {
                    s.write(|tx| {
                        internal_events::emit_in(tx, &internal_events::OdooNoticed { notice: n })
                    })?;
                }
            }
            if text.is_empty() {
                facts::remove(s, facts::ODOO_NOTICES)
            } else {
                facts::set(s, facts::ODOO_NOTICES, &text)
            }
        })
        .await;
}

impl StreamTask for OdooHealth {
    fn run(&self) -> BoxFuture<'_, Result<StreamOutcome, crate::error::Error>> {
        Box::pin(async move {
            let probe = crate::odoo::Domain::all().and("id", "=", self.odoo.uid());
            match self.odoo.search_count("res.users", &probe).await {
                Ok(_) => {
                    self.refresh_notices().await;
                    let was_down = self
                        .store
                        .run(|s| {
                            let was = facts::get(s, facts::ODOO_DOWN_SINCE)?;
                            facts::set(s, facts::ODOO_STATUS, "ok")?;
                            facts::remove(s, facts::ODOO_DOWN_SINCE)?;
                            Ok(was)
                        })
                        .await?;
                    let note = was_down.map(|_| ("Odoo answers again".to_string(), 0));
                    Ok(StreamOutcome { cursor: None, note })
                }
                Err(e) => {
                    if e.is_unreachable() {
                        record_odoo_down(&self.store, &e.to_string()).await;
                    } else {
                        let text = e.to_string();
                        let _ = self
                            .store
                            .run(move |s| facts::set(s, facts::ODOO_STATUS, &text))
                            .await;
                    }
                    Err(e.into())
                }
            }
        })
    }
}

/// Waits for SIGTERM or SIGINT, then cancels `token`.
pub async fn cancel_on_signal(token: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received; stopping"),
            _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received; stopping"),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    token.cancel();
}
