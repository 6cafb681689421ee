//! The Cartona channel end to end: the real daemon against the Odoo and Cartona simulators.

mod common;

use common::wait_until;
use marketsync::config::{OdooProtocol, RawConfig};
use marketsync::daemon::Daemon;
use marketsync::odoo::{Domain, OdooClient, SearchOpts, Value};
use marketsync::sim::cartona::{self, CartonaHandle, Payment};
use marketsync::sim::faults::Fault;
use marketsync::sim::odoo::SimHandle;
use marketsync::store::queue::{self, JobState};
use marketsync::store::{inbox, mapping, orders, Store};
use rust_decimal::Decimal;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "cartona-test-token-3391";
const PRODUCTS: usize = 20;
const WAIT: Duration = Duration::from_secs(30);

struct Env {
    odoo: SimHandle,
    cartona: CartonaHandle,
    dir: tempfile::TempDir,
    store: Store,
    client: OdooClient,
    stop: CancellationToken,
    daemon: Option<tokio::task::JoinHandle<Result<(), marketsync::daemon::DaemonError>>>,
}

/// Supplier product id on Cartona for an Odoo product id.
fn sp(odoo_id: i64) -> String {
    (100_000 + odoo_id).to_string()
}

fn config_text(odoo: &str, cartona: &str, dir: &std::path::Path, token: &str) -> String {
    format!(
        "{}[schedule]\ncatalog_poll = \"1s\"\norders_poll = \"1s\"\nstatus_poll = \"1s\"\nodoo_health = \"1m\"\n\
         [retry]\nbase_delay = \"100ms\"\nmax_delay = \"1s\"\nmax_attempts = 8\n[daemon]\nqueue_poll = \"100ms\"\n\
         [channels.cartona]\nenabled = true\nbase_url = \"{cartona}\"\ntoken = \"{token}\"\nbatch_size = 100\npoll_overlap = \"2s\"\n",
        common::config_text(odoo, OdooProtocol::Xmlrpc, dir, ""),
    )
}

impl Env {
    async fn new() -> Env {
        Env::with_token(TOKEN).await
    }

    /// Simulators up, products mapped by `map import`, daemon not started yet.
    async fn with_token(daemon_token: &str) -> Env {
        // Five Odoo products more than Cartona lists: unmapped ones for the tests that need them.
        let odoo = common::odoo_sim(17, PRODUCTS + 5).await;
        let cartona = cartona::start(0, TOKEN).await.unwrap();
        for id in 1..=PRODUCTS as i64 {
            cartona.sim.add_product(
                &sp(id),
                Some(&id.to_string()),
                None,
                &format!("Product {id}"),
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(
            &path,
            config_text(&odoo.url(), &cartona.base_url(), dir.path(), TOKEN),
        )
        .unwrap();
        let config = RawConfig::parse(&std::fs::read_to_string(&path).unwrap())
            .unwrap()
            .validate()
            .unwrap();
        let store = Store::open(&config.state.path).unwrap();
        let client = OdooClient::connect(&config.odoo).await.unwrap();
        let report = common::map_cartona(&config, &client, &store).await;
        assert_eq!(report.matched.len(), PRODUCTS);
        if daemon_token != TOKEN {
            std::fs::write(
                &path,
                config_text(&odoo.url(), &cartona.base_url(), dir.path(), daemon_token),
            )
            .unwrap();
        }
        Env {
            odoo,
            cartona,
            dir,
            store,
            client,
            stop: CancellationToken::new(),
            daemon: None,
        }
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("config.toml")
    }

    /// True when no Cartona job waits (pending or retrying).
    fn nothing_waits(&self) -> bool {
        [JobState::Pending, JobState::Retrying]
            .into_iter()
            .all(|s| self.jobs(Some(s)).is_empty())
    }

    /// Rewrites the daemon's config, each `(from, to)` replaced in turn (before `start`).
    fn edit_config(&self, edits: &[(&str, &str)]) {
        let mut text = std::fs::read_to_string(self.config_path()).unwrap();
        for (from, to) in edits {
            assert!(text.contains(from), "the config has no {from:?}");
            text = text.replace(from, to);
        }
        std::fs::write(self.config_path(), text).unwrap();
    }

    fn start(&mut self) {
        let config = RawConfig::parse(&std::fs::read_to_string(self.config_path()).unwrap())
            .unwrap()
            .validate()
            .unwrap();
        self.stop = CancellationToken::new();
        let daemon = Daemon::new(config, self.store.clone());
        self.daemon = Some(tokio::spawn(daemon.run(self.stop.clone())));
    }

    async fn stop(&mut self) {
        self.stop.cancel();
        if let Some(d) = self.daemon.take() {
            d.await.unwrap().unwrap();
        }
    }

    /// Waits until every Cartona product has had a price pushed (the first full push).
    async fn all_pushed(&self) {
        wait_until("all products pushed", WAIT, || {
            self.cartona
                .sim
                .products()
                .iter()
                .all(|p| p.selling_price != "0.00")
        })
        .await;
    }

    /// `marketsync <args>` on this environment's configuration, off the async threads.
    async fn cli(&self, args: &[&str]) -> std::process::Output {
        let mut cmd = assert_cmd::Command::cargo_bin("marketsync").unwrap();
        cmd.env("NO_COLOR", "1")
            .arg("--config")
            .arg(self.config_path())
            .args(args);
        tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap()
    }

    async fn stdout(&self, args: &[&str]) -> String {
        String::from_utf8(self.cli(args).await.stdout).unwrap()
    }

    /// `marketsync check`: exit code and output.
    async fn check(&self) -> (Option<i32>, String) {
        let out = self.cli(&["check"]).await;
        (out.status.code(), String::from_utf8(out.stdout).unwrap())
    }

    /// Cartona's jobs, in a state or all of them (newest first).
    fn jobs(&self, state: Option<JobState>) -> Vec<queue::Job> {
        queue::list(&self.store, state, Some("cartona"), 100).unwrap()
    }

    fn odoo_price(&self, id: i64) -> String {
        let p = self.odoo.sim.world().get("product.product", id).unwrap()["list_price"]
            .as_decimal()
            .unwrap();
        format!("{p:.2}")
    }

    fn bulk_items(&self) -> Vec<serde_json::Value> {
        self.cartona
            .sim
            .requests
            .to("supplier-product/bulk-update")
            .iter()
            .flat_map(|r| r.json().as_array().cloned().unwrap_or_default())
            .collect()
    }

    async fn sale_orders(&self, reference: &str) -> Vec<Value> {
        self.client
            .search_read(
                "sale.order",
                &Domain::all().and("client_order_ref", "=", reference),
                &[
                    "name",
                    "state",
                    "partner_id",
                    "order_line",
                    "amount_untaxed",
                    "picking_ids",
                ],
                SearchOpts::default(),
            )
            .await
            .unwrap()
    }

    async fn wait_for_order(&self, reference: &str) -> Value {
        let end = tokio::time::Instant::now() + WAIT;
        loop {
            let found = self.sale_orders(reference).await;
            if let Some(o) = found.first() {
                return o.clone();
            }
            assert!(
                tokio::time::Instant::now() < end,
                "no Odoo order {reference}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn wait_for_state(&self, reference: &str, state: &str) {
        let end = tokio::time::Instant::now() + WAIT;
        loop {
            let found = self.sale_orders(reference).await;
            if found
                .first()
                .and_then(|o| o.get("state"))
                .and_then(Value::as_str)
                == Some(state)
            {
                return;
            }
            assert!(
                tokio::time::Instant::now() < end,
                "{reference} never reached {state}: {found:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Validates the order's delivery in Odoo, as warehouse staff would.
    async fn deliver_in_odoo(&self, order_id: i64) {
        let pickings = self
            .client
            .search(
                "stock.picking",
                &Domain::all().and("sale_id", "=", order_id),
                None,
            )
            .await
            .unwrap();
        self.client
            .call_method("stock.picking", "button_validate", &pickings)
            .await
            .unwrap();
    }

    fn stream_runs(&self, name: &str) -> i64 {
        marketsync::store::streams::get(&self.store, name)
            .unwrap()
            .and_then(|s| s.last_success_at)
            .unwrap_or(0)
    }

    /// Waits until `name` has completed two more runs (so anything it would do has been done).
    async fn two_more_runs(&self, name: &str) {
        for _ in 0..2 {
            let before = self.stream_runs(name);
            wait_until(&format!("{name} ran"), WAIT, || {
                self.stream_runs(name) > before
            })
            .await;
        }
    }
}

fn cash_order(env: &Env, lines: &[(i64, i64, &str)]) -> String {
    let lines: Vec<(String, i64, Decimal)> = lines
        .iter()
        .map(|(p, a, price)| (sp(*p), *a, Decimal::from_str(price).unwrap()))
        .collect();
    let refs: Vec<(&str, i64, Decimal)> =
        lines.iter().map(|(a, b, c)| (a.as_str(), *b, *c)).collect();
    env.cartona.sim.place_order(0, &refs, Payment::Cash, false)
}

/// A pricelist item (`product.pricelist.item`) of pricelist `pricelist`.
async fn price_rule(env: &Env, pricelist: i64, fields: &[(&str, Value)]) -> i64 {
    let mut vals = vec![("pricelist_id", Value::Int(pricelist))];
    vals.extend(fields.iter().cloned());
    env.client
        .create("product.pricelist.item", vec![Value::record(vals)])
        .await
        .unwrap()[0]
}

fn variant_price(product: i64, price: f64) -> Vec<(&'static str, Value)> {
    vec![
        ("applied_on", Value::from("0_product_variant")),
        ("product_id", Value::Int(product)),
        ("fixed_price", Value::Double(price)),
    ]
}

fn template_price(template: i64, price: f64) -> Vec<(&'static str, Value)> {
    vec![
        ("applied_on", Value::from("1_product")),
        ("product_tmpl_id", Value::Int(template)),
        ("fixed_price", Value::Double(price)),
    ]
}

#[tokio::test]
async fn a_pricelists_fixed_prices_are_sold_and_its_changes_found_without_the_product() {
    let mut env = Env::new().await;
    let c = &env.client;
    let pricelist = c
        .create(
            "product.pricelist",
            vec![Value::record([("name", Value::from("Cartona"))])],
        )
        .await
        .unwrap()[0];
    // Product 4 is a second variant of product 2's template.
    c.write(
        "product.product",
        &[4],
        Value::record([("product_tmpl_id", Value::Int(2))]),
    )
    .await
    .unwrap();
    let rule1 = price_rule(&env, pricelist, &variant_price(1, 11.0)).await;
    price_rule(&env, pricelist, &template_price(2, 22.0)).await;
    // Not for one unit, ended, or of another pricelist: list prices hold.
    let mut bulk = variant_price(5, 55.0);
    bulk.push(("min_quantity", Value::Double(10.0)));
    price_rule(&env, pricelist, &bulk).await;
    let mut ended = variant_price(6, 66.0);
    ended.push(("date_end", Value::from("2020-01-01 00:00:00")));
    price_rule(&env, pricelist, &ended).await;
    price_rule(&env, 1, &variant_price(3, 33.0)).await;
    let mut text = std::fs::read_to_string(env.config_path()).unwrap();
    text.push_str(&format!("pricelist_id = {pricelist}\n"));
    std::fs::write(env.config_path(), text).unwrap();
    env.start();

    let price = |id: i64| env.cartona.sim.product(&sp(id)).unwrap().selling_price;
    env.all_pushed().await;
    assert_eq!(price(1), "11.00", "the variant's fixed price");
    assert_eq!(price(2), "22.00", "the product's fixed price");
    assert_eq!(
        price(4),
        "22.00",
        "a variant without its own has its product's"
    );
    for id in [3, 5, 6, 7] {
        assert_eq!(
            price(id),
            env.odoo_price(id),
            "product {id}: the list price"
        );
    }

    // A rule changes, a rule is added: the products are not touched, their prices still go
    // out with the next change poll (not the nightly reconcile). First, the products' own
    // writes leave the change poll's window (its cursor less the 2 s overlap).
    common::wait_out_of_window(&env.store, &env.odoo, "cartona.catalog", PRODUCTS as i64).await;
    env.cartona.sim.requests.clear();
    let c = &env.client;
    c.write(
        "product.pricelist.item",
        &[rule1],
        Value::record([("fixed_price", Value::Double(12.5))]),
    )
    .await
    .unwrap();
    price_rule(&env, pricelist, &template_price(3, 30.0)).await;
    wait_until("new prices pushed", WAIT, || {
        price(1) == "12.50" && price(3) == "30.00"
    })
    .await;
    env.two_more_runs("cartona.catalog").await;
    let mut sent: Vec<String> = env
        .bulk_items()
        .iter()
        .map(|i| i["supplier_product_id"].as_str().unwrap().to_string())
        .collect();
    sent.sort();
    assert_eq!(
        sent,
        vec![sp(1), sp(3)],
        "only the two products whose price moved"
    );

    // A percentage rule is computed as Odoo computes it: 10 % off product 7's list price.
    let mut pct = variant_price(7, 0.0);
    pct.push(("compute_price", Value::from("percentage")));
    pct.push(("percent_price", Value::Double(10.0)));
    price_rule(&env, pricelist, &pct).await;
    let list7 = Decimal::from_str(&env.odoo_price(7)).unwrap();
    let want7 = format!(
        "{:.2}",
        (list7 * Decimal::new(9, 1))
            .round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
    );
    wait_until("10 % off product 7", WAIT, || price(7) == want7).await;

    // A formula on its own pricelist (a loop) gives no price, and none is guessed: nothing is
    // sent for that product, the catalog stream fails naming the rule, and the rest of the
    // catalog goes on (a stock move here).
    let mut other = variant_price(10, 0.0);
    other.push(("compute_price", Value::from("formula")));
    other.push(("base", Value::from("pricelist")));
    other.push(("base_pricelist_id", Value::Int(pricelist)));
    let rule10 = price_rule(&env, pricelist, &other).await;
    let stream_error = || common::stream_error(&env.store, "cartona.catalog");
    wait_until("the catalog stream fails", WAIT, || {
        stream_error().is_some()
    })
    .await;
    let e = stream_error().unwrap();
    assert!(
        e.contains(&format!(
            "1 product(s) not sent, their price unknown: pricelist {pricelist}: rule {rule10} computes from pricelist {pricelist}, which computes from this one (a loop)"
        )),
        "{e}"
    );
    env.odoo.sim.world().set_on_hand(9, 99.0).unwrap();
    wait_until("another product's stock pushed", WAIT, || {
        env.cartona
            .sim
            .product(&sp(9))
            .unwrap()
            .available_stock_quantity
            == 99
    })
    .await;
    assert!(stream_error().is_some(), "still said");
    assert_eq!(price(10), env.odoo_price(10));
    // `marketsync check` says the same before any sync runs.
    let check = env.check().await;
    assert_eq!(check.0, Some(1), "{}", check.1);
    let line = check
        .1
        .lines()
        .find(|l| l.contains("cartona.pricelist"))
        .unwrap_or_default();
    assert!(
        line.starts_with("FAIL")
            && line.contains(&format!(
                "pricelist {pricelist} (\"Cartona\"): rule {rule10} computes from pricelist {pricelist}"
            )),
        "{}",
        check.1
    );
    env.client
        .write(
            "product.pricelist.item",
            &[rule10],
            Value::record([
                ("compute_price", Value::from("fixed")),
                ("fixed_price", Value::Double(70.0)),
            ]),
        )
        .await
        .unwrap();
    wait_until("the fixed price pushed", WAIT, || price(10) == "70.00").await;
    assert!(stream_error().is_none());
    let check = env.check().await;
    assert_eq!(check.0, Some(0), "{}", check.1);
    assert!(check.1.contains("rule(s) in effect"), "{}", check.1);

    // A rule that starts later changes the price when it starts, with nothing written then.
    let soon = (chrono::Utc::now() + chrono::Duration::seconds(6))
        .format("%Y-%m-%d %H:%M:%S")
        .to_string();
    let mut later = variant_price(8, 88.0);
    later.push(("date_start", Value::from(soon.as_str())));
    price_rule(&env, pricelist, &later).await;
    env.two_more_runs("cartona.catalog").await;
    if chrono::Utc::now().format("%Y-%m-%d %H:%M:%S").to_string() < soon {
        assert_eq!(price(8), env.odoo_price(8), "not before it starts");
    }
    wait_until("the price of a rule that started", WAIT, || {
        price(8) == "88.00"
    })
    .await;

    // A rule deleted leaves nothing written: the next change poll notices it is gone and
    // reads the catalog again, so product 1 falls back to its list price.
    env.client
        .unlink("product.pricelist.item", &[rule1])
        .await
        .unwrap();
    wait_until("the list price back", WAIT, || {
        price(1) == env.odoo_price(1)
    })
    .await;
    env.stop().await;
}

#[tokio::test]
async fn catalog_full_push_then_only_what_changes() {
    let mut env = Env::new().await;
    env.start();
    // Initial full push: every mapped product, with Odoo's price and free stock.
    env.all_pushed().await;
    for id in 1..=PRODUCTS as i64 {
        let p = env.cartona.sim.product(&sp(id)).unwrap();
        assert_eq!(p.selling_price, env.odoo_price(id), "product {id}");
        assert_eq!(
            p.available_stock_quantity,
            env.odoo.sim.world().free_qty(id) as i64
        );
        assert!(p.is_published);
    }
    let first = env.cartona.sim.requests.to("supplier-product/bulk-update");
    assert_eq!(first.len(), 1, "20 products go in one batch of up to 100");
    env.two_more_runs("cartona.catalog").await;
    assert_eq!(
        env.cartona
            .sim
            .requests
            .to("supplier-product/bulk-update")
            .len(),
        1,
        "nothing changed, nothing sent"
    );

    // A price change: exactly one bulk-update carrying only that product.
    env.cartona.sim.requests.clear();
    env.client
        .write(
            "product.product",
            &[3],
            Value::record([("list_price", Value::Double(123.45))]),
        )
        .await
        .unwrap();
    wait_until("price pushed", WAIT, || {
        env.cartona.sim.product(&sp(3)).unwrap().selling_price == "123.45"
    })
    .await;
    env.two_more_runs("cartona.catalog").await;
    let items = env.bulk_items();
    assert_eq!(
        env.cartona
            .sim
            .requests
            .to("supplier-product/bulk-update")
            .len(),
        1
    );
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["supplier_product_id"], sp(3));
    assert_eq!(items[0]["selling_price"], "123.45");

    // A stock move: the new free quantity goes out.
    env.cartona.sim.requests.clear();
    env.odoo.sim.world().set_on_hand(5, 77.0).unwrap();
    wait_until("stock pushed", WAIT, || {
        env.cartona
            .sim
            .product(&sp(5))
            .unwrap()
            .available_stock_quantity
            == 77
    })
    .await;
    assert_eq!(env.bulk_items().len(), 1);

    // Archived in Odoo: unpublished on Cartona, stock zero.
    env.client
        .call_method("product.product", "action_archive", &[7])
        .await
        .unwrap();
    wait_until("unpublished", WAIT, || {
        !env.cartona.sim.product(&sp(7)).unwrap().is_published
    })
    .await;
    assert_eq!(
        env.cartona
            .sim
            .product(&sp(7))
            .unwrap()
            .available_stock_quantity,
        0
    );
    env.stop().await;
}

#[tokio::test]
async fn an_order_is_imported_once_acknowledged_and_its_statuses_flow_both_ways() {
    let mut env = Env::new().await;
    env.start();
    let price1 = env.odoo_price(1);
    let hashed = cash_order(&env, &[(1, 3, &price1), (2, 2, "15.50"), (2, 4, "14.00")]);
    let reference = format!("CARTONA-{hashed}");
    let order = env.wait_for_order(&reference).await;
    let id = order.get("id").unwrap().as_i64().unwrap();
    assert_eq!(
        order.get("state").unwrap().as_str(),
        Some("draft"),
        "a pending order is a quotation"
    );
    assert_eq!(
        order.get("partner_id").unwrap().as_many2one().unwrap().1,
        "حياه ماركت"
    );
    let lines = env
        .client
        .search_read(
            "sale.order.line",
            &Domain::all().and("order_id", "=", id),
            &["product_id", "product_uom_qty", "price_unit"],
            SearchOpts {
                order: Some("id".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let got: Vec<(i64, f64, f64)> = lines
        .iter()
        .map(|l| {
            (
                l.get("product_id").unwrap().as_id().unwrap(),
                l.get("product_uom_qty").unwrap().as_f64().unwrap(),
                l.get("price_unit").unwrap().as_f64().unwrap(),
            )
        })
        .collect();
    let p1: f64 = price1.parse().unwrap();
    assert_eq!(
        got,
        vec![(1, 3.0, p1), (2, 2.0, 15.5), (2, 4.0, 14.0)],
        "an offer's two lines at two prices are kept"
    );
    wait_until("synced sent", WAIT, || {
        env.cartona.sim.order(&hashed).unwrap().synced
    })
    .await;
    let partner = order.get("partner_id").unwrap().as_id().unwrap();
    let p = env
        .client
        .read("res.partner", &[partner], &["ref", "phone"])
        .await
        .unwrap();
    assert_eq!(p[0].get("ref").unwrap().as_str(), Some("cartona:A00315"));

    // Confirmed in Odoo -> approved on Cartona.
    env.client
        .call_method("sale.order", "action_confirm", &[id])
        .await
        .unwrap();
    wait_until("approved sent", WAIT, || {
        env.cartona.sim.order(&hashed).unwrap().status() == "approved"
    })
    .await;
    // Delivered in Odoo -> delivered on Cartona (cash: no OTP).
    env.deliver_in_odoo(id).await;
    wait_until("delivered sent", WAIT, || {
        env.cartona.sim.order(&hashed).unwrap().status() == "delivered"
    })
    .await;
    assert_eq!(
        env.cartona.sim.order(&hashed).unwrap().history,
        vec!["pending", "approved", "delivered"]
    );

    // Pulled again after a restart with an empty state: found by reference, not created twice.
    env.stop().await;
    std::fs::remove_file(env.dir.path().join("state.db")).unwrap();
    env.store = Store::open(&env.dir.path().join("state.db")).unwrap();
    for pid in 1..=PRODUCTS as i64 {
        mapping::set(
            &env.store,
            "cartona",
            "product",
            "product.product",
            pid,
            &sp(pid),
        )
        .unwrap();
    }
    env.cartona.sim.cartona_sets_status(&hashed, "delivered");
    env.start();
    wait_until("re-acknowledged", WAIT, || {
        env.cartona.sim.order(&hashed).unwrap().synced
    })
    .await;
    assert_eq!(
        env.sale_orders(&reference).await.len(),
        1,
        "exactly one Odoo order"
    );
    env.stop().await;
}

async fn order_total(env: &Env, reference: &str) -> Decimal {
    let o = env.wait_for_order(reference).await;
    common::amount_total(&env.client, o.get("id").and_then(Value::as_i64).unwrap()).await
}

/// Cartona's `total_price` is what the retailer pays. With the products' own 15 % (Odoo's
/// default, `order_taxes = "product"`) added on top, Odoo's total is more, and the order is
/// flagged with both figures; with Egypt's 14 % VAT included in the price as `order_taxes`,
/// Odoo's `amount_total` is `total_price` to the piastre.
#[tokio::test]
async fn cartona_s_total_price_is_odoo_s_total_with_a_price_included_vat_and_flagged_without() {
    let mut env = Env::new().await;
    let tax = |name: &str, amount: f64, included: bool| {
        Value::record([
            ("name", Value::from(name)),
            ("amount", Value::Double(amount)),
            ("price_include", Value::Bool(included)),
            ("type_tax_use", Value::from("sale")),
        ])
    };
    let taxes = env
        .client
        .create(
            "account.tax",
            vec![tax("15%", 15.0, false), tax("VAT 14% included", 14.0, true)],
        )
        .await
        .unwrap();
    let (fifteen, vat) = (taxes[0], taxes[1]);
    env.client
        .write(
            "product.product",
            &[1, 2],
            Value::record([(
                "taxes_id",
                Value::Array(vec![Value::Array(vec![
                    Value::Int(6),
                    Value::Int(0),
                    Value::Array(vec![Value::Int(fifteen)]),
                ])]),
            )]),
        )
        .await
        .unwrap();
    // 3 x 1,000.50 + 2 x 42.25 = 3,086.00 EGP.
    env.start();
    let first = cash_order(&env, &[(1, 3, "1000.50"), (2, 2, "42.25")]);
    assert_eq!(
        order_total(&env, &format!("CARTONA-{first}")).await,
        Decimal::from_str("3548.91").unwrap(),
        "15 % on top, rounded line by line (450.23 + 12.68)"
    );
    let said = common::said_once(&env.store, "is not what Cartona says the customer pays");
    assert!(
        said.message.contains("3548.91 EGP")
            && said.message.contains("3086.00")
            && said.message.contains("+462.91"),
        "{}",
        said.message
    );
    env.stop().await;

    env.edit_config(&[(
        "[channels.cartona]\n",
        &format!("[channels.cartona]\norder_taxes = [{vat}]\n"),
    )]);
    env.start();
    let second = cash_order(&env, &[(1, 3, "1000.50"), (2, 2, "42.25")]);
    assert_eq!(
        order_total(&env, &format!("CARTONA-{second}")).await,
        Decimal::from_str("3086.00").unwrap(),
        "the price is the tax-inclusive price"
    );
    let listed = env.stdout(&["order", "list"]).await;
    let row = |h: &str| listed.lines().find(|l| l.contains(h)).unwrap().to_string();
    assert!(row(&first).contains("totals differ"), "{listed}");
    assert!(!row(&second).contains("totals differ"), "{listed}");
    env.stop().await;
}

#[tokio::test]
async fn an_order_confirmed_and_delivered_between_two_polls_is_approved_before_it_is_delivered() {
    let mut env = Env::new().await;
    env.start();
    let price = env.odoo_price(1);
    let hashed = cash_order(&env, &[(1, 2, &price)]);
    let reference = format!("CARTONA-{hashed}");
    let id = env
        .wait_for_order(&reference)
        .await
        .get("id")
        .unwrap()
        .as_i64()
        .unwrap();
    wait_until("synced sent", WAIT, || {
        env.cartona.sim.order(&hashed).unwrap().synced
    })
    .await;
    {
        // Confirmed and its delivery validated at once: the next status poll sees both.
        let mut w = env.odoo.sim.world();
        w.action_confirm(&[id]).unwrap();
        let pickings = w.pickings_of(id);
        w.button_validate(&pickings).unwrap();
    }
    // Cartona refuses to deliver a pending order (its bulk endpoint drops the update without a
    // word): it must hear "approved" first.
    wait_until("delivered on Cartona", WAIT, || {
        env.cartona.sim.order(&hashed).unwrap().status() == "delivered"
    })
    .await;
    env.two_more_runs("odoo.orders").await;
    assert_eq!(
        env.cartona.sim.order(&hashed).unwrap().history,
        vec!["pending", "approved", "delivered"]
    );
}

#[tokio::test]
async fn editing_orders_wait_and_cancellations_reach_odoo() {
    let mut env = Env::new().await;
    let editing = cash_order(&env, &[(4, 1, "10.00")]);
    env.cartona.sim.cartona_sets_status(&editing, "editing");
    let cancelled = cash_order(&env, &[(5, 2, "20.00")]);
    env.start();
    let reference = format!("CARTONA-{cancelled}");
    env.wait_for_order(&reference).await;
    env.two_more_runs("cartona.orders").await;
    assert!(
        env.sale_orders(&format!("CARTONA-{editing}"))
            .await
            .is_empty(),
        "an order being edited is left alone"
    );
    assert!(!env.cartona.sim.order(&editing).unwrap().synced);

    // Back to pending with an edited line: imported with the new amount.
    env.cartona.sim.retailer_edits_line(&editing, 0, 6);
    env.cartona.sim.cartona_sets_status(&editing, "pending");
    let o = env.wait_for_order(&format!("CARTONA-{editing}")).await;
    assert_eq!(o.get("amount_untaxed").unwrap().as_f64(), Some(60.0));

    // The retailer cancels on Cartona: the Odoo order is cancelled, nothing is sent back.
    env.cartona
        .sim
        .cartona_sets_status(&cancelled, "cancelled_by_retailer");
    env.wait_for_state(&reference, "cancel").await;
    env.two_more_runs("odoo.orders").await;
    assert_eq!(
        env.cartona.sim.order(&cancelled).unwrap().history,
        vec!["pending", "cancelled_by_retailer"]
    );
    env.stop().await;
}

#[tokio::test]
async fn delivery_of_an_installment_order_waits_for_the_otp() {
    let mut env = Env::new().await;
    env.start();
    let lines = [(sp(6), 2i64, Decimal::from(30))];
    let refs: Vec<(&str, i64, Decimal)> =
        lines.iter().map(|(a, b, c)| (a.as_str(), *b, *c)).collect();
    let hashed = env
        .cartona
        .sim
        .place_order(1, &refs, Payment::Installment, false);
    let reference = format!("CARTONA-{hashed}");
    let id = env
        .wait_for_order(&reference)
        .await
        .get("id")
        .unwrap()
        .as_i64()
        .unwrap();
    env.client
        .call_method("sale.order", "action_confirm", &[id])
        .await
        .unwrap();
    wait_until("approved", WAIT, || {
        env.cartona.sim.order(&hashed).unwrap().status() == "approved"
    })
    .await;
    env.deliver_in_odoo(id).await;
    wait_until("OTP asked for", WAIT, || {
        orders::by_reference(&env.store, &reference)
            .unwrap()
            .unwrap()
            .attention
            .is_some_and(|a| a.contains("OTP"))
    })
    .await;
    assert_eq!(
        env.cartona.sim.order(&hashed).unwrap().status(),
        "approved",
        "not delivered without the OTP"
    );

    // The operator records the OTP (a second process writing beside the daemon): delivered goes
    // out through the single-order endpoint.
    let out = env.cli(&["order", "otp", &reference, "4321"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("the delivered status is queued for Cartona")
    );
    wait_until("delivered with OTP", WAIT, || {
        env.cartona.sim.order(&hashed).unwrap().status() == "delivered"
    })
    .await;
    let single = env
        .cartona
        .sim
        .requests
        .to(&format!("order/update-order-status/{hashed}"));
    assert_eq!(single.len(), 1);
    assert_eq!(single[0].json()["retailer_otp"], "4321");
    // Only what the log says is searched, the OTP as a whole number: a row's time and id, or a
    // duration in its details, may hold any digits.
    let said: Vec<_> = common::sync_log(&env.store)
        .into_iter()
        .map(|r| (r.message, r.details, r.correlation_id))
        .collect();
    let text = serde_json::to_string(&said).unwrap();
    assert!(
        !text
            .split(|c: char| !c.is_ascii_digit())
            .any(|n| n == "4321"),
        "the OTP is not logged: {text}"
    );
    env.stop().await;
}

#[tokio::test]
async fn an_order_with_an_unknown_product_is_parked_with_the_reason() {
    let mut env = Env::new().await;
    env.cartona
        .sim
        .add_product("999999", Some("9999"), None, "منتج غير معروف");
    let good = cash_order(&env, &[(8, 1, "5.00")]);
    let bad = env.cartona.sim.place_order(
        2,
        &[
            ("999999", 1, Decimal::from(5)),
            (sp(8).as_str(), 1, Decimal::from(5)),
        ],
        Payment::Cash,
        false,
    );
    env.start();
    env.wait_for_order(&format!("CARTONA-{good}")).await;
    wait_until("parked", WAIT, || {
        !inbox::list(&env.store, Some("parked"), 10)
            .unwrap()
            .is_empty()
    })
    .await;
    let parked = &inbox::list(&env.store, Some("parked"), 10).unwrap()[0];
    assert!(
        parked
            .error
            .as_deref()
            .unwrap()
            .contains("999999 (منتج غير معروف)"),
        "{:?}",
        parked.error
    );
    assert!(
        env.sale_orders(&format!("CARTONA-{bad}")).await.is_empty(),
        "nothing half-created"
    );
    assert!(
        !env.cartona.sim.order(&bad).unwrap().synced,
        "not acknowledged"
    );
    let dead = env.jobs(Some(JobState::Dead));
    assert_eq!(dead.len(), 1);
    assert!(dead[0]
        .last_error
        .as_deref()
        .unwrap()
        .contains("not mapped to Odoo"));
    env.stop().await;

    // Visible to the operator in status, logs and queue.
    let status = env.stdout(&["status"]).await;
    let row = status.lines().find(|l| l.starts_with("cartona")).unwrap();
    assert_eq!(
        row.split_whitespace().nth(7),
        Some("1"),
        "one parked order: {row}"
    );
    assert!(env
        .stdout(&["logs", "--level", "error"])
        .await
        .contains("999999"));
    assert!(env
        .stdout(&["queue", "list", "--state", "dead"])
        .await
        .contains(&format!("cartona:order:{bad}")));

    // Mapped by the operator, retried: imported.
    mapping::set(
        &env.store,
        "cartona",
        "product",
        "product.product",
        23,
        "999999",
    )
    .unwrap();
    queue::retry_now(&env.store, dead[0].id).unwrap();
    env.start();
    env.wait_for_order(&format!("CARTONA-{bad}")).await;
    env.stop().await;
}

#[tokio::test]
async fn a_rejected_token_dead_letters_without_a_retry_storm() {
    let mut env = Env::with_token("revoked-token-0000").await;
    let hashed = cash_order(&env, &[(1, 1, "1.00")]);
    env.start();
    wait_until("pushes dead", WAIT, || {
        env.jobs(Some(JobState::Dead))
            .iter()
            .any(|j| j.kind == "product")
    })
    .await;
    env.two_more_runs("cartona.catalog").await;
    let dead = env.jobs(Some(JobState::Dead));
    let job = dead.iter().find(|j| j.kind == "product").unwrap();
    assert_eq!(job.attempts, 1, "auth errors are not retried");
    assert!(
        job.last_error
            .as_deref()
            .unwrap()
            .contains("Cartona rejected the token"),
        "{:?}",
        job.last_error
    );
    assert_eq!(
        env.cartona
            .sim
            .requests
            .to("supplier-product/bulk-update")
            .len(),
        1,
        "one refused batch, no storm"
    );
    let orders = marketsync::store::streams::get(&env.store, "cartona.orders")
        .unwrap()
        .unwrap();
    assert!(orders
        .last_error
        .unwrap()
        .contains("Cartona rejected the token"));
    assert!(env
        .sale_orders(&format!("CARTONA-{hashed}"))
        .await
        .is_empty());
    env.stop().await;
}

#[tokio::test]
async fn server_errors_rate_limits_and_drops_are_retried_until_delivered() {
    let mut env = Env::new().await;
    env.cartona.sim.faults.push([
        Fault::Status {
            status: 500,
            body: "Internal Server Error".into(),
            retry_after: None,
        },
        Fault::Status {
            status: 429,
            body: "Too Many Requests".into(),
            retry_after: Some(1),
        },
        Fault::Drop,
        Fault::Status {
            status: 503,
            body: "<html><title>503 Service Unavailable</title></html>".into(),
            retry_after: None,
        },
    ]);
    env.start();
    // Pushed despite the faults.
    env.all_pushed().await;
    let hashed = cash_order(&env, &[(2, 1, "3.00")]);
    env.cartona.sim.faults.push([
        Fault::Status {
            status: 502,
            body: "Bad Gateway".into(),
            retry_after: None,
        },
        Fault::Drop,
    ]);
    env.wait_for_order(&format!("CARTONA-{hashed}")).await;
    wait_until("acknowledged", WAIT, || {
        env.cartona.sim.order(&hashed).unwrap().synced
    })
    .await;
    assert!(
        queue::list(&env.store, Some(JobState::Dead), None, 10)
            .unwrap()
            .is_empty(),
        "nothing that could succeed is dead"
    );
    env.stop().await;
}

#[tokio::test]
async fn the_documented_order_fixture_imports_and_cartona_delivered_orders_report_only_cancellation(
) {
    let mut env = Env::new().await;
    env.cartona
        .sim
        .add_product("110774", None, None, "بيبسي ستار - 330 ملة");
    env.cartona
        .sim
        .add_product("110775", None, None, "شيبسي - 50 جم");
    mapping::set(
        &env.store,
        "cartona",
        "product",
        "product.product",
        21,
        "110774",
    )
    .unwrap();
    mapping::set(
        &env.store,
        "cartona",
        "product",
        "product.product",
        22,
        "110775",
    )
    .unwrap();
    let fixture: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/cartona/order-documented.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let hashed = env.cartona.sim.add_order(fixture);
    env.start();
    let order = env.wait_for_order("CARTONA-GMNvpbLM").await;
    assert_eq!(hashed, "GMNvpbLM");
    assert_eq!(
        order.get("amount_untaxed").unwrap().as_f64(),
        Some(3040.0),
        "Cartona's total_price"
    );
    let id = order.get("id").unwrap().as_i64().unwrap();
    env.client
        .call_method("sale.order", "action_confirm", &[id])
        .await
        .unwrap();
    env.two_more_runs("odoo.orders").await;
    assert_eq!(
        env.cartona.sim.order(&hashed).unwrap().status(),
        "pending",
        "Cartona delivers it: no approval sent"
    );
    env.client
        .call_method("sale.order", "action_cancel", &[id])
        .await
        .unwrap();
    wait_until("cancellation sent", WAIT, || {
        env.cartona.sim.order(&hashed).unwrap().status() == "cancelled_by_supplier"
    })
    .await;
    assert_eq!(
        env.cartona.sim.order(&hashed).unwrap().json["cancellation_reason"],
        "out_of_stock"
    );
    env.stop().await;
}

/// `products`: Cartona sells only what the filter holds. `map import` matches within it; a
/// mapped product outside it is unpublished (`is_published = false`), one that leaves it (here:
/// made heavier than the filter allows) too, and published again once it is back.
#[tokio::test]
async fn cartona_sells_only_what_its_products_filter_holds() {
    let mut env = Env::new().await;
    env.edit_config(&[(
        "[channels.cartona]\n",
        "[channels.cartona]\nproducts = [[\"id\", \"<=\", 10], [\"weight\", \"<\", 100]]\n",
    )]);
    let fresh = env.dir.path().join("fresh.db");
    let mut cmd = assert_cmd::Command::cargo_bin("marketsync").unwrap();
    cmd.env("NO_COLOR", "1")
        .arg("--config")
        .arg(env.config_path())
        .arg("--state-file")
        .arg(&fresh)
        .args(["map", "import", "--channel", "cartona", "--dry-run"]);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        text.contains("would map: 10"),
        "only within the filter: {text}"
    );

    env.start();
    let published = |id: i64| env.cartona.sim.product(&sp(id)).unwrap().is_published;
    wait_until(
        "the filter's products published, the others not",
        WAIT,
        || (1..=10).all(published) && (11..=PRODUCTS as i64).all(|i| !published(i)),
    )
    .await;
    let weigh = |kg: f64| {
        env.odoo
            .sim
            .world()
            .write(
                "product.product",
                &[3],
                &Value::record([("weight", Value::Double(kg))]),
            )
            .unwrap()
    };
    weigh(500.0);
    wait_until("out of the filter: unpublished", WAIT, || !published(3)).await;
    assert!(published(2), "the others stay");
    weigh(1.0);
    wait_until("back in it: published", WAIT, || published(3)).await;
    env.stop().await;
}

#[tokio::test]
async fn map_import_from_the_command_line_reports_and_is_idempotent() {
    let env = Env::new().await;
    let other = env.dir.path().join("other.db");
    let run = |args: Vec<String>| {
        let mut cmd = assert_cmd::Command::cargo_bin("marketsync").unwrap();
        cmd.env("NO_COLOR", "1")
            .arg("--config")
            .arg(env.config_path())
            .arg("--state-file")
            .arg(&other)
            .args(args);
        tokio::task::spawn_blocking(move || cmd.output().unwrap())
    };
    let args = |extra: &[&str]| {
        ["map", "import", "--channel", "cartona"]
            .iter()
            .chain(extra)
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
    };
    let out = run(args(&["--dry-run"])).await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("would map: 20"), "{text}");
    assert!(
        text.contains("sellable in Odoo, not on Cartona: 5"),
        "{text}"
    );
    let out = run(args(&[])).await.unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("mapped: 20"));
    let out = run(args(&["--json"])).await.unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (
            report["already_mapped"].as_u64(),
            report["matched"].as_array().map(Vec::len)
        ),
        (Some(20), Some(0))
    );
}

#[tokio::test]
async fn quantity_edits_on_an_odoo_quotation_reach_cartona() {
    let mut env = Env::new().await;
    env.start();
    let hashed = cash_order(&env, &[(3, 2, "11.00"), (4, 1, "12.00")]);
    let id = env
        .wait_for_order(&format!("CARTONA-{hashed}"))
        .await
        .get("id")
        .unwrap()
        .as_i64()
        .unwrap();
    wait_until("acknowledged", WAIT, || {
        env.cartona.sim.order(&hashed).unwrap().synced
    })
    .await;
    env.two_more_runs("cartona.edits").await;
    assert!(
        env.cartona
            .sim
            .requests
            .to("order/update-order-details")
            .is_empty(),
        "an unedited quotation sends nothing"
    );

    let lines = env
        .client
        .search(
            "sale.order.line",
            &Domain::all().and("order_id", "=", id),
            None,
        )
        .await
        .unwrap();
    env.client
        .write("sale.order", &[id], Value::from(serde_json::json!({"order_line": [[1, lines[0], {"product_uom_qty": 5}], [2, lines[1], 0]]})))
        .await
        .unwrap();
    wait_until("edit sent", WAIT, || {
        !env.cartona
            .sim
            .requests
            .to("order/update-order-details")
            .is_empty()
    })
    .await;
    let sent = env.cartona.sim.requests.to("order/update-order-details")[0].json();
    let details = sent[0]["order_details"].as_array().unwrap();
    assert_eq!(details.len(), 2, "{sent}");
    assert_eq!(details[0]["amount"], 5);
    assert_eq!(details[1]["cancelled"], true);
    let order = env.cartona.sim.order(&hashed).unwrap();
    assert_eq!(order.json["order_details"].as_array().unwrap().len(), 1);
    assert_eq!(order.json["order_details"][0]["amount"], 5);
    env.stop().await;
}

/// An order Odoo already had, confirmed before marketsync knew it (a state restored from an
/// older backup, an order entered by hand): once Cartona sends it, Cartona hears it is approved
/// at the next status poll, not only at the nightly reconcile.
#[tokio::test]
async fn an_order_confirmed_in_odoo_before_marketsync_knew_it_is_approved_on_cartona() {
    let mut env = Env::new().await;
    env.start();
    let first = cash_order(&env, &[(3, 2, "11.00")]);
    let order = env.wait_for_order(&format!("CARTONA-{first}")).await;
    let partner = order.get("partner_id").unwrap().as_id().unwrap();
    let known = "777000000001";
    let id = env
        .client
        .create(
            "sale.order",
            vec![Value::record(vec![
                ("partner_id", Value::Int(partner)),
                (
                    "client_order_ref",
                    Value::from(format!("CARTONA-{known}").as_str()),
                ),
            ])],
        )
        .await
        .unwrap()[0];
    env.client
        .call_method("sale.order", "action_confirm", &[id])
        .await
        .unwrap();
    // The watcher's window moves past the confirmation (and its 2 s overlap) while the order
    // is not a known one yet.
    let written = env
        .client
        .read("sale.order", &[id], &["write_date"])
        .await
        .unwrap()[0]
        .get("write_date")
        .and_then(|w| w.as_str().map(str::to_string))
        .unwrap();
    let past = (chrono::NaiveDateTime::parse_from_str(&written, "%Y-%m-%d %H:%M:%S").unwrap()
        + chrono::Duration::seconds(3))
    .format("%Y-%m-%d %H:%M:%S")
    .to_string();
    wait_until("the watcher's window past the confirmation", WAIT, || {
        marketsync::store::streams::get(&env.store, "odoo.orders")
            .unwrap()
            .and_then(|s| s.cursor)
            .is_some_and(|c| c >= past)
    })
    .await;
    env.two_more_runs("odoo.orders").await;
    let mut json = env.cartona.sim.order(&first).unwrap().json;
    json["hashed_id"] = serde_json::Value::from(known);
    json["status"] = serde_json::Value::from("pending");
    env.cartona.sim.add_order(json);
    wait_until("approved sent for the order Odoo had", WAIT, || {
        env.cartona.sim.order(known).unwrap().status() == "approved"
    })
    .await;
    assert_eq!(
        env.sale_orders(&format!("CARTONA-{known}")).await.len(),
        1,
        "found by its reference, not created again"
    );
    env.stop().await;
}

/// A fraction of a unit cannot be said to Cartona: that quotation waits for the operator with
/// the reason, and another quotation's edit still goes out.
#[tokio::test]
async fn a_fractional_quantity_waits_for_the_operator_and_other_edits_go_on() {
    let mut env = Env::new().await;
    env.start();
    let odd = cash_order(&env, &[(3, 2, "11.00")]);
    let fine = cash_order(&env, &[(4, 1, "12.00")]);
    let mut ids = Vec::new();
    for h in [&odd, &fine] {
        ids.push(
            env.wait_for_order(&format!("CARTONA-{h}"))
                .await
                .get("id")
                .unwrap()
                .as_i64()
                .unwrap(),
        );
        wait_until("acknowledged", WAIT, || {
            env.cartona.sim.order(h).unwrap().synced
        })
        .await;
    }
    for (id, qty) in [(ids[0], 2.5), (ids[1], 3.0)] {
        let line = env
            .client
            .search(
                "sale.order.line",
                &Domain::all().and("order_id", "=", id),
                None,
            )
            .await
            .unwrap()[0];
        env.client
            .write(
                "sale.order.line",
                &[line],
                Value::from(serde_json::json!({ "product_uom_qty": qty })),
            )
            .await
            .unwrap();
    }
    wait_until("the whole edit sent", WAIT, || {
        !env.cartona
            .sim
            .requests
            .to("order/update-order-details")
            .is_empty()
    })
    .await;
    env.two_more_runs("cartona.edits").await;
    let sent: Vec<serde_json::Value> = env
        .cartona
        .sim
        .requests
        .to("order/update-order-details")
        .iter()
        .map(|r| r.json())
        .collect();
    assert!(
        sent.iter()
            .flat_map(|b| b.as_array().cloned().unwrap_or_default())
            .all(|o| o["hashed_id"] == fine.as_str()),
        "only the whole quantity went out: {sent:?}"
    );
    assert_eq!(
        env.cartona.sim.order(&fine).unwrap().json["order_details"][0]["amount"],
        3
    );
    let waiting = marketsync::store::orders::get(&env.store, "cartona", &odd)
        .unwrap()
        .unwrap();
    assert!(
        waiting
            .attention
            .as_deref()
            .is_some_and(|a| a.contains("2.5") && a.contains("whole")),
        "{:?}",
        waiting.attention
    );
    env.stop().await;
}

#[tokio::test]
async fn a_refused_batch_is_sent_product_by_product_and_the_refused_one_waits_with_the_reason() {
    let mut env = Env::new().await;
    // Odoo product 21 mapped to a supplier product Cartona does not have.
    mapping::set(
        &env.store,
        "cartona",
        "product",
        "product.product",
        21,
        "999999",
    )
    .unwrap();
    env.start();
    wait_until("the others pushed", WAIT, || {
        (1..=PRODUCTS as i64)
            .all(|id| env.cartona.sim.product(&sp(id)).unwrap().selling_price == env.odoo_price(id))
    })
    .await;
    wait_until(
        "the refused product dead with Cartona's reason",
        WAIT,
        || {
            env.jobs(Some(JobState::Dead)).iter().any(|j| {
                j.key == "cartona:product:21"
                    && j.last_error
                        .as_deref()
                        .is_some_and(|e| e.contains("Product not found"))
            })
        },
    )
    .await;
    env.stop().await;
}

#[tokio::test]
async fn a_stale_batch_retried_later_never_overwrites_a_newer_price() {
    // The first push is refused (revoked token): its batch is dead with the initial prices.
    let mut env = Env::with_token("revoked-token-0000").await;
    env.start();
    wait_until("the first batch dead", WAIT, || {
        env.jobs(Some(JobState::Dead))
            .iter()
            .any(|j| j.kind == "product")
    })
    .await;
    env.stop().await;
    let stale = env
        .jobs(Some(JobState::Dead))
        .into_iter()
        .find(|j| j.kind == "product")
        .unwrap();
    // The token is fixed and product 1 gets a new price, which goes out.
    std::fs::write(
        env.config_path(),
        config_text(
            &env.odoo.url(),
            &env.cartona.base_url(),
            env.dir.path(),
            TOKEN,
        ),
    )
    .unwrap();
    env.client
        .write(
            "product.product",
            &[1],
            Value::record([("list_price", Value::Double(77.77))]),
        )
        .await
        .unwrap();
    env.start();
    wait_until("the new price on Cartona", WAIT, || {
        env.cartona.sim.product(&sp(1)).unwrap().selling_price == "77.77"
    })
    .await;
    // The operator retries the old batch: everything else goes out, product 1 keeps 77.77.
    queue::retry_now(&env.store, stale.id).unwrap();
    wait_until("the old batch ran", WAIT, || {
        queue::get(&env.store, stale.id).unwrap().unwrap().state == JobState::Done
    })
    .await;
    for id in 1..=PRODUCTS as i64 {
        assert_eq!(
            env.cartona.sim.product(&sp(id)).unwrap().selling_price,
            env.odoo_price(id),
            "product {id}"
        );
    }
    env.stop().await;
}

#[tokio::test]
async fn orders_pulled_together_are_imported_and_acknowledged_together() {
    let mut env = Env::new().await;
    let hashed: Vec<String> = (1..=10)
        .map(|i| cash_order(&env, &[(i, 2, "5.00"), (i + 1, 1, "7.00")]))
        .collect();
    let calls_before = env.odoo.sim.call_count();
    env.start();
    for h in &hashed {
        env.wait_for_order(&format!("CARTONA-{h}")).await;
    }
    wait_until("all acknowledged", WAIT, || {
        hashed
            .iter()
            .all(|h| env.cartona.sim.order(h).unwrap().synced)
    })
    .await;
    for h in &hashed {
        assert_eq!(env.sale_orders(&format!("CARTONA-{h}")).await.len(), 1);
    }
    let acks = env.cartona.sim.requests.to("order/update-order-status");
    assert!(
        acks.len() <= 2,
        "ten orders of one pull acknowledged in {} requests",
        acks.len()
    );
    let creates = common::odoo_calls(&env.odoo, "sale.order.create");
    assert!(
        (1..=2).contains(&creates),
        "ten orders created in {creates} calls"
    );
    assert!(env.odoo.sim.call_count() > calls_before);
    env.stop().await;
}

#[tokio::test]
async fn a_push_job_that_fails_part_way_keeps_what_went_through_and_sends_only_the_rest() {
    let mut env = Env::new().await;
    // Batches of 5: the 20 products are one job of 4 requests. Orders are pulled once, at start.
    env.edit_config(&[
        ("batch_size = 100", "batch_size = 5"),
        ("orders_poll = \"1s\"", "orders_poll = \"1h\""),
    ]);
    env.cartona
        .sim
        .faults
        .set_latency(Duration::from_millis(500));
    env.start();
    let bulk = |env: &Env| env.cartona.sim.requests.to("supplier-product/bulk-update");
    wait_until("the first request of the job", WAIT, || {
        bulk(&env).len() == 1
    })
    .await;
    // Its second request fails (the first is still being answered): a server error while up.
    env.cartona.sim.faults.push([Fault::Status {
        status: 500,
        body: "Internal Server Error".into(),
        retry_after: None,
    }]);
    wait_until("every product on Cartona", WAIT, || {
        (1..=PRODUCTS as i64)
            .all(|id| env.cartona.sim.product(&sp(id)).unwrap().selling_price == env.odoo_price(id))
    })
    .await;
    env.cartona.sim.faults.clear();
    let requests = bulk(&env);
    let ids = |r: &marketsync::sim::Recorded| -> Vec<String> {
        r.json()
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["supplier_product_id"].as_str().unwrap().to_string())
            .collect()
    };
    let first = ids(&requests[0]);
    let failed = ids(&requests[1]);
    assert_eq!((first.len(), failed.len()), (5, 5));
    let retried: Vec<String> = requests[2..].iter().flat_map(ids).collect();
    assert_eq!(
        retried.len(),
        15,
        "only the products not yet accepted: {retried:?}"
    );
    assert!(
        first.iter().all(|id| !retried.contains(id)),
        "accepted ones are not sent again"
    );
    assert!(failed.iter().all(|id| retried.contains(id)));
    // Cartona has every product a moment before the job's outcome is committed.
    wait_until("the job finished", WAIT, || {
        env.jobs(None)
            .iter()
            .any(|j| j.kind == "product" && j.state != JobState::Running)
    })
    .await;
    let jobs = env.jobs(None);
    let job = jobs.iter().find(|j| j.kind == "product").unwrap();
    assert_eq!((job.state, job.attempts), (JobState::Done, 1), "{job:?}");
    env.stop().await;
}

#[tokio::test]
async fn a_value_back_to_what_was_sent_wins_over_one_still_waiting() {
    let mut env = Env::new().await;
    env.start();
    let original = env.odoo_price(1);
    wait_until("the first push", WAIT, || {
        env.cartona.sim.product(&sp(1)).unwrap().selling_price == original
    })
    .await;
    let hashes = |env: &Env| {
        let m = mapping::by_odoo(&env.store, "cartona", "product", 1)
            .unwrap()
            .unwrap();
        (m.last_hash, m.planned_hash)
    };
    // Cartona goes down; the price changes, and its push waits for Cartona to come back.
    env.cartona.sim.faults.down(Fault::Status {
        status: 503,
        body: "Service Unavailable".into(),
        retry_after: None,
    });
    let set_price = |price: f64| {
        env.client.write(
            "product.product",
            &[1],
            Value::record([("list_price", Value::Double(price))]),
        )
    };
    set_price(55.55).await.unwrap();
    wait_until("the new price queued", WAIT, || {
        let (sent, queued) = hashes(&env);
        queued.is_some() && queued != sent
    })
    .await;
    // Back to the price Cartona holds, while the 55.55 push still waits.
    set_price(original.parse().unwrap()).await.unwrap();
    wait_until("the price Cartona holds queued again", WAIT, || {
        let (sent, queued) = hashes(&env);
        queued == sent
    })
    .await;
    env.cartona.sim.faults.up();
    wait_until("nothing left to send", WAIT, || env.nothing_waits()).await;
    env.two_more_runs("cartona.catalog").await;
    assert_eq!(
        env.cartona.sim.product(&sp(1)).unwrap().selling_price,
        original,
        "Cartona ends with Odoo's price, not the one in between"
    );
    env.stop().await;
}

/// `check --estimate` reads the catalog as the first push would and sends nothing.
#[tokio::test]
async fn check_estimate_reads_the_catalog_and_sends_nothing() {
    let env = Env::new().await;
    let before = env.cartona.sim.requests.all().len();
    let out = env.cli(&["check", "--estimate"]).await;
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let line = stdout
        .lines()
        .find(|l| l.contains("cartona.estimate"))
        .unwrap_or_else(|| panic!("{stdout}"));
    // Every Odoo product (25), one bulk request of up to 100.
    assert!(
        line.contains(&format!("{} products read from Odoo in", PRODUCTS + 5)),
        "{line}"
    );
    assert!(
        line.contains("the first push: 1 bulk request(s) of up to 100"),
        "{line}"
    );
    assert!(line.contains("nothing was sent"), "{line}");
    let sent: Vec<_> = env.cartona.sim.requests.all()[before..]
        .iter()
        .filter(|r| r.method != "GET")
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(
        sent.is_empty(),
        "check --estimate wrote to Cartona: {sent:?}"
    );
}

#[tokio::test]
async fn a_status_job_with_a_damaged_payload_dies_with_the_field_and_sends_nothing() {
    let mut env = Env::new().await;
    env.start();
    let statuses = || {
        env.cartona
            .sim
            .requests
            .to("order/update-order-status")
            .len()
    };
    let before = statuses();
    // The status was lost (written by hand, or damaged on disk).
    let id = queue::enqueue(
        &env.store,
        queue::NewJob {
            channel: "cartona".into(),
            kind: "status".into(),
            key: "cartona:status:damaged".into(),
            payload: serde_json::json!({"hashed_id": "632717520571"}).into(),
            correlation_id: None,
        },
    )
    .unwrap()
    .id();
    wait_until("the damaged job dead", WAIT, || {
        queue::get(&env.store, id)
            .unwrap()
            .is_some_and(|j| j.state == JobState::Dead)
    })
    .await;
    let job = queue::get(&env.store, id).unwrap().unwrap();
    let why = job.last_error.unwrap();
    assert!(why.contains("missing field `status`"), "{why}");
    assert_eq!(statuses(), before, "nothing sent for it");
    env.stop().await;
}

/// DESIGN's convergence promise through an outage longer than the whole retry policy: Cartona
/// refuses connections while a price and a stock change, an order is delivered and another
/// order's acknowledgement is due. Its jobs wait without spending attempts; when Cartona listens
/// again, its probe releases them and Cartona holds Odoo's values, with nothing dead.
#[tokio::test]
async fn an_outage_longer_than_the_retry_policy_ends_with_cartona_holding_odoo_s_values() {
    let mut env = Env::new().await;
    let gate = common::Gate::new(env.cartona.addr).await;
    // Three attempts at most 200 ms apart: the whole policy is spent in well under a second.
    let text = config_text(
        &env.odoo.url(),
        &gate.url(&env.cartona.base_url()),
        env.dir.path(),
        TOKEN,
    )
    .replace(
        "[retry]\nbase_delay = \"100ms\"\nmax_delay = \"1s\"\nmax_attempts = 8",
        "[retry]\nbase_delay = \"50ms\"\nmax_delay = \"200ms\"\nmax_attempts = 3",
    )
    .replace(
        "odoo_health = \"1m\"\n",
        "odoo_health = \"1m\"\nchannel_probe = \"100ms\"\n",
    );
    assert!(text.contains("max_attempts = 3") && text.contains("channel_probe"));
    std::fs::write(env.config_path(), text).unwrap();
    env.start();
    env.all_pushed().await;
    let price1 = env.odoo_price(1);
    let delivered = cash_order(&env, &[(1, 2, &price1)]);
    let delivered_ref = format!("CARTONA-{delivered}");
    let order = env.wait_for_order(&delivered_ref).await;
    let delivered_id = order.get("id").unwrap().as_i64().unwrap();
    env.client
        .call_method("sale.order", "action_confirm", &[delivered_id])
        .await
        .unwrap();
    wait_until("approved on Cartona", WAIT, || {
        env.cartona.sim.order(&delivered).unwrap().status() == "approved"
    })
    .await;

    // An order pulled while Odoo is down waits in the inbox; then Cartona goes down too, so
    // its acknowledgement is due during Cartona's outage.
    env.odoo.sim.faults.down(Fault::BadGateway);
    let acked = cash_order(&env, &[(2, 1, "15.50")]);
    wait_until("the second order pulled", WAIT, || {
        inbox::latest(&env.store, "cartona", &acked)
            .unwrap()
            .is_some()
    })
    .await;
    gate.close().await;
    env.odoo.sim.faults.up();
    env.client
        .write(
            "product.product",
            &[3],
            Value::record([("list_price", Value::Double(321.09))]),
        )
        .await
        .unwrap();
    env.odoo.sim.world().set_on_hand(4, 66.0).unwrap();
    env.deliver_in_odoo(delivered_id).await;
    let acked_ref = format!("CARTONA-{acked}");
    env.wait_for_order(&acked_ref).await;

    // The price, the stock, the delivery and the acknowledgement all wait for Cartona; the
    // outage outlasts the retry policy many times over, and nothing spends an attempt.
    let waiting = |env: &Env| {
        env.jobs(Some(JobState::Retrying))
            .into_iter()
            .filter(|j| j.error_class.as_deref() == Some("unreachable"))
            .map(|j| j.kind)
            .collect::<std::collections::BTreeSet<_>>()
    };
    wait_until("every kind of job waiting for Cartona", WAIT, || {
        let kinds = waiting(&env);
        ["order", "product", "status"]
            .iter()
            .all(|k| kinds.contains(*k))
    })
    .await;
    let since = marketsync::store::reach::get(&env.store, "cartona")
        .unwrap()
        .expect("cartona is marked unreachable");
    assert!(since.error.contains("Cartona"), "{since:?}");
    let status = env.stdout(&["status"]).await;
    assert!(
        status.contains("cartona unreachable since")
            && status.contains("wait for it without spending attempts"),
        "{status}"
    );
    let before = env.jobs(None);
    wait_until_probed(&env, 5).await;
    for job in env.jobs(None) {
        assert_ne!(job.state, JobState::Dead, "{job:?}");
        if job.error_class.as_deref() == Some("unreachable") {
            let was = before
                .iter()
                .find(|j| j.id == job.id)
                .map_or(0, |j| j.attempts);
            assert_eq!(job.attempts, was, "waiting spends no attempt: {job:?}");
            assert!(job.attempts < 3, "{job:?}");
        }
    }

    gate.open().await;
    wait_until("Cartona holds Odoo's values", WAIT, || {
        let c = &env.cartona.sim;
        c.product(&sp(3)).unwrap().selling_price == "321.09"
            && c.product(&sp(4)).unwrap().available_stock_quantity == 66
            && c.order(&delivered).unwrap().status() == "delivered"
            && c.order(&acked).unwrap().synced
    })
    .await;
    wait_until("nothing left to send", WAIT, || env.nothing_waits()).await;
    assert!(
        env.jobs(Some(JobState::Dead)).is_empty(),
        "{:?}",
        env.jobs(Some(JobState::Dead))
    );
    wait_until("the probe saw Cartona answer", WAIT, || {
        marketsync::store::reach::get(&env.store, "cartona")
            .unwrap()
            .is_none()
    })
    .await;
    let recovered = common::said_once(&env.store, "cartona answers again after");
    assert!(
        recovered.message.contains("job"),
        "says what became of the waiting jobs: {recovered:?}"
    );
    common::said_once(&env.store, "cartona unreachable:");
    assert_eq!(env.sale_orders(&acked_ref).await.len(), 1, "imported once");
    env.stop().await;
}

/// Waits until Cartona's probe has failed `n` times since it was marked unreachable.
async fn wait_until_probed(env: &Env, n: u32) {
    wait_until(&format!("{n} probes"), WAIT, || {
        marketsync::store::reach::get(&env.store, "cartona")
            .unwrap()
            .is_some_and(|u| u.probes >= n)
    })
    .await;
}

/// A value Cartona refuses for good (a 400 naming the product) is dead once with the reason;
/// the reconcile, which re-plans every value whose job did not end done, leaves that exact
/// value alone; the operator's `queue retry --dead` sends it again.
#[tokio::test]
async fn a_permanently_refused_value_is_dead_once_and_only_the_operator_s_retry_sends_it_again() {
    let mut env = Env::new().await;
    mapping::set(
        &env.store,
        "cartona",
        "product",
        "product.product",
        21,
        "999999",
    )
    .unwrap();
    env.edit_config(&[(
        "odoo_health = \"1m\"\n",
        "odoo_health = \"1m\"\nreconcile = \"1s\"\n",
    )]);
    env.start();
    let refused = |env: &Env| {
        env.jobs(None)
            .into_iter()
            .filter(|j| j.key == "cartona:product:21")
            .collect::<Vec<_>>()
    };
    wait_until("the refused product dead", WAIT, || {
        refused(&env).iter().any(|j| j.state == JobState::Dead)
    })
    .await;
    let sent = |env: &Env| {
        env.bulk_items()
            .iter()
            .filter(|i| i["supplier_product_id"] == "999999")
            .count()
    };
    let before = sent(&env);
    env.two_more_runs("cartona.reconcile").await;
    let jobs = refused(&env);
    assert_eq!(jobs.len(), 1, "dead once, not planned again: {jobs:?}");
    assert_eq!(jobs[0].error_class.as_deref(), Some("permanent"));
    assert!(
        jobs[0]
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("Product not found")),
        "{jobs:?}"
    );
    assert_eq!(sent(&env), before, "the reconcile did not send it again");

    let out = env
        .cli(&["queue", "retry", "--dead", "--channel", "cartona"])
        .await;
    assert!(out.status.success(), "{out:?}");
    wait_until("the operator's retry sent it", WAIT, || sent(&env) > before).await;
    env.stop().await;
}

/// A status whose job died of server errors (the peer up, but failing for longer than the retry
/// policy) is said again by the watcher's reconcile once Cartona answers: the desired state
/// comes from Odoo, not from the queue.
#[tokio::test]
async fn a_status_whose_job_died_is_sent_again_by_the_reconcile() {
    let mut env = Env::new().await;
    env.edit_config(&[
        ("max_attempts = 8", "max_attempts = 2"),
        (
            "odoo_health = \"1m\"\n",
            "odoo_health = \"1m\"\nreconcile = \"1s\"\n",
        ),
    ]);
    env.start();
    let price1 = env.odoo_price(1);
    let hashed = cash_order(&env, &[(1, 1, &price1)]);
    let order = env.wait_for_order(&format!("CARTONA-{hashed}")).await;
    let id = order.get("id").unwrap().as_i64().unwrap();
    env.client
        .call_method("sale.order", "action_confirm", &[id])
        .await
        .unwrap();
    wait_until("approved on Cartona", WAIT, || {
        env.cartona.sim.order(&hashed).unwrap().status() == "approved"
    })
    .await;
    env.cartona.sim.faults.down(Fault::Status {
        status: 500,
        body: "Internal Server Error".into(),
        retry_after: None,
    });
    env.deliver_in_odoo(id).await;
    wait_until("the delivered status dead", WAIT, || {
        env.jobs(Some(JobState::Dead))
            .iter()
            .any(|j| j.kind == "status")
    })
    .await;
    env.cartona.sim.faults.up();
    wait_until("delivered on Cartona", WAIT, || {
        env.cartona.sim.order(&hashed).unwrap().status() == "delivered"
    })
    .await;
    assert!(common::sync_log(&env.store).iter().any(|r| r
        .message
        .contains("dead job(s) of recent orders queued again")));
    wait_until("nothing dead", WAIT, || {
        env.jobs(Some(JobState::Dead)).is_empty()
    })
    .await;
    env.stop().await;
}

/// `diff` reads Cartona's listings back: a consistent pair shows nothing (exit 0); a price and
/// a publication changed by Cartona's staff, a product Cartona removed and one Odoo does not know
/// are each named (exit 1); `--repair` queues exactly the fixes it can, says which it cannot,
/// and the daemon sends them.
#[tokio::test]
async fn diff_names_what_cartona_holds_otherwise_and_repair_queues_the_fixes() {
    let mut env = Env::new().await;
    env.start();
    let settled = |env: &Env| {
        (1..=PRODUCTS as i64)
            .all(|id| env.cartona.sim.product(&sp(id)).unwrap().selling_price == env.odoo_price(id))
            && env.nothing_waits()
            && env.jobs(Some(JobState::Running)).is_empty()
    };
    wait_until("the catalog pushed", WAIT, || settled(&env)).await;
    let out = env.cli(&["diff", "--channel", "cartona"]).await;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains(&format!(
            "no difference among {PRODUCTS} Odoo product(s) and {PRODUCTS} cartona listing(s)"
        )),
        "{text}"
    );

    env.cartona
        .sim
        .cartona_edits(&sp(2), |p| p.selling_price = "999.00".into());
    env.cartona
        .sim
        .cartona_edits(&sp(3), |p| p.is_published = false);
    env.cartona.sim.remove_product(&sp(4));
    env.cartona
        .sim
        .add_product("555555", None, None, "Not in Odoo");
    let out = env.cli(&["diff", "--channel", "cartona"]).await;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(1), "{text}");
    let line = |kind: &str, what: &str| {
        text.lines()
            .find(|l| l.starts_with(kind) && l.contains(what))
            .unwrap_or_else(|| panic!("no {kind} line for {what}: {text}"))
            .to_string()
    };
    let price = line("price", &sp(2));
    assert!(
        price.contains(&format!("Odoo says {}", env.odoo_price(2)))
            && price.contains("cartona holds 999"),
        "{price}"
    );
    line("published", &sp(3));
    line("missing on the channel", &sp(4));
    line("unknown to Odoo", "555555");
    assert!(
        text.contains(
            "4 difference(s) (1 price, 1 published, 1 missing on the channel, 1 unknown to Odoo)"
        ),
        "{text}"
    );

    let out = env.cli(&["diff", "--channel", "cartona", "--repair"]).await;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("queued the fixes of 2 product(s)"), "{text}");
    assert!(
        text.contains(&format!("not repaired: Odoo product 4 is mapped to supplier product {}, which Cartona no longer lists", sp(4))),
        "{text}"
    );
    wait_until("the fixes sent", WAIT, || {
        let c = &env.cartona.sim;
        c.product(&sp(2)).unwrap().selling_price == env.odoo_price(2)
            && c.product(&sp(3)).unwrap().is_published
    })
    .await;
    let out = env.cli(&["diff", "--channel", "cartona", "--json"]).await;
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let kinds: Vec<&str> = report["drifts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["missing", "unknown"], "{report}");
    env.stop().await;
}
