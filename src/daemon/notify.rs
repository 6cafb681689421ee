//! systemd integration: READY once migrations ran and Odoo accepted the login, STATUS lines,
//! STOPPING, and a watchdog that pings only while the workers and the scheduler make progress
//! (a stuck daemon is then restarted by systemd instead of pretending to be alive).

use super::Health;
use crate::store::now_ms;
use sd_notify::NotifyState;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn send(states: &[NotifyState<'_>]) {
    if std::env::var_os("NOTIFY_SOCKET").is_some() {
        if let Err(e) = sd_notify::notify(states) {
            tracing::debug!(error = %e, "sd_notify failed");
        }
    }
}

pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

pub fn status(status: &str) {
    send(&[NotifyState::Status(status)]);
}

pub fn stopping() {
    send(&[
        NotifyState::Stopping,
        NotifyState::Status("stopping: finishing in-flight jobs"),
    ]);
}

/// Pings the watchdog at half its interval while the dispatcher loop is alive and no stream
/// run has been stuck longer than `stall_after`.
pub async fn watchdog(health: Arc<Health>, shutdown: CancellationToken) {
    let Some(interval) = sd_notify::watchdog_enabled() else {
        return;
    };
    let tick = (interval / 2).max(Duration::from_millis(500));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(tick) => {}
        }
        let dispatcher_age = now_ms() - health.progress.dispatcher_tick.load(Ordering::Relaxed);
        let stuck_stream = health
            .running_streams
            .longest()
            .filter(|(_, age)| *age > health.stall_after.as_millis() as i64);
        if dispatcher_age < interval.as_millis() as i64 && stuck_stream.is_none() {
            send(&[NotifyState::Watchdog]);
        } else {
            tracing::error!(dispatcher_age_ms = dispatcher_age, stuck = ?stuck_stream, "no progress; not pinging the watchdog");
        }
    }
}
