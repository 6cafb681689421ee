//! marketsync keeps a supplier's Odoo in step with the marketplaces it sells through.
//!
//! # Layout
//!
//! - [`bench`]: `marketsync bench`: the speed and memory figures, simulators in their own processes.
//! - [`channel`]: one folder per marketplace (Cartona, Medusa), classified HTTP, optional parts.
//! - [`cli`]: the operator's commands (`init`, `status`, `logs`, `queue`, `map`, `order`, `check`, `config check`).
//! - [`config`]: the TOML file, parsed (`deny_unknown_fields`), then validated without network.
//! - [`daemon`]: `marketsync run`: scheduler, workers, housekeeping, storage pause, systemd notify.
//! - [`error`]: the library's typed error; its retry class comes from its source.
//! - [`demo`]: `marketsync demo`, the real daemon against the simulators.
//! - [`internal_events`]: one type per thing that happened: tracing line, sync-log row and counter together.
//! - [`odoo`]: one async Odoo client over XML-RPC, JSON-RPC or JSON-2, the codec, errors, profile.
//! - [`retry`]: how an error is classified (transient, rate-limited, permanent, auth) and the backoff.
//! - [`secret`]: API keys and tokens: inline, `*_file` or `*_env`, never printed.
//! - [`sim`]: simulators of the peers (Odoo, Cartona, Medusa) and fault injection, for the demo and tests.
//! - [`store`]: the SQLite state file: mappings, durable job queue, sync log, cursors, inbox, orders, order events, facts.
//! - [`sync`]: what is shared by channels: the catalog read, pricelists, order import, the order watcher, money.
//! - [`telemetry`]: tracing setup (text, JSON, journald-friendly).
//! - [`webhook`]: the HTTP listener: `/healthz`, `/metrics`, the channels' webhooks, the inbox writer.

pub mod bench;
pub mod channel;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod error;
pub mod internal_events;
pub mod odoo;
pub mod retry;
pub mod secret;
pub mod sim;
pub mod store;
pub mod sync;
pub mod telemetry;
pub mod webhook;

#[cfg(test)]
mod layout_tests {
    /// Every public module is named in the layout above, and the layout names no other.
    #[test]
    fn the_layout_names_every_public_module() {
        let source = include_str!("lib.rs");
        let declared: Vec<&str> = source
            .lines()
            .filter_map(|l| l.strip_prefix("pub mod ")?.strip_suffix(';'))
            .collect();
        let listed: Vec<&str> = source
            .lines()
            .filter_map(|l| l.strip_prefix("//! - [`")?.split('`').next())
            .collect();
        assert!(!declared.is_empty());
        for m in &declared {
            assert!(listed.contains(m), "lib.rs layout misses the module `{m}`");
        }
        for m in &listed {
            assert!(
                declared.contains(m),
                "lib.rs layout names `{m}`, which is not a module"
            );
        }
    }

    /// The README's layout names every file and folder of `src/` (and of each channel folder).
    #[test]
    fn the_readme_layout_matches_the_tree() {
        let readme = include_str!("../README.md");
        let layout = readme
            .split("## Layout")
            .nth(1)
            .and_then(|rest| rest.split("```").nth(1))
            .expect("README has a Layout section with a code block");
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let names = |dir: &std::path::Path| -> Vec<String> {
            std::fs::read_dir(dir)
                .unwrap()
                .map(|e| {
                    let e = e.unwrap();
                    let name = e.file_name().to_string_lossy().to_string();
                    if e.path().is_dir() {
                        format!("{name}/")
                    } else {
                        name
                    }
                })
                .collect()
        };
        for name in names(&src) {
            let path = format!("src/{name}");
            assert!(layout.contains(&path), "README layout misses {path}");
        }
        for name in names(&src.join("channel")) {
            let shown = name.trim_end_matches(".rs").trim_end_matches('/');
            assert!(
                layout.contains(shown),
                "README layout misses src/channel/{name}"
            );
        }
    }
}
