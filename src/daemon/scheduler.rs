//! The scheduler: each stream (`odoo.health`, `housekeeping`, and the channels' catalog and
//! order streams) runs on its own interval or cron schedule, one run at a time, and records its
//! outcome in the `streams` table. The durable part of scheduling is the job queue; a missed
//! tick is simply run at the next one.

use crate::config::Schedule;
use crate::internal_events::{self, StreamFailed, StreamReported};
use crate::store::{now_ms, streams, Store};
use futures_util::future::BoxFuture;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

/// What a stream does on each tick. Its error text is recorded for `status`.
pub trait StreamTask: Send + Sync + 'static {
    fn run(&self) -> BoxFuture<'_, Result<StreamOutcome, crate::error::Error>>;
}

/// What a successful run reports.
#[derive(Debug, Default, Clone)]
pub struct StreamOutcome {
    /// New cursor to store, if the stream keeps one.
    pub cursor: Option<String>,
    /// A line for the sync log, when the run did something worth telling.
    pub note: Option<(String, i64)>,
}

pub struct StreamSpec {
    pub name: String,
    pub channel: Option<String>,
    pub schedule: Schedule,
    /// Run once right at start instead of waiting for the first tick.
    pub run_at_start: bool,
    pub task: Arc<dyn StreamTask>,
}

/// Streams currently running and since when (ms): the watchdog's view of the scheduler.
#[derive(Default)]
pub struct Running(Mutex<HashMap<String, i64>>);

impl Running {
    /// The longest a stream has been running right now.
    pub fn longest(&self) -> Option<(String, i64)> {
        let now = now_ms();
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, at)| (k.clone(), now - at))
            .max_by_key(|(_, age)| *age)
    }

    fn set(&self, name: &str, on: bool) {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if on {
            m.insert(name.to_string(), now_ms());
        } else {
            m.remove(name);
        }
    }
}

/// Runs every stream until `shutdown`; a run in progress is allowed to finish.
pub async fn run(
    store: Store,
    specs: Vec<StreamSpec>,
    running: Arc<Running>,
    progress: Arc<super::workers::Progress>,
    shutdown: CancellationToken,
) {
    let mut tasks = tokio::task::JoinSet::new();
    for spec in specs {
        let store = store.clone();
        let running = running.clone();
        let shutdown = shutdown.clone();
        let progress = progress.clone();
        tasks.spawn(async move { stream_loop(store, spec, running, progress, shutdown).await });
    }
    while tasks.join_next().await.is_some() {}
}

async fn stream_loop(
    store: Store,
    spec: StreamSpec,
    running: Arc<Running>,
    progress: Arc<super::workers::Progress>,
    shutdown: CancellationToken,
) {
    let mut first = spec.run_at_start;
    loop {
        if !first {
            let delay = spec.schedule.next_delay(chrono::Utc::now());
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(delay) => {}
            }
        }
        first = false;
        // While the state cannot be written, nothing a run finds could be kept: skip to the
        // first tick after the pause.
        progress.storage.wait_resumed(&shutdown).await;
        if shutdown.is_cancelled() {
            return;
        }
        running.set(&spec.name, true);
        let outcome = spec.task.run().await;
        running.set(&spec.name, false);
        let name = spec.name.clone();
        let channel = spec.channel.clone();
        let recorded = match outcome {
            Ok(out) => {
                store
                    .run(move |s| {
                        streams::succeeded(s, &name, out.cursor.as_deref())?;
                        if let Some((note, n)) = &out.note {
                            let e = StreamReported {
                                stream: &name,
                                channel: channel.as_deref(),
                                note,
                                records: *n,
                            };
                            s.write(|tx| internal_events::emit_in(tx, &e))?;
                        }
                        Ok(())
                    })
                    .await
            }
            Err(error) => {
                use crate::retry::Classify;
                let unreachable = error.retry_class() == crate::retry::RetryClass::Unreachable;
                store
                    .run(move |s| {
                        let error = crate::secret::scrub(&error.to_string());
                        // The same failure as the run before is in `status` already: one line
                        // for it, not one a tick.
                        let again = streams::get(s, &name)?.is_some_and(|before| {
                            before.last_error.as_deref() == Some(error.as_str())
                                && before.last_error_at > before.last_success_at
                        });
                        streams::failed(s, &name, &error)?;
                        s.write(|tx| {
                            // A channel's stream that cannot reach its peer marks the channel,
                            // as its jobs do: its probe says when the peer is back.
                            let mut said = false;
                            if let (true, Some(ch)) = (unreachable, channel.as_deref()) {
                                crate::store::reach::mark_in(tx, ch, &error, now_ms())?;
                                said = true;
                            }
                            if !again && !said {
                                let e = StreamFailed {
                                    stream: &name,
                                    channel: channel.as_deref(),
                                    error: &error,
                                };
                                internal_events::emit_in(tx, &e)?;
                            }
                            Ok(())
                        })
                    })
                    .await
            }
        };
        if let Err(e) = recorded {
            tracing::error!(stream = %spec.name, error = %e, "cannot record the stream's run");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    struct Count(Arc<AtomicUsize>);
    impl StreamTask for Count {
        fn run(&self) -> BoxFuture<'_, Result<StreamOutcome, crate::error::Error>> {
            Box::pin(async move {
                self.0.fetch_add(1, Ordering::SeqCst);
                Ok(StreamOutcome::default())
            })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn interval_streams_tick_on_schedule() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        let n = Arc::new(AtomicUsize::new(0));
        let spec = StreamSpec {
            name: "test.tick".into(),
            channel: None,
            schedule: Schedule::Every(Duration::from_secs(30)),
            run_at_start: true,
            task: Arc::new(Count(n.clone())),
        };
        let shutdown = CancellationToken::new();
        let h = tokio::spawn(run(
            store.clone(),
            vec![spec],
            Arc::default(),
            Arc::default(),
            shutdown.clone(),
        ));
        // Paused time: advancing the clock by 95 s lets exactly three more ticks happen.
        for _ in 0..95 {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        shutdown.cancel();
        h.await.unwrap();
        assert_eq!(n.load(Ordering::SeqCst), 4);
        assert!(streams::get(&store, "test.tick")
            .unwrap()
            .unwrap()
            .last_success_at
            .is_some());
    }
}
