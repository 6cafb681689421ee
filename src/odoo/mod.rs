//! The Odoo client: one async type for the rest of the code, whatever `odoo.protocol` says.
//! It logs in, detects the server version, bounds the calls in flight
//! (`odoo.max_concurrent_calls`) and their duration, and offers the ORM calls the sync needs,
//! including keyset-paged reads whose memory stays flat however large the catalog.

pub mod domain;
pub mod error;
pub mod notices;
pub mod profile;
pub mod transport;
pub mod value;
pub mod xmlrpc_codec;

pub use domain::Domain;
pub use error::OdooError;
pub use transport::{Call, ServerVersion};
pub use value::Value;

use crate::config::OdooConfig;
use crate::secret::Secret;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use transport::Transport;

/// Methods that return None: a "cannot marshal None" fault or a `result`-less JSON-RPC reply
/// after them means success, since Odoo committed the change before failing to encode nothing.
const RETURNS_NOTHING: &[&str] = &[
    "action_archive",
    "action_unarchive",
    "toggle_active",
    "action_lock",
    "action_unlock",
];

/// Options of `search_read`.
#[derive(Debug, Clone, Default)]
pub struct SearchOpts {
    pub order: Option<String>,
    pub limit: Option<u32>,
    pub offset: Option<u32>,
    pub context: Vec<(String, Value)>,
}

#[derive(Clone)]
pub struct OdooClient {
    inner: Arc<Inner>,
}

struct Inner {
    transport: Transport,
    database: String,
    username: String,
    key: Secret,
    uid: i64,
    version: ServerVersion,
    limiter: Semaphore,
    timeout: Duration,
    page_size: u32,
    /// `odoo.company_id`: every call's `allowed_company_ids`.
    company: Option<i64>,
    reads_in_flight: usize,
    calls: AtomicU64,
    latency: LatencyHistogram,
}

/// Upper bounds (seconds) of the Odoo call latency histogram's buckets.
pub const LATENCY_BUCKETS: [f64; 9] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// Odoo call latencies, for `/metrics`: cumulative counts per bucket, sum and count.
#[derive(Default)]
pub struct LatencyHistogram {
    buckets: [AtomicU64; 9],
    sum_micros: AtomicU64,
    count: AtomicU64,
}

impl LatencyHistogram {
    fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
            if s <= *bound {
                self.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.sum_micros
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// (cumulative counts per bucket, sum in seconds, count)
    pub fn snapshot(&self) -> (Vec<u64>, f64, u64) {
        (
            self.buckets
                .iter()
                .map(|b| b.load(Ordering::Relaxed))
                .collect(),
            self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
            self.count.load(Ordering::Relaxed),
        )
    }
}

impl OdooClient {
    /// Reads the server version and logs in.
    pub async fn connect(cfg: &OdooConfig) -> Result<OdooClient, OdooError> {
        let transport = Transport::new(cfg.protocol, cfg.url.clone(), cfg.timeout);
        let timeout = cfg.timeout;
        let version = with_timeout(timeout, transport.version()).await?;
        let uid = with_timeout(
            timeout,
            transport.authenticate(&cfg.database, &cfg.username, &cfg.api_key),
        )
        .await?
        .ok_or_else(|| OdooError::LoginRejected {
            user: cfg.username.clone(),
            database: cfg.database.clone(),
        })?;
        tracing::info!(version = %version.version, protocol = cfg.protocol.as_str(), uid, "logged in to Odoo");
        Ok(OdooClient {
            inner: Arc::new(Inner {
                transport,
                database: cfg.database.clone(),
                username: cfg.username.clone(),
                key: cfg.api_key.clone(),
                uid,
                version,
                limiter: Semaphore::new(cfg.max_concurrent_calls),
                timeout,
                page_size: cfg.page_size,
                company: cfg.company_id,
                reads_in_flight: cfg.reads_in_flight,
                calls: AtomicU64::new(2),
                latency: LatencyHistogram::default(),
            }),
        })
    }

    pub fn version(&self) -> &ServerVersion {
        &self.inner.version
    }

    pub fn uid(&self) -> i64 {
        self.inner.uid
    }

    /// The company every call works in (`odoo.company_id`), if one is set.
    pub fn company(&self) -> Option<i64> {
        self.inner.company
    }

    /// That company as the operator is told of it.
    pub fn company_words(&self) -> String {
        self.inner
            .company
            .map(|c| format!("company {c} (odoo.company_id)"))
            .unwrap_or_else(|| "the integration user's company".into())
    }

    pub fn username(&self) -> &str {
        &self.inner.username
    }

    pub fn database(&self) -> &str {
        &self.inner.database
    }

    /// Calls made so far (login included), for the benchmark and `status`.
    pub fn calls_made(&self) -> u64 {
        self.inner.calls.load(Ordering::Relaxed)
    }

    pub fn latency(&self) -> &LatencyHistogram {
        &self.inner.latency
    }

    /// Runs one call within the concurrency bound and the timeout.
    pub async fn call(&self, mut call: Call) -> Result<Value, OdooError> {
        // In the configured company: Odoo then creates in it, and reads its stock and records.
        if let Some(company) = self.inner.company {
            if !call.context.iter().any(|(k, _)| k == "allowed_company_ids") {
                call.context.push((
                    "allowed_company_ids".into(),
                    Value::Array(vec![Value::Int(company)]),
                ));
            }
        }
        let _permit = self
            .inner
            .limiter
            .acquire()
            .await
            .expect("semaphore never closed");
        self.inner.calls.fetch_add(1, Ordering::Relaxed);
        let started = std::time::Instant::now();
        let i = &self.inner;
        let out = with_timeout(
            i.timeout,
            i.transport.execute(&i.database, i.uid, &i.key, &call),
        )
        .await;
        i.latency.observe(started.elapsed());
        tracing::debug!(model = %call.model, method = %call.method, ms = started.elapsed().as_millis() as u64, ok = out.is_ok(), "odoo call");
        match out {
            Err(OdooError::NoneResult) if RETURNS_NOTHING.contains(&call.method.as_str()) => {
                Ok(Value::Nil)
            }
            // Odoo's words name no setting: say which one.
            Err(OdooError::AccessError(m)) if m.contains("unauthorized or invalid companies") => {
                Err(OdooError::AccessError(format!(
                    "{m} (odoo.company_id = {}: not one of the user's companies; set it to one of them, or allow the user in it: Settings > Users > Allowed Companies)",
                    i.company.unwrap_or_default()
                )))
            }
            other => other,
        }
    }

    pub async fn search_read(
        &self,
        model: &str,
        domain: &Domain,
        fields: &[&str],
        opts: SearchOpts,
    ) -> Result<Vec<Value>, OdooError> {
        let mut call = Call::new(model, "search_read")
            .arg("domain", domain.to_value())
            .kwarg("fields", fields_value(fields));
        if let Some(order) = opts.order {
            call = call.kwarg("order", order);
        }
        if let Some(limit) = opts.limit {
            call = call.kwarg("limit", limit);
        }
        if let Some(offset) = opts.offset {
            call = call.kwarg("offset", offset);
        }
        call.context = opts.context;
        expect_records(self.call(call).await?)
    }

    /// One page of the records matching `domain` whose id is above `after_id`, ordered by id
    /// (keyset paging: the next page starts after the last id of this one). A page shorter than
    /// [`OdooClient::page_size`] is the last.
    pub async fn search_read_after(
        &self,
        model: &str,
        domain: &Domain,
        fields: &[&str],
        context: Vec<(String, Value)>,
        after_id: i64,
    ) -> Result<Vec<Value>, OdooError> {
        let mut fields: Vec<&str> = fields.to_vec();
        if !fields.contains(&"id") {
            fields.push("id");
        }
        let opts = SearchOpts {
            order: Some("id".into()),
            limit: Some(self.inner.page_size),
            offset: None,
            context,
        };
        self.search_read(
            model,
            &domain.clone().and("id", ">", after_id),
            &fields,
            opts,
        )
        .await
    }

    /// Up to `limit` ids of the records matching `domain` whose id is above `after_id`, in id
    /// order (keyset paging of ids alone: a small answer).
    pub async fn search_after(
        &self,
        model: &str,
        domain: &Domain,
        context: Vec<(String, Value)>,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<i64>, OdooError> {
        let mut call = Call::new(model, "search")
            .arg("domain", domain.clone().and("id", ">", after_id).to_value())
            .kwarg("order", "id")
            .kwarg("limit", limit);
        call.context = context;
        Ok(self.call(call).await?.as_ids())
    }

    pub fn page_size(&self) -> usize {
        self.inner.page_size as usize
    }

    /// Pages a full read asks for at once (`odoo.reads_in_flight`).
    pub fn reads_in_flight(&self) -> usize {
        self.inner.reads_in_flight
    }

    /// Reads every record matching `domain`, a page at a time by id keyset, handing each page
    /// to `on_page`. Memory holds one page, never the set.
    pub async fn search_read_pages<F>(
        &self,
        model: &str,
        domain: &Domain,
        fields: &[&str],
        context: Vec<(String, Value)>,
        mut on_page: F,
    ) -> Result<usize, OdooError>
    where
        F: FnMut(Vec<Value>) -> Result<(), OdooError>,
    {
        let mut last_id = 0i64;
        let mut total = 0usize;
        loop {
            let rows = self
                .search_read_after(model, domain, fields, context.clone(), last_id)
                .await?;
            let n = rows.len();
            if let Some(id) = rows
                .last()
                .and_then(|r| r.get("id"))
                .and_then(Value::as_i64)
            {
                last_id = id;
            }
            total += n;
            if n > 0 {
                on_page(rows)?;
            }
            if n < self.page_size() {
                return Ok(total);
            }
        }
    }

    pub async fn read(
        &self,
        model: &str,
        ids: &[i64],
        fields: &[&str],
    ) -> Result<Vec<Value>, OdooError> {
        expect_records(
            self.call(
                Call::new(model, "read")
                    .ids(ids)
                    .kwarg("fields", fields_value(fields)),
            )
            .await?,
        )
    }

    /// `search` with a context (e.g. `active_test = False`).
    pub async fn search_with(
        &self,
        model: &str,
        domain: &Domain,
        context: Vec<(String, Value)>,
    ) -> Result<Vec<i64>, OdooError> {
        let mut call = Call::new(model, "search").arg("domain", domain.to_value());
        call.context = context;
        Ok(self.call(call).await?.as_ids())
    }

    pub async fn search(
        &self,
        model: &str,
        domain: &Domain,
        limit: Option<u32>,
    ) -> Result<Vec<i64>, OdooError> {
        let mut call = Call::new(model, "search").arg("domain", domain.to_value());
        if let Some(limit) = limit {
            call = call.kwarg("limit", limit);
        }
        Ok(self.call(call).await?.as_ids())
    }

    pub async fn search_count(&self, model: &str, domain: &Domain) -> Result<i64, OdooError> {
        let v = self
            .call(Call::new(model, "search_count").arg("domain", domain.to_value()))
            .await?;
        v.as_i64()
            .ok_or_else(|| OdooError::Protocol(format!("search_count returned {v}")))
    }

    /// Creates many records in one call; returns their ids in order.
    pub async fn create(&self, model: &str, records: Vec<Value>) -> Result<Vec<i64>, OdooError> {
        let n = records.len();
        let v = self
            .call(Call::new(model, "create").arg("vals_list", Value::Array(records)))
            .await?;
        let ids = match v {
            Value::Int(id) => vec![id],
            other => other.as_ids(),
        };
        if ids.len() != n {
            return Err(OdooError::Protocol(format!(
                "create of {n} {model} records returned {} ids",
                ids.len()
            )));
        }
        Ok(ids)
    }

    pub async fn write(&self, model: &str, ids: &[i64], values: Value) -> Result<(), OdooError> {
        self.call(Call::new(model, "write").ids(ids).arg("vals", values))
            .await?;
        Ok(())
    }

    pub async fn unlink(&self, model: &str, ids: &[i64]) -> Result<(), OdooError> {
        self.call(Call::new(model, "unlink").ids(ids)).await?;
        Ok(())
    }

    /// Field definitions (`type`, `string`, `relation`, `required`...) of a model.
    pub async fn fields_get(&self, model: &str, attributes: &[&str]) -> Result<Value, OdooError> {
        self.call(Call::new(model, "fields_get").kwarg("attributes", fields_value(attributes)))
            .await
    }

    /// A public method on records (`action_confirm`, `action_cancel`, `button_validate`...).
    pub async fn call_method(
        &self,
        model: &str,
        method: &str,
        ids: &[i64],
    ) -> Result<Value, OdooError> {
        self.call(Call::new(model, method).ids(ids)).await
    }

    /// The logged-in user's display name and login.
    pub async fn whoami(&self) -> Result<(String, String), OdooError> {
        let rows = self
            .read("res.users", &[self.uid()], &["name", "login"])
            .await?;
        let row = rows
            .first()
            .ok_or_else(|| OdooError::MissingRecord(format!("res.users {}", self.uid())))?;
        Ok((
            row.get("name")
                .and_then(Value::as_opt_str)
                .unwrap_or("")
                .to_string(),
            row.get("login")
                .and_then(Value::as_opt_str)
                .unwrap_or("")
                .to_string(),
        ))
    }
}

fn fields_value(fields: &[&str]) -> Value {
    Value::Array(fields.iter().map(|f| Value::from(*f)).collect())
}

fn expect_records(v: Value) -> Result<Vec<Value>, OdooError> {
    match v {
        Value::Array(rows) => Ok(rows),
        other => Err(OdooError::Protocol(format!(
            "expected a list of records, got {}",
            other.type_name()
        ))),
    }
}

async fn with_timeout<T>(
    timeout: Duration,
    fut: impl std::future::Future<Output = Result<T, OdooError>>,
) -> Result<T, OdooError> {
    match tokio::time::timeout(timeout, fut).await {
        Ok(r) => r.map_err(|e| match e {
            OdooError::Timeout(_) => OdooError::Timeout(timeout),
            e => e,
        }),
        Err(_) => Err(OdooError::Timeout(timeout)),
    }
}
