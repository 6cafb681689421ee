//! `marketsync map`: list, set and unset id mappings between Odoo records and channel records.

use super::render::{print_json, when, Table};
use crate::config::{ChannelKind, Config};
use crate::store::mapping;

#[derive(Debug, clap::Subcommand)]
pub enum MapCommand {
    /// Mappings, by channel and kind.
    List {
        /// Only this channel's mappings (cartona, medusa...).
        #[arg(long)]
        channel: Option<String>,
        /// product, order, partner...
        #[arg(long)]
        kind: Option<String>,
        /// At most this many mappings; 0 for all (a cut listing says so on stderr).
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Print JSON instead of a table (for scripts).
        #[arg(long)]
        json: bool,
    },
    /// Link an Odoo record to a channel record (a manual fix).
    Set {
        /// The channel the record belongs to (cartona, medusa...).
        #[arg(long, value_parser = parse_channel)]
        channel: ChannelKind,
        /// What is linked: product, order, partner...
        #[arg(long, default_value = "product")]
        kind: String,
        /// The Odoo record's id.
        #[arg(long)]
        odoo_id: i64,
        /// The channel's id for the record (Cartona's supplier product id, Medusa's SKU...).
        #[arg(long)]
        external_id: String,
        /// Odoo model; defaults from the kind (product -> product.product, order -> sale.order, partner -> res.partner).
        #[arg(long)]
        model: Option<String>,
    },
    /// Read the channel's products and map them to Odoo's by the configured key
    /// (`channels.<name>.match_key`); reports matched, unmatched and ambiguous on both sides.
    Import {
        /// The channel whose products are read and matched.
        #[arg(long, value_parser = parse_channel)]
        channel: ChannelKind,
        /// Report only; write no mapping.
        #[arg(long)]
        dry_run: bool,
        /// Print JSON instead of a table (for scripts).
        #[arg(long)]
        json: bool,
    },
    /// Remove a link, by Odoo id or by external id.
    Unset {
        /// The channel the record belongs to (cartona, medusa...).
        #[arg(long, value_parser = parse_channel)]
        channel: ChannelKind,
        /// What is unlinked: product, order, partner...
        #[arg(long, default_value = "product")]
        kind: String,
        /// The Odoo record's id (or give --external-id).
        #[arg(long, required_unless_present = "external_id")]
        odoo_id: Option<i64>,
        /// The channel's id for the record (or give --odoo-id).
        #[arg(long)]
        external_id: Option<String>,
    },
}

/// A `--channel` argument.
pub fn parse_channel(s: &str) -> Result<ChannelKind, crate::config::BadValue> {
    s.parse()
}

pub fn default_model(kind: &str) -> Option<&'static str> {
    match kind {
        "product" => Some("product.product"),
        "order" => Some("sale.order"),
        "partner" => Some("res.partner"),
        _ => None,
    }
}

pub fn run(config: &Config, cmd: &MapCommand) -> anyhow::Result<i32> {
    match cmd {
        MapCommand::List {
            channel,
            kind,
            limit,
            json,
        } => {
            let store = super::open_for_reading(config)?;
            let rows = mapping::list(
                &store,
                channel.as_deref(),
                kind.as_deref(),
                super::render::limit(*limit),
            )?;
            super::render::cut_notice(
                rows.len(),
                mapping::list_count(&store, channel.as_deref(), kind.as_deref())?,
                "mappings",
            );
            if *json {
                print_json(&rows)?;
                return Ok(0);
            }
            let mut t = Table::new(&["CHANNEL", "KIND", "ODOO", "EXTERNAL ID", "LAST SENT"]);
            for m in &rows {
                t.plain_row(vec![
                    m.channel.clone(),
                    m.kind.clone(),
                    format!("{} {}", m.odoo_model, m.odoo_id),
                    m.external_id.clone(),
                    when(m.last_sent_at),
                ]);
            }
            print!("{}", t.render());
            if rows.is_empty() {
                println!("(no mappings)");
            }
            Ok(0)
        }
        MapCommand::Set {
            channel,
            kind,
            odoo_id,
            external_id,
            model,
        } => {
            let Some(model) = model.as_deref().or_else(|| default_model(kind)) else {
                anyhow::bail!("no default Odoo model for kind {kind:?}; pass --model");
            };
            let store = super::open_for_writing(config)?;
            let m = mapping::set(&store, channel.name(), kind, model, *odoo_id, external_id)?;
            println!(
                "{} {} {} {} <-> {:?}",
                m.channel, m.kind, m.odoo_model, m.odoo_id, m.external_id
            );
            Ok(0)
        }
        MapCommand::Import {
            channel,
            dry_run,
            json,
        } => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(import(config, *channel, *dry_run, *json))
        }
        MapCommand::Unset {
            channel,
            kind,
            odoo_id,
            external_id,
        } => {
            let store = super::open_for_writing(config)?;
            if mapping::unset(
                &store,
                channel.name(),
                kind,
                *odoo_id,
                external_id.as_deref(),
            )? {
                println!("mapping removed");
                Ok(0)
            } else {
                eprintln!("error: no {} {kind} mapping matches", channel.name());
                Ok(1)
            }
        }
    }
}

async fn import(
    config: &Config,
    channel: ChannelKind,
    dry_run: bool,
    json: bool,
) -> anyhow::Result<i32> {
    let Some(ch) = config.channel(channel) else {
        anyhow::bail!(
            "there is no [channels.{}] table in the config",
            channel.name()
        );
    };
    let odoo = crate::odoo::OdooClient::connect(&config.odoo).await?;
    let store = if dry_run {
        super::open_for_reading(config)?
    } else {
        super::open_for_writing(config)?
    };
    let progress = super::render::Progress::new("reading");
    let report = crate::channel::map_import(ch, &odoo, &store, dry_run, &|what, n| {
        progress.show_as(&format!("reading {what}"), n)
    })
    .await;
    progress.done();
    let report = report?;
    if json {
        super::render::print_json(&report.json)?;
        return Ok(0);
    }
    for line in &report.lines {
        println!("{line}");
    }
    Ok(0)
}
