//! The operator's commands. Reading commands open the state read-only, so they work while the
//! daemon runs; every listing has `--json`.

pub mod check;
pub mod diff;
pub mod init;
pub mod logs;
pub mod map;
pub mod queue;
pub mod render;
pub mod status;

use crate::config::{Config, LogFormat, DEFAULT_CONFIG_PATH};
use crate::store::{Store, StoreError};
use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(name = "marketsync", version, about = "Keeps a supplier's Odoo in step with its marketplaces", long_about = None)]
pub struct Cli {
    /// Config file.
    #[arg(long, global = true, env = "MARKETSYNC_CONFIG", default_value = DEFAULT_CONFIG_PATH)]
    pub config: PathBuf,
    /// State file (overrides state.path; the systemd units pass their StateDirectory).
    #[arg(long = "state-file", global = true, env = "MARKETSYNC_STATE")]
    pub state_file: Option<PathBuf>,
    /// Log format on stderr (overrides log.format).
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormatArg>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LogFormatArg {
    Text,
    Json,
}

impl From<LogFormatArg> for LogFormat {
    fn from(f: LogFormatArg) -> Self {
        match f {
            LogFormatArg::Text => LogFormat::Text,
            LogFormatArg::Json => LogFormat::Json,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon (what the systemd unit starts).
    Run,
    /// Per channel: enabled, queue depth, dead jobs, last runs and errors; Odoo reachability.
    Status {
        /// Print JSON instead of a table (for scripts).
        #[arg(long)]
        json: bool,
    },
    /// The sync log.
    Logs(logs::LogsArgs),
    /// The job queue.
    #[command(subcommand)]
    Queue(queue::QueueCommand),
    /// Id mappings between Odoo and the channels.
    #[command(subcommand)]
    Map(map::MapCommand),
    /// Marketplace orders: where each stands, and the retailer OTPs Cartona needs.
    #[command(subcommand)]
    Order(OrderCommand),
    /// The customers' WhatsApp messages, newest first: step, state, number, template, why.
    Messages {
        /// Only this order's (its reference, e.g. MEDUSA-1042).
        #[arg(long)]
        order: Option<String>,
        /// Only messages in this state (planned, sending, unconfirmed, accepted, sent,
        /// delivered, read, failed, skipped, dead).
        #[arg(long)]
        status: Option<String>,
        /// At most this many, newest first; 0 for all.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Print JSON instead of a table (for scripts).
        #[arg(long)]
        json: bool,
    },
    /// Sha6er shipments, newest first: delivery, order, state, tracking, courier, why.
    Shipments {
        /// Only shipments in this state (creating, refused, pending, accepted, assigned,
        /// picked_up, in_transit, delivered, failed, returned, cancelled).
        #[arg(long)]
        state: Option<String>,
        /// At most this many, newest first; 0 for all.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Print JSON instead of a table (for scripts).
        #[arg(long)]
        json: bool,
    },
    /// Ask Sha6er for the shipment of one Odoo delivery now (its reference, e.g.
    /// WH/OUT/00012), whatever `ship_for` says; a refused one is asked again.
    Ship {
        /// The delivery's reference in Odoo.
        picking: String,
    },
    /// Log in to Odoo and reach every enabled channel; one line each.
    Check {
        /// Print JSON instead of a table (for scripts).
        #[arg(long)]
        json: bool,
        /// Also read the catalog as each channel's first push would (nothing is sent) and
        /// estimate how long that push takes.
        #[arg(long)]
        estimate: bool,
    },
    /// What a marketplace holds against what Odoo says (price, stock, published, missing,
    /// unknown to Odoo); exit 1 if anything differs.
    Diff {
        /// The channel to read back (cartona, medusa).
        #[arg(long, value_parser = map::parse_channel)]
        channel: crate::config::ChannelKind,
        /// Print JSON instead of lines (for scripts).
        #[arg(long)]
        json: bool,
        /// Queue exactly the fixes (the running daemon sends them).
        #[arg(long)]
        repair: bool,
    },
    /// Write a first config, asking (or taking flags) and verifying as it goes; ends with check.
    Init(Box<init::InitArgs>),
    /// The configuration file.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Run a simulator of a peer on loopback (for trying marketsync out, and for tests).
    #[command(subcommand)]
    Sim(SimCommand),
    /// Run the real daemon against built-in simulators and show what happens.
    Demo(crate::demo::DemoArgs),
    /// Measure the daemon against simulators in their own processes (wall, CPU, RSS, calls).
    Bench(crate::bench::BenchArgs),
}

#[derive(Debug, Subcommand)]
pub enum OrderCommand {
    /// Orders known to marketsync, newest first, with what needs the operator.
    List {
        /// Only this channel's orders (cartona, medusa...).
        #[arg(long)]
        channel: Option<String>,
        /// At most this many orders, newest first; 0 for all (a cut listing says so on stderr).
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Print JSON instead of a table (for scripts).
        #[arg(long)]
        json: bool,
    },
    /// Record the retailer's delivery OTP (installment and wallet-top-up Cartona orders).
    Otp {
        /// The order's reference (CARTONA-<hashed_id>) or hashed_id.
        reference: String,
        /// The OTP the retailer gave the courier.
        otp: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the file without touching the network; exits non-zero on the first error.
    Check,
}

#[derive(Debug, Subcommand)]
pub enum SimCommand {
    /// An in-memory Odoo speaking XML-RPC, JSON-RPC and JSON-2.
    Odoo(crate::sim::odoo::SimArgs),
    /// Cartona's supplier-integrations API.
    Cartona(crate::sim::cartona::SimArgs),
    /// A Medusa store: MarqaSouq's /odoo routes and the Medusa v2 Admin API.
    Medusa(crate::sim::medusa::SimArgs),
    /// A Meta Commerce catalog (Graph API items_batch, batch status, read-back, throttling).
    Meta(crate::sim::meta::SimArgs),
    /// WhatsApp's Cloud API for one business number (templates, wamids, signed status webhooks).
    Whatsapp(crate::sim::whatsapp::SimArgs),
    /// Sha6er deliveries: shipments, couriers on a clock, signed status webhooks.
    Sha6er(crate::sim::sha6er::SimArgs),
}

/// Parses the command line, runs the command, returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", crate::secret::scrub(&format!("{e:#}")));
            1
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn load(cli: &Cli) -> anyhow::Result<Config> {
    let mut config = Config::load(&cli.config).map_err(|e| anyhow::anyhow!("{e}"))?;
    if let Some(state) = &cli.state_file {
        config.state.path = state.clone();
    }
    Ok(config)
}

/// Opens the state for reading; before the daemon ever ran, an empty state stands in.
pub fn open_for_reading(config: &Config) -> anyhow::Result<Store> {
    match Store::open_read_only(&config.state.path) {
        Ok(s) => Ok(s),
        Err(StoreError::Missing { path }) => {
            eprintln!("note: {} does not exist yet (the daemon creates it at its first start); showing an empty state", path.display());
            Ok(Store::open_empty()?)
        }
        Err(e) => Err(e.into()),
    }
}

/// Opens the state for a command that changes it (a second, short-lived writer beside the daemon).
pub fn open_for_writing(config: &Config) -> anyhow::Result<Store> {
    Store::open(&config.state.path).with_context(|| "opening the state for writing")
}

fn run(cli: Cli) -> anyhow::Result<i32> {
    let quiet_default = LogFormat::Text;
    match &cli.command {
        Command::Config(ConfigCommand::Check) => {
            let config = load(&cli)?;
            let enabled: Vec<&str> = config.enabled_channels().map(|c| c.kind.name()).collect();
            println!(
                "{}: valid (Odoo {} over {}, state {}, channels enabled: {})",
                cli.config.display(),
                config.odoo.url,
                config.odoo.protocol.as_str(),
                config.state.path.display(),
                if enabled.is_empty() {
                    "none".to_string()
                } else {
                    enabled.join(", ")
                }
            );
            for w in config.warnings() {
                eprintln!("warning: {w}");
            }
            Ok(0)
        }
        Command::Run => {
            let config = load(&cli)?;
            crate::telemetry::init(
                &config.log.level,
                cli.log_format.map(Into::into).unwrap_or(config.log.format),
            );
            runtime()?.block_on(async move {
                let store = Store::open(&config.state.path)?;
                let daemon = crate::daemon::Daemon::new(config, store);
                let token = tokio_util::sync::CancellationToken::new();
                tokio::spawn(crate::daemon::cancel_on_signal(token.clone()));
                match daemon.run(token).await {
                    Ok(()) => Ok(0),
                    Err(e) => {
                        tracing::error!("{e}");
                        eprintln!("error: {}", crate::secret::scrub(&e.to_string()));
                        Ok(e.exit_code())
                    }
                }
            })
        }
        Command::Status { json } => {
            let config = load(&cli)?;
            let store = open_for_reading(&config)?;
            status::run(&config, &store, *json)
        }
        Command::Logs(args) => {
            let config = load(&cli)?;
            let store = open_for_reading(&config)?;
            logs::run(&store, args)
        }
        Command::Queue(cmd) => {
            let config = load(&cli)?;
            queue::run(&config, cmd)
        }
        Command::Map(cmd) => {
            let config = load(&cli)?;
            map::run(&config, cmd)
        }
        Command::Order(cmd) => {
            let config = load(&cli)?;
            order(&config, cmd)
        }
        Command::Messages {
            order,
            status,
            limit,
            json,
        } => {
            let config = load(&cli)?;
            messages(&config, order.as_deref(), status.as_deref(), *limit, *json)
        }
        Command::Shipments { state, limit, json } => {
            let config = load(&cli)?;
            shipments_list(&config, state.as_deref(), *limit, *json)
        }
        Command::Ship { picking } => {
            let config = load(&cli)?;
            runtime()?.block_on(ship(&config, picking))
        }
        Command::Sim(SimCommand::Medusa(args)) => {
            crate::telemetry::init(
                "info",
                cli.log_format.map(Into::into).unwrap_or(quiet_default),
            );
            runtime()?.block_on(crate::sim::medusa::serve_cli(args.clone()))?;
            Ok(0)
        }
        Command::Sim(SimCommand::Meta(args)) => {
            crate::telemetry::init(
                "info",
                cli.log_format.map(Into::into).unwrap_or(quiet_default),
            );
            runtime()?.block_on(crate::sim::meta::serve_cli(args.clone()))?;
            Ok(0)
        }
        Command::Sim(SimCommand::Sha6er(args)) => {
            runtime()?.block_on(crate::sim::sha6er::serve_cli(args.clone()))?;
            Ok(0)
        }
        Command::Sim(SimCommand::Whatsapp(args)) => {
            crate::telemetry::init(
                "info",
                cli.log_format.map(Into::into).unwrap_or(quiet_default),
            );
            runtime()?.block_on(crate::sim::whatsapp::serve_cli(args.clone()))?;
            Ok(0)
        }
        Command::Sim(SimCommand::Cartona(args)) => {
            crate::telemetry::init(
                "info",
                cli.log_format.map(Into::into).unwrap_or(quiet_default),
            );
            runtime()?.block_on(crate::sim::cartona::serve_cli(args.clone()))?;
            Ok(0)
        }
        Command::Init(args) => {
            crate::telemetry::init(
                "warn",
                cli.log_format.map(Into::into).unwrap_or(quiet_default),
            );
            runtime()?.block_on(init::run(&cli.config, args))
        }
        Command::Check { json, estimate } => {
            let config = load(&cli)?;
            crate::telemetry::init(
                "warn",
                cli.log_format.map(Into::into).unwrap_or(quiet_default),
            );
            runtime()?.block_on(check::run_with(&config, *json, *estimate))
        }
        Command::Diff {
            channel,
            json,
            repair,
        } => {
            let config = load(&cli)?;
            crate::telemetry::init(
                "warn",
                cli.log_format.map(Into::into).unwrap_or(quiet_default),
            );
            runtime()?.block_on(diff::run(&config, *channel, *json, *repair))
        }
        Command::Sim(SimCommand::Odoo(args)) => {
            crate::telemetry::init(
                "info",
                cli.log_format.map(Into::into).unwrap_or(quiet_default),
            );
            runtime()?.block_on(crate::sim::odoo::serve_cli(args.clone()))?;
            Ok(0)
        }
        Command::Bench(args) => {
            crate::telemetry::init(
                "error",
                cli.log_format.map(Into::into).unwrap_or(quiet_default),
            );
            runtime()?.block_on(crate::bench::run(args.clone()))
        }
        Command::Demo(args) => {
            // The demo shows the sync log itself (so not the journal lines of its events);
            // tracing only for real trouble.
            crate::telemetry::init(
                "error,marketsync::internal_events=off",
                cli.log_format.map(Into::into).unwrap_or(quiet_default),
            );
            runtime()?.block_on(crate::demo::run(args.clone()))
        }
    }
}

/// `marketsync messages`.
fn shipments_list(
    config: &Config,
    state: Option<&str>,
    limit: usize,
    json: bool,
) -> anyhow::Result<i32> {
    use crate::store::shipments;
    if let Some(s) = state {
        if !shipments::STATES.contains(&s) {
            anyhow::bail!(
                "--state {s:?} is not a shipment state; use one of {}",
                shipments::STATES.join(", ")
            );
        }
    }
    let store = open_for_reading(config)?;
    let states: Vec<&str> = state.into_iter().collect();
    let rows = shipments::list(&store, &states, render::limit(limit))?;
    if json {
        render::print_json(&rows)?;
        return Ok(0);
    }
    let mut t = render::Table::new(&[
        "DELIVERY", "ORDER", "STATE", "SHIPMENT", "TRACKING", "COURIER", "COD", "WHY", "UPDATED",
    ]);
    for r in &rows {
        let warn = matches!(r.state.as_str(), "failed" | "returned" | "refused");
        let dash = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".into());
        t.row(vec![
            (r.picking.clone(), render::Tone::Plain),
            (r.order_ref.clone(), render::Tone::Plain),
            (
                r.state.clone(),
                if warn {
                    render::Tone::Warn
                } else {
                    render::Tone::Plain
                },
            ),
            (dash(&r.shipment_id), render::Tone::Plain),
            (dash(&r.tracking), render::Tone::Plain),
            (dash(&r.courier), render::Tone::Plain),
            (dash(&r.cod), render::Tone::Plain),
            (render::clip(&dash(&r.reason), 60), render::Tone::Plain),
            (render::when(Some(r.updated_at)), render::Tone::Plain),
        ]);
    }
    print!("{}", t.render());
    if rows.is_empty() {
        println!("(no shipments)");
    }
    Ok(0)
}

async fn ship(config: &Config, picking: &str) -> anyhow::Result<i32> {
    let ch = config
        .enabled_channels()
        .find(|c| c.kind == crate::config::ChannelKind::Sha6er)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "channels.sha6er is not enabled in the config: enable it to ship with Sha6er"
            )
        })?;
    let odoo = crate::odoo::OdooClient::connect(&config.odoo)
        .await
        .map_err(|e| anyhow::anyhow!("Odoo: {e}"))?;
    let store = Store::open(&config.state.path)?;
    let r = crate::channel::sha6er::ship_by_hand(ch, odoo, store, picking.trim()).await?;
    match (&r.shipment_id, r.state.as_str()) {
        (Some(id), _) => println!(
            "{}: Sha6er shipment {id}, tracking {}, state {}",
            r.picking,
            r.tracking.as_deref().unwrap_or("-"),
            r.state
        ),
        (None, state) => println!(
            "{}: {state}{}",
            r.picking,
            r.reason
                .as_deref()
                .map(|w| format!(": {w}"))
                .unwrap_or_default()
        ),
    }
    Ok(0)
}

fn messages(
    config: &Config,
    order: Option<&str>,
    status: Option<&str>,
    limit: usize,
    json: bool,
) -> anyhow::Result<i32> {
    use crate::store::messages::{self, Filter};
    const STATES: [&str; 10] = [
        "planned",
        "sending",
        "unconfirmed",
        "accepted",
        "sent",
        "delivered",
        "read",
        "failed",
        "skipped",
        "dead",
    ];
    if let Some(s) = status {
        if !STATES.contains(&s) {
            anyhow::bail!(
                "--status {s:?} is not a message state; use one of {}",
                STATES.join(", ")
            );
        }
    }
    let store = open_for_reading(config)?;
    let mut filter = Filter {
        state: status.map(str::to_string),
        limit: Some(render::limit(limit)),
        ..Default::default()
    };
    if let Some(r) = order {
        let o = crate::store::orders::by_reference(&store, r.trim())?.ok_or_else(|| {
            anyhow::anyhow!("no order {r:?} is known; `marketsync order list` shows the references")
        })?;
        filter.channel = Some(o.channel);
        filter.external_id = Some(o.external_id);
    }
    let rows = messages::list(&store, &filter)?;
    if json {
        render::print_json(&rows)?;
        return Ok(0);
    }
    let mut refs: std::collections::HashMap<(String, String), String> = Default::default();
    for m in &rows {
        let key = (m.channel.clone(), m.external_id.clone());
        if let std::collections::hash_map::Entry::Vacant(slot) = refs.entry(key) {
            if let Some(o) = crate::store::orders::get(&store, &m.channel, &m.external_id)? {
                slot.insert(o.reference);
            }
        }
    }
    let mut t = render::Table::new(&["ORDER", "STEP", "STATE", "TO", "TEMPLATE", "WHY", "UPDATED"]);
    for m in &rows {
        let tone = match m.state.as_str() {
            "dead" | "failed" => render::Tone::Bad,
            "unconfirmed" | "skipped" => render::Tone::Warn,
            _ => render::Tone::Plain,
        };
        t.row(vec![
            (
                refs.get(&(m.channel.clone(), m.external_id.clone()))
                    .cloned()
                    .unwrap_or_else(|| m.external_id.clone()),
                render::Tone::Plain,
            ),
            (m.step.clone(), render::Tone::Plain),
            (m.state.clone(), tone),
            (
                m.phone
                    .as_deref()
                    .map(crate::channel::whatsapp::masked)
                    .unwrap_or_else(|| "-".into()),
                render::Tone::Plain,
            ),
            (
                match (&m.template, &m.language) {
                    (Some(t), Some(l)) => format!("{t} ({l})"),
                    _ => "-".into(),
                },
                render::Tone::Plain,
            ),
            (
                render::clip(m.reason.as_deref().unwrap_or("-"), 70),
                render::Tone::Plain,
            ),
            (render::when(Some(m.updated_at)), render::Tone::Plain),
        ]);
    }
    print!("{}", t.render());
    if rows.is_empty() {
        println!("(no messages)");
    }
    Ok(0)
}

fn order(config: &Config, cmd: &OrderCommand) -> anyhow::Result<i32> {
    use crate::store::orders;
    match cmd {
        OrderCommand::List {
            channel,
            limit,
            json,
        } => {
            let store = open_for_reading(config)?;
            let rows = orders::list(&store, channel.as_deref(), render::limit(*limit))?;
            render::cut_notice(
                rows.len(),
                orders::list_count(&store, channel.as_deref())?,
                "orders",
            );
            if *json {
                render::print_json(&rows)?;
                return Ok(0);
            }
            let mut t = render::Table::new(&[
                "CHANNEL",
                "REFERENCE",
                "ODOO",
                "MARKETPLACE",
                "SENT",
                "MESSAGE",
                "SHIPMENT",
                "NEEDS",
                "UPDATED",
            ]);
            let listed: Vec<(String, String)> = rows
                .iter()
                .map(|o| (o.channel.clone(), o.external_id.clone()))
                .collect();
            let told = crate::store::messages::last_of(&store, &listed)?;
            let shipped = crate::store::shipments::of_orders(&store, &listed)?;
            for o in &rows {
                let message = told
                    .get(&(o.channel.clone(), o.external_id.clone()))
                    .map(|m| match (&m.reason, m.state.as_str()) {
                        (Some(why), "skipped" | "dead" | "failed") => {
                            render::clip(&format!("{} {}: {why}", m.step, m.state), 60)
                        }
                        _ => format!("{} {}", m.step, m.state),
                    })
                    .unwrap_or_else(|| "-".into());
                let shipment = shipped
                    .get(&(o.channel.clone(), o.external_id.clone()))
                    .map(|rows| {
                        rows.iter()
                            .map(|r| match &r.tracking {
                                Some(t) => format!("{} {t}", r.state),
                                None => r.state.clone(),
                            })
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .unwrap_or_else(|| "-".into());
                let needs = o
                    .attention
                    .clone()
                    .or_else(|| crate::channel::order_needs(o))
                    .unwrap_or_else(|| "-".into());
                t.row(vec![
                    (o.channel.clone(), render::Tone::Plain),
                    (o.reference.clone(), render::Tone::Plain),
                    (
                        o.odoo_id
                            .map(|i| format!("sale.order {i}"))
                            .unwrap_or_else(|| "-".into()),
                        render::Tone::Plain,
                    ),
                    (
                        o.marketplace_status.clone().unwrap_or_default(),
                        render::Tone::Plain,
                    ),
                    (
                        o.sent_status.clone().unwrap_or_else(|| "-".into()),
                        render::Tone::Plain,
                    ),
                    (
                        message.clone(),
                        if message.contains(" dead") || message.contains(" failed") {
                            render::Tone::Warn
                        } else {
                            render::Tone::Plain
                        },
                    ),
                    (
                        shipment.clone(),
                        if shipment.contains("failed") || shipment.contains("returned") {
                            render::Tone::Warn
                        } else {
                            render::Tone::Plain
                        },
                    ),
                    (
                        render::clip(&needs, 70),
                        if o.attention.is_some() || o.meta["totals"].is_object() {
                            render::Tone::Warn
                        } else {
                            render::Tone::Plain
                        },
                    ),
                    (render::when(Some(o.updated_at)), render::Tone::Plain),
                ]);
            }
            print!("{}", t.render());
            if rows.is_empty() {
                println!("(no orders)");
            }
            Ok(0)
        }
        OrderCommand::Otp { reference, otp } => {
            if otp.trim().is_empty() || !otp.chars().all(|c| c.is_ascii_alphanumeric()) {
                anyhow::bail!("the OTP must be letters and digits, as the retailer gave it");
            }
            let store = open_for_writing(config)?;
            let (order, queued) = crate::channel::cartona::record_otp(
                &store,
                reference.trim(),
                &crate::secret::Secret::new(otp.trim()),
            )?;
            println!(
                "OTP recorded for {}{}",
                order.reference,
                if queued {
                    "; the delivered status is queued for Cartona"
                } else {
                    "; it is sent when the delivery is validated in Odoo"
                }
            );
            Ok(0)
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every option and argument of every command says what it is for.
    #[test]
    fn every_option_of_every_command_has_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            let path = format!("{path} {}", cmd.get_name());
            if cmd.get_about().is_none() && !path.ends_with(" help") {
                missing.push(format!("{path}: the command"));
            }
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path}: --{id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &path, missing);
            }
        }
        let mut missing = Vec::new();
        let mut cmd = super::Cli::command();
        cmd.build();
        walk(&cmd, "", &mut missing);
        assert!(
            missing.is_empty(),
            "without help text:\n{}",
            missing.join("\n")
        );
    }

    /// clap's own checks of every command (unique ids and groups, valid defaults), which it
    /// makes only when a command is first parsed.
    #[test]
    fn every_command_passes_clap_s_checks() {
        super::Cli::command().debug_assert();
    }
}
