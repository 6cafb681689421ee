//! The daemon's HTTP listeners. The public one: `/healthz`, and the channels' webhooks: `POST /webhooks/medusa`
//! (and seed 004's `/api/medusa/order-created`). A webhook is answered 2xx only once its
//! payload is committed to the inbox; bad signatures (401), oversized bodies (413), bodies sent
//! too slowly (408) and malformed JSON (400) store nothing and disturb nothing else. Every
//! refusal is logged with its reason and counted in `/metrics`, which only the operator's own
//! listener (`admin.listen`) serves.

pub mod metrics;
pub mod signature;

use crate::config::{MedusaSettings, WebhookAuth};
use crate::daemon::Health;
use crate::secret::Secret;
use crate::store::Store;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use std::sync::Arc;

/// What the Medusa webhook endpoint needs.
#[derive(Clone)]
pub struct MedusaHook {
    pub secret: Secret,
    pub settings: MedusaSettings,
}

#[derive(Clone)]
pub struct App {
    pub health: Arc<Health>,
    pub store: Store,
    pub medusa: Option<MedusaHook>,
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
    Result<crate::store::inbox::Received, Arc<crate::store::StoreError>>,
>;

/// Commits received events in groups: concurrent webhooks share one transaction (each still
/// answered only once its own event is committed), so a burst costs one commit per group
/// instead of one per event, and writers do not queue on the state's lock.
struct Ingest(tokio::sync::mpsc::Sender<(crate::channel::medusa::PreparedEvent, IngestReply)>);

impl Ingest {
    /// Most events committed in one transaction.
    const GROUP: usize = 256;

    fn start(store: Store) -> Ingest {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<(
            crate::channel::medusa::PreparedEvent,
            IngestReply,
        )>(4096);
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
                            .map(|(event, _)| event.commit_in(tx, now))
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

    /// Commits one event (with others arriving at the same time).
    async fn commit(
        &self,
        event: crate::channel::medusa::PreparedEvent,
    ) -> Result<crate::store::inbox::Received, Arc<crate::store::StoreError>> {
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
    Router::new()
        .route("/webhooks/medusa", post(medusa))
        .route("/api/medusa/order-created", post(medusa))
        .with_state(Arc::new(Served { app, ingest }))
        .merge(health)
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

/// 200 `{"status":"ok"}`, or 503 with the reasons (Odoo unreachable too long, queue stalled).
async fn healthz(State(app): State<Arc<App>>) -> impl IntoResponse {
    let h = app.health.clone();
    let verdict = tokio::task::spawn_blocking(move || h.check())
        .await
        .unwrap_or_else(|_| Err(vec!["health check panicked".into()]));
    match verdict {
        Ok(()) => (StatusCode::OK, Json(serde_json::json!({"status": "ok"}))),
        Err(problems) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"status": "unhealthy", "problems": problems})),
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

async fn medusa(
    State(served): State<Arc<Served>>,
    headers: HeaderMap,
    body: Body,
) -> axum::response::Response {
    let app = &served.app;
    const SOURCE: &str = "medusa";
    let Some(hook) = app.medusa.clone() else {
        return refuse(
            SOURCE,
            "not_enabled",
            StatusCode::NOT_FOUND,
            "the medusa channel is not enabled on this marketsync".into(),
        );
    };
    let body = match read_body(app, body).await {
        Ok(b) => b,
        Err((status, why)) => {
            let outcome = match status {
                StatusCode::PAYLOAD_TOO_LARGE => "too_large",
                StatusCode::REQUEST_TIMEOUT => "too_slow",
                _ => "unreadable",
            };
            return refuse(SOURCE, outcome, status, why);
        }
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let secret = hook.secret.expose().as_bytes();
    let authentic = match hook.settings.webhook_auth {
        WebhookAuth::Hmac => {
            let now = chrono::Utc::now().timestamp();
            signature::verify(
                secret,
                header(signature::HEADER),
                &body,
                now,
                hook.settings.webhook_tolerance.as_secs() as i64,
            )
            .map_err(|e| e.to_string())
        }
        WebhookAuth::Header => {
            if signature::same_secret(secret, header(&hook.settings.webhook_header)) {
                Ok(())
            } else {
                Err(format!(
                    "missing or wrong {} header",
                    hook.settings.webhook_header
                ))
            }
        }
    };
    if let Err(why) = authentic {
        return refuse(SOURCE, "unauthorized", StatusCode::UNAUTHORIZED, why);
    }
    let parsed: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return refuse(
                SOURCE,
                "malformed",
                StatusCode::BAD_REQUEST,
                format!("malformed JSON: {e}"),
            )
        }
    };
    let Some(event) = parsed
        .get("event")
        .or_else(|| parsed.get("type"))
        .and_then(|e| e.as_str())
        .map(str::to_string)
    else {
        return refuse(
            SOURCE,
            "malformed",
            StatusCode::BAD_REQUEST,
            "the body has no \"event\" name (a string)".into(),
        );
    };
    use crate::channel::medusa::ReceiveError;
    let outcome = match crate::channel::medusa::prepare_event(&event, &parsed) {
        Err(e) => Err(e),
        Ok(prepared) => served
            .ingest
            .commit(prepared)
            .await
            .map(|r| matches!(r, crate::store::inbox::Received::New(_)))
            .map_err(ReceiveError::Storage),
    };
    match outcome {
        Ok(new) => {
            count(SOURCE, if new { "accepted" } else { "duplicate" });
            reply(
                StatusCode::OK,
                serde_json::json!({"received": true, "duplicate": !new}),
            )
        }
        Err(ReceiveError::Invalid(why)) => refuse(SOURCE, "invalid", StatusCode::BAD_REQUEST, why),
        Err(ReceiveError::Storage(why)) => {
            app.health.progress.storage.trip(&why);
            tracing::error!(error = %why, "cannot record a Medusa webhook; answered 503 so the store sends it again");
            count(SOURCE, "unavailable");
            reply(
                StatusCode::SERVICE_UNAVAILABLE,
                serde_json::json!({"error": "marketsync cannot record events right now; retry later"}),
            )
        }
    }
}
