//! The WhatsApp Cloud API of one business number (API-NOTES §3): `POST /{phone_number_id}/
//! messages` checked against a template registry (name, languages, parameter counts), `wamid`s,
//! and signed status webhooks (`X-Hub-Signature-256` with the app secret) to the daemon: sent
//! then delivered, or failed. On demand: the errors a business meets (132001, 132000, 131026,
//! 130429, 190), an answer that never comes though the message left, and webhooks held back.

use super::Recorder;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A template approved in WhatsApp Manager.
#[derive(Debug, Clone)]
pub struct Template {
    pub languages: Vec<String>,
    pub body_params: usize,
    pub button_params: usize,
}

/// A message WhatsApp took.
#[derive(Debug, Clone)]
pub struct Sent {
    pub wamid: String,
    pub to: String,
    pub template: String,
    pub language: String,
    pub body: Value,
}

#[derive(Default)]
struct World {
    templates: HashMap<String, Template>,
    sent: Vec<Sent>,
    next: u64,
    /// Error codes the next sends get, in turn.
    fail_next: VecDeque<i64>,
    /// Numbers (digits) not on WhatsApp.
    undeliverable: HashSet<String>,
    /// The next send is taken but its answer comes after this long (past the client's wait).
    lose_next: Option<Duration>,
    expired: bool,
    /// Where status webhooks go, signed with this secret.
    webhook: Option<(String, String)>,
    /// Webhooks not sent (the test sends them, or they are lost).
    hold_webhooks: bool,
    held: Vec<Value>,
    /// The statuses each taken message goes through in its webhooks (default sent, delivered).
    statuses: Vec<String>,
    /// Taken messages to these numbers fail afterwards, by webhook, with this error.
    fail_later: HashMap<String, (i64, String)>,
}

pub struct SimWhatsapp {
    pub phone_number_id: String,
    token: String,
    world: Mutex<World>,
    pub requests: Recorder,
}

pub struct WhatsappHandle {
    pub addr: SocketAddr,
    pub sim: Arc<SimWhatsapp>,
    stop: CancellationToken,
}

impl WhatsappHandle {
    /// The `base_url` for `[channels.whatsapp]` (Graph version included).
    pub fn base_url(&self) -> String {
        format!("http://{}/v26.0/", self.addr)
    }
}

impl Drop for WhatsappHandle {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

pub async fn start(
    port: u16,
    phone_number_id: &str,
    token: &str,
) -> std::io::Result<WhatsappHandle> {
    let sim = Arc::new(SimWhatsapp {
        phone_number_id: phone_number_id.into(),
        token: token.into(),
        world: Mutex::new(World {
            statuses: vec!["sent".into(), "delivered".into()],
            ..Default::default()
        }),
        requests: Recorder::default(),
    });
    let s = sim.clone();
    let app = Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let s = s.clone();
            async move { s.answer(method, uri, headers, body).await }
        },
    );
    let (addr, stop) = super::serve(port, app).await?;
    Ok(WhatsappHandle { addr, sim, stop })
}

fn graph_error(status: StatusCode, code: i64, message: &str) -> Response {
    (
        status,
        axum::Json(
            json!({"error": {"message": message, "type": "OAuthException", "code": code,
                                    "fbtrace_id": "AsimWaTrace01"}}),
        ),
    )
        .into_response()
}

/// A status webhook body for one message.
pub fn status_body(
    phone_number_id: &str,
    s: &Sent,
    status: &str,
    callback: Option<&str>,
    error: Option<(i64, &str)>,
) -> Value {
    let mut st = json!({"id": s.wamid, "status": status, "timestamp": chrono::Utc::now().timestamp().to_string(),
                        "recipient_id": s.to});
    if let Some(c) = callback {
        st["biz_opaque_callback_data"] = json!(c);
    }
    if let Some((code, title)) = error {
        st["errors"] = json!([{"code": code, "title": title}]);
    }
    json!({"object": "whatsapp_business_account", "entry": [{"id": "WABA-SIM", "changes": [{"field": "messages",
        "value": {"messaging_product": "whatsapp", "metadata": {"phone_number_id": phone_number_id},
                  "statuses": [st]}}]}]})
}

/// Posts a webhook body to `url`, signed with `secret`: the HTTP status and reply.
pub async fn send_webhook(url: &str, secret: &str, body: &Value) -> (u16, String) {
    let raw = body.to_string();
    let sig = crate::webhook::signature::sign_hub(secret.as_bytes(), raw.as_bytes());
    match reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("x-hub-signature-256", sig)
        .body(raw)
        .send()
        .await
    {
        Ok(r) => {
            let status = r.status().as_u16();
            (status, r.text().await.unwrap_or_default())
        }
        Err(e) => (0, e.to_string()),
    }
}

impl SimWhatsapp {
    fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn add_template(
        &self,
        name: &str,
        languages: &[&str],
        body_params: usize,
        button_params: usize,
    ) {
        self.world().templates.insert(
            name.into(),
            Template {
                languages: languages.iter().map(|l| l.to_string()).collect(),
                body_params,
                button_params,
            },
        );
    }

    /// Status webhooks go to `url`, signed with the app secret.
    pub fn set_webhook(&self, url: &str, app_secret: &str) {
        self.world().webhook = Some((url.into(), app_secret.into()));
    }

    pub fn fail_next(&self, code: i64) {
        self.world().fail_next.push_back(code);
    }

    pub fn undeliverable(&self, digits: &str) {
        self.world()
            .undeliverable
            .insert(digits.trim_start_matches('+').into());
    }

    pub fn lose_next_answer(&self, after: Duration) {
        self.world().lose_next = Some(after);
    }

    pub fn expire_token(&self) {
        self.world().expired = true;
    }

    /// The token is good again (a new one given in Meta Business Settings).
    pub fn renew_token(&self) {
        self.world().expired = false;
    }

    /// The statuses every taken message reports (e.g. sent, delivered, read).
    pub fn set_statuses(&self, statuses: &[&str]) {
        self.world().statuses = statuses.iter().map(|s| s.to_string()).collect();
    }

    /// Messages to `digits` are taken, then fail by webhook with `code` (e.g. 131026 when the
    /// phone is not on WhatsApp: the way WhatsApp usually says so).
    pub fn fail_later(&self, digits: &str, code: i64, title: &str) {
        self.world()
            .fail_later
            .insert(digits.trim_start_matches('+').into(), (code, title.into()));
    }

    pub fn hold_webhooks(&self, hold: bool) {
        self.world().hold_webhooks = hold;
    }

    /// The webhooks held back, oldest first.
    pub fn held(&self) -> Vec<Value> {
        self.world().held.clone()
    }

    /// The body of every send asked for (taken or refused), oldest first.
    pub fn message_posts(&self) -> Vec<Value> {
        self.requests
            .all()
            .iter()
            .filter(|r| r.method == "POST" && r.path.ends_with("/messages"))
            .map(|r| r.json())
            .collect()
    }

    pub fn sent(&self) -> Vec<Sent> {
        self.world().sent.clone()
    }

    async fn answer(
        self: Arc<Self>,
        method: Method,
        uri: Uri,
        headers: HeaderMap,
        body: Bytes,
    ) -> Response {
        let text = String::from_utf8_lossy(&body).to_string();
        let path = uri.path().trim_start_matches('/');
        let path = path
            .split_once('/')
            .map_or(path, |(_, rest)| rest)
            .to_string();
        self.requests.record(&method, &uri, "/v26.0/", &body);
        let auth = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if auth != format!("Bearer {}", self.token) || self.world().expired {
            return graph_error(
                StatusCode::UNAUTHORIZED,
                190,
                "Error validating access token: Session has expired.",
            );
        }
        if path == self.phone_number_id && method == Method::GET {
            return axum::Json(
                json!({"id": self.phone_number_id, "display_phone_number": "+965 2200 0000",
                "verified_name": "Supplier Co.", "quality_rating": "GREEN"}),
            )
            .into_response();
        }
        if path != format!("{}/messages", self.phone_number_id) || method != Method::POST {
            return graph_error(StatusCode::BAD_REQUEST, 100, "Unsupported request");
        }
        let Ok(v) = serde_json::from_str::<Value>(&text) else {
            return graph_error(StatusCode::BAD_REQUEST, 100, "Invalid JSON");
        };
        let to = v["to"].as_str().unwrap_or("").to_string();
        let name = v["template"]["name"].as_str().unwrap_or("").to_string();
        let language = v["template"]["language"]["code"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let count = |kind: &str| {
            v["template"]["components"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|c| c["type"] == kind)
                .map(|c| c["parameters"].as_array().map_or(0, Vec::len))
                .sum::<usize>()
        };
        let lost = {
            let mut w = self.world();
            if let Some(code) = w.fail_next.pop_front() {
                let (status, msg) = match code {
                    130429 => (StatusCode::BAD_REQUEST, "Rate limit hit"),
                    131026 => (StatusCode::BAD_REQUEST, "Message undeliverable"),
                    132001 => (
                        StatusCode::NOT_FOUND,
                        "Template name does not exist in the translation",
                    ),
                    132000 => (
                        StatusCode::BAD_REQUEST,
                        "Number of parameters does not match the expected number of params",
                    ),
                    _ => (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "An unknown error occurred",
                    ),
                };
                return graph_error(status, code, msg);
            }
            match w.templates.get(&name) {
                Some(t) if t.languages.contains(&language) => {
                    if t.body_params != count("body") || t.button_params != count("button") {
                        return graph_error(
                            StatusCode::BAD_REQUEST,
                            132000,
                            "Number of parameters does not match the expected number of params",
                        );
                    }
                }
                _ => {
                    return graph_error(
                        StatusCode::NOT_FOUND,
                        132001,
                        &format!(
                            "Template name does not exist in the translation ({name}, {language})"
                        ),
                    )
                }
            }
            if w.undeliverable.contains(&to) {
                return graph_error(StatusCode::BAD_REQUEST, 131026, "Message undeliverable");
            }
            w.next += 1;
            let s = Sent {
                wamid: format!("wamid.SIM{:08}", w.next),
                to: to.clone(),
                template: name,
                language,
                body: v.clone(),
            };
            w.sent.push(s.clone());
            let callback = v["biz_opaque_callback_data"].as_str().map(str::to_string);
            let hooks: Vec<Value> = match w.fail_later.get(&to) {
                Some((code, title)) => vec![status_body(
                    &self.phone_number_id,
                    &s,
                    "failed",
                    callback.as_deref(),
                    Some((*code, title)),
                )],
                None => w
                    .statuses
                    .iter()
                    .map(|st| status_body(&self.phone_number_id, &s, st, callback.as_deref(), None))
                    .collect(),
            };
            if w.hold_webhooks {
                w.held.extend(hooks);
            } else if let Some((url, secret)) = w.webhook.clone() {
                // As WhatsApp does, a webhook not taken (the daemon down) is sent again.
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    for h in hooks {
                        for _ in 0..600 {
                            let (status, _) = send_webhook(&url, &secret, &h).await;
                            if (200..300).contains(&status) {
                                break;
                            }
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                    }
                });
            }
            (w.lose_next.take(), s.wamid)
        };
        if let (Some(after), _) = &lost {
            tokio::time::sleep(*after).await;
        }
        axum::Json(
            json!({"messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": to}],
            "messages": [{"id": lost.1}]}),
        )
        .into_response()
    }
}

/// The four steps' templates, in Arabic and English, with the parameters of
/// `config.example.toml`.
pub fn add_example_templates(sim: &SimWhatsapp) {
    sim.add_template("order_confirmed", &["ar", "en"], 3, 0);
    sim.add_template("order_shipped", &["ar", "en"], 3, 1);
    sim.add_template("order_delivered", &["ar", "en"], 2, 0);
    sim.add_template("order_cancelled", &["ar", "en"], 2, 0);
}

/// `marketsync sim whatsapp`.
#[derive(Debug, Clone, clap::Args)]
pub struct SimArgs {
    /// Port on 127.0.0.1 to listen on.
    #[arg(long, default_value_t = 9500)]
    pub port: u16,
    /// The business phone number's id (digits).
    #[arg(long, default_value = "106540352242922")]
    pub phone_number_id: String,
    /// The system user's access token it takes.
    #[arg(long, default_value = "EAAGsimWhatsappToken0001")]
    pub token: String,
    /// Where to post the signed status webhooks (the daemon's /webhooks/whatsapp).
    #[arg(long)]
    pub webhook_url: Option<String>,
    /// The app secret that signs them.
    #[arg(long, default_value = "app-secret-sim-4f1a9c")]
    pub app_secret: String,
}

pub async fn serve_cli(args: SimArgs) -> anyhow::Result<()> {
    let h = start(args.port, &args.phone_number_id, &args.token).await?;
    add_example_templates(&h.sim);
    if let Some(url) = &args.webhook_url {
        h.sim.set_webhook(url, &args.app_secret);
    }
    println!(
        "WhatsApp Cloud API simulator listening on {} (phone number id {})",
        h.base_url(),
        args.phone_number_id
    );
    println!(
        "  templates order_confirmed, order_shipped, order_delivered, order_cancelled (ar, en); access token {:?}",
        args.token
    );
    tokio::signal::ctrl_c().await?;
    Ok(())
}
