//! Reading a 100,000-product catalog from the simulated Odoo, over XML-RPC and JSON-RPC (and
//! JSON-2), paged by id keyset: records per second, CPU time, and the reader's peak memory.
//!
//! `cargo bench --bench odoo_read [-- --products N]`. The simulator runs as its own process
//! (`marketsync sim odoo`), and each protocol is measured in a fresh child process, so peak
//! RSS is the reader's alone.

use marketsync::config::{OdooProtocol, RawConfig};
use marketsync::odoo::{Domain, OdooClient};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Instant;

const FIELDS: &[&str] = &[
    "default_code",
    "barcode",
    "name",
    "list_price",
    "free_qty",
    "write_date",
    "active",
    "categ_id",
];

fn proc_status(key: &str) -> f64 {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    text.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 (utime, stime) are at 11 and 12 after the command name; 100 ticks/s on Linux.
    (ticks(11) + ticks(12)) / 100.0
}

/// Child mode: read everything once over one protocol, print one JSON line.
async fn measure(url: &str, protocol: OdooProtocol) {
    let text = format!(
        "[odoo]\nurl = \"{url}\"\ndatabase = \"odoo\"\nusername = \"admin\"\napi_key = \"admin\"\nprotocol = \"{}\"\npage_size = 1000\ntimeout = \"120s\"\n",
        protocol.as_str()
    );
    let cfg = RawConfig::parse(&text).unwrap().validate().unwrap();
    let odoo = OdooClient::connect(&cfg.odoo).await.unwrap();
    let rss_start = proc_status("VmRSS:");
    let calls_before = odoo.calls_made();
    let cpu0 = cpu_seconds();
    let t = Instant::now();
    let mut rss_at_10k = 0.0;
    let mut seen = 0usize;
    let total = odoo
        .search_read_pages("product.product", &Domain::all(), FIELDS, vec![], |page| {
            seen += page.len();
            if rss_at_10k == 0.0 && seen >= 10_000 {
                rss_at_10k = proc_status("VmHWM:");
            }
            Ok(())
        })
        .await
        .unwrap();
    let wall = t.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "protocol": protocol.as_str(),
            "records": total,
            "wall_s": wall,
            "records_per_s": total as f64 / wall,
            "cpu_s": cpu_seconds() - cpu0,
            "odoo_calls": odoo.calls_made() - calls_before,
            "rss_start_mb": rss_start,
            "peak_rss_after_10k_mb": rss_at_10k,
            "peak_rss_mb": proc_status("VmHWM:"),
        })
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        let url = args[i + 1].clone();
        let protocol = match args[i + 2].as_str() {
            "jsonrpc" => OdooProtocol::Jsonrpc,
            "json2" => OdooProtocol::Json2,
            _ => OdooProtocol::Xmlrpc,
        };
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(measure(&url, protocol));
        return;
    }
    let products: usize = args
        .iter()
        .position(|a| a == "--products")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let mut sim = Command::new(env!("CARGO_BIN_EXE_marketsync"))
        .args([
            "sim",
            "odoo",
            "--port",
            "0",
            "--odoo-version",
            "19",
            "--products",
            &products.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the simulator");
    let mut lines = BufReader::new(sim.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let url = first.rsplit(' ').next().unwrap().to_string();
    println!("Reading {products} products from the simulated Odoo at {url}, pages of 1000, fields {FIELDS:?}");
    println!(
        "{:<8} {:>9} {:>8} {:>11} {:>7} {:>6} {:>14} {:>13}",
        "protocol", "records", "wall s", "records/s", "cpu s", "calls", "rss@10k MB", "peak rss MB"
    );
    let me = std::env::current_exe().unwrap();
    for protocol in ["xmlrpc", "jsonrpc", "json2"] {
        let out = Command::new(&me)
            .args(["--child", &url, protocol])
            .output()
            .unwrap();
        let line = String::from_utf8_lossy(&out.stdout);
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line.trim()) else {
            eprintln!(
                "{protocol}: measurement failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            continue;
        };
        println!(
            "{:<8} {:>9} {:>8.2} {:>11.0} {:>7.2} {:>6} {:>14.1} {:>13.1}",
            protocol,
            v["records"],
            v["wall_s"].as_f64().unwrap(),
            v["records_per_s"].as_f64().unwrap(),
            v["cpu_s"].as_f64().unwrap(),
            v["odoo_calls"],
            v["peak_rss_after_10k_mb"].as_f64().unwrap(),
            v["peak_rss_mb"].as_f64().unwrap()
        );
    }
    let _ = sim.kill();
    let _ = sim.wait();
}
