//! The systemd units carry what the service needs (notify, dedicated user, state and config
//! directories, credentials, sandboxing) and pass `systemd-analyze verify` where it exists.

mod common;

use std::path::Path;

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
    // ExecStart on the binary just built, as an installed unit names the installed one.
    let exe = Path::new(env!("CARGO_BIN_EXE_marketsync"));
    for (src, dest) in [
        ("marketsync.service", "marketsync.service"),
        ("marketsync@.service", "marketsync@prod.service"),
    ] {
        if !common::verify_unit(&unit(src), dest, exe) {
            return;
        }
    }
}
