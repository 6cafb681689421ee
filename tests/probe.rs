//! Order events reach every subscriber independently: the order's owner (a Medusa store) and the
//! probe (a subscriber to every order) each take every event once and in order, and one of them
//! refusing for a while holds the other back in nothing.

mod common;

use common::wait_until;
use marketsync::config::{MedusaFlavour, OdooProtocol, RawConfig};
use marketsync::odoo::{Domain, OdooClient, SearchOpts, Value};
use marketsync::sim::faults::Fault;
use marketsync::sim::{medusa, probe};
use marketsync::store::Store;
use rust_decimal::Decimal;
use std::time::Duration;

const KEY: &str = "sk_test_probe_5b10";
const PROBE_TOKEN: &str = "probe-token-77c1";
const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_and_the_probe_each_take_every_event_once_in_order_and_neither_waits_for_the_other(
) {
    let odoo = common::odoo_sim(17, 10).await;
    let shop = medusa::start(0, MedusaFlavour::Marqasouq, KEY, "kwd")
        .await
        .unwrap();
    let watcher = probe::start(0, PROBE_TOKEN).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{}[schedule]\ncatalog_poll = \"1s\"\norders_poll = \"1s\"\nstatus_poll = \"1s\"\n\
         [retry]\nbase_delay = \"100ms\"\nmax_delay = \"500ms\"\nmax_attempts = 10000\n[daemon]\nqueue_poll = \"100ms\"\n\
         [channels.medusa]\nenabled = true\nflavour = \"marqasouq\"\nbase_url = \"{}\"\ntoken = \"{KEY}\"\nwebhook_secret = \"whsec_probe_test_41\"\n\
         currency = \"kwd\"\npoll_overlap = \"2s\"\n\
         [channels.probe]\nenabled = true\nbase_url = \"{}\"\ntoken = \"{PROBE_TOKEN}\"\n",
        common::config_text(&odoo.url(), OdooProtocol::Xmlrpc, dir.path(), ""),
        shop.base_url(),
        watcher.base_url(),
    );
    let config = RawConfig::parse(&text).unwrap().validate().unwrap();
    let store = Store::open(&config.state.path).unwrap();
    let client = OdooClient::connect(&config.odoo).await.unwrap();
    let (stop, task, _) = common::spawn_daemon(config, store.clone()).await;

    // The probe refuses everything while the order is confirmed and delivered.
    watcher.sim.refuse(true);
    let id = shop
        .sim
        .place_order("p@example.com", &[("SKU-00003", 2, Decimal::new(1_500, 3))]);
    let reference = format!("MEDUSA-{}", shop.sim.order(&id).unwrap().json["display_id"]);
    let so = {
        let end = tokio::time::Instant::now() + WAIT;
        loop {
            let found = client
                .search_read(
                    "sale.order",
                    &Domain::all().and("client_order_ref", "=", reference.as_str()),
                    &["id"],
                    SearchOpts::default(),
                )
                .await
                .unwrap();
            if let Some(o) = found.first() {
                break o.get("id").and_then(Value::as_i64).unwrap();
            }
            assert!(tokio::time::Instant::now() < end, "{reference} imported");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    {
        let mut w = odoo.sim.world();
        w.action_confirm(&[so]).unwrap();
        let pickings = w.pickings_of(so);
        w.button_validate(&pickings).unwrap();
    }
    wait_until("Medusa hears confirmed, shipped, delivered", WAIT, || {
        common::medusa_heard(&shop, &id) == ["order.confirmed", "order.shipped", "order.delivered"]
    })
    .await;
    wait_until("the probe was tried", WAIT, || watcher.sim.refused() >= 2).await;
    assert!(
        watcher.sim.events().is_empty(),
        "the probe took nothing yet"
    );

    // Now Medusa is down and the probe takes events again: it catches up, and hears the
    // invoice and the payment, though Medusa hears neither.
    shop.sim.faults.down(Fault::BadGateway);
    watcher.sim.refuse(false);
    {
        let mut w = odoo.sim.world();
        let invoice = w.invoice_order(so).unwrap();
        w.pay_invoice(invoice, true).unwrap();
    }
    let all: Vec<(String, String)> = [
        "confirmed",
        "shipment",
        "shipped",
        "delivered",
        "invoiced",
        "paid",
    ]
    .iter()
    .map(|k| (reference.clone(), k.to_string()))
    .collect();
    wait_until("the probe hears the whole story", WAIT, || {
        watcher.sim.heard() == all
    })
    .await;
    assert_eq!(
        common::medusa_heard(&shop, &id),
        ["order.confirmed", "order.shipped", "order.delivered"],
        "Medusa is down"
    );

    // Medusa back: it hears the rest, once.
    shop.sim.faults.up();
    wait_until("Medusa hears invoiced and paid", WAIT, || {
        common::medusa_heard(&shop, &id).len() == 5
    })
    .await;
    // The goods come back: a return of the delivery, as Odoo's return wizard makes it
    // (fixtures/odoo17/returns.json). The probe hears it; Medusa has no such status.
    let back = {
        let mut w = odoo.sim.world();
        let delivery = w.pickings_of(so)[0];
        w.return_delivery(delivery).unwrap()
    };
    let returns = client
        .search_read(
            "stock.picking",
            &Domain::all()
                .and("sale_id", "=", so)
                .and("picking_type_code", "=", "incoming"),
            &["state", "origin", "sale_id"],
            SearchOpts::default(),
        )
        .await
        .unwrap();
    assert_eq!(returns.len(), 1);
    assert_eq!(returns[0].get("id").and_then(Value::as_i64), Some(back));
    assert_eq!(
        returns[0].get("state").and_then(Value::as_str),
        Some("done")
    );
    assert!(returns[0]
        .get("origin")
        .and_then(Value::as_str)
        .is_some_and(|o| o.starts_with("Return of WH/OUT/")));
    let mut story = all.clone();
    story.push((reference.clone(), "returned".into()));
    wait_until("the probe hears the return", WAIT, || {
        watcher.sim.heard() == story
    })
    .await;
    common::two_more_runs(&store, "odoo.orders").await;
    stop.cancel();
    task.await.unwrap().unwrap();
    assert_eq!(
        common::medusa_heard(&shop, &id),
        [
            "order.confirmed",
            "order.shipped",
            "order.delivered",
            "order.invoiced",
            "order.paid"
        ]
    );
    assert_eq!(watcher.sim.heard(), story, "each event once, in order");
    let ids: Vec<i64> = watcher
        .sim
        .events()
        .iter()
        .map(|e| e["event_id"].as_i64().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    let delivered = &watcher.sim.events()[2];
    assert_eq!(
        delivered["data"]["order"]
            .as_str()
            .map(|s| s.starts_with('S')),
        Some(true)
    );
}
