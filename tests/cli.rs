//! The operator's CLI, run as the real binary: config checks, and `status`, `logs`, `queue` and
//! `map` on a fresh and on a populated state.

use assert_cmd::Command;
use marketsync::config::{HumanDuration, RetryConfig};
use marketsync::retry::RetryClass;
use marketsync::store::queue::{self, NewJob};
use marketsync::store::synclog::{self, Entry, Level};
use marketsync::store::{facts, now_ms, streams, Store};
use predicates::prelude::*;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn marketsync(config: &Path) -> Command {
    let mut c = Command::cargo_bin("marketsync").unwrap();
    c.env("NO_COLOR", "1")
        .env_remove("MARKETSYNC_CONFIG")
        .arg("--config")
        .arg(config);
    c
}

fn write_config(dir: &Path, extra: &str) -> PathBuf {
    let path = dir.join("config.toml");
    std::fs::write(
        &path,
        format!("[odoo]\nurl = \"http://127.0.0.1:9\"\ndatabase = \"odoo\"\nusername = \"admin\"\napi_key = \"admin\"\n[state]\npath = \"state.db\"\n{extra}"),
    )
    .unwrap();
    path
}

fn populate(dir: &Path) -> (i64, i64) {
    let store = Store::open(&dir.join("state.db")).unwrap();
    let job = |key: &str| NewJob {
        channel: "cartona".into(),
        kind: "price".into(),
        key: key.into(),
        payload: serde_json::json!({"selling_price": "12.50"}).into(),
        correlation_id: None,
    };
    let pending = queue::enqueue(&store, job("cartona:price:7")).unwrap().id();
    let dead = queue::enqueue(&store, job("cartona:price:8")).unwrap().id();
    // Claim both, put one back and fail the other for good.
    let claimed = queue::claim_due(
        &store,
        now_ms(),
        &std::collections::HashMap::from([("cartona".to_string(), 2)]),
    )
    .unwrap();
    assert_eq!(claimed.len(), 2);
    queue::release(&store, pending).unwrap();
    let policy = RetryConfig {
        max_attempts: 5,
        base_delay: HumanDuration(Duration::from_secs(1)),
        max_delay: HumanDuration(Duration::from_secs(10)),
    };
    queue::fail(
        &store,
        dead,
        RetryClass::Auth,
        "Cartona rejected the token",
        &policy,
        now_ms(),
    )
    .unwrap();
    synclog::append(
        &store,
        Entry::new(Level::Info, "cartona.catalog", "pushed 120 products")
            .channel("cartona")
            .records(120),
    )
    .unwrap();
    synclog::append(
        &store,
        Entry::new(
            Level::Error,
            "job.price",
            "job 2 is dead: auth error, not retried: Cartona rejected the token",
        )
        .channel("cartona"),
    )
    .unwrap();
    streams::succeeded(&store, "cartona.catalog", Some("2026-11-21 10:00:00")).unwrap();
    facts::set(&store, facts::ODOO_VERSION, "17.0").unwrap();
    facts::set(&store, facts::ODOO_STATUS, "ok").unwrap();
    (pending, dead)
}

#[test]
fn the_example_config_is_valid() {
    Command::cargo_bin("marketsync")
        .unwrap()
        .args([
            "config",
            "check",
            "--config",
            concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.toml"),
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("valid"));
}

#[test]
fn config_check_names_the_key_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), "[channels.cartona]\nbatch_size = \"lots\"\n");
    marketsync(&path)
        .args(["config", "check"])
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "channels.cartona.batch_size: expected an integer",
        ));
    let path = write_config(dir.path(), "[retry]\nmax_atempts = 3\n");
    marketsync(&path)
        .args(["config", "check"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("retry.max_atempts: unknown field"));
    marketsync(&dir.path().join("missing.toml"))
        .args(["config", "check"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("cannot read config file"));
}

/// A short secret is warned about, and the scrubber leaves words that merely contain it alone
/// (the Odoo key "admin" once turned "admin-api" into "[redacted]-api" in a config error).
#[test]
fn config_check_warns_of_short_secrets_and_errors_keep_their_words() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), "");
    marketsync(&path)
        .args(["config", "check"])
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "warning: odoo.api_key is 5 characters long: a secret under 12 characters is easy to guess",
        ))
        .stderr(predicate::str::contains("admin\"").not());
    let long = dir.path().join("long.toml");
    std::fs::write(
        &long,
        std::fs::read_to_string(&path).unwrap().replace(
            "api_key = \"admin\"",
            "api_key = \"a-long-enough-odoo-key-0001\"",
        ),
    )
    .unwrap();
    marketsync(&long)
        .args(["config", "check"])
        .assert()
        .success()
        .stderr(predicate::str::contains("warning").not());
    let path = write_config(
        dir.path(),
        "[channels.medusa]\nenabled = true\nflavour = \"admin-api\"\nbase_url = \"http://127.0.0.1:9\"\ntoken = \"sk_0123456789abcdef\"\n",
    );
    marketsync(&path)
        .args(["config", "check"])
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "the admin-api flavour needs the stock location",
        ))
        .stderr(predicate::str::contains("[redacted]").not());
}

#[test]
fn the_operator_listener_cannot_share_the_webhook_address() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        "[webhooks]\nlisten = \"127.0.0.1:8787\"\n[admin]\nlisten = \"127.0.0.1:8787\"\n",
    );
    marketsync(&path)
        .args(["config", "check"])
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "admin.listen: is the same address as webhooks.listen",
        ));
}

#[test]
fn status_on_a_fresh_state_prints_an_empty_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), "");
    let out = marketsync(&path)
        .arg("status")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("(not created yet)"), "{text}");
    assert!(text.contains("daemon  not running"), "{text}");
    let table: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("CHANNEL"))
        .take(5)
        .collect();
    assert_eq!(
        table[0].split_whitespace().collect::<Vec<_>>(),
        [
            "CHANNEL", "ENABLED", "PENDING", "RUNNING", "RETRYING", "DEAD", "DONE", "PARKED",
            "LAST", "SUCCESS", "LAST", "ERROR"
        ]
    );
    for (line, name) in table[1..]
        .iter()
        .zip(["cartona", "medusa", "meta", "whatsapp", "sha6er"])
    {
        assert_eq!(
            line.split_whitespace().collect::<Vec<_>>(),
            [name, "no", "0", "0", "0", "0", "0", "0", "-", "-"]
        );
    }
    // Columns are aligned: every row puts ENABLED at the same offset.
    let col = table[0].find("ENABLED").unwrap();
    assert!(table[1..].iter().all(|l| &l[col..col + 2] == "no"));
    let json: serde_json::Value = serde_json::from_slice(
        &marketsync(&path)
            .args(["status", "--json"])
            .assert()
            .success()
            .get_output()
            .stdout,
    )
    .unwrap();
    assert_eq!(json["channels"].as_array().unwrap().len(), 5);
    assert_eq!(json["daemon_running"], false);
    marketsync(&path)
        .arg("queue")
        .arg("list")
        .assert()
        .success()
        .stdout(predicate::str::contains("(no jobs)"));
    marketsync(&path)
        .arg("logs")
        .assert()
        .success()
        .stdout(predicate::str::contains("(no log entries match)"));
    assert!(
        !dir.path().join("state.db").exists(),
        "reading commands create nothing"
    );
}

#[test]
fn status_logs_and_queue_on_a_populated_state() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), "");
    let (pending, dead) = populate(dir.path());

    let text = String::from_utf8(
        marketsync(&path)
            .arg("status")
            .assert()
            .success()
            .get_output()
            .stdout
            .clone(),
    )
    .unwrap();
    let cartona = text.lines().find(|l| l.starts_with("cartona")).unwrap();
    assert_eq!(
        cartona.split_whitespace().take(8).collect::<Vec<_>>(),
        ["cartona", "no", "1", "0", "0", "1", "0", "0"]
    );
    assert!(cartona.contains("job 2 is dead"), "{cartona}");
    assert!(text.contains("reachable, Odoo 17.0"), "{text}");
    assert!(
        text.lines().any(|l| l.starts_with("cartona.catalog")),
        "{text}"
    );
    let json: serde_json::Value = serde_json::from_slice(
        &marketsync(&path)
            .args(["status", "--json"])
            .assert()
            .success()
            .get_output()
            .stdout,
    )
    .unwrap();
    assert_eq!(json["channels"][0]["jobs"]["dead"], 1);
    assert_eq!(json["channels"][0]["jobs"]["pending"], 1);

    marketsync(&path).arg("logs").assert().success().stdout(
        predicate::str::contains("pushed 120 products")
            .and(predicate::str::contains("Cartona rejected the token")),
    );
    marketsync(&path)
        .args(["logs", "--level", "error"])
        .assert()
        .success()
        .stdout(predicate::str::contains("pushed 120").not());
    marketsync(&path)
        .args(["logs", "--channel", "medusa"])
        .assert()
        .success()
        .stdout(predicate::str::contains("(no log entries match)"));
    marketsync(&path)
        .args(["logs", "--since", "1h", "--limit", "1"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("Cartona rejected")
                .and(predicate::str::contains("pushed 120").not()),
        );
    let lines = marketsync(&path)
        .args(["logs", "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let rows: Vec<serde_json::Value> = String::from_utf8(lines)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1]["level"], "error");
    marketsync(&path)
        .args(["logs", "--level", "loud"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("unknown level"));

    marketsync(&path)
        .args(["queue", "list", "--state", "dead"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("cartona:price:8")
                .and(predicate::str::contains("cartona:price:7").not()),
        );
    let listed: serde_json::Value = serde_json::from_slice(
        &marketsync(&path)
            .args(["queue", "list", "--json"])
            .assert()
            .success()
            .get_output()
            .stdout,
    )
    .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2);
    marketsync(&path)
        .args(["queue", "show", &dead.to_string()])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("auth error, not retried: Cartona rejected the token")
                .and(predicate::str::contains("\"selling_price\": \"12.50\"")),
        );
    marketsync(&path)
        .args(["queue", "show", "999"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("job 999 does not exist"));
    marketsync(&path)
        .args(["queue", "drop", &dead.to_string()])
        .assert()
        .success();
    marketsync(&path)
        .args(["queue", "retry", "--dead", "--channel", "nowhere"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("unknown channel \"nowhere\""));
    marketsync(&path)
        .args(["queue", "retry", "--channel", "cartona"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("--dead"));
    marketsync(&path)
        .args(["queue", "retry", "--dead", "--channel", "cartona"])
        .assert()
        .success()
        .stdout(predicate::str::contains("requeued 0 dead job(s)"));
    marketsync(&path)
        .args(["queue", "retry", "--dead"])
        .assert()
        .success()
        .stdout(predicate::str::contains("requeued 0 dead job(s)"));
    marketsync(&path)
        .args(["queue", "retry", &pending.to_string()])
        .assert()
        .success()
        .stdout(predicate::str::contains("pending again"));
    marketsync(&path)
        .args(["queue", "list"])
        .assert()
        .success()
        .stdout(predicate::str::contains("cartona:price:8").not());
}

#[test]
fn map_set_list_unset() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), "");
    marketsync(&path)
        .args([
            "map",
            "set",
            "--channel",
            "cartona",
            "--odoo-id",
            "904",
            "--external-id",
            "110774",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("product.product 904"));
    marketsync(&path)
        .args([
            "map",
            "set",
            "--channel",
            "cartona",
            "--odoo-id",
            "905",
            "--external-id",
            "110774",
        ])
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "already mapped to product.product 904",
        ));
    marketsync(&path)
        .args([
            "map",
            "set",
            "--channel",
            "amazon",
            "--odoo-id",
            "1",
            "--external-id",
            "x",
        ])
        .assert()
        .failure()
        .stderr(predicate::str::contains("unknown channel"));
    marketsync(&path)
        .args(["map", "list"])
        .assert()
        .success()
        .stdout(predicate::str::contains("110774"));
    marketsync(&path)
        .args([
            "map",
            "unset",
            "--channel",
            "cartona",
            "--external-id",
            "110774",
        ])
        .assert()
        .success();
    marketsync(&path)
        .args(["map", "list", "--json"])
        .assert()
        .success()
        .stdout(predicate::str::diff("[]\n"));
}

#[test]
fn state_file_overrides_the_configured_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), "");
    let elsewhere = tempfile::tempdir().unwrap();
    populate(elsewhere.path());
    let out = marketsync(&path)
        .args(["--state-file"])
        .arg(elsewhere.path().join("state.db"))
        .args(["status", "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let json: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(json["channels"][0]["jobs"]["dead"], 1);
    assert!(!dir.path().join("state.db").exists());
}

/// A listing cut by `--limit` says so on stderr, and `--limit 0` gives everything: a script
/// reading `--json` never silently misses the rest.
#[test]
fn a_cut_listing_says_so_and_limit_0_means_all() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), "");
    populate(dir.path());
    {
        let store = Store::open(&dir.path().join("state.db")).unwrap();
        for id in 1..=120 {
            marketsync::store::mapping::set(
                &store,
                "cartona",
                "product",
                "product.product",
                id,
                &format!("ext-{id}"),
            )
            .unwrap();
        }
    }
    let listed = |args: &[&str]| {
        let out = marketsync(&path).args(args).assert().success();
        let out = out.get_output();
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (
            json.as_array().unwrap().len(),
            String::from_utf8(out.stderr.clone()).unwrap(),
        )
    };
    let (n, stderr) = listed(&["map", "list", "--json"]);
    assert_eq!(n, 100);
    assert!(
        stderr.contains("showing 100 of 120 mappings; --limit 0 for all"),
        "{stderr}"
    );
    let (n, stderr) = listed(&["map", "list", "--json", "--limit", "0"]);
    assert_eq!((n, stderr.as_str()), (120, ""));
    let (n, stderr) = listed(&["queue", "list", "--json", "--limit", "1"]);
    assert_eq!(n, 1);
    assert!(stderr.contains("showing 1 of 2 jobs"), "{stderr}");
    let (n, stderr) = listed(&["queue", "list", "--json", "--limit", "0"]);
    assert_eq!((n, stderr.as_str()), (2, ""));
    // The log prints one JSON object a line.
    let out = marketsync(&path)
        .args(["logs", "--json", "--limit", "1"])
        .assert()
        .success();
    let out = out.get_output();
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
    assert!(String::from_utf8_lossy(&out.stderr).contains("showing 1 of 2 log entries"));
    let out = marketsync(&path)
        .args(["logs", "--json", "--limit", "0"])
        .assert()
        .success();
    assert_eq!(
        String::from_utf8_lossy(&out.get_output().stdout)
            .lines()
            .count(),
        2
    );
}
