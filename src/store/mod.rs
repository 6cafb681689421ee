//! The SQLite state file: one connection, WAL, `BEGIN IMMEDIATE` for every write, migrations
//! embedded from `migrations/`. The daemon holds the writer; the CLI opens the same file
//! read-only (or, for `queue retry`/`map set`, as a second short-lived writer).
//!
//! Parts: [`queue`] (durable jobs), [`synclog`] (the operator's log), [`mapping`] (Odoo ids <->
//! channel ids), [`inbox`] (received events), [`orders`] (marketplace orders on both sides),
//! [`order_events`] (what happened to them on the Odoo side, and who took it),
//! [`streams`] (cursors and last runs), [`facts`].

pub mod facts;
pub mod inbox;
pub mod mapping;
pub mod messages;
pub mod order_events;
pub mod orders;
pub mod queue;
pub mod reach;
pub mod shipments;
pub mod streams;
pub mod synclog;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// The migrations, in order. Their position is their version (`PRAGMA user_version`).
const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_initial",
        include_str!("../../migrations/0001_initial.sql"),
    ),
    (
        "0002_orders",
        include_str!("../../migrations/0002_orders.sql"),
    ),
    (
        "0003_queue_order",
        include_str!("../../migrations/0003_queue_order.sql"),
    ),
    (
        "0004_awaiting_otp",
        include_str!("../../migrations/0004_awaiting_otp.sql"),
    ),
    (
        "0005_order_events",
        include_str!("../../migrations/0005_order_events.sql"),
    ),
    (
        "0006_channel_data",
        include_str!("../../migrations/0006_channel_data.sql"),
    ),
    (
        "0007_shipment_events",
        include_str!("../../migrations/0007_shipment_events.sql"),
    ),
    (
        "0008_messages",
        include_str!("../../migrations/0008_messages.sql"),
    ),
    (
        "0009_shipments",
        include_str!("../../migrations/0009_shipments.sql"),
    ),
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("state database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "state database {path} is at schema version {found}, newer than this marketsync understands ({SCHEMA_VERSION}); \
         run the newer marketsync, or restore a backup made before the upgrade"
    )]
    TooNew { path: PathBuf, found: u32 },
    #[error(
        "state database {path} was not created yet (the daemon creates it at its first start)"
    )]
    Missing { path: PathBuf },
    #[error("state database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotFound(String),
}

impl StoreError {
    /// True when the disk is full or the file became read-only: the daemon stops taking work
    /// until it is fixed rather than failing jobs it cannot record.
    pub fn is_storage_unavailable(&self) -> bool {
        let code = match self {
            StoreError::Sql(e) | StoreError::Open { source: e, .. } => e.sqlite_error_code(),
            _ => None,
        };
        matches!(
            code,
            Some(rusqlite::ErrorCode::DiskFull)
                | Some(rusqlite::ErrorCode::ReadOnly)
                | Some(rusqlite::ErrorCode::CannotOpen)
                | Some(rusqlite::ErrorCode::SystemIoFailure)
        )
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// The thread of [`Store::checkpoint_in_background`]; dropping it stops the thread and gives
/// checkpoints back to SQLite's default.
pub struct Checkpointer {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    store: Store,
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = self
            .store
            .lock()
            .pragma_update(None, "wal_autocheckpoint", 1000);
    }
}

/// A storage fault [`Store::simulate_fault`] can act out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageFault {
    /// Writes fail as on a read-only file or directory (`SQLITE_READONLY`).
    ReadOnly,
    /// The file cannot grow, as on a full disk (`SQLITE_FULL`).
    Full,
}

/// Milliseconds since the Unix epoch, the time unit of every table.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The state store. Cheap to clone; all clones share one connection.
#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
    read_only: bool,
    /// Signalled after a write that queued a job commits: the workers start on it at once
    /// instead of at their next poll.
    enqueued: Arc<tokio::sync::Notify>,
}

thread_local! {
    /// Set by [`queue::enqueue_in`] inside a write; [`Store::write`] signals `enqueued` once
    /// the transaction commits. (The write runs on the calling thread, holding the connection.)
    static JOBS_QUEUED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Called by the queue when a transaction adds or replaces a waiting job.
pub(crate) fn note_jobs_queued() {
    JOBS_QUEUED.with(|q| q.set(true));
}

impl Store {
    /// Opens (creating if needed) the state file for writing and applies pending migrations.
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() && !dir.exists() {
                std::fs::create_dir_all(dir).map_err(|e| StoreError::Open {
                    path: path.to_path_buf(),
                    source: rusqlite::Error::SqliteFailure(
                        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
                        Some(format!("cannot create directory {}: {e}", dir.display())),
                    ),
                })?;
            }
        }
        let open_err = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        let mut conn = Connection::open(path).map_err(open_err)?;
        configure(&conn).map_err(open_err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(open_err)?;
        migrate(&mut conn, path)?;
        Ok(Store {
            conn: Arc::new(Mutex::new(conn)),
            path: path.to_path_buf(),
            read_only: false,
            enqueued: Arc::default(),
        })
    }

    /// Opens an existing state file read-only, for commands that only look (works while the
    /// daemon runs). A missing file is [`StoreError::Missing`].
    pub fn open_read_only(path: &Path) -> Result<Store> {
        if !path.exists() {
            return Err(StoreError::Missing {
                path: path.to_path_buf(),
            });
        }
        let open_err = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(open_err)?;
        configure(&conn).map_err(open_err)?;
        let version: u32 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(open_err)?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                path: path.to_path_buf(),
                found: version,
            });
        }
        Ok(Store {
            conn: Arc::new(Mutex::new(conn)),
            path: path.to_path_buf(),
            read_only: true,
            enqueued: Arc::default(),
        })
    }

    /// An empty in-memory state, for commands run before the daemon ever started.
    pub fn open_empty() -> Result<Store> {
        let mut conn = Connection::open_in_memory()?;
        migrate(&mut conn, Path::new(":memory:"))?;
        Ok(Store {
            conn: Arc::new(Mutex::new(conn)),
            path: PathBuf::from(":memory:"),
            read_only: true,
            enqueued: Arc::default(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the state can take new records: writes 16 KiB in a transaction that is rolled
    /// back, so a state that cannot grow (file size limit, simulated full disk) is found
    /// before it fails a webhook. A disk that fills at commit is found by the real writes.
    pub fn probe_growth(&self) -> Result<()> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT OR REPLACE INTO facts (key, value, updated_at) \
             VALUES ('daemon.probe', randomblob(16384), 0)",
            [],
        )?;
        tx.rollback()?;
        Ok(())
    }

    /// Moves WAL checkpoints to a thread of their own with a second connection, every `every`,
    /// so no write waits for one: by default SQLite copies the log into the file (and syncs
    /// it) inside whichever commit crosses 1,000 pages, holding up every writer behind it. The
    /// checkpoints are PASSIVE: they never block a reader or a writer. Stops when the returned
    /// guard is dropped. For the daemon; short-lived writers keep SQLite's default.
    pub fn checkpoint_in_background(&self, every: Duration) -> Result<Checkpointer> {
        let conn = Connection::open(&self.path)?;
        configure(&conn)?;
        self.lock().pragma_update(None, "wal_autocheckpoint", 0)?;
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("marketsync-checkpoint".into())
            .spawn(move || {
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(every)
                {
                    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                    {
                        tracing::debug!(error = %e, "WAL checkpoint did not run");
                    }
                }
            })
            .map_err(|e| {
                StoreError::Conflict(format!("cannot start the WAL checkpoint thread: {e}"))
            })?;
        Ok(Checkpointer {
            stop: Some(stop),
            thread: Some(thread),
            store: self.clone(),
        })
    }

    /// Acts out a storage fault on this store's connection until called with `None`: for the
    /// fault-injection tests (a test running as root cannot make a file read-only) and the demo.
    /// SQLite then fails writes exactly as it does on a read-only file or a full disk.
    pub fn simulate_fault(&self, fault: Option<StorageFault>) -> Result<()> {
        let conn = self.lock();
        let page_count: i64 = conn.pragma_query_value(None, "page_count", |r| r.get(0))?;
        let (query_only, max_pages) = match fault {
            None => (false, i64::from(u32::MAX - 1)),
            Some(StorageFault::ReadOnly) => (true, i64::from(u32::MAX - 1)),
            Some(StorageFault::Full) => (false, page_count),
        };
        conn.pragma_update(None, "query_only", query_only)?;
        conn.pragma_update(None, "max_page_count", max_pages)?;
        Ok(())
    }

    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` in a `BEGIN IMMEDIATE` transaction (the write lock is taken up front, so a
    /// second writer waits on busy_timeout instead of failing mid-transaction).
    pub fn write<T>(&self, f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T>) -> Result<T> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        JOBS_QUEUED.with(|q| q.set(false));
        let out = f(&tx);
        let queued = JOBS_QUEUED.with(|q| q.replace(false));
        let out = out?;
        tx.commit()?;
        if queued {
            self.enqueued.notify_one();
        }
        Ok(out)
    }

    /// Resolves after a job was queued (at once if one was queued since the last wait).
    pub async fn job_queued(&self) {
        self.enqueued.notified().await
    }

    /// Runs a read.
    pub fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = self.lock();
        f(&conn)
    }

    /// Runs a store operation off the async runtime's threads.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
    }

    /// Checkpoints the WAL into the main file (housekeeping).
    pub fn checkpoint(&self) -> Result<()> {
        self.lock()
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }

    /// The schema version of the open file.
    pub fn schema_version(&self) -> Result<u32> {
        Ok(self
            .lock()
            .pragma_query_value(None, "user_version", |r| r.get(0))?)
    }
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version: u32 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            path: path.to_path_buf(),
            found: version,
        });
    }
    for (index, (name, sql)) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        tx.execute_batch(sql)
            .map_err(|e| StoreError::Conflict(format!("migration {name} failed: {e}")))?;
        tx.pragma_update(None, "user_version", (index + 1) as u32)?;
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_from_empty_then_rerun_are_noops() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        store
            .write(|tx| {
                tx.execute(
                    "INSERT INTO facts (key, value, updated_at) VALUES ('k', 'v', 0)",
                    [],
                )?;
                Ok(())
            })
            .unwrap();
        drop(store);
        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        let v: String = store
            .read(|c| Ok(c.query_row("SELECT value FROM facts WHERE key = 'k'", [], |r| r.get(0))?))
            .unwrap();
        assert_eq!(v, "v");
        let mode: String = store
            .read(|c| Ok(c.pragma_query_value(None, "journal_mode", |r| r.get(0))?))
            .unwrap();
        assert_eq!(mode, "wal");
    }

    #[test]
    fn a_version_1_database_upgrades_and_keeps_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(MIGRATIONS[0].1).unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
            conn.execute(
                "INSERT INTO inbox (source, event_id, kind, payload, state, received_at) VALUES ('cartona', 'e1', 'order', '{}', 'received', 0)",
                [],
            )
            .unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        let pending = inbox::pending(&store, None, 10).unwrap();
        assert_eq!((pending.len(), pending[0].subject.clone()), (1, None));
        orders::seen(&store, "cartona", "1", "CARTONA-1", "pending", None).unwrap();
    }

    #[test]
    fn a_version_6_database_keeps_its_order_events_and_cursors_and_takes_one_shipment_per_delivery()
    {
        use order_events::{EventKind, Facts, Interest, Subscription};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        {
            let conn = Connection::open(&path).unwrap();
            for (_, sql) in &MIGRATIONS[..6] {
                conn.execute_batch(sql).unwrap();
            }
            conn.pragma_update(None, "user_version", 6).unwrap();
            conn.execute_batch(
                "INSERT INTO channel_orders (channel, external_id, reference, marketplace_status, updated_at) \
                   VALUES ('medusa', 'order_1', 'MEDUSA-1', 'pending', 0); \
                 INSERT INTO order_events (id, channel, external_id, kind, data, at) VALUES \
                   (7, 'medusa', 'order_1', 'confirmed', '{\"order\":\"S1\"}', 1), \
                   (9, 'medusa', 'order_1', 'shipped', '{\"tracking\":\"T\"}', 2); \
                 INSERT INTO order_event_cursors (subscriber, channel, external_id, through) \
                   VALUES ('medusa', 'medusa', 'order_1', 7);",
            )
            .unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        let all = order_events::of_order(&store, "medusa", "order_1").unwrap();
        assert_eq!(
            all.iter().map(|e| (e.id, e.kind)).collect::<Vec<_>>(),
            [(7, EventKind::Confirmed), (9, EventKind::Shipped)]
        );
        assert_eq!(all[1].data["tracking"], "T");
        let left = order_events::after(&store, "medusa", "medusa", "order_1").unwrap();
        assert_eq!(left.len(), 1, "the cursor still stands after the first");
        assert_eq!(left[0].id, 9);
        // Two deliveries: two shipment events; either again: none.
        let subs = [Subscription {
            subscriber: "medusa".into(),
            interest: Interest::Own,
        }];
        let shipment = |picking: i64| {
            (
                EventKind::Shipment,
                serde_json::json!({"picking_id": picking, "lines": []}),
            )
        };
        let facts = |f: Vec<(EventKind, serde_json::Value)>| Facts {
            channel: "medusa".into(),
            external_id: "order_1".into(),
            reference: "MEDUSA-1".into(),
            facts: f,
        };
        let new = order_events::record(&store, &[facts(vec![shipment(31), shipment(32)])], &subs)
            .unwrap();
        assert_eq!(new.len(), 2);
        assert!(
            order_events::record(&store, &[facts(vec![shipment(32)])], &subs)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn checkpoints_move_from_commits_to_their_own_thread_and_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let store = Store::open(&path).unwrap();
        let size = || std::fs::metadata(&path).unwrap().len();
        // 2,000 pages of writes: past SQLite's 1,000-page default.
        let fill = |tag: &str| {
            for i in 0..200 {
                store
                    .write(|tx| {
                        tx.execute(
                            "INSERT OR REPLACE INTO facts (key, value, updated_at) VALUES (?1, randomblob(40000), 0)",
                            [format!("{tag}{i}")],
                        )?;
                        Ok(())
                    })
                    .unwrap();
            }
        };
        let before = size();
        fill("a");
        assert!(size() > before + 4_000_000, "commits checkpoint by default");
        let grown = size();
        let background = store
            .checkpoint_in_background(Duration::from_secs(3600))
            .unwrap();
        fill("b");
        assert!(
            size() < grown + 1_000_000,
            "with the thread running, commits do not checkpoint ({} -> {})",
            grown,
            size()
        );
        drop(background);
        let background = store
            .checkpoint_in_background(Duration::from_millis(20))
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while size() < grown + 4_000_000 {
            assert!(
                std::time::Instant::now() < deadline,
                "the thread never checkpointed"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        drop(background);
    }

    #[test]
    fn newer_database_is_refused_with_a_clear_message() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        drop(Store::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        drop(conn);
        let err = Store::open(&path).err().expect("must refuse");
        assert!(
            err.to_string()
                .contains("newer than this marketsync understands"),
            "{err}"
        );
        let err = Store::open_read_only(&path).err().expect("must refuse");
        assert!(matches!(err, StoreError::TooNew { .. }));
    }

    #[test]
    fn read_only_open_sees_writes_and_cannot_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let writer = Store::open(&path).unwrap();
        facts::set(&writer, "odoo.version", "17.0").unwrap();
        let reader = Store::open_read_only(&path).unwrap();
        assert_eq!(
            facts::get(&reader, "odoo.version").unwrap().unwrap().0,
            "17.0"
        );
        assert!(facts::set(&reader, "x", "y").is_err());
    }
}
