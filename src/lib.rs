//! marketsync keeps a supplier's Odoo in step with the marketplaces it sells through.
//!
//! # Layout
//!
//! - [`config`]: the TOML file, parsed (`deny_unknown_fields`), then validated without network.
//! - [`secret`]: API keys and tokens: inline, `*_file` or `*_env`, never printed.
//! - [`retry`]: how an error is classified (transient, rate-limited, permanent, auth) and the backoff.
//! - [`store`]: the SQLite state file: mappings, durable job queue, sync log, cursors, inbox.
//! - [`odoo`]: one async Odoo client over XML-RPC, JSON-RPC or JSON-2, and the XML-RPC codec.
//! - [`daemon`]: `marketsync run`: scheduler, workers, housekeeping, webhook listener, systemd notify.
//! - [`webhook`]: the HTTP listener (`/healthz`, later the channels' webhooks).
//! - [`cli`]: the operator's commands (`status`, `logs`, `queue`, `map`, `check`, `config check`).
//! - [`sim`]: simulators of the peers (Odoo today), used by `marketsync demo` and the tests.
//! - [`demo`]: `marketsync demo`, the real daemon against the simulators.
//! - [`telemetry`]: tracing setup (text, JSON, journald-friendly).

pub mod bench;
pub mod channel;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod odoo;
pub mod retry;
pub mod secret;
pub mod sim;
pub mod store;
pub mod sync;
pub mod telemetry;
pub mod webhook;
