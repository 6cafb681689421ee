//! Upgrade in place: a state file written by an earlier marketsync (`fixtures/state/`: pending
//! jobs, mappings, orders whose statuses were sent, inbox events), next to the simulators' worlds
//! as they were when it was written. The daemon of this build opens it (migrating it), runs the
//! pending jobs, imports nothing again, sends no status twice, and goes on reporting what is new.
//!
//! `make_fixture` (ignored) wrote the fixture with the build of its day:
//! `cargo test --test upgrade -- --ignored make_fixture` writes a new one into the fixture folder.

mod common;

use common::wait_until;
use marketsync::config::{MedusaFlavour, OdooProtocol, RawConfig};
use marketsync::odoo::{Domain, OdooClient, Value};
use marketsync::sim::cartona::{self, Payment};
use marketsync::sim::faults::Fault;
use marketsync::sim::medusa;
use marketsync::sim::odoo::SimHandle;
use marketsync::store::{mapping, order_events, queue, Store};
use rust_decimal::Decimal;
use std::path::{Path, PathBuf};
use std::time::Duration;

const TOKEN: &str = "upgrade-test-token-2231";
const MEDUSA_KEY: &str = "mq_upgrade_key_51c9";
const HOOK_SECRET: &str = "whsec_upgrade_test_8d02";
const PRODUCTS: i64 = 12;
const WAIT: Duration = Duration::from_secs(60);

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/state/before-order-events")
}

fn config_text(dir: &Path, odoo: &str, cartona: &str, shop: &str) -> String {
    format!(
        "{}[schedule]\ncatalog_poll = \"1s\"\norders_poll = \"1s\"\nstatus_poll = \"1s\"\n\
         [retry]\nbase_delay = \"200ms\"\nmax_delay = \"1s\"\nmax_attempts = 50\n[daemon]\nqueue_poll = \"50ms\"\n\
         [channels.cartona]\nenabled = true\nbase_url = \"{cartona}\"\ntoken = \"{TOKEN}\"\npoll_overlap = \"2s\"\n\
         [channels.medusa]\nenabled = true\nflavour = \"marqasouq\"\nbase_url = \"{shop}\"\ntoken = \"{MEDUSA_KEY}\"\n\
         webhook_secret = \"{HOOK_SECRET}\"\ncurrency = \"kwd\"\npoll_overlap = \"2s\"\n",
        common::config_text(odoo, OdooProtocol::Xmlrpc, dir, ""),
    )
}

/// The daemon's config for these simulators, its state in `dir`.
fn config_for(dir: &Path, p: &Peers) -> marketsync::config::Config {
    let text = config_text(dir, &p.odoo.url(), &p.market.base_url(), &p.shop.base_url());
    RawConfig::parse(&text).unwrap().validate().unwrap()
}

struct Peers {
    odoo: SimHandle,
    market: cartona::CartonaHandle,
    shop: medusa::MedusaHandle,
}

async fn peers() -> Peers {
    let odoo = common::odoo_sim(17, PRODUCTS as usize).await;
    let market = cartona::start(0, TOKEN).await.unwrap();
    let shop = medusa::start(0, MedusaFlavour::Marqasouq, MEDUSA_KEY, "kwd")
        .await
        .unwrap();
    Peers { odoo, market, shop }
}

fn pickings_of(odoo: &SimHandle, order: i64) -> Vec<i64> {
    odoo.sim.world().pickings_of(order)
}

async fn odoo_order(odoo: &OdooClient, reference: &str) -> Option<i64> {
    odoo.search(
        "sale.order",
        &Domain::all().and("client_order_ref", "=", reference),
        Default::default(),
    )
    .await
    .unwrap()
    .first()
    .copied()
}

fn medusa_reference(shop: &medusa::MedusaHandle, id: &str) -> String {
    format!(
        "MEDUSA-{}",
        shop.sim.order(id).unwrap().json["display_id"]
            .as_i64()
            .unwrap()
    )
}

/// Writes `fixtures/state/before-order-events/`: the state file and the simulators' worlds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes the fixture; run by hand with the build the fixture is to come from"]
async fn make_fixture() {
    let p = peers().await;
    for id in 1..=PRODUCTS {
        p.market.sim.add_product(
            &(100_000 + id).to_string(),
            Some(&id.to_string()),
            None,
            &format!("P{id}"),
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let config = config_for(dir.path(), &p);
    let store = Store::open(&config.state.path).unwrap();
    for id in 1..=PRODUCTS {
        let ext = (100_000 + id).to_string();
        mapping::set(&store, "cartona", "product", "product.product", id, &ext).unwrap();
    }
    let odoo = OdooClient::connect(&config.odoo).await.unwrap();
    let c: Vec<String> = (0..3)
        .map(|i| {
            let line = ((100_001 + i).to_string(), 1 + i, Decimal::new(1_000 + i, 2));
            p.market.sim.place_order(
                i as usize,
                &[(&line.0, line.1, line.2)],
                Payment::Cash,
                false,
            )
        })
        .collect();
    let m: Vec<String> = (1..=3)
        .map(|i| {
            p.shop.sim.place_order(
                &format!("upgrade{i}@example.com"),
                &[(&format!("SKU-{i:05}"), 1, Decimal::new(2_500, 3))],
            )
        })
        .collect();
    let (stop, task, addr) = common::spawn_daemon(config.clone(), store.clone()).await;
    let hook = format!("http://{addr}/webhooks/medusa");
    for id in &m {
        let body = p.shop.sim.webhook_body("order.created", id);
        let (status, _) =
            medusa::send_webhook(&hook, HOOK_SECRET, body, chrono::Utc::now().timestamp()).await;
        assert_eq!(status, 200);
    }
    let mut so = Vec::new();
    for reference in c
        .iter()
        .map(|h| format!("CARTONA-{h}"))
        .chain(m.iter().map(|id| medusa_reference(&p.shop, id)))
    {
        let end = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(id) = odoo_order(&odoo, &reference).await {
                so.push(id);
                break;
            }
            assert!(
                tokio::time::Instant::now() < end,
                "{reference} not imported"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // Cartona order 1 delivered, order 2 confirmed; Medusa order 1 delivered and paid. (Cartona
    // hears "approved" before its delivery is validated: see the test below for why.)
    p.odoo
        .sim
        .world()
        .action_confirm(&[so[0], so[1], so[3]])
        .unwrap();
    wait_until("Cartona orders 1 and 2 approved", WAIT, || {
        p.market.sim.order(&c[0]).unwrap().status() == "approved"
            && p.market.sim.order(&c[1]).unwrap().status() == "approved"
    })
    .await;
    {
        let mut done = pickings_of(&p.odoo, so[0]);
        done.extend(pickings_of(&p.odoo, so[3]));
        let mut w = p.odoo.sim.world();
        w.button_validate(&done).unwrap();
        let invoice = w.invoice_order(so[3]).unwrap();
        w.pay_invoice(invoice, true).unwrap();
    }
    let sent = || {
        (
            p.market.sim.order(&c[0]).unwrap().status().to_string(),
            p.market.sim.order(&c[1]).unwrap().status().to_string(),
            common::medusa_heard(&p.shop, &m[0]),
        )
    };
    let end = tokio::time::Instant::now() + WAIT;
    while sent().0 != "delivered" || sent().1 != "approved" || sent().2.len() != 5 {
        assert!(
            tokio::time::Instant::now() < end,
            "statuses not sent: {:?}",
            sent()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Work left pending: Cartona and the store both down, a price changed and Medusa order 2
    // confirmed in Odoo.
    p.market.sim.faults.down(Fault::BadGateway);
    p.shop.sim.faults.down(Fault::BadGateway);
    odoo.write(
        "product.product",
        &[3],
        Value::record([("list_price", Value::Double(77.5))]),
    )
    .await
    .unwrap();
    p.odoo.sim.world().action_confirm(&[so[4]]).unwrap();
    wait_until("jobs waiting for both channels", WAIT, || {
        let waiting = |channel: &str| {
            !queue::list(&store, Some(queue::JobState::Retrying), Some(channel), 100)
                .unwrap()
                .is_empty()
        };
        waiting("cartona") && waiting("medusa")
    })
    .await;
    stop.cancel();
    task.await.unwrap().unwrap();
    drop(store);

    let out = fixture_dir();
    std::fs::create_dir_all(&out).unwrap();
    let db = out.join("state.db");
    let _ = std::fs::remove_file(&db);
    let conn = rusqlite::Connection::open(&config.state.path).unwrap();
    conn.execute("VACUUM INTO ?1", [db.to_str().unwrap()])
        .unwrap();
    let worlds = serde_json::json!({
        "odoo": p.odoo.sim.world().snapshot(),
        "cartona": p.market.sim.snapshot(),
        "medusa": p.shop.sim.snapshot(),
        "cartona_orders": c,
        "medusa_orders": m,
        "odoo_orders": so,
    });
    std::fs::write(
        out.join("worlds.json"),
        serde_json::to_string_pretty(&worlds).unwrap(),
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_written_before_order_events_upgrades_in_place() {
    let p = peers().await;
    let fixture = fixture_dir();
    let worlds: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture.join("worlds.json")).unwrap()).unwrap();
    p.odoo.sim.world().load_snapshot(&worlds["odoo"]).unwrap();
    p.market.sim.load_snapshot(&worlds["cartona"]).unwrap();
    p.shop.sim.load_snapshot(&worlds["medusa"]).unwrap();
    let list = |k: &str| -> Vec<String> { serde_json::from_value(worlds[k].clone()).unwrap() };
    let (c, m) = (list("cartona_orders"), list("medusa_orders"));
    let so: Vec<i64> = serde_json::from_value(worlds["odoo_orders"].clone()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixture.join("state.db"), dir.path().join("state.db")).unwrap();
    let config = config_for(dir.path(), &p);
    let odoo = OdooClient::connect(&config.odoo).await.unwrap();
    let orders_in_odoo = || async {
        odoo.search_count("sale.order", &Domain::all())
            .await
            .unwrap()
    };
    assert_eq!(orders_in_odoo().await, 6, "the fixture's world");
    let heard = |h: &String| p.market.sim.order(h).unwrap().history;
    let cartona_before: Vec<Vec<String>> = c.iter().map(heard).collect();
    let medusa_before: Vec<Vec<String>> = m
        .iter()
        .map(|id| common::medusa_heard(&p.shop, id))
        .collect();
    assert_eq!(
        medusa_before[0].len(),
        5,
        "the fixture's Medusa order 1 heard everything"
    );
    assert!(medusa_before[1].is_empty());

    let store = Store::open(&config.state.path).unwrap();
    // What was sent before the upgrade became each order's first events, already taken by
    // its owner: nothing to produce or send again.
    let kinds = |channel: &str, id: &str| -> Vec<String> {
        order_events::of_order(&store, channel, id)
            .unwrap()
            .iter()
            .map(|e| e.kind.to_string())
            .collect()
    };
    assert_eq!(
        kinds("cartona", &c[0]),
        ["confirmed", "shipped", "delivered"]
    );
    assert_eq!(kinds("cartona", &c[1]), ["confirmed"]);
    assert!(kinds("cartona", &c[2]).is_empty());
    assert_eq!(
        kinds("medusa", &m[0]),
        ["confirmed", "shipped", "delivered", "invoiced", "paid"]
    );
    assert!(kinds("medusa", &m[1]).is_empty() && kinds("medusa", &m[2]).is_empty());
    for (channel, id) in c
        .iter()
        .map(|h| ("cartona", h))
        .chain(m.iter().map(|id| ("medusa", id)))
    {
        assert!(
            order_events::after(&store, channel, channel, id)
                .unwrap()
                .is_empty(),
            "{channel} already took the events of {id}"
        );
    }
    let (stop, task, _) = common::spawn_daemon(config.clone(), store.clone()).await;
    // The jobs left pending run: the new price reaches both channels, Medusa order 2 hears
    // its confirmation.
    wait_until(
        "Cartona has the price changed before the upgrade",
        WAIT,
        || p.market.sim.product("100003").unwrap().selling_price == "77.50",
    )
    .await;
    wait_until("Medusa has it", WAIT, || {
        p.shop.sim.product("SKU-00003").unwrap().price == Decimal::new(77_500, 3)
    })
    .await;
    wait_until("Medusa order 2 hears it was confirmed", WAIT, || {
        common::medusa_heard(&p.shop, &m[1]) == ["order.confirmed"]
    })
    .await;
    // What happens in Odoo after the upgrade is reported as before.
    let pickings = pickings_of(&p.odoo, so[1]);
    p.odoo.sim.world().button_validate(&pickings).unwrap();
    wait_until("Cartona order 2 delivered", WAIT, || {
        p.market.sim.order(&c[1]).unwrap().status() == "delivered"
    })
    .await;
    for stream in ["cartona.orders", "cartona.edits", "odoo.orders"] {
        common::two_more_runs(&store, stream).await;
    }
    stop.cancel();
    task.await.unwrap().unwrap();

    assert_eq!(orders_in_odoo().await, 6, "nothing imported again");
    assert_eq!(
        kinds("cartona", &c[1]),
        ["confirmed", "shipment", "shipped", "delivered"],
        "events after the upgrade follow the seeded ones, none twice"
    );
    assert_eq!(kinds("medusa", &m[1]), ["confirmed"]);
    let mut expected = cartona_before.clone();
    expected[1].push("delivered".into());
    let cartona_after: Vec<Vec<String>> = c.iter().map(heard).collect();
    assert_eq!(cartona_after, expected, "no Cartona status sent twice");
    let medusa_after: Vec<Vec<String>> = m
        .iter()
        .map(|id| common::medusa_heard(&p.shop, id))
        .collect();
    assert_eq!(
        medusa_after,
        vec![
            medusa_before[0].clone(),
            vec!["order.confirmed".to_string()],
            Vec::new()
        ],
        "no Medusa event sent twice"
    );
    assert!(
        queue::list(&store, Some(queue::JobState::Dead), None, 10)
            .unwrap()
            .is_empty(),
        "no job died"
    );
}

#[test]
fn an_order_waiting_for_its_otp_before_the_upgrade_still_waits_for_it_after() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    std::fs::copy(fixture_dir().join("state.db"), &path).unwrap();
    let worlds: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture_dir().join("worlds.json")).unwrap()).unwrap();
    let hashed = worlds["cartona_orders"][2].as_str().unwrap().to_string();
    {
        // As an earlier build left an installment order delivered in Odoo without the OTP:
        // the only trace is the sentence it showed the operator.
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute(
            "UPDATE channel_orders SET needs_otp = 1, attention = ?2 WHERE external_id = ?1",
            [
                hashed.as_str(),
                "delivered in Odoo; Cartona needs the retailer's OTP: run `marketsync order otp <reference> <otp>`",
            ],
        )
        .unwrap();
    }
    let store = Store::open(&path).unwrap();
    let order = marketsync::store::orders::get(&store, "cartona", &hashed)
        .unwrap()
        .unwrap();
    assert!(
        marketsync::channel::cartona::otp_recorded(&store, &order).unwrap(),
        "recording the OTP queues the delivery that waited for it"
    );
    let waiting = queue::list(&store, Some(queue::JobState::Pending), Some("cartona"), 10).unwrap();
    assert!(
        waiting
            .iter()
            .any(|j| j.kind == "status" && j.payload["status"] == "delivered"),
        "{waiting:?}"
    );
}

#[test]
fn cartona_s_own_columns_move_into_its_channel_data_and_the_otp_into_the_order_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    std::fs::copy(fixture_dir().join("state.db"), &path).unwrap();
    let worlds: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture_dir().join("worlds.json")).unwrap()).unwrap();
    let hashed = worlds["cartona_orders"][1].as_str().unwrap().to_string();
    {
        // As an earlier build kept an installment order delivered by the supplier, its OTP given.
        let c = rusqlite::Connection::open(&path).unwrap();
        let n = c
            .execute(
                "UPDATE channel_orders SET needs_otp = 1, delivered_by = 'delivered_by_supplier', otp = '4711' \
                 WHERE external_id = ?1",
                [hashed.as_str()],
            )
            .unwrap();
        assert_eq!(n, 1);
    }
    let store = Store::open(&path).unwrap();
    let order = marketsync::store::orders::get(&store, "cartona", &hashed)
        .unwrap()
        .unwrap();
    assert_eq!(order.meta["needs_otp"], true);
    assert_eq!(order.meta["delivered_by"], "delivered_by_supplier");
    assert!(order.has_secret("otp"));
    assert_eq!(
        marketsync::store::orders::secret(&store, "cartona", &hashed, "otp")
            .unwrap()
            .unwrap()
            .expose(),
        "4711"
    );
    assert!(
        !serde_json::to_string(&order).unwrap().contains("4711"),
        "the OTP is not part of the order as printed"
    );
    // Nothing else of the order changed on the way.
    assert!(order.odoo_id.is_some());
    let others = marketsync::store::orders::list(&store, Some("cartona"), 100).unwrap();
    assert!(others
        .iter()
        .filter(|o| o.external_id != hashed)
        .all(|o| !o.has_secret("otp")
            && o.meta.get("needs_otp").is_none()
            && o.meta["delivered_by"] == "delivered_by_supplier"));
}
