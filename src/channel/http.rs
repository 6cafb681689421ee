//! HTTP shared by the channels: one client per channel with its auth headers and timeout,
//! every failure classified (transient, rate-limited with Retry-After, permanent, auth) and
//! described in the operator's words, bodies summarized, secrets scrubbed, requests counted.

use crate::retry::{parse_retry_after, Classify, RetryClass};
use crate::secret::{scrub, Secret};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A failed call to a channel.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ChannelError {
    pub class: RetryClass,
    pub message: String,
    /// The HTTP status, when the channel answered.
    pub status: Option<u16>,
}

impl ChannelError {
    pub fn new(class: RetryClass, message: impl Into<String>) -> Self {
        ChannelError {
            class,
            message: scrub(&message.into()),
            status: None,
        }
    }
}

impl Classify for ChannelError {
    fn retry_class(&self) -> RetryClass {
        self.class
    }
}

pub struct HttpClient {
    /// The channel's name as the operator knows it ("Cartona").
    pub name: &'static str,
    http: reqwest::Client,
    base: url::Url,
    headers: Vec<(&'static str, Secret)>,
    requests: AtomicU64,
}

impl HttpClient {
    pub fn new(
        name: &'static str,
        base: url::Url,
        timeout: Duration,
        headers: Vec<(&'static str, Secret)>,
    ) -> HttpClient {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("marketsync/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("TLS backend available");
        // Paths are joined onto the base, so the base must end with a slash.
        let mut base = base;
        if !base.path().ends_with('/') {
            let p = format!("{}/", base.path());
            base.set_path(&p);
        }
        HttpClient {
            name,
            http,
            base,
            headers,
            requests: AtomicU64::new(0),
        }
    }

    pub fn requests_made(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    fn url(&self, path: &str) -> Result<url::Url, ChannelError> {
        self.base.join(path.trim_start_matches('/')).map_err(|e| {
            ChannelError::new(
                RetryClass::Permanent,
                format!("bad {} path {path:?}: {e}", self.name),
            )
        })
    }

    pub async fn get(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<serde_json::Value, ChannelError> {
        let url = self.url(path)?;
        self.send(self.http.get(url).query(query), "GET", path)
            .await
    }

    pub async fn post(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, ChannelError> {
        let url = self.url(path)?;
        self.send(self.http.post(url).json(body), "POST", path)
            .await
    }

    pub async fn delete(&self, path: &str) -> Result<serde_json::Value, ChannelError> {
        let url = self.url(path)?;
        self.send(self.http.delete(url), "DELETE", path).await
    }

    async fn send(
        &self,
        mut req: reqwest::RequestBuilder,
        method: &str,
        path: &str,
    ) -> Result<serde_json::Value, ChannelError> {
        for (name, value) in &self.headers {
            req = req.header(*name, value.expose());
        }
        self.requests.fetch_add(1, Ordering::Relaxed);
        let what = format!("{method} {path}");
        let resp = req
            .send()
            .await
            .map_err(|e| self.transport_error(&what, e))?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, chrono::Utc::now()));
        let body = resp
            .text()
            .await
            .map_err(|e| self.transport_error(&what, e))?;
        if let Some(class) = RetryClass::from_status(status, retry_after) {
            let summary = crate::odoo::transport::summarize_body(&body);
            let message = match class {
                RetryClass::Auth => format!(
                    "{} rejected the token (HTTP {status} to {what}): {summary}",
                    self.name
                ),
                RetryClass::RateLimited { after } => format!(
                    "{} is rate limiting (HTTP 429 to {what}){}",
                    self.name,
                    after
                        .map(|a| format!("; asked to wait {}s", a.as_secs()))
                        .unwrap_or_default()
                ),
                _ => format!("{} answered HTTP {status} to {what}: {summary}", self.name),
            };
            let mut e = ChannelError::new(class, message);
            e.status = Some(status);
            return Err(e);
        }
        if body.trim().is_empty() {
            return Ok(serde_json::Value::Null);
        }
        serde_json::from_str(&body).map_err(|_| {
            ChannelError::new(
                RetryClass::Transient,
                format!(
                    "{} answered HTTP {status} to {what} with a body that is not JSON: {}",
                    self.name,
                    crate::odoo::transport::summarize_body(&body)
                ),
            )
        })
    }

    fn transport_error(&self, what: &str, e: reqwest::Error) -> ChannelError {
        let kind = if e.is_timeout() {
            "timed out"
        } else {
            "failed"
        };
        let mut detail = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            detail = format!("{detail}: {s}");
            src = s.source();
        }
        ChannelError::new(
            RetryClass::Transient,
            format!("{what} to {} {kind}: {detail}", self.name),
        )
    }
}
