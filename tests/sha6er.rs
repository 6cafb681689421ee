//! Sha6er deliveries end to end: the real daemon with the Medusa channel and the Sha6er
//! channel, against the Odoo, Medusa and Sha6er simulators. Orders placed in the store and
//! confirmed in Odoo are shipped; the courier's steps (driven here through the simulator's
//! dispatch and courier side) come back into Odoo and the store.

mod common;

use common::wait_until;
use marketsync::channel::sha6er::wire::Status;
use marketsync::config::{OdooProtocol, RawConfig};
use marketsync::odoo::OdooClient;
use marketsync::sim::medusa::{self, MedusaHandle};
use marketsync::sim::odoo::SimHandle;
use marketsync::sim::sha6er::{self, CreateFault, Sha6erHandle};
use marketsync::store::{shipments, Store};
use rust_decimal::Decimal;
use std::net::SocketAddr;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const KEY: &str = "sk_test_medusa_sh_9a1c";
const HOOK_SECRET: &str = "whsec_test_medusa_sh_11";
const SHA6ER_KEY: &str = "sha6er-test-key-7f3e";
const SHA6ER_SECRET: &str = "sha6er-whsec-test-5b2d";
const WAIT: Duration = Duration::from_secs(30);

struct Env {
    odoo: SimHandle,
    shop: MedusaHandle,
    sh: Sha6erHandle,
    _dir: tempfile::TempDir,
    store: Store,
    client: OdooClient,
    stop: CancellationToken,
    daemon: tokio::task::JoinHandle<Result<(), marketsync::daemon::DaemonError>>,
    addr: SocketAddr,
    config_path: std::path::PathBuf,
}

impl Env {
    async fn new() -> Env {
        Env::on(17, OdooProtocol::Xmlrpc).await
    }

    async fn on(major: u32, protocol: OdooProtocol) -> Env {
        Env::with(major, protocol, "").await
    }

    /// `sha6er`: more `[channels.sha6er]` keys.
    async fn with(major: u32, protocol: OdooProtocol, sha6er: &str) -> Env {
        let odoo = common::odoo_sim(major, 6).await;
        odoo.sim.world().set_company_currency("KWD").unwrap();
        let shop = medusa::start(0, marketsync::config::MedusaFlavour::AdminApi, KEY, "kwd")
            .await
            .unwrap();
        let sh = sha6er::start(0, SHA6ER_KEY).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "{}[schedule]\ncatalog_poll = \"1s\"\norders_poll = \"1s\"\nstatus_poll = \"1s\"\nchannel_probe = \"100ms\"\n\
             [retry]\nbase_delay = \"100ms\"\nmax_delay = \"1s\"\n[daemon]\nqueue_poll = \"100ms\"\n\
             [channels.medusa]\nenabled = true\nflavour = \"admin-api\"\nbase_url = \"{}\"\ntoken = \"{KEY}\"\nwebhook_secret = \"{HOOK_SECRET}\"\n\
             currency = \"kwd\"\nlocation_id = \"sloc_01SIMWAREHOUSE\"\npoll_overlap = \"2s\"\n\
             [channels.sha6er]\nenabled = true\nbase_url = \"{}\"\ntoken = \"{SHA6ER_KEY}\"\nwebhook_secret = \"{SHA6ER_SECRET}\"\n\
             warehouse = \"WH\"\ncod_for = [\"medusa\"]\nstale_after = \"10s\"\ntimeout = \"2s\"\n{sha6er}",
            common::config_text(&odoo.url(), protocol, dir.path(), ""),
            shop.base_url(),
            sh.base_url(),
        );
        let config_path = dir.path().join("config.toml");
        std::fs::write(&config_path, &text).unwrap();
        let (store, client, stop, daemon, addr) = Self::run(&text).await;
        sh.sim
            .set_webhook(&format!("http://{addr}/webhooks/sha6er"), SHA6ER_SECRET);
        Env {
            odoo,
            shop,
            sh,
            _dir: dir,
            store,
            client,
            stop,
            daemon,
            addr,
            config_path,
        }
    }

    async fn run(
        text: &str,
    ) -> (
        Store,
        OdooClient,
        CancellationToken,
        tokio::task::JoinHandle<Result<(), marketsync::daemon::DaemonError>>,
        SocketAddr,
    ) {
        let config = RawConfig::parse(text).unwrap().validate().unwrap();
        let store = Store::open(&config.state.path).unwrap();
        let client = OdooClient::connect(&config.odoo).await.unwrap();
        let (stop, daemon, addr) = common::spawn_daemon(config, store.clone()).await;
        (store, client, stop, daemon, addr)
    }

    /// A Medusa order of these lines placed and imported: (store id, Odoo order id).
    async fn order(&self, lines: &[(&str, i64)]) -> (String, i64) {
        let items: Vec<(&str, i64, Decimal)> = lines
            .iter()
            .map(|(sku, q)| (*sku, *q, Decimal::new(12_900, 3)))
            .collect();
        let id = self.shop.sim.place_order("buyer@example.com", &items);
        let display = self.shop.sim.order(&id).unwrap().json["display_id"]
            .as_i64()
            .unwrap();
        let reference = format!("MEDUSA-{display}");
        let mut found = None;
        wait_until("the order imported", WAIT, || {
            found = self
                .odoo
                .sim
                .world()
                .search_ids("sale.order", "client_order_ref", &reference);
            found.is_some()
        })
        .await;
        (id, found.unwrap())
    }

    /// An order placed, imported and confirmed in Odoo, and its delivery's shipment: (store id,
    /// Odoo order, delivery, shipment id).
    async fn confirmed(&self, lines: &[(&str, i64)]) -> (String, i64, i64, String) {
        let (store_id, order) = self.order(lines).await;
        self.client
            .call_method("sale.order", "action_confirm", &[order])
            .await
            .unwrap();
        let picking = self.picking(order);
        let id = wait_shipment(self, picking).await;
        (store_id, order, picking, id)
    }

    /// An order of one `sku` made in Odoo itself (no marketplace's), confirmed.
    fn odoo_order(&self, sku: &str) -> i64 {
        use marketsync::odoo::Value;
        let mut w = self.odoo.sim.world();
        let partner = w.search_ids("res.partner", "city", "Giza").unwrap();
        let product = w
            .search_ids("product.product", "default_code", sku)
            .unwrap();
        let line = Value::record([
            ("product_id", Value::Int(product)),
            ("product_uom_qty", Value::Double(1.0)),
        ]);
        let o = w
            .create(
                "sale.order",
                &Value::record([
                    ("partner_id", Value::Int(partner)),
                    (
                        "order_line",
                        Value::Array(vec![Value::Array(vec![Value::Int(0), Value::Int(0), line])]),
                    ),
                ]),
            )
            .unwrap();
        w.action_confirm(&[o]).unwrap();
        o
    }

    /// The Odoo delivery of the order that is not a backorder.
    fn picking(&self, order: i64) -> i64 {
        let w = self.odoo.sim.world();
        w.pickings_of(order).into_iter().min().unwrap()
    }

    fn shipment(&self, picking: i64) -> Option<shipments::ShipmentRow> {
        shipments::get(&self.store, picking).unwrap()
    }

    fn picking_state(&self, picking: i64) -> String {
        let w = self.odoo.sim.world();
        w.get("stock.picking", picking).unwrap()["state"]
            .as_str()
            .unwrap()
            .to_string()
    }

    fn chatter(&self, picking: i64) -> Vec<String> {
        self.odoo.sim.world().chatter("stock.picking", picking)
    }

    async fn stop(self) {
        self.stop.cancel();
        self.daemon.await.unwrap().unwrap();
        drop(self.odoo);
    }
}

async fn wait_shipment(env: &Env, picking: i64) -> String {
    let mut id = None;
    wait_until("the shipment created", WAIT, || {
        id = env.shipment(picking).and_then(|r| r.shipment_id);
        id.is_some()
    })
    .await;
    id.unwrap()
}

async fn wait_state(env: &Env, picking: i64, state: &str) {
    wait_until(&format!("shipment {state}"), WAIT, || {
        env.shipment(picking).is_some_and(|r| r.state == state)
    })
    .await;
}

#[tokio::test]
async fn a_medusa_order_is_delivered_end_to_end_by_sha6er() {
    let env = Env::new().await;
    let (store_id, _, picking, id) = env.confirmed(&[("SKU-00001", 2)]).await;
    let held = env.sh.sim.shipments();
    assert_eq!(held.len(), 1);
    let req = &held[0].request;
    let picking_name = env.odoo.sim.world().get("stock.picking", picking).unwrap()["name"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(req.reference, picking_name);
    assert!(req.order_reference.starts_with("MEDUSA-"));
    assert_eq!(
        req.pickup.city.as_deref(),
        Some("Cairo"),
        "the warehouse's address"
    );
    assert!(req.delivery.phone.is_some());
    assert_eq!(req.packages.len(), 1, "no Odoo package: one");
    assert_eq!(req.packages[0].items[0].quantity, 2.0);
    assert_eq!(req.declared_value.currency, "KWD");
    assert_eq!(
        req.cod.as_ref().map(|c| c.amount.clone()),
        Some(req.declared_value.amount.clone()),
        "unpaid Medusa order, cod_for medusa"
    );
    let tracking = held[0].tracking.clone();
    wait_until("the tracking on the picking", WAIT, || {
        env.odoo
            .sim
            .world()
            .get("stock.picking", picking)
            .unwrap()
            .get("carrier_tracking_ref")
            .and_then(|t| t.as_str().map(str::to_string))
            == Some(tracking.clone())
            && env.chatter(picking).iter().any(|m| m.contains(&tracking))
    })
    .await;

    // Courier assigned, picked up: the store hears it shipped with the tracking.
    env.sh.sim.update(&id, Status::Accepted, None).unwrap();
    env.sh.sim.assign(&id, "Ahmed", "+201001234567").unwrap();
    env.sh.sim.update(&id, Status::PickedUp, None).unwrap();
    wait_until("shipped in Medusa with the tracking", WAIT, || {
        env.shop.sim.order(&store_id).is_some_and(|o| {
            o.fulfillments.iter().any(|f| {
                f.shipped_at.is_some()
                    && f.labels
                        .iter()
                        .any(|l| l["tracking_number"] == tracking.as_str())
            })
        })
    })
    .await;
    assert_eq!(
        env.picking_state(picking),
        "assigned",
        "picked up: not delivered yet"
    );
    env.sh.sim.update(&id, Status::InTransit, None).unwrap();
    env.sh
        .sim
        .upload(&id, "photo", "door.jpg", "image/jpeg", b"\xff\xd8\xffphoto")
        .unwrap();
    env.sh
        .sim
        .upload(&id, "signature", "sig.png", "image/png", b"\x89PNGsig")
        .unwrap();
    env.sh.sim.confirm(&id, &[], Some("9071")).unwrap();
    wait_until("the picking validated", WAIT, || {
        env.picking_state(picking) == "done"
    })
    .await;
    wait_until("Medusa delivered", WAIT, || {
        env.shop
            .sim
            .order(&store_id)
            .is_some_and(|o| o.fulfillment_status() == "delivered")
    })
    .await;
    wait_until("the delivery told in the chatter", WAIT, || {
        env.chatter(picking)
            .iter()
            .any(|m| m.contains("): delivered"))
    })
    .await;
    let (attachments, chatter) = {
        let w = env.odoo.sim.world();
        let a: Vec<String> = w
            .data
            .get("ir.attachment")
            .map(|rows| {
                rows.values()
                    .filter(|r| r["res_id"].as_i64() == Some(picking))
                    .map(|r| r["name"].as_str().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default();
        (a, w.chatter("stock.picking", picking))
    };
    assert_eq!(attachments.len(), 2, "photo and signature: {attachments:?}");
    for step in [
        "accepted by Sha6er",
        "courier assigned",
        "Ahmed (+201001234567)",
        "picked up",
        "in transit",
        "delivered",
    ] {
        assert!(
            chatter.iter().any(|m| m.contains(step)),
            "{step} not in {chatter:?}"
        );
    }
    assert!(
        !chatter.iter().any(|m| m.contains("9071")),
        "the OTP is not written in the chatter"
    );
    assert_eq!(env.sh.sim.shipments().len(), 1, "one shipment");
    let log: Vec<String> = common::sync_log(&env.store)
        .into_iter()
        .map(|r| r.message)
        .collect();
    assert!(
        log.iter()
            .any(|l| l.contains("Sha6er shipment of") && l.contains("delivered")),
        "{log:?}"
    );
    env.stop().await;
}

#[tokio::test]
async fn a_two_package_shipment_delivered_in_part_leaves_a_backorder_of_the_rest() {
    delivered_in_part(Env::new().await).await
}

/// Odoo 19 over JSON-2, which names every argument (the backorder wizard's `vals_list`).
#[tokio::test]
async fn delivered_in_part_on_odoo_19_over_json_2() {
    delivered_in_part(Env::on(19, OdooProtocol::Json2).await).await
}

async fn delivered_in_part(env: Env) {
    let (store_id, order) = env.order(&[("SKU-00001", 2), ("SKU-00002", 3)]).await;
    let (picking, p1, p2) = {
        let mut w = env.odoo.sim.world();
        // Confirmed and packed in one go (the daemon sees it ready with its packages).
        w.action_confirm(&[order]).unwrap();
        let picking = w.pickings_of(order).into_iter().min().unwrap();
        let a = w
            .search_ids("product.product", "default_code", "SKU-00001")
            .unwrap();
        let b = w
            .search_ids("product.product", "default_code", "SKU-00002")
            .unwrap();
        w.put_in_pack(picking, a, 2.0).unwrap();
        w.put_in_pack(picking, b, 3.0).unwrap();
        (picking, a, b)
    };
    let id = wait_shipment(&env, picking).await;
    let req = env.sh.sim.shipments()[0].request.clone();
    assert_eq!(
        req.packages
            .iter()
            .map(|p| (p.reference.as_str(), p.items.len()))
            .collect::<Vec<_>>(),
        [("PACK0000001", 1), ("PACK0000002", 1)]
    );
    let values: Vec<Decimal> = req
        .packages
        .iter()
        .map(|p| p.value.parse().unwrap())
        .collect();
    assert!(values.iter().all(|v| *v > Decimal::ZERO), "{values:?}");
    assert_eq!(
        values.iter().copied().sum::<Decimal>(),
        req.declared_value.amount.parse::<Decimal>().unwrap(),
        "the packages' values make the declared value (what a partial delivery collects is theirs)"
    );
    env.sh.sim.update(&id, Status::PickedUp, None).unwrap();
    env.sh.sim.update(&id, Status::InTransit, None).unwrap();
    env.sh
        .sim
        .confirm(&id, &["PACK0000001".into()], None)
        .unwrap();
    let waited = tokio::time::timeout(WAIT, async {
        while env.picking_state(picking) != "done" {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    if waited.is_err() {
        let jobs = marketsync::store::queue::list(&env.store, None, Some("sha6er"), 100).unwrap();
        let log: Vec<String> = common::sync_log(&env.store)
            .into_iter()
            .map(|r| r.message)
            .collect();
        panic!(
            "not validated: {:?} {:?} {log:#?} {}",
            env.shipment(picking),
            env.chatter(picking),
            jobs.len()
        );
    }
    {
        let w = env.odoo.sim.world();
        let pickings = w.pickings_of(order);
        assert_eq!(pickings.len(), 2, "the delivery and its backorder");
        let bo = pickings.into_iter().max().unwrap();
        assert_eq!(
            w.get("stock.picking", bo).unwrap()["backorder_id"].as_i64(),
            Some(picking)
        );
        let qty = |pk: i64, product: i64| -> f64 {
            w.data["stock.move"]
                .values()
                .filter(|m| {
                    m["picking_id"].as_i64() == Some(pk)
                        && m["product_id"].as_i64() == Some(product)
                        && m["state"].as_str() != Some("cancel")
                })
                .map(|m| m["product_uom_qty"].as_f64().unwrap_or(0.0))
                .sum()
        };
        assert_eq!(
            (qty(picking, p1), qty(picking, p2)),
            (2.0, 0.0),
            "the first package's products delivered"
        );
        assert_eq!(
            qty(bo, p2),
            3.0,
            "the rest in the backorder; nothing invented"
        );
    }
    // The chatter is written once the validation is done.
    wait_until("the delivery told in the chatter", WAIT, || {
        env.chatter(picking)
            .iter()
            .any(|m| m.contains("1 of 2 package(s) delivered"))
    })
    .await;
    // The backorder, ready, is a shipment of its own; once delivered the store has it all.
    let bo = env
        .odoo
        .sim
        .world()
        .pickings_of(order)
        .into_iter()
        .max()
        .unwrap();
    let second = wait_shipment(&env, bo).await;
    assert_ne!(second, id);
    env.sh.sim.update(&second, Status::PickedUp, None).unwrap();
    env.sh.sim.confirm(&second, &[], None).unwrap();
    wait_until("the backorder validated", WAIT, || {
        env.picking_state(bo) == "done"
    })
    .await;
    wait_until("Medusa delivered, all of it", WAIT, || {
        env.shop
            .sim
            .order(&store_id)
            .is_some_and(|o| o.fulfillment_status() == "delivered")
    })
    .await;
    env.stop().await;
}

#[tokio::test]
async fn a_failed_delivery_is_flagged_and_validates_nothing() {
    let env = Env::new().await;
    let (_, order, picking, id) = env.confirmed(&[("SKU-00003", 1)]).await;
    env.sh.sim.update(&id, Status::PickedUp, None).unwrap();
    env.sh
        .sim
        .update(&id, Status::Failed, Some("customer not at the address"))
        .unwrap();
    wait_state(&env, picking, "failed").await;
    let order_row = marketsync::store::orders::by_odoo_ids(&env.store, &[order])
        .unwrap()
        .remove(&order)
        .unwrap();
    let attention = order_row.attention.unwrap_or_default();
    assert!(
        attention.contains("could not deliver")
            && attention.contains("customer not at the address"),
        "{attention}"
    );
    assert_eq!(env.picking_state(picking), "assigned", "nothing validated");
    let metrics = common::metrics(&env.store).await;
    assert!(
        metrics.contains("marketsync_shipments{state=\"failed\"} 1"),
        "{metrics}"
    );
    let (code, out) = common::cli(&env.config_path, &["shipments", "--state", "failed"]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("failed") && out.contains("customer not at the address"),
        "{out}"
    );
    let (_, list) = common::cli(&env.config_path, &["order", "list"]).await;
    assert!(list.contains("could not deliver"), "{list}");
    assert!(
        list.contains("SHIPMENT") && list.contains("failed SH6"),
        "the SHIPMENT column: {list}"
    );
    // Returned: flagged too, still nothing in Odoo.
    env.sh.sim.update(&id, Status::Returned, None).unwrap();
    wait_state(&env, picking, "returned").await;
    assert_eq!(env.picking_state(picking), "assigned");
    let attention = || {
        marketsync::store::orders::by_odoo_ids(&env.store, &[order]).unwrap()[&order]
            .attention
            .clone()
            .unwrap_or_default()
    };
    assert!(attention().contains("returned"), "{}", attention());
    // A failure the courier then makes good lowers the flag once delivered.
    let (_, second, p2, id2) = env.confirmed(&[("SKU-00002", 1)]).await;
    env.sh
        .sim
        .update(&id2, Status::Failed, Some("closed shop"))
        .unwrap();
    wait_state(&env, p2, "failed").await;
    let flagged = || {
        marketsync::store::orders::by_odoo_ids(&env.store, &[second]).unwrap()[&second]
            .attention
            .clone()
    };
    assert!(flagged().is_some_and(|a| a.contains("closed shop")));
    env.sh.sim.update(&id2, Status::InTransit, None).unwrap();
    env.sh.sim.confirm(&id2, &[], None).unwrap();
    wait_until("delivered after all", WAIT, || {
        env.picking_state(p2) == "done"
    })
    .await;
    wait_until("the flag lowered", WAIT, || flagged().is_none()).await;
    env.stop().await;
}

#[tokio::test]
async fn a_create_whose_answer_is_lost_is_looked_up_and_not_made_twice() {
    let env = Env::new().await;
    env.sh.sim.fault_next_create(CreateFault::LoseAnswer);
    let (_, _, _, id) = env.confirmed(&[("SKU-00004", 1)]).await;
    assert_eq!(
        env.sh.sim.shipments().len(),
        1,
        "one shipment: found by its reference"
    );
    assert_eq!(env.sh.sim.shipments()[0].id, id);
    let creates = env
        .sh
        .sim
        .requests
        .with(|r| r.iter().filter(|x| x.path == "create_shipment").count());
    assert_eq!(
        creates, 1,
        "the create is not sent again once the look-up finds it"
    );
    // The daemon stops cleanly with the shipment recorded.
    let Env { stop, daemon, .. } = env;
    stop.cancel();
    daemon.await.unwrap().unwrap();
}

#[tokio::test]
async fn hostile_webhooks_store_nothing() {
    let env = Env::new().await;
    let url = format!("http://{}/webhooks/sha6er", env.addr);
    let good = serde_json::json!({"event_id": "evt_x_1", "type": "shipment.status", "shipment_id": "SH-000001",
                                  "status": "picked_up", "at": "2026-12-03T10:00:00Z"});
    let post = |sig: Option<String>, body: String| {
        let url = url.clone();
        async move {
            let mut r = reqwest::Client::new()
                .post(&url)
                .header("content-type", "application/json")
                .body(body);
            if let Some(s) = sig {
                r = r.header("x-sha6er-signature", s);
            }
            r.send().await.unwrap().status().as_u16()
        }
    };
    let (sig, raw) = sha6er::signed("not-the-secret", &good);
    assert_eq!(post(Some(sig), raw.clone()).await, 401, "bad signature");
    assert_eq!(post(None, raw.clone()).await, 401, "no signature");
    let old = chrono::Utc::now().timestamp() - 3600;
    let stale = marketsync::webhook::signature::sign(SHA6ER_SECRET.as_bytes(), old, raw.as_bytes());
    assert_eq!(post(Some(stale), raw.clone()).await, 401, "stale");
    for bad in [
        serde_json::json!({"event_id": "e", "type": "shipment.status", "shipment_id": "SH-1", "status": "teleported", "at": "x"}),
        serde_json::json!({"hello": "world"}),
    ] {
        let (sig, raw) = sha6er::signed(SHA6ER_SECRET, &bad);
        assert_eq!(post(Some(sig), raw).await, 400, "malformed: {bad}");
    }
    let t = chrono::Utc::now().timestamp();
    let garbage = b"{not json";
    let sig = marketsync::webhook::signature::sign(SHA6ER_SECRET.as_bytes(), t, garbage);
    assert_eq!(
        post(Some(sig), String::from_utf8_lossy(garbage).into()).await,
        400
    );
    let stored = env
        .store
        .read(|c| {
            Ok(c.query_row(
                "SELECT COUNT(*) FROM inbox WHERE source = 'sha6er'",
                [],
                |r| r.get::<_, i64>(0),
            )?)
        })
        .unwrap();
    assert_eq!(stored, 0, "nothing stored");
    let jobs = marketsync::store::queue::list(&env.store, None, Some("sha6er"), 100).unwrap();
    assert!(
        jobs.iter().all(|j| j.kind != "progress"),
        "nothing queued: {jobs:?}"
    );
    // The good one, signed: taken (200), once.
    let (sig, raw) = sha6er::signed(SHA6ER_SECRET, &good);
    assert_eq!(post(Some(sig), raw).await, 200);
    env.stop().await;
}

#[tokio::test]
async fn lost_webhooks_are_found_by_the_pull() {
    let env = Env::new().await;
    let (_, _, picking, id) = env.confirmed(&[("SKU-00005", 1)]).await;
    env.sh.sim.lose_webhooks(true);
    env.sh.sim.update(&id, Status::PickedUp, None).unwrap();
    env.sh.sim.confirm(&id, &[], None).unwrap();
    // stale_after is 10s: the pull reads the silent shipment.
    wait_until(
        "delivered through the pull",
        Duration::from_secs(60),
        || env.picking_state(picking) == "done",
    )
    .await;
    assert!(
        env.sh
            .sim
            .webhooks()
            .iter()
            .all(|w| w["status"] != "delivered"),
        "no webhook said it"
    );
    env.stop().await;
}

#[tokio::test]
async fn a_cartona_installment_order_s_courier_otp_reaches_cartona_s_delivered() {
    use marketsync::sim::cartona::{self, Payment};
    const CARTONA_TOKEN: &str = "cartona-sha6er-token-31";
    let odoo = common::odoo_sim(17, 4).await;
    let market = cartona::start(0, CARTONA_TOKEN).await.unwrap();
    for id in 1..=4i64 {
        market.sim.add_product(
            &(100_000 + id).to_string(),
            Some(&id.to_string()),
            None,
            &format!("P{id}"),
        );
    }
    let sh = sha6er::start(0, SHA6ER_KEY).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{}[schedule]\ncatalog_poll = \"1s\"\norders_poll = \"1s\"\nstatus_poll = \"1s\"\nchannel_probe = \"100ms\"\n\
         [retry]\nbase_delay = \"100ms\"\nmax_delay = \"1s\"\n[daemon]\nqueue_poll = \"100ms\"\n\
         [channels.cartona]\nenabled = true\nbase_url = \"{}\"\ntoken = \"{CARTONA_TOKEN}\"\npoll_overlap = \"2s\"\n\
         [channels.sha6er]\nenabled = true\nbase_url = \"{}\"\ntoken = \"{SHA6ER_KEY}\"\nwebhook_secret = \"{SHA6ER_SECRET}\"\n\
         warehouse = \"WH\"\ntimeout = \"2s\"\n",
        common::config_text(&odoo.url(), OdooProtocol::Xmlrpc, dir.path(), ""),
        market.base_url(),
        sh.base_url(),
    );
    let config = RawConfig::parse(&text).unwrap().validate().unwrap();
    let store = Store::open(&config.state.path).unwrap();
    let client = OdooClient::connect(&config.odoo).await.unwrap();
    common::map_cartona(&config, &client, &store).await;
    let (stop, daemon, addr) = common::spawn_daemon(config, store.clone()).await;
    sh.sim
        .set_webhook(&format!("http://{addr}/webhooks/sha6er"), SHA6ER_SECRET);
    let ours = market.sim.place_order(
        1,
        &[("100001", 2, Decimal::from(30))],
        Payment::Installment,
        false,
    );
    let theirs =
        market
            .sim
            .place_order(2, &[("100002", 1, Decimal::from(30))], Payment::Cash, true);
    let mut ids = Vec::new();
    for h in [&ours, &theirs] {
        let reference = format!("CARTONA-{h}");
        let mut found = None;
        wait_until("the Cartona order imported", WAIT, || {
            found = odoo
                .sim
                .world()
                .search_ids("sale.order", "client_order_ref", &reference);
            found.is_some()
        })
        .await;
        ids.push(found.unwrap());
    }
    client
        .call_method("sale.order", "action_confirm", &ids)
        .await
        .unwrap();
    let picking = odoo
        .sim
        .world()
        .pickings_of(ids[0])
        .into_iter()
        .min()
        .unwrap();
    let theirs_picking = odoo
        .sim
        .world()
        .pickings_of(ids[1])
        .into_iter()
        .min()
        .unwrap();
    let mut id = None;
    wait_until("the supplier-delivered order shipped", WAIT, || {
        id = shipments::get(&store, picking)
            .unwrap()
            .and_then(|r| r.shipment_id);
        id.is_some()
    })
    .await;
    let id = id.unwrap();
    let req = sh.sim.shipments()[0].request.clone();
    assert!(
        req.cod.is_none(),
        "an installment order is Cartona's to collect"
    );
    // The OTP Cartona gave the retailer, who gives it to the courier.
    let otp = market.sim.order(&ours).unwrap().otp.unwrap();
    env_steps(&sh, &id, Some(&otp));
    let done = tokio::time::timeout(WAIT, async {
        while market.sim.order(&ours).unwrap().status() != "delivered" {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    if done.is_err() {
        let log: Vec<String> = common::sync_log(&store)
            .into_iter()
            .map(|r| r.message)
            .collect();
        let jobs = marketsync::store::queue::list(&store, None, None, 100).unwrap();
        let dead: Vec<_> = jobs
            .iter()
            .filter(|j| j.last_error.is_some())
            .map(|j| (&j.kind, &j.last_error))
            .collect();
        panic!(
            "not delivered: {} {:?} {log:#?} {dead:?}",
            market.sim.order(&ours).unwrap().status(),
            shipments::get(&store, picking).unwrap()
        );
    }
    let single = market
        .sim
        .requests
        .to(&format!("order/update-order-status/{ours}"));
    assert_eq!(single.last().unwrap().json()["retailer_otp"], otp.as_str());
    let log: Vec<String> = common::sync_log(&store)
        .into_iter()
        .map(|r| r.message)
        .collect();
    let text = log.join("\n");
    assert!(
        !text.split(|c: char| !c.is_ascii_digit()).any(|n| n == otp),
        "the OTP is not logged: {text}"
    );
    wait_until("the delivery told in the chatter", WAIT, || {
        odoo.sim
            .world()
            .chatter("stock.picking", picking)
            .iter()
            .any(|m| m.contains("): delivered"))
    })
    .await;
    let chatter = odoo
        .sim
        .world()
        .chatter("stock.picking", picking)
        .join("\n");
    assert!(!chatter.contains(&otp), "nor written in the chatter");
    assert!(
        shipments::get(&store, theirs_picking).unwrap().is_none(),
        "Cartona delivers its own"
    );
    assert_eq!(sh.sim.shipments().len(), 1);
    stop.cancel();
    daemon.await.unwrap().unwrap();
}

fn env_steps(sh: &Sha6erHandle, id: &str, otp: Option<&str>) {
    sh.sim.update(id, Status::PickedUp, None).unwrap();
    sh.sim.update(id, Status::InTransit, None).unwrap();
    sh.sim.confirm(id, &[], otp).unwrap();
}

#[tokio::test]
async fn a_cancelled_delivery_cancels_its_shipment_before_pickup_and_flags_it_after() {
    let env = Env::new().await;
    let (_, a) = env.order(&[("SKU-00001", 1)]).await;
    let (_, b) = env.order(&[("SKU-00002", 1)]).await;
    env.client
        .call_method("sale.order", "action_confirm", &[a, b])
        .await
        .unwrap();
    let (pa, pb) = (env.picking(a), env.picking(b));
    let ida = wait_shipment(&env, pa).await;
    let idb = wait_shipment(&env, pb).await;
    env.sh.sim.update(&idb, Status::PickedUp, None).unwrap();
    wait_state(&env, pb, "picked_up").await;
    env.client
        .call_method("sale.order", "action_cancel", &[a, b])
        .await
        .unwrap();
    wait_state(&env, pa, "cancelled").await;
    let held = env.sh.sim.shipments();
    assert_eq!(
        held.iter().find(|h| h.id == ida).unwrap().status,
        Status::Cancelled
    );
    wait_until("the cancellation told in the chatter", WAIT, || {
        env.chatter(pa).iter().any(|m| m.contains("cancelled"))
    })
    .await;
    // Its webhook read too (every step of Sha6er's history taken): said once, not twice.
    wait_until("every step of the cancelled shipment taken", WAIT, || {
        let steps = env
            .sh
            .sim
            .shipments()
            .iter()
            .find(|h| h.id == ida)
            .map(|h| h.history.len() as i64);
        env.shipment(pa).map(|r| r.steps) == steps
    })
    .await;
    assert_eq!(
        env.chatter(pa)
            .iter()
            .filter(|m| m.contains("cancelled"))
            .count(),
        1,
        "{:?}",
        env.chatter(pa)
    );
    // Sha6er cancelling of its own accord a delivery Odoo still has to make: flagged.
    let (_, c, pc, idc) = env.confirmed(&[("SKU-00003", 1)]).await;
    env.sh
        .sim
        .update(&idc, Status::Cancelled, Some("out of area"))
        .unwrap();
    wait_until("Sha6er's cancellation flagged", WAIT, || {
        marketsync::store::orders::by_odoo_ids(&env.store, &[c]).unwrap()[&c]
            .attention
            .as_deref()
            .is_some_and(|a| a.contains("cancelled the shipment") && a.contains("out of area"))
    })
    .await;
    assert_eq!(
        env.picking_state(pc),
        "assigned",
        "Odoo's delivery left as it is"
    );
    wait_until("the picked-up one flagged", WAIT, || {
        marketsync::store::orders::by_odoo_ids(&env.store, &[b]).unwrap()[&b]
            .attention
            .as_deref()
            .is_some_and(|a| a.contains("bring it back"))
    })
    .await;
    assert_eq!(
        env.sh
            .sim
            .shipments()
            .iter()
            .find(|h| h.id == idb)
            .unwrap()
            .status,
        Status::PickedUp
    );
    env.stop().await;
}

#[tokio::test]
async fn ship_by_hand_check_and_bad_input() {
    let env = Env::new().await;
    // An order made in Odoo itself: not a marketplace's, shipped only by hand.
    let order = env.odoo_order("SKU-00003");
    let picking = env.picking(order);
    let name = env.odoo.sim.world().get("stock.picking", picking).unwrap()["name"]
        .as_str()
        .unwrap()
        .to_string();
    env.stop.cancel();
    let (code, out) = common::cli(&env.config_path, &["ship", &name]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("Sha6er shipment SH-000001") && out.contains("tracking SH6"),
        "{out}"
    );
    let (code, again) = common::cli(&env.config_path, &["ship", &name]).await;
    assert_eq!(code, Some(0), "{again}");
    assert_eq!(
        env.sh.sim.shipments().len(),
        1,
        "asked again: the one it has"
    );
    let (code, out) = common::cli_with_errors(&env.config_path, &["ship", "WH/OUT/99999"]).await;
    assert_ne!(code, Some(0));
    assert!(
        out.contains("Odoo has no transfer named \"WH/OUT/99999\""),
        "{out}"
    );
    let (code, out) =
        common::cli_with_errors(&env.config_path, &["shipments", "--state", "lost"]).await;
    assert_ne!(code, Some(0));
    assert!(out.contains("not a shipment state"), "{out}");
    let (code, out) = common::cli(&env.config_path, &["shipments", "--json"]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("\"shipment_id\": \"SH-000001\""), "{out}");
    let (_, out) = common::cli(&env.config_path, &["check"]).await;
    assert!(out.contains("Sha6er account Sim Supplier"), "{out}");
    assert!(out.contains("couriers pick up at warehouse WH"), "{out}");
    assert!(!out.contains(SHA6ER_KEY), "{out}");
    env.daemon.await.unwrap().unwrap();
}

#[tokio::test]
async fn with_a_carrier_named_the_deliveries_of_that_carrier_are_shipped() {
    let env = Env::with(
        17,
        OdooProtocol::Xmlrpc,
        "ship_for = []\ncarrier = \"Sha6er Express\"\n",
    )
    .await;
    let (carrier, other) = {
        let mut w = env.odoo.sim.world();
        let mut make = |name: &str| {
            w.create(
                "delivery.carrier",
                &marketsync::odoo::Value::record([("name", marketsync::odoo::Value::from(name))]),
            )
            .unwrap()
        };
        (make("Sha6er Express"), make("Own van"))
    };
    let ours = env.odoo_order("SKU-00001");
    let theirs = env.odoo_order("SKU-00002");
    let (_, medusa) = env.order(&[("SKU-00003", 1)]).await;
    env.client
        .call_method("sale.order", "action_confirm", &[medusa])
        .await
        .unwrap();
    let (p_ours, p_theirs, p_medusa) =
        (env.picking(ours), env.picking(theirs), env.picking(medusa));
    for (p, c) in [(p_ours, carrier), (p_theirs, other)] {
        env.client
            .write(
                "stock.picking",
                &[p],
                marketsync::odoo::Value::record([("carrier_id", marketsync::odoo::Value::Int(c))]),
            )
            .await
            .unwrap();
    }
    wait_shipment(&env, p_ours).await;
    common::two_more_runs(&env.store, "sha6er.deliveries").await;
    assert!(
        env.shipment(p_theirs).is_none(),
        "another carrier's delivery"
    );
    assert!(
        env.shipment(p_medusa).is_none(),
        "ship_for = []: no marketplace's"
    );
    assert_eq!(env.sh.sim.shipments().len(), 1);
    // Odoo's own order: cash on delivery only when cod_for names odoo (here medusa).
    assert!(env.sh.sim.shipments()[0].request.cod.is_none());
    env.stop().await;
}
