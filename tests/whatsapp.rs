//! WhatsApp notifications end to end: the real daemon with the Medusa channel and the WhatsApp
//! channel, against the Odoo, Medusa and WhatsApp simulators; orders placed in the store,
//! moved on in Odoo, and their customers told.

mod common;

use common::wait_until;
use marketsync::config::{OdooProtocol, RawConfig};
use marketsync::odoo::{Domain, OdooClient, SearchOpts, Value};
use marketsync::sim::medusa::{self, MedusaHandle};
use marketsync::sim::odoo::world::FType;
use marketsync::sim::odoo::SimHandle;
use marketsync::sim::whatsapp::{self, WhatsappHandle};
use marketsync::store::{messages, Store};
use rust_decimal::Decimal;
use std::net::SocketAddr;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const KEY: &str = "sk_test_medusa_wa_51c0";
const HOOK_SECRET: &str = "whsec_test_wa_77de21";
const WA_TOKEN: &str = "EAAGsimWhatsappToken0001";
const APP_SECRET: &str = "app-secret-sim-4f1a9c";
const VERIFY: &str = "verify-me-sim-1e77";
const PHONE_ID: &str = "106540352242922";
const WAIT: Duration = Duration::from_secs(30);

struct Env {
    odoo: SimHandle,
    shop: MedusaHandle,
    wa: WhatsappHandle,
    _dir: tempfile::TempDir,
    store: Store,
    client: OdooClient,
    stop: CancellationToken,
    daemon: tokio::task::JoinHandle<Result<(), marketsync::daemon::DaemonError>>,
    addr: SocketAddr,
    config_path: std::path::PathBuf,
}

const STEPS: &str = "[channels.whatsapp.notify.confirmed]\ntemplate = \"order_confirmed\"\nbody = [\"customer_name\", \"order_reference\", \"total\"]\n\
    [channels.whatsapp.notify.shipped]\ntemplate = \"order_shipped\"\nbody = [\"order_reference\", \"tracking_number\"]\nbutton = [\"tracking_number\"]\n\
    [channels.whatsapp.notify.delivered]\ntemplate = \"order_delivered\"\nbody = [\"order_reference\"]\n\
    [channels.whatsapp.notify.cancelled]\ntemplate = \"order_cancelled\"\nbody = [\"order_reference\"]\n";

impl Env {
    /// `extra`: more `[channels.whatsapp]` keys; the four steps' templates registered in
    /// English unless `templates` says otherwise.
    async fn new(extra: &str, templates: impl FnOnce(&WhatsappHandle)) -> Env {
        let odoo = common::odoo_sim(17, 6).await;
        {
            let mut w = odoo.sim.world();
            w.set_company_currency("KWD").unwrap();
            w.add_custom_field(
                "res.partner",
                "x_whatsapp_opt_in",
                FType::Boolean,
                "WhatsApp opt-in",
            )
            .unwrap();
        }
        let shop = medusa::start(0, marketsync::config::MedusaFlavour::AdminApi, KEY, "kwd")
            .await
            .unwrap();
        let wa = whatsapp::start(0, PHONE_ID, WA_TOKEN).await.unwrap();
        templates(&wa);
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "{}[schedule]\ncatalog_poll = \"1s\"\norders_poll = \"1s\"\nstatus_poll = \"1s\"\nchannel_probe = \"100ms\"\n\
             [retry]\nbase_delay = \"100ms\"\nmax_delay = \"1s\"\n[daemon]\nqueue_poll = \"100ms\"\n\
             [channels.medusa]\nenabled = true\nflavour = \"admin-api\"\nbase_url = \"{}\"\ntoken = \"{KEY}\"\nwebhook_secret = \"{HOOK_SECRET}\"\n\
             currency = \"kwd\"\nlocation_id = \"sloc_01SIMWAREHOUSE\"\npoll_overlap = \"2s\"\n\
             [channels.whatsapp]\nenabled = true\nbase_url = \"{}\"\ntoken = \"{WA_TOKEN}\"\nphone_number_id = \"{PHONE_ID}\"\n\
             app_secret = \"{APP_SECRET}\"\nverify_token = \"{VERIFY}\"\ndefault_country = \"KW\"\nlanguage = \"en\"\n\
             for_channels = [\"medusa\"]\ntimeout = \"1s\"\n{extra}\n{STEPS}",
            common::config_text(&odoo.url(), OdooProtocol::Xmlrpc, dir.path(), ""),
            shop.base_url(),
            wa.base_url(),
        );
        let config_path = dir.path().join("config.toml");
        std::fs::write(&config_path, &text).unwrap();
        let config = RawConfig::parse(&text).unwrap().validate().unwrap();
        let store = Store::open(&config.state.path).unwrap();
        let client = OdooClient::connect(&config.odoo).await.unwrap();
        let (stop, daemon, addr) = common::spawn_daemon(config, store.clone()).await;
        wa.sim
            .set_webhook(&format!("http://{addr}/webhooks/whatsapp"), APP_SECRET);
        Env {
            odoo,
            shop,
            wa,
            _dir: dir,
            store,
            client,
            stop,
            daemon,
            addr,
            config_path,
        }
    }

    /// A Medusa order placed and imported; its customer given `phone`, `lang` and consent.
    async fn order(&self, phone: &str, lang: Option<&str>, agreed: bool) -> (String, i64) {
        // One customer per number (the same email would be the same Odoo partner).
        let email = format!(
            "c{}@example.com",
            phone
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .collect::<String>()
        );
        let id = self
            .shop
            .sim
            .place_order(&email, &[("SKU-00001", 2, Decimal::new(12_900, 3))]);
        let display = self.shop.sim.order(&id).unwrap().json["display_id"]
            .as_i64()
            .unwrap();
        let reference = format!("MEDUSA-{display}");
        let end = tokio::time::Instant::now() + WAIT;
        let order = loop {
            let found = self
                .client
                .search_read(
                    "sale.order",
                    &Domain::all().and("client_order_ref", "=", reference.as_str()),
                    &["partner_id"],
                    SearchOpts::default(),
                )
                .await
                .unwrap();
            if let Some(o) = found.first() {
                break o.clone();
            }
            assert!(
                tokio::time::Instant::now() < end,
                "no Odoo order {reference}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let partner = order.get("partner_id").unwrap().as_id().unwrap();
        let mut vals = vec![
            ("phone", Value::from(phone)),
            ("x_whatsapp_opt_in", Value::Bool(agreed)),
        ];
        if let Some(l) = lang {
            vals.push(("lang", Value::from(l)));
        }
        self.client
            .write("res.partner", &[partner], Value::record(vals))
            .await
            .unwrap();
        (reference, order.get("id").unwrap().as_id().unwrap())
    }

    async fn confirm(&self, order: i64) {
        self.client
            .call_method("sale.order", "action_confirm", &[order])
            .await
            .unwrap();
    }

    async fn ship(&self, order: i64, tracking: &str) {
        common::ship_in_odoo(&self.client, order, tracking).await
    }

    /// The order's messages, oldest first: (step, state, template, reason).
    fn messages(&self, reference: &str) -> Vec<messages::Message> {
        let order = marketsync::store::orders::by_reference(&self.store, reference)
            .unwrap()
            .unwrap();
        let mut m = messages::list(
            &self.store,
            &messages::Filter {
                channel: Some(order.channel),
                external_id: Some(order.external_id),
                ..Default::default()
            },
        )
        .unwrap();
        m.reverse();
        m
    }

    fn state(&self, reference: &str, step: &str) -> Option<String> {
        self.messages(reference)
            .into_iter()
            .find(|m| m.step == step)
            .map(|m| m.state)
    }

    async fn cli(&self, args: &[&str]) -> (Option<i32>, String) {
        common::cli(&self.config_path, args).await
    }

    fn hook_url(&self) -> String {
        format!("http://{}/webhooks/whatsapp", self.addr)
    }

    async fn stop(self) {
        self.stop.cancel();
        self.daemon.await.unwrap().unwrap();
        drop(self.odoo);
    }
}

fn english(wa: &WhatsappHandle) {
    wa.sim.add_template("order_confirmed", &["en"], 3, 0);
    wa.sim.add_template("order_shipped", &["en"], 2, 1);
    wa.sim.add_template("order_delivered", &["en"], 1, 0);
    wa.sim.add_template("order_cancelled", &["en"], 1, 0);
}

#[tokio::test]
async fn a_medusa_order_s_steps_each_send_one_message_in_order() {
    let env = Env::new("", english).await;
    let (a, a_id) = env.order("+965 5512 3456", None, true).await;
    env.confirm(a_id).await;
    wait_until("confirmed delivered", WAIT, || {
        env.state(&a, "confirmed").as_deref() == Some("delivered")
    })
    .await;
    env.ship(a_id, "TRK-77001").await;
    wait_until("shipped and delivered told", WAIT, || {
        env.state(&a, "shipped").as_deref() == Some("delivered")
            && env.state(&a, "delivered").as_deref() == Some("delivered")
    })
    .await;
    let (b, b_id) = env.order("0096555123457", None, true).await;
    env.confirm(b_id).await;
    wait_until("b confirmed", WAIT, || {
        env.state(&b, "confirmed").is_some_and(|s| s != "planned")
    })
    .await;
    env.client
        .call_method("sale.order", "action_cancel", &[b_id])
        .await
        .unwrap();
    wait_until("b cancelled told", WAIT, || {
        env.state(&b, "cancelled").as_deref() == Some("delivered")
    })
    .await;
    let sent = env.wa.sim.sent();
    let to_a: Vec<&str> = sent
        .iter()
        .filter(|s| s.to == "96555123456")
        .map(|s| s.template.as_str())
        .collect();
    assert_eq!(
        to_a,
        ["order_confirmed", "order_shipped", "order_delivered"],
        "once each, in order"
    );
    let to_b: Vec<&str> = sent
        .iter()
        .filter(|s| s.to == "96555123457")
        .map(|s| s.template.as_str())
        .collect();
    assert_eq!(to_b, ["order_confirmed", "order_cancelled"]);
    let confirmed = &sent[0].body["template"]["components"][0]["parameters"];
    assert_eq!(confirmed[2]["currency"]["code"], "KWD");
    assert_eq!(
        confirmed[2]["currency"]["amount_1000"], 25_800,
        "2 × 12.900 KWD"
    );
    let shipped = sent.iter().find(|s| s.template == "order_shipped").unwrap();
    assert_eq!(
        shipped.body["template"]["components"][1]["parameters"][0]["text"], "TRK-77001",
        "the tracking number in the URL button"
    );
    assert!(env.messages(&a).iter().all(|m| m.wamid.is_some()));

    // What the operator sees: the messages, the last one per order, the counts.
    let (code, out) = env.cli(&["messages", "--order", &a]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("order_shipped (en)")
            && out.contains("+965•••3456")
            && !out.contains("55123456"),
        "{out}"
    );
    assert_eq!(out.lines().filter(|l| l.contains(&a)).count(), 3, "{out}");
    let (_, out) = env.cli(&["messages", "--status", "nonsense"]).await;
    assert!(out.is_empty());
    let (_, list) = env.cli(&["order", "list"]).await;
    let row = list.lines().find(|l| l.contains(&a)).unwrap();
    assert!(row.contains("delivered delivered"), "{list}");
    let metrics = common::metrics(&env.store).await;
    assert!(
        metrics.contains("marketsync_messages{step=\"confirmed\",state=\"delivered\"} 2"),
        "{metrics}"
    );
    env.stop().await;
}

#[tokio::test]
async fn a_customer_without_consent_gets_nothing_and_a_bad_number_is_the_reason() {
    let env = Env::new("", english).await;
    let (a, a_id) = env.order("+965 5512 3456", None, false).await;
    let (b, b_id) = env.order("call me", None, true).await;
    env.confirm(a_id).await;
    env.confirm(b_id).await;
    wait_until("both settled", WAIT, || {
        env.state(&a, "confirmed").as_deref() == Some("skipped")
            && env.state(&b, "confirmed").as_deref() == Some("skipped")
    })
    .await;
    let reason = |r: &str| env.messages(r)[0].reason.clone().unwrap();
    assert!(reason(&a).contains("has not agreed"), "{}", reason(&a));
    assert!(reason(&b).contains("not a phone number"), "{}", reason(&b));
    let (_, list) = env.cli(&["order", "list"]).await;
    let row = list.lines().find(|l| l.contains(&b)).unwrap();
    assert!(
        row.contains("confirmed skipped: the customer's number"),
        "the reason on the order: {list}"
    );
    assert!(env.wa.sim.sent().is_empty(), "nothing sent");
    env.stop().await;
}

#[tokio::test]
async fn a_missing_template_falls_back_to_the_fallback_language_then_the_fallback_template() {
    let env = Env::new(
        "fallback_language = \"en\"\nfallback_template = \"order_update\"\n",
        |wa| {
            // Confirmed exists in English only; shipped and delivered not at all.
            wa.sim.add_template("order_confirmed", &["en"], 3, 0);
            wa.sim.add_template("order_update", &["en", "ar"], 2, 1);
        },
    )
    .await;
    let (a, a_id) = env.order("+96555123456", Some("ar_001"), true).await;
    env.confirm(a_id).await;
    env.ship(a_id, "TRK-1").await;
    wait_until("all three settled", WAIT, || {
        let m = env.messages(&a);
        m.len() == 3
            && m.iter()
                .all(|m| !["planned", "sending"].contains(&m.state.as_str()))
    })
    .await;
    let m = env.messages(&a);
    let by = |step: &str| m.iter().find(|x| x.step == step).unwrap().clone();
    let confirmed = by("confirmed");
    assert_eq!(
        (confirmed.template.as_deref(), confirmed.language.as_deref()),
        (Some("order_confirmed"), Some("en")),
        "the customer's Arabic is missing: the fallback language"
    );
    let shipped = by("shipped");
    assert_eq!(
        (shipped.template.as_deref(), shipped.language.as_deref()),
        (Some("order_update"), Some("en")),
        "no order_shipped at all: the fallback template"
    );
    let delivered = by("delivered");
    assert_eq!(
        delivered.state, "dead",
        "order_update takes 2 body parameters, delivered gives 1"
    );
    assert!(delivered.reason.unwrap().contains("132000"));
    let tried: Vec<(String, String)> = env
        .wa
        .sim
        .message_posts()
        .iter()
        .map(|v| {
            (
                v["template"]["name"].as_str().unwrap().to_string(),
                v["template"]["language"]["code"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
        })
        .take(2)
        .collect();
    assert_eq!(
        tried,
        [
            ("order_confirmed".to_string(), "ar".to_string()),
            ("order_confirmed".into(), "en".into())
        ],
        "the customer's language first"
    );
    env.stop().await;
}

#[tokio::test]
async fn a_number_not_on_whatsapp_is_not_tried_for_later_steps() {
    let env = Env::new("", english).await;
    env.wa.sim.undeliverable("96555123456");
    let (a, a_id) = env.order("+965 5512 3456", None, true).await;
    env.confirm(a_id).await;
    wait_until("confirmed dead", WAIT, || {
        env.state(&a, "confirmed").as_deref() == Some("dead")
    })
    .await;
    let posts = || env.wa.sim.message_posts().len();
    assert_eq!(posts(), 1);
    env.ship(a_id, "TRK-2").await;
    wait_until("later steps skipped", WAIT, || {
        env.state(&a, "shipped").as_deref() == Some("skipped")
            && env.state(&a, "delivered").as_deref() == Some("skipped")
    })
    .await;
    assert_eq!(posts(), 1, "the number is not tried again");
    assert!(env.messages(&a)[1]
        .reason
        .as_deref()
        .unwrap()
        .contains("not on WhatsApp"));
    env.stop().await;
}

#[tokio::test]
async fn a_lost_answer_then_a_delivered_webhook_sends_nothing_again() {
    let env = Env::new("", english).await;
    env.wa.sim.hold_webhooks(true);
    env.wa.sim.lose_next_answer(Duration::from_secs(3));
    let (a, a_id) = env.order("+96555123456", None, true).await;
    env.confirm(a_id).await;
    wait_until("unconfirmed", WAIT, || {
        env.state(&a, "confirmed").as_deref() == Some("unconfirmed")
    })
    .await;
    assert_eq!(
        env.wa.sim.sent().len(),
        1,
        "WhatsApp took it, the answer was lost"
    );
    // The status webhooks of that message arrive: it is found by the id it was sent with.
    for body in env.wa.sim.held() {
        let (status, reply) = whatsapp::send_webhook(&env.hook_url(), APP_SECRET, &body).await;
        assert_eq!(status, 200, "{reply}");
    }
    wait_until("delivered", WAIT, || {
        env.state(&a, "confirmed").as_deref() == Some("delivered")
    })
    .await;
    let m = &env.messages(&a)[0];
    assert_eq!(
        m.wamid.as_deref(),
        Some(env.wa.sim.sent()[0].wamid.as_str())
    );
    // Two more status polls (the confirm stream) and the notify job again: nothing resent.
    common::two_more_runs(&env.store, "whatsapp.confirm").await;
    marketsync::store::queue::enqueue_many(
        &env.store,
        &[marketsync::channel::whatsapp::notify_job(
            &m.channel,
            &m.external_id,
        )],
    )
    .unwrap();
    common::two_more_runs(&env.store, "whatsapp.confirm").await;
    assert_eq!(env.wa.sim.sent().len(), 1, "sent once");
    env.stop().await;
}

#[tokio::test]
async fn hostile_webhooks_store_nothing() {
    let env = Env::new("", english).await;
    let http = reqwest::Client::new();
    // The subscription handshake: our verify token only.
    let hs = |token: &str| {
        http.get(env.hook_url())
            .query(&[
                ("hub.mode", "subscribe"),
                ("hub.verify_token", token),
                ("hub.challenge", "8841"),
            ])
            .send()
    };
    let ok = hs(VERIFY).await.unwrap();
    assert_eq!(ok.status().as_u16(), 200);
    assert_eq!(ok.text().await.unwrap(), "8841");
    assert_eq!(hs("guess").await.unwrap().status().as_u16(), 403);
    let sent = whatsapp::Sent {
        wamid: "wamid.FORGED".into(),
        to: "96555123456".into(),
        template: "x".into(),
        language: "en".into(),
        body: serde_json::Value::Null,
    };
    let body = whatsapp::status_body(PHONE_ID, &sent, "delivered", Some("ms:1"), None);
    // Signed with another secret; unsigned; signed but malformed; signed but not WhatsApp's.
    let (s, _) = whatsapp::send_webhook(&env.hook_url(), "not-the-app-secret", &body).await;
    assert_eq!(s, 401);
    let unsigned = http
        .post(env.hook_url())
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status().as_u16(), 401);
    let raw = "{\"object\": \"whatsapp_business_account\", \"entry\": [";
    let sig = marketsync::webhook::signature::sign_hub(APP_SECRET.as_bytes(), raw.as_bytes());
    let malformed = http
        .post(env.hook_url())
        .header("x-hub-signature-256", sig)
        .body(raw)
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status().as_u16(), 400);
    let (s, _) = whatsapp::send_webhook(
        &env.hook_url(),
        APP_SECRET,
        &serde_json::json!({"object": "page", "entry": []}),
    )
    .await;
    assert_eq!(s, 400);
    let stored = marketsync::store::inbox::list(&env.store, None, 100)
        .unwrap()
        .into_iter()
        .filter(|e| e.source == "whatsapp")
        .count();
    assert_eq!(stored, 0, "nothing stored");
    env.stop().await;
}

#[tokio::test]
async fn a_rate_limit_waits_without_spending_an_attempt() {
    let env = Env::new("rate_limit_wait = \"300ms\"\n", english).await;
    env.wa.sim.fail_next(130429);
    let (a, a_id) = env.order("+96555123456", None, true).await;
    env.confirm(a_id).await;
    wait_until("delivered", WAIT, || {
        env.state(&a, "confirmed").as_deref() == Some("delivered")
    })
    .await;
    let posts = env.wa.sim.message_posts().len();
    assert_eq!(
        (posts, env.wa.sim.sent().len()),
        (2, 1),
        "refused once, then sent once"
    );
    let jobs = marketsync::store::queue::list(&env.store, None, Some("whatsapp"), 50).unwrap();
    let notify: Vec<_> = jobs.iter().filter(|j| j.kind == "notify").collect();
    assert!(
        !notify.is_empty() && notify.iter().all(|j| j.attempts == 0),
        "no attempt spent: {notify:?}"
    );
    env.stop().await;
}

#[tokio::test]
async fn a_refused_token_stops_the_channel_with_a_clear_status_and_loses_nothing() {
    let env = Env::new("", english).await;
    env.wa.sim.expire_token();
    let (a, a_id) = env.order("+96555123456", None, true).await;
    env.confirm(a_id).await;
    wait_until("stopped", WAIT, || {
        marketsync::store::reach::get(&env.store, "whatsapp")
            .unwrap()
            .is_some_and(|u| u.stopped)
    })
    .await;
    assert_eq!(
        env.state(&a, "confirmed").as_deref(),
        Some("planned"),
        "kept to send"
    );
    let (_, out) = env.cli(&["status"]).await;
    assert!(
        out.contains("whatsapp stopped since")
            && out.contains("code 190")
            && !out.contains(WA_TOKEN),
        "{out}"
    );
    // A good token again: the probe takes it, the message goes.
    env.wa.sim.renew_token();
    wait_until("sent after all", WAIT, || {
        env.state(&a, "confirmed").as_deref() == Some("delivered")
    })
    .await;
    assert_eq!(env.wa.sim.sent().len(), 1);
    env.stop().await;
}

/// WhatsApp usually says a number is not on WhatsApp afterwards, by a failed status: the
/// message is failed with WhatsApp's reason, and the number is not tried for later steps. A
/// read status after delivered moves the message on, never back.
#[tokio::test]
async fn a_failed_status_webhook_marks_the_message_and_its_number() {
    let env = Env::new("", english).await;
    env.wa.sim.set_statuses(&["sent", "delivered", "read"]);
    env.wa
        .sim
        .fail_later("96555123457", 131026, "Message undeliverable");
    let (a, a_id) = env.order("+96555123456", None, true).await;
    let (b, b_id) = env.order("+96555123457", None, true).await;
    env.confirm(a_id).await;
    env.confirm(b_id).await;
    wait_until("a read, b failed", WAIT, || {
        env.state(&a, "confirmed").as_deref() == Some("read")
            && env.state(&b, "confirmed").as_deref() == Some("failed")
    })
    .await;
    let failed = &env.messages(&b)[0];
    assert!(
        failed.reason.as_deref().unwrap().contains("131026"),
        "{failed:?}"
    );
    env.ship(b_id, "TRK-9").await;
    wait_until("b's later steps skipped", WAIT, || {
        env.state(&b, "shipped").as_deref() == Some("skipped")
    })
    .await;
    assert_eq!(
        env.wa
            .sim
            .sent()
            .iter()
            .filter(|s| s.to == "96555123457")
            .count(),
        1,
        "the number is not tried again"
    );
    env.stop().await;
}
