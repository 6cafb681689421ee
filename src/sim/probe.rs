//! The probe's endpoint: records every order event posted to `/events`, and can be told to
//! refuse them (503) to show that one subscriber failing holds no other back. Like any receiver
//! of webhooks it keeps an event once by its `event_id`: a delivery the daemon could not record
//! as made (killed between the answer and its commit) comes again with the same id.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

#[derive(Default)]
pub struct SimProbe {
    token: String,
    /// Every event taken, in the order it arrived.
    events: Mutex<Vec<serde_json::Value>>,
    refusing: AtomicBool,
    /// Requests answered 503 while refusing.
    refused: Mutex<usize>,
    /// Events that came again (same `event_id`), answered 200 and not kept twice.
    duplicates: Mutex<usize>,
}

impl SimProbe {
    pub fn events(&self) -> Vec<serde_json::Value> {
        self.events.lock().unwrap().clone()
    }

    /// `(reference, kind)` of every event taken, in order.
    pub fn heard(&self) -> Vec<(String, String)> {
        self.events()
            .iter()
            .map(|e| {
                (
                    e["reference"].as_str().unwrap_or("").to_string(),
                    e["kind"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    }

    /// From now on every event is refused (503), or taken again.
    pub fn refuse(&self, on: bool) {
        self.refusing.store(on, Ordering::SeqCst);
    }

    pub fn refused(&self) -> usize {
        *self.refused.lock().unwrap()
    }

    pub fn duplicates(&self) -> usize {
        *self.duplicates.lock().unwrap()
    }
}

pub struct ProbeHandle {
    pub addr: SocketAddr,
    pub sim: Arc<SimProbe>,
    stop: CancellationToken,
}

impl ProbeHandle {
    pub fn base_url(&self) -> String {
        format!("http://{}/", self.addr)
    }
}

impl Drop for ProbeHandle {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

pub async fn start(port: u16, token: &str) -> std::io::Result<ProbeHandle> {
    let sim = Arc::new(SimProbe {
        token: token.into(),
        ..Default::default()
    });
    let app = Router::new()
        .route("/events", post(take))
        .with_state(sim.clone());
    let (addr, stop) = super::serve(port, app).await?;
    Ok(ProbeHandle { addr, sim, stop })
}

async fn take(
    State(sim): State<Arc<SimProbe>>,
    headers: HeaderMap,
    Json(event): Json<serde_json::Value>,
) -> (StatusCode, Json<serde_json::Value>) {
    let bearer = format!("Bearer {}", sim.token);
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(bearer.as_str()) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(serde_json::json!({"message": "bad token"})),
        );
    }
    if sim.refusing.load(Ordering::SeqCst) {
        *sim.refused.lock().unwrap() += 1;
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"message": "not now"})),
        );
    }
    let mut events = sim.events.lock().unwrap();
    if events.iter().any(|e| e["event_id"] == event["event_id"]) {
        *sim.duplicates.lock().unwrap() += 1;
    } else {
        events.push(event);
    }
    (StatusCode::OK, Json(serde_json::json!({"ok": true})))
}
