//! A Meta Commerce catalog, as the Graph API shows it (API-NOTES §3): `items_batch` whose
//! handles go from `started` to `finished` over time (the items change only then), items it
//! refuses (no price, an http image, a price in another currency), usage headers on every
//! answer that grow with the calls and error 80014 at 100 %, a token that expires (190), a
//! body or batch too big (code 1), and the catalog read back by cursor. Every path takes a
//! Graph version first (`/v26.0/…`).

use super::Recorder;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Meta's limits: requests per `items_batch` call and body bytes.
pub const MAX_REQUESTS: usize = 5000;
pub const MAX_BODY: usize = 28 << 20;

/// A batch Meta is working on.
#[derive(Debug, Clone)]
struct Batch {
    at: Instant,
    /// The requests it will apply.
    requests: Vec<Value>,
    errors: Vec<Value>,
    warnings: Vec<Value>,
    applied: bool,
}

#[derive(Default)]
struct World {
    /// Items by retailer id: their fields, and their Graph id.
    items: BTreeMap<String, (u64, Value)>,
    batches: HashMap<String, Batch>,
    next_id: u64,
    /// Calls in this usage window, and how many it allows (0: no limit).
    calls: u64,
    limit: u64,
    /// Minutes to regain access, as the header says once the limit is reached.
    regain_minutes: u64,
    /// At most this many requests a call before code 1 (default [`MAX_REQUESTS`]).
    max_requests: usize,
    /// Requests carried by the `items_batch` calls taken.
    batch_requests: usize,
    /// Items refused whenever they come, with the message (a rule of the catalog's).
    refuse: HashMap<String, String>,
}

pub struct SimMeta {
    pub catalog_id: String,
    pub name: String,
    currency: String,
    token: Mutex<String>,
    expired: Mutex<bool>,
    /// How long a batch takes to finish.
    finish_after: Mutex<Duration>,
    world: Mutex<World>,
    pub requests: Recorder,
}

pub struct MetaHandle {
    pub addr: SocketAddr,
    pub sim: Arc<SimMeta>,
    stop: CancellationToken,
}

impl MetaHandle {
    /// The `base_url` for `[channels.meta]` (Graph version included).
    pub fn base_url(&self) -> String {
        format!("http://{}/v26.0/", self.addr)
    }
}

impl Drop for MetaHandle {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Starts a catalog `catalog_id` in `currency` that takes `token`.
pub async fn start(
    port: u16,
    catalog_id: &str,
    token: &str,
    currency: &str,
) -> std::io::Result<MetaHandle> {
    let sim = Arc::new(SimMeta {
        catalog_id: catalog_id.into(),
        name: "Supplier catalog".into(),
        currency: currency.to_ascii_uppercase(),
        token: Mutex::new(token.into()),
        expired: Mutex::new(false),
        finish_after: Mutex::new(Duration::from_millis(300)),
        world: Mutex::new(World {
            max_requests: MAX_REQUESTS,
            regain_minutes: 19,
            ..Default::default()
        }),
        requests: Recorder::default(),
    });
    let s = sim.clone();
    let app = Router::new()
        .fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let s = s.clone();
                async move { s.answer(method, uri, headers, body) }
            },
        )
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY * 2));
    let (addr, stop) = super::serve(port, app).await?;
    Ok(MetaHandle { addr, sim, stop })
}

fn graph_error(status: StatusCode, code: i64, message: &str) -> (StatusCode, Value) {
    (
        status,
        json!({"error": {"message": message, "type": "OAuthException", "code": code,
                          "fbtrace_id": "AsimFbTrace01"}}),
    )
}

impl SimMeta {
    fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The token expires: every call is refused with code 190 until [`SimMeta::renew_token`].
    pub fn expire_token(&self) {
        *self.expired.lock().unwrap_or_else(|e| e.into_inner()) = true;
    }

    /// A new token is the one taken (and the old one no longer).
    pub fn renew_token(&self, token: &str) {
        *self.token.lock().unwrap_or_else(|e| e.into_inner()) = token.into();
        *self.expired.lock().unwrap_or_else(|e| e.into_inner()) = false;
    }

    /// The usage window allows `limit` calls (0: any number), `used` of them made; once
    /// spent, calls are refused with 80014 and `regain_minutes` in the header.
    pub fn set_usage(&self, used: u64, limit: u64, regain_minutes: u64) {
        let mut w = self.world();
        (w.calls, w.limit, w.regain_minutes) = (used, limit, regain_minutes);
    }

    /// The window is over: calls are taken again.
    pub fn regain(&self) {
        self.world().calls = 0;
    }

    /// Batches take this long to finish.
    pub fn set_finish_after(&self, d: Duration) {
        *self.finish_after.lock().unwrap_or_else(|e| e.into_inner()) = d;
    }

    /// A call with more requests than this is refused with code 1.
    pub fn set_max_requests(&self, n: usize) {
        self.world().max_requests = n;
    }

    /// Every request for this item is refused with `message` (as Meta refuses an item that
    /// breaks one of its rules).
    pub fn refuse_item(&self, retailer_id: &str, message: &str) {
        self.world()
            .refuse
            .insert(retailer_id.into(), message.into());
    }

    /// Deletes an item behind marketsync's back (in Commerce Manager).
    pub fn remove(&self, retailer_id: &str) {
        self.settle();
        self.world().items.remove(retailer_id);
    }

    /// The catalog's items (retailer id -> fields), batches finished by now applied.
    pub fn items(&self) -> BTreeMap<String, Value> {
        self.settle();
        self.world()
            .items
            .iter()
            .map(|(k, (_, v))| (k.clone(), v.clone()))
            .collect()
    }

    pub fn item(&self, retailer_id: &str) -> Option<Value> {
        self.items().remove(retailer_id)
    }

    /// Sets an item's field behind marketsync's back (an edit in Commerce Manager).
    pub fn edit(&self, retailer_id: &str, field: &str, value: Value) {
        if let Some((_, item)) = self.world().items.get_mut(retailer_id) {
            item[field] = value;
        }
    }

    /// `items_batch` calls received.
    pub fn batch_calls(&self) -> Vec<super::Recorded> {
        self.requests.with(|all| {
            all.iter()
                .filter(|r| r.path.ends_with("/items_batch"))
                .cloned()
                .collect()
        })
    }

    /// Status polls received.
    pub fn status_polls(&self) -> usize {
        self.requests.with(|all| {
            all.iter()
                .filter(|r| r.path.ends_with("/check_batch_request_status"))
                .count()
        })
    }

    /// Applies the batches whose time has come, in the order they came.
    fn settle(&self) {
        let after = *self.finish_after.lock().unwrap_or_else(|e| e.into_inner());
        let mut w = self.world();
        let mut due: Vec<(Instant, String)> = w
            .batches
            .iter()
            .filter(|(_, b)| !b.applied && b.at.elapsed() >= after)
            .map(|(h, b)| (b.at, h.clone()))
            .collect();
        due.sort();
        for (_, h) in due {
            let requests = {
                let b = w.batches.get_mut(&h).expect("listed");
                b.applied = true;
                b.requests.clone()
            };
            for r in requests {
                let data = &r["data"];
                let id = data["id"].as_str().unwrap_or_default().to_string();
                match r["method"].as_str().unwrap_or("") {
                    "DELETE" => {
                        w.items.remove(&id);
                    }
                    _ => {
                        let next = w.next_id + 1;
                        let entry = w
                            .items
                            .entry(id.clone())
                            .or_insert_with(|| (1_000_000 + next, json!({"retailer_id": id})));
                        for (k, v) in data.as_object().into_iter().flatten() {
                            if k != "id" {
                                entry.1[k] = v.clone();
                            }
                        }
                        w.next_id = next;
                    }
                }
            }
        }
    }

    fn usage_headers(&self, w: &World) -> Vec<(&'static str, String)> {
        let pct = (w.calls * 100)
            .checked_div(w.limit)
            .map_or(1, |p| p.min(100));
        let regain = if pct >= 100 { w.regain_minutes } else { 0 };
        vec![
            (
                "x-app-usage",
                json!({"call_count": pct.min(5), "total_time": 1, "total_cputime": 1}).to_string(),
            ),
            (
                "x-business-use-case-usage",
                json!({ self.catalog_id.as_str(): [{"type": "catalog_batch", "call_count": pct,
                    "total_cputime": 1, "total_time": 1, "estimated_time_to_regain_access": regain}]})
                .to_string(),
            ),
        ]
    }

    /// What the bench reads (`GET /_sim/stats`, not recorded, no token).
    pub fn stats(&self) -> Value {
        let items = self.items().len();
        json!({
            "requests": self.requests.with(|r| r.len()),
            "batch_calls": self.requests.with(|r| r.iter().filter(|r| r.path.ends_with("/items_batch")).count()),
            "batch_requests": self.world().batch_requests,
            "status_polls": self.status_polls(),
            "items": items,
        })
    }

    fn answer(&self, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
        if uri.path() == "/_sim/stats" {
            return axum::Json(self.stats()).into_response();
        }
        self.requests.record(&method, &uri, "", &body);
        self.settle();
        let (status, value) = self.route(&method, &uri, &headers, &body);
        let w = self.world();
        let mut resp = (status, axum::Json(value)).into_response();
        for (k, v) in self.usage_headers(&w) {
            if let Ok(v) = v.parse() {
                resp.headers_mut().insert(k, v);
            }
        }
        resp
    }

    fn route(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
    ) -> (StatusCode, Value) {
        let token = self.token.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let given = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let expired = *self.expired.lock().unwrap_or_else(|e| e.into_inner());
        if given != Some(token.as_str()) || expired {
            let (code, m) = if expired {
                (463, "Error validating access token: Session has expired.")
            } else {
                (0, "Invalid OAuth access token - Cannot parse access token")
            };
            let mut e = graph_error(StatusCode::BAD_REQUEST, 190, m);
            e.1["error"]["error_subcode"] = json!(code);
            return e;
        }
        let segs: Vec<&str> = uri.path().trim_matches('/').split('/').collect();
        let query: HashMap<String, String> =
            url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
                .into_owned()
                .collect();
        let (catalog, rest) = match segs.as_slice() {
            [_version, catalog, rest @ ..] => (*catalog, rest),
            _ => return graph_error(StatusCode::BAD_REQUEST, 2500, "Unknown path components"),
        };
        if catalog != self.catalog_id {
            return graph_error(
                StatusCode::BAD_REQUEST,
                100,
                &format!("Unsupported get request. Object with ID '{catalog}' does not exist, cannot be loaded due to missing permissions, or does not support this operation"),
            );
        }
        {
            let mut w = self.world();
            if w.limit > 0 && w.calls >= w.limit {
                return graph_error(
                    StatusCode::BAD_REQUEST,
                    80014,
                    "There have been too many calls for this catalog batch. Wait a bit and try again.",
                );
            }
            w.calls += 1;
        }
        match (method.as_str(), rest) {
            ("GET", []) => {
                let count = self.world().items.len();
                (
                    StatusCode::OK,
                    json!({"id": self.catalog_id, "name": self.name, "product_count": count}),
                )
            }
            ("POST", ["items_batch"]) => self.items_batch(body),
            ("GET", ["check_batch_request_status"]) => {
                let handle = query.get("handle").cloned().unwrap_or_default();
                let after = *self.finish_after.lock().unwrap_or_else(|e| e.into_inner());
                let w = self.world();
                let Some(b) = w.batches.get(&handle) else {
                    return graph_error(StatusCode::BAD_REQUEST, 100, "Invalid parameter: handle");
                };
                let finished = b.at.elapsed() >= after;
                let invalid: Vec<Value> = b.errors.iter().map(|e| e["id"].clone()).collect();
                (
                    StatusCode::OK,
                    json!({"data": [{
                        "handle": handle,
                        "status": if finished { "finished" } else { "started" },
                        "errors_total_count": if finished { b.errors.len() } else { 0 },
                        "errors": if finished { b.errors.clone() } else { vec![] },
                        "warnings_total_count": if finished { b.warnings.len() } else { 0 },
                        "warnings": if finished { b.warnings.clone() } else { vec![] },
                        "ids_of_invalid_requests": if finished { invalid } else { vec![] },
                    }]}),
                )
            }
            ("GET", ["products"]) => {
                let limit: usize = query
                    .get("limit")
                    .and_then(|l| l.parse().ok())
                    .unwrap_or(25)
                    .clamp(1, 1000);
                let after = query.get("after").cloned().unwrap_or_default();
                let w = self.world();
                let page: Vec<(&String, &(u64, Value))> = w
                    .items
                    .range::<String, _>((
                        std::ops::Bound::Excluded(&after),
                        std::ops::Bound::Unbounded,
                    ))
                    .take(limit + 1)
                    .collect();
                let more = page.len() > limit;
                let data: Vec<Value> = page
                    .iter()
                    .take(limit)
                    .map(|(rid, (id, v))| {
                        json!({"id": id.to_string(), "retailer_id": rid,
                               "price": v["price"], "availability": v["availability"],
                               "inventory": v["inventory"]})
                    })
                    .collect();
                let last = page
                    .iter()
                    .take(limit)
                    .next_back()
                    .map(|(k, _)| k.to_string());
                let mut paging =
                    json!({"cursors": {"before": "", "after": last.unwrap_or_default()}});
                if more {
                    paging["next"] = json!(format!("{}?after=…", uri.path()));
                }
                (StatusCode::OK, json!({"data": data, "paging": paging}))
            }
            _ => graph_error(
                StatusCode::BAD_REQUEST,
                100,
                &format!("Unsupported {method} request"),
            ),
        }
    }

    fn items_batch(&self, body: &[u8]) -> (StatusCode, Value) {
        let too_much = || {
            graph_error(
                StatusCode::BAD_REQUEST,
                1,
                "Please reduce the amount of data you're asking for, then retry your request",
            )
        };
        if body.len() > MAX_BODY {
            return too_much();
        }
        let Ok(v) = serde_json::from_slice::<Value>(body) else {
            return graph_error(
                StatusCode::BAD_REQUEST,
                100,
                "Invalid JSON in the request body",
            );
        };
        if v["item_type"] != "PRODUCT_ITEM" {
            return graph_error(StatusCode::BAD_REQUEST, 100, "Invalid parameter: item_type");
        }
        let Some(requests) = v["requests"].as_array() else {
            return graph_error(StatusCode::BAD_REQUEST, 100, "Invalid parameter: requests");
        };
        if requests.len() > self.world().max_requests {
            return too_much();
        }
        let upsert = v["allow_upsert"].as_bool().unwrap_or(true);
        let mut errors = Vec::new();
        let mut warnings = Vec::new();
        let mut taken = Vec::new();
        let known: Vec<String> = self.world().items.keys().cloned().collect();
        let rules = self.world().refuse.clone();
        for (line, r) in requests.iter().enumerate() {
            let data = &r["data"];
            let id = data["id"].as_str().unwrap_or_default().to_string();
            let mut refuse = |m: &str| errors.push(json!({"line": line, "id": id, "message": m}));
            let method = r["method"].as_str().unwrap_or("");
            if let Some(m) = rules.get(&id) {
                refuse(m);
                continue;
            }
            match method {
                "DELETE" => {}
                "UPDATE" | "CREATE" => {
                    let exists = known.contains(&id);
                    if method == "UPDATE" && !exists && !upsert {
                        refuse("The item does not exist and allow_upsert is false");
                        continue;
                    }
                    let price = data["price"].as_str();
                    if price.is_none() && !exists {
                        refuse("Missing required field: price");
                        continue;
                    }
                    if let Some(p) = price {
                        let currency = p.rsplit(' ').next().unwrap_or("");
                        if currency != self.currency {
                            refuse(&format!(
                                "The price currency {currency} does not match the catalog currency {}",
                                self.currency
                            ));
                            continue;
                        }
                    }
                    if let Some(img) = data["image_link"].as_str() {
                        if !img.starts_with("https://") {
                            refuse("image_link must be a valid https URL");
                            continue;
                        }
                    }
                    if data.get("brand").is_none() && data.get("gtin").is_none() && !exists {
                        warnings.push(json!({"line": line, "id": id,
                            "message": "Missing brand or gtin: the item may show in fewer places"}));
                    }
                }
                _ => {
                    refuse("Invalid method");
                    continue;
                }
            }
            taken.push(r.clone());
        }
        let mut w = self.world();
        w.batch_requests += requests.len();
        w.next_id += 1;
        let handle = format!("AcSim{:06}", w.next_id);
        w.batches.insert(
            handle.clone(),
            Batch {
                at: Instant::now(),
                requests: taken,
                errors,
                warnings,
                applied: false,
            },
        );
        (StatusCode::OK, json!({"handles": [handle]}))
    }
}

/// `marketsync sim meta`.
#[derive(Debug, Clone, clap::Args)]
pub struct SimArgs {
    /// Port on 127.0.0.1 to listen on.
    #[arg(long, default_value_t = 9400)]
    pub port: u16,
    /// The catalog's id (digits).
    #[arg(long, default_value = "880011223344")]
    pub catalog_id: String,
    /// The system user's access token it takes.
    #[arg(long, default_value = "EAAGsimSystemUserToken01")]
    pub token: String,
    /// The catalog's currency (ISO 4217).
    #[arg(long, default_value = "KWD")]
    pub currency: String,
    /// How long a batch takes to finish, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub finish_ms: u64,
    /// Calls allowed per usage window before error 80014 (0: no limit).
    #[arg(long, default_value_t = 0)]
    pub call_limit: u64,
}

pub async fn serve_cli(args: SimArgs) -> anyhow::Result<()> {
    let h = start(args.port, &args.catalog_id, &args.token, &args.currency).await?;
    h.sim
        .set_finish_after(Duration::from_millis(args.finish_ms));
    if args.call_limit > 0 {
        h.sim.set_usage(0, args.call_limit, 19);
    }
    println!(
        "Meta catalog simulator listening on {} (catalog {}, currency {})",
        h.base_url(),
        args.catalog_id,
        args.currency.to_ascii_uppercase()
    );
    println!("  access token {:?}", args.token);
    tokio::signal::ctrl_c().await?;
    Ok(())
}
