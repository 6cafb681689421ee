//! Sha6er's delivery API as marketsync reads the contract (`src/channel/sha6er/wire.rs`, the
//! README's "Sha6er contract"): shipments created, looked up by reference, read with their
//! history, cancelled before pickup, their proof of delivery; the dispatch and courier side
//! (`assign_courier`, `update_status`, `confirm_delivery`, `upload_proof`); signed status
//! webhooks to the daemon. On a clock (`--step`), couriers take each shipment through its
//! steps; every `--fail-every`th fails then comes back, every `--partial-every`th is delivered
//! in part. On demand: creates whose answer is lost, webhooks lost.

use super::Recorder;
use crate::channel::sha6er::wire::{self, Status};
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A shipment Sha6er holds.
#[derive(Debug, Clone)]
pub struct Held {
    pub id: String,
    pub request: wire::CreateShipment,
    pub tracking: String,
    pub status: Status,
    pub courier: Option<wire::Courier>,
    /// Each package's status.
    pub packages: Vec<(String, Status)>,
    pub history: Vec<wire::Step>,
    pub proof: wire::Proof,
    /// The clock's plan for it: fail first, deliver only the first package, come back after
    /// the failure.
    fail: bool,
    partial: bool,
    back: bool,
}

/// What the next create does besides creating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateFault {
    /// Makes the shipment, then answers 503 (the answer is lost).
    LoseAnswer,
    /// Refuses it, 422.
    Refuse,
}

#[derive(Default)]
struct World {
    shipments: Vec<Held>,
    faults: VecDeque<CreateFault>,
    webhook: Option<(String, String)>,
    /// Webhooks not sent (lost).
    lose_webhooks: bool,
    /// Every nth webhook lost (0: none).
    lose_every: u64,
    webhooks_made: u64,
    sent: Vec<Value>,
    fail_every: u64,
    partial_every: u64,
    return_every: u64,
    /// The code customers give the clock's couriers (default 4821).
    otp: Option<String>,
}

pub struct SimSha6er {
    token: String,
    world: Mutex<World>,
    pub requests: Recorder,
}

pub struct Sha6erHandle {
    pub addr: SocketAddr,
    pub sim: Arc<SimSha6er>,
    stop: CancellationToken,
}

impl Sha6erHandle {
    /// The `base_url` for `[channels.sha6er]`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1/", self.addr)
    }
}

impl Drop for Sha6erHandle {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

pub async fn start(port: u16, token: &str) -> std::io::Result<Sha6erHandle> {
    let sim = Arc::new(SimSha6er {
        token: token.into(),
        world: Mutex::new(World::default()),
        requests: Recorder::default(),
    });
    let s = sim.clone();
    let app = Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let s = s.clone();
            async move { s.answer(method, uri, headers, body) }
        },
    );
    let (addr, stop) = super::serve(port, app).await?;
    Ok(Sha6erHandle { addr, sim, stop })
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

/// A body of Sha6er's side, parsed: what is wrong with it, if anything.
fn body_of<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| e.to_string())
}

/// The answer to a dispatch or courier call: 422 for a body that is not the contract's, `refused`
/// for an action the shipment cannot take, `{"ok": true}` otherwise.
#[allow(clippy::result_large_err)]
fn done(
    r: Result<Result<(), String>, String>,
    refused: (StatusCode, &str),
) -> Result<Value, Response> {
    match r {
        Ok(Ok(())) => Ok(json!({"ok": true})),
        Ok(Err(e)) => Err(error(refused.0, refused.1, &e)),
        Err(e) => Err(error(StatusCode::UNPROCESSABLE_ENTITY, "invalid", &e)),
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A webhook body signed as the contract says: (`X-Sha6er-Signature` value, body).
pub fn signed(secret: &str, body: &Value) -> (String, String) {
    let raw = body.to_string();
    let t = chrono::Utc::now().timestamp();
    (
        crate::webhook::signature::sign(secret.as_bytes(), t, raw.as_bytes()),
        raw,
    )
}

pub async fn send_webhook(url: &str, secret: &str, body: &Value) -> (u16, String) {
    let (sig, raw) = signed(secret, body);
    match reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header(wire::SIGNATURE_HEADER, sig)
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

impl Held {
    fn view(&self) -> Value {
        serde_json::to_value(wire::Shipment {
            shipment_id: self.id.clone(),
            reference: self.request.reference.clone(),
            tracking_number: self.tracking.clone(),
            status: self.status.as_str().into(),
            courier: self.courier.clone(),
            packages: self
                .packages
                .iter()
                .map(|(r, s)| wire::PackageState {
                    reference: r.clone(),
                    status: s.as_str().into(),
                })
                .collect(),
            history: self.history.clone(),
        })
        .unwrap_or_default()
    }
}

impl SimSha6er {
    fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Where the signed status webhooks go.
    pub fn set_webhook(&self, url: &str, secret: &str) {
        self.world().webhook = Some((url.into(), secret.into()));
    }

    /// Webhooks are lost (not sent) while set: only the daemon's pull finds the news.
    pub fn lose_webhooks(&self, lose: bool) {
        self.world().lose_webhooks = lose;
    }

    pub fn fault_next_create(&self, f: CreateFault) {
        self.world().faults.push_back(f);
    }

    /// Every nth shipment fails once then is delivered; every mth is delivered in part
    /// (0: never).
    pub fn set_outcomes(&self, fail_every: u64, partial_every: u64) {
        let mut w = self.world();
        w.fail_every = fail_every;
        w.partial_every = partial_every;
    }

    /// Every nth shipment fails and is returned to the warehouse (0: never).
    pub fn set_returns(&self, return_every: u64) {
        self.world().return_every = return_every;
    }

    /// The code the clock's couriers collect from customers (a marketplace's own OTP).
    pub fn set_otp(&self, otp: &str) {
        self.world().otp = Some(otp.into());
    }

    pub fn shipments(&self) -> Vec<Held> {
        self.world().shipments.clone()
    }

    /// The webhooks sent so far.
    pub fn webhooks(&self) -> Vec<Value> {
        self.world().sent.clone()
    }

    /// The dispatch and courier side, as their endpoints do it (tests call these directly).
    pub fn assign(&self, id: &str, name: &str, phone: &str) -> Result<(), String> {
        self.apply(id, |h| {
            h.courier = Some(wire::Courier {
                name: name.into(),
                phone: Some(phone.into()),
            });
            Ok((Status::Assigned, None))
        })
    }

    pub fn update(&self, id: &str, status: Status, reason: Option<&str>) -> Result<(), String> {
        self.apply(id, |h| {
            if h.status.is_final() {
                return Err(format!("shipment {} is {}", h.id, h.status.as_str()));
            }
            if matches!(status, Status::Delivered) {
                return Err("use confirm_delivery".into());
            }
            if status == Status::Returned {
                for p in &mut h.packages {
                    if p.1 != Status::Delivered {
                        p.1 = Status::Returned;
                    }
                }
            }
            Ok((status, reason.map(str::to_string)))
        })
    }

    /// Delivered: `packages` (all when empty), the customer's OTP checked against the one Sha6er
    /// gave them (`otp_expected`).
    pub fn confirm(&self, id: &str, packages: &[String], otp: Option<&str>) -> Result<(), String> {
        self.apply(id, |h| {
            if h.status.is_final() {
                return Err(format!("shipment {} is {}", h.id, h.status.as_str()));
            }
            for p in &mut h.packages {
                let done = packages.is_empty() || packages.contains(&p.0);
                p.1 = if done {
                    Status::Delivered
                } else {
                    Status::Returned
                };
            }
            if let Some(o) = otp {
                h.proof.otp = Some(o.into());
                h.proof.otp_verified = true;
            }
            Ok((Status::Delivered, None))
        })
    }

    pub fn upload(
        &self,
        id: &str,
        kind: &str,
        filename: &str,
        content_type: &str,
        data: &[u8],
    ) -> Result<(), String> {
        use base64::Engine;
        let mut w = self.world();
        let h = w
            .shipments
            .iter_mut()
            .find(|h| h.id == id)
            .ok_or_else(|| format!("no shipment {id}"))?;
        h.proof.files.push(wire::ProofFile {
            kind: kind.into(),
            filename: filename.into(),
            content_type: content_type.into(),
            data: base64::engine::general_purpose::STANDARD.encode(data),
        });
        Ok(())
    }

    /// Moves a shipment to a status (a step of its history) and sends its webhook.
    fn apply(
        &self,
        id: &str,
        f: impl FnOnce(&mut Held) -> Result<(Status, Option<String>), String>,
    ) -> Result<(), String> {
        let mut w = self.world();
        let h = w
            .shipments
            .iter_mut()
            .find(|h| h.id == id)
            .ok_or_else(|| format!("no shipment {id}"))?;
        let (status, reason) = f(h)?;
        h.status = status;
        let courier = (status == Status::Assigned)
            .then(|| h.courier.clone())
            .flatten();
        h.history.push(wire::Step {
            status: status.as_str().into(),
            at: now(),
            courier,
            reason,
        });
        let event = json!({"event_id": format!("evt_{}_{}", h.id, h.history.len()), "type": wire::STATUS_EVENT,
                           "shipment_id": h.id, "status": status.as_str(), "at": now()});
        w.webhooks_made += 1;
        let lost = w.lose_webhooks || (w.lose_every > 0 && w.webhooks_made % w.lose_every == 0);
        if let (Some((url, secret)), false) = (w.webhook.clone(), lost) {
            w.sent.push(event.clone());
            tokio::spawn(async move {
                send_webhook(&url, &secret, &event).await;
            });
        }
        Ok(())
    }

    /// One tick of the couriers' clock: every shipment moves one step.
    pub fn tick(&self) {
        type Plan = (String, Status, bool, bool, bool, usize);
        let plan: Vec<Plan> = self
            .world()
            .shipments
            .iter()
            .filter(|h| !h.status.is_final())
            .map(|h| {
                (
                    h.id.clone(),
                    h.status,
                    h.fail,
                    h.partial,
                    h.back,
                    h.history.len(),
                )
            })
            .collect();
        for (id, status, fail, partial, back, steps) in plan {
            let _ = match status {
                Status::Pending => self.update(&id, Status::Accepted, None),
                Status::Accepted => self.assign(&id, "Ahmed Sha6er", "+201001234567"),
                Status::Assigned => self.update(&id, Status::PickedUp, None),
                Status::PickedUp => self.update(&id, Status::InTransit, None),
                // A planned failure happens once; the courier then tries again.
                Status::InTransit if fail && steps < 6 => self.update(
                    &id,
                    Status::Failed,
                    Some("the customer did not answer the phone"),
                ),
                Status::Failed if back => self.update(
                    &id,
                    Status::Returned,
                    Some("the customer refused the parcel"),
                ),
                Status::Failed => self.update(&id, Status::InTransit, None),
                Status::InTransit => {
                    let first: Vec<String> = if partial {
                        self.world()
                            .shipments
                            .iter()
                            .find(|h| h.id == id)
                            .and_then(|h| h.packages.first().map(|p| vec![p.0.clone()]))
                            .unwrap_or_default()
                    } else {
                        Vec::new()
                    };
                    let _ = self.upload(
                        &id,
                        "photo",
                        "doorstep.jpg",
                        "image/jpeg",
                        b"\xff\xd8\xffsim-photo",
                    );
                    let otp = self.world().otp.clone().unwrap_or_else(|| "4821".into());
                    self.confirm(&id, &first, Some(&otp))
                }
                _ => Ok(()),
            };
        }
    }

    fn answer(&self, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
        self.requests.record(&method, &uri, "/v1/", &body);
        let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
        if auth != Some(&format!("Bearer {}", self.token)) {
            return error(StatusCode::UNAUTHORIZED, "unauthorized", "invalid API key");
        }
        let path = uri
            .path()
            .trim_start_matches("/v1/")
            .trim_end_matches('/')
            .to_string();
        let parts: Vec<&str> = path.split('/').collect();
        let result: Result<Value, Response> = match (method.as_str(), parts.as_slice()) {
            ("GET", [a]) if *a == wire::ACCOUNT => {
                Ok(json!({"name": "Sim Supplier (Sha6er)", "id": "acc_1"}))
            }
            ("POST", [a]) if *a == wire::CREATE_SHIPMENT => self.create(&body),
            ("GET", [a]) if *a == wire::SHIPMENTS => {
                let reference = uri
                    .query()
                    .and_then(|q| {
                        url::form_urlencoded::parse(q.as_bytes())
                            .find(|(k, _)| k == wire::REFERENCE_QUERY)
                            .map(|(_, v)| v.into_owned())
                    })
                    .unwrap_or_default();
                let found: Vec<Value> = self
                    .world()
                    .shipments
                    .iter()
                    .filter(|h| h.request.reference == reference)
                    .map(|h| json!({"shipment_id": h.id, "tracking_number": h.tracking, "status": h.status.as_str()}))
                    .collect();
                Ok(json!({"shipments": found}))
            }
            ("GET", [a, id]) if *a == wire::SHIPMENTS => self
                .world()
                .shipments
                .iter()
                .find(|h| h.id == *id)
                .map(Held::view)
                .ok_or_else(|| error(StatusCode::NOT_FOUND, "not_found", "no such shipment")),
            ("GET", [a, id, "proof"]) if *a == wire::SHIPMENTS => self
                .world()
                .shipments
                .iter()
                .find(|h| h.id == *id)
                .map(|h| serde_json::to_value(&h.proof).unwrap_or_default())
                .ok_or_else(|| error(StatusCode::NOT_FOUND, "not_found", "no such shipment")),
            ("POST", [a, id, "cancel"]) if *a == wire::SHIPMENTS => {
                let id = id.to_string();
                let before = self
                    .world()
                    .shipments
                    .iter()
                    .find(|h| h.id == id)
                    .map(|h| h.status);
                match before {
                    None => Err(error(
                        StatusCode::NOT_FOUND,
                        "not_found",
                        "no such shipment",
                    )),
                    Some(s) if !s.before_pickup() => Err(error(
                        StatusCode::CONFLICT,
                        "picked_up",
                        "the courier has the parcel",
                    )),
                    Some(_) => self
                        .apply(&id, |_| {
                            Ok((Status::Cancelled, Some("cancelled by the sender".into())))
                        })
                        .map(|_| json!({"ok": true}))
                        .map_err(|e| error(StatusCode::CONFLICT, "conflict", &e)),
                }
            }
            ("POST", [a]) if *a == wire::ASSIGN_COURIER => done(
                body_of::<wire::AssignCourier>(&body).map(|a| {
                    self.assign(
                        &a.shipment_id,
                        &a.courier.name,
                        a.courier.phone.as_deref().unwrap_or(""),
                    )
                }),
                (StatusCode::CONFLICT, "conflict"),
            ),
            ("POST", [a]) if *a == wire::UPDATE_STATUS => done(
                body_of::<wire::UpdateStatus>(&body).and_then(|u| {
                    let s = Status::parse(&u.status).ok_or("unknown status")?;
                    Ok(self.update(&u.shipment_id, s, u.reason.as_deref()))
                }),
                (StatusCode::CONFLICT, "conflict"),
            ),
            ("POST", [a]) if *a == wire::CONFIRM_DELIVERY => done(
                body_of::<wire::ConfirmDelivery>(&body)
                    .map(|c| self.confirm(&c.shipment_id, &c.packages, c.otp.as_deref())),
                (StatusCode::CONFLICT, "conflict"),
            ),
            ("POST", [a]) if *a == wire::UPLOAD_PROOF => done(
                body_of::<wire::UploadProof>(&body).and_then(|u| {
                    use base64::Engine;
                    let data = base64::engine::general_purpose::STANDARD
                        .decode(&u.data)
                        .map_err(|e| e.to_string())?;
                    Ok(self.upload(&u.shipment_id, &u.kind, &u.filename, &u.content_type, &data))
                }),
                (StatusCode::NOT_FOUND, "not_found"),
            ),
            _ => Err(error(
                StatusCode::NOT_FOUND,
                "not_found",
                "no such endpoint",
            )),
        };
        match result {
            Ok(v) => axum::Json(v).into_response(),
            Err(r) => r,
        }
    }

    #[allow(clippy::result_large_err)]
    fn create(&self, body: &[u8]) -> Result<Value, Response> {
        let req: wire::CreateShipment = serde_json::from_slice(body).map_err(|e| {
            error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                &format!("body: {e}"),
            )
        })?;
        if req.packages.is_empty() || req.packages.iter().any(|p| p.items.is_empty()) {
            return Err(error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                "every package needs items",
            ));
        }
        if req.delivery.phone.as_deref().unwrap_or("").is_empty() {
            return Err(error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                "delivery.phone is required",
            ));
        }
        let mut w = self.world();
        let fault = w.faults.pop_front();
        if fault == Some(CreateFault::Refuse) {
            return Err(error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "address_unserved",
                "Sha6er does not serve this delivery area",
            ));
        }
        if w.shipments
            .iter()
            .any(|h| h.request.reference == req.reference)
        {
            return Err(error(
                StatusCode::CONFLICT,
                "duplicate_reference",
                &format!("a shipment with reference {} exists", req.reference),
            ));
        }
        let n = w.shipments.len() as u64 + 1;
        let id = format!("SH-{n:06}");
        let tracking = format!("SH6{:07}", 1_000_000 + n);
        let back = w.return_every > 0 && n % w.return_every == 0;
        let fail = back || (w.fail_every > 0 && n % w.fail_every == 0);
        let partial = w.partial_every > 0 && n % w.partial_every == 0 && req.packages.len() > 1;
        let packages = req
            .packages
            .iter()
            .map(|p| (p.reference.clone(), Status::Pending))
            .collect();
        w.shipments.push(Held {
            id: id.clone(),
            request: req,
            tracking: tracking.clone(),
            status: Status::Pending,
            courier: None,
            packages,
            history: vec![wire::Step {
                status: "pending".into(),
                at: now(),
                courier: None,
                reason: None,
            }],
            proof: wire::Proof::default(),
            fail,
            partial,
            back,
        });
        if fault == Some(CreateFault::LoseAnswer) {
            return Err(error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "upstream timeout",
            ));
        }
        Ok(json!({"shipment_id": id, "tracking_number": tracking, "status": "pending"}))
    }
}

/// Runs the couriers' clock until `stop`.
pub fn run_clock(sim: Arc<SimSha6er>, step: Duration, stop: CancellationToken) {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(step) => sim.tick(),
            }
        }
    });
}

#[derive(Debug, Clone, clap::Args)]
pub struct SimArgs {
    /// Port on 127.0.0.1 to listen on.
    #[arg(long, default_value_t = 9600)]
    pub port: u16,
    /// The API key it takes (`Authorization: Bearer`).
    #[arg(long, default_value = "sha6er-sim-key-0001")]
    pub token: String,
    /// Where to post the signed status webhooks (the daemon's /webhooks/sha6er).
    #[arg(long)]
    pub webhook_url: Option<String>,
    /// The secret that signs them.
    #[arg(long, default_value = "sha6er-webhook-secret-sim")]
    pub webhook_secret: String,
    /// How long a courier takes for each step, in milliseconds.
    #[arg(long, default_value_t = 3000)]
    pub step_ms: u64,
    /// Every nth shipment fails once before it is delivered (0: none).
    #[arg(long, default_value_t = 4)]
    pub fail_every: u64,
    /// Every nth shipment of several packages is delivered in part (0: none).
    #[arg(long, default_value_t = 3)]
    pub partial_every: u64,
    /// Every nth shipment fails and comes back to the warehouse (0: none).
    #[arg(long, default_value_t = 7)]
    pub return_every: u64,
    /// Every nth webhook is lost (the daemon's pull finds it; 0: none).
    #[arg(long, default_value_t = 0)]
    pub lose_every: u64,
}

pub async fn serve_cli(args: SimArgs) -> anyhow::Result<()> {
    let h = start(args.port, &args.token).await?;
    if let Some(url) = &args.webhook_url {
        h.sim.set_webhook(url, &args.webhook_secret);
    }
    h.sim.set_outcomes(args.fail_every, args.partial_every);
    h.sim.set_returns(args.return_every);
    h.sim.world().lose_every = args.lose_every;
    run_clock(
        h.sim.clone(),
        Duration::from_millis(args.step_ms),
        h.stop.clone(),
    );
    println!(
        "Sha6er simulator listening on {} (API key {:?}); couriers move every {} ms",
        h.base_url(),
        args.token,
        args.step_ms
    );
    tokio::signal::ctrl_c().await?;
    Ok(())
}
