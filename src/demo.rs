//! `marketsync demo`: starts the simulated Odoo on a free loopback port, runs the real daemon
//! against it with a temporary state, shows what happens as it happens (login, health checks,
//! an injected outage and the recovery), and ends with a summary.

use crate::config::RawConfig;
use crate::daemon::Daemon;
use crate::odoo::{Domain, OdooClient};
use crate::sim::faults::Fault;
use crate::sim::odoo::{self as sim_odoo, SimOptions};
use crate::store::synclog::{self, Query};
use crate::store::{queue, Store};
use serde::Serialize;
use std::time::Duration;

#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// How long to run before printing the summary.
    #[arg(long, default_value_t = 12)]
    pub seconds: u64,
    /// Print the summary as JSON (and nothing else on stdout).
    #[arg(long)]
    pub json: bool,
    /// Products in the simulated catalog.
    #[arg(long, default_value_t = 300)]
    pub products: usize,
}

#[derive(Debug, Serialize)]
pub struct Summary {
    pub seconds: u64,
    pub odoo_version: String,
    pub products_in_odoo: usize,
    pub odoo_calls: u64,
    pub odoo_outages_seen: usize,
    pub odoo_recoveries: usize,
    pub channels: Vec<String>,
    pub products_pushed: u64,
    pub orders_imported: u64,
    pub statuses_sent: u64,
    pub retries: u64,
    pub dead_jobs: u64,
    pub sync_log_entries: usize,
}

pub async fn run(args: DemoArgs) -> anyhow::Result<i32> {
    let say = |line: &str| {
        if !args.json {
            println!("{line}");
        }
    };
    // An API key unlike any word, as a real one is, so scrubbing it hides nothing else.
    const DEMO_KEY: &str = "demo-4c1f9e2b7a";
    let odoo = sim_odoo::start(SimOptions {
        products: args.products,
        api_key: DEMO_KEY.into(),
        ..SimOptions::default()
    })
    .await?;
    say(&format!(
        "▶ simulated Odoo 17.0 on {} with {} products",
        odoo.url(),
        args.products
    ));
    let dir = tempfile::tempdir()?;
    let config_text = format!(
        "[odoo]\nurl = \"{}\"\ndatabase = \"odoo\"\nusername = \"admin\"\napi_key = \"{DEMO_KEY}\"\ntimeout = \"5s\"\npage_size = 200\n\
         [state]\npath = \"{}\"\n[webhooks]\nlisten = \"127.0.0.1:0\"\n[schedule]\nodoo_health = \"1s\"\n[daemon]\nqueue_poll = \"200ms\"\n",
        odoo.url(),
        dir.path().join("state.db").display()
    );
    let config = RawConfig::parse(&config_text)?.validate()?;
    let store = Store::open(&config.state.path)?;
    say(&format!("▶ state in {}", config.state.path.display()));

    // What an operator's first look would do: log in and page through the catalog.
    let client = OdooClient::connect(&config.odoo).await?;
    let (name, login) = client.whoami().await?;
    say(&format!(
        "▶ logged in to Odoo {} as {name} ({login}) over XML-RPC",
        client.version().version
    ));
    let mut products = 0;
    let calls_before = client.calls_made();
    let sellable = client
        .search_read_pages(
            "product.product",
            &Domain::all().and("sale_ok", "=", true),
            &["default_code", "list_price", "free_qty"],
            vec![],
            |page| {
                products += page.len();
                Ok(())
            },
        )
        .await?;
    say(&format!(
        "▶ read {sellable} sellable products by id keyset in {} calls of up to 200",
        client.calls_made() - calls_before
    ));

    let token = tokio_util::sync::CancellationToken::new();
    let daemon = Daemon::new(config.clone(), store.clone());
    let daemon_task = tokio::spawn(daemon.run(token.clone()));
    let ctrl_c = token.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            ctrl_c.cancel();
        }
    });
    say("▶ daemon started (Ctrl-C to stop early); channels enabled: none");

    let started = tokio::time::Instant::now();
    let end = started + Duration::from_secs(args.seconds);
    let outage_at = started + Duration::from_secs(args.seconds / 3);
    let mut outage_done = false;
    let mut last_log = 0;
    while tokio::time::Instant::now() < end && !token.is_cancelled() {
        if !outage_done && tokio::time::Instant::now() >= outage_at {
            outage_done = true;
            say("▶ injecting a fault: Odoo's proxy answers 502 for 3 s");
            odoo.sim
                .faults
                .down_for(Duration::from_secs(3), Fault::BadGateway);
        }
        let rows = synclog::query(
            &store,
            &Query {
                after_id: Some(last_log),
                limit: 100,
                ..Default::default()
            },
        )?;
        for r in &rows {
            last_log = r.id;
            say(&format!(
                "  [{}] {} {}: {}",
                r.level,
                r.channel.as_deref().unwrap_or("-"),
                r.operation,
                r.message
            ));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    token.cancel();
    daemon_task.await??;

    let all = synclog::query(
        &store,
        &Query {
            limit: 100_000,
            ..Default::default()
        },
    )?;
    for r in all.iter().filter(|r| r.id > last_log) {
        say(&format!(
            "  [{}] {} {}: {}",
            r.level,
            r.channel.as_deref().unwrap_or("-"),
            r.operation,
            r.message
        ));
    }
    let counts = queue::counts(&store)?;
    let count_state = |st: queue::JobState| {
        counts
            .iter()
            .filter(|(_, s, _)| *s == st)
            .map(|(_, _, n)| *n as u64)
            .sum::<u64>()
    };
    let summary = Summary {
        seconds: started.elapsed().as_secs(),
        odoo_version: client.version().version.clone(),
        products_in_odoo: products,
        odoo_calls: odoo.sim.call_count(),
        odoo_outages_seen: all
            .iter()
            .filter(|r| r.operation == "odoo.health" && r.level == "error")
            .count(),
        odoo_recoveries: all
            .iter()
            .filter(|r| r.message == "Odoo answers again")
            .count(),
        channels: Vec::new(),
        products_pushed: 0,
        orders_imported: 0,
        statuses_sent: 0,
        retries: count_state(queue::JobState::Retrying),
        dead_jobs: count_state(queue::JobState::Dead),
        sync_log_entries: all.len(),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!();
        println!("summary after {} s", summary.seconds);
        println!(
            "  Odoo {}: {} products, {} ORM calls served",
            summary.odoo_version, summary.products_in_odoo, summary.odoo_calls
        );
        println!(
            "  outage checks failed: {}, recoveries: {}",
            summary.odoo_outages_seen, summary.odoo_recoveries
        );
        println!(
            "  channels: none enabled; products pushed {}, orders imported {}, statuses sent {}",
            summary.products_pushed, summary.orders_imported, summary.statuses_sent
        );
        println!(
            "  jobs retrying {}, dead {}; sync log entries {}",
            summary.retries, summary.dead_jobs, summary.sync_log_entries
        );
    }
    Ok(0)
}
