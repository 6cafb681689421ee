//! `marketsync diff --channel NAME [--json] [--repair]`: what the marketplace holds against what
//! Odoo says it should; exit 1 if anything differs. `--repair` queues exactly the fixes (the
//! running daemon sends them).

use crate::channel::drift::{self, DriftKind, Report};
use crate::config::{ChannelKind, Config};

pub async fn run(
    config: &Config,
    channel: ChannelKind,
    json: bool,
    repair: bool,
) -> anyhow::Result<i32> {
    let name = channel.name();
    let Some(ch) = config.channel(channel) else {
        anyhow::bail!("there is no [channels.{name}] table in the config");
    };
    let odoo = crate::odoo::OdooClient::connect(&config.odoo).await?;
    let store = if repair {
        super::open_for_writing(config)?
    } else {
        super::open_for_reading(config)?
    };
    let profile = crate::odoo::profile::Profile::detect(&odoo).await?;
    let w = crate::channel::Wiring {
        config,
        cfg: ch,
        odoo,
        store,
        profile,
    };
    let report = match channel {
        ChannelKind::Cartona => drift::diff(&crate::channel::cartona::build(&w)?, repair).await?,
        ChannelKind::Medusa => drift::diff(&crate::channel::medusa::build(&w)?, repair).await?,
        ChannelKind::Meta => drift::diff(&crate::channel::meta::build(&w)?, repair).await?,
        other => anyhow::bail!(
            "the {} channel has no listings marketsync can read back; diff compares Cartona, Medusa (admin-api) and Meta",
            other.name()
        ),
    };
    if json {
        // Written as it is serialized: a catalog whose every listing differs is not copied
        // into a JSON tree first.
        #[derive(serde::Serialize)]
        struct Out<'a> {
            channel: &'a str,
            summary: String,
            compared: usize,
            held: usize,
            drifts: &'a [drift::Drift],
            queued: usize,
            not_repaired: &'a [String],
        }
        let out = Out {
            channel: name,
            summary: report.summary(name),
            compared: report.compared,
            held: report.held,
            drifts: &report.drifts,
            queued: report.queued,
            not_repaired: &report.not_repaired,
        };
        let stdout = std::io::stdout();
        let mut lock = std::io::BufWriter::new(stdout.lock());
        serde_json::to_writer_pretty(&mut lock, &out)?;
        std::io::Write::write_all(&mut lock, b"\n")?;
    } else {
        let running = crate::store::facts::beating(crate::store::facts::heartbeat(&w.store)?);
        print_report(name, &report, repair, running);
    }
    Ok(if report.drifts.is_empty() { 0 } else { 1 })
}

fn print_report(name: &str, r: &Report, repair: bool, daemon_running: bool) {
    for d in &r.drifts {
        let what = match d.odoo_id {
            Some(id) => format!("Odoo product {id} ({})", d.external_id),
            None => d.external_id.clone(),
        };
        let line = match d.kind {
            DriftKind::Missing => format!("{what}: Odoo lists it, {name} does not have it"),
            DriftKind::Unknown => format!(
                "{what}: {} on {name}, unknown to Odoo (no mapping or SKU)",
                d.channel.as_deref().unwrap_or("listed")
            ),
            _ => format!(
                "{what}: Odoo says {}, {name} holds {}",
                d.odoo.as_deref().unwrap_or("-"),
                d.channel.as_deref().unwrap_or("-")
            ),
        };
        println!("{:<22} {line}", d.kind.as_str());
    }
    println!("{}", r.summary(name));
    if repair {
        let who = if daemon_running {
            "the running daemon sends them"
        } else {
            "no daemon is running: they go out when it starts (systemctl start marketsync)"
        };
        println!("queued the fixes of {} product(s); {who}", r.queued);
        for why in &r.not_repaired {
            println!("not repaired: {why}");
        }
    } else if !r.drifts.is_empty() {
        println!("run `marketsync diff --channel {name} --repair` to queue the fixes");
    }
}
