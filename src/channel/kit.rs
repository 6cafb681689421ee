//! Helpers every channel shares: hashes of what was sent, numbers as peers write them, the
//! settings every HTTP channel needs, job payloads parsed once, and a status poll's window.

use crate::config::ChannelConfig;
use crate::daemon::workers::JobError;
use crate::retry::RetryClass;
use crate::secret::Secret;
use crate::store::queue::Job;
use crate::store::{streams, Store};
use crate::sync::catalog::{poll_start, with_overlap, Since, EPOCH};
use rust_decimal::Decimal;

/// A stable 64-bit FNV-1a hash, for "what was last sent" and event ids (stable across builds).
pub fn fnv(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// A number as peers write it: a JSON number, or a string holding one. `None` for anything
/// else: never a zero in its place.
pub fn decimal_of(v: &serde_json::Value) -> Option<Decimal> {
    match v {
        serde_json::Value::Number(n) => n
            .as_i64()
            .map(Decimal::from)
            .or_else(|| n.as_f64().and_then(crate::odoo::value::float_to_decimal)),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The token and base URL of an HTTP channel (`channels.<name>.token`, `.base_url`).
pub fn token_and_base(cfg: &ChannelConfig) -> Result<(Secret, url::Url), crate::error::Error> {
    let name = cfg.kind.name();
    let token = cfg
        .token
        .clone()
        .ok_or_else(|| crate::error::Error::invalid(format!("channels.{name}.token is not set")))?;
    let base = cfg.base_url.clone().ok_or_else(|| {
        crate::error::Error::invalid(format!("channels.{name}.base_url is not set"))
    })?;
    Ok((token, base))
}

/// The channel's API client, its token sent as `Authorization: Bearer` (WhatsApp, Sha6er).
pub fn bearer_client(
    name: &'static str,
    cfg: &ChannelConfig,
) -> Result<crate::channel::http::HttpClient, crate::error::Error> {
    let (token, base) = token_and_base(cfg)?;
    let bearer = Secret::new(format!("Bearer {}", token.expose()));
    Ok(crate::channel::http::HttpClient::new(
        name,
        base,
        cfg.timeout,
        vec![("Authorization", bearer)],
    ))
}

/// A job's payload as its typed form, parsed once: a payload that does not parse (written by
/// hand, or damaged) fails its job permanently with the field that is wrong, and nothing is sent
/// or recorded for it. No default stands in for a missing value.
pub fn parse_job<T: serde::de::DeserializeOwned>(job: &Job) -> Result<T, JobError> {
    job.payload.parse().map_err(|e| {
        JobError::new(
            RetryClass::Permanent,
            format!(
                "{} {} job {} has a malformed payload ({e}); nothing was sent for it. The next full read (reconcile) plans it anew; `marketsync queue list --state dead` shows it",
                peer_name(&job.channel),
                job.kind,
                job.id
            ),
        )
    })
}

/// Parses every job of a batch: the payloads, or each job's error.
pub fn parse_all<T: serde::de::DeserializeOwned>(jobs: &[Job]) -> Vec<Result<T, JobError>> {
    jobs.iter().map(parse_job).collect()
}

/// How many orders one import takes: the new ones are created in Odoo together.
pub const ORDER_BATCH: usize = 50;

/// Runs the jobs of a kind that has no bulk endpoint one after the other.
pub async fn each<'a, F, Fut>(jobs: &'a [Job], run: F) -> crate::channel::Outcomes
where
    F: Fn(&'a Job) -> Fut,
    Fut: std::future::Future<Output = Result<(), JobError>>,
{
    let mut out = Vec::with_capacity(jobs.len());
    for job in jobs {
        out.push(run(job).await);
    }
    out
}

/// A job's payload as `T`: one that does not parse is a permanent error naming the job.
pub fn payload<T: serde::de::DeserializeOwned>(job: &Job) -> Result<T, JobError> {
    job.payload.parse().map_err(|e| {
        JobError::new(
            RetryClass::Permanent,
            format!("{} job {} has a damaged payload: {e}", job.kind, job.id),
        )
    })
}

/// A permanent error for a job of a kind this build does not know.
pub fn unknown_kind(job: &Job) -> JobError {
    JobError::new(
        RetryClass::Permanent,
        format!(
            "unknown {} job kind {:?}",
            peer_name(&job.channel),
            job.kind
        ),
    )
}

/// Where a status poll of `stream` starts: its cursor (the epoch before its first run), reaching
/// back by `overlap`; and the time to record as the next cursor, taken before reading.
pub fn poll_window(
    store: &Store,
    stream: &str,
    overlap: std::time::Duration,
) -> Result<(String, Since), crate::error::Error> {
    let cursor = streams::get(store, stream)?
        .and_then(|s| s.cursor)
        .unwrap_or_else(|| EPOCH.to_string());
    Ok((poll_start(), with_overlap(&cursor, overlap)))
}

/// A channel's healthcheck for `check` and `init`: its client built from the config, then its
/// probe. `(true, accepted(base_url))` when the peer answers 2xx, else `(false, why)`.
pub async fn check_with<F, Fut>(
    cfg: &ChannelConfig,
    api: Result<crate::channel::http::HttpClient, crate::error::Error>,
    probe: F,
    accepted: impl FnOnce(&str) -> String,
) -> (bool, String)
where
    F: FnOnce(crate::channel::http::HttpClient) -> Fut,
    Fut: std::future::Future<Output = Result<(), crate::channel::http::ChannelError>>,
{
    let api = match api {
        Ok(api) => api,
        Err(e) => return (false, e.to_string()),
    };
    match probe(api).await {
        Ok(()) => (
            true,
            accepted(cfg.base_url.as_ref().map(|u| u.as_str()).unwrap_or("")),
        ),
        Err(e) => (false, e.message),
    }
}

/// A job as the queue hands it to a handler (unit tests of payload parsing).
#[cfg(test)]
pub fn test_job(channel: &str, kind: &str, payload: serde_json::Value) -> Job {
    Job {
        id: 7,
        channel: channel.into(),
        kind: kind.into(),
        key: "k".into(),
        payload: payload.into(),
        state: crate::store::queue::JobState::Running,
        attempts: 0,
        next_attempt_at: 0,
        last_error: None,
        error_class: None,
        correlation_id: None,
        created_at: 0,
        updated_at: 0,
    }
}

/// Sets an order's inbox event aside with the reason (the operator's to look at), says so,
/// and fails its job permanently with the same words.
pub fn park(store: &Store, channel: &str, event: i64, reason: &str) -> Result<(), JobError> {
    crate::store::inbox::park(store, event, reason)
        .map_err(crate::sync::order_import::store_err)?;
    crate::internal_events::emit(
        store,
        &crate::internal_events::OrderRefused {
            channel,
            pulling: false,
            reason,
        },
    );
    Err(JobError::new(RetryClass::Permanent, reason))
}

/// What a paged pull read.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pulled {
    /// Rows read.
    pub rows: usize,
    /// Rows `keep` said were new or changed.
    pub new: usize,
    /// The peer answered the same page twice, and paging stopped there.
    pub repeated: bool,
}

/// Reads a peer's list page by page (`fetch(index)` from index 0, `per_page` rows each) until
/// a short page, `max_pages`, or a page that starts as the one before it did (a peer that
/// ignores the page parameter would otherwise be read a thousand times); each row goes to
/// `keep`, which says whether it was new.
pub async fn pull_pages<T, F, Fut>(
    per_page: usize,
    max_pages: usize,
    mut fetch: F,
    mut keep: impl FnMut(&T) -> Result<bool, crate::error::Error>,
) -> Result<Pulled, crate::error::Error>
where
    T: serde::Serialize,
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<T>, crate::error::Error>>,
{
    let mut out = Pulled::default();
    let mut previous_first: Option<String> = None;
    for page in 0..max_pages {
        let rows = fetch(page).await?;
        let first = rows
            .first()
            .map(|r| serde_json::to_string(r).unwrap_or_default());
        if page > 0 && first.is_some() && first == previous_first {
            out.repeated = true;
            break;
        }
        previous_first = first;
        out.rows += rows.len();
        for row in &rows {
            if keep(row)? {
                out.new += 1;
            }
        }
        if rows.len() < per_page {
            break;
        }
    }
    Ok(out)
}

/// A channel's name as the operator reads it in messages.
pub fn peer_name(channel: &str) -> String {
    let mut c = channel.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_read_as_peers_write_them_and_nothing_else_is_a_number() {
        assert_eq!(
            decimal_of(&serde_json::json!(12)),
            Some(Decimal::new(12, 0))
        );
        assert_eq!(
            decimal_of(&serde_json::json!("12.50")),
            Some(Decimal::new(1250, 2))
        );
        assert_eq!(
            decimal_of(&serde_json::json!(0.1)),
            Some(Decimal::new(1, 1))
        );
        for v in [
            serde_json::json!(null),
            serde_json::json!("n/a"),
            serde_json::json!({}),
        ] {
            assert_eq!(decimal_of(&v), None, "{v}");
        }
        assert_eq!(fnv(""), "cbf29ce484222325");
    }

    #[tokio::test]
    async fn a_paged_pull_stops_at_a_short_page_or_at_a_page_seen_before() {
        // Pages of 2: two full pages, then a short one.
        let pages = [vec![1, 2], vec![3, 4], vec![5]];
        let asked = std::cell::Cell::new(0);
        let got = pull_pages(
            2,
            100,
            |i| {
                asked.set(asked.get() + 1);
                let rows = pages.get(i).cloned().unwrap_or_default();
                async move { Ok(rows) }
            },
            |n: &i32| Ok(n % 2 == 1),
        )
        .await
        .unwrap();
        assert_eq!(
            got,
            Pulled {
                rows: 5,
                new: 3,
                repeated: false
            }
        );
        assert_eq!(asked.get(), 3);
        // A peer that ignores the page parameter answers the first page every time.
        let got = pull_pages(2, 100, |_| async { Ok(vec![1, 2]) }, |_: &i32| Ok(true))
            .await
            .unwrap();
        assert_eq!(
            got,
            Pulled {
                rows: 2,
                new: 2,
                repeated: true
            }
        );
        // The bound holds when every page is full and new.
        let got = pull_pages(1, 4, |i| async move { Ok(vec![i]) }, |_: &usize| Ok(true))
            .await
            .unwrap();
        assert_eq!(got.rows, 4);
    }
}
