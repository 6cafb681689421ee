//! `marketsync demo`, the README's first command, runs the real daemon against the simulator
//! and ends with a summary.

use assert_cmd::Command;

#[test]
fn demo_runs_and_summarizes_as_json() {
    let out = Command::cargo_bin("marketsync")
        .unwrap()
        .env("NO_COLOR", "1")
        .args(["demo", "--seconds", "4", "--products", "120", "--json"])
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("only the JSON summary on stdout");
    assert_eq!(summary["odoo_version"], "17.0");
    assert_eq!(summary["products_in_odoo"], 120);
    assert!(summary["odoo_calls"].as_u64().unwrap() >= 3);
    assert_eq!(summary["dead_jobs"], 0);
    assert!(
        summary["sync_log_entries"].as_u64().unwrap() >= 2,
        "started and stopped at least"
    );
}
