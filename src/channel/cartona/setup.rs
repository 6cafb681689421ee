//! `marketsync init`'s questions for Cartona: its API token, and its URL when not production.

use crate::cli::init::{Asker, ChannelSetup, Setting, Table};

#[derive(Debug, Default, clap::Args)]
pub struct CartonaSetup {
    /// Cartona's API base URL (default: Cartona's production API).
    #[arg(long)]
    pub cartona_url: Option<String>,
    /// Cartona's supplier API token.
    #[arg(long, env = "MARKETSYNC_INIT_CARTONA_TOKEN", hide_env_values = true)]
    pub cartona_token: Option<String>,
}

pub(crate) fn setup(args: &CartonaSetup, ask: &Asker) -> anyhow::Result<ChannelSetup> {
    let token = ask.secret(
        &args.cartona_token,
        "Cartona API token",
        "cartona-token",
        "MARKETSYNC_INIT_CARTONA_TOKEN",
    )?;
    let mut settings = vec![Setting::enabled()];
    if let Some(u) = &args.cartona_url {
        settings.push(Setting::plain("base_url", u));
    }
    settings.push(Setting::secret("cartona-token", "token", token));
    Ok(ChannelSetup {
        table: Table {
            name: "channels.cartona",
            settings,
        },
        afterwards: None,
    })
}
