//! The channels: one folder per marketplace or carrier. A channel sees canonical values
//! (listings, stock levels, inbound orders), never Odoo rows; its `wire.rs` converts canonical
//! <-> the marketplace's JSON. Each channel is a job handler for the worker pool plus the
//! streams the scheduler runs.

pub mod cartona;
pub mod http;
pub mod medusa;

use crate::config::{ChannelKind, Config};
use crate::daemon::scheduler::StreamSpec;
use crate::daemon::workers::ChannelWorkers;
use crate::odoo::OdooClient;
use crate::store::Store;

/// A running channel: its workers and its streams.
pub struct Started {
    pub name: &'static str,
    pub workers: ChannelWorkers,
    pub streams: Vec<StreamSpec>,
}

/// Builds every enabled channel of the config (after the Odoo login, which they use).
pub async fn start_enabled(
    config: &Config,
    odoo: &OdooClient,
    store: &Store,
) -> Result<Vec<Started>, String> {
    let mut out = Vec::new();
    for ch in config.enabled_channels() {
        match ch.kind {
            ChannelKind::Cartona => {
                out.push(cartona::start(config, ch, odoo.clone(), store.clone()).await?)
            }
            ChannelKind::Medusa => {
                out.push(medusa::start(config, ch, odoo.clone(), store.clone()).await?)
            }
            other => {
                return Err(format!(
                    "the {} channel is not part of this version",
                    other.name()
                ))
            }
        }
    }
    Ok(out)
}
