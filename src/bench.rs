//! `marketsync bench`: measures the daemon against simulators running as separate processes on
//! loopback, next to the floor measured in the same run. For each scenario it reports wall time,
//! the daemon's CPU time and peak RSS (from /proc), Odoo calls and marketplace requests.
//!
//! 1. `full_push`: a catalog of `--products` products pushed to Cartona (batch 100), with the floor
//!    (page-reading the same fields from Odoo + posting the same batches, nothing else). The
//!    daemon reads two pages at once (`odoo.reads_in_flight = 2`): the simulated Odoo answers
//!    requests in parallel, as an Odoo with several workers does.
//! 2. `idle_poll`: one catalog poll cycle with nothing changed.
//! 3. `price_change`: one price changed in Odoo: products sent, and the time until Cartona has it.
//! 4. `order_import`: `--orders` Cartona orders of 5 lines: Odoo calls per order, duplicates.
//! 5. `webhook_ingest`: signed Medusa events from 50 concurrent senders: events/s and p99 latency.
//! 6. `diff`: `marketsync diff --channel cartona` over the whole catalog, in its own process:
//!    wall, CPU, peak RSS, Odoo calls and Cartona requests (every listing differs: the worst case).
//! 7. `meta_full_push`: the catalog pushed to a Meta catalog (batch 1,000) until every item is
//!    recorded as sent (its batch polled until finished), with the floor (page-reading the same
//!    fields + posting the same number of items_batch calls and polling each until finished).

use crate::config::RawConfig;
use crate::odoo::{Domain, OdooClient, Value};
use crate::store::{mapping, streams, Store};
use serde::Serialize;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Products in the catalog.
    #[arg(long, default_value_t = 50_000)]
    pub products: usize,
    /// Orders to import.
    #[arg(long, default_value_t = 1_000)]
    pub orders: usize,
    /// Webhook events to send.
    #[arg(long, default_value_t = 5_000)]
    pub events: usize,
    /// Full pushes (each from a state that never pushed, each followed by its floor); the
    /// figures are their medians, so one noisy moment does not make the result.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Print JSON instead of a table (for scripts).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize, Default)]
pub struct Figures {
    pub scenario: &'static str,
    pub wall_s: f64,
    pub cpu_s: f64,
    pub peak_rss_mb: f64,
    pub odoo_calls: u64,
    pub marketplace_requests: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub floor_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub floor_ratio: Option<f64>,
    /// `full_push`: requests the daemon made in the same time that were not the push's (its
    /// first order pull at start); `marketplace_requests` counts the push's bulk updates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other_requests: Option<u64>,
    /// `full_push`: each round's ratio, in order (`floor_ratio` is their median).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub round_ratios: Option<Vec<f64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub products_sent: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub poll_interval_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub orders: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub odoo_calls_per_order: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicates: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events_per_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p99_ms: Option<f64>,
    /// `diff`: Odoo products compared with the listings read back, and the differences found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub products_compared: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub differences: Option<u64>,
    /// `meta_full_push`: items_batch calls and status polls.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_calls: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_polls: Option<u64>,
}

/// A child process that prints its URL on its first line.
struct Proc {
    child: Child,
    url: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn exe() -> std::path::PathBuf {
    std::env::current_exe().expect("own path")
}

fn sim(args: &[&str]) -> anyhow::Result<Proc> {
    let mut child = Command::new(exe())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut line = String::new();
    let mut reader = BufReader::new(child.stdout.take().expect("piped"));
    reader.read_line(&mut line)?;
    // Keep draining: a simulator printing into a closed pipe would die of it.
    std::thread::spawn(move || for _ in reader.lines() {});
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .ok_or_else(|| anyhow::anyhow!("simulator said {line:?}"))?
        .to_string();
    Ok(Proc { child, url })
}

/// (CPU seconds, peak RSS MB) of a process, from /proc.
fn usage(pid: u32) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let f: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    ((ticks(11) + ticks(12)) / 100.0, hwm / 1024.0)
}

async fn stats(url: &str) -> serde_json::Value {
    match reqwest::get(url).await {
        Ok(r) => r.json().await.unwrap_or_default(),
        Err(_) => serde_json::Value::Null,
    }
}

async fn until(
    what: &str,
    limit: Duration,
    mut check: impl AsyncFnMut() -> bool,
) -> anyhow::Result<()> {
    let end = Instant::now() + limit;
    while !check().await {
        if Instant::now() > end {
            anyhow::bail!("bench: {what} did not happen within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

struct Daemon(Child);

impl Daemon {
    fn start(config: &std::path::Path) -> anyhow::Result<Daemon> {
        Ok(Daemon(
            Command::new(exe())
                .args(["--config", config.to_str().unwrap_or(""), "run"])
                .env("RUST_LOG", "error")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()?,
        ))
    }

    fn usage(&self) -> (f64, f64) {
        usage(self.0.id())
    }

    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

const TOKEN: &str = "bench-cartona-token";
const SECRET: &str = "bench-webhook-secret";

pub async fn run(args: BenchArgs) -> anyhow::Result<i32> {
    let say = |s: &str| {
        if !args.json {
            eprintln!("{s}");
        }
    };
    let n = args.products.max(1);
    let odoo = sim(&["sim", "odoo", "--port", "0", "--products", &n.to_string()])?;
    let cartona = sim(&[
        "sim",
        "cartona",
        "--port",
        "0",
        "--products",
        &n.to_string(),
        "--token",
        TOKEN,
    ])?;
    let medusa = sim(&[
        "sim",
        "medusa",
        "--port",
        "0",
        "--key",
        "sk_bench",
        "--currency",
        "egp",
    ])?;
    let odoo_stats = format!("{}/_sim/stats", odoo.url);
    let cartona_base = cartona.url.clone();
    let cartona_stats = cartona_base.replace("/api/v1/", "/_sim/stats");
    let odoo_calls = || async { stats(&odoo_stats).await["calls"].as_u64().unwrap_or(0) };
    let market = || async { stats(&cartona_stats).await };

    let dir = tempfile::tempdir()?;
    let listen = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let config_for = |orders_poll: &str, medusa_on: bool| {
        format!(
            "[odoo]\nurl = \"{}\"\ndatabase = \"odoo\"\nusername = \"admin\"\napi_key = \"admin\"\npage_size = 1000\nreads_in_flight = 2\n[state]\npath = \"{}\"\n\
             [webhooks]\nlisten = \"{listen}\"\n[admin]\nlisten = \"127.0.0.1:0\"\n[schedule]\ncatalog_poll = \"1s\"\norders_poll = \"{orders_poll}\"\nstatus_poll = \"1h\"\nodoo_health = \"1h\"\n\
             [daemon]\nqueue_poll = \"100ms\"\n[channels.cartona]\nenabled = true\nbase_url = \"{cartona_base}\"\ntoken = \"{TOKEN}\"\nbatch_size = 100\npoll_overlap = \"2s\"\n\
             [channels.medusa]\nenabled = {medusa_on}\nbase_url = \"{}\"\ntoken = \"sk_bench\"\nwebhook_secret = \"{SECRET}\"\ncurrency = \"egp\"\n",
            odoo.url,
            dir.path().join("state.db").display(),
            medusa.url
        )
    };
    let path = dir.path().join("config.toml");
    std::fs::write(&path, config_for("1h", false))?;
    let config = RawConfig::parse(&config_for("1h", false))?.validate()?;
    {
        let store = Store::open(&config.state.path)?;
        let pairs: Vec<(i64, String)> = (1..=n as i64)
            .map(|i| (i, (100_000 + i).to_string()))
            .collect();
        for (id, ext) in &pairs {
            mapping::set(&store, "cartona", "product", "product.product", *id, ext)?;
        }
    }
    let mut out = Vec::new();

    // 1. Full push, `rounds` times: each from a state that never pushed, with its floor
    // measured right after it.
    let rounds = args.rounds.max(1);
    say(&format!("full push of {n} products ({rounds} rounds)..."));
    struct Round {
        wall: f64,
        cpu: f64,
        rss: f64,
        floor: f64,
    }
    let count = |m: &serde_json::Value, k: &str| m[k].as_u64().unwrap_or(0);
    let mut runs: Vec<Round> = Vec::new();
    let mut daemon = None;
    let (mut calls, mut requests, mut other, mut sent) = (0, 0, 0, 0);
    for round in 0..rounds {
        if let Some(d) = daemon.take() {
            Daemon::stop(d);
            let store = Store::open(&config.state.path)?;
            store.write(|tx| {
                tx.execute_batch(
                    "UPDATE mappings SET last_hash = NULL, planned_hash = NULL, last_sent_at = NULL;
                     DELETE FROM jobs; DELETE FROM streams;",
                )?;
                Ok(())
            })?;
        }
        let m0 = market().await;
        let (calls0, req0, bulk0, items0) = (
            odoo_calls().await,
            count(&m0, "requests"),
            count(&m0, "bulk_requests"),
            count(&m0, "bulk_items"),
        );
        let t = Instant::now();
        let d = Daemon::start(&path)?;
        until("the full push", Duration::from_secs(900), async || {
            count(&market().await, "bulk_items") >= items0 + n as u64
        })
        .await?;
        let wall = t.elapsed().as_secs_f64();
        let (cpu, rss) = d.usage();
        let m1 = market().await;
        calls = odoo_calls().await - calls0;
        requests = count(&m1, "bulk_requests") - bulk0;
        other = count(&m1, "requests") - req0 - requests;
        sent = count(&m1, "bulk_items") - items0;
        if round + 1 == rounds && m1["priced"].as_u64() != Some(n as u64) {
            anyhow::bail!(
                "bench: after the full push Cartona has {} of {n} products priced",
                m1["priced"]
            );
        }
        let floor = measure_floor(&config, n).await?;
        say(&format!(
            "  round {}: {wall:.3} s, floor {floor:.3} s, ratio {:.2}",
            round + 1,
            wall / floor
        ));
        runs.push(Round {
            wall,
            cpu,
            rss,
            floor,
        });
        daemon = Some(d);
    }
    let daemon = daemon.expect("at least one round");
    let median = |f: &dyn Fn(&Round) -> f64| {
        let mut v: Vec<f64> = runs.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let ratios: Vec<f64> = runs.iter().map(|r| r.wall / r.floor).collect();
    out.push(Figures {
        scenario: "full_push",
        wall_s: median(&|r| r.wall),
        cpu_s: median(&|r| r.cpu),
        peak_rss_mb: runs.iter().map(|r| r.rss).fold(0.0, f64::max),
        odoo_calls: calls,
        marketplace_requests: requests,
        floor_s: Some(median(&|r| r.floor)),
        floor_ratio: Some(median(&|r| r.wall / r.floor)),
        round_ratios: Some(ratios),
        other_requests: Some(other),
        products_sent: Some(sent),
        ..Default::default()
    });

    // 2. Idle poll: a catalog cycle with nothing changed.
    let store = Store::open_read_only(&config.state.path)?;
    let runs = || {
        streams::get(&store, "cartona.catalog")
            .ok()
            .flatten()
            .and_then(|s| s.last_run_at)
            .unwrap_or(0)
    };
    let r0 = runs();
    until("a catalog cycle", Duration::from_secs(30), async || {
        runs() > r0
    })
    .await?;
    let (c_a, m_a, cpu_a) = (
        odoo_calls().await,
        market().await["requests"].as_u64().unwrap_or(0),
        daemon.usage().0,
    );
    let t = Instant::now();
    let cycles = 3.0;
    for _ in 0..3 {
        let r = runs();
        until("a catalog cycle", Duration::from_secs(30), async || {
            runs() > r
        })
        .await?;
    }
    let (c_b, m_b, (cpu_b, rss_b)) = (
        odoo_calls().await,
        market().await["requests"].as_u64().unwrap_or(0),
        daemon.usage(),
    );
    out.push(Figures {
        scenario: "idle_poll",
        wall_s: t.elapsed().as_secs_f64() / cycles,
        cpu_s: (cpu_b - cpu_a) / cycles,
        peak_rss_mb: rss_b,
        odoo_calls: ((c_b - c_a) as f64 / cycles).round() as u64,
        marketplace_requests: m_b - m_a,
        ..Default::default()
    });

    // 3. One price change among the catalog.
    let client = OdooClient::connect(&config.odoo).await?;
    let items0 = market().await["bulk_items"].as_u64().unwrap_or(0);
    // What the daemon sends (the bench's own look-ups below are not counted).
    let (c0, m0, cpu0) = (
        odoo_calls().await,
        market().await["bulk_requests"].as_u64().unwrap_or(0),
        daemon.usage().0,
    );
    let t = Instant::now();
    client
        .write(
            "product.product",
            &[1],
            Value::record([("list_price", Value::Double(4321.5))]),
        )
        .await?;
    let api = reqwest::Client::new();
    until(
        "the new price on Cartona",
        Duration::from_secs(60),
        async || {
            let r = api
                .get(format!(
                    "{cartona_base}supplier-product?supplier_product_id=100001"
                ))
                .header("AuthorizationToken", TOKEN)
                .send()
                .await;
            match r {
                Ok(r) => r
                    .json::<serde_json::Value>()
                    .await
                    .ok()
                    .is_some_and(|v| v[0]["selling_price"] == "4321.50"),
                Err(_) => false,
            }
        },
    )
    .await?;
    let latency = t.elapsed().as_secs_f64();
    let (cpu, rss) = daemon.usage();
    out.push(Figures {
        scenario: "price_change",
        wall_s: latency,
        cpu_s: cpu - cpu0,
        peak_rss_mb: rss,
        odoo_calls: odoo_calls().await - c0,
        marketplace_requests: market().await["bulk_requests"].as_u64().unwrap_or(0) - m0,
        products_sent: Some(market().await["bulk_items"].as_u64().unwrap_or(0) - items0),
        latency_s: Some(latency),
        poll_interval_s: Some(1.0),
        ..Default::default()
    });
    daemon.stop();

    // 4. Order import.
    let m = args.orders.max(1);
    say(&format!("importing {m} orders of 5 lines..."));
    api.post(cartona_base.replace("/api/v1/", "/_sim/orders"))
        .json(&serde_json::json!({"count": m, "lines": 5}))
        .send()
        .await?;
    std::fs::write(&path, config_for("1s", true))?;
    let (c0, m0) = (
        odoo_calls().await,
        market().await["requests"].as_u64().unwrap_or(0),
    );
    let t = Instant::now();
    let daemon = Daemon::start(&path)?;
    until(
        "all orders imported",
        Duration::from_secs(1800),
        async || market().await["synced"].as_u64() == Some(m as u64),
    )
    .await?;
    let wall = t.elapsed().as_secs_f64();
    let (cpu, rss) = daemon.usage();
    let calls = odoo_calls().await - c0;
    let in_odoo = client
        .search_count(
            "sale.order",
            &Domain::all().and("client_order_ref", "=like", "CARTONA-%"),
        )
        .await? as u64;
    out.push(Figures {
        scenario: "order_import",
        wall_s: wall,
        cpu_s: cpu,
        peak_rss_mb: rss,
        odoo_calls: calls,
        marketplace_requests: market().await["requests"].as_u64().unwrap_or(0) - m0,
        orders: Some(m as u64),
        odoo_calls_per_order: Some(calls as f64 / m as f64),
        duplicates: Some(in_odoo.saturating_sub(m as u64)),
        ..Default::default()
    });

    // 5. Webhook ingest: signed events from 50 concurrent senders.
    let e = args.events.max(50);
    say(&format!("sending {e} signed webhooks from 50 senders..."));
    let url = format!("http://{listen}/webhooks/medusa");
    let cpu0 = daemon.usage().0;
    let t = Instant::now();
    let mut senders = Vec::new();
    for s in 0..50 {
        let url = url.clone();
        senders.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut lat = Vec::new();
            for i in (s..e).step_by(50) {
                let body = serde_json::json!({"event": "customer.created", "data": {"customer": {"id": format!("cus_bench_{i}"), "email": format!("c{i}@example.com")}}}).to_string();
                let sig = crate::webhook::signature::sign(SECRET.as_bytes(), chrono::Utc::now().timestamp(), body.as_bytes());
                let t = Instant::now();
                let ok = http.post(&url).header("X-Marketsync-Signature", sig).body(body).send().await.map(|r| r.status().is_success()).unwrap_or(false);
                lat.push((t.elapsed().as_secs_f64() * 1000.0, ok));
            }
            lat
        }));
    }
    let mut lat = Vec::new();
    for s in senders {
        lat.extend(s.await?);
    }
    let wall = t.elapsed().as_secs_f64();
    let (cpu, rss) = daemon.usage();
    let ok = lat.iter().filter(|(_, ok)| *ok).count();
    let mut ms: Vec<f64> = lat.iter().map(|(m, _)| *m).collect();
    ms.sort_by(|a, b| a.total_cmp(b));
    daemon.stop();
    out.push(Figures {
        scenario: "webhook_ingest",
        wall_s: wall,
        cpu_s: cpu - cpu0,
        peak_rss_mb: rss,
        events_per_s: Some(ok as f64 / wall),
        p99_ms: Some(
            ms.get((ms.len() * 99 / 100).min(ms.len().saturating_sub(1)))
                .copied()
                .unwrap_or(0.0),
        ),
        ..Default::default()
    });

    // 6. Diff: every Cartona listing read back and compared with Odoo, by `marketsync diff`
    // in its own process. The floors above wrote dummy values to the simulated Cartona, so
    // every listing differs: the diff's worst case.
    say(&format!("diff of {n} products against Cartona..."));
    let (c0, m0) = (odoo_calls().await, count(&market().await, "requests"));
    let t = Instant::now();
    let mut child = Command::new(exe())
        .args([
            "--config",
            path.to_str().unwrap_or(""),
            "diff",
            "--channel",
            "cartona",
            "--json",
        ])
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let pid = child.id();
    let mut pipe = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut pipe, &mut text);
        text
    });
    let (mut cpu, mut rss) = (0.0, 0.0);
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        // The last reading before it exits: its peak RSS is a high-water mark.
        let (c, r) = usage(pid);
        if r > 0.0 {
            (cpu, rss) = (c, r);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let wall = t.elapsed().as_secs_f64();
    let text = reader.join().unwrap_or_default();
    let report: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("bench: diff said no JSON ({e}; exit {status})"))?;
    if report["compared"].as_u64() != Some(n as u64) {
        anyhow::bail!(
            "bench: diff compared {} of {n} products",
            report["compared"]
        );
    }
    out.push(Figures {
        scenario: "diff",
        wall_s: wall,
        cpu_s: cpu,
        peak_rss_mb: rss,
        odoo_calls: odoo_calls().await - c0,
        marketplace_requests: count(&market().await, "requests") - m0,
        products_compared: Some(n as u64),
        differences: report["drifts"].as_array().map(|d| d.len() as u64),
        ..Default::default()
    });

    // 7. The Meta full push.
    say(&format!("full push of {n} products to Meta..."));
    out.push(meta_full_push(&odoo.url, n).await?);

    if args.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!(
            "{:<15} {:>8} {:>7} {:>8} {:>7} {:>7}  other",
            "scenario", "wall s", "cpu s", "rss MB", "odoo", "market"
        );
        for f in &out {
            let mut other = serde_json::to_value(f)?;
            for k in [
                "scenario",
                "wall_s",
                "cpu_s",
                "peak_rss_mb",
                "odoo_calls",
                "marketplace_requests",
            ] {
                other.as_object_mut().map(|o| o.remove(k));
            }
            println!(
                "{:<15} {:>8.3} {:>7.2} {:>8.1} {:>7} {:>7}  {}",
                f.scenario,
                f.wall_s,
                f.cpu_s,
                f.peak_rss_mb,
                f.odoo_calls,
                f.marketplace_requests,
                other
            );
        }
    }
    Ok(0)
}

/// The floor: page-read the same fields from Odoo and post the same batches to Cartona, with
/// nothing else done.
async fn measure_floor(config: &crate::config::Config, n: usize) -> anyhow::Result<f64> {
    let t = Instant::now();
    let client = OdooClient::connect(&config.odoo).await?;
    let ch = config
        .channel(crate::config::ChannelKind::Cartona)
        .expect("configured");
    let settings = ch.cartona().expect("Cartona settings");
    // The very fields and context the daemon's reads use.
    let reader = crate::sync::catalog::CatalogReader {
        odoo: client.clone(),
        stock_field: settings.stock_field.clone(),
        warehouse_id: settings.warehouse_id,
        pricelist_id: settings.pricelist_id,
        currency: Some(crate::channel::cartona::CURRENCY.into()),
        extra_fields: Vec::new(),
        filter: None,
        known_rules: Default::default(),
        currency_guard: Default::default(),
        company_currency: Default::default(),
        config_key: "channels.cartona",
    };
    client
        .search_read_pages(
            "product.product",
            &Domain::all(),
            &reader.fields(),
            reader.context(),
            |_| Ok(()),
        )
        .await?;
    let api = crate::channel::cartona::client(ch).map_err(|e| anyhow::anyhow!(e))?;
    for chunk in (1..=n as i64).collect::<Vec<_>>().chunks(100) {
        let body: Vec<serde_json::Value> = chunk
            .iter()
            .map(|i| serde_json::json!({"supplier_product_id": (100_000 + i).to_string(), "selling_price": "1.00", "available_stock_quantity": 1, "in_stock": true, "is_published": true}))
            .collect();
        // Dummy values: nothing later in the bench reads them.
        let _ = api
            .post(
                "supplier-product/bulk-update",
                &serde_json::Value::Array(body),
            )
            .await;
    }
    Ok(t.elapsed().as_secs_f64())
}

const META_TOKEN: &str = "EAAGbenchToken01";
const META_CATALOG: &str = "880011223344";
/// The simulated catalog finishes a batch this long after it came.
const META_FINISH_MS: &str = "200";

/// `meta_full_push`: the catalog pushed to Meta by a daemon of its own (a fresh state), until
/// every item is recorded as sent; then the floor.
async fn meta_full_push(odoo_url: &str, n: usize) -> anyhow::Result<Figures> {
    let meta = sim(&[
        "sim",
        "meta",
        "--port",
        "0",
        "--catalog-id",
        META_CATALOG,
        "--token",
        META_TOKEN,
        "--currency",
        "EGP",
        "--finish-ms",
        META_FINISH_MS,
    ])?;
    let stats_url = format!(
        "{}/_sim/stats",
        meta.url.trim_end_matches('/').trim_end_matches("/v26.0")
    );
    let meta_stats = || async { stats(&stats_url).await };
    let odoo_stats = format!("{odoo_url}/_sim/stats");
    let odoo_calls = || async { stats(&odoo_stats).await["calls"].as_u64().unwrap_or(0) };
    let dir = tempfile::tempdir()?;
    let text = format!(
        "[odoo]\nurl = \"{odoo_url}\"\ndatabase = \"odoo\"\nusername = \"admin\"\napi_key = \"admin\"\npage_size = 1000\nreads_in_flight = 2\n[state]\npath = \"{}\"\n\
         [webhooks]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n[schedule]\ncatalog_poll = \"1s\"\nstatus_poll = \"1h\"\nodoo_health = \"1h\"\n\
         [daemon]\nqueue_poll = \"100ms\"\n[channels.meta]\nenabled = true\nbase_url = \"{}\"\ntoken = \"{META_TOKEN}\"\ncatalog_id = \"{META_CATALOG}\"\ncurrency = \"EGP\"\n\
         batch_size = 1000\nbrand = \"Bench\"\nlink = \"https://shop.example.com/p/{{slug}}\"\nimage_link = \"https://shop.example.com/i/{{default_code}}.jpg\"\npoll_overlap = \"2s\"\n",
        dir.path().join("state.db").display(),
        meta.url
    );
    let path = dir.path().join("config.toml");
    std::fs::write(&path, &text)?;
    let config = RawConfig::parse(&text)?.validate()?;
    let sent = |store: &Store| -> u64 {
        store
            .read(|c| {
                Ok(c.query_row(
                    "SELECT count(*) FROM mappings WHERE channel = 'meta' AND last_sent_at IS NOT NULL",
                    [],
                    |r| r.get::<_, i64>(0),
                )?)
            })
            .unwrap_or(0) as u64
    };
    let calls0 = odoo_calls().await;
    let t = Instant::now();
    let daemon = Daemon::start(&path)?;
    let mut store = None;
    until("the Meta full push", Duration::from_secs(900), async || {
        if store.is_none() {
            store = Store::open_read_only(&config.state.path).ok();
        }
        store.as_ref().is_some_and(|s| sent(s) >= n as u64)
    })
    .await?;
    let wall = t.elapsed().as_secs_f64();
    let (cpu, rss) = daemon.usage();
    let calls = odoo_calls().await - calls0;
    let m = meta_stats().await;
    daemon.stop();
    if m["items"].as_u64() != Some(n as u64) {
        anyhow::bail!(
            "bench: after the Meta push the catalog holds {} of {n} items",
            m["items"]
        );
    }
    let batch_calls = m["batch_calls"].as_u64().unwrap_or(0);
    let polls = m["status_polls"].as_u64().unwrap_or(0);
    let floor = meta_floor(&config, n).await?;
    Ok(Figures {
        scenario: "meta_full_push",
        wall_s: wall,
        cpu_s: cpu,
        peak_rss_mb: rss,
        odoo_calls: calls,
        marketplace_requests: m["requests"].as_u64().unwrap_or(0),
        floor_s: Some(floor),
        floor_ratio: Some(wall / floor),
        products_sent: m["batch_requests"].as_u64(),
        batch_calls: Some(batch_calls),
        status_polls: Some(polls),
        ..Default::default()
    })
}

/// The Meta floor: page-read the same fields from Odoo, post the same items_batch calls
/// (1,000 items each, the real items' size) and poll each handle until finished.
async fn meta_floor(config: &crate::config::Config, n: usize) -> anyhow::Result<f64> {
    let t = Instant::now();
    let client = OdooClient::connect(&config.odoo).await?;
    let ch = config
        .channel(crate::config::ChannelKind::Meta)
        .expect("configured");
    let settings = ch.meta().expect("Meta settings");
    let reader = crate::channel::meta::reader(settings, client.clone());
    let mut rows = Vec::with_capacity(n);
    client
        .search_read_pages(
            "product.product",
            &Domain::all(),
            &reader.fields(),
            reader.context(),
            |page| {
                rows.extend(page.iter().map(|r| {
                    let s = |k: &str| r.get(k).and_then(Value::as_opt_str).unwrap_or("").to_string();
                    serde_json::json!({"method": "UPDATE", "data": {
                        "id": s("default_code"), "title": s("name"), "description": s("name"),
                        "availability": "in stock", "inventory": 1, "condition": "new",
                        "price": "1.00 EGP", "brand": "Bench",
                        "link": "https://shop.example.com/p/x", "image_link": "https://shop.example.com/i/x.jpg"}})
                }));
                Ok(())
            },
        )
        .await?;
    let api = crate::channel::meta::client(ch).map_err(|e| anyhow::anyhow!(e))?;
    let path = format!("{META_CATALOG}/items_batch");
    let mut handles = Vec::new();
    for chunk in rows.chunks(1000) {
        let body = serde_json::to_vec(&serde_json::json!({
            "item_type": "PRODUCT_ITEM", "allow_upsert": true, "requests": chunk}))?;
        let a = api.post_raw(&path, body).await?;
        let v: serde_json::Value = serde_json::from_slice(&a.body)?;
        handles.extend(
            v["handles"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|h| h.as_str().map(str::to_string)),
        );
    }
    let status = format!("{META_CATALOG}/check_batch_request_status");
    for h in handles {
        loop {
            let a = api.get_raw(&status, &[("handle", h.clone())]).await?;
            let v: serde_json::Value = serde_json::from_slice(&a.body)?;
            if v["data"][0]["status"] == "finished" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    Ok(t.elapsed().as_secs_f64())
}
