//! `marketsync sim medusa`: a Medusa store on loopback in both flavours at once: MarqaSouq's
//! `/odoo/*` routes (`x-odoo-api-key`, minor units, seed 004's error format) and the Medusa v2
//! Admin API (`Authorization: Basic` secret key, major units, the bodies and errors recorded in
//! fixtures/medusa-v2). It records requests, injects faults, places orders, and fires signed
//! webhooks at the daemon as a store's subscriber would.

// Handlers return the HTTP answer itself as the error of a step; its size does not matter here.
#![allow(clippy::result_large_err)]

use crate::config::MedusaFlavour;
use crate::sim::faults::{self, Faults};
use crate::sync::money;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, Response, StatusCode, Uri};
use axum::routing::{delete, get, post};
use axum::Router;
use base64::Engine;
use rust_decimal::Decimal;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio_util::sync::CancellationToken;

pub use super::Recorded;

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Product {
    pub sku: String,
    pub title: String,
    pub metadata: serde_json::Value,
    /// Major units.
    pub price: Decimal,
    pub currency: String,
    pub quantity: i64,
    /// published, draft or deleted
    pub status: String,
    pub product_id: String,
    pub variant_id: String,
    pub inventory_item_id: String,
    /// stock location -> stocked quantity (admin-api)
    pub levels: BTreeMap<String, i64>,
    pub raw: serde_json::Value,
}

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Order {
    pub json: serde_json::Value,
    pub synced: bool,
    pub metadata: serde_json::Value,
    /// MarqaSouq order-status events received, in order.
    pub events: Vec<serde_json::Value>,
    /// Admin API: the order's fulfillments, cancelled ones included.
    pub fulfillments: Vec<Fulfillment>,
    pub canceled: bool,
}

/// An Admin API fulfillment, as a real Medusa 2.21 keeps it (`fixtures/medusa-v2/fulfillment.jsonl`).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Fulfillment {
    pub id: String,
    /// (order line id, quantity)
    pub items: Vec<(String, i64)>,
    pub metadata: serde_json::Value,
    pub labels: Vec<serde_json::Value>,
    pub shipped_at: Option<String>,
    pub delivered_at: Option<String>,
    pub canceled_at: Option<String>,
}

impl Fulfillment {
    pub fn live(&self) -> bool {
        self.canceled_at.is_none()
    }

    pub fn delivered(&self) -> bool {
        self.delivered_at.is_some()
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id, "packed_at": "2026-12-01T18:31:15.932Z", "shipped_at": self.shipped_at,
            "delivered_at": self.delivered_at, "canceled_at": self.canceled_at,
            "metadata": if self.metadata.is_null() { serde_json::Value::Null } else { self.metadata.clone() },
            "items": self.items.iter().map(|(line, q)| serde_json::json!({"line_item_id": line, "quantity": q})).collect::<Vec<_>>(),
            "labels": self.labels,
        })
    }
}

impl Order {
    /// The live fulfillments' quantity of a line.
    pub fn fulfilled(&self, line: &str) -> i64 {
        self.fulfillments
            .iter()
            .filter(|f| f.live())
            .flat_map(|f| &f.items)
            .filter(|(l, _)| l == line)
            .map(|(_, q)| q)
            .sum()
    }

    fn lines(&self) -> Vec<(String, i64)> {
        self.json["items"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|i| Some((i["id"].as_str()?.to_string(), i["quantity"].as_i64()?)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Medusa's `fulfillment_status`, from the live fulfillments.
    pub fn fulfillment_status(&self) -> &'static str {
        let live: Vec<&Fulfillment> = self.fulfillments.iter().filter(|f| f.live()).collect();
        if live.is_empty() {
            return if self.canceled {
                "canceled"
            } else {
                "not_fulfilled"
            };
        }
        let whole = self.lines().iter().all(|(l, q)| self.fulfilled(l) >= *q);
        let all = |p: fn(&Fulfillment) -> bool| live.iter().all(|f| p(f));
        let any = |p: fn(&Fulfillment) -> bool| live.iter().any(|f| p(f));
        match () {
            _ if whole && all(|f| f.delivered_at.is_some()) => "delivered",
            _ if any(|f| f.delivered_at.is_some()) => "partially_delivered",
            _ if whole && all(|f| f.shipped_at.is_some()) => "shipped",
            _ if any(|f| f.shipped_at.is_some()) => "partially_shipped",
            _ if whole => "fulfilled",
            _ => "partially_fulfilled",
        }
    }

    fn status(&self) -> &str {
        self.json["status"].as_str().unwrap_or("pending")
    }
}

#[derive(Default, serde::Serialize, serde::Deserialize)]
struct World {
    products: BTreeMap<String, Product>,
    orders: BTreeMap<String, Order>,
    seq: u64,
}

pub struct SimMedusa {
    world: Mutex<World>,
    pub faults: Faults,
    api_key: String,
    secret_key: String,
    pub flavour: MedusaFlavour,
    pub currency: String,
    /// Every request received.
    pub requests: super::Recorder,
    /// MarqaSouq order-status events to answer once with a 503 (see [`SimMedusa::refuse_once`]).
    refuse: Mutex<Vec<String>>,
    /// Admin actions (`fulfillments`, `shipments`, ...) whose next one is applied and then
    /// answered 502: the client cannot know it went through (see [`SimMedusa::lose_answer_once`]).
    lose: Mutex<Vec<String>>,
}

pub struct MedusaHandle {
    pub addr: SocketAddr,
    pub sim: Arc<SimMedusa>,
    stop: CancellationToken,
}

impl MedusaHandle {
    pub fn base_url(&self) -> String {
        format!("http://{}/", self.addr)
    }
}

impl Drop for MedusaHandle {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Starts the store. `key` is both MarqaSouq's `x-odoo-api-key` and the secret key (`sk_…`).
pub async fn start(
    port: u16,
    flavour: MedusaFlavour,
    key: &str,
    currency: &str,
) -> std::io::Result<MedusaHandle> {
    let sim = Arc::new(SimMedusa {
        world: Mutex::default(),
        faults: Faults::default(),
        api_key: key.into(),
        secret_key: key.into(),
        flavour,
        currency: currency.to_ascii_lowercase(),
        requests: Default::default(),
        refuse: Mutex::default(),
        lose: Mutex::default(),
    });
    let app = Router::new()
        .route("/odoo/products/bulk", post(mq_products_bulk))
        .route("/odoo/products/{sku}", delete(mq_product_delete))
        .route("/odoo/inventory/bulk-update", post(mq_inventory))
        .route("/odoo/orders", get(mq_orders))
        .route("/odoo/orders/{id}", get(mq_order))
        .route("/odoo/orders/{id}/synced", post(mq_synced))
        .route("/odoo/webhooks/order-status", post(mq_order_status))
        .route("/admin/products", get(ad_products_list))
        .route("/admin/products/batch", post(ad_products_batch))
        .route("/admin/inventory-items", get(ad_inventory_items))
        .route(
            "/admin/inventory-items/location-levels/batch",
            post(ad_levels_batch),
        )
        .route("/admin/orders", get(ad_orders))
        .route("/admin/orders/{id}", get(ad_order).post(ad_order_update))
        .route("/admin/orders/{id}/fulfillments", post(ad_fulfill))
        .route(
            "/admin/orders/{id}/fulfillments/{fid}/shipments",
            post(ad_ship),
        )
        .route(
            "/admin/orders/{id}/fulfillments/{fid}/mark-as-delivered",
            post(ad_delivered),
        )
        .route("/admin/orders/{id}/cancel", post(ad_cancel))
        .route("/admin/orders/{id}/complete", post(ad_complete))
        .route(
            "/admin/orders/{id}/fulfillments/{fid}/cancel",
            post(ad_fulfillment_cancel),
        )
        .with_state(sim.clone());
    let (addr, stop) = super::serve(port, app).await?;
    Ok(MedusaHandle { addr, sim, stop })
}

impl SimMedusa {
    /// The next MarqaSouq order-status post of `event_type` is answered 503 and not applied.
    pub fn refuse_once(&self, event_type: &str) {
        self.refuse
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(event_type.to_string());
    }

    /// The next admin order action named `action` (the path's last segment: `fulfillments`,
    /// `shipments`, `mark-as-delivered`, `cancel`, `complete`) is applied, then answered with
    /// a proxy's 502, as when the answer is lost on the way back.
    pub fn lose_answer_once(&self, action: &str) {
        self.lose
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(action.to_string());
    }

    fn answer_lost(&self, action: &str) -> bool {
        let mut lose = self.lose.lock().unwrap_or_else(|e| e.into_inner());
        match lose.iter().position(|a| a == action) {
            Some(i) => {
                lose.remove(i);
                true
            }
            None => false,
        }
    }

    /// The whole store (products, orders, their events and fulfillments) as JSON, to be
    /// loaded by [`SimMedusa::load_snapshot`].
    pub fn snapshot(&self) -> serde_json::Value {
        serde_json::to_value(&*self.world()).expect("the world serializes")
    }

    /// Replaces the store with a [`SimMedusa::snapshot`].
    pub fn load_snapshot(&self, snapshot: &serde_json::Value) -> Result<(), crate::error::Error> {
        *self.world() = serde_json::from_value(snapshot.clone()).map_err(|e| {
            crate::error::Error::invalid(format!("not a Medusa simulator snapshot: {e}"))
        })?;
        Ok(())
    }

    fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn product(&self, sku: &str) -> Option<Product> {
        self.world().products.get(sku).cloned()
    }

    pub fn products(&self) -> Vec<Product> {
        self.world().products.values().cloned().collect()
    }

    /// An admin changes a product's price in the store's dashboard (behind marketsync's back).
    pub fn admin_set_price(&self, sku: &str, price: Decimal) {
        if let Some(p) = self.world().products.get_mut(sku) {
            p.price = price;
        }
    }

    /// An admin creates a published product in the store's dashboard, one Odoo knows nothing of.
    pub fn admin_create(&self, sku: &str, price: Decimal) {
        let mut w = self.world();
        w.seq += 1;
        let seq = w.seq;
        let product = Product {
            sku: sku.into(),
            title: format!("Made in the dashboard {sku}"),
            price,
            currency: self.currency.clone(),
            status: "published".into(),
            product_id: format!("prod_01SIM{seq:06}"),
            variant_id: format!("variant_01SIM{seq:06}"),
            inventory_item_id: format!("iitem_01SIM{seq:06}"),
            ..Product::default()
        };
        w.products.insert(sku.into(), product);
    }

    /// An admin deletes a product in the store's dashboard: it is gone, its SKU free again.
    pub fn admin_delete(&self, sku: &str) {
        self.world().products.remove(sku);
    }

    pub fn orders(&self) -> Vec<Order> {
        self.world().orders.values().cloned().collect()
    }

    pub fn order(&self, id: &str) -> Option<Order> {
        self.world().orders.get(id).cloned()
    }

    /// Places an order for `items` of (sku, quantity, unit price in major units); returns its id.
    pub fn place_order(&self, email: &str, items: &[(&str, i64, Decimal)]) -> String {
        let mut w = self.world();
        w.seq += 1;
        let seq = w.seq;
        let id = format!("order_01SIM{seq:06}");
        let price = |p: Decimal| match self.flavour {
            MedusaFlavour::Marqasouq => {
                serde_json::json!(money::to_minor(p, &self.currency).unwrap_or(0))
            }
            MedusaFlavour::AdminApi => {
                serde_json::json!(p.to_string().parse::<f64>().unwrap_or(0.0))
            }
        };
        let lines: Vec<serde_json::Value> = items
            .iter()
            .enumerate()
            .map(|(i, (sku, q, p))| {
                let mut line = serde_json::json!({"id": format!("li_{seq}_{i}"), "title": w.products.get(*sku).map(|p| p.title.clone()).unwrap_or_else(|| sku.to_string()),
                                   "quantity": q, "unit_price": price(*p), "variant_id": format!("variant_{sku}"), "product_id": format!("prod_{sku}")});
                // A Medusa v2 order line names its variant's SKU `variant_sku`; MarqaSouq's, `sku`.
                let key = match self.flavour {
                    MedusaFlavour::AdminApi => "variant_sku",
                    MedusaFlavour::Marqasouq => "sku",
                };
                line[key] = serde_json::json!(sku);
                line
            })
            .collect();
        let json = serde_json::json!({
            "id": id, "display_id": 1000 + seq, "status": "pending", "email": email, "currency_code": self.currency,
            "created_at": chrono::Utc::now().to_rfc3339(), "updated_at": chrono::Utc::now().to_rfc3339(),
            "customer": {"id": format!("cus_{}", email.split('@').next().unwrap_or("x")), "email": email, "first_name": "Ahmed", "last_name": "Al-Rashid", "phone": "+965-12345678"},
            "shipping_address": {"first_name": "Ahmed", "last_name": "Al-Rashid", "address_1": "Block 5, Street 10, House 25", "city": "Kuwait City",
                                 "country_code": "kw", "postal_code": "12345", "phone": "+965-12345678"},
            "items": lines,
            "metadata": {},
        });
        w.orders.insert(
            id.clone(),
            Order {
                json,
                metadata: serde_json::json!({}),
                ..Default::default()
            },
        );
        id
    }

    /// The webhook body a store subscriber sends for an event about an order.
    pub fn webhook_body(&self, event: &str, order_id: &str) -> Vec<u8> {
        let w = self.world();
        let order = w
            .orders
            .get(order_id)
            .map(|o| o.json.clone())
            .unwrap_or_default();
        let body = match event {
            "order.created" => {
                serde_json::json!({"event": event, "timestamp": chrono::Utc::now().to_rfc3339(), "data": {"order": order}})
            }
            _ => serde_json::json!({"event": event, "timestamp": chrono::Utc::now().to_rfc3339(),
                                    "data": {"order_id": order_id, "display_id": order["display_id"], "old_status": "pending", "new_status": "canceled"}}),
        };
        body.to_string().into_bytes()
    }

    /// Changes an order as the store holds it (tests: a damaged or unusual order).
    pub fn edit_order(&self, id: &str, edit: impl FnOnce(&mut serde_json::Value)) {
        if let Some(o) = self.world().orders.get_mut(id) {
            edit(&mut o.json);
        }
    }

    /// Cancels an order on the store's side.
    pub fn store_cancels(&self, id: &str) {
        if let Some(o) = self.world().orders.get_mut(id) {
            o.json["status"] = serde_json::json!("canceled");
            o.canceled = true;
        }
    }
}

/// Sends a signed webhook (`X-Marketsync-Signature`) as a store's subscriber does; returns the
/// HTTP status and body.
pub async fn send_webhook(url: &str, secret: &str, body: Vec<u8>, at: i64) -> (u16, String) {
    let sig = crate::webhook::signature::sign(secret.as_bytes(), at, &body);
    match reqwest::Client::new()
        .post(url)
        .header("Content-Type", "application/json")
        .header("X-Marketsync-Signature", sig)
        .body(body)
        .send()
        .await
    {
        Ok(r) => {
            let s = r.status().as_u16();
            (s, r.text().await.unwrap_or_default())
        }
        Err(e) => (0, e.to_string()),
    }
}

// -------------------------------------------------------------------------------------------
// HTTP
// -------------------------------------------------------------------------------------------

fn json(status: StatusCode, body: serde_json::Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("Content-Type", "application/json; charset=utf-8")
        .body(Body::from(body.to_string()))
        .expect("valid response")
}

/// seed 004 §9's error format.
fn mq_error(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    json(
        status,
        serde_json::json!({"success": false, "error": {"code": code, "message": message, "details": {}}}),
    )
}

fn invalid(message: &str) -> Response<Body> {
    json(
        StatusCode::BAD_REQUEST,
        serde_json::json!({"type": "invalid_data", "message": message}),
    )
}

fn not_found(message: &str) -> Response<Body> {
    json(
        StatusCode::NOT_FOUND,
        serde_json::json!({"type": "not_found", "message": message}),
    )
}

async fn gate_mq(
    sim: &SimMedusa,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Option<Response<Body>> {
    sim.requests.record(method, uri, "/", body);
    if headers.get("x-odoo-api-key").and_then(|v| v.to_str().ok()) != Some(sim.api_key.as_str()) {
        return Some(mq_error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "Invalid or missing API key",
        ));
    }
    faults::act_for(&sim.faults, method == Method::GET).await
}

/// The Admin API's secret-key check, with Medusa's own answers (fixtures/medusa-v2 [4]-[6], [81], [82]).
async fn gate_admin(
    sim: &SimMedusa,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Option<Response<Body>> {
    sim.requests.record(method, uri, "/", body);
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let unauthorized = || {
        json(
            StatusCode::UNAUTHORIZED,
            serde_json::json!({"message": "Unauthorized"}),
        )
    };
    match auth.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && token.starts_with("sk_") =>
        {
            return Some(json(
                StatusCode::UNAUTHORIZED,
                serde_json::json!({"message": "A secret API key was passed as a Bearer token. Secret API keys must be sent using HTTP Basic authentication instead (Authorization: Basic <secret-api-key>)."}),
            ))
        }
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("basic") => {
            let key = if token.starts_with("sk_") {
                token.to_string()
            } else {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(token)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .unwrap_or_default();
                decoded.strip_suffix(':').unwrap_or(&decoded).to_string()
            };
            if key != sim.secret_key {
                return Some(unauthorized());
            }
        }
        _ => return Some(unauthorized()),
    }
    faults::act_for(&sim.faults, method == Method::GET).await
}

fn body_json(body: &[u8]) -> Option<serde_json::Value> {
    serde_json::from_slice(body).ok()
}

async fn mq_products_bulk(
    State(sim): State<Arc<SimMedusa>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    if let Some(r) = gate_mq(&sim, &method, &uri, &headers, &body).await {
        return r;
    }
    let Some(items) = body_json(&body).and_then(|b| b["products"].as_array().cloned()) else {
        return mq_error(
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            "products must be a list",
        );
    };
    let (mut created, mut updated, mut errors) = (0, 0, Vec::new());
    let mut w = sim.world();
    for p in &items {
        let sku = p["sku"].as_str().unwrap_or("").to_string();
        let Some(price) = p["price"].as_i64().filter(|v| *v >= 0) else {
            errors.push(serde_json::json!({"sku": sku, "message": "price must be a non-negative integer in minor units"}));
            continue;
        };
        if sku.is_empty() || p["title"].as_str().unwrap_or("").is_empty() {
            errors.push(serde_json::json!({"sku": sku, "message": "sku and title are required"}));
            continue;
        }
        let currency = p["currency_code"]
            .as_str()
            .unwrap_or(&sim.currency)
            .to_string();
        let seq = w.products.len() + 1;
        let entry = w.products.entry(sku.clone()).or_default();
        if entry.product_id.is_empty() || entry.status == "deleted" {
            created += 1;
        } else {
            updated += 1;
        }
        if entry.product_id.is_empty() {
            entry.product_id = format!("prod_{seq:04}");
            entry.variant_id = format!("variant_{seq:04}");
        }
        entry.sku = sku;
        entry.title = p["title"].as_str().unwrap_or("").to_string();
        entry.metadata = p["metadata"].clone();
        entry.price = money::from_minor(price, &currency);
        entry.currency = currency;
        entry.quantity = p["inventory"]["quantity"]
            .as_i64()
            .unwrap_or(entry.quantity);
        entry.status = "published".into();
        entry.raw = p.clone();
    }
    json(
        StatusCode::OK,
        serde_json::json!({"success": true, "results": {"total": items.len(), "created": created, "updated": updated, "failed": errors.len(), "errors": errors}}),
    )
}

async fn mq_product_delete(
    State(sim): State<Arc<SimMedusa>>,
    Path(sku): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response<Body> {
    if let Some(r) = gate_mq(&sim, &method, &uri, &headers, b"").await {
        return r;
    }
    match sim.world().products.get_mut(&sku) {
        Some(p) if p.status != "deleted" => {
            p.status = "deleted".into();
            json(
                StatusCode::OK,
                serde_json::json!({"success": true, "sku": sku, "deleted": true}),
            )
        }
        _ => mq_error(
            StatusCode::NOT_FOUND,
            "SKU_NOT_FOUND",
            &format!("Product with SKU {sku} not found"),
        ),
    }
}

async fn mq_inventory(
    State(sim): State<Arc<SimMedusa>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    if let Some(r) = gate_mq(&sim, &method, &uri, &headers, &body).await {
        return r;
    }
    let Some(items) = body_json(&body).and_then(|b| b["items"].as_array().cloned()) else {
        return mq_error(
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            "items must be a list",
        );
    };
    let (mut updated, mut missing) = (0, 0);
    let mut w = sim.world();
    for it in &items {
        match w.products.get_mut(it["sku"].as_str().unwrap_or("")) {
            Some(p) => {
                p.quantity = it["quantity"].as_i64().unwrap_or(0).max(0);
                updated += 1;
            }
            None => missing += 1,
        }
    }
    json(
        StatusCode::OK,
        serde_json::json!({"success": true, "results": {"total": items.len(), "updated": updated, "not_found": missing, "errors": []}}),
    )
}

fn offset_limit(uri: &Uri, default_limit: usize) -> (usize, usize, HashMap<String, String>) {
    let q: HashMap<String, String> =
        url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let offset = q.get("offset").and_then(|v| v.parse().ok()).unwrap_or(0);
    let limit = q
        .get("limit")
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_limit);
    (offset, limit, q)
}

async fn mq_orders(
    State(sim): State<Arc<SimMedusa>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response<Body> {
    if let Some(r) = gate_mq(&sim, &method, &uri, &headers, b"").await {
        return r;
    }
    let (offset, limit, q) = offset_limit(&uri, 50);
    let w = sim.world();
    let all: Vec<serde_json::Value> = w
        .orders
        .values()
        .filter(|o| {
            q.get("synced").map(|s| s == "true") != Some(!o.synced) || !q.contains_key("synced")
        })
        .map(|o| o.json.clone())
        .collect();
    let page: Vec<serde_json::Value> = all.iter().skip(offset).take(limit).cloned().collect();
    json(
        StatusCode::OK,
        serde_json::json!({"orders": page, "total": all.len(), "limit": limit, "offset": offset}),
    )
}

async fn mq_order(
    State(sim): State<Arc<SimMedusa>>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response<Body> {
    if let Some(r) = gate_mq(&sim, &method, &uri, &headers, b"").await {
        return r;
    }
    match sim.world().orders.get(&id) {
        Some(o) => json(StatusCode::OK, serde_json::json!({"order": o.json})),
        None => mq_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            &format!("Order {id} not found"),
        ),
    }
}

async fn mq_synced(
    State(sim): State<Arc<SimMedusa>>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    if let Some(r) = gate_mq(&sim, &method, &uri, &headers, &body).await {
        return r;
    }
    let b = body_json(&body).unwrap_or_default();
    match sim.world().orders.get_mut(&id) {
        Some(o) => {
            o.synced = true;
            o.metadata["odoo_order_id"] = b["odoo_order_id"].clone();
            json(StatusCode::OK, serde_json::json!({"success": true}))
        }
        None => mq_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            &format!("Order {id} not found"),
        ),
    }
}

async fn mq_order_status(
    State(sim): State<Arc<SimMedusa>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    if let Some(r) = gate_mq(&sim, &method, &uri, &headers, &body).await {
        return r;
    }
    let Some(b) = body_json(&body) else {
        return mq_error(
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            "malformed JSON",
        );
    };
    const EVENTS: [&str; 6] = [
        "order.confirmed",
        "order.shipped",
        "order.delivered",
        "order.cancelled",
        "order.invoiced",
        "order.paid",
    ];
    if !EVENTS.contains(&b["event_type"].as_str().unwrap_or("")) {
        return mq_error(
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            &format!("unknown event_type {}", b["event_type"]),
        );
    }
    {
        let mut refuse = sim.refuse.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = refuse.iter().position(|e| b["event_type"] == e.as_str()) {
            refuse.remove(i);
            return mq_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
                "try again later",
            );
        }
    }
    let id = b["order"]["medusa_order_id"]
        .as_str()
        .unwrap_or("")
        .to_string();
    match sim.world().orders.get_mut(&id) {
        Some(o) => {
            o.events.push(b.clone());
            json(
                StatusCode::OK,
                serde_json::json!({"success": true, "event_type": b["event_type"], "order": {"medusa_order_id": id}}),
            )
        }
        None => mq_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            &format!("Order {id} not found"),
        ),
    }
}

fn product_json(p: &Product) -> serde_json::Value {
    serde_json::json!({"id": p.product_id, "title": p.title, "status": p.status, "metadata": p.metadata,
                       "variants": [{"id": p.variant_id, "sku": p.sku, "prices": [{"currency_code": p.currency, "amount": p.price.to_string().parse::<f64>().unwrap_or(0.0)}]}]})
}

async fn ad_products_batch(
    State(sim): State<Arc<SimMedusa>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    if let Some(r) = gate_admin(&sim, &method, &uri, &headers, &body).await {
        return r;
    }
    let Some(b) = body_json(&body) else {
        return invalid("Invalid request: malformed JSON");
    };
    let create = b["create"].as_array().cloned().unwrap_or_default();
    let update = b["update"].as_array().cloned().unwrap_or_default();
    let mut w = sim.world();
    // Atomic: validate everything first (fixtures/medusa-v2 [44],[45]).
    for p in &create {
        if p["title"].as_str().unwrap_or("").is_empty() {
            return invalid("Invalid request: Field 'title' is required");
        }
        if p["options"].as_array().is_none_or(|o| o.is_empty()) {
            return invalid(&format!(
                "Product options are not provided for: [{}].",
                p["title"].as_str().unwrap_or("")
            ));
        }
        for v in p["variants"].as_array().cloned().unwrap_or_default() {
            let sku = v["sku"].as_str().unwrap_or("");
            if w.products
                .get(sku)
                .is_some_and(|e| e.status != "deleted" && !e.product_id.is_empty())
            {
                return invalid(&format!("Product variant with sku: {sku}, already exists."));
            }
            if v["prices"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|p| !p["amount"].is_number()))
            {
                return invalid(
                    "Invalid request: Field 'variants, 0, prices, 0, amount' is required",
                );
            }
        }
    }
    for u in &update {
        let id = u["id"].as_str().unwrap_or("");
        if !w.products.values().any(|p| p.product_id == id) {
            return not_found(&format!("Product with id \"{id}\" not found"));
        }
    }
    let mut created = Vec::new();
    for p in &create {
        w.seq += 1;
        let seq = w.seq;
        let v = &p["variants"][0];
        let sku = v["sku"].as_str().unwrap_or("").to_string();
        let price = &v["prices"][0];
        let product = Product {
            sku: sku.clone(),
            title: p["title"].as_str().unwrap_or("").into(),
            metadata: p["metadata"].clone(),
            price: crate::channel::cartona::wire::decimal_of(&price["amount"]).unwrap_or_default(),
            currency: price["currency_code"]
                .as_str()
                .unwrap_or(&sim.currency)
                .into(),
            quantity: 0,
            status: p["status"].as_str().unwrap_or("draft").into(),
            product_id: format!("prod_01SIM{seq:06}"),
            variant_id: format!("variant_01SIM{seq:06}"),
            inventory_item_id: format!("iitem_01SIM{seq:06}"),
            levels: BTreeMap::new(),
            raw: p.clone(),
        };
        created.push(product_json(&product));
        w.products.insert(sku, product);
    }
    let mut updated = Vec::new();
    for u in &update {
        let id = u["id"].as_str().unwrap_or("");
        if let Some(p) = w.products.values_mut().find(|p| p.product_id == id) {
            if let Some(t) = u["title"].as_str() {
                p.title = t.into();
            }
            if let Some(s) = u["status"].as_str() {
                p.status = s.into();
            }
            if u.get("metadata").is_some() {
                p.metadata = u["metadata"].clone();
            }
            if let Some(price) = u["variants"][0]["prices"][0].get("amount") {
                p.price = crate::channel::cartona::wire::decimal_of(price).unwrap_or(p.price);
            }
            p.raw = u.clone();
            updated.push(product_json(p));
        }
    }
    json(
        StatusCode::OK,
        serde_json::json!({"created": created, "updated": updated, "deleted": {"ids": [], "object": "product", "deleted": true}}),
    )
}

/// `GET /admin/products?limit=&offset=` (fields are taken as given: the answer carries the
/// variants, their SKUs and prices, as in the recorded exchange).
async fn ad_products_list(
    State(sim): State<Arc<SimMedusa>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response<Body> {
    if let Some(r) = gate_admin(&sim, &method, &uri, &headers, b"").await {
        return r;
    }
    let limit: usize = q.get("limit").and_then(|v| v.parse().ok()).unwrap_or(50);
    let offset: usize = q.get("offset").and_then(|v| v.parse().ok()).unwrap_or(0);
    let w = sim.world();
    let mut all: Vec<&Product> = w
        .products
        .values()
        .filter(|p| p.status != "deleted" && !p.product_id.is_empty())
        .collect();
    if q.get("order").is_some_and(|o| o == "id") {
        all.sort_by(|a, b| a.product_id.cmp(&b.product_id));
    }
    let page: Vec<serde_json::Value> = all
        .iter()
        .skip(offset)
        .take(limit)
        .map(|p| {
            serde_json::json!({
                "id": p.product_id,
                "title": p.title,
                "status": p.status,
                "metadata": p.metadata,
                "variants": [{
                    "id": p.variant_id,
                    "sku": p.sku,
                    "product_id": p.product_id,
                    "prices": [{
                        "amount": p.price.to_string().parse::<f64>().unwrap_or(0.0),
                        "currency_code": p.currency,
                    }],
                }],
            })
        })
        .collect();
    json(
        StatusCode::OK,
        serde_json::json!({"products": page, "count": all.len(), "offset": offset, "limit": limit}),
    )
}

async fn ad_inventory_items(
    State(sim): State<Arc<SimMedusa>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response<Body> {
    if let Some(r) = gate_admin(&sim, &method, &uri, &headers, b"").await {
        return r;
    }
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let skus: Vec<&String> = query
        .iter()
        .filter(|(k, _)| k == "sku[]" || k == "sku")
        .map(|(_, v)| v)
        .collect();
    // Medusa answers at most `limit` items (20 unless asked), and echoes the limit.
    let limit: usize = query
        .iter()
        .find(|(k, _)| k == "limit")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(20);
    let w = sim.world();
    let matching: Vec<&Product> = w
        .products
        .values()
        .filter(|p| {
            p.status != "deleted" && !p.inventory_item_id.is_empty() && skus.contains(&&p.sku)
        })
        .collect();
    let items: Vec<serde_json::Value> = matching
        .iter()
        .take(limit)
        .map(|p| {
            let levels: Vec<serde_json::Value> = p
                .levels
                .iter()
                .map(|(loc, q)| serde_json::json!({"location_id": loc, "stocked_quantity": q}))
                .collect();
            serde_json::json!({"id": p.inventory_item_id, "sku": p.sku, "location_levels": levels})
        })
        .collect();
    json(
        StatusCode::OK,
        serde_json::json!({"inventory_items": items, "count": matching.len(), "offset": 0, "limit": limit}),
    )
}

async fn ad_levels_batch(
    State(sim): State<Arc<SimMedusa>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    if let Some(r) = gate_admin(&sim, &method, &uri, &headers, &body).await {
        return r;
    }
    let Some(b) = body_json(&body) else {
        return invalid("Invalid request: malformed JSON");
    };
    let mut w = sim.world();
    for (i, l) in b["create"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .chain(b["update"].as_array().cloned().unwrap_or_default().iter())
        .enumerate()
    {
        if l["stocked_quantity"].as_i64().is_none_or(|q| q < 0) {
            return invalid(&format!("Invalid request: Value for field 'create, {i}, stocked_quantity' too small, expected at least: '0'"));
        }
    }
    for (kind, levels) in [("create", &b["create"]), ("update", &b["update"])] {
        for l in levels.as_array().cloned().unwrap_or_default() {
            let item = l["inventory_item_id"].as_str().unwrap_or("");
            let loc = l["location_id"].as_str().unwrap_or("").to_string();
            let Some(p) = w
                .products
                .values_mut()
                .find(|p| p.inventory_item_id == item)
            else {
                return not_found(&format!("You tried to set relationship inventory_item_id: {item}, but such entity does not exist"));
            };
            let exists = p.levels.contains_key(&loc);
            if kind == "create" && exists {
                return invalid(&format!("Inventory level with inventory_item_id: {item}, location_id: {loc}, already exists."));
            }
            if kind == "update" && !exists {
                return not_found(&format!("Item {item} is not stocked at location {loc}"));
            }
            let q = l["stocked_quantity"].as_i64().unwrap_or(0);
            p.levels.insert(loc, q);
            p.quantity = q;
        }
    }
    json(
        StatusCode::OK,
        serde_json::json!({"created": [], "updated": [], "deleted": []}),
    )
}

async fn ad_orders(
    State(sim): State<Arc<SimMedusa>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response<Body> {
    if let Some(r) = gate_admin(&sim, &method, &uri, &headers, b"").await {
        return r;
    }
    let (offset, limit, _) = offset_limit(&uri, 15);
    let w = sim.world();
    let all: Vec<serde_json::Value> = w
        .orders
        .values()
        .map(|o| {
            let mut j = o.json.clone();
            j["metadata"] = o.metadata.clone();
            j
        })
        .collect();
    let page: Vec<serde_json::Value> = all.iter().skip(offset).take(limit).cloned().collect();
    json(
        StatusCode::OK,
        serde_json::json!({"orders": page, "count": all.len(), "offset": offset, "limit": limit}),
    )
}

async fn ad_order(
    State(sim): State<Arc<SimMedusa>>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response<Body> {
    if let Some(r) = gate_admin(&sim, &method, &uri, &headers, b"").await {
        return r;
    }
    let asked = uri.query().unwrap_or("");
    match sim.world().orders.get(&id) {
        Some(o) => {
            let mut j = o.json.clone();
            j["metadata"] = o.metadata.clone();
            j["fulfillment_status"] = serde_json::json!(o.fulfillment_status());
            // As a real Medusa: fulfillments only when the fields ask for them.
            if asked.contains("fulfillments") {
                j["fulfillments"] = o.fulfillments.iter().map(Fulfillment::json).collect();
            }
            json(StatusCode::OK, serde_json::json!({"order": j}))
        }
        None => not_found(&format!("Order id not found: {id}")),
    }
}

fn with_order<F: FnOnce(&mut Order) -> Result<(), Response<Body>>>(
    sim: &SimMedusa,
    id: &str,
    f: F,
) -> Response<Body> {
    let mut w = sim.world();
    let Some(o) = w.orders.get_mut(id) else {
        return not_found(&format!("Order id not found: {id}"));
    };
    if let Err(r) = f(o) {
        return r;
    }
    // A real Medusa answers every order action with the order, and no fulfillments in it
    // (`fixtures/medusa-v2/fulfillment.jsonl` [3]).
    let mut j = o.json.clone();
    j["metadata"] = o.metadata.clone();
    j["fulfillment_status"] = serde_json::json!(o.fulfillment_status());
    json(StatusCode::OK, serde_json::json!({"order": j}))
}

/// [`with_order`] for the action at the end of `uri`'s path, whose answer may be lost.
fn act<F: FnOnce(&mut Order) -> Result<(), Response<Body>>>(
    sim: &SimMedusa,
    uri: &Uri,
    id: &str,
    f: F,
) -> Response<Body> {
    let answer = with_order(sim, id, f);
    let action = uri.path().rsplit('/').next().unwrap_or_default();
    if answer.status() == StatusCode::OK && sim.answer_lost(action) {
        if let Some(r) = super::faults::response_for(&super::faults::Fault::BadGateway) {
            return r;
        }
    }
    answer
}

fn not_allowed(message: &str) -> Response<Body> {
    mq_error(StatusCode::BAD_REQUEST, "not_allowed", message)
}

/// A canceled order takes no action, metadata included (`fulfillment.jsonl` [23], [25]).
fn open(o: &Order) -> Result<(), Response<Body>> {
    if o.canceled {
        let id = o.json["id"].as_str().unwrap_or_default();
        return Err(invalid(&format!("Order with id {id} has been canceled.")));
    }
    Ok(())
}

fn fulfillment<'a>(o: &'a mut Order, fid: &str) -> Result<&'a mut Fulfillment, Response<Body>> {
    o.fulfillments
        .iter_mut()
        .find(|f| f.id == fid)
        .ok_or_else(|| not_found(&format!("Fulfillment with id: {fid} was not found")))
}

async fn ad_order_update(
    State(sim): State<Arc<SimMedusa>>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    if let Some(r) = gate_admin(&sim, &method, &uri, &headers, &body).await {
        return r;
    }
    let b = body_json(&body).unwrap_or_default();
    with_order(&sim, &id, |o| {
        open(o)?;
        if let (Some(m), Some(new)) = (o.metadata.as_object_mut(), b["metadata"].as_object()) {
            for (k, v) in new {
                m.insert(k.clone(), v.clone());
            }
        }
        if o.metadata.get("odoo_order_id").is_some() {
            o.synced = true;
        }
        Ok(())
    })
}

async fn ad_fulfill(
    State(sim): State<Arc<SimMedusa>>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    if let Some(r) = gate_admin(&sim, &method, &uri, &headers, &body).await {
        return r;
    }
    let b = body_json(&body).unwrap_or_default();
    act(&sim, &uri, &id, |o| {
        open(o)?;
        let Some(asked) = b["items"].as_array().filter(|i| !i.is_empty()) else {
            return Err(invalid("Invalid request: Field 'items' is required"));
        };
        let lines = o.lines();
        let mut items = Vec::new();
        for i in asked {
            let (Some(line), Some(q)) = (i["id"].as_str(), i["quantity"].as_i64()) else {
                return Err(invalid("Invalid request: Field 'items, 0, id' is required"));
            };
            let ordered = lines.iter().find(|(l, _)| l == line).map(|(_, q)| *q);
            match ordered {
                // What a real Medusa says when the line has no reservation left for it.
                Some(ordered) if o.fulfilled(line) + q <= ordered => {
                    items.push((line.to_string(), q))
                }
                Some(_) => {
                    return Err(invalid(&format!(
                        "Quantity to fulfill exceeds the reserved quantity for the item: {line}"
                    )))
                }
                None => {
                    return Err(invalid(&format!(
                        "No stock reservation found for item {line}"
                    )))
                }
            }
        }
        let n = o.fulfillments.len() + 1;
        o.fulfillments.push(Fulfillment {
            id: format!("ful_{id}_{n}"),
            items,
            metadata: b["metadata"].clone(),
            ..Default::default()
        });
        Ok(())
    })
}

async fn ad_ship(
    State(sim): State<Arc<SimMedusa>>,
    Path((id, fid)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    if let Some(r) = gate_admin(&sim, &method, &uri, &headers, &body).await {
        return r;
    }
    let b = body_json(&body).unwrap_or_default();
    act(&sim, &uri, &id, |o| {
        let labels = b["labels"].as_array().cloned().unwrap_or_default();
        if labels.iter().any(|l| {
            ["tracking_number", "tracking_url", "label_url"]
                .iter()
                .any(|k| !l[k].is_string())
        }) {
            return Err(invalid(
                "Invalid request: Field 'labels, 0, tracking_url' is required",
            ));
        }
        open(o)?;
        let f = fulfillment(o, &fid)?;
        if f.shipped_at.is_some() {
            return Err(not_allowed("Shipment has already been created"));
        }
        f.labels = labels;
        f.shipped_at = Some(chrono::Utc::now().to_rfc3339());
        Ok(())
    })
}

async fn ad_delivered(
    State(sim): State<Arc<SimMedusa>>,
    Path((id, fid)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    if let Some(r) = gate_admin(&sim, &method, &uri, &headers, &body).await {
        return r;
    }
    act(&sim, &uri, &id, |o| {
        open(o)?;
        let f = fulfillment(o, &fid)?;
        if f.delivered_at.is_some() {
            return Err(not_allowed("Fulfillment has already been marked delivered"));
        }
        // Delivered without a shipment is taken, and leaves `shipped_at` empty
        // (`fulfillment-edges.jsonl` [8]).
        f.delivered_at = Some(chrono::Utc::now().to_rfc3339());
        Ok(())
    })
}

async fn ad_cancel(
    State(sim): State<Arc<SimMedusa>>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    if let Some(r) = gate_admin(&sim, &method, &uri, &headers, &body).await {
        return r;
    }
    act(&sim, &uri, &id, |o| {
        open(o)?;
        if o.status() == "completed" {
            return Err(not_allowed("Cannot cancel a completed order. Please use the return process to handle refunds or exchanges."));
        }
        if o.fulfillments.iter().any(Fulfillment::live) {
            return Err(not_allowed(
                "All fulfillments must be canceled before canceling an order",
            ));
        }
        o.canceled = true;
        o.json["status"] = serde_json::json!("canceled");
        Ok(())
    })
}

async fn ad_fulfillment_cancel(
    State(sim): State<Arc<SimMedusa>>,
    Path((id, fid)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    if let Some(r) = gate_admin(&sim, &method, &uri, &headers, &body).await {
        return r;
    }
    act(&sim, &uri, &id, |o| {
        open(o)?;
        let f = fulfillment(o, &fid)?;
        if f.shipped_at.is_some() || f.delivered_at.is_some() {
            return Err(not_allowed(
                "The fulfillment has already been shipped. Shipped fulfillments cannot be canceled",
            ));
        }
        if f.canceled_at.is_none() {
            f.canceled_at = Some(chrono::Utc::now().to_rfc3339());
        }
        Ok(())
    })
}

/// Completes the order, whatever its fulfillments (a real Medusa does: `fulfillment-edges.jsonl`
/// [17]), again and again.
async fn ad_complete(
    State(sim): State<Arc<SimMedusa>>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    if let Some(r) = gate_admin(&sim, &method, &uri, &headers, &body).await {
        return r;
    }
    act(&sim, &uri, &id, |o| {
        open(o)?;
        o.json["status"] = serde_json::json!("completed");
        Ok(())
    })
}

/// `marketsync sim medusa` options.
#[derive(Debug, Clone, clap::Args)]
pub struct SimArgs {
    /// Port on 127.0.0.1 to listen on.
    #[arg(long, default_value_t = 9000)]
    pub port: u16,
    /// `marqasouq` or `admin-api`: how generated orders carry prices.
    #[arg(long, default_value = "marqasouq", value_parser = parse_flavour)]
    pub flavour: MedusaFlavour,
    /// MarqaSouq's x-odoo-api-key, and the Admin API secret key.
    #[arg(long, default_value = "sk_sim_medusa_key")]
    pub key: String,
    /// The store's currency (ISO 4217): its exponent sets MarqaSouq's minor units.
    #[arg(long, default_value = "kwd")]
    pub currency: String,
}

fn parse_flavour(s: &str) -> Result<MedusaFlavour, crate::config::BadValue> {
    match s {
        "marqasouq" => Ok(MedusaFlavour::Marqasouq),
        "admin-api" => Ok(MedusaFlavour::AdminApi),
        other => Err(crate::config::BadValue(format!(
            "unknown flavour {other:?}; use marqasouq or admin-api"
        ))),
    }
}

pub async fn serve_cli(args: SimArgs) -> anyhow::Result<()> {
    let h = start(args.port, args.flavour, &args.key, &args.currency).await?;
    println!(
        "Medusa simulator listening on {} ({:?} prices, currency {})",
        h.base_url(),
        args.flavour,
        args.currency
    );
    println!("  x-odoo-api-key / secret key {:?}", args.key);
    tokio::signal::ctrl_c().await?;
    Ok(())
}
