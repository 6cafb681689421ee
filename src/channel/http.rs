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
    /// The request surely did not leave (the connection was never made): a send that must
    /// not be repeated blindly (a WhatsApp message) may be tried again.
    pub unsent: bool,
}

impl ChannelError {
    pub fn new(class: RetryClass, message: impl Into<String>) -> Self {
        ChannelError {
            class,
            message: scrub(&message.into()),
            status: None,
            unsent: false,
        }
    }
}

impl Classify for ChannelError {
    fn retry_class(&self) -> RetryClass {
        self.class
    }
}

/// An answer as it came: status, headers and body (see [`HttpClient::get_raw`]).
pub struct RawAnswer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl RawAnswer {
    /// A header's value, if it is text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub struct HttpClient {
    /// The channel's name as the operator knows it ("Cartona").
    pub name: &'static str,
    http: reqwest::Client,
    base: url::Url,
    headers: Vec<(&'static str, Secret)>,
    requests: AtomicU64,
    /// The `channel` label of the send counters ("cartona").
    label: String,
}

/// Largest marketplace answer read, in bytes: a runaway or hostile body fails the call
/// instead of exhausting memory.
pub const MAX_RESPONSE_BYTES: usize = 64 << 20;

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
            label: name.to_lowercase(),
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
        body: &(impl serde::Serialize + ?Sized),
    ) -> Result<serde_json::Value, ChannelError> {
        let url = self.url(path)?;
        self.send(self.http.post(url).json(body), "POST", path)
            .await
    }

    pub async fn delete(&self, path: &str) -> Result<serde_json::Value, ChannelError> {
        let url = self.url(path)?;
        self.send(self.http.delete(url), "DELETE", path).await
    }

    /// A GET whose answer the channel reads itself, whatever its status (Graph's error
    /// envelope and usage headers): only a call that got no answer fails.
    pub async fn get_raw(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<RawAnswer, ChannelError> {
        let url = self.url(path)?;
        self.send_raw(self.http.get(url).query(query), "GET", path)
            .await
    }

    /// A POST of a JSON body whose answer the channel reads itself (see [`HttpClient::get_raw`]).
    pub async fn post_raw(&self, path: &str, body: Vec<u8>) -> Result<RawAnswer, ChannelError> {
        let url = self.url(path)?;
        let req = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .body(body);
        self.send_raw(req, "POST", path).await
    }

    async fn send_raw(
        &self,
        mut req: reqwest::RequestBuilder,
        method: &str,
        path: &str,
    ) -> Result<RawAnswer, ChannelError> {
        for (name, value) in &self.headers {
            req = req.header(*name, value.expose());
        }
        self.requests.fetch_add(1, Ordering::Relaxed);
        let what = format!("{method} {path}");
        let result = match req.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let headers = resp.headers().clone();
                self.read_body(resp, &what, status)
                    .await
                    .map(|body| RawAnswer {
                        status,
                        headers,
                        body,
                    })
            }
            Err(e) => Err(self.transport_error(&what, e)),
        };
        let outcome = match &result {
            Ok(a) if a.status < 400 => "ok",
            Ok(a) if a.status >= 500 => "server_error",
            Ok(_) => "rejected",
            Err(_) => "transport_error",
        };
        crate::telemetry::counters::inc(
            crate::telemetry::counters::SENDS,
            &[("channel", &self.label), ("outcome", outcome)],
        );
        result
    }

    /// The whole body, at most [`MAX_RESPONSE_BYTES`].
    async fn read_body(
        &self,
        mut resp: reqwest::Response,
        what: &str,
        status: u16,
    ) -> Result<Vec<u8>, ChannelError> {
        let mut raw = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| self.transport_error(what, e))?
        {
            if raw.len() + chunk.len() > MAX_RESPONSE_BYTES {
                let mut e = ChannelError::new(
                    RetryClass::Transient,
                    format!(
                        "{} answered {what} with more than {} MiB; the answer was not read",
                        self.name,
                        MAX_RESPONSE_BYTES >> 20
                    ),
                );
                e.status = Some(status);
                return Err(e);
            }
            raw.extend_from_slice(&chunk);
        }
        Ok(raw)
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
        let result = self.exchange(req, &what).await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => match (e.status, e.class) {
                (_, RetryClass::Auth) => "auth",
                (_, RetryClass::RateLimited { .. }) => "rate_limited",
                (Some(s), _) if s >= 500 => "server_error",
                (Some(s), _) if s >= 400 => "rejected",
                (Some(_), _) => "bad_response",
                (None, _) => "transport_error",
            },
        };
        crate::telemetry::counters::inc(
            crate::telemetry::counters::SENDS,
            &[("channel", &self.label), ("outcome", outcome)],
        );
        result
    }

    async fn exchange(
        &self,
        req: reqwest::RequestBuilder,
        what: &str,
    ) -> Result<serde_json::Value, ChannelError> {
        let resp = req
            .send()
            .await
            .map_err(|e| self.transport_error(what, e))?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, chrono::Utc::now()));
        let raw = self.read_body(resp, what, status).await?;
        let body = String::from_utf8_lossy(&raw);
        if let Some(class) = status_class(status, retry_after) {
            let summary = crate::odoo::transport::summarize_body_from(&body, self.name);
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
            let mut e = ChannelError::new(
                RetryClass::Transient,
                format!(
                    "{} answered HTTP {status} to {what} with a body that is not JSON: {}",
                    self.name,
                    crate::odoo::transport::summarize_body_from(&body, self.name)
                ),
            );
            e.status = Some(status);
            e
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
        let mut out = ChannelError::new(
            transport_class(&e),
            format!("{what} to {} {kind}: {detail}", self.name),
        );
        out.unsent = e.is_connect();
        out
    }
}

/// A failure to reach the peer at all (connect: refused, DNS, TLS, connect timeout; or the
/// connection reset) is [`RetryClass::Unreachable`]; the rest (an answer cut short, a read
/// timeout) is the peer's, while up: [`RetryClass::Transient`].
fn transport_class(e: &reqwest::Error) -> RetryClass {
    if e.is_connect() {
        return RetryClass::Unreachable;
    }
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            if matches!(
                io.kind(),
                ConnectionRefused | ConnectionReset | ConnectionAborted
            ) {
                return RetryClass::Unreachable;
            }
        }
        src = s.source();
    }
    RetryClass::Transient
}

/// What an HTTP error status means for the job: a proxy's 502/503/504 says the peer behind it
/// cannot be reached ([`RetryClass::Unreachable`]); otherwise as [`RetryClass::from_status`].
pub fn status_class(status: u16, retry_after: Option<Duration>) -> Option<RetryClass> {
    match status {
        502..=504 => Some(RetryClass::Unreachable),
        _ => RetryClass::from_status(status, retry_after),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proxy_s_502_503_504_is_unreachable_and_other_answers_keep_their_class() {
        for s in [502, 503, 504] {
            assert_eq!(status_class(s, None), Some(RetryClass::Unreachable), "{s}");
        }
        assert_eq!(status_class(500, None), Some(RetryClass::Transient));
        assert_eq!(status_class(400, None), Some(RetryClass::Permanent));
        assert_eq!(status_class(401, None), Some(RetryClass::Auth));
        assert_eq!(status_class(200, None), None);
    }

    #[tokio::test]
    async fn a_refused_connection_is_unreachable_a_read_timeout_is_not() {
        let client = |base: &str, timeout: Duration| {
            HttpClient::new("Peer", url::Url::parse(base).unwrap(), timeout, Vec::new())
        };
        // Nothing listens on a port just freed.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let refused = client(&format!("http://127.0.0.1:{port}/"), Duration::from_secs(5))
            .get("x", &[])
            .await
            .unwrap_err();
        assert_eq!(refused.class, RetryClass::Unreachable, "{refused}");
        // A peer that accepts and never answers: up, but slow. Its timeout spends an attempt.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = silent.local_addr().unwrap();
        let keep = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = silent.accept().await {
                held.push(s);
            }
        });
        let slow = client(&format!("http://{addr}/"), Duration::from_millis(300))
            .get("x", &[])
            .await
            .unwrap_err();
        assert_eq!(slow.class, RetryClass::Transient, "{slow}");
        keep.abort();
    }
}
