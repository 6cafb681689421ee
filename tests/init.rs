//! `marketsync init` driven without a terminal: the answers as flags and environment variables,
//! each verified against the simulators before anything is written.

mod common;

use marketsync::config::MedusaFlavour;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

const CARTONA_TOKEN: &str = "cartona-init-token-0042";
const MEDUSA_KEY: &str = "sk_init_medusa_key_77";

/// `marketsync --config <config> init <args>` with these environment variables, off the
/// async threads (the simulators run on them).
async fn init(config: &Path, args: &[&str], envs: &[(&str, &str)]) -> std::process::Output {
    let mut c = assert_cmd::Command::cargo_bin("marketsync").unwrap();
    c.env("NO_COLOR", "1")
        .env_remove("MARKETSYNC_CONFIG")
        .arg("--config")
        .arg(config)
        .arg("init")
        .args(args);
    for (k, v) in envs {
        c.env(k, v);
    }
    tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// With the daemon's group on this machine (the package made it), init shares its files with
/// that group; without it, the owner alone reads them.
fn has_daemon_group() -> bool {
    std::fs::read_to_string("/etc/group")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("marketsync:"))
}

fn file_mode() -> u32 {
    if has_daemon_group() {
        0o640
    } else {
        0o600
    }
}

#[tokio::test]
async fn init_without_a_terminal_writes_a_config_that_checks() {
    let odoo = common::odoo_sim(19, 5).await;
    let cartona = marketsync::sim::cartona::start(0, CARTONA_TOKEN)
        .await
        .unwrap();
    let store = marketsync::sim::medusa::start(0, MedusaFlavour::AdminApi, MEDUSA_KEY, "egp")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("etc").join("config.toml");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    let state = dir.path().join("state.db");
    let args = vec![
        "--odoo-url".to_string(),
        odoo.url(),
        "--database".into(),
        "odoo".into(),
        "--username".into(),
        "admin".into(),
        "--channels".into(),
        "cartona,medusa".into(),
        "--cartona-url".into(),
        cartona.base_url(),
        "--medusa-url".into(),
        store.base_url(),
        "--medusa-location-id".into(),
        "sloc_01SIMWAREHOUSE".into(),
        // The currency Odoo's books are in (the check's currency guard fails any other).
        "--medusa-currency".into(),
        "EGP".into(),
        "--state-path".into(),
        state.display().to_string(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let envs = [
        ("MARKETSYNC_INIT_ODOO_API_KEY", "admin"),
        ("MARKETSYNC_INIT_CARTONA_TOKEN", CARTONA_TOKEN),
        ("MARKETSYNC_INIT_MEDUSA_TOKEN", MEDUSA_KEY),
    ];
    let out = init(&config, &args, &envs).await;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{stdout}{stderr}");
    // It ends with `check`: Odoo and both channels reached.
    assert!(stdout.contains("ok    odoo"), "{stdout}");
    assert!(stdout.contains("Cartona at"), "{stdout}");
    assert!(stdout.contains("Medusa (admin-api flavour) at"), "{stdout}");
    // JSON-2 proposed for Odoo 19.
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("protocol = \"json2\""), "{text}");
    assert_eq!(mode(&config), file_mode());
    // Secrets only in their files, each 0600.
    for inline in ["api_key =", "token =", "webhook_secret ="] {
        assert!(
            !text.contains(inline),
            "a secret inline in the config:\n{text}"
        );
    }
    for secret in [CARTONA_TOKEN, MEDUSA_KEY] {
        assert!(!text.contains(secret), "{secret} in the config:\n{text}");
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "{secret} shown"
        );
    }
    let creds = config.parent().unwrap().join("credentials");
    assert_eq!(mode(&creds), if has_daemon_group() { 0o750 } else { 0o700 });
    for (name, value) in [
        ("odoo-api-key", "admin"),
        ("cartona-token", CARTONA_TOKEN),
        ("medusa-token", MEDUSA_KEY),
    ] {
        let p = creds.join(name);
        assert_eq!(std::fs::read_to_string(&p).unwrap(), value, "{name}");
        assert_eq!(mode(&p), file_mode(), "{name}");
    }
    let hook = std::fs::read_to_string(creds.join("medusa-webhook-secret")).unwrap();
    assert!(
        hook.starts_with("whsec_") && hook.len() > 30,
        "a new random secret: {hook}"
    );
    // The written config is valid as it stands.
    let loaded = marketsync::config::Config::load(&config).unwrap();
    assert_eq!(loaded.enabled_channels().count(), 2);

    // Never overwritten without --force.
    std::fs::write(creds.join("odoo-api-key"), "admin").unwrap();
    let again = init(&config, &args, &envs).await;
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr)
            .contains("already exists; marketsync init never overwrites a config: pass --force"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(std::fs::read_to_string(&config).unwrap(), text);
}

#[tokio::test]
async fn init_refuses_a_wrong_key_or_a_missing_answer_and_writes_nothing() {
    let odoo = common::odoo_sim(17, 5).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    let url = odoo.url();
    let out = init(
        &config,
        &[
            "--odoo-url",
            &url,
            "--database",
            "odoo",
            "--username",
            "admin",
        ],
        &[("MARKETSYNC_INIT_ODOO_API_KEY", "wrong-key-0000000")],
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success());
    assert!(
        stderr.contains("Odoo rejected the login for user \"admin\""),
        "{stderr}"
    );
    assert!(!stderr.contains("wrong-key-0000000"), "{stderr}");
    assert!(!config.exists(), "nothing written");
    assert!(
        !dir.path().join("credentials").exists(),
        "no secret written"
    );
    // Without a terminal, a missing answer names its flag.
    let out = init(&config, &["--odoo-url", &url, "--database", "odoo"], &[]).await;
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        stderr.contains("Odoo user: give --username (no terminal to ask on)"),
        "{stderr}"
    );
    // On Odoo 17 XML-RPC is proposed.
    let out = init(
        &config,
        &[
            "--odoo-url",
            &url,
            "--database",
            "odoo",
            "--username",
            "admin",
            "--state-path",
            "state.db",
        ],
        &[("MARKETSYNC_INIT_ODOO_API_KEY", "admin")],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(std::fs::read_to_string(&config)
        .unwrap()
        .contains("protocol = \"xmlrpc\""));
}
