//! `marketsync sim odoo`: an in-memory Odoo speaking XML-RPC (`/xmlrpc/2/common`,
//! `/xmlrpc/2/object`), JSON-RPC (`/jsonrpc`) and JSON-2 (`/json/2/<model>/<method>`,
//! `GET /web/version`) on loopback, with Odoo's own fault codes, messages and HTTP statuses as
//! recorded in `fixtures/odoo17` and `fixtures/odoo19`, and fault injection for tests.

pub mod catalog;
pub mod world;

use crate::odoo::xmlrpc_codec::{self as codec, Fault as XmlFault};
use crate::odoo::Value;
use crate::sim::faults::{self, Faults};
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Response, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio_util::sync::CancellationToken;
use world::{Ctx, Exc, World, ADMIN_UID};

/// `marketsync sim odoo` options.
#[derive(Debug, Clone, clap::Args)]
pub struct SimArgs {
    /// Port on 127.0.0.1 (0 = any free port).
    #[arg(long, default_value_t = 8069)]
    pub port: u16,
    /// Products in the generated catalog.
    #[arg(long, default_value_t = 200)]
    pub products: usize,
    /// Seed of the generated catalog.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Odoo major version to behave as (16, 17, 18 or 19; JSON-2 from 19).
    #[arg(long, default_value_t = 17)]
    pub odoo_version: u32,
}

/// How the simulator is set up.
#[derive(Debug, Clone)]
pub struct SimOptions {
    pub port: u16,
    pub products: usize,
    pub seed: u64,
    pub major: u32,
    pub database: String,
    pub login: String,
    pub password: String,
    pub api_key: String,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            port: 0,
            products: 50,
            seed: 42,
            major: 17,
            database: "odoo".into(),
            login: "admin".into(),
            password: "admin".into(),
            api_key: "admin".into(),
        }
    }
}

/// The simulator's shared state.
pub struct SimOdoo {
    world: Mutex<World>,
    pub faults: Faults,
    opts: SimOptions,
    calls: Mutex<HashMap<String, u64>>,
    in_flight: std::sync::atomic::AtomicUsize,
    max_in_flight: std::sync::atomic::AtomicUsize,
}

/// Counts a request as in flight while it lives.
struct InFlight<'a>(&'a SimOdoo);

impl<'a> InFlight<'a> {
    fn enter(sim: &'a SimOdoo) -> Self {
        use std::sync::atomic::Ordering::SeqCst;
        let now = sim.in_flight.fetch_add(1, SeqCst) + 1;
        sim.max_in_flight.fetch_max(now, SeqCst);
        InFlight(sim)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0
            .in_flight
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl SimOdoo {
    pub fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// ORM calls served, by `model.method`.
    pub fn calls(&self) -> HashMap<String, u64> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// ORM calls served in all.
    pub fn call_count(&self) -> u64 {
        self.calls().values().sum()
    }

    /// Requests being served now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The most requests that were ever being served at once.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn count(&self, key: String) {
        *self
            .calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key)
            .or_default() += 1;
    }

    fn version_string(&self) -> String {
        format!("{}.0", self.opts.major)
    }

    fn version_value(&self) -> Value {
        Value::record([
            ("server_version", Value::String(self.version_string())),
            (
                "server_version_info",
                Value::Array(vec![
                    Value::Int(self.opts.major as i64),
                    Value::Int(0),
                    Value::Int(0),
                    "final".into(),
                    Value::Int(0),
                    "".into(),
                ]),
            ),
            ("server_serie", Value::String(self.version_string())),
            ("protocol_version", Value::Int(1)),
        ])
    }

    fn check_db(&self, db: &str) -> Result<(), Exc> {
        if db == self.opts.database {
            Ok(())
        } else {
            Err(Exc::UnknownDatabase(db.to_string()))
        }
    }

    fn secret_ok(&self, secret: &str) -> bool {
        secret == self.opts.password || secret == self.opts.api_key
    }

    fn authenticate(&self, db: &str, login: &str, secret: &str) -> Result<Value, Exc> {
        self.check_db(db)?;
        Ok(if login == self.opts.login && self.secret_ok(secret) {
            Value::Int(ADMIN_UID)
        } else {
            Value::Bool(false)
        })
    }

    fn check_uid(&self, uid: &Value, secret: &str) -> Result<(), Exc> {
        if !self.secret_ok(secret) {
            return Err(Exc::AccessDenied);
        }
        let uid = uid.as_i64().unwrap_or(0);
        if self.world().get("res.users", uid).is_none() {
            return Err(Exc::Missing(format!("Record does not exist or has been deleted.\n(Record: res.users({uid},), User: {uid})")));
        }
        Ok(())
    }
}

/// A running simulator.
pub struct SimHandle {
    pub addr: SocketAddr,
    pub sim: Arc<SimOdoo>,
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl SimHandle {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops listening: clients then get "connection refused" (Odoo down).
    pub async fn stop(&mut self) {
        self.stop.cancel();
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }

    /// Listens again on the same port, with the same data (Odoo back up).
    pub async fn restart(&mut self) -> std::io::Result<()> {
        self.stop().await;
        let listener = tokio::net::TcpListener::bind(self.addr).await?;
        self.stop = CancellationToken::new();
        self.task = Some(spawn_server(listener, self.sim.clone(), self.stop.clone()));
        Ok(())
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Starts a simulator on 127.0.0.1.
pub async fn start(opts: SimOptions) -> std::io::Result<SimHandle> {
    let mut w = World::new(opts.major);
    catalog::populate(&mut w, opts.products, opts.seed);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", opts.port)).await?;
    let addr = listener.local_addr()?;
    let sim = Arc::new(SimOdoo {
        world: Mutex::new(w),
        faults: Faults::default(),
        opts,
        calls: Mutex::default(),
        in_flight: 0.into(),
        max_in_flight: 0.into(),
    });
    let stop = CancellationToken::new();
    let task = Some(spawn_server(listener, sim.clone(), stop.clone()));
    Ok(SimHandle {
        addr,
        sim,
        stop,
        task,
    })
}

fn spawn_server(
    listener: tokio::net::TcpListener,
    sim: Arc<SimOdoo>,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let app = router(sim);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await;
    })
}

pub fn router(sim: Arc<SimOdoo>) -> Router {
    Router::new()
        .route("/xmlrpc/2/{service}", post(xmlrpc).get(method_not_allowed))
        .route("/jsonrpc", post(jsonrpc))
        .route("/web/version", get(web_version).post(web_version))
        .route("/json/2/{model}/{method}", post(json2).get(json2_get))
        .route("/_sim/stats", get(sim_stats))
        .with_state(sim)
}

/// Loopback control for `marketsync bench` (the simulator runs in its own process): counters.
async fn sim_stats(State(sim): State<Arc<SimOdoo>>) -> Response<Body> {
    json_response(
        StatusCode::OK,
        serde_json::json!({"calls": sim.call_count()}).to_string(),
    )
}

/// `marketsync sim odoo`: serve until Ctrl-C.
pub async fn serve_cli(args: SimArgs) -> anyhow::Result<()> {
    let opts = SimOptions {
        port: args.port,
        products: args.products,
        seed: args.seed,
        major: args.odoo_version,
        ..SimOptions::default()
    };
    let handle = start(opts.clone()).await?;
    println!(
        "Odoo {}.0 simulator listening on {}",
        opts.major,
        handle.url()
    );
    println!(
        "  database {:?}, login {:?}, password/API key {:?}",
        opts.database, opts.login, opts.api_key
    );
    println!(
        "  {} products (seed {}); XML-RPC /xmlrpc/2/*, JSON-RPC /jsonrpc{}",
        opts.products,
        opts.seed,
        if opts.major >= 19 {
            ", JSON-2 /json/2/*"
        } else {
            ""
        }
    );
    tokio::signal::ctrl_c().await?;
    Ok(())
}

// -------------------------------------------------------------------------------------------
// Dispatch shared by the three protocols
// -------------------------------------------------------------------------------------------

/// Parameter names of the methods the simulator serves, as in Odoo's Python signatures.
fn signature(method: &str) -> Option<(bool, &'static [&'static str], &'static [&'static str])> {
    Some(match method {
        "search_read" => (
            false,
            &["domain", "fields", "offset", "limit", "order"],
            &[],
        ),
        "search" => (false, &["domain", "offset", "limit", "order"], &["domain"]),
        "search_count" => (false, &["domain", "limit"], &["domain"]),
        "read" => (true, &["fields", "load"], &[]),
        "create" => (false, &["vals_list"], &["vals_list"]),
        "write" => (true, &["vals"], &["vals"]),
        "unlink" => (true, &[], &[]),
        "fields_get" => (false, &["allfields", "attributes"], &[]),
        "context_get" => (false, &[], &[]),
        "action_confirm"
        | "action_cancel"
        | "button_validate"
        | "action_assign"
        | "action_archive"
        | "action_unarchive"
        | "action_apply_inventory"
        | "process" => (true, &[], &[]),
        "message_post" => (true, &["body", "message_type", "subtype_xmlid"], &[]),
        _ => return None,
    })
}

fn method_available(w: &World, model: &str, method: &str) -> bool {
    match method {
        "action_confirm" | "action_cancel" => model == "sale.order",
        "button_validate" | "action_assign" => model == "stock.picking",
        "action_apply_inventory" => model == "stock.quant",
        "process" => model == "stock.backorder.confirmation",
        "context_get" => model == "res.users",
        "action_archive" | "action_unarchive" => w
            .model(model)
            .map(|m| m.field("active").is_some())
            .unwrap_or(false),
        _ => true,
    }
}

/// A call with its arguments by name.
struct Named {
    ids: Option<Vec<i64>>,
    params: HashMap<String, Value>,
    ctx: Ctx,
    /// `create` was given one dict (legacy protocols then answer one id).
    single_create: bool,
}

fn ids_of(v: &Value) -> Vec<i64> {
    match v {
        Value::Int(i) => vec![*i],
        other => other.as_ids(),
    }
}

/// Maps `execute_kw`'s positional args and kwargs onto names.
fn from_positional(method: &str, args: &[Value], kwargs: &[(String, Value)]) -> Result<Named, Exc> {
    let (record, names, required) = signature(method).expect("checked");
    let mut args = args.iter();
    let ids = if record {
        Some(ids_of(args.next().ok_or_else(|| {
            Exc::TypeErr(format!(
                "{method}() missing 1 required positional argument: 'ids'"
            ))
        })?))
    } else {
        None
    };
    let mut params = HashMap::new();
    for (name, v) in names.iter().zip(args) {
        params.insert(name.to_string(), v.clone());
    }
    let mut ctx = Ctx::default();
    for (k, v) in kwargs {
        if k == "context" {
            ctx = Ctx::from_value(Some(v));
        } else {
            params.insert(k.clone(), v.clone());
        }
    }
    for r in required {
        if !params.contains_key(*r) {
            return Err(Exc::TypeErr(format!(
                "{method}() missing 1 required positional argument: '{r}'"
            )));
        }
    }
    let single_create =
        method == "create" && matches!(params.get("vals_list"), Some(Value::Struct(_)));
    Ok(Named {
        ids,
        params,
        ctx,
        single_create,
    })
}

fn str_list(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn run_method(sim: &SimOdoo, model: &str, method: &str, call: Named) -> Result<Value, Exc> {
    sim.count(format!("{model}.{method}"));
    let mut w = sim.world();
    w.ops += 1;
    w.model(model)?;
    w.check_access(model)?;
    w.check_context_lang(&call.ctx)?;
    w.check_companies(&call.ctx)?;
    if !method_available(&w, model, method) {
        return Err(Exc::UnknownMethod {
            model: model.into(),
            method: method.into(),
        });
    }
    let p = &call.params;
    let ids = call.ids.clone().unwrap_or_default();
    let usize_param = |k: &str| {
        p.get(k)
            .and_then(Value::as_i64)
            .filter(|n| *n > 0)
            .map(|n| n as usize)
    };
    match method {
        "search_read" => {
            let fields = str_list(p.get("fields"));
            w.check_fields(model, &fields)?;
            let found = w.search(
                model,
                p.get("domain").unwrap_or(&Value::Array(vec![])),
                p.get("order").and_then(Value::as_opt_str),
                usize_param("offset").unwrap_or(0),
                usize_param("limit"),
                &call.ctx,
            )?;
            Ok(Value::Array(w.read(model, &found, &fields, &call.ctx)?))
        }
        "search" => {
            let found = w.search(
                model,
                &p["domain"],
                p.get("order").and_then(Value::as_opt_str),
                usize_param("offset").unwrap_or(0),
                usize_param("limit"),
                &call.ctx,
            )?;
            Ok(Value::from(found))
        }
        "search_count" => Ok(Value::Int(
            w.search(
                model,
                &p["domain"],
                None,
                0,
                usize_param("limit"),
                &call.ctx,
            )?
            .len() as i64,
        )),
        "read" => Ok(Value::Array(w.read(
            model,
            &ids,
            &str_list(p.get("fields")),
            &call.ctx,
        )?)),
        "create" => {
            let list = match &p["vals_list"] {
                Value::Array(items) => items.clone(),
                one @ Value::Struct(_) => vec![one.clone()],
                other => {
                    return Err(Exc::TypeErr(format!(
                        "create() expects a dict or a list of dicts, got {}",
                        other.type_name()
                    )))
                }
            };
            let mut created = Vec::new();
            for vals in &list {
                created.push(w.create(model, vals)?);
            }
            Ok(if call.single_create {
                Value::Int(created[0])
            } else {
                Value::from(created)
            })
        }
        "write" => {
            w.write(model, &ids, &p["vals"])?;
            Ok(Value::Bool(true))
        }
        "unlink" => {
            w.unlink(model, &ids)?;
            Ok(Value::Bool(true))
        }
        "fields_get" => w.fields_get(model, &str_list(p.get("attributes"))),
        "context_get" => Ok(Value::record([
            ("lang", Value::from("en_US")),
            ("tz", Value::from("Africa/Cairo")),
            ("uid", Value::Int(ADMIN_UID)),
        ])),
        "action_confirm" => w.action_confirm(&ids),
        "action_cancel" => w.action_cancel(&ids),
        "button_validate" => w.button_validate(&ids),
        "action_assign" => w.action_assign(&ids),
        "action_archive" => w.set_active(model, &ids, false),
        "action_unarchive" => w.set_active(model, &ids, true),
        "action_apply_inventory" => w.apply_inventory(&ids),
        "process" => w.process_backorder(&ids),
        "message_post" => w.message_post(model, &ids, p.get("body").unwrap_or(&Value::Nil)),
        _ => Err(Exc::UnknownMethod {
            model: model.into(),
            method: method.into(),
        }),
    }
}

/// Resolves model and method before running: unknown model, private or unknown method.
fn call_checked(
    sim: &SimOdoo,
    model: &str,
    method: &str,
    named: impl FnOnce() -> Result<Named, Exc>,
) -> Result<Value, Exc> {
    sim.world().model(model)?;
    if method.starts_with('_') {
        return Err(Exc::PrivateMethod {
            model: model.into(),
            method: method.into(),
        });
    }
    if signature(method).is_none() {
        return Err(Exc::UnknownMethod {
            model: model.into(),
            method: method.into(),
        });
    }
    run_method(sim, model, method, named()?)
}

/// Python's name for the exception, and its message.
fn python(e: &Exc) -> (&'static str, String) {
    match e {
        Exc::User(m) => ("odoo.exceptions.UserError", m.clone()),
        Exc::Validation(m) => ("odoo.exceptions.ValidationError", m.clone()),
        Exc::Missing(m) => ("odoo.exceptions.MissingError", m.clone()),
        Exc::Access(m) => ("odoo.exceptions.AccessError", m.clone()),
        Exc::AccessDenied => ("odoo.exceptions.AccessDenied", "Access Denied".into()),
        Exc::UnknownModel(m) => ("odoo.exceptions.UserError", format!("Object {m} doesn't exist")),
        Exc::UnknownMethod { model, method } | Exc::PrivateMethod { model, method } => {
            ("builtins.AttributeError", format!("The method '{model}.{method}' does not exist"))
        }
        Exc::ValueErr(m) => ("builtins.ValueError", m.clone()),
        Exc::TypeErr(m) => ("builtins.TypeError", m.clone()),
        Exc::IdsOnModelMethod { model, method } => ("builtins.TypeError", format!("cannot call {model}.{method} with ids")),
        Exc::UnknownDatabase(db) => (
            "psycopg2.OperationalError",
            format!("connection to server on socket \"/var/run/postgresql/.s.PGSQL.5432\" failed: FATAL:  database \"{db}\" does not exist\n"),
        ),
    }
}

fn traceback(name: &str, message: &str) -> String {
    let short = name.trim_start_matches("builtins.");
    format!(
        "Traceback (most recent call last):\n  File \"/opt/odoo/odoo/service/model.py\", line 156, in retrying\n    result = func()\n             ^^^^^^\n{short}: {message}\n"
    )
}

// -------------------------------------------------------------------------------------------
// XML-RPC
// -------------------------------------------------------------------------------------------

fn xml_response(body: String) -> Response<Body> {
    Response::builder()
        .status(StatusCode::OK)
        .header("Content-Type", "text/xml; charset=utf-8")
        .header("Connection", "close")
        .body(Body::from(body))
        .expect("valid response")
}

fn xml_fault(e: &Exc) -> XmlFault {
    let (name, message) = python(e);
    match e {
        Exc::User(_) | Exc::Validation(_) | Exc::Missing(_) | Exc::UnknownModel(_) => XmlFault {
            code: Value::Int(2),
            string: message,
        },
        Exc::AccessDenied => XmlFault {
            code: Value::Int(3),
            string: message,
        },
        Exc::Access(_) => XmlFault {
            code: Value::Int(4),
            string: message,
        },
        _ => XmlFault {
            code: Value::Int(1),
            string: traceback(name, &message),
        },
    }
}

async fn method_not_allowed() -> Response<Body> {
    Response::builder()
        .status(StatusCode::METHOD_NOT_ALLOWED)
        .header("Content-Type", "text/html; charset=utf-8")
        .body(Body::from("<!doctype html>\n<html lang=en>\n<title>405 Method Not Allowed</title>\n<h1>Method Not Allowed</h1>\n<p>The method is not allowed for the requested URL.</p>\n"))
        .expect("valid response")
}

async fn xmlrpc(
    State(sim): State<Arc<SimOdoo>>,
    Path(service): Path<String>,
    body: Bytes,
) -> Response<Body> {
    let _busy = InFlight::enter(&sim);
    if let Some(r) = faults::act(&sim.faults).await {
        return r;
    }
    let text = String::from_utf8_lossy(&body);
    let result = match codec::decode_call(&text) {
        Err(e) => Err(XmlFault {
            code: Value::Int(1),
            string: traceback("xml.parsers.expat.ExpatError", &e.0),
        }),
        Ok((method, params)) => xmlrpc_call(&sim, &service, &method, &params)
            .map_err(|e| xml_fault(&e))
            .and_then(|v| {
                if v == Value::Nil {
                    Err(XmlFault {
                        code: Value::Int(1),
                        string: traceback(
                            "TypeError",
                            "cannot marshal None unless allow_none is enabled",
                        ),
                    })
                } else {
                    Ok(v)
                }
            }),
    };
    xml_response(codec::encode_response(&result))
}

fn arg_str(params: &[Value], i: usize) -> String {
    params
        .get(i)
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

fn xmlrpc_call(sim: &SimOdoo, service: &str, method: &str, params: &[Value]) -> Result<Value, Exc> {
    match (service, method) {
        ("common", "version") => Ok(sim.version_value()),
        // Odoo lists its databases unless `list_db = False` (recorded: jsonrpc/10-db-list).
        ("db", "list") => Ok(Value::Array(vec![Value::from(sim.opts.database.as_str())])),
        ("common", "authenticate") | ("common", "login") => sim.authenticate(
            &arg_str(params, 0),
            &arg_str(params, 1),
            &arg_str(params, 2),
        ),
        ("object", "execute_kw") | ("object", "execute") => {
            if params.len() < 5 || (method == "execute_kw" && params.len() < 6) {
                return Err(Exc::TypeErr(
                    "execute_kw() missing 1 required positional argument: 'args'".into(),
                ));
            }
            sim.check_db(&arg_str(params, 0))?;
            sim.check_uid(&params[1], &arg_str(params, 2))?;
            let model = arg_str(params, 3);
            let meth = arg_str(params, 4);
            let (args, kwargs): (Vec<Value>, Vec<(String, Value)>) = if method == "execute_kw" {
                let args = params[5].as_array().map(|a| a.to_vec()).unwrap_or_default();
                let kwargs = match params.get(6) {
                    Some(Value::Struct(m)) => m.clone(),
                    _ => Vec::new(),
                };
                (args, kwargs)
            } else {
                (params[5..].to_vec(), Vec::new())
            };
            call_checked(sim, &model, &meth, || {
                from_positional(&meth, &args, &kwargs)
            })
        }
        (_, m) => Err(Exc::TypeErr(format!(
            "The method '{service}.{m}' does not exist"
        ))),
    }
}

// -------------------------------------------------------------------------------------------
// JSON-RPC
// -------------------------------------------------------------------------------------------

fn json_response(status: StatusCode, body: String) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("Content-Type", "application/json; charset=utf-8")
        .body(Body::from(body))
        .expect("valid response")
}

async fn jsonrpc(
    State(sim): State<Arc<SimOdoo>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    let _busy = InFlight::enter(&sim);
    if let Some(r) = faults::act(&sim.faults).await {
        return r;
    }
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.starts_with("application/json") {
        return Response::builder()
            .status(StatusCode::BAD_REQUEST)
            .header("Content-Type", "text/html; charset=utf-8")
            .body(Body::from("<!doctype html>\n<html lang=en>\n<title>400 Bad Request</title>\n<h1>Bad Request</h1>\n<p>Request inferred type is compatible with ['http'] but '/jsonrpc' is type='json'.</p>\n"))
            .expect("valid response");
    }
    let Ok(req) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return Response::builder()
            .status(StatusCode::BAD_REQUEST)
            .header("Content-Type", "text/html; charset=utf-8")
            .body(Body::from("Invalid JSON data"))
            .expect("valid response");
    };
    let id = req.get("id").cloned().unwrap_or(serde_json::Value::Null);
    let params = req.get("params").cloned().unwrap_or_default();
    let service = params.get("service").and_then(|s| s.as_str()).unwrap_or("");
    let method = params.get("method").and_then(|s| s.as_str()).unwrap_or("");
    let args: Vec<Value> = params
        .get("args")
        .and_then(|a| a.as_array())
        .map(|a| a.iter().cloned().map(Value::from).collect())
        .unwrap_or_default();
    let outcome = if !matches!(service, "common" | "object" | "db") {
        Err((("builtins.KeyError", service.to_string()), None))
    } else if params.get("args").is_none() {
        Err((
            (
                "builtins.TypeError",
                "RPC.jsonrpc() missing 1 required positional argument: 'args'".to_string(),
            ),
            None,
        ))
    } else {
        xmlrpc_call(&sim, service, method, &args).map_err(|e| {
            let (n, m) = python(&e);
            ((n, m), Some(e))
        })
    };
    let body = match outcome {
        Ok(Value::Nil) => format!("{{\"jsonrpc\": \"2.0\", \"id\": {id}}}"),
        Ok(v) => format!(
            "{{\"jsonrpc\": \"2.0\", \"id\": {id}, \"result\": {}}}",
            serde_json::Value::from(v)
        ),
        Err(((name, message), _)) => {
            // Odoo 19 sends code 0 where 17 sent 200 (both recorded).
            let code = if sim.opts.major >= 19 { 0 } else { 200 };
            let error = serde_json::json!({
                "code": code,
                "message": "Odoo Server Error",
                "data": {"name": name, "debug": traceback(name, &message), "message": message, "arguments": [message], "context": {}},
            });
            format!("{{\"jsonrpc\": \"2.0\", \"id\": {id}, \"error\": {error}}}")
        }
    };
    json_response(StatusCode::OK, body)
}

// -------------------------------------------------------------------------------------------
// JSON-2 (Odoo 19+)
// -------------------------------------------------------------------------------------------

fn html_not_found() -> Response<Body> {
    Response::builder()
        .status(StatusCode::NOT_FOUND)
        .header("Content-Type", "text/html; charset=utf-8")
        .body(Body::from("<!doctype html>\n<html lang=en>\n<title>404 Not Found</title>\n<h1>Not Found</h1>\n<p>The requested URL was not found on the server. If you entered the URL manually please check your spelling and try again.</p>\n"))
        .expect("valid response")
}

fn json2_error(status: u16, name: &str, message: &str, with_status_arg: bool) -> Response<Body> {
    let arguments = if with_status_arg {
        serde_json::json!([message, status])
    } else {
        serde_json::json!([message])
    };
    let body = serde_json::json!({"name": name, "message": message, "arguments": arguments, "context": {}, "debug": traceback(name, message)});
    let mut r = json_response(
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        body.to_string(),
    );
    if status == 401 {
        r.headers_mut()
            .insert("WWW-Authenticate", "Bearer".parse().expect("valid header"));
    }
    r
}

fn json2_exc(e: &Exc) -> Response<Body> {
    let (name, message) = python(e);
    match e {
        Exc::User(_) | Exc::Validation(_) => json2_error(422, name, &message, false),
        Exc::Missing(_) => json2_error(404, name, &message, false),
        Exc::Access(_) => json2_error(403, name, &message, false),
        Exc::PrivateMethod { model, method } => json2_error(
            403,
            "odoo.exceptions.AccessError",
            &format!("Private methods (such as '{model}.{method}') cannot be called remotely."),
            false,
        ),
        Exc::AccessDenied => json2_error(
            401,
            "werkzeug.exceptions.Unauthorized",
            "Invalid apikey",
            true,
        ),
        Exc::UnknownModel(m) => json2_error(
            404,
            "werkzeug.exceptions.NotFound",
            &format!("the model '{m}' does not exist"),
            true,
        ),
        Exc::UnknownMethod { model, method } => json2_error(
            404,
            "werkzeug.exceptions.NotFound",
            &format!("The method '{model}.{method}' does not exist"),
            true,
        ),
        Exc::TypeErr(m) => json2_error(422, "werkzeug.exceptions.UnprocessableEntity", m, true),
        Exc::IdsOnModelMethod { model, method } => json2_error(
            422,
            "werkzeug.exceptions.UnprocessableEntity",
            &format!("cannot call {model}.{method} with ids"),
            true,
        ),
        Exc::UnknownDatabase(_) => html_not_found(),
        Exc::ValueErr(_) => json2_error(500, name, &message, false),
    }
}

async fn web_version(State(sim): State<Arc<SimOdoo>>) -> Response<Body> {
    if let Some(r) = faults::act(&sim.faults).await {
        return r;
    }
    let info = serde_json::json!({"version_info": [sim.opts.major, 0, 0, "final", 0, ""], "version": sim.version_string()});
    json_response(StatusCode::OK, info.to_string())
}

async fn json2_get(State(sim): State<Arc<SimOdoo>>) -> Response<Body> {
    if sim.opts.major < 19 {
        return html_not_found();
    }
    json2_error(
        404,
        "werkzeug.exceptions.NotFound",
        "Did you mean POST /json/2/<model>/<method>?",
        true,
    )
}

async fn json2(
    State(sim): State<Arc<SimOdoo>>,
    Path((model, method)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    if sim.opts.major < 19 {
        return html_not_found();
    }
    let _busy = InFlight::enter(&sim);
    if let Some(r) = faults::act(&sim.faults).await {
        return r;
    }
    if let Some(db) = headers.get("x-odoo-database").and_then(|v| v.to_str().ok()) {
        if db != sim.opts.database {
            return html_not_found();
        }
    }
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let key = match auth.split_once(' ') {
        Some((scheme, key)) if scheme.eq_ignore_ascii_case("bearer") => key.trim(),
        _ => {
            return json2_error(
                401,
                "werkzeug.exceptions.Unauthorized",
                "User not authenticated, use an API Key with a Bearer Authorization header.",
                true,
            )
        }
    };
    if key != sim.opts.api_key {
        return json2_error(
            401,
            "werkzeug.exceptions.Unauthorized",
            "Invalid apikey",
            true,
        );
    }
    let parsed: serde_json::Value = if body.is_empty() {
        serde_json::json!({})
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => {
                return json2_error(
                    400,
                    "werkzeug.exceptions.BadRequest",
                    &format!("could not parse the body as json: {e}"),
                    true,
                )
            }
        }
    };
    let Some(obj) = parsed.as_object().cloned() else {
        return json2_error(
            400,
            "werkzeug.exceptions.BadRequest",
            "the body must be a JSON object of named arguments",
            true,
        );
    };
    let result = call_checked(&sim, &model, &method, || {
        let (record, names, required) = signature(&method).expect("checked");
        let mut params = HashMap::new();
        let mut ids = None;
        let mut ctx = Ctx::default();
        let mut unexpected = None;
        for (k, v) in obj {
            match k.as_str() {
                "ids" => ids = Some(ids_of(&Value::from(v))),
                "context" => ctx = Ctx::from_value(Some(&Value::from(v))),
                name if names.contains(&name) => {
                    params.insert(name.to_string(), Value::from(v));
                }
                other => unexpected = unexpected.or(Some(other.to_string())),
            }
        }
        // Python's signature binding reports a missing argument before an unexpected one.
        for r in required {
            if !params.contains_key(*r) {
                return Err(Exc::TypeErr(format!("missing a required argument: '{r}'")));
            }
        }
        if let Some(other) = unexpected {
            if method == "search_read" {
                // Soaked up by **read_kwargs, then rejected deep inside: a 500, as recorded.
                return Err(Exc::ValueErr(format!(
                    "_read_format() got an unexpected keyword argument '{other}'"
                )));
            }
            return Err(Exc::TypeErr(format!(
                "got an unexpected keyword argument '{other}'"
            )));
        }
        if !record && ids.as_ref().is_some_and(|i| !i.is_empty()) {
            return Err(Exc::IdsOnModelMethod {
                model: model.clone(),
                method: method.clone(),
            });
        }
        Ok(Named {
            ids: if record {
                Some(ids.unwrap_or_default())
            } else {
                None
            },
            params,
            ctx,
            single_create: false,
        })
    });
    match result {
        Ok(v) => json_response(StatusCode::OK, serde_json::Value::from(v).to_string()),
        Err(Exc::ValueErr(m)) if m.starts_with("_read_format") => {
            json2_error(500, "builtins.TypeError", &m, false)
        }
        Err(e) => json2_exc(&e),
    }
}
