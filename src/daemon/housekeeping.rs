//! Daily housekeeping: prune the sync log past `log.retention_days` and finished jobs past the
//! same age, then checkpoint the WAL so the state file does not grow without bound.

use super::scheduler::{StreamOutcome, StreamTask};
use crate::store::{now_ms, queue, synclog, Store};
use futures_util::future::BoxFuture;

pub struct Housekeeping {
    pub store: Store,
    pub retention_days: u32,
}

impl StreamTask for Housekeeping {
    fn run(&self) -> BoxFuture<'_, Result<StreamOutcome, crate::error::Error>> {
        Box::pin(async move {
            let before = now_ms() - i64::from(self.retention_days) * 86_400_000;
            let (logs, jobs) = self
                .store
                .run(move |s| {
                    let logs = synclog::prune(s, before)?;
                    let jobs = queue::prune_done(s, before)?;
                    s.checkpoint()?;
                    Ok((logs, jobs))
                })
                .await?;
            Ok(StreamOutcome {
                cursor: None,
                note: Some((
                    format!(
                        "pruned {logs} sync-log rows and {jobs} finished jobs; WAL checkpointed"
                    ),
                    (logs + jobs) as i64,
                )),
            })
        })
    }
}
