//! What the daemon does when its state file cannot be written (disk full, file or directory
//! read-only): it stops taking work — no job is claimed, no stream runs, webhooks are answered
//! 503 so their senders retry — says why (log, `/healthz`, `status`), probes the state every
//! second, and resumes by itself once a write goes through. Nothing already acknowledged is
//! lost: acknowledged means committed, and a job whose outcome could not be recorded is run
//! again after the pause (every job is safe to repeat; the crash test proves it).

use crate::store::{facts, now_ms, Store, StoreError};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Why and since when (ms) the daemon is paused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paused {
    pub why: String,
    pub since: i64,
}

#[derive(Default)]
pub struct StorageGate {
    paused: Mutex<Option<Paused>>,
    /// Jobs that ran while the state could not record their outcome: run again on resume.
    unrecorded: Mutex<Vec<i64>>,
    /// Wakes the watcher when someone trips the gate.
    tripped: Notify,
    /// Wakes whoever waits for the pause to end.
    resumed: Notify,
}

impl StorageGate {
    /// Pauses the daemon if `err` says the state cannot be written; true if it did (or was).
    pub fn trip(&self, err: &StoreError) -> bool {
        if !err.is_storage_unavailable() {
            return false;
        }
        let mut p = self.paused.lock().unwrap_or_else(|e| e.into_inner());
        if p.is_none() {
            let why = format!("the state database cannot be written: {err}");
            tracing::error!(
                reason = %why,
                "marketsync stops taking work until the state can be written again \
                 (free disk space or make the state directory writable; it resumes by itself)"
            );
            crate::daemon::notify::status(&format!("paused: {why}"));
            *p = Some(Paused {
                why,
                since: now_ms(),
            });
            self.tripped.notify_one();
        }
        true
    }

    pub fn paused(&self) -> Option<Paused> {
        self.paused
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn is_paused(&self) -> bool {
        self.paused().is_some()
    }

    /// Remembers jobs whose outcome could not be recorded.
    pub fn unrecorded(&self, ids: &[i64]) {
        self.unrecorded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(ids);
    }

    /// Waits until the daemon is not paused (or `shutdown`).
    pub async fn wait_resumed(&self, shutdown: &CancellationToken) {
        loop {
            let notified = self.resumed.notified();
            if !self.is_paused() || shutdown.is_cancelled() {
                return;
            }
            tokio::select! {
                _ = notified => {}
                _ = shutdown.cancelled() => return,
            }
        }
    }

    /// Publishes the heartbeat every `every`, and while paused probes the state every second;
    /// resumes the daemon when a write goes through again.
    pub async fn watch(&self, store: Store, every: Duration, shutdown: CancellationToken) {
        loop {
            let beat = store
                .run(|s| {
                    facts::set(s, facts::DAEMON_HEARTBEAT, &now_ms().to_string())?;
                    s.probe_growth()
                })
                .await;
            match beat {
                Err(e) => {
                    if self.trip(&e) {
                        // Best effort: a full disk may still take this small update.
                        let why = self.paused().map(|p| p.why).unwrap_or_default();
                        let _ = store
                            .run(move |s| facts::set(s, facts::DAEMON_PAUSED, &why))
                            .await;
                    }
                }
                Ok(()) => {
                    if let Some(was) = self.paused() {
                        self.resume(&store, was).await;
                    }
                }
            }
            let wait = if self.is_paused() {
                Duration::from_secs(1)
            } else {
                every
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.tripped.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    async fn resume(&self, store: &Store, was: Paused) {
        let ids: Vec<i64> =
            std::mem::take(&mut *self.unrecorded.lock().unwrap_or_else(|e| e.into_inner()));
        let secs = (now_ms() - was.since).max(0) / 1000;
        let text = format!(
            "the state database can be written again; resumed after {secs}s paused ({}){}",
            was.why,
            if ids.is_empty() {
                String::new()
            } else {
                format!(
                    "; {} job(s) whose outcome was not recorded will run again",
                    ids.len()
                )
            }
        );
        let ids2 = ids.clone();
        let recorded = store
            .run(move |s| {
                for id in &ids2 {
                    crate::store::queue::release(s, *id)?;
                }
                facts::remove(s, facts::DAEMON_PAUSED)?;
                s.write(|tx| {
                    crate::internal_events::emit_in(
                        tx,
                        &crate::internal_events::DaemonResumed { text: &text },
                    )
                })?;
                Ok(())
            })
            .await;
        match recorded {
            Ok(()) => {
                crate::daemon::notify::status("running");
                *self.paused.lock().unwrap_or_else(|e| e.into_inner()) = None;
                self.resumed.notify_waiters();
            }
            Err(e) => {
                // Not yet: keep the jobs for the next probe.
                self.unrecorded(&ids);
                self.trip(&e);
            }
        }
    }
}
