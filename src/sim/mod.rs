//! Simulators of marketsync's peers, part of the product: `marketsync demo` runs the real
//! daemon against them and the tests use them as faithful, fault-injectable stand-ins. They
//! speak the real protocols (Python's `xmlrpc.client` works against the Odoo one) and are held
//! to the recordings in `fixtures/`.

pub mod cartona;
pub mod faults;
pub mod medusa;
pub mod meta;
pub mod odoo;
pub mod probe;
pub mod sha6er;
pub mod whatsapp;

use std::sync::Mutex;

/// One request as a simulator received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// Without the API prefix (`supplier-product/bulk-update`, `admin/orders`).
    pub path: String,
    pub query: String,
    pub body: String,
}

impl Recorded {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// Every request a simulator received, for tests to assert on.
#[derive(Default)]
pub struct Recorder(Mutex<Vec<Recorded>>);

impl Recorder {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Recorded>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn record(
        &self,
        method: &axum::http::Method,
        uri: &axum::http::Uri,
        prefix: &str,
        body: &[u8],
    ) {
        self.lock().push(Recorded {
            method: method.to_string(),
            path: uri.path().trim_start_matches(prefix).to_string(),
            query: uri.query().unwrap_or("").to_string(),
            body: String::from_utf8_lossy(body).into_owned(),
        });
    }

    pub fn all(&self) -> Vec<Recorded> {
        self.lock().clone()
    }

    /// Looks at the requests without copying them (for counters polled while work runs).
    pub fn with<T>(&self, f: impl FnOnce(&[Recorded]) -> T) -> T {
        f(&self.lock())
    }

    pub fn to(&self, path: &str) -> Vec<Recorded> {
        self.lock()
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    pub fn clear(&self) {
        self.lock().clear();
    }
}

/// Serves `app` on 127.0.0.1:`port` (0: any free port) until the returned token is
/// cancelled: the address it listens on, and the token.
pub async fn serve(
    port: u16,
    app: axum::Router,
) -> std::io::Result<(std::net::SocketAddr, tokio_util::sync::CancellationToken)> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    let stop = tokio_util::sync::CancellationToken::new();
    let st = stop.clone();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move { st.cancelled().await })
            .await;
    });
    Ok((addr, stop))
}
