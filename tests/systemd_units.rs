//! The systemd units carry what the service needs (notify, dedicated user, state and config
//! directories, credentials, sandboxing) and pass `systemd-analyze verify` where it exists.

use std::path::Path;
use std::process::Command;

fn unit(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("systemd")
            .join(name),
    )
    .unwrap()
}

#[test]
fn units_declare_notify_user_directories_credentials_and_sandboxing() {
    for name in ["marketsync.service", "marketsync@.service"] {
        let text = unit(name);
        for directive in [
            "Type=notify",
            "WatchdogSec=",
            "User=marketsync",
            "StateDirectory=marketsync",
            "ConfigurationDirectory=marketsync",
            "LoadCredential=odoo-api-key:",
            "ProtectSystem=strict",
            "NoNewPrivileges=yes",
            "PrivateTmp=yes",
            "ProtectHome=yes",
            "RestartPreventExitStatus=78",
            " run",
        ] {
            assert!(text.contains(directive), "{name} lacks {directive}");
        }
    }
    assert!(unit("marketsync@.service").contains("StateDirectory=marketsync/%i"));
}

#[test]
fn systemd_analyze_verify_is_clean_where_available() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("systemd-analyze not installed: skipping the verify step");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let exe = env!("CARGO_BIN_EXE_marketsync");
    for (src, dest) in [
        ("marketsync.service", "marketsync.service"),
        ("marketsync@.service", "marketsync@prod.service"),
    ] {
        // Point ExecStart at the binary just built, as an installed unit would point at the installed one.
        let text = unit(src).replace("ExecStart=marketsync ", &format!("ExecStart={exe} "));
        let path = dir.path().join(dest);
        std::fs::write(&path, text).unwrap();
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .arg(&path)
            .output()
            .unwrap();
        let noise = String::from_utf8_lossy(&out.stderr);
        let ours: Vec<&str> = noise.lines().filter(|l| l.contains(dest)).collect();
        assert!(out.status.success() && ours.is_empty(), "{dest}: {noise}");
    }
}
