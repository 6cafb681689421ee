//! `marketsync bench` runs end to end at a small size and reports every figure the README
//! quotes. (The figures themselves are measured, never asserted: see README, "Performance".)

use assert_cmd::Command;

#[test]
fn the_benchmark_runs_and_reports_all_scenarios() {
    let out = Command::cargo_bin("marketsync")
        .unwrap()
        .args([
            "bench",
            "--products",
            "300",
            "--orders",
            "10",
            "--events",
            "100",
            "--json",
        ])
        .timeout(std::time::Duration::from_secs(300))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let figures: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = figures
        .iter()
        .map(|f| f["scenario"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "full_push",
            "idle_poll",
            "price_change",
            "order_import",
            "webhook_ingest",
            "diff",
            "meta_full_push"
        ]
    );
    for f in &figures {
        for key in [
            "wall_s",
            "cpu_s",
            "peak_rss_mb",
            "odoo_calls",
            "marketplace_requests",
        ] {
            assert!(f[key].is_number(), "{key} missing in {f}");
        }
    }
    assert_eq!(figures[0]["products_sent"], 300);
    assert_eq!(figures[5]["products_compared"], 300);
    assert!(figures[0]["floor_ratio"].is_number());
    // Three rounds by default, each a whole push (products_sent is the last round's).
    assert_eq!(
        figures[0]["round_ratios"].as_array().map(Vec::len),
        Some(3),
        "{}",
        figures[0]
    );
    assert_eq!(figures[0]["marketplace_requests"], 3, "3 bulk requests");
    assert_eq!(figures[0]["other_requests"], 1, "the order pull at start");
    assert_eq!(
        figures[2]["products_sent"], 1,
        "one price change, one product sent"
    );
    assert_eq!(figures[3]["duplicates"], 0);
    assert!(figures[4]["events_per_s"].as_f64().unwrap() > 0.0);
    // Meta: 300 products in ceil(300 / 1,000) items_batch calls, each batch polled.
    let meta = &figures[6];
    assert_eq!(meta["products_sent"], 300, "{meta}");
    assert_eq!(meta["batch_calls"], 1, "{meta}");
    assert!(meta["status_polls"].as_u64().unwrap() >= 1, "{meta}");
    assert!(meta["floor_ratio"].is_number(), "{meta}");
}
