//! `marketsync demo`, the README's first command, runs the real daemon against the simulators
//! and ends with a summary.

use assert_cmd::Command;

#[test]
fn demo_runs_and_summarizes_as_json() {
    let out = Command::cargo_bin("marketsync")
        .unwrap()
        .env("NO_COLOR", "1")
        .args(["demo", "--seconds", "8", "--products", "120", "--json"])
        .timeout(std::time::Duration::from_secs(90))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The demo shows the sync log in its own words; the journal line each event also writes
    // is not printed a second time beside it.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("marketsync::internal_events"),
        "the demo printed its events twice:\n{stderr}"
    );
    let s: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("only the JSON summary on stdout");
    assert_eq!(s["odoo_version"], "17.0");
    assert_eq!(s["products_in_odoo"], 120, "{s}");
    assert!(s["faults_injected"].as_u64().unwrap() >= 1, "{s}");
    // Each channel's figures under its own name.
    let cartona = &s["channels"]["cartona"];
    let medusa = &s["channels"]["medusa"];
    assert_eq!(
        (
            cartona["products_mapped"].as_u64(),
            cartona["products_pushed"].as_u64()
        ),
        (Some(120), Some(120)),
        "the map import and the initial full push reached Cartona: {s}"
    );
    assert!(cartona["orders_imported"].as_u64().unwrap() >= 3, "{s}");
    assert!(cartona["statuses_sent"].as_u64().unwrap() >= 1, "{s}");
    assert!(cartona["requests"].as_u64().unwrap() >= 1, "{s}");
    assert!(
        cartona.get("webhooks_lost").is_none(),
        "Cartona sends no webhooks: {s}"
    );
    assert_eq!(medusa["products_pushed"], 120, "{s}");
    assert!(medusa["orders_placed"].as_u64().unwrap() >= 2, "{s}");
    assert!(medusa["orders_imported"].as_u64().unwrap() >= 1, "{s}");
    assert!(medusa["webhooks_lost"].as_u64().is_some(), "{s}");
    for (name, c) in [("cartona", cartona), ("medusa", medusa)] {
        assert_eq!(
            c["dead_jobs"], 0,
            "{name}: injected faults are retried, not dead: {s}"
        );
    }
}
