//! `marketsync check`: logs in to Odoo and reaches every enabled channel, one line each (and
//! one for a channel's pricelist, which must hold only rules marketsync can apply); the exit
//! status is non-zero if any of them fails.

use super::render::{paint, print_json, Tone};
use crate::config::Config;
use crate::odoo::OdooClient;
use serde::Serialize;

#[derive(Debug, Serialize)]
struct Line {
    target: String,
    ok: bool,
    /// Works, but something optional is left out (the exit status stays 0).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    warning: bool,
    detail: String,
}

impl Line {
    fn new(target: impl Into<String>, ok: bool, detail: impl Into<String>) -> Line {
        Line {
            target: target.into(),
            ok,
            warning: false,
            detail: detail.into(),
        }
    }

    /// Works, with something the operator should know (`WARN`; the exit status stays 0).
    fn warn(target: impl Into<String>, detail: impl Into<String>) -> Line {
        Line {
            warning: true,
            ..Line::new(target, true, detail)
        }
    }
}

pub async fn run(config: &Config, json: bool) -> anyhow::Result<i32> {
    run_with(config, json, false).await
}

/// `check`, and with `estimate` the first push's figures per channel.
pub async fn run_with(config: &Config, json: bool, estimate: bool) -> anyhow::Result<i32> {
    let mut lines = Vec::new();
    let mut connected = None;
    match OdooClient::connect(&config.odoo).await {
        Ok(odoo) => {
            let detail = match odoo.whoami().await {
                Ok((name, login)) => format!(
                    "Odoo {} at {}: logged in as {} ({}), uid {}, database {:?}, protocol {}",
                    odoo.version().version,
                    config.odoo.url,
                    name,
                    login,
                    odoo.uid(),
                    odoo.database(),
                    config.odoo.protocol.as_str()
                ),
                Err(e) => format!(
                    "Odoo {} logged in as uid {}, but reading the user failed: {e}",
                    odoo.version().version,
                    odoo.uid()
                ),
            };
            lines.push(Line::new("odoo", true, detail));
            // Before Odoo stops answering: an expiring key, a deprecated protocol.
            for notice in
                crate::odoo::notices::ahead(&odoo, config.odoo.protocol, chrono::Utc::now()).await
            {
                lines.push(Line::warn("odoo", notice));
            }
            connected = Some(odoo);
        }
        Err(e) => lines.push(Line::new(
            "odoo",
            false,
            crate::secret::scrub(&e.to_string()),
        )),
    }
    for ch in config.enabled_channels() {
        let reached = std::time::Instant::now();
        let (ok, detail) = reach(ch).await;
        let round_trip = reached.elapsed();
        lines.push(Line::new(ch.kind.name(), ok, detail));
        let (pricelist, currency) = match ch.kind {
            crate::config::ChannelKind::Cartona => (
                ch.cartona.as_ref().and_then(|c| c.pricelist_id),
                Some(crate::channel::cartona::CURRENCY.to_string()),
            ),
            crate::config::ChannelKind::Medusa => (
                ch.medusa.as_ref().and_then(|m| m.pricelist_id),
                ch.medusa.as_ref().map(|m| m.currency.clone()),
            ),
            _ => (None, None),
        };
        if let (Some(odoo), crate::config::ChannelKind::Medusa, Some(m)) =
            (&connected, ch.kind, ch.medusa.as_ref())
        {
            lines.push(language_line(odoo, &m.lang).await);
        }
        if let (true, true, Some(odoo)) = (estimate, ok, &connected) {
            lines.push(estimate_line(ch, odoo, round_trip).await);
        }
        if let (Some(odoo), Some(pricelist)) = (&connected, pricelist) {
            let inspected =
                crate::sync::pricelist::inspect(odoo, pricelist, currency.as_deref()).await;
            let (ok, detail) = match inspected {
                Ok(d) => (true, d),
                Err(e) => (false, e),
            };
            lines.push(Line::new(
                format!("{}.pricelist", ch.kind.name()),
                ok,
                detail,
            ));
        }
    }
    let failed = lines.iter().any(|l| !l.ok);
    if json {
        print_json(&lines)?;
    } else {
        let width = lines
            .iter()
            .map(|l| l.target.len())
            .max()
            .unwrap_or(0)
            .max(8);
        for l in &lines {
            let mark = if l.warning {
                paint("WARN", Tone::Warn)
            } else if l.ok {
                paint("ok  ", Tone::Good)
            } else {
                paint("FAIL", Tone::Bad)
            };
            println!("{mark}  {:<width$} {}", l.target, l.detail);
        }
    }
    Ok(if failed { 1 } else { 0 })
}

/// Whether Medusa's `lang` is installed in Odoo: without it the translation is left out.
async fn language_line(odoo: &OdooClient, lang: &str) -> Line {
    match crate::channel::medusa::language_left_out(odoo, lang).await {
        Ok(None) => Line::new("medusa.lang", true, format!("language {lang} is installed in Odoo")),
        Ok(Some(why)) => Line::warn("medusa.lang", why),
        Err(e) => Line::warn(
            "medusa.lang",
            format!("cannot read Odoo's installed languages ({e}); the {lang} translation may be left out"),
        ),
    }
}

/// Reaches one channel with its token: (answered and accepted, what was seen).
pub async fn reach(ch: &crate::config::ChannelConfig) -> (bool, String) {
    match ch.kind {
        crate::config::ChannelKind::Cartona => match crate::channel::cartona::client(ch) {
            Err(e) => (false, e),
            Ok(api) => match api
                .get(
                    "supplier-product",
                    &[("page", "1".into()), ("per_page", "1".into())],
                )
                .await
            {
                Ok(_) => (
                    true,
                    format!(
                        "Cartona at {}: token accepted",
                        ch.base_url.as_ref().map(|u| u.as_str()).unwrap_or("")
                    ),
                ),
                Err(e) => (false, e.message),
            },
        },
        crate::config::ChannelKind::Medusa => match crate::channel::medusa::client(ch) {
            Err(e) => (false, e),
            Ok(api) => {
                let flavour = ch.medusa.as_ref().map(|m| m.flavour).unwrap_or_default();
                let path = if flavour == crate::config::MedusaFlavour::AdminApi {
                    "admin/orders"
                } else {
                    "odoo/orders"
                };
                match api.get(path, &[("limit", "1".into())]).await {
                    Ok(_) => (
                        true,
                        format!(
                            "Medusa ({flavour} flavour) at {}: key accepted",
                            ch.base_url.as_ref().map(|u| u.as_str()).unwrap_or("")
                        ),
                    ),
                    Err(e) => (false, e.message),
                }
            }
        },
        // The probe's endpoint takes events only: reaching it is its first delivery.
        crate::config::ChannelKind::Probe => match crate::channel::probe::client(ch) {
            Err(e) => (false, e),
            Ok(_) => (
                true,
                format!(
                    "the probe posts order events to {}events",
                    ch.base_url.as_ref().map(|u| u.as_str()).unwrap_or("")
                ),
            ),
        },
        _ => (false, "channel not available in this build".into()),
    }
}

/// Reads the catalog as the channel's first push does (nothing is sent) and estimates the push:
/// Odoo's read time, plus one bulk request per batch at the round trip just measured.
async fn estimate_line(
    ch: &crate::config::ChannelConfig,
    odoo: &OdooClient,
    round_trip: std::time::Duration,
) -> Line {
    let reader = match (&ch.cartona, &ch.medusa) {
        (Some(s), _) => crate::channel::cartona::reader(s, odoo.clone()),
        (_, Some(s)) => crate::channel::medusa::reader(s, odoo.clone()),
        _ => {
            return Line::new(
                format!("{}.estimate", ch.kind.name()),
                false,
                "no estimate for this channel",
            )
        }
    };
    let progress =
        super::render::Progress::new(&format!("reading the catalog for {}", ch.kind.name()));
    let started = std::time::Instant::now();
    let calls_before = odoo.calls_made();
    let mut products = 0usize;
    let read = reader
        .read_all(|page| {
            products += page.len();
            progress.show(products);
        })
        .await;
    let took = started.elapsed();
    progress.done();
    let target = format!("{}.estimate", ch.kind.name());
    match read {
        Err(e) => Line::new(target, false, format!("reading the catalog from Odoo: {e}")),
        Ok(_) => {
            let batch = ch.batch_size.max(1) as usize;
            let batches = products.div_ceil(batch);
            let rate = products as f64 / took.as_secs_f64().max(1e-6);
            let push = took + round_trip * batches as u32 / ch.concurrency.max(1) as u32;
            Line::new(
                target,
                true,
                format!(
                    "{} products read from Odoo in {:.1} s ({} a second, {} Odoo calls); the first push: {} bulk request(s) of up to {batch}, about {:.1} s in all (the read, plus {} ms a request as just measured, {} at a time); nothing was sent",
                    super::render::thousands(products as i64),
                    took.as_secs_f64(),
                    super::render::thousands(rate as i64),
                    odoo.calls_made() - calls_before,
                    super::render::thousands(batches as i64),
                    push.as_secs_f64(),
                    round_trip.as_millis(),
                    ch.concurrency.max(1)
                ),
            )
        }
    }
}
