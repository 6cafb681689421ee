//! The daemon's HTTP listener: `/healthz`, and the channels' webhooks: `POST /webhooks/medusa`
//! (and seed 004's `/api/medusa/order-created`). A webhook is answered 2xx only once its
//! payload is committed to the inbox; bad signatures (401), oversized bodies (413) and
//! malformed JSON (400) store nothing and disturb nothing else.

pub mod metrics;
pub mod signature;

use crate::config::{MedusaSettings, WebhookAuth};
use crate::daemon::Health;
use crate::secret::Secret;
use crate::store::Store;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
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
}

pub fn router(app: App, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(prometheus))
        .route("/webhooks/medusa", post(medusa))
        .route("/api/medusa/order-created", post(medusa))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(app)
}

/// 200 `{"status":"ok"}`, or 503 with the reasons (Odoo unreachable too long, queue stalled).
async fn healthz(State(app): State<App>) -> impl IntoResponse {
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

async fn prometheus(State(app): State<App>) -> axum::response::Response {
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
    State(app): State<App>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    let Some(hook) = app.medusa else {
        return reply(
            StatusCode::NOT_FOUND,
            serde_json::json!({"error": "the medusa channel is not enabled on this marketsync"}),
        );
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
        tracing::warn!(reason = %why, "refused a Medusa webhook");
        return reply(StatusCode::UNAUTHORIZED, serde_json::json!({"error": why}));
    }
    let parsed: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return reply(
                StatusCode::BAD_REQUEST,
                serde_json::json!({"error": format!("malformed JSON: {e}")}),
            )
        }
    };
    let Some(event) = parsed
        .get("event")
        .or_else(|| parsed.get("type"))
        .and_then(|e| e.as_str())
        .map(str::to_string)
    else {
        return reply(
            StatusCode::BAD_REQUEST,
            serde_json::json!({"error": "the body has no \"event\" name"}),
        );
    };
    let store = app.store.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        crate::channel::medusa::receive_event(&store, &event, &parsed)
    })
    .await;
    match outcome {
        Ok(Ok(new)) => reply(
            StatusCode::OK,
            serde_json::json!({"received": true, "duplicate": !new}),
        ),
        Ok(Err(crate::channel::medusa::ReceiveError::Invalid(why))) => {
            reply(StatusCode::BAD_REQUEST, serde_json::json!({"error": why}))
        }
        Ok(Err(crate::channel::medusa::ReceiveError::Storage(why))) => {
            tracing::error!(error = %why, "cannot record a Medusa webhook");
            reply(
                StatusCode::SERVICE_UNAVAILABLE,
                serde_json::json!({"error": "marketsync cannot record events right now; retry later"}),
            )
        }
        Err(_) => reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            serde_json::json!({"error": "internal error"}),
        ),
    }
}
