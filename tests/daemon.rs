//! The daemon as an operator meets it: `check` and `run` against the Odoo simulator, readiness,
//! `/healthz`, waiting out an Odoo outage, a rejected login, SIGTERM, and secrets that never
//! show up anywhere.

mod common;

use assert_cmd::Command;
use common::{config, config_text, odoo_sim, wait_until};
use marketsync::config::OdooProtocol;
use marketsync::daemon::Daemon;
use marketsync::store::synclog::{self, Query};
use marketsync::store::{facts, Store};
use std::path::Path;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn bin() -> Command {
    let mut c = Command::cargo_bin("marketsync").unwrap();
    c.env("NO_COLOR", "1").env_remove("MARKETSYNC_CONFIG");
    c
}

async fn run_cmd(mut cmd: Command) -> std::process::Output {
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn check_prints_the_odoo_version_and_user_and_fails_on_a_wrong_key() {
    let sim = odoo_sim(17, 5).await;
    let dir = tempfile::tempdir().unwrap();
    for protocol in [OdooProtocol::Xmlrpc, OdooProtocol::Jsonrpc] {
        let path = dir.path().join("ok.toml");
        std::fs::write(&path, config_text(&sim.url(), protocol, dir.path(), "")).unwrap();
        let mut cmd = bin();
        cmd.arg("--config").arg(&path).arg("check");
        let out = run_cmd(cmd).await;
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("ok    odoo     Odoo 17.0 at"), "{stdout}");
        assert!(
            stdout.contains("logged in as Mitchell Admin (admin), uid 2"),
            "{stdout}"
        );
    }
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        config_text(&sim.url(), OdooProtocol::Xmlrpc, dir.path(), "")
            .replace("api_key = \"admin\"", "api_key = \"wrong-key-7781\""),
    )
    .unwrap();
    let mut cmd = bin();
    cmd.arg("--config").arg(&path).arg("check");
    let out = run_cmd(cmd).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout.contains(
            "FAIL  odoo     Odoo rejected the login for user \"admin\" on database \"odoo\""
        ),
        "{stdout}"
    );
    assert!(
        !stdout.contains("wrong-key-7781")
            && !String::from_utf8_lossy(&out.stderr).contains("wrong-key-7781")
    );
}

#[tokio::test]
async fn the_daemon_becomes_ready_serves_healthz_and_stops_cleanly() {
    let sim = odoo_sim(17, 5).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        &sim.url(),
        OdooProtocol::Xmlrpc,
        dir.path(),
        "[schedule]\nodoo_health = \"1s\"\n",
    );
    let store = Store::open(&cfg.state.path).unwrap();
    let mut daemon = Daemon::new(cfg, store.clone());
    let (tx, rx) = tokio::sync::oneshot::channel();
    daemon.bound = Some(tx);
    let token = CancellationToken::new();
    let task = tokio::spawn(daemon.run(token.clone()));
    let addr = tokio::time::timeout(Duration::from_secs(30), rx)
        .await
        .unwrap()
        .unwrap();
    let health: serde_json::Value = reqwest::get(format!("http://{addr}/healthz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    // `/metrics` is the operator's: not on the public webhook address, but on `admin.listen`.
    let admin = common::admin_addr(&store);
    assert_ne!(admin, addr);
    let public = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap();
    assert_eq!(
        public.status().as_u16(),
        404,
        "no /metrics on the webhook listener"
    );
    let admin_health = reqwest::get(format!("http://{admin}/healthz"))
        .await
        .unwrap();
    assert_eq!(admin_health.status().as_u16(), 200);
    // The listener starts before the Odoo login: the Odoo figures appear once it is done.
    let mut metrics = String::new();
    let end = tokio::time::Instant::now() + Duration::from_secs(60);
    while tokio::time::Instant::now() < end {
        metrics = reqwest::get(format!("http://{admin}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if metrics.contains("marketsync_odoo_call_seconds_count") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(metrics.contains("marketsync_odoo_up 1"), "{metrics}");
    assert!(
        metrics.contains("marketsync_odoo_call_seconds_count"),
        "{metrics}"
    );
    wait_until("a health check ran", Duration::from_secs(10), || {
        marketsync::store::streams::get(&store, "odoo.health")
            .unwrap()
            .is_some_and(|s| s.last_success_at.is_some())
    })
    .await;
    assert_eq!(
        facts::get(&store, facts::ODOO_VERSION).unwrap().unwrap().0,
        "17.0"
    );
    token.cancel();
    tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let log = synclog::query(
        &store,
        &Query {
            limit: 10,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(
        log.first()
            .unwrap()
            .message
            .starts_with("started; Odoo 17.0"),
        "{log:?}"
    );
    assert_eq!(log.last().unwrap().message, "stopped");
}

#[tokio::test]
async fn the_daemon_waits_for_odoo_and_shows_it_unreachable() {
    let mut sim = odoo_sim(17, 5).await;
    sim.stop().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        &sim.url(),
        OdooProtocol::Xmlrpc,
        dir.path(),
        "[schedule]\nodoo_health = \"1s\"\n",
    );
    let store = Store::open(&cfg.state.path).unwrap();
    let mut daemon = Daemon::new(cfg, store.clone());
    let (tx, mut rx) = tokio::sync::oneshot::channel();
    daemon.bound = Some(tx);
    let token = CancellationToken::new();
    let task = tokio::spawn(daemon.run(token.clone()));
    wait_until("Odoo marked unreachable", Duration::from_secs(30), || {
        facts::get(&store, facts::ODOO_DOWN_SINCE)
            .unwrap()
            .is_some()
    })
    .await;
    // Listening already (webhooks are taken while Odoo is down), but not started.
    let addr = tokio::time::timeout(Duration::from_secs(30), &mut rx)
        .await
        .unwrap()
        .unwrap();
    let health = reqwest::get(format!("http://{addr}/healthz"))
        .await
        .unwrap();
    assert!(health.status().is_success());
    let started = || {
        common::sync_log(&store)
            .iter()
            .any(|r| r.operation == "daemon.start")
    };
    assert!(!started(), "not started while Odoo is down");
    let status = facts::get(&store, facts::ODOO_STATUS).unwrap().unwrap().0;
    assert!(status.starts_with("cannot reach Odoo at"), "{status}");

    // Odoo comes back: the daemon logs in and clears the outage.
    sim.restart().await.unwrap();
    wait_until(
        "started once Odoo is back",
        Duration::from_secs(90),
        started,
    )
    .await;
    assert!(facts::get(&store, facts::ODOO_DOWN_SINCE)
        .unwrap()
        .is_none());

    // An outage while running: the health stream records it, then the recovery.
    sim.sim
        .faults
        .down(marketsync::sim::faults::Fault::BadGateway);
    wait_until("outage seen", Duration::from_secs(30), || {
        facts::get(&store, facts::ODOO_DOWN_SINCE)
            .unwrap()
            .is_some()
    })
    .await;
    sim.sim.faults.up();
    wait_until("recovery seen", Duration::from_secs(30), || {
        facts::get(&store, facts::ODOO_DOWN_SINCE)
            .unwrap()
            .is_none()
    })
    .await;
    let log = common::sync_log(&store);
    assert!(
        log.iter()
            .any(|r| r.operation == "odoo.health" && r.message.contains("502")),
        "{log:?}"
    );
    // The recovery note is written just after the fact is cleared: wait for it, do not race it.
    wait_until("recovery logged", Duration::from_secs(30), || {
        common::sync_log(&store)
            .iter()
            .any(|r| r.message == "Odoo answers again")
    })
    .await;
    token.cancel();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_rejected_login_stops_the_daemon_with_the_config_exit_code() {
    let sim = odoo_sim(17, 1).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(
        &path,
        config_text(&sim.url(), OdooProtocol::Jsonrpc, dir.path(), "")
            .replace("api_key = \"admin\"", "api_key = \"revoked-key-5521\""),
    )
    .unwrap();
    let mut cmd = bin();
    cmd.arg("--config")
        .arg(&path)
        .arg("run")
        .timeout(Duration::from_secs(30));
    let out = run_cmd(cmd).await;
    assert_eq!(out.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Odoo rejected the login for user \"admin\" on database \"odoo\""),
        "{stderr}"
    );
    assert!(!stderr.contains("revoked-key-5521"));
}

fn read_all_text(dir: &Path) -> String {
    let store = Store::open_read_only(&dir.join("state.db")).unwrap();
    let rows = common::sync_log(&store);
    let mut text = serde_json::to_string(&rows).unwrap();
    for key in [facts::ODOO_STATUS, facts::ODOO_USER, facts::ODOO_VERSION] {
        if let Some((v, _)) = facts::get(&store, key).unwrap() {
            text.push_str(&v);
        }
    }
    text
}

#[tokio::test]
async fn sigterm_stops_the_daemon_with_exit_0_and_secrets_appear_nowhere() {
    const ODOO_KEY: &str = "odoo-key-ZXQ81";
    const TOKEN: &str = "cartona-token-JWT-4471";
    let sim = marketsync::sim::odoo::start(marketsync::sim::odoo::SimOptions {
        api_key: ODOO_KEY.into(),
        products: 5,
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    let text = config_text(
        &sim.url(),
        OdooProtocol::Xmlrpc,
        dir.path(),
        &format!("[schedule]\nodoo_health = \"1s\"\n[channels.cartona]\ntoken = \"{TOKEN}\"\n"),
    )
    .replace("api_key = \"admin\"", &format!("api_key = \"{ODOO_KEY}\""));
    std::fs::write(&path, text).unwrap();

    let mut outputs = String::new();
    for format in ["text", "json"] {
        let exe = assert_cmd::cargo::cargo_bin("marketsync");
        let child = std::process::Command::new(exe)
            .args([
                "--config",
                path.to_str().unwrap(),
                "--log-format",
                format,
                "run",
            ])
            .env("RUST_LOG", "debug")
            .stderr(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let state = dir.path().to_path_buf();
        // Ready: the daemon's heartbeat is in the state file.
        wait_until("daemon heartbeat", Duration::from_secs(30), || {
            Store::open_read_only(&state.join("state.db"))
                .ok()
                .and_then(|s| facts::get(&s, facts::DAEMON_HEARTBEAT).ok().flatten())
                .is_some()
        })
        .await;
        // An Odoo error that echoes the key: it must be recorded, scrubbed.
        let seen_before = read_all_text(&state).matches("boom").count();
        sim.sim
            .faults
            .push([marketsync::sim::faults::Fault::Status {
                status: 500,
                body: format!("boom {ODOO_KEY}"),
                retry_after: None,
            }]);
        wait_until("the 500 recorded", Duration::from_secs(30), || {
            read_all_text(&state).matches("boom").count() > seen_before
        })
        .await;
        std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
            .await
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "SIGTERM is a clean stop: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        outputs.push_str(&String::from_utf8_lossy(&out.stderr));
        outputs.push_str(&String::from_utf8_lossy(&out.stdout));
    }
    assert!(outputs.contains("SIGTERM received"), "{outputs}");
    for cmd in [
        vec!["status"],
        vec!["status", "--json"],
        vec!["logs", "--json"],
        vec!["queue", "list"],
        vec!["check"],
        vec!["config", "check"],
    ] {
        let mut c = bin();
        c.arg("--config").arg(&path).args(&cmd);
        let out = run_cmd(c).await;
        outputs.push_str(&String::from_utf8_lossy(&out.stdout));
        outputs.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    outputs.push_str(&read_all_text(dir.path()));
    assert!(
        outputs.contains("boom [redacted]"),
        "the peer's echo of the key was scrubbed, not dropped: {outputs}"
    );
    for secret in [ODOO_KEY, TOKEN] {
        assert!(!outputs.contains(secret), "{secret} leaked");
    }
}

/// Before Odoo stops answering: an API key that expires within 14 days (Odoo 18+ records the
/// expiry) and a protocol Odoo 19 has deprecated are warned about by `check` and `status`.
#[tokio::test]
async fn check_and_status_warn_of_an_expiring_key_and_a_deprecated_protocol() {
    let sim = odoo_sim(19, 5).await;
    let fmt = |days: i64| {
        (chrono::Utc::now() + chrono::Duration::days(days))
            .format("%Y-%m-%d %H:%M:%S")
            .to_string()
    };
    {
        let mut w = sim.sim.world();
        w.add_api_key("marketsync", Some(&fmt(5)));
        w.add_api_key("a later one", Some(&fmt(60)));
        w.add_api_key("forever", None);
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(
        &path,
        config_text(&sim.url(), OdooProtocol::Xmlrpc, dir.path(), ""),
    )
    .unwrap();
    let mut cmd = bin();
    cmd.arg("--config").arg(&path).arg("check");
    let out = run_cmd(cmd).await;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "warnings do not fail check: {stdout}");
    let warnings: Vec<&str> = stdout.lines().filter(|l| l.starts_with("WARN")).collect();
    assert_eq!(warnings.len(), 2, "{stdout}");
    assert!(
        warnings
            .iter()
            .any(|l| l.contains("API key \"marketsync\" expires in 4 days")
                || l.contains("API key \"marketsync\" expires in 5 days")),
        "{stdout}"
    );
    assert!(
        warnings
            .iter()
            .any(|l| l.contains("odoo.protocol = \"xmlrpc\" is deprecated since Odoo 19")),
        "{stdout}"
    );
    assert!(!stdout.contains("a later one") && !stdout.contains("forever"));

    // The daemon records them; `status` shows them; the sync log says each once.
    let cfg = config(&sim.url(), OdooProtocol::Xmlrpc, dir.path(), "");
    let store = Store::open(&cfg.state.path).unwrap();
    let (stop, task, _) = common::spawn_daemon(cfg, store.clone()).await;
    wait_until("notices recorded", Duration::from_secs(30), || {
        facts::get(&store, facts::ODOO_NOTICES).unwrap().is_some()
    })
    .await;
    let mut cmd = bin();
    cmd.arg("--config").arg(&path).arg("status");
    let status = String::from_utf8_lossy(&run_cmd(cmd).await.stdout).to_string();
    assert!(
        status.contains("warning: the integration user's API key \"marketsync\" expires in"),
        "{status}"
    );
    assert!(
        status.contains("warning: odoo.protocol = \"xmlrpc\" is deprecated"),
        "{status}"
    );
    let notices = synclog::query(
        &store,
        &Query {
            limit: 1000,
            ..Default::default()
        },
    )
    .unwrap()
    .into_iter()
    .filter(|r| r.operation == "odoo.notice")
    .count();
    assert_eq!(notices, 2);
    stop.cancel();
    task.await.unwrap().unwrap();
}
