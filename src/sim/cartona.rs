//! `marketsync sim cartona`: Cartona's supplier-integrations API on loopback, with the payload
//! shapes of ../API-NOTES (bare JSON arrays, `hashed_id` digit strings, `AuthorizationToken`),
//! the order lifecycle (pending -> editing/approved -> assigned_to_salesman -> delivered,
//! cancellations, `synced` hiding an order from pulls until Cartona changes it again), the OTP
//! rule for installment and wallet-top-up orders, 400s with a text body for invalid input,
//! fault injection, and a record of every request for tests to assert on.

use crate::sim::faults::{self, Faults};
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, Response, StatusCode, Uri};
use axum::routing::{get, post};
use axum::Router;
use rust_decimal::Decimal;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio_util::sync::CancellationToken;

pub use super::Recorded;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Product {
    pub id: String,
    pub internal_product_id: Option<String>,
    pub barcode: Option<String>,
    pub product_name: String,
    pub selling_price: String,
    pub available_stock_quantity: i64,
    pub in_stock: bool,
    pub is_published: bool,
    pub min_order: Option<u32>,
    pub max_order: Option<u32>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Order {
    /// The order as pull-orders returns it (status kept in sync).
    pub json: serde_json::Value,
    pub synced: bool,
    /// The OTP the retailer holds, for installment and wallet-top-up orders.
    pub otp: Option<String>,
    /// Every status the order went through.
    pub history: Vec<String>,
    pub created_seq: u64,
}

impl Order {
    pub fn status(&self) -> &str {
        self.json["status"].as_str().unwrap_or("")
    }

    fn needs_otp(&self) -> bool {
        ["installment_cost", "wallet_top_up"]
            .iter()
            .any(|k| self.json[k].as_f64().unwrap_or(0.0) > 0.0)
    }

    fn set_status(&mut self, status: &str) {
        self.json["status"] = serde_json::Value::String(status.into());
        self.history.push(status.into());
    }
}

#[derive(Default, serde::Serialize, serde::Deserialize)]
struct World {
    products: BTreeMap<String, Product>,
    orders: BTreeMap<String, Order>,
    seq: u64,
    line_seq: u64,
}

pub struct SimCartona {
    world: Mutex<World>,
    pub faults: Faults,
    token: String,
    /// Every request received.
    pub requests: super::Recorder,
    /// Products received in bulk updates that got past the gate (auth, injected faults).
    bulk_items: std::sync::atomic::AtomicU64,
}

/// How a generated order is paid (decides whether delivery needs the retailer's OTP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payment {
    Cash,
    Installment,
    WalletTopUp,
}

const RETAILERS: &[(&str, &str, &str)] = &[
    ("حياه ماركت", "A00315", "+201066313459"),
    ("سوبر ماركت الأمل", "A00420", "+201001234567"),
    ("بقالة النور", "B10007", "+201112223334"),
    ("ماركت السلام", "C20011", "+201225556667"),
];

impl SimCartona {
    /// The whole marketplace (products, orders and their histories) as JSON, to be loaded by
    /// [`SimCartona::load_snapshot`] (fixtures of a state that must meet its world again).
    pub fn snapshot(&self) -> serde_json::Value {
        serde_json::to_value(&*self.world()).expect("the world serializes")
    }

    /// Replaces the marketplace with a [`SimCartona::snapshot`].
    pub fn load_snapshot(&self, snapshot: &serde_json::Value) -> Result<(), crate::error::Error> {
        *self.world() = serde_json::from_value(snapshot.clone()).map_err(|e| {
            crate::error::Error::invalid(format!("not a Cartona simulator snapshot: {e}"))
        })?;
        Ok(())
    }

    fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Cartona's staff change a product (its price, its publication...) behind marketsync's
    /// back.
    pub fn cartona_edits(&self, id: &str, edit: impl FnOnce(&mut Product)) {
        if let Some(p) = self.world().products.get_mut(id) {
            edit(p);
        }
    }

    /// Cartona's staff remove a product from the supplier's list.
    pub fn remove_product(&self, id: &str) {
        self.world().products.remove(id);
    }

    pub fn add_product(
        &self,
        id: &str,
        internal_product_id: Option<&str>,
        barcode: Option<&str>,
        name: &str,
    ) {
        self.world().products.insert(
            id.to_string(),
            Product {
                id: id.into(),
                internal_product_id: internal_product_id.map(str::to_string),
                barcode: barcode.map(str::to_string),
                product_name: name.into(),
                selling_price: "0.00".into(),
                available_stock_quantity: 0,
                in_stock: false,
                is_published: true,
                min_order: None,
                max_order: None,
            },
        );
    }

    pub fn product(&self, id: &str) -> Option<Product> {
        self.world().products.get(id).cloned()
    }

    pub fn products(&self) -> Vec<Product> {
        self.world().products.values().cloned().collect()
    }

    /// Adds an order as given (e.g. a fixture); it shows in pulls until acknowledged.
    pub fn add_order(&self, json: serde_json::Value) -> String {
        let mut w = self.world();
        w.seq += 1;
        let id = json["hashed_id"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| json["hashed_id"].to_string());
        let status = json["status"].as_str().unwrap_or("pending").to_string();
        let otp = Some("4321".to_string());
        let seq = w.seq;
        w.orders.insert(
            id.clone(),
            Order {
                json,
                synced: false,
                otp,
                history: vec![status],
                created_seq: seq,
            },
        );
        id
    }

    /// Places a new pending order for `lines` of (supplier_product_id, amount, price).
    pub fn place_order(
        &self,
        retailer: usize,
        lines: &[(&str, i64, Decimal)],
        payment: Payment,
        delivered_by_cartona: bool,
    ) -> String {
        let hashed_id;
        let json;
        {
            let mut w = self.world();
            w.seq += 1;
            hashed_id = format!("{}", 632_717_520_571u64 + w.seq * 7_919);
            let (name, code, phone) = RETAILERS[retailer % RETAILERS.len()];
            let mut details = Vec::new();
            let mut total = Decimal::ZERO;
            for (sp, amount, price) in lines {
                w.line_seq += 1;
                let p = w.products.get(*sp);
                total += price * Decimal::from(*amount);
                details.push(serde_json::json!({
                    "id": 11_973_734 + w.line_seq,
                    "supplier_product_id": sp,
                    "internal_product_id": p.and_then(|p| p.internal_product_id.clone()),
                    "base_product_id": null,
                    "unit": "piece",
                    "unit_count": 1,
                    "product_name": p.map(|p| p.product_name.clone()).unwrap_or_default(),
                    "amount": amount,
                    "selling_price": price.to_string().parse::<f64>().unwrap_or(0.0),
                    "applied_supplier_discount": 0,
                    "applied_cartona_discount": 0,
                    "comment": null,
                }));
            }
            let total_f = total.to_string().parse::<f64>().unwrap_or(0.0);
            let (installment, wallet) = match payment {
                Payment::Cash => (0.0, 0.0),
                Payment::Installment => (total_f, 0.0),
                Payment::WalletTopUp => (0.0, 100.0),
            };
            json = serde_json::json!({
                "hashed_id": hashed_id,
                "receipt_id": format!("R-{}", w.seq),
                "supplier_code": "1",
                "status": "pending",
                "edited_by_admin": false,
                "delivery_day": null,
                "estimated_delivery_day": null,
                "delivered_by": if delivered_by_cartona { "delivered_by_cartona" } else { "delivered_by_supplier" },
                "cancellation_reason": "",
                "return_reason": null,
                "total_price": total_f,
                "cartona_credit": 0,
                "installment_cost": installment,
                "wallet_top_up": wallet,
                "retailer": {"retailer_name": name, "retailer_code": code, "retailer_number": phone, "retailer_number2": null,
                             "retailer_address": "شارع 10، المعادي، القاهرة", "address_notes": "بجوار المسجد"},
                "note_message": null,
                "created_at": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string(),
                "order_details": details,
            });
        }
        self.add_order(json);
        hashed_id
    }

    pub fn order(&self, hashed_id: &str) -> Option<Order> {
        self.world().orders.get(hashed_id).cloned()
    }

    pub fn orders(&self) -> Vec<Order> {
        self.world().orders.values().cloned().collect()
    }

    /// A change on Cartona's side (the retailer edits or cancels, Cartona delivers): the order
    /// shows in pulls again.
    pub fn cartona_sets_status(&self, hashed_id: &str, status: &str) {
        if let Some(o) = self.world().orders.get_mut(hashed_id) {
            o.set_status(status);
            o.synced = false;
        }
    }

    /// The retailer changes a line's amount (the order goes through `editing` and back).
    pub fn retailer_edits_line(&self, hashed_id: &str, line: usize, amount: i64) {
        if let Some(o) = self.world().orders.get_mut(hashed_id) {
            o.json["order_details"][line]["amount"] = serde_json::json!(amount);
            let total: f64 = o.json["order_details"]
                .as_array()
                .map(|ls| {
                    ls.iter()
                        .map(|l| {
                            l["amount"].as_f64().unwrap_or(0.0)
                                * l["selling_price"].as_f64().unwrap_or(0.0)
                        })
                        .sum()
                })
                .unwrap_or(0.0);
            o.json["total_price"] = serde_json::json!(total);
            o.synced = false;
        }
    }
}

pub struct CartonaHandle {
    pub addr: SocketAddr,
    pub sim: Arc<SimCartona>,
    stop: CancellationToken,
}

impl CartonaHandle {
    /// The API base URL to configure (`channels.cartona.base_url`).
    pub fn base_url(&self) -> String {
        format!("http://{}/api/v1/", self.addr)
    }
}

impl Drop for CartonaHandle {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

pub async fn start(port: u16, token: &str) -> std::io::Result<CartonaHandle> {
    let sim = Arc::new(SimCartona {
        world: Mutex::default(),
        faults: Faults::default(),
        token: token.into(),
        requests: Default::default(),
        bulk_items: Default::default(),
    });
    let app = Router::new()
        .route("/api/v1/supplier-product", get(list_products))
        .route("/api/v1/supplier-product/bulk-update", post(bulk_update))
        .route(
            "/api/v1/supplier-product/base-product/bulk-update-stock",
            post(ok_empty),
        )
        .route("/api/v1/order/pull-orders", get(pull_orders))
        .route("/api/v1/order/update-order-status", post(bulk_status))
        .route(
            "/api/v1/order/update-order-status/{hashed_id}",
            post(single_status),
        )
        .route("/api/v1/order/update-order-details", post(update_details))
        .route("/_sim/stats", get(sim_stats))
        .route("/_sim/orders", post(sim_place_orders))
        .with_state(sim.clone());
    let (addr, stop) = super::serve(port, app).await?;
    Ok(CartonaHandle { addr, sim, stop })
}

/// `marketsync sim cartona` options.
#[derive(Debug, Clone, clap::Args)]
pub struct SimArgs {
    /// Port on 127.0.0.1 to listen on.
    #[arg(long, default_value_t = 8070)]
    pub port: u16,
    /// The token clients must send as `AuthorizationToken`.
    #[arg(long, default_value = "cartona-sim-token")]
    pub token: String,
    /// Supplier products to create, with internal_product_id 1..N (the Odoo simulator's ids).
    #[arg(long, default_value_t = 200)]
    pub products: usize,
    /// Place a new order this often (0 = never), e.g. "20s".
    #[arg(long, default_value = "0", value_parser = crate::config::parse_duration)]
    pub order_every: std::time::Duration,
}

pub async fn serve_cli(args: SimArgs) -> anyhow::Result<()> {
    let h = start(args.port, &args.token).await?;
    for n in 1..=args.products {
        h.sim.add_product(
            &(100_000 + n).to_string(),
            Some(&n.to_string()),
            None,
            &format!("Product {n}"),
        );
    }
    println!("Cartona simulator listening on {}", h.base_url());
    println!(
        "  AuthorizationToken {:?}; {} supplier products (internal_product_id 1..{})",
        args.token, args.products, args.products
    );
    if !args.order_every.is_zero() {
        let sim = h.sim.clone();
        let every = args.order_every;
        tokio::spawn(async move { trickle(sim, every, None).await });
    }
    tokio::signal::ctrl_c().await?;
    Ok(())
}

/// Places an order every `every`: 1 to 4 lines of known products, cash mostly, some installment
/// (needing the OTP), some delivered by Cartona. Stops when `stop` fires.
pub async fn trickle(
    sim: Arc<SimCartona>,
    every: std::time::Duration,
    stop: Option<CancellationToken>,
) {
    let mut n = 0usize;
    loop {
        let sleep = tokio::time::sleep(every);
        match &stop {
            Some(s) => tokio::select! { _ = s.cancelled() => return, _ = sleep => {} },
            None => sleep.await,
        }
        n += 1;
        let products = sim.products();
        if products.is_empty() {
            continue;
        }
        let lines: Vec<(String, i64, Decimal)> = (0..1 + n % 4)
            .map(|i| {
                let p = &products[(n * 7 + i * 13) % products.len()];
                let price: Decimal = p.selling_price.parse().unwrap_or(Decimal::ONE);
                (
                    p.id.clone(),
                    1 + ((n + i) % 6) as i64,
                    if price.is_zero() {
                        Decimal::new(1000, 2)
                    } else {
                        price
                    },
                )
            })
            .collect();
        let refs: Vec<(&str, i64, Decimal)> =
            lines.iter().map(|(a, b, c)| (a.as_str(), *b, *c)).collect();
        let payment = if n % 4 == 0 {
            Payment::Installment
        } else {
            Payment::Cash
        };
        sim.place_order(n, &refs, payment, n % 5 == 0);
    }
}

// -------------------------------------------------------------------------------------------
// HTTP
// -------------------------------------------------------------------------------------------

fn text(status: StatusCode, body: impl Into<String>) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("Content-Type", "text/plain; charset=utf-8")
        .body(Body::from(body.into()))
        .expect("valid response")
}

fn json(status: StatusCode, body: serde_json::Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("Content-Type", "application/json")
        .body(Body::from(body.to_string()))
        .expect("valid response")
}

/// Records the request, checks the token, acts out faults.
async fn gate(
    sim: &SimCartona,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Option<Response<Body>> {
    sim.requests.record(method, uri, "/api/v1/", body);
    if headers
        .get("AuthorizationToken")
        .and_then(|v| v.to_str().ok())
        != Some(sim.token.as_str())
    {
        return Some(json(
            StatusCode::UNAUTHORIZED,
            serde_json::json!({"error": "Unauthorized", "details": "Invalid or missing AuthorizationToken"}),
        ));
    }
    faults::act_for(&sim.faults, method == Method::GET).await
}

fn page_of<T: Clone>(items: &[T], q: &HashMap<String, String>, default_per_page: usize) -> Vec<T> {
    let page: usize = q
        .get("page")
        .and_then(|v| v.parse().ok())
        .filter(|p| *p >= 1)
        .unwrap_or(1);
    let per_page: usize = q
        .get("per_page")
        .or_else(|| q.get("limit"))
        .and_then(|v| v.parse().ok())
        .filter(|p| *p >= 1)
        .unwrap_or(default_per_page);
    items
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .cloned()
        .collect()
}

async fn list_products(
    State(sim): State<Arc<SimCartona>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response<Body> {
    if let Some(r) = gate(&sim, &method, &uri, &headers, b"").await {
        return r;
    }
    let w = sim.world();
    // References first, so a page of a large catalog clones only its own rows.
    let all: Vec<&Product> = w
        .products
        .values()
        .filter(|p| {
            q.get("internal_product_id")
                .is_none_or(|v| p.internal_product_id.as_ref() == Some(v))
        })
        .filter(|p| q.get("supplier_product_id").is_none_or(|v| &p.id == v))
        .collect();
    let page = serde_json::to_value(page_of(&all, &q, 20)).unwrap_or_default();
    drop(w);
    json(StatusCode::OK, page)
}

fn decimal(v: &serde_json::Value) -> Option<Decimal> {
    crate::channel::cartona::wire::decimal_of(v)
}

async fn bulk_update(
    State(sim): State<Arc<SimCartona>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    if let Some(r) = gate(&sim, &method, &uri, &headers, &body).await {
        return r;
    }
    let Ok(serde_json::Value::Array(items)) = serde_json::from_slice::<serde_json::Value>(&body)
    else {
        return text(
            StatusCode::BAD_REQUEST,
            "The request body must be a JSON list of products",
        );
    };
    sim.bulk_items
        .fetch_add(items.len() as u64, std::sync::atomic::Ordering::Relaxed);
    let mut w = sim.world();
    // Validate everything first: a refused request changes nothing.
    let mut targets = Vec::new();
    for item in &items {
        let by_sp = item["supplier_product_id"]
            .as_str()
            .map(str::to_string)
            .or_else(|| item["supplier_product_id"].as_i64().map(|n| n.to_string()));
        let by_internal = item["internal_product_id"].as_str().map(str::to_string);
        let id = match (&by_sp, &by_internal) {
            (Some(sp), _) => w.products.contains_key(sp).then(|| sp.clone()),
            (None, Some(ip)) => w
                .products
                .values()
                .find(|p| p.internal_product_id.as_ref() == Some(ip))
                .map(|p| p.id.clone()),
            (None, None) => {
                return text(
                    StatusCode::BAD_REQUEST,
                    "Each product needs supplier_product_id or internal_product_id",
                )
            }
        };
        let Some(id) = id else {
            return text(
                StatusCode::BAD_REQUEST,
                format!(
                    "Product not found: {}",
                    by_sp.or(by_internal).unwrap_or_default()
                ),
            );
        };
        if let Some(price) = item.get("selling_price") {
            if decimal(price).is_none_or(|d| d < Decimal::ZERO) {
                return text(
                    StatusCode::BAD_REQUEST,
                    format!("Invalid selling_price {price} for supplier_product_id {id}"),
                );
            }
        }
        if let Some(qty) = item.get("available_stock_quantity") {
            if qty.as_i64().is_none_or(|q| q < 0) {
                return text(
                    StatusCode::BAD_REQUEST,
                    format!("Invalid available_stock_quantity {qty} for supplier_product_id {id}"),
                );
            }
        }
        targets.push((id, item));
    }
    for (id, item) in &targets {
        let p = w.products.get_mut(id).expect("validated");
        if let Some(d) = item.get("selling_price").and_then(decimal) {
            p.selling_price = format!("{:.2}", d);
        }
        if let Some(q) = item["available_stock_quantity"].as_i64() {
            p.available_stock_quantity = q;
        }
        if let Some(b) = item["in_stock"].as_bool() {
            p.in_stock = b;
        }
        if let Some(b) = item["is_published"].as_bool() {
            p.is_published = b;
        }
        p.min_order = item["min_order"].as_u64().map(|v| v as u32).or(p.min_order);
        p.max_order = item["max_order"].as_u64().map(|v| v as u32).or(p.max_order);
    }
    json(
        StatusCode::OK,
        serde_json::json!({"message": "Products updated successfully", "updated": targets.len()}),
    )
}

async fn ok_empty(
    State(sim): State<Arc<SimCartona>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    if let Some(r) = gate(&sim, &method, &uri, &headers, &body).await {
        return r;
    }
    json(StatusCode::OK, serde_json::json!({}))
}

async fn pull_orders(
    State(sim): State<Arc<SimCartona>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response<Body> {
    if let Some(r) = gate(&sim, &method, &uri, &headers, b"").await {
        return r;
    }
    let w = sim.world();
    let mut open: Vec<&Order> = w.orders.values().filter(|o| !o.synced).collect();
    open.sort_by_key(|o| o.created_seq);
    let rows: Vec<serde_json::Value> = open.into_iter().map(|o| o.json.clone()).collect();
    json(
        StatusCode::OK,
        serde_json::Value::Array(page_of(&rows, &q, 100)),
    )
}

/// Loopback control for `marketsync bench` (the simulator runs in its own process): counters.
async fn sim_stats(State(sim): State<Arc<SimCartona>>) -> Response<Body> {
    // Counted in place: the bench polls this every 20 ms while the daemon works, and a copy of
    // every recorded body would steal the cores being measured.
    let (requests, bulk_requests) = sim.requests.with(|all| {
        let bulk = all
            .iter()
            .filter(|r| r.path == "supplier-product/bulk-update")
            .count();
        (all.len(), bulk)
    });
    let bulk_items = sim.bulk_items.load(std::sync::atomic::Ordering::Relaxed);
    let w = sim.world();
    json(
        StatusCode::OK,
        serde_json::json!({
            "requests": requests,
            "bulk_requests": bulk_requests,
            "bulk_items": bulk_items,
            "priced": w.products.values().filter(|p| p.selling_price != "0.00").count(),
            "orders": w.orders.len(),
            "synced": w.orders.values().filter(|o| o.synced).count(),
        }),
    )
}

/// Loopback control for `marketsync bench`: places `count` orders of `lines` lines each.
async fn sim_place_orders(State(sim): State<Arc<SimCartona>>, body: Bytes) -> Response<Body> {
    let b: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let count = b["count"].as_u64().unwrap_or(1) as usize;
    let lines = b["lines"].as_u64().unwrap_or(1) as usize;
    let ids: Vec<String> = sim.world().products.keys().cloned().collect();
    for n in 0..count {
        let picked: Vec<(String, i64, Decimal)> = (0..lines)
            .map(|i| {
                (
                    ids[(n * 31 + i * 7) % ids.len()].clone(),
                    1 + (i % 3) as i64,
                    Decimal::new(1_000, 2),
                )
            })
            .collect();
        let refs: Vec<(&str, i64, Decimal)> = picked
            .iter()
            .map(|(a, b, c)| (a.as_str(), *b, *c))
            .collect();
        sim.place_order(n, &refs, Payment::Cash, false);
    }
    json(StatusCode::OK, serde_json::json!({"placed": count}))
}

/// What the supplier may set, from which statuses.
fn supplier_may(from: &str, to: &str) -> bool {
    match to {
        "approved" => from == "pending",
        "assigned_to_salesman" => from == "approved",
        "delivered" => matches!(from, "approved" | "assigned_to_salesman"),
        "cancelled_by_supplier" => matches!(from, "pending" | "approved" | "assigned_to_salesman"),
        "returned" => from == "assigned_to_salesman",
        "pending" => from == "editing",
        _ => false,
    }
}

/// Applies one status update; the error is what the single endpoint answers.
fn apply_status(o: &mut Order, u: &serde_json::Value) -> Result<(), (StatusCode, String)> {
    let to = u["status"].as_str().unwrap_or("");
    if to == "synced" {
        o.synced = true;
        return Ok(());
    }
    let from = o.status().to_string();
    if !supplier_may(&from, to) {
        return Err((
            StatusCode::BAD_REQUEST,
            format!("Cannot change order status from {from} to {to}"),
        ));
    }
    if to != "cancelled_by_supplier" && o.json["delivered_by"] == "delivered_by_cartona" {
        return Err((
            StatusCode::BAD_REQUEST,
            format!("Order is delivered by Cartona; the supplier cannot set {to}"),
        ));
    }
    if to == "cancelled_by_supplier" {
        let reason = u["cancellation_reason"].as_str().unwrap_or("");
        if !crate::config::CARTONA_CANCELLATION_REASONS.contains(&reason) {
            return Err((
                StatusCode::BAD_REQUEST,
                format!("Invalid cancellation_reason {reason:?}"),
            ));
        }
        o.json["cancellation_reason"] = serde_json::json!(reason);
    }
    if to == "delivered" && o.needs_otp() {
        match u["retailer_otp"].as_str() {
            None | Some("") => {
                return Err((
                    StatusCode::BAD_REQUEST,
                    "retailer_otp is required for installment and wallet top-up orders".into(),
                ))
            }
            Some(otp) if Some(otp) != o.otp.as_deref() => {
                return Err((StatusCode::BAD_REQUEST, "Invalid retailer_otp".into()))
            }
            _ => {}
        }
    }
    o.set_status(to);
    Ok(())
}

async fn bulk_status(
    State(sim): State<Arc<SimCartona>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    if let Some(r) = gate(&sim, &method, &uri, &headers, &body).await {
        return r;
    }
    let Ok(serde_json::Value::Array(items)) = serde_json::from_slice::<serde_json::Value>(&body)
    else {
        return text(
            StatusCode::BAD_REQUEST,
            "The request body must be a JSON list of status updates",
        );
    };
    let mut w = sim.world();
    for u in &items {
        let id = u["hashed_id"].as_str().unwrap_or("");
        // The bulk endpoint does not report per-order failures (API doc): refused ones are dropped.
        if let Some(o) = w.orders.get_mut(id) {
            let _ = apply_status(o, u);
        }
    }
    json(StatusCode::OK, serde_json::json!({}))
}

async fn single_status(
    State(sim): State<Arc<SimCartona>>,
    Path(hashed_id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    if let Some(r) = gate(&sim, &method, &uri, &headers, &body).await {
        return r;
    }
    let Ok(u) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return text(
            StatusCode::BAD_REQUEST,
            "The request body must be a JSON object",
        );
    };
    let mut w = sim.world();
    let Some(o) = w.orders.get_mut(&hashed_id) else {
        return json(
            StatusCode::NOT_FOUND,
            serde_json::json!({"error": "Order not found", "details": format!("No order exists with hashed_id: {hashed_id}")}),
        );
    };
    match apply_status(o, &u) {
        Ok(()) => json(
            StatusCode::OK,
            serde_json::json!({"message": "Order status updated", "order_id": hashed_id, "new_status": o.status()}),
        ),
        Err((status, message)) => text(status, message),
    }
}

async fn update_details(
    State(sim): State<Arc<SimCartona>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    if let Some(r) = gate(&sim, &method, &uri, &headers, &body).await {
        return r;
    }
    let Ok(serde_json::Value::Array(items)) = serde_json::from_slice::<serde_json::Value>(&body)
    else {
        return text(
            StatusCode::BAD_REQUEST,
            "The request body must be a JSON list",
        );
    };
    let mut w = sim.world();
    for item in &items {
        let id = item["hashed_id"].as_str().unwrap_or("");
        let Some(o) = w.orders.get_mut(id) else {
            return text(StatusCode::BAD_REQUEST, format!("Order not found: {id}"));
        };
        if !matches!(o.status(), "pending" | "approved" | "assigned_to_salesman") {
            return text(
                StatusCode::BAD_REQUEST,
                format!("Order {id} cannot be edited in status {}", o.status()),
            );
        }
        for edit in item["order_details"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            let lines = o.json["order_details"]
                .as_array_mut()
                .expect("orders have lines");
            // A line id may come as a number or as a digit string.
            let same = |a: &serde_json::Value, b: &serde_json::Value| {
                a.to_string().trim_matches('"') == b.to_string().trim_matches('"')
            };
            match edit.get("id").filter(|v| !v.is_null()) {
                Some(line_id) => {
                    if let Some(pos) = lines.iter().position(|l| same(&l["id"], line_id)) {
                        if edit["cancelled"].as_bool() == Some(true) {
                            lines.remove(pos);
                        } else if let Some(a) = edit.get("amount") {
                            lines[pos]["amount"] = a.clone();
                        }
                    }
                }
                None => lines.push(edit.clone()),
            }
        }
    }
    json(StatusCode::OK, serde_json::json!({}))
}
