//! Crash safety: the real daemon, with the Cartona and Medusa channels, is killed with SIGKILL at
//! 30 points spread over order import and catalog push (after the k-th request the simulators
//! receive), restarted each time; at the end there is exactly one Odoo order per marketplace
//! order, none lost, every Cartona order acknowledged, every Medusa webhook that got a 2xx
//! imported, and both marketplaces hold exactly Odoo's prices and stock. Between the kills,
//! orders are confirmed and delivered in Odoo: every order event reaches the probe (a second
//! subscriber beside each order's owner) exactly once and in order, and no owner hears a
//! status twice (but for a send repeated at once, when a kill fell between its answer and its
//! record). Every customer is told each step on WhatsApp exactly once: WhatsApp takes one
//! message per (order, step), and each ends sent or delivered, none lost to a kill.

mod common;

use common::wait_until;
use marketsync::config::MedusaFlavour;
use marketsync::config::{OdooProtocol, RawConfig};
use marketsync::odoo::{Domain, OdooClient, Value};
use marketsync::sim::cartona::{self, Payment};
use marketsync::sim::{medusa, probe, sha6er, whatsapp};
use marketsync::store::{mapping, Store};
use rust_decimal::Decimal;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const TOKEN: &str = "crash-test-token-5512";
const MEDUSA_KEY: &str = "mq_crash_key_71aa";
const HOOK_SECRET: &str = "whsec_crash_test_0c4e";
const PRODUCTS: i64 = 30;
const PROBE_TOKEN: &str = "crash-probe-token-90d2";
const WA_TOKEN: &str = "crash-whatsapp-token-61be";
const WA_SECRET: &str = "crash-app-secret-0f3a";
const WA_PHONE: &str = "106540352242922";
const SH_TOKEN: &str = "crash-sha6er-key-4d21";
const SH_SECRET: &str = "crash-sha6er-secret-9b07";
/// The steps customers are told of, each with a one-parameter template.
const WA_STEPS: [&str; 4] = ["confirmed", "shipped", "delivered", "cancelled"];

/// Moves the story of some orders on in Odoo while the daemon is down: the two oldest
/// quotations confirmed, and the oldest confirmed order's delivery validated.
async fn progress(client: &OdooClient, odoo: &marketsync::sim::odoo::SimHandle) {
    let ids = |state: &'static str| async move {
        client
            .search_read(
                "sale.order",
                &Domain::all().and("state", "=", state),
                &["id"],
                marketsync::odoo::SearchOpts {
                    order: Some("id".into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .iter()
            .filter_map(|o| o.get("id").and_then(Value::as_i64))
            .collect::<Vec<i64>>()
    };
    let drafts = ids("draft").await;
    if !drafts.is_empty() {
        let confirm = &drafts[..drafts.len().min(2)];
        odoo.sim.world().action_confirm(confirm).unwrap();
    }
    for so in ids("sale").await {
        let mut w = odoo.sim.world();
        let open: Vec<i64> = w
            .pickings_of(so)
            .into_iter()
            .filter(|p| w.get("stock.picking", *p).unwrap()["state"].as_str() != Some("done"))
            .collect();
        if !open.is_empty() {
            w.button_validate(&open).unwrap();
            break;
        }
    }
}

/// The events each marketplace order's Odoo state shows, as the probe must hear them.
async fn expected_events(
    client: &OdooClient,
    odoo: &marketsync::sim::odoo::SimHandle,
) -> Vec<(String, String)> {
    let orders = client
        .search_read(
            "sale.order",
            &Domain::all(),
            &["client_order_ref", "state"],
            marketsync::odoo::SearchOpts::default(),
        )
        .await
        .unwrap();
    let w = odoo.sim.world();
    let mut out = Vec::new();
    for o in orders {
        let reference = o
            .get("client_order_ref")
            .and_then(Value::as_str)
            .unwrap()
            .to_string();
        if o.get("state").and_then(Value::as_str) != Some("sale") {
            continue;
        }
        out.push((reference.clone(), "confirmed".to_string()));
        let id = o.get("id").and_then(Value::as_i64).unwrap();
        let pickings = w.pickings_of(id);
        for p in &pickings {
            if w.get("stock.picking", *p).unwrap()["state"].as_str() == Some("done") {
                out.push((reference.clone(), "shipment".to_string()));
            }
        }
        if !pickings.is_empty()
            && pickings
                .iter()
                .all(|p| w.get("stock.picking", *p).unwrap()["state"].as_str() == Some("done"))
        {
            out.push((reference.clone(), "shipped".to_string()));
            out.push((reference, "delivered".to_string()));
        }
    }
    out.sort();
    out
}

fn spawn(config: &std::path::Path) -> Child {
    Command::new(assert_cmd::cargo::cargo_bin("marketsync"))
        .args(["--config", config.to_str().unwrap(), "run"])
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_thirty_points_it_still_imports_each_order_exactly_once_and_converges() {
    let odoo = common::odoo_sim(17, PRODUCTS as usize).await;
    let market = cartona::start(0, TOKEN).await.unwrap();
    for id in 1..=PRODUCTS {
        market.sim.add_product(
            &(100_000 + id).to_string(),
            Some(&id.to_string()),
            None,
            &format!("P{id}"),
        );
    }
    let store_sim = medusa::start(0, MedusaFlavour::Marqasouq, MEDUSA_KEY, "egp")
        .await
        .unwrap();
    let watcher = probe::start(0, PROBE_TOKEN).await.unwrap();
    let wa = whatsapp::start(0, WA_PHONE, WA_TOKEN).await.unwrap();
    let sh = sha6er::start(0, SH_TOKEN).await.unwrap();
    let mut wa_steps = String::new();
    for step in WA_STEPS {
        wa.sim.add_template(&format!("order_{step}"), &["en"], 1, 0);
        wa_steps.push_str(&format!(
            "[channels.whatsapp.notify.{step}]\ntemplate = \"order_{step}\"\nbody = [\"order_reference\"]\n"
        ));
    }
    for id in 1..=PRODUCTS {
        // Stock to deliver from.
        odoo.sim.world().set_on_hand(id, 500.0).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    // A fixed port for every run, so the store's webhooks find the restarted daemon.
    let listen = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let text = format!(
        "{}[webhooks]\nlisten = \"{listen}\"\n[schedule]\ncatalog_poll = \"1s\"\norders_poll = \"1s\"\nstatus_poll = \"1s\"\n[retry]\nbase_delay = \"100ms\"\nmax_delay = \"500ms\"\n\
         [daemon]\nqueue_poll = \"50ms\"\n[channels.cartona]\nenabled = true\nbase_url = \"{}\"\ntoken = \"{TOKEN}\"\nbatch_size = 7\npoll_overlap = \"2s\"\n\
         [channels.medusa]\nenabled = true\nflavour = \"marqasouq\"\nbase_url = \"{}\"\ntoken = \"{MEDUSA_KEY}\"\nwebhook_secret = \"{HOOK_SECRET}\"\n\
         currency = \"egp\"\nbatch_size = 7\npoll_overlap = \"2s\"\n\
         [channels.probe]\nenabled = true\nbase_url = \"{}\"\ntoken = \"{PROBE_TOKEN}\"\n\
         [channels.whatsapp]\nenabled = true\nbase_url = \"{}\"\ntoken = \"{WA_TOKEN}\"\nphone_number_id = \"{WA_PHONE}\"\n\
         app_secret = \"{WA_SECRET}\"\nverify_token = \"crash-verify-77\"\ndefault_country = \"EG\"\nlanguage = \"en\"\n\
         require_opt_in = false\nconfirm_after = \"2s\"\ntimeout = \"2s\"\n{wa_steps}\
         [channels.sha6er]\nenabled = true\nbase_url = \"{}\"\ntoken = \"{SH_TOKEN}\"\nwebhook_secret = \"{SH_SECRET}\"\n\
         warehouse = \"WH\"\nship_for = [\"medusa\"]\ntimeout = \"2s\"\n",
        common::config_text(&odoo.url(), OdooProtocol::Xmlrpc, dir.path(), "")
            .replace("[webhooks]\nlisten = \"127.0.0.1:0\"\n", ""),
        market.base_url(),
        store_sim.base_url(),
        watcher.base_url(),
        wa.base_url(),
        sh.base_url(),
    );
    wa.sim
        .set_webhook(&format!("http://{listen}/webhooks/whatsapp"), WA_SECRET);
    sh.sim
        .set_webhook(&format!("http://{listen}/webhooks/sha6er"), SH_SECRET);
    std::fs::write(&path, text.clone()).unwrap();
    let config = RawConfig::parse(&text).unwrap().validate().unwrap();
    map_products(&Store::open(&config.state.path).unwrap(), PRODUCTS);
    let client = OdooClient::connect(&config.odoo).await.unwrap();
    let traffic = || {
        odoo.sim.call_count()
            + market.sim.requests.all().len() as u64
            + store_sim.sim.requests.all().len() as u64
            + wa.sim.requests.all().len() as u64
            + sh.sim.requests.all().len() as u64
    };

    let mut placed = Vec::new();
    // Medusa orders whose webhook the daemon answered 2xx.
    let mut acknowledged = Vec::new();
    for round in 0..30u64 {
        // New work each round: orders and a price change, so kills land in the middle of both.
        let p = 1 + (round as i64 * 7) % PRODUCTS;
        let lines = [(
            (100_000 + p).to_string(),
            1 + (round % 3) as i64,
            Decimal::new(1_000 + round as i64, 2),
        )];
        let refs: Vec<(&str, i64, Decimal)> =
            lines.iter().map(|(a, b, c)| (a.as_str(), *b, *c)).collect();
        placed.push(market.sim.place_order(
            round as usize,
            &refs,
            if round % 5 == 0 {
                Payment::Installment
            } else {
                Payment::Cash
            },
            false,
        ));
        client
            .write(
                "product.product",
                &[p],
                Value::record([("list_price", Value::Double(50.0 + round as f64))]),
            )
            .await
            .unwrap();

        let medusa_order = store_sim.sim.place_order(
            &format!("crash{round}@example.com"),
            &[(
                &format!("SKU-{p:05}"),
                1,
                Decimal::new(2_500 + round as i64, 3),
            )],
        );

        let mut child = spawn(&path);
        let start = traffic();
        // The store's webhook, sent (again) until the new daemon answers it.
        let body = store_sim.sim.webhook_body("order.created", &medusa_order);
        let url = format!("http://{listen}/webhooks/medusa");
        let end = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let (status, _) = medusa::send_webhook(
                &url,
                HOOK_SECRET,
                body.clone(),
                chrono::Utc::now().timestamp(),
            )
            .await;
            if (200..300).contains(&status) {
                acknowledged.push(medusa_order.clone());
                break;
            }
            assert!(
                tokio::time::Instant::now() < end,
                "the daemon never took the webhook"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let kill_after = 3 + (round * 7) % 60;
        wait_until("the k-th request", Duration::from_secs(30), || {
            traffic() >= start + kill_after
        })
        .await;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        progress(&client, &odoo).await;
    }

    // Back for good: everything converges.
    let mut child = spawn(&path);
    let deadline = Duration::from_secs(120);
    wait_until("every order acknowledged", deadline, || {
        placed.iter().all(|h| market.sim.order(h).unwrap().synced)
    })
    .await;
    let expected = |id: i64| {
        let w = odoo.sim.world();
        let price = w.get("product.product", id).unwrap()["list_price"]
            .as_decimal()
            .unwrap();
        (format!("{price:.2}"), w.free_qty(id) as i64)
    };
    wait_until("Cartona holds Odoo's prices and stock", deadline, || {
        (1..=PRODUCTS).all(|id| {
            let p = market.sim.product(&(100_000 + id).to_string()).unwrap();
            (p.selling_price, p.available_stock_quantity) == expected(id)
        })
    })
    .await;
    wait_until("Medusa holds Odoo's prices and stock", deadline, || {
        (1..=PRODUCTS).all(|id| {
            let (price, qty) = expected(id);
            store_sim
                .sim
                .product(&format!("SKU-{id:05}"))
                .is_some_and(|p| {
                    p.price == marketsync::sync::money::round(price.parse().unwrap(), "egp")
                        && p.quantity == qty
                })
        })
    })
    .await;
    let medusa_ref = |id: &str| {
        format!(
            "MEDUSA-{}",
            store_sim.sim.order(id).unwrap().json["display_id"]
                .as_i64()
                .unwrap()
        )
    };
    let mut imported = 0;
    for id in &acknowledged {
        let reference = medusa_ref(id);
        let end = tokio::time::Instant::now() + deadline;
        loop {
            let n = client
                .search_count(
                    "sale.order",
                    &Domain::all().and("client_order_ref", "=", reference.as_str()),
                )
                .await
                .unwrap();
            if n == 1 {
                imported += 1;
                break;
            }
            assert!(n <= 1, "{reference} imported {n} times");
            assert!(
                tokio::time::Instant::now() < end,
                "the acknowledged webhook of {reference} was never imported"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    assert_eq!(imported, acknowledged.len());
    // Every order event reached the probe, once each (by its id: a delivery made just before a
    // kill comes again with the same id), each order's in order.
    let expected = expected_events(&client, &odoo).await;
    assert!(
        expected.len() > 20,
        "the rounds moved orders on: {expected:?}"
    );
    let end = tokio::time::Instant::now() + deadline;
    loop {
        let mut heard = watcher.sim.heard();
        heard.sort();
        if heard == expected {
            break;
        }
        if tokio::time::Instant::now() > end {
            let missing: Vec<_> = expected.iter().filter(|e| !heard.contains(e)).collect();
            let extra: Vec<_> = heard.iter().filter(|e| !expected.contains(e)).collect();
            panic!("the probe did not hear every event once: missing {missing:?}, extra {extra:?}, heard {} of {}", heard.len(), expected.len());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Notifications: every step told is one message WhatsApp took once, none lost. One more
    // order moved on now: a message sent after any whose answer a kill cut off, whose status
    // shows WhatsApp whether those left (the confirm stream sends them again if not).
    let later = store_sim.sim.place_order(
        "crash-later@example.com",
        &[("SKU-00001", 1, Decimal::new(2_500, 3))],
    );
    let reference = medusa_ref(&later);
    let end = tokio::time::Instant::now() + deadline;
    let later_id = loop {
        let found = client
            .search(
                "sale.order",
                &Domain::all().and("client_order_ref", "=", reference.as_str()),
                None,
            )
            .await
            .unwrap();
        if let Some(id) = found.first() {
            break *id;
        }
        assert!(
            tokio::time::Instant::now() < end,
            "{reference} never imported"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    odoo.sim.world().action_confirm(&[later_id]).unwrap();
    let mut told = expected_events(&client, &odoo).await;
    told.retain(|(_, k)| WA_STEPS.contains(&k.as_str()));
    let state = Store::open(&config.state.path).unwrap();
    let settled = || -> Result<Vec<(String, String)>, String> {
        let all = marketsync::store::messages::list(&state, &Default::default()).unwrap();
        let mut out = Vec::new();
        for m in &all {
            if !["sent", "delivered", "read"].contains(&m.state.as_str()) {
                return Err(format!(
                    "message {} ({}) is {}: {:?}",
                    m.id, m.step, m.state, m.reason
                ));
            }
            let o = marketsync::store::orders::get(&state, &m.channel, &m.external_id)
                .unwrap()
                .unwrap();
            out.push((o.reference, m.step.clone()));
        }
        out.sort();
        Ok(out)
    };
    let end = tokio::time::Instant::now() + deadline;
    loop {
        match settled() {
            Ok(got) if got == told => break,
            other => assert!(
                tokio::time::Instant::now() < end,
                "the messages never matched the steps told: {other:?} against {told:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut sent: Vec<String> = wa
        .sim
        .sent()
        .iter()
        .map(|s| {
            s.body["biz_opaque_callback_data"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let n = sent.len();
    sent.sort();
    sent.dedup();
    assert_eq!(sent.len(), n, "a message WhatsApp took twice");
    assert_eq!(n, told.len(), "one message taken per step told");

    // Deliveries: every ready delivery of a Medusa order has its Sha6er shipment, one per
    // delivery, and no create was ever sent twice for one (a create a kill cut off was looked
    // up by its reference first).
    let ready_medusa = || -> Vec<String> {
        let w = odoo.sim.world();
        let mut out: Vec<String> = w.data["stock.picking"]
            .values()
            .filter(|p| {
                p["state"].as_str() == Some("assigned")
                    && p["picking_type_code"].as_str() == Some("outgoing")
                    && p["sale_id"].as_i64().is_some_and(|o| {
                        w.get("sale.order", o).unwrap()["client_order_ref"]
                            .as_str()
                            .is_some_and(|r| r.starts_with("MEDUSA-"))
                    })
            })
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect();
        out.sort();
        out
    };
    let end = tokio::time::Instant::now() + deadline;
    loop {
        let held: Vec<String> = sh
            .sim
            .shipments()
            .iter()
            .map(|h| h.request.reference.clone())
            .collect();
        let ready = ready_medusa();
        if !ready.is_empty() && ready.iter().all(|r| held.contains(r)) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < end,
            "ready Medusa deliveries {ready:?} without a shipment (held {held:?})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut creates: Vec<String> = sh.sim.requests.with(|r| {
        r.iter()
            .filter(|x| x.path == "create_shipment")
            .map(|x| {
                serde_json::from_str::<serde_json::Value>(&x.body).unwrap()["reference"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    });
    let n = creates.len();
    creates.sort();
    creates.dedup();
    assert_eq!(
        creates.len(),
        n,
        "a delivery's create sent twice: {n} creates"
    );
    let refused = marketsync::store::shipments::list(&state, &["refused"], 100).unwrap();
    assert!(refused.is_empty(), "{refused:?}");

    child.kill().unwrap();
    child.wait().unwrap();
    let heard = watcher.sim.heard();
    let rank = |k: &str| {
        ["confirmed", "shipment", "shipped", "delivered"]
            .iter()
            .position(|x| *x == k)
    };
    for (reference, _) in &expected {
        let kinds: Vec<Option<usize>> = heard
            .iter()
            .filter(|(r, _)| r == reference)
            .map(|(_, k)| rank(k))
            .collect();
        assert!(
            kinds.windows(2).all(|w| w[0] < w[1]),
            "{reference} heard {kinds:?}"
        );
    }
    // A status is sent again only when a kill fell between the marketplace's answer and its
    // record (the retry repeats it at once); never later, never out of order.
    let resent_only_at_once = |heard: &[String]| {
        let mut collapsed = heard.to_vec();
        collapsed.dedup();
        let mut unique = collapsed.clone();
        unique.sort();
        unique.dedup();
        collapsed.len() == unique.len()
    };
    for h in &placed {
        let history = market.sim.order(h).unwrap().history;
        assert!(
            resent_only_at_once(&history),
            "Cartona order {h} heard {history:?}"
        );
    }
    for id in &acknowledged {
        let events: Vec<String> = store_sim
            .sim
            .order(id)
            .unwrap()
            .events
            .iter()
            .map(|e| e["event_type"].as_str().unwrap_or_default().to_string())
            .collect();
        assert!(
            resent_only_at_once(&events),
            "Medusa order {id} heard {events:?}"
        );
    }

    for h in &placed {
        let n = client
            .search_count(
                "sale.order",
                &Domain::all().and("client_order_ref", "=", format!("CARTONA-{h}").as_str()),
            )
            .await
            .unwrap();
        assert_eq!(n, 1, "order {h} must exist exactly once in Odoo");
    }
    let all = client
        .search_count("sale.order", &Domain::all())
        .await
        .unwrap();
    assert_eq!(
        all as usize,
        placed.len() + acknowledged.len() + 1,
        "no stray orders (the one more placed at the end counted)"
    );
}

/// `diff --repair` killed with SIGKILL half way (between two pages of fixes) loses nothing: what
/// it queued is whole, running it again queues the rest, and once the daemon has sent them
/// Cartona holds Odoo's values and `diff` is clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repair_killed_half_way_loses_nothing() {
    const N: i64 = 200;
    let odoo = common::odoo_sim(17, N as usize).await;
    let market = cartona::start(0, TOKEN).await.unwrap();
    for id in 1..=N {
        // Listed on Cartona at a price Odoo never had: every product differs.
        market.sim.add_product(
            &(100_000 + id).to_string(),
            Some(&id.to_string()),
            None,
            &format!("P{id}"),
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    let text = format!(
        "{}[schedule]\ncatalog_poll = \"1h\"\norders_poll = \"1h\"\nstatus_poll = \"1h\"\n[daemon]\nqueue_poll = \"50ms\"\n\
         [channels.cartona]\nenabled = true\nbase_url = \"{}\"\ntoken = \"{TOKEN}\"\nbatch_size = 10\n",
        common::config_text(&odoo.url(), OdooProtocol::Xmlrpc, dir.path(), "")
            .replace("timeout = \"10s\"\n", "timeout = \"10s\"\npage_size = 20\n"),
        market.base_url(),
    );
    std::fs::write(&path, &text).unwrap();
    let config = RawConfig::parse(&text).unwrap().validate().unwrap();
    let store = Store::open(&config.state.path).unwrap();
    map_products(&store, N);
    // Each page of Odoo's catalog takes a while: the kill lands between two pages of fixes.
    odoo.sim.faults.set_latency(Duration::from_millis(150));
    let queued = || {
        marketsync::store::queue::list(&store, None, Some("cartona"), 1000)
            .unwrap()
            .iter()
            .map(|j| j.payload.value()["items"].as_array().map_or(0, Vec::len))
            .sum::<usize>()
    };
    let mut child = diff(&path, true);
    wait_until(
        "the first page of fixes queued",
        Duration::from_secs(60),
        || queued() > 0,
    )
    .await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let partial = queued();
    assert!(
        partial > 0 && partial < N as usize,
        "the kill landed half way: {partial} of {N} queued"
    );
    // Whole jobs only: each queued product's planned value is the one its job carries.
    for job in marketsync::store::queue::list(&store, None, Some("cartona"), 1000).unwrap() {
        for item in job.payload.value()["items"].as_array().unwrap() {
            let id = item["odoo_id"].as_i64().unwrap();
            let m = mapping::by_odoo(&store, "cartona", "product", id)
                .unwrap()
                .unwrap();
            assert_eq!(m.planned_hash.as_deref(), item["hash"].as_str(), "{job:?}");
        }
    }
    odoo.sim.faults.set_latency(Duration::ZERO);
    let again = path.clone();
    let status = tokio::task::spawn_blocking(move || diff(&again, true).wait().unwrap())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(1), "differences were found and queued");
    let mut daemon = spawn(&path);
    let expected = |id: i64| {
        let w = odoo.sim.world();
        let price = w.get("product.product", id).unwrap()["list_price"]
            .as_decimal()
            .unwrap();
        format!("{price:.2}")
    };
    wait_until(
        "Cartona holds Odoo's prices",
        Duration::from_secs(60),
        || {
            (1..=N).all(|id| {
                market
                    .sim
                    .product(&(100_000 + id).to_string())
                    .unwrap()
                    .selling_price
                    == expected(id)
            })
        },
    )
    .await;
    daemon.kill().unwrap();
    daemon.wait().unwrap();
    let status = tokio::task::spawn_blocking(move || diff(&path, false).wait().unwrap())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0), "diff is clean");
}

/// `marketsync diff --channel cartona [--repair]` in its own process.
fn diff(config: &std::path::Path, repair: bool) -> Child {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("marketsync"));
    cmd.args([
        "--config",
        config.to_str().unwrap(),
        "diff",
        "--channel",
        "cartona",
    ])
    .env("RUST_LOG", "error")
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    if repair {
        cmd.arg("--repair");
    }
    cmd.spawn().unwrap()
}

/// Odoo products 1..=`n` mapped to Cartona's supplier products 100001...
fn map_products(store: &Store, n: i64) {
    for id in 1..=n {
        let sp = (100_000 + id).to_string();
        mapping::set(store, "cartona", "product", "product.product", id, &sp).unwrap();
    }
}
