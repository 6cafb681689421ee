//! The daemon's HTTP listeners. The public one: `/healthz`, and the webhooks of each channel
//! that declares a [`intake::WebhookSpec`] (Medusa's `POST /webhooks/medusa`, say). A webhook
//! is answered 2xx only once its events are committed to the inbox; bad signatures (401),
//! oversized bodies (413), bodies sent too slowly (408) and malformed JSON (400) store nothing
//! and disturb nothing else. Every refusal is logged with its reason and counted in `/metrics`,
//! which only the operator's own listener (`admin.listen`) serves.

pub mod intake;
pub mod metrics;
pub mod signature;

use crate::daemon::Health;
use crate::store::Store;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use intake::{Inbound, ReceiveError, WebhookSpec};
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Clone)]
pub struct App {
    pub health: Arc<Health>,
    pub store: Store,
    /// The webhooks of the enabled channels.
    pub hooks: Vec<WebhookSpec>,
    /// Largest body read, and how long a sender may take to deliver it.
    pub max_body_bytes: usize,
    pub body_timeout: std::time::Duration,
}

/// What the handlers share: the caller's [`App`] and the inbox writer [`router`] starts.
struct Served {
    app: App,
    ingest: Ingest,
}

type IngestReply = tokio::sync::oneshot::Sender<
    Result<Vec<crate::store::inbox::Received>, Arc<crate::store::StoreError>>,
>;

/// Commits received events in groups: concurrent webhooks share one transaction (each still
/// answered only once its own event is committed), so a burst costs one commit per group
/// instead of one per event, and writers do not queue on the state's lock.
struct Ingest(tokio::sync::mpsc::Sender<(Vec<Inbound>, IngestReply)>);

impl Ingest {
    /// Most events committed in one transaction.
    const GROUP: usize = 256;

    fn start(store: Store) -> Ingest {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<(Vec<Inbound>, IngestReply)>(4096);
        let spawned = std::thread::Builder::new()
            .name("marketsync-inbox".into())
            .spawn(move || {
                // Ends when every sender is gone (the listener stopped).
                while let Some(first) = rx.blocking_recv() {
                    let mut group = vec![first];
                    while group.len() < Self::GROUP {
                        match rx.try_recv() {
                            Ok(next) => group.push(next),
                            Err(_) => break,
                        }
                    }
                    let now = crate::store::now_ms();
                    let committed = store.write(|tx| {
                        group
                            .iter()
                            .map(|(events, _)| {
                                events
                                    .iter()
                                    .map(|e| e.commit_in(tx, now))
                                    .collect::<crate::store::Result<Vec<_>>>()
                            })
                            .collect::<crate::store::Result<Vec<_>>>()
                    });
                    match committed {
                        Ok(received) => {
                            for ((_, reply), r) in group.into_iter().zip(received) {
                                let _ = reply.send(Ok(r));
                            }
                        }
                        Err(e) => {
                            let e = Arc::new(e);
                            for (_, reply) in group {
                                let _ = reply.send(Err(e.clone()));
                            }
                        }
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the inbox writer thread");
        }
        Ingest(tx)
    }

    /// Commits one webhook's events (with others arriving at the same time).
    async fn commit(
        &self,
        event: Vec<Inbound>,
    ) -> Result<Vec<crate::store::inbox::Received>, Arc<crate::store::StoreError>> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let gone = || {
            Arc::new(crate::store::StoreError::Conflict(
                "the inbox writer stopped".into(),
            ))
        };
        self.0.send((event, reply)).await.map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

/// The public listener (`webhooks.listen`, behind the TLS proxy): the channels' webhooks and
/// `/healthz`. Nothing an outsider should read (`/metrics` is on [`admin_router`]).
pub fn router(app: App) -> Router {
    let ingest = Ingest::start(app.store.clone());
    let health = Router::new()
        .route("/healthz", get(healthz))
        .with_state(Arc::new(app.clone()));
    let served = Arc::new(Served {
        app: app.clone(),
        ingest,
    });
    let mut router = Router::new();
    for hook in &app.hooks {
        let hook = Arc::new(hook.clone());
        for path in &hook.paths {
            let (s, h) = (served.clone(), hook.clone());
            let mut route =
                post(move |headers: HeaderMap, body: Body| receive(s, h, headers, body));
            if matches!(hook.verification, intake::Verification::Hub { .. }) {
                let h = hook.clone();
                route = route.get(move |query: Query<HashMap<String, String>>| handshake(h, query));
            }
            router = router.route(path, route);
        }
    }
    let taken: Vec<&'static str> = app.hooks.iter().flat_map(|h| h.paths.clone()).collect();
    router
        .merge(health)
        .fallback(move |uri: axum::http::Uri| unknown_path(taken.clone(), uri))
}

/// A request where no enabled channel takes webhooks: 404, saying where they are taken.
async fn unknown_path(taken: Vec<&'static str>, uri: axum::http::Uri) -> axum::response::Response {
    let path: String = uri.path().chars().take(200).collect();
    let why = if taken.is_empty() {
        format!("no webhook is taken at {path}: no enabled channel takes webhooks")
    } else {
        format!(
            "no webhook is taken at {path}: the enabled channels take them at {}",
            taken.join(", ")
        )
    };
    refuse("unknown", "not_found", StatusCode::NOT_FOUND, why)
}

/// The operator's listener (`admin.listen`, loopback by default): `/metrics` (order and job
/// counts, error texts) and `/healthz`.
pub fn admin_router(app: App) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(prometheus))
        .with_state(Arc::new(app))
}

/// Reads a request body within the size and time limits; `Err` is the answer to give. The
/// size is counted here, frame by frame, so a body over the limit is known as such (413), not
/// told apart from a broken one by the text of an error.
async fn read_body(app: &App, body: Body) -> Result<Bytes, (StatusCode, String)> {
    use futures_util::StreamExt;
    let limit = app.max_body_bytes;
    let read = async {
        let mut frames = body.into_data_stream();
        let mut buf: Vec<u8> = Vec::new();
        while let Some(frame) = frames.next().await {
            let frame = frame.map_err(|e| {
                (
                    StatusCode::BAD_REQUEST,
                    format!("the body could not be read: {e}"),
                )
            })?;
            if buf.len() + frame.len() > limit {
                return Err((
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("the body is larger than {limit} bytes (webhooks.max_body_bytes)"),
                ));
            }
            buf.extend_from_slice(&frame);
        }
        Ok(Bytes::from(buf))
    };
    match tokio::time::timeout(app.body_timeout, read).await {
        Ok(result) => result,
        Err(_) => Err((
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the body was not sent within {}s (webhooks.body_timeout)",
                app.body_timeout.as_secs_f32()
            ),
        )),
    }
}

/// Answers a refused webhook: logged with the reason, counted, nothing stored.
fn refuse(
    source: &str,
    outcome: &str,
    status: StatusCode,
    why: String,
) -> axum::response::Response {
    tracing::warn!(source, status = status.as_u16(), reason = %why, "refused a webhook");
    count(source, outcome);
    reply(status, serde_json::json!({"error": why}))
}

fn count(source: &str, outcome: &str) {
    crate::telemetry::counters::inc(
        crate::telemetry::counters::WEBHOOKS,
        &[("source", source), ("outcome", outcome)],
    );
}

/// 200 `{"status":"ok"}`; 200 `{"status":"degraded","unreachable":[...]}` while a channel's
/// peer cannot be reached (the daemon is fine: those jobs wait); or 503 with the reasons the
/// daemon itself is unhealthy (Odoo unreachable too long, queue stalled).
async fn healthz(State(app): State<Arc<App>>) -> impl IntoResponse {
    let h = app.health.clone();
    let (verdict, unreachable) = tokio::task::spawn_blocking(move || (h.check(), h.unreachable()))
        .await
        .unwrap_or_else(|_| (Err(vec!["health check panicked".into()]), Vec::new()));
    match verdict {
        Ok(()) if unreachable.is_empty() => {
            (StatusCode::OK, Json(serde_json::json!({"status": "ok"})))
        }
        Ok(()) => (
            StatusCode::OK,
            Json(serde_json::json!({"status": "degraded", "unreachable": unreachable})),
        ),
        Err(problems) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({
                "status": "unhealthy",
                "problems": problems,
                "unreachable": unreachable,
            })),
        ),
    }
}

async fn prometheus(State(app): State<Arc<App>>) -> axum::response::Response {
    match tokio::task::spawn_blocking(move || metrics::render(&app)).await {
        Ok(Ok(text)) => ([("content-type", "text/plain; version=0.0.4")], text).into_response(),
        Ok(Err(e)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("state database: {e}"),
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

fn reply(status: StatusCode, body: serde_json::Value) -> axum::response::Response {
    (status, Json(body)).into_response()
}

/// A subscription handshake (Meta): the challenge echoed when the verify token is ours.
async fn handshake(
    hook: Arc<WebhookSpec>,
    Query(q): Query<HashMap<String, String>>,
) -> axum::response::Response {
    let get = |k: &str| q.get(k).map(String::as_str);
    match hook.verification.handshake(
        get("hub.mode"),
        get("hub.verify_token"),
        get("hub.challenge"),
    ) {
        Ok(challenge) => {
            count(hook.source, "handshake");
            (StatusCode::OK, challenge).into_response()
        }
        Err(why) => refuse(
            hook.source,
            "handshake_refused",
            StatusCode::FORBIDDEN,
            why.to_string(),
        ),
    }
}

/// One webhook of a channel: read within the limits, verified, parsed, its events committed.
async fn receive(
    served: Arc<Served>,
    hook: Arc<WebhookSpec>,
    headers: HeaderMap,
    body: Body,
) -> axum::response::Response {
    let app = &served.app;
    let source = hook.source;
    let body = match read_body(app, body).await {
        Ok(b) => b,
        Err((status, why)) => {
            let outcome = match status {
                StatusCode::PAYLOAD_TOO_LARGE => "too_large",
                StatusCode::REQUEST_TIMEOUT => "too_slow",
                _ => "unreadable",
            };
            return refuse(source, outcome, status, why);
        }
    };
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    if let Err(why) = hook
        .verification
        .check(header, &body, chrono::Utc::now().timestamp())
    {
        return refuse(
            source,
            "unauthorized",
            StatusCode::UNAUTHORIZED,
            why.to_string(),
        );
    }
    let parsed: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return refuse(
                source,
                "malformed",
                StatusCode::BAD_REQUEST,
                format!("malformed JSON: {e}"),
            )
        }
    };
    let outcome = match (hook.prepare)(&parsed) {
        Err(e) => Err(e),
        Ok(events) => served
            .ingest
            .commit(events)
            .await
            .map(|r| {
                r.iter()
                    .any(|r| matches!(r, crate::store::inbox::Received::New(_)))
            })
            .map_err(ReceiveError::Storage),
    };
    match outcome {
        Ok(new) => {
            count(source, if new { "accepted" } else { "duplicate" });
            reply(
                StatusCode::OK,
                serde_json::json!({"received": true, "duplicate": !new}),
            )
        }
        Err(ReceiveError::Invalid(why)) => refuse(source, "invalid", StatusCode::BAD_REQUEST, why),
        Err(ReceiveError::Storage(why)) => {
            app.health.progress.storage.trip(&why);
            tracing::error!(source, error = %why, "cannot record a webhook; answered 503 so the sender sends it again");
            count(source, "unavailable");
            reply(
                StatusCode::SERVICE_UNAVAILABLE,
                serde_json::json!({"error": "marketsync cannot record events right now; retry later"}),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::intake::{Inbound, Verification, WebhookSpec};
    use super::*;
    use crate::secret::Secret;
    use crate::store::queue::{NewJob, Payload};

    /// A channel taking Meta-style webhooks, mounted by the generic intake.
    fn hub_spec() -> WebhookSpec {
        WebhookSpec {
            source: "hubtest",
            paths: vec!["/webhooks/hubtest"],
            verification: Verification::Hub {
                app_secret: Secret::new("app-secret-9f"),
                verify_token: Secret::new("verify-token-3c"),
            },
            prepare: Arc::new(|body| {
                let entries = body["entry"].as_array().cloned().unwrap_or_default();
                Ok(entries
                    .iter()
                    .map(|e| {
                        let id = e["id"].as_str().unwrap_or("?").to_string();
                        Inbound {
                            source: "hubtest",
                            event_id: id.clone(),
                            kind: "entry".into(),
                            subject: Some(id.clone()),
                            body: e.to_string(),
                            job: NewJob {
                                channel: "hubtest".into(),
                                kind: "entry".into(),
                                key: format!("hubtest:entry:{id}"),
                                payload: Payload::of(&serde_json::json!({"id": id})),
                                correlation_id: None,
                            },
                        }
                    })
                    .collect())
            }),
        }
    }

    #[tokio::test]
    async fn a_meta_style_hook_answers_its_handshake_and_takes_only_signed_bodies() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        let app = router(App {
            health: Arc::new(Health::new(
                store.clone(),
                std::time::Duration::from_secs(60),
            )),
            store: store.clone(),
            hooks: vec![hub_spec()],
            max_body_bytes: 1 << 20,
            body_timeout: std::time::Duration::from_secs(10),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let url = format!("http://{addr}/webhooks/hubtest");
        let http = reqwest::Client::new();

        let shake = |token: &str| {
            http.get(&url)
                .query(&[
                    ("hub.mode", "subscribe"),
                    ("hub.verify_token", token),
                    ("hub.challenge", "1158201444"),
                ])
                .send()
        };
        let ok = shake("verify-token-3c").await.unwrap();
        assert_eq!(ok.status().as_u16(), 200);
        assert_eq!(ok.text().await.unwrap(), "1158201444");
        let refused = shake("guess").await.unwrap();
        assert_eq!(refused.status().as_u16(), 403);
        assert!(!refused.text().await.unwrap().contains("verify-token-3c"));

        let body = br#"{"object":"page","entry":[{"id":"e1"},{"id":"e2"}]}"#.to_vec();
        let post = |sig: Option<String>| {
            let mut r = http.post(&url).body(body.clone());
            if let Some(sig) = sig {
                r = r.header("X-Hub-Signature-256", sig);
            }
            r.send()
        };
        assert_eq!(post(None).await.unwrap().status().as_u16(), 401);
        let forged = super::signature::sign_hub(b"not-the-secret", &body);
        assert_eq!(post(Some(forged)).await.unwrap().status().as_u16(), 401);
        assert!(crate::store::inbox::list(&store, None, 10)
            .unwrap()
            .is_empty());
        let signed = super::signature::sign_hub(b"app-secret-9f", &body);
        let r = post(Some(signed.clone())).await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert_eq!(
            crate::store::inbox::list(&store, None, 10).unwrap().len(),
            2,
            "both entries of the batch, committed before the answer"
        );
        let again: serde_json::Value = post(Some(signed)).await.unwrap().json().await.unwrap();
        assert_eq!(again["duplicate"], true);

        // Where nothing is mounted: 404 naming where webhooks are taken.
        let r = http
            .post(format!("http://{addr}/webhooks/medusa"))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 404);
        assert!(r.text().await.unwrap().contains("/webhooks/hubtest"));
    }
}
