//! The Medusa channel end to end, in both flavours: the real daemon against the Odoo and Medusa
//! simulators, with signed webhooks sent as a store's subscriber sends them.

mod common;

use common::wait_until;
use marketsync::config::{MedusaFlavour, OdooProtocol, RawConfig};
use marketsync::odoo::{Domain, OdooClient, SearchOpts, Value};
use marketsync::sim::medusa::{self, MedusaHandle};
use marketsync::sim::odoo::SimHandle;
use marketsync::store::{inbox, Store};
use rust_decimal::Decimal;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const KEY: &str = "sk_test_medusa_7c21";
const HOOK_SECRET: &str = "whsec_test_93ab55";
const WAIT: Duration = Duration::from_secs(30);
const PRODUCTS: i64 = 10;

struct Env {
    odoo: SimHandle,
    store_sim: MedusaHandle,
    _dir: tempfile::TempDir,
    store: Store,
    client: OdooClient,
    stop: CancellationToken,
    daemon: tokio::task::JoinHandle<Result<(), marketsync::daemon::DaemonError>>,
    addr: SocketAddr,
    config_path: std::path::PathBuf,
    /// In front of the store, when the test takes it down.
    gate: Option<common::Gate>,
}

impl Env {
    async fn new(flavour: MedusaFlavour, currency: &str) -> Env {
        Env::prepared(flavour, currency, "", |_| {}).await
    }

    /// With more `[channels.medusa]` settings, and Odoo's data prepared before the daemon starts.
    async fn prepared(
        flavour: MedusaFlavour,
        currency: &str,
        extra: &str,
        prepare: impl FnOnce(&SimHandle),
    ) -> Env {
        Env::on_odoo(
            (17, OdooProtocol::Xmlrpc),
            "",
            flavour,
            currency,
            extra,
            prepare,
            false,
        )
        .await
    }

    /// Reached through a [`common::Gate`] the test can close, with a retry policy spent in
    /// well under a second (three attempts at most 200 ms apart) and a probe every 100 ms.
    async fn behind_gate(flavour: MedusaFlavour) -> Env {
        Env::on_odoo(
            (17, OdooProtocol::Xmlrpc),
            "channel_probe = \"100ms\"\n",
            flavour,
            "kwd",
            "",
            |_| {},
            true,
        )
        .await
    }

    /// Against an Odoo simulator of that major version, reached over that protocol.
    async fn on_odoo(
        (major, protocol): (u32, OdooProtocol),
        schedule: &str,
        flavour: MedusaFlavour,
        currency: &str,
        extra: &str,
        prepare: impl FnOnce(&SimHandle),
        gated: bool,
    ) -> Env {
        let odoo = common::odoo_sim(major, PRODUCTS as usize).await;
        // A supplier whose books are in the store's currency (the currency guard holds back
        // prices in any other).
        odoo.sim
            .world()
            .set_company_currency(&currency.to_ascii_uppercase())
            .unwrap();
        prepare(&odoo);
        let store_sim = medusa::start(0, flavour, KEY, currency).await.unwrap();
        let gate = match gated {
            true => Some(common::Gate::new(store_sim.addr).await),
            false => None,
        };
        let base_url = gate
            .as_ref()
            .map_or(store_sim.base_url(), |g| g.url(&store_sim.base_url()));
        let retry = match gated {
            true => "base_delay = \"50ms\"\nmax_delay = \"200ms\"\nmax_attempts = 3",
            false => "base_delay = \"100ms\"\nmax_delay = \"1s\"",
        };
        let dir = tempfile::tempdir().unwrap();
        let flavour_name = if flavour == MedusaFlavour::AdminApi {
            "admin-api"
        } else {
            "marqasouq"
        };
        let text = format!(
            "{}[schedule]\ncatalog_poll = \"1s\"\norders_poll = \"1s\"\nstatus_poll = \"1s\"\n{}\
             [retry]\n{retry}\n[daemon]\nqueue_poll = \"100ms\"\n\
             [channels.medusa]\nenabled = true\nflavour = \"{flavour_name}\"\nbase_url = \"{}\"\ntoken = \"{KEY}\"\nwebhook_secret = \"{HOOK_SECRET}\"\n\
             currency = \"{currency}\"\nlocation_id = \"sloc_01SIMWAREHOUSE\"\npoll_overlap = \"2s\"\n{extra}",
            common::config_text(&odoo.url(), protocol, dir.path(), ""),
            schedule,
            base_url,
        );
        // `odoo.<key> = ...` lines of `extra` belong to `[odoo]`.
        let mut text = text;
        for line in extra.lines().filter(|l| l.starts_with("odoo.")) {
            text = text.replace(line, "").replacen(
                "timeout = \"10s\"\n",
                &format!("timeout = \"10s\"\n{}\n", &line["odoo.".len()..]),
                1,
            );
        }
        let config_path = dir.path().join("config.toml");
        std::fs::write(&config_path, &text).unwrap();
        let config = RawConfig::parse(&text).unwrap().validate().unwrap();
        let store = Store::open(&config.state.path).unwrap();
        let client = OdooClient::connect(&config.odoo).await.unwrap();
        let (stop, task, addr) = common::spawn_daemon(config, store.clone()).await;
        Env {
            odoo,
            store_sim,
            _dir: dir,
            store,
            client,
            stop,
            daemon: task,
            addr,
            config_path,
            gate,
        }
    }

    /// Validates the order's delivery in Odoo with a tracking number, as warehouse staff would.
    async fn ship_in_odoo(&self, order: i64, tracking: &str) {
        common::ship_in_odoo(&self.client, order, tracking).await
    }

    /// The dead jobs (none, when all went well).
    fn dead_jobs(&self) -> Vec<marketsync::store::queue::Job> {
        marketsync::store::queue::list(
            &self.store,
            Some(marketsync::store::queue::JobState::Dead),
            None,
            10,
        )
        .unwrap()
    }

    /// `marketsync <args>` on this environment's configuration: exit code and stdout.
    async fn cli(&self, args: &[&str]) -> (Option<i32>, String) {
        common::cli(&self.config_path, args).await
    }

    async fn stop(self) {
        self.stop.cancel();
        self.daemon.await.unwrap().unwrap();
    }

    fn hook_url(&self) -> String {
        format!("http://{}/webhooks/medusa", self.addr)
    }

    async fn send(&self, body: Vec<u8>) -> (u16, String) {
        medusa::send_webhook(
            &self.hook_url(),
            HOOK_SECRET,
            body,
            chrono::Utc::now().timestamp(),
        )
        .await
    }

    fn odoo_price(&self, id: i64) -> Decimal {
        self.odoo.sim.world().get("product.product", id).unwrap()["list_price"]
            .as_decimal()
            .unwrap()
    }

    async fn order_by_ref(&self, reference: &str) -> Vec<Value> {
        self.client
            .search_read(
                "sale.order",
                &Domain::all().and("client_order_ref", "=", reference),
                &[
                    "state",
                    "partner_id",
                    "partner_shipping_id",
                    "amount_untaxed",
                ],
                SearchOpts::default(),
            )
            .await
            .unwrap()
    }

    async fn wait_order(&self, reference: &str) -> Value {
        let end = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(o) = self.order_by_ref(reference).await.first() {
                return o.clone();
            }
            assert!(
                tokio::time::Instant::now() < end,
                "no Odoo order {reference}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Delivers a placed order's `order.created` webhook and waits for its Odoo order:
    /// (reference, sale.order id).
    async fn import_placed(&self, id: &str) -> (String, i64) {
        assert_eq!(
            self.send(self.store_sim.sim.webhook_body("order.created", id))
                .await
                .0,
            200
        );
        let reference = format!(
            "MEDUSA-{}",
            self.store_sim.sim.order(id).unwrap().json["display_id"]
        );
        let so = self
            .wait_order(&reference)
            .await
            .get("id")
            .and_then(Value::as_i64)
            .unwrap();
        (reference, so)
    }

    fn inbox_len(&self) -> usize {
        inbox::list(&self.store, None, 10_000).unwrap().len()
    }

    fn runs(&self, name: &str) -> i64 {
        marketsync::store::streams::get(&self.store, name)
            .unwrap()
            .and_then(|s| s.last_success_at)
            .unwrap_or(0)
    }

    async fn two_more_runs(&self, name: &str) {
        for _ in 0..2 {
            let before = self.runs(name);
            wait_until(&format!("{name} ran"), WAIT, || self.runs(name) > before).await;
        }
    }
}

fn sku(id: i64) -> String {
    format!("SKU-{id:05}")
}

async fn catalog_flow(flavour: MedusaFlavour, currency: &str, exponent: u32) {
    let env = Env::new(flavour, currency).await;
    wait_until("all products in the store", WAIT, || {
        (1..=PRODUCTS).all(|i| {
            env.store_sim.sim.product(&sku(i)).is_some_and(|p| {
                p.status == "published"
                    && (flavour == MedusaFlavour::Marqasouq || !p.levels.is_empty())
            })
        })
    })
    .await;
    for i in 1..=PRODUCTS {
        let p = env.store_sim.sim.product(&sku(i)).unwrap();
        let expected = marketsync::sync::money::round(env.odoo_price(i), currency);
        assert_eq!(p.price, expected, "{currency} price of {}", sku(i));
        assert_eq!(p.metadata["odoo_id"], i);
        if flavour == MedusaFlavour::Marqasouq {
            let minor = p.raw["price"].as_i64().unwrap();
            assert_eq!(
                Decimal::new(minor, exponent),
                expected,
                "minor units with exponent {exponent}"
            );
            assert_eq!(p.raw["currency_code"], currency);
            assert!(
                p.raw["title_ar"]
                    .as_str()
                    .unwrap()
                    .chars()
                    .any(|c| ('\u{0600}'..='\u{06FF}').contains(&c)),
                "Arabic title from the Odoo translation"
            );
            assert_eq!(p.quantity, env.odoo.sim.world().free_qty(i) as i64);
        } else {
            assert_eq!(
                p.levels.get("sloc_01SIMWAREHOUSE").copied(),
                Some(env.odoo.sim.world().free_qty(i) as i64)
            );
        }
    }
    // Stock moves: absolute quantities.
    env.odoo.sim.world().set_on_hand(2, 55.0).unwrap();
    wait_until("stock updated", WAIT, || {
        env.store_sim.sim.product(&sku(2)).unwrap().quantity == 55
    })
    .await;
    // Archived: deleted (marqasouq) or draft (admin-api).
    env.client
        .call_method("product.product", "action_archive", &[3])
        .await
        .unwrap();
    let gone = if flavour == MedusaFlavour::Marqasouq {
        "deleted"
    } else {
        "draft"
    };
    wait_until("archived product withdrawn", WAIT, || {
        env.store_sim.sim.product(&sku(3)).unwrap().status == gone
    })
    .await;
    // A product without an internal reference is skipped with a logged reason.
    env.client
        .create(
            "product.product",
            vec![Value::record([("name", Value::from("No SKU"))])],
        )
        .await
        .unwrap();
    wait_until("skip logged", WAIT, || {
        common::sync_log(&env.store)
            .iter()
            .any(|r| r.message.contains("without an internal reference"))
    })
    .await;
    // `check` names the flavour as the config writes it.
    let (code, check) = env.cli(&["check"]).await;
    assert_eq!(code, Some(0), "{check}");
    let written = if flavour == MedusaFlavour::AdminApi {
        "admin-api"
    } else {
        "marqasouq"
    };
    assert!(
        check.contains(&format!("Medusa ({written} flavour) at")),
        "{check}"
    );
    env.stop().await;
}

#[tokio::test]
async fn a_pricelists_prices_are_listed_and_an_unpriced_products_stock_still_goes_out() {
    let rule = |product: i64, compute: &str, price: f64| {
        Value::record([
            ("pricelist_id", Value::Int(2)),
            ("applied_on", Value::from("0_product_variant")),
            ("product_id", Value::Int(product)),
            ("compute_price", Value::from(compute)),
            ("fixed_price", Value::Double(price)),
        ])
    };
    let env = Env::prepared(
        MedusaFlavour::Marqasouq,
        "kwd",
        "pricelist_id = 2\n",
        |odoo| {
            let mut w = odoo.sim.world();
            // A pricelist in the store's currency (the company's is EGP).
            let kwd = Value::record([("name", "KWD".into()), ("currency_id", Value::Int(3))]);
            assert_eq!(w.create("product.pricelist", &kwd).unwrap(), 2);
            w.create("product.pricelist.item", &rule(1, "fixed", 1.25))
                .unwrap();
            w.create("product.pricelist.item", &rule(3, "fixed", 3.5))
                .unwrap();
        },
    )
    .await;
    let listed = |id: i64| env.store_sim.sim.product(&sku(id)).unwrap().price;
    let list_price = |id: i64| marketsync::sync::money::round(env.odoo_price(id), "kwd");
    let at = &env;
    let rules_of = move |product: i64| async move {
        at.client
            .search(
                "product.pricelist.item",
                &Domain::all().and("product_id", "=", product),
                None,
            )
            .await
            .unwrap()
    };
    wait_until("catalog listed", WAIT, || {
        (1..=PRODUCTS).all(|i| env.store_sim.sim.product(&sku(i)).is_some())
    })
    .await;
    assert_eq!(
        listed(1),
        Decimal::from_str("1.250").unwrap(),
        "the pricelist's price"
    );
    assert_eq!(listed(2), list_price(2), "no rule: the list price");
    // Product 1's rule becomes a formula on its own pricelist, a loop no price comes out of:
    // its listing waits (not sent at the list price), named by the stream, while its stock
    // still goes out.
    let first = rules_of(1).await;
    env.client
        .write(
            "product.pricelist.item",
            &first,
            Value::record([
                ("compute_price", Value::from("formula")),
                ("base", Value::from("pricelist")),
                ("base_pricelist_id", Value::Int(2)),
            ]),
        )
        .await
        .unwrap();
    let stream_error = || common::stream_error(&env.store, "medusa.catalog");
    wait_until("the catalog stream fails", WAIT, || {
        stream_error().is_some_and(|e| {
            e.contains(&format!("rule {} computes from pricelist 2", first[0]))
                && e.contains("a loop")
        })
    })
    .await;
    env.odoo.sim.world().set_on_hand(1, 42.0).unwrap();
    wait_until("its stock updated", WAIT, || {
        env.store_sim.sim.product(&sku(1)).unwrap().quantity == 42
    })
    .await;
    assert_eq!(
        listed(1),
        Decimal::from_str("1.250").unwrap(),
        "the listing is not sent at a guessed price"
    );
    // The looping rule deleted: product 1 has its list price again, and nothing is held.
    env.client
        .unlink("product.pricelist.item", &first)
        .await
        .unwrap();
    wait_until("the list price listed", WAIT, || listed(1) == list_price(1)).await;
    wait_until("the stream recovers", WAIT, || stream_error().is_none()).await;
    // Product 3's fixed price deleted, once the products' own writes are out of the change
    // poll's window: nothing written is left to find it by, yet its list price goes out.
    assert_eq!(listed(3), Decimal::from_str("3.500").unwrap());
    common::wait_out_of_window(&env.store, &env.odoo, "medusa.catalog", PRODUCTS).await;
    env.client
        .unlink("product.pricelist.item", &rules_of(3).await)
        .await
        .unwrap();
    wait_until("product 3's list price listed", WAIT, || {
        listed(3) == list_price(3)
    })
    .await;
    env.stop().await;
}

/// The MarqaSouq store against an Odoo 19 simulator over `protocol`, Arabic installed or not.
async fn on_odoo_19(protocol: OdooProtocol, schedule: &str, arabic: bool) -> Env {
    Env::on_odoo(
        (19, protocol),
        schedule,
        MedusaFlavour::Marqasouq,
        "KWD",
        "",
        |odoo| {
            odoo.sim
                .world()
                .set_language_installed("ar_001", arabic)
                .unwrap();
        },
        false,
    )
    .await
}

impl Env {
    /// Waits until every product's listing in the store passes `ok`.
    async fn all_listed(&self, what: &str, ok: impl Fn(&medusa::Product) -> bool) {
        wait_until(what, WAIT, || {
            (1..=PRODUCTS).all(|i| self.store_sim.sim.product(&sku(i)).is_some_and(|p| ok(&p)))
        })
        .await;
    }

    /// `check`'s line for `target` (its exit status must be 0).
    async fn check_line(&self, target: &str) -> String {
        let (code, check) = self.cli(&["check"]).await;
        assert_eq!(code, Some(0), "{check}");
        check
            .lines()
            .find(|l| l.contains(target))
            .unwrap_or_else(|| panic!("no {target} line: {check}"))
            .to_string()
    }
}

fn has_arabic(v: &serde_json::Value) -> bool {
    v.as_str()
        .is_some_and(|t| t.chars().any(|c| ('\u{0600}'..='\u{06FF}').contains(&c)))
}

/// Odoo 19 refuses a context `lang` that is not installed (17 ignores it): the translation is
/// left out, said once, shown by `status` and `check`, and the catalog goes out untranslated.
#[tokio::test]
async fn on_odoo_19_without_the_language_the_catalog_goes_out_untranslated() {
    for protocol in [OdooProtocol::Json2, OdooProtocol::Xmlrpc] {
        let env = on_odoo_19(protocol, "", false).await;
        env.all_listed("all products in the store", |p| p.status == "published")
            .await;
        for i in 1..=PRODUCTS {
            let p = env.store_sim.sim.product(&sku(i)).unwrap();
            assert!(
                p.raw["title_ar"].is_null(),
                "{protocol:?}: no Arabic title without Arabic: {}",
                p.raw
            );
            assert_eq!(
                p.raw["title"].as_str(),
                env.odoo.sim.world().get("product.product", i).unwrap()["name"].as_str()
            );
            assert_eq!(
                p.price,
                marketsync::sync::money::round(env.odoo_price(i), "KWD")
            );
        }
        // Prices and stock keep going out, and the catalog stream does not fail.
        env.odoo.sim.world().set_on_hand(2, 55.0).unwrap();
        wait_until("stock updated", WAIT, || {
            env.store_sim.sim.product(&sku(2)).unwrap().quantity == 55
        })
        .await;
        env.two_more_runs("medusa.catalog").await;
        assert_eq!(common::stream_error(&env.store, "medusa.catalog"), None);
        let said = common::said_once(&env.store, "translation left out");
        assert!(
            said.message.contains("ar_001 is not installed"),
            "{protocol:?}: {}",
            said.message
        );
        // The operator sees it in `status` and `check` (a warning: exit status 0).
        let (code, status) = env.cli(&["status"]).await;
        assert_eq!(code, Some(0));
        assert!(
            status.contains(
                "medusa: translation left out: the language ar_001 is not installed in Odoo"
            ),
            "{status}"
        );
        let line = env.check_line("medusa.lang").await;
        assert!(line.starts_with("WARN"), "{line}");
        assert!(
            line.contains("install it in Odoo (Settings > Languages) or set channels.medusa.lang"),
            "{line}"
        );
        env.stop().await;
    }
}

/// With the language installed, Odoo 19 gives the Arabic title as 17 does, and `check` is content.
#[tokio::test]
async fn on_odoo_19_with_arabic_installed_the_arabic_title_goes_out() {
    let env = on_odoo_19(OdooProtocol::Json2, "", true).await;
    env.all_listed("Arabic titles in the store", |p| {
        has_arabic(&p.raw["title_ar"])
    })
    .await;
    let line = env.check_line("medusa.lang").await;
    assert!(line.starts_with("ok"), "{line}");
    assert!(!common::sync_log(&env.store)
        .iter()
        .any(|r| r.message.contains("left out")));
    env.stop().await;
}

/// A language installed while the daemon runs is found by the next reconcile: the Arabic
/// titles go out, and that is said once.
#[tokio::test]
async fn a_language_installed_later_is_found_by_the_reconcile() {
    let env = on_odoo_19(OdooProtocol::Json2, "reconcile = \"2s\"\n", false).await;
    env.all_listed("untranslated listings in the store", |p| {
        p.status == "published" && p.raw["title_ar"].is_null()
    })
    .await;
    env.odoo
        .sim
        .world()
        .set_language_installed("ar_001", true)
        .unwrap();
    env.all_listed("Arabic titles after the reconcile", |p| {
        has_arabic(&p.raw["title_ar"])
    })
    .await;
    common::said_once(&env.store, "translation goes out again");
    let (_, status) = env.cli(&["status"]).await;
    assert!(!status.contains("left out"), "{status}");
    env.stop().await;
}

/// A language removed while the daemon runs: Odoo 19 refuses the next translation read, the
/// translation is left out (said once) and the changed product's price still goes out.
#[tokio::test]
async fn a_translation_odoo_refuses_mid_run_is_left_out_and_the_price_goes_out() {
    let env = on_odoo_19(OdooProtocol::Json2, "", true).await;
    env.all_listed("Arabic titles in the store", |p| {
        has_arabic(&p.raw["title_ar"])
    })
    .await;
    env.odoo
        .sim
        .world()
        .set_language_installed("ar_001", false)
        .unwrap();
    env.client
        .write(
            "product.product",
            &[4],
            Value::record([("list_price", Value::Double(77.5))]),
        )
        .await
        .unwrap();
    wait_until("the new price in the store", WAIT, || {
        env.store_sim.sim.product(&sku(4)).unwrap().price
            == marketsync::sync::money::round(Decimal::new(775, 1), "KWD")
    })
    .await;
    let said = common::said_once(&env.store, "translation left out");
    assert!(
        said.message.contains("Invalid language code: ar_001"),
        "{}",
        said.message
    );
    env.two_more_runs("medusa.catalog").await;
    assert_eq!(common::stream_error(&env.store, "medusa.catalog"), None);
    common::said_once(&env.store, "translation left out");
    env.stop().await;
}

#[tokio::test]
async fn marqasouq_catalog_in_kwd_fils() {
    catalog_flow(MedusaFlavour::Marqasouq, "kwd", 3).await;
}

#[tokio::test]
async fn marqasouq_catalog_in_a_two_decimal_currency() {
    catalog_flow(MedusaFlavour::Marqasouq, "usd", 2).await;
}

#[tokio::test]
async fn admin_api_catalog_in_kwd_major_units() {
    catalog_flow(MedusaFlavour::AdminApi, "kwd", 3).await;
}

#[tokio::test]
async fn admin_api_catalog_in_a_two_decimal_currency() {
    catalog_flow(MedusaFlavour::AdminApi, "eur", 2).await;
}

#[tokio::test]
async fn signed_webhooks_import_once_and_bad_ones_store_nothing() {
    let env = Env::new(MedusaFlavour::Marqasouq, "kwd").await;
    // Refused, and nothing stored: bad signature, stale timestamp, huge body, malformed JSON.
    // (An order the store does not list, so the pull safety net cannot bring it in either.)
    let body = serde_json::json!({"event": "order.created", "data": {"order": {"id": "order_NOT_IN_THE_STORE", "display_id": 9999}}}).to_string().into_bytes();
    let before = env.inbox_len();
    let (s, _) = medusa::send_webhook(
        &env.hook_url(),
        "not-the-secret",
        body.clone(),
        chrono::Utc::now().timestamp(),
    )
    .await;
    assert_eq!(s, 401);
    let (s, reply) = medusa::send_webhook(
        &env.hook_url(),
        HOOK_SECRET,
        body.clone(),
        chrono::Utc::now().timestamp() - 3600,
    )
    .await;
    assert_eq!(s, 401, "{reply}");
    assert!(reply.contains("tolerance"), "{reply}");
    let huge = format!(
        "{{\"event\":\"order.created\",\"pad\":\"{}\"}}",
        "x".repeat(5 * 1024 * 1024)
    )
    .into_bytes();
    let (s, _) = env.send(huge).await;
    assert_eq!(s, 413);
    let (s, reply) = env.send(b"{\"event\": \"order.created\", ".to_vec()).await;
    assert_eq!(s, 400);
    assert!(reply.contains("malformed JSON"), "{reply}");
    let unsigned = reqwest::Client::new()
        .post(env.hook_url())
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status().as_u16(), 401);
    assert_eq!(env.inbox_len(), before, "nothing refused was stored");
    assert!(
        inbox::latest(&env.store, "medusa", "order_NOT_IN_THE_STORE")
            .unwrap()
            .is_none()
    );

    // The same order.created three times: one Odoo order (the pull may see it too: still one).
    let id = env.store_sim.sim.place_order(
        "ahmed@example.com",
        &[
            (&sku(1), 2, Decimal::new(12_900, 3)),
            (&sku(4), 1, Decimal::new(5_000, 3)),
        ],
    );
    let body = env.store_sim.sim.webhook_body("order.created", &id);
    for n in 0..3 {
        let (s, reply) = env.send(body.clone()).await;
        assert_eq!(s, 200, "{reply}");
        if n > 0 {
            assert!(reply.contains("\"duplicate\":true"), "{reply}");
        }
    }
    let display = env.store_sim.sim.order(&id).unwrap().json["display_id"]
        .as_i64()
        .unwrap();
    let reference = format!("MEDUSA-{display}");
    let order = env.wait_order(&reference).await;
    wait_until("marked synced", WAIT, || {
        env.store_sim.sim.order(&id).unwrap().synced
    })
    .await;
    assert_eq!(env.order_by_ref(&reference).await.len(), 1);
    // Prices came back from fils: 2 × 12.900 + 5.000 = 30.800 KWD.
    assert_eq!(order.get("amount_untaxed").unwrap().as_f64(), Some(30.8));
    let partner = order.get("partner_id").unwrap().as_many2one().unwrap();
    assert_eq!(partner.1, "Ahmed Al-Rashid");
    let shipping = order.get("partner_shipping_id").unwrap().as_id().unwrap();
    assert_ne!(
        shipping, partner.0,
        "the shipping address is a delivery contact of the customer"
    );
    let contact = env
        .client
        .read(
            "res.partner",
            &[shipping],
            &["type", "parent_id", "street", "city"],
        )
        .await
        .unwrap();
    assert_eq!(contact[0].get("type").unwrap().as_str(), Some("delivery"));
    assert_eq!(
        contact[0].get("street").unwrap().as_str(),
        Some("Block 5, Street 10, House 25")
    );

    // The alias route of seed 004 works too, and the store's cancellation reaches Odoo.
    env.store_sim.sim.store_cancels(&id);
    let cancel = env.store_sim.sim.webhook_body("order.status_updated", &id);
    let (s, _) = medusa::send_webhook(
        &format!("http://{}/api/medusa/order-created", env.addr),
        HOOK_SECRET,
        cancel,
        chrono::Utc::now().timestamp(),
    )
    .await;
    assert_eq!(s, 200);
    let end = tokio::time::Instant::now() + WAIT;
    while env.order_by_ref(&reference).await[0]
        .get("state")
        .unwrap()
        .as_str()
        != Some("cancel")
    {
        assert!(tokio::time::Instant::now() < end, "not cancelled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    env.stop().await;
}

#[tokio::test]
async fn an_order_whose_webhook_was_lost_is_imported_by_the_pull() {
    for flavour in [MedusaFlavour::Marqasouq, MedusaFlavour::AdminApi] {
        let env = Env::new(flavour, "kwd").await;
        let id = env
            .store_sim
            .sim
            .place_order("sara@example.com", &[(&sku(5), 3, Decimal::new(2_500, 3))]);
        let display = env.store_sim.sim.order(&id).unwrap().json["display_id"]
            .as_i64()
            .unwrap();
        let order = env.wait_order(&format!("MEDUSA-{display}")).await;
        assert_eq!(
            order.get("amount_untaxed").unwrap().as_f64(),
            Some(7.5),
            "{flavour:?}"
        );
        wait_until("marked synced", WAIT, || {
            env.store_sim.sim.order(&id).unwrap().synced
        })
        .await;
        env.stop().await;
    }
}

#[tokio::test]
async fn orders_pulled_together_are_created_in_odoo_together() {
    for flavour in [MedusaFlavour::Marqasouq, MedusaFlavour::AdminApi] {
        let env = Env::new(flavour, "kwd").await;
        // Ten orders the store holds at once (their webhooks lost): one pull finds them all.
        let ids: Vec<String> = (0..10)
            .map(|n| {
                env.store_sim.sim.place_order(
                    &format!("batch{n}@example.com"),
                    &[(&sku(1 + n % 5), 1, Decimal::new(1_000 + n, 3))],
                )
            })
            .collect();
        for id in &ids {
            wait_until("marked synced", WAIT, || {
                env.store_sim.sim.order(id).unwrap().synced
            })
            .await;
        }
        let creates = common::odoo_calls(&env.odoo, "sale.order.create");
        assert!(
            (1..=2).contains(&creates),
            "{flavour:?}: ten orders created in {creates} calls"
        );
        for id in &ids {
            let display = env.store_sim.sim.order(id).unwrap().json["display_id"]
                .as_i64()
                .unwrap();
            assert_eq!(
                env.order_by_ref(&format!("MEDUSA-{display}")).await.len(),
                1,
                "each order once"
            );
        }
        let imported = common::sync_log(&env.store)
            .iter()
            .filter(|r| r.operation == "orders.import" && r.message.contains(" imported as "))
            .count();
        assert_eq!(imported, 10, "each said imported, not updated");
        env.stop().await;
    }
}

#[tokio::test]
async fn an_orders_whole_life_seen_at_once_goes_out_in_order_though_a_send_fails() {
    let env = Env::new(MedusaFlavour::Marqasouq, "kwd").await;
    let id = env
        .store_sim
        .sim
        .place_order("c@example.com", &[(&sku(5), 1, Decimal::new(1_000, 3))]);
    assert_eq!(
        env.send(env.store_sim.sim.webhook_body("order.created", &id))
            .await
            .0,
        200
    );
    let reference = format!(
        "MEDUSA-{}",
        env.store_sim.sim.order(&id).unwrap().json["display_id"]
    );
    let so = env
        .wait_order(&reference)
        .await
        .get("id")
        .unwrap()
        .as_i64()
        .unwrap();
    // The first event is refused once: nothing after it may overtake it.
    env.store_sim.sim.refuse_once("order.confirmed");
    {
        // Confirmed, delivered, invoiced and paid between two status polls.
        let mut w = env.odoo.sim.world();
        w.action_confirm(&[so]).unwrap();
        let pickings = w.pickings_of(so);
        w.button_validate(&pickings).unwrap();
        let invoice = w.invoice_order(so).unwrap();
        w.pay_invoice(invoice, true).unwrap();
    }
    let events = || -> Vec<String> {
        env.store_sim
            .sim
            .order(&id)
            .unwrap()
            .events
            .iter()
            .map(|e| e["event_type"].as_str().unwrap().to_string())
            .collect()
    };
    wait_until("every event sent", WAIT, || events().len() >= 5).await;
    env.two_more_runs("odoo.orders").await;
    assert_eq!(
        events(),
        vec![
            "order.confirmed",
            "order.shipped",
            "order.delivered",
            "order.invoiced",
            "order.paid"
        ],
        "each once, in order"
    );
    env.stop().await;
}

async fn status_flow(flavour: MedusaFlavour) {
    let env = Env::new(flavour, "kwd").await;
    let shipped = env
        .store_sim
        .sim
        .place_order("a@example.com", &[(&sku(6), 1, Decimal::new(1_000, 3))]);
    let cancelled = env
        .store_sim
        .sim
        .place_order("b@example.com", &[(&sku(7), 1, Decimal::new(1_000, 3))]);
    for id in [&shipped, &cancelled] {
        assert_eq!(
            env.send(env.store_sim.sim.webhook_body("order.created", id))
                .await
                .0,
            200
        );
    }
    let so = |id: &str| {
        format!(
            "MEDUSA-{}",
            env.store_sim.sim.order(id).unwrap().json["display_id"]
        )
    };
    let a = env
        .wait_order(&so(&shipped))
        .await
        .get("id")
        .unwrap()
        .as_i64()
        .unwrap();
    let b = env
        .wait_order(&so(&cancelled))
        .await
        .get("id")
        .unwrap()
        .as_i64()
        .unwrap();

    env.client
        .call_method("sale.order", "action_confirm", &[a])
        .await
        .unwrap();
    env.client
        .call_method("sale.order", "action_cancel", &[b])
        .await
        .unwrap();
    env.ship_in_odoo(a, "TRK123456789").await;

    match flavour {
        MedusaFlavour::Marqasouq => {
            wait_until("events sent", WAIT, || {
                env.store_sim.sim.order(&shipped).unwrap().events.len() >= 3
            })
            .await;
            wait_until("cancel sent", WAIT, || {
                !env.store_sim
                    .sim
                    .order(&cancelled)
                    .unwrap()
                    .events
                    .is_empty()
            })
            .await;
            env.two_more_runs("odoo.orders").await;
            let events: Vec<String> = env
                .store_sim
                .sim
                .order(&shipped)
                .unwrap()
                .events
                .iter()
                .map(|e| e["event_type"].as_str().unwrap().to_string())
                .collect();
            assert_eq!(
                events,
                vec!["order.confirmed", "order.shipped", "order.delivered"],
                "each once, in order"
            );
            // Invoiced in Odoo: order.invoiced, once.
            let first = env.odoo.sim.world().invoice_order(a).unwrap();
            wait_until("invoiced sent", WAIT, || {
                env.store_sim.sim.order(&shipped).unwrap().events.len() == 4
            })
            .await;
            env.two_more_runs("odoo.orders").await;
            let events = env.store_sim.sim.order(&shipped).unwrap().events;
            assert_eq!(events.len(), 4);
            assert_eq!(events[3]["event_type"], "order.invoiced");
            // Paid once every invoice of the order is: a payment writes only the invoice.
            let second = env.odoo.sim.world().invoice_order(a).unwrap();
            env.odoo.sim.world().pay_invoice(first, true).unwrap();
            env.two_more_runs("odoo.orders").await;
            assert_eq!(
                env.store_sim.sim.order(&shipped).unwrap().events.len(),
                4,
                "one invoice of two paid: not paid yet"
            );
            env.odoo.sim.world().pay_invoice(second, false).unwrap();
            wait_until("paid sent", WAIT, || {
                env.store_sim.sim.order(&shipped).unwrap().events.len() == 5
            })
            .await;
            env.two_more_runs("odoo.orders").await;
            let events = env.store_sim.sim.order(&shipped).unwrap().events;
            assert_eq!(events.len(), 5, "once");
            assert_eq!(events[4]["event_type"], "order.paid");
            let invoice =
                env.odoo.sim.world().get("account.move", second).unwrap()["write_date"].clone();
            assert_eq!(
                events[4]["order"]["payment_date"].as_str(),
                invoice.as_opt_str(),
                "when Odoo recorded the payment"
            );
            let ship = &env.store_sim.sim.order(&shipped).unwrap().events[1];
            assert_eq!(ship["order"]["tracking_number"], "TRK123456789");
            let c: Vec<String> = env
                .store_sim
                .sim
                .order(&cancelled)
                .unwrap()
                .events
                .iter()
                .map(|e| e["event_type"].as_str().unwrap().to_string())
                .collect();
            assert_eq!(c, vec!["order.cancelled"]);
        }
        MedusaFlavour::AdminApi => {
            wait_until("delivered", WAIT, || {
                env.store_sim
                    .sim
                    .order(&shipped)
                    .unwrap()
                    .fulfillments
                    .first()
                    .is_some_and(|f| f.delivered())
            })
            .await;
            assert_eq!(
                env.store_sim.sim.order(&shipped).unwrap().json["status"],
                "pending",
                "delivered, not paid yet: not completed (complete_orders = delivered-and-paid)"
            );
            wait_until("cancelled", WAIT, || {
                env.store_sim.sim.order(&cancelled).unwrap().canceled
            })
            .await;
            env.two_more_runs("odoo.orders").await;
            let invoice = env.odoo.sim.world().invoice_order(a).unwrap();
            env.odoo.sim.world().pay_invoice(invoice, true).unwrap();
            wait_until("paid noted, and the order completed", WAIT, || {
                let o = env.store_sim.sim.order(&shipped).unwrap();
                o.metadata["odoo_invoiced"] == true
                    && o.metadata["odoo_paid"] == true
                    && o.json["status"] == "completed"
            })
            .await;
            let o = env.store_sim.sim.order(&shipped).unwrap();
            assert_eq!(o.fulfillments.len(), 1, "one fulfillment");
            let f = &o.fulfillments[0];
            assert_eq!(f.labels[0]["tracking_number"], "TRK123456789");
            assert!(f.shipped_at.is_some() && f.delivered_at.is_some());
            assert!(
                f.metadata["odoo_picking_id"].as_i64().is_some(),
                "the fulfillment names its Odoo delivery: {:?}",
                f.metadata
            );
            assert_eq!(o.metadata["odoo_state"], "confirmed");
            assert_eq!(
                env.store_sim
                    .sim
                    .requests
                    .to(&format!("admin/orders/{cancelled}/cancel"))
                    .len(),
                1
            );
            assert_eq!(
                env.store_sim
                    .sim
                    .requests
                    .to(&format!("admin/orders/{shipped}/fulfillments"))
                    .len(),
                1
            );
        }
    }
    env.stop().await;
}

/// A delivery in two parts in Odoo (a backorder, as `fixtures/odoo17/backorders.json` records
/// it) becomes two fulfillments in the store, each with its quantities and tracking, never
/// one twice: not when the store's answer to a create is lost, and not when the shipment's is.
#[tokio::test]
async fn a_backorder_s_parts_become_the_store_s_fulfillments_one_each() {
    let env = Env::prepared(
        MedusaFlavour::AdminApi,
        "kwd",
        "complete_orders = \"delivered\"\n",
        |_| {},
    )
    .await;
    let id = env.store_sim.sim.place_order(
        "a@example.com",
        &[
            (&sku(3), 5, Decimal::new(1_000, 3)),
            (&sku(4), 1, Decimal::new(2_000, 3)),
        ],
    );
    let (_, so) = env.import_placed(&id).await;
    let three = env
        .client
        .search(
            "product.product",
            &Domain::all().and("default_code", "=", sku(3).as_str()),
            None,
        )
        .await
        .unwrap()[0];
    let first = {
        let mut w = env.odoo.sim.world();
        w.action_confirm(&[so]).unwrap();
        w.pickings_of(so)[0]
    };
    let tracking = |picking: i64, t: &str| {
        env.odoo
            .sim
            .world()
            .write(
                "stock.picking",
                &[picking],
                &Value::record([("carrier_tracking_ref", Value::from(t))]),
            )
            .unwrap();
    };
    tracking(first, "TRK-A");
    // The first create goes through, and its answer is lost: the retry must see it.
    env.store_sim.sim.lose_answer_once("fulfillments");
    let backorder = env
        .odoo
        .sim
        .world()
        .validate_with_backorder(first, &[(three, 2.0)])
        .unwrap()
        .expect("3 of one line and the other line are left");
    let lines = |o: &medusa::Order| -> Vec<String> {
        o.json["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_string())
            .collect()
    };
    wait_until("the first part shipped in the store", WAIT, || {
        let o = env.store_sim.sim.order(&id).unwrap();
        o.fulfillments.len() == 1 && o.fulfillments[0].shipped_at.is_some()
    })
    .await;
    let o = env.store_sim.sim.order(&id).unwrap();
    let l = lines(&o);
    let f = &o.fulfillments[0];
    assert_eq!(f.items, [(l[0].clone(), 2)], "2 of 5, as Odoo delivered");
    assert_eq!(f.labels[0]["tracking_number"], "TRK-A");
    assert_eq!(f.metadata["odoo_picking_id"], first);
    assert_eq!(o.fulfillment_status(), "partially_shipped");
    assert!(
        f.delivered_at.is_none(),
        "the order is not all delivered yet"
    );

    tracking(backorder, "TRK-B");
    env.store_sim.sim.lose_answer_once("shipments");
    env.odoo.sim.world().button_validate(&[backorder]).unwrap();
    wait_until("all of it delivered, and the order completed", WAIT, || {
        let o = env.store_sim.sim.order(&id).unwrap();
        o.fulfillment_status() == "delivered" && o.json["status"] == "completed"
    })
    .await;
    let o = env.store_sim.sim.order(&id).unwrap();
    assert_eq!(o.fulfillments.len(), 2, "{:?}", o.fulfillments);
    let second = &o.fulfillments[1];
    let mut items = second.items.clone();
    items.sort();
    assert_eq!(items, [(l[0].clone(), 3), (l[1].clone(), 1)]);
    assert_eq!(second.labels[0]["tracking_number"], "TRK-B");
    assert_eq!(second.metadata["odoo_picking_id"], backorder);
    assert!(o.fulfillments.iter().all(|f| f.delivered_at.is_some()));
    let creates = env
        .store_sim
        .sim
        .requests
        .to(&format!("admin/orders/{id}/fulfillments"))
        .len();
    assert_eq!(
        creates, 2,
        "one create per delivery, the lost answer's included"
    );
    env.two_more_runs("odoo.orders").await;
    assert!(env.dead_jobs().is_empty(), "{:?}", env.dead_jobs());
    env.stop().await;
}

/// An order cancelled in Odoo whose store order the staff had begun to fulfil: an unshipped
/// fulfillment is cancelled first, then the order (a real Medusa refuses the order's cancel
/// while one lives); a shipped one Medusa cannot cancel, and the dead job says so and what to do.
#[tokio::test]
async fn cancelling_cancels_the_store_s_unshipped_fulfillments_first_and_names_a_shipped_one() {
    let env = Env::new(MedusaFlavour::AdminApi, "kwd").await;
    let place = |email: &str, n: i64| {
        env.store_sim
            .sim
            .place_order(email, &[(&sku(n), 1, Decimal::new(1_000, 3))])
    };
    let (packed, gone) = (place("a@example.com", 8), place("b@example.com", 9));
    let mut odoo_ids = Vec::new();
    for id in [&packed, &gone] {
        odoo_ids.push(env.import_placed(id).await.1);
    }
    // The store's staff fulfil both in the Medusa admin, and ship one.
    let http = reqwest::Client::new();
    let staff = |path: String| {
        let http = http.clone();
        let url = format!("{}{path}", env.store_sim.base_url());
        async move {
            let r = http
                .post(url)
                .basic_auth(KEY, Some(""))
                .json(&serde_json::json!({}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        }
    };
    for id in [&packed, &gone] {
        let line = env.store_sim.sim.order(id).unwrap().json["items"][0]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let r = http
            .post(format!(
                "{}admin/orders/{id}/fulfillments",
                env.store_sim.base_url()
            ))
            .basic_auth(KEY, Some(""))
            .json(&serde_json::json!({"items": [{"id": line, "quantity": 1}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let fid = env.store_sim.sim.order(&gone).unwrap().fulfillments[0]
        .id
        .clone();
    staff(format!("admin/orders/{gone}/fulfillments/{fid}/shipments")).await;
    env.client
        .call_method("sale.order", "action_cancel", &odoo_ids)
        .await
        .unwrap();
    wait_until("the packed order cancelled in the store", WAIT, || {
        env.store_sim.sim.order(&packed).unwrap().canceled
    })
    .await;
    let o = env.store_sim.sim.order(&packed).unwrap();
    assert!(
        o.fulfillments[0].canceled_at.is_some(),
        "its fulfillment first"
    );
    wait_until("the shipped one's cancel given up, with why", WAIT, || {
        !env.dead_jobs().is_empty()
    })
    .await;
    let dead = env.dead_jobs();
    assert_eq!(dead.len(), 1, "{dead:?}");
    let why = dead[0].last_error.clone().unwrap_or_default();
    assert!(
        why.contains(&gone) && why.contains(&fid) && why.contains("return"),
        "{why}"
    );
    let o = env.store_sim.sim.order(&gone).unwrap();
    assert!(!o.canceled && o.fulfillments[0].canceled_at.is_none());
    assert!(
        env.store_sim
            .sim
            .requests
            .to(&format!("admin/orders/{gone}/cancel"))
            .is_empty(),
        "no request Medusa would refuse"
    );
    env.stop().await;
}

/// The Odoo records the money settings name: a 5 % VAT included in the price, and the
/// service products of shipping and discount lines (ids fixed, so the config can name them).
const VAT: i64 = 901;
const SHIPPING: i64 = 9001;
const DISCOUNT: i64 = 9002;

fn money_records(odoo: &SimHandle) {
    let mut w = odoo.sim.world();
    let rec = |pairs: &[(&str, Value)]| -> marketsync::sim::odoo::world::Rec {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    };
    w.insert(
        "account.tax",
        VAT,
        rec(&[
            ("name", Value::from("VAT 5% included")),
            ("amount", Value::Double(5.0)),
            ("amount_type", Value::from("percent")),
            ("price_include", Value::Bool(true)),
            ("type_tax_use", Value::from("sale")),
            ("company_id", Value::Int(1)),
            ("active", Value::Bool(true)),
        ]),
    );
    for (id, name) in [
        (SHIPPING, "Marketplace shipping"),
        (DISCOUNT, "Marketplace discount"),
    ] {
        w.insert(
            "product.product",
            id,
            rec(&[
                ("name", Value::from(name)),
                ("detailed_type", Value::from("service")),
                ("active", Value::Bool(true)),
                ("sale_ok", Value::Bool(true)),
                ("list_price", Value::Double(0.0)),
            ]),
        );
    }
}

/// Places the order a real Medusa 2.21 gave for 2 + 1 items with a 10 % promotion, a 5 % VAT
/// included in its prices, and 1.500 KWD of shipping (its money as recorded:
/// `fixtures/medusa-v2/order-tax-discount-shipping.json`), and waits for it in Odoo.
async fn place_recorded_money_order(env: &Env) -> (String, i64) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/medusa-v2/order-tax-discount-shipping.json"
    );
    let recorded: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let real = recorded["response"]["order"].clone();
    let id = env.store_sim.sim.place_order(
        "money@example.com",
        &[
            (&sku(1), 2, Decimal::new(32_750, 3)),
            (&sku(2), 1, Decimal::new(33_000, 3)),
        ],
    );
    env.store_sim.sim.edit_order(&id, |o| {
        for (mine, theirs) in o["items"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .zip(real["items"].as_array().unwrap())
        {
            for k in [
                "unit_price",
                "is_tax_inclusive",
                "tax_lines",
                "adjustments",
                "subtotal",
                "total",
                "tax_total",
                "discount_total",
                "discount_subtotal",
                "discount_tax_total",
            ] {
                mine[k] = theirs[k].clone();
            }
        }
        for k in [
            "shipping_methods",
            "total",
            "subtotal",
            "tax_total",
            "discount_total",
            "shipping_total",
        ] {
            o[k] = real[k].clone();
        }
    });
    env.import_placed(&id).await
}

async fn amount_total(env: &Env, so: i64) -> Decimal {
    common::amount_total(&env.client, so).await
}

/// A Medusa order with shipping, a promotion and a price-included VAT, imported with the
/// matching settings (the VAT as `order_taxes`, a shipping product; the discount as line
/// percentages, then as a discount product's line): Odoo's `amount_total` is what the customer
/// paid, 90.150 KWD, to the fils, and the shipping line is a delivery line.
#[tokio::test]
async fn a_medusa_order_with_shipping_a_promotion_and_included_vat_totals_what_the_customer_paid() {
    for discount in ["", &format!("discount_product_id = {DISCOUNT}\n")] {
        let extra = format!("order_taxes = [{VAT}]\nshipping_product_id = {SHIPPING}\n{discount}");
        let env = Env::prepared(MedusaFlavour::AdminApi, "kwd", &extra, money_records).await;
        let (reference, so) = place_recorded_money_order(&env).await;
        assert_eq!(
            amount_total(&env, so).await,
            Decimal::new(90_150, 3),
            "{extra}"
        );
        let lines = env
            .client
            .search_read(
                "sale.order.line",
                &Domain::all().and("order_id", "=", so),
                &[
                    "product_id",
                    "price_unit",
                    "discount",
                    "tax_id",
                    "is_delivery",
                ],
                SearchOpts::default(),
            )
            .await
            .unwrap();
        let of = |product: i64| {
            lines
                .iter()
                .filter(|l| l.get("product_id").and_then(Value::as_id) == Some(product))
                .collect::<Vec<_>>()
        };
        let ship = of(SHIPPING);
        assert_eq!(ship.len(), 1, "{lines:?}");
        assert_eq!(
            ship[0].get("is_delivery").and_then(Value::as_bool),
            Some(true)
        );
        assert_eq!(ship[0].get("price_unit").and_then(Value::as_f64), Some(1.5));
        for l in &lines {
            assert_eq!(
                l.get("tax_id")
                    .and_then(Value::as_array)
                    .map(|a| a.to_vec()),
                Some(vec![Value::Int(VAT)]),
                "every line carries the VAT: {l:?}"
            );
        }
        if discount.is_empty() {
            assert!(of(DISCOUNT).is_empty());
            assert_eq!(
                lines
                    .iter()
                    .filter(|l| l.get("discount").and_then(Value::as_f64) == Some(10.0))
                    .count(),
                2,
                "the 10 % on each product line: {lines:?}"
            );
        } else {
            let d = of(DISCOUNT);
            assert_eq!(d.len(), 1, "{lines:?}");
            assert_eq!(d[0].get("price_unit").and_then(Value::as_f64), Some(-9.85));
        }
        let (_, listed) = env.cli(&["order", "list"]).await;
        let row = listed.lines().find(|l| l.contains(&reference)).unwrap();
        assert!(!row.contains("totals differ"), "{row}");
        let (_, checked) = env.cli(&["check"]).await;
        let line = |t: &str| common::check_line(&checked, t);
        let taxes = line("medusa.order_taxes");
        assert!(
            taxes.contains("VAT 5% included") && taxes.contains("tax-inclusive price"),
            "{taxes}"
        );
        assert!(line("medusa.shipping_product_id").contains("Marketplace shipping"));
        let digits = line("medusa.price_digits");
        assert!(
            digits.contains("WARN") && digits.contains("KWD has 3"),
            "Odoo's 2-digit prices cannot hold every fils: {digits}"
        );
        env.stop().await;
    }
}

/// The same order imported with the defaults (the products' taxes, no shipping product): Odoo's
/// total is not what the customer paid, and the operator is told where to look: the order's
/// NEEDS column, the sync log with both figures and the difference, and `/metrics`.
#[tokio::test]
async fn an_order_whose_odoo_total_is_not_what_the_customer_paid_is_flagged_with_both_figures() {
    let env = Env::prepared(MedusaFlavour::AdminApi, "kwd", "", money_records).await;
    let (reference, so) = place_recorded_money_order(&env).await;
    let odoo = amount_total(&env, so).await;
    assert_ne!(odoo, Decimal::new(90_150, 3));
    let said = common::said_once(&env.store, "is not what Medusa says the customer pays");
    assert!(
        said.message.contains(&format!("{odoo}")) && said.message.contains("90.150"),
        "{}",
        said.message
    );
    assert!(
        said.message.contains("shipping_product_id"),
        "{}",
        said.message
    );
    let (_, listed) = env.cli(&["order", "list"]).await;
    let row = listed.lines().find(|l| l.contains(&reference)).unwrap();
    assert!(row.contains("totals differ"), "{listed}");
    let metrics = common::metrics(&env.store).await;
    assert!(
        metrics.contains("marketsync_orders_totals_differ{channel=\"medusa\"} 1"),
        "{metrics}"
    );
    let (_, checked) = env.cli(&["check"]).await;
    let shipping = common::check_line(&checked, "medusa.shipping_product_id");
    assert!(
        shipping.contains("WARN") && shipping.contains("not set"),
        "{shipping}"
    );
    env.stop().await;
}

/// `odoo.company_id`: every call works in that company (Odoo's `allowed_company_ids`, as a real
/// Odoo 17 takes it: fixtures/odoo17/companies.json), and the order, its customer and its
/// delivery contact are made in it; `check` names it. A company the user is not allowed in is
/// refused by Odoo, and `check` says what to do.
#[tokio::test]
async fn orders_customers_and_stock_are_the_configured_company_s() {
    let env = Env::prepared(
        MedusaFlavour::AdminApi,
        "kwd",
        "odoo.company_id = 2\n",
        |odoo| {
            // Company 2's books in the store's currency too.
            odoo.sim
                .world()
                .write(
                    "res.company",
                    &[2],
                    &Value::record([("currency_id", Value::Int(3))]),
                )
                .unwrap();
        },
    )
    .await;
    env.odoo.sim.world().calls_without_company = 0;
    let id = env
        .store_sim
        .sim
        .place_order("c2@example.com", &[(&sku(5), 1, Decimal::new(1_000, 3))]);
    let (_, so) = env.import_placed(&id).await;
    let order = env
        .client
        .read(
            "sale.order",
            &[so],
            &["company_id", "partner_id", "partner_shipping_id"],
        )
        .await
        .unwrap()
        .remove(0);
    assert_eq!(order.get("company_id").and_then(Value::as_id), Some(2));
    let partners: Vec<i64> = ["partner_id", "partner_shipping_id"]
        .iter()
        .filter_map(|k| order.get(k).and_then(Value::as_id))
        .collect();
    for p in env
        .client
        .read("res.partner", &partners, &["company_id"])
        .await
        .unwrap()
    {
        assert_eq!(p.get("company_id").and_then(Value::as_id), Some(2), "{p:?}");
    }
    assert_eq!(
        env.odoo.sim.world().calls_without_company,
        0,
        "every call of the daemon names the company"
    );
    let (code, checked) = env.cli(&["check"]).await;
    let line = common::check_line(&checked, "odoo.company");
    assert!(
        line.starts_with("ok") && line.contains("My Company (Chicago)"),
        "{line}"
    );
    assert_eq!(code, Some(0), "{checked}");

    // A company the user is not allowed in.
    let text = std::fs::read_to_string(&env.config_path).unwrap();
    std::fs::write(
        &env.config_path,
        text.replace("company_id = 2", "company_id = 7"),
    )
    .unwrap();
    let (code, checked) = env.cli(&["check"]).await;
    let line = common::check_line(&checked, "odoo.company");
    assert!(
        line.starts_with("FAIL")
            && line.contains("company 7")
            && line.contains("Allowed Companies"),
        "{line}"
    );
    assert_eq!(code, Some(1));
    env.stop().await;
}

/// `products`: the store sells the Odoo products the filter holds. One that leaves it (here:
/// made heavier than the filter allows) is unpublished; back in it, published again. `check`
/// counts them; a filter Odoo refuses, or of the wrong shape, is named.
#[tokio::test]
async fn a_product_leaving_the_channel_s_filter_is_unpublished_and_one_entering_it_published() {
    let env = Env::prepared(
        MedusaFlavour::AdminApi,
        "kwd",
        "products = [[\"weight\", \"<\", 100]]\n",
        |odoo| {
            // Out of the filter from the start: the first full push never lists it.
            odoo.sim
                .world()
                .write(
                    "product.product",
                    &[PRODUCTS],
                    &Value::record([("weight", Value::Double(900.0))]),
                )
                .unwrap();
        },
    )
    .await;
    let status = |n: i64| env.store_sim.sim.product(&sku(n)).map(|p| p.status.clone());
    wait_until("every product of the filter in the store", WAIT, || {
        (1..PRODUCTS).all(|i| status(i).as_deref() == Some("published"))
    })
    .await;
    assert_eq!(status(PRODUCTS), None, "outside the filter: never listed");
    env.odoo
        .sim
        .world()
        .write(
            "product.product",
            &[PRODUCTS],
            &Value::record([("weight", Value::Double(2.0))]),
        )
        .unwrap();
    wait_until("into the filter: listed", WAIT, || {
        status(PRODUCTS).as_deref() == Some("published")
    })
    .await;
    let weigh = |kg: f64| {
        env.odoo
            .sim
            .world()
            .write(
                "product.product",
                &[1],
                &Value::record([("weight", Value::Double(kg))]),
            )
            .unwrap()
    };
    weigh(500.0);
    wait_until("out of the filter: draft", WAIT, || {
        status(1).as_deref() == Some("draft")
    })
    .await;
    assert_eq!(status(2).as_deref(), Some("published"), "the others stay");
    weigh(1.0);
    wait_until("back in it: published", WAIT, || {
        status(1).as_deref() == Some("published")
    })
    .await;
    let (code, checked) = env.cli(&["check"]).await;
    let line = common::check_line(&checked, "medusa.products");
    assert!(
        line.starts_with("ok") && line.contains(&format!("{PRODUCTS} active, saleable")),
        "{line}"
    );
    assert_eq!(code, Some(0), "{checked}");
    // A field Odoo does not have.
    let text = std::fs::read_to_string(&env.config_path).unwrap();
    std::fs::write(&env.config_path, text.replace("\"weight\"", "\"wieght\"")).unwrap();
    let (code, checked) = env.cli(&["check"]).await;
    let line = common::check_line(&checked, "medusa.products");
    assert!(
        line.starts_with("FAIL") && line.contains("wieght"),
        "{line}"
    );
    assert_eq!(code, Some(1));
    // Not a domain at all: `config check` says where and what.
    std::fs::write(
        &env.config_path,
        text.replace(
            "[[\"weight\", \"<\", 100]]",
            "[[\"weight\", \"under\", 100]]",
        ),
    )
    .unwrap();
    let (code, said) = env.cli(&["config", "check"]).await;
    assert_ne!(code, Some(0));
    let _ = said;
    env.stop().await;
}

#[tokio::test]
async fn marqasouq_hears_confirm_ship_deliver_and_cancel_each_once() {
    status_flow(MedusaFlavour::Marqasouq).await;
}

#[tokio::test]
async fn admin_api_fulfils_ships_delivers_and_cancels_each_once() {
    status_flow(MedusaFlavour::AdminApi).await;
}

#[tokio::test]
async fn a_secret_key_sent_as_bearer_gets_medusas_own_answer() {
    let store = medusa::start(0, MedusaFlavour::AdminApi, KEY, "kwd")
        .await
        .unwrap();
    let r = reqwest::Client::new()
        .get(format!("{}admin/orders", store.base_url()))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("Secret API keys must be sent using HTTP Basic authentication"));
    let r = reqwest::Client::new()
        .get(format!("{}admin/orders", store.base_url()))
        .basic_auth(KEY, Some(""))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

#[tokio::test]
async fn a_webhook_received_while_odoo_is_down_is_kept_and_imported_later() {
    let mut env = Env::new(MedusaFlavour::Marqasouq, "kwd").await;
    env.odoo.stop().await;
    let id = env
        .store_sim
        .sim
        .place_order("late@example.com", &[(&sku(8), 1, Decimal::new(3_250, 3))]);
    let (s, reply) = env
        .send(env.store_sim.sim.webhook_body("order.created", &id))
        .await;
    assert_eq!(s, 200, "committed to the inbox, Odoo or not: {reply}");
    env.odoo.restart().await.unwrap();
    let display = env.store_sim.sim.order(&id).unwrap().json["display_id"]
        .as_i64()
        .unwrap();
    env.wait_order(&format!("MEDUSA-{display}")).await;
    assert!(env.dead_jobs().is_empty());
    env.stop().await;
}

#[tokio::test]
async fn stores_that_cannot_sign_send_a_static_secret_header() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.db")).unwrap();
    let text = "[odoo]\nurl = \"http://127.0.0.1:9\"\ndatabase = \"d\"\nusername = \"u\"\napi_key = \"k-123456\"\n\
                [channels.medusa]\nenabled = true\nbase_url = \"http://127.0.0.1:9\"\ntoken = \"t-123456\"\nwebhook_secret = \"static-secret-42\"\nwebhook_auth = \"header\"\n";
    let config = RawConfig::parse(text).unwrap().validate().unwrap();
    let health = std::sync::Arc::new(marketsync::daemon::Health::new(
        store.clone(),
        Duration::from_secs(60),
    ));
    let app = marketsync::webhook::router(marketsync::webhook::App {
        health,
        store: store.clone(),
        hooks: marketsync::channel::webhook_specs(&config),
        max_body_bytes: 1 << 20,
        body_timeout: Duration::from_secs(10),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let body = serde_json::json!({"event": "customer.created", "data": {"customer": {"id": "cus_1", "email": "a@b.c"}}}).to_string();
    let post = |secret: Option<&'static str>| {
        let mut r = reqwest::Client::new()
            .post(format!("http://{addr}/webhooks/medusa"))
            .body(body.clone());
        if let Some(s) = secret {
            r = r.header("x-webhook-secret", s);
        }
        r.send()
    };
    assert_eq!(post(None).await.unwrap().status().as_u16(), 401);
    assert_eq!(post(Some("wrong")).await.unwrap().status().as_u16(), 401);
    assert_eq!(
        post(Some("static-secret-42"))
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    assert_eq!(inbox::list(&store, None, 10).unwrap().len(), 1);
}

#[tokio::test]
async fn a_price_back_to_what_the_store_holds_replaces_the_one_still_waiting() {
    use marketsync::store::queue::{self, JobState};
    let env = Env::new(MedusaFlavour::Marqasouq, "kwd").await;
    let before = env.odoo_price(1);
    let original = marketsync::sync::money::round(before, "kwd");
    wait_until("the first push", WAIT, || {
        env.store_sim
            .sim
            .product(&sku(1))
            .is_some_and(|p| p.price == original)
    })
    .await;
    let waiting = |env: &Env| {
        let mut jobs =
            queue::list(&env.store, Some(JobState::Retrying), Some("medusa"), 50).unwrap();
        jobs.extend(queue::list(&env.store, Some(JobState::Pending), Some("medusa"), 50).unwrap());
        jobs.into_iter()
            .filter(|j| j.key == "medusa:product:1")
            .collect::<Vec<_>>()
    };
    // The store goes down; the price changes, and its push waits for the store to come back.
    env.store_sim
        .sim
        .faults
        .down(marketsync::sim::faults::Fault::Status {
            status: 503,
            body: "Service Unavailable".into(),
            retry_after: None,
        });
    let set_price = |price: Decimal| {
        env.client.write(
            "product.product",
            &[1],
            Value::record([(
                "list_price",
                Value::Double(price.to_string().parse().unwrap()),
            )]),
        )
    };
    set_price(Decimal::new(55_555, 3)).await.unwrap();
    let sent = |env: &Env| {
        marketsync::store::mapping::by_odoo(&env.store, "medusa", "product", 1)
            .unwrap()
            .unwrap()
            .last_hash
    };
    let holds_sent = |env: &Env, j: &queue::Job| j.payload["hash"].as_str() == sent(env).as_deref();
    wait_until("the new price waiting", WAIT, || {
        waiting(&env).iter().any(|j| !holds_sent(&env, j))
    })
    .await;
    // Back to the price the store holds, while the other push still waits: it replaces it.
    set_price(before).await.unwrap();
    wait_until("the waiting push replaced", WAIT, || {
        let w = waiting(&env);
        !w.is_empty() && w.iter().all(|j| holds_sent(&env, j))
    })
    .await;
    env.store_sim.sim.faults.up();
    wait_until("nothing left to send", WAIT, || waiting(&env).is_empty()).await;
    env.two_more_runs("medusa.catalog").await;
    assert_eq!(
        env.store_sim.sim.product(&sku(1)).unwrap().price,
        original,
        "the store ends with Odoo's price, not the one in between"
    );
    env.stop().await;
}

/// A delivery address's country is an optional part: an integration user Odoo does not let
/// read countries still gets its orders in, without the country, and that is said once.
#[tokio::test]
async fn orders_come_in_without_a_country_odoo_will_not_look_up() {
    let env = Env::new(MedusaFlavour::Marqasouq, "KWD").await;
    env.odoo.sim.world().set_access("res.country", false);
    let contact_of = |reference: String| {
        let env = &env;
        async move {
            let order = env.wait_order(&reference).await;
            let shipping = order.get("partner_shipping_id").unwrap().as_id().unwrap();
            env.client
                .read(
                    "res.partner",
                    &[shipping],
                    &["type", "street", "country_id"],
                )
                .await
                .unwrap()
                .remove(0)
        }
    };
    let mut references = Vec::new();
    for email in [
        "first@example.com",
        "second@example.com",
        "third@example.com",
    ] {
        if email.starts_with("third") {
            env.odoo.sim.world().set_access("res.country", true);
        }
        let id = env
            .store_sim
            .sim
            .place_order(email, &[(&sku(1), 1, Decimal::new(12_900, 3))]);
        let (s, reply) = env
            .send(env.store_sim.sim.webhook_body("order.created", &id))
            .await;
        assert_eq!(s, 200, "{reply}");
        let display = env.store_sim.sim.order(&id).unwrap().json["display_id"]
            .as_i64()
            .unwrap();
        references.push(format!("MEDUSA-{display}"));
        let contact = contact_of(references.last().unwrap().clone()).await;
        assert_eq!(contact.get("type").unwrap().as_str(), Some("delivery"));
        assert_eq!(
            contact.get("street").unwrap().as_str(),
            Some("Block 5, Street 10, House 25")
        );
        let country = contact.get("country_id").unwrap().as_many2one();
        if email.starts_with("third") {
            assert!(country.is_some(), "the country again once Odoo allows it");
        } else {
            assert_eq!(country, None, "{email}: made without its country");
        }
    }
    let left_out = common::said_once(&env.store, "delivery country left out");
    assert!(
        left_out.message.contains("not allowed to access"),
        "{}",
        left_out.message
    );
    assert!(common::sync_log(&env.store)
        .iter()
        .any(|r| r.message.contains("delivery country goes out again")));
    assert!(env.dead_jobs().is_empty());
    env.stop().await;
}

#[tokio::test]
async fn a_stock_job_with_a_damaged_payload_dies_with_the_field_and_sends_no_quantity() {
    let env = Env::new(MedusaFlavour::Marqasouq, "kwd").await;
    wait_until("all products in the store", WAIT, || {
        (1..=PRODUCTS).all(|i| env.store_sim.sim.product(&sku(i)).is_some())
    })
    .await;
    let before = env.store_sim.sim.product(&sku(1)).unwrap().quantity;
    assert!(before > 0, "the simulated catalog has stock");
    let requests = || {
        env.store_sim
            .sim
            .requests
            .to("odoo/inventory/bulk-update")
            .len()
    };
    let sent_before = requests();
    // A stock job whose quantity was lost (written by hand, or damaged on disk).
    let id = marketsync::store::queue::enqueue(
        &env.store,
        marketsync::store::queue::NewJob {
            channel: "medusa".into(),
            kind: "stock".into(),
            key: "medusa:stock:damaged".into(),
            payload: serde_json::json!({"mapping_id": 2, "product_mapping_id": 1, "hash": "x", "sku": sku(1)}).into(),
            correlation_id: None,
        },
    )
    .unwrap()
    .id();
    wait_until("the damaged job dead", WAIT, || {
        marketsync::store::queue::get(&env.store, id)
            .unwrap()
            .is_some_and(|j| j.state == marketsync::store::queue::JobState::Dead)
    })
    .await;
    let job = marketsync::store::queue::get(&env.store, id)
        .unwrap()
        .unwrap();
    let why = job.last_error.unwrap();
    assert!(why.contains("missing field `quantity`"), "{why}");
    assert_eq!(requests(), sent_before, "nothing sent for it");
    assert_eq!(env.store_sim.sim.product(&sku(1)).unwrap().quantity, before);
}

#[tokio::test]
async fn an_item_without_a_usable_unit_price_parks_its_order_instead_of_importing_it_free() {
    let env = Env::new(MedusaFlavour::Marqasouq, "kwd").await;
    let id = env.store_sim.sim.place_order(
        "noprice@example.com",
        &[
            (&sku(1), 2, Decimal::new(2_500, 3)),
            (&sku(2), 1, Decimal::new(1_000, 3)),
        ],
    );
    env.store_sim.sim.edit_order(&id, |o| {
        o["items"][1]["unit_price"] = serde_json::json!("n/a")
    });
    let (status, _) = env
        .send(env.store_sim.sim.webhook_body("order.created", &id))
        .await;
    assert_eq!(status, 200, "taken into the inbox");
    wait_until("parked", WAIT, || {
        !inbox::list(&env.store, Some("parked"), 10)
            .unwrap()
            .is_empty()
    })
    .await;
    let parked = &inbox::list(&env.store, Some("parked"), 10).unwrap()[0];
    let why = parked.error.clone().unwrap();
    assert!(
        why.contains(&format!("item {} of Medusa order", sku(2)))
            && why.contains("no usable unit_price (\"n/a\")"),
        "{why}"
    );
    let reference = format!(
        "MEDUSA-{}",
        env.store_sim.sim.order(&id).unwrap().json["display_id"]
    );
    assert!(
        env.order_by_ref(&reference).await.is_empty(),
        "not imported at a price nobody charged"
    );
    env.stop().await;
}

/// DESIGN's convergence promise through an outage longer than the whole retry policy: the store
/// refuses connections while a price and a stock change, an order is delivered and another
/// order arrives (its import waits for the store, its acknowledgement with it). Nothing spends
/// an attempt; when the store listens again, its probe releases the jobs and the store holds
/// Odoo's values, with nothing dead.
async fn outage_flow(flavour: MedusaFlavour) {
    let env = Env::behind_gate(flavour).await;
    let gate = env.gate.as_ref().unwrap();
    let stock = |env: &Env, id: i64| {
        let p = env.store_sim.sim.product(&sku(id)).unwrap();
        match flavour {
            MedusaFlavour::Marqasouq => p.quantity,
            MedusaFlavour::AdminApi => p.levels.get("sloc_01SIMWAREHOUSE").copied().unwrap_or(-1),
        }
    };
    env.all_listed("all products in the store", |p| p.status == "published")
        .await;
    let synced = |env: &Env, id: &str| {
        let o = env.store_sim.sim.order(id).unwrap();
        o.synced
            || o.metadata
                .get("odoo_order_id")
                .is_some_and(|v| !v.is_null())
    };
    let delivered = env
        .store_sim
        .sim
        .place_order("a@example.com", &[(&sku(6), 1, Decimal::new(1_000, 3))]);
    let reference = |env: &Env, id: &str| {
        format!(
            "MEDUSA-{}",
            env.store_sim.sim.order(id).unwrap().json["display_id"]
        )
    };
    env.send(env.store_sim.sim.webhook_body("order.created", &delivered))
        .await;
    let a = env.wait_order(&reference(&env, &delivered)).await;
    let a = a.get("id").unwrap().as_i64().unwrap();
    wait_until("the first order acknowledged", WAIT, || {
        synced(&env, &delivered)
    })
    .await;

    gate.close().await;
    env.client
        .write(
            "product.product",
            &[1],
            Value::record([("list_price", Value::Double(87.25))]),
        )
        .await
        .unwrap();
    env.odoo.sim.world().set_on_hand(2, 44.0).unwrap();
    env.client
        .call_method("sale.order", "action_confirm", &[a])
        .await
        .unwrap();
    env.ship_in_odoo(a, "TRK-OUTAGE-1").await;
    let arrived = env
        .store_sim
        .sim
        .place_order("b@example.com", &[(&sku(7), 2, Decimal::new(2_500, 3))]);
    let (code, _) = env
        .send(env.store_sim.sim.webhook_body("order.created", &arrived))
        .await;
    assert_eq!(
        code, 200,
        "a webhook is taken while the store's API is down"
    );

    let jobs = |state| {
        marketsync::store::queue::list(&env.store, Some(state), Some("medusa"), 100).unwrap()
    };
    use marketsync::store::queue::JobState;
    wait_until("every kind of job waiting for the store", WAIT, || {
        let kinds: std::collections::BTreeSet<String> = jobs(JobState::Retrying)
            .into_iter()
            .filter(|j| j.error_class.as_deref() == Some("unreachable"))
            .map(|j| j.kind)
            .collect();
        ["order", "product", "status", "stock"]
            .iter()
            .all(|k| kinds.contains(*k))
    })
    .await;
    let before = jobs(JobState::Retrying);
    wait_until("five failed probes", WAIT, || {
        marketsync::store::reach::get(&env.store, "medusa")
            .unwrap()
            .is_some_and(|u| u.probes >= 5)
    })
    .await;
    assert!(env.dead_jobs().is_empty(), "{:?}", env.dead_jobs());
    for job in jobs(JobState::Retrying) {
        let was = before
            .iter()
            .find(|j| j.id == job.id)
            .map_or(0, |j| j.attempts);
        assert_eq!(job.attempts, was, "waiting spends no attempt: {job:?}");
    }
    let (_, status) = env.cli(&["status"]).await;
    assert!(status.contains("medusa unreachable since"), "{status}");
    let metrics = common::metrics(&env.store).await;
    assert!(
        metrics.contains("marketsync_channel_up{channel=\"medusa\"} 0"),
        "{metrics}"
    );
    let health = reqwest::get(format!("http://{}/healthz", env.addr))
        .await
        .unwrap();
    assert_eq!(health.status(), 200, "the daemon itself is fine");
    let health: serde_json::Value = health.json().await.unwrap();
    assert_eq!(health["status"], "degraded", "{health}");
    assert!(
        health["unreachable"][0]
            .as_str()
            .is_some_and(|u| u.starts_with("medusa unreachable since")),
        "{health}"
    );

    gate.open().await;
    let price = marketsync::sync::money::round(Decimal::new(8725, 2), "kwd");
    wait_until("the store holds Odoo's values", WAIT, || {
        let delivered_heard = match flavour {
            MedusaFlavour::Marqasouq => common::medusa_heard(&env.store_sim, &delivered)
                .contains(&"order.delivered".to_string()),
            MedusaFlavour::AdminApi => env
                .store_sim
                .sim
                .order(&delivered)
                .unwrap()
                .fulfillments
                .first()
                .is_some_and(|f| f.delivered()),
        };
        env.store_sim.sim.product(&sku(1)).unwrap().price == price
            && stock(&env, 2) == 44
            && delivered_heard
            && synced(&env, &arrived)
    })
    .await;
    assert_eq!(env.order_by_ref(&reference(&env, &arrived)).await.len(), 1);
    wait_until(
        "nothing left to send and the probe saw the store answer",
        WAIT,
        || {
            jobs(JobState::Retrying).is_empty()
                && jobs(JobState::Pending).is_empty()
                && marketsync::store::reach::get(&env.store, "medusa")
                    .unwrap()
                    .is_none()
        },
    )
    .await;
    assert!(env.dead_jobs().is_empty(), "{:?}", env.dead_jobs());
    let recovered = common::said_once(&env.store, "medusa answers again after");
    assert!(
        recovered.message.contains("job"),
        "says what became of the waiting jobs: {recovered:?}"
    );
    env.stop().await;
}

#[tokio::test]
async fn marqasouq_converges_after_an_outage_longer_than_the_retry_policy() {
    outage_flow(MedusaFlavour::Marqasouq).await;
}

#[tokio::test]
async fn admin_api_converges_after_an_outage_longer_than_the_retry_policy() {
    outage_flow(MedusaFlavour::AdminApi).await;
}

/// `diff` on an Admin API store: clean when the store holds Odoo's values; an admin's price
/// change and a deleted product are named; `--repair` fixes both (the deleted one is created
/// again) and `diff` is clean again. MarqaSouq's routes cannot be read back: `diff` says so.
#[tokio::test]
async fn diff_names_an_admin_s_price_change_and_a_deleted_product_and_repair_fixes_both() {
    let env = Env::new(MedusaFlavour::AdminApi, "kwd").await;
    use marketsync::store::queue::JobState;
    let idle = |env: &Env| {
        [JobState::Pending, JobState::Retrying, JobState::Running]
            .into_iter()
            .all(|s| {
                marketsync::store::queue::list(&env.store, Some(s), Some("medusa"), 1)
                    .unwrap()
                    .is_empty()
            })
    };
    env.all_listed("all products listed with stock", |p| {
        p.status == "published" && !p.levels.is_empty()
    })
    .await;
    wait_until("nothing left to send", WAIT, || idle(&env)).await;
    let (code, text) = env.cli(&["diff", "--channel", "medusa"]).await;
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains(&format!(
            "no difference among {PRODUCTS} Odoo product(s) and {PRODUCTS} medusa listing(s)"
        )),
        "{text}"
    );

    env.store_sim
        .sim
        .admin_set_price(&sku(2), Decimal::new(1, 0));
    env.store_sim.sim.admin_delete(&sku(5));
    let (code, text) = env.cli(&["diff", "--channel", "medusa"]).await;
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("price") && l.contains(&sku(2)) && l.contains("medusa holds 1")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("missing on the channel") && l.contains(&sku(5))),
        "{text}"
    );
    assert!(
        text.contains("2 difference(s) (1 price, 1 missing on the channel)"),
        "{text}"
    );

    let (code, text) = env.cli(&["diff", "--channel", "medusa", "--repair"]).await;
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("queued the fixes of 2 product(s)"), "{text}");
    wait_until("the fixes sent", WAIT, || {
        let s = &env.store_sim.sim;
        s.product(&sku(5))
            .is_some_and(|p| p.status == "published" && !p.levels.is_empty())
            && s.product(&sku(2)).unwrap().price
                == marketsync::sync::money::round(env.odoo_price(2), "kwd")
            && idle(&env)
    })
    .await;
    let (code, text) = env.cli(&["diff", "--channel", "medusa"]).await;
    assert_eq!(code, Some(0), "clean again: {text}");
    assert!(env.dead_jobs().is_empty(), "{:?}", env.dead_jobs());

    // A store of more than two pages (200 products each, as a real Medusa 2.21 answered 5,029
    // in fixtures/medusa-v2/admin-products-last-page.json): every page is read, in id order.
    for i in 0..450 {
        env.store_sim
            .sim
            .admin_create(&format!("DASH-{i:03}"), Decimal::new(5, 0));
    }
    let before = env.store_sim.sim.requests.all().len();
    let (code, text) = env.cli(&["diff", "--channel", "medusa"]).await;
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains(&format!(
            "450 difference(s) (450 unknown to Odoo) among {PRODUCTS} Odoo product(s) and {} medusa listing(s)",
            450 + PRODUCTS
        )),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("unknown to Odoo")
                && l.contains("DASH-449: listed at 5 on medusa")),
        "{text}"
    );
    let pages: Vec<String> = env.store_sim.sim.requests.all()[before..]
        .iter()
        .filter(|r| r.method == "GET" && r.path == "admin/products")
        .map(|r| r.query.clone())
        .collect();
    assert_eq!(pages.len(), 3, "{pages:?}");
    for (page, offset) in pages.iter().zip([0, 200, 400]) {
        assert!(
            page.contains("order=id") && page.contains(&format!("offset={offset}")),
            "{pages:?}"
        );
    }
    env.stop().await;

    let env = Env::new(MedusaFlavour::Marqasouq, "kwd").await;
    let mut cmd = assert_cmd::Command::cargo_bin("marketsync").unwrap();
    cmd.env("NO_COLOR", "1")
        .arg("--config")
        .arg(&env.config_path)
        .args(["diff", "--channel", "medusa"]);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        err.contains("MarqaSouq's /odoo routes offer no way to read the store's products back"),
        "{err}"
    );
    env.stop().await;
}

/// `reconcile_mode = "read-back"`: the reconcile reads the store back, so a price an admin
/// changed there behind marketsync's back (the hashes still say it was sent) is put right
/// without the operator.
#[tokio::test]
async fn a_read_back_reconcile_puts_right_a_price_an_admin_changed_in_the_store() {
    let env = Env::on_odoo(
        (17, OdooProtocol::Xmlrpc),
        "reconcile = \"1s\"\n",
        MedusaFlavour::AdminApi,
        "kwd",
        "reconcile_mode = \"read-back\"\n",
        |_| {},
        false,
    )
    .await;
    env.all_listed("all products listed", |p| p.status == "published")
        .await;
    let odoo = marketsync::sync::money::round(env.odoo_price(4), "kwd");
    wait_until("Odoo's price in the store", WAIT, || {
        env.store_sim.sim.product(&sku(4)).unwrap().price == odoo
    })
    .await;
    env.store_sim
        .sim
        .admin_set_price(&sku(4), Decimal::new(7, 0));
    wait_until("the reconcile put it right", WAIT, || {
        env.store_sim.sim.product(&sku(4)).unwrap().price == odoo
    })
    .await;
    assert!(common::sync_log(&env.store)
        .iter()
        .any(|r| r.message.contains("read back: 1 difference(s) (1 price)")));
    env.stop().await;
}

/// The currency guard: a store in KWD and an Odoo whose books are in USD. No price goes out
/// labelled KWD (the stream and `check` name both currencies and the fix); once the company's
/// currency is the store's, the catalog goes out at Odoo's prices.
#[tokio::test]
async fn no_price_goes_out_in_a_currency_odoo_s_prices_are_not_in_and_check_says_which_two() {
    let env = Env::prepared(MedusaFlavour::Marqasouq, "kwd", "", |odoo| {
        odoo.sim.world().set_company_currency("USD").unwrap();
    })
    .await;
    let why = "Odoo's sales prices are in USD (company \"My Company\"'s currency) and the channel sells in KWD: set channels.medusa.pricelist_id to a pricelist in KWD";
    let stream_error = || common::stream_error(&env.store, "medusa.catalog");
    wait_until("the catalog stream says why", WAIT, || {
        stream_error().is_some_and(|e| e.contains(why))
    })
    .await;
    assert!(
        env.store_sim.sim.products().is_empty(),
        "nothing listed at a USD number labelled KWD: {:?}",
        env.store_sim.sim.products()
    );
    let (code, text) = env.cli(&["check"]).await;
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("FAIL") && l.contains("medusa.currency") && l.contains(why)),
        "{text}"
    );

    env.odoo.sim.world().set_company_currency("KWD").unwrap();
    wait_until("the catalog listed at Odoo's prices", WAIT, || {
        (1..=PRODUCTS).all(|i| {
            env.store_sim.sim.product(&sku(i)).is_some_and(|p| {
                p.price == marketsync::sync::money::round(env.odoo_price(i), "kwd")
            })
        })
    })
    .await;
    wait_until("the stream recovers", WAIT, || stream_error().is_none()).await;
    let (code, text) = env.cli(&["check"]).await;
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("Odoo's prices are in KWD, the currency the channel sells in"),
        "{text}"
    );
    env.stop().await;
}
