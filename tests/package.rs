//! The Debian package: built by `cargo deb` from the metadata in Cargo.toml (from the binary
//! the tests run), unpacked into a scratch root, and checked as an operator's `apt install`
//! would leave it: the binary runs from there, the units pass `systemd-analyze verify`, the
//! config is a 0640 conffile, and the maintainer scripts create the user and start nothing.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The cargo-deb `.ci/run` installs (a test reaches no registry itself). Missing under CI is a
/// failure; on a developer's machine without it the test says so and stops.
fn cargo_deb() -> Option<PathBuf> {
    let found = Command::new("cargo-deb")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return Some(PathBuf::from("cargo-deb"));
    }
    let why = "cargo-deb is not installed: `cargo install cargo-deb --locked --version 3.8.0` (.ci/run does)";
    assert!(std::env::var_os("CI").is_none(), "{why}");
    eprintln!("{why}; skipping the package test");
    None
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn the_debian_package_installs_into_a_scratch_root_and_runs() {
    let Some(cargo_deb) = cargo_deb() else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    // cargo deb takes the binary from <target>/release: the one the tests built stands in.
    let target = work.path().join("target");
    std::fs::create_dir_all(target.join("release")).unwrap();
    std::fs::copy(
        env!("CARGO_BIN_EXE_marketsync"),
        target.join("release").join("marketsync"),
    )
    .unwrap();
    let out_dir = work.path().join("out");
    run(Command::new(&cargo_deb)
        .arg("deb")
        .args(["--no-build", "--fast", "--manifest-path"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
        .arg("-o")
        .arg(&out_dir)
        .env("CARGO_TARGET_DIR", &target));
    let deb = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .expect("a .deb");
    assert!(
        deb.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(&format!("marketsync_{}", env!("CARGO_PKG_VERSION"))),
        "{}",
        deb.display()
    );

    // What dpkg would install.
    let root = work.path().join("root");
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root));
    let bin = root.join("usr/bin/marketsync");
    assert_eq!(mode(&bin), 0o755);
    for f in [
        "lib/systemd/system/marketsync.service",
        "lib/systemd/system/marketsync@.service",
        "usr/lib/sysusers.d/marketsync.conf",
        "usr/share/doc/marketsync/config.example.toml",
        "usr/share/doc/marketsync/README.md",
    ] {
        assert!(root.join(f).is_file(), "{f} missing from the package");
    }
    let config = root.join("etc/marketsync/config.toml");
    assert_eq!(mode(&config), 0o640, "the config is not world-readable");
    assert_eq!(
        std::fs::read_to_string(&config).unwrap(),
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.toml"))
            .unwrap()
    );

    // The control part: the config is a conffile; the scripts create the user and the state
    // directory, reload systemd, and start nothing.
    let control = work.path().join("control");
    run(Command::new("dpkg-deb").arg("-e").arg(&deb).arg(&control));
    let conffiles = std::fs::read_to_string(control.join("conffiles")).unwrap();
    assert!(
        conffiles
            .lines()
            .any(|l| l == "/etc/marketsync/config.toml"),
        "{conffiles}"
    );
    let postinst = std::fs::read_to_string(control.join("postinst")).unwrap();
    for needed in [
        "systemd-sysusers marketsync.conf",
        "chgrp marketsync /etc/marketsync/config.toml",
        "install -d -o marketsync -g marketsync -m 0750 /var/lib/marketsync",
        "systemctl daemon-reload",
    ] {
        assert!(postinst.contains(needed), "postinst lacks {needed}");
    }
    let commands: Vec<&str> = postinst
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect();
    for forbidden in [
        "systemctl enable",
        "systemctl start",
        "deb-systemd-invoke start",
    ] {
        assert!(
            !commands.iter().any(|l| l.contains(forbidden)),
            "postinst must not {forbidden}"
        );
    }
    assert!(std::fs::read_to_string(control.join("prerm"))
        .unwrap()
        .contains("systemctl stop marketsync.service"));
    let fields = run(Command::new("dpkg-deb").arg("-f").arg(&deb));
    assert!(fields.contains("Package: marketsync"), "{fields}");

    // The binary runs from the scratch root, and reads the shipped example.
    let version = run(Command::new(&bin).arg("--version"));
    assert!(version.contains(env!("CARGO_PKG_VERSION")), "{version}");
    let checked = run(Command::new(&bin)
        .arg("--config")
        .arg(root.join("usr/share/doc/marketsync/config.example.toml"))
        .args(["config", "check"]));
    assert!(checked.contains("valid"), "{checked}");

    // The units as installed pass systemd-analyze verify (with ExecStart on the unpacked binary).
    for (src, dest) in [
        ("marketsync.service", "marketsync.service"),
        ("marketsync@.service", "marketsync@prod.service"),
    ] {
        let text = std::fs::read_to_string(root.join("lib/systemd/system").join(src)).unwrap();
        if !common::verify_unit(&text, dest, &bin) {
            return;
        }
    }
}
