//! The Meta catalog end to end: the real daemon against the Odoo and Meta simulators.

mod common;

use common::wait_until;
use marketsync::config::{OdooProtocol, RawConfig};
use marketsync::odoo::{OdooClient, Value};
use marketsync::sim::meta::{self, MetaHandle};
use marketsync::sim::odoo::SimHandle;
use marketsync::store::queue::{self, JobState};
use marketsync::store::Store;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "EAAGsimSystemUserToken01";
const CATALOG: &str = "880011223344";
const WAIT: Duration = Duration::from_secs(30);
const PRODUCTS: i64 = 12;

struct Env {
    odoo: SimHandle,
    meta: MetaHandle,
    _dir: tempfile::TempDir,
    store: Store,
    client: OdooClient,
    stop: CancellationToken,
    daemon: tokio::task::JoinHandle<Result<(), marketsync::daemon::DaemonError>>,
    config_path: std::path::PathBuf,
    text: String,
    gate: Option<common::Gate>,
}

fn sku(id: i64) -> String {
    format!("SKU-{id:05}")
}

impl Env {
    async fn new(extra: &str) -> Env {
        Env::prepared(extra, |_, _| {}).await
    }

    /// With more `[channels.meta]` settings, and both simulators prepared before the daemon
    /// starts.
    async fn prepared(extra: &str, prepare: impl FnOnce(&SimHandle, &MetaHandle)) -> Env {
        Env::build(extra, prepare, false).await
    }

    /// Reached through a [`common::Gate`] the test can close, with a retry policy spent in
    /// well under a second (three attempts at most 200 ms apart).
    async fn behind_gate() -> Env {
        Env::build("", |_, _| {}, true).await
    }

    async fn build(extra: &str, prepare: impl FnOnce(&SimHandle, &MetaHandle), gated: bool) -> Env {
        let odoo = common::odoo_sim(17, PRODUCTS as usize).await;
        odoo.sim.world().set_company_currency("KWD").unwrap();
        let meta = meta::start(0, CATALOG, TOKEN, "KWD").await.unwrap();
        meta.sim.set_finish_after(Duration::from_millis(200));
        prepare(&odoo, &meta);
        let gate = match gated {
            true => Some(common::Gate::new(meta.addr).await),
            false => None,
        };
        let base_url = gate
            .as_ref()
            .map_or(meta.base_url(), |g| g.url(&meta.base_url()));
        let retry = match gated {
            true => "base_delay = \"50ms\"\nmax_delay = \"200ms\"\nmax_attempts = 3",
            false => "base_delay = \"100ms\"\nmax_delay = \"1s\"",
        };
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "{}[schedule]\ncatalog_poll = \"1s\"\nstatus_poll = \"1s\"\nchannel_probe = \"100ms\"\n\
             [retry]\n{retry}\n[daemon]\nqueue_poll = \"100ms\"\n\
             [channels.meta]\nenabled = true\nbase_url = \"{}\"\ntoken = \"{TOKEN}\"\ncatalog_id = \"{CATALOG}\"\n\
             currency = \"KWD\"\nbrand = \"Acme\"\nlink = \"https://shop.example.com/products/{{slug}}\"\n\
             image_link = \"https://shop.example.com/images/{{default_code}}.jpg\"\npoll_overlap = \"2s\"\n{extra}",
            common::config_text(&odoo.url(), OdooProtocol::Xmlrpc, dir.path(), ""),
            base_url,
        );
        let config_path = dir.path().join("config.toml");
        std::fs::write(&config_path, &text).unwrap();
        let config = RawConfig::parse(&text).unwrap().validate().unwrap();
        let store = Store::open(&config.state.path).unwrap();
        let client = OdooClient::connect(&config.odoo).await.unwrap();
        let (stop, daemon, _) = common::spawn_daemon(config, store.clone()).await;
        Env {
            odoo,
            meta,
            _dir: dir,
            store,
            client,
            stop,
            daemon,
            config_path,
            text,
            gate,
        }
    }

    async fn stop(self) {
        self.stop.cancel();
        self.daemon.await.unwrap().unwrap();
    }

    /// Stops the daemon and starts it again on the same state and config.
    async fn restart(&mut self) {
        self.stop.cancel();
        (&mut self.daemon).await.unwrap().unwrap();
        let config = RawConfig::parse(&self.text).unwrap().validate().unwrap();
        let (stop, daemon, _) = common::spawn_daemon(config, self.store.clone()).await;
        self.stop = stop;
        self.daemon = daemon;
    }

    fn jobs(&self, state: JobState) -> Vec<queue::Job> {
        queue::list(&self.store, Some(state), Some("meta"), 10_000).unwrap()
    }

    fn item(&self, id: i64) -> Option<serde_json::Value> {
        self.meta.sim.item(&sku(id))
    }

    fn all_listed(&self) -> bool {
        (1..=PRODUCTS).all(|i| self.item(i).is_some())
    }

    fn mapped_sent(&self) -> usize {
        marketsync::store::mapping::list(&self.store, Some("meta"), Some("item"), 10_000)
            .unwrap()
            .iter()
            .filter(|m| m.last_sent_at.is_some())
            .count()
    }

    async fn cli(&self, args: &[&str]) -> (Option<i32>, String) {
        let mut cmd = assert_cmd::Command::cargo_bin("marketsync").unwrap();
        cmd.env("NO_COLOR", "1")
            .arg("--config")
            .arg(&self.config_path)
            .args(args);
        let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap();
        (
            out.status.code(),
            format!(
                "{}{}",
                String::from_utf8(out.stdout).unwrap(),
                String::from_utf8(out.stderr).unwrap()
            ),
        )
    }

    /// Nothing waits to be sent or confirmed.
    fn idle(&self) -> bool {
        [JobState::Pending, JobState::Retrying, JobState::Running]
            .into_iter()
            .all(|s| self.jobs(s).is_empty())
    }

    async fn set_price(&self, id: i64, price: f64) {
        self.client
            .write(
                "product.product",
                &[id],
                Value::record([("list_price", Value::Double(price))]),
            )
            .await
            .unwrap();
    }

    async fn listed(&self) {
        wait_until("every item recorded as sent", WAIT, || {
            self.mapped_sent() == PRODUCTS as usize
        })
        .await;
    }

    fn odoo_price(&self, id: i64) -> rust_decimal::Decimal {
        self.odoo.sim.world().get("product.product", id).unwrap()["list_price"]
            .as_decimal()
            .unwrap()
    }
}

#[tokio::test]
async fn a_full_push_lists_every_product_in_one_batch_then_a_price_change_sends_one_item() {
    let env = Env::new("").await;
    wait_until("every product in the catalog", WAIT, || env.all_listed()).await;
    wait_until("every item recorded as sent", WAIT, || {
        env.mapped_sent() == PRODUCTS as usize
    })
    .await;
    let calls = env.meta.sim.batch_calls();
    assert_eq!(calls.len(), 1, "12 products, one items_batch call");
    let body = calls[0].json();
    assert_eq!(body["item_type"], "PRODUCT_ITEM");
    assert_eq!(body["allow_upsert"], true);
    assert_eq!(
        body["requests"].as_array().unwrap().len(),
        PRODUCTS as usize
    );
    assert!(env.meta.sim.status_polls() >= 1, "the batch was polled");
    let item = env.item(1).unwrap();
    let price = marketsync::sync::money::round(env.odoo_price(1), "KWD");
    assert_eq!(
        item["price"],
        format!("{price:.3} KWD"),
        "KWD has three decimals"
    );
    assert_eq!(item["availability"], "in stock");
    assert_eq!(
        item["inventory"],
        env.odoo.sim.world().free_qty(1) as i64,
        "inventory is Odoo's free quantity"
    );
    assert_eq!(item["brand"], "Acme");
    assert_eq!(item["condition"], "new");
    assert_eq!(item["item_group_id"], "odoo-template-1");
    assert_eq!(
        item["image_link"],
        format!("https://shop.example.com/images/{}.jpg", sku(1))
    );
    assert!(item["link"]
        .as_str()
        .unwrap()
        .starts_with("https://shop.example.com/products/"));
    let gtin = item["gtin"].as_str().unwrap();
    assert_eq!(gtin.len(), 13, "the EAN-13 barcode is the GTIN");
    // Product 3 has no sales description: the title stands in (Meta requires one).
    let third = env.item(3).unwrap();
    assert_eq!(third["description"], third["title"]);
    assert!(
        env.jobs(JobState::Dead).is_empty(),
        "{:?}",
        env.jobs(JobState::Dead)
    );

    // One price changes in Odoo: one item goes out, alone.
    env.client
        .write(
            "product.product",
            &[5],
            Value::record([("list_price", Value::Double(77.125))]),
        )
        .await
        .unwrap();
    wait_until("the new price in the catalog", WAIT, || {
        env.item(5).is_some_and(|i| i["price"] == "77.125 KWD")
    })
    .await;
    let calls = env.meta.sim.batch_calls();
    assert_eq!(calls.len(), 2, "one more call");
    let requests = calls[1].json()["requests"].as_array().unwrap().clone();
    assert_eq!(requests.len(), 1, "only what changed: {requests:?}");
    assert_eq!(requests[0]["data"]["id"], sku(5));

    // `check` reads the catalog with the token.
    let (code, out) = env.cli(&["check"]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("Meta catalog \"Supplier catalog\" (880011223344)")
            && out.contains("12 item(s)"),
        "{out}"
    );
    env.stop().await;
}

async fn archived(on_remove: &str) {
    let env = Env::new(&format!("on_remove = \"{on_remove}\"\n")).await;
    wait_until("every item recorded as sent", WAIT, || {
        env.mapped_sent() == PRODUCTS as usize
    })
    .await;
    env.client
        .call_method("product.product", "action_archive", &[4])
        .await
        .unwrap();
    if on_remove == "delete" {
        wait_until("the archived product's item deleted", WAIT, || {
            env.item(4).is_none()
        })
        .await;
        let last = env.meta.sim.batch_calls().pop().unwrap().json();
        assert_eq!(last["requests"][0]["method"], "DELETE");
        assert_eq!(
            last["requests"][0]["data"],
            serde_json::json!({"id": sku(4)})
        );
    } else {
        wait_until("the archived product out of stock", WAIT, || {
            env.item(4)
                .is_some_and(|i| i["availability"] == "out of stock" && i["inventory"] == 0)
        })
        .await;
    }
    assert_eq!(
        env.meta.sim.items().len(),
        PRODUCTS as usize - usize::from(on_remove == "delete")
    );
    env.stop().await;
}

#[tokio::test]
async fn an_archived_product_s_item_is_deleted() {
    archived("delete").await;
}

#[tokio::test]
async fn an_archived_product_s_item_is_kept_out_of_stock_when_asked() {
    archived("out_of_stock").await;
}

#[tokio::test]
async fn variants_of_one_template_share_an_item_group_and_carry_their_attribute_values() {
    let env = Env::prepared(
        "lang = \"ar_001\"\nattribute_fields = { \"Legs\" = \"material\" }\n",
        |odoo, _| {
            let mut w = odoo.sim.world();
            w.set_language_installed("ar_001", true).unwrap();
            // Product 2 becomes product 1's sibling: one template, two colours.
            w.write(
                "product.product",
                &[2],
                &Value::record([("product_tmpl_id", Value::Int(1))]),
            )
            .unwrap();
            let values = |colour: &'static str, ar: &'static str| {
                [
                    ("Color", colour, Some(ar)),
                    ("Size", "M", None),
                    ("Legs", "Steel", Some("صلب")),
                    ("Scent", "Oud", None),
                ]
            };
            w.set_variant_values(1, &values("Red", "أحمر")).unwrap();
            w.set_variant_values(2, &values("Blue", "أزرق")).unwrap();
        },
    )
    .await;
    env.listed().await;
    let (red, blue) = (env.item(1).unwrap(), env.item(2).unwrap());
    assert_eq!(red["item_group_id"], "odoo-template-1");
    assert_eq!(blue["item_group_id"], "odoo-template-1", "one group");
    assert_eq!(
        red["color"], "أحمر",
        "attribute values in the channel's language"
    );
    assert_eq!(blue["color"], "أزرق");
    assert_eq!(red["size"], "M");
    assert_eq!(
        red["material"], "صلب",
        "attribute_fields: Legs fills material"
    );
    assert_eq!(red["additional_variant_attribute"], "Scent:Oud");
    // Product 3 has no variants: no variant fields.
    let plain = env.item(3).unwrap();
    assert!(
        plain.get("color").is_none() && plain.get("additional_variant_attribute").is_none(),
        "{plain}"
    );
    env.stop().await;
}

#[tokio::test]
async fn an_item_meta_refuses_is_dead_with_meta_s_reason_and_its_batch_mates_are_done() {
    let env = Env::prepared("", |_, meta| {
        meta.sim
            .refuse_item(&sku(7), "The item's image is smaller than 500 x 500 pixels");
    })
    .await;
    wait_until("the item dead", WAIT, || {
        !env.jobs(JobState::Dead).is_empty()
    })
    .await;
    wait_until("the others recorded as sent", WAIT, || {
        env.mapped_sent() == PRODUCTS as usize - 1
    })
    .await;
    let dead = env.jobs(JobState::Dead);
    assert_eq!(dead.len(), 1, "{dead:?}");
    let why = dead[0].last_error.clone().unwrap();
    assert!(
        why.contains(&format!("Meta refused item {} (product.product 7)", sku(7)))
            && why.contains("smaller than 500 x 500 pixels"),
        "{why}"
    );
    assert_eq!(
        env.meta.sim.batch_calls().len(),
        1,
        "one batch for all twelve"
    );
    assert!(env.item(7).is_none());
    assert!((1..=PRODUCTS)
        .filter(|i| *i != 7)
        .all(|i| env.item(i).is_some()));
    // The same value is not sent again by the next runs (no retry storm); a new one is.
    let calls = env.meta.sim.batch_calls().len();
    for _ in 0..2 {
        let before = runs(&env.store, "meta.catalog");
        wait_until("the catalog ran", WAIT, || {
            runs(&env.store, "meta.catalog") > before
        })
        .await;
    }
    assert_eq!(env.meta.sim.batch_calls().len(), calls);
    env.stop().await;
}

fn runs(store: &Store, name: &str) -> i64 {
    marketsync::store::streams::get(store, name)
        .unwrap()
        .and_then(|s| s.last_success_at)
        .unwrap_or(0)
}

#[tokio::test]
async fn a_throttled_catalog_waits_out_the_regain_time_without_spending_attempts() {
    // The catalog batch quota is spent: the first call gets 80014, regain in 19 minutes.
    let env = Env::prepared("", |_, meta| meta.sim.set_usage(50, 50, 19)).await;
    wait_until("the items waiting", WAIT, || {
        env.jobs(JobState::Retrying).len() == PRODUCTS as usize
    })
    .await;
    let calls = env.meta.sim.requests.all().len();
    for j in env.jobs(JobState::Retrying) {
        assert_eq!(j.error_class.as_deref(), Some("throttled"), "{j:?}");
        assert_eq!(j.attempts, 0, "no attempt spent: {j:?}");
        let wait = j.next_attempt_at - j.updated_at;
        assert!(
            (19 * 60_000 - 1_000..=19 * 60_000).contains(&wait),
            "waits the 19 minutes Meta named: {wait} ms"
        );
        assert!(
            j.last_error.as_deref().unwrap().contains("code 80014"),
            "{j:?}"
        );
    }
    assert!(common::sync_log(&env.store)
        .iter()
        .any(|r| r.message.contains("meta throttled") && r.message.contains("about 19 min")));
    // A new change meanwhile waits too, and nothing is called while Meta is over its quota.
    env.set_price(3, 12.5).await;
    wait_until("the new change waiting", WAIT, || {
        env.jobs(JobState::Retrying)
            .iter()
            .any(|j| j.payload.text().contains("12.500 KWD"))
    })
    .await;
    assert_eq!(
        env.meta.sim.requests.all().len(),
        calls,
        "no call while paused"
    );
    assert!(env.jobs(JobState::Retrying).iter().all(|j| j.attempts == 0));

    // Nineteen minutes later (moved back on the clock: the wait was recorded, not slept).
    env.meta.sim.regain();
    let past = marketsync::store::now_ms() - 1;
    marketsync::store::facts::set(
        &env.store,
        marketsync::channel::meta::THROTTLED_FACT,
        &serde_json::json!({"until": past, "reason": "over"}).to_string(),
    )
    .unwrap();
    env.store
        .write(|tx| {
            tx.execute(
                "UPDATE jobs SET next_attempt_at = ?1 WHERE state = 'retrying'",
                [past],
            )?;
            Ok(())
        })
        .unwrap();
    env.listed().await;
    assert!(env.item(3).is_some_and(|i| i["price"] == "12.500 KWD"));
    assert!(env.jobs(JobState::Dead).is_empty());
    env.stop().await;
}

#[tokio::test]
async fn an_expired_token_stops_the_channel_with_a_clear_status_until_a_new_one_is_taken() {
    let mut env = Env::new("").await;
    env.listed().await;
    env.meta.sim.expire_token();
    env.set_price(2, 33.0).await;
    wait_until("the channel stopped", WAIT, || {
        marketsync::store::reach::get(&env.store, "meta")
            .unwrap()
            .is_some_and(|u| u.stopped)
    })
    .await;
    wait_until("the item waiting", WAIT, || {
        env.jobs(JobState::Retrying).len() == 1
    })
    .await;
    let j = &env.jobs(JobState::Retrying)[0];
    assert_eq!(
        (j.attempts, j.error_class.as_deref()),
        (0, Some("unreachable"))
    );
    let calls = env.meta.sim.batch_calls().len();
    let (code, out) = env.cli(&["status"]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("meta stopped since")
            && out.contains("code 190")
            && out.contains("give channels.meta a new system-user token"),
        "{out}"
    );
    assert!(!out.contains(TOKEN), "no secret in status: {out}");
    assert!(common::sync_log(&env.store)
        .iter()
        .any(|r| r.message.starts_with("meta stopped: Meta refused")));
    // Another change: still nothing goes out (the probe alone asks).
    env.set_price(6, 44.0).await;
    wait_until("both waiting", WAIT, || {
        env.jobs(JobState::Retrying).len() == 2
    })
    .await;
    assert_eq!(env.meta.sim.batch_calls().len(), calls);

    // A new token in the config, and a restart: the probe takes it and the items go out.
    const NEW: &str = "EAAGsimSystemUserToken02";
    env.meta.sim.renew_token(NEW);
    env.text = env.text.replace(TOKEN, NEW);
    env.restart().await;
    wait_until("the changes in the catalog", WAIT, || {
        env.item(2).is_some_and(|i| i["price"] == "33.000 KWD")
            && env.item(6).is_some_and(|i| i["price"] == "44.000 KWD")
    })
    .await;
    assert!(marketsync::store::reach::get(&env.store, "meta")
        .unwrap()
        .is_none());
    assert!(env.jobs(JobState::Dead).is_empty());
    env.stop().await;
}

#[tokio::test]
async fn too_much_data_halves_the_calls_and_goes_on() {
    let env = Env::prepared("", |_, meta| meta.sim.set_max_requests(5)).await;
    env.listed().await;
    let sizes: Vec<usize> = env
        .meta
        .sim
        .batch_calls()
        .iter()
        .map(|c| c.json()["requests"].as_array().unwrap().len())
        .collect();
    // 12 refused, 6 refused, then calls of 3.
    assert_eq!(sizes, vec![12, 6, 3, 3, 3, 3], "{sizes:?}");
    assert!(env.jobs(JobState::Dead).is_empty());
    assert!(common::sync_log(&env.store)
        .iter()
        .any(|r| r.message.contains("reduce the amount of data")
            && r.message.contains("calls of 3 item(s)")));
    env.stop().await;
}

/// DESIGN's convergence promise through an outage longer than the whole retry policy: Meta
/// refuses connections while prices and stock change; nothing spends an attempt; when it
/// listens again, its probe releases the items and the catalog holds Odoo's values, with
/// nothing dead. Then `diff` reads the catalog back: clean; an edit in Commerce Manager and
/// a deleted item are named, and `--repair` puts both right.
#[tokio::test]
async fn meta_converges_after_an_outage_and_diff_repairs_what_was_changed_behind_its_back() {
    let env = Env::behind_gate().await;
    let gate = env.gate.as_ref().unwrap();
    env.listed().await;
    gate.close().await;
    env.set_price(1, 87.25).await;
    env.odoo.sim.world().set_on_hand(2, 44.0).unwrap();
    wait_until("both waiting for Meta", WAIT, || {
        let waiting = env.jobs(JobState::Retrying);
        waiting.len() == 2
            && waiting
                .iter()
                .all(|j| j.error_class.as_deref() == Some("unreachable"))
    })
    .await;
    wait_until("five failed probes", WAIT, || {
        marketsync::store::reach::get(&env.store, "meta")
            .unwrap()
            .is_some_and(|u| u.probes >= 5)
    })
    .await;
    assert!(env.jobs(JobState::Retrying).iter().all(|j| j.attempts == 0));
    gate.open().await;
    wait_until("the catalog holds Odoo's values", WAIT, || {
        env.item(1).is_some_and(|i| i["price"] == "87.250 KWD")
            && env.item(2).is_some_and(|i| i["inventory"] == 44)
            && env.idle()
    })
    .await;
    assert!(env.jobs(JobState::Dead).is_empty());

    let (code, out) = env.cli(&["diff", "--channel", "meta"]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains(&format!(
            "no difference among {PRODUCTS} Odoo product(s) and {PRODUCTS} meta listing(s)"
        )),
        "{out}"
    );
    env.meta
        .sim
        .edit(&sku(3), "price", serde_json::json!("1.000 KWD"));
    env.meta
        .sim
        .edit(&sku(4), "inventory", serde_json::json!(999));
    env.meta.sim.remove(&sku(5));
    let (code, out) = env.cli(&["diff", "--channel", "meta"]).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("3 difference(s) (1 price, 1 stock, 1 missing on the channel)"),
        "{out}"
    );
    let (code, out) = env.cli(&["diff", "--channel", "meta", "--repair"]).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("queued the fixes of 3 product(s)"), "{out}");
    wait_until("the fixes sent", WAIT, || {
        env.item(5).is_some() && env.idle()
    })
    .await;
    let (code, out) = env.cli(&["diff", "--channel", "meta"]).await;
    assert_eq!(code, Some(0), "clean again: {out}");
    env.stop().await;
}

/// `products`: the catalog shows the Odoo products the filter holds, from the first full push
/// (seen against a real Odoo 17: the full push listed all 29 products of a filter of 7).
#[tokio::test]
async fn the_catalog_shows_only_what_its_products_filter_holds() {
    let env = Env::new("products = [[\"id\", \"<=\", 6]]\n").await;
    wait_until("the six products of the filter sent", WAIT, || {
        env.mapped_sent() == 6 && env.idle()
    })
    .await;
    assert!((1..=6).all(|i| env.item(i).is_some()));
    assert!(
        (7..=PRODUCTS).all(|i| env.item(i).is_none()),
        "{:?}",
        env.meta.sim.items().len()
    );
    let (code, out) = env.cli(&["diff", "--channel", "meta"]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains(&format!(
            "no difference among {PRODUCTS} Odoo product(s) and 6 meta listing(s)"
        )),
        "{out}"
    );
    env.stop().await;
}

/// A batch Meta takes its time over: the catalog polls that run meanwhile (they read the same
/// products again, just written) do not send the items again, nor does the reconcile.
#[tokio::test]
async fn items_in_a_batch_meta_is_still_processing_are_not_sent_twice() {
    let env = Env::prepared("", |_, meta| {
        meta.sim.set_finish_after(Duration::from_secs(4))
    })
    .await;
    env.listed().await;
    assert!(
        env.meta.sim.status_polls() >= 2,
        "polled while it was started"
    );
    let calls = env.meta.sim.batch_calls();
    assert_eq!(
        calls.len(),
        1,
        "one call: {:?}",
        calls
            .iter()
            .map(|c| c.json()["requests"].as_array().unwrap().len())
            .collect::<Vec<_>>()
    );
    assert!(runs(&env.store, "meta.catalog") > 0);
    env.stop().await;
}

/// A pricelist price under the sales price through a rule with dates is a sale: `price` stays
/// the sales price, `sale_price` is the pricelist's, `sale_price_effective_date` its window. A
/// lower price from a rule without dates is just the price.
#[tokio::test]
async fn a_dated_pricelist_rule_under_the_sales_price_is_a_sale_with_its_dates() {
    let env = Env::prepared("pricelist_id = 2\n", |odoo, _| {
        let mut w = odoo.sim.world();
        // In the catalog's currency (KWD is currency 3 of the simulated Odoo).
        let list = Value::record([("name", "Meta".into()), ("currency_id", Value::Int(3))]);
        assert_eq!(w.create("product.pricelist", &list).unwrap(), 2);
        let rule = |product: i64, price: f64, dates: Option<(&str, &str)>| {
            let mut fields = vec![
                ("pricelist_id", Value::Int(2)),
                ("applied_on", Value::from("0_product_variant")),
                ("product_id", Value::Int(product)),
                ("compute_price", Value::from("fixed")),
                ("fixed_price", Value::Double(price)),
            ];
            if let Some((from, until)) = dates {
                fields.push(("date_start", Value::from(from)));
                fields.push(("date_end", Value::from(until)));
            }
            Value::record(fields)
        };
        w.create(
            "product.pricelist.item",
            &rule(1, 1.5, Some(("2026-01-01 00:00:00", "2099-12-31 23:59:59"))),
        )
        .unwrap();
        w.create("product.pricelist.item", &rule(3, 2.25, None))
            .unwrap();
    })
    .await;
    wait_until("every product in the catalog", WAIT, || env.all_listed()).await;
    let regular = marketsync::sync::money::round(env.odoo_price(1), "KWD");
    let sale = env.item(1).unwrap();
    assert_eq!(sale["price"], format!("{regular:.3} KWD"), "{sale}");
    assert_eq!(sale["sale_price"], "1.500 KWD", "{sale}");
    assert_eq!(
        sale["sale_price_effective_date"], "2026-01-01T00:00:00+00:00/2099-12-31T23:59:59+00:00",
        "{sale}"
    );
    let lower = env.item(3).unwrap();
    assert_eq!(lower["price"], "2.250 KWD", "no dates: the price itself");
    assert!(
        lower.get("sale_price").is_none() && lower.get("sale_price_effective_date").is_none(),
        "{lower}"
    );
    let plain = env.item(2).unwrap();
    assert!(plain.get("sale_price").is_none(), "{plain}");
    env.stop().await;
}
