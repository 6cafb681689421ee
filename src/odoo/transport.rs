//! The three wire protocols under one interface: XML-RPC (`/xmlrpc/2/*`), JSON-RPC (`/jsonrpc`)
//! and JSON-2 (`/json/2/<model>/<method>`, Odoo 19+). Each turns a [`Call`] into a request and
//! the answer into a [`Value`] or a typed [`OdooError`].

use super::error::{from_exception, from_xmlrpc_fault, OdooError};
use super::value::Value;
use super::xmlrpc_codec as codec;
use crate::config::OdooProtocol;
use crate::secret::Secret;

/// Answers larger than this are decoded on the blocking pool.
const LARGE_BODY: usize = 64 * 1024;

/// One ORM call, described once and rendered per protocol: XML-RPC/JSON-RPC pass `ids` and
/// `args` positionally to `execute_kw`, and `kwargs` by name; JSON-2 passes all of them by name.
#[derive(Debug, Clone)]
pub struct Call {
    pub model: String,
    pub method: String,
    pub ids: Option<Vec<i64>>,
    pub args: Vec<(&'static str, Value)>,
    pub kwargs: Vec<(&'static str, Value)>,
    pub context: Vec<(String, Value)>,
}

impl Call {
    pub fn new(model: &str, method: &str) -> Call {
        Call {
            model: model.into(),
            method: method.into(),
            ids: None,
            args: Vec::new(),
            kwargs: Vec::new(),
            context: Vec::new(),
        }
    }

    pub fn ids(mut self, ids: &[i64]) -> Call {
        self.ids = Some(ids.to_vec());
        self
    }

    pub fn arg(mut self, name: &'static str, v: impl Into<Value>) -> Call {
        self.args.push((name, v.into()));
        self
    }

    pub fn kwarg(mut self, name: &'static str, v: impl Into<Value>) -> Call {
        self.kwargs.push((name, v.into()));
        self
    }

    pub fn context(mut self, key: &str, v: impl Into<Value>) -> Call {
        self.context.push((key.into(), v.into()));
        self
    }

    fn positional(&self) -> (Value, Value) {
        let mut args = Vec::new();
        if let Some(ids) = &self.ids {
            args.push(Value::from(ids.clone()));
        }
        args.extend(self.args.iter().map(|(_, v)| v.clone()));
        let mut kwargs: Vec<(String, Value)> = self
            .kwargs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        if !self.context.is_empty() {
            kwargs.push(("context".into(), Value::Struct(self.context.clone())));
        }
        (Value::Array(args), Value::Struct(kwargs))
    }

    fn named(&self) -> serde_json::Value {
        let mut body = serde_json::Map::new();
        if let Some(ids) = &self.ids {
            body.insert("ids".into(), serde_json::json!(ids));
        }
        for (k, v) in self.args.iter().chain(self.kwargs.iter()) {
            body.insert(k.to_string(), v.clone().into());
        }
        if !self.context.is_empty() {
            body.insert("context".into(), Value::Struct(self.context.clone()).into());
        }
        serde_json::Value::Object(body)
    }
}

/// What the server says about itself.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerVersion {
    /// e.g. "17.0", "saas~18.2", "19.0+e".
    pub version: String,
    pub major: u32,
    pub minor: u32,
}

impl ServerVersion {
    pub fn from_info(version: &str, info: Option<&[Value]>) -> ServerVersion {
        let (major, minor) = match info {
            Some([maj, min, ..]) => (
                maj.as_i64().unwrap_or(0) as u32,
                min.as_i64().unwrap_or(0) as u32,
            ),
            _ => {
                let digits: Vec<u32> = version
                    .split(|c: char| !c.is_ascii_digit())
                    .filter(|s| !s.is_empty())
                    .filter_map(|s| s.parse().ok())
                    .collect();
                (
                    digits.first().copied().unwrap_or(0),
                    digits.get(1).copied().unwrap_or(0),
                )
            }
        };
        ServerVersion {
            version: version.to_string(),
            major,
            minor,
        }
    }
}

pub struct Transport {
    pub protocol: OdooProtocol,
    http: reqwest::Client,
    base: url::Url,
    next_id: std::sync::atomic::AtomicU64,
}

impl Transport {
    pub fn new(protocol: OdooProtocol, base: url::Url, timeout: std::time::Duration) -> Transport {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(std::time::Duration::from_secs(10)))
            .user_agent(concat!("marketsync/", env!("CARGO_PKG_VERSION")))
            .pool_max_idle_per_host(8)
            .build()
            .expect("TLS backend available");
        Transport {
            protocol,
            http,
            base,
            next_id: 1.into(),
        }
    }

    fn url(&self, path: &str) -> String {
        let mut u = self.base.clone();
        let base_path = u.path().trim_end_matches('/').to_string();
        u.set_path(&format!("{base_path}{path}"));
        u.to_string()
    }

    fn conn_err(&self, e: reqwest::Error) -> OdooError {
        if e.is_timeout() {
            return OdooError::Timeout(std::time::Duration::ZERO);
        }
        let mut message = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            message = format!("{message}: {s}");
            src = s.source();
        }
        OdooError::Connection {
            url: self.base.to_string(),
            message: crate::secret::scrub(&message),
        }
    }

    async fn post(
        &self,
        path: &str,
        content_type: &str,
        body: String,
        bearer: Option<&Secret>,
        db: Option<&str>,
    ) -> Result<(u16, String), OdooError> {
        let mut req = self
            .http
            .post(self.url(path))
            .header("Content-Type", content_type)
            .body(body);
        if let Some(key) = bearer {
            req = req.header("Authorization", format!("bearer {}", key.expose()));
        }
        if let Some(db) = db {
            req = req.header("X-Odoo-Database", db);
        }
        let resp = req.send().await.map_err(|e| self.conn_err(e))?;
        let status = resp.status().as_u16();
        let text = resp.text().await.map_err(|e| self.conn_err(e))?;
        Ok((status, text))
    }

    fn http_error(status: u16, body: &str) -> OdooError {
        OdooError::Http {
            status,
            body: crate::secret::scrub(&summarize_body(body)),
        }
    }

    async fn xmlrpc(
        &self,
        service: &str,
        method: &str,
        params: &[Value],
    ) -> Result<Value, OdooError> {
        let (status, text) = self
            .post(
                &format!("/xmlrpc/2/{service}"),
                "text/xml",
                codec::encode_call(method, params),
                None,
                None,
            )
            .await?;
        if status != 200 {
            return Err(Self::http_error(status, &text));
        }
        // A page of a thousand records is milliseconds of parsing: off the async threads, so
        // it never holds up the tasks sharing them (webhooks, other calls, the next page).
        let (decoded, text) = if text.len() > LARGE_BODY {
            tokio::task::spawn_blocking(move || (codec::decode_response(&text), text))
                .await
                .map_err(|e| OdooError::Protocol(format!("decoding task failed: {e}")))?
        } else {
            (codec::decode_response(&text), text)
        };
        match decoded {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(fault)) => Err(match &fault.code {
                Value::Int(code) => from_xmlrpc_fault(*code, &fault.string),
                other => from_xmlrpc_fault(
                    1,
                    &format!("{}\n{}", other.as_str().unwrap_or(""), fault.string),
                ),
            }),
            Err(e) => Err(OdooError::Protocol(format!(
                "{e}; body starts {:?}",
                text.chars().take(120).collect::<String>()
            ))),
        }
    }

    async fn jsonrpc(
        &self,
        service: &str,
        method: &str,
        args: Vec<serde_json::Value>,
    ) -> Result<Value, OdooError> {
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let body = serde_json::json!({
            "jsonrpc": "2.0", "method": "call",
            "params": {"service": service, "method": method, "args": args},
            "id": id,
        });
        let (status, text) = self
            .post("/jsonrpc", "application/json", body.to_string(), None, None)
            .await?;
        if status != 200 {
            return Err(Self::http_error(status, &text));
        }
        let reply: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
            OdooError::Protocol(format!(
                "not JSON ({e}); body starts {:?}",
                text.chars().take(120).collect::<String>()
            ))
        })?;
        if let Some(error) = reply.get("error") {
            let data = error.get("data");
            let name = data
                .and_then(|d| d.get("name"))
                .and_then(|n| n.as_str())
                .unwrap_or("");
            let message = data
                .and_then(|d| d.get("message"))
                .and_then(|m| m.as_str())
                .or_else(|| error.get("message").and_then(|m| m.as_str()))
                .unwrap_or("");
            return Err(from_exception(name, message));
        }
        match reply.get("result") {
            Some(r) => Ok(Value::from(r.clone())),
            None if reply.get("id").is_some() => Err(OdooError::NoneResult),
            None => Err(OdooError::Protocol(format!(
                "JSON-RPC reply without result or error: {}",
                text.chars().take(120).collect::<String>()
            ))),
        }
    }

    /// The databases of the server (`db.list` over JSON-RPC), where Odoo lists them
    /// (`list_db = False` refuses; Odoo 20 removed the service).
    pub async fn list_databases(&self) -> Result<Vec<String>, OdooError> {
        let v = self.jsonrpc("db", "list", vec![]).await?;
        Ok(v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|d| d.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// `version()` of the common service (or `/web/version` for JSON-2).
    pub async fn version(&self) -> Result<ServerVersion, OdooError> {
        let v = match self.protocol {
            OdooProtocol::Xmlrpc => self.xmlrpc("common", "version", &[]).await?,
            OdooProtocol::Jsonrpc => self.jsonrpc("common", "version", vec![]).await?,
            OdooProtocol::Json2 => {
                let resp = self
                    .http
                    .get(self.url("/web/version"))
                    .send()
                    .await
                    .map_err(|e| self.conn_err(e))?;
                let status = resp.status().as_u16();
                let text = resp.text().await.map_err(|e| self.conn_err(e))?;
                if status != 200 {
                    return Err(Self::http_error(status, &text));
                }
                Value::from(
                    serde_json::from_str::<serde_json::Value>(&text)
                        .map_err(|e| OdooError::Protocol(format!("/web/version: {e}")))?,
                )
            }
        };
        let version = v
            .get("server_version")
            .or_else(|| v.get("version"))
            .and_then(Value::as_str)
            .ok_or_else(|| OdooError::Protocol(format!("version() without a version: {v}")))?;
        let info = v
            .get("server_version_info")
            .or_else(|| v.get("version_info"))
            .and_then(Value::as_array);
        Ok(ServerVersion::from_info(version, info))
    }

    /// Logs in; `None` when Odoo rejects the credentials.
    pub async fn authenticate(
        &self,
        db: &str,
        login: &str,
        key: &Secret,
    ) -> Result<Option<i64>, OdooError> {
        let v = match self.protocol {
            OdooProtocol::Xmlrpc => {
                self.xmlrpc(
                    "common",
                    "authenticate",
                    &[
                        db.into(),
                        login.into(),
                        key.expose().into(),
                        Value::Struct(vec![]),
                    ],
                )
                .await?
            }
            OdooProtocol::Jsonrpc => {
                self.jsonrpc(
                    "common",
                    "authenticate",
                    vec![
                        db.into(),
                        login.into(),
                        key.expose().into(),
                        serde_json::json!({}),
                    ],
                )
                .await?
            }
            OdooProtocol::Json2 => {
                // JSON-2 has no login step: the bearer key is checked on every call.
                match self
                    .execute(db, 0, key, &Call::new("res.users", "context_get"))
                    .await
                {
                    Ok(ctx) => ctx.get("uid").cloned().unwrap_or(Value::Bool(false)),
                    Err(OdooError::AccessDenied(_)) => Value::Bool(false),
                    Err(e) => return Err(e),
                }
            }
        };
        Ok(match v {
            Value::Int(uid) if uid > 0 => Some(uid),
            _ => None,
        })
    }

    /// Runs one ORM call.
    pub async fn execute(
        &self,
        db: &str,
        uid: i64,
        key: &Secret,
        call: &Call,
    ) -> Result<Value, OdooError> {
        match self.protocol {
            OdooProtocol::Xmlrpc => {
                let (args, kwargs) = call.positional();
                self.xmlrpc(
                    "object",
                    "execute_kw",
                    &[
                        db.into(),
                        uid.into(),
                        key.expose().into(),
                        call.model.as_str().into(),
                        call.method.as_str().into(),
                        args,
                        kwargs,
                    ],
                )
                .await
            }
            OdooProtocol::Jsonrpc => {
                let (args, kwargs) = call.positional();
                self.jsonrpc(
                    "object",
                    "execute_kw",
                    vec![
                        db.into(),
                        uid.into(),
                        key.expose().into(),
                        call.model.as_str().into(),
                        call.method.as_str().into(),
                        args.into(),
                        kwargs.into(),
                    ],
                )
                .await
            }
            OdooProtocol::Json2 => {
                let path = format!("/json/2/{}/{}", call.model, call.method);
                let (status, text) = self
                    .post(
                        &path,
                        "application/json",
                        call.named().to_string(),
                        Some(key),
                        Some(db),
                    )
                    .await?;
                let parsed: Option<serde_json::Value> = serde_json::from_str(&text).ok();
                if status == 200 {
                    return parsed.map(Value::from).ok_or_else(|| {
                        OdooError::Protocol(format!(
                            "JSON-2 answer is not JSON: {}",
                            text.chars().take(120).collect::<String>()
                        ))
                    });
                }
                match parsed
                    .as_ref()
                    .and_then(|p| p.get("name"))
                    .and_then(|n| n.as_str())
                {
                    Some(name) => {
                        let message = parsed
                            .as_ref()
                            .and_then(|p| p.get("message"))
                            .and_then(|m| m.as_str())
                            .unwrap_or("");
                        // An unclassified 5xx stays retryable; a 4xx keeps its meaning.
                        match from_exception(name, message) {
                            OdooError::Server(_) if status >= 502 => {
                                Err(Self::http_error(status, &text))
                            }
                            e => Err(e),
                        }
                    }
                    None => Err(Self::http_error(status, &text)),
                }
            }
        }
    }
}

/// A short, one-line account of an error body: an HTML page (a proxy's, usually) by its title,
/// anything else by its first 300 characters with whitespace collapsed.
pub fn summarize_body(body: &str) -> String {
    summarize_body_from(body, "Odoo")
}

/// [`summarize_body`] of an answer from `peer` (who an HTML error page stands in front of).
pub fn summarize_body_from(body: &str, peer: &str) -> String {
    let lower = body.to_ascii_lowercase();
    if lower.contains("<html") || lower.contains("<!doctype") {
        let title = lower
            .find("<title>")
            .and_then(|start| {
                lower[start + 7..]
                    .find("</title>")
                    .map(|end| body[start + 7..start + 7 + end].trim().to_string())
            })
            .unwrap_or_default();
        return format!(
            "an HTML page{} (from a proxy or web server in front of {peer}?)",
            if title.is_empty() {
                String::new()
            } else {
                format!(" titled {title:?}")
            }
        );
    }
    let flat: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.is_empty() {
        return "(empty body)".into();
    }
    let mut out: String = flat.chars().take(300).collect();
    if flat.chars().count() > 300 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::summarize_body;

    #[test]
    fn error_bodies_are_summarized_on_one_line() {
        assert_eq!(
            summarize_body("<html>\r\n<head><title>502 Bad Gateway</title></head>\n<body>nginx</body></html>"),
            "an HTML page titled \"502 Bad Gateway\" (from a proxy or web server in front of Odoo?)"
        );
        assert_eq!(summarize_body("  boom \n  again "), "boom again");
        assert_eq!(summarize_body(""), "(empty body)");
    }
}
