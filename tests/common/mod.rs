//! Helpers shared by the integration tests: simulators on 127.0.0.1:0, configs pointing at
//! them, and waiting for conditions with a deadline (never a fixed sleep).
#![allow(dead_code)]

use marketsync::channel::cartona::matching::MatchReport;
use marketsync::config::{ChannelKind, Config, OdooConfig, OdooProtocol, RawConfig};
use marketsync::daemon::{Daemon, DaemonError};
use marketsync::odoo::OdooClient;
use marketsync::sim::odoo::{self as sim_odoo, SimHandle, SimOptions};
use marketsync::store::Store;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub const PROTOCOLS: [OdooProtocol; 3] = [
    OdooProtocol::Xmlrpc,
    OdooProtocol::Jsonrpc,
    OdooProtocol::Json2,
];

pub async fn odoo_sim(major: u32, products: usize) -> SimHandle {
    sim_odoo::start(SimOptions {
        major,
        products,
        ..SimOptions::default()
    })
    .await
    .expect("simulator starts")
}

/// A validated config for a simulator at `url`, state in `dir`.
pub fn config_text(url: &str, protocol: OdooProtocol, dir: &Path, extra: &str) -> String {
    format!(
        "[odoo]\nurl = \"{url}\"\ndatabase = \"odoo\"\nusername = \"admin\"\napi_key = \"admin\"\nprotocol = \"{}\"\ntimeout = \"10s\"\n\
         [state]\npath = \"{}\"\n[webhooks]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n{extra}",
        protocol.as_str(),
        dir.join("state.db").display()
    )
}

pub fn config(url: &str, protocol: OdooProtocol, dir: &Path, extra: &str) -> Config {
    RawConfig::parse(&config_text(url, protocol, dir, extra))
        .unwrap()
        .validate()
        .unwrap()
}

pub fn odoo_config(url: &str, protocol: OdooProtocol) -> OdooConfig {
    config(url, protocol, Path::new("/tmp"), "").odoo
}

/// Polls `check` every 20 ms until it holds or `deadline` passes.
pub async fn wait_until<F: FnMut() -> bool>(what: &str, deadline: Duration, mut check: F) {
    let end = tokio::time::Instant::now() + deadline;
    while !check() {
        if tokio::time::Instant::now() > end {
            panic!("timed out after {deadline:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the change poll of `stream` (2 s overlap) no longer reads products 1..=`last`
/// for their own writes: its window starts after the latest of them.
pub async fn wait_out_of_window(store: &Store, odoo: &SimHandle, stream: &str, last: i64) {
    let written = (1..=last)
        .filter_map(|id| {
            odoo.sim.world().get("product.product", id).unwrap()["write_date"]
                .as_opt_str()
                .map(str::to_string)
        })
        .max()
        .unwrap();
    wait_until(
        "products out of the change window",
        Duration::from_secs(30),
        || {
            marketsync::store::streams::get(store, stream)
                .unwrap()
                .and_then(|s| s.cursor)
                .map(|c| marketsync::sync::catalog::with_overlap(&c, Duration::from_secs(2)).at)
                .is_some_and(|from| from > written)
        },
    )
    .await;
}

/// The stream's error, while its last run failed.
pub fn stream_error(store: &Store, name: &str) -> Option<String> {
    marketsync::store::streams::get(store, name)
        .unwrap()
        .and_then(|s| s.last_error.filter(|_| s.last_error_at > s.last_success_at))
}

/// `marketsync map import` for the configured Cartona channel.
pub async fn map_cartona(config: &Config, odoo: &OdooClient, store: &Store) -> MatchReport {
    let ch = config.channel(ChannelKind::Cartona).unwrap();
    let api = marketsync::channel::cartona::client(ch).unwrap();
    marketsync::channel::cartona::matching::import(
        &api,
        odoo,
        store,
        ch.cartona().unwrap().match_key,
        false,
    )
    .await
    .unwrap()
}

/// The daemon running in this process: its stop token, its task and where it listens.
pub async fn spawn_daemon(
    config: Config,
    store: Store,
) -> (
    CancellationToken,
    tokio::task::JoinHandle<Result<(), DaemonError>>,
    SocketAddr,
) {
    let mut daemon = Daemon::new(config, store);
    let (tx, rx) = tokio::sync::oneshot::channel();
    daemon.bound = Some(tx);
    let stop = CancellationToken::new();
    let task = tokio::spawn(daemon.run(stop.clone()));
    let addr = tokio::time::timeout(Duration::from_secs(30), rx)
        .await
        .unwrap()
        .unwrap();
    (stop, task, addr)
}

/// The sync log, newest first (up to 10,000 rows).
pub fn sync_log(store: &Store) -> Vec<marketsync::store::synclog::Row> {
    marketsync::store::synclog::query(
        store,
        &marketsync::store::synclog::Query {
            limit: 10_000,
            ..Default::default()
        },
    )
    .unwrap()
}

/// Where the daemon's operator listener (`/metrics`) is bound, as it records it.
pub fn admin_addr(store: &Store) -> SocketAddr {
    marketsync::store::facts::get(store, marketsync::store::facts::DAEMON_ADMIN_LISTEN)
        .unwrap()
        .expect("the daemon records its operator listener")
        .0
        .parse()
        .unwrap()
}

/// `systemd-analyze verify` of a unit's text (ExecStart pointed at `exe`), as `dest`; `false`
/// where systemd-analyze is not installed. Fails on any complaint about the unit itself.
pub fn verify_unit(text: &str, dest: &str, exe: &Path) -> bool {
    if std::process::Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("systemd-analyze not installed: skipping the verify step");
        return false;
    }
    let dir = tempfile::tempdir().unwrap();
    let text = text.replace(
        "ExecStart=marketsync ",
        &format!("ExecStart={} ", exe.display()),
    );
    let path = dir.path().join(dest);
    std::fs::write(&path, text).unwrap();
    let out = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    let noise = String::from_utf8_lossy(&out.stderr);
    let ours: Vec<&str> = noise.lines().filter(|l| l.contains(dest)).collect();
    assert!(out.status.success() && ours.is_empty(), "{dest}: {noise}");
    true
}

/// The one sync-log line that contains `text` (it must be said exactly once).
pub fn said_once(store: &Store, text: &str) -> marketsync::store::synclog::Row {
    let mut said: Vec<_> = sync_log(store)
        .into_iter()
        .filter(|r| r.message.contains(text))
        .collect();
    assert_eq!(said.len(), 1, "{text:?} said once: {said:?}");
    said.remove(0)
}

/// The events a simulated Medusa store heard for one order, in order.
pub fn medusa_heard(shop: &marketsync::sim::medusa::MedusaHandle, id: &str) -> Vec<String> {
    shop.sim
        .order(id)
        .unwrap()
        .events
        .iter()
        .map(|e| e["event_type"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Waits until the stream has succeeded twice more.
pub async fn two_more_runs(store: &Store, name: &str) {
    let runs = || {
        marketsync::store::streams::get(store, name)
            .unwrap()
            .and_then(|s| s.last_success_at)
            .unwrap_or(0)
    };
    for _ in 0..2 {
        let before = runs();
        wait_until(&format!("{name} ran"), Duration::from_secs(30), || {
            runs() > before
        })
        .await;
    }
}

/// How many times the simulated Odoo was called for `model.method` (`sale.order.create`).
pub fn odoo_calls(odoo: &SimHandle, method: &str) -> u64 {
    odoo.sim.calls().get(method).copied().unwrap_or(0)
}

/// A TCP gate in front of a simulator, for outages as a marketplace has them: while closed,
/// nothing listens on its port (connection refused) and the connections it carried are cut;
/// opened again, it listens on the same port.
pub struct Gate {
    pub addr: SocketAddr,
    target: SocketAddr,
    open: std::sync::Arc<std::sync::Mutex<Option<CancellationToken>>>,
}

impl Gate {
    /// An open gate on 127.0.0.1 that forwards to `target`.
    pub async fn new(target: SocketAddr) -> Gate {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let gate = Gate {
            addr: listener.local_addr().unwrap(),
            target,
            open: Default::default(),
        };
        gate.serve(listener);
        gate
    }

    /// `url` (a simulator's) with the gate's port in place of the simulator's.
    pub fn url(&self, url: &str) -> String {
        url.replace(&self.target.to_string(), &self.addr.to_string())
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let token = CancellationToken::new();
        *self.open.lock().unwrap() = Some(token.clone());
        let target = self.target;
        tokio::spawn(async move {
            loop {
                let (mut inbound, _) = tokio::select! {
                    _ = token.cancelled() => return,
                    a = listener.accept() => match a { Ok(a) => a, Err(_) => return },
                };
                let token = token.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = token.cancelled() => {}
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                    }
                });
            }
        });
    }

    /// Closes the gate: connections are refused until [`Gate::open`].
    pub async fn close(&self) {
        if let Some(token) = self.open.lock().unwrap().take() {
            token.cancel();
        }
        // The listener is dropped by its task; wait until the port refuses.
        wait_until_async("the gate closed", Duration::from_secs(10), || async {
            tokio::net::TcpStream::connect(self.addr).await.is_err()
        })
        .await;
    }

    /// Opens the gate again, on the same port.
    pub async fn open(&self) {
        let end = tokio::time::Instant::now() + Duration::from_secs(10);
        let listener = loop {
            match tokio::net::TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(e) if tokio::time::Instant::now() < end => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("the gate cannot listen on {} again: {e}", self.addr),
            }
        };
        self.serve(listener);
    }
}

/// [`wait_until`] for a condition that must be awaited.
pub async fn wait_until_async<F, Fut>(what: &str, deadline: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = tokio::time::Instant::now() + deadline;
    while !check().await {
        if tokio::time::Instant::now() > end {
            panic!("timed out after {deadline:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An Odoo order's `amount_total`.
#[allow(dead_code)]
pub async fn amount_total(odoo: &OdooClient, order: i64) -> rust_decimal::Decimal {
    odoo.read("sale.order", &[order], &["amount_total"])
        .await
        .unwrap()[0]
        .get("amount_total")
        .and_then(marketsync::odoo::Value::as_decimal)
        .unwrap()
}

/// The line of `marketsync check`'s output whose target is `target`.
#[allow(dead_code)]
pub fn check_line(output: &str, target: &str) -> String {
    output
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(target))
        .unwrap_or_else(|| panic!("no {target} line in {output}"))
        .to_string()
}

/// `marketsync --config <config> <args>` (no colour): exit code and stdout.
pub async fn cli(config: &Path, args: &[&str]) -> (Option<i32>, String) {
    let out = run_cli(config, args).await;
    (out.status.code(), String::from_utf8(out.stdout).unwrap())
}

async fn run_cli(config: &Path, args: &[&str]) -> std::process::Output {
    let mut cmd = assert_cmd::Command::cargo_bin("marketsync").unwrap();
    cmd.env("NO_COLOR", "1")
        .arg("--config")
        .arg(config)
        .args(args);
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

/// As [`cli`], with what it wrote on stderr after its stdout (for errors).
#[allow(dead_code)]
pub async fn cli_with_errors(config: &Path, args: &[&str]) -> (Option<i32>, String) {
    let out = run_cli(config, args).await;
    (
        out.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Validates an order's deliveries in Odoo with a tracking number, as warehouse staff would.
pub async fn ship_in_odoo(client: &OdooClient, order: i64, tracking: &str) {
    use marketsync::odoo::{Domain, Value};
    let picking = client
        .search(
            "stock.picking",
            &Domain::all().and("sale_id", "=", order),
            None,
        )
        .await
        .unwrap();
    client
        .write(
            "stock.picking",
            &picking,
            Value::record([("carrier_tracking_ref", Value::from(tracking))]),
        )
        .await
        .unwrap();
    client
        .call_method("stock.picking", "button_validate", &picking)
        .await
        .unwrap();
}

/// The operator listener's `/metrics` text of the daemon that runs on `store`.
pub async fn metrics(store: &Store) -> String {
    reqwest::get(format!("http://{}/metrics", admin_addr(store)))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}
