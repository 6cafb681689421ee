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
        let odoo = common::odoo_sim(17, PRODUCTS as usize).await;
        odoo.sim.world().set_company_currency("KWD").unwrap();
        let meta = meta::start(0, CATALOG, TOKEN, "KWD").await.unwrap();
        meta.sim.set_finish_after(Duration::from_millis(200));
        prepare(&odoo, &meta);
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "{}[schedule]\ncatalog_poll = \"1s\"\nstatus_poll = \"1s\"\nchannel_probe = \"100ms\"\n\
             [retry]\nbase_delay = \"100ms\"\nmax_delay = \"1s\"\n[daemon]\nqueue_poll = \"100ms\"\n\
             [channels.meta]\nenabled = true\nbase_url = \"{}\"\ntoken = \"{TOKEN}\"\ncatalog_id = \"{CATALOG}\"\n\
             currency = \"KWD\"\nbrand = \"Acme\"\nlink = \"https://shop.example.com/products/{{slug}}\"\n\
             image_link = \"https://shop.example.com/images/{{default_code}}.jpg\"\npoll_overlap = \"2s\"\n{extra}",
            common::config_text(&odoo.url(), OdooProtocol::Xmlrpc, dir.path(), ""),
            meta.base_url(),
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
