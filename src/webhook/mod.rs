//! The daemon's HTTP listener: `/healthz` today; the channels mount their signed webhook
//! endpoints here. Bodies are capped at `webhooks.max_body_bytes`.

use crate::daemon::Health;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use std::sync::Arc;

pub fn router(health: Arc<Health>, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(health)
}

/// 200 `{"status":"ok"}`, or 503 with the reasons (Odoo unreachable too long, queue stalled,
/// storage paused).
async fn healthz(State(health): State<Arc<Health>>) -> impl IntoResponse {
    let h = health.clone();
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
