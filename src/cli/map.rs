//! `marketsync map`: list, set and unset id mappings between Odoo records and channel records.

use super::render::{print_json, when, Table};
use crate::config::{ChannelKind, Config};
use crate::store::mapping;

#[derive(Debug, clap::Subcommand)]
pub enum MapCommand {
    /// Mappings, by channel and kind.
    List {
        #[arg(long)]
        channel: Option<String>,
        /// product, order, partner...
        #[arg(long)]
        kind: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// Link an Odoo record to a channel record (a manual fix).
    Set {
        #[arg(long, value_parser = parse_channel)]
        channel: ChannelKind,
        #[arg(long, default_value = "product")]
        kind: String,
        #[arg(long)]
        odoo_id: i64,
        #[arg(long)]
        external_id: String,
        /// Odoo model; defaults from the kind (product -> product.product, order -> sale.order, partner -> res.partner).
        #[arg(long)]
        model: Option<String>,
    },
    /// Remove a link, by Odoo id or by external id.
    Unset {
        #[arg(long, value_parser = parse_channel)]
        channel: ChannelKind,
        #[arg(long, default_value = "product")]
        kind: String,
        #[arg(long, required_unless_present = "external_id")]
        odoo_id: Option<i64>,
        #[arg(long)]
        external_id: Option<String>,
    },
}

fn parse_channel(s: &str) -> Result<ChannelKind, String> {
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
            let rows = mapping::list(&store, channel.as_deref(), kind.as_deref(), *limit)?;
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
