//! The fault suite: the real daemon, with both marketplace channels (Cartona and Medusa), against
//! simulators that misbehave: flaky marketplaces, Odoo down (refused, then a proxy's 502, then
//! back), hostile webhook bodies and marketplace answers, and a state file that cannot be
//! written. Each test waits for conditions with deadlines; nothing depends on timing luck.

mod common;

use common::wait_until;
use marketsync::config::{MedusaFlavour, OdooProtocol, RawConfig};
use marketsync::odoo::{Domain, OdooClient, SearchOpts, Value};
use marketsync::sim::cartona::{self, CartonaHandle, Payment};
use marketsync::sim::faults::Fault;
use marketsync::sim::medusa::{self, MedusaHandle};
use marketsync::sim::odoo::SimHandle;
use marketsync::store::queue::{self, JobState};
use marketsync::store::{inbox, StorageFault, Store};
use rust_decimal::Decimal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const CARTONA_TOKEN: &str = "cartona-fault-token-5521";
const MEDUSA_KEY: &str = "mq_fault_key_0b7d";
const HOOK_SECRET: &str = "whsec_fault_suite_41c9";
const PRODUCTS: i64 = 12;
const MAX_ATTEMPTS: i64 = 12;
const WAIT: Duration = Duration::from_secs(60);

struct Env {
    odoo: SimHandle,
    cartona: CartonaHandle,
    medusa: MedusaHandle,
    dir: tempfile::TempDir,
    store: Store,
    client: OdooClient,
    stop: CancellationToken,
    daemon: tokio::task::JoinHandle<Result<(), marketsync::daemon::DaemonError>>,
    addr: SocketAddr,
}

fn sp(odoo_id: i64) -> String {
    (200_000 + odoo_id).to_string()
}

fn sku(id: i64) -> String {
    format!("SKU-{id:05}")
}

impl Env {
    /// Simulators up, Cartona products mapped, the daemon running with both channels.
    async fn new() -> Env {
        let odoo = common::odoo_sim(17, PRODUCTS as usize).await;
        let cartona = cartona::start(0, CARTONA_TOKEN).await.unwrap();
        for id in 1..=PRODUCTS {
            cartona
                .sim
                .add_product(&sp(id), Some(&id.to_string()), None, &format!("P{id}"));
        }
        let medusa = medusa::start(0, MedusaFlavour::Marqasouq, MEDUSA_KEY, "egp")
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "{}[schedule]\ncatalog_poll = \"1s\"\norders_poll = \"1s\"\nstatus_poll = \"1s\"\nodoo_health = \"1s\"\n\
             [retry]\nbase_delay = \"50ms\"\nmax_delay = \"500ms\"\nmax_attempts = {MAX_ATTEMPTS}\n\
             [daemon]\nqueue_poll = \"100ms\"\n[webhooks]\nlisten = \"127.0.0.1:0\"\nbody_timeout = \"1s\"\nmax_body_bytes = 65536\n\
             [channels.cartona]\nenabled = true\nbase_url = \"{}\"\ntoken = \"{CARTONA_TOKEN}\"\npoll_overlap = \"2s\"\ntimeout = \"1s\"\n\
             [channels.medusa]\nenabled = true\nflavour = \"marqasouq\"\nbase_url = \"{}\"\ntoken = \"{MEDUSA_KEY}\"\n\
             webhook_secret = \"{HOOK_SECRET}\"\ncurrency = \"egp\"\npoll_overlap = \"2s\"\ntimeout = \"1s\"\n",
            common::config_text(&odoo.url(), OdooProtocol::Xmlrpc, dir.path(), "")
                .replace("[webhooks]\nlisten = \"127.0.0.1:0\"\n", ""),
            cartona.base_url(),
            medusa.base_url(),
        );
        std::fs::write(dir.path().join("config.toml"), &text).unwrap();
        let config = RawConfig::parse(&text).unwrap().validate().unwrap();
        let store = Store::open(&config.state.path).unwrap();
        let client = OdooClient::connect(&config.odoo).await.unwrap();
        common::map_cartona(&config, &client, &store).await;
        let (stop, task, addr) = common::spawn_daemon(config, store.clone()).await;
        Env {
            odoo,
            cartona,
            medusa,
            dir,
            store,
            client,
            stop,
            daemon: task,
            addr,
        }
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("config.toml")
    }

    async fn stop(self) {
        assert!(!self.daemon.is_finished(), "the daemon stopped on its own");
        self.stop.cancel();
        self.daemon.await.unwrap().unwrap();
    }

    fn odoo_price(&self, id: i64) -> Decimal {
        self.odoo.sim.world().get("product.product", id).unwrap()["list_price"]
            .as_decimal()
            .unwrap()
    }

    /// Both marketplaces hold exactly Odoo's prices and stock.
    fn converged(&self) -> bool {
        (1..=PRODUCTS).all(|id| {
            let price = self.odoo_price(id);
            let free = self.odoo.sim.world().free_qty(id) as i64;
            let c = self.cartona.sim.product(&sp(id));
            let m = self.medusa.sim.product(&sku(id));
            c.is_some_and(|c| {
                c.selling_price == format!("{price:.2}") && c.available_stock_quantity == free
            }) && m.is_some_and(|m| {
                m.price == marketsync::sync::money::round(price, "egp") && m.quantity == free
            })
        })
    }

    async fn orders_named(&self, reference: &str) -> usize {
        self.client
            .search_read(
                "sale.order",
                &Domain::all().and("client_order_ref", "=", reference),
                &["id"],
                SearchOpts::default(),
            )
            .await
            .unwrap()
            .len()
    }

    async fn wait_order(&self, reference: &str) {
        let end = tokio::time::Instant::now() + WAIT;
        while self.orders_named(reference).await == 0 {
            assert!(
                tokio::time::Instant::now() < end,
                "no Odoo order {reference}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Changes a price in Odoo as a user would (write_date moves).
    async fn set_price(&self, id: i64, cents: i64) {
        self.client
            .write(
                "product.product",
                &[id],
                Value::record([("list_price", Value::Double(cents as f64 / 100.0))]),
            )
            .await
            .unwrap();
    }

    fn cartona_order(&self, product: i64) -> String {
        self.cartona.sim.place_order(
            0,
            &[(&sp(product), 2, self.odoo_price(product))],
            Payment::Cash,
            false,
        )
    }

    /// A Medusa order and its signed webhook; the reference it gets in Odoo.
    async fn medusa_order(&self, product: i64) -> (String, u16) {
        let id = self.medusa.sim.place_order(
            "buyer@example.com",
            &[(&sku(product), 1, Decimal::new(3_250, 3))],
        );
        let (status, _) = self
            .webhook(self.medusa.sim.webhook_body("order.created", &id))
            .await;
        let display = self.medusa.sim.order(&id).unwrap().json["display_id"]
            .as_i64()
            .unwrap();
        (format!("MEDUSA-{display}"), status)
    }

    async fn webhook(&self, body: Vec<u8>) -> (u16, String) {
        medusa::send_webhook(
            &format!("http://{}/webhooks/medusa", self.addr),
            HOOK_SECRET,
            body,
            chrono::Utc::now().timestamp(),
        )
        .await
    }

    fn dead(&self) -> Vec<queue::Job> {
        queue::list(&self.store, Some(JobState::Dead), None, 100).unwrap()
    }

    /// Every job ever run stayed within the retry policy.
    fn assert_attempts_within_policy(&self) {
        for state in JobState::ALL {
            for job in queue::list(&self.store, Some(state), None, 100_000).unwrap() {
                assert!(
                    i64::from(job.attempts) <= MAX_ATTEMPTS,
                    "job {} ({}/{}) made {} attempts, more than max_attempts {MAX_ATTEMPTS}",
                    job.id,
                    job.channel,
                    job.kind,
                    job.attempts
                );
            }
        }
    }

    async fn metrics(&self) -> String {
        reqwest::get(format!(
            "http://{}/metrics",
            common::admin_addr(&self.store)
        ))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
    }

    async fn healthz(&self) -> (u16, serde_json::Value) {
        let r = reqwest::get(format!("http://{}/healthz", self.addr))
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or_default())
    }

    fn log_has(&self, needle: &str) -> bool {
        common::sync_log(&self.store)
            .iter()
            .any(|r| r.message.contains(needle))
    }

    /// `marketsync status` as the operator runs it.
    fn status_text(&self) -> String {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_marketsync"))
            .arg("--config")
            .arg(self.config_path())
            .arg("status")
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    }
}

/// A value of one counter in Prometheus text, summed over the series matching `labels`.
fn counter(metrics: &str, name: &str, labels: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(name) && l.contains(labels))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test]
async fn flaky_marketplaces_converge_within_the_retry_policy_and_nothing_is_dead() {
    let env = Env::new().await;
    wait_until("first sync", WAIT, || env.converged()).await;
    let flaky = || {
        vec![
            Fault::Status {
                status: 503,
                body: "<html><title>503 Service Unavailable</title></html>".into(),
                retry_after: None,
            },
            Fault::Status {
                status: 429,
                body: "Too Many Requests".into(),
                retry_after: Some(1),
            },
            Fault::Drop,
            Fault::Delay(Duration::from_secs(2)), // beyond the 1 s channel timeout
            Fault::Status {
                status: 500,
                body: "Internal Server Error".into(),
                retry_after: None,
            },
        ]
    };
    // One request in two fails on Cartona, one in three on Medusa, while work keeps coming.
    env.cartona.sim.faults.every_nth_of(2, flaky());
    env.medusa.sim.faults.every_nth_of(3, flaky());
    let mut cartona_orders = Vec::new();
    let mut medusa_orders = Vec::new();
    for id in 1..=4 {
        env.set_price(id, 1_000 + id * 37).await;
        env.odoo
            .sim
            .world()
            .set_on_hand(id + 4, 40.0 + id as f64)
            .unwrap();
        cartona_orders.push(env.cartona_order(id + 6));
        let (reference, status) = env.medusa_order(id + 6).await;
        assert_eq!(
            status, 200,
            "webhooks are taken whatever the store's API does"
        );
        medusa_orders.push(reference);
    }
    wait_until("faults acted out", WAIT, || {
        env.cartona.sim.faults.acted() >= 10 && env.medusa.sim.faults.acted() >= 10
    })
    .await;
    // The peers recover.
    env.cartona.sim.faults.clear();
    env.medusa.sim.faults.clear();
    wait_until("converged after the faults", WAIT, || env.converged()).await;
    for hashed in &cartona_orders {
        let reference = format!("CARTONA-{hashed}");
        env.wait_order(&reference).await;
        assert_eq!(env.orders_named(&reference).await, 1, "{reference} once");
        wait_until("acknowledged to Cartona", WAIT, || {
            env.cartona.sim.order(hashed).unwrap().synced
        })
        .await;
    }
    for reference in &medusa_orders {
        env.wait_order(reference).await;
        assert_eq!(env.orders_named(reference).await, 1, "{reference} once");
    }
    assert!(env.dead().is_empty(), "dead: {:?}", env.dead());
    env.assert_attempts_within_policy();
    let m = env.metrics().await;
    assert!(counter(&m, "marketsync_retries_total", "channel=\"cartona\"") > 0);
    assert!(counter(&m, "marketsync_sends_total", "outcome=\"server_error\"") > 0);
    assert!(counter(&m, "marketsync_sends_total", "outcome=\"rate_limited\"") > 0);
    assert!(counter(&m, "marketsync_sends_total", "outcome=\"transport_error\"") > 0);
    assert!(counter(&m, "marketsync_sends_total", "outcome=\"ok\"") > 0);
    env.stop().await;
}

#[tokio::test]
async fn odoo_refused_then_502_then_back_waits_shows_since_when_and_dead_letters_nothing() {
    let mut env = Env::new().await;
    wait_until("first sync", WAIT, || env.converged()).await;
    // Connection refused: Odoo's port is closed.
    env.odoo.stop().await;
    let hashed = env.cartona_order(3);
    let (medusa_ref, status) = env.medusa_order(4).await;
    assert_eq!(status, 200, "webhooks are kept while Odoo is down");
    wait_until("status shows Odoo unreachable", WAIT, || {
        env.status_text().contains("UNREACHABLE since")
    })
    .await;
    let text = env.status_text();
    assert!(text.contains("UNREACHABLE since"), "{text}");
    // Then a reverse proxy answers 502 in Odoo's place.
    env.odoo.sim.faults.down(Fault::BadGateway);
    env.odoo.restart().await.unwrap();
    wait_until("502s seen", WAIT, || env.odoo.sim.faults.acted() >= 3).await;
    assert!(env.status_text().contains("UNREACHABLE since"));
    let (s, body) = env.healthz().await;
    assert_eq!(s, 200, "not unhealthy before stall_after: {body}");
    // Odoo is back.
    env.odoo.sim.faults.up();
    let reference = format!("CARTONA-{hashed}");
    env.wait_order(&reference).await;
    env.wait_order(&medusa_ref).await;
    assert_eq!(env.orders_named(&reference).await, 1);
    assert_eq!(env.orders_named(&medusa_ref).await, 1);
    wait_until("status shows Odoo reachable", WAIT, || {
        env.status_text().contains("reachable") && !env.status_text().contains("UNREACHABLE")
    })
    .await;
    env.set_price(2, 7_777).await;
    wait_until("converged after Odoo came back", WAIT, || env.converged()).await;
    assert!(env.dead().is_empty(), "dead: {:?}", env.dead());
    env.assert_attempts_within_policy();
    env.stop().await;
}

/// Sends raw bytes as a webhook, signed or not, and returns the status and body.
async fn raw_webhook(addr: SocketAddr, body: Vec<u8>, signed: bool) -> (u16, String) {
    if signed {
        return medusa::send_webhook(
            &format!("http://{addr}/webhooks/medusa"),
            HOOK_SECRET,
            body,
            chrono::Utc::now().timestamp(),
        )
        .await;
    }
    let r = reqwest::Client::new()
        .post(format!("http://{addr}/webhooks/medusa"))
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn hostile_webhook_bodies_are_refused_clearly_and_harm_nothing() {
    let env = Env::new().await;
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut random = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect()
    };
    let deep = "[".repeat(50_000).into_bytes();
    let cases: Vec<(&str, Vec<u8>, bool, u16, &str)> = vec![
        (
            "random bytes, unsigned",
            random(4096),
            false,
            401,
            "Signature",
        ),
        (
            "random bytes, signed",
            random(4096),
            true,
            400,
            "malformed JSON",
        ),
        (
            "truncated JSON",
            br#"{"event":"order.created","data":{"order":{"id":"ord_"#.to_vec(),
            true,
            400,
            "malformed JSON",
        ),
        ("deeply nested JSON", deep, true, 400, "malformed JSON"),
        (
            "event of the wrong type",
            br#"{"event":42,"data":{}}"#.to_vec(),
            true,
            400,
            "name (a string)",
        ),
        (
            "order id of the wrong type",
            br#"{"event":"order.created","data":{"order":{"id":42}}}"#.to_vec(),
            true,
            400,
            "data.order.id",
        ),
        (
            "empty order id",
            br#"{"event":"order.created","data":{"order":{"id":""}}}"#.to_vec(),
            true,
            400,
            "unusable",
        ),
        (
            "data of the wrong type",
            br#"{"event":"order.created","data":"ord_1"}"#.to_vec(),
            true,
            400,
            "data.order.id",
        ),
        (
            "unknown event",
            br#"{"event":"cart.updated","data":{}}"#.to_vec(),
            true,
            400,
            "unknown event",
        ),
        (
            "not an object",
            b"[1,2,3]".to_vec(),
            true,
            400,
            "name (a string)",
        ),
        ("empty body", Vec::new(), true, 400, "malformed JSON"),
        (
            "huge body",
            vec![b' '; 200_000],
            true,
            413,
            "max_body_bytes",
        ),
    ];
    for (what, body, signed, want, says) in cases {
        let (status, reply) = raw_webhook(env.addr, body, signed).await;
        assert_eq!(status, want, "{what}: {reply}");
        assert!(
            reply.contains(says),
            "{what}: the answer {reply:?} should say {says:?}"
        );
    }
    // A body sent very slowly: the headers promise 100 bytes, 10 arrive, then nothing.
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut conn = tokio::net::TcpStream::connect(env.addr).await.unwrap();
        conn.write_all(
            b"POST /webhooks/medusa HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"event\":",
        )
        .await
        .unwrap();
        let mut answer = Vec::new();
        tokio::time::timeout(WAIT, conn.read_to_end(&mut answer))
            .await
            .expect("a slow sender is cut off")
            .unwrap();
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("body_timeout"), "{answer}");
    }
    assert_eq!(
        inbox::list(&env.store, None, 100).unwrap().len(),
        0,
        "nothing hostile was stored"
    );
    // Other work goes on: a good webhook right after is taken and imported.
    let (reference, status) = env.medusa_order(5).await;
    assert_eq!(status, 200);
    env.wait_order(&reference).await;
    let m = env.metrics().await;
    for outcome in [
        "unauthorized",
        "malformed",
        "invalid",
        "too_large",
        "too_slow",
        "accepted",
    ] {
        assert!(
            counter(
                &m,
                "marketsync_webhooks_total",
                &format!("outcome=\"{outcome}\"")
            ) > 0,
            "webhook outcome {outcome} counted:\n{m}"
        );
    }
    env.stop().await;
}

#[tokio::test]
async fn hostile_marketplace_answers_are_clear_errors_and_other_work_goes_on() {
    let env = Env::new().await;
    wait_until("first sync", WAIT, || env.converged()).await;
    let ok = |body: &str| Fault::Status {
        status: 200,
        body: body.into(),
        retry_after: None,
    };
    let hostile = vec![
        ok("<!DOCTYPE html><html><body><h1>Welcome to nginx!</h1></body></html>"),
        ok(""),
        ok("{\"data\": \"not a list\", \"meta\": 7}"),
        ok("[{\"id\": {\"nested\": true}}, null, 5]"),
        ok("{\"orders\": null}"),
        ok("\u{0}\u{1}\u{2}binary"),
        ok("{\"truncated\": [1, 2"),
    ];
    // Hostile answers to reads (orders, products): an answer to a write that lies about the
    // peer's state is not something a client can detect.
    env.cartona.sim.faults.reads_only(true);
    env.medusa.sim.faults.reads_only(true);
    env.cartona.sim.faults.push(hostile.clone());
    env.medusa.sim.faults.push(hostile.clone());
    env.cartona.sim.faults.every_nth_of(3, hostile.clone());
    env.medusa.sim.faults.every_nth_of(3, hostile);
    env.set_price(1, 4_321).await;
    env.odoo.sim.world().set_on_hand(2, 17.0).unwrap();
    let hashed = env.cartona_order(6);
    let (medusa_ref, status) = env.medusa_order(7).await;
    assert_eq!(status, 200);
    wait_until("hostile answers acted out", WAIT, || {
        env.cartona.sim.faults.acted() >= 10 && env.medusa.sim.faults.acted() >= 10
    })
    .await;
    assert!(!env.daemon.is_finished(), "nothing panicked the daemon");
    wait_until("a clear logged error", WAIT, || env.log_has("not JSON")).await;
    env.cartona.sim.faults.clear();
    env.medusa.sim.faults.clear();
    wait_until("converged after hostile answers", WAIT, || env.converged()).await;
    let reference = format!("CARTONA-{hashed}");
    env.wait_order(&reference).await;
    env.wait_order(&medusa_ref).await;
    assert_eq!(env.orders_named(&reference).await, 1);
    assert_eq!(env.orders_named(&medusa_ref).await, 1);
    env.assert_attempts_within_policy();
    env.stop().await;
}

async fn state_unwritable(fault: StorageFault) {
    let env = Env::new().await;
    wait_until("first sync", WAIT, || env.converged()).await;
    env.store.simulate_fault(Some(fault)).unwrap();
    // A webhook that cannot be recorded is not acknowledged (the store sends it again); on a
    // full disk a small one may still fit, and then it is acknowledged and kept.
    let (medusa_ref, status) = env.medusa_order(3).await;
    match fault {
        StorageFault::ReadOnly => assert_eq!(status, 503, "not acknowledged while read-only"),
        StorageFault::Full => assert!(status == 503 || status == 200, "{status}"),
    }
    wait_until("healthz says paused", WAIT, || {
        let h = block_on(env.healthz());
        h.0 == 503 && h.1.to_string().contains("cannot be written")
    })
    .await;
    let text = env.status_text();
    assert!(text.contains("UNHEALTHY"), "{text}");
    assert!(text.contains("state database cannot be written"), "{text}");
    assert!(env.metrics().await.contains("marketsync_paused 1"));
    // Work arriving meanwhile waits: an Odoo price change and a Cartona order.
    env.set_price(4, 9_999).await;
    let hashed = env.cartona_order(5);
    // Fixed: it resumes by itself and catches up.
    env.store.simulate_fault(None).unwrap();
    wait_until("resumed", WAIT, || block_on(env.healthz()).0 == 200).await;
    assert!(env.log_has("resumed after"));
    let (s, _) = env
        .webhook(
            env.medusa
                .sim
                .webhook_body("order.created", &medusa_id(&env, &medusa_ref)),
        )
        .await;
    assert_eq!(s, 200, "the store's retry is taken once writable again");
    wait_until("converged after the pause", WAIT, || env.converged()).await;
    let reference = format!("CARTONA-{hashed}");
    env.wait_order(&reference).await;
    env.wait_order(&medusa_ref).await;
    assert_eq!(env.orders_named(&reference).await, 1);
    assert_eq!(env.orders_named(&medusa_ref).await, 1);
    assert!(env.dead().is_empty(), "dead: {:?}", env.dead());
    env.stop().await;
}

/// The Medusa order id behind an Odoo reference `MEDUSA-<display_id>`.
fn medusa_id(env: &Env, reference: &str) -> String {
    let display: i64 = reference.trim_start_matches("MEDUSA-").parse().unwrap();
    env.medusa
        .sim
        .orders()
        .into_iter()
        .find(|o| o.json["display_id"].as_i64() == Some(display))
        .unwrap()
        .json["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Runs a future to completion from a synchronous check (`wait_until` takes a closure).
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(f))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_state_pauses_the_daemon_which_says_why_and_resumes_when_fixed() {
    state_unwritable(StorageFault::ReadOnly).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_pauses_the_daemon_which_says_why_and_resumes_when_fixed() {
    state_unwritable(StorageFault::Full).await;
}
