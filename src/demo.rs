//! `marketsync demo`: starts the simulated Odoo and the simulated Cartona on free loopback
//! ports, maps the catalog, runs the real daemon against them with a temporary state, and shows
//! what happens as it happens: products pushed, orders trickling in and imported, a simulated
//! clerk confirming and delivering them in Odoo, statuses sent back, injected faults retried.
//! After `--seconds` (or Ctrl-C) it prints a summary.

use crate::config::{ChannelKind, RawConfig};
use crate::daemon::Daemon;
use crate::odoo::{Domain, OdooClient, SearchOpts, Value};
use crate::sim::cartona;
use crate::sim::faults::Fault;
use crate::sim::medusa;
use crate::sim::meta;
use crate::sim::odoo::{self as sim_odoo, SimOptions};
use crate::sim::sha6er;
use crate::sim::whatsapp;
use crate::store::synclog::{self, Query};
use crate::store::{mapping, orders, queue, Store};
use serde::Serialize;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// How long to run before printing the summary.
    #[arg(long, default_value_t = 20)]
    pub seconds: u64,
    /// Print the summary as JSON (and nothing else on stdout).
    #[arg(long)]
    pub json: bool,
    /// Products in the simulated catalog.
    #[arg(long, default_value_t = 300)]
    pub products: usize,
}

/// What the demo did: the Odoo side and the whole daemon, then each channel under its name.
#[derive(Debug, Serialize)]
pub struct Summary {
    pub seconds: u64,
    pub odoo_version: String,
    pub products_in_odoo: usize,
    pub odoo_calls: u64,
    pub faults_injected: usize,
    pub sync_log_entries: usize,
    pub channels: std::collections::BTreeMap<&'static str, ChannelFigures>,
    /// The customers' WhatsApp messages by state (sent, delivered, skipped...).
    pub whatsapp_messages: std::collections::BTreeMap<String, i64>,
    /// The Sha6er shipments by state (delivered, in_transit, failed...).
    pub shipments: std::collections::BTreeMap<String, i64>,
}

/// One channel's figures in the demo, the same for every channel.
#[derive(Debug, Serialize)]
pub struct ChannelFigures {
    pub products_mapped: u64,
    pub products_pushed: u64,
    pub orders_placed: u64,
    pub orders_imported: u64,
    /// Orders whose webhook the simulated store "lost" (the pull finds them); none for a
    /// channel without webhooks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhooks_lost: Option<u64>,
    pub statuses_sent: u64,
    pub retries: u64,
    pub dead_jobs: u64,
    /// Requests the channel's simulated API received.
    pub requests: u64,
}

// Credentials unlike any word, as real ones are, so scrubbing them hides nothing else.
const DEMO_KEY: &str = "demo-4c1f9e2b7a";
const DEMO_SHA6ER_KEY: &str = "demo-sha6er-2f8a40";
const DEMO_SHA6ER_SECRET: &str = "demo-sha6er-whsec-91c3";
const DEMO_TOKEN: &str = "demo-cartona-8d3e61";
const DEMO_MEDUSA_KEY: &str = "sk_demo_5b0f2c99";
const DEMO_HOOK_SECRET: &str = "whsec_demo_a41e7d";
const DEMO_META_TOKEN: &str = "EAAGdemo7e55c0a1";
const DEMO_CATALOG: &str = "880011223344";
const DEMO_WA_TOKEN: &str = "EAAGdemoWhatsapp9b21";
const DEMO_WA_SECRET: &str = "demo-app-secret-3c8e0f";
const DEMO_WA_PHONE_ID: &str = "106540352242922";
/// The templates of `config.example.toml`'s four steps.
const DEMO_WA_STEPS: &str = "[channels.whatsapp.notify.confirmed]\ntemplate = \"order_confirmed\"\nbody = [\"customer_name\", \"order_reference\", \"total\"]\n\
    [channels.whatsapp.notify.shipped]\ntemplate = \"order_shipped\"\nbody = [\"customer_name\", \"order_reference\", \"tracking_number\"]\nbutton = [\"tracking_number\"]\n\
    [channels.whatsapp.notify.delivered]\ntemplate = \"order_delivered\"\nbody = [\"customer_name\", \"order_reference\"]\n\
    [channels.whatsapp.notify.cancelled]\ntemplate = \"order_cancelled\"\nbody = [\"customer_name\", \"order_reference\"]\n";

pub async fn run(args: DemoArgs) -> anyhow::Result<i32> {
    let say = |line: &str| {
        if !args.json {
            println!("{line}");
        }
    };
    let odoo = sim_odoo::start(SimOptions {
        products: args.products,
        api_key: DEMO_KEY.into(),
        ..SimOptions::default()
    })
    .await?;
    let market = cartona::start(0, DEMO_TOKEN).await?;
    // Cartona lists the supplier's products with the Odoo id as internal_product_id, as
    // Cartona's own connector sets them up.
    for id in 1..=args.products {
        market.sim.add_product(
            &(100_000 + id).to_string(),
            Some(&id.to_string()),
            None,
            &format!("Product {id}"),
        );
    }
    say(&format!(
        "▶ simulated Odoo 17.0 on {} with {} products",
        odoo.url(),
        args.products
    ));
    say(&format!("▶ simulated Cartona on {}", market.base_url()));
    let shop = medusa::start(
        0,
        crate::config::MedusaFlavour::Marqasouq,
        DEMO_MEDUSA_KEY,
        "egp",
    )
    .await?;
    say(&format!(
        "▶ simulated Medusa store (MarqaSouq routes, EGP) on {}",
        shop.base_url()
    ));

    let catalog = meta::start(0, DEMO_CATALOG, DEMO_META_TOKEN, "EGP").await?;
    // Meta refuses one item, as it refuses an image it finds too small: its job is dead with
    // Meta's reason, the rest of its batch is listed.
    catalog.sim.refuse_item(
        "SKU-00007",
        "The image at image_link is smaller than 500 x 500 pixels",
    );
    say(&format!(
        "▶ simulated Meta catalog {DEMO_CATALOG} (EGP) on {}; it will refuse SKU-00007's image",
        catalog.base_url()
    ));

    // The supplier added the consent field to its partners; the clerk ticks it for customers
    // who agreed at checkout (three in four).
    odoo.sim
        .world()
        .add_custom_field(
            "res.partner",
            "x_whatsapp_opt_in",
            sim_odoo::world::FType::Boolean,
            "WhatsApp opt-in",
        )
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let wa = whatsapp::start(0, DEMO_WA_PHONE_ID, DEMO_WA_TOKEN).await?;
    whatsapp::add_example_templates(&wa.sim);
    say(&format!(
        "▶ simulated WhatsApp Cloud API on {}: Medusa customers who agreed are told each step",
        wa.base_url()
    ));

    // Sha6er delivers the Medusa orders and the Cartona orders the supplier delivers itself;
    // its couriers move every 700 ms, every 4th shipment fails once before it is delivered,
    // every 9th fails and comes back, every 3rd of several packages is delivered in part (the
    // rest in Odoo's backorder).
    let couriers = sha6er::start(0, DEMO_SHA6ER_KEY).await?;
    let courier_stop = CancellationToken::new();
    couriers.sim.set_outcomes(4, 3);
    couriers.sim.set_returns(9);
    // Cartona's retailers give the courier the OTP Cartona sent them.
    couriers.sim.set_otp("4321");
    sha6er::run_clock(
        couriers.sim.clone(),
        Duration::from_millis(700),
        courier_stop.clone(),
    );
    say(&format!(
        "▶ simulated Sha6er on {}: couriers deliver the Medusa orders and Cartona's supplier-delivered ones",
        couriers.base_url()
    ));

    let dir = tempfile::tempdir()?;
    let config_text = format!(
        "[odoo]\nurl = \"{}\"\ndatabase = \"odoo\"\nusername = \"admin\"\napi_key = \"{DEMO_KEY}\"\ntimeout = \"5s\"\npage_size = 200\n\
         [state]\npath = \"{}\"\n[webhooks]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n\
         [schedule]\ncatalog_poll = \"1s\"\norders_poll = \"1s\"\nstatus_poll = \"1s\"\nodoo_health = \"5s\"\nchannel_probe = \"1s\"\n\
         [retry]\nbase_delay = \"200ms\"\nmax_delay = \"2s\"\n[daemon]\nqueue_poll = \"100ms\"\n\
         [channels.cartona]\nenabled = true\nbase_url = \"{}\"\ntoken = \"{DEMO_TOKEN}\"\nbatch_size = 100\npoll_overlap = \"2s\"\n\
         [channels.medusa]\nenabled = true\nflavour = \"marqasouq\"\nbase_url = \"{}\"\ntoken = \"{DEMO_MEDUSA_KEY}\"\nwebhook_secret = \"{DEMO_HOOK_SECRET}\"\ncurrency = \"egp\"\npoll_overlap = \"2s\"\n\
         [channels.meta]\nenabled = true\nbase_url = \"{}\"\ntoken = \"{DEMO_META_TOKEN}\"\ncatalog_id = \"{DEMO_CATALOG}\"\ncurrency = \"EGP\"\nbrand = \"Demo Supplier\"\n\
         link = \"https://shop.example.com/products/{{slug}}\"\nimage_link = \"https://shop.example.com/images/{{default_code}}.jpg\"\npoll_overlap = \"2s\"\n\
         [channels.whatsapp]\nenabled = true\nbase_url = \"{}\"\ntoken = \"{DEMO_WA_TOKEN}\"\nphone_number_id = \"{DEMO_WA_PHONE_ID}\"\n\
         app_secret = \"{DEMO_WA_SECRET}\"\nverify_token = \"demo-verify-5e1d\"\ndefault_country = \"EG\"\nlanguage = \"ar\"\nfallback_language = \"en\"\n\
         for_channels = [\"medusa\"]\n{DEMO_WA_STEPS}\
         [channels.sha6er]\nenabled = true\nbase_url = \"{}\"\ntoken = \"{DEMO_SHA6ER_KEY}\"\nwebhook_secret = \"{DEMO_SHA6ER_SECRET}\"\n\
         warehouse = \"WH\"\ncod_for = [\"cartona\", \"medusa\"]\nstale_after = \"10s\"\n",
        odoo.url(),
        dir.path().join("state.db").display(),
        market.base_url(),
        shop.base_url(),
        catalog.base_url(),
        wa.base_url(),
        couriers.base_url(),
    );
    let config = RawConfig::parse(&config_text)?.validate()?;
    let store = Store::open(&config.state.path)?;

    let client = OdooClient::connect(&config.odoo).await?;
    let (name, login) = client.whoami().await?;
    say(&format!(
        "▶ logged in to Odoo {} as {name} ({login}) over XML-RPC",
        client.version().version
    ));
    let ch = config
        .channel(ChannelKind::Cartona)
        .expect("configured above");
    let api = crate::channel::cartona::client(ch).map_err(|e| anyhow::anyhow!(e))?;
    let report = crate::channel::cartona::matching::import(
        &api,
        &client,
        &store,
        ch.cartona().expect("cartona settings").match_key,
        false,
    )
    .await
    .map_err(|e| anyhow::anyhow!(e))?;
    say(&format!(
        "▶ map import: {} Cartona products matched to Odoo by internal_product_id",
        report.matched.len()
    ));

    let token = CancellationToken::new();
    let mut daemon = Daemon::new(config.clone(), store.clone());
    let (bound_tx, bound_rx) = tokio::sync::oneshot::channel();
    daemon.bound = Some(bound_tx);
    let daemon_task = tokio::spawn(daemon.run(token.clone()));
    let bound = bound_rx.await?;
    let hook_url = format!("http://{bound}/webhooks/medusa");
    wa.sim
        .set_webhook(&format!("http://{bound}/webhooks/whatsapp"), DEMO_WA_SECRET);
    couriers.sim.set_webhook(
        &format!("http://{bound}/webhooks/sha6er"),
        DEMO_SHA6ER_SECRET,
    );
    let ctrl_c = token.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            ctrl_c.cancel();
        }
    });
    say("▶ daemon started (Ctrl-C to stop early); a new Cartona order every second; a clerk confirms and delivers in Odoo, and invoices and records payment of Medusa orders");
    tokio::spawn(cartona::trickle(
        market.sim.clone(),
        Duration::from_secs(1),
        Some(token.clone()),
    ));
    tokio::spawn(clerk(
        client.clone(),
        odoo.sim.clone(),
        market.sim.clone(),
        token.clone(),
    ));
    let lost = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    tokio::spawn(storefront(
        shop.sim.clone(),
        hook_url,
        lost.clone(),
        token.clone(),
    ));
    say("▶ a Medusa customer orders every 2 s; the store signs a webhook for each (every third is lost: the pull finds it)");

    let started = tokio::time::Instant::now();
    let end = started + Duration::from_secs(args.seconds);
    let mut faults_injected = 0;
    let mut next_fault = started + Duration::from_secs(3);
    // A fault for the next request, or (a duration) an outage: every request refused that long.
    let plan = [
        (
            "Cartona answers 500",
            Fault::Status {
                status: 500,
                body: "Internal Server Error".into(),
                retry_after: None,
            },
            None,
        ),
        (
            "Cartona's proxy answers 502 for 3 s: an outage, waited out without spending attempts",
            Fault::BadGateway,
            Some(Duration::from_secs(3)),
        ),
        (
            "Cartona rate-limits with 429, Retry-After 1",
            Fault::Status {
                status: 429,
                body: "Too Many Requests".into(),
                retry_after: Some(1),
            },
            None,
        ),
        ("Cartona drops a connection", Fault::Drop, None),
    ];
    let mut last_log = 0;
    while tokio::time::Instant::now() < end && !token.is_cancelled() {
        if tokio::time::Instant::now() >= next_fault && faults_injected < plan.len() {
            let (what, fault, outage) = plan[faults_injected].clone();
            say(&format!("▶ injecting a fault: {what}"));
            match outage {
                Some(period) => market.sim.faults.down_for(period, fault),
                None => market.sim.faults.push([fault]),
            }
            faults_injected += 1;
            next_fault += Duration::from_secs(4);
        }
        for r in synclog::query(
            &store,
            &Query {
                after_id: Some(last_log),
                limit: 200,
                ..Default::default()
            },
        )? {
            last_log = r.id;
            say(&format!(
                "  [{}] {} {}: {}",
                r.level,
                r.channel.as_deref().unwrap_or("-"),
                r.operation,
                r.message
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    token.cancel();
    courier_stop.cancel();
    daemon_task.await??;
    for r in synclog::query(
        &store,
        &Query {
            after_id: Some(last_log),
            limit: 10_000,
            ..Default::default()
        },
    )? {
        say(&format!(
            "  [{}] {} {}: {}",
            r.level,
            r.channel.as_deref().unwrap_or("-"),
            r.operation,
            r.message
        ));
    }

    let all = synclog::query(
        &store,
        &Query {
            limit: 1_000_000,
            ..Default::default()
        },
    )?;
    let counts = queue::counts(&store)?;
    let figures = |channel: &'static str,
                   kind: &str,
                   orders_placed: usize,
                   webhooks_lost: Option<usize>,
                   requests: usize|
     -> anyhow::Result<ChannelFigures> {
        let products = mapping::list(&store, Some(channel), Some(kind), usize::MAX >> 1)?;
        let logged = || all.iter().filter(|r| r.channel.as_deref() == Some(channel));
        Ok(ChannelFigures {
            products_mapped: products.len() as u64,
            products_pushed: products.iter().filter(|m| m.last_sent_at.is_some()).count() as u64,
            orders_placed: orders_placed as u64,
            orders_imported: orders::list(&store, Some(channel), usize::MAX >> 1)?
                .iter()
                .filter(|o| o.odoo_id.is_some())
                .count() as u64,
            webhooks_lost: webhooks_lost.map(|n| n as u64),
            statuses_sent: logged().filter(|r| r.operation == "status.send").count() as u64,
            retries: logged()
                .filter(|r| r.level == "warn" && r.message.contains("retrying in"))
                .map(|r| r.record_count.unwrap_or(1) as u64)
                .sum(),
            dead_jobs: counts
                .iter()
                .filter(|(c, s, _)| c == channel && *s == queue::JobState::Dead)
                .map(|(_, _, n)| *n as u64)
                .sum(),
            requests: requests as u64,
        })
    };
    let mut channels = std::collections::BTreeMap::new();
    channels.insert(
        "cartona",
        figures(
            "cartona",
            "product",
            market.sim.orders().len(),
            None,
            market.sim.requests.all().len(),
        )?,
    );
    channels.insert(
        "medusa",
        figures(
            "medusa",
            "product",
            shop.sim.orders().len(),
            Some(lost.load(std::sync::atomic::Ordering::Relaxed)),
            shop.sim.requests.all().len(),
        )?,
    );
    channels.insert(
        "meta",
        figures("meta", "item", 0, None, catalog.sim.requests.all().len())?,
    );
    let summary = Summary {
        seconds: started.elapsed().as_secs(),
        odoo_version: client.version().version.clone(),
        products_in_odoo: args.products,
        odoo_calls: odoo.sim.call_count(),
        faults_injected,
        sync_log_entries: all.len(),
        channels,
        shipments: crate::store::shipments::counts(&store)?
            .into_iter()
            .collect(),
        whatsapp_messages: crate::store::messages::counts(&store)?.into_iter().fold(
            std::collections::BTreeMap::new(),
            |mut m, (_, state, n)| {
                *m.entry(state).or_insert(0) += n;
                m
            },
        ),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!();
        println!(
            "summary after {} s: {} products in Odoo, {} Odoo calls, {} faults injected, {} sync log entries",
            summary.seconds,
            summary.products_in_odoo,
            summary.odoo_calls,
            summary.faults_injected,
            summary.sync_log_entries
        );
        for (name, c) in &summary.channels {
            println!(
                "  {name}: {} products mapped, {} pushed; {} orders placed, {} imported into Odoo{}; {} statuses sent; {} retries, {} dead jobs; {} requests",
                c.products_mapped,
                c.products_pushed,
                c.orders_placed,
                c.orders_imported,
                c.webhooks_lost
                    .map(|n| format!(" ({n} of their webhooks lost and found by the pull)"))
                    .unwrap_or_default(),
                c.statuses_sent,
                c.retries,
                c.dead_jobs,
                c.requests
            );
        }
        println!(
            "  whatsapp: {} messages to Medusa customers ({}); {} requests",
            summary.whatsapp_messages.values().sum::<i64>(),
            summary
                .whatsapp_messages
                .iter()
                .map(|(state, n)| format!("{n} {state}"))
                .collect::<Vec<_>>()
                .join(", "),
            wa.sim.requests.all().len()
        );
        println!(
            "  sha6er: {} shipments ({}); {} requests",
            summary.shipments.values().sum::<i64>(),
            summary
                .shipments
                .iter()
                .map(|(state, n)| format!("{n} {state}"))
                .collect::<Vec<_>>()
                .join(", "),
            couriers.sim.requests.all().len()
        );
    }
    Ok(0)
}

/// A Medusa order's customer agreed at checkout to be told on WhatsApp (three in four), with
/// an Egyptian mobile number.
async fn consent(odoo: &OdooClient, order: i64) {
    let Ok(rows) = odoo
        .read("sale.order", &[order], &["partner_id", "client_order_ref"])
        .await
    else {
        return;
    };
    let Some(row) = rows.first() else { return };
    let medusa = row
        .get("client_order_ref")
        .and_then(Value::as_opt_str)
        .is_some_and(|r| r.starts_with("MEDUSA-"));
    let Some(partner) = row.get("partner_id").and_then(Value::as_id) else {
        return;
    };
    if !medusa {
        return;
    }
    let _ = odoo
        .write(
            "res.partner",
            &[partner],
            Value::record([
                (
                    "phone",
                    Value::from(format!(
                        "010 {:04} {:04}",
                        1000 + partner % 9000,
                        5000 + order % 5000
                    )),
                ),
                ("x_whatsapp_opt_in", Value::Bool(partner % 4 != 0)),
            ]),
        )
        .await;
}

/// A Medusa storefront, simulated: a customer orders every 2 s and the store's subscriber sends
/// the signed `order.created` webhook, except every third one, which is "lost".
async fn storefront(
    shop: std::sync::Arc<medusa::SimMedusa>,
    hook_url: String,
    lost: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    stop: CancellationToken,
) {
    let mut n = 0usize;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
        n += 1;
        let skus: Vec<String> = (0..1 + n % 3)
            .map(|i| format!("SKU-{:05}", 1 + (n * 11 + i * 7) % 50))
            .collect();
        let items: Vec<(&str, i64, rust_decimal::Decimal)> = skus
            .iter()
            .map(|s| {
                (
                    s.as_str(),
                    1 + (n % 2) as i64,
                    rust_decimal::Decimal::new(4_999, 2),
                )
            })
            .collect();
        let id = shop.place_order(&format!("customer{n}@example.com"), &items);
        if n % 3 == 0 {
            lost.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            continue;
        }
        let body = shop.webhook_body("order.created", &id);
        medusa::send_webhook(
            &hook_url,
            DEMO_HOOK_SECRET,
            body,
            chrono::Utc::now().timestamp(),
        )
        .await;
    }
}

/// The supplier's staff, simulated: confirms imported quotations, then validates their
/// deliveries; the accountant invoices delivered Medusa orders and records their payment (the
/// simulator's shortcut for "Create invoice" and "Register payment").
async fn clerk(
    odoo: OdooClient,
    sim: std::sync::Arc<sim_odoo::SimOdoo>,
    market: std::sync::Arc<cartona::SimCartona>,
    stop: CancellationToken,
) {
    let ours = |field: &str| {
        Domain::all().any_of(vec![
            Domain::all().and(field, "=like", "CARTONA-%"),
            Domain::all().and(field, "=like", "MEDUSA-%"),
        ])
    };
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(1500)) => {}
        }
        let drafts = odoo
            .search(
                "sale.order",
                &ours("client_order_ref").and("state", "=", "draft"),
                Some(3),
            )
            .await
            .unwrap_or_default();
        for id in drafts {
            consent(&odoo, id).await;
            // Confirmed, and each product of a delivery of several put in its own package
            // (Put in Pack), before Sha6er is asked for it.
            let mut w = sim.world();
            if w.action_confirm(&[id]).is_ok() {
                for picking in w.pickings_of(id) {
                    let moves: Vec<(i64, f64)> = w
                        .data
                        .get("stock.move")
                        .map(|m| {
                            m.values()
                                .filter(|r| {
                                    r.get("picking_id").and_then(Value::as_i64) == Some(picking)
                                })
                                .filter_map(|r| {
                                    Some((
                                        r.get("product_id")?.as_i64()?,
                                        r.get("product_uom_qty")?.as_f64()?,
                                    ))
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    if moves.len() > 1 {
                        for (product, qty) in moves {
                            let _ = w.put_in_pack(picking, product, qty);
                        }
                    }
                }
            }
        }
        // Cartona delivers the orders it delivers itself: the clerk validates those in Odoo
        // once Cartona has; Sha6er's couriers deliver the rest.
        let ready = odoo
            .search_read(
                "stock.picking",
                &Domain::all()
                    .and("sale_id.client_order_ref", "=like", "CARTONA-%")
                    .and("state", "=", "assigned"),
                &["origin", "sale_id"],
                SearchOpts::default(),
            )
            .await
            .unwrap_or_default();
        for p in ready {
            let Some(order) = p.get("sale_id").and_then(Value::as_id) else {
                continue;
            };
            let reference = odoo
                .read("sale.order", &[order], &["client_order_ref"])
                .await
                .ok()
                .and_then(|r| {
                    r.first().and_then(|o| {
                        o.get("client_order_ref")
                            .and_then(Value::as_opt_str)
                            .map(str::to_string)
                    })
                });
            let by_cartona = reference
                .as_deref()
                .and_then(|r| r.strip_prefix("CARTONA-"))
                .and_then(|h| market.order(h))
                .is_some_and(|o| o.json["delivered_by"] == "delivered_by_cartona");
            if !by_cartona {
                continue;
            }
            if let Some(id) = p.get("id").and_then(Value::as_i64) {
                let _ = odoo
                    .call_method("stock.picking", "button_validate", &[id])
                    .await;
            }
        }
        let delivered = odoo
            .search_read(
                "stock.picking",
                &Domain::all()
                    .and("sale_id.client_order_ref", "=like", "MEDUSA-%")
                    .and("sale_id.invoice_status", "!=", "invoiced")
                    .and("state", "=", "done"),
                &["sale_id"],
                SearchOpts {
                    limit: Some(2),
                    ..Default::default()
                },
            )
            .await
            .unwrap_or_default();
        for order in delivered
            .iter()
            .filter_map(|p| p.get("sale_id").and_then(Value::as_id))
        {
            let mut world = sim.world();
            if let Ok(invoice) = world.invoice_order(order) {
                let _ = world.pay_invoice(invoice, true);
            }
        }
    }
}
