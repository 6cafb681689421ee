//! `marketsync init`'s questions for a Medusa store: its flavour, URL, key, webhook secret (a
//! new random one unless given), currency and, for the Admin API, its stock location.

use crate::cli::init::{Asker, ChannelSetup, Setting, Table};

#[derive(Debug, Default, clap::Args)]
pub struct MedusaSetup {
    /// The Medusa flavour: marqasouq or admin-api.
    #[arg(long)]
    pub medusa_flavour: Option<String>,
    /// The Medusa store's base URL.
    #[arg(long)]
    pub medusa_url: Option<String>,
    /// The Medusa key (MarqaSouq's x-odoo-api-key, or an Admin API secret key sk_...).
    #[arg(long, env = "MARKETSYNC_INIT_MEDUSA_TOKEN", hide_env_values = true)]
    pub medusa_token: Option<String>,
    /// The secret the store signs its webhooks with (a new random one if not given).
    #[arg(
        long,
        env = "MARKETSYNC_INIT_MEDUSA_WEBHOOK_SECRET",
        hide_env_values = true
    )]
    pub medusa_webhook_secret: Option<String>,
    /// The store's currency (ISO 4217, e.g. KWD).
    #[arg(long)]
    pub medusa_currency: Option<String>,
    /// The Medusa stock location that carries Odoo's stock (admin-api: required).
    #[arg(long)]
    pub medusa_location_id: Option<String>,
}

pub(crate) fn setup(args: &MedusaSetup, ask: &Asker) -> anyhow::Result<ChannelSetup> {
    let flavour = ask.text(
        &args.medusa_flavour,
        "Medusa flavour (marqasouq, admin-api)",
        Some("admin-api"),
        "medusa-flavour",
    )?;
    if !matches!(flavour.as_str(), "marqasouq" | "admin-api") {
        anyhow::bail!("--medusa-flavour: {flavour:?} is not a flavour; use marqasouq or admin-api");
    }
    let base = ask.text(&args.medusa_url, "Medusa store URL", None, "medusa-url")?;
    let token = ask.secret(
        &args.medusa_token,
        "Medusa key",
        "medusa-token",
        "MARKETSYNC_INIT_MEDUSA_TOKEN",
    )?;
    let given = args
        .medusa_webhook_secret
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let hook = given
        .map(str::to_string)
        .unwrap_or_else(|| format!("whsec_{}", hex::encode(rand::random::<[u8; 24]>())));
    let currency = ask.text(
        &args.medusa_currency,
        "Store currency (ISO 4217)",
        Some("KWD"),
        "medusa-currency",
    )?;
    let location = if flavour == "admin-api" {
        Some(ask.text(
            &args.medusa_location_id,
            "Medusa stock location id (sloc_...)",
            None,
            "medusa-location-id",
        )?)
    } else {
        args.medusa_location_id.clone()
    };
    let mut settings = vec![
        Setting::enabled(),
        Setting::plain("flavour", &flavour),
        Setting::plain("base_url", &base),
        Setting::secret("medusa-token", "token", token),
        Setting::secret("medusa-webhook-secret", "webhook_secret", hook),
        Setting::plain("currency", &currency),
    ];
    if let Some(l) = location {
        settings.push(Setting::plain("location_id", &l));
    }
    Ok(ChannelSetup {
        table: Table {
            name: "channels.medusa",
            settings,
        },
        afterwards: given.is_none().then_some((
            "the store must sign its webhooks with the secret in this file (README, \"Medusa webhooks\")",
            "medusa-webhook-secret",
        )),
    })
}
